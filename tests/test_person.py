"""Person records, names, errors and the dataset of pairs, on synthetic tracks (fast; no clips needed)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from dfm.pipelines import person as P
from dfm.errors import DfmError, InputError
from dfm.face.track import FaceTrack


def _track(n: int = 30, seed: int = 0, with_va: bool = True, fps: float = 25.0) -> FaceTrack:
    rng = np.random.default_rng(seed)
    valid = np.ones(n, bool)
    valid[[3, 7]] = False
    va = rng.uniform(-0.9, 0.9, (n, 2)).astype(np.float32)
    va[11] = np.nan  # a face but no VA estimate
    va[~valid] = np.nan
    expr = rng.uniform(0, 1, (n, 53)).astype(np.float32)
    expr[~valid] = 0
    return FaceTrack(
        fps=fps, width=64, height=48, timestamps=np.arange(n) / fps, valid=valid,
        landmarks=np.zeros((n, 478, 3), np.float32), blendshapes=np.zeros((n, 53), np.float32),
        rotation=np.tile(np.eye(3, dtype=np.float32), (n, 1, 1)), translation=np.zeros((n, 3), np.float32),
        scale=np.ones(n, np.float32), expression=expr, identity=np.full(100, 0.1, np.float32),
        residual=np.ones(n, np.float32), valence=va[:, 0] if with_va else None, arousal=va[:, 1] if with_va else None,
        meta={"source_sha256": f"sha{seed}"},
    )


def _person(tmp_path, name="alice", n_videos=2) -> P.Person:
    videos = [P.PersonVideo(path=f"/data/v{k}.mp4", sha256=f"sha{k}", n_frames=30, n_valid=28, fps=25.0,
                            width=64, height=48, track=None) for k in range(n_videos)]
    person = P.Person(name=name, videos=videos, identity=np.linspace(-1, 1, 100).astype(np.float32),
                      folder=P.person_dir(tmp_path, name), created="2024-01-01T00:00:00+00:00",
                      analysis={"affect": "fer", "affect_weights": None, "va_smoothing_s": 0.1})
    person.save()
    return person


@pytest.mark.parametrize("name", ["alice", "Bob_2", "a.b-c", "x" * 64, "7up"])
def test_valid_names(name):
    assert P.check_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "a/b", "a b", "-x", "x" * 65, "é", "a\\b", None])
def test_invalid_names_are_refused_with_one_clear_line(name):
    with pytest.raises(InputError, match="invalid person name") as e:
        P.check_name(name)
    assert "\n" not in str(e.value)


def test_person_record_round_trips_exactly(tmp_path):
    person = _person(tmp_path)
    loaded = P.load_person(tmp_path, "alice")
    assert loaded.name == "alice" and loaded.folder == person.folder
    assert loaded.identity.dtype == np.float32
    assert np.array_equal(loaded.identity, person.identity)  # bit-exact: it is an analysis cache key
    assert loaded.identity_sha == person.identity_sha
    assert [v.sha256 for v in loaded.videos] == ["sha0", "sha1"]
    data = json.loads((person.folder / "person.json").read_text())
    assert data["format_version"] == P.PERSON_FORMAT_VERSION and len(data["identity"]) == 100
    assert [p.name for p in P.list_persons(tmp_path)] == ["alice"]
    assert "alice: 2 video(s)" in loaded.summary() and "no dataset" in loaded.summary()


def test_unknown_person_names_the_known_ones(tmp_path):
    with pytest.raises(DfmError, match="no persons in this workspace"):
        P.load_person(tmp_path, "bob")
    _person(tmp_path, "alice")
    with pytest.raises(DfmError, match=r"unknown person 'bob' \(known persons: alice\)"):
        P.load_person(tmp_path, "bob")


def test_record_from_another_format_version_is_refused(tmp_path):
    person = _person(tmp_path)
    d = json.loads(person.record_path.read_text())
    d["format_version"] = 99
    person.record_path.write_text(json.dumps(d))
    with pytest.raises(DfmError, match="format version 99.*--overwrite"):
        P.load_person(tmp_path, "alice")
    problems = []
    assert P.list_persons(tmp_path, problems) == []  # skipped in listings, not a crash
    assert problems and problems[0][0] == "alice" and "format version 99" in problems[0][1]


class _NoSession:
    """A session whose analysis must not be reached."""

    def __init__(self, workspace):
        self.workspace = workspace

    def analyze(self, *a, **k):  # pragma: no cover - reaching it is the failure
        raise AssertionError("analysis should not run")


def test_add_refuses_missing_videos_duplicates_and_existing_person_before_analysing(tmp_path):
    s = _NoSession(tmp_path)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not really a video")
    with pytest.raises(InputError, match="video not found: .*missing.mp4"):
        P.add_person(s, "alice", [video, tmp_path / "missing.mp4"])
    with pytest.raises(InputError, match="given twice"):
        P.add_person(s, "alice", [video, tmp_path / "." / "v.mp4"])
    with pytest.raises(InputError, match="at least one video"):
        P.add_person(s, "alice", [])
    with pytest.raises(InputError, match="not a video file"):
        P.add_person(s, "alice", [tmp_path])
    with pytest.raises(InputError, match="invalid person name"):
        P.add_person(s, "../evil", [video])
    _person(tmp_path, "alice")
    with pytest.raises(DfmError, match="already exists.*--overwrite"):
        P.add_person(s, "alice", [video])


def test_dataset_keeps_valid_frames_with_finite_va_in_video_and_frame_order():
    tracks = [_track(30, seed=1), _track(20, seed=2)]
    d = P.dataset_from_tracks(tracks)
    va, expr, vid, frame = d  # unpacks as the 4-tuple
    assert va.shape == (30 - 3 + 20 - 3, 2) and expr.shape == (va.shape[0], 53)
    assert d.n_pairs == va.shape[0]
    assert np.isfinite(va).all()
    assert set(np.unique(vid)) == {0, 1} and (np.diff(vid) >= 0).all()
    for k, tr in enumerate(tracks):
        f = frame[vid == k]
        assert (np.diff(f) > 0).all() and not np.isin([3, 7, 11], f).any()
        assert np.array_equal(expr[vid == k], tr.expression[f])
        assert np.allclose(va[vid == k, 0], tr.valence[f])


def test_dataset_without_affect_is_a_clear_error():
    with pytest.raises(DfmError, match="without an affect estimator"):
        P.dataset_from_tracks([_track(with_va=False)])


def test_dataset_staleness_is_detected(tmp_path):
    person = _person(tmp_path, n_videos=2)
    d = P.dataset_from_tracks([_track(30, 1), _track(20, 2)])
    np.savez_compressed(person.dataset_path, format_version=np.array(P.DATASET_FORMAT_VERSION), va=d.va,
                        expression=d.expression, video_id=d.video_id, frame_index=d.frame_index,
                        video_sha256=np.array(["sha0", "sha1"]), identity_sha=np.array(person.identity_sha))
    loaded = P.load_dataset(tmp_path, "alice")
    assert np.array_equal(loaded.va, d.va) and loaded.video_id.dtype == np.int32
    times = P.dataset_times(person, loaded)
    assert np.allclose(times, loaded.frame_index / 25.0)
    person.identity = person.identity + 1  # re-added with another identity
    person.save()
    with pytest.raises(DfmError, match="out of date"):
        P.load_dataset(tmp_path, "alice")


def test_missing_dataset_and_decoder_say_what_to_run(tmp_path):
    _person(tmp_path)
    with pytest.raises(DfmError, match="dfm person dataset alice"):
        P.load_dataset(tmp_path, "alice")
    with pytest.raises(DfmError, match="dfm person train alice"):
        P.load_decoder(tmp_path, "alice")


def test_train_checks_preset_and_epochs_before_working(tmp_path):
    _person(tmp_path)
    s = _NoSession(tmp_path)
    s.progress = False
    with pytest.raises(InputError, match="unknown decoder preset"):
        P.train_person(s, "alice", preset="huge")
    with pytest.raises(InputError, match="--epochs applies to the network presets"):
        P.train_person(s, "alice", preset="fast", epochs=3)
    with pytest.raises(InputError, match="at least 1"):
        P.train_person(s, "alice", preset="paper", epochs=0)


def test_epoch_lines_drive_the_progress_bar():
    class Bar:
        n = 0
        post = ""

        def set_postfix_str(self, s, refresh=True):
            self.post = s

        def refresh(self):
            pass

    bar = Bar()
    sink = P._EpochSink(bar)
    sink.write("epoch 1: train loss 0.20000, val RMSE 0.1")
    assert bar.n == 0  # not a whole line yet
    sink.write("5000\nepoch 2: train loss 0.1, val RMSE 0.09000\nsomething else\n")
    assert bar.n == 2 and bar.post == "val RMSE 0.0900"
    assert isinstance(sink, io.TextIOBase)


def test_one_identity_is_fitted_over_frames_of_every_video():
    """The joint fit sees frames of all videos (landmarks of a known identity, two different poses/scales)."""
    from dfm.face.fitting import FitBasis

    rng = np.random.default_rng(0)
    n_pts = 468
    mean = rng.normal(0, 5, (n_pts, 3)).astype(np.float32)
    ident = rng.normal(0, 0.3, (100, n_pts, 3)).astype(np.float32)
    expr = rng.normal(0, 0.3, (53, n_pts, 3)).astype(np.float32)
    basis = FitBasis(mean, ident, expr, np.ones(n_pts, np.float32))
    true_id = np.zeros(100)
    true_id[:5] = [1.0, -0.5, 0.8, 0.2, -1.0]
    X = basis.points(true_id, np.zeros(53))
    from dfm.face.track import FRONTAL

    def track(scale, shift, n=12):
        L = np.zeros((n, 478, 3), np.float32)
        L[:, :n_pts] = scale * X @ FRONTAL.T + shift
        t = _track(n)
        t.landmarks = L
        t.valid[:] = True
        return t

    est, info = P.fit_person_identity([track(8.0, [200, 150, 0]), track(5.0, [100, 90, 0])], basis)
    assert est.dtype == np.float32 and est.shape == (100,)
    assert info["frames_per_video"] == [12, 12] and info["n_frames"] == 24
    assert info["residual_px"] < 0.5


def test_person_videos_are_analysed_with_the_persons_own_settings(tmp_path):
    from dfm.pipelines.analyze import AnalysisOptions
    from dfm.pipelines.session import Session

    person = _person(tmp_path)  # added with the fer estimator
    other = Session(workspace=tmp_path, analysis=AnalysisOptions(affect="emonet", affect_weights="/w.pth"), progress=False)
    ps = P._person_session(other, person)
    assert (ps.analysis.affect, ps.analysis.affect_weights) == ("fer", None)
    assert ps.workspace == tmp_path and ps.progress is False
    assert other.analysis.affect == "emonet"  # the caller's session is left alone
    same = Session(workspace=tmp_path, progress=False)
    assert P._person_session(same, person) is same


def test_session_can_ask_for_a_persons_decoder(tmp_path):
    from dfm.pipelines.session import Session

    _person(tmp_path)
    assert P.load_person_decoder is P.load_decoder
    with pytest.raises(DfmError, match="no trained decoder; run `dfm person train alice`"):
        Session(workspace=tmp_path, progress=False).decoder_for(None, person="alice")
