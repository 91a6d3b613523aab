"""Bad input gets one line naming the problem, exit code 2, no traceback, and the input untouched."""

import hashlib

import av
import numpy as np

from dfm.app.cli.main import main


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


def _assert_one_line_error(rc, err, *words):
    assert rc == 2
    lines = [l for l in err if l.startswith("dfm: error:")]
    assert len(lines) == 1 and not any("Traceback" in l for l in err), err
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]


def _write_video(path, frames, fps=25):
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for im in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(im, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_missing_path(dfm_env, capsys, tmp_path):
    rc, err = _run(capsys, ["analyze", str(tmp_path / "nope.mp4"), "-q"])
    _assert_one_line_error(rc, err, "nope.mp4")


def test_not_a_video(dfm_env, capsys, tmp_path):
    f = tmp_path / "notes.mp4"
    f.write_text("hello, not a video\n")
    before = _digest(f)
    rc, err = _run(capsys, ["analyze", str(f), "-q"])
    _assert_one_line_error(rc, err, "notes.mp4")
    assert _digest(f) == before


def test_truncated_mp4(dfm_env, capsys, tmp_path, sample_video):
    f = tmp_path / "cut.mp4"
    f.write_bytes(sample_video.read_bytes()[: int(sample_video.stat().st_size * 0.6)])
    before = _digest(f)
    rc, err = _run(capsys, ["analyze", str(f), "-q"])
    _assert_one_line_error(rc, err, "cut.mp4")
    assert _digest(f) == before


def test_audio_only_file(dfm_env, capsys, tmp_path):
    f = tmp_path / "voice.m4a"
    with av.open(str(f), "w") as c:
        s = c.add_stream("aac", rate=16000)
        s.layout = "mono"
        samples = (np.sin(np.arange(16000) / 10) * 0.3).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    rc, err = _run(capsys, ["analyze", str(f), "-q"])
    _assert_one_line_error(rc, err, "voice.m4a")


def test_video_without_a_face(dfm_env, capsys, tmp_path):
    f = tmp_path / "wall.mp4"
    rng = np.random.default_rng(0)
    _write_video(f, [np.full((96, 128, 3), 90, np.uint8) + rng.integers(0, 20, (96, 128, 3), dtype=np.uint8) for _ in range(10)])
    before = _digest(f)
    rc, err = _run(capsys, ["analyze", str(f), "-q"])
    _assert_one_line_error(rc, err, "no face")
    assert _digest(f) == before


def test_unknown_affect_estimator(dfm_env, capsys, sample_video):
    rc, err = _run(capsys, ["analyze", str(sample_video), "--affect", "telepathy", "-q", "--force"])
    _assert_one_line_error(rc, err, "telepathy")
