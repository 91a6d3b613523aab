"""Dense backward flow of the warp renderer.

For one frame: the ORIGINAL mesh (identity + fitted expression) and the TARGET mesh (identity + target
expression) are projected with the frame's own camera. The target mesh is rasterised on a coarse grid
over the face box with, as per-vertex attribute, each vertex's ORIGINAL projected position: for every
output pixel this says where to sample the original frame (a backward map). Outside the face the
displacement is extended smoothly (push-pull: mask-normalised pyramid fill) and faded to zero across a
margin proportional to the face size, so hair, neck and background bend gently instead of tearing.

Pixels of the target's inner mouth whose surface point the original frame does not show (the lips were
closed there) are flagged `disoccluded`: the warp cannot produce them; retrieval or the dark-cavity
fallback fills them (see retrieval.py / blend.py).

Coordinates: frame pixels with pixel centres at integers (cv2.remap's convention). The coarse "work"
grid covers the crop box [x0, x1) x [y0, y1) with work pixel u at frame x = x0 + (u + 0.5) / sx - 0.5,
which is exactly what cv2.resize assumes, so a work map resized to the crop size is aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfm.render.eyes import widen_eye_openings
from dfm.render.mesh import PART_EYE, PART_MOUTH, RenderMesh
from dfm.render.raster import Raster, interpolate, rasterize


@dataclass(frozen=True)
class CropGrid:
    """A crop box of the frame and the coarse grid laid over it."""

    x0: int
    y0: int
    x1: int  # exclusive
    y1: int  # exclusive
    work_w: int
    work_h: int

    @classmethod
    def make(cls, box: tuple[int, int, int, int], scale: float, max_side: int) -> "CropGrid":
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        s = min(scale, max_side / max(w, h, 1))
        return cls(x0, y0, x1, y1, max(2, int(round(w * s))), max(2, int(round(h * s))))

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def sx(self) -> float:
        return self.work_w / self.width

    @property
    def sy(self) -> float:
        return self.work_h / self.height

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def to_work(self, points: np.ndarray) -> np.ndarray:
        """Frame pixel positions (N, >=2) -> work grid positions (N, 2)."""
        p = np.asarray(points, np.float32)
        return np.stack([(p[:, 0] - self.x0 + 0.5) * self.sx - 0.5, (p[:, 1] - self.y0 + 0.5) * self.sy - 0.5], 1)

    @property
    def step(self) -> float:
        """Distance (frame pixels) between neighbouring work pixels (the mean of both axes)."""
        return 0.5 * (1.0 / self.sx + 1.0 / self.sy)

    def work_positions(self) -> np.ndarray:
        """Frame position (work_h, work_w, 2) of every work pixel."""
        u = (np.arange(self.work_w, dtype=np.float32) + 0.5) / self.sx - 0.5 + self.x0
        v = (np.arange(self.work_h, dtype=np.float32) + 0.5) / self.sy - 0.5 + self.y0
        out = np.empty((self.work_h, self.work_w, 2), np.float32)
        out[..., 0] = u[None, :]
        out[..., 1] = v[:, None]
        return out

    def upsample(self, work: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """A work-grid array resized to the crop (crop_h, crop_w, ...)."""
        return cv2.resize(work, (self.width, self.height), interpolation=interpolation)

    def upsample_box(self, work: np.ndarray, ys: slice, xs: slice, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """Like upsample(work)[ys, xs] (crop-relative slices) but computing only that part.

        One affine resampling (crop pixel x samples work position (x + 0.5) * sx - 0.5, exactly what
        cv2.resize does), several times cheaper than a remap with explicit maps.
        """
        m = np.array([[self.sx, 0.0, (xs.start + 0.5) * self.sx - 0.5],
                      [0.0, self.sy, (ys.start + 0.5) * self.sy - 0.5]], np.float64)
        size = (xs.stop - xs.start, ys.stop - ys.start)
        flags = interpolation | cv2.WARP_INVERSE_MAP
        if work.ndim == 3 and work.shape[2] == 2:  # OpenCV has no fast path for 2 channels: one at a time
            return cv2.merge([cv2.warpAffine(np.ascontiguousarray(work[..., c]), m, size, flags=flags,
                                             borderMode=cv2.BORDER_REPLICATE) for c in range(2)])
        out = cv2.warpAffine(work, m, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        if work.ndim == 3 and out.ndim == 2:
            out = out[..., None]
        return out


def face_box(points: np.ndarray, frame_hw: tuple[int, int], pad: float) -> tuple[int, int, int, int] | None:
    """Integer box around points (N, >=2) padded by `pad` pixels, clipped to the frame; None if empty."""
    h, w = frame_hw
    p = np.asarray(points)[:, :2]
    x0 = int(np.floor(p[:, 0].min() - pad))
    y0 = int(np.floor(p[:, 1].min() - pad))
    x1 = int(np.ceil(p[:, 0].max() + pad)) + 1
    y1 = int(np.ceil(p[:, 1].max() + pad)) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return x0, y0, x1, y1


def rasterize_on_grid(mesh: RenderMesh, projected: np.ndarray, grid: CropGrid,
                      triangles: np.ndarray | None = None,
                      window: tuple[float, float, float, float] | None = None) -> Raster:
    """Rasterise the mesh (projected (Vs, 3) frame pixels + depth) on the grid's work pixels (only inside
    `window`, work pixels (x0, y0, x1, y1), when given)."""
    v = np.empty((projected.shape[0], 3), np.float32)
    v[:, :2] = grid.to_work(projected)
    v[:, 2] = projected[:, 2]
    tris = mesh.triangles if triangles is None else triangles
    return rasterize(v, tris, grid.work_h, grid.work_w, bbox=window)


def push_pull_fill(values: np.ndarray, weight: np.ndarray, min_size: int = 2) -> np.ndarray:
    """Fill a field (h, w, C) where weight (h, w) is 0 by a smooth mask-normalised pyramid extension.

    Known pixels (weight 1) keep their values; unknown ones get a weighted average of their
    neighbourhood at the finest scale where every pixel has data, blended up level by level (push-pull).
    """
    vals = values.astype(np.float32, copy=False)
    wgt = weight.astype(np.float32, copy=False)
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    v, w = vals * wgt[..., None], wgt
    while True:
        levels.append((v, w))
        h_, w_ = w.shape
        if min(h_, w_) <= min_size or (w > 1e-6).all():
            break
        size = ((w_ + 1) // 2, (h_ + 1) // 2)
        v = cv2.resize(v, size, interpolation=cv2.INTER_AREA)
        w = cv2.resize(w, size, interpolation=cv2.INTER_AREA)
        if v.ndim == 2:
            v = v[..., None]
    # pull: from coarse to fine, normalise and fill
    v, w = levels[-1]
    filled = v / np.maximum(w, 1e-6)[..., None]
    for v, w in reversed(levels[:-1]):
        up = cv2.resize(filled, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR)
        if up.ndim == 2:
            up = up[..., None]
        conf = np.clip(w, 0.0, 1.0)[..., None]
        known = v / np.maximum(w, 1e-6)[..., None]
        filled = conf * known + (1.0 - conf) * up
    return filled


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass
class FaceFlow:
    """Backward map of one frame over its face crop (work grid), plus what the renderer needs later."""

    grid: CropGrid
    raster: Raster  # the target mesh on the work grid
    map_work: np.ndarray  # (h, w, 2) float32: frame position in the ORIGINAL frame to sample, per work pixel
    coverage: np.ndarray  # (h, w) bool: the target mesh covers the pixel
    part: np.ndarray  # (h, w) int8: PART_* of the covering triangle, -1 if none
    falloff: np.ndarray  # (h, w) float32: 1 on the face, decaying to 0 across the margin
    moving: np.ndarray  # (h, w) bool: displacement above `still_px` (where warping changes anything)
    disoccluded: np.ndarray  # (h, w) bool: inner-mouth pixels the original frame does not show
    max_displacement_px: float = 0.0  # largest |displacement| component on the grid (frame pixels)

    def full_map(self) -> np.ndarray:
        """Backward map (crop_h, crop_w, 2) float32 at full resolution, for cv2.remap."""
        return self.grid.upsample(self.map_work)



def sample_positions(raster: Raster, mesh: RenderMesh, projected: np.ndarray) -> np.ndarray:
    """Per work pixel, the frame position (h, w, 2) of the same surface point under another projection."""
    return interpolate(raster, np.asarray(projected, np.float32)[:, :2], mesh.triangles)


@dataclass
class MouthView:
    """What one frame shows around its mouth: `shown` (work grid) is True where the inner mouth is visible."""

    grid: CropGrid
    shown: np.ndarray  # (h, w) uint8

    def lookup(self, positions: np.ndarray) -> np.ndarray:
        """Whether the inner mouth is visible at frame positions (..., 2) -> bool (...)."""
        work = self.grid.to_work(positions.reshape(-1, 2)).reshape(positions.shape)
        out = cv2.remap(self.shown, work[..., 0], work[..., 1], cv2.INTER_NEAREST,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return out.astype(bool)


def mouth_view(mesh: RenderMesh, projected: np.ndarray, frame_hw: tuple[int, int], scale: float = 1.0,
               max_side: int = 128, grow: int = 0) -> MouthView | None:
    """Rasterise the lips and skin around the mouth and the inner mouth (socket, gums, tongue, teeth) of a
    projected mesh, around its mouth (see MouthView).

    `grow` > 0 dilates the visible area by that many grid pixels; < 0 removes openings thinner than
    2|grow|+1 pixels (a morphological opening: a one-pixel crack between closed lips is a blend of lip and
    teeth, not a usable view, while a real opening keeps its full extent). None if the mouth is outside
    the frame.
    """
    tri_rows = mesh.mouth_view_triangles
    tri = mesh.triangles[tri_rows]
    box = face_box(projected[mesh.mouth_view_vertices], frame_hw, 2.0)
    if box is None:
        return None
    grid = CropGrid.make(box, scale, max_side)  # max_side caps the cost for big faces
    r = rasterize_on_grid(mesh, projected, grid, tri)
    part = np.where(r.triangle >= 0, mesh.triangle_part[tri_rows][np.maximum(r.triangle, 0)], -1)
    shown = (part == PART_MOUTH).astype(np.uint8)
    if grow:
        kernel = np.ones((2 * abs(grow) + 1, 2 * abs(grow) + 1), np.uint8)
        shown = cv2.dilate(shown, kernel) if grow > 0 else cv2.morphologyEx(shown, cv2.MORPH_OPEN, kernel)
    return MouthView(grid, shown)


@dataclass
class FlowGeometry:
    """The geometry half of a frame's flow (no displacement field): the work grid, the target mesh on it,
    where each work pixel samples the original, and which inner-mouth pixels the original does not show.
    It is all the renderer's source choice reads (WarpRenderer.advance needs nothing more)."""

    grid: CropGrid
    raster: Raster  # the target mesh on the work grid
    coverage: np.ndarray  # (h, w) bool
    part: np.ndarray  # (h, w) int8: PART_* of the covering triangle, -1 if none
    source: np.ndarray  # (h, w, 2) frame position of the same surface point in the original
    disoccluded: np.ndarray  # (h, w) bool: inner-mouth pixels the original frame does not show


