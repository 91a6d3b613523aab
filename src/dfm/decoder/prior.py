"""The universal decoder: FACS emotion prototypes on the ICT blendshapes, laid out on the VA plane.

Needs no data of the person. Used alone when a person has no collection, and by PersonDecoder where the
person's data covers a VA region poorly.

Prototypes and the AU -> ICT blendshape mapping: the one cited table in dfm.face.emfacs
(EMFACS-7, Friesen & Ekman 1983; ICT-FaceKit's FACS table), every action unit of each prototype
included (brows, lids, cheeks, nose, lips, jaw).

Intensity: FACS scores intensity A (trace) .. E (maximum). A prototype AU without a letter is taken at
`amplitude` (default 0.8, about FACS "D", severe) when the expression intensity is 1; a letter scales it
(A 0.2, B 0.4, C 0.6, D 0.8, E 1.0 of the maximum weight 1), e.g. AU5B -> eyeWide 0.4.

Layout on the VA plane. Each label's prototype sits at the direction of its region in
dfm.affect.regions (the mid-angle of the label's sector, so decoded and requested labels agree). For a
query (v, a) with angle theta and radius r:
- direction: inside a label's own sector of the regions table the prototype is that label's alone; the
  two labels whose directions enclose theta are interpolated with a smoothstep in angle only across the
  boundary between their sectors (over the angle between the two sectors' edges, at least
  `BLEND_MIN_DEG`), so a sad edit's VA samples near its sector's edge do not borrow disgust's nose
  wrinkle and lower-lip depressor (which showed the lower teeth of a sad mouth) and the map stays C1;
  across a gap wider than 2 * `fade_angle_deg`
  (the calm / relaxed quadrant, where no label lives) each prototype fades out over `fade_angle_deg` and
  the face stays neutral in between;
- intensity: s(r) = r * smoothstep(r / (2 * NEUTRAL_RADIUS)): the neutral disc decodes to (nearly) the
  neutral expression, and beyond 2 * NEUTRAL_RADIUS the intensity is the radius, as in the regions table
  (a label's radial band is centred on its intensity);
- expression = neutral + s(r) * (interpolated prototype), clipped to [0, 1], where neutral is a given
  neutral expression (zeros, or the person's mean neutral expression).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from dfm.affect import regions
from dfm.errors import DfmError
from dfm.face.emfacs import EMFACS_PROTOTYPES, FACS_INTENSITY, FACS_TO_ICT, JAW_DROP
from dfm.face.emfacs import parse_au as _parse_au
from dfm.face.expressions import EXPRESSION_NAMES, N_EXPRESSIONS, expression_index

EMOTION_LABELS: tuple[str, ...] = tuple(label for label in regions.LABELS if label != "neutral")
BLEND_MIN_DEG = 8.0  # narrowest interpolation band between two neighbouring labels' prototypes


def prototype_vector(aus: tuple[str, ...] | list[str], amplitude: float = 0.8) -> np.ndarray:
    """(53,) ICT weights of an AU combination at expression intensity 1."""
    out = np.zeros(N_EXPRESSIONS, np.float64)
    for code in aus:
        au, letter = _parse_au(code)
        if au not in FACS_TO_ICT:
            raise DfmError(f"action unit AU{au} has no ICT blendshape; known: {sorted(FACS_TO_ICT)}")
        w = FACS_INTENSITY[letter] if letter else amplitude
        if au == 26:
            w *= JAW_DROP
        for name in FACS_TO_ICT[au]:
            j = expression_index(name)
            out[j] = max(out[j], w)
    return out


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class FacsPrior:
    """Universal VA -> expression map from FACS emotion prototypes (see the module docstring).

    neutral: (53,) expression at the origin (default zeros). amplitude: ICT weight of an AU (without an
    intensity letter) at intensity 1. fade_angle_deg: how far a prototype reaches into an empty angular
    gap. prototypes: label -> AU codes, to override EMFACS_PROTOTYPES.
    """

    kind = "facs_prior"

    def __init__(
        self,
        neutral: Any = None,
        amplitude: float = 0.8,
        fade_angle_deg: float = 60.0,
        prototypes: Mapping[str, tuple[str, ...] | list[str]] | None = None,
    ):
        self.neutral = neutral
        self.amplitude = amplitude
        self.fade_angle_deg = fade_angle_deg
        self.prototypes = prototypes
        self._build()

    def _build(self) -> None:
        protos = dict(EMFACS_PROTOTYPES if self.prototypes is None else self.prototypes)
        unknown = set(protos) - set(EMOTION_LABELS)
        if unknown:
            raise DfmError(f"unknown labels in prototypes: {sorted(unknown)}; known: {', '.join(EMOTION_LABELS)}")
        neutral = np.zeros(N_EXPRESSIONS) if self.neutral is None else np.asarray(self.neutral, np.float64)
        if neutral.shape != (N_EXPRESSIONS,):
            raise DfmError(f"neutral expression must have shape ({N_EXPRESSIONS},), got {neutral.shape}")
        self.neutral_ = np.clip(neutral, 0.0, 1.0)
        labels = list(protos)
        angles = []
        for label in labels:
            c = regions.region_for(label, "medium").center()
            angles.append(math.atan2(c[1], c[0]) % (2 * math.pi))
        order = np.argsort(angles)
        self.labels_ = tuple(labels[i] for i in order)
        self.angles_ = np.array([angles[i] for i in order])  # radians in [0, 2 pi), increasing
        # each label's sector [lo, hi] (radians, lo in [0, 2 pi)), for the blend bands between neighbours
        edges = []
        for label in self.labels_:
            r = regions.region_for(label, "medium")
            lo = float(r.angle_min) % (2 * math.pi)
            edges.append((lo, lo + (float(r.angle_max) - float(r.angle_min)) % (2 * math.pi)))
        self.sectors_ = np.array(edges)
        self.prototypes_ = np.stack([prototype_vector(protos[l], self.amplitude) for l in self.labels_])
        self.neutral_radius_ = float(regions.NEUTRAL_RADIUS)

    # -- the map ------------------------------------------------------------------------------------
    def intensity(self, va: Any) -> np.ndarray:
        """(N,) expression intensity in [0, 1] from the radius of each VA point."""
        va = np.asarray(va, np.float64).reshape(-1, 2)
        r = np.minimum(np.hypot(va[:, 0], va[:, 1]), 1.0)
        return r * _smoothstep(r / (2.0 * self.neutral_radius_))

    def label_weights(self, va: Any) -> np.ndarray:
        """(N, L) weight of each prototype (columns in `labels_` order) from the direction of each point."""
        va = np.asarray(va, np.float64).reshape(-1, 2)
        theta = np.arctan2(va[:, 1], va[:, 0]) % (2 * math.pi)
        n_l = len(self.labels_)
        w = np.zeros((va.shape[0], n_l))
        if n_l == 1:
            w[:, 0] = 1.0
            return w
        fade = math.radians(self.fade_angle_deg)
        for k in range(n_l):
            a0 = self.angles_[k]
            a1 = self.angles_[(k + 1) % n_l] + (2 * math.pi if k == n_l - 1 else 0.0)
            gap = a1 - a0
            t = (theta - a0) % (2 * math.pi)  # angle past label k, counter-clockwise
            inside = t < gap
            if gap <= 2 * fade:
                s = _smoothstep((t - self._band_start(k, gap)) / self._band_width(k, gap))
                w[inside, k] += 1.0 - s[inside]
                w[inside, (k + 1) % n_l] += s[inside]
            else:
                w[inside, k] += 1.0 - _smoothstep(t[inside] / fade)
                w[inside, (k + 1) % n_l] += 1.0 - _smoothstep((gap - t[inside]) / fade)
        return w

    def _band(self, k: int, gap: float) -> tuple[float, float]:
        """(start, width) of the blend band between label k and the next, radians past label k's direction:
        between the end of k's sector and the start of the next one's, at least BLEND_MIN_DEG wide, and
        never reaching either direction."""
        a0 = self.angles_[k]
        end_k = (self.sectors_[k][1] - a0) % (2 * math.pi)
        start_next = (self.sectors_[(k + 1) % len(self.labels_)][0] - a0) % (2 * math.pi)
        if not (0.0 < end_k <= start_next < gap):  # sectors that do not lie between the directions
            return 0.0, gap
        mid = 0.5 * (end_k + start_next)
        width = max(start_next - end_k, math.radians(BLEND_MIN_DEG))
        width = min(width, 1.8 * min(mid, gap - mid))
        return mid - 0.5 * width, width

    def _band_start(self, k: int, gap: float) -> float:
        return self._band(k, gap)[0]

    def _band_width(self, k: int, gap: float) -> float:
        return max(self._band(k, gap)[1], 1e-6)

    def activation(self, va: Any) -> np.ndarray:
        """(N, 53) blendshape activation added to the neutral expression (before clipping)."""
        va = np.asarray(va, np.float64).reshape(-1, 2)
        return self.intensity(va)[:, None] * (self.label_weights(va) @ self.prototypes_)

    def predict(self, va: Any) -> np.ndarray:
        """(N, 2) valence/arousal -> (N, 53) float32 expression in [0, 1]."""
        from dfm.decoder.base import check_va

        va = check_va(va)
        return np.clip(self.neutral_ + self.activation(va), 0.0, 1.0).astype(np.float32)

    def prototype(self, label: str) -> np.ndarray:
        """(53,) activation of one label's prototype at intensity 1 (without the neutral)."""
        if label not in self.labels_:
            raise DfmError(f"no prototype for {label!r}; prototypes: {', '.join(self.labels_)}")
        return self.prototypes_[self.labels_.index(label)].astype(np.float32)

    def with_neutral(self, neutral: Any) -> "FacsPrior":
        return FacsPrior(neutral, self.amplitude, self.fade_angle_deg, self.prototypes)

    def get_params(self) -> dict[str, Any]:
        return {
            "neutral": None if self.neutral is None else [float(x) for x in np.asarray(self.neutral).ravel()],
            "amplitude": self.amplitude,
            "fade_angle_deg": self.fade_angle_deg,
            "prototypes": None if self.prototypes is None else {k: list(v) for k, v in self.prototypes.items()},
        }

    def table(self) -> dict[str, dict[str, float]]:
        """{label: {blendshape: weight at intensity 1}} (non-zero entries), for docs and reports."""
        return {
            label: {EXPRESSION_NAMES[j]: round(float(p[j]), 3) for j in np.flatnonzero(p)}
            for label, p in zip(self.labels_, self.prototypes_)
        }
