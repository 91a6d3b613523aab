"""Conditioning of the neural renderer (Head2Head++, Koujan et al. 2020; the paper's §3.4): per frame
an aligned face crop, the NMFC image of the (target) mesh and an eye/gaze image.

- Crop: a similarity transform (centre, side, in-plane angle) from the frame's tracked landmarks, each
  parameter smoothed over time with a Gaussian (`sigma` frames, invalid frames interpolated), so the
  crop does not jitter with landmark noise. `transform(t)` is the 2x3 matrix frame pixel -> crop pixel
  (pixel centres at integer coordinates, OpenCV's warpAffine convention).
- NMFC: `dfm.face.nmfc.render_nmfc` with the frame's camera composed with the crop's similarity (the
  composition is again a scaled rotation, so the rasteriser's camera model takes it unchanged).
- Eyes: the eyelid contours (MediaPipe mesh indices) as lines and the irises (MediaPipe's 10 iris
  landmarks) as filled discs, drawn on a blank image. They come from the frame's tracked landmarks: the
  renderer keeps the person's own gaze and blinks, like the warp renderer.

Channels handed to the networks: NMFC (3) + eyes (3) = `COND_CHANNELS`, values in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from dfm.face.model import FaceModel
from dfm.face.nmfc import NmfcResult, render_nmfc
from dfm.face.track import FaceTrack

__all__ = ["COND_CHANNELS", "CropTransforms", "Conditioning", "FrameConditioning", "eye_image", "crop_frame", "blend_region", "compose_camera", "similarity_matrix",
           "uncrop"]

COND_CHANNELS = 6
# MediaPipe FaceMesh eyelid loops (subject's right eye, subject's left eye) and iris landmarks
RIGHT_EYELID = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYELID = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
IRISES = ((468, 469, 470, 471, 472), (473, 474, 475, 476, 477))  # centre first, then 4 rim points
EYE_CORNERS = ((33, 133), (362, 263))  # right eye outer/inner, left eye inner/outer


@dataclass(frozen=True)
class CropTransforms:
    """Per-frame similarity crop: centre (T, 2) frame px, side (T,) frame px, angle (T,) rad, size px."""

    centre: np.ndarray
    side: np.ndarray
    angle: np.ndarray
    size: int

    @classmethod
    def from_track(cls, track: FaceTrack, size: int, margin: float = 0.2, sigma: float = 3.0) -> "CropTransforms":
        """Crops around the tracked landmarks (box side x (1 + 2 margin)), rotated by the eye line,
        smoothed over time with a Gaussian of `sigma` frames (0 = raw)."""
        n = track.n_frames
        valid = np.asarray(track.valid, bool)
        if not valid.any():
            raise ValueError("no frame of the track has a face")
        lm = np.asarray(track.landmarks, np.float64)[:, :, :2]
        lo, hi = lm[:, :468].min(1), lm[:, :468].max(1)
        centre = 0.5 * (lo + hi)
        side = (hi - lo).max(1) * (1.0 + 2.0 * margin)
        right = lm[:, list(EYE_CORNERS[0])].mean(1)
        left = lm[:, list(EYE_CORNERS[1])].mean(1)
        d = left - right  # subject's right -> left eye: image left -> right in a frontal view
        angle = np.arctan2(d[:, 1], d[:, 0])
        params = np.concatenate([centre, side[:, None], angle[:, None]], 1)
        idx = np.arange(n)
        for k in range(params.shape[1]):
            col = params[:, k]
            col[~valid] = np.interp(idx[~valid], idx[valid], col[valid]) if (~valid).any() else col[~valid]
            if k == 3:
                col[:] = np.unwrap(col)
            if sigma > 0 and n > 1:
                col[:] = gaussian_filter1d(col, sigma, mode="nearest")
        return cls(params[:, :2].astype(np.float64), params[:, 2].astype(np.float64), params[:, 3].astype(np.float64),
                   int(size))

    def matrix(self, t: int) -> np.ndarray:
        """(2, 3) float64: frame pixel -> crop pixel for frame t."""
        return similarity_matrix(self.centre[t], float(self.side[t]), float(self.angle[t]), self.size)

    def scale(self, t: int) -> float:
        """Crop pixels per frame pixel."""
        return self.size / float(self.side[t])


def compose_camera(matrix: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                   scale: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The camera p = scale R X + t followed by the similarity `matrix` (2, 3), as one camera of the same
    form (rotation (3, 3), translation (3,), scale): depth is scaled along with x and y."""
    s = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    rz = np.eye(3)
    rz[:2, :2] = matrix[:, :2] / s
    t_new = s * (rz @ np.asarray(translation, np.float64))
    t_new[:2] += matrix[:, 2]
    r_new = rz @ np.asarray(rotation, np.float64)
    return r_new.astype(np.float32), t_new.astype(np.float32), float(s * scale)


def similarity_matrix(centre: np.ndarray, side: float, angle: float, size: int) -> np.ndarray:
    """(2, 3): frame px -> crop px of a square of `side` frame px centred on `centre`, rotated by `angle`."""
    s = size / float(side)
    c, sn = np.cos(-angle) * s, np.sin(-angle) * s
    a = np.array([[c, -sn], [sn, c]])
    off = (size - 1) / 2.0 - a @ np.asarray(centre, np.float64)
    return np.concatenate([a, off[:, None]], 1)


