"""Choosing, region by region, the pool frame whose expression best matches the target — stably.

Cost of pool entry j for region r and the current frame:

    gain_r * rms_top( f_r(e_j) - f_r(e_target) )  +  pose_weight * angle(R_j, R_current) [deg]
        +  scale_weight * |log(scale_j / scale)|  +  retrieval_bias   (+ the inner-mouth terms below)

where f_r(e) are the model-space positions (cm, expression part) of region r's key vertices and
rms_top is the RMS over the `focus` share of them that differ most: a geometric distance on the
region's blendshapes, so correlated shapes are not counted twice, a shape counts by how much it
actually moves that region, and a local change (the brows) is not diluted by the rest (the forehead).
Gaze (eyeLook*) is ignored (the renderer keeps the original's eyeballs); blinks and the lid aperture
count, so the lids a source lends have the target's shape. The current frame itself (pure warp,
no retrieval) competes as candidate SELF with cost rms_top(f_r(e_original) - f_r(e_target)); every pool
entry pays retrieval_bias on top (pasting another frame's pixels has costs of its own: residual
misalignment, a texture that does not move with the face), so a pool frame is used only when it is
clearly closer than the original.

The inner mouth is transferred 2-D, opening to opening (mouth.py), so what matters there besides the
lips' shape is how much the source's visible opening must be stretched: the best few entries pay
stretch_weight * stretch. SELF (the original frame's own inner mouth, warped exactly in 3-D) pays
hidden_weight * (area, cm^2, of the target's inner mouth that the original does not show) plus
hidden_share_weight * (the share of the inner mouth that would be the dark cavity): a thin dark line is
a fine substitute for a barely open mouth, a dark hole is not for a laugh.

Key-vertex geometry alone finds a crying mouth (stretched lips) close to a mild smile; so every cost
(pool entries and SELF) also pays semantic_weight * the RMS difference of the region's emotion-bearing
coefficients (smile/frown/stretch/jaw for the mouth and lower face, brows and lids for the upper face).

Skin folds the fit does not see: a frame that knits its brows (crying, anger) carries glabella folds
its fitted blendshapes barely register (browDown ~0 on the Pexels clip's crying frames), so on geometry
alone it matches a relaxed target, and its skin pasted there reads as a frown. Upper-face costs (pool
entries and SELF) therefore pay fold_weight * the folds a frame shows beyond the person's calm level
(folds.py), scaled down as the target itself lowers the brows (AU4), where folds belong.

Temporal stability (HysteresisSelector): keep the current source until another is better by a
relative margin for `switch_frames` consecutive frames, then cross-fade over `crossfade_frames`. An
entry within `max_cost` is a good match; one up to `far_cost` is still used when it beats SELF
(decoded targets lie BETWEEN the person's real expressions: the closest real frame re-warped to the
target beats a stretched original with a dark hole). Only when nothing qualifies and SELF is poor too
does the region fall back (NONE): pure warp, plus a dark mouth cavity for the inner mouth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dfm.render.mesh import RenderMesh
from dfm.render.pool import FramePool

SELF = -1  # the current frame, warped (no retrieval)
NONE = -2  # nothing matches: fallback


def rotation_angle_deg(rotations: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Geodesic angle (degrees) between each rotation (N, 3, 3) and a reference (3, 3)."""
    rel = np.einsum("nij,kj->nik", rotations, reference)  # R_n @ R_ref^T
    cos = (np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


# the coefficients that tell a smile from a cry in the mouth region: the key-vertex geometry alone finds
# a crying mouth (stretched lips) close to a mild smile; the corners' direction is what reads
_MOUTH_SEMANTIC = ("mouthSmile_L", "mouthSmile_R", "mouthFrown_L", "mouthFrown_R", "jawOpen", "mouthLowerDown_L",
                   "mouthLowerDown_R", "mouthUpperUp_L", "mouthUpperUp_R", "mouthStretch_L", "mouthStretch_R")


@dataclass(frozen=True)
class MatchParams:
    """Weights of the retrieval cost (all in centimetres of key-vertex distance; see the module doc)."""

    focus: float = 0.25  # share of a region's key vertices (the most changed) that the distance uses
    region_gain: tuple[tuple[str, float], ...] = (("mouth", 1.0), ("lower", 1.0), ("upper", 2.0))  # geometry
    # distance multipliers: brow motions are small in centimetres but carry much of an emotion's look
    pose_weight: float = 0.006  # cm per degree of head-pose difference (skin regions)
    mouth_pose_weight: float = 0.004  # cm per degree for the inner mouth (transferred 2-D, pose-robust)
    scale_weight: float = 0.3  # cm per unit of |log(scale_j / scale)| (lower-resolution sources)
    retrieval_bias: float = 0.08  # cm added to every pool entry: how much closer than the warp it must be
    max_cost: float = 0.45  # cm: a good match (used whenever it beats SELF)
    far_cost: float = 1.2  # cm: beyond this no pool frame is considered a match at all
    mouth_far_cost: float = 2.0  # ... for the inner mouth, whose cost includes the opening's stretch (the 2-D
    # transfer fills any opening; a stretched real mouth still beats the dark cavity)
    hidden_weight: float = 0.35  # cm per cm^2 of the target's inner mouth that the original does not show
    stretch_weight: float = 0.25  # cm per unit of inner-mouth stretch (see mouth.stretch)
    mouth_candidates: int = 4  # best pool entries whose mouth opening is compared per frame
    semantic_weight: float = 0.5  # cm per unit RMS difference of the region's emotion-bearing coefficients
    semantic: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("mouth", _MOUTH_SEMANTIC), ("lower", _MOUTH_SEMANTIC + ("cheekSquint_L", "cheekSquint_R")),
        ("upper", ("browInnerUp_L", "browInnerUp_R", "browDown_L", "browDown_R", "browOuterUp_L", "browOuterUp_R",
                   "eyeWide_L", "eyeWide_R", "eyeSquint_L", "eyeSquint_R")))
    affect_weight: float = 0.3  # cm per unit of valence-arousal distance between a source and the target VA:
    # within an edit the plan says which emotion to show, and frames that showed it carry its teeth,
    # cheek bulges and folds (a crying frame's mouth stays a crying mouth however it is warped)
    fold_weight: float = 0.4  # cm per unit of glabella fold ratio above the calm level (1) ...
    fold_cap: float = 2.0  # ... counted up to this excess
    fold_knit: float = 0.35  # target browDown (mean of both sides) at which folds cost nothing
    fold_regions: tuple[str, ...] = ("upper",)
    hidden_share_weight: float = 0.8  # cm added to SELF per unit share of the inner mouth it cannot show ...
    hidden_share_area: float = 0.3  # ... at full weight once the hidden area reaches this (cm^2)

    def gain(self, region: str) -> float:
        return dict(self.region_gain).get(region, 1.0)

    def semantic_index(self, region: str) -> np.ndarray:
        """Expression indices of the region's emotion-bearing coefficients."""
        from dfm.face.expressions import EXPRESSION_NAMES

        names = dict(self.semantic).get(region, ())
        return np.array([EXPRESSION_NAMES.index(n) for n in names], np.int64)


