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
# Validation pairs up to which each bandwidth is validated by the precomputed contraction
# (VAGrid.lookup_weights): its cost grows with pairs x nodes, the spline path's (a prefilter of the whole
# grid, then 16 coefficients a pair) barely with the pairs. Measured: 94 pairs (one 20-s video) 2 vs 30 ms
# a bandwidth; 10,000 pairs (a collection) 350 vs 140 ms; they cross near 1,000.
WEIGHTED_LOOKUP_MAX_PAIRS = 1000


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
    def _node_estimate(self, grid: VAGrid, counts: np.ndarray, sums: np.ndarray, mean: np.ndarray, h: float,
                       rows: slice = slice(None), cols: slice = slice(None)):
        """Estimate (G, G, C) at the grid nodes for bandwidth h (only at the nodes rows x cols if given)."""
        if self.degree == 0:
            (s0,) = grid.convolve_many(counts, h, ((0, 0),), rows, cols)  # effective number of pairs near each node
            (t0,) = grid.convolve_many(sums, h, ((0, 0),), rows, cols)
            return (t0 + self.shrink * mean) / (s0 + self.shrink)[..., None]
        if self.degree != 1:
            raise ValueError("degree must be 0 (Nadaraya-Watson) or 1 (local linear)")
        # local linear: weighted moments sum_i K(u_i) u_i^p (u = offset / bandwidth)
        s0, sx, sy, sxx, syy, sxy = grid.convolve_many(
            counts, h, ((0, 0), (1, 0), (0, 1), (2, 0), (0, 2), (1, 1)), rows, cols
        )
        t0, tx, ty = grid.convolve_many(sums, h, ((0, 0), (1, 0), (0, 1)), rows, cols)
        # shrink: pseudo-pairs at the node carrying the mean; ridge on the slopes (relative to s0)
        lam = self.ridge * s0 + 1e-9
        r0, r1, r2 = inverse_first_row(s0 + self.shrink, sx, sy, sxx + lam, sxy, syy + lam)
        # b0 = first row of the inverse . [t0 + shrink mean, tx, ty], in place (t0, tx, ty are fresh arrays)
        t0 += self.shrink * mean
        t0 *= r0[..., None]
        tx *= r1[..., None]
        ty *= r2[..., None]
        t0 += tx
        t0 += ty
        return np.ascontiguousarray(t0)

    def _fit_split(self, va_tr, expr_tr, va_val, expr_val) -> dict[str, Any]:
        grid = VAGrid(self.grid_size)
        counts, sums = grid.bin(va_tr, expr_tr)
        mean = expr_tr.mean(axis=0).astype(np.float64)
        # few validation pairs: the spline lookup at them as a contraction, over the nodes that reach them
        weights = grid.lookup_weights(va_val) if len(va_val) <= WEIGHTED_LOOKUP_MAX_PAIRS else None
        history = []
        for h in sorted(float(b) for b in self.bandwidths):
            if weights is not None:
                est = self._node_estimate(grid, counts, sums, mean, h, weights.rows, weights.cols)
                pred = grid.weighted_lookup(weights, est)
            else:
                pred = grid.lookup(grid.spline_coefficients(self._node_estimate(grid, counts, sums, mean, h)), va_val)
            err = rmse(np.clip(pred, 0.0, 1.0), expr_val)
            history.append({"bandwidth": h, "rmse_val": err})
        best = min(r["rmse_val"] for r in history)
        h = max(r["bandwidth"] for r in history if r["rmse_val"] <= best * (1.0 + self.tolerance))
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


def inverse_first_row(a00, a01, a02, a11, a12, a22) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First row of the inverse of the symmetric 3 x 3 matrices [[a00, a01, a02], [., a11, a12], [., ., a22]]
    (element-wise arrays), by cofactors: the adjugate's first row over the determinant."""
    c0 = a11 * a22 - a12 * a12
    c1 = a02 * a12 - a01 * a22
    c2 = a01 * a12 - a02 * a11
    det = a00 * c0 + a01 * c1 + a02 * c2
    return c0 / det, c1 / det, c2 / det
