"""Inner-mouth transfer between views that see the mouth from different angles.

The exact 3-D correspondence (same surface point of the teeth, tongue, socket in both frames) fails for
the inner mouth as soon as the head poses differ: a head tilted down shows the lower teeth and tongue,
one tilted up shows none of it, so most target pixels land behind the source's lips. The classic answer
(Face2Face's mouth retrieval) is a 2-D mapping of the source's VISIBLE mouth opening onto the target's
opening. Here it is done column by column in the mouth's own frame (u: along the mouth, from the head's
projected left-right axis; v: perpendicular, downwards): a target pixel at relative position alpha
along the mouth and tau between the opening's top and bottom edges there samples the source at the
same alpha and tau of ITS opening. Upper teeth stay under the upper lip, a smile's crescent keeps its
curve, and every target pixel lands inside what the source shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MouthShape:
    """The visible inner mouth of one view, described in its local frame (pixels of that view)."""

    origin: np.ndarray  # (2,) centroid
    u: np.ndarray  # (2,) unit vector along the mouth (subject's right -> left as seen in the image)
    v: np.ndarray  # (2,) unit vector across it (downwards)
    a_lo: float  # extent along u (robust)
    a_hi: float
    top: np.ndarray  # (K,) upper edge (v coordinate) per column bin
    bottom: np.ndarray  # (K,) lower edge per column bin
    n_pixels: int

    @classmethod
    def from_points(cls, points: np.ndarray, u: np.ndarray, pixel_area: float = 1.0, bins: int = 24,
                    spacing: float | None = None) -> "MouthShape | None":
        """Shape of the opening made of `points` (N, 2); u: the mouth direction in this view.

        points are the centres of the opening's pixels on a regular grid `spacing` pixels apart (estimated
        from the points when None). Column bins are never narrower than 1.5 grid steps: with finer bins a
        tilted mouth axis splits one grid column between two bins, each bin sees only part of the column's
        height, and the edges get notches that the 2-D transfer turns into stretched "fang" teeth. Each edge
        is pushed out by half a step, so a coarse grid and a fine one give the same opening.
        """
        p = np.asarray(points, np.float64)
        if len(p) < 6:
            return None
        u = np.asarray(u, np.float64)
        u = u / max(np.linalg.norm(u), 1e-9)
        v = np.array([-u[1], u[0]])
        if v[1] < 0:
            v = -v
        step = grid_spacing(p) if spacing is None else float(spacing)
        origin = p.mean(0)
        a = (p - origin) @ u
        b = (p - origin) @ v
        a_lo, a_hi = np.percentile(a, [1.0, 99.0])
        a_lo, a_hi = a_lo - 0.5 * step, a_hi + 0.5 * step
        if a_hi - a_lo < 1e-3:
            return None
        bins = int(np.clip((a_hi - a_lo) / (1.5 * step), 2, bins))
        k = np.clip(((a - a_lo) / (a_hi - a_lo) * bins).astype(int), 0, bins - 1)
        top = np.full(bins, np.inf)
        bottom = np.full(bins, -np.inf)
        np.minimum.at(top, k, b)
        np.maximum.at(bottom, k, b)
        ok = np.isfinite(top) & np.isfinite(bottom)
        if ok.sum() < 2:
            return None
        idx = np.arange(bins)
        top = np.interp(idx, idx[ok], top[ok]) - 0.5 * step
        bottom = np.interp(idx, idx[ok], bottom[ok]) + 0.5 * step
        # smooth the edges a little (pixel staircase)
        kern = np.array([0.25, 0.5, 0.25])
        top = np.convolve(np.pad(top, 1, mode="edge"), kern, mode="valid")
        bottom = np.convolve(np.pad(bottom, 1, mode="edge"), kern, mode="valid")
        return cls(origin=origin, u=u, v=v, a_lo=float(a_lo), a_hi=float(a_hi), top=top, bottom=np.maximum(bottom, top),
                   n_pixels=int(round(len(p) * pixel_area)))

    @property
    def width(self) -> float:
        return self.a_hi - self.a_lo

    @property
    def height(self) -> float:
        """Mean opening height (pixels)."""
        return float(np.mean(self.bottom - self.top))

    def local(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(alpha, tau) of points: relative position along the mouth and between its edges (0 top, 1 bottom)."""
        p = np.asarray(points, np.float64) - self.origin
        a = p @ self.u
        b = p @ self.v
        alpha = (a - self.a_lo) / self.width
        x = np.clip(alpha, 0.0, 1.0) * (len(self.top) - 1)
        idx = np.arange(len(self.top))
        top = np.interp(x, idx, self.top)
        bottom = np.interp(x, idx, self.bottom)
        tau = (b - top) / np.maximum(bottom - top, 1e-3)
        return alpha, tau

    def position(self, alpha: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Points (N, 2) of this view at relative positions (alpha, tau), kept inside the opening."""
        alpha = np.clip(alpha, 0.0, 1.0)
        tau = np.clip(tau, 0.0, 1.0)
        x = alpha * (len(self.top) - 1)
        idx = np.arange(len(self.top))
        top = np.interp(x, idx, self.top)
        bottom = np.interp(x, idx, self.bottom)
        a = self.a_lo + alpha * self.width
        b = top + tau * (bottom - top)
        return (self.origin + a[:, None] * self.u + b[:, None] * self.v).astype(np.float32)


def grid_spacing(points: np.ndarray) -> float:
    """Median distance (pixels) from each point to its nearest neighbour: the step of a regular grid."""
    from scipy.spatial import cKDTree

    p = np.asarray(points, np.float64)
    if len(p) < 2:
        return 1.0
    d, _ = cKDTree(p).query(p, k=2)
    return float(max(np.median(d[:, 1]), 1e-3))


def span_map(target: MouthShape, points: np.ndarray, source: MouthShape) -> np.ndarray:
    """Source positions (N, 2) for target pixels `points` (N, 2): same (alpha, tau) in both openings."""
    alpha, tau = target.local(points)
    return source.position(alpha, tau)


def span_map_teeth(target: MouthShape, points: np.ndarray, source: MouthShape, source_per_target: float,
                   max_stretch: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """Like span_map, but an opening taller than the source's is not filled by stretching the source's teeth.

    Teeth do not grow when the mouth opens: the upper teeth stay under the upper lip and the lower teeth
    on the lower lip, and the gap between them widens. So where the target's opening (per column) is more
    than `max_stretch` times the source's (sizes compared in the same units: `source_per_target` source
    pixels per target pixel), the top of the target opening samples the top of the source's at natural
    size, the bottom likewise, and the rows between are the widened gap: `gap_weight` (N,) in [0, 1], 0 on
    the teeth and rising to 1 within a quarter of the source's height, is where the caller paints the dark
    cavity (the source's middle row, sampled there, only shows through the ramp). Stretching a
    small opening onto a tall one drew teeth twice their height ("buck teeth").
    Returns source positions (N, 2) and gap_weight (N,).
    """
    alpha, tau = target.local(points)
    x = np.clip(alpha, 0.0, 1.0)
    idx_t = np.arange(len(target.top))
    h_t = np.interp(x * (len(target.top) - 1), idx_t, target.bottom - target.top)
    idx_s = np.arange(len(source.top))
    h_s = np.interp(x * (len(source.top) - 1), idx_s, source.bottom - source.top) / max(source_per_target, 1e-6)
    tall = h_t > max_stretch * h_s
    tau_src = np.clip(tau, 0.0, 1.0).copy()
    gap = np.zeros(len(tau_src))
    if tall.any():
        d = np.clip(tau[tall], 0.0, 1.0) * h_t[tall]  # target pixels below the top edge
        hs = np.maximum(h_s[tall], 1e-3)
        from_top, from_bottom = d / hs, (h_t[tall] - d) / hs  # in units of the source's height
        tau_src[tall] = np.where(from_top <= 0.5, from_top, np.where(from_bottom <= 0.5, 1.0 - from_bottom, 0.5))
        # 0 on the teeth bands, rising to 1 over a quarter of the source's height into the widened gap
        gap[tall] = np.clip((np.minimum(from_top, from_bottom) - 0.5) / 0.25, 0.0, 1.0)
    return source.position(alpha, tau_src), gap


def stretch(target: MouthShape, source: MouthShape, target_px_per_cm: float, source_px_per_cm: float) -> float:
    """How much the source's opening must be stretched to fill the target's: |log h ratio| + 0.5 |log w ratio|
    (sizes compared in centimetres, so different face sizes do not count)."""
    ht = max(target.height / target_px_per_cm, 1e-3)
    hs = max(source.height / source_px_per_cm, 1e-3)
    wt = max(target.width / target_px_per_cm, 1e-3)
    ws = max(source.width / source_px_per_cm, 1e-3)
    return float(abs(np.log(hs / ht)) + 0.5 * abs(np.log(ws / wt)))


def mouth_axis(rotation: np.ndarray) -> np.ndarray:
    """The image direction (2,) of the head's left-right axis (model +x) under a camera rotation."""
    return np.asarray(rotation, np.float64)[:2, 0]
