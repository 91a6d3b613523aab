"""Emotion label + intensity -> region of the valence–arousal plane (the paper's Fig. 4b), one shared table.

Used by the edits stage (sample target VA inside a region), the person dataset's coverage report, and
emotion-fidelity evaluation. V is horizontal, A vertical, both in [-1, 1].

Shape of a region (design of this module, following the layout of Solanki & Roussos 2022, Fig. 4b, where
each label occupies a wedge of the circumplex whose distance from the origin grows with intensity):

- `neutral`: one disc of radius `NEUTRAL_RADIUS` around the origin; it takes no intensity.
- every other label: an annular sector (a slice of a ring) around the label's circumplex direction
  (`circumplex.CIRCUMPLEX_VA`, Russell & Mehrabian 1977 — the same coordinates the `fer` estimator maps its
  class probabilities with, so a confident "happy" estimate lands in the happy region).
  * Angular extent: up to `MAX_HALF_ANGLE` (22.5 deg) each side of the direction, but never past the
    angular midpoint to the neighbouring label's direction. Sectors of different labels therefore never
    overlap, at any intensity, and each label's own direction lies inside its sector.
  * Radial extent: a band of width 1/3 centred on the intensity, `[t - 1/6, t + 1/6]` clipped to
    `[NEUTRAL_RADIUS, 1]`. The named levels low/medium/high = 1/6, 1/2, 5/6 are the centres of three bands
    that tile the ring (0.15..1/3, 1/3..2/3, 2/3..1); a continuous intensity slides the band smoothly
    between them. Radius <= 1 keeps every region inside [-1, 1]^2.

Fear, anger and disgust: Russell & Mehrabian place them only 6 deg (anger–fear) and 13 deg (fear–disgust)
apart on the VA plane — they differ mainly in Dominance, which the VA plane drops. Rather than moving
them (which would make the regions disagree with the estimator's coordinates), the midpoint rule splits
the upper-left quadrant between them: anger 108.3..133.8 deg, fear 133.8..143.3 deg (the narrowest
sector, 9.5 deg), disgust 143.3..172.2 deg. So the three never overlap, but VA alone cannot make an edit's
fear look very different from its anger; the decoder/AU nudges carry that distinction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dfm.affect.circumplex import CIRCUMPLEX_VA, label_angle

LABELS: tuple[str, ...] = ("neutral", "happy", "sad", "surprise", "fear", "anger", "disgust")
INTENSITY_LEVELS: dict[str, float] = {"low": 1 / 6, "medium": 0.5, "high": 5 / 6}

NEUTRAL_RADIUS = 0.15  # radius of the neutral disc; also the inner edge of every label's band
BAND_HALF_WIDTH = 1 / 6  # half the radial width of a band: low/medium/high bands tile [0, 1]
MAX_HALF_ANGLE = math.radians(22.5)  # widest a sector gets each side of its direction
_TWO_PI = 2.0 * math.pi
_EPS = 1e-9  # tolerance so points sampled on an edge count as inside

if set(LABELS) != set(CIRCUMPLEX_VA):  # the two tables must name the same labels
    raise ImportError("regions.LABELS and circumplex.CIRCUMPLEX_VA disagree")


def _check_label(label: str) -> str:
    if not isinstance(label, str) or label not in LABELS:
        raise ValueError(f"unknown emotion label {label!r}; known labels: {', '.join(LABELS)}")
    return label


def parse_intensity(x: str | float | None, label: str) -> float | None:
    """Intensity as a number in [0, 1] (None for neutral).

    Accepts a level name (low, medium, high; any case), a number in [0, 1], or a string of one. `neutral`
    takes no intensity (None, or an empty string); every other label needs one.
    """
    _check_label(label)
    if isinstance(x, str) and x.strip() == "":
        x = None
    if label == "neutral":
        if x is not None:
            raise ValueError(f"neutral takes no intensity (got {x!r})")
        return None
    if x is None:
        raise ValueError(f"{label} needs an intensity: low, medium, high or a number in [0, 1]")
    if isinstance(x, str):
        key = x.strip().lower()
        if key in INTENSITY_LEVELS:
            return INTENSITY_LEVELS[key]
        try:
            value = float(key)
        except ValueError:
            raise ValueError(
                f"intensity {x!r} of {label} is neither low, medium, high nor a number in [0, 1]"
            ) from None
    elif isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise ValueError(f"intensity of {label} must be low, medium, high or a number in [0, 1], got {x!r}")
    else:
        value = float(x)
    if not (0.0 <= value <= 1.0):  # also rejects NaN
        raise ValueError(f"intensity {x!r} of {label} is outside [0, 1]")
    return value


def _wrap(angle: np.ndarray | float) -> np.ndarray:
    """Angle(s) mapped to [0, 2 pi)."""
    return np.mod(angle, _TWO_PI)


@dataclass(frozen=True)
class VARegion:
    """An annular sector of the VA plane: angles in radians from the +valence axis, counter-clockwise.

    `angle_max - angle_min` is the angular width (2 pi for the neutral disc); `radius_min..radius_max` the
    radial band. `intensity` is None for neutral.
    """

    label: str
    intensity: float | None
    angle_min: float
    angle_max: float
    radius_min: float
    radius_max: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.radius_min < self.radius_max <= 1.0):
            raise ValueError(f"bad radial band {self.radius_min}..{self.radius_max} for {self.label}")
        if not (0.0 < self.angle_max - self.angle_min <= _TWO_PI + _EPS):
            raise ValueError(f"bad angular range {self.angle_min}..{self.angle_max} for {self.label}")

    @property
    def angular_width(self) -> float:
        return self.angle_max - self.angle_min

    @property
    def is_full_circle(self) -> bool:
        return self.angular_width >= _TWO_PI - _EPS

    def _in_angle(self, theta: np.ndarray) -> np.ndarray:
        if self.is_full_circle:
            return np.ones(theta.shape, dtype=bool)
        offset = _wrap(theta - self.angle_min)
        # an offset just below 2 pi is a point just before angle_min: inside within tolerance
        return (offset <= self.angular_width + _EPS) | (offset >= _TWO_PI - _EPS)

    def contains(self, va: np.ndarray) -> np.ndarray:
        """(N, 2) points -> (N,) bool, True inside the region (edges included). NaN rows are False."""
        va = np.asarray(va, dtype=np.float64).reshape(-1, 2)
        radius = np.hypot(va[:, 0], va[:, 1])
        theta = np.arctan2(va[:, 1], va[:, 0])
        in_band = (radius >= self.radius_min - _EPS) & (radius <= self.radius_max + _EPS)
        # the origin has no angle: it is inside only a region whose band starts at 0 (neutral)
        return in_band & (self._in_angle(theta) | (radius <= _EPS))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 2) points drawn uniformly over the region's area."""
        if n < 0:
            raise ValueError(f"number of samples must be >= 0, got {n}")
        # uniform in area: radius^2 uniform between the band's squared edges
        r2 = rng.uniform(self.radius_min**2, self.radius_max**2, size=n)
        theta = self.angle_min + rng.uniform(0.0, 1.0, size=n) * self.angular_width
        radius = np.sqrt(r2)
        return np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)

    def distance(self, va: np.ndarray) -> np.ndarray:
        """(N, 2) points -> (N,) Euclidean distance to the region (0 inside)."""
        va = np.asarray(va, dtype=np.float64).reshape(-1, 2)
        radius = np.hypot(va[:, 0], va[:, 1])
        theta = np.arctan2(va[:, 1], va[:, 0])
        radial = np.maximum.reduce([self.radius_min - radius, radius - self.radius_max, np.zeros_like(radius)])
        if self.is_full_circle:
            return radial
        # outside the angular range the nearest point lies on one of the two straight edges
        edge_distances = []
        for edge_angle in (self.angle_min, self.angle_max):
            direction = np.array([math.cos(edge_angle), math.sin(edge_angle)])
            along = np.clip(va @ direction, self.radius_min, self.radius_max)
            edge_distances.append(np.linalg.norm(va - along[:, None] * direction[None, :], axis=1))
        to_edges = np.minimum(edge_distances[0], edge_distances[1])
        return np.where(self._in_angle(theta), radial, to_edges)

    def center(self) -> np.ndarray:
        """(2,) a representative point inside the region: mid-angle, mid-radius (the origin for neutral)."""
        if self.is_full_circle:
            return np.zeros(2)
        radius = 0.5 * (self.radius_min + self.radius_max)
        theta = 0.5 * (self.angle_min + self.angle_max)
        return np.array([radius * math.cos(theta), radius * math.sin(theta)])


