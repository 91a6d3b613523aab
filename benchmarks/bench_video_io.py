"""Video I/O throughput on the sample clip (640x360, 472 frames): decode, random access, encode, memory.

    .venv/bin/python benchmarks/bench_video_io.py [VIDEO]

Prints frames/s for streamed decoding (with RGB conversion), single-frame random access latency, and
decoding + encoding at the default quality (pass-through frames and RGB arrays) and lossless, with each
output's PSNR against the input's decoded frames, plus peak RSS. The machine's load skews the timings:
run it on an otherwise idle machine.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dfm.io.video import DEFAULT_CRF, VideoWriter, iter_frames, probe_video, read_frame

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "videos" / "pexels_wolfganglanger_woman_emotions_01.mp4"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def timed(label: str, n: int, fn) -> float:
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    print(f"{label:<44} {n / dt:8.1f} frames/s  ({dt:.2f} s for {n} frames)")
    return dt


def main() -> None:
    video = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(os.environ.get("DFM_SAMPLE_VIDEO", DEFAULT_VIDEO))
    t = time.perf_counter()
    info = probe_video(video)
    print(f"{video.name}: {info.width}x{info.height}, {info.n_frames} frames, {info.fps:.3f} fps, "
          f"audio={info.audio_codec}; probe {1000 * (time.perf_counter() - t):.1f} ms (cold)")
    print(f"CPU cores visible: {len(os.sched_getaffinity(0))}")
    n = info.n_frames

    def decode() -> None:
        for f in iter_frames(video):
            f.image

    def decode_yuv_only() -> None:
        for _ in iter_frames(video):
            pass

    timed("decode + RGB (iter_frames, .image)", n, decode)
    timed("decode, no RGB conversion", n, decode_yuv_only)

    rng = np.random.default_rng(0)
    latencies = []
    for i in rng.integers(0, n, 10):
        t = time.perf_counter()
        read_frame(video, int(i)).image
        latencies.append(time.perf_counter() - t)
    print(f"{'read_frame (random index, warm probe)':<44} median {1000 * np.median(latencies):.1f} ms, "
          f"max {1000 * max(latencies):.1f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        def encode(name: str, rgb: bool, **kwargs) -> None:
            with VideoWriter.like(info, Path(tmp) / name, **kwargs) as w:
                for f in iter_frames(video):
                    if rgb:  # a bare RGB array takes the full RGB -> YUV conversion, like a whole-frame edit
                        w.write(f.image, timestamp=f.timestamp)
                    else:
                        w.write(f)

        timed(f"decode + encode pass-through (crf {DEFAULT_CRF})", n, lambda: encode("a.mp4", False))
        timed(f"decode + encode RGB arrays (crf {DEFAULT_CRF})", n, lambda: encode("b.mp4", True))
        timed("decode + encode pass-through (lossless)", n, lambda: encode("c.mp4", False, lossless=True))
        for name, what in (("a.mp4", "pass-through"), ("b.mp4", "RGB arrays"), ("c.mp4", "lossless")):
            out = Path(tmp) / name
            scores = np.array([psnr(x.image, y.image) for x, y in zip(iter_frames(video), iter_frames(out))])
            finite = scores[np.isfinite(scores)]
            exact = int(np.isinf(scores).sum())
            print(f"  {what:<13} {out.stat().st_size / 1e6:5.1f} MB (input {video.stat().st_size / 1e6:.1f} MB); "
                  f"PSNR vs input: {exact}/{len(scores)} frames bit-exact"
                  + (f", others mean {finite.mean():.2f} dB, worst {finite.min():.2f} dB" if len(finite) else ""))
    print(f"peak RSS: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
