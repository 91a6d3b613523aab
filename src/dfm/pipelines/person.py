"""A person: a named collection of videos of one subject, its one identity, its (VA, expression) dataset and
its trained expression decoder (DESIGN "Key representations"; paper §3.2-3.3).

    person = add_person(session, "alice", ["a.mp4", "b.mp4"])   # analyse, fit ONE identity, re-fit every video
    data = build_dataset(session, "alice")                        # (va, expression, video_id, frame_index)
    decoder = train_person(session, "alice", preset="fast")       # PersonDecoder, saved with the person

On disk, under the workspace:

    persons/<NAME>/person.json      name, videos (path, sha256, frames), identity (100 floats), analysis
                                    settings, versions, and summaries of the dataset and decoder
    persons/<NAME>/dataset.npz      the pairs (see PersonDataset), written by build_dataset
    persons/<NAME>/decoder/         the PersonDecoder (card.json + weights), written by train_person
    persons/<NAME>/va_scatter.png, coverage.md, coverage.json   written by `dfm person dataset` / `train`

One identity per person: every video is first analysed on its own (cached), then the identity is fitted
jointly over a spread of well-fitted frames of *all* the videos (`fit_person_identity`), and every video
is analysed again with that identity kept fixed (`Session.analyze(video, identity=...)`, cached under its
own key). So the expressions of all the person's frames are measured against the same neutral face.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np

from dfm import __version__
from dfm.errors import DfmError, InputError
from dfm.io.files import atomic_directory

PERSON_FORMAT_VERSION = 1
DATASET_FORMAT_VERSION = 1
PERSONS_DIR = "persons"
PERSON_FILE = "person.json"
DATASET_FILE = "dataset.npz"
DECODER_DIR = "decoder"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
IDENTITY_FRAMES_PER_VIDEO = 40  # frames of each video in the joint identity fit
IDENTITY_FRAMES_TOTAL = 160  # cap over all videos (fewer per video when a person has many)
IDENTITY_RESIDUAL_QUANTILE = 0.9  # frames above this quantile of a video's fit residual are not used

Log = Callable[[str], None]


def _no_log(_: str) -> None:
    pass


# ------------------------------------------------------------------------------------------- records

@dataclass
class PersonVideo:
    """One video of a person's collection, as analysed with the person's identity."""

    path: str  # absolute path at the time it was added
    sha256: str  # content hash (the analysis cache key)
    n_frames: int
    n_valid: int  # frames with a fitted face
    fps: float
    width: int
    height: int
    track: str | None = None  # the cached FaceTrack (.npz) fitted with the person's identity

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass
class Person:
    """The record in persons/<NAME>/person.json. `folder` is where it lives (not stored)."""

    name: str
    videos: list[PersonVideo]
    identity: np.ndarray  # (100,) float32, ICT identity weights shared by all the videos
    folder: Path
    created: str = ""
    analysis: dict[str, Any] = field(default_factory=dict)  # affect estimator etc. used for every video
    identity_fit: dict[str, Any] = field(default_factory=dict)  # frames used, residual
    versions: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] | None = None  # summary of dataset.npz (None until built)
    decoder: dict[str, Any] | None = None  # summary of the trained decoder (None until trained)

    # -- paths -----------------------------------------------------------------------------------------
    @property
    def record_path(self) -> Path:
        return self.folder / PERSON_FILE

    @property
    def dataset_path(self) -> Path:
        return self.folder / DATASET_FILE

    @property
    def decoder_dir(self) -> Path:
        return self.folder / DECODER_DIR

    @property
    def identity_sha(self) -> str:
        import hashlib

        return hashlib.sha256(np.asarray(self.identity, np.float32).tobytes()).hexdigest()[:16]

    @property
    def n_frames(self) -> int:
        return sum(v.n_frames for v in self.videos)

    @property
    def n_valid(self) -> int:
        return sum(v.n_valid for v in self.videos)

    def video_names(self) -> list[str]:
        """Short unique names of the videos (file names; parent folder added where two collide)."""
        names = [v.name for v in self.videos]
        if len(set(names)) < len(names):
            names = [f"{Path(v.path).parent.name}/{v.name}" for v in self.videos]
        return names

    # -- (de)serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": PERSON_FORMAT_VERSION,
            "name": self.name,
            "created": self.created,
            "videos": [v.__dict__.copy() for v in self.videos],
            "identity": [float(x) for x in np.asarray(self.identity, np.float32)],
            "identity_sha": self.identity_sha,
            "identity_fit": self.identity_fit,
            "analysis": self.analysis,
            "versions": self.versions,
            "dataset": self.dataset,
            "decoder": self.decoder,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], folder: Path) -> "Person":
        version = d.get("format_version")
        if version != PERSON_FORMAT_VERSION:
            raise DfmError(
                f"{folder / PERSON_FILE} has format version {version!r} (this dfm reads {PERSON_FORMAT_VERSION}); "
                f"re-add the person with `dfm person add {d.get('name', 'NAME')} VIDEO... --overwrite`"
            )
        try:
            videos = [PersonVideo(**v) for v in d["videos"]]
            identity = np.asarray(d["identity"], np.float32)
        except (KeyError, TypeError) as e:
            raise DfmError(f"{folder / PERSON_FILE} is damaged ({e}); re-add the person with --overwrite") from None
        if identity.shape != (100,):
            raise DfmError(f"{folder / PERSON_FILE}: identity must have 100 values, has {identity.size}")
        return cls(name=d["name"], videos=videos, identity=identity, folder=folder, created=d.get("created", ""),
                   analysis=d.get("analysis") or {}, identity_fit=d.get("identity_fit") or {},
                   versions=d.get("versions") or {}, dataset=d.get("dataset"), decoder=d.get("decoder"))

    def save(self) -> Path:
        from dfm.io.files import atomic_write_text

        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.record_path, json.dumps(self.to_dict(), indent=2))
        return self.record_path

    def summary(self) -> str:
        """One line for `dfm person list`."""
        parts = [f"{len(self.videos)} video(s)", f"{self.n_valid}/{self.n_frames} frames with a face"]
        parts.append(f"dataset: {self.dataset['n_pairs']} pairs" if self.dataset else "no dataset")
        if self.decoder:
            parts.append(f"decoder: {self.decoder.get('preset')} (val RMSE {_fmt(self.decoder.get('rmse_val'))}, "
                         f"baseline {_fmt(self.decoder.get('rmse_val_baseline'))})")
        else:
            parts.append("no decoder")
        return f"{self.name}: " + ", ".join(parts)


class PersonDataset(NamedTuple):
    """The person's (VA, expression) pairs: every valid frame with a finite valence and arousal."""

    va: np.ndarray  # (N, 2) float32, smoothed valence/arousal of the frame
    expression: np.ndarray  # (N, 53) float32, the frame's fitted expression (person's identity fixed)
    video_id: np.ndarray  # (N,) int32, index into Person.videos
    frame_index: np.ndarray  # (N,) int32, frame of that video

    @property
    def n_pairs(self) -> int:
        return int(self.va.shape[0])


