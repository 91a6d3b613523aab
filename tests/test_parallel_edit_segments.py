"""Fast checks of the chunked render's parts on synthetic data: the chunk plan (boundaries, warm-ups) and
the segment join (packets, timestamps, audio, tags; mismatched segments refused)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from dfm.errors import DfmError
from dfm.io.segments import join_segments
from dfm.io.video import VideoWriter, frame_timestamps, iter_frames, probe_video
from dfm.pipelines.render_chunks import ChunkPolicy, plan_render_chunks


def _weights(n, *runs):
    w = np.zeros(n, np.float32)
    for a, b in runs:
        w[a:b] = 1.0
    return w


@pytest.mark.parametrize("n,runs,workers", [(472, [(12, 247)], 2), (75, [(20, 60)], 2), (1000, [(100, 300), (500, 900)], 4),
                                            (300, [], 3), (300, [(0, 300)], 2), (30, [(5, 25)], 2)])
def test_chunks_cover_every_frame_once_and_warm_up_from_the_edits_start(n, runs, workers):
    w = _weights(n, *runs)
    policy = ChunkPolicy(min_frames=20)
    chunks = plan_render_chunks(w, workers, policy)
    assert [i for c in chunks for i in range(c.start, c.stop)] == list(range(n))
    # the planned chunks, plus the fillers split off their ends (at most two a chunk; see the filler test)
    assert [c.index for c in chunks] == list(range(len(chunks))) and len(chunks) <= 3 * workers * policy.per_worker
    assert all(c.n_frames >= min(n, policy.min_frames) for c in chunks)
    for c in chunks:  # warm-up = the frames of the edit that runs into the chunk; none where it starts fresh
        run = c.start
        while run > 0 and w[run - 1] > 0 and w[c.start] > 0:
            run -= 1
        assert c.warmup == c.start - run
        if c.start > 0 and w[c.start - 1] > 0 and w[c.start] > 0:
            assert c.warmup > 0


def test_boundaries_move_onto_frames_without_an_edit_and_balance_the_cost():
    w = _weights(472, (12, 247))  # the Pexels clip's half edit
    for policy in (ChunkPolicy(min_frames=24), ChunkPolicy(min_frames=24, replay_cost=0.0)):
        chunks = plan_render_chunks(w, 2, policy)
        # both workers finish at about the same time
        assert _finish(w, chunks, policy.edit_cost, policy)[1] < 1.1, chunks
    # replays are dear: one long edit is cut once (one seam inside it), not three times
    assert sum(c.warmup > 0 for c in plan_render_chunks(w, 2, ChunkPolicy(min_frames=24))) == 1
    # edits with gaps between them: the boundaries fall into the gaps, no replay
    gaps = plan_render_chunks(_weights(480, (10, 110), (130, 230), (250, 350), (370, 470)), 2, ChunkPolicy(min_frames=24))
    assert len(gaps) >= 2 and all(c.warmup == 0 for c in gaps)
    # one boundary near the edit's end snaps onto it: that chunk needs no warm-up
    w2 = _weights(200, (0, 105))  # the even split (frame 100) is inside the edit
    chunks2 = plan_render_chunks(w2, 2, ChunkPolicy(min_frames=20, per_worker=1, edit_cost=1.0, snap=12, filler_frames=0))
    assert [c.start for c in chunks2] == [0, 105] and chunks2[1].warmup == 0


def _finish(weight, chunks, edit_cost, model=ChunkPolicy()):
    """(when the last of 2 workers finishes, the same over an even share of the work, replays included),
    with edited frames costing `edit_cost`: chunks taken dearest-by-`model` first (as render_chunked
    submits them), each by the worker free first."""
    import dataclasses

    from dfm.pipelines.render_chunks import chunk_cost

    true = dataclasses.replace(model, edit_cost=edit_cost)
    loads = [0.0, 0.0]
    for c in sorted(chunks, key=lambda c: -chunk_cost(weight, c, model)):
        loads[loads.index(min(loads))] += chunk_cost(weight, c, true)
    return max(loads), max(loads) / (sum(loads) / 2)


@pytest.mark.parametrize("n,runs,fillers", [(472, [(0, 236)], True), (1416, [(0, 708)], True),
                                            (472, [(12, 247)], True), (600, [(50, 200), (400, 450)], None),
                                            (480, [(100, 380)], None), (3000, [(100, 220)], None)])
def test_fillers_split_the_frames_without_an_edit_off_the_edited_chunks_and_even_out_misestimated_costs(n, runs, fillers):
    w = _weights(n, *runs)
    plain = plan_render_chunks(w, 2, ChunkPolicy(filler_frames=0))
    chosen = plan_render_chunks(w, 2)
    assert [i for c in chosen for i in range(c.start, c.stop)] == list(range(n))
    assert [c.index for c in chosen] == list(range(len(chosen)))
    assert all(c.n_frames >= ChunkPolicy().min_frames for c in chosen)
    fill = [c for c in chosen if not (w[c.start:c.stop] > 0).any()]
    assert all(c.warmup == 0 for c in fill)  # a filler never replays
    if fillers:  # half the video without an edit: fillers, and a single seam inside the edit
        assert len(fill) >= 3 and sum(c.warmup > 0 for c in chosen) == 1
    # edited frames 30% cheaper or dearer than the model says (the machine's drift between hours): the plan
    # chosen never finishes later than the plain one in the worse case, and with fillers within 6% of even
    cases = [4.9 * s for s in (0.7, 1.0, 1.3)]
    assert max(_finish(w, chosen, e)[0] for e in cases) <= max(_finish(w, plain, e)[0] for e in cases) + 1e-9
    if fillers:
        assert max(_finish(w, chosen, e)[1] for e in cases) <= 1.06, [_finish(w, chosen, e) for e in cases]


def test_filler_edges_go_onto_keyframes_and_keyframes_are_read_from_the_packets(tmp_path):
    from dfm.io.video import keyframe_indices

    w = _weights(1439, (0, 720))
    keys = np.arange(0, 1439, 72)
    plain = plan_render_chunks(w, 2)
    snapped = plan_render_chunks(w, 2, keyframes=keys)
    assert [i for c in snapped for i in range(c.start, c.stop)] == list(range(1439))
    inner = [c.start for c in snapped if c.start > 720]  # fillers' starts between two fillers
    assert inner and all(s in set(keys) for s in inner) and not all(c.start in set(keys) for c in plain if c.start > 720)
    assert all(c.n_frames >= ChunkPolicy().min_frames for c in snapped)
    assert [(c.start, c.warmup) for c in snapped if c.warmup] == [(c.start, c.warmup) for c in plain if c.warmup]

    # a long GOP (250 frames): starting a chunk between keyframes costs a decode of up to 249 frames,
    # so the fillers start on keyframes, or right after the edited frames they came off
    from dfm.pipelines.render_chunks import chunk_cost

    long_gop = np.arange(0, 1439, 250)
    chunks = plan_render_chunks(w, 2, keyframes=long_gop)
    fill = [c for c in chunks if c.start >= 720]
    assert len(fill) >= 2 and all(c.start in set(long_gop) or w[c.start - 1] > 0 for c in fill)
    from dfm.parallel.chunks import Chunk

    c = Chunk(0, 1100, 1200, 0)
    assert chunk_cost(w, c, keyframes=long_gop) == pytest.approx(chunk_cost(w, c) + ChunkPolicy().seek_cost * 100)

    path = tmp_path / "gop.mp4"
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=25, options={"g": "10", "keyint_min": "10", "sc_threshold": "0", "bf": "2"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for k in range(35):
            img = np.full((48, 64, 3), (k * 7) % 255, np.uint8)
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
    with av.open(str(path)) as c:
        packets = [p for p in c.demux(c.streams.video[0]) if p.size]
    shown = sorted(p.pts for p in packets)
    assert keyframe_indices(path).tolist() == sorted(shown.index(p.pts) for p in packets if p.is_keyframe) == [0, 10, 20, 30]


def test_random_plans_cover_every_frame_once_with_long_enough_chunks_and_exact_warm_ups():
    rng = np.random.default_rng(0)
    for _ in range(60):
        n = int(rng.integers(150, 3000))
        w = np.zeros(n, np.float32)
        for _ in range(int(rng.integers(0, 4))):
            a = int(rng.integers(0, n))
            w[a:a + int(rng.integers(1, n // 2))] = 1.0
        keys = np.unique(rng.integers(0, n, int(rng.integers(1, 40))))
        for policy in (ChunkPolicy(), ChunkPolicy(filler_frames=10), ChunkPolicy(min_frames=48, filler_frames=30)):
            for workers in (2, 3):
                chunks = plan_render_chunks(w, workers, policy, keys)
                assert [i for c in chunks for i in range(c.start, c.stop)] == list(range(n))
                assert all(c.n_frames >= policy.min_frames for c in chunks)
                for c in chunks:
                    run = c.start
                    while run > 0 and w[run - 1] > 0 and w[c.start] > 0:
                        run -= 1
                    assert c.warmup == c.start - run


def test_a_short_video_is_one_chunk():
    assert len(plan_render_chunks(_weights(30, (0, 30)), 4, ChunkPolicy(min_frames=24))) == 1


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """2 s of a moving gradient at 25 fps with a 440 Hz AAC tone, variable frame timing in the middle."""
    path = tmp_path_factory.mktemp("clip") / "tone.mp4"
    times = [k / 25 for k in range(20)] + [20 / 25 + k / 10 for k in range(5)] + [1.3 + k / 25 for k in range(20)]
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=25, options={"crf": "18"})
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        v.codec_context.time_base = v.time_base = Fraction(1, 12800)
        a = out.add_stream("aac", rate=44100, layout="mono")
        t = np.arange(int(44100 * 2.2)) / 44100
        pcm = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        for k in range(0, pcm.shape[1], 1024):
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, k:k + 1024]), format="fltp", layout="mono")
            f.sample_rate, f.pts = 44100, k
            out.mux(a.encode(f))
        out.mux(a.encode(None))
        y, x = np.mgrid[0:64, 0:96]
        for k, ts in enumerate(times):
            img = np.stack([(x * 2 + k * 5) % 256, (y * 3 + k * 2) % 256, np.full_like(x, 128)], -1).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = round(ts * 12800)
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    return path


@pytest.mark.parametrize("lossless", [True, False])
def test_joined_segments_equal_one_encode(clip, tmp_path, lossless):
    info = probe_video(clip)
    tags = {"comment": "manipulated", "dfm_manipulated": "true"}
    with VideoWriter.like(info, tmp_path / "one.mp4", lossless=lossless, metadata=tags) as w:
        for f in iter_frames(clip):
            w.write(f)
    segments = []
    for k, (a, b) in enumerate([(0, 12), (12, 27), (27, info.n_frames)]):
        segments.append(tmp_path / f"seg{k}.mp4")
        with VideoWriter.like(info, segments[-1], copy_audio=False, lossless=lossless) as w:
            for f in iter_frames(clip, a, b):
                w.write(f)
    assert join_segments(segments, tmp_path / "joined.mp4", audio_from=clip, metadata=tags) == info.n_frames
    one, joined = tmp_path / "one.mp4", tmp_path / "joined.mp4"
    assert np.array_equal(frame_timestamps(joined), frame_timestamps(clip))
    assert probe_video(joined).n_frames == info.n_frames and probe_video(joined).vfr

    def packets(path, kind):
        with av.open(str(path)) as c:
            s = c.streams.audio[0] if kind == "audio" else c.streams.video[0]
            return [(p.pts, p.is_keyframe, bytes(p)) for p in c.demux(s) if p.size], dict(c.metadata)

    audio, tags_joined = packets(joined, "audio")
    assert audio == packets(one, "audio")[0] == packets(clip, "audio")[0]
    assert tags_joined == packets(one, "audio")[1]
    video = packets(joined, "video")[0]
    keys = sorted(p for p, key, _ in video if key)
    starts = [round(float(frame_timestamps(clip)[i]) * 12800) for i in (0, 12, 27)]
    assert set(starts) <= set(keys)  # every segment starts on its own keyframe
    segment_packets = [p for s in segments for p in packets(s, "video")[0]]
    assert [b for _, _, b in video] == [b for _, _, b in segment_packets]  # packet for packet, not re-encoded
    if lossless:
        for x, y in zip(iter_frames(joined), iter_frames(one)):
            assert np.array_equal(np.asarray(x.image), np.asarray(y.image))


def test_rotated_odd_sized_ten_bit_segments_join_like_one_encode(tmp_path):
    """4:4:4 10-bit (an odd size), a display rotation: the joined file keeps all of it, bit-exact when lossless."""
    src = tmp_path / "src.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(src, width=63, height=97, rate=25, rotation=90, bit_depth=10, lossless=True) as w:
        for k in range(30):
            w.write(rng.integers(0, 256, (97, 63, 3), dtype=np.uint8))
    info = probe_video(src)
    assert (info.width, info.height, info.rotation, info.pix_fmt) == (63, 97, 90, "yuv444p10le")
    segments = []
    for k, (a, b) in enumerate([(0, 11), (11, 30)]):
        segments.append(tmp_path / f"seg{k}.mp4")
        with VideoWriter.like(info, segments[-1], copy_audio=False, lossless=True) as w:
            for f in iter_frames(src, a, b):
                w.write(f)
    join_segments(segments, tmp_path / "joined.mp4", rotation=info.rotation)
    out = probe_video(tmp_path / "joined.mp4")
    assert (out.width, out.height, out.rotation, out.pix_fmt, out.n_frames) == (63, 97, 90, "yuv444p10le", 30)
    for x, y in zip(iter_frames(tmp_path / "joined.mp4"), iter_frames(src)):
        assert [bytes(p) for p in x.source.planes] == [bytes(p) for p in y.source.planes]  # 10-bit samples, untouched


def test_segments_that_differ_are_refused(clip, tmp_path):
    info = probe_video(clip)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    with VideoWriter.like(info, a, copy_audio=False) as w:
        for f in iter_frames(clip, 0, 10):
            w.write(f)
    with VideoWriter.like(info, b, copy_audio=False, lossless=True) as w:  # another profile: SPS differ
        for f in iter_frames(clip, 10, 20):
            w.write(f)
    with pytest.raises(DfmError, match="b.mp4: its stream parameters differ"):
        join_segments([a, b], tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]
