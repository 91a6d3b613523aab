"""Speech preservation (beyond the paper): keep the lip motion of talking while the emotion changes.

Which channels carry articulation. Visemes are made by the jaw and by the shape of the lips; in the
ARKit/ICT blendshapes (FACS action units in brackets) those are:

    jawOpen (AU26/27)                    open vowels, the main carrier of syllable rhythm
    jawForward, jawLeft, jawRight        jaw position of f/v/s and the speaker's own habits
    mouthClose                           lips together over an open jaw: bilabials m, b, p
    mouthFunnel (AU22)                   rounded-open lips: o, sh, ch
    mouthPucker (AU18)                   rounded-closed lips: u, w, oo
    mouthRollLower, mouthRollUpper (AU28) lips rolled in: labiodentals f, v and m/b/p
    mouthLowerDown_L/R (AU16)            lower lip down: most open visemes, showing the lower teeth
    mouthUpperUp_L/R (AU10)              upper lip up: f, v, teeth visible
    mouthPress_L/R (AU24)                lips pressed: the closure of plosives p, b
    mouthLeft, mouthRight                lateral shift of the mouth while talking

Left to the emotion (not preserved): mouthSmile_L/R (AU12, happiness), mouthFrown_L/R (AU15, sadness),
mouthStretch_L/R (AU20, fear), mouthDimple_L/R (AU14), mouthShrugLower/Upper (AU17 chin raiser: sadness,
anger, doubt), noseSneer (AU9, disgust), cheekSquint/cheekPuff, and every brow and eye channel. These are
the readable signs of the emotions the edits ask for; talking moves them little.

The rule on preserved channels. Replacing them by the original alone would lose what an emotion itself
does with the jaw and lips (surprise's and fear's jaw drop AU26, disgust's upper-lip raise AU10, anger's
lip press AU24). So the emotion ADDS on top of the original articulation, by how much its decoded value
exceeds the decoded neutral expression of the same person:

    target_c = original_c + max(0, decoded_c - neutral_c)          (then clipped to [0, 1])

`neutral_c` = decode(centre of the neutral VA region). The offset is positive only, so the emotion never
closes a mouth that is talking, and it does not depend on the original frame, so every frame-to-frame
movement of the original lips is kept (up to clipping at 1).
"""

from __future__ import annotations

import numpy as np

from dfm.face.expressions import EXPRESSION_INDEX, N_EXPRESSIONS

SPEECH_CHANNELS: tuple[str, ...] = (
    "jawOpen",
    "jawForward",
    "jawLeft",
    "jawRight",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthLowerDown_L",
    "mouthLowerDown_R",
    "mouthUpperUp_L",
    "mouthUpperUp_R",
    "mouthPress_L",
    "mouthPress_R",
    "mouthLeft",
    "mouthRight",
)


def speech_mask(channels: tuple[str, ...] | list[str] = SPEECH_CHANNELS) -> np.ndarray:
    """(53,) bool, True on the given channels."""
    mask = np.zeros(N_EXPRESSIONS, dtype=bool)
    for name in channels:
        mask[EXPRESSION_INDEX[name]] = True
    return mask


def emotion_layer(decoded: np.ndarray, neutral: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """What the emotion contributes per channel: the decoded value where mask is False, and the positive
    excess over neutral, max(0, decoded - neutral), where mask is True (added to the original later)."""
    decoded = np.asarray(decoded, dtype=np.float64)
    excess = np.maximum(0.0, decoded - np.asarray(neutral, dtype=np.float64).reshape(1, -1))
    return np.where(mask[None, :], excess, decoded)


def full_strength_target(layer: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Target at full edit weight: the emotion layer, plus the original on preserved channels."""
    return np.where(mask[None, :], np.asarray(original, dtype=np.float64) + layer, layer)
