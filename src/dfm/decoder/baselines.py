"""The two decoders that a person's data decoder must beat (dfm.decoder.select picks among all of them).

- `MeanDecoder`: the person's mean expression, whatever the VA (the trivial baseline of every report).
- `PriorMeanDecoder`: the person's mean expression plus `alpha` times the universal FACS prior's
  activation at the query (dfm.decoder.prior), with alpha chosen on the validation time blocks: the
  generic emotion layout on the person's own average face, for data too thin or too noisy for a
  regression to learn the person's own layout from.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from dfm.decoder.base import DataDecoder
from dfm.decoder.prior import FacsPrior
from dfm.decoder.report import rmse


class MeanDecoder(DataDecoder):
    """Predicts the training pairs' mean expression for every VA point."""

    kind: ClassVar[str] = "mean"

    def __init__(self, *, refit: bool = True, val_fraction: float = 0.2, block_frames: int = 48,
                 gap_frames: int | None = None, seed: int = 0):
        self.refit = refit
        self.val_fraction = val_fraction
        self.block_frames = block_frames
        self.gap_frames = gap_frames
        self.seed = seed

    def _fit_split(self, va_tr, expr_tr, va_val, expr_val) -> dict[str, Any]:
        self.mean_ = expr_tr.mean(axis=0).astype(np.float32)
        return {}

    def _refit_all(self, va, expr, info) -> None:
        self.mean_ = expr.mean(axis=0).astype(np.float32)

    def _predict_raw(self, va: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.mean_, (va.shape[0], self.mean_.size)).copy()

    def _state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.mean_ = np.asarray(arrays["mean"], np.float32)


class PriorMeanDecoder(DataDecoder):
    """mean expression + alpha * FacsPrior activation(va); alpha chosen on the validation blocks."""

    kind: ClassVar[str] = "prior_mean"

    def __init__(self, *, alphas: Sequence[float] = (0.25, 0.5, 0.75, 1.0), refit: bool = True,
                 val_fraction: float = 0.2, block_frames: int = 48, gap_frames: int | None = None, seed: int = 0):
        self.alphas = alphas
        self.refit = refit
        self.val_fraction = val_fraction
        self.block_frames = block_frames
        self.gap_frames = gap_frames
        self.seed = seed

    def _fit_split(self, va_tr, expr_tr, va_val, expr_val) -> dict[str, Any]:
        mean = expr_tr.mean(axis=0).astype(np.float64)
        act = FacsPrior().activation(va_val)
        history = []
        for a in self.alphas:
            err = rmse(np.clip(mean + float(a) * act, 0.0, 1.0), expr_val)
            history.append({"alpha": float(a), "rmse_val": err})
        best = min(history, key=lambda r: r["rmse_val"])
        self.alpha_ = best["alpha"]
        self.mean_ = mean.astype(np.float32)
        return {"selected": {"alpha": self.alpha_}, "history": history}

    def _refit_all(self, va, expr, info) -> None:
        self.mean_ = expr.mean(axis=0).astype(np.float32)

    def _predict_raw(self, va: np.ndarray) -> np.ndarray:
        return self.mean_[None, :] + self.alpha_ * FacsPrior().activation(va)

    def _state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "alpha": np.array(self.alpha_, np.float64)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.mean_ = np.asarray(arrays["mean"], np.float32)
        self.alpha_ = float(arrays["alpha"])
