"""Affect stage: face crops -> valence/arousal per frame, and the shared label -> VA region table.

Light imports only here (no torch): estimators live in `dfm.affect.fer`, `dfm.affect.emonet`, and are made
by name with `dfm.affect.registry.make_estimator`.
"""

from dfm.affect.base import AffectEstimator, AffectResult
from dfm.affect.regions import INTENSITY_LEVELS, LABELS, VARegion, coverage, label_regions, parse_intensity, region_for

__all__ = [
    "AffectEstimator",
    "AffectResult",
    "INTENSITY_LEVELS",
    "LABELS",
    "VARegion",
    "coverage",
    "label_regions",
    "parse_intensity",
    "region_for",
]
