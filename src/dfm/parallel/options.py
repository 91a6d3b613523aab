"""How many processes a job may use, and where: the local process pool or a Ray cluster."""

from __future__ import annotations

import os
from dataclasses import dataclass

RAY_ADDRESS_ENV = "DFM_RAY_ADDRESS"


def machine_cores() -> int:
    """The cores this process may run on (the affinity mask, not the machine's total, under taskset/cgroups)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ParallelOptions:
    """workers: processes (or Ray tasks in flight) for one video's chunks; None = the machine's cores,
    1 = today's serial path in this process. ray: run the chunks on Ray; ray_address: the cluster
    ("auto", "ray://host:10001", ...), None = DFM_RAY_ADDRESS or a local Ray instance."""

    workers: int | None = None
    ray: bool = False
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, not {self.workers}")

    @property
    def n_workers(self) -> int:
        return self.workers if self.workers is not None else machine_cores()

    @property
    def address(self) -> str | None:
        return self.ray_address or os.environ.get(RAY_ADDRESS_ENV) or None

    @property
    def serial(self) -> bool:
        return not self.ray and self.n_workers == 1

    def chunks(self, n_frames: int, min_frames: int) -> bool:
        """Whether work on a video of `n_frames` is cut into chunks: Ray, or two or more local workers, and at
        least `min_frames` (below it the workers' start costs more than they save)."""
        return (self.ray or self.n_workers >= 2) and n_frames >= min_frames
