"""Lambert-shaded grey rendering of a projected mesh (inspection overlays, decoder strips).

The light sits at the camera: intensity = ambient + (1 - ambient) * |n . view|, with per-pixel normals
interpolated from area-weighted vertex normals of the projected geometry (pixel frame x, y, depth; under
the FaceTrack's scaled-orthographic camera these are the true 3-D normals up to the rotation). Lighting
is two-sided, so a mesh of either winding (or an open one seen from inside) still reads.
"""

from __future__ import annotations

import numpy as np

from dfm.render.raster import Raster, interpolate, rasterize

__all__ = ["vertex_normals", "render_shaded"]


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3) float32 unit vertex normals (area-weighted sum of the adjacent triangles' normals;
    right-hand rule on the triangles' vertex order). Vertices in no triangle get (0, 0, 0)."""
    v = np.asarray(vertices, np.float32)
    t = np.asarray(triangles)
    a, b, c = v[t[:, 0]], v[t[:, 1]], v[t[:, 2]]
    e1, e2 = b - a, c - a
    fn = (e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1],  # cross product; length = 2 * area
          e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2],
          e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    idx = t.T.reshape(-1)
    n = np.stack([np.bincount(idx, np.tile(f, 3), len(v)) for f in fn], axis=1)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, norm, out=np.zeros_like(n), where=norm > 0).astype(np.float32)


def render_shaded(model_vertices_px: np.ndarray, triangles: np.ndarray, height: int, width: int,
                  color: tuple[int, int, int] = (200, 200, 200), *, ambient: float = 0.2,
                  background: np.ndarray | None = None, raster: Raster | None = None) -> np.ndarray:
    """Render a projected mesh (V, 3: pixel x, y, depth) as a Lambert-shaded surface -> (H, W, 3) uint8.

    `color` is the albedo (channel order as the caller uses, e.g. RGB); `background` (H, W, 3) uint8 is
    painted under the mesh (black when None); `raster` reuses an existing raster of the same mesh.
    """
    height, width = int(height), int(width)
    if raster is None:
        raster = rasterize(model_vertices_px, triangles, height, width)
    if background is None:
        out = np.zeros((height, width, 3), np.uint8)
    else:
        bg = np.asarray(background)
        if bg.shape != (height, width, 3):
            raise ValueError(f"background must be ({height}, {width}, 3), got {bg.shape}")
        out = bg.astype(np.uint8, copy=True)
    if raster.window is None:
        return out
    x0, y0, x1, y1 = raster.window
    n = interpolate(raster, vertex_normals(model_vertices_px, triangles), triangles)[y0:y1, x0:x1]
    mask = raster.triangle[y0:y1, x0:x1] >= 0
    length = np.sqrt((n * n).sum(axis=-1))
    facing = np.abs(n[..., 2]) / np.maximum(length, 1e-12)  # view direction = the depth axis
    shade = ambient + (1.0 - ambient) * facing
    col = np.asarray(color, np.float32)
    shaded = np.clip(shade[..., None] * col + 0.5, 0, 255).astype(np.uint8)
    win = out[y0:y1, x0:x1]
    np.copyto(win, shaded, where=mask[..., None])
    return out
