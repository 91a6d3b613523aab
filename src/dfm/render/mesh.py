"""The part of the ICT face model that the warp renderer draws, with per-vertex region weights.

Built once per person (identity): a vertex subset (the Face surface, the mouth interior — socket, gums,
tongue, teeth — and the eyeballs), its triangles with a part label, soft region weights on the
vertices (the retrieval regions "mouth", "lower" face and "upper" face, defined in the neutral model's
centimetre coordinates so the masks follow the geometry in every frame) and, per region, a fixed set of
key vertices whose model-space positions describe that region's expression (used to match frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from dfm.face.model import FaceModel
from dfm.render.eyes import eye_rims

PART_FACE = 0  # skin surface (the ICT "Face" region: holes at the mouth and the eyes)
PART_EYE = 1  # eyeballs and eye sockets: kept from the original frame
PART_MOUTH = 2  # mouth socket, gums, tongue, teeth: the inner mouth

FACE_REGIONS = ("Face",)
EYE_REGIONS = ("Eyeball left", "Eyeball right", "Eye socket left", "Eye socket right")
MOUTH_REGIONS = ("Mouth socket", "Gums and tongue", "Teeth")

# Retrieval regions, in the order of RenderMesh.region_weights' columns ("mouth" = inner mouth).
REGIONS: tuple[str, ...] = ("mouth", "lower", "upper")


def _smooth_ellipse(p: np.ndarray, centre: tuple[float, float], radii: tuple[float, float],
                    falloff: float) -> np.ndarray:
    """1 inside an axis-aligned ellipse in (x, y), smoothly 0 beyond it (falloff in radius units)."""
    d = np.sqrt(((p[:, 0] - centre[0]) / radii[0]) ** 2 + ((p[:, 1] - centre[1]) / radii[1]) ** 2)
    t = np.clip((d - 1.0) / falloff + 1.0, 0.0, 1.0)  # 0 at d <= 1 - falloff, 1 at d >= 1
    return (1.0 - t * t * (3.0 - 2.0 * t)).astype(np.float32)


def region_weights_for(neutral: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Soft per-vertex weights (V, 3) for REGIONS from neutral positions (cm) and per-vertex parts.

    mouth: the inner-mouth surfaces. lower: lips, perioral skin, nasolabial folds, cheeks, chin (not the
    nose).
    upper: brows, forehead, glabella, crow's feet, the lids and the skin around the eyes — minus the eye
    openings themselves (the eyeballs, i.e. the gaze, stay the original frame's warped pixels; the lids
    follow the target, see dfm.edits.eyes).
    """
    p = neutral
    face = (part == PART_FACE).astype(np.float32)
    mouth = (part == PART_MOUTH).astype(np.float32)
    # the nose keeps its own (warped) pixels: its underside shows differently in other head poses
    nose = _smooth_ellipse(p, (0.0, -0.2), (2.2, 2.0), 0.4)
    # front of the lower face only: the jaw line and the underside of the chin turn away from the camera
    # and show neck, hair or background in sources with another head pose (dark seams when borrowed)
    lower = _smooth_ellipse(p, (0.0, -3.2), (5.6, 4.3), 0.35) * face * (1.0 - nose)
    upper = _smooth_ellipse(p, (0.0, 6.6), (8.2, 4.6), 0.35) * face
    # the eye openings (iris, sclera and the lid margins around them) stay the original's: a source's
    # gaze is never pasted. The lids above and below are retrieved with the rest of the upper face.
    eyes = np.maximum(_smooth_ellipse(p, (3.15, 3.45), (1.75, 0.8), 0.45),
                      _smooth_ellipse(p, (-3.15, 3.45), (1.75, 0.8), 0.45))
    upper *= 1.0 - eyes
    # the two skin regions share a soft seam under the eyes: normalise where they overlap
    total = lower + upper
    over = total > 1.0
    lower[over] /= total[over]
    upper[over] /= total[over]
    return np.stack([mouth, lower, upper], axis=1).astype(np.float32)


