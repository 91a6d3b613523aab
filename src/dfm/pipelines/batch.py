"""Many videos in one job, with resume: `dfm batch analyze` and `dfm batch edit` (the CLI is dfm.app.cli.batch).

    videos = discover_videos(["clips/", "more/*.mov"])          # sorted, duplicates removed
    report = run_batch(analyze_tasks(session, videos), "report.json", continue_on_error=True)

    manifest = parse_manifest("jobs.jsonl", workspace=session.workspace)   # all lines checked first
    report = run_batch(edit_tasks(session, manifest), default_report_path(manifest.path))

Each video runs through the same Session API as a single `dfm analyze` / `dfm edit` (so the session's
ParallelOptions, chunks on a process pool or Ray, apply to each video in turn). Before a video runs its
task says whether its result is already there and valid (resume):

- analysis: the video's cached track (workspace `tracks/`) loads and passes its checksum and shape checks;
- edit: the output and its `.dfm.json` sidecar exist, the sidecar's output SHA-256 is the file's, its
  input SHA-256 is the input's, and its edits and seed are this line's (a side-by-side, if asked for,
  exists too).

A batch cut off (Ctrl-C, SIGTERM, a killed process) leaves no partial output at its final path, since every
output is written to a temporary file and renamed when complete, so re-running it skips the finished
videos and does the rest. A DFM output of the same input that is incomplete or stale (no sidecar, other
edits) is redone in place; any other file at an output path is left alone unless overwriting is asked for.

The report (JSON, written atomically after every video) lists each video with its status (ok, skipped,
failed, interrupted, not_run; pending while the batch runs), seconds, output, reason and error.
"""

from __future__ import annotations

import contextlib
import difflib
import glob
import hashlib
import json
import os
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from dfm import __version__
from dfm.errors import Cancelled, DfmError, InputError
from dfm.io.files import atomic_write_text, sha256_file
from dfm.pipelines.base import CancelCheck, Hooks, ProgressHook

# Container suffixes searched for in folders and kept from glob matches (FFmpeg reads them all);
# a file named on the command line is taken whatever its suffix.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                  ".wmv", ".flv", ".3gp", ".ogv")

Status = Literal["ok", "skipped", "failed", "interrupted", "not_run", "pending"]
REPORT_FORMAT = "dfm-batch-report"
REPORT_VERSION = 1


# ------------------------------------------------------------------------------------------ discovery