def semantic_distance(expressions: np.ndarray, target: np.ndarray, region: str, params: MatchParams) -> np.ndarray:
    """semantic_weight * RMS difference (N,) of the region's emotion-bearing coefficients."""
    idx = params.semantic_index(region)
    e = np.atleast_2d(np.asarray(expressions, np.float32))
    if len(idx) == 0 or params.semantic_weight == 0:
        return np.zeros(len(e), np.float32)
    d = e[:, idx] - np.asarray(target, np.float32)[idx]
    return params.semantic_weight * np.sqrt((d * d).mean(axis=1))


def fold_cost(folds: np.ndarray | float, target: np.ndarray, region: str, params: MatchParams) -> np.ndarray | float:
    """fold_weight x the glabella folds (ratio over the calm level, NaN = unknown: no cost) beyond the calm
    level, for the fold regions, fading out as the target's brows lower (browDown up to fold_knit)."""
    if region not in params.fold_regions or params.fold_weight == 0:
        return 0.0
    from dfm.face.expressions import EXPRESSION_NAMES

    t = np.asarray(target, np.float32)
    lowered = 0.5 * float(t[EXPRESSION_NAMES.index("browDown_L")] + t[EXPRESSION_NAMES.index("browDown_R")])
    relaxed = 1.0 - min(max(lowered / max(params.fold_knit, 1e-6), 0.0), 1.0)
    excess = np.clip(np.nan_to_num(np.asarray(folds, np.float32) - 1.0, nan=0.0), 0.0, params.fold_cap)
    return params.fold_weight * relaxed * excess


