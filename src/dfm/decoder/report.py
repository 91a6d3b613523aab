"""Training report of a decoder: errors per split, per coefficient, and against the trivial baseline."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dfm.face.expressions import EXPRESSION_NAMES


def rmse(pred: np.ndarray, target: np.ndarray) -> float:
    """Root mean squared error over all elements (the paper's loss, and every figure in the report)."""
    d = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    return float(np.sqrt(np.mean(d * d))) if d.size else float("nan")


def rmse_per_coefficient(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    d = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    per = np.sqrt(np.mean(d * d, axis=0)) if d.shape[0] else np.full(d.shape[1], np.nan)
    return {name: float(v) for name, v in zip(EXPRESSION_NAMES, per)}


@dataclass
class TrainingReport:
    """What a fit measured. Validation figures come from the model trained on the training split only."""

    decoder: str  # decoder kind, e.g. "kernel", "mlp"
    n_pairs: int
    n_train: int
    n_val: int
    n_dropped: int  # purged around validation blocks
    rmse_train: float
    rmse_val: float
    rmse_val_baseline: float  # predicting the training pairs' mean expression
    per_coefficient_val_rmse: dict[str, float]
    train_seconds: float
    epochs: int | None = None  # epochs run (None for non-parametric decoders)
    best_epoch: int | None = None
    selected: dict[str, Any] = field(default_factory=dict)  # hyper-parameters chosen on validation
    history: list[dict[str, float]] = field(default_factory=list)  # val curve (per epoch / per candidate)
    split: dict[str, Any] = field(default_factory=dict)
    refit_on_all: bool = False  # the final model was refit on train + val with the selected settings

    @property
    def improvement_over_baseline(self) -> float:
        """1 - rmse_val / rmse_val_baseline (0 = no better than the mean expression, 1 = perfect)."""
        return 1.0 - self.rmse_val / self.rmse_val_baseline if self.rmse_val_baseline > 0 else 0.0

    def worst_coefficients(self, k: int = 5) -> list[tuple[str, float]]:
        items = sorted(self.per_coefficient_val_rmse.items(), key=lambda kv: -kv[1])
        return items[:k]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["improvement_over_baseline"] = self.improvement_over_baseline
        return to_jsonable(d)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainingReport":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    def summary(self) -> str:
        ep = f", {self.epochs} epochs (best {self.best_epoch})" if self.epochs is not None else ""
        sel = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.selected.items())
        return (
            f"{self.decoder}: val RMSE {self.rmse_val:.4f} (mean-expression baseline {self.rmse_val_baseline:.4f}, "
            f"{100 * self.improvement_over_baseline:.0f}% better), train RMSE {self.rmse_train:.4f}; "
            f"{self.n_train} train / {self.n_val} val / {self.n_dropped} purged pairs; "
            f"{self.train_seconds:.1f} s{ep}" + (f"; {sel}" if sel else "")
        )


def to_jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        x = float(x)
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x