def _sector(label: str) -> tuple[float, float]:
    """(angle_min, angle_max) of a label: its direction +- MAX_HALF_ANGLE, cut at the midpoints to neighbours."""
    angle = label_angle(label)
    half_below = half_above = MAX_HALF_ANGLE
    for other in LABELS:
        if other in ("neutral", label):
            continue
        delta = float(_wrap(label_angle(other) - angle))  # counter-clockwise offset of the other label
        half_above = min(half_above, delta / 2.0)
        half_below = min(half_below, (_TWO_PI - delta) / 2.0)
    return angle - half_below, angle + half_above


def radial_band(intensity: float) -> tuple[float, float]:
    """(radius_min, radius_max) of the band of a non-neutral intensity in [0, 1]."""
    low = max(NEUTRAL_RADIUS, intensity - BAND_HALF_WIDTH)
    high = min(1.0, intensity + BAND_HALF_WIDTH)
    return low, max(high, low + 1e-6)


def region_for(label: str, intensity: float | str | None) -> VARegion:
    """The VA region of one label at one intensity (level name or number in [0, 1]; None for neutral)."""
    value = parse_intensity(intensity, label)
    if value is None:
        return VARegion("neutral", None, -math.pi, math.pi, 0.0, NEUTRAL_RADIUS)
    angle_min, angle_max = _sector(label)
    radius_min, radius_max = radial_band(value)
    return VARegion(label, value, angle_min, angle_max, radius_min, radius_max)


