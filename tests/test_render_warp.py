"""Warp renderer, geometry part: dense backward flow, its fade-out, warping, weight 0 pass-through."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.face.expressions import expression_index as ei
from dfm.render import synthetic as syn
from dfm.render.flow import CropGrid, compute_flow, push_pull_fill
from dfm.render.mesh import PART_FACE, PART_MOUTH
from dfm.render.renderer import WarpRenderer
from dfm.render.warp import paste, remap, shift_map, warp_crop

H, W, SCALE = 240, 320, 9.0


def _smile(amount: float = 1.0, jaw: float = 0.0) -> np.ndarray:
    e = np.zeros(53, np.float32)
    e[ei("mouthSmile_L")] = e[ei("mouthSmile_R")] = amount
    e[ei("jawOpen")] = jaw
    return e


def _textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    import cv2

    noise = rng.uniform(0, 255, (h // 4, w // 4, 3)).astype(np.float32)
    return np.clip(cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def test_constant_shift_moves_the_texture():
    img = _textured(120, 160)
    out = remap(img, shift_map(120, 160, 3.0, -2.0))
    # output (x, y) shows input (x + 3, y - 2)
    np.testing.assert_array_equal(out[10:-10, 10:-10], img[8:-12, 13:-7])
    half = remap(img, shift_map(120, 160, 0.5, 0.0)).astype(np.float32)
    mean = (img[:, :-1].astype(np.float32) + img[:, 1:]) / 2
    assert np.abs(half[5:-5, 5:-6] - mean[5:-5, 5:-5]).max() <= 1.0


def test_flow_of_a_translated_mesh_is_the_translation(mesh):
    track = syn.synthetic_track(np.zeros((1, 53), np.float32), W, H, SCALE)
    original = track.project(mesh.vertices(track.expression[0]), 0)
    target = original.copy()
    target[:, 0] += 4.0
    target[:, 1] -= 3.0
    flow = compute_flow(mesh, original, target, (H, W), 15 * SCALE, margin=0.25, scale=0.5, max_side=160)
    d = flow.map_work - flow.grid.work_positions()
    inside = flow.coverage
    assert inside.mean() > 0.3
    np.testing.assert_allclose(d[inside][:, 0], -4.0, atol=1e-3)
    np.testing.assert_allclose(d[inside][:, 1], 3.0, atol=1e-3)
    assert np.isfinite(flow.map_work).all()
    # warping a frame of the original mesh reproduces the translated face
    img = syn.render_scene(mesh, mesh.neutral, original, H, W)
    moved = syn.render_scene(mesh, mesh.neutral, target, H, W)
    crop = warp_crop(img, flow.full_map())
    ys, xs = flow.grid.slices
    face = flow.grid.upsample(flow.coverage.astype(np.uint8)).astype(bool)
    import cv2

    face = cv2.erode(face.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    err = np.abs(crop.astype(np.float32) - moved[ys, xs]).mean(-1)
    assert err[face].mean() < 1.0


def test_flow_fades_to_zero_outside_the_margin(mesh):
    track = syn.synthetic_track(np.zeros((1, 53), np.float32), W, H, SCALE)
    original = track.project(mesh.vertices(np.zeros(53, np.float32)), 0)
    target = track.project(mesh.vertices(_smile(1.0, 0.4)), 0)
    face_px = 15 * SCALE
    flow = compute_flow(mesh, original, target, (H, W), face_px, margin=0.2, scale=0.5, max_side=160)
    d = np.linalg.norm(flow.map_work - flow.grid.work_positions(), axis=-1)
    assert np.isfinite(flow.map_work).all()
    assert d[flow.coverage].max() > 3.0  # the smile moves the mouth corners
    import cv2

    dist = cv2.distanceTransform((~flow.coverage).astype(np.uint8), cv2.DIST_L2, 5) / flow.grid.sx
    assert (d[dist > 0.2 * face_px + 2] == 0).all()
    assert (flow.falloff[dist > 0.2 * face_px + 2] == 0).all()
    # outside the face the displacement never exceeds what the face border has
    border = flow.coverage & (cv2.dilate((~flow.coverage).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    assert d[~flow.coverage].max() <= d[border].max() + 1e-3


def test_push_pull_fill_keeps_known_values_and_is_smooth():
    v = np.zeros((40, 50, 2), np.float32)
    m = np.zeros((40, 50), np.float32)
    v[10:20, 10:20] = (3.0, -1.0)
    m[10:20, 10:20] = 1.0
    f = push_pull_fill(v, m)
    np.testing.assert_allclose(f[10:20, 10:20], v[10:20, 10:20], atol=1e-5)
    assert np.isfinite(f).all()
    np.testing.assert_allclose(f[30, 40], (3.0, -1.0), atol=1e-3)  # constant data extends as a constant


def test_mouth_opening_is_flagged_disoccluded(mesh):
    track = syn.synthetic_track(np.zeros((1, 53), np.float32), W, H, SCALE)
    original = track.project(mesh.vertices(np.zeros(53, np.float32)), 0)
    target = track.project(mesh.vertices(_smile(0.5, 0.5)), 0)
    flow = compute_flow(mesh, original, target, (H, W), 15 * SCALE)
    mouth = flow.part == PART_MOUTH
    assert mouth.sum() > 20
    assert flow.disoccluded.sum() > 0.8 * mouth.sum()  # the closed original mouth shows none of it
    same = compute_flow(mesh, target, target, (H, W), 15 * SCALE)
    assert same.disoccluded.sum() <= 0.12 * (same.part == PART_MOUTH).sum()  # thin corners only
    assert (flow.part[flow.coverage] >= PART_FACE).all()


@pytest.mark.parametrize("smile, jaw", [(0.5, 0.5), (0.0, 0.9), (1.0, 0.0)])
def test_mouth_only_geometry_is_the_full_one_at_the_mouth(mesh, smile, jaw):
    """WarpRenderer.advance reads the inner mouth and its disocclusion from a raster of the mouth's window
    only; the source choice it replays must see exactly what the render's full raster sees."""
    from dfm.render.flow import flow_geometry

    track = syn.synthetic_track(np.zeros((1, 53), np.float32), W, H, SCALE)
    original = track.project(mesh.vertices(_smile(0.2, 0.1)), 0)
    target = track.project(mesh.vertices(_smile(smile, jaw)), 0)
    full = flow_geometry(mesh, original, target, (H, W), 15 * SCALE)
    window = flow_geometry(mesh, original, target, (H, W), 15 * SCALE, mouth_only=True)
    assert window.grid == full.grid
    np.testing.assert_array_equal(window.part == PART_MOUTH, full.part == PART_MOUTH)
    np.testing.assert_array_equal(window.disoccluded, full.disoccluded)
    assert (window.part == PART_FACE).sum() < 0.5 * (full.part == PART_FACE).sum()  # it did skip the rest


