"""Video I/O: probing, streamed decoding, random access, the H.264 writer and bad input.

Synthetic clips are made with PyAV inside tmp_path; each frame's colour encodes its index.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from dfm.errors import InputError
from dfm.io import video
from dfm.io.files import sha256_file
from dfm.io.video import (
    VideoInfo,
    VideoWriter,
    frame_timestamps,
    iter_frames,
    probe_video,
    read_frame,
    read_frames_at,
)

W, H = 64, 48


def level(i: int) -> int:
    """Grey level of frame i (kept inside video range, 6 apart so indices are unambiguous)."""
    return 20 + (6 * i) % 210


def frame_image(i: int, width: int = W, height: int = H) -> np.ndarray:
    img = np.full((height, width, 3), level(i), np.uint8)
    img[: height // 2, : width // 2] = 250  # a bright top-left quadrant shows the orientation
    return img


def decoded_index(image: np.ndarray) -> int:
    """Frame index from the colour of a frame made by `frame_image` (bottom-right quadrant)."""
    h, w = image.shape[:2]
    value = float(image[h // 2 + 2 :, w // 2 + 2 :].mean())
    return int(round((value - 20) / 6))


def make_video(
    path: Path,
    n: int = 24,
    *,
    rate: int | Fraction = 25,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    audio: str | None = None,
    rotation: int = 0,
    size: tuple[int, int] = (W, H),
    movflags: str | None = None,
    gop: int = 12,
    image=frame_image,
) -> Path:
    """A synthetic H.264 clip; `pts` (in `time_base`) makes it variable-frame-rate."""
    options = {"movflags": movflags} if movflags else {}
    with av.open(str(path), "w", options=options) as out:
        v = out.add_stream("libx264", rate=rate, options={"crf": "1", "preset": "ultrafast", "g": str(gop), "bf": "2"})
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        tb = time_base or 1 / Fraction(rate)
        v.codec_context.time_base = tb
        if rotation:
            v.set_display_rotation(rotation)
        a = None
        if audio:
            a = out.add_stream(audio, rate=16000, layout="mono")
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(image(i, *size), format="rgb24")
            frame.pts = pts[i] if pts is not None else i
            frame.time_base = tb
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            duration = (pts[-1] + 1) * tb if pts else Fraction(n, 1) / Fraction(rate)
            samples = int(duration * 16000)
            t = np.arange(samples) / 16000
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            fmt = a.codec_context.format.name
            chunk = 1024
            for s in range(0, samples, chunk):
                data = tone[None, s : s + chunk]
                if fmt.startswith("s16"):
                    data = (data * 32767).astype(np.int16)
                af = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
                af.sample_rate, af.pts = 16000, s
                out.mux(a.encode(af))
            out.mux(a.encode(None))
    return path


def audio_packets(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as c:
        return [(p.pts, bytes(p)) for p in c.demux(audio=0) if p.size]


def images(path: Path) -> list[np.ndarray]:
    return [f.image for f in iter_frames(path)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """25 fps, 24 frames, AAC audio."""
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", audio="aac")


# --------------------------------------------------------------------------------------------------
# Probing and decoding


def test_probe_constant_rate_with_audio(clip: Path) -> None:
    info = probe_video(clip)
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height, info.coded_size) == (W, H, (W, H))
    assert info.n_frames == 24
    assert info.rate == Fraction(25) and info.fps == 25.0
    assert not info.vfr
    assert info.duration == pytest.approx(24 / 25)
    assert info.start_time == 0.0
    assert info.rotation == 0
    assert info.codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.has_audio and info.audio_codec == "aac"


def test_iter_frames_streams_every_frame_in_order(clip: Path) -> None:
    frames = list(iter_frames(clip))
    assert [f.index for f in frames] == list(range(24))
    assert [decoded_index(f.image) for f in frames] == list(range(24))
    assert [f.timestamp for f in frames] == pytest.approx([i / 25 for i in range(24)], abs=0)
    np.testing.assert_array_equal(frame_timestamps(clip), [f.timestamp for f in frames])
    f = frames[3]
    assert f.image.shape == (H, W, 3) and f.image.dtype == np.uint8
    assert (f.width, f.height) == (W, H)
    assert not f.image.flags.writeable  # edits go through with_image, never in place
    assert f.source is not None


def test_iter_frames_range_matches_full_decode(clip: Path) -> None:
    full = images(clip)
    part = list(iter_frames(clip, start=13, stop=19))  # starts after the keyframe at 12
    assert [f.index for f in part] == list(range(13, 19))
    for f in part:
        np.testing.assert_array_equal(f.image, full[f.index])
    assert [f.index for f in iter_frames(clip, start=20)] == [20, 21, 22, 23]
    assert list(iter_frames(clip, start=5, stop=5)) == []


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_random_access_matches_sequential(suffix: str, tmp_path: Path) -> None:
    clip = make_video(tmp_path / f"clip{suffix}")
    full = images(clip)
    for i in (0, 1, 11, 12, 13, 23, -1):
        f = read_frame(clip, i)
        assert f.index == i % 24
        np.testing.assert_array_equal(f.image, full[i])
    frames = read_frames_at(clip, [20, 2, 2, 13, 14, 0])
    assert [f.index for f in frames] == [20, 2, 2, 13, 14, 0]
    for f in frames:
        np.testing.assert_array_equal(f.image, full[f.index])
    with pytest.raises(IndexError):
        read_frame(clip, 24)


def test_random_access_recovers_from_a_late_seek(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If a demuxer lands after the wanted frame, decoding restarts from the beginning."""
    full = images(clip)
    scan = video._scan(clip)
    late = dataclasses.replace(scan, seek_pts=np.full_like(scan.seek_pts, scan.pts[-1]))
    monkeypatch.setattr(video, "_scan", lambda path: late)
    assert [f.index for f in iter_frames(clip, 3, 6)] == [3, 4, 5]
    for f in read_frames_at(clip, [5, 2]):
        np.testing.assert_array_equal(f.image, full[f.index])


