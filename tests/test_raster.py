"""The CPU rasteriser against known answers, on every available back end (numba and/or numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.render.raster import Raster, available_backends, interpolate, rasterize

BACKENDS = available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    monkeypatch.setenv("DFM_RASTER_BACKEND", request.param)  # interpolate() follows the env var
    return request.param


def analytic_bary(tri_xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, 3) barycentric coordinates of every pixel centre w.r.t. one triangle (float64)."""
    (ax, ay), (bx, by), (cx, cy) = tri_xy
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    det = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    wb = ((xs - ax) * (cy - ay) - (ys - ay) * (cx - ax)) / det
    wc = ((bx - ax) * (ys - ay) - (by - ay) * (xs - ax)) / det
    return np.stack([1 - wb - wc, wb, wc], axis=-1)


@pytest.mark.parametrize("order", [(0, 1, 2), (0, 2, 1)])  # both windings
def test_single_triangle_coverage_and_barycentrics(backend, order):
    xy = np.array([[2.3, 1.7], [27.8, 6.1], [8.2, 21.6]])
    z = np.array([5.0, 7.0, 9.0])
    verts = np.column_stack([xy, z])
    tri = np.array([order])
    r = rasterize(verts, tri, 24, 32, backend=backend)
    assert isinstance(r, Raster)
    assert r.triangle.shape == (24, 32) and r.triangle.dtype == np.int32
    assert r.bary.shape == (24, 32, 3) and r.bary.dtype == np.float32
    assert r.depth.shape == (24, 32) and r.depth.dtype == np.float32

    ref = analytic_bary(xy[list(order)], 24, 32)
    inside = (ref > 0).all(-1)
    assert not (np.abs(ref) < 1e-3).any(-1)[inside ^ (ref >= 0).all(-1)].any()  # no ambiguous centres
    np.testing.assert_array_equal(r.mask, inside)
    np.testing.assert_array_equal(r.triangle[inside], 0)
    np.testing.assert_allclose(r.bary[inside], ref[inside], atol=2e-4)
    assert (r.bary[~inside] == 0).all() and np.isinf(r.depth[~inside]).all()
    np.testing.assert_allclose(r.bary.sum(-1)[inside], 1.0, atol=1e-6)
    depth_ref = (ref * z[list(order)]).sum(-1)
    np.testing.assert_allclose(r.depth[inside], depth_ref[inside], atol=1e-3)
    assert r.window is not None
    x0, y0, x1, y1 = r.window
    assert not r.mask[:y0].any() and not r.mask[y1:].any() and not r.mask[:, :x0].any() and not r.mask[:, x1:].any()


def test_nearer_triangle_wins_regardless_of_order(backend):
    big = [[0, 0], [40, 0], [0, 40]]
    small = [[5, 5], [25, 5], [5, 25]]
    for near_first in (True, False):
        z_small, z_big = (1.0, 10.0) if near_first else (10.0, 1.0)
        verts = np.array([p + [z_big] for p in big] + [p + [z_small] for p in small], float)
        r = rasterize(verts, np.array([[0, 1, 2], [3, 4, 5]]), 40, 40, backend=backend)
        small_cov = rasterize(verts, np.array([[3, 4, 5]]), 40, 40, backend=backend).mask
        assert small_cov.sum() > 150
        if near_first:  # the small triangle is nearer: it shows where it covers
            assert (r.triangle[small_cov] == 1).all()
        else:  # the big one is nearer and hides it completely
            assert (r.triangle[r.mask] == 0).all()
        np.testing.assert_allclose(r.depth[small_cov], min(z_small, z_big))


def test_interpenetrating_triangles_split_per_pixel(backend):
    # A: depth = x (slanted); B: constant depth 10.5 -> A visible for x < 10.5, B for x > 10.5
    verts = np.array([[-1, -1, -1], [30, -1, 30], [-1, 30, -1], [-1, -1, 10.5], [30, -1, 10.5], [-1, 30, 10.5]],
                     float)
    r = rasterize(verts, np.array([[3, 4, 5], [0, 1, 2]]), 20, 20, backend=backend)
    xs = np.arange(20)[None, :].repeat(20, 0)
    cov = r.mask
    assert (r.triangle[cov & (xs <= 10)] == 1).all()
    assert (r.triangle[cov & (xs >= 11)] == 0).all()