# ----------------------------------------------------------------------------------- names and paths

def persons_root(workspace: str | os.PathLike) -> Path:
    return Path(workspace) / PERSONS_DIR


def check_name(name: str) -> str:
    """A person name usable as a folder name everywhere: letters, digits, '_', '-', '.'; 1-64 characters,
    starting with a letter or digit."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InputError(
            f"invalid person name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return name


def person_dir(workspace: str | os.PathLike, name: str) -> Path:
    return persons_root(workspace) / check_name(name)


def person_exists(workspace: str | os.PathLike, name: str) -> bool:
    return (person_dir(workspace, name) / PERSON_FILE).is_file()


def list_persons(workspace: str | os.PathLike, problems: list[tuple[str, str]] | None = None) -> list[Person]:
    """All persons in the workspace, by name. Unreadable records are skipped; with `problems` given, their
    (name, reason) pairs are appended to it."""
    root = persons_root(workspace)
    out = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if d.name.startswith(".") or not (d / PERSON_FILE).is_file():
                continue
            try:
                out.append(load_person(workspace, d.name))
            except DfmError as e:
                if problems is not None:
                    problems.append((d.name, str(e)))
    return out


def load_person(workspace: str | os.PathLike, name: str) -> Person:
    """The person's record; DfmError naming the known persons when there is no such person."""
    folder = person_dir(workspace, name)
    path = folder / PERSON_FILE
    if not path.is_file():
        known = sorted(Path(k).parent.name for k in persons_root(workspace).glob(f"*/{PERSON_FILE}"))
        hint = f"known persons: {', '.join(known)}" if known else "there are no persons in this workspace"
        raise DfmError(f"unknown person {name!r} ({hint}); add one with `dfm person add {name} VIDEO...`")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DfmError(f"{path} is unreadable ({e}); re-add the person with --overwrite") from None
    return Person.from_dict(data, folder)


