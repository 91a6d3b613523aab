"""How strongly the skin between the brows is folded in a frame (the corrugator's vertical glabella lines).

A frame that knits its brows (crying, anger, effort) shows folds there that the fitted blendshapes barely
register: the Pexels clip's crying frames fit with browDown ~0 while their glabella contrast is twice the
laughing frames'. Retrieval (retrieval.fold_cost) reads this measure so it does not lend such skin to a
target whose brows are relaxed, where it reads as a frown.

The measure is the band-pass contrast of the grey image over a box between the inner brow ends, from just
above the brows down to the nose bridge: RMS of a difference of Gaussians (0.08 cm against 0.24 cm, in the
frame's own pixels per cm) over the local brightness. A video's values are compared against the person's calm
level (`calm_level`: the 25th percentile over all the person's frames the pool read, so the person's own
resolution and lighting set the scale).
"""

from __future__ import annotations

import cv2
import numpy as np

# MediaPipe FaceMesh landmarks: the inner ends of the brows (lower and upper edge) and the nose bridge
INNER_BROW_LOWER = (55, 285)
INNER_BROW_UPPER = (107, 336)
NOSE_BRIDGE = 168
FINE_CM = 0.08  # the folds' scale (a DoG of this sigma against three times it)
ABOVE_BROWS_CM = 0.3  # the box starts this far above the brows' upper edge


def glabella_folds(image: np.ndarray, landmarks: np.ndarray, px_per_cm: float) -> float:
    """Fold contrast between the brows of one frame (H, W, 3) uint8 RGB with its landmarks (478, 2+) in
    frame pixels; NaN when the box is (mostly) outside the frame or degenerate."""
    lm = np.asarray(landmarks, np.float32)
    if lm.shape[0] <= max(INNER_BROW_LOWER + INNER_BROW_UPPER + (NOSE_BRIDGE,)) or not px_per_cm > 0:
        return float("nan")
    x0, x1 = sorted(float(lm[i, 0]) for i in INNER_BROW_LOWER)
    y0 = min(float(lm[i, 1]) for i in INNER_BROW_UPPER) - ABOVE_BROWS_CM * px_per_cm
    y1 = float(lm[NOSE_BRIDGE, 1])
    sigma = max(FINE_CM * px_per_cm, 0.7)
    if x1 - x0 < 2 * sigma or y1 - y0 < 2 * sigma:
        return float("nan")
    h, w = image.shape[:2]
    margin = int(np.ceil(9 * sigma))  # the coarse blur's reach
    bx0, by0 = max(int(np.floor(x0)) - margin, 0), max(int(np.floor(y0)) - margin, 0)
    bx1, by1 = min(int(np.ceil(x1)) + margin + 1, w), min(int(np.ceil(y1)) + margin + 1, h)
    if bx1 - bx0 < 4 or by1 - by0 < 4:
        return float("nan")
    patch = np.asarray(image[by0:by1, bx0:bx1], np.uint8)
    grey = (cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY) if patch.ndim == 3 else patch).astype(np.float32)
    coarse = cv2.GaussianBlur(grey, (0, 0), 3 * sigma)
    dog = cv2.GaussianBlur(grey, (0, 0), sigma) - coarse
    ys = slice(max(int(np.floor(y0)) - by0, 0), max(int(np.ceil(y1)) + 1 - by0, 0))
    xs = slice(max(int(np.floor(x0)) - bx0, 0), max(int(np.ceil(x1)) + 1 - bx0, 0))
    inside, base = dog[ys, xs], coarse[ys, xs]
    if inside.size < 0.5 * (x1 - x0) * (y1 - y0):  # the box left the frame
        return float("nan")
    return float(np.sqrt(np.mean(inside * inside)) / max(float(base.mean()), 1.0))


def smooth_folds(values: np.ndarray, window: int = 5) -> np.ndarray:
    """(T,) float32: a video's per-frame fold contrast (NaN = not measured) after a running median over
    `window` frames of the measured ones (a single frame's noise should not switch a retrieval source)."""
    v = np.asarray(values, np.float64)
    out = np.full(v.shape, np.nan, np.float32)
    half = window // 2
    for i in np.flatnonzero(np.isfinite(v)):
        near = v[max(0, i - half):i + half + 1]
        out[i] = np.median(near[np.isfinite(near)])
    return out


def calm_level(values: list[np.ndarray], percentile: float = 25.0) -> float:
    """The person's calm fold contrast: the `percentile` of every measured frame of all their videos (NaN
    when none was measured). Over all videos together, since one clip of a collection may show a single
    emotion throughout (MEAD's angry clip knits its brows in every frame)."""
    v = np.concatenate([np.asarray(x, np.float64).ravel() for x in values]) if values else np.zeros(0)
    v = v[np.isfinite(v)]
    return float(np.percentile(v, percentile)) if len(v) else float("nan")
