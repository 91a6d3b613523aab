"""Temporal stability: zero-phase smoothing of the fitted per-frame geometry, and a jitter measure.

The warp moves the real face by the model displacement D(target - fitted). Noise in the fitted
expression or camera therefore shows as jitter in the output even when the target is constant, so the
renderer uses a lightly smoothed copy of the track (Gaussian in time over valid frames, zero phase:
the whole track is known before rendering). Genuine fast motions of the original face (blinks, lip
twitches) are still in the pixels; smoothing only stops the warp from adding fit noise on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
from scipy.ndimage import gaussian_filter1d

from dfm.face.track import FaceTrack


@dataclass(frozen=True)
class TrackGeometry:
    """Per-frame geometry the renderer uses (possibly smoothed copies of the track's)."""

    valid: np.ndarray  # (T,) bool
    expression: np.ndarray  # (T, 53)
    rotation: np.ndarray  # (T, 3, 3)
    translation: np.ndarray  # (T, 3)
    scale: np.ndarray  # (T,)


def _smooth_valid(x: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 that ignores invalid frames (normalised convolution)."""
    w = valid.astype(np.float64)
    flat = np.nan_to_num(x.reshape(x.shape[0], -1).astype(np.float64)) * w[:, None]
    num = gaussian_filter1d(flat, sigma, axis=0, mode="nearest")
    den = gaussian_filter1d(w, sigma, mode="nearest")[:, None]
    out = np.where(den > 1e-6, num / np.maximum(den, 1e-6), flat)
    out = np.where(w[:, None] > 0, out, x.reshape(x.shape[0], -1))
    return out.reshape(x.shape).astype(np.float32)


def _orthonormalise(r: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(r.astype(np.float64))
    d = np.sign(np.linalg.det(u @ vt))
    u[..., :, -1] *= d[..., None]
    return (u @ vt).astype(np.float32)


def smooth_geometry(track: FaceTrack, sigma_expression: float = 1.0, sigma_pose: float = 1.0) -> TrackGeometry:
    """The track's per-frame expression and camera, smoothed over time (sigma in frames; 0 = as fitted)."""
    valid = np.asarray(track.valid, bool)
    expr, rot = track.expression, track.rotation
    trans, scale = track.translation, track.scale
    if sigma_expression > 0 and valid.sum() > 1:
        expr = np.clip(_smooth_valid(expr, valid, sigma_expression), 0.0, 1.0)
    if sigma_pose > 0 and valid.sum() > 1:
        rot = _smooth_valid(rot, valid, sigma_pose)
        rot = np.where(valid[:, None, None], _orthonormalise(np.nan_to_num(rot) + 1e-9 * np.eye(3)), track.rotation)
        trans = _smooth_valid(trans, valid, sigma_pose)
        scale = _smooth_valid(scale[:, None], valid, sigma_pose)[:, 0]
    return TrackGeometry(valid=valid, expression=np.asarray(expr, np.float32), rotation=np.asarray(rot, np.float32),
                         translation=np.asarray(trans, np.float32), scale=np.asarray(scale, np.float32))


def face_jitter(frames: Iterable[np.ndarray], masks: Iterable[np.ndarray | None]) -> float:
    """Mean absolute frame-to-frame change (0..255 units, averaged over channels) inside the face.

    frames: consecutive (H, W, 3) images; masks: per frame (H, W) bool face mask (None = whole frame).
    The pair (t-1, t) is measured inside mask[t-1] & mask[t]. Compare an output's value with the
    input's over the same frames and masks: a stable edit does not raise it.
    """
    total, count = 0.0, 0
    prev, prev_mask = None, None
    for img, mask in zip(frames, masks):
        cur = np.asarray(img, np.float32)
        m = np.ones(cur.shape[:2], bool) if mask is None else np.asarray(mask, bool)
        if prev is not None:
            both = m & prev_mask
            if both.any():
                total += float(np.abs(cur[both] - prev[both]).mean()) * int(both.sum())
                count += int(both.sum())
        prev, prev_mask = cur, m
    return total / count if count else 0.0


def edit_jitter(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray], masks: Iterable[np.ndarray | None]) -> float:
    """Mean absolute frame-to-frame change of the EDIT LAYER (output - input) inside the face.

    Zero for an edit that is constant relative to the moving face; flicker of the warp, of retrieved
    patches or of source switches shows up here even when the face itself moves a lot.
    """
    diffs = (np.asarray(o, np.float32) - np.asarray(i, np.float32) for i, o in zip(inputs, outputs))
    return face_jitter(diffs, masks)
