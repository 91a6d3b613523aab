"""Temporal stability of an edited video: frame-to-frame change of the face, and landmark jitter.

Frame-to-frame change (`CropChange`): per frame, the face crop (a `CropBox` from the INPUT's landmarks of
that frame, 256x256, the same box cut from the input and from the output) is compared with the previous
frame's crop: mean absolute difference over pixels and channels (0..255 units). Pairs (t-1, t) are
grouped by where they lie:
- `outside`: both frames outside every edit (weight 0). The output must equal the input there (the
  renderer passes those frames through), so the two figures must be identical. `dfm evaluate` encodes
  its edit run losslessly, so this holds bit for bit on the decoded output file;
- `boundary`: the edit weight differs between the two frames (the transition ramps at edit starts and
  ends, including the first/last edited frame next to an unedited one);
- `inside`: both frames at full weight.
The input's figure over the same pairs is the reference: a stable edit does not raise it.

Landmark jitter (`landmark_jitter`): the mean norm of the second difference L[t+1] - 2 L[t] + L[t-1] of
the 2-D landmark trajectories (pixels per frame^2, averaged over the 478 MediaPipe landmarks and over
every triple of consecutive frames with a face), for the output re-tracked by the same tracker as the
input, against the input's; also divided by the inter-ocular distance (x 100: % of IOD).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from dfm.eval.metrics import CROP_MARGIN, CROP_SIZE, CropBox

GROUPS = ("outside", "boundary", "inside")
_EYE_OUTER = (33, 263)  # MediaPipe FaceMesh outer eye corners (inter-ocular distance)
LIP_CONTOUR = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
               270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)  # FaceMesh lips


def crop_change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference (0..255) of two crops."""
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


def pair_group(w_prev: float, w_cur: float, full: float = 0.999) -> str | None:
    """Which group the pair (t-1, t) with these edit weights belongs to (None: inside a ramp's plateau edge)."""
    if w_prev <= 0.0 and w_cur <= 0.0:
        return "outside"
    if w_prev != w_cur:
        return "boundary"
    if w_prev >= full:
        return "inside"
    return "boundary"


@dataclass
class CropChange:
    """Streaming accumulator: feed (index, input frame, output frame, weight) in frame order."""

    landmarks: np.ndarray  # (T, 478, 3) of the input
    valid: np.ndarray  # (T,) bool
    size: int = CROP_SIZE  # crop side (256, as the self-reenactment metrics)
    margin: float = CROP_MARGIN
    sums: dict[str, list[float]] = field(default_factory=lambda: {g: [0.0, 0.0, 0] for g in GROUPS})
    _prev: tuple[int, np.ndarray, np.ndarray, float] | None = None
    max_outside_diff: float = 0.0  # largest |output - input| change difference on an outside pair

    def add(self, index: int, image_in: np.ndarray, image_out: np.ndarray, weight: float) -> None:
        if not self.valid[index]:
            self._prev = None
            return
        box_prev = None
        if self._prev is not None and self._prev[0] == index - 1:
            box_prev = self._prev
        # one box per pair: the CURRENT frame's box cut from both frames of the pair
        box = CropBox.around(self.landmarks[index], self.margin, self.size)
        ci, co = box.apply(image_in), box.apply(image_out)
        if box_prev is not None:
            _, prev_in, prev_out, w_prev = box_prev
            g = pair_group(w_prev, float(weight))
            if g is not None:
                pi, po = box.apply(prev_in), box.apply(prev_out)
                d_in, d_out = crop_change(pi, ci), crop_change(po, co)
                s = self.sums[g]
                s[0] += d_in
                s[1] += d_out
                s[2] += 1
                if g == "outside":
                    self.max_outside_diff = max(self.max_outside_diff, abs(d_out - d_in))
        self._prev = (index, image_in, image_out, float(weight))

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for g, (si, so, n) in self.sums.items():
            out[g] = {"pairs": int(n), "input": si / n if n else float("nan"), "output": so / n if n else float("nan")}
        out["outside_equal"] = bool(self.sums["outside"][2] == 0 or self.max_outside_diff == 0.0)
        out["outside_max_abs_diff"] = float(self.max_outside_diff)
        return out


def landmark_jitter(landmarks: np.ndarray, valid: np.ndarray, frames: np.ndarray | None = None,
                    points: Sequence[int] | np.ndarray | None = None) -> dict[str, float]:
    """Second-difference jitter of 2-D landmark trajectories (see module doc).

    landmarks (T, K, >=2) pixels; valid (T,) bool; frames (T,) bool selects the CENTRE frames t of the
    triples counted (None: all); points: the landmarks averaged (None: all; e.g. LIP_CONTOUR). Returns
    {"px": mean norm, "iod_pct": mean norm / IOD * 100, "triples": n}.
    """
    lm = np.asarray(landmarks, np.float64)[..., :2]
    v = np.asarray(valid, bool)
    t = lm.shape[0]
    if t < 3:
        return {"px": float("nan"), "iod_pct": float("nan"), "triples": 0}
    ok = v[:-2] & v[1:-1] & v[2:]
    if frames is not None:
        ok &= np.asarray(frames, bool)[1:-1]
    if not ok.any():
        return {"px": float("nan"), "iod_pct": float("nan"), "triples": 0}
    d2 = lm[2:] - 2.0 * lm[1:-1] + lm[:-2]  # (T-2, K, 2)
    norm = np.linalg.norm(d2 if points is None else d2[:, np.asarray(points)], axis=2)[ok]  # (n, K)
    iod = np.linalg.norm(lm[1:-1, _EYE_OUTER[0]] - lm[1:-1, _EYE_OUTER[1]], axis=1)[ok]
    per_triple = norm.mean(1)
    return {"px": float(per_triple.mean()), "iod_pct": float((per_triple / np.maximum(iod, 1e-6)).mean() * 100.0),
            "triples": int(ok.sum())}


def jitter_report(landmarks_in: np.ndarray, valid_in: np.ndarray, landmarks_out: np.ndarray, valid_out: np.ndarray,
                  weight: np.ndarray) -> dict[str, Any]:
    """Landmark jitter of input and output over all frames, inside edits (weight > 0) and outside."""
    both = np.asarray(valid_in, bool) & np.asarray(valid_out, bool)
    w = np.asarray(weight, np.float64)
    out: dict[str, Any] = {}
    for name, sel in (("all", None), ("inside_edits", w > 0), ("outside_edits", w <= 0)):
        ji = landmark_jitter(landmarks_in, both, sel)
        jo = landmark_jitter(landmarks_out, both, sel)
        out[name] = {"input": ji, "output": jo,
                     "ratio": jo["px"] / ji["px"] if ji["px"] and np.isfinite(ji["px"]) and ji["px"] > 0 else float("nan")}
    return out