@dataclass(frozen=True, eq=False)
class RenderMesh:
    """Vertex subset of the face model for rendering one person (identity fixed)."""

    vertex_index: np.ndarray  # (Vs,) indices into the full model's vertices
    triangles: np.ndarray  # (T, 3) int32 indices into the subset
    triangle_part: np.ndarray  # (T,) int8: PART_*
    vertex_part: np.ndarray  # (Vs,) int8
    neutral: np.ndarray  # (Vs, 3) float32: the generic neutral (cm), e.g. texture coordinates
    base: np.ndarray  # (Vs, 3) float32: neutral + identity (cm)
    deltas: sparse.csr_matrix  # (Vs * 3, 53) float32 expression deltas of the subset (tiny ones dropped)
    key_deltas: dict[str, np.ndarray]  # region -> (53, K * 3) dense deltas of its key vertices
    region_weights: np.ndarray  # (Vs, len(REGIONS)) float32 soft masks
    key_vertices: dict[str, np.ndarray]  # region -> (K,) indices into the subset
    face_vertices: np.ndarray  # (Vf,) subset indices of the Face surface (for boxes)
    mouth_view_triangles: np.ndarray  # (Tm,) rows of `triangles` near the mouth (visibility raster)
    mouth_view_vertices: np.ndarray  # vertices those triangles use
    appearance_vertices: np.ndarray  # vertices whose pixels retrieval may copy (any region weight > 0)
    inner_lip_pairs: np.ndarray  # (3, 2) subset indices of upper/lower inner-lip landmarks (61/67, 62/66, 63/65)
    eye_rims: tuple = ()  # (EyeRim, EyeRim): lid margins of the eye openings (dfm.render.eyes)
    mouth_vertices: np.ndarray | None = None  # vertices of the inner mouth's (PART_MOUTH) triangles

    @classmethod
    def build(cls, model: FaceModel, identity: np.ndarray | None = None, n_keys: int = 96,
              hidden_eye_z: float = 8.5, hidden_mouth_z: float = 8.0, delta_tolerance: float = 1e-4) -> "RenderMesh":
        """Build for one identity. Triangles whose every neutral z is below hidden_eye_z (eyes) or
        hidden_mouth_z (teeth, gums, tongue) are left out (never visible from the front). Expression
        deltas below delta_tolerance cm are dropped (stored sparse: most shapes are local)."""
        groups = [(name, part) for names, part in
                  ((FACE_REGIONS, PART_FACE), (EYE_REGIONS, PART_EYE), (MOUTH_REGIONS, PART_MOUTH)) for name in names]
        tris = [(model.triangles_of(model.region_faces(name)), part) for name, part in groups]
        part_full = np.full(model.n_vertices, -1, np.int8)
        for name, part in groups:
            part_full[model.region_vertices(name)] = part
        # drop surfaces a camera in front of the face cannot see: the back of the eyeballs and eye sockets,
        # the back teeth and the back of the gums/tongue (the mouth socket stays whole: it lines the cavity)
        keep_tris = []
        for (t, part), (name, _) in zip(tris, groups):
            zmax = model.neutral[t, 2].max(axis=1)
            if part == PART_EYE:
                t = t[zmax > hidden_eye_z]
            elif name in ("Teeth", "Gums and tongue"):
                t = t[zmax > hidden_mouth_z]
            keep_tris.append((t, part))
        # keep only the vertices that are drawn (plus the whole Face surface)
        vertex_index = np.union1d(np.concatenate([t.ravel() for t, _ in keep_tris]),
                                  model.region_vertices(FACE_REGIONS[0])).astype(np.int64)
        vertex_part = part_full[vertex_index]
        lookup = np.full(model.n_vertices, -1, np.int64)
        lookup[vertex_index] = np.arange(len(vertex_index))
        triangles = np.concatenate([lookup[t] for t, _ in keep_tris]).astype(np.int32)
        triangle_part = np.concatenate([np.full(len(t), p, np.int8) for t, p in keep_tris])
        socket = np.concatenate([np.full(len(t), name == "Mouth socket") for (t, _), (name, _) in zip(keep_tris, groups)])
        if (triangles < 0).any():
            raise ValueError("render mesh triangles reference vertices outside the subset")

        base = model.vertices(identity, None, index=vertex_index)
        dense = np.asarray(model.expression_deltas[:, vertex_index], np.float32).reshape(model.expression_deltas.shape[0], -1)
        deltas = sparse.csr_matrix(np.where(np.abs(dense) > delta_tolerance, dense, 0.0).T.astype(np.float32))
        neutral = np.asarray(model.neutral[vertex_index], np.float32)
        weights = region_weights_for(neutral, vertex_part)

        # key vertices: lip/inner-mouth surface for "mouth", evenly spread region members otherwise
        face_vertices = np.nonzero(vertex_part == PART_FACE)[0]
        keys: dict[str, np.ndarray] = {}
        lip = face_vertices[_smooth_ellipse(neutral[face_vertices], (0.0, -3.4), (3.2, 1.6), 0.01) > 0.5]
        keys["mouth"] = _spread(lip, n_keys)
        for r, name in enumerate(REGIONS[1:], start=1):
            members = face_vertices[weights[face_vertices, r] > 0.6]
            keys[name] = _spread(members, n_keys)

        # what a frame shows at its mouth: the lips and the skin around them (Face triangles near the mouth,
        # reaching past the mouth socket's extent) in front of the inner mouth. The socket alone stands for
        # the inner mouth there: it lines the whole cavity, so wherever teeth, gums or tongue show, the
        # socket would too (they only sit in front of it), at less than half the triangles to rasterise
        near = _smooth_ellipse(neutral, (0.0, -3.2), (5.2, 3.8), 0.01) > 0.5
        mouth_view = np.nonzero((near[triangles].all(axis=1) & (triangle_part == PART_FACE)) | socket)[0]
        key_deltas = {}
        for name, kv in keys.items():
            cols = (kv[:, None] * 3 + np.arange(3)).ravel()
            key_deltas[name] = np.ascontiguousarray(dense[:, cols])
        return cls(vertex_index=vertex_index, triangles=triangles, triangle_part=triangle_part,
                   vertex_part=vertex_part, neutral=neutral, base=base, deltas=deltas, key_deltas=key_deltas,
                   region_weights=weights, key_vertices=keys, face_vertices=face_vertices,
                   mouth_view_triangles=mouth_view,
                   mouth_view_vertices=np.unique(triangles[mouth_view]),
                   appearance_vertices=np.nonzero(weights.max(axis=1) > 0)[0],
                   inner_lip_pairs=lookup[np.asarray(model.landmarks68)[[[61, 67], [62, 66], [63, 65]]]],
                   eye_rims=eye_rims(neutral, triangles, np.nonzero(triangle_part == PART_FACE)[0]),
                   mouth_vertices=np.unique(triangles[triangle_part == PART_MOUTH]))

    @property
    def n_vertices(self) -> int:
        return int(self.vertex_index.shape[0])

    def vertices(self, expression: np.ndarray) -> np.ndarray:
        """Model-space vertices (Vs, 3) cm of this person with the given 53 expression weights."""
        e = np.asarray(expression, np.float32)
        return self.base + (self.deltas @ e).reshape(-1, 3)

    def lip_gap(self, expressions: np.ndarray) -> np.ndarray:
        """Inner-lip opening (N,) in cm (upper minus lower inner lip height, averaged over 3 pairs)."""
        e = np.atleast_2d(np.asarray(expressions, np.float32))
        pairs = self.inner_lip_pairs
        rows = (pairs.ravel()[:, None] * 3 + 1).ravel()  # y coordinates
        y = self.base[pairs.ravel(), 1][None, :] + (self.deltas[rows] @ e.T).T  # (N, 6)
        y = y.reshape(len(e), -1, 2)
        return (y[..., 0] - y[..., 1]).mean(axis=1)

    def key_features(self, expressions: np.ndarray, region: str) -> np.ndarray:
        """Expression part of the key vertices' positions, (N, K*3) cm, for a batch of expressions (N, 53).

        Identity cancels in differences, so frames of one person compare by these alone.
        """
        e = np.atleast_2d(np.asarray(expressions, np.float32))
        return e @ self.key_deltas[region]


def _spread(indices: np.ndarray, n: int) -> np.ndarray:
    """At most n members of `indices`, evenly spaced in index order (deterministic)."""
    if len(indices) <= n:
        return np.asarray(indices, np.int64)
    return np.asarray(indices[np.linspace(0, len(indices) - 1, n).round().astype(int)], np.int64)
