"""Paste a generated face crop back into the full-resolution frame: soft face mask + colour matching."""

from __future__ import annotations

import cv2
import numpy as np

from dfm.render.neural.conditioning import crop_frame, uncrop

__all__ = ["soft_mask", "match_colour", "composite"]


def soft_mask(foreground: np.ndarray, erode: float = 0.03, feather: float = 0.04) -> np.ndarray:
    """(S, S) float32 in [0, 1]: the NMFC foreground shrunk by `erode` and feathered by `feather` (fractions
    of the crop side), so the seam falls inside the face where generated and real skin agree best."""
    s = foreground.shape[0]
    m = foreground.astype(np.uint8)
    k = max(int(round(erode * s)), 0)
    if k:
        m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    sig = max(feather * s, 0.5)
    return np.clip(cv2.GaussianBlur(m.astype(np.float32), (0, 0), sig) * 1.0, 0.0, 1.0)


def match_colour(generated: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`generated` (S, S, 3) uint8 with its per-channel mean and spread inside `mask` (S, S) moved to the
    reference's (ratio clipped to [0.8, 1.25]: a correction of drift, not a restyle)."""
    sel = mask > 0.5
    if sel.sum() < 16:
        return generated
    g = generated.astype(np.float32)
    r = reference.astype(np.float32)
    gm, gs = g[sel].mean(0), g[sel].std(0) + 1e-3
    rm, rs = r[sel].mean(0), r[sel].std(0) + 1e-3
    ratio = np.clip(rs / gs, 0.8, 1.25)
    return np.clip((g - gm) * ratio + rm + 0.5, 0, 255).astype(np.uint8)


def composite(frame: np.ndarray, generated: np.ndarray, matrix: np.ndarray, foreground: np.ndarray,
              colour: bool = True) -> np.ndarray:
    """frame (H, W, 3) uint8 with `generated` (S, S, 3) uint8 (the crop of `matrix` (2, 3)) blended in
    over the soft mask of `foreground` (S, S) bool; pixels outside the mask keep their exact values."""
    s = generated.shape[0]
    mask = soft_mask(foreground)
    if colour:
        generated = match_colour(generated, crop_frame(frame, matrix, s), mask)
    h, w = frame.shape[:2]
    m = uncrop(mask, matrix, h, w)
    ys, xs = np.nonzero(m > 1e-3)
    out = frame.copy()
    if ys.size == 0:
        return out
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    g = uncrop(generated, matrix, h, w)[y0:y1, x0:x1].astype(np.float32)
    a = m[y0:y1, x0:x1, None]
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(region + a * (g - region) + 0.5, 0, 255).astype(np.uint8)
    return out