def flow_geometry(mesh: RenderMesh, original: np.ndarray, target: np.ndarray, frame_hw: tuple[int, int],
                  face_size: float, *, margin: float = 0.25, scale: float = 0.5, max_side: int = 200,
                  grid: CropGrid | None = None, mouth_only: bool = False) -> FlowGeometry | None:
    """The first half of `compute_flow` (same arguments); None if the face is outside the frame.

    mouth_only: rasterise only the window around the target's inner mouth. Its pixels (`part` ==
    PART_MOUTH, `disoccluded`) are then exactly the full raster's (every triangle that can cover them
    meets the window, and the kernel's fixed-point arithmetic does not depend on the window's origin);
    elsewhere the arrays are empty. The source choice reads nothing else (WarpRenderer.advance).
    """
    if grid is None:
        face_pts = np.concatenate([original[mesh.face_vertices], target[mesh.face_vertices]])
        box = face_box(face_pts, frame_hw, margin * face_size + 2.0)
        if box is None:
            return None
        grid = CropGrid.make(box, scale, max_side)
    window = None
    if mouth_only and mesh.mouth_vertices is not None and len(mesh.mouth_vertices):
        at = grid.to_work(target[mesh.mouth_vertices])
        lo, hi = np.floor(at.min(axis=0)) - 2, np.ceil(at.max(axis=0)) + 3
        window = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
    raster = rasterize_on_grid(mesh, target, grid, window=window)
    coverage = raster.triangle >= 0
    part = np.where(coverage, mesh.triangle_part[np.maximum(raster.triangle, 0)], -1).astype(np.int8)
    src = sample_positions(raster, mesh, original)
    disoccluded = np.zeros_like(coverage)
    mouth = part == PART_MOUTH
    if mouth.any():
        view = mouth_view(mesh, original, frame_hw, grow=-1)
        shown = view.lookup(src) if view is not None else np.zeros_like(mouth)
        disoccluded = mouth & ~shown
    return FlowGeometry(grid, raster, coverage, part, src, disoccluded)


