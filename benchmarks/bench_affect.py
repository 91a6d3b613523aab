"""Throughput of the `fer` affect estimator on 2 OpenCV threads: aligned crop + preprocess + network.

Frames come from the shared Pexels clip (decoding is timed separately and not counted). Without the
tracker, each frame gets stand-in landmarks: points filling the fixed face box of the fer README (frame 30's
box for the first half, frame 430's for the second) with eye corners in it, so the crop goes through the
same similarity warp as with real landmarks.

    .venv/bin/python benchmarks/bench_affect.py [--video PATH] [--assets DIR] [--batch 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

from dfm.affect.crops import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS, face_crops
from dfm.affect.fer import FerEstimator

SHARED = Path(__file__).resolve().parents[2] / "shared"
BOXES = ((290, 40, 550, 300), (245, 95, 505, 355))  # x0, y0, x1, y1 of frames 30 and 430 (fer README)


def stand_in_landmarks(box: tuple[int, int, int, int]) -> np.ndarray:
    """(478, 3) points spread over a face box, with eye corners at a third of its height."""
    x0, y0, x1, y1 = box
    u = np.linspace(0.0, 1.0, 478)
    points = np.stack([x0 + (x1 - x0) * u, y0 + (y1 - y0) * ((u * 7.0) % 1.0), np.zeros(478)], axis=1)
    eye_y = y0 + (y1 - y0) / 3
    w = x1 - x0
    points[list(RIGHT_EYE_CORNERS)] = [[x0 + 0.2 * w, eye_y, 0], [x0 + 0.4 * w, eye_y, 0]]
    points[list(LEFT_EYE_CORNERS)] = [[x0 + 0.6 * w, eye_y, 0], [x0 + 0.8 * w, eye_y, 0]]
    return points


def read_frames(path: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise SystemExit(f"no frames read from {path}")
    return np.stack(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=Path(os.environ.get("DFM_SAMPLE_VIDEO", SHARED / "data/videos/pexels_wolfganglanger_woman_emotions_01.mp4")))
    parser.add_argument("--assets", type=Path, default=Path(os.environ.get("DFM_ASSETS", SHARED / "models")))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    cv2.setNumThreads(2)
    start = time.perf_counter()
    frames = read_frames(args.video)
    decode_s = time.perf_counter() - start
    half = len(frames) // 2
    landmarks = np.stack([stand_in_landmarks(BOXES[0] if i < half else BOXES[1]) for i in range(len(frames))])
    estimator = FerEstimator(args.assets / "fer" / "emotion_model.hdf5")  # --batch: crops per predict call
    estimator.predict(np.zeros((2, estimator.crop_size, estimator.crop_size, 3), np.uint8))  # warm-up

    best_total = best_crop = best_net = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        crop_s = net_s = 0.0
        for begin in range(0, len(frames), args.batch):
            c0 = time.perf_counter()
            crops = np.stack(
                [face_crops(frames[i], landmarks[i], estimator.crop_size, estimator.crop_margin) for i in range(begin, min(begin + args.batch, len(frames)))]
            )
            c1 = time.perf_counter()
            estimator.predict(crops)  # includes grayscale + resize + scaling
            net_s += time.perf_counter() - c1
            crop_s += c1 - c0
        total = time.perf_counter() - t0
        best_total, best_crop, best_net = min(best_total, total), min(best_crop, crop_s), min(best_net, net_s)

    n = len(frames)
    print(f"video: {args.video.name}, {n} frames {frames.shape[2]}x{frames.shape[1]} (decode {n / decode_s:.0f} frames/s, not counted)")
    print(f"numpy {np.__version__}, OpenCV threads {cv2.getNumThreads()}, batch {args.batch}, best of {args.repeats}")
    print(f"crop (similarity warp to {estimator.crop_size}px): {n / best_crop:8.1f} frames/s")
    print(f"fer preprocess + network:              {n / best_net:8.1f} frames/s")
    print(f"fer total (crop + preprocess + net):   {n / best_total:8.1f} frames/s  (target >= 100)")


if __name__ == "__main__":
    main()
