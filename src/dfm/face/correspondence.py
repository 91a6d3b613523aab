"""Dense correspondence between MediaPipe's 468 mesh landmarks and the ICT-FaceKit face surface.

Each MediaPipe vertex i is bound to a point on an ICT triangle: (3 vertex ids, 3 barycentric weights).
Built once from the two neutral meshes (both in cm, same axes):
  1. rigid: a similarity transform aligning 51 semantic landmarks (brows, nose, eyes, lips of the
     68-point scheme, which both models know) — MediaPipe -> ICT;
  2. non-rigid: alternately bind each MediaPipe vertex to its closest point on the ICT Face region and
     deform the ICT face with its own identity modes (regularised least squares) towards MediaPipe's
     mean face, re-aligning rigidly each time. Deforming within the identity space keeps the ICT
     surface a plausible face, so the final closest points pair features with features;
  3. the barycentric bindings are kept on the ICT topology, so they hold for any identity/expression.
The result is a derived asset cached in the user cache (keyed by the inputs' hashes), never committed.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfm.errors import CacheWarning
from dfm.face.model import FaceModel, read_obj
from dfm.io.files import atomic_output, sha256_file

CORRESPONDENCE_VERSION = 1

# MediaPipe mesh indices of the 68-point (Multi-PIE / iBUG) landmarks, in 68-point order. Points 0-16
# (jaw line) are listed for completeness but not used as anchors: the ICT model's jaw landmarks sit
# high near the ears, a different definition from MediaPipe's face contour.
MEDIAPIPE_68 = np.array([
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,  # jaw 0-16
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,  # brows 17-26
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose 27-35
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # eyes 36-47
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips 48-59
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips 60-67
], dtype=np.int32)
ANCHORS_68 = np.arange(17, 68)


@dataclass(frozen=True)
class Correspondence:
    """MediaPipe vertex i <-> point sum_k bary[i,k] * ICT_vertex[vertex_ids[i,k]]."""

    vertex_ids: np.ndarray  # (468, 3) int32
    bary: np.ndarray  # (468, 3) float32
    distance: np.ndarray  # (468,) cm: refined MediaPipe vertex to its ICT surface point
    weight: np.ndarray  # (468,) fitting weight: lower on the face outline, whose points slide with pose

    def points(self, vertices: np.ndarray) -> np.ndarray:
        """Evaluate the bound points on a mesh (V, 3) or a batch of meshes (..., V, 3) -> (..., 468, 3)."""
        return np.einsum("...ikc,ik->...ic", vertices[..., self.vertex_ids, :], self.bary)

    def basis(self, deltas: np.ndarray) -> np.ndarray:
        """Restrict a stack of vertex deltas (K, V, 3) to the bound points: (K, 468, 3)."""
        return np.einsum("kijc,ij->kic", deltas[:, self.vertex_ids, :], self.bary).astype(np.float32)

    def save(self, path: Path) -> None:
        with atomic_output(path, suffix=".npz") as tmp:
            np.savez(tmp, vertex_ids=self.vertex_ids, bary=self.bary, distance=self.distance,
                     weight=self.weight, version=CORRESPONDENCE_VERSION)

    @classmethod
    def load(cls, path: Path) -> "Correspondence":
        with np.load(path) as z:
            return cls(z["vertex_ids"], z["bary"], z["distance"], z["weight"])


def read_canonical_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe canonical mesh: vertices (468, 3) cm and triangles (898, 3)."""
    verts, _, faces, _, _, _ = read_obj(path)
    return verts, faces[:, :3]


def build_correspondence(model: FaceModel, canonical_vertices: np.ndarray, canonical_triangles: np.ndarray,
                         iterations: int = 4, identity_reg: float = 1.0, outline_weight: float = 0.3
                         ) -> Correspondence:
    ict = model.neutral.astype(np.float64)
    mp = canonical_vertices.astype(np.float64)
    anchors_mp = MEDIAPIPE_68[ANCHORS_68]
    s, R, t = similarity_transform(mp[anchors_mp], ict[model.landmarks68[ANCHORS_68]])
    aligned = s * mp @ R.T + t
    tris = model.triangles_of(model.region_faces("Face"))
    face_vertices = np.unique(tris)
    id_deltas = model.identity_deltas[:, face_vertices].astype(np.float64)  # (K, Vf, 3)
    local = np.full(len(ict), -1)
    local[face_vertices] = np.arange(len(face_vertices))
    surface = ict.copy()
    identity = np.zeros(len(id_deltas))
    for _ in range(iterations):
        # Non-rigid step: the ICT identity space deforms the ICT face towards MediaPipe's mean face,
        # so closest points pair up parts that correspond, not just parts that happen to be near.
        vertex_ids, bary, _ = closest_points_on_mesh(aligned, surface, tris)
        A = np.einsum("kpjc,pj->pck", id_deltas[:, local[vertex_ids]], bary).reshape(-1, len(id_deltas))
        rest = np.einsum("pjc,pj->pc", ict[vertex_ids], bary).reshape(-1)
        identity = np.linalg.solve(A.T @ A + identity_reg * np.eye(A.shape[1]), A.T @ (aligned.reshape(-1) - rest))
        surface = ict.copy()
        surface[face_vertices] += np.tensordot(identity, id_deltas, 1)
        target = np.einsum("pjc,pj->pc", surface[vertex_ids], bary)
        s, R, t = similarity_transform(mp, target)
        aligned = s * mp @ R.T + t
    vertex_ids, bary, dist = closest_points_on_mesh(aligned, surface, tris)
    weight = np.ones(len(mp), np.float32)
    weight[boundary_vertices(canonical_triangles)] = outline_weight
    weight[dist > 0.4] = np.minimum(weight[dist > 0.4], 0.3)  # loosely bound points count less
    return Correspondence(vertex_ids.astype(np.int32), bary.astype(np.float32), dist.astype(np.float32), weight)


