"""Temporal smoothing of per-frame affect estimates (raw per-frame VA jitters from frame to frame).

Method: a Gaussian kernel in *time* (sigma in seconds, so the result does not depend on the frame rate),
applied as a normalised convolution: each valid frame becomes the weighted mean of the valid frames around
it, weights exp(-dt^2 / 2 sigma^2) over |dt| <= 3 sigma. Invalid frames (valid=False or NaN) contribute
nothing and stay NaN — the filter never invents a value where no face was seen; frames next to a gap are
averaged over the valid side only (no pull towards zero). Timestamps may be irregular (variable frame
rate). A step is spread over about +-2 sigma (10-90 % rise time 2.56 sigma); the default sigma, 0.1 s, keeps
expression changes (onsets take 0.3-0.5 s) while removing frame-to-frame noise.
"""

from __future__ import annotations

import math

import numpy as np

from dfm.affect.base import AffectResult

DEFAULT_SIGMA_S = 0.1
_SUPPORT_SIGMAS = 3.0  # kernel truncated beyond 3 sigma (weights < 1.1 %)


def _frame_times(n: int, fps: float | None, timestamps: np.ndarray | None) -> np.ndarray:
    if timestamps is not None:
        times = np.asarray(timestamps, dtype=np.float64)
        if times.shape != (n,):
            raise ValueError(f"timestamps must be ({n},), got {times.shape}")
        if n > 1 and not np.all(np.diff(times) > 0):
            raise ValueError("timestamps must increase strictly")
        return times
    if fps is None or not fps > 0:
        raise ValueError(f"need fps > 0 or timestamps, got fps={fps}")
    return np.arange(n, dtype=np.float64) / float(fps)


def smooth_series(
    values: np.ndarray,
    fps: float | None = None,
    sigma_s: float = DEFAULT_SIGMA_S,
    valid: np.ndarray | None = None,
    timestamps: np.ndarray | None = None,
) -> np.ndarray:
    """Gaussian-smooth (T,) or (T, D) per-frame values over time; invalid rows come back NaN.

    A row is invalid where `valid` is False or any of its values is NaN. Give `fps` (constant frame rate)
    or `timestamps` (T,) seconds.
    """
    data = np.asarray(values, dtype=np.float64)
    squeeze = data.ndim == 1
    if squeeze:
        data = data[:, None]
    if data.ndim != 2:
        raise ValueError(f"values must be (T,) or (T, D), got {np.shape(values)}")
    n = data.shape[0]
    times = _frame_times(n, fps, timestamps)
    ok = np.isfinite(data).all(axis=1)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (n,):
            raise ValueError(f"valid must be ({n},), got {valid.shape}")
        ok &= valid
    out = np.full_like(data, np.nan)
    if n == 0 or not ok.any():
        return out[:, 0] if squeeze else out
    if sigma_s <= 0:
        out[ok] = data[ok]
        return out[:, 0] if squeeze else out

    clean = np.where(ok[:, None], data, 0.0)
    weight_sum = ok.astype(np.float64).copy()  # offset 0: the frame itself
    value_sum = clean.copy()
    min_step = float(np.min(np.diff(times))) if n > 1 else 1.0
    max_offset = min(n - 1, int(math.ceil(_SUPPORT_SIGMAS * sigma_s / min_step)))
    for offset in range(1, max_offset + 1):
        dt = times[offset:] - times[:-offset]
        w = np.exp(-0.5 * (dt / sigma_s) ** 2) * (dt <= _SUPPORT_SIGMAS * sigma_s)
        # frame i receives from i + offset, and frame i + offset from i
        w_ahead = w * ok[offset:]
        w_behind = w * ok[:-offset]
        weight_sum[:-offset] += w_ahead
        value_sum[:-offset] += w_ahead[:, None] * clean[offset:]
        weight_sum[offset:] += w_behind
        value_sum[offset:] += w_behind[:, None] * clean[:-offset]
    out[ok] = value_sum[ok] / weight_sum[ok, None]
    return out[:, 0] if squeeze else out


def smooth_affect(
    result: AffectResult,
    fps: float | None = None,
    sigma_s: float = DEFAULT_SIGMA_S,
    valid: np.ndarray | None = None,
    timestamps: np.ndarray | None = None,
) -> AffectResult:
    """Smoothed copy of a per-frame AffectResult: VA and (renormalised) class probabilities; invalid frames NaN."""
    va = smooth_series(result.va, fps=fps, sigma_s=sigma_s, valid=valid, timestamps=timestamps)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool) & np.isfinite(result.va).all(axis=1)
    probs = None
    if result.probs is not None:
        probs = smooth_series(result.probs, fps=fps, sigma_s=sigma_s, valid=valid, timestamps=timestamps)
        probs = probs / probs.sum(axis=1, keepdims=True)  # a mean of distributions is one up to rounding
        probs = probs.astype(np.float32)
    va = np.clip(va, -1.0, 1.0).astype(np.float32)
    return AffectResult(valence=va[:, 0], arousal=va[:, 1], probs=probs, class_names=result.class_names)