def label_regions(intensity: float | str) -> dict[str, VARegion]:
    """Region of every label at one intensity (neutral's region ignores it)."""
    return {label: region_for(label, None if label == "neutral" else intensity) for label in LABELS}


def coverage(va: np.ndarray) -> dict[str, dict[str, int]]:
    """How many VA points fall in each label's region at each intensity level.

    Returns {label: {"low": n, "medium": n, "high": n}} for the six non-neutral labels, {"neutral": {"all": n}}
    and {"unassigned": {"all": n}} for points in no region (between sectors, or beyond radius 1 in the
    corners of the square). Each point is counted once (a point on a shared band edge goes to the lower
    level). Rows with NaN (invalid frames) are not counted.
    """
    va = np.asarray(va, dtype=np.float64).reshape(-1, 2)
    va = va[np.isfinite(va).all(axis=1)]
    unassigned = np.ones(len(va), dtype=bool)
    report: dict[str, dict[str, int]] = {}
    neutral = region_for("neutral", None).contains(va)
    report["neutral"] = {"all": int(neutral.sum())}
    unassigned &= ~neutral
    for label in LABELS:
        if label == "neutral":
            continue
        report[label] = {}
        for level in INTENSITY_LEVELS:
            inside = region_for(label, level).contains(va) & unassigned
            report[label][level] = int(inside.sum())
            unassigned &= ~inside
    report["unassigned"] = {"all": int(unassigned.sum())}
    return report
