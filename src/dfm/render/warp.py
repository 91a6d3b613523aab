"""Warping with a backward map, and putting an edited crop back into its frame.

The edit weight w of a frame is applied to the GEOMETRY (the renderer moves the expression only w of
the way to the target, so a half-weight frame shows a half-way face, never a cross-dissolve with
double edges) and to the opacity of retrieved appearance; w == 0 returns the input object itself.
"""

from __future__ import annotations

import cv2
import numpy as np

from dfm.render.flow import CropGrid


def remap(image: np.ndarray, full_map: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Sample `image` at the absolute positions full_map (h, w, 2) (bilinear): a backward warp.

    The map is converted to OpenCV's fixed-point form first (1/32 pixel; faster to sample)."""
    m = np.ascontiguousarray(full_map, np.float32)
    if m.shape[0] * m.shape[1] == 0:
        return np.zeros(m.shape[:2] + image.shape[2:], image.dtype)
    m1, m2 = cv2.convertMaps(m, None, cv2.CV_16SC2)
    return cv2.remap(image, m1, m2, cv2.INTER_LINEAR, borderMode=border)


def warp_crop(image: np.ndarray, full_map: np.ndarray) -> np.ndarray:
    """The warped face crop: the original frame sampled at the flow's source positions."""
    return remap(image, full_map)


def paste(image: np.ndarray, crop: np.ndarray, grid: CropGrid, alpha: np.ndarray | None = None) -> np.ndarray:
    """A copy of `image` with `crop` placed at the grid's box; alpha (h, w) in [0, 1] mixes it in softly
    (a bool alpha selects pixels).

    Pixels where alpha is 0 (and all pixels outside the box) keep the input's exact values.
    """
    out = image.copy()
    ys, xs = grid.slices
    if alpha is None:
        out[ys, xs] = crop
        return out
    if alpha.dtype == bool:
        np.copyto(out[ys, xs], crop, where=alpha[..., None])
        return out
    a = np.clip(alpha, 0.0, 1.0).astype(np.float32)
    region = out[ys, xs]
    mixed = region.astype(np.float32) + a[..., None] * (crop.astype(np.float32) - region)
    new = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    keep = a <= 0.0
    new[keep] = region[keep]
    out[ys, xs] = new
    return out


def shift_map(height: int, width: int, dx: float, dy: float) -> np.ndarray:
    """The backward map of a constant displacement: output (x, y) samples input (x + dx, y + dy)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([xx + dx, yy + dy], -1)
