"""Glabella folds: the measure, the person's calm level, the retrieval cost, and on the Pexels clip a neutral
edit of the laughing part that no longer borrows the crying part's frown."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfm.face.expressions import expression_vector
from dfm.render.folds import (INNER_BROW_LOWER, INNER_BROW_UPPER, NOSE_BRIDGE, calm_level, glabella_folds,
                              smooth_folds)
from dfm.render.pool import FramePool, VideoFolds
from dfm.render.retrieval import MatchParams, fold_cost


def _brow_scene(folds: bool, scale: float = 1.0, brightness: float = 1.0) -> tuple[np.ndarray, np.ndarray, float]:
    """A smooth skin-grey 200x200 image (times `scale`) with landmarks of a face 20 px/cm; `folds` draws two
    vertical dark lines between the brows, as a knit brow shows."""
    size = int(200 * scale)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / scale
    grey = 150.0 + 10.0 * np.sin(xx / 40.0) + 8.0 * np.cos(yy / 50.0)  # low-frequency shading only
    if folds:
        for x in (95.0, 105.0):
            line = np.exp(-0.5 * ((xx - x) / 1.2) ** 2) * ((yy > 82) & (yy < 128))
            grey -= 40.0 * line
    image = np.repeat(np.clip(grey * brightness, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    lm = np.zeros((478, 3), np.float32)
    lm[INNER_BROW_LOWER[0], :2], lm[INNER_BROW_LOWER[1], :2] = (80, 100), (120, 100)
    lm[INNER_BROW_UPPER[0], :2], lm[INNER_BROW_UPPER[1], :2] = (80, 90), (120, 90)
    lm[NOSE_BRIDGE, :2] = (100, 130)
    return image, lm * scale, 20.0 * scale


def test_folds_between_the_brows_raise_the_measure():
    calm = glabella_folds(*_brow_scene(False))
    knit = glabella_folds(*_brow_scene(True))
    assert calm < 0.005 and knit > 5 * max(calm, 1e-3)


def test_the_measure_ignores_resolution_and_brightness():
    knit = glabella_folds(*_brow_scene(True))
    assert glabella_folds(*_brow_scene(True, scale=2.0)) == pytest.approx(knit, rel=0.25)
    assert glabella_folds(*_brow_scene(True, brightness=0.6)) == pytest.approx(knit, rel=0.1)


def test_no_measure_without_a_face_in_the_frame():
    image, lm, px = _brow_scene(True)
    assert np.isnan(glabella_folds(image, np.zeros((478, 3), np.float32), px))  # untracked: degenerate box
    assert np.isnan(glabella_folds(image, lm + 500.0, px))  # the box outside the frame
    assert np.isnan(glabella_folds(image, lm, 0.0))


def test_smoothing_drops_a_one_frame_spike_and_keeps_gaps():
    v = np.array([1.0, 1.0, 5.0, 1.0, 1.0, np.nan, 2.0, 2.0, 2.0], np.float32)
    s = smooth_folds(v)
    assert s[2] == pytest.approx(1.0) and np.isnan(s[5]) and s[7] == pytest.approx(2.0)


def test_calm_level_spans_all_videos():
    # one clip knits its brows throughout (MEAD's angry clip): the calm level is the person's, not its own
    assert calm_level([np.full(50, 0.02), np.full(50, 0.04)]) == pytest.approx(0.02)
    assert np.isnan(calm_level([np.full(3, np.nan)]))


def test_pool_ratios_are_over_the_calm_level_of_all_its_videos():
    pool = FramePool([], folds={"a": VideoFolds("ka", np.array([0.02, 0.02, 0.02, 0.02], np.float32)),
                                "b": VideoFolds("kb", np.array([0.04, 0.05, np.nan, 0.04], np.float32))})
    assert pool.calm_folds == pytest.approx(0.02)
    assert len(FramePool([]).folds) == 0 and np.isnan(FramePool([]).calm_folds)


def test_fold_cost_is_for_relaxed_brows_in_the_upper_face():
    p = MatchParams()
    relaxed = expression_vector(mouthSmile_L=0.5, mouthSmile_R=0.5)
    lowered = expression_vector(browDown_L=p.fold_knit, browDown_R=p.fold_knit)
    half = expression_vector(browDown_L=p.fold_knit / 2, browDown_R=p.fold_knit / 2)
    folds = np.array([0.9, 1.0, 1.5, 2.0, 10.0, np.nan], np.float32)
    c = fold_cost(folds, relaxed, "upper", p)
    np.testing.assert_allclose(c, p.fold_weight * np.array([0, 0, 0.5, 1.0, p.fold_cap, 0]), atol=1e-6)
    np.testing.assert_allclose(fold_cost(folds, lowered, "upper", p), 0.0, atol=1e-6)  # knit targets take knit skin
    np.testing.assert_allclose(fold_cost(folds, half, "upper", p), c / 2, atol=1e-6)
    assert fold_cost(folds, relaxed, "mouth", p) == 0 and fold_cost(folds, relaxed, "lower", p) == 0


# --- the Pexels clip: crying (0-6 s), surprise, laughing (14-19.6 s) -------------------------------------

@pytest.fixture(scope="module")
def pexels_pool(session, sample_video, pexels_track):
    return session.frame_pool(sample_video, pexels_track)


def test_the_crying_frames_read_as_folded(pexels_pool, pexels_track):
    ratio = pexels_pool.folds_for(pexels_track)
    assert ratio is not None and len(ratio) == pexels_track.n_frames
    t = pexels_track.timestamps
    crying = np.nanmedian(ratio[(t > 1.0) & (t < 5.0)])
    laughing = np.nanmedian(ratio[(t > 14.0) & (t < 19.0)])
    assert crying > 1.6 and laughing < 1.3, (crying, laughing)


def test_a_neutral_edit_of_a_laugh_borrows_no_frown(session, sample_video, pexels_track):
    """Before the fold cost, the upper face of a neutral laughing frame came from a crying frame whose fit
    reads relaxed (browDown ~0): the output's glabella contrast was 1.7-2.1 times the input's at 12, 16 and
    18 s. Now it stays the input's (0.87-1.0 measured)."""
    from dfm.edits import parse_edit_arg
    from dfm.io.video import read_frame

    edits = [parse_edit_arg("neutral:0-19.6")]
    for at in (12.0, 16.0, 18.0):
        i = pexels_track.frame_index_at(at)
        image = np.asarray(read_frame(sample_video, i).image)
        out = session.preview(sample_video, edits, at)
        lm, px = pexels_track.landmarks[i], float(pexels_track.scale[i])
        assert not np.array_equal(out, image)
        assert glabella_folds(out, lm, px) < 1.25 * glabella_folds(image, lm, px), at


def test_fold_measure_matches_a_manual_band_pass():
    """The box's band-pass RMS over brightness, computed here by hand on a random patch."""
    rng = np.random.default_rng(0)
    image, lm, px = _brow_scene(False)
    image = np.clip(image.astype(np.float32) + rng.normal(0, 6, image.shape[:2])[..., None], 0, 255).astype(np.uint8)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    s = 0.08 * px
    coarse = cv2.GaussianBlur(grey, (0, 0), 3 * s)
    dog = cv2.GaussianBlur(grey, (0, 0), s) - coarse
    box = (slice(int(90 - 0.3 * px), 131), slice(80, 121))
    want = np.sqrt(np.mean(dog[box] ** 2)) / coarse[box].mean()
    assert glabella_folds(image, lm, px) == pytest.approx(want, rel=0.05)
