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

Without speech preservation (no speech in the soundtrack, or switched off) the same difference is laid
on the person's closed-mouth REST instead of the original frame:

    target_c = rest_c + (decoded_c - neutral_c)                     (then clipped to [0, 1])

A decoder learns from the person's footage, and people talk in most of it: its decoded value of jawOpen
or mouthLowerDown for any emotion is the time average of their speech, a half-open mouth, and so is the
decoded neutral. Taken as it is, that average opened a sad mouth and showed the lower teeth (a sad face
closes the mouth), and larger openings than any real frame of the person sent the inner-mouth transfer
into stretched teeth. The difference keeps what the emotion itself does to the jaw and lips (surprise's
jaw drop, disgust's lower-lip depressor) and drops the speech average. `rest_c` (`rest_articulation`) is
the mean of the original video's most-closed-mouth frames: this person's own closed mouth, as the fit
sees it.
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


REST_SHARE = 0.05  # share of the valid frames (the most closed mouths) whose mean is the rest articulation


def mouth_openness(expression: np.ndarray) -> np.ndarray:
    """(N,) how open the lips are, from the coefficients: jaw drop minus lip closure plus the lips' own
    opening (ARKit semantics: mouthClose closes the lips over an open jaw)."""
    e = np.asarray(expression, dtype=np.float64).reshape(-1, N_EXPRESSIONS)
    col = lambda name: e[:, EXPRESSION_INDEX[name]]  # noqa: E731
    lips = 0.25 * (col("mouthLowerDown_L") + col("mouthLowerDown_R") + col("mouthUpperUp_L") + col("mouthUpperUp_R"))
    return col("jawOpen") - col("mouthClose") + lips


def rest_articulation(original: np.ndarray, valid: np.ndarray | None = None, share: float = REST_SHARE) -> np.ndarray:
    """(53,) the video's closed-mouth rest: mean expression of the `share` of valid frames whose mouth is
    most closed (`mouth_openness`); zeros without valid frames. Only its SPEECH_CHANNELS are used."""
    e = np.asarray(original, dtype=np.float64).reshape(-1, N_EXPRESSIONS)
    if valid is not None:
        e = e[np.asarray(valid, dtype=bool).reshape(-1)]
    if len(e) == 0:
        return np.zeros(N_EXPRESSIONS)
    k = max(1, int(round(share * len(e))))
    closed = np.argsort(mouth_openness(e), kind="stable")[:k]
    return e[closed].mean(axis=0)


def articulation_on_rest(decoded: np.ndarray, neutral: np.ndarray, rest: np.ndarray,
                         channels: np.ndarray | None = None) -> np.ndarray:
    """Decoded (n, 53) with the articulation channels replaced by rest + (decoded - neutral), clipped to
    [0, 1] (see the module doc); the other channels unchanged. Returns a new array."""
    mask = speech_mask() if channels is None else np.asarray(channels, dtype=bool)
    out = np.asarray(decoded, dtype=np.float64).copy()
    shift = np.asarray(rest, dtype=np.float64).reshape(-1) - np.asarray(neutral, dtype=np.float64).reshape(-1)
    out[:, mask] = np.clip(out[:, mask] + shift[None, mask], 0.0, 1.0)
    return out
