"""NMFC images and face/mouth/eye masks for a fitted frame (Head2Head / Head2Head++ conditioning).

NMFC = Normalised Mean Face Coordinates: every visible surface point is coloured by the (x, y, z) of the
same point on the *mean* face (the ICT neutral, no identity, no expression), each axis mapped to [0, 1]
by the bounding box of the neutral's Face region. So the colour says *which* point of the face shows
there, whatever the person's shape, expression or pose; background is 0.

What is rasterised (`NMFC_REGIONS`): the ICT "Face" region, the mouth interior ("Mouth socket",
"Gums and tongue", "Teeth"), both eyeballs and both eye sockets (the pockets behind the lids, so the
eye openings have no holes). Skipped: "Head and Neck" (back of the head, neck stub), lacrimal fluid,
eye blend/occlusion shells and eyelashes (thin transparent or hair geometry). Colours of the interior
surfaces are clipped to [0, 1] (the socket reaches behind the Face box).

Masks (all (H, W) bool, full frame):
- `face`: pixels where the visible surface is the Face region (skin and lips).
- `mouth`: the inner mouth = the area enclosed by the projected inner-lip contour, less the pixels where
  the Face surface itself (a lip, or the nose or chin of a turned head) is what shows, plus every pixel
  where a mouth-interior surface (socket, teeth, gums/tongue) is visible. A closed mouth gives (almost)
  nothing.
- `mouth_region`: a convex area around the lips for metrics (Mouth-APD): the convex hull of the 20
  Multi-PIE lip landmarks (landmarks68[48:68]) dilated by `MOUTH_REGION_MARGIN` x mouth width.
- `eye_left`, `eye_right` (the subject's left = model +x, which is the image RIGHT in a frontal view): the
  area enclosed by the eyelid opening, less the pixels where the Face surface (lid, nose) shows, plus any
  visible eyeball pixel of that eye. A closed eye gives (almost) nothing.
- `foreground` (property): every rendered pixel (where the NMFC image is non-zero); Head2Head's "face mask".

The contours come from the mesh topology, not from hand-made index lists: the Face region's boundary loops
are its outer border, the mouth hole and the two eye holes. The lips and lids are tubes of concentric
vertex rings around those holes (ring k = vertices at edge distance k from the hole); the inner-lip
contour / eyelid opening is the ring whose frontal projection on the neutral encloses the least area (the
lip contact line: ring 7 of the ICT mouth hole; the lid margin: ring 1 of each eye hole).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from dfm.face.model import FaceModel
from dfm.render.raster import Raster, interpolate, rasterize

__all__ = [
    "NMFC_REGIONS", "MOUTH_INTERIOR_REGIONS", "MOUTH_REGION_MARGIN", "NmfcResult", "FaceContours",
    "nmfc_coordinates", "face_contours", "render_nmfc", "render_nmfc_projected", "nmfc_triangles",
]

NMFC_REGIONS: tuple[str, ...] = (
    "Face", "Mouth socket", "Gums and tongue", "Teeth",
    "Eyeball left", "Eyeball right", "Eye socket left", "Eye socket right",
)
MOUTH_INTERIOR_REGIONS: tuple[str, ...] = ("Mouth socket", "Gums and tongue", "Teeth")
MOUTH_REGION_MARGIN = 0.2  # mouth_region = lip hull dilated by this fraction of the mouth width
_MAX_RING = 16


@dataclass
class NmfcResult:
    image: np.ndarray  # (H, W, 3) float32 in [0, 1], 0 on background
    face: np.ndarray  # (H, W) bool: visible Face region
    mouth: np.ndarray  # (H, W) bool: inner mouth (inside the inner-lip contour + visible interior surfaces)
    mouth_region: np.ndarray  # (H, W) bool: dilated convex area around the lips (metrics)
    eye_left: np.ndarray  # (H, W) bool: subject's left eye opening (image right when frontal)
    eye_right: np.ndarray  # (H, W) bool: subject's right eye opening
    raster: Raster  # the underlying raster (triangle indices refer to `nmfc_triangles(model)`)

    @property
    def foreground(self) -> np.ndarray:
        """(H, W) bool: every pixel where some NMFC surface is rendered."""
        return self.raster.mask


@dataclass(frozen=True)
class FaceContours:
    """Vertex loops (ordered, model vertex indices) found from the Face region's topology."""

    outer: np.ndarray  # outer border of the Face region
    mouth_hole: np.ndarray  # boundary of the mouth hole (where the mouth socket is stitched)
    eye_hole_left: np.ndarray
    eye_hole_right: np.ndarray
    inner_lip: np.ndarray  # the lip contact line (inner-lip contour)
    eyelid_left: np.ndarray  # the lid margin of the subject's left eye
    eyelid_right: np.ndarray
    inner_lip_ring: int  # edge distance of inner_lip from mouth_hole
    eyelid_ring: tuple[int, int]  # (left, right) edge distances from the eye holes


