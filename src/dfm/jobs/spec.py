"""Job records: what to run (JobSpec) and how it stands (JobStatus), plain JSON-able dataclasses."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

JobState = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
STATES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled", "interrupted")
TERMINAL_STATES = frozenset({"done", "failed", "cancelled", "interrupted"})
JOB_ID = re.compile(r"^[0-9a-f]{16}$")


def new_job_id() -> str:
    return secrets.token_hex(8)


def now() -> float:
    return time.time()


@dataclass(frozen=True)
class JobSpec:
    """kind: which executor runs it ("analyze", "render", "collection", ...); project: the project it
    belongs to (or ""); params: the executor's JSON-able arguments."""

    kind: str
    project: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_job_id)
    created: float = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "JobSpec":
        return cls(kind=str(d["kind"]), project=str(d.get("project", "")), params=dict(d.get("params") or {}),
                   id=str(d["id"]), created=float(d.get("created", 0.0)))


@dataclass(frozen=True)
class JobStatus:
    """state; progress in [0, 1] over the whole job; stage: the pipeline stage now running; message: one
    line for the user (the error for failed jobs); result: the executor's JSON-able return value."""

    id: str
    kind: str
    project: str = ""
    state: JobState = "queued"
    progress: float = 0.0
    stage: str = ""
    message: str = ""
    result: dict[str, Any] | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "JobStatus":
        state = d.get("state", "queued")
        if state not in STATES:
            raise ValueError(f"unknown job state {state!r}")
        return cls(id=str(d["id"]), kind=str(d["kind"]), project=str(d.get("project", "")), state=state,
                   progress=float(d.get("progress", 0.0)), stage=str(d.get("stage", "")),
                   message=str(d.get("message", "")), result=d.get("result"), created=float(d.get("created", 0.0)),
                   started=d.get("started"), finished=d.get("finished"))

    @classmethod
    def queued(cls, spec: JobSpec) -> "JobStatus":
        return cls(id=spec.id, kind=spec.kind, project=spec.project, created=spec.created)
