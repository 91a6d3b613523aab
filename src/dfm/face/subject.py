"""Which face is the subject: the user's choice, kept across gaps and cuts by who the person is.

A video may show several people. The job edits one of them, the *subject*, chosen by a `SubjectSpec`
(`largest` face at its first appearance — the default —, `leftmost`, `rightmost`, or the face under a
point at a given time: `2.5s:320,180`, `f60:320,180`). From then on the subject is followed by

- continuity: the face overlapping the subject's box in the previous frame, within one shot, unless its
  signature jumps from one frame to the next (another person in the same place: a cut); and
- identity: a `FaceSignature` (the shape of the rigid landmarks after a 3-D similarity alignment, the
  mean skin colour and a normalised grey patch of the eyes/nose region, all measured on the face the
  tracker returns) compared with the subject's running reference signature.

After a gap (the subject hidden or out of frame) or a scene cut, position means nothing: the subject is
re-acquired only by a face whose signature matches. Frames where no face matches are *absent* (invalid
for the subject), never "the largest other face". A frame where another person takes the subject's place
(a cut from one person to another) is a *change of person*, reported with its time.

Each component is first put in a unit of the typical same-person difference (measured on the shared
GRID, MEAD and Pexels clips), then divided by the subject's own spread in this video (see
`SubjectIdentity`): a steady video tells people apart more finely than one full of laughter and tears.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import cv2
import numpy as np

from dfm.errors import InputError

SUBJECT_RULES = ("largest", "leftmost", "rightmost")

# MediaPipe FaceMesh points that expressions move least: the upper face oval, the eye corners, the nose.
# (The brows, lids, lips and jaw move with expression and speech, so they are left out.)
RIGID_POINTS = (10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 338, 297, 332, 284, 251, 389, 356, 454, 323,
                33, 133, 362, 263, 1, 4, 5, 6, 168, 197, 195, 2, 98, 327, 151, 9, 8)
RIGHT_EYE, LEFT_EYE, NOSE_TIP = (33, 133), (362, 263), 1

# One unit of each signature component: about the median frame-to-frame spread of one person.
GEOMETRY_UNIT = 0.02  # RMS of aligned rigid points, in units of the shape's own RMS size
COLOUR_UNIT = 5.0  # Euclidean distance of mean Lab skin colour (OpenCV 8-bit Lab)
PATTERN_UNIT = 0.15  # 1 - correlation of the normalised grey eyes/nose patch

SPREAD_PRIOR = 0.5  # the subject's own spread (per component) before enough frames are seen
SPREAD_FLOOR = 0.35  # never narrower: compression noise and small lighting changes
MATCH_DISTANCE = 3.0  # re-acquiring after a gap or a cut (in spreads): the face must look like the subject
CONTINUE_DISTANCE = 6.0  # continuing in place within a shot: expressions and blinks reach ~4.5
JUMP = 2.5  # median component change from one frame to the next that breaks continuity: a cut between
# two people jumps in every component at once (measured 4-11), an expression moves one or two (at most 1.6)
CONTINUE_IOU = 0.3
CUT_DIFFERENCE = 0.12  # mean absolute change of a 32x18 grey thumbnail (0..1) that marks a scene cut


@dataclass(frozen=True)
class SubjectSpec:
    """Which face to edit. rule: largest | leftmost | rightmost | point; for point, a time (seconds) or a
    frame index, and (x, y) in display pixels of that frame."""

    rule: str = "largest"
    seconds: float | None = None
    frame: int | None = None
    point: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.rule not in (*SUBJECT_RULES, "point"):
            raise InputError(f"unknown subject rule {self.rule!r}; use {', '.join(SUBJECT_RULES)} or TIME:X,Y")
        if self.rule == "point" and (self.point is None or (self.seconds is None) == (self.frame is None)):
            raise InputError("a subject point needs one time (2.5s) or frame (f60) and a point x,y")

    @classmethod
    def at(cls, seconds: float, x: float, y: float) -> "SubjectSpec":
        """The face under (x, y) at time `seconds` (what a click in the web tool gives)."""
        return cls("point", seconds=float(seconds), point=(float(x), float(y)))

    def __str__(self) -> str:
        if self.rule != "point":
            return self.rule
        when = f"f{self.frame}" if self.frame is not None else f"{self.seconds:g}s"
        return f"{when}:{self.point[0]:g},{self.point[1]:g}"

    def frame_index(self, timestamps: np.ndarray) -> int | None:
        """The frame the point refers to (None for the rules)."""
        if self.rule != "point":
            return None
        if self.frame is not None:
            if not 0 <= self.frame < len(timestamps):
                raise InputError(f"--subject {self}: frame {self.frame} is outside the video's {len(timestamps)} frames")
            return self.frame
        if not timestamps[0] - 1e-6 <= self.seconds <= timestamps[-1] + 1.0:
            raise InputError(f"--subject {self}: {self.seconds:g} s is outside the video (0-{timestamps[-1]:.2f} s)")
        return int(np.clip(np.searchsorted(timestamps, self.seconds + 1e-6, side="right") - 1, 0, len(timestamps) - 1))


_POINT_SPEC = re.compile(r"^\s*(?:f(?P<frame>\d+)|(?P<sec>\d+(?:\.\d*)?|\.\d+)s?)\s*:\s*"
                         r"(?P<x>-?\d+(?:\.\d*)?)\s*,\s*(?P<y>-?\d+(?:\.\d*)?)\s*$")


def parse_subject(text: str | SubjectSpec | None) -> SubjectSpec:
    """`largest` | `leftmost` | `rightmost` | `2.5s:320,180` | `f60:320,180` -> SubjectSpec (InputError if not)."""
    if text is None:
        return SubjectSpec()
    if isinstance(text, SubjectSpec):
        return text
    t = str(text).strip().lower()
    if t in SUBJECT_RULES:
        return SubjectSpec(t)
    m = _POINT_SPEC.match(t)
    if m is None:
        raise InputError(f"bad subject {text!r}: use largest, leftmost, rightmost, or TIME:X,Y "
                         "(e.g. 2.5s:320,180 or f60:320,180)")
    x, y = float(m["x"]), float(m["y"])
    if m["frame"] is not None:
        return SubjectSpec("point", frame=int(m["frame"]), point=(x, y))
    return SubjectSpec("point", seconds=float(m["sec"]), point=(x, y))


@dataclass
class FaceBox:
    """A face seen in a frame: its landmark box (x0, y0, x1, y1) in display pixels."""

    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def of(cls, landmarks: np.ndarray) -> "FaceBox":
        lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
        return cls(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)

    @property
    def centre(self) -> tuple[float, float]:
        return 0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1)

    def contains(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1

    def iou(self, other: "FaceBox") -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def to_list(self) -> list[float]:
        return [round(self.x0, 1), round(self.y0, 1), round(self.x1, 1), round(self.y1, 1)]


@dataclass
class FaceSignature:
    """Who a face is, as far as landmarks and a small face crop tell: geometry (K, 3) of the rigid points
    (centred, unit RMS size), colour (3,) mean Lab of the cheeks and nose, pattern (P,) the zero-mean,
    unit-variance grey patch of the eyes and nose in an eye-aligned crop."""

    geometry: np.ndarray
    colour: np.ndarray
    pattern: np.ndarray


def face_signature(image: np.ndarray, landmarks: np.ndarray) -> FaceSignature:
    """The signature of the face with `landmarks` (478, 3) pixels in `image` (H, W, 3) uint8 RGB."""
    geometry = np.asarray(landmarks, np.float64)[list(RIGID_POINTS)]
    geometry = geometry - geometry.mean(0)
    geometry /= max(float(np.sqrt((geometry ** 2).sum(1).mean())), 1e-9)
    lm = np.asarray(landmarks, np.float64)
    src = np.float32([lm[list(RIGHT_EYE), :2].mean(0), lm[list(LEFT_EYE), :2].mean(0), lm[NOSE_TIP, :2]])
    dst = np.float32([[20, 24], [44, 24], [32, 40]])  # a 64x64 crop: eyes on row 24, nose tip at (32, 40)
    # work on the face's own region of the frame only (a margin of half its size around the landmarks)
    lo, hi = lm[:, :2].min(0), lm[:, :2].max(0)
    pad = 0.5 * (hi - lo)
    x0, y0 = (max(0, int(v)) for v in lo - pad)
    x1, y1 = int(min(image.shape[1], hi[0] + pad[0] + 1)), int(min(image.shape[0], hi[1] + pad[1] + 1))
    source = image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    src -= np.float32([x0, y0])
    matrix = cv2.getAffineTransform(src, dst)
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if scale < 0.5:  # area-average first so a small crop of a large face does not alias
        f = 2 ** int(math.floor(math.log2(1.0 / scale)))
        full = source
        source = cv2.resize(full, (max(1, full.shape[1] // f), max(1, full.shape[0] // f)), interpolation=cv2.INTER_AREA)
        matrix = matrix.copy()
        sx, sy = full.shape[1] / source.shape[1], full.shape[0] / source.shape[0]
        matrix[:, 2] += matrix[:, :2] @ np.array([(sx - 1) / 2, (sy - 1) / 2])
        matrix[:, :2] *= np.array([sx, sy])
    crop = cv2.warpAffine(np.ascontiguousarray(source), matrix, (64, 64), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32)
    colour = lab[30:46, 14:50].reshape(-1, 3).mean(0)  # cheeks and nose, below the eyes, above the mouth
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)[8:40, 8:56]  # brows, eyes, upper nose
    grey = cv2.resize(grey, (24, 16), interpolation=cv2.INTER_AREA).ravel()
    pattern = (grey - grey.mean()) / (grey.std() + 1e-6)
    return FaceSignature(geometry.astype(np.float32), colour.astype(np.float32), pattern.astype(np.float32))


def _aligned(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`points` (K, 3) rotated onto `reference` (both centred, unit size): orthogonal Procrustes."""
    u, _, vt = np.linalg.svd(points.T.astype(np.float64) @ reference.astype(np.float64))
    if _det3(u @ vt) < 0:  # a reflection: flip the least significant axis (u @ diag(1, 1, -1) @ vt)
        u[:, 2] = -u[:, 2]
    return points @ (u @ vt)


