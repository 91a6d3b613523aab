"""The streamed half of the analysis (decode -> track -> affect), for the whole video in this process
(`track_video`, today's serial path) or in frame-range chunks on an executor's workers (`measure_chunk`,
then `select_subject` in the parent).

    rows = track_video(state, video, n_frames, subject, reference, spec_frame, report)      # serial
    parts = executor.map(measure_chunk, [AnalysisChunk(c, video) for c in chunks], AnalysisSetup(...))
    rows = select_subject(parts, subject, reference, spec_frame)                           # = the serial rows

A worker loads the landmarker model and the affect estimator once (`AnalysisSetup`); for each frame of its
chunk it records every face MediaPipe finds (landmarks, blendshapes, transform), what the subject
selector reads of the frame (scene thumbnail, each face's signature: dfm.face.subject.FrameFaces) and the
affect estimate of every face's crop. The parent then runs the subject selector over the joined frames in
time order, exactly as the serial tracker does, and keeps the subject's rows: the choice of the subject
(its running identity reference, continuity, cuts, changes of person) has no seam at all. The fit (one
identity per video) and the valence/arousal smoothing run on the joined rows as in the serial run.

MediaPipe's FaceLandmarker as dfm runs it (video mode, up to 4 faces) keeps no state between frames that
changes its output: a tracker started at frame 100 gives landmarks bit-identical to one that ran from
frame 0 (measured on the Pexels clip). A chunk still runs `warmup` frames before its start (tracked, not
kept), for the case where MediaPipe does carry state (as many faces as it looks for: it then tracks from
the previous frame's landmarks instead of detecting).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dfm.face.expressions import N_EXPRESSIONS
from dfm.face.subject import RIGID_POINTS, FaceSignature, SubjectReport, SubjectSpec
from dfm.face.tracking import N_LANDMARKS, FaceTracker, TrackBuffer, TrackingResult
from dfm.parallel.chunks import Chunk

AFFECT_BATCH = 64
PATTERN_SIZE = 24 * 16  # dfm.face.subject.face_signature's grey patch


@dataclass(frozen=True)
class ChunkSettings:
    """How the analysis is cut: `warmup` frames run before each chunk, no chunk under `min_frames`,
    `per_worker` chunks a worker, and videos under `serial_below` frames analysed in this process (the
    pool's start and the warm-up cost more than they save); the fit's per-frame half runs on the workers
    from `fit_chunked_from` frames."""

    warmup: int = 10
    min_frames: int = 48
    per_worker: int = 1
    serial_below: int = 150
    # a chunked analysis of fewer frames fits them all in this process: its workers' share of the fit
    # (~0.7-1.5 ms a frame) would save less than each worker's start of the QP kernel (~0.8-1.4 s, numba)
    fit_chunked_from: int = 1200


@dataclass(frozen=True)
class AnalysisSetup:
    """What a worker loads once (picklable): the landmarker model and the affect estimator."""

    landmarker: str
    affect: str = "none"
    affect_weights: str | None = None
    models_dir: str | None = None

    @property
    def key(self) -> tuple:
        return ("analysis", self.landmarker, self.affect, self.affect_weights, self.models_dir)

    def __call__(self) -> "AnalysisState":
        estimator = None
        if self.affect != "none":
            from dfm.affect.registry import make_estimator

            estimator = make_estimator(self.affect, self.affect_weights, Path(self.models_dir or "."))
        return AnalysisState(Path(self.landmarker), estimator)


@dataclass
class AnalysisState:
    landmarker: Path
    estimator: Any | None  # dfm.affect AffectEstimator, or None (no affect)


@dataclass(frozen=True)
class AnalysisChunk:
    """One range of one video for a worker."""

    chunk: Chunk
    video: str

    def describe(self) -> str:
        return self.chunk.describe()


@dataclass
class ChunkRows:
    """The streamed pass's per-frame results for the subject (indices are frames of the video)."""

    timestamps: np.ndarray  # (T,) seconds
    raw: TrackingResult
    affect: list = field(default_factory=list)  # per batch: (frame index, valence, arousal, probs | None)
    subject: SubjectReport | None = None
    affect_classes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # decode, track, crop, affect (summed over chunks)
    n_chunks: int = 1
    n_workers: int = 1

    @property
    def n_frames(self) -> int:
        return len(self.timestamps)


def track_video(state: AnalysisState, video: str | Path, n_frames: int, subject: SubjectSpec,
                reference: FaceSignature | None, spec_frame: int | None, report: Callable[[int], None]) -> ChunkRows:
    """The serial pass: decode and track every frame, choosing the subject as it goes; affect on its crops;
    report(1) after each frame."""
    from dfm.affect.crops import face_crops
    from dfm.io.video import iter_frames

    estimator = state.estimator
    rows = TrackBuffer()
    timestamps: list[float] = []
    crops = _Batches(estimator)
    t = dict(decode=0.0, track=0.0, crop=0.0)
    with FaceTracker(state.landmarker, subject=subject, reference=reference, spec_frame=spec_frame) as tracker:
        t0 = time.perf_counter()
        for frame in iter_frames(video, 0, n_frames):
            image = frame.image
            t1 = time.perf_counter()
            t["decode"] += t1 - t0
            row = tracker.track(image, frame.timestamp)
            t2 = time.perf_counter()
            t["track"] += t2 - t1
            rows.append(row)
            timestamps.append(frame.timestamp)
            if estimator is not None and row is not None:
                crop = face_crops(image, row.landmarks, estimator.crop_size, estimator.crop_margin)
                t["crop"] += time.perf_counter() - t2  # not the batch add: its network pass counts as affect
                crops.add(crop, len(rows) - 1)
            report(1)
            t0 = time.perf_counter()
    crops.flush()
    return ChunkRows(np.asarray(timestamps, np.float64), rows.result(), crops.out, tracker.report(), crops.classes,
                     {**t, "affect": crops.seconds})


@dataclass
class ChunkFaces:
    """A chunk's frames as a worker saw them: every face, unchosen. Per frame (T): timestamps, n_faces,
    thumbs (T, 18, 32) uint8; per face of every frame in order (F = n_faces.sum()): landmarks (F, 478, 3),
    blendshapes (F, 53), transforms (F, 4, 4), signature parts, valence/arousal (F, 2; NaN without affect),
    class probabilities (F, C) or None."""

    timestamps: np.ndarray
    n_faces: np.ndarray
    thumbs: np.ndarray
    landmarks: np.ndarray
    blendshapes: np.ndarray
    transforms: np.ndarray
    geometry: np.ndarray
    colour: np.ndarray
    pattern: np.ndarray
    va: np.ndarray
    probs: np.ndarray | None
    affect_classes: list[str]
    seconds: dict[str, float]


def measure_chunk(state: AnalysisState, item: AnalysisChunk, report: Callable[[int], None]) -> ChunkFaces:
    """Decode and track the frames of `item.chunk` (after its warm-up): every face, its signature and its
    affect; report(1) after each of the chunk's own frames."""
    from dfm.affect.crops import face_crops
    from dfm.face.subject import measure_faces
    from dfm.io.video import iter_frames

    c = item.chunk
    estimator = state.estimator
    timestamps, n_faces, thumbs, faces, signatures = [], [], [], [], []
    crops = _Batches(estimator)
    t = dict(decode=0.0, track=0.0, crop=0.0)
    with FaceTracker(state.landmarker) as tracker:
        t0 = time.perf_counter()
        for frame in iter_frames(item.video, c.first, c.stop):
            image = frame.image
            t1 = time.perf_counter()
            t["decode"] += t1 - t0
            found = tracker.detect(image, frame.timestamp)
            if frame.index < c.start:  # warm-up: MediaPipe's state only
                t["track"] += time.perf_counter() - t1
                t0 = time.perf_counter()
                continue
            seen = measure_faces(image, [f.landmarks for f in found])
            t2 = time.perf_counter()
            t["track"] += t2 - t1
            timestamps.append(frame.timestamp)
            n_faces.append(len(found))
            thumbs.append(seen.thumb)
            faces.extend(found)
            signatures.extend(seen.signatures)
            if estimator is not None:
                first = len(faces) - len(found)  # this frame's faces are the last len(found) rows
                for k, f in enumerate(found):
                    t3 = time.perf_counter()
                    crop = face_crops(image, f.landmarks, estimator.crop_size, estimator.crop_margin)
                    t["crop"] += time.perf_counter() - t3  # not the batch add: its network pass counts as affect
                    crops.add(crop, first + k)
            report(1)
            t0 = time.perf_counter()
    crops.flush()
    n = len(faces)
    va = np.full((n, 2), np.nan, np.float32)
    probs = None
    for index, v, a, p in crops.out:
        va[index, 0], va[index, 1] = v, a
        if p is not None:
            probs = np.full((n, p.shape[1]), np.nan, np.float32) if probs is None else probs
            probs[index] = p

    def stack(values: list, shape: tuple, dtype=np.float32) -> np.ndarray:
        return np.stack(values).astype(dtype) if values else np.zeros((0, *shape), dtype)

    return ChunkFaces(np.asarray(timestamps, np.float64), np.asarray(n_faces, np.int16),
                      stack(thumbs, (18, 32), np.uint8), stack([f.landmarks for f in faces], (N_LANDMARKS, 3)),
                      stack([f.blendshapes for f in faces], (N_EXPRESSIONS,)), stack([f.transform for f in faces], (4, 4)),
                      stack([g.geometry for g in signatures], (len(RIGID_POINTS), 3)),
                      stack([g.colour for g in signatures], (3,)), stack([g.pattern for g in signatures], (PATTERN_SIZE,)),
                      va, probs, crops.classes, {**t, "affect": crops.seconds})


def select_subject(parts: list[ChunkFaces], subject: SubjectSpec, reference: FaceSignature | None,
                   spec_frame: int | None) -> ChunkRows:
    """The subject's rows from the chunks' faces: the serial tracker's selector run over the frames in order.
    Each part is released from `parts` once read (the other faces' rows are not kept)."""
    from dfm.face.subject import FaceBox, FrameFaces, SubjectSelector

    selector = SubjectSelector(subject, reference, spec_frame)
    n = sum(len(p.timestamps) for p in parts)
    raw = TrackingResult.empty(n)
    index: list[int] = []
    va: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    has_probs = any(p.probs is not None for p in parts)
    classes = parts[0].affect_classes
    timestamps = np.concatenate([p.timestamps for p in parts])
    seconds: dict[str, float] = {}
    n_parts = len(parts)
    i = 0
    for m in range(n_parts):
        p, parts[m] = parts[m], None
        for key, value in p.seconds.items():
            seconds[key] = seconds.get(key, 0.0) + value
        offsets = np.concatenate([[0], np.cumsum(p.n_faces, dtype=np.int64)])
        for t in range(len(p.timestamps)):
            a, b = int(offsets[t]), int(offsets[t + 1])
            frame = FrameFaces(p.thumbs[t], [FaceBox.of(p.landmarks[j]) for j in range(a, b)],
                               [FaceSignature(p.geometry[j], p.colour[j], p.pattern[j]) for j in range(a, b)])
            chosen = selector.decide(frame)
            if chosen is not None:
                j = a + chosen
                raw.valid[i] = True
                raw.landmarks[i], raw.blendshapes[i], raw.transforms[i] = p.landmarks[j], p.blendshapes[j], p.transforms[j]
                raw.n_faces[i] = b - a
                if not np.isnan(p.va[j, 0]):
                    index.append(i)
                    va.append(p.va[j])
                    if has_probs:
                        probs.append(p.probs[j])
            i += 1
    affect = []
    if index:
        v = np.asarray(va, np.float32)
        affect = [(np.asarray(index, np.int64), v[:, 0].copy(), v[:, 1].copy(),
                   np.asarray(probs, np.float32) if has_probs else None)]
    return ChunkRows(timestamps, raw, affect, selector.report(), classes, seconds, n_parts)


class _Batches:
    """Face crops gathered into batches for the affect estimator; `out` holds one entry of arrays per
    batch (not objects per frame: those would grow the heap with the video)."""

    def __init__(self, estimator) -> None:
        self.estimator = estimator
        self.crops: list[np.ndarray] = []
        self.index: list[int] = []
        self.out: list = []
        self.seconds = 0.0
        self.classes = list(getattr(estimator, "class_names", []) or []) if estimator is not None else []

    def add(self, crop: np.ndarray, index: int) -> None:
        self.crops.append(crop)
        self.index.append(index)
        if len(self.crops) >= AFFECT_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.crops:
            return
        t0 = time.perf_counter()
        result = self.estimator.predict(np.stack(self.crops))
        self.out.append((np.array(self.index, np.int64), np.asarray(result.valence, np.float32).copy(),
                         np.asarray(result.arousal, np.float32).copy(),
                         None if result.probs is None else np.asarray(result.probs, np.float32).copy()))
        self.crops.clear()
        self.index.clear()
        self.seconds += time.perf_counter() - t0
