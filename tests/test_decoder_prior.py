"""The universal FACS prior: each label's direction decodes to its EMFACS prototype, scaled by intensity."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.affect import regions
from dfm.decoder import FacsPrior
from dfm.decoder.prior import BLEND_MIN_DEG
from dfm.face.expressions import expression_index as ix


def _at(prior, label, level="high"):
    return prior.predict(regions.region_for(label, level).center())[0]


def test_happy_sad_surprise_prototypes():
    p = FacsPrior()
    happy, sad, surprise = _at(p, "happy"), _at(p, "sad"), _at(p, "surprise")
    smile = [ix("mouthSmile_L"), ix("mouthSmile_R")]
    frown = [ix("mouthFrown_L"), ix("mouthFrown_R")]
    assert happy[smile].min() > 0.5 and happy[frown].max() < 0.05
    assert sad[frown].min() > 0.5 and sad[smile].max() < 0.05
    assert sad[ix("browInnerUp_L")] > 0.5  # AU1
    for name in ("browInnerUp_L", "browInnerUp_R", "eyeWide_L", "eyeWide_R", "jawOpen"):
        assert surprise[ix(name)] > 0.25, name
    assert surprise[smile].max() < 0.05
    anger, disgust, fear = _at(p, "anger"), _at(p, "disgust"), _at(p, "fear")
    assert anger[ix("browDown_L")] > 0.5 and anger[ix("mouthPress_L")] > 0.5  # AU4, AU23 -> mouthPress
    assert disgust[ix("noseSneer_L")] > 0.5 and disgust[ix("mouthLowerDown_R")] > 0.5  # AU9, AU16
    assert fear[ix("mouthStretch_L")] > 0.5 and fear[ix("eyeWide_R")] > 0.5  # AU20, AU5


def test_intensity_scales_and_origin_is_the_neutral():
    neutral = np.full(53, 0.1, np.float32)
    p = FacsPrior(neutral=neutral)
    s = [_at(p, "happy", lv)[ix("mouthSmile_L")] for lv in ("low", "medium", "high")]
    assert s[0] < s[1] < s[2]
    assert np.allclose(p.predict([0.0, 0.0])[0], neutral)
    assert np.allclose(p.predict([0.05, -0.03])[0], neutral, atol=0.02)  # inside the neutral disc


def test_prior_is_continuous_around_the_circle():
    p = FacsPrior()
    t = np.linspace(0, 2 * np.pi, 7201)
    for r in (0.3, 0.9):
        e = p.predict(np.stack([r * np.cos(t), r * np.sin(t)], 1))
        assert np.abs(np.diff(e, axis=0)).max() < 0.01  # 0.05 degree steps: no jumps
    w = p.label_weights(np.stack([np.cos(t), np.sin(t)], 1))
    assert w.min() >= 0 and w.sum(1).max() <= 1 + 1e-9


def test_label_directions_come_from_the_regions_table():
    p = FacsPrior()
    for label in p.labels_:
        c = regions.region_for(label, "medium").center()
        w = p.label_weights(c)[0]
        assert w[p.labels_.index(label)] == pytest.approx(1.0)


def test_inside_a_labels_sector_the_prior_lends_no_neighbours_aus():
    """Sad's VA samples near the edge towards disgust got disgust's AU9/AU16 (lower teeth in a sad mouth):
    the neighbours blend only across the band between the two sectors."""
    p = FacsPrior()
    rng = np.random.default_rng(0)
    sad = p.predict(regions.region_for("sad", "high").sample(2000, rng))
    for name in ("noseSneer_L", "mouthLowerDown_L", "mouthUpperUp_L"):
        assert sad[:, ix(name)].max() < 0.05, name
    for label in p.labels_:
        region = regions.region_for(label, "high")
        w = p.label_weights(region.sample(2000, rng))[:, p.labels_.index(label)]
        wide = np.degrees(region.angle_max - region.angle_min) > 3 * BLEND_MIN_DEG  # fear's sector is 9 degrees
        assert np.median(w) > (0.95 if wide else 0.8), label  # (happy and sad fade towards the calm quadrant)