def _det3(m: np.ndarray) -> float:
    """Determinant of a 3x3 matrix (np.linalg.det's set-up costs more than this on one small matrix)."""
    (a, b, c), (d, e, f), (g, h, i) = m.tolist()
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def signature_components(a: FaceSignature, b: FaceSignature) -> np.ndarray:
    """(geometry, colour, pattern) differences of two faces, each in its unit (see the constants)."""
    return _compared(a, b)[0]


def _compared(a: FaceSignature, b: FaceSignature) -> tuple[np.ndarray, np.ndarray]:
    """signature_components(a, b), and a's geometry aligned onto b's (the running mean reuses it)."""
    aligned = _aligned(a.geometry, b.geometry)
    geometry = float(np.sqrt(((aligned - b.geometry) ** 2).sum(1).mean()))
    colour = float(np.linalg.norm(a.colour - b.colour))
    pattern = 1.0 - float(np.dot(a.pattern, b.pattern) / len(a.pattern))
    return np.array([geometry / GEOMETRY_UNIT, colour / COLOUR_UNIT, pattern / PATTERN_UNIT]), aligned


def _percentile75(rows: np.ndarray) -> np.ndarray:
    """np.percentile(rows, 75, axis=0) (linear interpolation, numpy's formula), for the few rows the spread
    keeps: the selector asks for it every frame, and np.percentile's generic path costs ~0.3 ms."""
    s = np.sort(rows, axis=0)
    pos = 0.75 * (len(s) - 1)
    lo = int(pos)
    t = pos - lo
    if lo + 1 >= len(s):
        return s[lo]
    a, b = s[lo], s[lo + 1]
    diff = b - a
    return b - diff * (1.0 - t) if t >= 0.5 else a + diff * t


