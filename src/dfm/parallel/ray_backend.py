"""The same chunks as Ray actors: one actor per worker, each loading its models once, on a Ray cluster
(`address`) or on a local Ray instance started for the job. Paths in the chunks must be readable (and
outputs writable) on every node: a shared filesystem or an object-store mount."""

from __future__ import annotations

import os
from typing import Any, Callable, Hashable, Sequence

from dfm.errors import Cancelled, DfmError, InputError
from dfm.parallel.executor import (THREAD_ENV, POLL_S, ChunkFailed, Task, WorkerSetup, _prepared, _why, describe,
                                   limit_threads)


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise InputError("--ray needs Ray: pip install 'dfm[ray]'") from e
    return ray


class _ChunkActor:
    """One worker: keeps the states its setups built, runs tasks on chunks."""

    def __init__(self, threads: int) -> None:
        limit_threads(threads)
        self._states: dict[Hashable, Any] = {}

    def run(self, task: Task, setup: WorkerSetup, item: Any) -> Any:
        if setup.key not in self._states:
            self._states[setup.key] = setup()
        return task(self._states[setup.key], item, lambda n: None)

    def pid(self) -> int:
        return os.getpid()


class RayExecutor:
    """n_workers actors (None: one per CPU the cluster has, at most 64) of one CPU each."""

    reports_frames = False  # progress comes per finished chunk
    threads_per_worker = 1  # each actor holds one CPU

    def __init__(self, n_workers: int | None = None, address: str | None = None) -> None:
        ray = _import_ray()
        self._ray = ray
        self._after_map: list[tuple[WorkerSetup, Task | None]] = []
        self._started = not ray.is_initialized()
        if self._started:
            try:
                if address:
                    ray.init(address=address, log_to_driver=False)
                else:  # a local instance on loopback, small object store: chunks carry arrays, not frames
                    ray.init(include_dashboard=False, log_to_driver=False, object_store_memory=256 * 2**20,
                             _node_ip_address="127.0.0.1")
            except Exception as e:
                raise DfmError(f"cannot start or reach Ray{' at ' + address if address else ''}: {_why(e)}") from e
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.n_workers = n_workers or max(1, min(cpus, 64))
        env = {k: "1" for k in THREAD_ENV}
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0, runtime_env={"env_vars": env})(_ChunkActor)
        self._actors = [self._new_actor() for _ in range(self.n_workers)]

    def _new_actor(self) -> Any:
        return self._actor_class.remote(self.threads_per_worker)

    def map(self, task: Task, items: Sequence[Any], setup: WorkerSetup, on_progress: Callable[[int], None] | None = None,
            cancel: Callable[[], bool] | None = None, sizes: Sequence[int] | None = None) -> list[Any]:
        ray = self._ray
        results: list[Any] = [None] * len(items)
        todo = list(range(len(items)))
        running: dict[Any, tuple[int, Any]] = {}  # ref -> (item index, actor)
        idle = list(self._actors)
        try:
            while todo or running:
                while todo and idle:
                    k, a = todo.pop(0), idle.pop(0)
                    running[a.run.remote(task, setup, items[k])] = (k, a)
                done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
                for ref in done:
                    k, a = running.pop(ref)
                    try:
                        results[k] = ray.get(ref)
                    except ray.exceptions.RayActorError as e:
                        self._replace(a)
                        raise ChunkFailed(f"{describe(items[k], k)} failed: its Ray worker died (killed, or out of "
                                          "memory)") from e
                    except ray.exceptions.RayTaskError as e:
                        cause = e.as_instanceof_cause() if hasattr(e, "as_instanceof_cause") else e
                        raise ChunkFailed(f"{describe(items[k], k)} failed: {_why(getattr(e, 'cause', None) or cause)}") from e
                    idle.append(a)
                    if on_progress is not None and sizes is not None:
                        on_progress(sizes[k])
                if cancel is not None and cancel():
                    raise Cancelled("cancelled")
        except BaseException:
            # a running actor task cannot be cancelled by force: stop its actor and start a fresh one
            for _, a in running.values():
                self._replace(a)
            raise
        for queued in self._after_map:  # the actors are idle now: the caller has a serial step to do
            self.prepare(*queued)
        self._after_map = []
        return results

    def prepare_after_map(self, setup: WorkerSetup, warm: Task | None = None) -> None:
        """`prepare(setup, warm)` as soon as the next map ends."""
        self._after_map.append((setup, warm))

    def prepare(self, setup: WorkerSetup, warm: Task | None = None) -> None:
        """Start building `setup`'s state on every actor now, then `warm(state, None, report)` (queued before
        the chunks; not waited for)."""
        for a in self._actors:
            a.run.remote(warm or _prepared, setup, None)

    def _replace(self, actor: Any) -> None:
        try:
            self._ray.kill(actor)
        except Exception:
            pass
        self._actors[self._actors.index(actor)] = self._new_actor()

    def close(self) -> None:
        ray = self._ray
        for a in getattr(self, "_actors", []):
            try:
                ray.kill(a)
            except Exception:
                pass
        self._actors = []
        if self._started and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
