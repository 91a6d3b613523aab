"""The one Python API behind the CLI and the web tool.

    from dfm import Session
    s = Session()                          # workspace from DFM_WORKSPACE or the user cache
    track = s.analyze("clip.mp4")          # FaceTrack, cached by content
    s.inspect("clip.mp4", "out/")          # overlay video + plots
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dfm.pipelines.analyze import AnalysisOptions, FaceModels, analyze_video, default_workspace
from dfm.pipelines.base import Hooks
from dfm.assets import AssetStore
from dfm.errors import CacheWarning, DfmError
from dfm.face.expressions import EXPRESSION_NAMES
from dfm.face.track import FaceTrack
from dfm.parallel.options import ParallelOptions

# seconds of video judged on each side of an edit for visible talking (Session.speaks): 8-s spans and longer
# separate the shared talking clips (talking share 0.76 and up) from crying, laughing and faces pulled (0.50 at
# most; dfm.face.speaking)
SPEAKING_MARGIN_S = 4.0


@dataclass
class Session:
    workspace: Path = field(default_factory=default_workspace)
    store: AssetStore = field(default_factory=AssetStore.from_env)
    progress: bool = True
    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)
    parallel: ParallelOptions = field(default_factory=ParallelOptions)  # chunks of one video over processes / Ray
    _models: FaceModels | None = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)  # in-memory: meshes, pools, decoders (warm calls)

    _workers: "_ExecutorSlot" = field(default=None, repr=False)  # shared with with_subject() copies

    def __post_init__(self) -> None:
        self.workspace = Path(self.workspace)
        if self._workers is None:
            self._workers = _ExecutorSlot()

    def executor(self):
        """The chunk executor `self.parallel` asks for, started once and kept (its workers keep their models
        loaded between the analysis and the render of a job, and between jobs of the web tool)."""
        return self._workers.get(self.parallel)

    def close(self) -> None:
        """Stop the worker processes / Ray actors this session (and its with_subject copies) started."""
        self._workers.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def models(self) -> FaceModels:
        if self._models is None:
            self._models = FaceModels.load(self.store)
        return self._models

    @property
    def face_model_path(self) -> str:
        """Where the session's workers load the face model from (its unpacked copy: milliseconds a worker;
        made on first use, without loading the models in this process)."""
        from dfm.face.model import unpacked_face_model

        return str(unpacked_face_model(self.store.path("ict-face-model"), self.store.derived_dir))

    def analyze(self, video: str | os.PathLike, force: bool = False, identity: np.ndarray | None = None,
                hooks: Hooks | None = None) -> FaceTrack:
        key = ("track", str(Path(video).resolve()), None if identity is None else np.asarray(identity).tobytes(),
               self.analysis.cache_key())
        cached = self._cache.get(key)
        if cached is not None and not force and cached[0] == _file_state(video):
            return cached[1]
        from dfm.parallel import blas_beside_workers

        with blas_beside_workers(self.parallel):
            track = analyze_video(video, self.workspace, self.store, self.analysis, identity=identity,
                                  models=lambda: self.models, progress=self.progress, force=force, hooks=hooks,
                                  executor=None if self.parallel.serial else self.executor)
        self._cache[key] = (_file_state(video), track)
        return track

    def with_subject(self, subject) -> "Session":
        """This session with another subject choice (a SubjectSpec or its text), sharing the loaded models
        and the warm caches (their keys name the subject) — one per web project, say."""
        from dataclasses import replace

        from dfm.face.subject import parse_subject

        spec = parse_subject(subject)
        if spec == self.analysis.subject:
            return self
        return replace(self, analysis=replace(self.analysis, subject=spec), _models=self.models)

    def faces_at(self, video: str | os.PathLike, t: float) -> list:
        """The faces seen in the frame shown at `t` seconds, left to right: [FaceBox] with x0, y0, x1, y1
        in display pixels. Choose one with `SubjectSpec.at(t, *box.centre)` as `analysis.subject`."""
        from dfm.pipelines.subject import faces_at

        return faces_at(video, t, self.store.path("face-landmarker"))

    def file_hash(self, path: str | os.PathLike) -> str:
        from dfm.pipelines.analyze import video_hash

        return video_hash(Path(path), self.workspace)

    def render_mesh(self, track: FaceTrack):
        """The renderer's mesh for this identity (built once per identity, kept in memory)."""
        from dfm.render.mesh import RenderMesh

        key = ("mesh", np.round(track.identity, 5).tobytes())
        if key not in self._cache:
            self._cache[key] = RenderMesh.build(self.models.model, track.identity)
        return self._cache[key]

    def renderer(self, name: str, track: FaceTrack, pool=None, params: dict | None = None,
                 frames: Sequence[str] = ("all", "train")):
        """The renderer `name` (dfm.render.registry) for this video; trained models are looked up beside
        its track, trained on `frames` (in that order of preference; the evaluation allows "train" only)."""
        from dfm.pipelines.renderer_train import trained_renderer
        from dfm.render.registry import RendererContext, make_renderer

        ctx = RendererContext(self.models.model, self.render_mesh(track), track, pool, dict(params or {}),
                              trained=lambda kind: trained_renderer(track, kind, frames))
        return make_renderer(name, ctx)

    def frame_pool(self, video: str | os.PathLike, track: FaceTrack, collection: Sequence[str | os.PathLike] = (),
                   indices: np.ndarray | None = None, scanned: tuple | None = None):
        """The frames whose appearance the warp renderer may copy: the video itself (or `indices` of it)
        plus the person's collection videos; kept in memory for warm calls. A long video's pixel pass
        runs on the session's workers in a parallel session; `scanned` is that pass done beforehand
        (`scan_frame_pool`)."""
        from dfm.io.video import iter_frames
        from dfm.render.pool import FramePool

        mesh = self.render_mesh(track)
        key = self._pool_key(video, track, collection, indices)
        if key not in self._cache:
            if scanned is None and indices is None:
                scanned = self.scan_frame_pool(video, track)
            if scanned is not None:
                plan, scans = scanned
                pool = FramePool.assemble(plan, track, mesh, scans, video=str(video))
            else:
                allowed = np.arange(track.n_frames) if indices is None else np.asarray(indices)
                pool = FramePool.build(track, iter_frames(video), allowed, mesh, video=str(video))
            for other in collection:
                other_track = self.analyze(other, identity=track.identity)
                pool = pool.merged(FramePool.build(other_track, iter_frames(other), np.arange(other_track.n_frames),
                                                   mesh, video=str(other)))
            self._cache[key] = pool
        return self._cache[key]

    def scan_frame_pool(self, video: str | os.PathLike, track: FaceTrack) -> tuple | None:
        """(plan, scans): the pixel pass of this video's pool on the workers, for `frame_pool(scanned=)`;
        None when the pool is in memory already or the session would not chunk it (serial, a short video)."""
        if self._pool_key(video, track, (), None) in self._cache or not self.chunks_pool_scan(track):
            return None
        from dfm.pipelines.pool_chunks import scan_pool_chunked

        return scan_pool_chunked(self.executor(), track, str(video), self.render_mesh(track), self.face_model_path)

    def has_frame_pool(self, video: str | os.PathLike, track: FaceTrack) -> bool:
        """Whether this video's own pool (no collection, every frame) is in memory."""
        return self._pool_key(video, track, (), None) in self._cache

    def _pool_key(self, video, track: FaceTrack, collection, indices) -> tuple:
        return ("pool", self.file_hash(video), np.round(track.identity, 5).tobytes(),
                None if indices is None else np.asarray(indices).tobytes(), tuple(self.file_hash(c) for c in collection))

    def chunks_pool_scan(self, track: FaceTrack) -> bool:
        """Whether a pool's pixel pass runs on the workers: a parallel session and a long video
        (dfm.pipelines.pool_chunks.MIN_VIDEO_FRAMES)."""
        from dfm.pipelines import pool_chunks

        return self.parallel.chunks(track.n_frames, pool_chunks.MIN_VIDEO_FRAMES)

    def decoder_for(self, track: FaceTrack, person: str | None = None,
                    collection: Sequence[str | os.PathLike] = (), labels: Sequence[str] = ()):
        """(decoder, info): the person's trained decoder, else one trained on this video plus its
        collection; info says which, the coverage per label and warnings for thinly covered labels."""
        from dfm.decoder import PersonDecoder

        if person is not None:
            from dfm.pipelines.person import load_person_decoder

            decoder, kind = load_person_decoder(self.workspace, person), f"person {person}"
        elif collection:
            pairs = [track_pairs(track)] + [track_pairs(self.analyze(c, identity=track.identity)) for c in collection]
            va = np.concatenate([p[0] for p in pairs])
            expr = np.concatenate([p[1] for p in pairs])
            vids = np.concatenate([np.full(len(p[0]), k) for k, p in enumerate(pairs)])
            frames = np.concatenate([p[2] for p in pairs])
            decoder = fit_or_universal(PersonDecoder("fast"), va, expr, vids, frames)
            kind = f"this video + {len(collection)} collection video(s)"
        else:
            decoder, kind = self.video_decoder(track), "this video's own frames"
        info: dict[str, Any] = {"source": kind, "warnings": []}
        if getattr(decoder, "decoder_", None) is None:
            info["coverage"] = ["no usable (VA, expression) pairs: the universal FACS prior decodes every label"]
            info["warnings"].append(info["coverage"][0])
            return decoder, info
        info.update(decoder_choice_info(decoder))
        cov = decoder.coverage_report()
        info["coverage"] = cov.lines()
        for label in labels:
            if label and cov.share(label) < 0.5:
                info["warnings"].append(f"{label}: the person's frames cover this emotion poorly "
                                        f"({100 * cov.share(label):.0f}% data); the universal FACS prior shapes most of it")
        return decoder, info

    def edit(self, video: str | os.PathLike, edits, output: str | os.PathLike, options=None):
        """The whole job (see dfm.pipelines.edit.edit_video)."""
        from dfm.pipelines.edit import edit_video

        return edit_video(self, video, edits, output, options)

    def preview(self, video: str | os.PathLike, edits, at: float, *, seed: int = 0, person: str | None = None,
                preserve_speech: bool | None = None, renderer: str = "warp") -> np.ndarray:
        """One rendered frame (H, W, 3) uint8 at time `at` seconds — fast when the session is warm."""
        from dfm.io.video import read_frame

        track = self.analyze(video)
        key = ("decoder", self.file_hash(video), person, track.meta.get("cache"))  # the track names the subject
        if key not in self._cache:
            self._cache[key] = self.decoder_for(track, person=person)[0]
        plan = self.plan(video, edits, decoder=self._cache[key], seed=seed, preserve_speech=preserve_speech)
        index = track.frame_index_at(at)
        image = np.asarray(read_frame(video, index).image)
        if plan.weight[index] <= 0:
            return image
        from dfm.pipelines.renderer_train import check_trained
        from dfm.render.renderer import renderer_targets

        check_trained(renderer, track)  # before the pool: a missing model fails fast
        r = self.renderer(renderer, track, self.frame_pool(video, track))
        target = renderer_targets(r, plan.target[index:index + 1], plan.original_share[index:index + 1], index)[0]
        return r.render_frame(index, image, target, float(plan.weight[index]), target_va=plan.va[index])

    def video_decoder(self, track: FaceTrack, preset: str = "fast"):
        """A decoder trained on one video's own (VA, expression) pairs (the video as its own collection),
        blended with the universal FACS prior where its data is thin; cached beside the track."""
        from dfm.decoder import PersonDecoder

        folder = self._video_decoder_folder(track, preset)
        if (folder / "card.json").exists():
            try:
                cached = PersonDecoder.load(folder)
                if cached.choice_ is not None:  # older caches predate the validation choice: retrain
                    return cached
            except Exception as e:  # an older decoder format, or a damaged file: retrain below
                if not isinstance(e, DfmError):
                    warnings.warn(f"cached decoder {folder} is damaged ({type(e).__name__}); training it again",
                                  CacheWarning, stacklevel=2)
        va, expr, frames = track_pairs(track)
        decoder = fit_or_universal(PersonDecoder(preset), va, expr, np.zeros(len(va), np.int64), frames,
                                   {"video_sha256": track.meta.get("source_sha256")})
        if decoder.is_fitted and getattr(decoder, "decoder_", None) is not None:
            decoder.save(folder, overwrite=True)
        return decoder

    @staticmethod
    def _video_decoder_folder(track: FaceTrack, preset: str) -> Path:
        # "-2": decoders cached before the 10th-percentile rest face (dfm.decoder.person.rest_face) are retrained
        return Path(track.meta["cache"]).with_suffix("") / f"decoder-{preset}-2"

    def plan(self, video: str | os.PathLike, edits, *, decoder=None, track: FaceTrack | None = None, seed: int = 0,
             transition_frames: int = 20, preserve_speech: bool | Sequence[bool] | None = None,
             smoothing: float | None = 0.1):
        """Per-frame target expression and edit weights for an edit list (see dfm.edits.make_plan).
        preserve_speech None: each edit keeps the articulation when the person talks near it (`speaks`)."""
        from dfm.edits import make_plan_for_track

        track = track if track is not None else self.analyze(video)
        decoder = decoder if decoder is not None else self.video_decoder(track)
        if preserve_speech is None:
            from dfm.edits.validate import validate_edits

            resolved = validate_edits(edits, track.timestamps, track.valid, track.fps, transition_frames)
            # per edit: an interview's answers keep their words, a laugh elsewhere in it is not speech
            preserve_speech = [self.speaks(video, track, [(r.first, r.stop)]) for r in resolved]
        prior = getattr(decoder, "prior_", None)  # full-face prototype floor (dfm.edits.plan step 2)
        return make_plan_for_track(track, edits, decoder.predict, seed=seed, transition_frames=transition_frames,
                                   preserve_speech=preserve_speech, smoothing=smoothing,
                                   prototype=None if prior is None else prior.activation)

    def speaks(self, video: str | os.PathLike, track: FaceTrack | None = None,
               spans: Sequence[tuple[int, int]] | None = None) -> bool:
        """Whether the person in `video` talks: speech in its soundtrack, or else a talking mouth in the frames
        (dfm.face.speaking; many clips have no sound). The default of speech preservation. With `spans`
        (frame ranges first..stop-1: an edit) the frames judged are those ranges and SPEAKING_MARGIN_S on
        each side: an interview's listening part and its answers are judged apart, over spans long enough
        (8 s and more) that laughing or a face pulled does not read as words."""
        from dfm.face.speaking import frames_near, shows_talking
        from dfm.io.audio import has_speech

        key = ("audio speech", self.file_hash(video))
        if key not in self._cache:
            self._cache[key] = has_speech(video)
        if self._cache[key]:
            return True
        track = track if track is not None else self.analyze(video)
        judged = track.valid if spans is None else track.valid & frames_near(track.timestamps, spans, SPEAKING_MARGIN_S)
        return shows_talking(track.landmarks, track.scale, judged, track.timestamps)

    def inspect(self, video: str | os.PathLike, out_dir: str | os.PathLike, overwrite: bool = False) -> dict[str, Path]:
        from dfm.viz.inspection import write_inspection

        track = self.analyze(video)
        return write_inspection(video, track, self.models.model, out_dir, progress=self.progress, overwrite=overwrite)