def crop_frame(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The (size, size, 3) crop of `image` (H, W, 3) under `matrix` (2, 3); low-passed first when shrinking
    (warpAffine samples bilinearly and would alias)."""
    s = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    src = image
    if s < 0.5:
        sig = 0.45 / s
        src = cv2.GaussianBlur(image, (0, 0), sig)
    return cv2.warpAffine(src, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def uncrop(crop: np.ndarray, matrix: np.ndarray, height: int, width: int) -> np.ndarray:
    """A crop (size, size[, C]) back into the frame (height, width[, C]) (the inverse of `crop_frame`)."""
    return cv2.warpAffine(crop, matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def eye_image(landmarks: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) float32 in [0, 1]: eyelid loops (red: subject's right, green: left) and iris discs
    (blue) of `landmarks` (478, >=2) frame px, drawn in the crop `matrix`."""
    img = np.zeros((size, size, 3), np.uint8)
    p = np.asarray(landmarks, np.float64)[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    shift = 4
    thick = max(1, int(round(size / 128)))
    for loop, colour in ((RIGHT_EYELID, (255, 0, 0)), (LEFT_EYELID, (0, 255, 0))):
        pts = np.rint(p[list(loop)] * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], True, colour, thick, cv2.LINE_AA, shift)
    if len(p) >= 478:
        for iris in IRISES:
            c = p[iris[0]]
            r = float(np.linalg.norm(p[list(iris[1:])] - c, axis=1).mean())
            cv2.circle(img, tuple(np.rint(c * (1 << shift)).astype(int)), max(int(round(r * (1 << shift))), 1 << shift),
                       (0, 0, 255), -1, cv2.LINE_AA, shift)
    return img.astype(np.float32) / 255.0


def blend_region(landmarks: np.ndarray, matrix: np.ndarray, size: int, nm: NmfcResult) -> np.ndarray:
    """(S, S) bool: the face oval (convex hull of the 468 tracked mesh landmarks, which leaves out the
    ears, neck and hair that the NMFC's Face region also covers) joined with the target's mouth region
    (an opened jaw reaches below the original's chin), inside the NMFC foreground."""
    p = np.asarray(landmarks, np.float64)[:468, :2] @ matrix[:, :2].T + matrix[:, 2]
    canvas = np.zeros((size, size), np.uint8)
    if np.isfinite(p).all():
        hull = cv2.convexHull(np.rint(p * 16).astype(np.int32))
        cv2.fillConvexPoly(canvas, hull, 1, cv2.LINE_8, 4)
    return (canvas.astype(bool) | nm.mouth_region) & nm.foreground


@dataclass
class FrameConditioning:
    """What the neural renderer is conditioned on for one frame (crop coordinates)."""

    nmfc: np.ndarray  # (S, S, 3) float32 in [0, 1]
    eyes: np.ndarray  # (S, S, 3) float32 in [0, 1]
    face: np.ndarray  # (S, S) bool: visible face surface
    foreground: np.ndarray  # (S, S) bool: everything the NMFC image covers (face, mouth interior, eyes)
    blend: np.ndarray  # (S, S) bool: where a generated face replaces the frame (see `blend_region`)
    mouth_region: np.ndarray  # (S, S) bool: NMFC mouth region (lips and around; the Mouth-APD mask)
    mouth_centre: np.ndarray  # (2,) crop px: centre of the lip landmarks
    matrix: np.ndarray  # (2, 3) frame -> crop

    def stacked(self) -> np.ndarray:
        """(S, S, COND_CHANNELS) float32: NMFC then eyes."""
        return np.concatenate([self.nmfc, self.eyes], axis=2)


class Conditioning:
    """Builds `FrameConditioning` for frames of one track at one crop size.

    model: the face model; track: the video's FaceTrack; size: crop side (64, 128 or 256); sigma:
    temporal smoothing of the crop transform (frames).
    """

    def __init__(self, model: FaceModel, track: FaceTrack, size: int, sigma: float = 3.0, margin: float = 0.2):
        self.model = model
        self.track = track
        self.size = int(size)
        self.crops = CropTransforms.from_track(track, self.size, margin=margin, sigma=sigma)
        self._lips = model.landmarks68[48:68].astype(np.int64)

    def camera(self, t: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Frame t's camera composed with its crop similarity: (rotation (3, 3), translation (3,), scale)."""
        return compose_camera(self.crops.matrix(t), self.track.rotation[t], self.track.translation[t],
                              float(self.track.scale[t]))

    def nmfc(self, t: int, expression: np.ndarray) -> NmfcResult:
        r, tr, sc = self.camera(t)
        return render_nmfc(self.model, self.track.identity, expression, r, tr, sc, self.size, self.size)

    def frame(self, t: int, expression: np.ndarray | None = None) -> FrameConditioning:
        """Conditioning of frame t showing `expression` (53,) (None: the fitted one)."""
        e = self.track.expression[t] if expression is None else np.asarray(expression, np.float32)
        nm = self.nmfc(t, e)
        r, tr, sc = self.camera(t)
        lips = self.model.vertices(self.track.identity, e, index=self._lips)
        mc = (sc * lips @ r.T + tr)[:, :2].mean(0)
        m = self.crops.matrix(t)
        blend = blend_region(self.track.landmarks[t], m, self.size, nm)
        return FrameConditioning(nmfc=nm.image.astype(np.float32), eyes=eye_image(self.track.landmarks[t], m, self.size),
                                 face=nm.face, foreground=nm.foreground, blend=blend, mouth_region=nm.mouth_region, mouth_centre=mc.astype(np.float32),
                                 matrix=m)

    def crop(self, t: int, image: np.ndarray) -> np.ndarray:
        """The aligned (S, S, 3) uint8 crop of frame t's image."""
        return crop_frame(image, self.crops.matrix(t), self.size)