def focused_distance(features: np.ndarray, target: np.ndarray, focus: float) -> np.ndarray:
    """RMS over the `focus` share of key vertices that differ most (cm), per row of features (N, K*3).

    A region's change is often local (the brows, not the whole forehead): averaging over every key
    vertex would dilute it, so only the most-changed share counts.
    """
    d = features.reshape(len(features), -1, 3) - target.reshape(1, -1, 3)
    d *= d
    d2 = d[..., 0] + d[..., 1] + d[..., 2]  # (N, K); faster than sum(-1) over a length-3 axis
    k = max(1, int(round(focus * d2.shape[1])))
    top = -np.partition(-d2, k - 1, axis=1)[:, :k]
    return np.sqrt(top.mean(1))


def region_costs(pool: FramePool, mesh: RenderMesh, region: str, target: np.ndarray, rotation: np.ndarray,
                 scale: float, params: MatchParams, exclude: np.ndarray | None = None,
                 ignore: tuple[int, ...] = (), target_va: np.ndarray | None = None) -> np.ndarray:
    """Cost (N,) of every pool entry as the source of `region` for a frame with this target and camera.

    ignore: expression coefficients left out of the comparison (e.g. the eye shapes, which the renderer
    always takes from the original frame). exclude: (N,) bool entries that may not be used.
    target_va: the valence/arousal the edit asks for (None: no affect term).
    """
    if len(pool) == 0:
        return np.zeros(0, np.float32)
    f = pool.features(mesh, region, ignore)
    t = np.asarray(target, np.float32).copy()
    t[list(ignore)] = 0.0
    ft = mesh.key_features(t, region)[0]
    geo = focused_distance(f, ft, params.focus) * params.gain(region)
    pose = rotation_angle_deg(pool.rotation, rotation)
    sc = np.abs(np.log(np.maximum(pool.scale, 1e-6) / max(scale, 1e-6)))
    pose_w = params.mouth_pose_weight if region == "mouth" else params.pose_weight
    sem = semantic_distance(pool.expression, target, region, params)
    cost = geo + sem + pose_w * pose + params.scale_weight * sc + params.retrieval_bias
    cost = cost + affect_cost(pool.va, target_va, params) + fold_cost(pool.folds, target, region, params)
    if exclude is not None:
        cost = np.where(exclude, np.inf, cost)
    return cost.astype(np.float32)


def affect_cost(va: np.ndarray, target_va: np.ndarray | None, params: MatchParams) -> np.ndarray | float:
    """affect_weight x the VA distance of sources (N, 2) to the target VA; 0 without a target, and the
    largest distance (2) for sources without an affect estimate."""
    if target_va is None or not np.all(np.isfinite(target_va)):
        return 0.0
    d = np.linalg.norm(np.asarray(va, np.float32) - np.asarray(target_va, np.float32), axis=-1)
    return params.affect_weight * np.where(np.isfinite(d), d, 2.0)


def self_cost(mesh: RenderMesh, region: str, original: np.ndarray, target: np.ndarray, params: MatchParams,
              ignore: tuple[int, ...] = ()) -> float:
    """Cost of the pure warp of the current frame for a region (SELF)."""
    e = np.stack([original, target]).astype(np.float32)
    e[:, list(ignore)] = 0.0
    f = mesh.key_features(e, region)
    geo = float(focused_distance(f[:1], f[1], params.focus)[0]) * params.gain(region)
    return geo + float(semantic_distance(e[:1], e[1], region, params)[0])


def mouth_self_cost(hidden_cm2: float, hidden_share: float, params: MatchParams) -> float:
    """Cost of the current frame's own inner mouth (SELF): hidden_weight per cm^2 of the target's inner
    mouth the original does not show, plus hidden_share_weight * the share of it that would become the
    dark cavity (at full weight once that area reaches hidden_share_area; a thin dark line is fine)."""
    share_w = min(1.0, hidden_cm2 / max(params.hidden_share_area, 1e-6))
    return params.hidden_weight * hidden_cm2 + params.hidden_share_weight * hidden_share * share_w