# ------------------------------------------------------------------------------------------ topology

def _region_faces(model: FaceModel, names: tuple[str, ...]) -> np.ndarray:
    return np.concatenate([model.region_faces(n) for n in names])


def _polygon_edges(faces: np.ndarray) -> np.ndarray:
    """Directed edges (E, 2) of polygons (F, 4; -1 pads triangles), in each polygon's winding."""
    quad = faces[:, 3] >= 0
    e = [faces[:, [0, 1]], faces[:, [1, 2]], faces[quad][:, [2, 3]], faces[quad][:, [3, 0]],
         faces[~quad][:, [2, 0]]]
    return np.concatenate(e).astype(np.int64)


def _boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Ordered boundary loops of a polygon mesh (edges used by exactly one polygon)."""
    edges = _polygon_edges(faces)
    key = np.sort(edges, axis=1)
    _, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    bnd = edges[cnt[inv.ravel()] == 1]
    nxt = dict(zip(bnd[:, 0].tolist(), bnd[:, 1].tolist()))
    if len(nxt) != len(bnd):
        raise ValueError("non-manifold boundary: a vertex starts two boundary edges")
    loops, seen = [], set()
    for a in bnd[:, 0].tolist():
        if a in seen:
            continue
        loop = [a]
        seen.add(a)
        c = nxt[a]
        while c != a:
            loop.append(c)
            seen.add(c)
            c = nxt[c]
        loops.append(np.asarray(loop, np.int64))
    return loops


def _ordered_ring(ring: np.ndarray, adj: sp.csr_matrix) -> np.ndarray | None:
    """Order the vertex set `ring` as a cycle along mesh edges; None if it is not one simple cycle."""
    if ring.size < 3:
        return None
    sub = adj[ring][:, ring].tocsr()
    if not (np.diff(sub.indptr) == 2).all():
        return None
    order = [0]
    prev, cur = -1, 0
    for _ in range(ring.size - 1):
        nb = sub.indices[sub.indptr[cur]:sub.indptr[cur + 1]]
        nxt = nb[0] if nb[0] != prev else nb[1]
        prev, cur = cur, int(nxt)
        order.append(cur)
    if len(set(order)) != ring.size or cur not in sub.indices[sub.indptr[0]:sub.indptr[1]]:
        return None
    return ring[np.asarray(order)]


def _polygon_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))


def _narrowest_ring(hole: np.ndarray, adj: sp.csr_matrix, neutral: np.ndarray) -> tuple[np.ndarray, int]:
    """The concentric ring around `hole` whose frontal (x, y) projection encloses the least area."""
    dist = csgraph.dijkstra(adj, unweighted=True, indices=hole, min_only=True, limit=_MAX_RING + 0.5)
    best, best_k, best_area = None, -1, np.inf
    for k in range(_MAX_RING + 1):
        ring = _ordered_ring(np.flatnonzero(dist == k), adj)
        if ring is None:
            break  # rings stop being clean loops beyond the lip/lid tube
        area = _polygon_area(neutral[ring, :2])
        if area < best_area:
            best, best_k, best_area = ring, k, area
    if best is None:
        raise ValueError("no vertex ring around a face opening")
    return best, best_k


def face_contours(model: FaceModel) -> FaceContours:
    """Find the Face region's border, mouth hole, eye holes, inner-lip contour and eyelid openings."""
    return _setup(model).contours


