"""Eye-line aligned face crops from MediaPipe landmarks."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from dfm.affect.crops import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS, box_crop, crop_transform, face_crops, face_crops_batch


def synthetic_face(center=(320.0, 180.0), half_size=80.0, roll_deg=0.0, seed=0) -> np.ndarray:
    """(478, 3) landmarks filling a square of side 2*half_size, eye corners placed, rolled by roll_deg."""
    rng = np.random.default_rng(seed)
    local = rng.uniform(-half_size, half_size, size=(478, 2))
    local[[0, 1]] = [[-half_size, -half_size], [half_size, half_size]]  # pin the box corners
    local[list(RIGHT_EYE_CORNERS)] = [[-50, -20], [-20, -20]]
    local[list(LEFT_EYE_CORNERS)] = [[20, -20], [50, -20]]
    a = math.radians(roll_deg)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    points = local @ rotation.T + np.asarray(center)
    return np.concatenate([points, np.zeros((478, 1))], axis=1)


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return points[list(RIGHT_EYE_CORNERS), :2].mean(0), points[list(LEFT_EYE_CORNERS), :2].mean(0)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points[:, :2] @ matrix[:, :2].T + matrix[:, 2]


@pytest.mark.parametrize("roll", [0.0, 17.0, -35.0])
def test_eye_line_becomes_horizontal_and_face_is_centred(roll):
    landmarks = synthetic_face(roll_deg=roll)
    size, margin = 128, 0.1
    matrix = crop_transform(landmarks, size, margin)
    right, left = (apply(matrix, e[None])[0] for e in eye_centres(landmarks))
    assert right[1] == pytest.approx(left[1], abs=1e-6)  # horizontal
    assert right[0] < left[0]  # subject's right eye on the image's left: no mirror
    mapped = apply(matrix, landmarks)
    # the landmarks' box (side 160) plus 10% each side spans the crop
    assert mapped.min() == pytest.approx(size * 0.1 / 1.2 - 0.5, abs=1e-6)
    assert mapped.max() == pytest.approx(size - 1 + 0.5 - size * 0.1 / 1.2, abs=1e-6)
    # similarity: no shear, uniform scale
    a = matrix[:, :2]
    np.testing.assert_allclose(a @ a.T, (size / (160 * 1.2)) ** 2 * np.eye(2), atol=1e-9)


def test_crop_is_invariant_to_head_roll():
    # a textured frame, and the same frame rotated about the face centre
    rng = np.random.default_rng(1)
    base = cv2.resize(rng.integers(0, 256, size=(45, 80, 3), dtype=np.uint8), (640, 360), interpolation=cv2.INTER_CUBIC)
    centre = (320.0, 180.0)
    roll = 20.0
    rotation = cv2.getRotationMatrix2D(centre, -roll, 1.0)  # OpenCV: positive = counter-clockwise on screen
    rolled = cv2.warpAffine(base, rotation, (640, 360), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    upright = face_crops(base, synthetic_face(centre), 64, 0.1)
    turned = face_crops(rolled, synthetic_face(centre, roll_deg=roll), 64, 0.1)
    assert upright.shape == (64, 64, 3) and upright.dtype == np.uint8
    diff = np.abs(upright.astype(float) - turned.astype(float)).mean()
    assert diff < 6.0  # resampling differences only
    unrelated = face_crops(base, synthetic_face((250.0, 150.0)), 64, 0.1)
    assert np.abs(upright.astype(float) - unrelated.astype(float)).mean() > 3 * diff


def test_batch_keeps_frame_alignment_and_flags_bad_frames():
    frames = np.full((3, 360, 640, 3), 100, dtype=np.uint8)
    landmarks = np.stack([synthetic_face(), synthetic_face(), synthetic_face()])
    landmarks[2, 5, 0] = np.nan
    crops, ok = face_crops_batch(frames, landmarks, 32, 0.1, valid=np.array([True, False, True]))
    assert ok.tolist() == [True, False, False]
    assert crops.shape == (3, 32, 32, 3)
    assert np.all(crops[0] == 100) and np.all(crops[1] == 0) and np.all(crops[2] == 0)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="landmarks"):
        crop_transform(np.zeros((68, 2)), 64, 0.1)
    with pytest.raises(ValueError, match="frame"):
        face_crops(np.zeros((360, 640), np.uint8), synthetic_face(), 64, 0.1)


def test_box_crop_resizes():
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[100:200, 300:400] = 255
    crop = box_crop(frame, (300, 100, 400, 200), 64)
    assert crop.shape == (64, 64, 3) and np.all(crop == 255)