def test_quad_split_in_two_has_no_cracks_or_overlaps(backend):
    # corners on pixel centres and a diagonal through pixel centres: every tie is exercised
    verts = np.array([[2, 2, 0], [12, 2, 0], [12, 9, 0], [2, 9, 0]], float)
    t1, t2 = np.array([[0, 1, 2]]), np.array([[0, 2, 3]])
    m1 = rasterize(verts, t1, 16, 16, backend=backend).mask
    m2 = rasterize(verts, t2, 16, 16, backend=backend).mask
    assert not (m1 & m2).any()
    assert (m1 | m2).sum() == 10 * 7  # half-open: one of each pair of opposite sides
    both = rasterize(verts, np.concatenate([t1, t2]), 16, 16, backend=backend)
    np.testing.assert_array_equal(both.mask, m1 | m2)
    # the other diagonal, and the opposite winding, give the same pixels
    alt = rasterize(verts, np.array([[1, 2, 3], [1, 3, 0]]), 16, 16, backend=backend).mask
    rev = rasterize(verts, np.array([[2, 1, 0], [3, 2, 0]]), 16, 16, backend=backend).mask
    np.testing.assert_array_equal(alt, m1 | m2)
    np.testing.assert_array_equal(rev, m1 | m2)


def test_jittered_mesh_is_watertight(backend):
    # a grid mesh with random sub-pixel jitter plus some vertices exactly on pixel centres
    rng = np.random.default_rng(3)
    n = 12
    gy, gx = np.mgrid[0:n, 0:n].astype(np.float64)
    xy = np.column_stack([gx.ravel(), gy.ravel()]) * 3.0 + 2.0
    jitter = rng.uniform(-0.9, 0.9, xy.shape)
    jitter[rng.random(len(xy)) < 0.3] = 0.0  # leave 30% exactly on pixel centres
    border = (gx.ravel() == 0) | (gy.ravel() == 0) | (gx.ravel() == n - 1) | (gy.ravel() == n - 1)
    jitter[border] = 0.0
    xy += jitter
    verts = np.column_stack([xy, np.zeros(len(xy))])
    tris = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j + 1, (i + 1) * n + j
            tris += [[a, b, c], [a, c, d]] if (i + j) % 2 else [[a, b, d], [b, c, d]]
    tris = np.array(tris)
    count = np.zeros((40, 40), int)
    for t in tris:
        count += rasterize(verts, t[None], 40, 40, backend=backend).mask
    assert count.max() == 1  # no double coverage
    # every pixel centre of the (axis-aligned, half-open) outline is covered: no cracks
    lo, hi = 2, 2 + 3 * (n - 1)
    ys, xs = np.mgrid[0:40, 0:40]
    inside = (xs >= lo) & (xs < hi) & (ys >= lo) & (ys < hi)
    assert (count[inside] == 1).all()
    assert count.sum() == inside.sum()
    full = rasterize(verts, tris, 40, 40, backend=backend)
    np.testing.assert_array_equal(full.mask, count == 1)


def test_fan_around_pixel_centre_covers_it_once(backend):
    centre = [10.0, 10.0]
    ring = [[10 + 6 * np.cos(a), 10 + 6 * np.sin(a)] for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)]
    verts = np.array([centre + [0.0]] + [p + [0.0] for p in ring])
    tris = np.array([[0, 1 + k, 1 + (k + 1) % 8] for k in range(8)])
    hits = sum(int(rasterize(verts, t[None], 20, 20, backend=backend).mask[10, 10]) for t in tris)
    assert hits == 1


def test_interpolate_reproduces_linear_function(backend):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 60, (30, 2))
    z = rng.uniform(5, 9, 30)
    verts = np.column_stack([xy, z])
    # a random triangle soup over the image (overlaps resolved by depth)
    tris = np.array([rng.choice(30, 3, replace=False) for _ in range(40)])

    def f(x, y, zz):
        return np.stack([0.5 * x - 0.25 * y + 3.0, 2.0 - 0.1 * x + 0.3 * y, zz], axis=-1)

    r = rasterize(verts, tris, 64, 64, backend=backend)
    out = interpolate(r, f(xy[:, 0], xy[:, 1], z), tris)
    assert out.shape == (64, 64, 3) and out.dtype == np.float32
    ys, xs = np.mgrid[0:64, 0:64].astype(np.float64)
    ref = f(xs, ys, r.depth)
    m = r.mask
    assert m.sum() > 1000
    np.testing.assert_allclose(out[m][:, :2], ref[m][:, :2], atol=2e-3)  # snapping to 1/1024 px
    np.testing.assert_allclose(out[m][:, 2], r.depth[m], rtol=1e-5)  # depth = interpolated z
    assert (out[~m] == 0).all()
    one = interpolate(r, xy[:, 0], tris)  # (V,) -> (H, W)
    assert one.shape == (64, 64)
    np.testing.assert_allclose(one[m], xs[m], atol=2e-3)


def test_backface_culling(backend):
    ccw_on_screen = np.array([[2, 2, 0], [2, 18, 0], [18, 2, 0]], float)  # front: negative area in y-down frame
    front = rasterize(ccw_on_screen, np.array([[0, 1, 2]]), 20, 20, backend=backend, cull_backfaces=True)
    back = rasterize(ccw_on_screen, np.array([[0, 2, 1]]), 20, 20, backend=backend, cull_backfaces=True)
    both = rasterize(ccw_on_screen, np.array([[0, 2, 1]]), 20, 20, backend=backend)
    assert front.mask.sum() > 50 and not back.mask.any()
    np.testing.assert_array_equal(front.mask, both.mask)