def test_expression_warp_approximates_the_rendered_target(mesh):
    e0, e1 = np.zeros(53, np.float32), _smile(1.0)
    e1[ei("browInnerUp_L")] = e1[ei("browInnerUp_R")] = 1.0
    track = syn.synthetic_track(np.stack([e0, e1]), W, H, SCALE)
    frames = syn.scene_frames(mesh, mesh.neutral, track)
    r = WarpRenderer(mesh, track, None, regions=(), sigma_expression=0.0, sigma_pose=0.0)
    out = r.render_frame(0, frames[0], e1, 1.0)
    rep = r.report.frames[-1]
    assert rep.edited and rep.max_displacement_px > 2.0
    box = (slice(60, 200), slice(100, 220))
    before = np.abs(frames[0][box].astype(np.float32) - frames[1][box]).mean()
    after = np.abs(out[box].astype(np.float32) - frames[1][box]).mean()
    assert after < 0.5 * before


@pytest.mark.parametrize("shapes", [("noseSneer_L", "noseSneer_R"), ("mouthUpperUp_L", "mouthUpperUp_R"),
                                    ("browDown_L", "browDown_R"), ("mouthPress_L", "mouthPress_R")])
def test_anger_and_disgust_shapes_move_the_face(mesh, shapes):
    """AU9 nose wrinkler, AU10 upper-lip raiser, AU4 brow lowerer, AU23/24 lip press: the warp moves the
    nose, upper lip, brows and lips as the rendered target does (the re-fit of such small motions on a
    256-px face is weak, so this checks the renderer itself)."""
    e0, e1 = np.zeros(53, np.float32), np.zeros(53, np.float32)
    for n in shapes:
        e1[ei(n)] = 0.8
    track = syn.synthetic_track(np.stack([e0, e1]), W, H, SCALE)
    frames = syn.scene_frames(mesh, mesh.neutral, track)
    r = WarpRenderer(mesh, track, None, regions=(), sigma_expression=0.0, sigma_pose=0.0)
    out = r.render_frame(0, frames[0], e1, 1.0)
    assert r.report.frames[-1].max_displacement_px > 1.5, shapes
    box = (slice(40, 220), slice(90, 230))
    before = np.abs(frames[0][box].astype(np.float32) - frames[1][box]).mean()
    after = np.abs(out[box].astype(np.float32) - frames[1][box]).mean()
    # (the raised upper lip and the press also change what the inner mouth shows, which a pure warp without
    # retrieval cannot draw: that share of the difference stays)
    assert before > 0.3 and after < 0.8 * before, (shapes, before, after)


def test_weight_zero_returns_the_input_object(mesh):
    e = np.zeros((3, 53), np.float32)
    track = syn.synthetic_track(e, W, H, SCALE)
    frames = [syn.background(H, W, seed=i) for i in range(3)]
    r = WarpRenderer(mesh, track, None)
    target = _smile(1.0, 0.3)
    assert r.render_frame(0, frames[0], target, 0.0) is frames[0]
    outs = list(r.render_video(iter(frames), np.stack([target] * 3), np.array([0.0, 1.0, 0.0])))
    assert outs[0] is frames[0] and outs[2] is frames[2]
    assert outs[1] is not frames[1]
    assert [f.edited for f in r.report.frames[-3:]] == [False, True, False]
    # an edited frame keeps every pixel outside the fade-out margin bit-exact
    flow_box = r.report.frames[-2]
    assert flow_box.edited
    diff = np.any(outs[1] != frames[1], axis=-1)
    ys, xs = np.nonzero(diff)
    assert diff.any()
    assert xs.min() > 5 and xs.max() < W - 5  # a face in the middle leaves the frame's sides untouched


