"""Honest train/validation split of a person's (VA, expression) pairs: contiguous time blocks per video.

Neighbouring frames of a video are near-duplicates (same expression, same VA estimate give or take
noise), so a random frame split leaks: the validation error of a decoder that memorises its training
frames looks excellent. Here every video is cut into blocks of `block_frames` consecutive frame indices;
whole blocks go to validation, spread evenly over each video (so a clip whose emotion changes over time
has validation blocks in every part), and training frames within `gap_frames` of a validation frame of
the same video are purged (dropped from both sides), so no training frame sits next to a validation one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfm.errors import DfmError


@dataclass(frozen=True)
class TimeBlockSplit:
    """Indices into the pair arrays. `train`, `val` and `dropped` are disjoint and together cover all pairs."""

    train: np.ndarray  # (n_train,) int64, sorted
    val: np.ndarray  # (n_val,) int64, sorted
    dropped: np.ndarray  # (n_gap,) int64: training-side pairs purged because they lie near a val block
    block_frames: int
    gap_frames: int
    val_fraction: float
    n_videos: int

    def summary(self) -> dict:
        return {
            "n_train": int(self.train.size),
            "n_val": int(self.val.size),
            "n_dropped": int(self.dropped.size),
            "block_frames": int(self.block_frames),
            "gap_frames": int(self.gap_frames),
            "val_fraction": float(self.val_fraction),
            "n_videos": int(self.n_videos),
        }


def time_block_split(
    video_ids: np.ndarray,
    frame_index: np.ndarray,
    val_fraction: float = 0.2,
    *,
    block_frames: int | None = None,
    block_seconds: float | None = None,
    fps: float | None = None,
    gap_frames: int | None = None,
    seed: int = 0,
) -> TimeBlockSplit:
    """Split pairs into train / validation by contiguous time blocks of each video.

    video_ids, frame_index: (N,) ints, one per pair (frames may be missing, e.g. frames without a face).
    Block k of a video holds its frames k * B .. (k + 1) * B - 1, with B = `block_frames`, or
    `block_seconds` * `fps`; default 48 frames (2 s at 24 fps).
    gap_frames: purge margin around validation blocks (default: a quarter block, at least 1 frame).
    In each video with n non-empty blocks, round(val_fraction * n) blocks (at least one when B >= 2) are chosen at
    evenly spaced positions with a seeded random phase. Raises DfmError when no block can be held out.
    """
    video_ids = np.asarray(video_ids).reshape(-1)
    frame_index = np.asarray(frame_index).reshape(-1)
    if video_ids.shape != frame_index.shape:
        raise DfmError(f"video_ids ({video_ids.size}) and frame_index ({frame_index.size}) differ in length")
    if not 0.0 < val_fraction < 1.0:
        raise DfmError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if block_frames is None:
        if block_seconds is not None:
            if fps is None or fps <= 0:
                raise DfmError("block_seconds needs the video frame rate (fps)")
            block_frames = max(1, int(round(block_seconds * fps)))
        else:
            block_frames = 48
    block_frames = int(block_frames)
    if block_frames < 1:
        raise DfmError(f"block_frames must be >= 1, got {block_frames}")
    gap = max(1, block_frames // 4) if gap_frames is None else int(gap_frames)
    if gap < 0:
        raise DfmError(f"gap_frames must be >= 0, got {gap_frames}")

    rng = np.random.default_rng(seed)
    n = video_ids.size
    is_val = np.zeros(n, dtype=bool)
    is_dropped = np.zeros(n, dtype=bool)
    videos = np.unique(video_ids)
    for vid in videos:
        sel = np.flatnonzero(video_ids == vid)
        frames = frame_index[sel].astype(np.int64)
        block = frames // block_frames  # block k = frames [k * block_frames, (k + 1) * block_frames)
        present = np.unique(block)  # blocks with at least one pair
        n_blocks = present.size
        if n_blocks < 2:
            continue
        n_val = min(n_blocks - 1, max(1, int(round(val_fraction * n_blocks))))
        phase = rng.random()
        chosen = present[np.unique(np.floor((np.arange(n_val) + phase) * n_blocks / n_val).astype(np.int64))]
        val_mask = np.isin(block, chosen)
        if not val_mask.any() or val_mask.all():
            continue
        is_val[sel] = val_mask
        if gap > 0:
            # distance (in frames) of each training frame to the nearest validation frame of this video
            vf = np.sort(frames[val_mask])
            tf = frames[~val_mask]
            pos = np.searchsorted(vf, tf)
            left = np.abs(tf - vf[np.clip(pos - 1, 0, vf.size - 1)])
            right = np.abs(vf[np.clip(pos, 0, vf.size - 1)] - tf)
            near = np.minimum(left, right) <= gap
            idx_train = sel[~val_mask]
            is_dropped[idx_train[near]] = True
    if not is_val.any():
        raise DfmError(
            f"too little data to hold out a validation block: every video is shorter than 2 blocks of "
            f"{block_frames} frames; add footage or use a smaller block"
        )
    train = np.flatnonzero(~is_val & ~is_dropped)
    if train.size == 0:
        raise DfmError("no training pairs left after the time-block split; add footage or use a smaller block")
    return TimeBlockSplit(
        train=train,
        val=np.flatnonzero(is_val),
        dropped=np.flatnonzero(is_dropped),
        block_frames=block_frames,
        gap_frames=gap,
        val_fraction=float(val_fraction),
        n_videos=int(videos.size),
    )