def test_bbox_limits_work_but_returns_full_size(backend):
    verts = np.array([[1, 1, 0], [38, 2, 0], [3, 28, 0]], float)
    full = rasterize(verts, np.array([[0, 1, 2]]), 30, 40, backend=backend)
    win = rasterize(verts, np.array([[0, 1, 2]]), 30, 40, bbox=(5, 4, 20, 15), backend=backend)
    assert win.triangle.shape == (30, 40)
    inside = np.zeros((30, 40), bool)
    inside[4:15, 5:20] = True
    np.testing.assert_array_equal(win.mask, full.mask & inside)
    np.testing.assert_array_equal(win.bary[win.mask], full.bary[win.mask])


def test_offscreen_nan_and_degenerate_triangles_are_skipped(backend):
    verts = np.array([[-50, -50, 0], [-40, -50, 0], [-50, -40, 0],  # off screen
                      [1, 1, 0], [9, 1, 0], [5, 1, 0],  # degenerate (collinear)
                      [np.nan, 2, 0], [8, 8, 0], [2, 8, 0],  # NaN vertex
                      [1e9, 0, 0], [2, 2, 0], [9, 9, 0],  # absurdly far vertex
                      [2, 2, 1], [14, 3, 1], [4, 12, 1]], float)  # one good triangle
    tris = np.arange(15).reshape(5, 3)
    r = rasterize(verts, tris, 16, 16, backend=backend)
    assert r.mask.any()
    assert set(np.unique(r.triangle[r.mask]).tolist()) == {4}
    empty = rasterize(verts[:3], tris[:1], 16, 16, backend=backend)
    assert not empty.mask.any() and empty.window is None
    assert interpolate(empty, np.ones((3, 2)), tris[:1]).shape == (16, 16, 2)


def test_backends_agree_on_the_ict_face(assets_dir):
    if len(BACKENDS) < 2:
        pytest.skip("numba is not installed: only the numpy back end runs here")
    from dfm.face.model import FaceModel
    from dfm.face.track import FRONTAL, project_vertices

    model = FaceModel.load(assets_dir / "ict_facekit" / "ict_face_model.npz")
    tri = model.triangles_of(model.region_faces("Face"))
    yaw = np.deg2rad(30)
    ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    p = project_vertices(model.neutral, FRONTAL @ ry, np.array([320.0, 175.0, 500.0]), 13.0)
    a = rasterize(p, tri, 360, 640, backend="numba")
    b = rasterize(p, tri, 360, 640, backend="numpy")
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.window == b.window
    assert (a.triangle != b.triangle).mean() < 1e-3  # only exact depth near-ties may differ
    same = a.triangle == b.triangle
    np.testing.assert_allclose(a.bary[same], b.bary[same], atol=1e-6)


def uv_sphere(cx: float, cy: float, cz: float, radius: float, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    th, ph = np.meshgrid(np.linspace(0, np.pi, n + 1), np.linspace(0, 2 * np.pi, 2 * n, endpoint=False), indexing="ij")
    pts = np.stack([np.sin(th) * np.cos(ph), np.cos(th), np.sin(th) * np.sin(ph)], -1).reshape(-1, 3)
    verts = pts * radius + [cx, cy, cz]
    idx = np.arange((n + 1) * 2 * n).reshape(n + 1, 2 * n)
    a, b = idx[:-1], np.roll(idx[:-1], -1, axis=1)
    c, d = np.roll(idx[1:], -1, axis=1), idx[1:]
    tris = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return verts, tris


def test_render_shaded_sphere(backend):
    from dfm.render.shading import render_shaded, vertex_normals

    verts, tris = uv_sphere(50, 50, 200, 40)
    n = vertex_normals(verts, tris)
    np.testing.assert_allclose(np.abs((n * (verts - [50, 50, 200])).sum(1)) / 40, 1.0, atol=0.02)  # radial
    img = render_shaded(verts, tris, 100, 100, color=(200, 180, 160))
    assert img.shape == (100, 100, 3) and img.dtype == np.uint8
    assert (img[0, 0] == 0).all() and (img[50, 50] > 0).all()
    centre = img[50, 50].astype(int)
    rim = img[50, 88].astype(int)  # 38 px from the centre: the normal is nearly perpendicular to the view
    assert centre[0] > 190 and centre[0] > rim[0] + 80
    assert centre[0] > centre[1] > centre[2]  # the albedo's channel order is kept
    # brightness falls off monotonically from the centre along a radius
    row = img[50, 50:89, 0].astype(int)
    assert (np.diff(row) <= 1).all()
    bg = np.full((100, 100, 3), 7, np.uint8)
    over = render_shaded(verts, tris, 100, 100, background=bg)
    assert (over[0, 0] == 7).all() and over[50, 50, 0] > 150
