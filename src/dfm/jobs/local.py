"""The local job runner: a queue and `workers` threads (one by default: the machine has 2 cores, and
the jobs use both through their own libraries) running executors in this process, so they share the
server's warm Session (models loaded once).

An executor is `fn(spec, ctx) -> result dict | None`. It passes `ctx.hooks` to the pipeline, which
reports ProgressEvents (written to the job's status, throttled) and asks `ctx.hooks.cancel` between
frames; cancelling a running job makes the pipeline raise Cancelled at its next frame.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from typing import Any, Callable, Mapping, Sequence

from dfm.errors import Cancelled, DfmError
from dfm.jobs.spec import JobSpec, JobStatus, now
from dfm.jobs.store import JobStore
from dfm.pipelines.base import Hooks, ProgressEvent

log = logging.getLogger("dfm.jobs")

Executor = Callable[[JobSpec, "JobContext"], "dict[str, Any] | None"]
WRITE_INTERVAL_S = 0.2  # status writes while a stage runs (a stage change is always written)


class JobContext:
    """What an executor gets besides its spec: hooks for the pipeline, and the job's store folder.

    stages: the pipeline stages in order with their share of the job's time, e.g. {"analyze": 3,
    "render": 4}; the job's progress is the share of the stages before the current one plus the
    current stage's fraction of its own. Stages not listed do not move the bar.
    """

    def __init__(self, store: JobStore, spec: JobSpec, cancel: threading.Event, stages: Mapping[str, float] = ()):
        self.store, self.spec, self.folder = store, spec, store.folder(spec.id)
        self._cancel = cancel
        self._stages: dict[str, float] = dict(stages)
        self._stage = ""
        self._seen: set[str] = set()
        self._written = 0.0
        self.hooks = Hooks(progress=self._on_progress, cancel=cancel.is_set)

    def set_stages(self, stages: Mapping[str, float]) -> None:
        self._stages = dict(stages)

    def _fraction(self, event: ProgressEvent) -> float:
        names = list(self._stages)
        if event.stage not in self._stages:
            return self.store.status(self.spec.id).progress
        self._seen.add(event.stage)
        here = names.index(event.stage)
        # a stage that was passed over (a cached analysis) is dropped, so the bar does not jump
        counted = [n for k, n in enumerate(names) if k > here or n in self._seen]
        total = sum(self._stages[n] for n in counted)
        before = sum(self._stages[n] for n in counted if names.index(n) < here)
        return min(1.0, (before + self._stages[event.stage] * event.fraction) / total) if total > 0 else 0.0

    def _on_progress(self, event: ProgressEvent) -> None:
        t = time.monotonic()
        changed = event.stage != self._stage
        if not changed and t - self._written < WRITE_INTERVAL_S and event.done < event.total:
            return
        self._stage, self._written = event.stage, t
        unit = f" {event.done}/{event.total}" if event.total > 1 else ""
        self.store.update(self.spec.id, progress=round(self._fraction(event), 4), stage=event.stage,
                          message=f"{event.stage}{unit}")


class LocalRunner:
    """Runs JobSpecs through `executors[spec.kind]` on `workers` threads; statuses live in `store`."""

    def __init__(self, store: JobStore, executors: Mapping[str, Executor], workers: int = 1):
        self.store = store
        self.executors = dict(executors)
        self._queue: "queue.Queue[str | None]" = queue.Queue()
        self._cancel: dict[str, threading.Event] = {}
        self._shutdown = threading.Event()
        self._lock = threading.Lock()
        self._threads: Sequence[threading.Thread] = [
            threading.Thread(target=self._work, name=f"dfm-job-worker-{k}", daemon=True) for k in range(max(1, workers))]
        self.store.recover()  # jobs a previous process left running are interrupted, not running
        for th in self._threads:
            th.start()

    def submit(self, spec: JobSpec) -> JobStatus:
        if spec.kind not in self.executors:
            raise DfmError(f"unknown job kind {spec.kind!r}")
        with self._lock:
            status = self.store.create(spec)
            self._cancel[spec.id] = threading.Event()
        self._queue.put(spec.id)
        return status

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a queued job at once, a running one at its next frame (the status says `cancelled` when
        it has stopped). A finished job stays as it is."""
        with self._lock:
            event = self._cancel.get(job_id)
            if event is not None:
                event.set()
            status = self.store.status(job_id)
            if status.state == "queued":
                status = self.store.update(job_id, state="cancelled", message="cancelled before it started")
        return status

    def wait(self, job_id: str, timeout: float = 60.0, poll: float = 0.05) -> JobStatus:
        """Block until the job ends (for tests and scripts); returns its last status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.store.status(job_id)
            if status.terminal or time.monotonic() > deadline:
                return status
            time.sleep(poll)

    def close(self, timeout: float = 10.0) -> None:
        """Stop: running jobs are stopped at their next frame and marked interrupted, queued ones too."""
        self._shutdown.set()
        with self._lock:
            for event in self._cancel.values():
                event.set()
        for _ in self._threads:
            self._queue.put(None)
        for th in self._threads:
            th.join(timeout)
        self.store.recover()

    # ------------------------------------------------------------------------------------------ worker
    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None or self._shutdown.is_set():
                return
            try:
                self._run(job_id)
            finally:
                with self._lock:
                    self._cancel.pop(job_id, None)

    def _run(self, job_id: str) -> None:
        with self._lock:
            status = self.store.status(job_id)
            if status.terminal:  # cancelled while queued
                return
            event = self._cancel.setdefault(job_id, threading.Event())
            self.store.update(job_id, state="running", started=now(), message="started")
        spec = self.store.spec(job_id)
        ctx = JobContext(self.store, spec, event)
        try:
            result = self.executors[spec.kind](spec, ctx)
        except Cancelled:
            if self._shutdown.is_set():
                self.store.update(job_id, state="interrupted", message="the server stopped before this job finished")
            else:
                self.store.update(job_id, state="cancelled", message="cancelled")
        except DfmError as e:
            self.store.update(job_id, state="failed", message=str(e))
        except Exception as e:  # a bug: keep the traceback beside the job, show one line
            (ctx.folder / "error.txt").write_text(traceback.format_exc())
            log.exception("job %s (%s) failed", job_id, spec.kind)
            self.store.update(job_id, state="failed", message=f"internal error ({type(e).__name__}: {e}); see {ctx.folder / 'error.txt'}")
        else:
            self.store.update(job_id, state="done", progress=1.0, result=result, message="done")
