"""Job folders under a root (the web tool uses WORKSPACE/jobs): `spec.json` and `status.json` per job,
every status change written atomically (temp file + rename), so a reader never sees half a file and a
server killed mid-job leaves the last status it wrote.

A store opened by a new server process marks the jobs an earlier process left queued or running as
`interrupted` (`recover()`): nobody runs them any more. A terminal status is final: a late update from a
worker that outlived its store (or a cancel racing a finish) cannot bring a job back.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from dfm.errors import InputError
from dfm.io.files import atomic_write_text
from dfm.jobs.spec import JOB_ID, JobSpec, JobStatus, now


class JobStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def folder(self, job_id: str) -> Path:
        """The job's folder; InputError for anything that is not a job id (no path can leave the root)."""
        if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
            raise InputError(f"not a job id: {job_id!r}")
        return self.root / job_id

    def create(self, spec: JobSpec) -> JobStatus:
        folder = self.folder(spec.id)
        folder.mkdir(parents=True, exist_ok=False)
        atomic_write_text(folder / "spec.json", json.dumps(spec.to_dict(), indent=2))
        status = JobStatus.queued(spec)
        self._write(status)
        return status

    def exists(self, job_id: str) -> bool:
        return (self.folder(job_id) / "status.json").exists()

    def spec(self, job_id: str) -> JobSpec:
        return JobSpec.from_dict(json.loads((self.folder(job_id) / "spec.json").read_text()))

    def status(self, job_id: str) -> JobStatus:
        path = self.folder(job_id) / "status.json"
        try:
            return JobStatus.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise KeyError(job_id) from None

    def update(self, job_id: str, **changes: Any) -> JobStatus:
        """Apply `changes` unless the job already ended; returns the status as stored afterwards."""
        with self._lock:
            status = self.status(job_id)
            if status.terminal:
                return status
            new = replace(status, **changes)
            if new.terminal and new.finished is None:
                new = replace(new, finished=now())
            self._write(new)
            return new

    def list(self, project: str | None = None) -> list[JobStatus]:
        """Every job (of `project`), oldest first."""
        out = []
        for folder in self.root.iterdir():
            if not JOB_ID.fullmatch(folder.name) or not (folder / "status.json").exists():
                continue
            try:
                status = JobStatus.from_dict(json.loads((folder / "status.json").read_text()))
            except (ValueError, KeyError, OSError):
                continue  # a foreign or damaged file is not a job
            if project is None or status.project == project:
                out.append(status)
        return sorted(out, key=lambda s: (s.created, s.id))

    def recover(self) -> list[JobStatus]:
        """Mark the jobs a previous process left queued or running as interrupted; returns them."""
        cut = []
        for status in self.list():
            if not status.terminal:
                cut.append(self.update(status.id, state="interrupted",
                                       message="the server stopped before this job finished; start it again"))
        return cut

    def _write(self, status: JobStatus) -> None:
        atomic_write_text(self.folder(status.id) / "status.json", json.dumps(status.to_dict(), indent=2))
