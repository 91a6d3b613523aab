"""Common machinery of the data decoders (VA -> 53 expression coefficients learned from a person's pairs).

Estimators follow scikit-learn conventions: hyper-parameters are constructor arguments stored unchanged
as attributes, learned state ends with an underscore, `fit` returns self, `predict` returns (N, 53)
clipped to [0, 1]. `fit` always splits the pairs by time blocks (dfm.decoder.split), selects what it
selects (bandwidth, stopping epoch) on the validation blocks and fills `report_`.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, ClassVar

import numpy as np

from dfm.errors import DfmError
from dfm.face.expressions import N_EXPRESSIONS
from dfm.decoder.report import TrainingReport, rmse, rmse_per_coefficient
from dfm.decoder.split import TimeBlockSplit, time_block_split


def check_va(va: Any) -> np.ndarray:
    """(N, 2) float32 valence/arousal, finite, clipped to [-1, 1]. A single (2,) point becomes (1, 2)."""
    va = np.asarray(va, dtype=np.float32)
    if va.ndim == 1 and va.shape[0] == 2:
        va = va[None]
    if va.ndim != 2 or va.shape[1] != 2:
        raise DfmError(f"valence/arousal must have shape (N, 2), got {va.shape}")
    if not np.all(np.isfinite(va)):
        raise DfmError("valence/arousal contains NaN or infinite values")
    return np.clip(va, -1.0, 1.0)


def check_expr(expr: Any, n: int | None = None) -> np.ndarray:
    expr = np.asarray(expr, dtype=np.float32)
    if expr.ndim != 2 or expr.shape[1] != N_EXPRESSIONS:
        raise DfmError(f"expressions must have shape (N, {N_EXPRESSIONS}), got {expr.shape}")
    if n is not None and expr.shape[0] != n:
        raise DfmError(f"{n} valence/arousal pairs but {expr.shape[0]} expressions")
    if not np.all(np.isfinite(expr)):
        raise DfmError("expressions contain NaN or infinite values")
    return expr


def resolve_split(
    n: int,
    video_ids: Any,
    frame_index: Any,
    split: TimeBlockSplit | None,
    val_fraction: float,
    block_frames: int,
    gap_frames: int | None,
    seed: int,
) -> TimeBlockSplit:
    """The split to use: the given one, else time blocks (pairs without ids: one video in frame order)."""
    if split is not None:
        total = split.train.size + split.val.size + split.dropped.size
        if total != n:
            raise DfmError(f"the given split covers {total} pairs, the data has {n}")
        return split
    vids = np.zeros(n, dtype=np.int64) if video_ids is None else np.asarray(video_ids).reshape(-1)
    frames = np.arange(n, dtype=np.int64) if frame_index is None else np.asarray(frame_index).reshape(-1)
    if vids.size != n or frames.size != n:
        raise DfmError(f"video_ids / frame_index must have one entry per pair ({n})")
    return time_block_split(
        vids, frames, val_fraction, block_frames=block_frames, gap_frames=gap_frames, seed=seed
    )


class DataDecoder:
    """Base class. Subclasses implement `_fit_split`, `_predict_raw`, `_state`, `_set_state`."""

    kind: ClassVar[str] = "base"

    # -- scikit-learn style parameter access -------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        out = {}
        for name in self._param_names():
            v = getattr(self, name)
            out[name] = list(v) if isinstance(v, tuple) else v
        return out

    def set_params(self, **params: Any) -> "DataDecoder":
        for k, v in params.items():
            if k not in self._param_names():
                raise DfmError(f"{type(self).__name__} has no parameter {k!r}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "report_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise DfmError(f"{type(self).__name__} is not fitted: call fit() or load() first")

    # -- fit / predict ----------------------------------------------------------------------------
    def fit(
        self,
        va: Any,
        expr: Any,
        *,
        video_ids: Any = None,
        frame_index: Any = None,
        split: TimeBlockSplit | None = None,
    ) -> "DataDecoder":
        """Fit on a person's pairs. va (N, 2), expr (N, 53); video_ids / frame_index (N,) for the
        time-block split (without them the pairs are taken as one video in frame order)."""
        va = check_va(va)
        expr = check_expr(expr, va.shape[0])
        split = resolve_split(
            va.shape[0], video_ids, frame_index, split,
            self.val_fraction, self.block_frames, self.gap_frames, self.seed,  # type: ignore[attr-defined]
        )
        self.split_ = split
        tr, vl = split.train, split.val
        t0 = time.perf_counter()
        info = self._fit_split(va[tr], expr[tr], va[vl], expr[vl])
        pred_tr = self._predict_clipped(va[tr])
        pred_vl = self._predict_clipped(va[vl])
        refit = bool(getattr(self, "refit", False))
        if refit:
            keep = np.concatenate([tr, vl])
            self._refit_all(va[keep], expr[keep], info)
        seconds = time.perf_counter() - t0
        mean = expr[tr].mean(axis=0)
        self.mean_expression_ = mean.astype(np.float32)
        self.report_ = TrainingReport(
            decoder=self.kind,
            n_pairs=int(va.shape[0]),
            n_train=int(tr.size),
            n_val=int(vl.size),
            n_dropped=int(split.dropped.size),
            rmse_train=rmse(pred_tr, expr[tr]),
            rmse_val=rmse(pred_vl, expr[vl]),
            rmse_val_baseline=rmse(np.broadcast_to(mean, expr[vl].shape), expr[vl]),
            per_coefficient_val_rmse=rmse_per_coefficient(pred_vl, expr[vl]),
            train_seconds=float(seconds),
            epochs=info.get("epochs"),
            best_epoch=info.get("best_epoch"),
            selected=info.get("selected", {}),
            history=info.get("history", []),
            split=split.summary(),
            refit_on_all=refit,
        )
        return self

    def predict(self, va: Any) -> np.ndarray:
        """(N, 2) valence/arousal -> (N, 53) float32 expression coefficients in [0, 1]."""
        self._check_fitted()
        return self._predict_clipped(check_va(va))

    def _predict_clipped(self, va: np.ndarray) -> np.ndarray:
        if va.shape[0] == 0:
            return np.zeros((0, N_EXPRESSIONS), np.float32)
        return np.clip(self._predict_raw(va), 0.0, 1.0).astype(np.float32)

    # -- subclass hooks ---------------------------------------------------------------------------
    def _fit_split(self, va_tr, expr_tr, va_val, expr_val) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def _refit_all(self, va, expr, info) -> None:  # pragma: no cover
        raise NotImplementedError

    def _predict_raw(self, va: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:  # pragma: no cover
        """Learned arrays to persist (besides report_ and mean_expression_)."""
        raise NotImplementedError

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:  # pragma: no cover
        raise NotImplementedError

    # -- persistence (see dfm.decoder.persist) -----------------------------------------------------
    def save(self, directory: Any, *, overwrite: bool = False, data_info: dict | None = None) -> None:
        from dfm.decoder.persist import save_model

        save_model(self, directory, overwrite=overwrite, data_info=data_info)

    @classmethod
    def load(cls, directory: Any) -> "DataDecoder":
        from dfm.decoder.persist import load_model

        obj = load_model(directory)
        if not isinstance(obj, cls):
            raise DfmError(f"{directory} holds a {type(obj).__name__}, not a {cls.__name__}")
        return obj