# ------------------------------------------------------------------------------------------ identity

def fit_person_identity(tracks: Sequence[Any], basis: Any, fit_config: Any = None,
                        frames_per_video: int = IDENTITY_FRAMES_PER_VIDEO,
                        max_frames: int = IDENTITY_FRAMES_TOTAL) -> tuple[np.ndarray, dict[str, Any]]:
    """One identity over several videos of a person: FaceFitter on a spread of well-fitted frames of every
    track (frames whose own fit residual is above the video's 90th percentile — occlusions, extreme poses —
    are left out), identity solved jointly over all of them. Returns ((100,) float32, info)."""
    from dfm.face.fitting import FaceFitter, FitConfig
    from dfm.face.tracking import N_MESH_LANDMARKS

    if not tracks:
        raise DfmError("no videos to fit an identity on")
    per_video = max(8, min(frames_per_video, max_frames // len(tracks)))
    landmarks, prior, used = [], [], []
    for tr in tracks:
        idx = np.flatnonzero(tr.valid)
        if idx.size == 0:
            used.append(0)
            continue
        res = np.asarray(tr.residual, np.float64)[idx]
        if idx.size > per_video and np.isfinite(res).all():
            idx = idx[res <= np.quantile(res, IDENTITY_RESIDUAL_QUANTILE)]
        pick = idx[np.unique(np.linspace(0, idx.size - 1, min(per_video, idx.size)).round().astype(int))]
        landmarks.append(np.asarray(tr.landmarks[pick, :N_MESH_LANDMARKS], np.float64))
        prior.append(np.asarray(tr.blendshapes[pick], np.float64))
        used.append(int(pick.size))
    if not landmarks:
        raise DfmError("none of the person's videos has a frame with a face")
    L = np.concatenate(landmarks)
    P = np.concatenate(prior)
    cfg = replace(fit_config or FitConfig(), identity_frames=int(L.shape[0]))
    result = FaceFitter(basis, cfg).fit(L, P)
    info = {"frames_per_video": used, "n_frames": int(L.shape[0]),
            "residual_px": float(np.mean(result.residual))}
    return np.asarray(result.identity, np.float32), info


# ----------------------------------------------------------------------------------------- add

def add_person(session: Any, name: str, videos: Sequence[str | os.PathLike], overwrite: bool = False,
               log: Log | None = None) -> Person:
    """Analyse the videos, fit one identity over all of them, re-fit every video with it, save the person.

    Raises InputError for a bad name, missing or repeated videos, or a video without a face; DfmError when
    the person exists and overwrite is False. Overwriting drops the old dataset and decoder.
    """
    log = log or _no_log
    check_name(name)
    folder = person_dir(session.workspace, name)
    if person_exists(session.workspace, name) and not overwrite:
        raise DfmError(f"person {name!r} already exists in {folder.parent}; pass --overwrite to replace it")
    paths = _check_videos(videos)

    from dfm.pipelines.analyze import ANALYSIS_VERSION

    # 1. every video on its own (cached), for the frames the identity fit uses
    own = []
    for k, p in enumerate(paths, 1):
        log(f"[{k}/{len(paths)}] analysing {p.name}")
        own.append(session.analyze(p))
    shas = [str(t.meta.get("source_sha256")) for t in own]
    for i in range(len(paths)):
        for j in range(i):
            if shas[i] == shas[j]:
                raise InputError(f"{paths[j]} and {paths[i]} are the same video (same content); give it once")
    # 2. one identity over all of them
    log(f"fitting one identity over {len(paths)} video(s)")
    identity, info = fit_person_identity(own, session.models.basis, session.analysis.fit)
    # 3. every video again with that identity fixed (its own cache entry)
    entries, tracks = [], []
    for k, p in enumerate(paths, 1):
        log(f"[{k}/{len(paths)}] fitting {p.name} with {name}'s identity")
        tr = session.analyze(p, identity=identity)
        tracks.append(tr)
        entries.append(PersonVideo(path=str(p.resolve()), sha256=str(tr.meta.get("source_sha256")),
                                   n_frames=tr.n_frames, n_valid=int(tr.valid.sum()), fps=float(tr.fps),
                                   width=int(tr.width), height=int(tr.height), track=tr.meta.get("cache")))
    info["residual_px_per_video"] = [float(np.nanmean(t.residual[t.valid])) if t.valid.any() else None
                                     for t in tracks]
    opts = session.analysis
    person = Person(
        name=name, videos=entries, identity=identity, folder=folder, created=_now(),
        analysis={"affect": opts.affect, "affect_weights": opts.affect_weights, "va_smoothing_s": opts.va_smoothing_s},
        identity_fit=info, versions={"dfm": __version__, "analysis_version": ANALYSIS_VERSION},
    )
    _write_person_folder(person, overwrite)
    return person


def _check_videos(videos: Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(videos, (str, os.PathLike)):
        videos = [videos]
    paths = [Path(v) for v in videos]
    if not paths:
        raise InputError("a person needs at least one video")
    for p in paths:
        if not p.exists():
            raise InputError(f"video not found: {p}")
        if not p.is_file():
            raise InputError(f"not a video file: {p}")
    resolved = [p.resolve() for p in paths]
    for i in range(len(paths)):
        if resolved[i] in resolved[:i]:
            raise InputError(f"{paths[i]} is given twice")
    return paths


def _write_person_folder(person: Person, overwrite: bool) -> None:
    """Write the new record into a fresh folder and swap it in (an old dataset/decoder go with the old one)."""
    folder = person.folder
    if (folder / PERSON_FILE).exists() and not overwrite:
        raise DfmError(f"person {person.name!r} already exists in {folder.parent}; pass --overwrite to replace it")
    try:
        with atomic_directory(folder) as tmp:
            person.folder = tmp
            person.save()
    finally:
        person.folder = folder


# ------------------------------------------------------------------------------------------- tracks

def _person_session(session: Any, person: Person) -> Any:
    """The session with the analysis settings the person was added with (same cache keys, same VA)."""
    want = person.analysis or {}
    opts = session.analysis
    if not want or (opts.affect, opts.affect_weights, opts.va_smoothing_s) == (
            want.get("affect"), want.get("affect_weights"), want.get("va_smoothing_s")):
        return session
    return replace(session, analysis=replace(opts, affect=want.get("affect", opts.affect),
                                             affect_weights=want.get("affect_weights"),
                                             va_smoothing_s=want.get("va_smoothing_s", opts.va_smoothing_s)))


def person_tracks(session: Any, person: Person | str) -> list[Any]:
    """The FaceTracks of the person's videos, fitted with the person's identity (from the cache when possible).

    A cached track is used when it still exists and matches the video's hash and identity; otherwise the
    video is analysed again (DfmError if the video has gone too).
    """
    from dfm.face.track import FaceTrack

    if isinstance(person, str):
        person = load_person(session.workspace, person)
    psession = _person_session(session, person)
    out = []
    for v in person.videos:
        tr = None
        if v.track and Path(v.track).is_file():
            try:
                cand = FaceTrack.load(v.track)
            except (DfmError, OSError, ValueError, KeyError):
                cand = None
            if (cand is not None and cand.meta.get("source_sha256") == v.sha256
                    and np.array_equal(np.asarray(cand.identity, np.float32), person.identity)):
                tr = cand
                tr.meta.update(cache=str(v.track), cached=True)
        if tr is None:
            if not Path(v.path).is_file():
                raise DfmError(f"video {v.path} of person {person.name!r} is missing and its analysis is no longer "
                               f"cached; put it back or re-add the person with --overwrite")
            tr = psession.analyze(v.path, identity=person.identity)
            if tr.meta.get("source_sha256") != v.sha256:
                raise DfmError(f"video {v.path} of person {person.name!r} has changed since it was added; "
                               f"re-add the person with --overwrite")
        out.append(tr)
    return out


# ------------------------------------------------------------------------------------------ dataset

def dataset_from_tracks(tracks: Sequence[Any]) -> PersonDataset:
    """Pairs of every valid frame with finite VA, video by video in frame order."""
    va, expr, vid, frame = [], [], [], []
    for k, tr in enumerate(tracks):
        if tr.valence is None or tr.arousal is None:
            raise DfmError("the person's videos were analysed without an affect estimator (--affect none): "
                           "re-add the person with an estimator")
        v = np.asarray(tr.valence, np.float32)
        a = np.asarray(tr.arousal, np.float32)
        ok = np.asarray(tr.valid, bool) & np.isfinite(v) & np.isfinite(a)
        idx = np.flatnonzero(ok)
        va.append(np.stack([v[idx], a[idx]], axis=1))
        expr.append(np.asarray(tr.expression, np.float32)[idx])
        vid.append(np.full(idx.size, k, np.int32))
        frame.append(idx.astype(np.int32))
    if not va:
        return PersonDataset(np.zeros((0, 2), np.float32), np.zeros((0, 53), np.float32),
                             np.zeros(0, np.int32), np.zeros(0, np.int32))
    return PersonDataset(np.concatenate(va), np.concatenate(expr), np.concatenate(vid), np.concatenate(frame))


def build_dataset(session: Any, name: str) -> PersonDataset:
    """The person's (VA, expression) pairs of all valid frames with finite VA; saved as dataset.npz."""
    from dfm.affect import regions
    from dfm.io.files import atomic_output

    person = load_person(session.workspace, name)
    data = dataset_from_tracks(person_tracks(session, person))
    if data.n_pairs == 0:
        raise DfmError(f"person {name!r} has no frame with both a face and a valence/arousal estimate")
    with atomic_output(person.dataset_path, suffix=".npz") as tmp:
        np.savez_compressed(
            tmp, format_version=np.array(DATASET_FORMAT_VERSION), va=data.va, expression=data.expression,
            video_id=data.video_id, frame_index=data.frame_index,
            video_sha256=np.array([v.sha256 for v in person.videos]), identity_sha=np.array(person.identity_sha),
        )
    person.dataset = {
        "n_pairs": data.n_pairs,
        "pairs_per_video": np.bincount(data.video_id, minlength=len(person.videos)).tolist(),
        "created": _now(),
        "affect": person.analysis.get("affect"),
        "va_mean": [float(x) for x in data.va.mean(axis=0)],
        "region_counts": regions.coverage(data.va),
    }
    person.save()
    return data


def load_dataset(workspace: str | os.PathLike, name: str) -> PersonDataset:
    """dataset.npz of the person; DfmError when it is missing or was built from other videos/identity."""
    person = load_person(workspace, name)
    path = person.dataset_path
    if not path.is_file():
        raise DfmError(f"person {name!r} has no dataset yet; run `dfm person dataset {name}`")
    with np.load(path, allow_pickle=False) as z:
        if int(z["format_version"]) != DATASET_FORMAT_VERSION:
            raise DfmError(f"{path} is from another dfm version; rebuild it with `dfm person dataset {name}`")
        shas = [str(s) for s in z["video_sha256"]]
        if shas != [v.sha256 for v in person.videos] or str(z["identity_sha"]) != person.identity_sha:
            raise DfmError(f"{path} is out of date (the person was re-added); rebuild it with `dfm person dataset {name}`")
        return PersonDataset(z["va"].astype(np.float32), z["expression"].astype(np.float32),
                             z["video_id"].astype(np.int32), z["frame_index"].astype(np.int32))


def dataset_times(person: Person, data: PersonDataset) -> np.ndarray:
    """(N,) seconds of each pair within its video (frame index / fps)."""
    fps = np.array([v.fps if v.fps > 0 else 25.0 for v in person.videos], np.float64)
    return data.frame_index / fps[data.video_id]


# -------------------------------------------------------------------------------------------- train

def train_person(session: Any, name: str, preset: str = "fast", epochs: int | None = None,
                 log: Log | None = None, progress: bool | None = None) -> Any:
    """Fit the person's PersonDecoder (time-block validation split by video and frame) and save it in
    persons/<NAME>/decoder/ with its training report and coverage blend. Builds the dataset if needed.

    epochs: for the network presets (paper, mlp) only; None keeps the preset's (paper: 1000).
    """
    from dfm.decoder import PRESETS, PersonDecoder, make_decoder

    log = log or _no_log
    progress = session.progress if progress is None else progress
    person = load_person(session.workspace, name)
    if preset not in PRESETS:
        raise InputError(f"unknown decoder preset {preset!r}; choose one of {', '.join(PRESETS)}")
    overrides: dict[str, Any] = {}
    if epochs is not None:
        if preset == "fast":
            raise InputError("--epochs applies to the network presets (paper, mlp); the fast decoder has no epochs")
        if int(epochs) < 1:
            raise InputError(f"--epochs must be at least 1, got {epochs}")
        overrides["epochs"] = int(epochs)
    try:
        data = load_dataset(session.workspace, name)
    except DfmError:
        log(f"building the dataset of {name}")
        data = build_dataset(session, name)
        person = load_person(session.workspace, name)
    decoder = make_decoder(preset, **overrides)
    log(f"training the {preset} decoder on {data.n_pairs} pairs"
        + (f" ({decoder.epochs} epochs, batch {decoder.batch_size})" if hasattr(decoder, "epochs") else ""))
    model = PersonDecoder(decoder=decoder)
    data_info = {
        "person": person.name,
        "videos": [{"path": v.path, "sha256": v.sha256} for v in person.videos],
        "identity_sha": person.identity_sha,
        "affect": person.analysis.get("affect"),
        "preset": preset,
    }
    with _epoch_progress(decoder, progress, f"train {name} ({preset})"):
        model.fit(data.va, data.expression, video_ids=data.video_id, frame_index=data.frame_index,
                  data_info=data_info)
    model.save(person.decoder_dir, overwrite=True)
    rep = model.report_
    person.decoder = {
        "preset": preset, "kind": rep.decoder, "trained": _now(), "n_pairs": rep.n_pairs,
        "n_train": rep.n_train, "n_val": rep.n_val, "rmse_train": rep.rmse_train, "rmse_val": rep.rmse_val,
        "rmse_val_baseline": rep.rmse_val_baseline, "train_seconds": rep.train_seconds, "epochs": rep.epochs,
    }
    person.save()
    return model


def load_decoder(workspace: str | os.PathLike, name: str) -> Any:
    """The person's trained PersonDecoder; DfmError when none was trained (or it is from an old version)."""
    from dfm.decoder import PersonDecoder

    person = load_person(workspace, name)
    if not (person.decoder_dir / "card.json").is_file():
        raise DfmError(f"person {name!r} has no trained decoder; run `dfm person train {name}`")
    return PersonDecoder.load(person.decoder_dir)


load_person_decoder = load_decoder  # the name dfm.pipelines.session uses


@contextlib.contextmanager
def _epoch_progress(decoder: Any, enabled: bool, desc: str) -> Iterator[None]:
    """A tqdm bar over the epochs of a network decoder, fed by its `verbose` per-epoch lines."""
    if not enabled or not hasattr(decoder, "epochs") or not hasattr(decoder, "verbose"):
        yield
        return
    from tqdm import tqdm

    bar = tqdm(total=int(decoder.epochs), desc=desc, unit="epoch", leave=False, dynamic_ncols=True, file=sys.stderr)
    sink = _EpochSink(bar)
    decoder.verbose = True
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        decoder.verbose = False
        bar.close()


class _EpochSink(io.TextIOBase):
    """stdout replacement that turns "epoch N: ..., val RMSE x" lines into progress bar updates."""

    _LINE = re.compile(r"epoch (\d+):.*val RMSE ([0-9.eE+-]+)")

    def __init__(self, bar: Any):
        self.bar = bar
        self._buf = ""

    def write(self, s: str) -> int:
        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            m = self._LINE.search(line)
            if m:
                self.bar.n = int(m.group(1))
                self.bar.set_postfix_str(f"val RMSE {float(m.group(2)):.4f}", refresh=False)
                self.bar.refresh()
        return len(s)


# ------------------------------------------------------------------------------------------- helpers

def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _fmt(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, (int, float)) else "?"
