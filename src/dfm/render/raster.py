"""CPU triangle rasteriser: per-pixel triangle index, barycentric weights and depth (a z-buffer).

Conventions
-----------
- `vertices` (V, 3) are in the pixel frame of `dfm.face.track`: x right, y down, z = depth with
  *smaller = nearer* (the nearer surface wins). Pixel (row r, column c) has its centre at (x=c, y=r):
  a pixel is covered by a triangle when its centre lies inside it.
- Both windings are drawn by default. `cull_backfaces=True` drops back faces, where *front* means
  counter-clockwise as the viewer sees it (negative signed area in the y-down pixel frame). That is the
  front of a mesh that is counter-clockwise seen from outside (the ICT model) under a proper rotation.
- Fill rule: vertices are snapped to a fixed-point grid of 1/1024 px and the edge functions are evaluated
  exactly, with the top-left rule of Direct3D/OpenGL (a pixel centre exactly on a triangle's top or left
  edge belongs to it, on a right or bottom edge it does not), so a pixel centre on an edge shared by two
  triangles belongs to exactly one of them: a mesh has no cracks and no double coverage. An axis-aligned
  rectangle with corners on pixel centres (x0, y0)-(x1, y1) covers exactly [x0, x1) x [y0, y1).
- Depth test: per pixel the smallest interpolated depth wins; exact ties go to the lower triangle index.
  Depth is interpolated linearly in screen space (right for the scaled-orthographic camera of the
  FaceTrack).
- Barycentric weights refer to the triangle's own vertex order (`bary[..., k]` weighs `triangles[t, k]`),
  are >= 0 and sum to 1; they are those of the snapped vertices (error <= 1/2048 px in position).
- Limits: a window (the image, or `bbox`) may be at most 16384 px on a side, and triangles with a vertex
  more than 16384 px from the window, or with a non-finite coordinate, are skipped.

Two interchangeable back ends compute the same coverage: a numba kernel (used when numba is importable;
about 1-2 ms for the ~18k-triangle ICT face at 260 px) and a pure-numpy fallback (vectorised row spans;
several times slower). `DFM_RASTER_BACKEND=numpy|numba` or the `backend` argument forces one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfm.compiled import CompiledKernels

__all__ = ["Raster", "rasterize", "interpolate", "available_backends"]

SUBPIXEL_BITS = 10
_SUB = 1 << SUBPIXEL_BITS  # fixed-point steps per pixel
_LIMIT = 1 << 14  # max |coordinate| (px) relative to the window; keeps every edge value exact in float64
_TRI_SCALE = float(1 << 21)  # numpy back end: key = quantised depth * 2^21 + triangle (exact in float64)
_DEPTH_LEVELS = float((1 << 31) - 1)


@dataclass
class Raster:
    """Result of `rasterize`: full-frame arrays (H, W)."""

    triangle: np.ndarray  # (H, W) int32, index into the triangles array, -1 where empty
    bary: np.ndarray  # (H, W, 3) float32 barycentric weights of the covering triangle (0 where empty)
    depth: np.ndarray  # (H, W) float32, +inf where empty
    window: tuple[int, int, int, int] | None = None  # (x0, y0, x1, y1), end-exclusive: holds every covered
    # pixel (None: no pixel covered). Consumers may restrict work to it.

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: pixels covered by some triangle."""
        return self.triangle >= 0

    @property
    def height(self) -> int:
        return int(self.triangle.shape[0])

    @property
    def width(self) -> int:
        return int(self.triangle.shape[1])


def _empty(height: int, width: int) -> Raster:
    return Raster(
        triangle=np.full((height, width), -1, np.int32),
        bary=np.zeros((height, width, 3), np.float32),
        depth=np.full((height, width), np.inf, np.float32),
        window=None,
    )


