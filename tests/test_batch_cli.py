"""`dfm batch` on real clips: broken files among good ones (with and without --continue-on-error), the
report, and resume after a batch killed mid-video. The good clips are a MEAD clip (108 frames, 256x256) and
a GRID clip (75 frames, 360x288, with sound); the broken ones are random bytes named .mp4 and the first 40 %
of the GRID clip. Everything runs in the test run's workspace, so each clip is analysed once."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dfm.app.cli.main import main

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clips(videos_dir) -> tuple[Path, Path]:
    # the second is also analysed by test_edit.py and others in the run's workspace: one analysis for all
    return videos_dir / "mead_w009_happy_01.mp4", videos_dir / "grid_greyhair_man_01.mp4"


@pytest.fixture(scope="module")
def broken(tmp_path_factory, clips) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("broken")
    noise = folder / "broken.mp4"
    noise.write_bytes(random.Random(13).randbytes(60_000))
    data = clips[1].read_bytes()
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(data[: int(len(data) * 0.4)])
    return noise, truncated


def _manifest(path: Path, lines: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _report(path: Path) -> dict:
    return json.loads(path.read_text())


def _statuses(report: dict) -> list[str]:
    return [v["status"] for v in report["videos"]]


def _temporaries(folder: Path, name: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(".") and p.name.lstrip(".").startswith(f"{name}.dfm-"))


# ------------------------------------------------------------------------------------------- analyze

def test_batch_analyze_broken_files_among_good_ones(dfm_env, capsys, tmp_path, clips, broken, monkeypatch):
    from dfm.pipelines.batch import cached_analysis
    from dfm.pipelines.session import Session

    # a workspace of its own: earlier tests of the suite may have analysed this clip in the shared one
    monkeypatch.setenv("DFM_WORKSPACE", str(tmp_path / "workspace"))

    folder = tmp_path / "videos"
    folder.mkdir()
    for p in broken:
        shutil.copy(p, folder / p.name)
    (folder / "good.mp4").symlink_to(clips[0])  # sorted: broken.mp4, good.mp4, truncated.mp4
    report_path = tmp_path / "report.json"
    argv = ["-q", "batch", "analyze", str(folder), str(folder / "*.mp4"), "--report", str(report_path)]

    # without --continue-on-error: the first (broken) file stops the batch
    rc = main(argv)
    out = capsys.readouterr().out
    assert rc == 1 and _statuses(_report(report_path)) == ["failed", "not_run", "not_run"], out
    session = Session(progress=False)
    assert cached_analysis(session, folder / "good.mp4") is None  # not analysed

    # with it: the good one is analysed, both broken ones reported (one line each), exit 1
    rc = main(argv + ["--continue-on-error"])
    out = capsys.readouterr().out
    report = _report(report_path)
    assert rc == 1 and _statuses(report) == ["failed", "ok", "failed"], out
    lines = out.splitlines()
    assert lines[0].startswith(f"failed   broken.mp4: cannot read {folder / 'broken.mp4'} as a video")
    assert lines[1].startswith("ok       good.mp4 -> ") and lines[2].startswith("failed   truncated.mp4: ")
    assert lines[3] == f"batch analyze: 1 ok, 2 failed of 3 video(s); report: {report_path}"
    good = report["videos"][1]
    assert good["details"]["frames"] == 108 and good["details"]["valid_frames"] > 100
    assert Path(good["output"]).is_file() and good["error"] is None and good["seconds"] > 0
    assert all(v["error"] and v["output"] is None for v in (report["videos"][0], report["videos"][2]))

    # again: the analysed video is skipped (its cache is valid); a damaged cache would not count
    rc = main(argv + ["--continue-on-error"])
    out = capsys.readouterr().out
    assert rc == 1 and _statuses(_report(report_path)) == ["failed", "skipped", "failed"]
    assert "skipped  good.mp4 (analysis cached)" in out
    track = cached_analysis(session, folder / "good.mp4")
    assert track == Path(good["output"])
    data = track.read_bytes()
    track.write_bytes(data[:-100])
    try:
        assert cached_analysis(session, folder / "good.mp4") is None
    finally:
        track.write_bytes(data)
    assert cached_analysis(session, clips[0]) == track  # one cache entry per content, whatever the name


def test_batch_analyze_default_report_is_in_the_workspace(dfm_env, tmp_path, capsys, broken):
    rc = main(["-q", "batch", "analyze", str(broken[0])])
    out = capsys.readouterr().out
    [report_path] = (Path(os.environ["DFM_WORKSPACE"]) / "batch").glob("analyze-*.json")
    assert rc == 1 and out.splitlines()[-1].endswith(f"report: {report_path}")
    assert _report(report_path)["videos"][0]["input"] == str(broken[0])


# ---------------------------------------------------------------------------------------------- edit

@pytest.fixture(scope="module")
def edit_batch(dfm_env, tmp_path_factory, clips, broken):
    """One batch edit over good, broken, truncated, good with --continue-on-error (in the run's workspace,
    so the clips' analyses are shared with the other tests)."""
    folder = tmp_path_factory.mktemp("edit")
    manifest = _manifest(folder / "jobs.jsonl", [
        {"input": str(clips[0]), "output": "out/g1.mp4", "edits": ["sad:high:0.5-2.5"], "transitions": 8},
        {"input": str(broken[0]), "output": "out/broken.mp4", "edits": ["happy:high:0.5-2.5"]},
        {"input": str(broken[1]), "output": "out/truncated.mp4", "edits": ["happy:high:0.5-2.5"]},
        {"input": str(clips[1]), "output": "out/g2.mp4", "edits": [{"start": 0.5, "end": 2.5, "label": "happy",
                                                                   "intensity": "high"}], "seed": 3},
    ])
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        rc = main(["-q", "batch", "edit", "--manifest", str(manifest), "--continue-on-error", "--workers", "1"])
    return folder, manifest, rc, buffer.getvalue()


def test_batch_edit_goes_on_past_broken_files(edit_batch, clips, broken):
    from dfm.io.video import probe_video

    folder, manifest, rc, out = edit_batch
    report = _report(folder / "jobs.report.json")  # the default: beside the manifest
    assert rc == 1 and _statuses(report) == ["ok", "failed", "failed", "ok"], out
    assert report["kind"] == "edit" and report["counts"] == {"ok": 2, "failed": 2} and report["finished"]
    assert report["options"]["parallel"] == {"workers": 1, "ray": False, "ray_address": None}  # --workers 1
    assert report["options"]["continue_on_error"] is True and report["source"] == str(manifest)
    for v, clip in zip((report["videos"][0], report["videos"][3]), clips):
        output = Path(v["output"])
        assert output.is_file() and probe_video(output).n_frames == probe_video(clip).n_frames == v["details"]["frames"]
        sidecar = json.loads(output.with_name(output.stem + ".dfm.json").read_text())
        assert sidecar["manipulated"] and Path(sidecar["input"]["path"]) == clip
        assert v["details"]["edited_frames"] > 0 and v["seconds"] > 0
    assert [v["line"] for v in report["videos"]] == [1, 2, 3, 4]
    for v, path in zip(report["videos"][1:3], broken):
        assert str(path) in v["error"] and v["output"] is None
    assert not (folder / "out" / "broken.mp4").exists() and not (folder / "out" / "truncated.mp4").exists()
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[:4]] == ["ok", "failed", "failed", "ok"]
    assert lines[1].startswith(f"failed   line 2: broken.mp4: cannot read {broken[0]}")


