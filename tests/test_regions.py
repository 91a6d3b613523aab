"""The label/intensity -> VA region table (shared by edits, dataset coverage and evaluation)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dfm.affect.circumplex import CIRCUMPLEX_VA
from dfm.affect.regions import (
    INTENSITY_LEVELS,
    LABELS,
    NEUTRAL_RADIUS,
    VARegion,
    coverage,
    label_regions,
    parse_intensity,
    region_for,
)

NON_NEUTRAL = [label for label in LABELS if label != "neutral"]


def test_labels_and_levels():
    assert LABELS == ("neutral", "happy", "sad", "surprise", "fear", "anger", "disgust")
    assert INTENSITY_LEVELS == pytest.approx({"low": 1 / 6, "medium": 0.5, "high": 5 / 6})


@pytest.mark.parametrize(
    ("value", "label", "expected"),
    [
        ("low", "happy", 1 / 6),
        ("HIGH ", "sad", 5 / 6),
        ("medium", "fear", 0.5),
        (0.3, "anger", 0.3),
        ("0.75", "disgust", 0.75),
        (0, "surprise", 0.0),
        (1, "surprise", 1.0),
        (None, "neutral", None),
        ("", "neutral", None),
    ],
)
def test_parse_intensity_accepts(value, label, expected):
    assert parse_intensity(value, label) == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("value", "label", "message"),
    [
        ("extreme", "happy", "neither low, medium, high"),
        (1.5, "happy", "outside [0, 1]"),
        (-0.1, "sad", "outside [0, 1]"),
        (float("nan"), "sad", "outside [0, 1]"),
        (True, "sad", "must be low, medium, high"),
        ("high", "neutral", "neutral takes no intensity"),
        (0.5, "neutral", "neutral takes no intensity"),
        (None, "happy", "happy needs an intensity"),
        ("high", "joyful", "unknown emotion label 'joyful'"),
    ],
)
def test_parse_intensity_rejects_with_clear_message(value, label, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_intensity(value, label)


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("level", list(INTENSITY_LEVELS))
def test_samples_lie_inside_their_region_and_the_square(label, level):
    region = region_for(label, None if label == "neutral" else level)
    points = region.sample(2000, np.random.default_rng(7))
    assert points.shape == (2000, 2)
    assert region.contains(points).all()
    assert np.abs(points).max() <= 1.0
    assert np.all(region.distance(points) == 0.0)
    assert region.contains(region.center()[None])[0]


def test_sampling_is_uniform_in_area():
    region = region_for("happy", "high")
    points = region.sample(40000, np.random.default_rng(0))
    radius = np.hypot(points[:, 0], points[:, 1])
    # half the area of the ring lies beyond the radius whose square is the mean of the squared edges
    split = math.sqrt(0.5 * (region.radius_min**2 + region.radius_max**2))
    assert abs((radius > split).mean() - 0.5) < 0.01


def test_sampling_is_seedable():
    region = region_for("sad", 0.4)
    a = region.sample(50, np.random.default_rng(3))
    b = region.sample(50, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("level", ["medium", "high"])
def test_regions_of_different_labels_do_not_overlap(level):
    regions = label_regions(level)
    for label in LABELS:
        points = regions[label].sample(3000, np.random.default_rng(1))
        for other in LABELS:
            if other != label:
                assert not regions[other].contains(points).any(), f"{label} overlaps {other} at {level}"


def test_levels_of_one_label_tile_the_ring():
    bands = [region_for("happy", level) for level in ("low", "medium", "high")]
    assert bands[0].radius_min == pytest.approx(NEUTRAL_RADIUS)
    assert bands[0].radius_max == pytest.approx(bands[1].radius_min)
    assert bands[1].radius_max == pytest.approx(bands[2].radius_min)
    assert bands[2].radius_max == pytest.approx(1.0)


def test_continuous_intensity_slides_the_band():
    radii = [0.5 * (region_for("surprise", t).radius_min + region_for("surprise", t).radius_max) for t in np.linspace(0, 1, 11)]
    assert np.all(np.diff(radii) > 0)
    assert region_for("surprise", 0.5) == region_for("surprise", "medium")


@pytest.mark.parametrize("label", NON_NEUTRAL)
def test_region_direction_agrees_with_circumplex_coordinates(label):
    valence, arousal = CIRCUMPLEX_VA[label]
    radius = math.hypot(valence, arousal)
    # the estimator's coordinate for a fully confident class lies in that label's region at its radius
    region = region_for(label, min(1.0, radius))
    assert region.contains(np.array([[valence, arousal]]))[0]


def test_fear_and_anger_are_separated():
    fear, anger = region_for("fear", "high"), region_for("anger", "high")
    assert fear.contains(np.array([CIRCUMPLEX_VA["fear"]]))[0]
    assert not fear.contains(np.array([CIRCUMPLEX_VA["anger"]]))[0]
    assert anger.contains(np.array([CIRCUMPLEX_VA["anger"]]))[0]
    assert fear.angular_width > math.radians(5)


def test_neutral_is_a_small_disc_at_the_origin():
    neutral = region_for("neutral", None)
    assert neutral.intensity is None
    assert neutral.contains(np.array([[0.0, 0.0], [0.1, -0.1]])).tolist() == [True, True]
    assert not neutral.contains(np.array([[0.3, 0.0]]))[0]
    np.testing.assert_allclose(neutral.center(), [0.0, 0.0])


def test_distance_is_euclidean_outside():
    happy = region_for("happy", "high")  # band 2/3..1 around 32 deg
    outside_radially = np.array([[0.0, 0.0]])
    assert happy.distance(outside_radially)[0] == pytest.approx(2 / 3)
    # a point straight above the upper edge line, within its radial extent
    theta = happy.angle_max
    edge_point = 0.8 * np.array([math.cos(theta), math.sin(theta)])
    normal = np.array([-math.sin(theta), math.cos(theta)])
    assert happy.distance((edge_point + 0.05 * normal)[None])[0] == pytest.approx(0.05)
    assert happy.distance(np.array([[0.9, 0.9]]))[0] == pytest.approx(math.hypot(0.9, 0.9) - 1.0, abs=1e-9)


def test_sad_sector_wraps_around_pi():
    sad = region_for("sad", "high")
    points = np.array([[-0.8, -0.01], [-0.8, -0.4], [-0.8, 0.3]])
    assert sad.contains(points).tolist() == [True, True, False]


def test_nan_points_are_outside():
    assert not region_for("neutral", None).contains(np.array([[np.nan, 0.0]]))[0]


def test_invalid_region_rejected():
    with pytest.raises(ValueError):
        VARegion("happy", 0.5, 0.0, 1.0, 0.7, 0.3)


def test_coverage_counts_each_point_once():
    rng = np.random.default_rng(5)
    va = np.concatenate(
        [
            region_for("happy", "high").sample(7, rng),
            region_for("sad", "low").sample(4, rng),
            region_for("neutral", None).sample(3, rng),
            np.array([[0.95, 0.95], [np.nan, np.nan]]),  # corner beyond radius 1, invalid frame
        ]
    )
    report = coverage(va)
    assert report["happy"] == {"low": 0, "medium": 0, "high": 7}
    assert report["sad"]["low"] == 4
    assert report["neutral"] == {"all": 3}
    assert report["unassigned"] == {"all": 1}
    total = sum(n for cells in report.values() for n in cells.values())
    assert total == 15  # NaN row not counted
