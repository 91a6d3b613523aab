"""The mouth and the brows in the plan: a talking person's data does not open every emotion's mouth.

- Without speech preservation the articulation channels are the emotion's difference from the decoded
  neutral, laid on the video's closed-mouth rest (dfm.edits.speech.rest_articulation).
- Sad and anger (no lip-parting AU in their EMFACS prototypes) never open the mouth beyond the neutral.
- Anger's brow lowerer relaxes the person's raised brows (dfm.face.emfacs.ANTAGONISTS).
"""

from __future__ import annotations

import numpy as np

from dfm.decoder.prior import FacsPrior
from dfm.edits import make_plan, parse_edit_arg
from dfm.edits.speech import mouth_openness, rest_articulation
from dfm.face.emfacs import relaxed_by
from dfm.face.expressions import N_EXPRESSIONS, expression_index

FPS = 25.0
T = 200
TS = np.arange(T) / FPS
JAW, LOWER, CLOSE = (expression_index(n) for n in ("jawOpen", "mouthLowerDown_L", "mouthClose"))
SMILE = [expression_index("mouthSmile_L"), expression_index("mouthSmile_R")]
BROW_UP = [expression_index(n) for n in ("browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R")]


def talking() -> np.ndarray:
    """A person talking the whole clip (jaw 0.05..0.45 at 4 Hz, lower lip with it) with raised brows."""
    x = np.full((T, N_EXPRESSIONS), 0.05, np.float32)
    x[:, JAW] = 0.25 + 0.2 * np.sin(2 * np.pi * 4 * TS)
    x[:, LOWER] = 0.2 + 0.15 * np.sin(2 * np.pi * 4 * TS)
    x[:, CLOSE] = 0.0
    x[:, BROW_UP] = 0.5
    x[:, SMILE] = 0.3  # ... and rests in a smile
    return x


ORIG = talking()


def speech_average_decode(va: np.ndarray) -> np.ndarray:
    """A decoder trained on talking footage: every emotion decodes the speech average (a half-open mouth),
    and the 'sad' part of its data was talking a little wider still."""
    out = np.tile(ORIG.mean(axis=0).astype(np.float64), (len(va), 1))
    sad = (va[:, 0] < -0.2) & (va[:, 1] < 0.2)
    out[sad, JAW] += 0.15
    out[sad, LOWER] += 0.15
    return out


def _plan(edit: str, preserve_speech: bool = False):
    return make_plan([parse_edit_arg(edit)], TS, np.ones(T, bool), ORIG, speech_average_decode,
                     transition_frames=10, preserve_speech=preserve_speech, prototype=FacsPrior().activation)


def test_rest_articulation_is_the_most_closed_mouth() -> None:
    rest = rest_articulation(ORIG, np.ones(T, bool))
    assert rest[JAW] < np.percentile(ORIG[:, JAW], 10) + 1e-6
    assert mouth_openness(rest[None])[0] <= np.percentile(mouth_openness(ORIG), 10) + 1e-6
    # invalid frames do not count
    valid = np.ones(T, bool)
    low = np.argsort(mouth_openness(ORIG))[:50]
    valid[low] = False
    assert rest_articulation(ORIG, valid)[JAW] > rest[JAW] + 0.01


def test_sad_keeps_the_mouth_closed_without_speech() -> None:
    """The regression seen by eye: sad:high opened the mouth and showed the lower teeth."""
    rest = rest_articulation(ORIG, np.ones(T, bool))
    for label in ("sad", "anger"):
        plan = _plan(f"{label}:high:1-7")
        full = plan.weight >= 0.999
        for c in (JAW, LOWER):
            assert plan.target[full][:, c].max() <= rest[c] + 0.02, (label, c)
    # the neutral edit rests the mouth too (not the speech average)
    plan = _plan("neutral:1-7")
    full = plan.weight >= 0.999
    assert plan.target[full][:, JAW].max() <= rest[JAW] + 0.02


