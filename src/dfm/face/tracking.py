"""Face tracking with MediaPipe Tasks FaceLandmarker in video mode.

Per frame: 478 landmarks in the pixel frame (x*W, y*H, z*W; see track.py), the 52 ARKit blendshape
scores (mapped to the 53 ICT columns) and MediaPipe's facial transformation matrix. One subject per
video: MediaPipe returns up to `max_faces` faces a frame, and `dfm.face.subject.SubjectSelector` picks the
subject among them (the user's choice, then continuity and identity; never "the largest other face").
Frames where the subject is not seen are invalid — never invented, never another person.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass, fields
from typing import Iterable

import numpy as np

from dfm.face.expressions import N_EXPRESSIONS, mediapipe_scores_to_ict
from dfm.face.subject import FaceSignature, SubjectReport, SubjectSelector, SubjectSpec

N_LANDMARKS = 478
N_MESH_LANDMARKS = 468  # the canonical-mesh vertices; 468..477 are the irises
MAX_FACES = 4  # faces MediaPipe looks for: enough to see the others, not just the subject


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
    """Stateful video-mode tracker of one subject. Feed frames in time order; use as a context manager.

    subject: which face to follow (default: the largest at its first appearance); reference: its signature
    when known beforehand, and spec_frame the frame a point spec names (see dfm.face.subject).
    """

    def __init__(self, model_path: str | os.PathLike, max_faces: int = MAX_FACES, min_confidence: float = 0.5,
                 subject: SubjectSpec | None = None, reference: FaceSignature | None = None,
                 spec_frame: int | None = None):
        self._landmarker = _landmarker(model_path, max_faces, min_confidence, video=True)
        self.selector = SubjectSelector(subject or SubjectSpec(), reference, spec_frame)
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
        """Track one RGB frame (H, W, 3) uint8 shown at `timestamp` seconds; None when the subject is not seen."""
        faces = self.detect(image, timestamp)
        k = self.selector.choose(image, [f.landmarks for f in faces])
        return None if k is None else faces[k]

    def detect(self, image: np.ndarray, timestamp: float) -> list[FrameTrack]:
        """Every face MediaPipe finds in the frame, without choosing the subject (frames in time order, as
        for `track`; the selector is left untouched)."""
        mp = import_mediapipe()

        # MediaPipe needs strictly increasing integer milliseconds.
        ms = max(int(round(timestamp * 1000.0)), self._last_ms + 1)
        self._last_ms = ms
        mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        found = _detect_for_video_arrays(self._landmarker, mp_image, ms, image.shape[:2])
        if found is None:  # a MediaPipe without the C-API result this reads: its public result objects
            result = self._landmarker.detect_for_video(mp_image, ms)
            found = [(landmarks, [c.category_name for c in result.face_blendshapes[k]],
                      np.array([c.score for c in result.face_blendshapes[k]], np.float32),
                      result.facial_transformation_matrixes[k])
                     for k, landmarks in enumerate(_faces(result, image.shape[:2]))]
        return [FrameTrack(landmarks, mediapipe_scores_to_ict(names, scores), np.asarray(matrix, np.float32), len(found))
                for landmarks, names, scores, matrix in found]

    def report(self) -> SubjectReport:
        return self.selector.report()


def detect_faces(image: np.ndarray, model_path: str | os.PathLike, max_faces: int = MAX_FACES,
                 min_confidence: float = 0.5) -> list[np.ndarray]:
    """Every face in one still RGB image (H, W, 3) uint8: a list of (478, 3) landmark arrays, pixel frame."""
    mp = import_mediapipe()

    landmarker = _landmarker(model_path, max_faces, min_confidence, video=False)
    try:
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
    finally:
        landmarker.close()
    return _faces(result, image.shape[:2])


def import_mediapipe():
    """The mediapipe module, imported without the plotting library its drawing helpers load.

    `mediapipe.tasks.python.vision` imports matplotlib.pyplot for drawing functions DFM never calls:
    ~0.7 s of every tracking process's start (each parallel worker's too). While mediapipe imports,
    placeholder modules stand in for matplotlib; they are removed at once, so a later `import matplotlib`
    anywhere gets the real one. A process that has matplotlib loaded already keeps using it.
    """
    import sys

    if "mediapipe.tasks.python.vision" in sys.modules or "matplotlib" in sys.modules:
        import mediapipe

        return mediapipe
    import types

    names = ("matplotlib", "matplotlib.pyplot")
    for name in names:
        sys.modules[name] = types.ModuleType(name)
    try:
        import mediapipe
        import mediapipe.tasks.python.vision  # noqa: F401  (the package that imports pyplot)
    finally:
        for name in names:
            sys.modules.pop(name, None)
    return mediapipe


def _landmarker(model_path: str | os.PathLike, max_faces: int, min_confidence: float, video: bool):
    import_mediapipe()
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model_path)),
        running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
        num_faces=max_faces,
        min_face_detection_confidence=min_confidence,
        min_face_presence_confidence=min_confidence,
        min_tracking_confidence=min_confidence,
        output_face_blendshapes=video,
        output_facial_transformation_matrixes=video,
    )
    from dfm.io.native_log import quiet_native_stderr

    with quiet_native_stderr():  # MediaPipe and TFLite print set-up lines from C++ (dfm --verbose shows them)
        return vision.FaceLandmarker.create_from_options(options)


def _detect_for_video_arrays(landmarker, mp_image, ms: int, shape: tuple[int, int]) -> list[tuple] | None:
    """`landmarker.detect_for_video(mp_image, ms)` read straight from MediaPipe's C result into arrays:
    per face (landmarks (478, 3) frame pixels, blendshape names, scores (52,), transform (4, 4)), the same
    values as its public result gives. That result builds one Python object per landmark (~2 ms a frame,
    a tenth of the tracking's CPU). None when this MediaPipe has no such C API (other versions): the
    caller then uses the public result."""
    try:
        from mediapipe.tasks.python.vision import face_landmarker as fl

        lib, handle, result_c = landmarker._lib, landmarker._handle, fl.MpFaceLandmarkerResultC()
        detect, close = lib.MpFaceLandmarkerDetectForVideo, lib.MpFaceLandmarkerCloseResult
    except (ImportError, AttributeError):
        return None
    h, w = shape
    detect(handle, mp_image._image_ptr, None, ms, ctypes.byref(result_c))
    try:
        faces = []
        for k in range(result_c.face_landmarks_count):
            lms = result_c.face_landmarks[k]
            rows = _struct_rows(lms.landmarks, lms.landmarks_count)
            # in double precision, then rounded once, as the public result's Python floats are
            landmarks = np.stack([rows["x"] * np.float64(w), rows["y"] * np.float64(h), rows["z"] * np.float64(w)],
                                 1).astype(np.float32)
            names, scores = [], np.zeros(0, np.float32)
            if k < result_c.face_blendshapes_count:
                cats = result_c.face_blendshapes[k]
                items = [cats.categories[j] for j in range(cats.categories_count)]
                names = [c.category_name.decode("utf-8") if c.category_name else None for c in items]
                scores = np.array([c.score for c in items], np.float32)
            matrix = (result_c.facial_transformation_matrixes[k].to_numpy()
                      if k < result_c.facial_transformation_matrixes_count else np.eye(4))
            faces.append((landmarks, names, scores, matrix))
        return faces
    finally:
        close(ctypes.byref(result_c))


def _struct_rows(pointer, count: int) -> np.ndarray:
    """The float fields x, y, z of `count` C landmark structs at `pointer`, as a structured array view
    (numpy cannot read the struct's char* field through the buffer protocol; this dtype skips it)."""
    struct = pointer._type_
    dtype = np.dtype({"names": ["x", "y", "z"], "formats": ["<f4"] * 3,
                      "offsets": [getattr(struct, n).offset for n in ("x", "y", "z")], "itemsize": ctypes.sizeof(struct)})
    if count == 0:
        return np.zeros(0, dtype)
    buffer = (ctypes.c_char * (count * dtype.itemsize)).from_address(ctypes.cast(pointer, ctypes.c_void_p).value)
    return np.frombuffer(buffer, dtype, count)


def _faces(result, shape: tuple[int, int]) -> list[np.ndarray]:
    h, w = shape
    return [np.array([(p.x * w, p.y * h, p.z * w) for p in lms], np.float32) for lms in result.face_landmarks]


def track_frames(frames: Iterable[tuple[float, np.ndarray]], model_path: str | os.PathLike,
                 subject: SubjectSpec | None = None) -> TrackingResult:
    """Track a sequence of (timestamp_seconds, RGB image). Returns per-frame arrays of the subject."""
    rows: list[FrameTrack | None] = []
    with FaceTracker(model_path, subject=subject) as tracker:
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


class TrackBuffer:
    """Per-frame tracker rows gathered into compact arrays as they come (`append`, then `result()`).

    A list of one small FrameTrack per frame, kept to the end, scatters survivors over the heap
    between the large short-lived frame buffers, so the process's memory grows with the video even
    though the rows are small; here rows are packed into one TrackingResult per BLOCK frames.
    """

    BLOCK = 256

    def __init__(self) -> None:
        self._blocks: list[TrackingResult] = []
        self._rows: list[FrameTrack | None] = []
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, row: FrameTrack | None) -> None:
        self._rows.append(row)
        self._n += 1
        if len(self._rows) >= self.BLOCK:
            self._blocks.append(stack_tracks(self._rows))
            self._rows = []

    def result(self) -> TrackingResult:
        """All rows as one TrackingResult (call once: the blocks are released field by field, so the peak is the
        result plus one field's blocks)."""
        if self._rows or not self._blocks:
            self._blocks.append(stack_tracks(self._rows))
            self._rows = []
        blocks, self._blocks = self._blocks, []
        out = {}
        for f in fields(TrackingResult):
            out[f.name] = np.concatenate([getattr(b, f.name) for b in blocks])
            for b in blocks:
                setattr(b, f.name, None)
        return TrackingResult(**out)