class SubjectIdentity:
    """The subject's reference signature (a running mean over the frames matched) and its own spread.

    A face's distance to the subject is the mean over the three components of (difference / the
    subject's own typical difference): a video with big expressions or changing light widens what
    "the same person" means, a steady one narrows it. The spread is the 75th percentile of the last
    frames' differences, floored at SPREAD_FLOOR (and SPREAD_PRIOR until a few frames are in).
    """

    def __init__(self, reference: FaceSignature, memory: int = 50, history: int = 100):
        self.reference = reference
        self.n = 1
        self.memory = memory  # the mean forgets slowly (lighting drifts), and never leaves the person
        self._recent: list[np.ndarray] = []
        self._history = history
        self._spread: np.ndarray | None = None
        self._last: tuple | None = None  # (signature, reference, their components, signature's aligned geometry)

    @property
    def spread(self) -> np.ndarray:
        if self._spread is None:
            self._spread = np.full(3, SPREAD_PRIOR) if len(self._recent) < 5 else \
                np.maximum(_percentile75(np.array(self._recent)), SPREAD_FLOOR)
        return self._spread

    def distance(self, signature: FaceSignature) -> float:
        return float((self._components(signature) / self.spread).mean())

    def _components(self, signature: FaceSignature) -> np.ndarray:
        return self._compared(signature)[0]

    def _compared(self, signature: FaceSignature) -> tuple[np.ndarray, np.ndarray]:
        """_compared(signature, reference); the last one is kept, since a face matched in a frame is
        measured again by `update` against the same reference."""
        if self._last is not None and self._last[0] is signature and self._last[1] is self.reference:
            return self._last[2], self._last[3]
        c, aligned = _compared(signature, self.reference)
        self._last = (signature, self.reference, c, aligned)
        return c, aligned

    def update(self, signature: FaceSignature) -> None:
        components, aligned = self._compared(signature)
        self._recent.append(components)
        del self._recent[:-self._history]
        self._spread = None
        self.n += 1
        w = 1.0 / min(self.n, self.memory)
        ref = self.reference
        geometry = (1 - w) * ref.geometry + w * aligned
        geometry = geometry - geometry.mean(0)
        geometry /= max(float(np.sqrt((geometry ** 2).sum(1).mean())), 1e-9)
        pattern = (1 - w) * ref.pattern + w * signature.pattern
        pattern = (pattern - pattern.mean()) / (pattern.std() + 1e-6)
        colour = (1 - w) * ref.colour + w * signature.colour
        self.reference = FaceSignature(geometry.astype(np.float32), colour.astype(np.float32), pattern.astype(np.float32))


