"""The appearance pool built from chunked scans equals the one-pass FramePool.build (dfm.pipelines.pool_chunks)."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.io.video import iter_frames
from dfm.parallel import SerialExecutor, run_item
from dfm.pipelines.pool_chunks import pool_scan_items, scan_pool_chunked
from dfm.pipelines.render_chunks import RenderSetup
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


@pytest.fixture(scope="module")
def one_pass_pool(session, sample_video, pexels_track) -> FramePool:
    pool = FramePool.build(pexels_track, iter_frames(sample_video), np.arange(pexels_track.n_frames),
                           session.render_mesh(pexels_track), video=str(sample_video))
    assert len(pool) > 100 and pool.occlusion  # the real thing: a full pool with the occlusion detector on
    return pool


def test_chunked_pool_scan_equals_the_one_pass_build(session, sample_video, pexels_track, one_pass_pool) -> None:
    track = pexels_track
    mesh = session.render_mesh(track)
    plan, scans = scan_pool_chunked(_ThreeWorkers(), track, str(sample_video), mesh,
                                    str(session.store.path("ict-face-model")))
    assert len(scans) == 3
    _same_pool(one_pass_pool, FramePool.assemble(plan, track, mesh, scans, video=str(sample_video)))


def test_scans_that_make_their_own_plan_equal_the_one_pass_build(session, sample_video, pexels_track,
                                                                 one_pass_pool) -> None:
    """An edit submits the scan before this process has a mesh: each worker makes the plan from the track
    and its own mesh (plan=None), and this process assembles with the plan it makes meanwhile."""
    track = pexels_track
    items = pool_scan_items(track, str(sample_video), str(session.store.path("ict-face-model")), 3)
    assert len(items) == 3 and all(item.plan is None for item in items)
    scans = _ThreeWorkers().map(run_item, items, RenderSetup())
    mesh = session.render_mesh(track)
    plan = PoolPlan.for_track(track, np.arange(track.n_frames), mesh)
    _same_pool(one_pass_pool, FramePool.assemble(plan, track, mesh, scans, video=str(sample_video)))


def test_scan_of_a_range_reads_only_that_range(session, sample_video, pexels_track) -> None:
    track = pexels_track
    mesh = session.render_mesh(track)
    plan = PoolPlan.for_track(track, np.arange(track.n_frames), mesh)
    scan = scan_pool_frames(plan, track, iter_frames(sample_video, 100, 160), mesh, frame_range=(100, 160))
    assert scan.scored.min() >= 100 and scan.scored.max() < 160
    assert set(scan.entries) == {int(i) for i in plan.candidates if 100 <= i < 160}
    assert len(scan.features) == len(scan.scored)
