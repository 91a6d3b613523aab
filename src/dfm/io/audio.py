"""Audio facts the pipeline needs: does a video's soundtrack contain speech?"""

from __future__ import annotations

import os

import av
import numpy as np


def speech_fraction(path: str | os.PathLike, window_s: float = 0.03, threshold_db: float = -40.0,
                    max_seconds: float = 600.0) -> float:
    """Share of short windows whose energy is above `threshold_db` dBFS (0 when there is no audio).

    A cheap voice-activity proxy: digital silence or room tone stays far below -40 dBFS, speech
    spends a good part of its time above it. Reads at most `max_seconds` of audio.
    """
    try:
        container = av.open(str(path))
    except av.error.FFmpegError:
        return 0.0
    with container:
        if not container.streams.audio:
            return 0.0
        stream = container.streams.audio[0]
        rate = stream.rate or 16000
        n = max(1, int(rate * window_s))
        # Streamed: windows of n samples over the whole signal, the samples of a partial window carried
        # to the next frame, so memory does not grow with the soundtrack's length.
        carry = np.zeros(0, np.float32)
        loud = windows = total = 0
        for frame in container.decode(stream):
            raw = frame.to_ndarray()
            a = raw.astype(np.float32)
            if np.issubdtype(raw.dtype, np.integer):
                a /= float(np.iinfo(raw.dtype).max)
            # planar: (channels, samples); packed: (1, samples * channels) interleaved
            mono = a.reshape(-1, len(frame.layout.channels)).mean(1) if frame.format.is_packed else a.mean(0)
            x = np.concatenate([carry, mono])
            k = len(x) // n
            if k:
                rms = np.sqrt((x[: k * n].reshape(k, n) ** 2).mean(1) + 1e-20)
                loud += int((20 * np.log10(rms) > threshold_db).sum())
                windows += k
            carry = x[k * n:]
            total += mono.size
            if total > max_seconds * rate:
                break
    return loud / windows if windows else 0.0


def has_speech(path: str | os.PathLike, min_fraction: float = 0.1) -> bool:
    """True when at least `min_fraction` of the soundtrack is louder than silence (see speech_fraction)."""
    return speech_fraction(path) >= min_fraction
