"""Multi-person test clips made from the shared GRID clips at test time (small, short, no audio).

side_by_side: two speakers in one frame (left | right), with one of them blacked out for a while;
cut: one speaker's clip followed by another's (a hard cut between two people).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfm.io.video import VideoWriter, iter_frames

FPS = 25


def frames_of(path: Path, n: int, start: int = 0) -> list[np.ndarray]:
    out = []
    for i, f in enumerate(iter_frames(path)):
        if i >= start + n:
            break
        if i >= start:
            out.append(np.asarray(f.image).copy())
    return out


def write_clip(path: Path, frames: list[np.ndarray]) -> Path:
    h, w = frames[0].shape[:2]
    with VideoWriter(path, width=w, height=h, rate=FPS, crf=18, preset="ultrafast") as writer:
        for k, image in enumerate(frames):
            writer.write(image, timestamp=k / FPS)
    return path


def side_by_side(left: Path, right: Path, out: Path, n: int, hide_left: tuple[int, int] | None = None) -> Path:
    """Two speakers side by side for `n` frames; the left one blacked out over frames [a, b)."""
    a, b = frames_of(left, n), frames_of(right, n)
    frames = []
    for k, (x, y) in enumerate(zip(a, b)):
        image = np.concatenate([x, y], axis=1)
        if hide_left is not None and hide_left[0] <= k < hide_left[1]:
            image[:, : x.shape[1]] = 0
        frames.append(image)
    return write_clip(out, frames)


def cut(first: Path, second: Path, out: Path, n_first: int, n_second: int) -> Path:
    """`n_first` frames of one speaker, then `n_second` of another (a hard cut)."""
    return write_clip(out, frames_of(first, n_first) + frames_of(second, n_second))
