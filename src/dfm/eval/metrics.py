"""Image metrics of the self-reenactment protocol (paper §4.2): APD, Face-APD, Mouth-APD, PSNR, SSIM.

All metrics compare two 256x256 face crops cut with the SAME crop box (`CropBox`, placed from the test
frame's landmarks) out of the output frame and the ground-truth frame; pixel values 0..255.

- APD: mean over pixels of the Euclidean (L2) distance of the two RGB vectors (so a constant offset of
  10 on every channel gives 10 * sqrt(3)).
- Face-APD: the same mean restricted to the face mask of the NMFC image (visible ICT "Face" surface:
  skin and lips) of the ground-truth frame's fitted mesh, rendered in crop coordinates.
- Mouth-APD: restricted to the NMFC image's `mouth_region` (the lip landmarks' convex hull dilated by
  0.2 x mouth width: lips, inner mouth and the skin right around them). The paper's Mouth-APD is "over
  the mouth area"; the tight inner-mouth mask (`mouth`) is (nearly) empty whenever the mouth is closed,
  which would drop those frames and measure only open mouths, so the region is used.
- PSNR: 10 log10(255^2 / MSE), MSE over pixels and channels (inf for identical images).
- SSIM: Wang, Bovik, Sheikh & Simoncelli 2004 with their settings: 11x11 Gaussian window, sigma 1.5,
  K1 = 0.01, K2 = 0.03, L = 255; computed per RGB channel and averaged, the SSIM map averaged over the
  pixels whose full window lies inside the image ("valid" filtering, as their reference code).

A mask restricts a metric to its True pixels; an empty mask gives NaN (the frame does not count). Crop
pixels outside the frame (a face at the frame edge; `CropBox.inside`) are left out of every metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

CROP_SIZE = 256
CROP_MARGIN = 0.1  # crop side = (1 + 2 * margin) x the larger side of the landmarks' box
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # 11x11 window
SSIM_K1, SSIM_K2 = 0.01, 0.03
DATA_RANGE = 255.0


# --------------------------------------------------------------------------------------------- crops

@dataclass(frozen=True)
class CropBox:
    """A square box of a frame (integer pixel edges, may reach past the frame) resized to size x size.

    Frame pixel centre x maps to crop pixel (x - x0 + 0.5) * size / side - 0.5 (cv2.resize's convention),
    so points projected with `to_crop` line up with `apply`'s pixels.
    """

    x0: int
    y0: int
    side: int
    size: int = CROP_SIZE

    @classmethod
    def around(cls, points: np.ndarray, margin: float = CROP_MARGIN, size: int = CROP_SIZE) -> "CropBox":
        """The square box centred on the (x, y) box of `points` (N, >=2), side (1 + 2 margin) x its larger side."""
        p = np.asarray(points, np.float64)[:, :2]
        if p.size == 0 or not np.isfinite(p).all():
            raise ValueError("need finite points to place a crop box")
        lo, hi = p.min(0), p.max(0)
        side = max(int(math.ceil(float((hi - lo).max()) * (1.0 + 2.0 * margin))), 8)
        cx, cy = 0.5 * (lo + hi)
        return cls(int(math.floor(cx - side / 2.0 + 0.5)), int(math.floor(cy - side / 2.0 + 0.5)), side, size)

    @property
    def scale(self) -> float:
        """Crop pixels per frame pixel."""
        return self.size / self.side

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Frame positions (N, >=2) -> crop positions; a third column (depth) is scaled along."""
        p = np.array(points, np.float32, copy=True)
        s = self.scale
        p[:, 0] = (p[:, 0] - self.x0 + 0.5) * s - 0.5
        p[:, 1] = (p[:, 1] - self.y0 + 0.5) * s - 0.5
        if p.shape[1] > 2:
            p[:, 2:] *= s
        return p

    def inside(self, frame_hw: tuple[int, int]) -> np.ndarray:
        """(size, size) bool: crop pixels whose centre lies inside the frame (the others are replicated
        border, not picture: the metrics leave them out)."""
        h, w = frame_hw
        u = (np.arange(self.size) + 0.5) / self.scale - 0.5
        xs, ys = u + self.x0, u + self.y0
        okx = (xs >= -0.5) & (xs <= w - 0.5)
        oky = (ys >= -0.5) & (ys <= h - 0.5)
        return oky[:, None] & okx[None, :]

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The crop (size, size, C) of `image` (H, W, C): border pixels replicated past the frame edge,
        area-averaged when shrinking, bilinear when enlarging."""
        h, w = image.shape[:2]
        x1, y1 = self.x0 + self.side, self.y0 + self.side
        pad = (max(-self.y0, 0), max(y1 - h, 0), max(-self.x0, 0), max(x1 - w, 0))
        src = image
        if any(pad):
            src = cv2.copyMakeBorder(image, *pad, cv2.BORDER_REPLICATE)
        region = src[self.y0 + pad[0]:y1 + pad[0], self.x0 + pad[2]:x1 + pad[2]]
        interp = cv2.INTER_AREA if self.side > self.size else cv2.INTER_LINEAR
        return cv2.resize(region, (self.size, self.size), interpolation=interp)


# ------------------------------------------------------------------------------------------- metrics

def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"need two (H, W, 3) images of one shape, got {a.shape} and {b.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def _check_mask(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask, bool)
    if m.shape != shape:
        raise ValueError(f"mask shape {m.shape} != image shape {shape}")
    return m


def pixel_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W) float64: L2 distance of the RGB vectors of each pixel (0..255 units; max 255 sqrt 3)."""
    x, y = _check_pair(a, b)
    return np.sqrt(((x - y) ** 2).sum(axis=2))


def apd(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Average pixel distance: mean over (masked) pixels of the RGB L2 distance. NaN for an empty mask."""
    err = pixel_error(a, b)
    m = _check_mask(mask, err.shape)
    if m is None:
        return float(err.mean())
    return float(err[m].mean()) if m.any() else float("nan")


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio (dB) for 0..255 images over the (masked) pixels; inf when identical."""
    x, y = _check_pair(a, b)
    m = _check_mask(mask, x.shape[:2])
    sq = (x - y) ** 2
    if m is not None:
        if not m.any():
            return float("nan")
        sq = sq[m]
    mse = float(sq.mean())
    return float("inf") if mse == 0.0 else 10.0 * math.log10(DATA_RANGE ** 2 / mse)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W) SSIM map (mean over the RGB channels), Wang et al. 2004 with an 11x11 Gaussian window
    (sigma 1.5); values within SSIM_RADIUS of the border use a replicated border and are not "valid"."""
    x, y = _check_pair(a, b)
    k = 2 * SSIM_RADIUS + 1

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (k, k), SSIM_SIGMA, borderType=cv2.BORDER_REPLICATE)

    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2.0 * mx * my + c1) * (2.0 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return (num / den).mean(axis=2)


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM over the valid pixels (full window inside the image), restricted to `mask` if given."""
    smap = ssim_map(a, b)
    valid = np.zeros(smap.shape, bool)
    r = SSIM_RADIUS
    valid[r:smap.shape[0] - r, r:smap.shape[1] - r] = True
    m = _check_mask(mask, smap.shape)
    if m is not None:
        valid &= m
    return float(smap[valid].mean()) if valid.any() else float("nan")


METRIC_NAMES: tuple[str, ...] = ("apd", "face_apd", "mouth_apd", "psnr", "ssim")


def frame_metrics(output: np.ndarray, truth: np.ndarray, face_mask: np.ndarray | None,
                  mouth_mask: np.ndarray | None, valid: np.ndarray | None = None) -> dict[str, float]:
    """All metrics of one crop pair: apd, face_apd, mouth_apd, psnr, ssim. `valid` (e.g.
    CropBox.inside) restricts every metric (APD and PSNR/SSIM over the crop's valid pixels)."""
    err = pixel_error(output, truth)
    fm = _check_mask(face_mask, err.shape)
    mm = _check_mask(mouth_mask, err.shape)
    vm = _check_mask(valid, err.shape)
    if vm is not None:
        fm = None if fm is None else fm & vm
        mm = None if mm is None else mm & vm

    def masked(m: np.ndarray | None) -> float:
        if m is None or not m.any():
            return float("nan")
        return float(err[m].mean())

    return {
        "apd": float(err.mean()) if vm is None else masked(vm),
        "face_apd": masked(fm),
        "mouth_apd": masked(mm),
        "psnr": psnr(output, truth, vm),
        "ssim": ssim(output, truth, vm),
    }


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over frames, NaN (empty mask) frames left out; PSNR's inf frames left out too
    (reported as `psnr_inf_frames`)."""
    out: dict[str, float] = {"frames": len(rows)}
    for name in METRIC_NAMES:
        v = np.array([r[name] for r in rows if name in r], np.float64)
        if name == "psnr":
            out["psnr_inf_frames"] = int(np.isinf(v).sum())
            v = v[np.isfinite(v)]
        v = v[~np.isnan(v)]
        out[name] = float(v.mean()) if v.size else float("nan")
        if name != "psnr":
            out[f"{name}_std"] = float(v.std()) if v.size else float("nan")
    return out


# ------------------------------------------------------------------------------------------ heat maps

def error_heatmap(err: np.ndarray, vmax: float = 80.0) -> np.ndarray:
    """(H, W) per-pixel error -> (H, W, 3) uint8 RGB colour image (0 = dark blue ... vmax+ = dark red, 'jet')."""
    v = np.clip(np.asarray(err, np.float64) / vmax, 0.0, 1.0)
    bgr = cv2.applyColorMap(np.round(v * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def mask_outline(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """A copy of `image` with the outline of `mask` drawn in `colour` (1 px)."""
    out = np.ascontiguousarray(image.copy())
    contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, colour, 1)
    return out
