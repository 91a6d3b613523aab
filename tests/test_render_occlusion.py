"""Warp renderer: decoded (in-between) targets get a real mouth, and occluders in front of the face are
neither lent by the pool nor painted over (synthetic scenes; plus one real-clip check)."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.face.expressions import expression_vector
from dfm.render import synthetic as syn
from dfm.render.flow import compute_flow
from dfm.render.mesh import PART_MOUTH
from dfm.render.occlusion import OcclusionParams, keep_mask, project_points, sample_points
from dfm.render.pool import FramePool
from dfm.render.renderer import WarpRenderer
from dfm.render.retrieval import MatchParams, region_costs

H, W, SCALE = 240, 320, 9.0


def _laugh(a: float) -> np.ndarray:
    return expression_vector(jawOpen=0.45 * a, mouthSmile_L=a, mouthSmile_R=a, mouthLowerDown_L=0.6 * a, mouthLowerDown_R=0.6 * a)


def test_decoded_in_between_target_gets_a_retrieved_mouth_not_the_cavity(mesh):
    """A decoder's target lies BETWEEN the person's real expressions (a milder, differently shaped smile
    than any laugh of the pool): the closest laugh, re-warped to the target opening, must win over the
    dark cavity even though no pool frame is a close match."""
    e = np.stack([np.zeros(53, np.float32)] * 3 + [_laugh(1.0), _laugh(0.95)])
    track = syn.synthetic_track(e, W, H, SCALE)
    frames = syn.scene_frames(mesh, mesh.neutral, track)
    pool = FramePool.build(track, frames, [3, 4], mesh)
    target = expression_vector(mouthSmile_L=0.7, mouthSmile_R=0.62, jawOpen=0.3, mouthLowerDown_R=0.45, mouthLowerDown_L=0.3,
                   mouthShrugUpper=0.2, browOuterUp_L=0.5)
    p = MatchParams()
    costs = region_costs(pool, mesh, "mouth", target, track.rotation[0], SCALE, p)
    assert costs.min() > p.max_cost  # no close match: the old rule fell back to the cavity here
    r = WarpRenderer(mesh, track, pool)
    out = r.render_frame(0, frames[0], target, 1.0)
    rep = r.report.frames[-1]
    assert rep.sources["mouth"][0][0] in (3, 4)
    assert not rep.fallback["mouth"] and rep.cavity_fraction < 0.05
    plain = WarpRenderer(mesh, track, FramePool.empty())
    cav = plain.render_frame(0, frames[0], target, 1.0)
    assert plain.report.frames[-1].cavity_fraction > 0.5
    # inside the target's inner mouth the retrieved teeth are bright, the cavity is dark
    import cv2

    flow = compute_flow(mesh, track.project(mesh.vertices(e[0]), 0),
                        track.project(mesh.vertices(r.target_expression(0, target, 1.0)), 0), (H, W), 15 * SCALE)
    inner = flow.grid.upsample((flow.part == PART_MOUTH).astype(np.uint8), cv2.INTER_NEAREST)
    inner = cv2.erode(inner, np.ones((3, 3), np.uint8)) > 0
    assert inner.sum() > 30
    ys, xs = flow.grid.slices
    assert out[ys, xs][inner].astype(np.float32).mean() > cav[ys, xs][inner].astype(np.float32).mean() + 30


def _occluded_scene(mesh, n: int = 96, hand: range = range(40, 52)):
    """n frames of a person whose smile and head pose vary; a flat 'hand' patch covers the left cheek
    and mouth corner in the frames `hand`."""
    t = np.arange(n)
    e = np.stack([_laugh(0.5 + 0.5 * np.sin(i / 5.0) ** 2) if i % 3 else expression_vector(browInnerUp_L=0.3 * np.sin(i)) for i in t])
    rot = np.stack([syn.rotation_xyz(2 * np.sin(i / 7), 6 * np.sin(i / 9), 0.0) for i in t])
    track = syn.synthetic_track(e, W, H, SCALE, rotations=rot)
    frames = syn.scene_frames(mesh, mesh.neutral, track)
    boxes = {}
    for i in hand:
        cx, cy = track.translation[i, 0], track.translation[i, 1] - 2.0 * SCALE  # nose bridge
        x0, y0 = int(cx - 4.5 * SCALE), int(cy + 2.0 * SCALE)
        box = (slice(y0, y0 + int(4.0 * SCALE)), slice(x0, x0 + int(4.0 * SCALE)))
        frames[i] = frames[i].copy()
        frames[i][box] = (225, 190, 165)
        boxes[i] = box
    return track, frames, boxes


def test_occluded_frames_stay_out_of_the_pool_and_keep_their_occluder(mesh):
    track, frames, boxes = _occluded_scene(mesh)
    pool = FramePool.build(track, frames, range(track.n_frames), mesh)
    assert len(pool) > 20
    hand = set(boxes)
    assert not hand & set(pool.indices.tolist()), "a frame with a hand entered the pool"
    vo = pool.occlusion[""]
    assert set(pool.excluded[""].tolist()) >= hand
    share = dict(zip(vo.frames.tolist(), vo.share.tolist()))
    assert min(share[i] for i in hand) > max(share[i] for i in range(track.n_frames) if abs(i - 46) > 12)
    # rendering an occluded frame: the patch's pixels are kept exactly, the rest of the face is edited
    r = WarpRenderer(mesh, track, pool)
    i = 45
    target = _laugh(1.0)
    out = r.render_frame(i, frames[i], target, 1.0)
    rep = r.report.frames[-1]
    assert rep.occlusion > 0.04 and rep.occluded_px > 0
    inner = tuple(slice(s.start + 3, s.stop - 3) for s in boxes[i])
    kept = (out[inner] == frames[i][inner]).all(axis=-1)
    # the mask is built from skin sample points (none on the lips), so the patch's rim over the lip
    # corner may be edited; the patch itself stays
    assert kept.mean() > 0.9 and np.abs(out[inner].astype(np.float32) - frames[i][inner]).mean() < 2.0
    assert np.any(out != frames[i])
    assert r.report.summary()["occluded_frames"] == 1
    # without the detector the renderer paints over the patch
    bare = WarpRenderer(mesh, track, pool, occlusion=False)
    painted = bare.render_frame(i, frames[i], target, 1.0)[inner]
    assert (painted == frames[i][inner]).all(axis=-1).mean() < 0.5


def test_clean_video_loses_no_pool_frames_and_keeps_no_pixels(mesh):
    track, frames, _ = _occluded_scene(mesh, hand=range(0))
    pool = FramePool.build(track, frames, range(track.n_frames), mesh)
    assert len(pool) == track.n_frames and not pool.excluded
    r = WarpRenderer(mesh, track, pool)
    for i in (5, 25):
        r.render_frame(i, frames[i], _laugh(1.0), 1.0)
        assert r.report.frames[-1].occluded_px == 0
    # the detector can be switched off; short videos have no model
    assert not FramePool.build(track, frames, range(track.n_frames), mesh, occlusion=False).occlusion
    assert not FramePool.build(track, frames, range(10), mesh).occlusion


def test_keep_mask_covers_the_occluded_points_region(mesh):
    pts, nb = sample_points(mesh)
    assert len(pts) > 200 and nb.shape == (len(pts), 7)
    track = syn.synthetic_track(np.zeros((1, 53), np.float32), W, H, SCALE)
    xy = project_points(mesh, pts, track.expression[0], track.rotation[0], track.translation[0], SCALE)
    left = xy[:, 0] < np.median(xy[:, 0]) - 20
    m = keep_mask(xy, left, (0, 0, W, H), SCALE, OcclusionParams())
    assert m is not None and m.shape == (H, W)
    inside = np.rint(xy[left]).astype(int)
    assert (m[inside[:, 1], inside[:, 0]] == 1.0).all()
    right = np.rint(xy[xy[:, 0] > np.median(xy[:, 0]) + 20]).astype(int)
    assert (m[right[:, 1], right[:, 0]] == 0.0).mean() > 0.9
    assert keep_mask(xy, np.zeros(len(xy), bool), (0, 0, W, H), SCALE) is None


@pytest.mark.integration
def test_pexels_decoded_happy_over_crying_and_the_hand(session, sample_video, pexels_track):
    """The real clip: happy:high decoded by the video's own decoder over crying frames gets a retrieved
    mouth (not the cavity), no frame with the hand (about 57-228) is lent, and the hand frames keep the hand."""
    from dfm.affect.regions import region_for
    from dfm.io.video import read_frame

    track = pexels_track
    target = np.asarray(session.video_decoder(track).predict(region_for("happy", "high").center()[None]))[0]
    pool = session.frame_pool(sample_video, track)
    used = set(pool.indices.tolist())
    assert not used & set(range(60, 220))
    r = WarpRenderer(session.render_mesh(track), track, pool)
    for i in (20, 40):
        r.reset()
        r.render_frame(i, np.asarray(read_frame(sample_video, i).image), target, 1.0)
        rep = r.report.frames[-1]
        assert rep.sources["mouth"][0][0] >= 0, rep.sources
        assert rep.cavity_fraction < 0.1 and not rep.fallback["mouth"]
    for i in (80, 110):
        r.render_frame(i, np.asarray(read_frame(sample_video, i).image), target, 1.0)
        assert r.report.frames[-1].occluded_px > 2000


def test_held_projection_bends_the_motion_into_a_kept_occluder() -> None:
    """Beside kept pixels the target is held: no motion at the occluder, the full motion far from it, and a
    ramp long enough that the held displacement never changes faster than the distance (no fold)."""
    from dfm.render.flow import CropGrid
    from dfm.render.renderer import held_projection

    grid = CropGrid.make((0, 0, 200, 100), 0.5, 200)  # a 100 x 50 work grid over a 200 x 100 crop
    keep = np.zeros((100, 200), np.float32)
    keep[:, :40] = 1.0  # an occluder over the crop's left fifth
    xs = np.arange(0.0, 200.0, 2.0)
    original = np.stack([xs, np.full_like(xs, 50.0), np.zeros_like(xs)], 1).astype(np.float32)
    target = original.copy()
    target[:, 1] -= 12.0  # everything moves 12 px up (a brow raise)

    held = held_projection(original, target, keep, grid, hold_px=10.0)
    moved = original[:, 1] - held[:, 1]
    assert np.all(moved[xs < 38] < 0.5)  # under the occluder: (nearly) held
    assert np.allclose(moved[xs > 40 + 2 * 12 + 2], 12.0, atol=1e-4)  # beyond the ramp (2 x the motion): all of it
    assert np.all(np.diff(moved) >= -1e-4)  # the motion grows away from the occluder ...
    assert np.all(np.diff(moved) / np.diff(xs) < 1.0)  # ... slower than the distance: the warp cannot fold
    assert held_projection(original, target, np.zeros_like(keep), grid, 10.0) is None  # nothing kept: no hold
