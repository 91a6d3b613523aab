"""PersonDecoder: data decoder + FACS prior blended by coverage; reports; persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dfm.affect import regions
from dfm.decoder import FORMAT_VERSION, PersonDecoder, load_model, va_orbit
from dfm.decoder.synthetic import synthetic_pairs
from dfm.errors import DfmError
from dfm.face.expressions import expression_index as ix


@pytest.fixture(scope="module")
def happy_person():
    """A person filmed only while cheerful: data in the positive-valence half of the plane."""
    d = synthetic_pairs(16_000, n_videos=4, seed=11)
    keep = (d.va[:, 0] > 0.2) & (d.va[:, 1] > -0.2)
    person = PersonDecoder().fit(
        d.va[keep], d.expr[keep], video_ids=d.video_ids[keep], frame_index=d.frame_index[keep],
        data_info={"person": "alice"},
    )
    return d, keep, person


def test_blend_weight_is_one_far_from_data_and_zero_in_dense_data(happy_person):
    d, keep, person = happy_person
    va = d.va[keep]
    dense = va[np.argsort(-person.coverage_density(va))[:50]]
    far = np.array([[-0.8, -0.5], [-0.9, 0.5], [-0.5, -0.9]], np.float32)
    assert person.blend_weights(dense).max() < 0.05
    assert person.blend_weights(far).min() > 0.95
    # and the prediction follows: data decoder where dense, prior where far
    assert np.abs(person.predict(dense) - person.predict_data(dense)).max() < 0.03
    assert np.abs(person.predict(far) - person.predict_prior(far)).max() < 0.03
    w = person.blend_weights(np.random.default_rng(0).uniform(-1, 1, (1000, 2)))
    assert w.min() >= 0 and w.max() <= 1


def test_coverage_report_says_where_the_prior_decodes(happy_person):
    _, _, person = happy_person
    rep = person.coverage_report()
    assert rep.share("happy") > 0.5 and rep.share("sad") < 0.05
    lines = {line.split(":")[0]: line for line in rep.lines()}
    assert set(lines) == set(regions.LABELS)
    assert "universal prior" in lines["sad"] and "person's data" in lines["happy"]
    assert "val RMSE" in person.summary() and "sad:" in person.summary()
    assert rep.share("happy", "medium") > rep.share("sad", "medium")


def test_sad_decodes_the_prior_frown_and_happy_the_persons_smile(happy_person):
    _, _, person = happy_person
    sad, happy = person.decode_label("sad", "high"), person.decode_label("happy", "high")
    assert sad[ix("mouthFrown_L")] > happy[ix("mouthFrown_L")]
    assert happy[ix("mouthSmile_L")] > sad[ix("mouthSmile_L")]


def test_universal_decoder_needs_no_data():
    u = PersonDecoder.universal()
    q = np.array([[0.7, 0.4], [-0.7, -0.3]])
    assert np.array_equal(u.predict(q), u.predict_prior(q))
    assert np.all(u.blend_weights(q) == 1.0)
    assert all("universal prior" in line for line in u.coverage_report().lines())
    assert u.summary().startswith("universal FACS prior only")
    orbit = va_orbit(8, radius=0.8)
    assert orbit.shape == (8, 2) and np.allclose(np.hypot(*orbit.T), 0.8)
    assert u.predict(orbit).shape == (8, 53)


def test_save_load_round_trip_is_identical(happy_person, tmp_path):
    _, _, person = happy_person
    person.save(tmp_path / "alice")
    card = json.loads((tmp_path / "alice" / "card.json").read_text())
    assert card["format_version"] == FORMAT_VERSION and card["decoder"]["kind"] == "kernel"
    assert card["data"]["person"] == "alice" and card["data"]["n_pairs"] > 0
    assert card["metrics"]["rmse_val"] > 0 and "dfm" in card["versions"]
    assert (tmp_path / "alice" / "state.npz").exists()
    again = load_model(tmp_path / "alice")
    q = np.random.default_rng(1).uniform(-1, 1, (2000, 2)).astype(np.float32)
    assert np.array_equal(again.predict(q), person.predict(q))
    assert np.array_equal(again.blend_weights(q), person.blend_weights(q))
    assert again.report_.rmse_val == pytest.approx(person.report_.rmse_val)
    with pytest.raises(DfmError, match="already holds a model"):
        person.save(tmp_path / "alice")
    person.save(tmp_path / "alice", overwrite=True)
    # a data decoder alone saves and loads too
    person.decoder_.save(tmp_path / "kernel")
    assert np.array_equal(load_model(tmp_path / "kernel").predict(q), person.decoder_.predict(q))


def test_old_format_fails_clearly(happy_person, tmp_path):
    _, _, person = happy_person
    person.save(tmp_path / "alice")
    path = tmp_path / "alice" / "card.json"
    card = json.loads(path.read_text())
    card["format_version"] = 0
    path.write_text(json.dumps(card))
    with pytest.raises(DfmError, match=r"format version 0.*retrain it with `dfm person train alice`"):
        PersonDecoder.load(tmp_path / "alice")
    with pytest.raises(DfmError, match="no decoder model"):
        load_model(tmp_path / "nothing")
