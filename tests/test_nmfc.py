"""NMFC image and masks on the real ICT model, frontal and turned."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.face.expressions import EXPRESSION_INDEX, N_EXPRESSIONS
from dfm.face.model import FaceModel
from dfm.face.nmfc import (NmfcResult, face_contours, nmfc_coordinates, nmfc_triangles, render_nmfc,
                           render_nmfc_projected)
from dfm.face.track import FRONTAL, project_vertices

H, W = 360, 640
SCALE = 12.0  # px per cm: the Face region is ~220 px wide
TRANSLATION = np.array([320.0, 190.0, 500.0], np.float32)


@pytest.fixture(scope="module")
def model(assets_dir) -> FaceModel:
    return FaceModel.load(assets_dir / "ict_facekit" / "ict_face_model.npz")


def expression(**weights: float) -> np.ndarray:
    e = np.zeros(N_EXPRESSIONS, np.float32)
    for name, w in weights.items():
        e[EXPRESSION_INDEX[name]] = w
    return e


def yaw(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]], np.float32)


def frontal(model: FaceModel, expr: np.ndarray | None = None, rotation=FRONTAL) -> NmfcResult:
    return render_nmfc(model, None, expr, rotation, TRANSLATION, SCALE, H, W)


def centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def test_nmfc_coordinates_normalised_by_face_box(model):
    c = nmfc_coordinates(model)
    assert c.shape == (model.n_vertices, 3) and c.dtype == np.float32
    face = c[model.region_vertices("Face")]
    np.testing.assert_allclose(face.min(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(face.max(axis=0), 1.0, atol=1e-6)
    assert c.min() >= 0.0 and c.max() <= 1.0
    nose = model.landmarks68[30]  # nose tip: the face's frontmost point, on the symmetry plane
    assert abs(c[nose, 0] - 0.5) < 0.01 and c[nose, 2] > 0.99


def test_contours_come_from_topology(model):
    fc = face_contours(model)
    n = model.neutral
    assert n[fc.eye_hole_left, 0].mean() > 0 > n[fc.eye_hole_right, 0].mean()  # subject's left = +x
    assert n[fc.mouth_hole, 1].mean() < n[fc.eye_hole_left, 1].mean()
    assert len(fc.outer) > len(fc.mouth_hole) > len(fc.eye_hole_left)

    def near(loop, landmarks, tol):
        d = np.linalg.norm(n[model.landmarks68[landmarks]][:, None] - n[loop][None], axis=-1).min(axis=1)
        return (d < tol).all()

    # the inner-lip contour runs along the inner-lip landmarks, the lid openings along the lid landmarks
    assert near(fc.inner_lip, [61, 62, 63, 65, 66, 67], 0.3)
    assert near(fc.eyelid_left, [43, 44, 46, 47], 0.3)
    assert near(fc.eyelid_right, [37, 38, 40, 41], 0.3)
    assert fc.inner_lip_ring > 0  # not the hole border itself (that lies inside the mouth)


def test_frontal_neutral_face(model):
    r = frontal(model)
    assert r.image.shape == (H, W, 3) and r.image.dtype == np.float32
    for m in (r.face, r.mouth, r.mouth_region, r.eye_left, r.eye_right):
        assert m.shape == (H, W) and m.dtype == bool
    assert r.image.min() >= 0.0 and r.image.max() <= 1.0
    assert r.face.sum() > 30000
    assert r.eye_left.sum() > 100 and r.eye_right.sum() > 100
    assert r.mouth.any() and r.mouth_region.sum() > 1000
    # background is exactly zero (corners, and everything outside the rendered surfaces)
    assert (r.image[~r.foreground] == 0).all()
    assert (r.image[0, 0] == 0).all() and (r.image[-1, -1] == 0).all()
    assert (r.image[r.face].max(axis=-1) > 0).all()
    # the subject's left eye appears on the image RIGHT for the frontal rotation diag(1, -1, -1)
    cl, cr = centroid(r.eye_left), centroid(r.eye_right)
    assert cl[0] > TRANSLATION[0] + 20 and cr[0] < TRANSLATION[0] - 20
    assert abs(cl[1] - cr[1]) < 2  # symmetric face, level eyes
    cm = centroid(r.mouth_region)
    assert cm[1] > cl[1] + 50 and abs(cm[0] - TRANSLATION[0]) < 3  # mouth below the eyes, centred
    # masks are parts of the rendered surface; the mouth lies in the mouth region; eyes and mouth disjoint
    for m in (r.face, r.mouth, r.eye_left, r.eye_right):
        assert not (m & ~r.foreground).any()
    assert not (r.mouth & ~r.mouth_region).any()
    assert not (r.eye_left & r.eye_right).any() and not (r.eye_left & r.mouth).any()
    assert not (r.face & (r.mouth | r.eye_left | r.eye_right)).any()


def test_nmfc_colour_at_nose_tip(model):
    r = frontal(model)
    nose = model.landmarks68[30]
    p = project_vertices(model.neutral[nose][None], FRONTAL, TRANSLATION, SCALE)[0]
    x, y = int(round(p[0])), int(round(p[1]))
    np.testing.assert_allclose(r.image[y, x], nmfc_coordinates(model)[nose], atol=0.01)
    assert r.face[y, x]


def test_colour_follows_the_surface_not_the_expression(model):
    # a point on the cheek keeps its NMFC colour under an expression that moves it
    v = model.landmarks68[48]  # mouth corner vertex (subject's right)
    e = expression(mouthSmile_L=1.0, mouthSmile_R=1.0)
    x = model.vertices(None, e)
    p = project_vertices(x[v][None], FRONTAL, TRANSLATION, SCALE)[0]
    r = frontal(model, e)
    yx = int(round(p[1])), int(round(p[0]))
    np.testing.assert_allclose(r.image[yx], nmfc_coordinates(model)[v], atol=0.03)


def test_mouth_grows_when_the_jaw_opens(model):
    closed = frontal(model, expression(jawOpen=0.0))
    opened = frontal(model, expression(jawOpen=1.0))
    assert opened.mouth.sum() > 10 * max(closed.mouth.sum(), 1)
    assert opened.mouth.sum() > 800  # ~10 cm^2 at 12 px/cm
    assert opened.mouth_region.sum() > closed.mouth_region.sum()
    assert not (opened.mouth & ~opened.mouth_region).any()
    # the opening shows teeth, tongue and socket: mouth, never face
    assert not (opened.mouth & opened.face).any()
    assert closed.mouth.sum() < 50  # lips together: (almost) no inner mouth


def test_blink_closes_the_eye_mask(model):
    open_ = frontal(model)
    shut = frontal(model, expression(eyeBlink_L=1.0))
    assert shut.eye_left.sum() < 0.1 * open_.eye_left.sum()
    assert shut.eye_right.sum() > 0.8 * open_.eye_right.sum()


def test_turned_head_and_projected_entry_point(model):
    e = expression(jawOpen=0.5, mouthSmile_L=0.5)
    identity = np.random.default_rng(1).normal(size=model.n_identity).astype(np.float32) * 0.5
    rot = FRONTAL @ yaw(40)
    a = render_nmfc(model, identity, e, rot, TRANSLATION, SCALE, H, W)
    x = model.vertices(identity, e)
    b = render_nmfc_projected(model, project_vertices(x, rot, TRANSLATION, SCALE), H, W)
    np.testing.assert_array_equal(a.raster.mask, b.raster.mask)
    assert (a.raster.triangle != b.raster.triangle).mean() < 1e-3
    np.testing.assert_allclose(a.image, b.image, atol=1e-3)
    for m in ("face", "mouth", "eye_left", "eye_right"):
        assert (getattr(a, m) != getattr(b, m)).sum() <= 5
    # turned: both eyes still visible, the far one (subject's left for this yaw) smaller
    front = frontal(model, e)
    assert a.eye_left.sum() > 10 and a.eye_right.sum() > 10
    assert a.eye_left.sum() < front.eye_left.sum()
    # raster indices refer to nmfc_triangles(model)
    tri = nmfc_triangles(model)
    assert tri.max() < model.n_vertices and a.raster.triangle.max() < len(tri)
