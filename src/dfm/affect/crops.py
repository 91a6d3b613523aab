"""Face crops for the affect estimators, aligned by the eye line from MediaPipe's 478 landmarks.

A crop is a similarity warp of the frame (rotation + uniform scale + shift; no shear, so the face keeps
its proportions): the eye line becomes horizontal, and the square crop covers the landmarks' box, in that
rotated frame, enlarged by `margin` of its side on every side. The box side is the larger of the
landmarks' width and height, so the face keeps its aspect ratio.

Margins (each estimator carries its own, see `AffectEstimator.crop_margin`): MediaPipe's mesh spans from
the upper forehead to the chin and across the cheeks, about the face box of a face detector.
- fer: FER2013 images are 48x48 face crops registered so the face fills most of the image (some hair and
  ears at the sides). 5% margin. The mini-Xception is sensitive to this: on the Pexels clip's crying part
  the mean valence is -0.60 / -0.60 / -0.58 / -0.43 / -0.19 at margins 0 / 0.05 / 0.10 / 0.15 / 0.20
  (looser crops drift towards "happy"), so the margin sits well inside the stable range.
- EmoNet: trained on AffectNet's released face crops (the detector box) resized to 256x256: 5% margin.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# MediaPipe FaceMesh indices of the eye corners (subject's right eye: 33 outer, 133 inner; left eye: 362
# inner, 263 outer). Their means give the two eye centres without needing the iris landmarks.
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)


def crop_transform(landmarks: np.ndarray, size: int, margin: float) -> np.ndarray:
    """(2, 3) affine matrix mapping frame pixels to crop pixels for one face.

    landmarks (478, 3) (or (K>=468, 2+)) in pixels, x right, y down. Raises ValueError on degenerate input.
    """
    points = np.asarray(landmarks, dtype=np.float64)[:, :2]
    if points.ndim != 2 or points.shape[0] < 468 or not np.isfinite(points).all():
        raise ValueError(f"need finite MediaPipe landmarks (478, 3), got shape {np.shape(landmarks)}")
    right_eye = points[list(RIGHT_EYE_CORNERS)].mean(axis=0)  # on the image's left for a frontal face
    left_eye = points[list(LEFT_EYE_CORNERS)].mean(axis=0)
    dx, dy = left_eye - right_eye
    angle = math.atan2(dy, dx)  # eye line angle in the image (y down)
    cos_a, sin_a = math.cos(-angle), math.sin(-angle)
    rotation = np.array([[cos_a, -sin_a], [sin_a, cos_a]])  # undoes the head roll
    rotated = points @ rotation.T
    low, high = rotated.min(axis=0), rotated.max(axis=0)
    side = float(max(high - low)) * (1.0 + 2.0 * margin)
    if side <= 1e-6:
        raise ValueError("landmarks collapse to a point; cannot make a face crop")
    centre = 0.5 * (low + high)
    scale = size / side
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    # the rotated box centre goes to the crop centre (pixel centres at integer coordinates)
    matrix[:, 2] = 0.5 * (size - 1) - scale * centre
    return matrix


def face_crops(frame: np.ndarray, landmarks: np.ndarray, size: int, margin: float) -> np.ndarray:
    """One aligned square crop (size, size, 3) uint8 of the face in `frame` (H, W, 3) uint8.

    Pixels beyond the frame edge are filled by replicating the border (a zero fill would look like a
    black bar to the network). Strong downscaling is pre-filtered so small crops do not alias.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected frame (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
    matrix = crop_transform(landmarks, size, margin)
    scale = math.hypot(matrix[0, 0], matrix[0, 1])
    source = frame
    if scale < 0.5:
        # area-average down first (warpAffine samples bilinearly and would alias at this ratio)
        factor = 2 ** int(math.floor(math.log2(1.0 / scale)))
        source = cv2.resize(frame, (frame.shape[1] // factor, frame.shape[0] // factor), interpolation=cv2.INTER_AREA)
        fx, fy = frame.shape[1] / source.shape[1], frame.shape[0] / source.shape[0]
        # a pixel q of the smaller image covers frame pixel p = f * q + (f - 1) / 2
        matrix = matrix.copy()
        matrix[:, 2] += matrix[:, :2] @ np.array([(fx - 1) / 2, (fy - 1) / 2])
        matrix[:, :2] *= np.array([fx, fy])
    return cv2.warpAffine(source, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def face_crops_batch(
    frames: np.ndarray | list[np.ndarray],
    landmarks: np.ndarray,
    size: int,
    margin: float,
    valid: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Crops of many frames: frames (T, H, W, 3), landmarks (T, 478, 3), valid (T,) bool or None.

    Returns (crops (T, size, size, 3) uint8, ok (T,) bool). Frames that are invalid or whose landmarks are
    unusable get an all-zero crop and ok=False, so indices stay aligned with the frames.
    """
    count = len(frames)
    if len(landmarks) != count:
        raise ValueError(f"{count} frames but {len(landmarks)} landmark sets")
    crops = np.zeros((count, size, size, 3), dtype=np.uint8)
    ok = np.zeros(count, dtype=bool) if valid is None else np.asarray(valid, dtype=bool).copy()
    if valid is None:
        ok[:] = True
    for i in range(count):
        if not ok[i]:
            continue
        try:
            crops[i] = face_crops(frames[i], landmarks[i], size, margin)
        except ValueError:
            ok[i] = False
    return crops, ok


def box_crop(frame: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Crop an axis-aligned box (x0, y0, x1, y1; exclusive ends) and resize it to (size, size) with area averaging.

    For faces without landmarks (benchmarks, fixed reference boxes).
    """
    x0, y0, x1, y1 = box
    region = frame[max(0, y0) : y1, max(0, x0) : x1]
    if region.size == 0:
        raise ValueError(f"box {box} lies outside the frame {frame.shape[:2]}")
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA)