def nmfc_coordinates(model: FaceModel) -> np.ndarray:
    """(V, 3) float32: each vertex's mean-face (ICT neutral) position, normalised to [0, 1] per axis by
    the Face region's bounding box (vertices outside that box are clipped)."""
    face_v = model.region_vertices("Face")
    lo = model.neutral[face_v].min(axis=0)
    hi = model.neutral[face_v].max(axis=0)
    return np.clip((model.neutral - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def nmfc_triangles(model: FaceModel) -> np.ndarray:
    """(T, 3) model vertex indices of the triangles the NMFC renderer rasterises (NmfcResult.raster's)."""
    s = _setup(model)
    return s.vidx[s.tris]


# ------------------------------------------------------------------------------------- per-model setup

class _Setup:
    """Everything about a model that does not change from frame to frame."""

    def __init__(self, model: FaceModel):
        faces = model.faces
        # triangles of the rendered regions, re-indexed onto the vertex subset they use
        tris, region = [], []
        for r, name in enumerate(NMFC_REGIONS):
            t = model.triangles_of(model.region_faces(name))
            tris.append(t)
            region.append(np.full(len(t), r, np.uint8))
        tris_g = np.concatenate(tris)
        self.vidx = np.unique(tris_g)  # model vertex indices used
        self.tris = np.searchsorted(self.vidx, tris_g).astype(np.int64)
        self.tri_region = np.concatenate(region)
        self.colors = nmfc_coordinates(model)[self.vidx]
        self.neutral = model.neutral[self.vidx].astype(np.float32)
        # expression deltas of the moving vertices only, as one contiguous (53, M*3) matrix
        ed = model.expression_deltas[:, self.vidx]
        moving = np.abs(ed).max(axis=(0, 2)) > 0
        self.moving = np.flatnonzero(moving)
        self.expr = np.ascontiguousarray(ed[:, moving].reshape(ed.shape[0], -1), dtype=np.float32)
        self._model = weakref.ref(model)
        self._identity_cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

        # contours from the Face region's topology
        face_faces = faces[model.region_faces("Face")]
        loops = _boundary_loops(face_faces)
        if len(loops) < 4:
            raise ValueError(f"the Face region has {len(loops)} boundary loops; expected border, mouth, 2 eyes")
        loops.sort(key=len, reverse=True)
        outer = loops[0]
        centroids = np.array([model.neutral[lp].mean(axis=0) for lp in loops])
        # the three holes nearest the front, among the remaining loops: mouth (lowest) and eyes (higher)
        holes = sorted(range(1, len(loops)), key=lambda i: -len(loops[i]))[:3]
        holes.sort(key=lambda i: centroids[i, 1])
        mouth_hole = loops[holes[0]]
        eyes = sorted(holes[1:], key=lambda i: centroids[i, 0])  # -x first = subject's right
        eye_right, eye_left = loops[eyes[0]], loops[eyes[1]]
        e = _polygon_edges(face_faces)
        n = model.n_vertices
        adj = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
        adj = ((adj + adj.T) > 0).astype(np.float64).tocsr()
        inner_lip, k_lip = _narrowest_ring(mouth_hole, adj, model.neutral)
        lid_left, k_left = _narrowest_ring(eye_left, adj, model.neutral)
        lid_right, k_right = _narrowest_ring(eye_right, adj, model.neutral)
        self.contours = FaceContours(
            outer=outer, mouth_hole=mouth_hole, eye_hole_left=eye_left, eye_hole_right=eye_right,
            inner_lip=inner_lip, eyelid_left=lid_left, eyelid_right=lid_right,
            inner_lip_ring=k_lip, eyelid_ring=(k_left, k_right),
        )
        local = lambda g: np.searchsorted(self.vidx, g)  # noqa: E731 - contour vertices are all rendered
        self.inner_lip = local(inner_lip)
        self.lid_left = local(lid_left)
        self.lid_right = local(lid_right)
        self.lips = local(model.landmarks68[48:68].astype(np.int64))
        names = list(NMFC_REGIONS)
        self.face_id = names.index("Face")
        self.interior_ids = np.array([names.index(r) for r in MOUTH_INTERIOR_REGIONS], np.uint8)
        self.eyeball_left_id = names.index("Eyeball left")
        self.eyeball_right_id = names.index("Eyeball right")

    def shape(self, identity: np.ndarray | None, expression: np.ndarray | None) -> np.ndarray:
        """Vertices (n, 3) of the rendered subset, in model cm."""
        base = self._identity_base(identity)
        if expression is None:
            return base.copy()
        ex = np.asarray(expression, np.float32).reshape(-1)
        if ex.shape[0] != self.expr.shape[0]:
            raise ValueError(f"expression must have {self.expr.shape[0]} weights, got {ex.shape[0]}")
        out = base.copy()
        out[self.moving] += (ex @ self.expr).reshape(-1, 3)
        return out

    def _identity_base(self, identity: np.ndarray | None) -> np.ndarray:
        if identity is None:
            return self.neutral
        idv = np.ascontiguousarray(identity, np.float32).reshape(-1)
        key = idv.tobytes()
        with self._lock:
            hit = self._identity_cache.get(key)
            if hit is not None:
                self._identity_cache.move_to_end(key)
                return hit
        model = self._model()
        if model is None:  # pragma: no cover - the setup lives in a WeakKeyDictionary keyed by the model
            raise RuntimeError("face model was released")
        base = model.vertices(identity=idv, index=self.vidx)
        with self._lock:
            self._identity_cache[key] = base
            while len(self._identity_cache) > 4:
                self._identity_cache.popitem(last=False)
        return base


_SETUPS: "weakref.WeakKeyDictionary[FaceModel, _Setup]" = weakref.WeakKeyDictionary()
_SETUP_LOCK = threading.Lock()


def _setup(model: FaceModel) -> _Setup:
    s = _SETUPS.get(model)
    if s is None:
        with _SETUP_LOCK:
            s = _SETUPS.get(model)
            if s is None:
                s = _SETUPS[model] = _Setup(model)
    return s


# ------------------------------------------------------------------------------------------- render

def render_nmfc(model: FaceModel, identity: np.ndarray | None, expression: np.ndarray | None,
                rotation: np.ndarray, translation: np.ndarray, scale: float, height: int, width: int) -> NmfcResult:
    """NMFC image and masks of the model with `identity` (100,) and `expression` (53,) (None: zeros),
    seen by the FaceTrack camera p = scale * rotation @ X + translation, in a height x width frame."""
    s = _setup(model)
    x = s.shape(identity, expression)
    p = (float(scale) * x @ np.asarray(rotation, np.float32).T + np.asarray(translation, np.float32))
    return _render(s, p.astype(np.float32), int(height), int(width))


def render_nmfc_projected(model: FaceModel, vertices_px: np.ndarray, height: int, width: int) -> NmfcResult:
    """Same from an already projected full model mesh `vertices_px` (V, 3) in the FaceTrack pixel frame
    (e.g. `track.project(model.vertices(identity, expression), frame)`)."""
    s = _setup(model)
    v = np.asarray(vertices_px)
    if v.shape != (model.n_vertices, 3):
        raise ValueError(f"vertices_px must be ({model.n_vertices}, 3), got {v.shape}")
    return _render(s, v[s.vidx], int(height), int(width))


def _render(s: _Setup, p: np.ndarray, height: int, width: int) -> NmfcResult:
    raster = rasterize(p, s.tris, height, width, cull_backfaces=True)
    image = interpolate(raster, s.colors, s.tris)
    face = np.zeros((height, width), bool)
    interior = np.zeros((height, width), bool)
    ball_l = np.zeros((height, width), bool)
    ball_r = np.zeros((height, width), bool)
    if raster.window is not None:
        x0, y0, x1, y1 = raster.window
        t = raster.triangle[y0:y1, x0:x1]
        reg = np.where(t >= 0, s.tri_region[np.maximum(t, 0)], 255)
        face[y0:y1, x0:x1] = reg == s.face_id
        interior[y0:y1, x0:x1] = np.isin(reg, s.interior_ids)
        ball_l[y0:y1, x0:x1] = reg == s.eyeball_left_id
        ball_r[y0:y1, x0:x1] = reg == s.eyeball_right_id
    not_face = ~face
    mouth = (_fill(p[s.inner_lip, :2], height, width) & not_face) | interior
    eye_left = (_fill(p[s.lid_left, :2], height, width) & not_face) | ball_l
    eye_right = (_fill(p[s.lid_right, :2], height, width) & not_face) | ball_r
    mouth_region = _dilated_hull(p[s.lips, :2], MOUTH_REGION_MARGIN, height, width)
    return NmfcResult(image=image, face=face, mouth=mouth, mouth_region=mouth_region, eye_left=eye_left,
                      eye_right=eye_right, raster=raster)


_SHIFT = 4  # cv2 fill with 1/16 px vertex precision


def _fill(poly_xy: np.ndarray, height: int, width: int, convex: bool = False) -> np.ndarray:
    canvas = np.zeros((height, width), np.uint8)
    pts = np.rint(poly_xy * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
    if np.abs(pts).max(initial=0) >= (1 << 30) or not np.isfinite(poly_xy).all():
        return canvas.astype(bool)
    if convex:
        cv2.fillConvexPoly(canvas, pts, 1, lineType=cv2.LINE_8, shift=_SHIFT)
    else:
        cv2.fillPoly(canvas, [pts], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return canvas.view(bool)


def _dilated_hull(xy: np.ndarray, margin: float, height: int, width: int) -> np.ndarray:
    """Convex hull of the lip landmarks, Minkowski-dilated by a disc of radius margin * mouth width."""
    if not np.isfinite(xy).all():
        return np.zeros((height, width), bool)
    r = margin * float(np.linalg.norm(xy[0] - xy[6]))  # lip landmarks 48 and 54: the mouth corners
    ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    disc = np.stack([np.cos(ang), np.sin(ang)], axis=1) * r
    pts = (xy[:, None, :] + disc[None]).reshape(-1, 2)
    hull = cv2.convexHull(np.rint(pts * (1 << _SHIFT)).astype(np.int32))
    canvas = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(canvas, hull, 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return canvas.view(bool)
