"""Temporal smoothing of per-frame VA: less noise, steps kept, invalid frames never invented."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.affect.base import AffectResult
from dfm.affect.smoothing import smooth_affect, smooth_series

FPS = 25.0


def test_noise_is_reduced():
    rng = np.random.default_rng(0)
    t = np.arange(500) / FPS
    clean = 0.5 * np.sin(2 * np.pi * 0.2 * t)
    noisy = clean + rng.normal(0, 0.1, size=t.shape)
    smoothed = smooth_series(noisy, fps=FPS, sigma_s=0.1)
    # Gaussian of 2.5 frames: noise std drops by about sqrt(2 sqrt(pi) 2.5) ~ 3
    assert np.std(smoothed - clean) < 0.45 * np.std(noisy - clean)
    assert np.abs(smoothed - clean).max() < 0.2


def test_step_is_preserved_within_bound():
    values = np.where(np.arange(200) < 100, -0.6, 0.7)
    sigma = 0.1
    smoothed = smooth_series(values, fps=FPS, sigma_s=sigma)
    t = np.arange(200) / FPS
    far = np.abs(t - 100 / FPS) > 3 * sigma
    np.testing.assert_allclose(smoothed[far], values[far], atol=1e-12)  # untouched beyond the kernel
    # 10-90 % rise time of a Gaussian-smoothed step: 2.56 sigma (+ one frame of sampling)
    lo, hi = -0.6 + 0.1 * 1.3, -0.6 + 0.9 * 1.3
    rise = t[np.argmax(smoothed > hi)] - t[np.argmax(smoothed > lo)]
    assert rise <= 2.56 * sigma + 1 / FPS
    assert np.all(np.diff(smoothed) >= -1e-12)  # monotone: no overshoot or ringing


def test_invalid_frames_stay_nan_and_do_not_leak():
    values = np.full(60, 0.8)
    values[20:30] = np.nan  # no face here
    valid = np.ones(60, bool)
    valid[40:45] = False  # tracker said invalid (values there are garbage)
    values[40:45] = -5.0
    smoothed = smooth_series(values, fps=FPS, sigma_s=0.2, valid=valid)
    assert np.isnan(smoothed[20:30]).all() and np.isnan(smoothed[40:45]).all()
    rest = np.ones(60, bool)
    rest[20:30] = rest[40:45] = False
    # next to gaps only valid neighbours count: no pull towards 0 or towards the garbage
    np.testing.assert_allclose(smoothed[rest], 0.8, atol=1e-12)


def test_result_depends_on_seconds_not_frames():
    sigma = 0.15
    t_low = np.arange(0, 4, 1 / 25)
    t_high = np.arange(0, 4, 1 / 50)
    signal = lambda t: np.tanh((t - 2.0) / 0.05)  # noqa: E731
    low = smooth_series(signal(t_low), fps=25, sigma_s=sigma)
    high = smooth_series(signal(t_high), fps=50, sigma_s=sigma)
    np.testing.assert_allclose(low, high[::2], atol=0.03)


def test_irregular_timestamps():
    t = np.cumsum(np.random.default_rng(2).uniform(0.02, 0.06, size=200))
    values = np.where(t < t[100], 0.0, 1.0)
    smoothed = smooth_series(values, timestamps=t, sigma_s=0.1)
    assert smoothed[0] == pytest.approx(0.0) and smoothed[-1] == pytest.approx(1.0)
    assert np.all(np.diff(smoothed) >= -1e-12)
    with pytest.raises(ValueError, match="increase"):
        smooth_series(values, timestamps=t[::-1], sigma_s=0.1)
    with pytest.raises(ValueError, match="fps"):
        smooth_series(values, sigma_s=0.1)


def test_smooth_affect_keeps_probabilities_normalised():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(7), size=50).astype(np.float32)
    va = rng.uniform(-1, 1, size=(50, 2)).astype(np.float32)
    va[10] = np.nan
    result = AffectResult(va[:, 0], va[:, 1], probs, tuple("abcdefg"))
    valid = np.ones(50, bool)
    valid[30] = False
    smoothed = smooth_affect(result, fps=FPS, sigma_s=0.2, valid=valid)
    assert np.isnan(smoothed.valence[[10, 30]]).all() and np.isnan(smoothed.probs[[10, 30]]).all()
    ok = np.isfinite(smoothed.valence)
    assert ok.sum() == 48
    np.testing.assert_allclose(smoothed.probs[ok].sum(axis=1), 1.0, atol=1e-5)
    assert np.std(smoothed.valence[ok]) < 0.6 * np.std(va[ok, 0])