def test_frame_count_is_exact(clip: Path, tmp_path: Path) -> None:
    path = make_video(tmp_path / "odd.mkv", n=37, gop=5)  # Matroska stores no frame count
    info = probe_video(path)
    assert info.n_frames == 37 == sum(1 for _ in iter_frames(path))
    assert len(frame_timestamps(path)) == 37


# --------------------------------------------------------------------------------------------------
# Variable frame rate and rotation


VFR_PTS = [0, 40, 90, 100, 180, 200, 260, 330, 340, 400, 520, 530, 560, 640, 700, 710]


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    return make_video(path, n=len(VFR_PTS), rate=25, pts=VFR_PTS, time_base=Fraction(1, 1000), audio="aac")


def test_vfr_timestamps_are_kept(vfr_clip: Path) -> None:
    info = probe_video(vfr_clip)
    assert info.vfr
    assert info.n_frames == len(VFR_PTS)
    expected = [p / 1000 for p in VFR_PTS]
    np.testing.assert_allclose(frame_timestamps(vfr_clip), expected, atol=1e-9)
    frames = list(iter_frames(vfr_clip))
    assert [decoded_index(f.image) for f in frames] == list(range(len(VFR_PTS)))
    np.testing.assert_allclose([f.timestamp for f in frames], expected, atol=1e-9)