def pick_by_rule(boxes: Sequence[FaceBox], spec: SubjectSpec) -> int | None:
    """The face a rule (or a point) names among `boxes` (None when a point hits no face)."""
    if not boxes:
        return None
    if spec.rule == "largest":
        return int(np.argmax([b.area for b in boxes]))
    if spec.rule == "leftmost":
        return int(np.argmin([b.centre[0] for b in boxes]))
    if spec.rule == "rightmost":
        return int(np.argmax([b.centre[0] for b in boxes]))
    x, y = spec.point
    inside = [k for k, b in enumerate(boxes) if b.contains(x, y)]
    if inside:  # overlapping boxes: the one whose centre is nearest the point
        return min(inside, key=lambda k: math.dist(boxes[k].centre, (x, y)))
    return None


@dataclass
class SubjectReport:
    """Where the subject was, where others were, and where the person changed (frame indices)."""

    spec: str
    subject: np.ndarray  # (T,) bool: the subject's face was found
    others: np.ndarray  # (T,) bool: some other face was seen
    changes: list[dict[str, Any]] = field(default_factory=list)  # {"frame", "kind": "to_other"|"to_subject"}
    scene_changes: list[int] = field(default_factory=list)  # abrupt changes of the whole picture (a cut, a cover)

    def to_dict(self, timestamps: np.ndarray | None = None) -> dict[str, Any]:
        def when(i: int) -> float | None:
            return None if timestamps is None else round(float(timestamps[i]), 3)

        return {
            "spec": self.spec,
            "subject_frames": frame_ranges(self.subject),
            "other_face_frames": frame_ranges(self.others),
            "absent_frames": int((~self.subject).sum()),
            "person_changes": [{**c, "time": when(c["frame"])} for c in self.changes],
            "scene_changes": [{"frame": i, "time": when(i)} for i in self.scene_changes],
        }


def frame_ranges(mask: np.ndarray) -> list[list[int]]:
    """[[first, last], ...] inclusive frame ranges where `mask` is true."""
    m = np.asarray(mask, bool)
    if not m.any():
        return []
    edges = np.flatnonzero(np.diff(np.r_[0, m.astype(np.int8), 0]))
    return [[int(a), int(b) - 1] for a, b in zip(edges[::2], edges[1::2])]


@dataclass
class FrameFaces:
    """What the selector reads of one frame: its scene thumbnail (18, 32) uint8 grey, and each
    face's box and signature. Measured where the frame is (a worker of a chunked analysis), decided in time
    order wherever the selector runs."""

    thumb: np.ndarray
    boxes: list[FaceBox]
    signatures: list[FaceSignature]


def scene_thumbnail(image: np.ndarray) -> np.ndarray:
    """(18, 32) uint8 grey of an RGB frame (H, W, 3) uint8: what a scene cut changes."""
    small = cv2.resize(np.ascontiguousarray(image), (32, 18), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)


def measure_faces(image: np.ndarray, landmarks: Sequence[np.ndarray]) -> FrameFaces:
    """The selector's view of a frame (H, W, 3) uint8 RGB with faces `landmarks` (each (478, 3) pixels)."""
    return FrameFaces(scene_thumbnail(image), [FaceBox.of(l) for l in landmarks],
                      [face_signature(image, l) for l in landmarks])


