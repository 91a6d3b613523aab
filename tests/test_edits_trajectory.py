"""VA trajectory: random points inside the region, B-spline, continuity."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.affect.regions import INTENSITY_LEVELS, LABELS, region_for
from dfm.edits.trajectory import interpolate_in_region, knot_times, va_trajectory

FPS = 25.0
ALL_REGIONS = [("neutral", None)] + [
    (label, level) for label in LABELS if label != "neutral" for level in (*INTENSITY_LEVELS, 0.0, 0.4, 1.0)
]
# Largest VA step between neighbouring frames: a region is at most ~0.8 across and the points are ~1 s
# apart, so a cubic through them moves well under 0.1 per frame at 25 fps.
MAX_STEP = 0.1


def test_knot_times() -> None:
    assert np.allclose(knot_times(2.0, 5.5), np.linspace(2.0, 5.5, 5))  # every ~1 s, ends included
    assert len(knot_times(0.0, 0.3)) == 2  # at least two
    assert len(knot_times(0.0, 10.0, knot_interval=0.5)) == 21
    assert len(knot_times(1.0, 1.0)) == 1


@pytest.mark.parametrize("label, intensity", ALL_REGIONS)
def test_samples_and_curve_inside_region_and_continuous(label: str, intensity) -> None:
    region = region_for(label, intensity)
    times = np.arange(0, 4.0, 1 / FPS) + 3.0
    for seed in range(5):
        traj = va_trajectory(region, times, np.random.default_rng(seed))
        assert traj.va.shape == (len(times), 2)
        assert len(traj.knot_times) == 5
        assert region.contains(traj.knot_va).all(), "a random VA point fell outside its region"
        assert region.contains(traj.va).all(), "the trajectory left its region"
        assert np.all(np.abs(traj.va) <= 1.0)
        steps = np.linalg.norm(np.diff(traj.va, axis=0), axis=1)
        assert steps.max() < MAX_STEP
        # the curve passes through its random points (B-spline interpolation)
        through = interpolate_in_region(region, traj.knot_times, traj.knot_va, traj.knot_times)
        assert np.allclose(through, traj.knot_va, atol=1e-9)
        assert np.allclose(traj.va[[0, -1]], traj.knot_va[[0, -1]], atol=1e-9)  # first/last frame on a knot


def test_same_generator_same_trajectory() -> None:
    region = region_for("happy", "high")
    times = np.arange(100) / FPS
    a = va_trajectory(region, times, np.random.default_rng(7)).va
    b = va_trajectory(region, times, np.random.default_rng(7)).va
    c = va_trajectory(region, times, np.random.default_rng(8)).va
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_overshoot_is_clamped_into_a_narrow_sector() -> None:
    # fear's sector is the narrowest (9.5 deg): alternate points on its two edges make a cubic overshoot
    region = region_for("fear", "high")
    r = 0.5 * (region.radius_min + region.radius_max)
    angles = [region.angle_min, region.angle_max] * 3
    knots = np.array([[r * np.cos(a), r * np.sin(a)] for a in angles])
    t_knots = np.arange(len(knots), dtype=float)
    va = interpolate_in_region(region, t_knots, knots, np.linspace(0, len(knots) - 1, 200))
    assert region.contains(va).all()


def test_single_frame_edit() -> None:
    region = region_for("sad", "low")
    traj = va_trajectory(region, np.array([1.0]), np.random.default_rng(0))
    assert traj.va.shape == (1, 2) and region.contains(traj.va).all()
