"""The warp renderer (DESIGN "Renderers", item 1): original frame + original mesh + target mesh -> new frame.

Per frame with a non-zero edit weight w:

1. Geometry. The fitted expression and camera of the frame (lightly smoothed over time, temporal.py)
   give the ORIGINAL mesh; the TARGET expression is moved w of the way from the original to the
   requested one (so a half-weight frame shows a half-way face, never a double image). Gaze and blinks
   keep the original frame's shapes (`keep_eye_shapes`); the lid aperture (eyeWide / eyeSquint, which
   the plan already gives as a difference on top of the original lids, dfm.edits.eyes), the brows,
   cheeks and the skin around the eyes follow the target. The eyeballs are always the original frame's
   warped pixels: retrieval lends lids and the skin around the eyes, never a source's gaze.
2. Warp (flow.py, warp.py): dense backward flow from the two projections, faded out around the face.
   The warped skin then takes the shading of its new facing (relight.py: the ratio of the mesh's
   shading in the target and in the original expression, at the same surface point), so a smile's
   cheeks and the folds beside the mouth darken and lighten as the surface turns.
3. Appearance (retrieval.py, blend.py, mouth.py): for the inner mouth, the lower face and the upper
   face, the pool frame that best matches the target there (hysteresis + cross-fade over time) is
   used. Skin regions: the source is warped to the target geometry through the mesh (its mesh with
   ITS camera -> the target mesh with the CURRENT camera), given the current frame's low-frequency
   shading (ratio image) and blended in multi-band. Inner mouth: the source's visible mouth opening
   is mapped 2-D onto the target's opening (robust to head-pose differences), scaled to the current
   lips' colour and feathered in. The current frame's own inner mouth (warped exactly) competes as
   SELF; a decoded target usually lies BETWEEN the person's real expressions, so the closest real
   frame is used even when it is not a close match, as long as it is clearly closer than SELF
   (retrieval.best_source); inner-mouth pixels nobody can supply get a dark cavity (last resort,
   reported).
4. Occluders (occlusion.py): pools built by FramePool.build hold no frame with something in front of
   the face, and the occluder the pool's detector found in the current frame (a hand) keeps the input's
   pixels (keep mask, reported per frame).
5. The crop goes back into the frame; pixels outside the fade-out margin keep their exact values.

Speed: OpenCV runs single-threaded inside a frame (cv_threads), work-grid arrays are upsampled to
the crop with affine resampling, maps are sampled in fixed point, and per-frame BLAS products are
avoided (their worker threads fight the decoder and encoder for the cores).

Frames with weight 0 (or no tracked face) are returned as the very input object.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable, Iterator

import cv2
import numpy as np

from dfm.face.expressions import EXPRESSION_NAMES, N_EXPRESSIONS
from dfm.face.model import FaceModel
from dfm.face.track import FaceTrack, project_vertices
from dfm.render.blend import laplacian_blend, mouth_cavity, ratio_gain
from dfm.render.flow import (CropGrid, FaceFlow, FlowGeometry, MouthView, compute_flow, flow_geometry, mouth_view,
                             sample_positions)
from dfm.render.mesh import PART_FACE, PART_MOUTH, REGIONS, RenderMesh
from dfm.render.occlusion import frame_features, keep_mask, project_points
from dfm.render.pool import FramePool, PoolFrame
from dfm.render.raster import interpolate
from dfm.render.relight import RelightParams, apply_ratio, face_triangles, shading_ratio
from dfm.render.mouth import MouthShape, mouth_axis, span_map_teeth, stretch
from dfm.render.retrieval import (NONE, SELF, HysteresisParams, HysteresisSelector, MatchParams, add_mouth_penalty,
                                  affect_cost, fold_cost, mouth_self_cost, region_costs, self_cost)
from dfm.render.temporal import TrackGeometry, smooth_geometry
from dfm.render.warp import remap, warp_crop

# gaze and blinks: always the original frame's (the lids' aperture follows the target, see dfm.edits.eyes)
EYE_SHAPES: tuple[str, ...] = tuple(n for n in EXPRESSION_NAMES if n.startswith(("eyeBlink", "eyeLook")))
GAZE_SHAPES: tuple[str, ...] = tuple(n for n in EXPRESSION_NAMES if n.startswith("eyeLook"))


def held_projection(original: np.ndarray, target: np.ndarray, keep: np.ndarray, grid: CropGrid,
                    hold_px: float) -> np.ndarray | None:
    """The target projection (V, 3) held towards the original near kept pixels (an occluder); None when the
    keep mask keeps nothing.

    The keep mask puts the input's pixels back over the occluder and cross-fades across its soft edge. A
    feature that runs under that edge (a brow beside the hand) would show twice there: moved (or retrieved
    from another frame) outside, kept inside, and both half-way in between. Held, each vertex moves by
    smoothstep(d / length) of its displacement, d its original position's distance (frame pixels) from
    the kept pixels and length at least `hold_px`, so the warp and every retrieved source bend the feature into the kept part instead.
    The ramp is at least twice as long as the displacement of any vertex on it: smoothstep's steepest
    slope is 1.5 / length, and a displacement that changed faster than the distance would fold the warp.
    """
    h, w = grid.work_h, grid.work_w
    kept = cv2.resize(np.asarray(keep, np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0.5
    if not kept.any():
        return None
    o = np.asarray(original, np.float32)
    t = np.asarray(target, np.float32)
    dist = cv2.distanceTransform((~kept).astype(np.uint8), cv2.DIST_L2, 3) / float(grid.sx)  # frame pixels
    at = grid.to_work(o)
    d_v = cv2.remap(dist.astype(np.float32), at[:, 0].reshape(1, -1), at[:, 1].reshape(1, -1), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE).reshape(-1)  # the crop holds the face: its edge will do outside
    # the ramp: at least twice the displacement of every vertex it (or that displacement) reaches
    need = 2.0 * np.abs(t[:, :2] - o[:, :2]).max(axis=1)
    near = d_v < np.maximum(hold_px, need)
    length = max(hold_px, float(need[near].max()) if near.any() else 0.0, 1e-6)
    u = np.clip(d_v / length, 0.0, 1.0)
    free_v = u * u * (3.0 - 2.0 * u)
    return (o + free_v[:, None] * (t - o)).astype(np.float32)


@dataclass(frozen=True)
class RenderParams:
    """Tuning of the warp renderer (defaults suit 360p-1080p faces)."""

    margin: float = 0.25  # fade-out margin around the face, fraction of the face size
    flow_scale: float = 0.5  # flow grid resolution relative to the frame
    max_work_side: int = 200  # ... capped to this many grid pixels on the longer side
    keep_eye_shapes: tuple[str, ...] = EYE_SHAPES  # taken from the original frame, never from the target
    regions: tuple[str, ...] = REGIONS  # regions that may use retrieved appearance ("mouth", "lower", "upper")
    sigma_expression: float = 1.0  # temporal smoothing of the fitted expression (frames)
    sigma_pose: float = 1.0  # temporal smoothing of the fitted camera (frames)
    shading_sigma: float = 0.07  # ratio-image low-pass, fraction of the face size
    skin_blend: str = "multiband"  # "multiband" (Laplacian pyramid) or "alpha" for the skin regions
    blend_levels: int = 4  # multi-band levels
    mouth_feather: float = 0.012  # inner-mouth mask feather, fraction of the face size
    face_size_cm: float = 15.0  # model centimetres that make up "the face size"
    cavity_fallback: float = 0.25  # report a mouth fallback when the dark cavity fills more than this share
    match: MatchParams = field(default_factory=MatchParams)
    hysteresis: HysteresisParams = field(default_factory=HysteresisParams)
    source_cache: int = 12  # pool entries whose projections are kept
    occlusion: bool = True  # keep the input's pixels over occluders (a hand) the pool's detector found
    occluder_hold_cm: float = 1.0  # displacement fades to 0 over this distance towards a kept occluder (held_projection)
    cv_threads: int = 1  # OpenCV threads while rendering a frame (0 = leave OpenCV's setting)
    relight: float = RelightParams.strength  # shading of the new geometry (relight.py): strength, 0 = off
    relight_ambient: float = RelightParams.ambient  # its light's share that does not depend on the skin's facing
    relight_limit: float = RelightParams.limit  # its ratio stays within 1 +- this


@dataclass
class FrameReport:
    """What the renderer did for one frame."""

    index: int
    weight: float
    edited: bool
    sources: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # region -> [(frame | SELF | NONE, w)]
    source_videos: dict[str, str] = field(default_factory=dict)  # region -> video of its main pool source
    # ("" = the edited video itself; a collection video's name otherwise)
    fallback: dict[str, bool] = field(default_factory=dict)
    disoccluded_px: int = 0  # inner-mouth pixels (flow grid) the original frame does not show
    cavity_fraction: float = 0.0  # share of the inner mouth painted as the dark cavity (no source showed it)
    max_displacement_px: float = 0.0
    occlusion: float = 0.0  # share of the face's sample points hidden by an occluder (occlusion.py)
    occluded_px: int = 0  # pixels kept from the input because something is in front of the face
    timings_ms: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass
class RenderReport:
    """Per-frame reports of a render plus a summary (the job report quotes `summary()`)."""

    frames: list[FrameReport] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        edited = [f for f in self.frames if f.edited]
        total = np.array([f.timings_ms.get("total", 0.0) for f in edited]) if edited else np.zeros(1)
        out: dict[str, Any] = {
            "frames": len(self.frames),
            "edited": len(edited),
            "ms_per_edited_frame": {"mean": float(total.mean()), "p95": float(np.percentile(total, 95))},
            "fallback_frames": {r: sum(1 for f in edited if f.fallback.get(r)) for r in REGIONS},
            "occluded_frames": sum(1 for f in edited if f.occluded_px > 0),
            "source_frames": {},
            "switches": {},
        }
        for r in REGIONS:
            main = [max(f.sources[r], key=lambda s: s[1])[0] for f in edited if r in f.sources]
            out["source_frames"][r] = sorted({int(s) for s in main if s >= 0})
            out["switches"][r] = int(sum(1 for a, b in zip(main, main[1:]) if a != b))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "frames": [asdict(f) for f in self.frames]}


@dataclass
class _Source:
    """A pool entry prepared for this person: its mesh projected into its crop, and what its mouth shows."""

    frame: PoolFrame
    projected: np.ndarray  # (Vs, 3) crop pixels + depth
    mouth: MouthView | None
    shape: MouthShape | None  # its visible inner mouth (crop pixels), None if the mouth is closed
    lip_colour: np.ndarray | None  # mean colour (3,) of a ring of lips around that opening


@dataclass(frozen=True)
class _Box:
    """A sub-box of the flow crop (crop pixel slices) around what a work-grid mask covers."""

    ys: slice
    xs: slice

    @classmethod
    def around(cls, mask_work: np.ndarray, grid: CropGrid, pad: int = 2) -> "_Box":
        rows = np.flatnonzero(mask_work.any(axis=1))
        cols = np.flatnonzero(mask_work.any(axis=0))
        if rows.size == 0:
            return cls.empty_box()
        y0 = max(int(np.floor((rows[0] - pad + 0.5) / grid.sy - 0.5)), 0)
        y1 = min(int(np.ceil((rows[-1] + pad + 0.5) / grid.sy + 0.5)), grid.height)
        x0 = max(int(np.floor((cols[0] - pad + 0.5) / grid.sx - 0.5)), 0)
        x1 = min(int(np.ceil((cols[-1] + pad + 0.5) / grid.sx + 0.5)), grid.width)
        return cls(slice(y0, y1), slice(x0, x1))

    def inside(self, outer: "_Box") -> "_Box":
        """This box clipped to `outer`, as slices relative to `outer`."""
        y0, y1 = max(self.ys.start, outer.ys.start), min(self.ys.stop, outer.ys.stop)
        x0, x1 = max(self.xs.start, outer.xs.start), min(self.xs.stop, outer.xs.stop)
        return _Box(slice(y0 - outer.ys.start, max(y1, y0) - outer.ys.start),
                    slice(x0 - outer.xs.start, max(x1, x0) - outer.xs.start))

    @property
    def empty(self) -> bool:
        return self.ys.stop <= self.ys.start or self.xs.stop <= self.xs.start

    @classmethod
    def empty_box(cls) -> "_Box":
        return cls(slice(0, 0), slice(0, 0))

    def union(self, other: "_Box") -> "_Box":
        if self.empty:
            return other
        if other.empty:
            return self
        return _Box(slice(min(self.ys.start, other.ys.start), max(self.ys.stop, other.ys.stop)),
                    slice(min(self.xs.start, other.xs.start), max(self.xs.stop, other.xs.stop)))


class WarpRenderer:
    """Training-free renderer: warp the original frame to the target expression, add retrieved appearance.

    model: the face model (or a prebuilt RenderMesh for this person); track: the video's FaceTrack;
    pool: frames whose appearance may be copied (FramePool; None or empty = pure warp + dark cavity);
    params: RenderParams fields as keywords.
    """

    def __init__(self, model: FaceModel | RenderMesh, track: FaceTrack, pool: FramePool | None = None, **params: Any):
        self.params = replace(RenderParams(), **params)
        self.mesh = model if isinstance(model, RenderMesh) else RenderMesh.build(model, track.identity)
        self.track = track
        self.pool = pool if pool is not None else FramePool.empty()
        self.geometry: TrackGeometry = smooth_geometry(track, self.params.sigma_expression, self.params.sigma_pose)
        self._keep_eyes = np.array([EXPRESSION_NAMES.index(n) for n in self.params.keep_eye_shapes], np.int64)
        # retrieval ignores gaze only: a source's lids should match the target's blink state and aperture
        self._ignore = tuple(EXPRESSION_NAMES.index(n) for n in GAZE_SHAPES)
        self._sources: OrderedDict[int, _Source] = OrderedDict()
        self._target_va: np.ndarray | None = None  # the edit's VA for the frame being rendered
        self._open_cache: np.ndarray | None = None
        self.occlusion = self.pool.occlusion_for(track) if self.params.occlusion else None
        self._folds = self.pool.folds_for(track)  # (T,) this video's glabella fold ratios, or None
        self._face_triangles = face_triangles(self.mesh)  # the surface relight.py shades
        self._relight = RelightParams(self.params.relight, self.params.relight_ambient, self.params.relight_limit)
        self.report = RenderReport()
        self.reset()

    # ------------------------------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget temporal state (source choices, cross-fades) and the report."""
        self._end_of_edit()
        self.report = RenderReport()

    def _end_of_edit(self) -> None:
        """A frame without an edit ends the current run: the next edit chooses its sources afresh."""
        self._selectors = {r: HysteresisSelector(self.params.hysteresis) for r in REGIONS}

    # --------------------------------------------------------------------------------------- geometry
    def target_expression(self, index: int, target: np.ndarray, weight: float) -> np.ndarray:
        """The expression actually rendered: original + weight * (target - original), eye shapes kept."""
        orig = self.geometry.expression[index]
        t = np.asarray(target, np.float32).copy()
        if t.shape != (N_EXPRESSIONS,):
            raise ValueError(f"target expression must have {N_EXPRESSIONS} values, got shape {t.shape}")
        t[self._keep_eyes] = orig[self._keep_eyes]
        w = float(np.clip(weight, 0.0, 1.0))
        return (orig + w * (t - orig)).astype(np.float32)

    def rebased_targets(self, targets: np.ndarray, original_share: np.ndarray, first: int = 0) -> np.ndarray:
        """(n, 53) float32: a plan's targets of frames first..first+n-1 with their share of the track's
        fitted expression moved onto this renderer's smoothed one (`TrackGeometry.expression`), the original
        the warp starts from.

        A channel planned as the original plus an offset (kept speech, the eyes) then warps by the offset
        alone. Without this the warp moves the frame by the fit's own frame-to-frame motion as well — its
        difference from the smoothed original — and a talking mouth jittered at twice its motion (landmark
        jitter of a re-tracked talking edit 1.3-1.4 times the input's; 0.7-0.9 times with it).
        """
        t = np.asarray(targets, np.float32)
        frames = slice(first, first + len(t))
        moved = self.geometry.expression[frames] - np.asarray(self.track.expression[frames], np.float32)
        return np.clip(t + np.asarray(original_share, np.float32) * moved, 0.0, 1.0).astype(np.float32)

    def _project(self, vertices: np.ndarray, index: int) -> np.ndarray:
        g = self.geometry
        return project_vertices(vertices, g.rotation[index], g.translation[index], float(g.scale[index]))

    def _source(self, pos: int) -> _Source:
        src = self._sources.get(pos)
        if src is None:
            frame = self.pool.frames[pos]
            proj = frame.project(self.mesh.vertices(frame.expression))
            view = mouth_view(self.mesh, proj, frame.crop.shape[:2], grow=-1)
            shape, lips = None, None
            if view is not None and view.shown.any():
                grid_xy = view.grid.work_positions()
                shape = MouthShape.from_points(grid_xy[view.shown > 0], mouth_axis(frame.rotation),
                                               spacing=view.grid.step)
                k = max(3, int(round(0.04 * 15.0 * frame.scale * frame.crop_scale * view.grid.sx)) | 1)
                ring = (cv2.dilate(view.shown, np.ones((k, k), np.uint8)) > 0) & (view.shown == 0)
                xy = np.rint(grid_xy[ring]).astype(int)
                h, w = frame.crop.shape[:2]
                xy = xy[(xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)]
                if len(xy):
                    lips = frame.crop[xy[:, 1], xy[:, 0]].astype(np.float32).mean(0)
            src = _Source(frame, proj, view, shape, lips)
            self._sources[pos] = src
            while len(self._sources) > self.params.source_cache:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(pos)
        return src

    # ------------------------------------------------------------------------------------------ frame
    def render_frame(self, index: int, image: np.ndarray, target_expression: np.ndarray, weight: float,
                     keep_mask: np.ndarray | None = None, target_va: np.ndarray | None = None) -> np.ndarray:
        """Render one frame (H, W, 3) uint8 RGB; weight 0 (or an untracked frame) returns `image` itself.

        keep_mask: optional (H, W) bool/float in [0, 1], pixels to keep from the input (e.g. a hand in
        front of the face, from an occlusion segmenter); 1 keeps the input pixel exactly. Occluders that
        the pool's detector found in this frame (params.occlusion) are kept the same way.
        """
        # the per-frame images are small (a face crop): OpenCV's worker threads cost more in hand-offs
        # than they save, and steal the cores the decoder and encoder run on
        threads = cv2.getNumThreads()
        if self.params.cv_threads and threads != self.params.cv_threads:
            cv2.setNumThreads(self.params.cv_threads)
        try:
            self._target_va = None if target_va is None else np.asarray(target_va, np.float32)
            return self._render_frame(index, image, target_expression, weight, keep_mask)
        finally:
            if self.params.cv_threads and threads != self.params.cv_threads:
                cv2.setNumThreads(threads)

    def _render_frame(self, index: int, image: np.ndarray, target_expression: np.ndarray, weight: float,
                      keep_mask: np.ndarray | None = None) -> np.ndarray:
        t_start = time.perf_counter()
        rep = FrameReport(index=int(index), weight=float(weight), edited=False)
        self.report.frames.append(rep)
        if not weight > 0.0:
            self._end_of_edit()
            return image
        if not (0 <= index < self.track.n_frames) or not self.geometry.valid[index]:
            rep.note = "no tracked face"
            self._end_of_edit()
            return image
        p = self.params
        h, w = image.shape[:2]
        e_orig = self.geometry.expression[index]
        e_tgt = self.target_expression(index, target_expression, weight)
        v_orig = self.mesh.vertices(e_orig)  # sparse products: single-threaded and predictable (a dense
        v_tgt = self.mesh.vertices(e_tgt)  # BLAS product spins threads that fight the encoder for the cores)
        p_orig = self._project(v_orig, index)
        p_tgt = self._project(v_tgt, index)
        face_px = p.face_size_cm * float(self.geometry.scale[index])

        t0 = time.perf_counter()
        flow = compute_flow(self.mesh, p_orig, p_tgt, (h, w), face_px, margin=p.margin, scale=p.flow_scale,
                            max_side=p.max_work_side)
        if flow is None:
            rep.note = "face outside the frame"
            return image
        grid = flow.grid
        choice_flow = flow  # sources are chosen on the unheld geometry: pixel-free, as `advance` replays them
        k = self._keep_mask(index, image, grid, keep_mask, rep)
        drawn = p_tgt  # the target projection the flow draws
        if k is not None:
            held = held_projection(p_orig, p_tgt, k, grid, p.occluder_hold_cm * float(self.geometry.scale[index]))
            if held is not None:
                held_flow = compute_flow(self.mesh, p_orig, held, (h, w), face_px, margin=p.margin,
                                         scale=p.flow_scale, max_side=p.max_work_side, grid=grid)
                if held_flow is not None:
                    flow, drawn = held_flow, held
        # warp only where something moves; elsewhere the crop keeps the input's pixels
        crop_in = image[grid.slices]
        warped = crop_in.copy()
        mbox = _Box.around(flow.moving, grid, pad=2)
        if not mbox.empty:
            warped[mbox.ys, mbox.xs] = warp_crop(image, grid.upsample_box(flow.map_work, mbox.ys, mbox.xs))
        # the warped skin takes the shading of its new facing (before retrieval: a retrieved source is
        # matched to this shading at low frequencies and keeps its own folds)
        t_relight = time.perf_counter()
        ratio = shading_ratio(self.mesh, p_orig, drawn, flow, self._relight, self._face_triangles)
        if ratio is not None:
            rbox = _Box.around(ratio != 1.0, grid, pad=2)
            warped[rbox.ys, rbox.xs] = apply_ratio(warped[rbox.ys, rbox.xs], grid.upsample_box(ratio, rbox.ys, rbox.xs))
            mbox = mbox.union(rbox)
        t1 = time.perf_counter()
        rep.timings_ms["relight"] = (t1 - t_relight) * 1e3
        rep.timings_ms["flow+warp"] = (t_relight - t0) * 1e3
        rep.disoccluded_px = int(choice_flow.disoccluded.sum())  # read by the choice of the mouth's source
        rep.max_displacement_px = flow.max_displacement_px

        out_crop, abox = self._appearance(index, flow, warped, e_orig, e_tgt, face_px, rep, choice_flow)
        t2 = time.perf_counter()
        rep.timings_ms["appearance"] = (t2 - t1) * 1e3

        # put back the union of what was warped and what got new appearance; pixels outside the
        # fade-out margin (falloff 0) keep the input's exact values, and so do occluders (keep mask)
        ubox = mbox.union(abox)
        result = image.copy()
        if not ubox.empty:
            keep = grid.upsample_box(flow.falloff, ubox.ys, ubox.xs) > 0.0
            region = result[grid.slices][ubox.ys, ubox.xs]
            new = out_crop[ubox.ys, ubox.xs]
            if k is not None:
                k = k[ubox.ys, ubox.xs, None]
                new = np.clip(region + (1.0 - k) * (new.astype(np.float32) - region) + 0.5, 0, 255).astype(np.uint8)
            cv2.copyTo(np.ascontiguousarray(new), keep.astype(np.uint8), region)  # in place (np.copyto(where=) ~50x slower)
        rep.edited = True
        rep.timings_ms["total"] = (time.perf_counter() - t_start) * 1e3
        return result

    def advance(self, index: int, target_expression: np.ndarray, weight: float,
                target_va: np.ndarray | None = None) -> None:
        """Move the temporal state (source choices, cross-fades) on exactly as `render_frame` would for this
        frame, without drawing it (no pixels needed: the choices depend on geometry only). A chunk of a video
        that starts inside an edit replays the edit's earlier frames with this, so it continues from the
        state a serial render has there; nothing is added to the report."""
        self._target_va = None if target_va is None else np.asarray(target_va, np.float32)
        if not weight > 0.0 or not (0 <= index < self.track.n_frames) or not self.geometry.valid[index]:
            self._end_of_edit()
            return
        p = self.params
        e_orig = self.geometry.expression[index]
        e_tgt = self.target_expression(index, target_expression, weight)
        p_orig = self._project(self.mesh.vertices(e_orig), index)
        p_tgt = self._project(self.mesh.vertices(e_tgt), index)
        face_px = p.face_size_cm * float(self.geometry.scale[index])
        # the choice reads the flow's geometry only (compute_flow's first half: about a third of its cost)
        geo = flow_geometry(self.mesh, p_orig, p_tgt, (self.track.height, self.track.width), face_px, margin=p.margin,
                            scale=p.flow_scale, max_side=p.max_work_side, mouth_only=True)
        if geo is None:
            return
        rep = FrameReport(index=int(index), weight=float(weight), edited=False, disoccluded_px=int(geo.disoccluded.sum()))
        self._choose_sources(index, geo, e_orig, e_tgt, rep)

    def _keep_mask(self, index: int, image: np.ndarray, grid: CropGrid, user: np.ndarray | None,
                   rep: FrameReport) -> np.ndarray | None:
        """(crop_h, crop_w) float32 mask of input pixels to keep over the flow crop: the caller's keep_mask
        and the occluder found by the pool's detector; None when nothing is kept."""
        k = None
        if user is not None:
            k = np.asarray(user, np.float32)[grid.slices]
        if self.occlusion is not None:
            t0 = time.perf_counter()
            occ = self.occlusion
            g = self.geometry
            m = occ.model
            z = occ.lookup(index, m.params.mask_window)
            xy = None
            if z is None:  # a frame the pool's detector did not see: score it now
                xy = self._occlusion_points(index)
                f = frame_features(image, xy, 15.0 * float(self.track.scale[index]), m.params.blur)
                z = m.z(f[None], self.track.expression[index][None], self.track.rotation[index][None])[0]
            flagged = z > m.params.z_threshold
            rep.occlusion = float(flagged.mean()) if len(flagged) else 0.0
            auto = None
            if rep.occlusion >= m.params.frame_threshold:
                xy = self._occlusion_points(index) if xy is None else xy
                auto = keep_mask(xy, flagged, (grid.x0, grid.y0, grid.x1, grid.y1), float(g.scale[index]), m.params,
                                 m.neighbours)
            if auto is not None:
                k = auto if k is None else np.maximum(k, auto)
            rep.timings_ms["occlusion"] = (time.perf_counter() - t0) * 1e3
        if k is None or not (k > 0).any():
            return None
        rep.occluded_px = int((k > 0.5).sum())
        return k

    def _occlusion_points(self, index: int) -> np.ndarray:
        """Frame positions (P, 2) of the occlusion detector's sample points in frame `index` (as fitted)."""
        t = self.track
        return project_points(self.mesh, self.occlusion.model.points, t.expression[index], t.rotation[index],
                              t.translation[index], float(t.scale[index]))

    def _mouth_shape(self, flow: FaceFlow | FlowGeometry, index: int) -> MouthShape | None:
        """The target's inner-mouth opening on the flow's grid (None: the mouth is closed)."""
        mouth_work = flow.part == PART_MOUTH
        if not mouth_work.any():
            return None
        return MouthShape.from_points(flow.grid.work_positions()[mouth_work], mouth_axis(self.geometry.rotation[index]),
                                      spacing=flow.grid.step)

    def _choose_sources(self, index: int, flow: FaceFlow | FlowGeometry, e_orig: np.ndarray, e_tgt: np.ndarray, rep: FrameReport
                        ) -> tuple[dict[str, list[tuple[int, float]]], MouthShape | None]:
        """The temporal source choice of every region for this frame ([(source, weight)] per region, from
        the hysteresis selectors), recorded in `rep`, and the target's inner-mouth shape (None: closed).
        It depends on geometry only (meshes, flow masks, pool entries), never on pixels."""
        p = self.params
        g = self.geometry
        mouth_work = flow.part == PART_MOUTH
        has_mouth = bool(mouth_work.any())
        target_shape = self._mouth_shape(flow, index) if has_mouth else None

        choices: dict[str, list[tuple[int, float]]] = {}
        for region in REGIONS:
            if region == "mouth" and not has_mouth:
                continue
            if region not in p.regions:
                choices[region] = [(SELF, 1.0)]
                continue
            ignore = self._ignore
            target_va = self._target_va
            costs = region_costs(self.pool, self.mesh, region, e_tgt, g.rotation[index], float(g.scale[index]), p.match,
                                 ignore=ignore, target_va=target_va)
            if region == "mouth":
                costs = add_mouth_penalty(costs, self._mouth_stretch(costs, self._selectors[region].current,
                                                                     target_shape, float(g.scale[index])), p.match)
                px_per_cm = float(g.scale[index])
                hidden_cm2 = rep.disoccluded_px / (px_per_cm * flow.grid.sx * px_per_cm * flow.grid.sy)
                share = rep.disoccluded_px / max(int(mouth_work.sum()), 1)
                c_self = mouth_self_cost(hidden_cm2, share, p.match)
            else:
                c_self = self_cost(self.mesh, region, e_orig, e_tgt, p.match, ignore)
                if self._folds is not None:
                    c_self += float(fold_cost(self._folds[index], e_tgt, region, p.match))
            c_self += float(affect_cost(self._frame_va(index), target_va, p.match))
            match = replace(p.match, far_cost=p.match.mouth_far_cost) if region == "mouth" else p.match
            choices[region] = self._selectors[region].update(costs, c_self, match)
        rep.sources = {r: [(self._label(s), float(wt)) for s, wt in c] for r, c in choices.items()}
        for r, c in choices.items():
            main = max(c, key=lambda sw: sw[1])[0]
            if main >= 0:
                rep.source_videos[r] = self.pool.frames[main].video
        rep.fallback = {r: any(s == NONE for s, _ in c) for r, c in choices.items()}
        return choices, target_shape

    def _appearance(self, index: int, flow: FaceFlow, warped: np.ndarray, e_orig: np.ndarray, e_tgt: np.ndarray,
                    face_px: float, rep: FrameReport, choice_flow: FaceFlow | None = None) -> tuple[np.ndarray, "_Box"]:
        """Retrieve, match and blend region appearance into the warped crop; returns the uint8 crop and
        the box (crop slices) where it changed anything. `choice_flow`: the geometry the sources are chosen
        on (default `flow`; the unheld one beside an occluder, see held_projection)."""
        t_start = time.perf_counter()
        part = flow.part
        mouth_work = part == PART_MOUTH
        has_mouth = bool(mouth_work.any())
        choices, target_shape = self._choose_sources(index, choice_flow or flow, e_orig, e_tgt, rep)
        if choice_flow is not None and choice_flow is not flow:  # the opening drawn is the held one
            target_shape = self._mouth_shape(flow, index)

        t_sel = time.perf_counter()
        skin_sources = any(s >= 0 for r, c in choices.items() if r != "mouth" for s, _ in c)
        if not skin_sources and not has_mouth:
            return warped, _Box.empty_box()

        # work only where something changes: the retrieved skin regions and the mouth with its lip ring
        grid = flow.grid
        area = np.zeros(part.shape, bool)
        weights_work = None
        if skin_sources:
            weights_work = interpolate(flow.raster, self.mesh.region_weights, self.mesh.triangles)
            for r_i, region in enumerate(REGIONS):
                if region != "mouth" and any(s >= 0 for s, _ in choices.get(region, [])):
                    area |= weights_work[..., r_i] > 1e-3
            area &= part == PART_FACE
        if has_mouth:
            k = max(3, int(round(0.06 * face_px * grid.sx)) | 1)
            area |= cv2.dilate(mouth_work.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
        box = _Box.around(area, grid, pad=3)
        if box.empty:
            return warped, box
        out = warped[box.ys, box.xs].astype(np.float32)
        maps: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def source_maps(pos: int) -> tuple[_Source, np.ndarray, np.ndarray]:
            """Pool entry `pos`, its work-grid map and its map over the appearance box (crop pixels)."""
            src = self._source(pos)
            if pos not in maps:
                m_work = sample_positions(flow.raster, self.mesh, src.projected)
                maps[pos] = (m_work, flow.grid.upsample_box(m_work, box.ys, box.xs))
            return src, maps[pos][0], maps[pos][1]

        t_skin = time.perf_counter()
        if skin_sources:
            out = self._skin(flow, box, out, warped, weights_work, choices, source_maps, face_px)
        t_mouth = time.perf_counter()
        if has_mouth:
            out = self._mouth(flow, box, out, choices.get("mouth", [(SELF, 1.0)]), target_shape, face_px, rep)
        t_end = time.perf_counter()
        rep.timings_ms["select"] = (t_sel - t_start) * 1e3
        rep.timings_ms["skin"] = (t_mouth - t_skin) * 1e3
        rep.timings_ms["mouth"] = (t_end - t_mouth) * 1e3
        result = warped.copy()
        result[box.ys, box.xs] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return result, box

    def _skin(self, flow: FaceFlow, box: _Box, base: np.ndarray, warped: np.ndarray, weights_work: np.ndarray,
              choices: dict[str, list[tuple[int, float]]], source_maps, face_px: float) -> np.ndarray:
        """Lower and upper face: sources under the current shading (ratio image), multi-band blended.

        Per source, its region opacity times its shading gain is assembled on the coarse grid and
        upsampled once, so each source costs one full-resolution remap whatever regions use it.
        """
        p = self.params
        grid = flow.grid
        skin = flow.part == PART_FACE
        # shading gains are low-frequency: estimate them on a grid half as fine as the flow's
        half = (max(2, grid.work_w // 2), max(2, grid.work_h // 2))
        warped_half = cv2.resize(warped, half, interpolation=cv2.INTER_AREA).astype(np.float32)
        sigma_half = max(p.shading_sigma * face_px * grid.sx * 0.5, 1.0)
        coef: dict[int, np.ndarray] = {}  # source -> (h, w, 3) opacity * gain on the work grid
        self_alpha = np.zeros(skin.shape, np.float32)
        alpha_work = np.zeros(skin.shape, np.float32)
        for r_i, region in enumerate(REGIONS):
            if region == "mouth" or not any(s >= 0 for s, _ in choices.get(region, [])):
                continue
            a_work = weights_work[..., r_i] * skin
            alpha_work += a_work
            valid_half = cv2.resize((skin & (a_work > 0.02)).astype(np.uint8), half, interpolation=cv2.INTER_NEAREST) > 0
            for s, wt in choices[region]:
                if s < 0:
                    self_alpha += wt * a_work
                    continue
                src, m_work, _ = source_maps(s)
                m_half = cv2.resize(m_work, half, interpolation=cv2.INTER_LINEAR)
                s_half = remap(src.frame.crop, m_half).astype(np.float32)
                gain = cv2.resize(ratio_gain(warped_half, s_half, valid_half, sigma_half), (grid.work_w, grid.work_h),
                                  interpolation=cv2.INTER_LINEAR)
                c = (wt * a_work)[..., None] * gain
                coef[s] = coef[s] + c if s in coef else c
        if not alpha_work.max() > 0:
            return base
        alpha = np.clip(grid.upsample_box(alpha_work, box.ys, box.xs), 0.0, 1.0)
        overlay = grid.upsample_box(self_alpha, box.ys, box.xs)[..., None] * base if self_alpha.any() else np.zeros_like(base)
        for s, c in coef.items():
            src, _, m_full = source_maps(s)
            overlay += remap(src.frame.crop, m_full) * grid.upsample_box(c, box.ys, box.xs)
        # overlay holds sum(opacity * source); normalise to a full-strength image where there is opacity
        np.divide(overlay, np.maximum(alpha, 1e-3)[..., None], out=overlay)
        if p.skin_blend == "multiband":
            return laplacian_blend(base, overlay, alpha, p.blend_levels)
        return base + alpha[..., None] * (overlay - base)

    def _mouth(self, flow: FaceFlow, box: _Box, out: np.ndarray, choice: list[tuple[int, float]],
               target_shape: MouthShape | None, face_px: float, rep: FrameReport) -> np.ndarray:
        """Inner mouth: retrieved (or the frame's own) pixels where the source shows them, else a dark cavity."""
        p = self.params
        grid = flow.grid
        mouth_work = (flow.part == PART_MOUTH).astype(np.uint8)
        # a ring of lips around the inner mouth, for colour matching and the cavity's tint
        k = max(3, int(round(0.04 * face_px * grid.sx)) | 1)
        ring_work = (cv2.dilate(mouth_work, np.ones((k, k), np.uint8)) > 0) & (flow.part == PART_FACE)
        mb = _Box.around(ring_work | (mouth_work > 0), grid, pad=1)
        rel = mb.inside(box)
        if rel.empty:
            return out
        sub = out[rel.ys, rel.xs]
        mys = slice(rel.ys.start + box.ys.start, rel.ys.stop + box.ys.start)  # crop-relative rows/cols of `sub`
        mxs = slice(rel.xs.start + box.xs.start, rel.xs.stop + box.xs.start)
        ring = grid.upsample_box(ring_work.astype(np.uint8), mys, mxs, cv2.INTER_NEAREST) > 0
        feather = max(p.mouth_feather * face_px * grid.sx, 0.5)
        soft = cv2.GaussianBlur(mouth_work.astype(np.float32), (0, 0), feather)
        m_full = grid.upsample_box(soft, mys, mxs)
        m_full = np.clip((m_full - 0.25) / 0.5, 0.0, 1.0)  # stays inside the lips, soft edge
        inner = m_full > 0
        if not inner.any():
            return out
        lip_colour = sub[ring].mean(0) if ring.any() else np.array([120.0, 60.0, 60.0], np.float32)
        mouth_h = max(1.0, float(np.sqrt(mouth_work.sum())) / grid.sy)
        cavity = mouth_cavity(sub.shape[:2], m_full, lip_colour, 0.35 * mouth_h)
        # where the original does not show the target's inner mouth: a soft weight, not a hard threshold of
        # the coarse flow grid (a thin, barely open mouth got black dashes along the lips)
        dis_work = cv2.GaussianBlur(flow.disoccluded.astype(np.float32), (0, 0), 0.7)
        dis = np.clip(grid.upsample_box(dis_work, mys, mxs), 0.0, 1.0)

        mix = np.zeros_like(sub)
        n_inner = max(int(inner.sum()), 1)
        cavity_share = 0.0
        rows, cols = np.nonzero(inner)
        y_full = rows + box.ys.start + rel.ys.start + grid.y0  # frame coordinates of the inner pixels
        x_full = cols + box.xs.start + rel.xs.start + grid.x0
        for s, wt in choice:
            if s >= 0:
                src = self._source(s)
                shown = np.zeros(inner.shape, bool)
                img = np.zeros_like(sub)
                if src.shape is not None and target_shape is not None:
                    ratio = src.frame.scale * src.frame.crop_scale / max(face_px / p.face_size_cm, 1e-6)
                    pos, gap = span_map_teeth(target_shape, np.stack([x_full, y_full], 1), src.shape, ratio)
                    m_sub = np.zeros(inner.shape + (2,), np.float32)
                    m_sub[rows, cols] = pos
                    img = remap(src.frame.crop, m_sub).astype(np.float32)
                    shown[rows, cols] = True
                    if src.lip_colour is not None:
                        img *= np.clip((lip_colour + 1.0) / (src.lip_colour + 1.0), 0.6, 1.6)[None, None, :]
                    if gap.any():  # the widened gap between the teeth: dark, as in an open mouth
                        g = np.zeros(inner.shape, np.float32)
                        g[rows, cols] = gap
                        img += g[..., None] * (cavity - img)
                mix += wt * np.where(shown[..., None], img, cavity)
                cavity_share += wt * float((inner & ~shown).sum()) / n_inner
            else:
                mix += wt * (sub + dis[..., None] * (cavity - sub))
                cavity_share += wt * float(dis[inner].sum()) / n_inner
        rep.cavity_fraction = cavity_share
        rep.fallback["mouth"] = rep.fallback.get("mouth", False) or cavity_share > self.params.cavity_fallback
        out[rel.ys, rel.xs] = sub + m_full[..., None] * (mix - sub)
        return out

    def _pool_open(self) -> np.ndarray:
        """(N,) bool: pool entries whose fitted lips are apart (at least 1.5 mm), cached."""
        if self._open_cache is None or len(self._open_cache) != len(self.pool):
            gap = self.mesh.lip_gap(self.pool.expression) if len(self.pool) else np.zeros(0)
            self._open_cache = gap > 0.15
        return self._open_cache

    def _mouth_stretch(self, costs: np.ndarray, current: int | None, target: MouthShape | None,
                       scale: float) -> dict[int, float]:
        """Stretch of the best few pool entries' visible openings onto the target's (see mouth.stretch)."""
        if len(costs) == 0 or target is None:
            return {}
        # only entries whose mouth is open can lend an inner mouth
        open_ = self._pool_open()
        order = [int(j) for j in np.argsort(costs) if open_[j] and np.isfinite(costs[j])]
        best = order[: self.params.match.mouth_candidates]
        if current is not None and current >= 0 and current not in best:
            best.append(current)
        out = {}
        for j in best:
            src = self._source(j)
            if src.shape is not None:
                out[j] = stretch(target, src.shape, scale, src.frame.scale * src.frame.crop_scale)
        return out

    def _label(self, s: int) -> int:
        """Report label of a choice: the source's frame index, or SELF / NONE."""
        return int(self.pool.frames[s].index) if s >= 0 else int(s)

    # ------------------------------------------------------------------------------------------ video
    def _frame_va(self, index: int) -> np.ndarray:
        """The current frame's own valence/arousal (what SELF shows), NaN when unknown."""
        t = self.track
        if t.valence is None or t.arousal is None:
            return np.array([np.nan, np.nan], np.float32)
        return np.array([t.valence[index], t.arousal[index]], np.float32)

    def render_video(self, frames: Iterable[Any], targets: np.ndarray, weights: np.ndarray,
                     target_va: np.ndarray | None = None) -> Iterator[Any]:
        """Stream: one output per input frame, in order; weight-0 frames come back as the input objects.

        frames: (H, W, 3) uint8 RGB arrays, or frame objects with `.index`, `.image` and
        `.with_image(image)` (dfm.io.video.VideoFrame): edited ones are returned via with_image.
        targets (T, 53), weights (T,) are indexed by frame index; target_va (T, 2) optional, the plan's
        valence/arousal (NaN outside edits) that retrieval prefers sources to show. Temporal state
        (source choices, cross-fades) carries across frames; call reset() before another video.
        """
        targets = np.asarray(targets, np.float32)
        weights = np.asarray(weights, np.float32)
        for i, frame in enumerate(frames):
            is_array = isinstance(frame, np.ndarray)
            index = i if is_array else int(getattr(frame, "index", i))
            if index >= len(weights):
                raise ValueError(f"frame {index} has no target/weight (only {len(weights)} given)")
            if not weights[index] > 0.0:
                self.report.frames.append(FrameReport(index=index, weight=float(weights[index]), edited=False))
                self._end_of_edit()
                yield frame
                continue
            image = frame if is_array else frame.image
            va = None if target_va is None else target_va[index]
            out = self.render_frame(index, image, targets[index], float(weights[index]), target_va=va)
            # a frame left as it was comes back as the input object (its decoded planes, its timestamp)
            yield out if is_array else frame if out is image else frame.with_image(out)


def renderer_targets(renderer: Any, targets: np.ndarray, original_share: np.ndarray, first: int = 0) -> np.ndarray:
    """The targets to give `renderer` for a plan's (targets, original_share) of frames first..: re-based by
    the warp renderer (or the warp inside one built on it, `.warp`) onto its smoothed original; as they are
    for the others."""
    warp = renderer if hasattr(renderer, "rebased_targets") else getattr(renderer, "warp", None)
    if warp is None or not hasattr(warp, "rebased_targets"):
        return np.asarray(targets, np.float32)
    return warp.rebased_targets(targets, original_share, first)


def render_with_inputs(renderer: Any, frames: Iterable[Any], targets: np.ndarray, weights: np.ndarray,
                       target_va: np.ndarray | None = None) -> Iterator[tuple[Any, Any, float]]:
    """`renderer.render_video(frames, ...)` (any renderer: one output per input, in order) yielding
    (input frame, output, seconds the renderer took for this output): the writers need both frames (the
    side-by-side video) and the render's own time apart from the encoder's."""
    inputs: deque = deque()

    def remember(source: Iterable[Any]) -> Iterator[Any]:
        for f in source:
            inputs.append(f)
            yield f

    rendered = renderer.render_video(remember(frames), targets, weights, target_va)
    while True:
        t0 = time.perf_counter()
        out = next(rendered, None)
        seconds = time.perf_counter() - t0
        if out is None:
            return
        yield inputs.popleft(), out, seconds
