"""The affect estimator interface: a batch of face crops -> valence, arousal (and class probabilities)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class AffectResult:
    """Per-crop affect estimates. valence/arousal (N,) float32 in [-1, 1]; probs (N, C) or None."""

    valence: np.ndarray
    arousal: np.ndarray
    probs: np.ndarray | None
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = self.valence.shape[0]
        if self.valence.shape != (n,) or self.arousal.shape != (n,):
            raise ValueError(f"valence/arousal must be (N,), got {self.valence.shape} and {self.arousal.shape}")
        if self.probs is not None and self.probs.shape != (n, len(self.class_names)):
            raise ValueError(f"probs must be ({n}, {len(self.class_names)}), got {self.probs.shape}")

    @property
    def va(self) -> np.ndarray:
        """(N, 2) valence, arousal."""
        return np.stack([self.valence, self.arousal], axis=1)

    @staticmethod
    def concatenate(results: list[AffectResult]) -> AffectResult:
        """Join per-batch results in order (all from the same estimator)."""
        if not results:
            raise ValueError("no results to concatenate")
        names = results[0].class_names
        probs = None if results[0].probs is None else np.concatenate([r.probs for r in results])
        return AffectResult(
            valence=np.concatenate([r.valence for r in results]),
            arousal=np.concatenate([r.arousal for r in results]),
            probs=probs,
            class_names=names,
        )


@runtime_checkable
class AffectEstimator(Protocol):
    """A pluggable affect model.

    `crop_size` and `crop_margin` tell `crops.face_crops` how to cut the crops this model expects (square
    side in pixels; margin added on each side as a fraction of the landmarks' box side).
    """

    name: str
    crop_size: int
    crop_margin: float

    def predict(self, crops: np.ndarray) -> AffectResult:
        """crops (N, S, S, 3) uint8 RGB with S == crop_size -> AffectResult with N rows."""
        ...


def check_crops(crops: np.ndarray, size: int) -> np.ndarray:
    """Validate a crop batch: (N, size, size, 3) uint8; a single crop (size, size, 3) becomes a batch of 1."""
    crops = np.asarray(crops)
    if crops.ndim == 3:
        crops = crops[None]
    if crops.ndim != 4 or crops.shape[1:] != (size, size, 3) or crops.dtype != np.uint8:
        raise ValueError(f"expected crops (N, {size}, {size}, 3) uint8 RGB, got {crops.shape} {crops.dtype}")
    return crops