def compute_flow(mesh: RenderMesh, original: np.ndarray, target: np.ndarray, frame_hw: tuple[int, int],
                 face_size: float, *, margin: float = 0.25, scale: float = 0.5, max_side: int = 200,
                 grid: CropGrid | None = None, still_px: float = 0.02) -> FaceFlow | None:
    """Backward flow of one frame.

    original, target: (Vs, 3) the render mesh projected with the frame's camera (frame pixels + depth).
    face_size: the face's size in pixels (e.g. camera scale * 15 cm); the fade-out margin is
    `margin * face_size` beyond the face. scale / max_side: work-grid resolution relative to the frame
    and its cap. still_px: displacements below this (pixels) count as no motion (`FaceFlow.moving`).
    Returns None if the face is outside the frame.
    """
    geo = flow_geometry(mesh, original, target, frame_hw, face_size, margin=margin, scale=scale, max_side=max_side,
                        grid=grid)
    if geo is None:
        return None
    grid, coverage = geo.grid, geo.coverage
    pos = grid.work_positions()
    disp = np.where(coverage[..., None], geo.source - pos, 0.0).astype(np.float32)

    # extend outside the face and fade out across the margin
    margin_work = max(margin * face_size * 0.5 * (grid.sx + grid.sy), 1.0)
    ext = push_pull_fill(disp, coverage.astype(np.float32))
    dist = cv2.distanceTransform((~coverage).astype(np.uint8), cv2.DIST_L2, 5)
    falloff = (1.0 - _smoothstep(dist / margin_work)).astype(np.float32)
    disp = np.where(coverage[..., None], disp, ext * falloff[..., None])

    map_work = (pos + disp).astype(np.float32)
    if mesh.eye_rims:  # lids opening wider than the original's: stretch the original's eye (render/eyes.py)
        map_work = widen_eye_openings(map_work, pos, geo.part == PART_EYE, mesh.eye_rims, original, target)
        disp = map_work - pos
    size = np.maximum(np.abs(disp[..., 0]), np.abs(disp[..., 1]))
    return FaceFlow(grid=grid, raster=geo.raster, map_work=map_work, coverage=coverage,
                    part=geo.part, falloff=falloff, moving=size > still_px, disoccluded=geo.disoccluded,
                    max_displacement_px=float(size.max()) if size.size else 0.0)
