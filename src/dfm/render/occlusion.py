"""Occluders in front of the face (a hand, a cup, hair): which frames and which part of the face.

A hand over the mouth breaks the warp renderer twice: a pool frame with a hand lends the hand to
other frames (a laughing face gets fingers pasted on it), and in the occluded frame itself the
renderer paints a retrieved mouth or the dark cavity OVER the fingers. Both need to know where the
face is hidden. No hand or segmentation model is available offline, so occlusion is detected as an
appearance outlier of the person's own skin:

1. Sample points: a few hundred skin vertices of the render mesh (about one per `cell_cm` square of
   the neutral face; eye openings, inner lips and the mouth opening left out: they legitimately change
   with the expression), projected with each frame's fitted camera and expression, so a point is the
   same spot of skin in every frame.
2. Features per point and frame: the blurred grey level (minus the frame's median over the points:
   exposure) and the local gradient energy (divided by the frame's median: contrast). A hand has its
   own shading and its own edges (finger gaps, nails) where the face has none, and hides the face's
   (lip line, nostrils, folds).
3. Expected appearance: per point, a robust (Huber, IRLS) linear regression of each feature on the
   frame's head pose and the first principal components of its expression, over every frame seen. Pose
   and expression legitimately change shading and folds (a laugh bulges the cheeks); what they cannot
   explain is an outlier. A second round down-weights the frames the first one found occluded, so a
   long occlusion does not teach the model that a hand is part of the face.
4. Per point robust z = |residual| / (the point's residual scale); smoothed over the point's
   neighbours (median of 7: an occluder is a blob, not a single point) and over +-`temporal` frames
   (median: it persists). A point is occluded when z > `z_threshold`; a frame's occlusion score is
   the share of occluded points.

Uses: FramePool.build leaves out frames whose (temporally smoothed) score reaches `pool_threshold`,
plus their neighbours and short gaps between occluded runs (`pool_dilate`, `pool_gap`): a pool can
spare frames, a hand must never be lent. WarpRenderer keeps the input pixels over the occluded points
of the frame it renders (`keep_mask`: discs around the occluded points, closed into one region, dilated
and feathered) and reports the share. The model needs `min_frames` valid frames; with fewer it is off.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.ndimage import maximum_filter1d, median_filter
from scipy.spatial import cKDTree

from dfm.face.track import FaceTrack, project_vertices
from dfm.render.mesh import PART_FACE, RenderMesh, _smooth_ellipse


@dataclass(frozen=True)
class OcclusionParams:
    """Tuning of the occlusion detector (see the module doc)."""

    cell_cm: float = 0.6  # one sample point per cell of the neutral face (cm)
    blur: float = 0.0085  # grey-level blur sigma, fraction of the face size (15 cm * camera scale)
    n_components: int = 6  # expression principal components used as regressors
    huber: float = 2.0  # Huber threshold (residual scales)
    iterations: int = 5  # IRLS iterations per round
    rounds: int = 2  # fit, down-weight the occluded frames, refit
    occluded_weight: float = 0.2  # weight of frames found occluded in the next round
    z_threshold: float = 3.0  # a point is occluded beyond this robust z
    temporal: int = 2  # +- frames of the temporal median of z
    frame_threshold: float = 0.04  # a frame is occluded when this share of points is
    pool_threshold: float = 0.03  # pool: leave out runs of frames whose share reaches this and that ...
    strong_threshold: float = 0.08  # ... hold a frame whose 5-frame median share reaches this ...
    pool_dilate: int = 6  # ... and this many frames around them ...
    pool_gap: int = 40  # ... and gaps shorter than this between occluded runs
    min_frames: int = 30  # fewer valid frames: no model (occlusion handling off)
    mask_radius_cm: float = 0.9  # keep mask: disc around each occluded point (cm on the face)
    mask_close_cm: float = 1.6  # ... closed into one region with a kernel of this size
    mask_feather_cm: float = 0.4  # ... and feathered by this much
    min_points: int = 4  # fewer occluded points (after smoothing) than this: no keep mask
    mask_window: int = 3  # keep mask: a point counts as occluded when it is within +- this many frames


MODEL_FRAMES = 3000  # at most this many frames fit the occlusion model (spread over the video)
SCORE_BLOCK = 1024  # frames scored at a time

# per-mesh caches (weak: they go with the mesh)
_POINTS: "weakref.WeakKeyDictionary[RenderMesh, dict]" = weakref.WeakKeyDictionary()


def sample_points(mesh: RenderMesh, cell_cm: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """(points, neighbours): skin vertex indices of the render mesh (P,) spread one per cell, and the
    indices (P, 7) of each point's nearest points (itself first) on the neutral face."""
    cache = _POINTS.setdefault(mesh, {})
    key = ("points", float(cell_cm))
    if key not in cache:
        nv = mesh.neutral
        face = mesh.vertex_part == PART_FACE
        # all the visible skin (cheeks and jaw included), wider than the retrieval regions: a hand on the
        # jaw must be seen even where no appearance is borrowed
        skin = np.maximum(_smooth_ellipse(nv, (0.0, -3.6), (6.6, 5.4), 0.35), _smooth_ellipse(nv, (0.0, 6.6), (8.2, 4.6), 0.35))
        eyes = np.maximum(_smooth_ellipse(nv, (3.15, 3.45), (2.6, 1.8), 0.01),
                          _smooth_ellipse(nv, (-3.15, 3.45), (2.6, 1.8), 0.01)) > 0.5
        lips = _smooth_ellipse(nv, (0.0, -3.4), (2.6, 1.0), 0.01) > 0.5
        cand = np.nonzero(face & (skin > 0.5) & ~eyes & ~lips)[0]
        cells: dict[tuple[int, int], int] = {}
        for v in cand:
            cells.setdefault((int(np.floor(nv[v, 0] / cell_cm)), int(np.floor(nv[v, 1] / cell_cm))), int(v))
        pts = np.array(sorted(cells.values()), np.int64)
        k = min(7, len(pts))
        nb = cKDTree(nv[pts, :2]).query(nv[pts, :2], k=k)[1].reshape(len(pts), k) if len(pts) else np.zeros((0, 1), int)
        cache[key] = (pts, np.asarray(nb, np.int64))
    return cache[key]


