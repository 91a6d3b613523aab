"""Face tracking with MediaPipe Tasks FaceLandmarker in video mode.

Per frame: 478 landmarks in the pixel frame (x*W, y*H, z*W; see track.py), the 52 ARKit blendshape
scores (mapped to the 53 ICT columns) and MediaPipe's facial transformation matrix. One subject per
video: MediaPipe may return two faces; we keep the one that continues the previous frame's subject
(box overlap), starting from the largest. Frames with no face are invalid — never invented.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from dfm.face.expressions import N_EXPRESSIONS, mediapipe_scores_to_ict

N_LANDMARKS = 478
N_MESH_LANDMARKS = 468  # the canonical-mesh vertices; 468..477 are the irises


@dataclass
class TrackingResult:
    """Raw tracker output for a whole video (arrays indexed by frame)."""

    valid: np.ndarray  # (T,) bool
    landmarks: np.ndarray  # (T, 478, 3) float32 pixel frame
    blendshapes: np.ndarray  # (T, 53) float32 ICT columns
    transforms: np.ndarray  # (T, 4, 4) float32 MediaPipe facial transformation matrix (cm)
    n_faces: np.ndarray  # (T,) int8 faces MediaPipe saw in the frame

    @classmethod
    def empty(cls, n: int) -> "TrackingResult":
        return cls(np.zeros(n, bool), np.zeros((n, N_LANDMARKS, 3), np.float32),
                   np.zeros((n, N_EXPRESSIONS), np.float32), np.zeros((n, 4, 4), np.float32),
                   np.zeros(n, np.int8))


@dataclass
class FrameTrack:
    landmarks: np.ndarray  # (478, 3)
    blendshapes: np.ndarray  # (53,)
    transform: np.ndarray  # (4, 4)
    n_faces: int


class FaceTracker:
    """Stateful video-mode tracker. Feed frames in time order; use as a context manager."""

    def __init__(self, model_path: str | os.PathLike, max_faces: int = 2, min_confidence: float = 0.5):
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=max_faces,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._last_box: np.ndarray | None = None
        self._last_ms = -1

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def track(self, image: np.ndarray, timestamp: float) -> FrameTrack | None:
        """Track one RGB frame (H, W, 3) uint8 shown at `timestamp` seconds; None when no face."""
        import mediapipe as mp

        h, w = image.shape[:2]
        # MediaPipe needs strictly increasing integer milliseconds.
        ms = max(int(round(timestamp * 1000.0)), self._last_ms + 1)
        self._last_ms = ms
        result = self._landmarker.detect_for_video(
            mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)), ms)
        if not result.face_landmarks:
            self._last_box = None
            return None
        faces = [np.array([(p.x * w, p.y * h, p.z * w) for p in lms], np.float32) for lms in result.face_landmarks]
        k = self._choose(faces)
        self._last_box = _box(faces[k])
        names = [c.category_name for c in result.face_blendshapes[k]]
        scores = np.array([c.score for c in result.face_blendshapes[k]], np.float32)
        return FrameTrack(faces[k], mediapipe_scores_to_ict(names, scores),
                          np.asarray(result.facial_transformation_matrixes[k], np.float32), len(faces))

    def _choose(self, faces: list[np.ndarray]) -> int:
        boxes = [_box(f) for f in faces]
        if self._last_box is not None:
            ious = [_iou(b, self._last_box) for b in boxes]
            if max(ious) > 0.2:
                return int(np.argmax(ious))
        return int(np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]))


def track_frames(frames: Iterable[tuple[float, np.ndarray]], model_path: str | os.PathLike,
                 n_frames: int | None = None) -> TrackingResult:
    """Track a sequence of (timestamp_seconds, RGB image). Returns per-frame arrays."""
    rows: list[FrameTrack | None] = []
    with FaceTracker(model_path) as tracker:
        for ts, image in frames:
            rows.append(tracker.track(image, ts))
    return stack_tracks(rows)


def stack_tracks(rows: list[FrameTrack | None]) -> TrackingResult:
    out = TrackingResult.empty(len(rows))
    for i, r in enumerate(rows):
        if r is None:
            continue
        out.valid[i] = True
        out.landmarks[i] = r.landmarks
        out.blendshapes[i] = r.blendshapes
        out.transforms[i] = r.transform
        out.n_faces[i] = r.n_faces
    return out


def _box(landmarks: np.ndarray) -> np.ndarray:
    return np.array([*landmarks[:, :2].min(0), *landmarks[:, :2].max(0)], np.float32)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
