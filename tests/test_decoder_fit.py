"""Data decoders on synthetic pairs with a known smooth VA -> expression map (dfm.decoder.synthetic)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dfm.decoder import KernelDecoder, MLPDecoder, TrainingReport, make_decoder
from dfm.decoder.synthetic import synthetic_pairs
from dfm.face.expressions import EXPRESSION_NAMES


@pytest.fixture(scope="module")
def data():
    return synthetic_pairs(12_000, n_videos=6, seed=7)


@pytest.fixture(scope="module")
def fast(data):
    return make_decoder("fast").fit(data.va, data.expr, video_ids=data.video_ids, frame_index=data.frame_index)


def test_fast_is_the_kernel_decoder_and_beats_the_baseline_near_the_noise_floor(data, fast):
    assert isinstance(fast, KernelDecoder)
    rep = fast.report_
    floor = data.noise_floor(fast.split_.val)
    assert rep.rmse_val < 0.4 * rep.rmse_val_baseline  # clearly better than the mean expression
    assert rep.rmse_val < 1.08 * floor  # close to the best possible (the true map's own error)
    assert rep.n_train + rep.n_val + rep.n_dropped == rep.n_pairs == data.va.shape[0]
    assert 0.03 <= rep.selected["bandwidth"] <= 0.5
    assert rep.epochs is None and rep.train_seconds > 0
    assert len(rep.history) == len(fast.bandwidths)


def test_report_is_json_with_per_coefficient_errors(fast):
    d = json.loads(fast.report_.to_json())
    assert list(d["per_coefficient_val_rmse"]) == list(EXPRESSION_NAMES)
    for key in ("rmse_train", "rmse_val", "rmse_val_baseline", "train_seconds", "n_pairs", "epochs", "split"):
        assert key in d
    again = TrainingReport.from_dict(d)
    assert again.rmse_val == pytest.approx(fast.report_.rmse_val)
    assert "baseline" in fast.report_.summary()


def test_predict_shape_range_and_smoothness(data, fast):
    t = np.linspace(0, 1, 4001)
    # a wiggly path across the plane, 0.0015 VA units per step
    path = np.stack([0.9 * np.cos(2 * np.pi * t) * np.cos(7 * t), 0.9 * np.sin(2 * np.pi * t)], 1).astype(np.float32)
    pred = fast.predict(path)
    assert pred.shape == (t.size, 53) and pred.dtype == np.float32
    assert pred.min() >= 0.0 and pred.max() <= 1.0
    step = np.linalg.norm(np.diff(path, axis=0), axis=1)
    slope = np.abs(np.diff(pred, axis=0)).max(axis=1) / step
    true_slope = np.abs(np.diff(data.true_map(path), axis=0)).max(axis=1) / step
    assert slope.max() < 2.0 * true_slope.max() + 1.0  # no jumps: as smooth as the truth, give or take
    assert fast.predict([0.1, 0.2]).shape == (1, 53)


def test_small_mlp_trains_with_early_stopping(data):
    m = MLPDecoder(hidden_sizes=(32, 32), batch_size=512, epochs=40, patience=3, num_threads=1)
    m.fit(data.va[:4000], data.expr[:4000], video_ids=data.video_ids[:4000], frame_index=data.frame_index[:4000])
    rep = m.report_
    assert rep.decoder == "mlp" and 1 <= rep.best_epoch <= rep.epochs <= 40
    assert len(rep.history) == rep.epochs
    assert rep.rmse_val < rep.rmse_val_baseline
    # the restored weights are those of the best epoch
    best = min(h["rmse_val"] for h in rep.history)
    assert rep.rmse_val == pytest.approx(best, rel=1e-4, abs=1e-6)
