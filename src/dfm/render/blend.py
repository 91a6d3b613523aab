"""Appearance transfer and compositing: colour/shading match, multi-band blending, the dark mouth cavity.

- `ratio_gain`: the low-frequency shading of the current (warped) frame divided by that of the retrieved
  source, both over the same skin in the same geometry. Multiplying the source by it keeps the
  source's wrinkles, folds and bulges (its mid and high frequencies) under the current frame's light
  and colour — the expression-ratio-image idea of Liu et al. 2001 applied to one person's own frames.
- `ring_gain`: one gain per channel from a ring of skin around a region both images show (used for
  the inner mouth, whose pixels the current frame does not have).
- `laplacian_blend`: multi-band (Burt & Adelson) blend of two images with a soft mask.
- `mouth_cavity`: a plausible dark mouth interior (fallback when no frame shows a matching mouth).
"""

from __future__ import annotations

import cv2
import numpy as np


def masked_blur(image: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Mask-normalised Gaussian blur of image (h, w, C) over mask (h, w) in [0, 1]."""
    m = mask.astype(np.float32)
    num = cv2.GaussianBlur(image.astype(np.float32) * m[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(m, (0, 0), sigma)
    if num.ndim == 2:
        num = num[..., None]
    return num / np.maximum(den, 1e-4)[..., None]


def ratio_gain(current: np.ndarray, source: np.ndarray, mask: np.ndarray, sigma: float,
               limits: tuple[float, float] = (0.5, 2.0)) -> np.ndarray:
    """Per-pixel, per-channel gain (h, w, C) so that source * gain has current's low frequencies.

    current, source: (h, w, C) the same surface in the same geometry (e.g. on the coarse work grid);
    mask: where both are valid skin. Outside the mask the gain extends smoothly (normalised blur).
    """
    cur = masked_blur(current, mask, sigma)
    src = masked_blur(source, mask, sigma)
    return np.clip((cur + 1.0) / (src + 1.0), limits[0], limits[1]).astype(np.float32)


def ring_gain(current: np.ndarray, source: np.ndarray, ring: np.ndarray,
              limits: tuple[float, float] = (0.6, 1.6)) -> np.ndarray:
    """One gain per channel (C,) = mean(current) / mean(source) over the ring; 1 where the ring is empty."""
    if not ring.any():
        return np.ones(current.shape[-1], np.float32)
    c = current[ring].astype(np.float64).mean(0)
    s = source[ring].astype(np.float64).mean(0)
    return np.clip((c + 1.0) / (s + 1.0), limits[0], limits[1]).astype(np.float32)


def lab_stats_transfer(source: np.ndarray, reference: np.ndarray, mask: np.ndarray,
                       std_limits: tuple[float, float] = (0.7, 1.4)) -> np.ndarray:
    """Reinhard-style colour transfer: source's Lab mean/std over `mask` moved to reference's (uint8 RGB)."""
    if not mask.any():
        return source
    s = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
    r = cv2.cvtColor(reference, cv2.COLOR_RGB2LAB).astype(np.float32)
    ms, ss = s[mask].mean(0), s[mask].std(0) + 1e-3
    mr, sr = r[mask].mean(0), r[mask].std(0) + 1e-3
    k = np.clip(sr / ss, *std_limits)
    out = (s - ms) * k + mr
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def laplacian_blend(base: np.ndarray, overlay: np.ndarray, alpha: np.ndarray, levels: int = 4) -> np.ndarray:
    """Multi-band blend: each Laplacian band of overlay mixed into base with the mask's Gaussian level.

    base, overlay: (h, w, C) float32; alpha: (h, w) in [0, 1]. Returns float32 (h, w, C). Where alpha is
    0 on every level (far from the mask) the result equals base up to float rounding.
    """
    h, w = alpha.shape
    levels = max(1, min(levels, int(np.log2(max(min(h, w), 2))) - 2))
    diff = (overlay - base).astype(np.float32)
    a = alpha.astype(np.float32)
    # blend the DIFFERENCE band by band: base + sum_l up(L_l(diff) * G_l(alpha))
    gd = [diff]
    ga = [a]
    for _ in range(levels - 1):
        gd.append(cv2.pyrDown(gd[-1]))
        ga.append(cv2.pyrDown(ga[-1]))
    acc = gd[-1] * (ga[-1][..., None] if gd[-1].ndim == 3 else ga[-1])
    for lvl in range(levels - 2, -1, -1):
        size = (gd[lvl].shape[1], gd[lvl].shape[0])
        lap = gd[lvl] - cv2.pyrUp(gd[lvl + 1], dstsize=size)
        m = ga[lvl][..., None] if lap.ndim == 3 else ga[lvl]
        acc = cv2.pyrUp(acc, dstsize=size) + lap * m
    return base.astype(np.float32) + acc


def mouth_cavity(shape: tuple[int, int], interior: np.ndarray, lip_colour: np.ndarray, depth_px: float) -> np.ndarray:
    """A dark inner mouth (h, w, 3) float32: lip-tinted near the lips, darkest deep inside.

    interior: (h, w) bool/float mask of the inner mouth; lip_colour: mean colour (3,) of the lips;
    depth_px: distance from the lips (pixels) over which it darkens.
    """
    m = (interior > 0.5).astype(np.uint8)
    if not m.any():
        return np.zeros(shape + (3,), np.float32)
    d = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    t = np.clip(d / max(depth_px, 1.0), 0.0, 1.0)
    t = t * t * (3.0 - 2.0 * t)
    level = (0.34 - 0.24 * t) * m  # fraction of the lip colour; 0 outside the interior
    tint = np.asarray(lip_colour, np.float32) * np.array([1.0, 0.8, 0.8], np.float32)
    return level[..., None] * tint[None, None, :]
