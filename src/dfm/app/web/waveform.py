"""The soundtrack's envelope for the timeline: peak level per time bucket, 0..1 (display only)."""

from __future__ import annotations

import os

import numpy as np

MAX_SECONDS = 3600.0


def audio_peaks(path: str | os.PathLike, duration: float, buckets: int) -> list[float]:
    """Peak |amplitude| of the first audio stream in each of `buckets` equal slices of [0, duration),
    scaled so the loudest slice is 1 (all zeros for silence or no audio)."""
    import av

    peaks = np.zeros(buckets, np.float64)
    if duration <= 0:
        return peaks.tolist()
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return peaks.tolist()
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            if frame.time is None or frame.time > min(duration, MAX_SECONDS):
                break
            raw = frame.to_ndarray()
            a = np.abs(raw.astype(np.float32))
            if np.issubdtype(raw.dtype, np.integer):
                a /= float(np.iinfo(raw.dtype).max)
            mono = a.reshape(-1, len(frame.layout.channels)).max(1) if frame.format.is_packed else a.max(0)
            t = frame.time + np.arange(mono.size) / float(frame.sample_rate)
            k = np.clip((t / duration * buckets).astype(np.int64), 0, buckets - 1)
            np.maximum.at(peaks, k, mono)
    top = peaks.max()
    return (peaks / top).round(3).tolist() if top > 1e-4 else np.zeros(buckets).tolist()
