"""Cached tracks are checked on load: a truncated, garbled or half-missing entry is reported in one line
and rebuilt, never a traceback (dfm.pipelines.track_cache, and through `dfm analyze` / `dfm edit`)."""

import json
import os

import numpy as np
import pytest

from dfm.face.track import FaceTrack
from dfm.errors import CacheWarning
from dfm.pipelines.track_cache import load_track, save_track


def synthetic_track(n: int = 12) -> FaceTrack:
    rng = np.random.default_rng(0)
    return FaceTrack(fps=25.0, width=64, height=48, timestamps=np.arange(n) / 25.0, valid=np.ones(n, bool),
                     landmarks=rng.normal(size=(n, 478, 3)).astype(np.float32),
                     blendshapes=rng.uniform(size=(n, 53)).astype(np.float32),
                     rotation=np.tile(np.eye(3, dtype=np.float32), (n, 1, 1)), translation=np.zeros((n, 3), np.float32),
                     scale=np.ones(n, np.float32), expression=rng.uniform(size=(n, 53)).astype(np.float32),
                     identity=np.zeros(100, np.float32), residual=np.ones(n, np.float32), meta={"source": "x"})


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "tracks" / "abc.npz"
    track = synthetic_track()
    save_track(track, path)
    return path, track


def test_round_trip(saved):
    path, track = saved
    back = load_track(path)
    np.testing.assert_array_equal(back.landmarks, track.landmarks)
    assert back.meta["source"] == "x"


def test_no_entry_is_a_quiet_miss(tmp_path):
    assert load_track(tmp_path / "none.npz") is None


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _garble(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(range(64))  # same size, different bytes
    path.write_bytes(bytes(data))


def _zero_header(path):
    path.with_suffix(".json").write_text('{"format_version": 1, "fps": 25.0, "me')


def _drop_npz(path):
    path.unlink()


def _wrong_shape(path):
    # a consistent file (checksum fixed up) whose arrays do not match its header
    header = json.loads(path.with_suffix(".json").read_text())
    header["n_frames"] = 99
    path.with_suffix(".json").write_text(json.dumps(header))


@pytest.mark.parametrize("damage, why", [(_truncate, "bytes"), (_garble, "checksum"), (_zero_header, "header"),
                                         (_drop_npz, "missing"), (_wrong_shape, "shape")])
def test_damaged_entry_warns_once_and_misses(saved, damage, why):
    path, _ = saved
    damage(path)
    with pytest.warns(CacheWarning, match=why) as record:
        assert load_track(path) is None
    assert len(record) == 1 and "\n" not in str(record[0].message)


def test_garbled_entry_without_a_checksum_is_caught_by_its_structure(saved):
    # an entry from before checksums (or with its checksum lines edited away) is rebuilt too
    path, _ = saved
    header = json.loads(path.with_suffix(".json").read_text())
    header.pop("npz_sha256")
    path.with_suffix(".json").write_text(json.dumps(header))
    with pytest.warns(CacheWarning):
        assert load_track(path) is None


@pytest.mark.integration
def test_cli_rebuilds_a_damaged_track_and_edit_can_force_analysis(tmp_path, videos_dir, assets_dir, capfd, monkeypatch):
    """`dfm analyze` on a truncated, then a garbled cache: one warning line each, exit 0, rebuilt;
    `dfm edit --force-analysis` analyses again even with a good cache."""
    from dfm.app.cli.main import main
    from subject_clips import frames_of, write_clip

    monkeypatch.setenv("DFM_ASSETS", str(assets_dir))
    clip = write_clip(tmp_path / "short.mp4", frames_of(videos_dir / "grid_blonde_woman_01.mp4", 20))
    ws = ["--workspace", str(tmp_path / "ws"), "-q"]
    assert main([*ws, "analyze", str(clip), "--affect", "none", "--json"]) == 0
    track = json.loads(capfd.readouterr().out)["track"]
    for damage in (_truncate, _garble):
        damage(type(tmp_path)(track))
        assert main([*ws, "analyze", str(clip), "--affect", "none", "--json"]) == 0
        out, err = capfd.readouterr()
        lines = [line for line in err.splitlines() if line.startswith("dfm:")]
        assert len(lines) == 1 and lines[0].startswith("dfm: warning: cached analysis") and "damaged" in lines[0]
        assert "Traceback" not in err
        assert json.loads(out)["cached"] is False
    assert main([*ws, "analyze", str(clip), "--affect", "none", "--json"]) == 0
    assert json.loads(capfd.readouterr().out)["cached"] is True  # the rebuilt entry is good

    before = os.stat(track).st_mtime_ns
    out_video = tmp_path / "out.mp4"
    assert main([*ws, "edit", str(clip), "--affect", "none", "--edit", "happy:high:0.1-0.7", "--transitions", "4", "-o", str(out_video),
                 "--force-analysis"]) == 0
    capfd.readouterr()
    assert os.stat(track).st_mtime_ns != before  # analysed again and written anew
    assert out_video.exists()


def test_damaged_correspondence_cache_is_rebuilt(tmp_path, assets_dir):
    """The other derived file read on every run: the MediaPipe-ICT correspondence (user cache)."""
    from dfm.face.correspondence import load_or_build_correspondence
    from dfm.face.model import FaceModel

    model_path = assets_dir / "ict_facekit" / "ict_face_model.npz"
    canonical = assets_dir / "mediapipe" / "canonical_face_model.obj"
    model = FaceModel.load(model_path)
    first = load_or_build_correspondence(model, model_path, canonical, tmp_path)
    (cached,) = tmp_path.glob("mp_ict_correspondence_*.npz")
    _garble(cached)
    with pytest.warns(CacheWarning, match="correspondence"):
        again = load_or_build_correspondence(model, model_path, canonical, tmp_path)
    np.testing.assert_array_equal(again.vertex_ids, first.vertex_ids)
