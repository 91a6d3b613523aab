"""The appearance pool built from chunked scans equals the one-pass FramePool.build (dfm.pipelines.pool_chunks)."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.io.video import iter_frames
from dfm.parallel import SerialExecutor
from dfm.pipelines.pool_chunks import scan_pool_chunked
from dfm.render.pool import FramePool, PoolPlan, scan_pool_frames

pytestmark = pytest.mark.integration


class _ThreeWorkers(SerialExecutor):
    """Runs in this process but plans like a pool of three (three scan ranges), and hands the scans back
    last first: the assembly must not depend on their order."""

    n_workers = 3

    def map(self, task, items, setup, **kw):
        return super().map(task, list(reversed(items)), setup, **kw)


def _same_pool(a: FramePool, b: FramePool) -> None:
    assert [f.index for f in a.frames] == [f.index for f in b.frames]
    for fa, fb in zip(a.frames, b.frames):
        np.testing.assert_array_equal(fa.crop, fb.crop)
        assert fa.origin == fb.origin and fa.crop_scale == fb.crop_scale
    assert a.occlusion.keys() == b.occlusion.keys()
    for k in a.occlusion:
        oa, ob = a.occlusion[k], b.occlusion[k]
        np.testing.assert_array_equal(oa.frames, ob.frames)
        np.testing.assert_array_equal(oa.excluded, ob.excluded)
        np.testing.assert_array_equal(oa.z, ob.z)
        np.testing.assert_array_equal(oa.share, ob.share)


def test_chunked_pool_scan_equals_the_one_pass_build(session, sample_video, pexels_track) -> None:
    track = pexels_track
    mesh = session.render_mesh(track)
    whole = FramePool.build(track, iter_frames(sample_video), np.arange(track.n_frames), mesh, video=str(sample_video))
    plan, scans = scan_pool_chunked(_ThreeWorkers(), track, str(sample_video), mesh,
                                    str(session.store.path("ict-face-model")))
    assert len(scans) == 3
    chunked = FramePool.assemble(plan, track, mesh, scans, video=str(sample_video))
    assert len(whole) > 100 and whole.occlusion  # the real thing: a full pool with the occlusion detector on
    _same_pool(whole, chunked)


def test_scan_of_a_range_reads_only_that_range(session, sample_video, pexels_track) -> None:
    track = pexels_track
    mesh = session.render_mesh(track)
    plan = PoolPlan.for_track(track, np.arange(track.n_frames), mesh)
    scan = scan_pool_frames(plan, track, iter_frames(sample_video, 100, 160), mesh, frame_range=(100, 160))
    assert scan.scored.min() >= 100 and scan.scored.max() < 160
    assert set(scan.entries) == {int(i) for i in plan.candidates if 100 <= i < 160}
    assert len(scan.features) == len(scan.scored)