class _ExecutorSlot:
    """The session's chunk executor, started on first use; one slot for a session and its copies."""

    def __init__(self) -> None:
        import threading

        self._executor: Any = None
        self._stop: Any = None  # closes the executor when the session is closed, collected, or at exit
        self._lock = threading.Lock()  # the web tool's job threads

    def get(self, options: ParallelOptions):
        with self._lock:
            if self._executor is None:
                import weakref

                from dfm.parallel import make_executor

                self._executor = make_executor(options)
                self._stop = weakref.finalize(self, self._executor.close)
            return self._executor

    def close(self) -> None:
        with self._lock:
            stop, self._executor, self._stop = self._stop, None, None
        if stop is not None:
            stop()


def decoder_choice_info(decoder) -> dict[str, Any]:
    """The job report's decoder-choice lines: which candidate validation kept, its and the mean's RMSE."""
    choice = getattr(decoder, "choice_", None)
    if choice is None:
        return {}
    return {"choice": choice.chosen, "rmse_val": choice.rmse_val, "rmse_val_baseline": choice.rmse_val_baseline,
            "candidates_rmse_val": choice.candidates, "choice_line": choice.line()}


def fit_or_universal(decoder, va, expr, video_ids, frames, data_info=None):
    """Fit a PersonDecoder on the pairs; with too little data to validate (a few seconds of video),
    fall back to the universal FACS prior (the job report says so)."""
    from dfm.decoder import PersonDecoder

    try:
        return decoder.fit(va, expr, video_ids=video_ids, frame_index=frames, data_info=data_info)
    except DfmError:  # the prior on the person's own rest face (not the generic model's zero face)
        from dfm.decoder.person import rest_face

        return PersonDecoder.universal(neutral=rest_face(expr) if len(expr) else None)