def rasterize(vertices: np.ndarray, triangles: np.ndarray, height: int, width: int,
              bbox: tuple[int, int, int, int] | None = None, *, cull_backfaces: bool = False,
              backend: str | None = None) -> Raster:
    """Rasterise `triangles` (T, 3) over `vertices` (V, 3: pixel x, y, depth) into an image of height x width.

    `bbox` = (x0, y0, x1, y1), end-exclusive pixel bounds, limits the work to that window (e.g. the face):
    pixels outside it stay empty; the arrays returned are still full-size.
    """
    height, width = int(height), int(width)
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    v = np.asarray(vertices)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must be (V, 3) pixel x, y, depth; got shape {v.shape}")
    tri = np.asarray(triangles)
    if tri.ndim != 2 or tri.shape[1] != 3:
        raise ValueError(f"triangles must be (T, 3) vertex indices; got shape {tri.shape}")
    if tri.size and (tri.min() < 0 or tri.max() >= v.shape[0]):
        raise ValueError("triangles reference vertices out of range")
    if bbox is None:
        x0, y0, x1, y1 = 0, 0, width, height
    else:
        x0, y0 = int(np.floor(bbox[0])), int(np.floor(bbox[1]))
        x1, y1 = int(np.ceil(bbox[2])), int(np.ceil(bbox[3]))
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0 or tri.shape[0] == 0:
        return _empty(height, width)
    if x1 - x0 > _LIMIT or y1 - y0 > _LIMIT:
        raise ValueError(f"raster window {x1 - x0}x{y1 - y0} exceeds {_LIMIT} px; pass a smaller bbox")

    v = v.astype(np.float64, copy=False)
    fx = np.rint((v[:, 0] - x0) * _SUB)
    fy = np.rint((v[:, 1] - y0) * _SUB)
    fz = np.ascontiguousarray(v[:, 2])
    tri_index = None  # maps the triangles used back to the caller's indices
    lim = float(_LIMIT * _SUB)
    if not (np.isfinite(fz).all() and np.abs(fx).max(initial=0) <= lim and np.abs(fy).max(initial=0) <= lim):
        bad = ~(np.isfinite(fz) & (np.abs(fx) <= lim) & (np.abs(fy) <= lim))  # NaN compares False
        fx[bad] = 0.0
        fy[bad] = 0.0
        fz = np.where(bad, 0.0, fz)
        tri_index = np.flatnonzero(~bad[tri].any(axis=1))
        tri = tri[tri_index]
        if tri.shape[0] == 0:
            return _empty(height, width)

    name = KERNELS.choose(backend)
    out = _empty(height, width)
    if name == "numba":
        win = KERNELS.get()[0](fx, fy, fz, np.ascontiguousarray(tri, dtype=np.int64), x1 - x0, y1 - y0,
                                  bool(cull_backfaces), x0, y0, out.triangle, out.bary, out.depth)
        window = None if win[0] < 0 else (int(win[0]), int(win[1]), int(win[2]), int(win[3]))
    else:
        window = _raster_numpy(fx, fy, fz, tri.astype(np.int64, copy=False), x1 - x0, y1 - y0,
                               bool(cull_backfaces), x0, y0, out)
    if tri_index is not None and window is not None:
        covered = out.triangle >= 0
        out.triangle[covered] = tri_index[out.triangle[covered]].astype(np.int32)
    out.window = window
    return out


