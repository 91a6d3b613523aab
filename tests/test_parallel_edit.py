"""A chunked edit (render + encode per chunk, segments joined, audio muxed once) equals the serial edit:
frame for frame, timestamps, audio packets, disclosure and credentials; a killed worker fails the job
cleanly; the same edit on a real local Ray instance.

The clip is GRID's 3-s talker with speech audio (75 frames, 25 fps, AAC), cut into 4 chunks of 15-20
frames (the default policy keeps videos this short serial; the tests lower its thresholds). The edit
covers frames 20-59: two boundaries sit at its start and end (the chunks start fresh) and one inside it,
where the chunk replays the edit's earlier frames (WarpRenderer.advance) to continue the serial state.
"""

from __future__ import annotations

import dataclasses
import os
import signal

import av
import numpy as np
import pytest

from dfm.edits import parse_edit_arg
from dfm.errors import DfmError
from dfm.io.video import frame_timestamps, iter_frames, probe_video
from dfm.parallel import ParallelOptions
from dfm.pipelines import pool_chunks, render_chunks
from dfm.pipelines.base import Hooks
from dfm.pipelines.edit import EditOptions, sidecar_path

pytestmark = pytest.mark.integration

EDITS = [parse_edit_arg("happy:high:0.8-2.4")]
# Edited frames: the chunked render continues the serial renderer's state exactly, so they come out
# identical (measured: equal bytes); the bound allows for a library's rounding differing between processes.
EDITED_MIN_PSNR = 50.0
SIDE_BY_SIDE_MIN_PSNR = 40.0  # default-crf encodes of the same frames with keyframes at other places


@pytest.fixture(scope="module")
def grid_clip(videos_dir):
    return videos_dir / "grid_greyhair_man_01.mp4"


@pytest.fixture(scope="module")
def short_chunks():
    """Chunk even a 3-s clip, in chunks of at least 15 frames (and scan its appearance pool on the workers).
    The costs are fixed here (not the calibrated defaults), so the plan is the 4 chunks the module doc
    describes: boundaries at the edit's start and end, and one inside it (no cost for starting between
    keyframes: this clip's only keyframe is its first frame, which would make one chunk the cheapest)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(render_chunks, "DEFAULT_POLICY",
                   dataclasses.replace(render_chunks.DEFAULT_POLICY, min_video_frames=0, min_frames=15,
                                       edit_cost=3.5, replay_cost=0.8, seek_cost=0.0))
        mp.setattr(pool_chunks, "MIN_VIDEO_FRAMES", 0)
        yield


def _like(session, parallel):
    """A session sharing the test session's workspace, models and caches, with other parallel options."""
    return dataclasses.replace(session, parallel=parallel, _workers=None, _models=session.models)  # its own workers


