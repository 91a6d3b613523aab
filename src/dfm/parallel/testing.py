"""Small picklable tasks and setups for the executor's own tests (a worker imports them by name)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class CountingSetup:
    """State = a record of this worker: its pid and a counter of the chunks it ran."""

    key: str = "counting"

    def __call__(self) -> dict:
        return {"pid": os.getpid(), "runs": 0, "threads": os.environ.get("OMP_NUM_THREADS")}


def square_chunk(state: dict, item, report) -> tuple:
    state["runs"] += 1
    for _ in range(item.start, item.stop):
        report(1)
    return item.index, [i * i for i in range(item.start, item.stop)], state["pid"], state["runs"], state["threads"]


def parent_chunk(state: dict, item, report) -> tuple:
    """square_chunk's index and squares, and the worker's parent process."""
    return item.index, [i * i for i in range(item.start, item.stop)], os.getppid()


def warm_counter(state: dict, item, report) -> None:
    """A `prepare(..., warm=)` task taking a while (like loading kernels): marks the worker's state as warmed."""
    import time

    time.sleep(0.5)
    state["warmed"] = state.get("warmed", 0) + 1


def warmed_chunk(state: dict, item, report) -> tuple:
    import time

    time.sleep(0.05)  # long enough that both workers take chunks of a map (an instant one can go all to one)
    return state["pid"], state.get("warmed", 0)


def failing_chunk(state: dict, item, report):
    if item.index == 1:
        raise ValueError("bad frame 7")
    return item.index


def dying_chunk(state: dict, item, report):
    if item.index == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return item.index


def worker_facts(state: dict, item, report) -> dict:
    """What a worker started with: an environment variable the test set, the modules it already had
    before any dfm task imported them, and its BLAS thread count."""
    from threadpoolctl import threadpool_info

    blas = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return {"mark": os.environ.get("DFM_TEST_WORKER_MARK"), "parent": os.getppid(),
            "preloaded": state["preloaded"], "blas_threads": blas}


@dataclass(frozen=True)
class ModulesSetup:
    """State = which of the analysis worker's modules this worker had loaded when its first task came."""

    key: str = "modules"

    def __call__(self) -> dict:
        import sys

        names = ("mediapipe", "cv2", "h5py", "dfm.face.tracking", "dfm.io.video")
        return {"preloaded": {n: n in sys.modules for n in names}}
