"""The pool of a person's frames that retrieval may draw appearance from.

A pool holds, for each allowed frame, a face crop (uint8 RGB, optionally downscaled) and that frame's
fitted geometry (expression and camera), so it is self-contained: frames of several videos of the same
person (a collection) can be merged into one pool. WHICH frames may be used is always explicit
(`indices`): the evaluation protocol passes the training frames only, and nothing outside them is ever
read or stored. Frames with an occluder in front of the face (a hand) are left out (occlusion.py).
Every frame a pool build reads also gets its glabella fold contrast (folds.py), kept per video; over the
person's calm level (all the pool's videos together) it gives the entries' fold ratios (`FramePool.folds`)
and the edited video's frames' (`folds_for`), which retrieval compares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from dfm.face.track import FaceTrack, project_vertices
from dfm.render.folds import calm_level, glabella_folds, smooth_folds
from dfm.render.mesh import REGIONS, RenderMesh
from dfm.render.occlusion import (OcclusionParams, VideoOcclusion, analyse_video, frame_features, project_points,
                                  sample_points, track_key)

FrameSource = Callable[[int], np.ndarray] | Sequence[np.ndarray] | Iterable[np.ndarray]


@dataclass(frozen=True, eq=False)
class PoolFrame:
    """One usable frame: its face crop and fitted geometry."""

    video: str  # which video of the collection ("" = the edited video itself)
    index: int  # frame index in that video
    crop: np.ndarray  # (h, w, 3) uint8 RGB
    origin: tuple[float, float]  # frame position of the crop box's top-left corner (pixel edge)
    crop_scale: float  # crop pixels per frame pixel
    expression: np.ndarray  # (53,)
    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,)
    scale: float  # camera scale (frame px per cm)
    va: tuple[float, float] = (float("nan"), float("nan"))  # the frame's valence/arousal (affect estimate)

    def project(self, vertices: np.ndarray) -> np.ndarray:
        """Model vertices (V, 3) -> crop pixel positions (V, 3) (x, y in the crop; z depth)."""
        p = project_vertices(vertices, self.rotation, self.translation, self.scale)
        p[:, 0] = (p[:, 0] - self.origin[0] + 0.5) * self.crop_scale - 0.5
        p[:, 1] = (p[:, 1] - self.origin[1] + 0.5) * self.crop_scale - 0.5
        return p


@dataclass(frozen=True, eq=False)
class VideoFolds:
    """The fold contrast of every frame a pool build read of one video (folds.smooth_folds; NaN for frames
    not read)."""

    key: str  # occlusion.track_key of the video's track
    contrast: np.ndarray  # (T,) float32


class FramePool:
    """Frames of one person that the renderer may copy appearance from (see module doc)."""

    def __init__(self, frames: Sequence[PoolFrame], occlusion: dict[str, VideoOcclusion] | None = None,
                 excluded: dict[str, np.ndarray] | None = None, folds: dict[str, VideoFolds] | None = None):
        self.frames: tuple[PoolFrame, ...] = tuple(frames)
        self.occlusion: dict[str, VideoOcclusion] = dict(occlusion or {})  # video -> occlusion result
        self.excluded: dict[str, np.ndarray] = dict(excluded or {})  # video -> frames left out (occluded)
        self.video_folds: dict[str, VideoFolds] = dict(folds or {})  # video -> its frames' fold contrast
        self.calm_folds = calm_level([vf.contrast for vf in self.video_folds.values()])
        n = len(self.frames)
        # (N,) each entry's fold ratio over the calm level (NaN: not measured)
        self.folds = np.array([_contrast_at(self.video_folds.get(f.video), f.index) for f in self.frames],
                              np.float32) / np.float32(self.calm_folds if self.calm_folds > 0 else np.nan)
        self.expression = np.stack([f.expression for f in self.frames]).astype(np.float32) if n else np.zeros((0, 53), np.float32)
        self.rotation = np.stack([f.rotation for f in self.frames]).astype(np.float32) if n else np.zeros((0, 3, 3), np.float32)
        self.scale = np.array([f.scale for f in self.frames], np.float32)
        self.va = np.array([f.va for f in self.frames], np.float32).reshape(n, 2)
        self._features: dict[tuple[int, str, tuple[int, ...]], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def indices(self) -> np.ndarray:
        """Frame indices of the pool's entries (in pool order)."""
        return np.array([f.index for f in self.frames], np.int64)

    def features(self, mesh: RenderMesh, region: str, ignore: tuple[int, ...] = ()) -> np.ndarray:
        """Key-vertex expression features (N, K*3) of every entry for a region, with the `ignore`d
        expression coefficients set to 0 (cached per mesh, region and ignore set)."""
        key = (id(mesh), region, tuple(ignore))
        if key not in self._features:
            e = self.expression.copy()
            e[:, list(ignore)] = 0.0
            self._features[key] = mesh.key_features(e, region) if len(self) else np.zeros((0, 1), np.float32)
        return self._features[key]

    @classmethod
    def empty(cls) -> "FramePool":
        return cls([])

    @classmethod
    def build(cls, track: FaceTrack, frames: FrameSource, indices: Sequence[int] | np.ndarray, mesh: RenderMesh, *,
              video: str = "", max_frames: int | None = 240, max_face_px: float | None = 400.0,
              pad: float = 0.15, max_residual: float | None = None,
              occlusion: OcclusionParams | bool | None = True) -> "FramePool":
        """Crop the allowed frames of one video.

        frames: a callable index -> (H, W, 3) uint8 RGB, a sequence of frames, or an iterable that
        yields the video's frames in order (only the allowed ones are kept); frame objects with an
        `.image` (dfm.io.video.VideoFrame) are accepted in place of arrays. indices: the frames that
        may be used — nothing else is stored. Invalid (untracked) frames and, if max_residual is set,
        badly fitted ones are skipped. max_frames: keep at most this many, chosen to span the
        expressions (farthest-point sampling on the key-vertex features). max_face_px: downscale crops
        whose face is wider than this (memory: 240 crops of a 400 px face take about 100 MB). pad: crop
        margin around the retrievable face area, as a fraction of the face size.

        occlusion (True = default OcclusionParams; False/None = off): frames with something in front
        of the face (a hand) never enter the pool (see occlusion.py). The detector scores every allowed
        frame it sees (a callable is asked for the candidate frames only) and the pool keeps the result
        in `occlusion[video]` (the renderer uses it to keep occluders' pixels), and the left-out frames
        in `excluded`.
        """
        plan = PoolPlan.for_track(track, indices, mesh, max_frames=max_frames, max_residual=max_residual,
                                  occlusion=occlusion)
        scan = scan_pool_frames(plan, track, frames, mesh, video=video, max_face_px=max_face_px, pad=pad)
        return cls.assemble(plan, track, mesh, [scan], video=video)

    @classmethod
    def assemble(cls, plan: "PoolPlan", track: FaceTrack, mesh: RenderMesh, scans: Sequence["PoolScan"], *,
                 video: str = "") -> "FramePool":
        """The pool from the scans of a video's frames (`scan_pool_frames` over the whole video, or over
        frame ranges in any order, e.g. on parallel workers): the occlusion detector fitted on every scored
        frame, occluded frames left out, then the final spread of at most `plan.max_frames`."""
        entries: dict[int, PoolFrame] = {}
        for s in scans:
            entries.update(s.entries)
        scored = np.concatenate([s.scored for s in scans]) if scans else np.zeros(0, np.int64)
        occ: dict[str, VideoOcclusion] = {}
        excluded = np.zeros(0, np.int64)
        if plan.occlusion is not None and len(scored) >= plan.occlusion.min_frames:
            order = np.argsort(scored, kind="stable")
            feats = np.concatenate([s.features for s in scans if len(s.scored)])[order]
            vo = analyse_video(mesh, track, scored[order], feats, plan.occlusion)
            if vo is not None:
                occ[video] = vo
                excluded = vo.excluded
                for i in excluded:
                    entries.pop(int(i), None)
        keep = np.array(sorted(entries), np.int64)
        if plan.max_frames is not None and len(keep) > plan.max_frames:
            keep = np.sort(keep[_farthest_points(_selection_features(track, keep, mesh), plan.max_frames)])
        values = np.full(track.n_frames, np.nan, np.float32)
        for s in scans:
            for i, v in s.folds.items():
                values[i] = v
        folds = {video: VideoFolds(track_key(track), smooth_folds(values))} if np.isfinite(values).any() else {}
        return cls([entries[int(i)] for i in keep], occlusion=occ, excluded={video: excluded} if len(excluded) else {},
                   folds=folds)

    def merged(self, other: "FramePool") -> "FramePool":
        """A pool with the entries of both (e.g. the video itself plus the person's collection)."""
        return FramePool(self.frames + other.frames, occlusion={**self.occlusion, **other.occlusion},
                         excluded={**self.excluded, **other.excluded}, folds={**self.video_folds, **other.video_folds})

    def folds_for(self, track: FaceTrack) -> np.ndarray | None:
        """(T,) the fold ratios (over the calm level) of the frames of the video this track belongs to, if the
        pool read them."""
        if not self.video_folds or not self.calm_folds > 0:
            return None
        key = track_key(track)
        for vf in self.video_folds.values():
            if vf.key == key and len(vf.contrast) == track.n_frames:
                return (vf.contrast / np.float32(self.calm_folds)).astype(np.float32)
        return None

    def occlusion_for(self, track: FaceTrack) -> VideoOcclusion | None:
        """The occlusion result of the video this track belongs to, if the pool scored it."""
        if not self.occlusion:
            return None
        key = track_key(track)
        for vo in self.occlusion.values():
            if vo.key == key:
                return vo
        return None