def add_mouth_penalty(costs: np.ndarray, stretches: dict[int, float], params: MatchParams) -> np.ndarray:
    """Inner-mouth costs plus stretch_weight * stretch for the entries whose opening was compared
    (`stretches`: pool position -> mouth.stretch); entries not compared (or without a visible opening)
    cannot serve the inner mouth this frame (cost inf)."""
    out = np.full(len(costs), np.inf, np.float32)
    for pos, st in stretches.items():
        out[pos] = costs[pos] + params.stretch_weight * st
    return out


def best_source(costs: np.ndarray, cost_self: float, params: MatchParams) -> tuple[int, float]:
    """The best choice (pool position or SELF / NONE) and its cost, without temporal state.

    A pool entry is used whenever it beats SELF, up to far_cost: a decoded target usually lies between
    the person's real expressions, so the closest real frame re-warped to it beats both the stretched
    original and the dark cavity, even when it is not a close match (max_cost). NONE (pure warp + dark
    cavity) is the last resort: only when SELF is poor too (above max_cost) and no entry is within far_cost.
    """
    if len(costs) == 0 or not np.isfinite(costs).any():
        return (SELF, cost_self) if cost_self <= params.max_cost else (NONE, float("inf"))
    j = int(np.argmin(costs))
    c = float(costs[j])
    if cost_self <= c:
        return SELF, cost_self
    if c <= params.far_cost:
        return j, c
    return (SELF, cost_self) if cost_self <= params.max_cost else (NONE, c)


@dataclass(frozen=True)
class HysteresisParams:
    switch_ratio: float = 0.8  # a challenger must cost < switch_ratio * current cost ...
    switch_margin: float = 0.03  # ... and at least this much less (cm)
    switch_frames: int = 4  # ... for this many consecutive frames
    crossfade_frames: int = 5  # frames of cross-fade after a switch
    lost_factor: float = 2.0  # switch at once when the current source's cost grew past this * max_cost


@dataclass
class HysteresisSelector:
    """Temporal choice of a source for one region. `update` returns [(source, weight), ...] summing to 1."""

    params: HysteresisParams = field(default_factory=HysteresisParams)
    current: int | None = None
    challenger: int | None = None
    challenger_count: int = 0
    fading_from: int | None = None
    fade_step: int = 0

    def reset(self) -> None:
        self.current, self.challenger, self.challenger_count = None, None, 0
        self.fading_from, self.fade_step = None, 0

    def _cost_of(self, src: int, costs: np.ndarray, cost_self: float) -> float:
        if src == SELF:
            return cost_self
        if src == NONE:
            return float("inf")
        return float(costs[src]) if 0 <= src < len(costs) else float("inf")

    def update(self, costs: np.ndarray, cost_self: float, match: MatchParams) -> list[tuple[int, float]]:
        p = self.params
        best, best_cost = best_source(costs, cost_self, match)
        if self.current is None:
            self.current = best
            return [(best, 1.0)]
        cur_cost = self._cost_of(self.current, costs, cost_self)
        switch_now = False
        if best != self.current:
            clearly = best_cost < p.switch_ratio * cur_cost and best_cost < cur_cost - p.switch_margin
            if clearly:
                self.challenger_count = self.challenger_count + 1 if self.challenger == best else 1
                self.challenger = best
            else:
                self.challenger, self.challenger_count = None, 0
            # switch at once when the current choice got poor: a pool source beyond far_cost (or
            # lost_factor * max_cost); SELF as soon as it is beyond lost_factor * max_cost and a real
            # frame is cheaper (a mouth opening up in the edit's ramp must not keep a growing dark hole)
            limit = p.lost_factor * match.max_cost
            lost = best_cost < cur_cost and (cur_cost > limit if self.current < 0 else cur_cost > max(limit, match.far_cost))
            switch_now = lost or (clearly and self.challenger_count >= p.switch_frames)
        else:
            self.challenger, self.challenger_count = None, 0
        if switch_now:
            self.fading_from, self.fade_step = self.current, 0
            self.current = best
            self.challenger, self.challenger_count = None, 0
        if self.fading_from is not None and p.crossfade_frames > 0:
            self.fade_step += 1
            t = self.fade_step / (p.crossfade_frames + 1)
            if t >= 1.0:
                self.fading_from = None
            else:
                return [(self.fading_from, 1.0 - t), (self.current, t)]
        self.fading_from = None
        return [(self.current, 1.0)]
