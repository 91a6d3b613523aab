"""The job store and the local runner on synthetic executors (no models): states, progress, failures,
cancel (queued and running), restart recovery, and ids that cannot name a path."""

from __future__ import annotations

import json
import threading
import time

import pytest

from dfm.errors import DfmError, InputError
from dfm.jobs import JobSpec, JobStore, LocalRunner


def counting(n: int, delay: float = 0.0):
    def run(spec, ctx):
        ctx.set_stages({"count": 1.0})
        for k in range(n + 1):
            ctx.hooks.emit("count", k, n)
            time.sleep(delay)
        return {"counted": n}
    return run


def test_job_runs_to_done_with_result_and_progress(tmp_path):
    runner = LocalRunner(JobStore(tmp_path), {"count": counting(5)})
    try:
        status = runner.submit(JobSpec(kind="count", project="p1"))
        assert status.state == "queued"
        done = runner.wait(status.id, timeout=10)
        assert done.state == "done" and done.progress == 1.0 and done.result == {"counted": 5}
        assert done.started is not None and done.finished >= done.started
        on_disk = json.loads((tmp_path / status.id / "status.json").read_text())
        assert on_disk["state"] == "done"
        assert [s.id for s in runner.store.list("p1")] == [status.id] and runner.store.list("other") == []
    finally:
        runner.close()


def test_progress_is_weighted_over_stages(tmp_path):
    seen = []

    def run(spec, ctx):
        ctx.set_stages({"a": 1.0, "b": 3.0})
        ctx.hooks.emit("a", 1, 1)
        seen.append(ctx.store.status(spec.id).progress)
        ctx.hooks.emit("b", 1, 2)
        seen.append(ctx.store.status(spec.id).progress)
        return None

    runner = LocalRunner(JobStore(tmp_path), {"x": run})
    try:
        runner.wait(runner.submit(JobSpec(kind="x")).id, timeout=10)
    finally:
        runner.close()
    assert seen == [pytest.approx(0.25), pytest.approx(0.625)]


def test_progress_skips_stages_that_did_not_run(tmp_path):
    """A cached analysis never reports: the render stage then spans the whole bar."""
    seen = []

    def run(spec, ctx):
        ctx.set_stages({"analyze": 5.0, "render": 5.0})
        ctx.hooks.emit("render", 1, 2)
        seen.append(ctx.store.status(spec.id).progress)

    runner = LocalRunner(JobStore(tmp_path), {"x": run})
    try:
        runner.wait(runner.submit(JobSpec(kind="x")).id, timeout=10)
    finally:
        runner.close()
    assert seen == [pytest.approx(0.5)]


def test_user_error_fails_with_its_message_and_bug_keeps_traceback(tmp_path):
    def user_error(spec, ctx):
        raise InputError("clip.mp4: no face found in any of its 75 frames")

    def bug(spec, ctx):
        raise ZeroDivisionError("oops")

    runner = LocalRunner(JobStore(tmp_path), {"user": user_error, "bug": bug})
    try:
        a = runner.wait(runner.submit(JobSpec(kind="user")).id)
        b = runner.wait(runner.submit(JobSpec(kind="bug")).id)
    finally:
        runner.close()
    assert a.state == "failed" and a.message == "clip.mp4: no face found in any of its 75 frames"
    assert b.state == "failed" and "ZeroDivisionError" in b.message
    assert "Traceback" in (tmp_path / b.id / "error.txt").read_text()


def test_cancel_running_job_stops_between_units(tmp_path):
    started = threading.Event()
    units = []

    def run(spec, ctx):
        for k in range(10_000):
            ctx.hooks.emit("loop", k, 10_000)
            units.append(k)
            started.set()
            time.sleep(0.002)

    runner = LocalRunner(JobStore(tmp_path), {"loop": run})
    try:
        job = runner.submit(JobSpec(kind="loop")).id
        assert started.wait(10)
        runner.cancel(job)
        final = runner.wait(job, timeout=10)
    finally:
        runner.close()
    assert final.state == "cancelled"
    assert len(units) < 10_000


def test_cancel_queued_job_never_runs(tmp_path):
    release = threading.Event()
    ran = []

    def block(spec, ctx):
        release.wait(10)

    def record(spec, ctx):
        ran.append(spec.id)

    runner = LocalRunner(JobStore(tmp_path), {"block": block, "record": record})
    try:
        first = runner.submit(JobSpec(kind="block")).id
        second = runner.submit(JobSpec(kind="record")).id
        assert runner.cancel(second).state == "cancelled"
        release.set()
        assert runner.wait(first).state == "done"
        time.sleep(0.1)
    finally:
        runner.close()
    assert ran == [] and runner.store.status(second).state == "cancelled"


def test_restart_marks_cut_off_jobs_interrupted_and_terminal_is_final(tmp_path):
    store = JobStore(tmp_path)
    running = store.create(JobSpec(kind="render"))
    store.update(running.id, state="running", progress=0.4)
    queued = store.create(JobSpec(kind="render"))
    finished = store.create(JobSpec(kind="render"))
    store.update(finished.id, state="done", progress=1.0)

    runner = LocalRunner(JobStore(tmp_path), {"render": counting(1)})  # a new server process on the same folder
    try:
        assert runner.store.status(running.id).state == "interrupted"
        assert runner.store.status(queued.id).state == "interrupted"
        assert runner.store.status(finished.id).state == "done"
        # a late write from the old process's worker cannot revive the job
        assert store.update(running.id, state="done", progress=1.0).state == "interrupted"
    finally:
        runner.close()


@pytest.mark.parametrize("bad", ["../etc", "..", "0123456789abcdeg", "0123456789ABCDEF", "a/b", "%2e%2e", ""])
def test_job_ids_cannot_name_paths(tmp_path, bad):
    store = JobStore(tmp_path)
    with pytest.raises(InputError):
        store.folder(bad)


def test_unknown_kind_is_refused(tmp_path):
    runner = LocalRunner(JobStore(tmp_path), {})
    try:
        with pytest.raises(DfmError, match="unknown job kind"):
            runner.submit(JobSpec(kind="nope"))
    finally:
        runner.close()
