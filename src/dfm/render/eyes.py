"""The eye openings when the lids open wider than in the original frame (AU5: surprise, fear, anger).

The eyeballs never move in the warp (gaze is the original's, dfm.edits.eyes), so the backward flow of an
eyeball pixel is the identity: where the target's upper lid rises above the original's, the target shows
eyeball but the original frame shows lid there, and the warp would draw the lid a second time — the eye
would not look any wider. So inside each eye opening, column by column along the eye's corner-to-corner
axis, a target point at relative height v between the target's lower and upper lid margins samples the
original frame at the same relative height between the ORIGINAL's lid margins: the original's visible
eye (its iris, sclera and gaze) is stretched to fill the wider opening. Where the target opening is not
wider (a squint, a blink) the flow stays as it is: the lids close over the eyeball as real lids do.

The lid margins are the boundary loops of the ICT Face surface around the eyes (`eye_rims`), found once
per mesh from the neutral geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EYE_CENTRES_CM = ((3.15, 3.45), (-3.15, 3.45))  # neutral ICT model, x right of the subject's face


@dataclass(frozen=True)
class EyeRim:
    """One eye's lid margins: vertex indices (into the render mesh) of the upper and lower margin and the
    two corners (inner/outer, in neutral x order)."""

    upper: np.ndarray
    lower: np.ndarray
    corners: tuple[int, int]


def eye_rims(neutral: np.ndarray, triangles: np.ndarray, face_triangles: np.ndarray,
             radius_cm: float = 2.6) -> tuple[EyeRim, ...]:
    """The lid margins of both eyes: boundary edges of the Face triangles within `radius_cm` of an eye centre."""
    tri = triangles[face_triangles]
    edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    boundary = np.unique(uniq[counts == 1].ravel())
    rims = []
    for cx, cy in EYE_CENTRES_CM:
        p = neutral[boundary]
        near = boundary[np.hypot(p[:, 0] - cx, p[:, 1] - cy) < radius_cm]
        if near.size < 6:
            continue
        q = neutral[near]
        a, b = int(near[np.argmin(q[:, 0])]), int(near[np.argmax(q[:, 0])])
        pa, pb = neutral[a, :2], neutral[b, :2]
        axis = (pb - pa) / max(np.linalg.norm(pb - pa), 1e-9)
        side = (q[:, 0] - pa[0]) * -axis[1] + (q[:, 1] - pa[1]) * axis[0]  # > 0 above the corner line
        rims.append(EyeRim(near[side > 0], near[side < 0], (a, b)))
    return tuple(rims)


def _frame_axes(pts: np.ndarray, corners: tuple[int, int]):
    pa, pb = pts[corners[0], :2], pts[corners[1], :2]
    d = pb - pa
    length = max(float(np.hypot(*d)), 1e-6)
    ax = d / length
    normal = np.array([-ax[1], ax[0]])
    return pa, ax, normal, length


def _margin(pts: np.ndarray, idx: np.ndarray, pa, ax, normal, length, u: np.ndarray) -> np.ndarray:
    """Height (pixels along `normal`) of a lid margin at relative positions u in [0, 1] along the eye axis."""
    rel = pts[idx, :2] - pa
    uu = np.concatenate([[0.0], rel @ ax / length, [1.0]])
    hh = np.concatenate([[0.0], rel @ normal, [0.0]])
    order = np.argsort(uu)
    return np.interp(u, uu[order], hh[order])


def widen_eye_openings(map_work: np.ndarray, positions: np.ndarray, eye_px: np.ndarray, rims: tuple[EyeRim, ...],
                       original: np.ndarray, target: np.ndarray, min_gain_px: float = 0.3) -> np.ndarray:
    """Backward map with the eye openings stretched where the target's lids open wider (see module doc).

    map_work (h, w, 2) frame positions to sample per work pixel; positions (h, w, 2) the work pixels' frame
    positions; eye_px (h, w) bool, work pixels showing an eyeball in the target; original / target (Vs, >=2)
    projected render-mesh vertices. Returns a new map (the input is not modified).
    """
    out = map_work.copy()
    if not eye_px.any():
        return out
    ys, xs = np.nonzero(eye_px)
    q = positions[ys, xs]
    for rim in rims:
        pa_t, ax_t, n_t, len_t = _frame_axes(target, rim.corners)
        pa_o, ax_o, n_o, len_o = _frame_axes(original, rim.corners)
        rel = q - pa_t
        u = rel @ ax_t / len_t
        inside = (u > 0.0) & (u < 1.0)
        if not inside.any():
            continue
        h = rel @ n_t
        up_t = _margin(target, rim.upper, pa_t, ax_t, n_t, len_t, u)
        lo_t = _margin(target, rim.lower, pa_t, ax_t, n_t, len_t, u)
        up_o = _margin(original, rim.upper, pa_o, ax_o, n_o, len_o, u)
        lo_o = _margin(original, rim.lower, pa_o, ax_o, n_o, len_o, u)
        if np.median(up_t - lo_t) < 0:  # the normal points down the image: measure heights upwards
            h, up_t, lo_t, up_o, lo_o = -h, -up_t, -lo_t, -up_o, -lo_o
            n_o = -n_o
        span_t, span_o = up_t - lo_t, up_o - lo_o
        sel = inside & (h >= lo_t - 0.5) & (h <= up_t + 0.5) & (span_t > span_o + min_gain_px) & (span_o > 0.5)
        if not sel.any():
            continue
        v = np.clip((h[sel] - lo_t[sel]) / span_t[sel], 0.0, 1.0)
        h_o = lo_o[sel] + v * span_o[sel]
        src = pa_o + (u[sel] * len_o)[:, None] * ax_o + h_o[:, None] * n_o
        out[ys[sel], xs[sel]] = src.astype(np.float32)
    return out