@dataclass(frozen=True, eq=False)
class PoolPlan:
    """Which frames a pool build reads, decided from the track alone (no pixels): `allowed` the usable
    frames (the occlusion detector scores them all), `candidates` those whose crops are kept (the
    expression spread, with room for the ones occlusion will drop)."""

    allowed: np.ndarray  # (N,) int64, sorted
    candidates: np.ndarray  # (M,) int64, sorted subset of allowed
    occlusion: OcclusionParams | None
    points: np.ndarray | None  # the occlusion detector's sample points on the mesh
    max_frames: int | None

    @classmethod
    def for_track(cls, track: FaceTrack, indices: Sequence[int] | np.ndarray, mesh: RenderMesh, *,
                  max_frames: int | None = 240, max_residual: float | None = None,
                  occlusion: OcclusionParams | bool | None = True) -> "PoolPlan":
        occ_params = (OcclusionParams() if occlusion is True else occlusion) or None
        allowed = np.unique(np.asarray(indices, np.int64))
        allowed = allowed[(allowed >= 0) & (allowed < track.n_frames)]
        ok = np.asarray(track.valid, bool)[allowed]
        if max_residual is not None:
            ok &= np.asarray(track.residual)[allowed] <= max_residual
        allowed = allowed[ok]
        candidates = allowed
        if occ_params is not None and len(allowed) < occ_params.min_frames:
            occ_params = None
        cap = None if max_frames is None else (int(np.ceil(1.5 * max_frames)) if occ_params is not None else max_frames)
        if cap is not None and len(allowed) > cap:
            candidates = np.sort(allowed[_farthest_points(_selection_features(track, allowed, mesh), cap)])
        points = sample_points(mesh, occ_params.cell_cm)[0] if occ_params is not None else None
        return cls(allowed, candidates, occ_params, points, max_frames)

    @property
    def reads(self) -> np.ndarray:
        """The frames a scan must see: every allowed one when occlusion scores them, else the candidates."""
        return self.allowed if self.occlusion is not None else self.candidates


