"""Hard inputs: a corpus of bad, odd and hostile cases, made here (tiny, into tmp), each with its expected
behaviour. User mistakes answer one line `dfm: error: ...` with exit 2, and the checks that need no
analysis answer BEFORE it: the path tests use a faceless noise clip, so an analysis would have said
"no face" instead of the path problem. README "Hard inputs" lists the same cases."""

from __future__ import annotations

import json
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from dfm.app.cli.main import main
from dfm.io.video import VideoWriter, iter_frames, probe_video

LINUX = sys.platform.startswith("linux")


# -- corpus -----------------------------------------------------------------------------------------

def write_clip(path: Path, n: int = 30, size: tuple[int, int] = (128, 96), pix_fmt: str = "yuv420p",
               rate: int = 25, pts: list[int] | None = None, rotation: int = 0, codec: str = "libx264") -> Path:
    """A tiny clip of a moving gradient plus noise (no face): n frames of size (w, h)."""
    w, h = size
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if pts is not None:
            s.codec_context.time_base = s.time_base = Fraction(1, 1000)
        if rotation:
            s.set_display_rotation(rotation)
        for i in range(n):
            im = np.zeros((h, w, 3), np.uint8)
            im[..., 0] = (np.arange(w)[None] * 255 // max(w - 1, 1) + 5 * i) % 256
            im[..., 1] = np.arange(h)[:, None] * 255 // max(h - 1, 1)
            im[..., 2] = rng.integers(0, 40, (h, w))
            f = av.VideoFrame.from_ndarray(im, format="rgb24").reformat(format=pix_fmt)
            if pts is not None:
                f.pts, f.time_base = pts[i], Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture
def noise_clip(tmp_path) -> Path:
    """1.2 s of noise, no face: any analysis of it fails with "no face"."""
    return write_clip(tmp_path / "noise.mp4", n=30)


def run_cli(capsys, argv):
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err.strip().splitlines()


def assert_one_line_error(rc, err, *words):
    assert rc == 2, err
    lines = [line for line in err if line.startswith("dfm: error:")]
    assert len(lines) == 1 and not any("Traceback" in line for line in err), err
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]
    return lines[0]


def edit_argv(video, output, *extra):
    return ["edit", str(video), "--edit", "happy:high:0-1.1", "--transitions", "4", "-o", str(output), "-q", *extra]


# -- unreadable inputs (already answered cleanly; kept so) ------------------------------------------

@pytest.mark.parametrize("case, words", [
    ("empty", ("empty",)),
    ("random", ("random.mp4",)),
    ("truncated", ("truncated.mp4",)),
    ("audio_only", ("no video stream",)),
    ("still_image", ("still image",)),
    ("text", ("not a video",)),
])
def test_unreadable_inputs_answer_one_line(dfm_env, capsys, tmp_path, case, words):
    if case == "empty":
        f = tmp_path / "empty.mp4"
        f.write_bytes(b"")
    elif case == "random":
        f = tmp_path / "random.mp4"
        f.write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    elif case == "truncated":
        full = write_clip(tmp_path / "full.mp4", n=60)
        f = tmp_path / "truncated.mp4"
        f.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    elif case == "audio_only":
        f = tmp_path / "voice.m4a"
        with av.open(str(f), "w") as c:
            s = c.add_stream("aac", rate=16000)
            s.layout = "mono"
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            for p in [*s.encode(frame), *s.encode()]:
                c.mux(p)
    elif case == "still_image":
        import cv2

        f = tmp_path / "photo.png"
        cv2.imwrite(str(f), np.full((64, 64, 3), 128, np.uint8))
    else:
        f = tmp_path / "notes.mp4"
        f.write_text("not a video\n")
    before = f.read_bytes()
    rc, _, err = run_cli(capsys, ["analyze", str(f), "-q"])
    assert_one_line_error(rc, err, *words)
    assert f.read_bytes() == before  # inputs are never modified


# -- odd, rotated, VFR, grayscale, 10-bit, non-ASCII: decoded and re-encoded keeping what they are ----

def roundtrip(src: Path, out: Path) -> tuple:
    """Write src through VideoWriter.like, editing every other frame (a white square): (info in, info out)."""
    info = probe_video(src)
    with VideoWriter.like(info, out) as w:
        for f in iter_frames(src):
            if f.index % 2:
                im = f.image.copy()
                im[2:12, 2:12] = 255
                w.write(f.with_image(im))
            else:
                w.write(f)
    return info, probe_video(out)


def _frames(path):
    return [f.image.astype(np.int16) for f in iter_frames(path)]


@pytest.mark.parametrize("size, codec, pix_fmt", [((121, 89), "libx264", "yuv444p"),
                                                  ((122, 89), "libvpx-vp9", "yuv420p"),
                                                  ((121, 90), "libvpx-vp9", "yuv420p")])