def test_paste_with_zero_alpha_keeps_exact_pixels():
    img = _textured(60, 80)
    grid = CropGrid.make((10, 10, 50, 40), 0.5, 100)
    crop = np.full((30, 40, 3), 7, np.uint8)
    alpha = np.zeros((30, 40), np.float32)
    alpha[5:10, 5:10] = 1.0
    out = paste(img, crop, grid, alpha)
    changed = np.any(out != img, axis=-1)
    assert changed[15:20, 15:20].all()
    changed[15:20, 15:20] = False
    assert not changed.any()


class _Frame:
    """A stand-in for dfm.io.video.VideoFrame: index, image, with_image."""

    def __init__(self, index: int, image: np.ndarray):
        self.index, self.image = index, image

    def with_image(self, image: np.ndarray) -> "_Frame":
        return _Frame(self.index, image)


def test_render_video_passes_frame_objects_and_keep_mask(mesh):
    e = np.zeros((3, 53), np.float32)
    track = syn.synthetic_track(e, W, H, SCALE)
    images = syn.scene_frames(mesh, mesh.neutral, track)
    frames = [_Frame(i, img) for i, img in enumerate(images)]
    r = WarpRenderer(mesh, track, None)
    targets = np.tile(_smile(1.0, 0.3), (3, 1))
    outs = list(r.render_video(iter(frames), targets, np.array([0.0, 1.0, 0.5])))
    assert outs[0] is frames[0]
    assert isinstance(outs[1], _Frame) and outs[1].index == 1 and outs[1] is not frames[1]
    assert np.any(outs[1].image != images[1]) and np.any(outs[2].image != images[2])
    # half weight moves the face about half as far
    rep = r.report.frames
    assert 0.3 < rep[2].max_displacement_px / rep[1].max_displacement_px < 0.7
    summary = r.report.summary()
    assert summary["frames"] == 3 and summary["edited"] == 2
    # a keep mask holds the input pixels exactly where it is 1
    keep = np.zeros((H, W), bool)
    keep[: H // 2] = True
    out = r.render_frame(1, images[1], targets[1], 1.0, keep_mask=keep)
    np.testing.assert_array_equal(out[: H // 2], images[1][: H // 2])
    assert np.any(out[H // 2:] != images[1][H // 2:])


def test_eyes_keep_the_original_gaze_and_blinks_and_the_lids_follow(mesh):
    """Blink and gaze in the target are ignored (the eyes keep the original's); the lid aperture follows
    (the plan gives it as a difference on top of the original lids, dfm.edits.eyes)."""
    e0 = np.zeros(53, np.float32)
    track = syn.synthetic_track(e0[None], W, H, SCALE)
    image = syn.scene_frames(mesh, mesh.neutral, track)[0]
    target = e0.copy()
    for name in ("eyeBlink_L", "eyeBlink_R", "eyeLookUp_L", "eyeLookUp_R"):
        target[ei(name)] = 1.0
    r = WarpRenderer(mesh, track, None)
    out = r.render_frame(0, image, target, 1.0)
    assert r.report.frames[-1].max_displacement_px < 1e-3
    np.testing.assert_array_equal(out, image)
    # wider lids: the lids move and the eye opening samples the original's eye, stretched
    target[ei("eyeWide_L")] = target[ei("eyeWide_R")] = 1.0
    original = track.project(mesh.vertices(e0), 0)
    wide = compute_flow(mesh, original, track.project(mesh.vertices(r.target_expression(0, target, 1.0)), 0),
                        (H, W), 15 * SCALE)
    from dfm.render.mesh import PART_EYE

    d = np.linalg.norm(wide.map_work - wide.grid.work_positions(), axis=-1)
    assert d[wide.part == PART_FACE].max() > 0.3 and d[wide.part == PART_EYE].max() > 0.1
    target[ei("eyeWide_L")] = target[ei("eyeWide_R")] = 0.0
    # brows do move, the eyeballs stay where they are
    target[ei("browInnerUp_L")] = target[ei("browInnerUp_R")] = 1.0
    original = track.project(mesh.vertices(e0), 0)
    flow = compute_flow(mesh, original, track.project(mesh.vertices(r.target_expression(0, target, 1.0)), 0),
                        (H, W), 15 * SCALE)
    d = np.linalg.norm(flow.map_work - flow.grid.work_positions(), axis=-1)
    from dfm.render.mesh import PART_EYE

    assert d[flow.part == PART_FACE].max() > 2.0
    assert d[flow.part == PART_EYE].max() < 0.05