@dataclass
class PoolScan:
    """What one pass over (part of) a video gave a pool build: the occlusion features of the frames it
    scored and the crops of the candidates it saw."""

    scored: np.ndarray  # (S,) int64 frame indices
    features: np.ndarray  # (S, F) occlusion features (empty when occlusion is off)
    entries: dict[int, PoolFrame]
    folds: dict[int, float] = field(default_factory=dict)  # frame -> glabella fold contrast, every frame read


def scan_pool_frames(plan: PoolPlan, track: FaceTrack, frames: FrameSource, mesh: RenderMesh, *, video: str = "",
                     max_face_px: float | None = 400.0, pad: float = 0.15,
                     frame_range: tuple[int, int] | None = None) -> PoolScan:
    """Score and crop the frames of `plan` that `frames` holds (see FramePool.build for the sources).
    frame_range (start, stop): an iterable source yields exactly that range of the video (a chunk)."""
    wanted = set(int(i) for i in plan.candidates)
    entries: dict[int, PoolFrame] = {}
    scored: list[int] = []
    feats: list[np.ndarray] = []
    folds: dict[int, float] = {}
    pts, occ = plan.points, plan.occlusion

    def add(i: int, image) -> None:
        image = np.asarray(getattr(image, "image", image))
        folds[i] = glabella_folds(image, track.landmarks[i], float(track.scale[i]))
        if pts is not None:
            xy = project_points(mesh, pts, track.expression[i], track.rotation[i], track.translation[i],
                                float(track.scale[i]))
            feats.append(frame_features(image, xy, 15.0 * float(track.scale[i]), occ.blur))
            scored.append(i)
        if i not in wanted:
            return
        entry = _crop_frame(track, i, image, mesh, video, max_face_px, pad)
        if min(entry.crop.shape[:2]) >= 8:  # a face (almost) outside the frame lends nothing
            entries[i] = entry

    if callable(frames):
        for i in plan.candidates:
            add(int(i), frames(int(i)))
    elif isinstance(frames, (list, tuple, np.ndarray)):
        for i in plan.reads:
            add(int(i), frames[int(i)])
    else:
        start, stop = frame_range or (0, track.n_frames)
        reads = set(int(i) for i in plan.reads if start <= i < stop)
        last = max(reads) if reads else -1
        for i, image in enumerate(frames, start):
            if i > last:
                break
            if i in reads:
                add(i, image)
    features = np.stack(feats) if feats else np.zeros((0, 0), np.float32)
    return PoolScan(np.array(scored, np.int64), features, entries, folds)


