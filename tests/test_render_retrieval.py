"""Warp renderer, appearance part: frame pool, region retrieval, hysteresis, fallback, pool restriction."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.face.expressions import expression_vector
from dfm.render import synthetic as syn
from dfm.render.blend import laplacian_blend, mouth_cavity, ratio_gain
from dfm.render.pool import FramePool
from dfm.render.renderer import WarpRenderer
from dfm.render.retrieval import (NONE, SELF, HysteresisParams, HysteresisSelector, MatchParams, region_costs,
                                  rotation_angle_deg, self_cost)

H, W, SCALE = 240, 320, 9.0


def _open_smile(a: float) -> np.ndarray:
    return expression_vector(jawOpen=0.4 * a, mouthSmile_L=a, mouthSmile_R=a)


@pytest.fixture(scope="module")
def scene(mesh):
    """10 frames: 0-4 neutral, 5-9 open smiles of growing strength; the pool may use 5-9 only."""
    e = np.stack([np.zeros(53, np.float32)] * 5 + [_open_smile(a) for a in (0.2, 0.4, 0.6, 0.8, 1.0)])
    rot = np.stack([syn.rotation_xyz(0.0, 3.0 * np.sin(i), 0.0) for i in range(len(e))])
    track = syn.synthetic_track(e, W, H, SCALE, rotations=rot)
    return track, syn.scene_frames(mesh, mesh.neutral, track)


def test_costs_pick_the_closest_region_expression(mesh):
    brows = expression_vector(browInnerUp_L=1.0, browInnerUp_R=1.0)
    e = np.stack([expression_vector(jawOpen=0.1), expression_vector(jawOpen=0.5), expression_vector(jawOpen=0.9), brows + expression_vector(jawOpen=0.9)])
    track = syn.synthetic_track(e, W, H, SCALE)
    frames = [np.zeros((H, W, 3), np.uint8)] * len(e)
    pool = FramePool.build(track, frames, range(len(e)), mesh)
    rot = track.rotation[0]
    p = MatchParams()
    mouth = region_costs(pool, mesh, "mouth", expression_vector(jawOpen=0.55), rot, SCALE, p)
    assert int(np.argmin(mouth)) == 1
    upper = region_costs(pool, mesh, "upper", brows + expression_vector(jawOpen=0.1), rot, SCALE, p)
    assert int(np.argmin(upper)) == 3  # brows match, whatever the mouth does
    lower = region_costs(pool, mesh, "lower", brows + expression_vector(jawOpen=0.1), rot, SCALE, p)
    assert int(np.argmin(lower)) == 0
    # head pose counts: the same expression seen 30 degrees away costs more
    turned = region_costs(pool, mesh, "lower", expression_vector(jawOpen=0.5), syn.rotation_xyz(0, 30, 0), SCALE, p)
    same = region_costs(pool, mesh, "lower", expression_vector(jawOpen=0.5), rot, SCALE, p)
    assert turned[1] > same[1] + 0.1
    assert rotation_angle_deg(np.stack([syn.rotation_xyz(0, 30, 0)]), rot)[0] == pytest.approx(30.0, abs=1e-3)
    # the original itself is a candidate: no change costs nothing; pool entries pay the retrieval bias
    assert self_cost(mesh, "mouth", e[1], e[1], p) == pytest.approx(0.0)
    exact = region_costs(pool, mesh, "lower", e[1], rot, SCALE, p)
    assert exact[1] == pytest.approx(p.retrieval_bias, abs=1e-4)


def test_hysteresis_keeps_the_source_for_small_improvements():
    p = MatchParams(max_cost=1.0)
    sel = HysteresisSelector(HysteresisParams(switch_ratio=0.8, switch_frames=3, crossfade_frames=2))
    assert sel.update(np.array([0.20, 0.30]), 5.0, p) == [(0, 1.0)]
    for _ in range(20):  # entry 1 is slightly better: not enough to switch
        assert sel.update(np.array([0.20, 0.18]), 5.0, p) == [(0, 1.0)]
    # clearly better, but only for 2 frames: still no switch
    sel.update(np.array([0.20, 0.10]), 5.0, p)
    sel.update(np.array([0.20, 0.10]), 5.0, p)
    assert sel.update(np.array([0.20, 0.19]), 5.0, p) == [(0, 1.0)]
    # clearly better for 3 frames: switch with a cross-fade over 2 frames
    out = [sel.update(np.array([0.20, 0.10]), 5.0, p) for _ in range(5)]
    assert out[0] == [(0, 1.0)] and out[1] == [(0, 1.0)]
    assert [s for s, _ in out[2]] == [0, 1] and out[2][1][1] == pytest.approx(1 / 3)
    assert [s for s, _ in out[3]] == [0, 1] and out[3][1][1] == pytest.approx(2 / 3)
    assert out[4] == [(1, 1.0)]
    for o in out:
        assert sum(w for _, w in o) == pytest.approx(1.0)


def test_selector_prefers_self_and_falls_back():
    p = MatchParams(max_cost=0.3, far_cost=0.8)
    assert HysteresisSelector().update(np.array([0.2, 0.25]), 0.1, p) == [(SELF, 1.0)]
    # beyond max_cost but closer than the warp: the closest real frame is still used (not the cavity)
    assert HysteresisSelector().update(np.array([0.5, 0.6]), 0.9, p) == [(0, 1.0)]
    assert HysteresisSelector().update(np.array([0.85, 0.6]), 0.7, p) == [(1, 1.0)]
    # beyond far_cost nothing is a match: fallback (or SELF if that is a good match)
    assert HysteresisSelector().update(np.array([0.9, 1.0]), 2.0, p) == [(NONE, 1.0)]
    assert HysteresisSelector().update(np.array([0.9, 1.0]), 0.25, p) == [(SELF, 1.0)]
    assert HysteresisSelector().update(np.zeros(0), 0.9, p) == [(NONE, 1.0)]


def test_pool_uses_only_allowed_frames(mesh, scene):
    track, frames = scene
    allowed = [5, 7, 9]
    read: list[int] = []

    def reader(i: int) -> np.ndarray:
        read.append(i)
        assert i in allowed, f"frame {i} is not allowed"
        return frames[i]

    pool = FramePool.build(track, reader, allowed, mesh)
    assert sorted(read) == allowed
    assert set(pool.indices.tolist()) == set(allowed)
    streamed = FramePool.build(track, iter(frames), allowed, mesh)
    assert set(streamed.indices.tolist()) == set(allowed)
    capped = FramePool.build(track, frames, range(10), mesh, max_frames=4)
    assert len(capped) == 4


def _render_all(mesh, track, frames, pool, target, indices=range(5)):
    r = WarpRenderer(mesh, track, pool)
    outs = [r.render_frame(i, frames[i], target, 1.0) for i in indices]
    return outs, r.report


def test_poisoned_disallowed_frames_do_not_change_the_output(mesh, scene):
    track, frames = scene
    allowed = [6, 8]
    target = _open_smile(0.9)
    pool = FramePool.build(track, frames, allowed, mesh)
    outs, report = _render_all(mesh, track, frames, pool, target)
    used = {s for f in report.frames for c in f.sources.values() for s, _ in c if s >= 0}
    assert used and used <= set(allowed)
    poisoned = [f if i in allowed or i < 5 else np.full_like(f, 255) for i, f in enumerate(frames)]
    pool2 = FramePool.build(track, poisoned, allowed, mesh)
    outs2, _ = _render_all(mesh, track, poisoned, pool2, target)
    for a, b in zip(outs, outs2):
        np.testing.assert_array_equal(a, b)


def test_retrieved_mouth_beats_the_dark_cavity(mesh, scene):
    track, frames = scene
    target = track.expression[9]
    pool = FramePool.build(track, frames, range(5, 10), mesh)
    outs, report = _render_all(mesh, track, frames, pool, target, indices=[0])
    plain, plain_report = _render_all(mesh, track, frames, FramePool.empty(), target, indices=[0])
    assert report.frames[0].sources["mouth"][0][0] in range(5, 10)
    assert not report.frames[0].fallback["mouth"]
    assert plain_report.frames[0].fallback["mouth"] and plain_report.frames[0].cavity_fraction > 0.5
    # ground truth: the same head pose with the target expression, drawn directly
    truth = syn.render_scene(mesh, mesh.neutral, track.project(mesh.vertices(target), 0), H, W)
    box = (slice(95, 165), slice(115, 205))  # around the mouth
    err_retrieved = np.abs(outs[0][box].astype(np.float32) - truth[box]).mean()
    err_cavity = np.abs(plain[0][box].astype(np.float32) - truth[box]).mean()
    assert err_retrieved < err_cavity
    assert np.isfinite(outs[0].astype(np.float32)).all()


def test_blend_helpers():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 255, (64, 64, 3)).astype(np.float32)
    b = rng.uniform(0, 255, (64, 64, 3)).astype(np.float32)
    zero = np.zeros((64, 64), np.float32)
    np.testing.assert_allclose(laplacian_blend(a, b, zero), a, atol=1e-3)
    np.testing.assert_allclose(laplacian_blend(a, b, zero + 1.0), b, atol=1e-2)
    gain = ratio_gain(a * 0.5, a, np.ones((64, 64), bool), 4.0)
    assert np.allclose(gain, 0.5, atol=0.02)
    interior = np.zeros((40, 60), bool)
    interior[10:30, 10:50] = True
    cav = mouth_cavity((40, 60), interior, np.array([150.0, 80.0, 80.0]), 8.0)
    assert cav[20, 30].sum() < cav[11, 30].sum() < 150 + 80 + 80  # darker deep inside than near the lips
    assert (cav[~interior] == 0).all()


def test_pools_merge_across_videos(mesh, scene):
    track, frames = scene
    own = FramePool.build(track, frames, [5, 6], mesh)
    other = FramePool.build(track, frames, [9], mesh, video="collection/clip2.mp4")
    both = own.merged(other)
    assert len(both) == 3 and [f.video for f in both.frames] == ["", "", "collection/clip2.mp4"]
    r = WarpRenderer(mesh, track, other)
    r.render_frame(0, frames[0], track.expression[9], 1.0)
    rep = r.report.frames[-1]
    assert rep.sources["mouth"][0][0] == 9 and rep.source_videos["mouth"] == "collection/clip2.mp4"
