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
        chunks: list[np.ndarray] = []
        rate = stream.rate or 16000
        total = 0
        for frame in container.decode(stream):
            raw = frame.to_ndarray()
            a = raw.astype(np.float32)
            if np.issubdtype(raw.dtype, np.integer):
                a /= float(np.iinfo(raw.dtype).max)
            # planar: (channels, samples); packed: (1, samples * channels) interleaved
            mono = a.reshape(-1, len(frame.layout.channels)).mean(1) if frame.format.is_packed else a.mean(0)
            chunks.append(mono)
            total += mono.size
            if total > max_seconds * rate:
                break
    if not chunks:
        return 0.0
    x = np.concatenate(chunks)
    n = max(1, int(rate * window_s))
    windows = x[: len(x) // n * n].reshape(-1, n)
    if len(windows) == 0:
        return 0.0
    rms = np.sqrt((windows**2).mean(1) + 1e-20)
    return float((20 * np.log10(rms) > threshold_db).mean())


def has_speech(path: str | os.PathLike, min_fraction: float = 0.1) -> bool:
    """True when at least `min_fraction` of the soundtrack is louder than silence (see speech_fraction)."""
    return speech_fraction(path) >= min_fraction
