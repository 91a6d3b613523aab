"""VA trajectory of one edit: random points inside the edit's VA region at equally spaced instants, joined
by an interpolating B-spline to one (valence, arousal) pair per frame (the paper's §3.4).

Knots: one every `knot_interval` seconds (default 1 s) across the edit, at least 2, the first on the
edit's first frame and the last on its last frame; the points are drawn with `region.sample` from the
caller's numpy Generator.

Where the curve runs: the regions of `dfm.affect.regions` are annular sectors (and a disc for neutral), and
a sector is not convex — a chord between two points of a wide ring can cut through the inner arc. So for a
sector the spline interpolates the points in the region's own polar coordinates (radius, angle from the
sector's first edge), where the sector is a rectangle; for the neutral disc it interpolates in (V, A).
The cubic spline can overshoot its points a little: the curve is then clamped to the rectangle (the disc),
which keeps every frame's VA inside the region and is continuous (the later smoothing spline of the
decoded expression removes the slope kink a clamp can leave). A region of another shape would be
interpolated in (V, A) and only clipped to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import make_interp_spline

DEFAULT_KNOT_INTERVAL = 1.0  # seconds between random VA points along an edit


@dataclass(frozen=True)
class VATrajectory:
    va: np.ndarray  # (n, 2) one VA per frame of the edit
    knot_times: np.ndarray  # (K,) seconds
    knot_va: np.ndarray  # (K, 2) the random points (all inside the region)


def knot_times(t0: float, t1: float, knot_interval: float = DEFAULT_KNOT_INTERVAL) -> np.ndarray:
    """Equally spaced instants from t0 to t1, about knot_interval apart, at least 2 (1 if t0 == t1)."""
    if t1 <= t0:
        return np.array([t0], dtype=np.float64)
    k = max(2, int(round((t1 - t0) / knot_interval)) + 1)
    return np.linspace(t0, t1, k)


def _interp(t_knots: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Interpolating B-spline through (t_knots, y) evaluated at t: cubic (natural ends) when 4+ knots."""
    k = len(t_knots)
    if k == 1:
        return np.repeat(y[:1], len(t), axis=0)
    degree = min(3, k - 1)
    bc = "natural" if degree == 3 else None
    spline = make_interp_spline(t_knots, y, k=degree, bc_type=bc)
    return spline(np.clip(t, t_knots[0], t_knots[-1]))


def _is_sector(region: object) -> bool:
    return all(hasattr(region, a) for a in ("angle_min", "angle_max", "radius_min", "radius_max")) and not getattr(
        region, "is_full_circle", False
    )


def _is_disc(region: object) -> bool:
    return getattr(region, "is_full_circle", False) and getattr(region, "radius_min", None) == 0.0


def interpolate_in_region(region: object, t_knots: np.ndarray, knot_va: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(n, 2) VA at times t on the B-spline through the knots, kept inside `region` (see module doc)."""
    knot_va = np.asarray(knot_va, dtype=np.float64).reshape(-1, 2)
    if _is_sector(region):
        r0, r1 = float(region.radius_min), float(region.radius_max)  # type: ignore[attr-defined]
        a0, a1 = float(region.angle_min), float(region.angle_max)  # type: ignore[attr-defined]
        radius = np.hypot(knot_va[:, 0], knot_va[:, 1])
        offset = np.mod(np.arctan2(knot_va[:, 1], knot_va[:, 0]) - a0, 2 * np.pi)
        offset = np.where(offset > (a1 - a0) + np.pi, offset - 2 * np.pi, offset)  # just before the edge
        polar = _interp(t_knots, np.stack([radius, offset], axis=1), t)
        rad = np.clip(polar[:, 0], r0, r1)
        ang = a0 + np.clip(polar[:, 1], 0.0, a1 - a0)
        va = np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)
    else:
        va = _interp(t_knots, knot_va, t)
        if _is_disc(region):
            r = np.hypot(va[:, 0], va[:, 1])
            r_max = float(region.radius_max)  # type: ignore[attr-defined]
            scale = np.where(r > r_max, r_max / np.maximum(r, 1e-12), 1.0)
            va = va * scale[:, None]
    return np.clip(va, -1.0, 1.0)


def va_trajectory(
    region: object,
    times: np.ndarray,
    rng: np.random.Generator,
    knot_interval: float = DEFAULT_KNOT_INTERVAL,
) -> VATrajectory:
    """Random VA points in `region` every ~knot_interval s across `times` (the edit's frame timestamps),
    interpolated to one VA per frame."""
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    if times.size == 0:
        raise ValueError("an edit has at least one frame")
    if not knot_interval > 0:
        raise ValueError(f"knot_interval must be > 0 s, got {knot_interval}")
    t_knots = knot_times(float(times[0]), float(times[-1]), knot_interval)
    knot_va = np.asarray(region.sample(len(t_knots), rng), dtype=np.float64).reshape(-1, 2)  # type: ignore[attr-defined]
    va = interpolate_in_region(region, t_knots, knot_va, times)
    return VATrajectory(va=va, knot_times=t_knots, knot_va=knot_va)