def _contrast_at(folds: VideoFolds | None, index: int) -> float:
    if folds is None or not 0 <= index < len(folds.contrast):
        return float("nan")
    return float(folds.contrast[index])


def _crop_frame(track: FaceTrack, i: int, image: np.ndarray, mesh: RenderMesh, video: str,
                max_face_px: float | None, pad: float) -> PoolFrame:
    rot, trans, s = track.rotation[i], track.translation[i], float(track.scale[i])
    face = project_vertices(mesh.vertices(track.expression[i])[mesh.appearance_vertices], rot, trans, s)
    face_px = 15.0 * s
    h, w = image.shape[:2]
    m = pad * face_px
    x0 = int(min(max(np.floor(face[:, 0].min() - m), 0), w))
    y0 = int(min(max(np.floor(face[:, 1].min() - m), 0), h))
    x1 = int(max(min(np.ceil(face[:, 0].max() + m) + 1, w), x0))
    y1 = int(max(min(np.ceil(face[:, 1].max() + m) + 1, h), y0))
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    cs = 1.0
    if max_face_px is not None and face_px > max_face_px:
        cs = max_face_px / face_px
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * cs)), max(1, round(crop.shape[0] * cs))),
                          interpolation=cv2.INTER_AREA)
        cs = crop.shape[1] / max(x1 - x0, 1)
    return PoolFrame(video=video, index=i, crop=crop, origin=(float(x0), float(y0)), crop_scale=float(cs),
                     expression=np.asarray(track.expression[i], np.float32).copy(),
                     rotation=np.asarray(rot, np.float32).copy(), translation=np.asarray(trans, np.float32).copy(),
                     scale=s, va=_frame_va(track, i))


def _frame_va(track: FaceTrack, i: int) -> tuple[float, float]:
    if track.valence is None or track.arousal is None:
        return (float("nan"), float("nan"))
    return (float(track.valence[i]), float(track.arousal[i]))


def _selection_features(track: FaceTrack, frames: np.ndarray, mesh: RenderMesh) -> np.ndarray:
    return np.concatenate([mesh.key_features(track.expression[frames], r) for r in REGIONS], axis=1)


def _farthest_points(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of k rows of x spread out by greedy farthest-point sampling (starts at the mean's nearest)."""
    d = np.linalg.norm(x - x.mean(0), axis=1)
    chosen = [int(np.argmin(d))]
    dist = np.linalg.norm(x - x[chosen[0]], axis=1)
    for _ in range(k - 1):
        j = int(np.argmax(dist))
        chosen.append(j)
        dist = np.minimum(dist, np.linalg.norm(x - x[j], axis=1))
    return np.array(sorted(set(chosen)), np.int64)