class SubjectSelector:
    """Chooses the subject among each frame's faces, in time order (see the module doc).

    reference: the subject's signature when known beforehand (a point spec's face, measured first).
    """

    def __init__(self, spec: SubjectSpec, reference: FaceSignature | None = None, spec_frame: int | None = None):
        self.spec = spec
        self.identity = None if reference is None else SubjectIdentity(reference)
        self.spec_frame = spec_frame
        self._last_box: FaceBox | None = None  # the subject's box in the previous frame (None: absent)
        self._last_signature: FaceSignature | None = None  # the subject's signature when last seen
        self._other_boxes: list[FaceBox] = []  # the other faces' boxes in the previous frame
        self._thumb: np.ndarray | None = None
        self._frame = -1
        self._subject: list[bool] = []
        self._others: list[bool] = []
        self.changes: list[dict[str, Any]] = []
        self.scene_changes: list[int] = []

    def choose(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> int | None:
        """Index into `landmarks` (one (478, 3) array per face MediaPipe found) of the subject, or None."""
        return self.decide(measure_faces(image, landmarks))

    def decide(self, frame: FrameFaces) -> int | None:
        """The subject's index among the next frame's measured faces, or None."""
        self._frame += 1
        cut = self._scene_cut(frame.thumb)
        boxes = frame.boxes
        previous = None if cut else self._last_box
        k = self._pick(frame.signatures, boxes, previous)
        # A change of person: another face now holds the subject's place, or a cut shows a new face in
        # place of the subject (and, later, the subject back). The subject merely hidden while the others stay where they
        # were is not one.
        was_subject = bool(self._subject) and self._subject[-1]
        others = [b for j, b in enumerate(boxes) if j != k]
        if k is None and was_subject and others:
            in_place = max(b.iou(self._last_box) for b in others) > CONTINUE_IOU
            new_face = any(max((b.iou(o) for o in self._other_boxes), default=0.0) <= CONTINUE_IOU for b in others)
            if in_place or (cut and new_face):
                self.changes.append({"frame": self._frame, "kind": "to_other"})
        if k is not None and not was_subject and self.changes and self.changes[-1]["kind"] == "to_other":
            self.changes.append({"frame": self._frame, "kind": "to_subject"})  # back after a change of person
        self._other_boxes = others
        self._subject.append(k is not None)
        self._others.append(bool(others))
        self._last_box = boxes[k] if k is not None else None
        return k

    def _pick(self, signatures: list[FaceSignature], boxes: list[FaceBox], previous: FaceBox | None) -> int | None:
        if not boxes:
            return None
        at_spec = self.spec_frame is not None and self._frame == self.spec_frame
        if self.identity is None or at_spec:
            if self.spec.rule == "point" and not at_spec:
                return None  # the chosen face is only known from its frame on (a reference normally exists)
            k = pick_by_rule(boxes, self.spec)
            if k is None:
                return None
            signature = signatures[k]
            if self.identity is None:
                self.identity = SubjectIdentity(signature)
            else:
                self.identity.update(signature)
            self._last_signature = signature
            return k
        distances = [self.identity.distance(s) for s in signatures]
        if previous is not None and self._last_signature is not None:
            overlaps = [b.iou(previous) for b in boxes]
            j = int(np.argmax(overlaps))
            step = sorted((signature_components(signatures[j], self._last_signature) / self.identity.spread).tolist())[1]  # median of 3
            if overlaps[j] > CONTINUE_IOU and step < JUMP and distances[j] < CONTINUE_DISTANCE:
                return self._accept(j, signatures[j], distances[j])
        j = int(np.argmin(distances))
        if distances[j] < MATCH_DISTANCE:
            return self._accept(j, signatures[j], distances[j])
        return None

    def _accept(self, k: int, signature: FaceSignature, distance: float) -> int:
        if distance < MATCH_DISTANCE:  # only confident matches shape the reference
            self.identity.update(signature)
        self._last_signature = signature
        return k

    def _scene_cut(self, grey: np.ndarray) -> bool:
        thumb = grey.astype(np.float32) / 255.0
        cut = self._thumb is not None and float(np.abs(thumb - self._thumb).mean()) > CUT_DIFFERENCE
        self._thumb = thumb
        if cut:
            self.scene_changes.append(self._frame)
        return cut

    def report(self) -> SubjectReport:
        return SubjectReport(str(self.spec), np.array(self._subject, bool), np.array(self._others, bool),
                             list(self.changes), list(self.scene_changes))