def test_sad_adds_no_opening_to_speech() -> None:
    plan = _plan("sad:high:1-7", preserve_speech=True)
    full = plan.weight >= 0.999
    assert np.allclose(plan.target[full][:, JAW], ORIG[full][:, JAW], atol=1e-5)


def test_surprise_opens_the_jaw_on_the_closed_mouth() -> None:
    """A jaw drop is the emotion's own difference from the neutral: it lands on the rest, not on the speech
    average (which would give larger openings than any real frame of the person)."""
    rest = rest_articulation(ORIG, np.ones(T, bool))
    plan = _plan("surprise:high:1-7")
    full = plan.weight >= 0.999
    jaw = plan.target[full][:, JAW]
    assert jaw.mean() > rest[JAW] + 0.2  # the jaw drop (AU26) is there
    assert jaw.max() < ORIG[:, JAW].mean() + FacsPrior().activation(plan.va[full])[:, JAW].max() - 0.05


def test_anger_relaxes_raised_brows_and_sad_keeps_its_inner_raise() -> None:
    assert set(relaxed_by("anger")) == {"browDown_L", "browDown_R", "mouthPress_L", "mouthPress_R"}
    assert "browInnerUp_L" not in relaxed_by("sad").get("browDown_L", ())  # sad is 1 + 4: both stay
    levels = []
    for intensity in ("low", "medium", "high"):
        plan = _plan(f"anger:{intensity}:1-7")
        full = plan.weight >= 0.999
        levels.append(float(plan.target[full][:, BROW_UP].mean()))
    assert levels[0] > levels[1] > levels[2] and levels[2] < 0.5 * ORIG[0, BROW_UP[0]], levels
    plan = _plan("sad:high:1-7")
    full = plan.weight >= 0.999
    assert plan.target[full][:, expression_index("browInnerUp_L")].mean() > 0.5


def test_sad_disgust_and_anger_relax_a_resting_smile_and_happy_keeps_it() -> None:
    for label in ("sad", "disgust", "anger"):
        plan = _plan(f"{label}:high:1-7")
        full = plan.weight >= 0.999
        assert plan.target[full][:, SMILE].mean() < 0.6 * 0.3, label  # relaxed by the activation (~0.5 at high)
    plan = _plan("happy:high:1-7")
    assert plan.target[plan.weight >= 0.999][:, SMILE].mean() > 0.3


def test_happy_relaxes_a_resting_frown_and_surprise_a_lowered_brow() -> None:
    """AU12 (lip-corner puller) works against AU15 (depressor), AU1/AU2 (brow raisers) against AU4: a person
    whose data decodes down-turned corners or a frown everywhere gets neither in a happy or surprise edit."""
    frown = [expression_index("mouthFrown_L"), expression_index("mouthFrown_R")]
    brow_down = [expression_index("browDown_L"), expression_index("browDown_R")]

    def glum(va: np.ndarray) -> np.ndarray:
        out = speech_average_decode(va)
        out[:, frown] = 0.4
        out[:, brow_down] = 0.4
        return out

    assert set(relaxed_by("happy")) == {"mouthSmile_L", "mouthSmile_R"}
    assert set(relaxed_by("surprise")) == {"browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R"}
    assert relaxed_by("fear") == {}  # 1 + 2 + 4: the brows are raised and drawn together, nothing relaxed
    for edit, channels in (("happy:high:1-7", frown), ("surprise:high:1-7", brow_down)):
        levels = []
        for intensity in ("low", "medium", "high"):
            plan = make_plan([parse_edit_arg(edit.replace("high", intensity))], TS, np.ones(T, bool), ORIG, glum,
                             transition_frames=10, preserve_speech=False, prototype=FacsPrior().activation)
            levels.append(float(plan.target[plan.weight >= 0.999][:, channels].mean()))
        assert levels[0] > levels[1] > levels[2] and levels[2] < 0.6 * 0.4, (edit, levels)  # high: by ~half