def frame_features(image: np.ndarray, points_xy: np.ndarray, face_px: float, blur: float = 0.0085) -> np.ndarray:
    """Features (P, 2) of one frame at the points' image positions: [grey - median, gradient / median]."""
    img = np.asarray(getattr(image, "image", image))
    h, w = img.shape[:2]
    sigma = max(blur * face_px, 0.7)
    m = int(np.ceil(4 * sigma)) + 2
    x0 = int(max(np.floor(points_xy[:, 0].min()) - m, 0))
    y0 = int(max(np.floor(points_xy[:, 1].min()) - m, 0))
    x1 = int(min(np.ceil(points_xy[:, 0].max()) + m + 1, w))
    y1 = int(min(np.ceil(points_xy[:, 1].max()) + m + 1, h))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return np.zeros((len(points_xy), 2), np.float32)
    sub = img[y0:y1, x0:x1]
    g = cv2.cvtColor(sub, cv2.COLOR_RGB2GRAY).astype(np.float32) if sub.ndim == 3 else sub.astype(np.float32)
    g1 = cv2.GaussianBlur(g, (0, 0), 0.75 * sigma)
    gx = cv2.Sobel(g1, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(g1, cv2.CV_32F, 0, 1)
    gm = cv2.GaussianBlur(cv2.magnitude(gx, gy), (0, 0), sigma)
    gl = cv2.GaussianBlur(g, (0, 0), sigma)
    mx = (points_xy[:, 0] - x0).astype(np.float32)[None]
    my = (points_xy[:, 1] - y0).astype(np.float32)[None]
    lv = cv2.remap(gl, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
    gv = cv2.remap(gm, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
    return np.stack([lv - np.median(lv), gv / max(float(np.median(gv)), 1e-3)], axis=1).astype(np.float32)


def project_points(mesh: RenderMesh, points: np.ndarray, expression: np.ndarray, rotation: np.ndarray,
                   translation: np.ndarray, scale: float) -> np.ndarray:
    """Image positions (P, 2) of the sample points of a frame."""
    cache = _POINTS.setdefault(mesh, {})
    key = ("deltas", np.asarray(points).tobytes())
    d = cache.get(key)
    if d is None:
        d = cache[key] = np.asarray(mesh.deltas[(points[:, None] * 3 + np.arange(3)).ravel()].toarray(), np.float32)
    v = mesh.base[points] + (d @ np.asarray(expression, np.float32)).reshape(-1, 3)
    return project_vertices(v, rotation, translation, scale)[:, :2]


def track_key(track: FaceTrack) -> str:
    """A fingerprint of a track (which video/analysis an occlusion result belongs to)."""
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(track.expression, np.float32).tobytes())
    h.update(np.ascontiguousarray(track.translation, np.float32).tobytes())
    return h.hexdigest()


@dataclass
class OcclusionModel:
    """Expected appearance of the sample points given pose and expression (robust regression)."""

    points: np.ndarray  # (P,) render-mesh vertex indices
    neighbours: np.ndarray  # (P, k)
    mean_expression: np.ndarray  # (53,)
    components: np.ndarray  # (C, 53)
    pc_scale: np.ndarray  # (C,)
    rot_mean: np.ndarray  # (6,)
    rot_scale: np.ndarray  # (6,)
    coef: np.ndarray  # (F, K, P) regression coefficients per feature
    resid_scale: np.ndarray  # (F, P)
    params: OcclusionParams

    def regressors(self, expression: np.ndarray, rotation: np.ndarray) -> np.ndarray:
        e = np.atleast_2d(np.asarray(expression, np.float64))
        r = np.asarray(rotation, np.float64).reshape(len(e), 9)[:, [2, 5, 6, 7, 1, 3]]
        pc = (e - self.mean_expression) @ self.components.T / self.pc_scale
        return np.concatenate([np.ones((len(e), 1)), pc, (r - self.rot_mean) / self.rot_scale], axis=1)

    def z(self, features: np.ndarray, expression: np.ndarray, rotation: np.ndarray) -> np.ndarray:
        """Robust z (N, P) of features (N, P, F) for frames with these expressions/rotations (max over
        features, spatially smoothed: median over each point's neighbours)."""
        x = self.regressors(expression, rotation)
        f = np.asarray(features, np.float64).reshape(len(x), len(self.points), -1)
        z = np.zeros((len(x), len(self.points)))
        for k in range(f.shape[-1]):
            z = np.maximum(z, np.abs(f[..., k] - x @ self.coef[k]) / self.resid_scale[k])
        return np.median(z[:, self.neighbours], axis=2)

    @classmethod
    def fit(cls, features: np.ndarray, expression: np.ndarray, rotation: np.ndarray, mesh: RenderMesh,
            params: OcclusionParams | None = None) -> tuple["OcclusionModel", np.ndarray]:
        """Fit on frames' features (N, P, F) -> (model, z (N, P) of those frames, spatially smoothed)."""
        p = params or OcclusionParams()
        pts, nb = sample_points(mesh, p.cell_cm)
        e = np.asarray(expression, np.float64)
        mean = e.mean(axis=0)
        _, _, vt = np.linalg.svd(e - mean, full_matrices=False)
        comps = vt[: min(p.n_components, len(vt))]
        pcs = (e - mean) @ comps.T
        r = np.asarray(rotation, np.float64).reshape(len(e), 9)[:, [2, 5, 6, 7, 1, 3]]
        model = cls(points=pts, neighbours=nb, mean_expression=mean, components=comps,
                    pc_scale=np.maximum(pcs.std(axis=0), 1e-6), rot_mean=r.mean(axis=0),
                    rot_scale=np.maximum(r.std(axis=0), 1e-6), coef=np.zeros(0), resid_scale=np.zeros(0), params=p)
        x = model.regressors(e, rotation)
        f = np.asarray(features, np.float64)
        frame_w = np.ones(len(x))
        z = np.zeros(f.shape[:2])
        for rnd in range(max(1, p.rounds)):
            coefs, scales = [], []
            for k in range(f.shape[-1]):
                b, s = _huber_fit(x, f[..., k], frame_w, p.huber, p.iterations)
                coefs.append(b)
                scales.append(np.maximum(s, 0.5 * np.median(s)))
            model.coef, model.resid_scale = np.stack(coefs), np.stack(scales)
            z = model.z(f, e, rotation)
            share = (z > p.z_threshold).mean(axis=1)
            smooth = median_filter(share, 5, mode="nearest")
            bad = maximum_filter1d((smooth > p.frame_threshold).astype(np.uint8), 11) > 0
            frame_w = np.where(bad, p.occluded_weight, 1.0)
        return model, z


def _huber_fit(x: np.ndarray, y: np.ndarray, frame_w: np.ndarray, c: float, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column of y (N, P): Huber IRLS fit on x (N, K) with frame weights -> coef (K, P), scale (P,)."""
    n, k = x.shape
    w = np.repeat(frame_w[:, None], y.shape[1], axis=1)
    ridge = 1e-3 * np.eye(k)
    ridge[0, 0] = 0.0
    b = np.zeros((k, y.shape[1]))
    s = np.ones(y.shape[1])
    # each column's normal matrix sum_n w[n, p] x_n x_n^T as one matrix product over the regressors' outer
    # products (a three-operand einsum loops in C without BLAS: ~40x slower)
    xx = (x[:, :, None] * x[:, None, :]).reshape(n, k * k)
    for _ in range(iterations):
        a = (w.T @ xx).reshape(-1, k, k) + ridge * max(float(frame_w.sum()), 1.0)
        rhs = (w * y).T @ x
        b = np.linalg.solve(a, rhs[..., None])[..., 0].T
        res = y - x @ b
        s = np.sqrt((w * res * res).sum(axis=0) / np.maximum(w.sum(axis=0), 1e-6)) + 1e-3
        u = np.abs(res) / (c * s)
        w = np.where(u < 1.0, 1.0, 1.0 / np.maximum(u, 1e-6)) * frame_w[:, None]
    return b, s


@dataclass
class VideoOcclusion:
    """Occlusion of the frames of one video that a pool saw, plus the model to score other frames."""

    key: str  # track_key of the video's track
    model: OcclusionModel
    frames: np.ndarray  # (N,) frame indices scored
    z: np.ndarray  # (N, P) float16 robust z (spatially and temporally smoothed)
    share: np.ndarray  # (N,) share of occluded points
    excluded: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # frames kept out of the pool

    def lookup(self, index: int, window: int = 0) -> np.ndarray | None:
        """z (P,) of a scored frame (the maximum over the scored frames within +-window: an occluder
        that shows clearly a few frames away is there, entering or leaving), None if not scored."""
        j = np.searchsorted(self.frames, index)
        if not (j < len(self.frames) and self.frames[j] == index):
            return None
        a = np.searchsorted(self.frames, index - window)
        b = np.searchsorted(self.frames, index + window, side="right")
        return self.z[a:b].max(axis=0).astype(np.float32)

    @property
    def occluded_frames(self) -> np.ndarray:
        return self.frames[self.share >= self.model.params.frame_threshold]


def analyse_video(mesh: RenderMesh, track: FaceTrack, frames: np.ndarray, features: np.ndarray,
                  params: OcclusionParams | None = None) -> VideoOcclusion | None:
    """Fit the model on the features (N, P, F) of frames (N,) of one track and score them; None if too
    few frames. `excluded` = the frames a pool must not use (see the module doc)."""
    p = params or OcclusionParams()
    frames = np.asarray(frames, np.int64)
    if len(frames) < p.min_frames:
        return None
    # Memory: the robust fit keeps ~25 kB of float64 work arrays per frame, so long videos fit the model
    # on MODEL_FRAMES frames spread over the video and then score every frame block by block.
    if len(frames) > MODEL_FRAMES:
        rows = np.unique(np.linspace(0, len(frames) - 1, MODEL_FRAMES).round().astype(np.int64))
        model, _ = OcclusionModel.fit(features[rows], track.expression[frames[rows]], track.rotation[frames[rows]], mesh, p)
        z = np.empty((len(frames), len(model.points)), np.float32)
        for a in range(0, len(frames), SCORE_BLOCK):
            b = min(len(frames), a + SCORE_BLOCK)
            z[a:b] = model.z(features[a:b], track.expression[frames[a:b]], track.rotation[frames[a:b]])
    else:
        model, z = OcclusionModel.fit(features, track.expression[frames], track.rotation[frames], mesh, p)
    # temporal median over +-temporal frames of the (frame-ordered) scores
    if p.temporal > 0 and len(frames) > 2 * p.temporal:
        z = median_filter(z, size=(2 * p.temporal + 1, 1), mode="nearest")
    share = (z > p.z_threshold).mean(axis=1)
    # pool exclusion on the full timeline, with hysteresis: runs of frames at or above pool_threshold
    # that contain a frame whose 5-frame median reaches strong_threshold (a persistent occluder), gaps
    # up to pool_gap between such runs, and pool_dilate frames around them
    t = int(frames.max()) + 1
    timeline = np.zeros(t, np.float32)
    timeline[frames] = share
    strong = median_filter(timeline, 5, mode="nearest") >= p.strong_threshold
    weak = timeline >= p.pool_threshold
    bad = np.zeros(t, bool)
    n_runs, runs = _runs(weak | strong)
    for r in range(1, n_runs + 1):
        run = runs == r
        if strong[run].any():
            bad |= run
    if bad.any() and p.pool_gap > 0:
        idx = np.nonzero(bad)[0]
        for a, b in zip(idx[:-1], idx[1:]):
            if 1 < b - a <= p.pool_gap:
                bad[a:b] = True
    if p.pool_dilate > 0:
        bad = maximum_filter1d(bad.astype(np.uint8), 2 * p.pool_dilate + 1) > 0
    excluded = frames[bad[frames]]
    return VideoOcclusion(key=track_key(track), model=model, frames=frames, z=z.astype(np.float16),
                          share=share.astype(np.float32), excluded=excluded)


def _runs(mask: np.ndarray) -> tuple[int, np.ndarray]:
    """Label the runs of True in a 1-D bool array: (count, labels) with 0 outside runs."""
    m = np.asarray(mask, bool)
    starts = m & ~np.concatenate([[False], m[:-1]])
    labels = np.cumsum(starts) * m
    return int(starts.sum()), labels


def keep_mask(points_xy: np.ndarray, occluded: np.ndarray, box: tuple[int, int, int, int], px_per_cm: float,
              params: OcclusionParams | None = None, neighbours: np.ndarray | None = None) -> np.ndarray | None:
    """Soft mask (h, w) float32 over box (x0, y0, x1, y1) frame pixels: 1 over the occluder (the region
    of the occluded points, closed, dilated, feathered), 0 elsewhere; None when too few points.

    neighbours (P, k): the points' neighbours; the occluded set then grows by one ring first (the
    spatial median that made the flags robust eats the occluder's rim)."""
    p = params or OcclusionParams()
    if int(occluded.sum()) < p.min_points:
        return None
    if neighbours is not None:
        occluded = occluded | occluded[neighbours].any(axis=1)
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    if h <= 0 or w <= 0:
        return None
    m = np.zeros((h, w), np.uint8)
    r = max(int(round(p.mask_radius_cm * px_per_cm)), 1)
    for x, y in points_xy[occluded]:
        cv2.circle(m, (int(round(x - x0)), int(round(y - y0))), r, 1, -1)
    k = max(int(round(p.mask_close_cm * px_per_cm)) | 1, 3)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    # drop isolated specks: components smaller than ~3 discs
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    min_area = 3 * np.pi * r * r
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] < min_area:
            m[lab == i] = 0
    if not m.any():
        return None
    f = max(p.mask_feather_cm * px_per_cm, 0.5)
    soft = cv2.GaussianBlur(m.astype(np.float32), (0, 0), f)
    # full strength over the region itself, soft outside it
    return np.maximum(soft * 2.0, m.astype(np.float32)).clip(0.0, 1.0)
