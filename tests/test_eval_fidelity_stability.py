"""Emotion fidelity and temporal-stability measures on synthetic inputs with known answers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from dfm.affect.regions import region_for
from dfm.eval.fidelity import emotion_fidelity
from dfm.eval.stability import LIP_CONTOUR, CropChange, jitter_report, landmark_jitter, pair_group


def test_fidelity_counts_full_weight_frames_in_the_region():
    t = 20
    edit_index = np.full(t, -1)
    edit_index[5:15] = 0
    weight = np.zeros(t, np.float32)
    weight[5:15] = 1.0
    weight[5] = weight[14] = 0.5  # ramp frames: not counted
    happy = region_for("happy", "high")
    inside = happy.center()
    va_out = np.zeros((t, 2))
    va_out[5:15] = inside
    va_out[6] = (-0.5, -0.5)  # one miss among the 8 full-weight frames
    va_in = np.zeros((t, 2))  # neutral input
    va_in[7] = np.nan  # no face on the input in one frame
    edits = [SimpleNamespace(index=0, label="happy", intensity=5 / 6, first=5, stop=15),
             SimpleNamespace(index=1, label=None, intensity=None, first=0, stop=0)]  # nudge-only: skipped
    probs_out = np.zeros((t, 2))
    probs_out[:, 0] = 1.0
    f = emotion_fidelity(edit_index, weight, edits, va_out, va_in, probs_out, None, ["happy", "sad"])
    assert len(f["edits"]) == 1
    e = f["edits"][0]
    assert e["full_weight_frames"] == 8
    assert e["output"]["frames"] == 8 and e["output"]["in_region"] == pytest.approx(7 / 8)
    assert e["output"]["distance"] == pytest.approx(happy.distance(np.array([[-0.5, -0.5]]))[0] / 8)
    assert e["output"]["label_share"] == 1.0
    assert e["input"]["frames"] == 7 and e["input"]["in_region"] == 0.0
    assert e["input"]["distance"] == pytest.approx(happy.radius_min)  # the origin is radius_min from the band
    assert e["input"]["label_share"] is None
    assert e["output"]["in_sector"] == pytest.approx(7 / 8) and e["input"]["in_sector"] == 0.0
    weak = happy.center() * 0.3  # a weak smile: the happy sector, not the "high" band
    va_out[5:15] = weak
    f2 = emotion_fidelity(edit_index, weight, edits, va_out, va_in)
    assert f2["edits"][0]["output"]["in_region"] == 0.0 and f2["edits"][0]["output"]["in_sector"] == 1.0
    assert f2["overall"]["output"]["in_sector"] == 1.0
    assert f["overall"]["output"]["in_region"] == pytest.approx(7 / 8)


def test_pair_groups():
    assert pair_group(0.0, 0.0) == "outside"
    assert pair_group(0.0, 0.2) == "boundary"
    assert pair_group(0.9, 1.0) == "boundary"
    assert pair_group(1.0, 1.0) == "inside"


def test_crop_change_equal_outside_edits_and_measured_at_boundaries():
    t, h, w = 6, 60, 80
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(t)]
    lm = np.zeros((t, 478, 3), np.float32)
    lm[:, :, 0] = np.linspace(20, 60, 478)
    lm[:, :, 1] = np.linspace(10, 50, 478)
    weight = np.array([0, 0, 0.5, 1, 1, 0], np.float32)
    outs = [f if wt == 0 else np.full_like(f, 128) for f, wt in zip(frames, weight)]
    cc = CropChange(lm, np.ones(t, bool), size=32)
    for i in range(t):
        cc.add(i, frames[i], outs[i], float(weight[i]))
    r = cc.result()
    assert r["outside"]["pairs"] == 1 and r["outside"]["input"] == r["outside"]["output"] > 0
    assert r["outside_equal"]
    assert r["boundary"]["pairs"] == 3 and r["inside"]["pairs"] == 1
    assert r["inside"]["output"] == 0.0  # constant output inside the edit
    assert r["inside"]["input"] > 0


def test_landmark_jitter_of_a_straight_line_is_zero_and_of_noise_positive():
    t = 10
    lm = np.zeros((t, 478, 2))
    lm[:, 263, 0] = 60.0  # eye corners 60 px apart
    lm += np.arange(t)[:, None, None] * 2.0  # uniform motion: no second difference
    j = landmark_jitter(lm, np.ones(t, bool))
    assert j["px"] == pytest.approx(0.0, abs=1e-12) and j["triples"] == 8
    noisy = lm.copy()
    noisy[4] += 1.0  # one frame shifted by (1, 1): second differences at t = 3, 4, 5
    j2 = landmark_jitter(noisy, np.ones(t, bool))
    assert j2["px"] == pytest.approx((math.sqrt(2) + 2 * math.sqrt(2) + math.sqrt(2)) / 8)
    assert j2["iod_pct"] == pytest.approx(j2["px"] / 60.0 * 100)
    valid = np.ones(t, bool)
    valid[4] = False
    assert landmark_jitter(noisy, valid)["triples"] == 5
    lips_only = lm.copy()
    lips_only[4, list(LIP_CONTOUR)] += 1.0  # only the lips shake: all their jitter, diluted over all 478
    lips = landmark_jitter(lips_only, np.ones(t, bool), points=LIP_CONTOUR)["px"]
    assert lips == pytest.approx(j2["px"])
    assert landmark_jitter(lips_only, np.ones(t, bool))["px"] == pytest.approx(lips * len(LIP_CONTOUR) / 478)
    rep = jitter_report(lm, np.ones(t, bool), noisy, np.ones(t, bool), np.r_[np.zeros(5), np.ones(5)])
    assert rep["outside_edits"]["output"]["px"] > 0
    assert rep["inside_edits"]["output"]["triples"] == 4  # centre frames 5..8 (9 has no successor)
    assert rep["inside_edits"]["input"]["px"] == pytest.approx(0.0, abs=1e-12)
