"""Run one task over many chunks: in this process, on a local process pool, or on Ray.

    with make_executor(ParallelOptions(workers=2)) as ex:
        results = ex.map(track_chunk, chunks, setup=AnalysisSetup(...), on_progress=bar.update)

`task(state, item, report)` is a module-level function (it is pickled by name); `state` is what
`setup()` built in that worker — models loaded once per process or actor, not per chunk; `report(n)`
counts finished frames for the progress bar. Results come back in the order of `items`. A chunk that
raises, or a worker that dies, fails the whole map with ChunkFailed naming the chunk.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Hashable, Iterator, Protocol, Sequence

from dfm.errors import Cancelled, DfmError
from dfm.parallel.options import ParallelOptions, machine_cores

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS")
POLL_S = 0.1


class ChunkFailed(DfmError):
    """A chunk of a parallel job failed; the job fails with it."""


class WorkerSetup(Protocol):
    """Picklable; builds a worker's state once. Equal keys share the state within a worker."""

    key: Hashable

    def __call__(self) -> Any: ...


Task = Callable[[Any, Any, Callable[[int], None]], Any]


def describe(item: Any, index: int) -> str:
    return item.describe() if hasattr(item, "describe") else f"chunk {index}"


def limit_threads(threads: int) -> None:
    """This process's libraries use `threads` threads: the environment for those not loaded yet, and
    OpenCV, a BLAS already loaded (a worker forked from the fork server, a Ray actor) and torch told so."""
    for name in THREAD_ENV:
        os.environ[name] = str(threads)
    with contextlib.suppress(Exception):
        import cv2

        cv2.setNumThreads(threads)
    import sys

    if "numpy" in sys.modules:
        with contextlib.suppress(Exception):
            from threadpoolctl import threadpool_limits

            threadpool_limits(threads, user_api="blas")

    if "torch" in sys.modules:
        with contextlib.suppress(Exception):
            sys.modules["torch"].set_num_threads(threads)


def blas_beside_workers(options: ParallelOptions):
    """A context in which this process's BLAS uses one thread when `options` runs workers: they use the
    cores, and on this process's small matrices between their maps (the identity solve, the decoder, the
    occlusion fit) a second BLAS thread mostly spins (the Pexels pool: the same wall time, 35% more CPU)."""
    if options.serial:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def run_item(state: Any, item: Any, report: Callable[[int], None]) -> Any:
    """The task of a map whose items are different kinds of work: each item runs itself, `item(state, report)`."""
    return item(state, report)


class SerialExecutor:
    """In this process, one chunk after another (tests, and workers=1 where a caller still wants chunks)."""

    n_workers = 1
    threads_per_worker = None  # this process: its libraries choose
    reports_frames = True

    def __init__(self) -> None:
        self._states: dict[Hashable, Any] = {}

    def map(self, task: Task, items: Sequence[Any], setup: WorkerSetup, on_progress: Callable[[int], None] | None = None,
            cancel: Callable[[], bool] | None = None, sizes: Sequence[int] | None = None) -> list[Any]:
        if setup.key not in self._states:
            self._states[setup.key] = setup()
        state, out = self._states[setup.key], []
        for k, item in enumerate(items):
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            try:
                out.append(task(state, item, on_progress or _ignore))
            except (Cancelled, KeyboardInterrupt):
                raise
            except Exception as e:
                raise ChunkFailed(f"{describe(item, k)} failed: {_why(e)}") from e
        return out

    def prepare(self, setup: WorkerSetup, warm: Task | None = None) -> None:
        """Nothing to start ahead: the state is built by the first map (and `warm` is not needed: this
        process warms up as it works)."""

    def prepare_after_map(self, setup: WorkerSetup, warm: Task | None = None) -> None:
        """Nothing to do ahead (see prepare)."""

    def close(self) -> None:
        self._states.clear()

    def __enter__(self) -> "SerialExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --- local process pool -------------------------------------------------------------------------------

