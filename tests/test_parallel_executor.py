"""The chunk executors: order, one setup per worker, progress, failures that name their chunk."""

from __future__ import annotations

import pytest

from dfm.errors import Cancelled
from dfm.parallel import ChunkFailed, LocalExecutor, ParallelOptions, SerialExecutor, make_executor, plan_chunks
from dfm.parallel.testing import CountingSetup, dying_chunk, failing_chunk, square_chunk, warm_counter, warmed_chunk


@pytest.mark.parametrize("n,workers,warmup", [(1, 2, 5), (47, 2, 5), (100, 2, 10), (1000, 4, 12), (7, 3, 0)])
def test_chunks_cover_every_frame_once_in_order(n, workers, warmup):
    chunks = plan_chunks(n, workers, warmup=warmup, min_frames=10)
    frames = [i for c in chunks for i in range(c.start, c.stop)]
    assert frames == list(range(n))
    assert chunks[0].warmup == 0 and all(c.first >= 0 for c in chunks)
    assert all(c.warmup == min(warmup, c.start) for c in chunks)
    assert all(c.n_frames >= min(10, n) for c in chunks)
    assert len(chunks) <= 2 * workers
    runs = [c.stop - c.first for c in chunks]  # frames each chunk decodes and tracks, its warm-up included
    assert max(runs) - min(runs) <= 1 or min(runs) - warmup < 10


def test_options_default_to_the_cores_and_reject_zero():
    assert ParallelOptions().n_workers >= 1
    assert ParallelOptions(workers=1).serial and not ParallelOptions(workers=1, ray=True).serial
    with pytest.raises(ValueError):
        ParallelOptions(workers=0)
    assert ParallelOptions(workers=2).chunks(150, 150) and not ParallelOptions(workers=2).chunks(149, 150)
    assert not ParallelOptions(workers=1).chunks(10_000, 150) and ParallelOptions(workers=1, ray=True).chunks(150, 150)


def _expected(chunks):
    return [[i * i for i in range(c.start, c.stop)] for c in chunks]


def test_serial_executor_runs_in_order_with_one_setup():
    chunks = plan_chunks(100, 2, min_frames=10)
    seen = []
    with SerialExecutor() as ex:
        out = ex.map(square_chunk, chunks, CountingSetup(), on_progress=seen.append)
    assert [r[1] for r in out] == _expected(chunks)
    assert [r[3] for r in out] == list(range(1, len(chunks) + 1))  # one state, reused
    assert sum(seen) == 100


def test_serial_executor_names_the_failed_chunk():
    chunks = plan_chunks(100, 2, min_frames=10)
    with SerialExecutor() as ex, pytest.raises(ChunkFailed, match=r"chunk 1 \(frames 25-49\) failed: ValueError: bad frame 7"):
        ex.map(failing_chunk, chunks, CountingSetup())


def test_serial_executor_cancels_between_chunks():
    with SerialExecutor() as ex, pytest.raises(Cancelled):
        ex.map(square_chunk, plan_chunks(100, 2, min_frames=10), CountingSetup(), cancel=lambda: True)