def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def _videos_in(folder: Path, recursive: bool) -> list[Path]:
    entries = folder.rglob("*") if recursive else folder.iterdir()
    return [p for p in entries if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")]


def discover_videos(patterns: Sequence[str | os.PathLike], recursive: bool = False) -> list[Path]:
    """The videos named by `patterns`: files as given, folders searched for VIDEO_SUFFIXES (with
    `recursive`, their subfolders too), globs (`*`, `?`, `[...]`, `**`) expanded the same way. Duplicates
    (the same file reached twice) are removed; sorted by path. InputError when an argument names nothing."""
    found: dict[Path, Path] = {}  # resolved -> as the user reached it
    for pattern in patterns:
        text = os.fspath(pattern)
        if _has_magic(text):
            matches = [Path(m) for m in sorted(glob.glob(os.path.expanduser(text), recursive=True))]
            paths = []
            for m in matches:
                if m.is_dir():
                    paths += _videos_in(m, recursive)
                elif m.is_file() and m.suffix.lower() in VIDEO_SUFFIXES:
                    paths.append(m)
            if not paths:
                raise InputError(f"{text}: no video files match ({', '.join(VIDEO_SUFFIXES[:5])}, ...)")
        else:
            path = Path(os.path.expanduser(text))
            if path.is_dir():
                paths = _videos_in(path, recursive)
                if not paths:
                    raise InputError(f"{path}: no video files in this folder ({', '.join(VIDEO_SUFFIXES[:5])}, ..."
                                     f"{'' if recursive else '; --recursive searches its subfolders'})")
            elif path.is_file():
                paths = [path]
            else:
                raise InputError(f"{path}: no such file or folder")
        for p in paths:
            found.setdefault(p.resolve(), p)
    return sorted(found.values(), key=lambda p: str(p))


# ------------------------------------------------------------------------------------------- manifest

# the per-line options of `dfm edit` (the option names without the dashes), with their JSON types
_BOOL_OPTIONS = ("lossless", "overwrite", "force_analysis")
_FIELDS = ("input", "output", "edits", "edit_list", "person", "collection", "seed", "transitions",
           "preserve_speech", "renderer", "side_by_side", "subject") + _BOOL_OPTIONS
_SIGNED_SUFFIXES = (".mp4", ".m4v")


@dataclass(frozen=True)
class EditJob:
    """One manifest line: edit `input` with `edits` into `output` (paths resolved against the manifest's folder)."""

    line: int
    input: Path
    output: Path
    edits: Any  # dfm.edits.EditList
    person: str | None = None
    collection: tuple[Path, ...] = ()
    seed: int = 0
    transitions: int = 20
    preserve_speech: bool | None = None
    lossless: bool = False
    renderer: str = "warp"
    side_by_side: Path | None = None
    subject: Any = None  # dfm.face.subject.SubjectSpec, None: the session's
    overwrite: bool = False
    force_analysis: bool = False

    def options(self, hooks: Hooks | None = None, overwrite: bool = False, sign_cert: Path | None = None,
                sign_key: Path | None = None):
        """The EditOptions of this line (dfm.pipelines.edit)."""
        from dfm.pipelines.edit import EditOptions

        return EditOptions(seed=self.seed, transition_frames=self.transitions, preserve_speech=self.preserve_speech,
                           lossless=self.lossless, side_by_side=self.side_by_side,
                           overwrite=self.overwrite or overwrite, person=self.person,
                           collection=list(self.collection), force_analysis=self.force_analysis,
                           renderer=self.renderer, sign_cert=sign_cert, sign_key=sign_key, hooks=hooks)


@dataclass(frozen=True)
class Manifest:
    path: Path
    jobs: tuple[EditJob, ...]


class _LineError(Exception):
    pass


def parse_manifest(path: str | os.PathLike, workspace: str | os.PathLike | None = None) -> Manifest:
    """Read and check every line of a JSONL manifest before any work: one JSON object per line with
    `input`, `output`, `edits` (a list of edits as in an edit-list JSON, or `--edit` strings, or a whole
    edit-list document) or `edit_list` (a path), and optionally `person`, `collection`, `seed`,
    `transitions`, `preserve_speech`, `lossless`, `renderer`, `side_by_side`, `subject`, `overwrite`,
    `force_analysis`. Relative paths are relative to the manifest's folder. Blank lines and lines
    starting with `#` are skipped. With `workspace`, persons must exist there.

    Raises InputError `MANIFEST:LINE: problem` for the first bad line (also: two lines writing one output).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"manifest {path} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the manifest {path}: {e}") from None
    base = path.parent
    jobs: list[EditJob] = []
    outputs: dict[Path, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            job = _parse_line(raw, number, base, workspace)
            for target in (job.output, job.side_by_side):
                if target is None:
                    continue
                key = target.resolve()
                if key in outputs:
                    raise _LineError(f"{target} is also written by line {outputs[key]}")
                outputs[key] = number
        except (_LineError, DfmError) as e:
            raise InputError(f"{path}:{number}: {e}") from None
        jobs.append(job)
    if not jobs:
        raise InputError(f"{path}: no jobs (one JSON object per line: input, output, edits or edit_list)")
    return Manifest(path, tuple(jobs))


def _parse_line(raw: str, number: int, base: Path, workspace: str | os.PathLike | None) -> EditJob:
    from dfm.edits import EDITS_VERSION, EditList, load_edits, parse_edit_arg
    from dfm.face.subject import parse_subject
    from dfm.render.registry import check_renderer_name

    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as e:
        raise _LineError(f"not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(doc, dict):
        raise _LineError(f"each line must be a JSON object, got {type(doc).__name__}")
    for key in doc:
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, _FIELDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; fields: {', '.join(_FIELDS)}"
            raise _LineError(f"unknown field {key!r}{hint}")

    def text(key: str, required: bool = False) -> str | None:
        value = doc.get(key)
        if value is None:
            if required:
                raise _LineError(f"missing {key!r}")
            return None
        if not isinstance(value, str) or not value.strip():
            raise _LineError(f"{key!r} must be a non-empty string, got {value!r}")
        return value

    def file_path(key: str, required: bool = False) -> Path | None:
        value = text(key, required)
        return None if value is None else base / Path(os.path.expanduser(value))

    def integer(key: str, default: int, minimum: int) -> int:
        value = doc.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _LineError(f"{key!r} must be a whole number >= {minimum}, got {value!r}")
        return value

    video = file_path("input", required=True)
    if not video.is_file():
        raise _LineError(f"input {video} not found" if not video.exists() else f"input {video} is not a file")
    output = file_path("output", required=True)
    side_by_side = file_path("side_by_side")
    for target, what in ((output, "output"), (side_by_side, "side_by_side")):
        if target is None:
            continue
        if target.suffix.lower() not in _SIGNED_SUFFIXES:
            raise _LineError(f"{what} {target.name}: DFM outputs carry Content Credentials, embedded in MP4 only: "
                             f"use {' or '.join(_SIGNED_SUFFIXES)}")
        if target.resolve() == video.resolve():
            raise _LineError(f"the {what} would overwrite the input {video}")
    if side_by_side is not None and side_by_side.resolve() == output.resolve():
        raise _LineError("side_by_side and output are the same file")

    if ("edits" in doc) == ("edit_list" in doc):
        raise _LineError("give either 'edits' (a list of edits) or 'edit_list' (an edit-list JSON file), not "
                         + ("both" if "edits" in doc else "neither"))
    if "edit_list" in doc:
        edits = load_edits(file_path("edit_list"))
    else:
        value = doc["edits"]
        if isinstance(value, list):
            items = [parse_edit_arg(v).to_dict() if isinstance(v, str) else v for v in value]
            value = {"version": EDITS_VERSION, "edits": items}
        edits = EditList.from_json_obj(value, source="edits")
    if not len(edits):
        raise _LineError("no edits")

    person = text("person")
    if person is not None and workspace is not None:
        from dfm.pipelines.person import person_exists

        if not person_exists(workspace, person):  # person_exists checks the name too
            raise _LineError(f"no person {person!r} in the workspace {workspace} (dfm person add)")
    collection = doc.get("collection", [])
    if not isinstance(collection, list) or not all(isinstance(c, str) and c for c in collection):
        raise _LineError(f"'collection' must be a list of video paths, got {collection!r}")
    collection_paths = tuple(base / Path(os.path.expanduser(c)) for c in collection)
    for c in collection_paths:
        if not c.is_file():
            raise _LineError(f"collection video {c} not found")
    preserve_speech = doc.get("preserve_speech")
    if preserve_speech is not None and not isinstance(preserve_speech, bool):
        raise _LineError(f"'preserve_speech' must be true, false or null, got {preserve_speech!r}")
    flags = {}
    for key in _BOOL_OPTIONS:
        flags[key] = doc.get(key, False)
        if not isinstance(flags[key], bool):
            raise _LineError(f"{key!r} must be true or false, got {flags[key]!r}")
    subject = text("subject")
    return EditJob(line=number, input=video, output=output, edits=edits, person=person,
                   collection=collection_paths, seed=integer("seed", 0, 0),
                   transitions=integer("transitions", 20, 0), preserve_speech=preserve_speech,
                   renderer=check_renderer_name(doc.get("renderer", "warp")), side_by_side=side_by_side,
                   subject=None if subject is None else parse_subject(subject), **flags)


# --------------------------------------------------------------------------------------------- resume

def cached_analysis(session, video: Path) -> Path | None:
    """The session's cached track of `video` (its analysis options, no fixed identity) when it loads and
    passes the cache's checks, i.e. when `session.analyze(video)` would do no work; else None."""
    from dfm.pipelines.analyze import track_cache_path
    from dfm.pipelines.track_cache import load_track

    try:
        cache = track_cache_path(Path(video), session.workspace, session.analysis, None)
    except OSError:
        return None
    with warnings.catch_warnings():  # a damaged entry: the analysis itself says so when it rebuilds it
        warnings.simplefilter("ignore")
        return cache if load_track(cache) is not None else None


@dataclass(frozen=True)
class OutputState:
    """What is at an edit job's output paths: `complete` (skip it), `redo` (a DFM output of this input
    that is incomplete or stale: replace it), or neither (nothing there, or a foreign file: `reason`)."""

    complete: bool
    redo: bool
    reason: str | None


def edit_output_state(session, job: EditJob) -> OutputState:
    """Whether `job`'s output is complete and valid (module doc), or what is wrong with what is there."""
    from dfm.pipelines.edit import sidecar_path

    targets = [job.output, sidecar_path(job.output)] + ([job.side_by_side] if job.side_by_side else [])
    present = [t for t in targets if t.exists()]
    if not present:
        return OutputState(False, False, None)
    try:
        input_sha = session.file_hash(job.input)
    except OSError as e:  # removed or unreadable since the manifest was checked
        raise InputError(f"cannot read the input {job.input}: {e.strerror or e}") from None
    sidecar = _read_json(sidecar_path(job.output))
    if sidecar is not None and job.output.exists():
        problem = _sidecar_mismatch(sidecar, job, input_sha)
        if problem is None and all(t.exists() for t in targets):
            return OutputState(True, False, "output complete: its sidecar matches the file, the input and the edits")
        why = problem or "the side-by-side video is missing"
    elif job.output.exists():
        why = "its disclosure sidecar is missing or unreadable"
    else:
        why = "the output video is missing"
    foreign = [t for t in present if not _made_from(t, input_sha)]
    if foreign:
        return OutputState(False, False, f"{foreign[0]} exists and is not DFM's output of {job.input.name}")
    return OutputState(False, True, f"redone: the earlier output was incomplete or stale ({why})")


def _sidecar_mismatch(sidecar: dict, job: EditJob, input_sha: str) -> str | None:
    try:
        if sidecar["input"]["sha256"] != input_sha:
            return "the input changed since"
        if sidecar["output"]["sha256"] != sha256_file(job.output):
            return "the output file does not match its sidecar's SHA-256"
        if sidecar.get("edits") != json.loads(job.edits.to_json()):
            return "the manifest's edits changed"
        if sidecar.get("seed") != job.seed:
            return "the seed changed"
    except (KeyError, TypeError):
        return "the sidecar is not a DFM disclosure"
    return None


def _read_json(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _made_from(path: Path, input_sha: str) -> bool:
    """`path` is a DFM output (video with DFM's container tags, or a sidecar) of the input with this hash."""
    if path.suffix == ".json":
        doc = _read_json(path)
        return isinstance(doc, dict) and isinstance(doc.get("input"), dict) and doc["input"].get("sha256") == input_sha
    import av

    try:
        with av.open(str(path)) as container:
            tags = {str(k): str(v) for k, v in container.metadata.items()}
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        return False
    return tags.get("dfm_manipulated") == "true" and tags.get("dfm_input_sha256") == input_sha


# ------------------------------------------------------------------------------------------- the run

@dataclass(frozen=True)
class BatchTask:
    """One video of a batch. `check()` returns (why it is skipped, its existing output) when its result is
    already there, else None; `run(hooks)` does the work and returns (output path, details for the
    report, a note for the result line)."""

    name: str
    input: Path
    check: Callable[[], tuple[str, Path | None] | None]
    run: Callable[[Hooks], tuple[Path | None, dict[str, Any], str | None]]
    line: int | None = None


@dataclass
class VideoResult:
    input: Path
    status: Status
    name: str = ""
    line: int | None = None
    seconds: float = 0.0
    output: Path | None = None  # the result, when there is one (ok, skipped)
    reason: str | None = None  # why skipped or redone
    error: str | None = None  # the one-line failure
    details: dict[str, Any] = field(default_factory=dict)
    traceback: str | None = None  # for failures that are bugs, not user errors

    def to_dict(self) -> dict[str, Any]:
        out = {"input": str(self.input), "status": self.status, "seconds": round(self.seconds, 3),
               "output": None if self.output is None else str(self.output), "reason": self.reason,
               "error": self.error}
        if self.line is not None:
            out["line"] = self.line
        if self.details:
            out["details"] = self.details
        if self.traceback:
            out["traceback"] = self.traceback
        return out

    def summary(self) -> str:
        """The per-video result line: `ok NAME -> OUT (S s)`, `skipped NAME (why)`, `failed NAME: why`."""
        where = f"line {self.line}: " if self.line is not None else ""
        if self.status == "ok":
            out = f" -> {self.output}" if self.output is not None else ""
            note = f"; {self.reason}" if self.reason else ""
            return f"ok       {where}{self.name}{out} ({self.seconds:.1f} s{note})"
        if self.status == "skipped":
            return f"skipped  {where}{self.name} ({self.reason})"
        if self.status == "failed":
            return f"failed   {where}{self.name}: {self.error}"
        return f"{self.status:8s} {where}{self.name}"


@dataclass
class BatchReport:
    kind: str  # "analyze" | "edit"
    results: list[VideoResult]
    path: Path | None = None
    source: str | None = None  # the manifest, or the patterns
    options: dict[str, Any] = field(default_factory=dict)  # how the batch was run (parallel settings, flags)
    started: str = ""
    finished: str | None = None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {"format": REPORT_FORMAT, "version": REPORT_VERSION, "kind": self.kind, "source": self.source,
                "dfm_version": __version__, "options": self.options, "started": self.started,
                "finished": self.finished, "counts": self.counts(), "videos": [r.to_dict() for r in self.results]}

    def write(self) -> None:
        if self.path is not None:
            atomic_write_text(self.path, json.dumps(self.to_dict(), indent=2, default=str))


@dataclass(frozen=True)
class BatchHooks:
    """Observers of a batch run: `on_start(index, task)` before each video, `on_result(result)` after it,
    `progress` gets the pipeline's ProgressEvents of the current video, `cancel` is asked between frames."""

    on_start: Callable[[int, BatchTask], None] | None = None
    on_result: Callable[[VideoResult], None] | None = None
    progress: ProgressHook | None = None
    cancel: CancelCheck | None = None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def run_batch(tasks: Sequence[BatchTask], report_path: str | os.PathLike | None = None, *, kind: str = "edit",
              source: str | None = None, continue_on_error: bool = False, force: bool = False,
              options: dict[str, Any] | None = None, hooks: BatchHooks | None = None) -> BatchReport:
    """Run the tasks one after another (module doc). A task whose result is there is skipped (unless
    `force`). A failure stops the batch (the rest: not_run) unless `continue_on_error`; a failure that is
    not a DfmError (a bug) then propagates with its traceback after the report is written. Ctrl-C, SIGTERM
    and cancellation mark the current video interrupted, write the report and propagate. The report is
    written atomically after every video; a second batch with the same report path fails at once."""
    from dfm.io.locks import exclusive_lock, lock_path_for

    hooks = hooks or BatchHooks()
    report = BatchReport(kind, [VideoResult(t.input, "pending", t.name, t.line) for t in tasks],
                         Path(report_path) if report_path is not None else None, source,
                         {"continue_on_error": continue_on_error, "force": force, **(options or {})}, _now())
    with contextlib.ExitStack() as stack:
        if report.path is not None:
            from dfm.io.paths import check_output_file

            check_output_file(report.path, what="batch report", overwrite=True)  # rewritten by each run
            try:
                stack.enter_context(exclusive_lock(lock_path_for(report.path), wait=False))
            except BlockingIOError:
                raise InputError(f"another dfm batch is running with the report {report.path}; wait for it "
                                 "or give another --report") from None
        report.write()
        pipeline_hooks = Hooks(progress=hooks.progress, cancel=hooks.cancel)
        for index, task in enumerate(tasks):
            if hooks.on_start is not None:
                hooks.on_start(index, task)
            result = report.results[index]
            t0 = time.perf_counter()
            try:
                pipeline_hooks.check()
                done = None if force else task.check()
                if done is not None:
                    result.status, (result.reason, result.output) = "skipped", done
                else:
                    result.output, result.details, result.reason = task.run(pipeline_hooks)
                    result.status = "ok"
            except (KeyboardInterrupt, Cancelled) as e:
                result.status, result.error = "interrupted", _one_line(e) if isinstance(e, Cancelled) else "interrupted"
                _finish(report, index + 1, t0)
                raise
            except DfmError as e:
                result.status, result.error = "failed", _one_line(e)
            except Exception as e:  # a bug: reported with its traceback; it stops the batch unless asked not to
                result.status, result.error = "failed", f"internal error: {type(e).__name__}: {_one_line(e)}"
                result.traceback = traceback.format_exc()
                if not continue_on_error:
                    _finish(report, index + 1, t0)
                    if hooks.on_result is not None:
                        hooks.on_result(result)
                    raise
            result.seconds = time.perf_counter() - t0
            report.write()
            if hooks.on_result is not None:
                hooks.on_result(result)
            if result.status == "failed" and not continue_on_error:
                _finish(report, index + 1, None)
                break
        else:
            _finish(report, len(tasks), None)
    return report


def _finish(report: BatchReport, first_not_run: int, t0: float | None) -> None:
    if t0 is not None and first_not_run > 0:
        report.results[first_not_run - 1].seconds = time.perf_counter() - t0
    for r in report.results[first_not_run:]:
        r.status = "not_run"
    report.finished = _now()
    report.write()


# --------------------------------------------------------------------------------------------- tasks

def analyze_tasks(session, videos: Sequence[Path], force: bool = False) -> list[BatchTask]:
    """One task per video: `session.analyze(video)`; skipped when its analysis is cached and valid."""
    from dfm.pipelines.session import analysis_summary

    def task(video: Path) -> BatchTask:
        def check() -> tuple[str, Path] | None:
            cache = cached_analysis(session, video)
            return None if cache is None else ("analysis cached", cache)

        def run(hooks: Hooks):
            track = session.analyze(video, force=force, hooks=hooks)
            s = analysis_summary(track)
            details = {k: s[k] for k in ("frames", "valid_frames", "fps", "duration")}
            return Path(s["track"]) if s["track"] else None, details, None

        return BatchTask(video.name, video, check, run)

    return [task(Path(v)) for v in videos]


def edit_tasks(session, manifest: Manifest, *, overwrite: bool = False, sign_cert: Path | None = None,
               sign_key: Path | None = None) -> list[BatchTask]:
    """One task per manifest line: `session.edit(...)` with the line's options; skipped when its output
    is complete and valid (edit_output_state). A DFM output of the same input found incomplete or stale
    is replaced, and so is a complete one when the batch is forced (run_batch(force=True) runs without
    the check); `overwrite` replaces any other file at the outputs too."""

    def task(job: EditJob) -> BatchTask:
        state: dict[str, OutputState] = {}

        def check() -> tuple[str, Path] | None:
            state["now"] = edit_output_state(session, job)
            return (state["now"].reason, job.output) if state["now"].complete else None

        def run(hooks: Hooks):
            s = state.pop("now", None) or edit_output_state(session, job)
            if s.reason is not None and not (s.complete or s.redo) and not (overwrite or job.overwrite):
                raise InputError(f"{s.reason}; remove it, or pass --overwrite (or \"overwrite\": true on the line)")
            replace = overwrite or s.complete or s.redo
            job_session = session if job.subject is None else session.with_subject(job.subject)
            result = job_session.edit(job.input, job.edits, job.output,
                                      job.options(hooks, replace, sign_cert, sign_key))
            r = result.report
            details = {"frames": r["frames"], "edited_frames": r["edited_frames"], "sidecar": str(result.sidecar),
                       "warnings": r["warnings"]}
            if result.side_by_side:
                details["side_by_side"] = str(result.side_by_side)
            note = "redone (forced)" if s.complete else (s.reason if s.redo else None)
            return result.output, details, note

        return BatchTask(job.input.name, job.input, check, run, job.line)

    return [task(j) for j in manifest.jobs]


def default_report_path(manifest: Path) -> Path:
    """`jobs.jsonl` -> `jobs.report.json` beside it."""
    return manifest.with_name(manifest.stem + ".report.json")


def default_analyze_report_path(workspace: str | os.PathLike, videos: Sequence[Path]) -> Path:
    """`WORKSPACE/batch/analyze-HASH.json`, HASH naming the set of videos, so re-running the same batch
    updates its report and another batch gets its own."""
    key = hashlib.sha256("\n".join(sorted(str(Path(v).resolve()) for v in videos)).encode()).hexdigest()[:12]
    return Path(workspace) / "batch" / f"analyze-{key}.json"


__all__ = ["BatchHooks", "BatchReport", "BatchTask", "EditJob", "Manifest", "OutputState", "VIDEO_SUFFIXES",
           "VideoResult", "cached_analysis", "analyze_tasks", "default_analyze_report_path",
           "default_report_path", "discover_videos", "edit_output_state", "edit_tasks", "parse_manifest", "run_batch"]