def test_batch_edit_stops_at_the_first_failure_and_skips_complete_outputs(edit_batch, capsys, tmp_path, clips, broken):
    from dfm.pipelines.batch import edit_output_state, parse_manifest
    from dfm.pipelines.session import Session

    done = edit_batch[0] / "out" / "g1.mp4"
    manifest = _manifest(tmp_path / "jobs.jsonl", [
        {"input": str(clips[0]), "output": str(done), "edits": ["sad:high:0.5-2.5"], "transitions": 8},
        {"input": str(broken[0]), "output": "b.mp4", "edits": ["happy:high:0.5-2.5"]},
        {"input": str(clips[1]), "output": "g2.mp4", "edits": ["happy:high:0.5-2.5"]},
    ])
    report_path = tmp_path / "elsewhere" / "r.json"
    rc = main(["-q", "batch", "edit", "--manifest", str(manifest), "--report", str(report_path)])
    captured = capsys.readouterr()
    report = _report(report_path)
    assert rc == 1 and _statuses(report) == ["skipped", "failed", "not_run"], captured.out
    assert report["videos"][0]["reason"].startswith("output complete") and report["videos"][0]["output"] == str(done)
    assert not (tmp_path / "g2.mp4").exists() and "stopped at the first failure" in captured.err

    # what makes an output complete: a changed byte, other edits, a foreign file
    session = Session(progress=False)
    job = parse_manifest(manifest).jobs[0]
    assert edit_output_state(session, job).complete
    changed = tmp_path / "changed" / "g1.mp4"
    changed.parent.mkdir()
    shutil.copy(done, changed)
    shutil.copy(done.with_name("g1.dfm.json"), changed.with_name("g1.dfm.json"))
    copied = parse_manifest(_manifest(tmp_path / "j2.jsonl", [{**json.loads(manifest.read_text().splitlines()[0]),
                                                              "output": str(changed)}])).jobs[0]
    assert edit_output_state(session, copied).complete  # a copy of file + sidecar is still complete
    with changed.open("ab") as f:
        f.write(b"\0")
    state = edit_output_state(session, copied)
    assert not state.complete and state.redo and "does not match its sidecar" in state.reason
    restyled = parse_manifest(_manifest(tmp_path / "j3.jsonl", [{"input": str(clips[0]), "output": str(done),
                                                                "edits": ["sad:low:0.5-2.5"], "transitions": 8}])).jobs[0]
    state = edit_output_state(session, restyled)
    assert not state.complete and state.redo and "edits changed" in state.reason
    foreign = parse_manifest(_manifest(tmp_path / "j4.jsonl", [{"input": str(clips[1]), "output": str(done),
                                                               "edits": ["sad:low:0.5-2.5"]}])).jobs[0]
    state = edit_output_state(session, foreign)
    assert not state.complete and not state.redo and "is not DFM's output of grid_greyhair_man_01.mp4" in state.reason
    changed.with_name("g1.dfm.json").unlink()  # killed between the video's rename and the sidecar's
    state = edit_output_state(session, copied)
    assert not state.complete and state.redo and "sidecar is missing" in state.reason

    # a file at the output that DFM did not make from this input is left alone: the line fails at once
    (tmp_path / "taken.mp4").write_bytes(b"someone else's video")
    rc = main(["-q", "batch", "edit", "--manifest", str(_manifest(tmp_path / "j5.jsonl", [
        {"input": str(clips[1]), "output": "taken.mp4", "edits": ["happy:high:0.5-2.5"]}]))])
    line = capsys.readouterr().out.splitlines()[0]
    assert rc == 1 and line.startswith("failed   line 1: grid_greyhair_man_01.mp4: ") and "--overwrite" in line
    assert (tmp_path / "taken.mp4").read_bytes() == b"someone else's video"