def test_vfr_timestamps_survive_reencoding(vfr_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    info = probe_video(vfr_clip)
    with VideoWriter.like(info, out) as w:
        for f in iter_frames(vfr_clip):
            w.write(f if f.index % 2 else f.with_image(f.image.copy()))
    np.testing.assert_allclose(frame_timestamps(out), frame_timestamps(vfr_clip), atol=1e-9)
    assert probe_video(out).vfr
    assert [decoded_index(im) for im in images(out)] == list(range(len(VFR_PTS)))


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_is_applied(rotation: int, tmp_path: Path) -> None:
    path = make_video(tmp_path / "rot.mp4", n=6, rotation=rotation)
    info = probe_video(path)
    assert info.rotation == rotation
    assert info.coded_size == (W, H)
    assert (info.width, info.height) == ((H, W) if rotation in (90, 270) else (W, H))
    with av.open(str(path)) as c:
        raw = next(c.decode(video=0)).to_ndarray(format="rgb24")  # as stored, not rotated
    frame = read_frame(path, 0)
    assert frame.image.shape == (info.height, info.width, 3)
    # The display matrix turns the picture counter-clockwise by `rotation` degrees.
    np.testing.assert_array_equal(frame.image, np.rot90(raw, k=rotation // 90))
    bright = {90: (slice(H // 2 + 8, None), slice(None, H // 2 - 8)),  # bottom-left
              180: (slice(H // 2 + 4, None), slice(W // 2 + 4, None)),  # bottom-right
              270: (slice(None, W // 2 - 8), slice(H // 2 + 8, None))}[rotation]  # top-right
    assert frame.image[bright].mean() > 240


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotated_video_roundtrip(rotation: int, tmp_path: Path) -> None:
    src = make_video(tmp_path / "rot.mp4", n=6, rotation=rotation)
    out = tmp_path / "out.mp4"
    info = probe_video(src)
    with VideoWriter.like(info, out, lossless=True) as w:
        for f in iter_frames(src):
            w.write(f if f.index < 3 else f.with_image(f.image.copy()))  # pass-through, then "edited"
    out_info = probe_video(out)
    assert (out_info.rotation, out_info.width, out_info.height) == (rotation, info.width, info.height)
    for i, (a, b) in enumerate(zip(images(src), images(out), strict=True)):
        if i < 3:
            np.testing.assert_array_equal(a, b)
        else:  # RGB -> YUV 4:2:0 -> RGB costs a little, but orientation and content survive
            assert psnr(a, b) > 35


# --------------------------------------------------------------------------------------------------
# Writing


def test_lossless_passthrough_is_bit_exact_and_copies_audio(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    info = probe_video(clip)
    with VideoWriter.like(info, out, lossless=True) as w:
        for f in iter_frames(clip):
            w.write(f)
    assert w.frames_written == 24 and not w.audio_reencoded
    for a, b in zip(images(clip), images(out), strict=True):
        np.testing.assert_array_equal(a, b)
    out_info = probe_video(out)
    assert (out_info.n_frames, out_info.rate, out_info.width, out_info.height) == (24, info.rate, W, H)
    np.testing.assert_array_equal(frame_timestamps(out), frame_timestamps(clip))
    src_audio, out_audio = audio_packets(clip), audio_packets(out)
    assert len(out_audio) == len(src_audio) > 0
    assert out_audio == src_audio  # same timing, same bytes: remuxed, not re-encoded


def test_edited_frame_keeps_untouched_pixels_exact(clip: Path, tmp_path: Path) -> None:
    """Only the pixels an edit changes are converted RGB -> YUV; the rest keep the decoded samples."""
    out = tmp_path / "out.mp4"
    box = (slice(10, 30), slice(20, 44))  # even-aligned, so 2x2 chroma blocks do not straddle it
    with VideoWriter.like(probe_video(clip), out, lossless=True) as w:
        for f in iter_frames(clip):
            image = f.image.copy()
            image[box] = 255 - image[box]
            w.write(f.with_image(image))
    outside = np.ones((H, W), bool)
    outside[8:32, 18:46] = False  # the box plus the reach of chroma interpolation
    for a, b in zip(images(clip), images(out), strict=True):
        np.testing.assert_array_equal(a[outside], b[outside])
        assert np.abs((255 - a[box]).astype(int) - b[box]).mean() < 3


@pytest.mark.parametrize("shape", [(36, 64), (37, 53)])
def test_change_mask_and_chroma_blocks_match_the_reference(shape: tuple[int, int]) -> None:
    """The writer's fast change mask equals any-channel inequality, and a chroma sample is taken from the
    edit where any pixel of its 2x2 block (partial at odd edges) changed."""
    rng = np.random.default_rng(3)
    h, w = shape
    base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image = base.copy()
    image[rng.random((h, w)) < 0.05, rng.integers(0, 3)] ^= 1
    image[h - 1, w - 1, 2] ^= 4  # the odd corner's partial block
    changed = video.changed_pixels(image, base)
    np.testing.assert_array_equal(changed, np.any(image != base, axis=2))

    old = av.VideoFrame.from_ndarray(base, format="rgb24").reformat(format="yuv420p")
    new = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    new_u = np.frombuffer(new.planes[1], np.uint8).reshape(new.planes[1].height, -1)[:, :new.planes[1].width].copy()
    old_u = np.frombuffer(old.planes[1], np.uint8).reshape(old.planes[1].height, -1)[:, :old.planes[1].width].copy()
    merged = video._merge_planes(old, new, changed)
    ph, pw = merged.planes[1].height, merged.planes[1].width
    padded = np.zeros((2 * ph, 2 * pw), bool)
    padded[:h, :w] = changed
    block = padded.reshape(ph, 2, pw, 2).any(axis=(1, 3))
    got = np.frombuffer(merged.planes[1], np.uint8).reshape(ph, -1)[:, :pw]
    np.testing.assert_array_equal(got, np.where(block, new_u, old_u))
    assert block[-1, -1]


def test_default_quality_writer_from_arrays(tmp_path: Path) -> None:
    out = tmp_path / "arrays.mp4"
    yy, xx = np.mgrid[0:H, 0:W] / 16.0
    frames = [  # smooth moving colour waves (sharp colour edges would measure 4:2:0 chroma loss)
        np.stack([128 + 80 * np.sin(xx + i / 3), 128 + 80 * np.cos(yy - i / 4), 128 + 60 * np.sin(xx + yy)], -1)
        .round()
        .astype(np.uint8)
        for i in range(10)
    ]
    with VideoWriter(out, width=W, height=H, rate=Fraction(30000, 1001)) as w:
        for im in frames:
            w.write(im)
    info = probe_video(out)
    assert (info.n_frames, info.rate, info.has_audio) == (10, Fraction(30000, 1001), False)
    np.testing.assert_allclose(frame_timestamps(out), np.arange(10) * 1001 / 30000, atol=1e-9)
    for a, b in zip(frames, images(out), strict=True):
        assert psnr(a, b) > 38


def _x264_settings(path: Path) -> str:
    """The encoder settings x264 writes into the stream (its SEI user data, e.g. '... threads=1 ...')."""
    data = path.read_bytes()
    start = data.find(b"x264 - core")
    assert start >= 0, "no x264 settings in the stream"
    return data[start:data.find(b"\x00", start)].decode("ascii", "replace")


@pytest.mark.parametrize("threads", [1, 2])
def test_writer_encodes_with_the_threads_it_is_given(threads: int, tmp_path: Path) -> None:
    out = tmp_path / f"threads{threads}.mp4"
    frames = [np.full((360, 640, 3), 20 * i, np.uint8) for i in range(6)]  # x264 uses one thread on tiny pictures
    with VideoWriter(out, width=640, height=360, rate=25, threads=threads) as w:
        for im in frames:
            w.write(im)
    assert f" threads={threads} " in _x264_settings(out)
    assert probe_video(out).n_frames == 6


def test_metadata_round_trip(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    meta = {"comment": "manipulated by DFM", "description": "expression edited", "dfm_manipulated": "true"}
    with VideoWriter.like(probe_video(clip), out, metadata=meta) as w:
        for f in iter_frames(clip):
            w.write(f)
    with av.open(str(out)) as c:
        for key, value in meta.items():
            assert c.metadata.get(key) == value
    standard = tmp_path / "standard.mp4"  # only standard keys: classic iTunes tags
    with VideoWriter.like(probe_video(clip), standard, metadata={"comment": "manipulated by DFM"}) as w:
        w.write(read_frame(clip, 0))
    with av.open(str(standard)) as c:
        assert c.metadata.get("comment") == "manipulated by DFM"


def test_refuses_to_overwrite(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(InputError, match="already exists"):
        VideoWriter.like(probe_video(clip), out)
    assert out.read_bytes() == b"precious"
    with VideoWriter.like(probe_video(clip), out, overwrite=True) as w:
        w.write(read_frame(clip, 0))
    assert probe_video(out).n_frames == 1


def test_refuses_to_write_over_its_input(clip: Path, tmp_path: Path) -> None:
    copy = tmp_path / "in.mp4"
    copy.write_bytes(clip.read_bytes())
    with pytest.raises(InputError, match="input"):
        VideoWriter.like(probe_video(copy), copy, overwrite=True)


def test_write_is_atomic(clip: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out = out_dir / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter.like(probe_video(clip), out) as w:
            for f in iter_frames(clip):
                w.write(f)
                if f.index == 10:
                    raise RuntimeError("boom")
    assert list(out_dir.iterdir()) == []  # neither the output nor a temp file
    with pytest.raises(ValueError, match="no frames"):
        with VideoWriter.like(probe_video(clip), out):
            pass
    assert list(out_dir.iterdir()) == []


def test_timestamps_must_increase(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="increase"):
        with VideoWriter.like(probe_video(clip), tmp_path / "out.mp4") as w:
            w.write(read_frame(clip, 5))
            w.write(read_frame(clip, 4))
    assert not (tmp_path / "out.mp4").exists()


def test_wrong_image_shape_is_rejected(clip: Path, tmp_path: Path) -> None:
    frame = read_frame(clip, 0)
    with pytest.raises(ValueError):
        frame.with_image(np.zeros((H, W + 2, 3), np.uint8))
    with pytest.raises(ValueError):
        with VideoWriter.like(probe_video(clip), tmp_path / "o.mp4") as w:
            w.write(np.zeros((H, W), np.uint8))


def test_audio_mp4_cannot_hold_is_reencoded(tmp_path: Path) -> None:
    src = make_video(tmp_path / "mulaw.mov", n=10, audio="pcm_mulaw")
    assert probe_video(src).audio_codec == "pcm_mulaw"
    out = tmp_path / "out.mp4"
    with VideoWriter.like(probe_video(src), out) as w:
        for f in iter_frames(src):
            w.write(f)
    assert w.audio_reencoded
    assert probe_video(out).audio_codec == "aac"


# --------------------------------------------------------------------------------------------------
# Bad input: one-line InputError naming the problem; the input is left untouched


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = make_video(tmp_path / "good.mp4", n=40)  # PyAV writes the index (moov) at the end
    front = make_video(tmp_path / "front.mp4", n=40, movflags="+faststart")  # index first
    text = tmp_path / "notes.txt"
    text.write_text("this is not a video\n" * 50)
    truncated_front = tmp_path / "truncated_front.mp4"
    truncated_front.write_bytes(front.read_bytes()[: int(front.stat().st_size * 0.6)])
    truncated_end = tmp_path / "truncated_end.mp4"
    truncated_end.write_bytes(good.read_bytes()[: int(good.stat().st_size * 0.6)])
    audio_only = tmp_path / "audio.m4a"
    with av.open(str(audio_only), "w") as out:
        a = out.add_stream("aac", rate=16000, layout="mono")
        for s in range(0, 16000, 1024):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 16000, s
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    still = tmp_path / "still.png"
    with av.open(str(still), "w", format="image2") as out:
        s = out.add_stream("png")
        s.width, s.height, s.pix_fmt = W, H, "rgb24"
        out.mux(s.encode(av.VideoFrame.from_ndarray(frame_image(0), format="rgb24")))
        out.mux(s.encode(None))
    zero = tmp_path / "zero.mkv"
    with av.open(str(zero), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        out.start_encoding()
    return {
        "missing": (tmp_path / "nope.mp4", "not found"),
        "directory": (tmp_path, "not a file"),
        "text": (text, "not a video file"),
        "truncated (index first)": (truncated_front, "truncated"),
        "truncated (index last)": (truncated_end, "truncated"),
        "audio only": (audio_only, "no video stream"),
        "zero frames": (zero, "no video frames"),
        "empty file": (empty, "empty"),
        "still image": (still, "still image"),
    }


def test_bad_inputs_give_one_line_errors(tmp_path: Path) -> None:
    for what, (path, expected) in _bad_inputs(tmp_path).items():
        before = sha256_file(path) if path.is_file() else None
        for call in (probe_video, frame_timestamps, lambda p: next(iter_frames(p)), lambda p: read_frame(p, 0)):
            with pytest.raises(InputError) as e:
                call(path)
            message = str(e.value)
            assert expected in message, (what, message)
            assert "\n" not in message and path.name in message, (what, message)
        if before is not None:
            assert sha256_file(path) == before, what


# --------------------------------------------------------------------------------------------------
# Memory


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_decoding_memory_does_not_grow_with_length(tmp_path: Path) -> None:
    n, size = 400, (320, 240)
    path = make_video(tmp_path / "long.mp4", n=n, size=size, gop=50)
    frame_bytes = size[0] * size[1] * 3
    rss: dict[int, int] = {}
    for f in iter_frames(path):
        f.image  # convert, as a consumer would
        if f.index in (50, n - 1):
            rss[f.index] = _rss_bytes()
    assert f.index == n - 1
    # Keeping every frame would add 350 frames * 230 KB = 80 MB; streaming stays flat.
    assert rss[n - 1] - rss[50] < 30 * frame_bytes


# --------------------------------------------------------------------------------------------------
# Real clip (integration)


@pytest.mark.integration
def test_real_clip_probe(sample_video: Path) -> None:
    info = probe_video(sample_video)
    assert (info.width, info.height, info.n_frames) == (640, 360, 472)
    assert info.rate == Fraction(24000, 1001) and not info.vfr
    assert info.has_audio and info.audio_codec == "aac"
    assert info.duration == pytest.approx(19.686, abs=1e-3)


@pytest.mark.integration
def test_real_clip_truncated_is_reported(sample_video: Path, tmp_path: Path) -> None:
    data = sample_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(InputError, match=r"truncated: the container lists 472 frames but only \d+"):
        probe_video(cut)


@pytest.mark.integration
@pytest.mark.slow
def test_real_clip_default_quality_is_at_least_45db(sample_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    info = probe_video(sample_video)
    with VideoWriter.like(info, out, metadata={"comment": "manipulated by DFM"}) as w:
        for f in iter_frames(sample_video):
            w.write(f)
    out_info = probe_video(out)
    assert (out_info.n_frames, out_info.rate, out_info.width, out_info.height) == (472, info.rate, 640, 360)
    np.testing.assert_array_equal(frame_timestamps(out), frame_timestamps(sample_video))
    assert audio_packets(out) == audio_packets(sample_video)
    scores = [psnr(a.image, b.image) for a, b in zip(iter_frames(sample_video), iter_frames(out), strict=True)]
    assert min(scores) >= 45.0, f"worst frame {int(np.argmin(scores))}: {min(scores):.2f} dB"
