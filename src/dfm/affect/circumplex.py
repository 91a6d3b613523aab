"""Per-emotion coordinates on the valence–arousal plane (the circumplex), one table for the whole project.

Both the `fer` estimator (class probabilities -> expected VA) and the edit regions (`regions.py`, label ->
direction on the VA plane) read this table, so the two can never disagree.

Source: J. A. Russell and A. Mehrabian, "Evidence for a three-factor theory of emotions", Journal of
Research in Personality 11(3):273-294, 1977 — the table of mean Pleasure / Arousal / Dominance ratings of
151 emotion terms, each on a -1..+1 scale. Taken: the Pleasure (-> valence) and Arousal (-> arousal)
means of these terms (term number in that table in brackets); Dominance is dropped:

    happy    <- "Happy"      (31)   P +0.81  A +0.51
    sad      <- "Sad"        (151)  P -0.63  A -0.27
    surprise <- "Surprised"  (52)   P +0.40  A +0.67
    fear     <- "Fearful"    (101)  P -0.64  A +0.60
    anger    <- "Angry"      (82)   P -0.51  A +0.59
    disgust  <- "Disgust"    (75)   P -0.60  A +0.35

The values were cross-checked against several independent reproductions of that table (e.g. the OCC->PAD
mapping of Gebhard, "ALMA: a layered model of affect", AAMAS 2005, which reuses anger and fear); the
original article itself was not available here. No rescaling: the published scale is already -1..+1,
the range of this project's VA. `neutral` is not a term of that table: it is the origin by definition (the
circumplex's centre, zero pleasure and zero arousal). In the 2-D plane fear and anger nearly coincide
(they differ mainly in Dominance, -0.43 vs +0.25); `regions.py` says how that is handled.
"""

from __future__ import annotations

import numpy as np

# (valence, arousal) per project label; see the module docstring for the source of each number.
CIRCUMPLEX_VA: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "happy": (0.81, 0.51),
    "sad": (-0.63, -0.27),
    "surprise": (0.40, 0.67),
    "fear": (-0.64, 0.60),
    "anger": (-0.51, 0.59),
    "disgust": (-0.60, 0.35),
}

# Class names used by estimators (FER2013, AffectNet/EmoNet) that spell a project label differently.
CLASS_ALIASES: dict[str, str] = {
    "angry": "anger",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "fearful": "fear",
    "disgusted": "disgust",
}


def canonical_label(class_name: str) -> str:
    """Project label for an estimator's class name ('angry' -> 'anger'); KeyError if it has no coordinates."""
    name = class_name.strip().lower()
    name = CLASS_ALIASES.get(name, name)
    if name not in CIRCUMPLEX_VA:
        raise KeyError(f"no circumplex coordinates for class {class_name!r}; known: {', '.join(CIRCUMPLEX_VA)}")
    return name


def class_coordinates(class_names: tuple[str, ...] | list[str]) -> np.ndarray:
    """(C, 2) float64 (valence, arousal) of each class, in the given order."""
    return np.array([CIRCUMPLEX_VA[canonical_label(c)] for c in class_names], dtype=np.float64)


def label_angle(label: str) -> float:
    """Direction of a label on the VA plane, radians in (-pi, pi] (atan2 of arousal over valence)."""
    valence, arousal = CIRCUMPLEX_VA[canonical_label(label)]
    if valence == 0.0 and arousal == 0.0:
        raise ValueError(f"{label!r} sits at the origin and has no direction")
    return float(np.arctan2(arousal, valence))


def expected_va(probs: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Probability-weighted mean of class coordinates: probs (N, C), coords (C, 2) -> (N, 2).

    Rows are renormalised so that slightly unnormalised probabilities (float32 softmax) stay a mean.
    """
    probs = np.asarray(probs, dtype=np.float64)
    weights = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
    return weights @ np.asarray(coords, dtype=np.float64)
