"""The streamed half of the analysis (decode -> track the subject -> affect on its crops) for one range
of frames, and the join of such ranges into the whole video's rows.

    rows = track_chunk(state, AnalysisChunk(Chunk(0, 0, n), video, ...), report)   # the serial run: one chunk
    rows = join_chunks(executor.map(track_chunk, items, setup=AnalysisSetup(...)))  # chunks over workers

The serial analysis is one chunk covering the video, run in the caller's process; a chunked one runs
`plan_chunks` ranges in workers (dfm.parallel) that load the landmarker model and the affect estimator
once (`AnalysisSetup`), and the parent fits the joined landmarks (one identity per video) and smooths
valence/arousal over the joined series, exactly as the serial run does.

No seams. MediaPipe's FaceLandmarker as dfm runs it (video mode, up to 4 faces) keeps no state between
frames that changes its output: a tracker started at frame 100 gives landmarks bit-identical to one that
ran from frame 0 (measured on the Pexels clip). What carries state is the subject selector
(dfm.face.subject): the subject's reference signature and spread, its last box and signature, the
other faces' boxes and the scene-cut thumbnail. So every chunk after the first
- starts its selector from the subject's signature at its first appearance (what the serial selector
  starts from; a point spec's face for `--subject TIME:X,Y`), and
- runs `warmup` frames before its start (decoded and tracked, not kept) so the previous-frame state is
  the serial run's and the running reference has adapted to the recent frames.
With one face in the picture the rows are identical to the serial run's. With several, the reference is
a mean over the warm-up rather than over the whole past, so a face whose distance to the subject lies
right at a threshold may be decided differently; person-change events are recomputed on the joined
rows (`join_chunks`), so a return of the subject long after a change is still reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dfm.face.subject import FaceSignature, SubjectReport, SubjectSpec
from dfm.face.tracking import FaceTracker, TrackBuffer, TrackingResult
from dfm.parallel.chunks import Chunk

AFFECT_BATCH = 64


@dataclass(frozen=True)
class ChunkSettings:
    """How the analysis is cut: `warmup` frames run before each chunk, no chunk under `min_frames`,
    `per_worker` chunks a worker, and videos under `serial_below` frames analysed in this process (the
    pool's start and the warm-up cost more than they save)."""

    warmup: int = 25
    min_frames: int = 48
    per_worker: int = 1
    serial_below: int = 150


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
    """One range of one video to track: `reference`/`spec_frame` start the subject selector (frame index
    in the video)."""

    chunk: Chunk
    video: str
    subject: SubjectSpec
    reference: FaceSignature | None = None
    spec_frame: int | None = None

    def describe(self) -> str:
        return self.chunk.describe()


@dataclass
class ChunkRows:
    """A chunk's per-frame results (indices are frames of the video)."""

    start: int
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


def track_chunk(state: AnalysisState, item: AnalysisChunk, report: Callable[[int], None]) -> ChunkRows:
    """Decode, track and crop the frames of `item.chunk` (after its warm-up), predict affect on the crops;
    report(1) after each of the chunk's own frames."""
    from dfm.affect.crops import face_crops
    from dfm.io.video import iter_frames

    c = item.chunk
    estimator = state.estimator
    spec_frame = None if item.spec_frame is None or item.spec_frame < c.first else item.spec_frame - c.first
    rows = TrackBuffer()
    timestamps: list[float] = []
    crops: list[np.ndarray] = []
    crop_index: list[int] = []
    affect_rows: list = []
    t = dict(decode=0.0, track=0.0, crop=0.0, affect=0.0)
    n_warm = 0
    with FaceTracker(state.landmarker, subject=item.subject, reference=item.reference,
                     spec_frame=spec_frame) as tracker:
        t0 = time.perf_counter()
        for frame in iter_frames(item.video, c.first, c.stop):
            image = frame.image
            t1 = time.perf_counter()
            t["decode"] += t1 - t0
            row = tracker.track(image, frame.timestamp)
            t2 = time.perf_counter()
            t["track"] += t2 - t1
            if frame.index < c.start:  # warm-up: the tracker's state only
                n_warm += 1
                t0 = time.perf_counter()
                continue
            rows.append(row)
            timestamps.append(frame.timestamp)
            if estimator is not None and row is not None:
                crops.append(face_crops(image, row.landmarks, estimator.crop_size, estimator.crop_margin))
                crop_index.append(c.start + len(rows) - 1)
                t3 = time.perf_counter()
                t["crop"] += t3 - t2
                if len(crops) >= AFFECT_BATCH:
                    _run_affect(estimator, crops, crop_index, affect_rows)
                    t["affect"] += time.perf_counter() - t3
            report(1)
            t0 = time.perf_counter()
        subject = _drop_warmup(tracker.report(), n_warm, c.first)
    if crops:
        t3 = time.perf_counter()
        _run_affect(estimator, crops, crop_index, affect_rows)
        t["affect"] += time.perf_counter() - t3
    classes = list(getattr(estimator, "class_names", []) or []) if estimator is not None else []
    return ChunkRows(c.start, np.asarray(timestamps, np.float64), rows.result(), affect_rows, subject, classes, t)


def _run_affect(estimator, crops: list, index: list, out: list) -> None:
    # one entry of arrays per batch (not objects per frame: those would grow the heap with the video)
    result = estimator.predict(np.stack(crops))
    out.append((np.array(index, np.int64), np.asarray(result.valence, np.float32).copy(),
                np.asarray(result.arousal, np.float32).copy(),
                None if result.probs is None else np.asarray(result.probs, np.float32).copy()))
    crops.clear()
    index.clear()


def _drop_warmup(report: SubjectReport, n_warm: int, first: int) -> SubjectReport:
    """The selector's report without the warm-up frames, with frame indices of the video."""
    return SubjectReport(report.spec, report.subject[n_warm:], report.others[n_warm:],
                         [{**e, "frame": e["frame"] + first} for e in report.changes if e["frame"] >= n_warm],
                         [i + first for i in report.scene_changes if i >= n_warm])


def join_chunks(parts: list[ChunkRows]) -> ChunkRows:
    """The chunks' rows, in order, as one (the serial run's rows when `parts` is one chunk)."""
    if len(parts) == 1:
        return parts[0]
    raw = TrackingResult(**{name: np.concatenate([getattr(p.raw, name) for p in parts])
                            for name in TrackingResult.__dataclass_fields__})
    reports = [p.subject for p in parts]
    subject = SubjectReport(reports[0].spec, np.concatenate([r.subject for r in reports]),
                            np.concatenate([r.others for r in reports]),
                            [], [i for r in reports for i in r.scene_changes])
    to_other = sorted(e["frame"] for r in reports for e in r.changes if e["kind"] == "to_other")
    subject.changes = person_changes(subject.subject, to_other)
    seconds: dict[str, float] = {}
    for p in parts:
        for k, v in p.seconds.items():
            seconds[k] = seconds.get(k, 0.0) + v
    return ChunkRows(parts[0].start, np.concatenate([p.timestamps for p in parts]), raw,
                     [row for p in parts for row in p.affect], subject, parts[0].affect_classes, seconds, len(parts))


def person_changes(subject: np.ndarray, to_other: list[int]) -> list[dict[str, Any]]:
    """The selector's change events from its `to_other` frames and the subject mask: after a change to
    another person, the subject's next appearance is a change back (dfm.face.subject.SubjectSelector)."""
    events: list[dict[str, Any]] = []
    marks = set(to_other)
    for i in range(len(subject)):
        if i in marks:
            events.append({"frame": i, "kind": "to_other"})
        elif subject[i] and not (i > 0 and subject[i - 1]) and events and events[-1]["kind"] == "to_other":
            events.append({"frame": i, "kind": "to_subject"})
    return events


def first_reference(video: str | Path, spec: SubjectSpec, landmarker: Path, limit: int) -> FaceSignature | None:
    """The subject's signature where the serial selector first picks it (a rule's face at its first
    appearance), looked for in the first `limit` frames; None when no face is there."""
    from dfm.io.video import iter_frames

    with FaceTracker(landmarker, subject=spec) as tracker:
        for frame in iter_frames(video, 0, limit):
            if tracker.track(frame.image, frame.timestamp) is not None:
                return tracker.selector.identity.reference
    return None