def interpolate(raster: Raster, attributes: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Per-vertex attributes (V, C) -> (H, W, C) float32 (a (V,) array gives (H, W)); 0 where empty.

    `triangles` must be the array that was rasterised (the raster's indices point into it).
    """
    a = np.asarray(attributes)
    squeeze = a.ndim == 1
    if squeeze:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"attributes must be (V, C) or (V,), got shape {np.shape(attributes)}")
    h, w = raster.triangle.shape
    out = np.zeros((h, w, a.shape[1]), np.float32)
    if raster.window is not None:
        x0, y0, x1, y1 = raster.window
        tri = np.asarray(triangles)
        if KERNELS.choose(None) == "numba":
            KERNELS.get()[1](raster.triangle, raster.bary, np.ascontiguousarray(tri, dtype=np.int64),
                                np.ascontiguousarray(a, dtype=np.float32), x0, y0, x1, y1, out)
        else:
            t = raster.triangle[y0:y1, x0:x1]
            sel = np.flatnonzero(t.reshape(-1) >= 0)
            if sel.size:
                ww = x1 - x0
                rows = sel // ww
                flat = (rows + y0) * w + (sel - rows * ww + x0)
                tt = raster.triangle.reshape(-1)[flat]
                bf = raster.bary.reshape(-1, 3)
                af = a.astype(np.float32, copy=False)
                of = out.reshape(-1, a.shape[1])
                val = bf[flat, 0:1] * af[tri[tt, 0]]
                val += bf[flat, 1:2] * af[tri[tt, 1]]
                val += bf[flat, 2:3] * af[tri[tt, 2]]
                of[flat] = val
    return out[..., 0] if squeeze else out


# --------------------------------------------------------------------------------------- back ends

def _compile() -> tuple:
    """The two kernels compiled (once per process; cached on disk by numba)."""
    import numba

    opts = dict(cache=True, nogil=True, fastmath=False, boundscheck=False)
    return numba.njit(**opts)(_kernel_raster), numba.njit(**opts)(_kernel_interpolate)


KERNELS = CompiledKernels("raster", "DFM_RASTER_BACKEND", _compile)


def available_backends() -> tuple[str, ...]:
    """The back ends that work here: always 'numpy', and 'numba' when it imports and compiles."""
    return KERNELS.available()


def warm_up() -> None:
    """Load the compiled kernels now (numba's import and its on-disk cache: a second or two of a fresh
    process's first frame) by rasterising one small triangle with the argument types real calls use."""
    v = np.array([[1.0, 1.0, 0.0], [6.0, 1.0, 0.0], [1.0, 6.0, 0.0]], np.float32)
    tri = np.array([[0, 1, 2]], np.int32)
    interpolate(rasterize(v, tri, 8, 8), v[:, :2], tri)


def _kernel_raster(fx, fy, fz, tris, ww, wh, cull, x0, y0, tri_out, bary_out, depth_out):
    """numba kernel. fx, fy: integer-valued fixed-point coords relative to the window origin."""
    sub = np.int64(1024)
    bits = np.int64(10)
    n = tris.shape[0]
    # pass 1: union of the triangles' candidate boxes -> window-local z-buffer
    ux0, uy0, ux1, uy1 = ww, wh, np.int64(-1), np.int64(-1)
    for t in range(n):
        i0, i1, i2 = tris[t, 0], tris[t, 1], tris[t, 2]
        ax, bx, cx = np.int64(fx[i0]), np.int64(fx[i1]), np.int64(fx[i2])
        ay, by, cy = np.int64(fy[i0]), np.int64(fy[i1]), np.int64(fy[i2])
        xmin = max(-((-min(ax, bx, cx)) >> bits), 0)
        xmax = min(max(ax, bx, cx) >> bits, ww - 1)
        ymin = max(-((-min(ay, by, cy)) >> bits), 0)
        ymax = min(max(ay, by, cy) >> bits, wh - 1)
        if xmin > xmax or ymin > ymax:
            continue
        ux0 = min(ux0, xmin)
        uy0 = min(uy0, ymin)
        ux1 = max(ux1, xmax)
        uy1 = max(uy1, ymax)
    win = np.full(4, -1, np.int64)
    if ux1 < 0:
        return win
    zw = ux1 - ux0 + 1
    zbuf = np.full((uy1 - uy0 + 1) * zw, np.inf)
    cx0, cy0, cx1, cy1 = ww, wh, np.int64(-1), np.int64(-1)
    for t in range(n):
        i0, i1, i2 = tris[t, 0], tris[t, 1], tris[t, 2]
        ax, bx, cx = np.int64(fx[i0]), np.int64(fx[i1]), np.int64(fx[i2])
        ay, by, cy = np.int64(fy[i0]), np.int64(fy[i1]), np.int64(fy[i2])
        xmin = max(-((-min(ax, bx, cx)) >> bits), 0)
        xmax = min(max(ax, bx, cx) >> bits, ww - 1)
        ymin = max(-((-min(ay, by, cy)) >> bits), 0)
        ymax = min(max(ay, by, cy) >> bits, wh - 1)
        if xmin > xmax or ymin > ymax:
            continue
        cross = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if cross == 0 or (cull and cross > 0):
            continue
        s = np.int64(1) if cross > 0 else np.int64(-1)
        inv = 1.0 / float(cross * s)
        # edge 0: a->b (weight of c), edge 1: b->c (weight of a), edge 2: c->a (weight of b)
        dx0, dy0 = (bx - ax) * s, (by - ay) * s
        dx1, dy1 = (cx - bx) * s, (cy - by) * s
        dx2, dy2 = (ax - cx) * s, (ay - cy) * s
        b0 = np.int64(0) if (dy0 < 0 or (dy0 == 0 and dx0 > 0)) else np.int64(1)
        b1 = np.int64(0) if (dy1 < 0 or (dy1 == 0 and dx1 > 0)) else np.int64(1)
        b2 = np.int64(0) if (dy2 < 0 or (dy2 == 0 and dx2 > 0)) else np.int64(1)
        za, zb, zc = fz[i0], fz[i1], fz[i2]
        sx0 = xmin * sub
        for y in range(ymin, ymax + 1):
            sy = y * sub
            e0 = dx0 * (sy - ay) - dy0 * (sx0 - ax)
            e1 = dx1 * (sy - by) - dy1 * (sx0 - bx)
            e2 = dx2 * (sy - cy) - dy2 * (sx0 - cx)
            row = (y - uy0) * zw - ux0
            for x in range(xmin, xmax + 1):
                if e0 >= b0 and e1 >= b1 and e2 >= b2:
                    wa = e1 * inv
                    wb = e2 * inv
                    wc = e0 * inv
                    z = wa * za + wb * zb + wc * zc
                    p = row + x
                    if z < zbuf[p]:
                        zbuf[p] = z
                        oy, ox = y0 + y, x0 + x
                        tri_out[oy, ox] = t
                        bary_out[oy, ox, 0] = wa
                        bary_out[oy, ox, 1] = wb
                        bary_out[oy, ox, 2] = wc
                        depth_out[oy, ox] = z
                        cx0 = min(cx0, x)
                        cy0 = min(cy0, y)
                        cx1 = max(cx1, x)
                        cy1 = max(cy1, y)
                e0 -= dy0 * sub
                e1 -= dy1 * sub
                e2 -= dy2 * sub
    if cx1 >= 0:
        win[0], win[1], win[2], win[3] = x0 + cx0, y0 + cy0, x0 + cx1 + 1, y0 + cy1 + 1
    return win


def _kernel_interpolate(tri_img, bary, tris, attr, x0, y0, x1, y1, out):
    c = attr.shape[1]
    for y in range(y0, y1):
        for x in range(x0, x1):
            t = tri_img[y, x]
            if t < 0:
                continue
            va, vb, vc = tris[t, 0], tris[t, 1], tris[t, 2]
            wa, wb, wc = bary[y, x, 0], bary[y, x, 1], bary[y, x, 2]
            for k in range(c):
                out[y, x, k] = wa * attr[va, k] + wb * attr[vb, k] + wc * attr[vc, k]


def _raster_numpy(fx, fy, fz, tri, ww, wh, cull, x0, y0, out: Raster):
    """Vectorised fallback: per-row exact spans, then a depth-keyed scatter-min. Returns the window."""
    sub = float(_SUB)
    i0, i1, i2 = tri[:, 0], tri[:, 1], tri[:, 2]
    ax, bx, cx = fx[i0], fx[i1], fx[i2]
    ay, by, cy = fy[i0], fy[i1], fy[i2]
    xmin = np.maximum(np.ceil(np.minimum(np.minimum(ax, bx), cx) / sub), 0.0)
    xmax = np.minimum(np.floor(np.maximum(np.maximum(ax, bx), cx) / sub), ww - 1.0)
    ymin = np.maximum(np.ceil(np.minimum(np.minimum(ay, by), cy) / sub), 0.0)
    ymax = np.minimum(np.floor(np.maximum(np.maximum(ay, by), cy) / sub), wh - 1.0)
    cross = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    keep = (xmin <= xmax) & (ymin <= ymax) & (cross < 0 if cull else cross != 0)
    ids = np.flatnonzero(keep)
    if ids.size == 0:
        return None
    # shrink the working window to the union of candidate boxes
    ox, oy = xmin[ids].min(), ymin[ids].min()
    zw = int(xmax[ids].max() - ox) + 1
    zh = int(ymax[ids].max() - oy) + 1
    ax, bx, cx = ax[ids] - ox * sub, bx[ids] - ox * sub, cx[ids] - ox * sub
    ay, by, cy = ay[ids] - oy * sub, by[ids] - oy * sub, cy[ids] - oy * sub
    xmin, xmax, ymin, ymax = xmin[ids] - ox, xmax[ids] - ox, ymin[ids] - oy, ymax[ids] - oy
    cr = cross[ids]
    sgn = np.sign(cr)
    acr = np.abs(cr)
    px_, py_ = (ax, bx, cx), (ay, by, cy)
    e_raw, e_row, e_col, e_bias = [], [], [], []
    for e in range(3):  # edge e: vertex e -> vertex e+1; E(x, y) = e_raw + e_row * y + e_col * x
        dx = (px_[(e + 1) % 3] - px_[e]) * sgn
        dy = (py_[(e + 1) % 3] - py_[e]) * sgn
        e_raw.append(dy * px_[e] - dx * py_[e])
        e_row.append(dx * sub)
        e_col.append(-dy * sub)
        e_bias.append(~((dy < 0) | ((dy == 0) & (dx > 0))))  # exclusive edge: needs E >= 1
    za, zb, zc = fz[i0[ids]], fz[i1[ids]], fz[i2[ids]]
    # screen-space depth plane per pixel step
    gx = ((zb - za) * (cy - ay) - (zc - za) * (by - ay)) / cr * sub
    gy = ((zc - za) * (bx - ax) - (zb - za) * (cx - ax)) / cr * sub
    zorg = za - (gx * ax + gy * ay) / sub

    # rows: one entry per (triangle, pixel row)
    h = (ymax - ymin + 1).astype(np.int64)
    n_rows = int(h.sum())
    rt = np.repeat(np.arange(ids.size), h)
    ry = np.arange(n_rows, dtype=np.float64) + np.repeat(ymin - (np.cumsum(h) - h), h)
    lo = np.repeat(xmin, h)
    hi = np.repeat(xmax, h)
    with np.errstate(divide="ignore", invalid="ignore"):
        for e in range(3):
            aj = e_col[e][rt]
            num = e_bias[e][rt] - (e_raw[e][rt] + e_row[e][rt] * ry)  # need aj * x >= num
            q = num / aj  # exact: |num| < 2^53 (see module limits)
            np.maximum(lo, np.where(aj > 0, np.ceil(q), lo), out=lo)
            np.minimum(hi, np.where(aj < 0, np.floor(q), np.where((aj == 0) & (num > 0), -1.0, hi)), out=hi)
    span = np.maximum(hi - lo + 1, 0).astype(np.int64)
    n_pix = int(span.sum())
    if n_pix == 0:
        return None

    # candidate pixels, keyed by (quantised depth, triangle)
    pstart = np.cumsum(span) - span
    k = np.arange(n_pix, dtype=np.float64)
    pix = (np.repeat(ry * zw + lo - pstart, span) + k).astype(np.int64)
    zlo = min(za.min(), zb.min(), zc.min())
    zhi = max(za.max(), zb.max(), zc.max())
    qs = (_DEPTH_LEVELS - 1) / (zhi - zlo) if zhi > zlo else 0.0
    rg = gx[rt] * qs
    zrow = (zorg[rt] + gy[rt] * ry - zlo) * qs + rg * (lo - pstart)
    key = np.repeat(zrow, span) + np.repeat(rg, span) * k
    np.clip(key, 0.0, _DEPTH_LEVELS, out=key)
    np.floor(key, out=key)
    key *= _TRI_SCALE
    key += np.repeat(rt.astype(np.float64), span)
    zbuf = np.full(zw * zh, np.inf)
    np.minimum.at(zbuf, pix, key)

    # winners: exact barycentrics from the edge functions, depth from them
    cov = np.flatnonzero(zbuf != np.inf)
    kk = zbuf[cov]
    lt = (kk - np.floor(kk / _TRI_SCALE) * _TRI_SCALE).astype(np.int64)
    yy = cov // zw
    xx = cov - yy * zw
    yf, xf = yy.astype(np.float64), xx.astype(np.float64)
    inv = 1.0 / acr[lt]
    w = [(e_raw[e][lt] + e_row[e][lt] * yf + e_col[e][lt] * xf) * inv for e in (1, 2, 0)]
    dep = w[0] * za[lt] + w[1] * zb[lt] + w[2] * zc[lt]
    gx0, gy0 = x0 + int(ox), y0 + int(oy)
    width = out.triangle.shape[1]
    o = (yy + gy0) * width + (xx + gx0)
    out.triangle.reshape(-1)[o] = ids[lt]
    out.depth.reshape(-1)[o] = dep
    bf = out.bary.reshape(-1, 3)
    bf[o, 0], bf[o, 1], bf[o, 2] = w[0], w[1], w[2]
    return (gx0 + int(xx.min()), gy0 + int(yy.min()), gx0 + int(xx.max()) + 1, gy0 + int(yy.max()) + 1)