@pytest.fixture(scope="module")
def serial_edit(session, grid_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "serial.mp4"
    s = _like(session, ParallelOptions(workers=1))
    result = s.edit(grid_clip, EDITS, out, EditOptions(lossless=True, side_by_side=out.with_name("sbs.mp4")))
    assert result.report["parallel"] is None
    return result


@pytest.fixture(scope="module")
def chunked_edit(short_chunks, session, grid_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("chunked") / "chunked.mp4"
    with _like(session, ParallelOptions(workers=2)) as s:
        return s.edit(grid_clip, EDITS, out, EditOptions(lossless=True, side_by_side=out.with_name("sbs.mp4")))


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _packets(path, kind):
    """(pts, bytes) of every packet of the first stream of `kind`, in file order."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0] if kind == "audio" else c.streams.video[0]
        return [(p.pts, bytes(p)) for p in c.demux(stream) if p.size]


def _images(path):
    return [np.asarray(f.image) for f in iter_frames(path)]


def _same_edit(result, reference, clip, edited_min_psnr=EDITED_MIN_PSNR):
    """The checks every chunked edit must pass against the serial one; returns the edited frames' PSNRs."""
    a, b = probe_video(reference.output), probe_video(result.output)
    assert (b.n_frames, b.width, b.height, b.rate, b.pix_fmt) == (a.n_frames, a.width, a.height, a.rate, a.pix_fmt)
    assert np.array_equal(frame_timestamps(result.output), frame_timestamps(reference.output))
    assert np.array_equal(frame_timestamps(result.output), frame_timestamps(clip))
    assert sorted(p for p, _ in _packets(result.output, "video")) == sorted(p for p, _ in _packets(reference.output, "video"))
    audio = _packets(result.output, "audio")
    assert audio == _packets(reference.output, "audio") == _packets(clip, "audio") and len(audio) > 50
    with av.open(str(result.output)) as c, av.open(str(reference.output)) as d:
        assert c.metadata == d.metadata and c.metadata["dfm_manipulated"] == "true"
    assert result.report["edited_frames"] == reference.report["edited_frames"] > 10
    psnrs = []
    inputs = _images(clip)
    for k, (x, y) in enumerate(zip(_images(result.output), _images(reference.output))):
        if np.array_equal(y, inputs[k]):  # a pass-through frame of the serial edit (lossless): bit-exact here too
            assert np.array_equal(x, y), f"pass-through frame {k} differs"
        else:
            psnrs.append(_psnr(x, y))
            assert psnrs[-1] >= edited_min_psnr, f"edited frame {k}: {psnrs[-1]:.1f} dB"
    assert len(psnrs) >= 10
    for key in ("edited", "fallback_frames", "source_frames", "switches", "frames"):
        assert result.report["render"][key] == reference.report["render"][key], key
    return psnrs


def test_chunked_edit_equals_the_serial_edit(chunked_edit, serial_edit, grid_clip):
    par = chunked_edit.report["parallel"]
    assert par["backend"] == "local" and par["workers"] == 2 and par["chunks"] >= 3
    assert par["warmup_frames_replayed"] > 0  # a boundary inside the edit: the seam was replayed
    _same_edit(chunked_edit, serial_edit, grid_clip)
    seconds = chunked_edit.report["seconds"]
    assert all(seconds[k] > 0 for k in ("render", "encode", "sign"))


def test_chunked_edit_keyframes_start_every_segment(chunked_edit):
    starts = [a for a, _ in chunked_edit.report["parallel"]["chunk_frames"]]
    with av.open(str(chunked_edit.output)) as c:
        packets = [p for p in c.demux(c.streams.video[0]) if p.size]
    shown = sorted(p.pts for p in packets)  # presentation order: frame i has the i-th smallest pts
    keys = {p.pts for p in packets if p.is_keyframe}
    assert {shown[i] for i in starts} <= keys


def test_chunked_edit_carries_credentials_and_a_sidecar(chunked_edit, grid_clip):
    from dfm.pipelines.verify import verify_video

    for path in (chunked_edit.output, chunked_edit.side_by_side):
        report = verify_video(path)
        assert report.status == "valid" and report.manipulated is True
    assert sidecar_path(chunked_edit.output).exists()


def test_chunked_side_by_side_equals_the_serial_one(chunked_edit, serial_edit, grid_clip):
    a, b = probe_video(serial_edit.side_by_side), probe_video(chunked_edit.side_by_side)
    assert (b.n_frames, b.width, b.height) == (a.n_frames, a.width, a.height) == (75, 720, 288)
    assert np.array_equal(frame_timestamps(chunked_edit.side_by_side), frame_timestamps(serial_edit.side_by_side))
    assert _packets(chunked_edit.side_by_side, "audio") == _packets(grid_clip, "audio")
    worst = min(_psnr(x, y) for x, y in zip(_images(chunked_edit.side_by_side), _images(serial_edit.side_by_side)))
    assert worst >= SIDE_BY_SIDE_MIN_PSNR


def test_a_killed_worker_fails_the_job_and_leaves_no_files(short_chunks, session, grid_clip, tmp_path):
    out = tmp_path / "killed.mp4"
    s = _like(session, ParallelOptions(workers=2))
    killed = []

    def kill_a_worker(event):
        if event.stage == "render" and event.done >= 5 and not killed:
            pid = next(iter(s.executor()._pool._processes))  # a worker of the pool rendering the chunks
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    try:
        with pytest.raises(DfmError, match=r"chunk \d+ \(frames \d+-\d+\) failed: a worker process died"):
            s.edit(grid_clip, EDITS, out, EditOptions(lossless=True, hooks=Hooks(progress=kill_a_worker)))
        assert killed
        assert list(tmp_path.iterdir()) == []  # no output, no sidecar, no temporaries beside them
        leftovers = [p for p in (s.workspace / "tmp").iterdir() if p.name.startswith(".render.")]
        assert leftovers == []  # the job folder with its segments is gone
        assert s.executor()._pool is None  # the broken pool was stopped: the session's next job starts a fresh one
    finally:
        s.close()


def test_pool_scanned_on_the_workers_started_in_the_callers_thread(
        short_chunks, session, serial_edit, grid_clip, tmp_path, monkeypatch):
    """With nothing in memory or cached, the edit's appearance pool is scanned on the workers (one map,
    waited for in a background thread) while this process fits the decoder, and the result is still the
    serial edit. The workers are started in the caller's thread even so: Ray ties its daemons to the
    thread that starts them (they die with it)."""
    import shutil
    import threading

    from dfm.pipelines.session import Session

    decoder_cache = Session._video_decoder_folder(session.analyze(grid_clip), "fast")
    shutil.rmtree(decoder_cache, ignore_errors=True)

    first_use = []
    real = Session.executor

    def recording(self):
        first_use.append(threading.current_thread() is threading.main_thread())
        return real(self)

    monkeypatch.setattr(Session, "executor", recording)
    with dataclasses.replace(session, parallel=ParallelOptions(workers=2), _workers=None, _models=session.models,
                             _cache={}) as s:
        result = s.edit(grid_clip, EDITS, tmp_path / "scanned.mp4", EditOptions(lossless=True))
    assert first_use and first_use[0] is True
    assert result.report["seconds"]["pool_scan"] > 0  # the pool's pass ran on the workers
    assert (decoder_cache / "card.json").exists() and result.report["decoder"]["source"] == "this video's own frames"
    _same_edit(result, serial_edit, grid_clip)


def test_ray_edit_equals_the_serial_edit(short_chunks, session, serial_edit, grid_clip, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "ray.mp4"
    with _like(session, ParallelOptions(workers=2, ray=True)) as s:
        result = s.edit(grid_clip, EDITS, out, EditOptions(lossless=True))
    assert result.report["parallel"]["backend"] == "ray" and result.report["parallel"]["chunks"] >= 3
    _same_edit(result, serial_edit, grid_clip)


REFINED_MIN_PSNR = 45.0  # warp+refine: the refiner's smoothing is re-run over RENDER_WARMUP frames, not replayed


def test_warp_refine_chunked_edit_equals_the_serial_edit(short_chunks, session, serial_edit, grid_clip, tmp_path):
    """The renderer on top of the warp renderer: built in the workers from its trained folder; its warp
    part replayed, the refiner warmed up by rendering. The refiner here is an untrained network (seeded):
    its residual is arbitrary but fixed, and what is tested is the chunking, not the refiner."""
    import json
    import shutil

    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from dfm.pipelines.renderer_train import renderer_dir
    from dfm.render.neural.refiner import MouthRefinerNet, RefinerConfig

    folder = renderer_dir(session.analyze(grid_clip), "refiner", "all")
    torch.manual_seed(0)
    net = MouthRefinerNet(RefinerConfig())
    folder.mkdir(parents=True)
    save_file({"net." + k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "checkpoint.safetensors"))
    (folder / "card.json").write_text(json.dumps({"kind": "refiner", "config": {"refiner": RefinerConfig().to_dict()}}))
    options = EditOptions(lossless=True, renderer="warp+refine")
    try:
        serial = _like(session, ParallelOptions(workers=1)).edit(grid_clip, EDITS, tmp_path / "serial.mp4", options)
        with _like(session, ParallelOptions(workers=2)) as s:
            chunked = s.edit(grid_clip, EDITS, tmp_path / "chunked.mp4", options)
    finally:
        shutil.rmtree(folder)
    assert chunked.report["parallel"]["warmup_frames_rendered"] > 0
    _same_edit(chunked, serial, grid_clip, edited_min_psnr=REFINED_MIN_PSNR)
    # the refiner did change the mouth: these are not the warp renderer's frames
    assert any(not np.array_equal(a, b) for a, b in zip(_images(serial.output), _images(serial_edit.output)))
    # and frames outside the edit are the input's, bit-exact (the refined renderer hands them back as they came)
    outside = session.plan(grid_clip, EDITS).weight == 0
    inputs = _images(grid_clip)
    assert outside.sum() > 20
    assert all(np.array_equal(x, inputs[k]) for k, x in enumerate(_images(serial.output)) if outside[k])
