"""Shading that follows the new geometry: the expression ratio image of the person's own mesh.

A warp moves the skin's pixels but keeps their brightness. Where an expression turns the skin — the
cheeks bulging and the folds beside the nose deepening in a smile, the skin bunching over a lowered
brow, the chin pushed up — the warped face keeps the original frame's shading, and a smile drawn on a
face that never smiled in its video reads as stretched lips (the webcam clip, 2026-12-04). Liu, Shan &
Zhang ("Expressive expression mapping with ratio images", SIGGRAPH 2001) carry such changes with the
ratio of two images of one surface under one light, before and after the expression. Here both images
are the person's mesh — in the frame's fitted expression and in the target — shaded Lambert-wise by a
light at the camera, compared at the same surface point (each pixel of the target's raster reads both
shadings at the same triangle and barycentric weights), so the ratio is exactly 1 wherever the
expression leaves the surface's facing as it was:

    shading(n) = ambient + (1 - ambient) * |n_z|        ratio = shading(n_target) / shading(n_original)

The light at the camera is a generic stand-in for the frame's own (a fold that turns away from the
viewer darkens whatever the light, like ambient occlusion). Towards the silhouette (either surface's
|n_z| under `edge`) the ratio fades to 1: a small turn there is the ratio of two small numbers, and the
outline is where the warp fades out anyway. The ratio is clipped to [1 - limit, 1 + limit] and multiplies
all three channels (the skin keeps its colour). Only the Face surface is relit (not the eyes or the
inner mouth); its vertex normals come from its own triangles, so the lips' do not bend into the mouth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfm.compiled import CompiledKernels
from dfm.render.flow import FaceFlow
from dfm.render.mesh import PART_FACE, RenderMesh
from dfm.render.raster import interpolate
from dfm.render.shading import vertex_normals


@dataclass(frozen=True)
class RelightParams:
    strength: float = 1.0  # exponent on the ratio (0 = off, 1 = the Lambert ratio)
    ambient: float = 0.5  # share of the light that does not depend on the facing
    limit: float = 0.25  # the ratio stays within [1 - limit, 1 + limit]
    edge: tuple[float, float] = (0.2, 0.45)  # |n_z| over which the ratio fades in from the silhouette


def face_triangles(mesh: RenderMesh) -> np.ndarray:
    """The triangles of the Face surface (the skin and the lips)."""
    return mesh.triangles[mesh.triangle_part == PART_FACE]


def facing(projected: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(Vs,) |n_z| of each vertex's normal over `triangles` (projected: frame pixels x, y and depth); 0 for
    vertices in none of them."""
    return np.abs(vertex_normals(np.asarray(projected, np.float32), triangles)[:, 2])


def facing_pair(original: np.ndarray, target: np.ndarray, triangles: np.ndarray,
                backend: str | None = None) -> np.ndarray:
    """(Vs, 2) `facing` of both projections: a numba kernel when numba is there (one pass over the
    triangles, ~10x faster than two of NumPy's bincounts; the same values to float rounding), else NumPy.
    `backend` or DFM_RELIGHT_BACKEND forces one (numpy | numba)."""
    if KERNELS.choose(backend) == "numba":
        out = np.zeros((len(original), 2), np.float32)
        KERNELS.get()(np.ascontiguousarray(original, np.float32), np.ascontiguousarray(target, np.float32),
                      np.ascontiguousarray(triangles, np.int64), out)
        return out
    return np.stack([facing(original, triangles), facing(target, triangles)], axis=1)


def _kernel_facing(p0, p1, tris, out):  # pragma: no cover - compiled by numba
    n = np.zeros((p0.shape[0], 6), np.float64)
    for t in range(tris.shape[0]):
        a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
        for k in range(2):
            p = p0 if k == 0 else p1
            e1x, e1y, e1z = p[b, 0] - p[a, 0], p[b, 1] - p[a, 1], p[b, 2] - p[a, 2]
            e2x, e2y, e2z = p[c, 0] - p[a, 0], p[c, 1] - p[a, 1], p[c, 2] - p[a, 2]
            fx, fy, fz = e1y * e2z - e1z * e2y, e1z * e2x - e1x * e2z, e1x * e2y - e1y * e2x
            for v in (a, b, c):
                n[v, 3 * k] += fx
                n[v, 3 * k + 1] += fy
                n[v, 3 * k + 2] += fz
    for v in range(p0.shape[0]):
        for k in range(2):
            x, y, z = n[v, 3 * k], n[v, 3 * k + 1], n[v, 3 * k + 2]
            length = np.sqrt(x * x + y * y + z * z)
            out[v, k] = abs(z) / length if length > 0 else 0.0


def _compile():
    import numba

    return numba.njit(cache=True, nogil=True, fastmath=False, boundscheck=False)(_kernel_facing)


KERNELS = CompiledKernels("relight", "DFM_RELIGHT_BACKEND", _compile)


def warm_up() -> None:
    """Load the compiled kernel now (its on-disk cache), with the argument types real calls use."""
    if KERNELS.choose(None) == "numba":
        p = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
        facing_pair(p, p, np.array([[0, 1, 2]], np.int64))


def shading_ratio(mesh: RenderMesh, original: np.ndarray, target: np.ndarray, flow: FaceFlow,
                  params: RelightParams = RelightParams(), triangles: np.ndarray | None = None) -> np.ndarray | None:
    """(h, w) float32 on the flow's work grid: the target shading over the original's at each face pixel
    of the target raster (`flow.raster`, drawn from `target`), 1 elsewhere; None when it is 1 everywhere
    (nothing to relight). original, target: (Vs, 3) projections, frame pixels + depth; triangles: the
    mesh's `face_triangles` (computed when not given)."""
    if params.strength <= 0.0:
        return None
    face = flow.part == PART_FACE
    if not face.any():
        return None
    tris = face_triangles(mesh) if triangles is None else triangles
    both = facing_pair(original, target, tris)
    f = interpolate(flow.raster, both, mesh.triangles)[face]  # (N, 2): |n_z| before, after
    a = params.ambient
    ratio = (a + (1.0 - a) * f[:, 1]) / (a + (1.0 - a) * f[:, 0])
    lo, hi = params.edge
    u = np.clip((np.minimum(f[:, 0], f[:, 1]) - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    fade = u * u * (3.0 - 2.0 * u)
    ratio = 1.0 + fade * (np.clip(ratio, 1.0 - params.limit, 1.0 + params.limit) - 1.0)
    if params.strength != 1.0:
        ratio = ratio ** params.strength
    if not (np.abs(ratio - 1.0) > 1e-4).any():
        return None
    out = np.ones(face.shape, np.float32)
    out[face] = ratio
    return out


def apply_ratio(crop: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """crop (h, w, 3) uint8 with its brightness times ratio (h, w) -> uint8; pixels at ratio 1 unchanged."""
    out = crop.astype(np.float32) * ratio[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