def test_a_killed_batch_resumes_where_it_stopped(edit_batch, dfm_env, capsys, tmp_path, clips):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("g1.mp4", "g1.dfm.json"):  # line 1 finished before (a copy of the fixture's output)
        shutil.copy(edit_batch[0] / "out" / name, out / name)
    manifest = _manifest(tmp_path / "jobs.jsonl", [
        {"input": str(clips[0]), "output": "out/g1.mp4", "edits": ["sad:high:0.5-2.5"], "transitions": 8},
        {"input": str(clips[1]), "output": "out/g2.mp4", "edits": ["surprise:medium:0.5-2.5"], "seed": 1},
    ])
    report_path = tmp_path / "jobs.report.json"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    job = subprocess.Popen([sys.executable, "-m", "dfm.app.cli.main", "-q", "batch", "edit", "--manifest",
                            str(manifest)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not _temporaries(out, "g2.mp4"):  # line 2 is being rendered
            assert job.poll() is None, f"the batch ended (rc {job.returncode}) before line 2: {job.stderr.read()}"
            assert time.monotonic() < deadline, "timed out waiting for line 2's render"
            time.sleep(0.05)
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
    assert _statuses(_report(report_path)) == ["skipped", "pending"]
    assert not (out / "g2.mp4").exists() and not (out / "g2.dfm.json").exists()  # nothing half-written at the path

    rc = main(["-q", "batch", "edit", "--manifest", str(manifest)])
    lines = capsys.readouterr().out.splitlines()
    report = _report(report_path)
    assert rc == 0 and _statuses(report) == ["skipped", "ok"], lines
    assert lines[0].startswith("skipped  line 1: mead_w009_happy_01.mp4 (output complete")
    assert lines[1].startswith(f"ok       line 2: grid_greyhair_man_01.mp4 -> {out / 'g2.mp4'}")
    assert (out / "g2.mp4").is_file() and not _temporaries(out, "g2.mp4")  # the killed job's leftovers are gone
    assert json.loads((out / "g2.dfm.json").read_text())["seed"] == 1

    rc = main(["-q", "batch", "edit", "--manifest", str(manifest)])
    assert rc == 0 and _statuses(_report(report_path)) == ["skipped", "skipped"]
    capsys.readouterr()
