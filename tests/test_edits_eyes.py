"""The eye rule of the plan: gaze and blinks stay the original's, the lids follow as a difference."""

from __future__ import annotations

import numpy as np

from dfm.affect.regions import region_for
from dfm.edits import make_plan, parse_edit_arg
from dfm.edits.eyes import GAZE_CHANNELS, KEPT_EYE_CHANNELS, LID_CHANNELS, apply_eyes, lid_layer
from dfm.face.expressions import N_EXPRESSIONS, expression_index

FPS = 25.0
T = 200
TS = np.arange(T) / FPS
WIDE, SQUINT, BLINK, LOOK = (expression_index(n) for n in ("eyeWide_L", "eyeSquint_L", "eyeBlink_L", "eyeLookUp_L"))
BLINK_FRAMES = np.arange(100, 104)


def original() -> np.ndarray:
    """Open eyes with a squint of 0.3 (a half-closed look), wandering gaze and one full blink."""
    x = np.full((T, N_EXPRESSIONS), 0.05, np.float32)
    for side in "LR":
        x[:, expression_index(f"eyeSquint_{side}")] = 0.3
        x[:, expression_index(f"eyeBlink_{side}")] = 0.0
        x[BLINK_FRAMES, expression_index(f"eyeBlink_{side}")] = 1.0
    for k, name in enumerate(GAZE_CHANNELS):
        x[:, expression_index(name)] = 0.2 + 0.15 * np.sin(TS * (1 + k) * 0.9)
    return x


def decode(va: np.ndarray) -> np.ndarray:
    """Arousal opens the lids wide, negative valence squints them; gaze/blink outputs are nonsense."""
    v, a = va[:, 0], va[:, 1]
    out = np.full((len(va), N_EXPRESSIONS), 0.1)
    for side in "LR":
        out[:, expression_index(f"eyeWide_{side}")] = 0.1 + 0.6 * np.maximum(a, 0)
        out[:, expression_index(f"eyeSquint_{side}")] = 0.1 + 0.5 * np.maximum(-v, 0)
        out[:, expression_index(f"eyeBlink_{side}")] = 0.9  # a decoder knows nothing about blinks
    for name in GAZE_CHANNELS:
        out[:, expression_index(name)] = 0.7
    return np.clip(out, 0, 1)


def plan_for(edit: str):
    return make_plan([parse_edit_arg(edit)], TS, np.ones(T, bool), original(), decode, transition_frames=10)


def test_gaze_and_blinks_are_the_originals_exactly() -> None:
    plan = plan_for("surprise:high:0-8")
    orig = original()
    for name in KEPT_EYE_CHANNELS:
        j = expression_index(name)
        assert np.array_equal(plan.target[:, j], orig[:, j]), name


def test_surprise_opens_the_lids_by_the_decoded_difference_and_a_blink_stays_closed() -> None:
    plan = plan_for("surprise:high:0-8")
    orig = original()
    neutral = decode(region_for("neutral", None).center().reshape(1, 2))[0]
    full = (plan.weight >= 0.999) & ~np.isin(np.arange(T), BLINK_FRAMES)
    want = orig[full, WIDE] + (decode(plan.va[full])[:, WIDE] - neutral[WIDE])
    assert np.abs(plan.target[full, WIDE] - want).max() < 0.03  # smoothing only
    assert plan.target[full, WIDE].mean() > orig[full, WIDE].mean() + 0.3
    # during the blink the lid difference fades out: the eye stays closed, the aperture unchanged
    assert np.allclose(plan.target[BLINK_FRAMES, WIDE], orig[BLINK_FRAMES, WIDE], atol=1e-6)
    assert np.array_equal(plan.target[BLINK_FRAMES, BLINK], orig[BLINK_FRAMES, BLINK])


def test_a_half_closed_eye_stays_half_closed_where_the_target_does_not_change_the_lids() -> None:
    # happy decodes squint at its neutral value (valence > 0): the original's 0.3 squint is kept
    plan = plan_for("happy:high:0-8")
    full = plan.weight >= 0.999
    assert np.allclose(plan.target[full, SQUINT], 0.3, atol=0.02)


def test_apply_eyes_unit() -> None:
    orig = np.zeros((2, N_EXPRESSIONS))
    orig[:, WIDE] = 0.2
    orig[1, BLINK] = 0.15  # half way to BLINK_CLOSED: half the lid difference
    full = np.full((2, N_EXPRESSIONS), 0.9)
    lids = np.zeros((2, len(LID_CHANNELS)))
    lids[:, LID_CHANNELS.index("eyeWide_L")] = 0.4
    out = apply_eyes(full, lids, orig)
    assert np.allclose(out[:, WIDE], [0.6, 0.4])
    assert np.array_equal(out[:, LOOK], orig[:, LOOK]) and np.array_equal(out[:, BLINK], orig[:, BLINK])
    assert lid_layer(full, np.full(N_EXPRESSIONS, 0.5)).shape == (2, len(LID_CHANNELS))


def test_widened_lids_stretch_the_original_eye_opening() -> None:
    """render.eyes: a target point on the raised upper margin samples the original's upper margin."""
    from dfm.render.eyes import EyeRim, widen_eye_openings

    xs = np.linspace(0.0, 20.0, 11)
    upper = 5.0 * np.sin(np.pi * xs / 20.0)  # image y grows downwards: the upper margin has smaller y
    orig = np.concatenate([np.stack([xs, 50.0 - upper], 1), np.stack([xs[1:-1], 50.0 + upper[1:-1]], 1)])
    tgt = orig.copy()
    tgt[:11, 1] = 50.0 - 1.6 * upper  # upper lid raised
    rim = EyeRim(upper=np.arange(1, 10), lower=np.arange(11, 20), corners=(0, 10))
    yy, xx = np.mgrid[40:60, 0:21].astype(np.float32)
    pos = np.stack([xx, yy], -1)
    mask = np.ones(yy.shape, bool)
    out = widen_eye_openings(pos.copy(), pos, mask, (rim,), orig, tgt)
    # the target's top of the opening at the centre column (y = 50 - 8) samples the original's top (y = 45)
    k = np.argmin(np.abs(yy[:, 10] - 42.0))
    assert abs(out[k, 10, 1] - 45.0) < 0.6 and abs(out[k, 10, 0] - 10.0) < 1e-3
    # the lower margin (it did not move) maps onto itself, heights in between linearly, outside: untouched
    assert abs(out[15, 10, 1] - 55.0) < 1e-3 and np.all(np.diff(out[2:16, 10, 1]) > 0)
    assert np.array_equal(out[17:, 10], pos[17:, 10]) and np.array_equal(out[:1, 10], pos[:1, 10])
    # a narrower target leaves the flow alone
    assert np.array_equal(widen_eye_openings(pos.copy(), pos, mask, (rim,), tgt, orig), pos)