def test_odd_frame_sizes_keep_their_exact_size(tmp_path, size, codec, pix_fmt):
    src = write_clip(tmp_path / ("odd.mp4" if codec == "libx264" else "odd.webm"), n=6, size=size,
                     pix_fmt=pix_fmt, codec=codec)
    info, out = roundtrip(src, tmp_path / "out.mp4")
    assert (out.width, out.height) == size == (info.width, info.height)
    assert out.pix_fmt == "yuv444p" and out.n_frames == 6
    a, b = _frames(src), _frames(tmp_path / "out.mp4")
    # unedited frame: re-encoded at the default crf (4:2:0 input: chroma upsampled to 4:4:4 as well)
    assert np.abs(a[0] - b[0]).mean() < 3
    assert (b[1][3:11, 3:11] >= 240).all() and np.abs(a[1][20:] - b[1][20:]).mean() < 3  # edited where drawn only


def test_ten_bit_input_gives_ten_bit_output(tmp_path):
    src = write_clip(tmp_path / "ten.mp4", n=6, pix_fmt="yuv420p10le")
    info, out = roundtrip(src, tmp_path / "out.mp4")
    assert info.pix_fmt == "yuv420p10le" and out.pix_fmt == "yuv420p10le"
    # unedited frames pass their 10-bit samples through: lossless output equals the input exactly
    with VideoWriter.like(info, tmp_path / "lossless.mp4", lossless=True) as w:
        for f in iter_frames(src):
            w.write(f)
    with av.open(str(src)) as a, av.open(str(tmp_path / "lossless.mp4")) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0)):
            assert fb.format.name == "yuv420p10le"
            assert np.array_equal(np.frombuffer(fa.planes[0], np.uint16), np.frombuffer(fb.planes[0], np.uint16))


def test_grayscale_rotated_and_vfr_inputs_round_trip(tmp_path):
    gray = write_clip(tmp_path / "gray.mkv", n=6, pix_fmt="gray", codec="ffv1")
    info, out = roundtrip(gray, tmp_path / "gray_out.mp4")
    assert info.pix_fmt.startswith("gray") and out.pix_fmt == "yuv420p" and out.n_frames == 6

    rotated = write_clip(tmp_path / "rot.mp4", n=6, size=(128, 96), rotation=90)
    info, out = roundtrip(rotated, tmp_path / "rot_out.mp4")
    assert info.rotation == out.rotation == 90 and (out.width, out.height) == (96, 128)

    pts = [0, 40, 80, 200, 240, 400, 440, 480]
    vfr = write_clip(tmp_path / "vfr.mp4", n=len(pts), pts=pts)
    info, out = roundtrip(vfr, tmp_path / "vfr_out.mp4")
    assert info.vfr and out.vfr
    assert np.allclose([f.timestamp for f in iter_frames(tmp_path / "vfr_out.mp4")], np.array(pts) / 1000, atol=1e-3)


def test_non_ascii_names(dfm_env, capsys, tmp_path):
    src = write_clip(tmp_path / "clip é 日本.mp4", n=6)
    info, out = roundtrip(src, tmp_path / "résultat ü.mkv")
    assert out.n_frames == 6
    taken = tmp_path / "sortie ß.mp4"
    taken.write_bytes(b"x")
    rc, _, err = run_cli(capsys, edit_argv(src, taken))
    assert_one_line_error(rc, err, "sortie ß.mp4", "exists")


def test_output_formats_follow_the_suffix_or_are_refused(tmp_path, capsys, dfm_env, noise_clip):
    """The writer makes real Matroska for .mkv; an edit job's output carries C2PA credentials, which are
    embedded in MP4 only, so `dfm edit -o x.mkv` is refused before analysis, as is an unknown suffix."""
    src = write_clip(tmp_path / "a.mp4", n=4)
    roundtrip(src, tmp_path / "b.mkv")
    with av.open(str(tmp_path / "b.mkv")) as c:
        assert "matroska" in c.format.name
    with pytest.raises(Exception, match="must end in"):
        VideoWriter(tmp_path / "c.avi", width=16, height=16, rate=25)
    rc, _, err = run_cli(capsys, edit_argv(noise_clip, tmp_path / "out.mkv"))
    assert_one_line_error(rc, err, "out.mkv", "C2PA", "use .mp4")
    rc, _, err = run_cli(capsys, edit_argv(noise_clip, tmp_path / "out.avi"))
    assert_one_line_error(rc, err, "out.avi", ".mp4")
    assert not list(tmp_path.glob("out.*")) and not list(tmp_path.glob(".out*"))


# -- output and workspace checks: before analysis, one line ------------------------------------------

def test_existing_output_and_its_sidecar(dfm_env, capsys, tmp_path, noise_clip):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    rc, _, err = run_cli(capsys, edit_argv(noise_clip, out))
    assert_one_line_error(rc, err, "exists", "--overwrite")
    assert out.read_bytes() == b"old"
    out.unlink()
    (tmp_path / "out.dfm.json").write_text("{}")
    rc, _, err = run_cli(capsys, edit_argv(noise_clip, out))
    assert_one_line_error(rc, err, "out.dfm.json", "--overwrite")
    # with --overwrite the checks pass and the job goes on to the analysis, which finds no face
    rc, _, err = run_cli(capsys, edit_argv(noise_clip, out, "--overwrite"))
    assert_one_line_error(rc, err, "no face")


