"""Settings of the web tool: from `dfm gui` options, else DFM_* environment variables, else defaults."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

DEFAULT_PORT = 7860


def _default_workspace() -> Path:
    from dfm.pipelines.analyze import default_workspace

    return default_workspace()


class Settings(BaseModel):
    """workspace: caches, projects and job history (DFM_WORKSPACE); max_upload_mb: the largest accepted
    upload (DFM_MAX_UPLOAD_MB); workers: jobs run at once (DFM_WORKERS); chunk_workers, ray, ray_address:
    the processes (or Ray cluster) one job's video chunks run on (`dfm gui --workers N --ray [ADDRESS]`,
    as on every command; None: the machine's cores; DFM_RAY_ADDRESS names a cluster)."""

    workspace: Path = Field(default_factory=_default_workspace)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_upload_mb: float = Field(default=2048, gt=0)
    workers: int = Field(default=1, ge=1)
    chunk_workers: int | None = Field(default=None, ge=1)
    ray: bool = False
    ray_address: str | None = None
    warm_preview: bool = True  # build the preview's renderer at the end of each analysis job

    @field_validator("workspace")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return Path(v).expanduser().resolve()

    @property
    def parallel(self):
        """The job Session's dfm.parallel.ParallelOptions."""
        from dfm.parallel import ParallelOptions

        return ParallelOptions(workers=self.chunk_workers, ray=self.ray, ray_address=self.ray_address)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def projects_dir(self) -> Path:
        return self.workspace / "projects"

    @property
    def jobs_dir(self) -> Path:
        return self.workspace / "jobs"

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        env = {"workspace": "DFM_WORKSPACE", "max_upload_mb": "DFM_MAX_UPLOAD_MB", "workers": "DFM_WORKERS"}
        values = {k: os.environ[v] for k, v in env.items() if os.environ.get(v)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