_WORKER_STATES: dict[Hashable, Any] = {}  # per worker process: the states its setups built
_WORKER_PROGRESS: Any = None  # per worker process: the queue its report() writes to


def _init_worker(threads: int, progress: Any, environ: dict[str, str] | None = None) -> None:
    """A worker's start. environ: the parent's environment when the pool started (a worker forked from
    the fork server would otherwise keep the server's, from the first pool of this process)."""
    global _WORKER_PROGRESS
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    limit_threads(threads)
    _WORKER_PROGRESS = progress


def _run_in_worker(task: Task, setup: WorkerSetup, item: Any) -> Any:
    if setup.key not in _WORKER_STATES:
        _WORKER_STATES[setup.key] = setup()
    progress = _WORKER_PROGRESS
    return task(_WORKER_STATES[setup.key], item, progress.put if progress is not None else _ignore)


def _prepared(state: Any, item: Any, report: Callable[[int], None]) -> None:
    return None


def _ready() -> int:
    return os.getpid()


WORKER_PRELOAD = "dfm.parallel.worker_preload"


def worker_context() -> Any:
    """How a local pool starts its workers: forked from multiprocessing's fork server where the platform
    has one (Linux, macOS), which imports `WORKER_PRELOAD` once, so the workers start with those modules
    loaded (the pooled 20-s analysis: 0.3 CPU-s and ~0.1 s of wall less; the first pool's start waits
    ~0.2 s for the server's imports); else spawned. Never forked from this process: it may run
    MediaPipe's, OpenCV's or a web server's threads, which a forked child cannot inherit safely. The fork
    server is one clean process per parent, started by its first pool."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([WORKER_PRELOAD])
    return ctx


class LocalExecutor:
    """A pool of `n_workers` worker processes kept for the executor's life (so a second map — analysis,
    then rendering — finds its models loaded), each limited to its share of the cores."""

    reports_frames = True

    def __init__(self, n_workers: int, threads_per_worker: int | None = None) -> None:
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker or max(1, machine_cores() // n_workers)
        self._pool: ProcessPoolExecutor | None = None
        self._after_map: list[tuple[WorkerSetup, Task | None]] = []
        self._start()

    def _start(self) -> None:
        """Start the workers (again after a failed or cancelled map killed them: the next job finds a pool)."""
        ctx = worker_context()
        try:
            self._launch(ctx)
        except OSError:
            if ctx.get_start_method() != "forkserver":
                raise
            # no fork server here (it needs a Unix socket in a writable temporary folder): spawn them
            self.close(kill=True)
            self._launch(mp.get_context("spawn"))

    def _launch(self, ctx: Any) -> None:
        threads = self.threads_per_worker
        self._progress = ctx.SimpleQueue()  # a fresh one: a killed worker may have died holding the old one's lock
        saved = {k: os.environ.get(k) for k in THREAD_ENV}
        for k in THREAD_ENV:  # the children (and a fork server started now) import numpy with these set
            os.environ[k] = str(threads)
        try:
            with _main_module_hidden():
                self._pool = ProcessPoolExecutor(self.n_workers, mp_context=ctx, initializer=_init_worker,
                                                 initargs=(threads, self._progress, dict(os.environ)))
                # start every worker now, while the environment says their thread counts: each submit to
                # an idle pool launches one process (not waited for: they import while this one works on)
                for _ in range(self.n_workers):
                    self._pool.submit(_ready)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def map(self, task: Task, items: Sequence[Any], setup: WorkerSetup, on_progress: Callable[[int], None] | None = None,
            cancel: Callable[[], bool] | None = None, sizes: Sequence[int] | None = None) -> list[Any]:
        if self._pool is None:
            self._start()
        try:
            futures = [self._pool.submit(_run_in_worker, task, setup, item) for item in items]
        except BrokenProcessPool:  # a worker died between jobs (killed, out of memory): start new ones
            self.close(kill=True)
            self._start()
            futures = [self._pool.submit(_run_in_worker, task, setup, item) for item in items]
        for queued in self._after_map:  # behind the chunks: the workers take them as they finish theirs
            self.prepare(*queued)
        self._after_map = []
        index = {f: k for k, f in enumerate(futures)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
                self._drain(on_progress)
                for f in done:
                    self._check(f, items[index[f]], index[f])
                if cancel is not None and cancel():
                    raise Cancelled("cancelled")
            self._drain(on_progress)
            results = [f.result() for f in futures]
        except BaseException:
            for f in pending:
                f.cancel()
            self.close(kill=True)  # running chunks stop now, not at their end
            raise
        return results

    def prepare(self, setup: WorkerSetup, warm: Task | None = None) -> None:
        """Start building `setup`'s state (loading models) in every worker now, while the caller does other
        work, then run `warm(state, None, report)` there (e.g. loading compiled kernels a later map
        needs); not waited for (a failure shows again when a map builds it)."""
        if self._pool is None:
            self._start()
        for _ in range(self.n_workers):  # each takes seconds: the idle workers take one each
            self._pool.submit(_run_in_worker, warm or _prepared, setup, None)

    def prepare_after_map(self, setup: WorkerSetup, warm: Task | None = None) -> None:
        """`prepare(setup, warm)` queued behind the next map's chunks: the workers run it as they finish
        them, while the caller works on that map's result (e.g. after an analysis's tracking chunks, while
        the subject is chosen). Submitted when the map ended it would wait ~0.9 s for the pool's feeder
        thread, which this process's busy main thread starves of the GIL then."""
        self._after_map.append((setup, warm))

    def _drain(self, on_progress: Callable[[int], None] | None) -> None:
        while not self._progress.empty():
            n = self._progress.get()
            if on_progress is not None:
                on_progress(n)

    @staticmethod
    def _check(f: Future, item: Any, k: int) -> None:
        e = f.exception()
        if e is None:
            return
        if isinstance(e, BrokenProcessPool):
            raise ChunkFailed(f"{describe(item, k)} failed: a worker process died (killed, or out of memory)") from e
        if isinstance(e, (Cancelled, ChunkFailed)):
            raise e
        raise ChunkFailed(f"{describe(item, k)} failed: {_why(e)}") from e

    def close(self, kill: bool = False) -> None:
        """Stop the workers. Between maps they hold nothing but loaded models, so they are terminated rather
        than left to unwind MediaPipe and torch at exit (seconds on a loaded machine); kill: SIGKILL, mid-map."""
        pool, self._pool = getattr(self, "_pool", None), None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for p in processes:
            with contextlib.suppress(Exception):
                p.kill() if kill else p.terminate()
        pool.shutdown(wait=not kill, cancel_futures=True)
        for p in processes:
            with contextlib.suppress(Exception):
                p.join(timeout=5)

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Workers start without re-running the user's script: multiprocessing would import `__main__` in each
    child, spawned or forked from the fork server (a plain script calling Session().edit(...) without an
    `if __name__ == "__main__"` guard would then run again in every worker). The tasks and setups are
    dfm's own module-level objects."""
    import sys

    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if main is not None and hasattr(main, k)}
    try:
        for k in saved:
            if k == "__spec__":
                main.__spec__ = None
            else:
                delattr(main, k)
        yield
    finally:
        for k, v in saved.items():
            setattr(main, k, v)


def _ignore(n: int) -> None:
    pass


def _why(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def make_executor(options: ParallelOptions):
    """The executor `options` asks for (the caller closes it)."""
    if options.ray:
        from dfm.parallel.ray_backend import RayExecutor

        return RayExecutor(options.n_workers if options.workers is not None else None, options.address)
    if options.n_workers == 1:
        return SerialExecutor()
    return LocalExecutor(options.n_workers)