def test_local_pool_same_result_models_loaded_once_per_worker_and_threads_limited():
    chunks = plan_chunks(400, 2, min_frames=10, per_worker=4)
    seen = []
    with LocalExecutor(2) as ex:
        out = ex.map(square_chunk, chunks, CountingSetup(), on_progress=seen.append)
        again = ex.map(square_chunk, chunks, CountingSetup())  # the pool and its states live on
    assert [r[1] for r in out] == _expected(chunks)
    pids = {r[2] for r in out + again}
    assert 1 <= len(pids) <= 2
    runs = {}
    for r in out + again:
        runs.setdefault(r[2], []).append(r[3])
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in runs.values())  # a counter per worker: setup ran once
    assert sum(len(v) for v in runs.values()) == 2 * len(chunks)
    assert sum(seen) == 400
    from dfm.parallel import machine_cores

    assert {r[4] for r in out} == {str(max(1, machine_cores() // 2))}


def test_local_pool_prepare_warms_idle_workers_before_the_next_map():
    """prepare(setup, warm=...) builds the state and runs the warm-up in the idle workers; the next map
    sees it done (each worker takes one of the queued warm-ups while idle)."""
    import time

    with LocalExecutor(2) as ex:
        ex.map(warmed_chunk, plan_chunks(4, 2, min_frames=1, per_worker=1), CountingSetup())  # workers up, state built
        ex.prepare(CountingSetup(), warm=warm_counter)
        time.sleep(1.5)
        seen = ex.map(warmed_chunk, plan_chunks(40, 2, min_frames=1, per_worker=10), CountingSetup())
    assert {n for _, n in seen} == {1} and len({pid for pid, _ in seen}) == 2  # each worker warmed once


def test_local_pool_prepare_after_map_waits_for_the_next_map_to_end():
    """prepare_after_map queues the warm-up behind the next map's chunks (they see no warm-up): the workers
    run it as they finish them, so the map after sees it, once."""
    import time

    with LocalExecutor(2) as ex:
        ex.prepare_after_map(CountingSetup(), warm=warm_counter)
        first = ex.map(warmed_chunk, plan_chunks(4, 2, min_frames=1, per_worker=1), CountingSetup())
        time.sleep(1.5)
        second = ex.map(warmed_chunk, plan_chunks(40, 2, min_frames=1, per_worker=10), CountingSetup())
        third = ex.map(warmed_chunk, plan_chunks(40, 2, min_frames=1, per_worker=10), CountingSetup())
    assert {n for _, n in first} == {0}
    assert {n for _, n in second} == {1} and {n for _, n in third} == {1}  # once, not after every map


def test_local_pool_failure_names_the_chunk():
    with LocalExecutor(2) as ex, pytest.raises(ChunkFailed, match=r"chunk 1 .* ValueError: bad frame 7"):
        ex.map(failing_chunk, plan_chunks(100, 2, min_frames=10), CountingSetup())


def test_local_pool_killed_worker_fails_the_job_with_a_clear_message():
    with LocalExecutor(2) as ex, pytest.raises(ChunkFailed, match="worker process died"):
        ex.map(dying_chunk, plan_chunks(100, 2, min_frames=10), CountingSetup())


def test_make_executor_serial_for_one_worker():
    assert isinstance(make_executor(ParallelOptions(workers=1)), SerialExecutor)


@pytest.fixture(scope="module")
def ray_executor():
    pytest.importorskip("ray", reason="Ray is the optional extra dfm[ray] (the Makefile installs it for the tests)")
    from dfm.parallel.ray_backend import RayExecutor

    ex = RayExecutor(2)
    yield ex
    ex.close()


def test_ray_executor_same_result_one_setup_per_actor(ray_executor):
    chunks = plan_chunks(200, 2, min_frames=10, per_worker=3)
    seen = []
    out = ray_executor.map(square_chunk, chunks, CountingSetup(), on_progress=seen.append,
                           sizes=[c.n_frames for c in chunks])
    assert [r[1] for r in out] == _expected(chunks)
    assert len({r[2] for r in out}) <= 2 and sum(seen) == 200
    assert {r[4] for r in out} == {"1"}


def test_ray_executor_failure_names_the_chunk(ray_executor):
    with pytest.raises(ChunkFailed, match=r"chunk 1 .*bad frame 7"):
        ray_executor.map(failing_chunk, plan_chunks(100, 2, min_frames=10), CountingSetup())


def test_ray_executor_killed_actor_fails_the_job_and_the_next_map_runs(ray_executor):
    with pytest.raises(ChunkFailed, match="Ray worker died"):
        ray_executor.map(dying_chunk, plan_chunks(100, 2, min_frames=10), CountingSetup())
    out = ray_executor.map(square_chunk, plan_chunks(40, 2, min_frames=10), CountingSetup())
    assert [r[1] for r in out] == _expected(plan_chunks(40, 2, min_frames=10))


def test_a_plain_script_without_a_main_guard_runs_once(tmp_path):
    """Workers are spawned without re-running the user's script (no `if __name__ == '__main__'` needed)."""
    import subprocess
    import sys

    script = tmp_path / "job.py"
    script.write_text("from dfm.parallel import LocalExecutor, plan_chunks\n"
                      "from dfm.parallel.testing import CountingSetup, square_chunk\n"
                      "print('script ran', flush=True)\n"
                      "with LocalExecutor(2) as ex:\n"
                      "    out = ex.map(square_chunk, plan_chunks(40, 2, min_frames=10), CountingSetup())\n"
                      "print('chunks', len(out), flush=True)\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("script ran") == 1 and "chunks 4" in r.stdout  # 2 chunks a worker


def test_local_pool_workers_start_with_the_analysis_modules_and_the_parents_environment(monkeypatch):
    """Workers come from the fork server (Linux/macOS) with the analysis modules imported once there, and
    still see this process's environment as it is when the pool starts (the server was started by an
    earlier pool, with an older environment) and their own BLAS thread count."""
    import multiprocessing as mp
    import os

    from dfm.parallel import machine_cores
    from dfm.parallel.executor import worker_context
    from dfm.parallel.testing import ModulesSetup, worker_facts

    if "forkserver" not in mp.get_all_start_methods():
        pytest.skip("no fork server on this platform: workers are spawned")
    assert worker_context().get_start_method() == "forkserver"
    with LocalExecutor(2) as ex:  # starts the fork server (if no earlier test did)
        ex.map(square_chunk, plan_chunks(20, 2, min_frames=10), CountingSetup())
    monkeypatch.setenv("DFM_TEST_WORKER_MARK", "set after the fork server started")
    with LocalExecutor(2) as ex:
        facts = ex.map(worker_facts, plan_chunks(20, 2, min_frames=10), ModulesSetup())
    for f in facts:
        assert f["mark"] == "set after the fork server started"
        assert f["parent"] != os.getpid()  # forked by the server, not by this process
        assert all(f["preloaded"].values()), f["preloaded"]
        assert all(n == max(1, machine_cores() // 2) for n in f["blas_threads"]), f["blas_threads"]


def test_local_pool_spawns_its_workers_where_the_fork_server_cannot_start(monkeypatch):
    """A machine where the fork server fails to start (e.g. no writable temporary folder for its socket)
    still gets a pool: its workers are spawned, children of this process."""
    import multiprocessing.forkserver as forkserver
    import os

    from dfm.parallel.testing import parent_chunk

    def refuse(fds):
        raise OSError("no temporary folder for the fork server's socket")

    monkeypatch.setattr(forkserver, "connect_to_new_process", refuse)  # what a forkserver Popen calls
    with LocalExecutor(2) as ex:
        out = ex.map(parent_chunk, plan_chunks(20, 2, min_frames=10), CountingSetup())
    assert [r[1] for r in out] == _expected(plan_chunks(20, 2, min_frames=10))
    assert all(r[2] == os.getpid() for r in out)
