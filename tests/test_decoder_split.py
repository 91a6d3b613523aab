"""Time-block split: contiguous validation blocks per video, no training frame next to a validation frame."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.decoder import time_block_split
from dfm.errors import DfmError


def _frames(n_videos=3, n=600, missing=0.05, seed=0):
    rng = np.random.default_rng(seed)
    vids, frames = [], []
    for v in range(n_videos):
        keep = np.flatnonzero(rng.random(n) >= missing)  # frames without a face are absent
        vids.append(np.full(keep.size, v))
        frames.append(keep)
    # shuffled order: the split must not depend on the order of the pairs
    vids, frames = np.concatenate(vids), np.concatenate(frames)
    perm = rng.permutation(vids.size)
    return vids[perm], frames[perm]


def test_split_partitions_and_is_contiguous_without_leakage():
    vids, frames = _frames()
    sp = time_block_split(vids, frames, 0.2, block_frames=50, gap_frames=10)
    all_idx = np.concatenate([sp.train, sp.val, sp.dropped])
    assert np.array_equal(np.sort(all_idx), np.arange(vids.size))  # disjoint and complete
    assert 0.1 < sp.val.size / vids.size < 0.3
    for v in np.unique(vids):
        fv = frames[sp.val][vids[sp.val] == v]
        ft = frames[sp.train][vids[sp.train] == v]
        assert fv.size and ft.size  # every video contributes to both sides
        # validation = whole blocks: every block touched by a val frame is entirely val
        vb = np.unique(fv // 50)
        in_v = frames[vids == v]
        assert np.array_equal(np.sort(in_v[np.isin(in_v // 50, vb)]), np.sort(fv))
        # no training frame within the gap of a validation frame of the same video
        dist = np.abs(ft[:, None] - fv[None, :]).min(axis=1)
        assert dist.min() > 10
    # purged frames are exactly the non-val frames within the gap
    assert sp.dropped.size > 0


def test_split_is_deterministic_and_seeded():
    vids, frames = _frames()
    a = time_block_split(vids, frames, block_frames=48)
    b = time_block_split(vids, frames, block_frames=48)
    c = time_block_split(vids, frames, block_frames=48, seed=5)
    assert np.array_equal(a.val, b.val)
    assert not np.array_equal(a.val, c.val)


def test_split_block_seconds_needs_fps_and_small_data_fails_clearly():
    vids, frames = _frames(n_videos=1, n=200)
    sp = time_block_split(vids, frames, block_seconds=2.0, fps=25)
    assert sp.block_frames == 50 and sp.gap_frames == 12
    with pytest.raises(DfmError, match="frame rate"):
        time_block_split(vids, frames, block_seconds=2.0)
    with pytest.raises(DfmError, match="too little data"):
        time_block_split(np.zeros(30), np.arange(30), block_frames=48)
