"""Warp renderer, temporal part: jitter measure, geometry smoothing, stable output over a sequence."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.face.expressions import expression_index as ei
from dfm.render import synthetic as syn
from dfm.render.renderer import WarpRenderer
from dfm.render.temporal import edit_jitter, face_jitter, smooth_geometry

H, W, SCALE = 240, 320, 9.0


def test_face_jitter_measures_change_inside_the_mask():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[:5] = 30  # changes only in the top half
    top = np.zeros((10, 10), bool)
    top[:5] = True
    assert face_jitter([a, a, a], [None] * 3) == 0.0
    assert face_jitter([a, b], [top, top]) == pytest.approx(30.0)
    assert face_jitter([a, b], [~top, ~top]) == 0.0
    assert face_jitter([a, b, a], [None] * 3) == pytest.approx(15.0)
    # a constant edit on a changing video has no edit-layer jitter
    assert edit_jitter([a, b], [a + 5, b + 5], [None] * 2) == 0.0
    assert edit_jitter([a, a], [a, b], [top, top]) == pytest.approx(30.0)


def test_smoothing_reduces_fit_noise_and_skips_invalid_frames():
    rng = np.random.default_rng(0)
    t = 60
    e = np.full((t, 53), 0.3, np.float32) + rng.normal(0, 0.05, (t, 53)).astype(np.float32)
    track = syn.synthetic_track(np.clip(e, 0, 1), W, H, SCALE)
    track.translation[:, :2] += rng.normal(0, 1.0, (t, 2)).astype(np.float32)
    track.valid[10] = False
    track.expression[10] = 0.0
    g = smooth_geometry(track, 1.5, 1.5)
    assert np.diff(g.expression[20:], axis=0).std() < 0.6 * np.diff(track.expression[20:], axis=0).std()
    assert np.diff(g.translation[20:, :2], axis=0).std() < 0.6 * np.diff(track.translation[20:, :2], axis=0).std()
    assert g.expression[9].mean() > 0.2  # the invalid frame's zeros did not leak into its neighbours
    np.testing.assert_array_equal(g.expression[10], 0.0)
    for r in g.rotation:
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-5)
    raw = smooth_geometry(track, 0.0, 0.0)
    np.testing.assert_array_equal(raw.expression, track.expression)


def test_constant_target_output_is_not_more_jittery_than_input(mesh):
    """A face whose fitted expression is noisy, edited to a constant smile: the output must not shake."""
    rng = np.random.default_rng(3)
    t = 8
    e_true = np.zeros((t, 53), np.float32)
    e_true[:, ei("mouthSmile_L")] = e_true[:, ei("mouthSmile_R")] = 0.1
    rot = np.stack([syn.rotation_xyz(0.0, 0.3 * i, 0.0) for i in range(t)])  # slow head turn
    truth = syn.synthetic_track(e_true, W, H, SCALE, rotations=rot)
    frames = syn.scene_frames(mesh, mesh.neutral, truth)
    noisy = syn.synthetic_track(np.clip(e_true + rng.normal(0, 0.08, e_true.shape).astype(np.float32), 0, 1),
                                W, H, SCALE, rotations=rot)
    target = np.zeros(53, np.float32)
    target[ei("mouthSmile_L")] = target[ei("mouthSmile_R")] = 0.8
    targets, weights = np.tile(target, (t, 1)), np.ones(t, np.float32)
    face = np.zeros((H, W), bool)
    face[70:200, 110:210] = True
    masks = [face] * t
    jitter_in = face_jitter(frames, masks)
    smooth = list(WarpRenderer(mesh, noisy, None, regions=(), sigma_expression=2.0).render_video(frames, targets, weights))
    rough = list(WarpRenderer(mesh, noisy, None, regions=(), sigma_expression=0.0).render_video(frames, targets, weights))
    assert face_jitter(smooth, masks) < face_jitter(rough, masks)
    assert face_jitter(smooth, masks) < 1.5 * jitter_in + 1.0


def test_targets_planned_on_the_original_warp_by_their_offset_alone(mesh):
    """A talking face (its jaw moves) with a noisy fit, edited by an offset on the original jaw (speech kept):
    re-based onto the renderer's smoothed original, the edit layer stays steady; taken as they are, the
    targets shake it by the fit's difference from the smoothed original."""
    rng = np.random.default_rng(4)
    t, jaw = 10, ei("jawOpen")
    e_true = np.zeros((t, 53), np.float32)
    e_true[:, jaw] = 0.25 + 0.1 * np.sin(np.arange(t) * 0.8)
    truth = syn.synthetic_track(e_true, W, H, SCALE)
    frames = syn.scene_frames(mesh, mesh.neutral, truth)
    noisy = syn.synthetic_track(np.clip(e_true + rng.normal(0, 0.08, e_true.shape).astype(np.float32), 0, 1),
                                W, H, SCALE)
    targets = noisy.expression.copy()
    targets[:, jaw] = np.clip(targets[:, jaw] + 0.15, 0, 1)  # the emotion's jaw drop on the kept articulation
    share, weights = np.ones((t, 53), np.float32), np.ones(t, np.float32)
    face = np.zeros((H, W), bool)
    face[70:200, 110:210] = True
    masks = [face] * t
    renderer = WarpRenderer(mesh, noisy, None, regions=(), sigma_expression=2.0)
    rebased = renderer.rebased_targets(targets, share)
    np.testing.assert_allclose(rebased[:, jaw], np.clip(renderer.geometry.expression[:, jaw] + 0.15, 0, 1), atol=1e-6)
    np.testing.assert_array_equal(renderer.rebased_targets(targets, np.zeros_like(share)), targets)  # owned: as is
    np.testing.assert_allclose(renderer.rebased_targets(targets[3:5], share[3:5], first=3), rebased[3:5], atol=1e-7)
    steady = list(renderer.render_video(frames, rebased, weights))
    shaken = list(WarpRenderer(mesh, noisy, None, regions=(), sigma_expression=2.0).render_video(frames, targets, weights))
    assert edit_jitter(frames, steady, masks) < 0.75 * edit_jitter(frames, shaken, masks)  # measured 0.57


def test_renderer_targets_rebase_through_a_warp_inside_and_leave_other_renderers_alone(mesh):
    """warp: re-based; a renderer built on a warp (warp+refine's `.warp`): re-based by it; neural: as given."""
    from types import SimpleNamespace

    from dfm.render.renderer import renderer_targets

    rng = np.random.default_rng(5)
    noisy = syn.synthetic_track(rng.uniform(0.1, 0.5, (6, 53)).astype(np.float32), W, H, SCALE)
    warp = WarpRenderer(mesh, noisy, None, regions=(), sigma_expression=2.0)
    targets, share = rng.uniform(0, 1, (6, 53)).astype(np.float32), np.ones((6, 53), np.float32)
    rebased = warp.rebased_targets(targets, share)
    assert np.abs(rebased - targets).max() > 1e-3
    np.testing.assert_array_equal(renderer_targets(warp, targets, share), rebased)
    np.testing.assert_array_equal(renderer_targets(SimpleNamespace(warp=warp), targets, share), rebased)
    np.testing.assert_array_equal(renderer_targets(SimpleNamespace(), targets, share), targets)
