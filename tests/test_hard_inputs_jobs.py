"""Hostile conditions around a real job (subprocesses): SIGTERM and SIGKILL during the render, two jobs on
one output, two jobs on one new workspace sharing one analysis; plus the lock and temp-file helpers.

The face clip is a 3 s cut of the shared Pexels clip (laughing part) at an odd size, 321x181 (so the edit
of an odd frame size is covered end to end too), made once per module."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dfm.app.cli.main import main
from dfm.errors import InputError
from dfm.io.files import atomic_output, remove_stale_temporaries, temp_prefix
from dfm.io.locks import exclusive_lock, lock_path_for, output_lock

REPO = Path(__file__).resolve().parents[1]


def _child_env(workspace: Path) -> dict:
    env = dict(os.environ, DFM_WORKSPACE=str(workspace), PYTHONPATH=str(REPO / "src"))
    for key in ("DFM_VERBOSE", "GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL"):  # as a user's shell has them
        env.pop(key, None)
    return env


def _start_job(argv: list[str], workspace: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dfm.app.cli.main", *argv], env=_child_env(workspace),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, timeout: float, proc: subprocess.Popen | None = None, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"job ended (rc {proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _temporaries(folder: Path, name: str) -> list[Path]:
    """Hidden work files of the output `name` (a writer's own temporary beside one has two dots)."""
    return sorted(p for p in folder.iterdir() if p.name.startswith(".") and p.name.lstrip(".").startswith(f"{name}.dfm-"))


@pytest.fixture(scope="module")
def face_clip(sample_video, tmp_path_factory) -> Path:
    import cv2

    from dfm.io.video import VideoWriter, iter_frames, probe_video

    info = probe_video(sample_video)
    start = info.n_frames - 5 * 24  # the laughing part: a face in every frame
    out = tmp_path_factory.mktemp("face") / "laugh.mp4"
    t0 = None
    with VideoWriter.like(info, out, width=321, height=181, copy_audio=False) as w:
        for f in iter_frames(sample_video, start, start + 72):
            t0 = f.timestamp if t0 is None else t0
            w.write(cv2.resize(f.image, (321, 181), interpolation=cv2.INTER_AREA), timestamp=f.timestamp - t0)
    return out


def _edit_argv(video: Path, output: Path, *extra: str) -> list[str]:
    return ["edit", str(video), "--edit", "happy:high:0.1-2.9", "--transitions", "6", "-o", str(output), "-q", *extra]


@pytest.mark.integration
def test_sigterm_during_render_concurrent_jobs_and_one_shared_analysis(dfm_env, capsys, tmp_path, face_clip):
    workspace = tmp_path / "ws"
    out = tmp_path / "out.mp4"
    job = _start_job(_edit_argv(face_clip, out), workspace)
    try:
        # 1. the job holds the output's lock from before its analysis: a second job on the same output fails
        _wait_for(lock_path_for(out).exists, 120, job, "the output lock")
        rc = main(["--workspace", str(workspace), *_edit_argv(face_clip, out)])
        err = capsys.readouterr().err
        assert rc == 2 and "another dfm job" in err and f"pid {job.pid}" in err and str(out) in err, err
        # 2. an analysis of the same video in the same (new) workspace waits for the job's and reuses it
        tracks = workspace / "tracks"
        _wait_for(lambda: any(tracks.glob(".*.lock")), 120, job, "the analysis lock")
        rc = main(["--workspace", str(workspace), "analyze", str(face_clip), "--json"])
        captured = capsys.readouterr()
        assert rc == 0 and "waiting for another dfm job" in captured.err, captured.err
        assert json.loads(captured.out)["cached"] is True
        # 3. SIGTERM while rendering: clean stop, one line, exit 143, nothing left behind
        _wait_for(lambda: _temporaries(tmp_path, out.name), 120, job, "the render's temporary output")
        job.send_signal(signal.SIGTERM)
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 143, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("dfm: terminated") and "Traceback" not in stderr, stderr
    assert not out.exists() and not _temporaries(tmp_path, out.name) and not lock_path_for(out).exists()
    assert not list(tmp_path.glob(".*.lock")) and not list(tracks.glob(".*.lock"))


@pytest.mark.integration
def test_sigkill_leftovers_are_removed_by_the_next_run(dfm_env, capsys, tmp_path, face_clip):
    import av

    workspace = tmp_path / "ws"
    out = tmp_path / "out.mp4"
    job = _start_job(_edit_argv(face_clip, out), workspace)
    try:
        _wait_for(lambda: _temporaries(tmp_path, out.name), 240, job, "the render's temporary output")
        job.kill()
        job.wait(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
    left = _temporaries(tmp_path, out.name)
    assert left and all(f".dfm-" in p.name and f"-{job.pid}-" in p.name for p in left)  # named with the pid
    rc = main(["--workspace", str(workspace), *_edit_argv(face_clip, out, "--json")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert not _temporaries(tmp_path, out.name)  # the dead job's leftovers went
    report = json.loads(captured.out)
    assert report["frames"] == 72 and report["edited_frames"] > 60
    assert report["size"] == [321, 181] and report["pix_fmt"] == "yuv444p"  # the odd size is kept
    assert any("odd frame size 321x181" in w for w in report["warnings"])
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert v.frames == 72 and (v.codec_context.width, v.codec_context.height) == (321, 181)
    assert not lock_path_for(out).exists()


def test_mediapipe_log_lines_stay_off_stderr_unless_verbose(dfm_env, tmp_path):
    """The native lines (glog 'W0000 ...', TFLite 'INFO: Created ...') are silenced without -q too."""
    code = ("import sys; from dfm.face.tracking import FaceTracker; from dfm.assets import AssetStore; "
            "FaceTracker(AssetStore.from_env().path('face-landmarker')).close(); print('done', file=sys.stderr)")
    quiet = subprocess.run([sys.executable, "-c", code], env=_child_env(tmp_path), capture_output=True, text=True)
    loud = subprocess.run([sys.executable, "-c", code], env={**_child_env(tmp_path), "DFM_VERBOSE": "1"},
                          capture_output=True, text=True)
    assert quiet.returncode == loud.returncode == 0
    assert quiet.stderr.strip() == "done", quiet.stderr
    assert "XNNPACK" in loud.stderr or "W0000" in loud.stderr  # the guard: they are there when wanted


# -- the helpers ------------------------------------------------------------------------------------

_HOLD = "import sys, time; from dfm.io.locks import exclusive_lock\nwith exclusive_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(float(sys.argv[2]))"


def _hold_lock(lock: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(lock), str(seconds)], env=_child_env(lock.parent),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_output_lock_refuses_a_second_writer_and_is_released(tmp_path):
    out = tmp_path / "out.mp4"
    holder = _hold_lock(lock_path_for(out), 30)
    try:
        with pytest.raises(InputError, match=rf"another dfm job \(pid {holder.pid}\) is writing .*out.mp4"):
            with output_lock(out):
                pass
    finally:
        holder.kill()
        holder.wait()
    with output_lock(out):  # a killed holder's flock is gone with it
        assert lock_path_for(out).exists()
    assert not lock_path_for(out).exists()


def test_exclusive_lock_waits_for_the_holder(tmp_path):
    lock = tmp_path / ".x.lock"
    holder = _hold_lock(lock, 1.0)
    waited: list = []
    t0 = time.monotonic()
    with exclusive_lock(lock, on_wait=waited.append):
        elapsed = time.monotonic() - t0
    holder.wait()
    assert waited == [holder.pid] and elapsed > 0.3


def test_temp_files_carry_the_pid_and_stale_ones_of_dead_processes_go(tmp_path):
    target = tmp_path / "out.mp4"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    mine = temp_prefix(target)
    stale = tmp_path / mine.replace(f"-{os.getpid()}-", f"-{dead_pid}-")
    stale = Path(str(stale) + "abc.tmp.mp4")
    stale.write_bytes(b"half")
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = Path(str(tmp_path / mine.replace(f"-{os.getpid()}-", f"-{alive.pid}-")) + "xyz.tmp.mp4")
        live.write_bytes(b"in progress")
        other = tmp_path / ".other.mp4.dfm-00000000-1-q.tmp.mp4"  # another target / host: not ours to judge
        other.write_bytes(b"x")
        with atomic_output(target) as tmp:
            assert tmp.name.startswith(mine) and f"-{os.getpid()}-" in tmp.name
            tmp.write_bytes(b"new")
        assert target.read_bytes() == b"new"
        assert not stale.exists() and live.exists() and other.exists()
    finally:
        alive.kill()
        alive.wait()
    assert remove_stale_temporaries(target) == [live]
