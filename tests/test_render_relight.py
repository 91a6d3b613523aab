"""Shading of the new geometry (dfm.render.relight): the expression ratio image of the person's mesh."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.face.expressions import expression_index as ei
from dfm.face.track import project_vertices
from dfm.render import synthetic as syn
from dfm.render.flow import compute_flow
from dfm.render.mesh import PART_EYE, PART_FACE
from dfm.render.relight import RelightParams, apply_ratio, face_triangles, facing, shading_ratio
from dfm.render.renderer import WarpRenderer

H, W, SCALE = 240, 320, 9.0


def _expression(**shapes: float) -> np.ndarray:
    e = np.zeros(53, np.float32)
    for name, value in shapes.items():
        e[ei(name)] = value
    return e


SMILE = _expression(mouthSmile_L=1.0, mouthSmile_R=1.0, cheekSquint_L=0.8, cheekSquint_R=0.8)


def _projections(mesh, e0, e1):
    track = syn.synthetic_track(np.stack([e0, e1]), W, H, SCALE)
    p = [project_vertices(mesh.vertices(track.expression[i]), track.rotation[0], track.translation[0],
                          float(track.scale[0])) for i in range(2)]
    return track, p[0], p[1]


def test_the_same_expression_relights_nothing(mesh):
    _, p0, p1 = _projections(mesh, SMILE, SMILE)
    flow = compute_flow(mesh, p0, p1, (H, W), 15 * SCALE)
    assert shading_ratio(mesh, p0, p1, flow) is None
    crop = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(apply_ratio(crop, np.ones((8, 8), np.float32)), crop)


def test_a_smile_shades_the_cheeks_and_leaves_the_forehead(mesh):
    _, p0, p1 = _projections(mesh, np.zeros(53, np.float32), SMILE)
    flow = compute_flow(mesh, p0, p1, (H, W), 15 * SCALE)
    params = RelightParams()
    ratio = shading_ratio(mesh, p0, p1, flow, params)
    assert ratio is not None and ratio.shape == flow.part.shape
    face = flow.part == PART_FACE
    assert (ratio[~face] == 1.0).all()  # eyes, inner mouth and background are not relit
    assert ratio.min() >= 1 - params.limit - 1e-6 and ratio.max() <= 1 + params.limit + 1e-6
    changed = face & (np.abs(ratio - 1.0) > 0.03)
    assert changed.sum() > 50  # the cheeks and the folds beside the mouth
    rows = np.nonzero(changed.any(axis=1))[0]
    mouth_row = flow.grid.to_work(p1[mesh.inner_lip_pairs.ravel()])[:, 1].mean()
    # the forehead (above the eyes) keeps its shading: a smile does not turn it
    eyes_top = flow.grid.to_work(p1[mesh.vertex_part == PART_EYE])[:, 1].min()
    assert rows.min() > eyes_top and abs(np.median(rows) - mouth_row) < 0.25 * face.shape[0]
    assert (ratio[changed] < 1.0).any()  # the folds darken


def test_the_silhouette_is_not_relit(mesh):
    """Where either surface turns away from the camera the ratio fades to exactly 1."""
    _, p0, p1 = _projections(mesh, np.zeros(53, np.float32), SMILE)
    flow = compute_flow(mesh, p0, p1, (H, W), 15 * SCALE)
    params = RelightParams(edge=(0.2, 0.45))
    ratio = shading_ratio(mesh, p0, p1, flow, params)
    from dfm.render.raster import interpolate

    f = interpolate(flow.raster, np.stack([facing(p0, face_triangles(mesh)), facing(p1, face_triangles(mesh))], 1), mesh.triangles)
    grazing = (flow.part == PART_FACE) & (f.min(axis=-1) < params.edge[0])
    assert grazing.any() and (ratio[grazing] == 1.0).all()


def test_strength_zero_is_off(mesh):
    _, p0, p1 = _projections(mesh, np.zeros(53, np.float32), SMILE)
    flow = compute_flow(mesh, p0, p1, (H, W), 15 * SCALE)
    assert shading_ratio(mesh, p0, p1, flow, RelightParams(strength=0.0)) is None


@pytest.mark.parametrize("target", [SMILE, _expression(browDown_L=1.0, browDown_R=1.0, mouthFrown_L=1.0,
                                                       mouthFrown_R=1.0)])
def test_relit_warp_is_closer_to_the_rendered_target(mesh, target):
    """The synthetic scene is Lambert-shaded under a light at the camera (0.55 + 0.45 |n_z|): with the same
    light model the relit warp matches the rendered target expression better where the shading changed."""
    e0 = np.zeros(53, np.float32)
    track = syn.synthetic_track(np.stack([e0, target]), W, H, SCALE)
    frames = syn.scene_frames(mesh, mesh.neutral, track)
    common = dict(regions=(), sigma_expression=0.0, sigma_pose=0.0)
    plain = WarpRenderer(mesh, track, None, relight=0.0, **common).render_frame(0, frames[0], target, 1.0)
    relit = WarpRenderer(mesh, track, None, relight=1.0, relight_ambient=0.55, relight_limit=0.5,
                         **common).render_frame(0, frames[0], target, 1.0)
    changed = np.abs(relit.astype(np.int16) - plain).max(axis=-1) > 2
    assert changed.sum() > 100
    goal = frames[1].astype(np.float32)
    err_plain = np.abs(plain[changed] - goal[changed]).mean()
    err_relit = np.abs(relit[changed] - goal[changed]).mean()
    assert err_relit < 0.8 * err_plain, (err_plain, err_relit)


def test_the_facing_kernel_matches_numpy(mesh):
    from dfm.render.relight import KERNELS, facing_pair

    if "numba" not in KERNELS.available():
        pytest.skip("numba is not installed: only the numpy back end runs here")
    _, p0, p1 = _projections(mesh, np.zeros(53, np.float32), SMILE)
    tris = face_triangles(mesh)
    fast, slow = facing_pair(p0, p1, tris, "numba"), facing_pair(p0, p1, tris, "numpy")
    assert fast.shape == (mesh.n_vertices, 2) and (fast[np.unique(tris)] > 0).mean() > 0.95
    np.testing.assert_allclose(fast, slow, atol=1e-6)