def test_output_that_is_a_folder(dfm_env, capsys, tmp_path, noise_clip):
    rc, _, err = run_cli(capsys, edit_argv(noise_clip, tmp_path))
    line = assert_one_line_error(rc, err, "is a folder", "file name")
    assert "--overwrite" not in line


def test_output_under_a_regular_file(dfm_env, capsys, tmp_path, noise_clip):
    (tmp_path / "notes.txt").write_text("x")
    rc, _, err = run_cli(capsys, edit_argv(noise_clip, tmp_path / "notes.txt" / "out.mp4"))
    assert_one_line_error(rc, err, "notes.txt is a file, not a folder")


@pytest.mark.skipif(not LINUX, reason="/proc is Linux's")
def test_output_under_proc(dfm_env, capsys, noise_clip):
    rc, _, err = run_cli(capsys, edit_argv(noise_clip, "/proc/dfm-out.mp4"))
    assert_one_line_error(rc, err, "cannot write", "/proc")


@pytest.mark.skipif(not LINUX, reason="/proc is Linux's")
def test_unwritable_workspace(dfm_env, capsys, tmp_path, noise_clip):
    rc, _, err = run_cli(capsys, ["--workspace", "/proc/dfm-workspace", *edit_argv(noise_clip, tmp_path / "o.mp4")])
    assert_one_line_error(rc, err, "workspace")
    rc, _, err = run_cli(capsys, ["--workspace", "/proc/dfm-workspace", "analyze", str(noise_clip), "-q"])
    assert_one_line_error(rc, err, "workspace")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(dfm_env, capsys, tmp_path, noise_clip):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        rc, _, err = run_cli(capsys, edit_argv(noise_clip, folder / "out.mp4"))
        assert_one_line_error(rc, err, "permission denied")
    finally:
        folder.chmod(0o700)


def test_not_enough_disk_space(dfm_env, capsys, tmp_path, noise_clip, monkeypatch):
    import shutil

    import dfm.io.paths as paths

    real = shutil.disk_usage
    monkeypatch.setattr(paths.shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    rc, _, err = run_cli(capsys, edit_argv(noise_clip, tmp_path / "out.mp4"))
    assert_one_line_error(rc, err, "not enough disk space", "30 frames")


def test_edit_too_short_for_the_transitions_names_the_option(dfm_env, capsys, tmp_path, noise_clip):
    rc, _, err = run_cli(capsys, ["edit", str(noise_clip), "--edit", "happy:high:0-0.5", "-o", str(tmp_path / "o.mp4"), "-q"])
    assert_one_line_error(rc, err, "too short", "--transitions 20", "smaller --transitions")


# -- edit specs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("doc, words", [
    ('{"version": 1, "edits": [{"start": 0, "end": 1, "label": "happy", "label": "sad", "intensity": "high"}]}',
     ("'label' appears twice",)),
    ('{"version": 1, "version": 2, "edits": []}', ("'version' appears twice",)),
    ('{"version": 1, "edits": [{"start": 0, "end": 1, "label": "happy", "intensity": 0}]}', ("intensity 0 is no edit",)),
    ('{"version": 1, "edits": [{"start": 0, "end": 1, "label": "happy", "intensity": 0.0}]}', ("intensity 0 is no edit",)),
    ('{"version": 1, "edits": [{"start": 1, "end": 0.5, "label": "sad", "intensity": "low"}]}', ("must be before the end",)),
    ('{"version": 1, "edits": [{"start": 0, "end": 1, "label": "smug", "intensity": "low"}]}', ("unknown label",)),
    ('{"version": 1, "edits": [', ("not valid JSON",)),
    ('[1, 2]', ("JSON object",)),
])
def test_malformed_edit_lists(dfm_env, capsys, tmp_path, noise_clip, doc, words):
    spec = tmp_path / "edits.json"
    spec.write_text(doc)
    rc, _, err = run_cli(capsys, ["edit", str(noise_clip), "--edits", str(spec), "-o", str(tmp_path / "o.mp4"), "-q"])
    assert_one_line_error(rc, err, *words)


@pytest.mark.parametrize("arg, words", [("happy:0:0-1", ("intensity 0 is no edit",)), ("happy:high:1-0", ("before the end",)),
                                        ("happy:loud:0-1", ("unknown intensity",)), ("happy:0-1", ("needs an intensity",))])
def test_malformed_edit_args(dfm_env, capsys, tmp_path, noise_clip, arg, words):
    rc, _, err = run_cli(capsys, ["edit", str(noise_clip), "--edit", arg, "-o", str(tmp_path / "o.mp4"), "-q"])
    assert_one_line_error(rc, err, *words)


def test_overlapping_edits(dfm_env, capsys, tmp_path, noise_clip):
    rc, _, err = run_cli(capsys, ["edit", str(noise_clip), "--edit", "happy:high:0-0.9", "--edit", "sad:low:0.5-1.2",
                                  "--transitions", "2", "-o", str(tmp_path / "o.mp4"), "-q"])
    assert_one_line_error(rc, err, "overlap")