def _file_state(path: str | os.PathLike) -> tuple[int, int]:
    st = Path(path).stat()
    return st.st_size, st.st_mtime_ns


def track_pairs(track: FaceTrack) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(VA (N,2), expression (N,53), frame index (N,)) of the frames with a face and an affect estimate."""
    if track.valence is None:
        return np.zeros((0, 2), np.float32), np.zeros((0, 53), np.float32), np.zeros(0, np.int64)
    ok = track.valid & np.isfinite(track.valence) & np.isfinite(track.arousal)
    va = np.stack([track.valence, track.arousal], 1)[ok]
    return va.astype(np.float32), track.expression[ok], np.flatnonzero(ok)


def analysis_summary(track: FaceTrack) -> dict[str, Any]:
    """The machine-readable summary `dfm analyze --json` prints."""
    valid = track.valid
    mean_expr = track.expression[valid].mean(0) if valid.any() else np.zeros(len(EXPRESSION_NAMES))
    out: dict[str, Any] = {
        "video": track.meta.get("source"),
        "frames": track.n_frames,
        "valid_frames": int(valid.sum()),
        "fps": track.fps,
        "width": track.width,
        "height": track.height,
        "duration": float(track.timestamps[-1] + 1.0 / track.fps) if track.n_frames else 0.0,
        "seconds": track.meta.get("seconds", {}),
        "cached": bool(track.meta.get("cached", False)),
        "track": track.meta.get("cache"),
        "mean_residual_px": float(np.nanmean(track.residual[valid])) if valid.any() else None,
        "mean_expression": {n: round(float(v), 4) for n, v in zip(EXPRESSION_NAMES, mean_expr)},
        "subject": track.meta.get("subject"),
    }
    if track.valence is not None:
        ok = valid & ~np.isnan(track.valence)
        out["affect_estimator"] = track.meta.get("affect_estimator")
        out["mean_valence"] = float(track.valence[ok].mean()) if ok.any() else None
        out["mean_arousal"] = float(track.arousal[ok].mean()) if ok.any() else None
    return out
