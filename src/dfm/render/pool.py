"""The pool of a person's frames that retrieval may draw appearance from.

A pool holds, for each allowed frame, a face crop (uint8 RGB, optionally downscaled) and that frame's
fitted geometry (expression and camera), so it is self-contained: frames of several videos of the same
person (a collection) can be merged into one pool. WHICH frames may be used is always explicit
(`indices`): the evaluation protocol passes the training frames only, and nothing outside them is ever
read or stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from dfm.face.track import FaceTrack, project_vertices
from dfm.render.mesh import REGIONS, RenderMesh

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

    def project(self, vertices: np.ndarray) -> np.ndarray:
        """Model vertices (V, 3) -> crop pixel positions (V, 3) (x, y in the crop; z depth)."""
        p = project_vertices(vertices, self.rotation, self.translation, self.scale)
        p[:, 0] = (p[:, 0] - self.origin[0] + 0.5) * self.crop_scale - 0.5
        p[:, 1] = (p[:, 1] - self.origin[1] + 0.5) * self.crop_scale - 0.5
        return p


class FramePool:
    """Frames of one person that the renderer may copy appearance from (see module doc)."""

    def __init__(self, frames: Sequence[PoolFrame]):
        self.frames: tuple[PoolFrame, ...] = tuple(frames)
        n = len(self.frames)
        self.expression = np.stack([f.expression for f in self.frames]).astype(np.float32) if n else np.zeros((0, 53), np.float32)
        self.rotation = np.stack([f.rotation for f in self.frames]).astype(np.float32) if n else np.zeros((0, 3, 3), np.float32)
        self.scale = np.array([f.scale for f in self.frames], np.float32)
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
              pad: float = 0.15, max_residual: float | None = None) -> "FramePool":
        """Crop the allowed frames of one video.

        frames: a callable index -> (H, W, 3) uint8 RGB, a sequence of frames, or an iterable that
        yields the video's frames in order (only the allowed ones are kept); frame objects with an
        `.image` (dfm.io.video.VideoFrame) are accepted in place of arrays. indices: the frames that
        may be used — nothing else is stored. Invalid (untracked) frames and, if max_residual is set,
        badly fitted ones are skipped. max_frames: keep at most this many, chosen to span the
        expressions (farthest-point sampling on the key-vertex features). max_face_px: downscale crops
        whose face is wider than this (memory: 240 crops of a 400 px face take about 100 MB). pad: crop
        margin around the retrievable face area, as a fraction of the face size.
        """
        allowed = np.unique(np.asarray(indices, np.int64))
        allowed = allowed[(allowed >= 0) & (allowed < track.n_frames)]
        ok = np.asarray(track.valid, bool)[allowed]
        if max_residual is not None:
            ok &= np.asarray(track.residual)[allowed] <= max_residual
        allowed = allowed[ok]
        if max_frames is not None and len(allowed) > max_frames:
            feats = np.concatenate([mesh.key_features(track.expression[allowed], r) for r in REGIONS], axis=1)
            allowed = np.sort(allowed[_farthest_points(feats, max_frames)])
        wanted = set(int(i) for i in allowed)
        entries: list[PoolFrame] = []

        def add(i: int, image) -> None:
            image = np.asarray(getattr(image, "image", image))
            entry = _crop_frame(track, i, image, mesh, video, max_face_px, pad)
            if min(entry.crop.shape[:2]) >= 8:  # a face (almost) outside the frame lends nothing
                entries.append(entry)

        if callable(frames):
            for i in allowed:
                add(int(i), frames(int(i)))
        elif isinstance(frames, (list, tuple, np.ndarray)):
            for i in allowed:
                add(int(i), frames[int(i)])
        else:
            for i, image in enumerate(frames):
                if i in wanted:
                    add(i, image)
                if i >= allowed[-1] if len(allowed) else True:
                    break
        return cls(entries)

    def merged(self, other: "FramePool") -> "FramePool":
        """A pool with the entries of both (e.g. the video itself plus the person's collection)."""
        return FramePool(self.frames + other.frames)


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
                     scale=s)


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
