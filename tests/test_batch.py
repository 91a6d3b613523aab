"""`dfm batch` without videos: manifest parsing and validation, discovery of videos, the --workers/--ray
options, and the run loop (skip, stop or go on after a failure, interruption, the report on disk)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dfm.errors import Cancelled, InputError
from dfm.face.subject import parse_subject
from dfm.pipelines.batch import BatchHooks, BatchTask, discover_videos, parse_manifest, run_batch


# ----------------------------------------------------------------------------------------- manifest

def _write(path: Path, lines: list) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "in").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / "in" / name).write_bytes(b"not looked at while parsing")
    (tmp_path / "edits.json").write_text(json.dumps(
        {"version": 1, "edits": [{"start": 1, "end": 2, "label": "sad", "intensity": 0.7}]}))
    return tmp_path


def test_manifest_lines_become_jobs_with_paths_beside_the_manifest(folder):
    m = _write(folder / "jobs.jsonl", [
        "# a comment, then a blank line",
        "",
        {"input": "in/a.mp4", "output": "out/a.mp4", "edits": [{"start": 0.5, "end": 2, "label": "happy",
                                                                "intensity": "high"}]},
        {"input": "in/b.mp4", "output": "out/b.mp4", "edit_list": "edits.json", "seed": 7, "lossless": True,
         "renderer": "WARP", "transitions": 6, "preserve_speech": False, "subject": "leftmost",
         "side_by_side": "out/b_sbs.mp4"},
        {"input": str(folder / "in" / "a.mp4"), "output": "out/a2.mp4", "edits": ["happy:high:0.3-1.5", "au:jawOpen=+0.2:2-3"]},
        {"input": "in/a.mp4", "output": "out/a3.mp4", "edits": {"version": 1, "edits": [{"start": 0, "end": 1,
                                                                                         "label": "fear", "intensity": "low"}]}},
    ])
    manifest = parse_manifest(m)
    a, b, a2, a3 = manifest.jobs
    assert [j.line for j in manifest.jobs] == [3, 4, 5, 6]  # physical line numbers
    assert a.input == folder / "in" / "a.mp4" and a.output == folder / "out" / "a.mp4"
    assert [(e.label, e.intensity, e.start, e.end) for e in a.edits] == [("happy", "high", 0.5, 2)]
    assert [(e.label, e.intensity) for e in b.edits] == [("sad", 0.7)]
    assert (b.seed, b.lossless, b.renderer, b.transitions, b.preserve_speech) == (7, True, "warp", 6, False)
    assert b.subject == parse_subject("leftmost") and a.subject is None
    assert b.side_by_side == folder / "out" / "b_sbs.mp4"
    assert [e.label for e in a2.edits] == ["happy", None] and a2.edits[1].nudges == {"jawOpen": 0.2}
    assert a2.input == folder / "in" / "a.mp4"  # absolute paths stay as they are
    assert [e.label for e in a3.edits] == ["fear"] and (a3.seed, a3.lossless, a3.renderer) == (0, False, "warp")
    opts = b.options(overwrite=True)
    assert (opts.seed, opts.lossless, opts.transition_frames, opts.overwrite, opts.side_by_side) == \
        (7, True, 6, True, folder / "out" / "b_sbs.mp4")


GOOD = {"input": "in/a.mp4", "output": "out/a.mp4", "edits": ["happy:high:1-2"]}


@pytest.mark.parametrize("line, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object, got list"),
    ({**GOOD, "sede": 3}, "unknown field 'sede'; did you mean 'seed'?"),
    ({"output": "out/x.mp4", "edits": ["happy:high:1-2"]}, "missing 'input'"),
    ({"input": "in/a.mp4", "edits": ["happy:high:1-2"]}, "missing 'output'"),
    ({"input": "in/missing.mp4", "output": "out/x.mp4", "edits": ["happy:high:1-2"]}, "input"),
    ({"input": "in", "output": "out/x.mp4", "edits": ["happy:high:1-2"]}, "is not a file"),
    ({**GOOD, "output": "out/x.avi"}, "MP4 only"),
    ({**GOOD, "output": "in/a.mp4"}, "would overwrite the input"),
    ({**GOOD, "edit_list": "edits.json"}, "not both"),
    ({"input": "in/a.mp4", "output": "out/x.mp4"}, "not neither"),
    ({**GOOD, "edits": ["joyful:high:1-2"]}, "joyful"),
    ({**GOOD, "edits": [{"start": 2, "end": 1, "label": "sad"}]}, "start"),
    ({**GOOD, "edits": []}, "no edits"),
    ({"input": "in/a.mp4", "output": "out/x.mp4", "edit_list": "nope.json"}, "not found"),
    ({**GOOD, "seed": "3"}, "'seed' must be a whole number"),
    ({**GOOD, "transitions": -1}, "'transitions' must be a whole number >= 0"),
    ({**GOOD, "lossless": "yes"}, "'lossless' must be true or false"),
    ({**GOOD, "preserve_speech": 1}, "'preserve_speech' must be true, false or null"),
    ({**GOOD, "renderer": "magic"}, "unknown renderer 'magic'"),
    ({**GOOD, "subject": "the tall one"}, "bad subject"),
    ({**GOOD, "collection": "in/b.mp4"}, "'collection' must be a list"),
    ({**GOOD, "collection": ["in/zzz.mp4"]}, "collection video"),
    ({**GOOD, "side_by_side": "out/a.mp4"}, "same file"),
    ({**GOOD, "person": ""}, "'person' must be a non-empty string"),
])
def test_a_bad_line_is_one_error_with_its_line_number(folder, line, message):
    m = _write(folder / "jobs.jsonl", [{**GOOD, "output": "out/first.mp4"}, "", line])
    with pytest.raises(InputError) as e:
        parse_manifest(m)
    text = str(e.value)
    assert text.startswith(f"{m}:3: ") and message in text and "\n" not in text, text


def test_two_lines_writing_one_output_are_refused_naming_both(folder):
    m = _write(folder / "jobs.jsonl", [GOOD, {**GOOD, "input": "in/b.mp4", "output": "out/../out/a.mp4"}])
    with pytest.raises(InputError, match=r"jobs.jsonl:2: .*a.mp4 is also written by line 1"):
        parse_manifest(m)


def test_unknown_person_is_refused_when_the_workspace_is_known(folder):
    m = _write(folder / "jobs.jsonl", [{**GOOD, "person": "alice"}])
    assert parse_manifest(m).jobs[0].person == "alice"  # without a workspace: not checked
    with pytest.raises(InputError, match=r"jobs.jsonl:1: no person 'alice' in the workspace"):
        parse_manifest(m, workspace=folder / "ws")
    with pytest.raises(InputError, match=r"j2.jsonl:1: invalid person name"):
        parse_manifest(_write(folder / "j2.jsonl", [{**GOOD, "person": "../x"}]), workspace=folder / "ws")


def test_empty_or_missing_manifest(folder):
    with pytest.raises(InputError, match="no jobs"):
        parse_manifest(_write(folder / "empty.jsonl", ["", "# nothing"]))
    with pytest.raises(InputError, match="not found"):
        parse_manifest(folder / "none.jsonl")


def test_cli_refuses_a_bad_manifest_before_any_work(folder, dfm_env, capsys):
    from dfm.app.cli.main import main

    m = _write(folder / "jobs.jsonl", [GOOD, {**GOOD, "output": "out/b.mp4"}, {**GOOD, "output": "out/c.mp4", "seed": -1}])
    rc = main(["--workspace", str(folder / "ws"), "-q", "batch", "edit", "--manifest", str(m)])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == f"dfm: error: {m}:3: 'seed' must be a whole number >= 0, got -1", err
    assert not (folder / "out").exists() and not (folder / "jobs.report.json").exists()


# ---------------------------------------------------------------------------------------- discovery

def test_discovery_of_folders_globs_and_files(tmp_path):
    for rel in ("clips/b.mp4", "clips/A.MOV", "clips/notes.txt", "clips/.hidden.mp4", "clips/sub/c.mkv",
                "other/d.webm", "raw.bin"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    clips = tmp_path / "clips"
    assert discover_videos([clips]) == [clips / "A.MOV", clips / "b.mp4"]
    assert discover_videos([clips], recursive=True) == [clips / "A.MOV", clips / "b.mp4", clips / "sub" / "c.mkv"]
    # globs, a folder reached twice and a file named twice: each video once, sorted
    got = discover_videos([str(tmp_path / "*" / "*.mp4"), str(tmp_path / "other"), clips / "b.mp4", clips,
                           str(tmp_path / "**" / "c.mkv")])
    assert got == [clips / "A.MOV", clips / "b.mp4", clips / "sub" / "c.mkv", tmp_path / "other" / "d.webm"]
    assert discover_videos([tmp_path / "raw.bin"]) == [tmp_path / "raw.bin"]  # named explicitly: taken as given
    with pytest.raises(InputError, match="no video files match"):
        discover_videos([str(tmp_path / "*.avi")])
    with pytest.raises(InputError, match="no video files in this folder.*--recursive"):
        discover_videos([clips / "sub" / "..", tmp_path])
    with pytest.raises(InputError, match="no such file or folder"):
        discover_videos([tmp_path / "missing.mp4"])


# ------------------------------------------------------------------------------- --workers / --ray

def test_parallel_arguments():
    import argparse

    from dfm.app.cli.parallel_args import add_parallel_arguments, parallel_options
    from dfm.parallel import ParallelOptions

    p = argparse.ArgumentParser(exit_on_error=False)
    add_parallel_arguments(p)
    p.add_argument("inputs", nargs="*")
    assert parallel_options(p.parse_args([])) == ParallelOptions()
    assert parallel_options(p.parse_args(["--workers", "3"])) == ParallelOptions(workers=3)
    assert parallel_options(p.parse_args(["x.mp4", "--ray"])) == ParallelOptions(ray=True)
    assert parallel_options(p.parse_args(["--ray=ray://head:10001", "x.mp4"])) == \
        ParallelOptions(ray=True, ray_address="ray://head:10001")
    assert parallel_options(argparse.Namespace()) == ParallelOptions()  # a command without the flags
    for bad in (["--workers", "0"], ["--workers", "two"], ["--ray", "."]):
        with pytest.raises(argparse.ArgumentError):
            p.parse_args(bad)


# ------------------------------------------------------------------------------------------ the loop

class Recorder:
    """Tasks with known outcomes; each records what the report on disk said while it ran."""

    def __init__(self, report: Path):
        self.report, self.ran, self.seen = report, [], {}

    def task(self, name: str, outcome: str = "ok", done: bool = False) -> BatchTask:
        def check():
            return ("already there", Path(f"/out/{name}")) if done else None

        def run(hooks):
            self.ran.append(name)
            self.seen[name] = [v["status"] for v in json.loads(self.report.read_text())["videos"]]
            if outcome == "user-error":
                raise InputError(f"{name}: not a video file\nsecond line")
            if outcome == "bug":
                raise ZeroDivisionError("division by zero")
            if outcome == "interrupt":
                raise KeyboardInterrupt
            hooks.emit("analyze", 1, 2)
            return Path(f"/out/{name}"), {"frames": 3}, None

        return BatchTask(name, Path(f"/in/{name}"), check, run)


def _statuses(path: Path) -> list[str]:
    return [v["status"] for v in json.loads(path.read_text())["videos"]]


def test_loop_goes_on_past_failures_when_asked_and_writes_the_report_after_each_video(tmp_path):
    report = tmp_path / "r" / "report.json"
    rec = Recorder(report)
    events, lines = [], []
    tasks = [rec.task("a", done=True), rec.task("b", "user-error"), rec.task("c", "bug"), rec.task("d")]
    result = run_batch(tasks, report, continue_on_error=True,
                       hooks=BatchHooks(on_result=lambda r: lines.append(r.summary()), progress=events.append))
    assert [r.status for r in result.results] == ["skipped", "failed", "failed", "ok"]
    assert rec.ran == ["b", "c", "d"]
    assert rec.seen["d"] == ["skipped", "failed", "failed", "pending"]  # on disk while d ran
    doc = json.loads(report.read_text())
    assert doc["counts"] == {"skipped": 1, "failed": 2, "ok": 1} and doc["finished"]
    b, c, d = doc["videos"][1:]
    assert b["error"] == "b: not a video file" and "traceback" not in b  # one line
    assert c["error"] == "internal error: ZeroDivisionError: division by zero" and "ZeroDivisionError" in c["traceback"]
    assert d["output"] == "/out/d" and d["details"] == {"frames": 3}
    assert doc["videos"][0]["reason"] == "already there" and doc["videos"][0]["output"] == "/out/a"
    assert lines[0].startswith("skipped") and lines[1] == "failed   b: b: not a video file" and lines[3].startswith("ok")
    assert [(e.stage, e.fraction) for e in events if e.done] == [("analyze", 0.5)]


def test_loop_stops_at_the_first_failure_by_default(tmp_path):
    report = tmp_path / "report.json"
    rec = Recorder(report)
    result = run_batch([rec.task("a"), rec.task("b", "user-error"), rec.task("c")], report)
    assert rec.ran == ["a", "b"] and _statuses(report) == ["ok", "failed", "not_run"] and result.failed == 1
    # a bug stops it too, and keeps its traceback (after the report is written)
    rec = Recorder(report)
    with pytest.raises(ZeroDivisionError):
        run_batch([rec.task("a"), rec.task("b", "bug"), rec.task("c")], report)
    assert _statuses(report) == ["ok", "failed", "not_run"]


def test_interruption_marks_the_video_and_the_rest_and_propagates(tmp_path):
    report = tmp_path / "report.json"
    rec = Recorder(report)
    with pytest.raises(KeyboardInterrupt):
        run_batch([rec.task("a"), rec.task("b", "interrupt"), rec.task("c")], report, continue_on_error=True)
    assert _statuses(report) == ["ok", "interrupted", "not_run"]
    # a cancel check stops it between videos (and between frames, inside the pipelines)
    rec = Recorder(report)
    finished: list = []
    with pytest.raises(Cancelled):
        run_batch([rec.task("a"), rec.task("b"), rec.task("c")], report,
                  hooks=BatchHooks(on_result=finished.append, cancel=lambda: bool(finished)))
    assert rec.ran == ["a"] and _statuses(report) == ["ok", "interrupted", "not_run"]


def test_a_report_path_that_cannot_be_written_fails_before_any_work(tmp_path):
    rec = Recorder(tmp_path / "report.json")
    with pytest.raises(InputError, match="the batch report .* is a folder"):
        run_batch([rec.task("a")], tmp_path)
    assert rec.ran == []


def test_force_runs_finished_videos_again(tmp_path):
    rec = Recorder(tmp_path / "report.json")
    result = run_batch([rec.task("a", done=True)], rec.report, force=True)
    assert rec.ran == ["a"] and result.results[0].status == "ok"


def test_two_batches_with_one_report_exclude_each_other(tmp_path):
    report = tmp_path / "report.json"
    inner: list = []

    def run(hooks):
        with pytest.raises(InputError, match="another dfm batch is running with the report"):
            run_batch([], report)
        inner.append(True)
        return None, {}, None

    run_batch([BatchTask("a", Path("/in/a"), lambda: None, run)], report)
    assert inner == [True] and _statuses(report) == ["ok"]



def test_batch_commands_pass_workers_and_ray_to_their_session(tmp_path, dfm_env):
    from dfm.app.cli.batch import _session
    from dfm.app.cli.main import build_parser
    from dfm.parallel import ParallelOptions

    (tmp_path / "a.mp4").write_bytes(b"x")
    args = build_parser().parse_args(["batch", "analyze", str(tmp_path / "a.mp4"), "--workers", "2",
                                      "--ray=auto", "--workspace", str(tmp_path / "ws")])
    with _session(args) as session:
        assert session.parallel == ParallelOptions(workers=2, ray=True, ray_address="auto")
        assert session.workspace == tmp_path / "ws"
    args = build_parser().parse_args(["batch", "edit", "--manifest", "jobs.jsonl", "--workers", "1"])
    assert _session(args).parallel == ParallelOptions(workers=1)
