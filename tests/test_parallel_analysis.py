"""Chunked analysis (dfm.pipelines.analyze_chunks) equals the serial one, also with two people and a cut
at a chunk boundary; failures and cancels leave no cache; the --workers / --ray flags reach the Session.

Tolerance: the chunked result is compared with the serial one to 1e-3 px for landmarks and 1e-4 for
pose, expression and valence/arousal (measured: bit-identical on the MEAD and Pexels clips: MediaPipe's
video mode keeps no state between frames that changes its output, and the subject is chosen in the parent
over the joined frames); valid flags, timestamps and the subject report must be identical.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from dfm.errors import Cancelled
from dfm.parallel import ChunkFailed, LocalExecutor, ParallelOptions
from dfm.pipelines.analyze_chunks import ChunkSettings
from dfm.pipelines.base import Hooks

CLIP = "mead_w009_happy_01.mp4"  # 108 frames, 256x256, one face
# 4 chunks of 27 frames on 2 workers, the fit's per-frame half on them too (a video this short fits in the
# parent by default: test_a_short_chunked_analysis_fits_in_this_process)
SMALL = ChunkSettings(min_frames=20, per_worker=2, serial_below=0, fit_chunked_from=0)


# ---------------------------------------------------------------- unit: flags and the Session's executor

def test_parallel_flags_on_every_command_that_analyses(monkeypatch):
    from dfm.app.cli.main import build_parser
    from dfm.app.cli.parallel_args import parallel_options

    monkeypatch.delenv("DFM_RAY_ADDRESS", raising=False)
    p = build_parser()
    for argv in (["analyze", "v.mp4"], ["edit", "v.mp4", "-o", "o.mp4"], ["evaluate", "v.mp4", "-o", "d"],
                 ["person", "dataset", "alice"], ["person", "add", "alice", "v.mp4"], ["person", "train", "alice"],
                 ["inspect", "v.mp4", "-o", "d"], ["preview", "v.mp4", "--at", "1", "-o", "f.png"],
                 ["plan", "v.mp4", "-o", "p.npz"], ["renderer", "train", "v.mp4"], ["gui"]):
        assert parallel_options(p.parse_args(argv)) == ParallelOptions()
        assert parallel_options(p.parse_args([*argv, "--workers", "3"])) == ParallelOptions(workers=3)
        opts = parallel_options(p.parse_args([*argv, "--ray"]))
        assert opts.ray and opts.address is None
        opts = parallel_options(p.parse_args([*argv, "--workers", "2", "--ray", "ray://head:10001"]))
        assert (opts.ray, opts.address, opts.n_workers) == (True, "ray://head:10001", 2)
    monkeypatch.setenv("DFM_RAY_ADDRESS", "auto")
    assert parallel_options(p.parse_args(["analyze", "v.mp4", "--ray"])).address == "auto"
    for bad in ("0", "two"):
        with pytest.raises(SystemExit) as e:
            p.parse_args(["analyze", "v.mp4", "--workers", bad])
        assert e.value.code == 2


def test_cli_session_takes_the_flags(tmp_path):
    from dfm.app.cli.main import _session, build_parser

    args = build_parser().parse_args(["--workspace", str(tmp_path), "analyze", "v.mp4", "--workers", "1"])
    s = _session(args)
    assert s.parallel == ParallelOptions(workers=1) and _session(args) is s  # one per command: main() closes it


def test_gui_settings_give_the_job_session_its_workers(tmp_path):
    pytest.importorskip("fastapi")
    from dfm.app.web.config import Settings
    from dfm.app.web.main import build_state

    settings = Settings(workspace=tmp_path, chunk_workers=1, warm_preview=False)
    assert settings.parallel == ParallelOptions(workers=1)
    assert Settings(workspace=tmp_path, ray=True, ray_address="auto").parallel.address == "auto"
    state = build_state(settings)
    try:
        assert state.session.parallel == ParallelOptions(workers=1)
    finally:
        state.close()


def test_session_copies_share_one_executor_and_close_stops_it(tmp_path):
    from dfm.pipelines.session import Session

    s = Session(workspace=tmp_path, progress=False, parallel=ParallelOptions(workers=2))
    other = s.with_subject("leftmost")
    ex = other.executor()
    assert isinstance(ex, LocalExecutor) and s.executor() is ex  # a subject's copy does not start its own pool
    s.close()
    assert ex._pool is None and s.executor() is not ex
    s.close()


# ---------------------------------------------------------------- integration: chunked == serial

@pytest.fixture(scope="module")
def clip(videos_dir):
    return videos_dir / CLIP


@pytest.fixture(scope="module")
def serial_track(dfm_env, clip, tmp_path_factory):
    """The serial analysis; a video under ChunkSettings.serial_below frames never asks for the executor."""
    from dfm.pipelines.analyze import analyze_video

    def no_pool():
        raise AssertionError("a short video started the pool")

    return analyze_video(clip, tmp_path_factory.mktemp("serial"), progress=False, executor=no_pool)


@pytest.fixture(scope="module")
def local_pool():
    with LocalExecutor(2) as ex:
        yield ex


def _assert_same_analysis(a, b):
    assert np.array_equal(a.valid, b.valid)
    assert np.array_equal(a.timestamps, b.timestamps)
    v = a.valid
    np.testing.assert_allclose(b.landmarks[v], a.landmarks[v], atol=1e-3)
    for name in ("rotation", "translation", "scale", "expression", "blendshapes"):
        np.testing.assert_allclose(getattr(b, name)[v], getattr(a, name)[v], atol=1e-4, err_msg=name)
    np.testing.assert_allclose(b.identity, a.identity, atol=1e-4)
    ok = v & np.isfinite(a.valence)
    assert np.array_equal(np.isfinite(a.valence), np.isfinite(b.valence))
    np.testing.assert_allclose(b.valence[ok], a.valence[ok], atol=1e-4)
    np.testing.assert_allclose(b.arousal[ok], a.arousal[ok], atol=1e-4)
    assert b.meta["subject"] == a.meta["subject"]
    assert b.meta["affect_classes"] == a.meta["affect_classes"]


@pytest.mark.integration
def test_chunked_analysis_on_the_local_pool_equals_serial(serial_track, clip, local_pool, tmp_path):
    from dfm.pipelines.analyze import AnalysisOptions, analyze_video, track_cache_path

    frames = []
    track = analyze_video(clip, tmp_path, progress=False, executor=lambda: local_pool, chunking=SMALL,
                          hooks=Hooks(progress=lambda e: frames.append(e) if e.stage == "analyze" else None))
    assert track.meta["parallel"]["chunks"] >= 3 and track.meta["parallel"]["workers"] == 2
    _assert_same_analysis(serial_track, track)
    assert frames[-1].done == frames[-1].total == track.n_frames  # the bar counted the workers' frames
    # same cache entry as the serial run: the worker count is not part of the key
    assert track.meta["cache"] == str(track_cache_path(clip, tmp_path, AnalysisOptions(), None))
    assert track_cache_path(clip, tmp_path, AnalysisOptions(), None).name == \
        os.path.basename(serial_track.meta["cache"])


@pytest.mark.integration
def test_a_short_chunked_analysis_fits_in_this_process(serial_track, clip, local_pool, tmp_path, monkeypatch):
    import dfm.pipelines.analyze as analyze

    calls = []
    monkeypatch.setattr(analyze, "fit_chunked", lambda *a, **k: calls.append(1))
    track = analyze.analyze_video(clip, tmp_path, progress=False, executor=lambda: local_pool,
                                  chunking=ChunkSettings(min_frames=20, per_worker=2, serial_below=0))
    assert track.meta["parallel"]["chunks"] >= 3 and calls == []  # tracked on the workers, fitted here
    _assert_same_analysis(serial_track, track)


@pytest.fixture(scope="module")
def two_people(tmp_path_factory, videos_dir):
    from subject_clips import cut, side_by_side

    root = tmp_path_factory.mktemp("two")
    left, right = videos_dir / "grid_blonde_woman_01.mp4", videos_dir / "grid_glasses_man_01.mp4"
    return {"two": side_by_side(left, right, root / "two.mp4", 44, hide_left=(15, 28)),  # the left one hidden
            "cut": cut(left, right, root / "cut.mp4", 35, 25)}  # frame 35: the cut, and a chunk boundary (4 chunks)


@pytest.mark.integration
@pytest.mark.parametrize("clip_name,subject", [("two", "leftmost"), ("two", "f40:170,190"), ("cut", "largest")])
def test_chunked_subject_choice_has_no_seam(two_people, local_pool, tmp_path, clip_name, subject):
    from dfm.face.subject import parse_subject
    from dfm.pipelines.analyze import AnalysisOptions, analyze_video

    clip = two_people[clip_name]
    options = AnalysisOptions(affect="none", subject=parse_subject(subject))
    serial = analyze_video(clip, tmp_path / "serial", options=options, progress=False)
    chunked = analyze_video(clip, tmp_path / "chunked", options=options, progress=False, executor=lambda: local_pool,
                            chunking=ChunkSettings(min_frames=10, per_worker=2, serial_below=0))
    assert chunked.meta["parallel"]["chunks"] == 4
    assert 0 < serial.valid.sum() < serial.n_frames  # the subject is absent somewhere: there is a choice to get wrong
    np.testing.assert_array_equal(chunked.valid, serial.valid)
    np.testing.assert_allclose(chunked.landmarks[serial.valid], serial.landmarks[serial.valid], atol=1e-3)
    assert chunked.meta["subject"] == serial.meta["subject"]


@pytest.mark.integration
@pytest.mark.parametrize("subject", ["leftmost", "rightmost"])
def test_chunked_affect_is_the_subjects_own_with_two_faces(two_people, local_pool, tmp_path, subject):
    """Each face of a frame gets its own crop's affect in the chunks (a frame's faces once all shared the
    last face's slot, so the subject's affect was lost whenever MediaPipe listed it first)."""
    from dfm.face.subject import parse_subject
    from dfm.pipelines.analyze import AnalysisOptions, analyze_video

    clip = two_people["two"]
    options = AnalysisOptions(subject=parse_subject(subject))
    serial = analyze_video(clip, tmp_path / "serial", options=options, progress=False)
    chunked = analyze_video(clip, tmp_path / "chunked", options=options, progress=False, executor=lambda: local_pool,
                            chunking=ChunkSettings(min_frames=10, per_worker=2, serial_below=0))
    np.testing.assert_array_equal(chunked.valid, serial.valid)
    assert np.isfinite(serial.valence[serial.valid]).all()
    np.testing.assert_array_equal(np.isfinite(chunked.valence), np.isfinite(serial.valence))
    np.testing.assert_allclose(chunked.valence[serial.valid], serial.valence[serial.valid], atol=1e-4)
    np.testing.assert_allclose(chunked.arousal[serial.valid], serial.arousal[serial.valid], atol=1e-4)


@pytest.mark.integration
def test_killed_worker_fails_the_analysis_with_one_line_and_no_cache(clip, local_pool, tmp_path):
    from dfm.pipelines.analyze import AnalysisOptions, analyze_video, track_cache_path

    killed = []

    def kill_a_worker(event):  # a worker of this pool (other tests' pools may be alive), once
        if event.stage == "analyze" and event.done > 0 and not killed:
            pid = next(iter(local_pool._pool._processes))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    with pytest.raises(ChunkFailed) as e:
        analyze_video(clip, tmp_path, progress=False, executor=lambda: local_pool, chunking=SMALL,
                      hooks=Hooks(progress=kill_a_worker))
    assert killed
    message = str(e.value)
    assert "\n" not in message and "worker process died" in message and message.startswith("chunk ")
    assert not track_cache_path(clip, tmp_path, AnalysisOptions(), None).exists()
    assert not list((tmp_path / "tracks").glob("*.npz"))


@pytest.mark.integration
def test_cancel_stops_the_chunked_analysis_and_the_pool_serves_the_next_job(clip, local_pool, tmp_path):
    from dfm.pipelines.analyze import analyze_video

    seen = []

    def cancel():
        return len(seen) > 0

    with pytest.raises(Cancelled):
        analyze_video(clip, tmp_path / "a", progress=False, executor=lambda: local_pool, chunking=SMALL,
                      hooks=Hooks(progress=lambda e: seen.append(e) if e.done else None, cancel=cancel))
    assert not list((tmp_path / "a" / "tracks").glob("*.npz"))
    # the cancelled map stopped its workers; the executor starts new ones for the next job
    from dfm.parallel import plan_chunks
    from dfm.parallel.testing import CountingSetup, square_chunk

    out = local_pool.map(square_chunk, plan_chunks(40, 2, min_frames=10), CountingSetup())
    assert [r[1] for r in out] == [[i * i for i in range(c.start, c.stop)] for c in plan_chunks(40, 2, min_frames=10)]


@pytest.mark.integration
def test_chunked_analysis_on_a_local_ray_instance_equals_serial(serial_track, clip, tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional extra dfm[ray] (the Makefile installs it for the tests)")
    from dfm.parallel.ray_backend import RayExecutor
    from dfm.pipelines.analyze import analyze_video

    with RayExecutor(2) as ex:  # ray.init() on this machine, loopback only
        seen = []
        track = analyze_video(clip, tmp_path, progress=False, executor=lambda: ex, chunking=SMALL,
                              hooks=Hooks(progress=lambda e: seen.append(e.done) if e.stage == "analyze" else None))
    assert track.meta["parallel"]["chunks"] >= 3
    assert seen[-1] == track.n_frames
    _assert_same_analysis(serial_track, track)
