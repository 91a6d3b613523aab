"""Synthetic (VA, expression) datasets with a known smooth VA -> expression map, for tests and benchmarks.

Shaped like a real collection: several videos; per video a smooth VA trajectory (an Ornstein-Uhlenbeck
process around the video's mood, squashed into [-1, 1]); the expression is the true map of VA plus
slowly varying (AR(1)) and per-frame noise, clipped to [0, 1]; a few frames are missing (no face), so
frame indices have gaps. `noise_floor(d, idx)` = RMSE of the true map itself = the best any decoder can do
(up to the clipping).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfm.face.expressions import N_EXPRESSIONS, expression_index


@dataclass
class SyntheticPairs:
    va: np.ndarray  # (N, 2) float32
    expr: np.ndarray  # (N, 53) float32 in [0, 1]
    video_ids: np.ndarray  # (N,) int
    frame_index: np.ndarray  # (N,) int
    fps: float
    true_map: "SmoothMap"

    def noise_floor(self, idx: np.ndarray | None = None) -> float:
        idx = np.arange(self.va.shape[0]) if idx is None else idx
        d = self.true_map(self.va[idx]) - self.expr[idx]
        return float(np.sqrt(np.mean(d.astype(np.float64) ** 2)))


class SmoothMap:
    """A smooth map [-1,1]^2 -> [0,1]^53: a few readable emotion trends plus random low-frequency terms."""

    def __init__(self, seed: int = 0, n_features: int = 12, max_freq: float = 2.0):
        rng = np.random.default_rng(seed)
        self.freq = rng.normal(0.0, max_freq / 2.0, size=(n_features, 2))
        self.phase = rng.uniform(0, 2 * np.pi, size=n_features)
        self.weight = rng.normal(0.0, 0.6, size=(n_features, N_EXPRESSIONS)) * (rng.random(N_EXPRESSIONS) < 0.5)
        self.bias = rng.uniform(-3.5, -1.5, size=N_EXPRESSIONS)
        # readable trends: smiles with valence, frowns against it, brows / eyes / jaw with arousal
        self.lin = np.zeros((2, N_EXPRESSIONS))
        for name, v, a, b in (
            ("mouthSmile_L", 4.5, 0.5, -1.0), ("mouthSmile_R", 4.5, 0.5, -1.0),
            ("cheekSquint_L", 3.0, 0.3, -1.8), ("cheekSquint_R", 3.0, 0.3, -1.8),
            ("mouthFrown_L", -4.0, -0.5, -2.2), ("mouthFrown_R", -4.0, -0.5, -2.2),
            ("browInnerUp_L", -1.0, 3.0, -1.5), ("browInnerUp_R", -1.0, 3.0, -1.5),
            ("eyeWide_L", 0.0, 3.5, -2.0), ("eyeWide_R", 0.0, 3.5, -2.0), ("jawOpen", 0.5, 3.0, -2.0),
            ("browDown_L", -3.0, 1.0, -2.5), ("browDown_R", -3.0, 1.0, -2.5),
        ):
            j = expression_index(name)
            self.lin[:, j] = (v, a)
            self.bias[j] = b

    def __call__(self, va: np.ndarray) -> np.ndarray:
        va = np.asarray(va, np.float64)
        feats = np.cos(va @ self.freq.T + self.phase)  # (N, F)
        z = self.bias + va @ self.lin + feats @ self.weight
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def synthetic_pairs(
    n_pairs: int = 50_000,
    n_videos: int = 20,
    fps: float = 25.0,
    noise: float = 0.03,
    slow_noise: float = 0.03,
    va_noise: float = 0.0,
    missing: float = 0.02,
    seed: int = 0,
    map_seed: int | None = None,
) -> SyntheticPairs:
    """n_pairs pairs over n_videos videos. noise: per-frame std; slow_noise: std of an AR(1) (time constant
    ~1 s) term, the person's expression variation that VA does not explain; va_noise: jitter of the
    observed VA (the affect estimator's error); missing: fraction of frames without a face."""
    rng = np.random.default_rng(seed)
    true_map = SmoothMap(seed if map_seed is None else map_seed)
    per = int(np.ceil(n_pairs / (1.0 - missing) / n_videos)) + 1
    va_all, ex_all, vid_all, fr_all = [], [], [], []
    dt = 1.0 / fps
    theta = 1.0 / 2.0  # OU mean reversion: time constant 2 s
    rho = np.exp(-dt / 1.0)
    for v in range(n_videos):
        mood = rng.normal(0.0, 0.6, size=2)
        z = np.empty((per, 2))
        z[0] = mood + rng.normal(0, 0.4, 2)
        step = rng.normal(0.0, 0.9 * np.sqrt(dt), size=(per, 2))
        for t in range(1, per):
            z[t] = z[t - 1] + theta * (mood - z[t - 1]) * dt + step[t]
        va = np.tanh(z)
        e_slow = np.empty((per, N_EXPRESSIONS))
        e_slow[0] = rng.normal(0, slow_noise, N_EXPRESSIONS)
        innov = rng.normal(0, slow_noise * np.sqrt(1 - rho**2), size=(per, N_EXPRESSIONS))
        for t in range(1, per):
            e_slow[t] = rho * e_slow[t - 1] + innov[t]
        expr = true_map(va) + e_slow + rng.normal(0, noise, size=(per, N_EXPRESSIONS))
        keep = rng.random(per) >= missing
        obs_va = np.clip(va + rng.normal(0, va_noise, size=va.shape), -1, 1) if va_noise > 0 else va
        va_all.append(obs_va[keep])
        ex_all.append(np.clip(expr[keep], 0.0, 1.0))
        vid_all.append(np.full(int(keep.sum()), v))
        fr_all.append(np.flatnonzero(keep))
    va = np.concatenate(va_all)[:n_pairs].astype(np.float32)
    expr = np.concatenate(ex_all)[:n_pairs].astype(np.float32)
    return SyntheticPairs(
        va=va,
        expr=expr,
        video_ids=np.concatenate(vid_all)[:n_pairs].astype(np.int64),
        frame_index=np.concatenate(fr_all)[:n_pairs].astype(np.int64),
        fps=float(fps),
        true_map=true_map,
    )