def boundary_vertices(triangles: np.ndarray) -> np.ndarray:
    """Vertices on the open boundary of a triangle mesh (edges used by one triangle only)."""
    edges = np.sort(np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    return np.unique(uniq[counts == 1])


def load_or_build_correspondence(model: FaceModel, model_path: Path, canonical_path: Path,
                                 cache_dir: Path) -> Correspondence:
    """The cached derived asset, built on first use (a second or so)."""
    key = hashlib.sha256(
        f"{sha256_file(model_path)}:{sha256_file(canonical_path)}:{CORRESPONDENCE_VERSION}".encode()
    ).hexdigest()[:16]
    path = Path(cache_dir) / f"mp_ict_correspondence_{key}.npz"
    if path.exists():
        try:
            return Correspondence.load(path)
        except Exception as e:  # a damaged cache file (truncated, garbled): build it again, atomically
            warnings.warn(f"cached correspondence {path.name} is damaged ({type(e).__name__}: {e}); building it again",
                          CacheWarning, stacklevel=2)
    corr = build_correspondence(model, *read_canonical_mesh(canonical_path))
    corr.save(path)
    return corr


def similarity_transform(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None
                         ) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted Umeyama: s, R, t minimising sum w ||s R src + t - dst||^2 (R proper)."""
    w = np.ones(len(src)) if weights is None else weights
    s, R, t = similarity_transforms(np.asarray(src, np.float64)[None], np.asarray(dst, np.float64)[None], w)
    return float(s[0]), R[0], t[0]


def similarity_transforms(src: np.ndarray, dst: np.ndarray, weights: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`similarity_transform` for T point sets at once (T, P, 3) -> s (T,), R (T, 3, 3), t (T, 3): one
    batched SVD instead of T small numpy calls (the fit's pose solve of every frame)."""
    w = np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst  # (T, 3)
    xs, xd = src - mu_s[:, None], dst - mu_d[:, None]
    cov = np.swapaxes(xd * w[:, None], 1, 2) @ xs
    U, S, Vt = np.linalg.svd(cov)
    D = np.ones((len(src), 3))
    D[:, 2] = np.sign(np.linalg.det(U @ Vt))
    R = (U * D[:, None, :]) @ Vt  # U diag(D) Vt
    var_s = (w * (xs**2).sum(-1)).sum(-1)
    s = (S * D).sum(-1) / var_s
    t = mu_d - ((s[:, None, None] * R) @ mu_s[:, :, None])[..., 0]
    return s, R, t


def closest_points_on_mesh(points: np.ndarray, vertices: np.ndarray, triangles: np.ndarray, k: int = 24
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each point: the triangle (vertex ids) and barycentrics of its closest surface point."""
    # imported here: the correspondence is built once and cached, and scipy.spatial costs ~0.45 s to import
    # in every process that fits (the parallel fit's workers import this module to unpickle their task)
    from scipy.spatial import cKDTree

    centroids = vertices[triangles].mean(1)
    _, cand = cKDTree(centroids).query(points, k=k)
    a, b, c = (vertices[triangles[cand][..., j]] for j in range(3))  # (N, k, 3)
    q, bary = _closest_on_triangles(points[:, None, :], a, b, c)
    d = np.linalg.norm(q - points[:, None, :], axis=-1)
    best = d.argmin(1)
    rows = np.arange(len(points))
    return triangles[cand[rows, best]], bary[rows, best], d[rows, best]


def _closest_on_triangles(p, a, b, c):
    """Closest point on triangles abc to p (Ericson, Real-Time Collision Detection §5.1.5), vectorised."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = p - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = p - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = va + vb + vc
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(denom != 0, vb / denom, 0.0)
        w = np.where(denom != 0, vc / denom, 0.0)
        bary = np.stack([1 - v - w, v, w], -1)
        # Edge and vertex regions, checked in order of precedence (later assignments win).
        t_ab = np.clip(d1 / (d1 - d3), 0, 1)
        t_ac = np.clip(d2 / (d2 - d6), 0, 1)
        t_bc = np.clip((d4 - d3) / ((d4 - d3) + (d5 - d6)), 0, 1)
    cases = [
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), lambda: np.stack([0 * t_bc, 1 - t_bc, t_bc], -1)),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), lambda: np.stack([1 - t_ac, 0 * t_ac, t_ac], -1)),
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), lambda: np.stack([1 - t_ab, t_ab, 0 * t_ab], -1)),
        ((d6 >= 0) & (d5 <= d6), lambda: np.broadcast_to([0.0, 0.0, 1.0], bary.shape)),
        ((d3 >= 0) & (d4 <= d3), lambda: np.broadcast_to([0.0, 1.0, 0.0], bary.shape)),
        ((d1 <= 0) & (d2 <= 0), lambda: np.broadcast_to([1.0, 0.0, 0.0], bary.shape)),
    ]
    for mask, value in cases:
        bary = np.where(mask[..., None], value(), bary)
    bary = np.nan_to_num(bary)
    q = bary[..., 0:1] * a + bary[..., 1:2] * b + bary[..., 2:3] * c
    return q, bary
