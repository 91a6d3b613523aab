"""The fast default decoder: kernel regression over the 2-D valence-arousal plane.

Valence-arousal is 2-D, so the decoder need not be a deep net. KernelDecoder is a Gaussian-kernel
local-linear regression (Fan & Gijbels 1996; `degree=0` gives Nadaraya 1964 / Watson 1964, which flattens
at the edge of the data: local-linear halves the error there) computed on a 129 x 129 grid by linear
binning (dfm.decoder.grid): fitting 50,000 pairs takes seconds, not hours. The only hyper-parameter, the
bandwidth, is chosen on the validation time blocks; among bandwidths within `tolerance` of the best
validation RMSE the largest is taken, because a smoother map means less flicker when edits move along a
VA spline. The estimate is a cubic spline over the grid nodes, so it is C2 in VA. Where the training data
thins out it shrinks towards the person's mean expression (`shrink` pseudo-pairs; `ridge` damps the
local slopes); the PersonDecoder then blends towards the universal FACS prior there.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from dfm.decoder.base import DataDecoder
from dfm.decoder.grid import VAGrid
from dfm.decoder.report import rmse

DEFAULT_BANDWIDTHS = tuple(float(h) for h in np.round(np.geomspace(0.03, 0.5, 13), 4))


class KernelDecoder(DataDecoder):
    """Binned Gaussian-kernel regression VA -> expression, bandwidth chosen on validation time blocks."""

    kind: ClassVar[str] = "kernel"

    def __init__(
        self,
        bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
        degree: int = 1,
        tolerance: float = 0.005,
        shrink: float = 1.0,
        ridge: float = 0.05,
        grid_size: int = 129,
        refit: bool = True,
        val_fraction: float = 0.2,
        block_frames: int = 48,
        gap_frames: int | None = None,
        seed: int = 0,
    ):
        self.bandwidths = bandwidths
        self.degree = degree
        self.tolerance = tolerance
        self.shrink = shrink
        self.ridge = ridge
        self.grid_size = grid_size
        self.refit = refit
        self.val_fraction = val_fraction
        self.block_frames = block_frames
        self.gap_frames = gap_frames
        self.seed = seed

    # -- estimation on the grid -------------------------------------------------------------------
    def _node_estimate(self, grid: VAGrid, counts: np.ndarray, sums: np.ndarray, mean: np.ndarray, h: float):
        """Estimate (G, G, C) at the grid nodes for bandwidth h."""
        conv = grid.convolve
        s0 = conv(counts, h)  # effective number of pairs near each node
        t0 = conv(sums, h)
        if self.degree == 0:
            return (t0 + self.shrink * mean) / (s0 + self.shrink)[..., None]
        if self.degree != 1:
            raise ValueError("degree must be 0 (Nadaraya-Watson) or 1 (local linear)")
        # local linear: weighted moments sum_i K(u_i) u_i^p (u = offset / bandwidth)
        sx, sy = conv(counts, h, 1, 0), conv(counts, h, 0, 1)
        sxx, syy, sxy = conv(counts, h, 2, 0), conv(counts, h, 0, 2), conv(counts, h, 1, 1)
        tx, ty = conv(sums, h, 1, 0), conv(sums, h, 0, 1)
        # shrink: pseudo-pairs at the node carrying the mean; ridge on the slopes (relative to s0)
        a00 = s0 + self.shrink
        lam = self.ridge * s0 + 1e-9
        a = np.stack(
            [
                np.stack([a00, sx, sy], -1),
                np.stack([sx, sxx + lam, sxy], -1),
                np.stack([sy, sxy, syy + lam], -1),
            ],
            -2,
        )
        first_row = np.linalg.inv(a)[..., 0, :]  # (G, G, 3): b0 = row . [t0, tx, ty]
        t0 = t0 + self.shrink * mean
        return first_row[..., 0:1] * t0 + first_row[..., 1:2] * tx + first_row[..., 2:3] * ty

    def _fit_split(self, va_tr, expr_tr, va_val, expr_val) -> dict[str, Any]:
        grid = VAGrid(self.grid_size)
        counts, sums = grid.bin(va_tr, expr_tr)
        mean = expr_tr.mean(axis=0).astype(np.float64)
        history = []
        best = None
        for h in sorted(float(b) for b in self.bandwidths):
            est = self._node_estimate(grid, counts, sums, mean, h)
            pred = np.clip(grid.lookup(grid.spline_coefficients(est), va_val), 0.0, 1.0)
            err = rmse(pred, expr_val)
            history.append({"bandwidth": h, "rmse_val": err})
            if best is None or err < best:
                best = err
        ok = [r["bandwidth"] for r in history if r["rmse_val"] <= best * (1.0 + self.tolerance)]
        h = max(ok)
        self._set_from_data(grid, counts, sums, mean, h)
        return {"selected": {"bandwidth": h}, "history": history}

    def _refit_all(self, va, expr, info) -> None:
        grid = VAGrid(self.grid_size)
        counts, sums = grid.bin(va, expr)
        self._set_from_data(grid, counts, sums, expr.mean(axis=0).astype(np.float64), self.bandwidth_)

    def _set_from_data(self, grid, counts, sums, mean, h) -> None:
        self.bandwidth_ = float(h)
        self.node_values_ = self._node_estimate(grid, counts, sums, mean, h).astype(np.float32)
        self._coeffs = None

    def _predict_raw(self, va: np.ndarray) -> np.ndarray:
        grid = VAGrid(self.grid_size)
        if getattr(self, "_coeffs", None) is None:
            self._coeffs = grid.spline_coefficients(self.node_values_)
        return grid.lookup(self._coeffs, va)

    def _state(self) -> dict[str, np.ndarray]:
        return {"node_values": self.node_values_, "bandwidth": np.array(self.bandwidth_, np.float64)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.node_values_ = np.asarray(arrays["node_values"], np.float32)
        self.bandwidth_ = float(arrays["bandwidth"])
        self._coeffs = None
