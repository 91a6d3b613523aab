"""What the eyes keep and what follows the emotion, on the plan's 53 channels.

Kept from the original frame, exactly: gaze (`eyeLook*`) and blinks (`eyeBlink_L/R`). Where the person
looks and when they blink is theirs, and a target decoded from VA knows nothing about either.

Following the target: the lid aperture — `eyeWide_L/R` (AU5, upper-lid raise: surprise, fear, anger)
and `eyeSquint_L/R` (AU7, lid tightener: anger, fear; with AU6 in a real smile). They follow as a
DIFFERENCE on top of the original lids, like the speech channels (dfm.edits.speech):

    target_c = original_c + (decoded_c - neutral_c) * open_side            (then clipped to [0, 1])
    open_side = 1 - smoothstep(min(blink_side / BLINK_CLOSED, 1))

with `neutral_c` the decoded neutral expression of the same person. So where the emotion does not change
the lids (decoded = neutral) a half-closed eye stays half-closed, the lids' own frame-to-frame motion is
kept, and during a blink the difference fades out so a blink still closes the eye. The fade is complete
at a fitted eyeBlink of `BLINK_CLOSED` (0.3), not 1: on small faces the fit sees a real blink as an
eyeBlink of only 0.15-0.5.
The cheeks (`cheekSquint`, AU6), brows and the rest of the face follow the target as before.
"""

from __future__ import annotations

import numpy as np

from dfm.face.expressions import EXPRESSION_INDEX, EXPRESSION_NAMES

GAZE_CHANNELS: tuple[str, ...] = tuple(n for n in EXPRESSION_NAMES if n.startswith("eyeLook"))
BLINK_CHANNELS: tuple[str, ...] = ("eyeBlink_L", "eyeBlink_R")
KEPT_EYE_CHANNELS: tuple[str, ...] = GAZE_CHANNELS + BLINK_CHANNELS
LID_CHANNELS: tuple[str, ...] = ("eyeWide_L", "eyeWide_R", "eyeSquint_L", "eyeSquint_R")
BLINK_CLOSED = 0.3  # fitted eyeBlink at which the lid difference has faded out completely


def open_share(blink: np.ndarray) -> np.ndarray:
    """How open an eye is for the lid rule, from its fitted eyeBlink: 1 open .. 0 closed (C1 smoothstep)."""
    t = np.clip(np.asarray(blink, np.float64) / BLINK_CLOSED, 0.0, 1.0)
    return 1.0 - t * t * (3.0 - 2.0 * t)


def _index(names: tuple[str, ...]) -> np.ndarray:
    return np.array([EXPRESSION_INDEX[n] for n in names], np.int64)


def lid_mask() -> np.ndarray:
    """(53,) bool, True on the lid channels (applied as a difference)."""
    m = np.zeros(len(EXPRESSION_NAMES), bool)
    m[_index(LID_CHANNELS)] = True
    return m


def eye_follow_mask() -> np.ndarray:
    """(53,) bool, True on every eye channel the plan takes from the original frame (gaze, blinks) or lays
    on it as a difference (lids): the channels whose target is the original plus an offset."""
    m = lid_mask()
    m[_index(KEPT_EYE_CHANNELS)] = True
    return m


def lid_layer(decoded: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """(n, 4) signed lid difference decoded - neutral, columns in LID_CHANNELS order."""
    cols = _index(LID_CHANNELS)
    return np.asarray(decoded, np.float64)[:, cols] - np.asarray(neutral, np.float64).reshape(-1)[cols][None]


def apply_eyes(full: np.ndarray, lids: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Full-strength target with the eye rule applied (see module doc); returns a new (n, 53) array.

    full (n, 53) the full-strength target; lids (n, 4) the (smoothed) lid difference; original (n, 53).
    """
    out = np.asarray(full, np.float64).copy()
    orig = np.asarray(original, np.float64)
    kept = _index(KEPT_EYE_CHANNELS)
    out[:, kept] = orig[:, kept]
    for k, name in enumerate(LID_CHANNELS):
        j = EXPRESSION_INDEX[name]
        blink = orig[:, EXPRESSION_INDEX["eyeBlink" + name[-2:]]]
        out[:, j] = orig[:, j] + lids[:, k] * open_share(blink)
    return out
