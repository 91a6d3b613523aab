"""The plan: from checked edits to the per-frame target expression and edit weight the renderer consumes.

For each edit (frames first..stop-1), in this order:

1. VA trajectory (`dfm.edits.trajectory`): random points in the edit's region, B-spline, one VA per frame.
   Each edit draws from its own stream `numpy.random.default_rng([seed, first frame, stop frame])`:
   adding, removing or reordering edits does not reshuffle the others, and changing an edit's label or
   intensity reuses the same random numbers (a region maps them continuously), so an intensity slider
   moves the trajectory smoothly instead of redrawing it. The seed is recorded in the plan.
2. Decode: `decode(va (n, 2)) -> (n, 53)` (the person's decoder), clipped to [0, 1]. Full-face
   prototypes (optional `prototype(va) -> (n, 53)`, the universal FACS prior's activation): every action
   unit of the label's EMFACS prototype (dfm.face.emfacs) is carried at least at the prior's strength,
   decoded_c >= neutral_c + prototype_c, so a person's data that averages an emotion towards their mean
   face (or never showed its brows, lids or nose) cannot drop the AUs that make it readable; the floor
   grows with the intensity, so low < medium < high on every prototype AU. On the channels that are
   neither speech nor lid channels (those add to the original anyway) a prototype AU is also never set
   below the original frame's value: a surprise edit does not lower brows the person already raises.
3. Speech preservation (`dfm.edits.speech`, optional, per edit): on the articulation channels the emotion only adds
   its excess over the decoded neutral expression to the original coefficient.
   A prototype AU also relaxes the AUs it works against when they are not in the label's prototype
   (`dfm.face.emfacs.ANTAGONISTS`: anger's brow lowerer relaxes a person's raised brows, sad's lip-corner
   depressor a resting smile, by its activation).
   Sad and anger (`dfm.face.emfacs.CLOSED_MOUTH_LABELS`, no lip-parting AU in their prototypes) never
   open the mouth beyond the decoded neutral (nor, without speech, beyond the closed-mouth rest) on the
   lip-parting shapes (`MOUTH_OPENING_SHAPES`): a person's sad or angry footage is mostly talking, and its
   average opening would show the teeth of a sad mouth.
   Without speech preservation the articulation channels are the same difference laid on the video's
   closed-mouth rest (`dfm.edits.speech.rest_articulation`), so the person's average speech opening in
   the decoder's data does not open every emotion's mouth (a sad mouth stays closed).
   Eyes (`dfm.edits.eyes`, always): gaze and blinks stay the original's; the lid aperture (eyeWide,
   eyeSquint) follows the target as its difference from the decoded neutral, added to the original lids.
4. Smoothing: the decoded (emotion) curves are smoothed over the edit with a cubic smoothing spline (the
   paper's approximating splines; `scipy.interpolate.make_smoothing_spline`) so the decoder cannot
   jitter. `smoothing` is the time scale h in seconds: the penalty is lam = fps * h**4, which puts the
   spline's half-gain frequency at 1/h rad/s (h = 0.1 s: about 1.6 Hz; frame-rate jitter is removed,
   an emotion's onset over half a second is kept). None picks lam by generalised cross-validation per
   channel, 0 switches smoothing off. The decoded curves are smoothed *before* the blend with the
   original, not after: smoothing the blend would move the first/last edited frames away from the
   original (a step at the edit boundary) and would smooth away the original lip motion kept in step 3.
5. Nudges: the edit's blendshape offsets are added (explicit: they also apply to speech channels).
6. Transitions: weight w ramps 0 -> 1 over the first `transition` frames and back over the last ones
   (cosine ease, w = (1 - cos(pi u)) / 2, u = k / (transition + 1), never exactly 0 or 1 on a ramp
   frame); target = (1 - w) * original + w * full-strength target, then clipped to [0, 1].

Outside every edit the target is the original array's values, bit for bit, the weight 0, VA NaN and the
edit index -1.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy.interpolate import make_smoothing_spline

from dfm.affect.regions import region_for
from dfm.edits.eyes import apply_eyes, eye_follow_mask, lid_layer, lid_mask
from dfm.edits.model import Edit, EditList
from dfm.edits.speech import (SPEECH_CHANNELS, articulation_on_rest, emotion_layer, full_strength_target,
                              rest_articulation, speech_mask)
from dfm.edits.trajectory import DEFAULT_KNOT_INTERVAL, va_trajectory
from dfm.edits.validate import ResolvedEdit, validate_edits
from dfm.errors import DfmError
from dfm.face.emfacs import CLOSED_MOUTH_LABELS, MOUTH_OPENING_SHAPES
from dfm.face.expressions import EXPRESSION_INDEX, EXPRESSION_NAMES, N_EXPRESSIONS
from dfm.io.files import atomic_output

PLAN_FORMAT = "dfm-plan"
PLAN_VERSION = 1
DEFAULT_TRANSITION_FRAMES = 20
DEFAULT_SMOOTHING = 0.1  # seconds, see the module docstring

Decoder = Callable[[np.ndarray], np.ndarray]
_OPENING = np.array([EXPRESSION_INDEX[n] for n in MOUTH_OPENING_SHAPES], np.int64)


@dataclass
class Plan:
    """Per-frame result of planning edits on one video (T frames)."""

    target: np.ndarray  # (T, 53) target expression, dtype of the original; == original outside edits
    weight: np.ndarray  # (T,) float32 edit weight: 0 outside, 1 inside, ramps in transitions
    va: np.ndarray  # (T, 2) float32 target valence/arousal; NaN outside edits and in nudge-only edits
    edit_index: np.ndarray  # (T,) int32 position of the frame's edit in `edits`, -1 outside
    timestamps: np.ndarray  # (T,) float64 seconds
    seed: int
    edits: list[ResolvedEdit]
    speech_channels: tuple[str, ...]  # channels kept from the original by some edit (empty: preservation off)
    fps: float
    transition_frames: int
    smoothing: float | None
    knot_interval: float = DEFAULT_KNOT_INTERVAL
    knot_times: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K,) s, random VA points
    knot_va: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (K, 2)
    knot_edit: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))  # (K,) edit position
    speech_edits: tuple[bool, ...] | None = None  # per edit (order of `edits`): its articulation kept; None: all
    # as speech_channels says (plans written before per-edit preservation)
    original_share: np.ndarray | None = None  # (T, 53) float32: the coefficient of the original frame's value
    # in the target (1 outside edits and on channels planned as the original plus an offset: kept speech,
    # eyes, nudge-only edits; 1 - weight where the emotion owns a channel). A renderer that smooths the
    # original re-bases those shares onto its smoothed values (WarpRenderer.rebased_targets). None: zeros
    # (plans saved before it: the targets are taken as they are)

    def __post_init__(self) -> None:
        if self.speech_edits is None:
            self.speech_edits = (bool(self.speech_channels),) * len(self.edits)
        if self.original_share is None:
            self.original_share = np.zeros(self.target.shape, np.float32)

    @property
    def n_frames(self) -> int:
        return int(self.weight.shape[0])

    @property
    def edited(self) -> np.ndarray:
        """(T,) bool: the frame belongs to an edit."""
        return self.edit_index >= 0

    def meta(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "version": PLAN_VERSION,
            "seed": int(self.seed),
            "fps": float(self.fps),
            "transition_frames": int(self.transition_frames),
            "smoothing": self.smoothing,
            "knot_interval": float(self.knot_interval),
            "speech_channels": list(self.speech_channels),
            "speech_edits": list(self.speech_edits),
            "expression_names": list(EXPRESSION_NAMES),
            "edits": [r.to_dict() for r in self.edits],
        }

    def save(self, path: str | os.PathLike, overwrite: bool = True) -> Path:
        """Write the plan as one .npz (arrays + a JSON 'meta' string), atomically."""
        path = Path(path)
        if not overwrite and path.exists():
            raise DfmError(f"{path} already exists; refusing to overwrite it")
        with atomic_output(path, suffix=".npz") as tmp:
            np.savez_compressed(
                tmp,
                target=self.target,
                weight=self.weight,
                va=self.va,
                edit_index=self.edit_index,
                timestamps=self.timestamps,
                knot_times=self.knot_times,
                knot_va=self.knot_va,
                knot_edit=self.knot_edit,
                original_share=self.original_share,
                meta=np.array(json.dumps(self.meta())),
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Plan":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise DfmError(f"plan {path} not found") from None
        except (OSError, ValueError) as e:
            raise DfmError(f"{path} is not a readable plan file: {e}") from None
        if "meta" not in arrays:
            raise DfmError(f"{path} is not a dfm plan (no meta)")
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != PLAN_FORMAT:
            raise DfmError(f"{path} is not a dfm plan (format {meta.get('format')!r})")
        if int(meta.get("version", 0)) > PLAN_VERSION:
            raise DfmError(f"{path}: plan version {meta['version']} is newer than this dfm supports ({PLAN_VERSION})")
        if tuple(meta.get("expression_names", ())) != EXPRESSION_NAMES:
            raise DfmError(f"{path}: plan was written with a different expression column order")
        return cls(
            target=arrays["target"],
            weight=arrays["weight"],
            va=arrays["va"],
            edit_index=arrays["edit_index"],
            timestamps=arrays["timestamps"],
            seed=int(meta["seed"]),
            edits=[ResolvedEdit.from_dict(d) for d in meta["edits"]],
            speech_channels=tuple(meta["speech_channels"]),
            fps=float(meta["fps"]),
            transition_frames=int(meta["transition_frames"]),
            smoothing=meta["smoothing"],
            knot_interval=float(meta["knot_interval"]),
            knot_times=arrays["knot_times"],
            knot_va=arrays["knot_va"],
            knot_edit=arrays["knot_edit"],
            speech_edits=None if "speech_edits" not in meta else tuple(bool(k) for k in meta["speech_edits"]),
            original_share=arrays.get("original_share"),
        )


def ramp_weights(n_frames: int, transition: int) -> np.ndarray:
    """(n,) weights of one edit: cosine ease-in over the first `transition` frames, 1, ease-out at the end."""
    w = np.ones(n_frames, dtype=np.float64)
    if transition > 0:
        u = (np.arange(transition) + 1.0) / (transition + 1.0)
        ease = 0.5 - 0.5 * np.cos(np.pi * u)
        w[:transition] = ease
        w[n_frames - transition :] = ease[::-1]
    return w


def smooth_curves(times: np.ndarray, values: np.ndarray, smoothing: float | None) -> np.ndarray:
    """Cubic smoothing spline of each column of values (n, C) over times (n,), evaluated at times."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if smoothing == 0 or n < 5:  # make_smoothing_spline needs 5 points
        return values.copy()
    if smoothing is not None and smoothing < 0:
        raise ValueError(f"smoothing must be >= 0 seconds or None, got {smoothing}")
    times = np.asarray(times, dtype=np.float64)
    lam = None
    if smoothing is not None:
        rate = (n - 1) / (times[-1] - times[0])  # frames per second over this edit
        lam = rate * float(smoothing) ** 4
    out = values.copy()
    varying = np.ptp(values, axis=0) > 1e-12  # constant columns: nothing to smooth (and GCV is undefined)
    if lam is not None and varying.any():
        # a fixed lambda makes the spline linear in y: one banded solve for all columns at once
        out[:, varying] = make_smoothing_spline(times, values[:, varying], lam=lam)(times)
        return out
    for c in range(values.shape[1]):
        col = values[:, c]
        if np.ptp(col) <= 1e-12:
            continue  # constant: nothing to smooth (and GCV is undefined)
        try:
            out[:, c] = make_smoothing_spline(times, col, lam=lam)(times)
        except ValueError:  # ill-posed GCV on degenerate data: keep the curve as it is
            continue
    return out


def _decode(decode: Decoder, va: np.ndarray) -> np.ndarray:
    out = np.asarray(decode(np.asarray(va, dtype=np.float64).reshape(-1, 2)), dtype=np.float64)
    if out.shape != (len(va), N_EXPRESSIONS):
        raise ValueError(f"decode returned shape {out.shape}, expected ({len(va)}, {N_EXPRESSIONS})")
    if not np.all(np.isfinite(out)):
        raise ValueError("decode returned NaN or infinite values")
    return np.clip(out, 0.0, 1.0)


def _activation(prototype: Decoder, va: np.ndarray) -> np.ndarray:
    out = np.asarray(prototype(np.asarray(va, dtype=np.float64).reshape(-1, 2)), dtype=np.float64)
    if out.shape != (len(va), N_EXPRESSIONS) or not np.all(np.isfinite(out)):
        raise ValueError(f"prototype returned shape {out.shape} or non-finite values, expected ({len(va)}, {N_EXPRESSIONS})")
    return np.maximum(out, 0.0)


def prototype_mask(label: str) -> np.ndarray:
    """(53,) bool: the ICT channels of the label's EMFACS prototype (the prior interpolates neighbouring
    labels between their directions; the floor must not lend an edit another label's AUs)."""
    from dfm.face.emfacs import prototype_shapes

    m = np.zeros(N_EXPRESSIONS, dtype=bool)
    for shapes in prototype_shapes(label).values():
        m[[EXPRESSION_INDEX[s] for s in shapes]] = True
    return m


def _relax_antagonists(decoded: np.ndarray, act: np.ndarray, label: str) -> np.ndarray:
    """Scale down the AUs a prototype AU works against (dfm.face.emfacs.ANTAGONISTS: anger's brow lowerer
    against the brow raisers, sad's lip-corner depressor against the smile) by that AU's activation:
    relaxed_c *= 1 - mean activation of the AU's shapes."""
    from dfm.face.emfacs import relaxed_by

    groups: dict[tuple[str, ...], list[str]] = {}
    for shape, relaxed in relaxed_by(label).items():
        groups.setdefault(relaxed, []).append(shape)
    out = decoded.copy()
    for relaxed, shapes in groups.items():
        strength = np.clip(act[:, [EXPRESSION_INDEX[s] for s in shapes]].mean(axis=1), 0.0, 1.0)
        out[:, [EXPRESSION_INDEX[s] for s in relaxed]] *= (1.0 - strength)[:, None]
    return out


def _nudge_vector(nudges: dict[str, float]) -> np.ndarray:
    v = np.zeros(N_EXPRESSIONS, dtype=np.float64)
    for name, offset in nudges.items():
        v[EXPRESSION_INDEX[name]] += float(offset)
    return v


def make_plan(
    edits: EditList | Sequence[Edit],
    timestamps: np.ndarray,
    valid: np.ndarray,
    original_expression: np.ndarray,
    decode: Decoder,
    seed: int | None = 0,
    transition_frames: int = DEFAULT_TRANSITION_FRAMES,
    preserve_speech: bool | Sequence[bool] = True,
    smoothing: float | None = DEFAULT_SMOOTHING,
    *,
    fps: float | None = None,
    knot_interval: float = DEFAULT_KNOT_INTERVAL,
    prototype: Decoder | None = None,
) -> Plan:
    """Plan the edits on one video (see the module docstring for the steps).

    timestamps (T,) s, valid (T,) bool and original_expression (T, 53) come from the FaceTrack; decode maps
    (N, 2) VA to (N, 53) expressions. preserve_speech: for all edits, or one flag per edit (in the order of
    `edits`). seed=None draws a fresh seed (recorded in the plan). fps defaults to 1 / median frame
    interval. Raises DfmError for edits that do not fit the video.
    """
    ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    original = np.asarray(original_expression)
    if original.ndim != 2 or original.shape != (len(ts), N_EXPRESSIONS):
        raise ValueError(f"original_expression must be ({len(ts)}, {N_EXPRESSIONS}), got {original.shape}")
    if len(ts) > 1 and not np.all(np.diff(ts) > 0):
        raise ValueError("timestamps must increase")
    if fps is None:
        fps = 1.0 / float(np.median(np.diff(ts))) if len(ts) > 1 else 25.0
    if seed is None:
        seed = secrets.randbits(63)
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DfmError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    resolved = validate_edits(edits, ts, valid, fps, transition_frames)

    T = len(ts)
    if isinstance(preserve_speech, (bool, np.bool_)):
        keeps = (bool(preserve_speech),) * len(resolved)
        any_kept = bool(preserve_speech)
    else:
        keeps = tuple(bool(k) for k in preserve_speech)
        if len(keeps) != len(resolved):
            raise ValueError(f"preserve_speech has {len(keeps)} flags for {len(resolved)} edits")
        any_kept = any(keeps)
    target = original.copy()
    share = np.ones((T, N_EXPRESSIONS), dtype=np.float32)
    weight = np.zeros(T, dtype=np.float32)
    va = np.full((T, 2), np.nan, dtype=np.float32)
    edit_index = np.full(T, -1, dtype=np.int32)
    knots_t: list[np.ndarray] = []
    knots_va: list[np.ndarray] = []
    knots_edit: list[np.ndarray] = []

    neutral = np.zeros(N_EXPRESSIONS)
    if any(r.label is not None for r in resolved):  # the speech and the lid channels add to the original
        neutral = _decode(decode, region_for("neutral", None).center().reshape(1, 2))[0]
    rest_face = rest_articulation(original, valid) if not all(keeps) else None

    for r in resolved:
        mask = speech_mask() if keeps[r.index] else np.zeros(N_EXPRESSIONS, dtype=bool)
        rest = None if keeps[r.index] else rest_face
        frames = slice(r.first, r.stop)
        t = ts[frames]
        orig = original[frames].astype(np.float64)
        if r.label is not None:
            region = region_for(r.label, r.intensity)
            rng = np.random.default_rng([seed, r.first, r.stop])
            traj = va_trajectory(region, t, rng, knot_interval)
            decoded = _decode(decode, traj.va)
            act = None
            if prototype is not None:  # full-face prototype floor (step 2), on this label's own AUs only
                own = prototype_mask(r.label)
                act = _activation(prototype, traj.va) * own[None, :]
                # on its own channels only: elsewhere a floor at the decoded neutral would pin every other
                # channel at its neutral value (a happy edit kept a resting frown the decoder had dropped)
                decoded[:, own] = np.maximum(decoded[:, own], np.clip(neutral[own][None] + act[:, own], 0.0, 1.0))
                decoded = _relax_antagonists(decoded, act, r.label)
            if r.label in CLOSED_MOUTH_LABELS:  # lips at most as apart as the neutral's (and the rest's)
                cap = neutral if rest is None else np.minimum(neutral, rest)
                decoded[:, _OPENING] = np.minimum(decoded[:, _OPENING], cap[None, _OPENING])
            if rest is not None:  # no speech to keep: the emotion's articulation on the closed-mouth rest
                decoded = articulation_on_rest(decoded, neutral, rest, speech_mask())
            layer = emotion_layer(decoded, neutral, mask)
            lids = lid_layer(decoded, neutral)  # smoothed together with the emotion layer
            both = smooth_curves(t, np.concatenate([layer, lids], axis=1), smoothing)
            layer, lids = both[:, :N_EXPRESSIONS], both[:, N_EXPRESSIONS:]
            layer[:, mask] = np.maximum(layer[:, mask], 0.0)  # an emotion only adds to articulation
            full = apply_eyes(full_strength_target(layer, orig, mask), lids, orig)
            relative = np.broadcast_to(mask | eye_follow_mask(), full.shape).copy()  # original + an offset
            if act is not None:  # an emotion never lowers its own prototype AUs below the original frame
                free = ~(mask | lid_mask())[None, :] & (act > 1e-6)
                relative |= free & (orig > full)
                full = np.where(free, np.maximum(full, orig), full)
            va[frames] = traj.va
            knots_t.append(traj.knot_times)
            knots_va.append(traj.knot_va)
            knots_edit.append(np.full(len(traj.knot_times), r.index, dtype=np.int32))
        else:
            full = orig.copy()
            relative = np.ones(full.shape, dtype=bool)
        full += _nudge_vector(r.nudges)[None, :]
        w = ramp_weights(r.n_frames, r.transition)
        blended = (1.0 - w)[:, None] * orig + w[:, None] * full
        target[frames] = np.clip(blended, 0.0, 1.0).astype(target.dtype)
        share[frames] = 1.0 - w[:, None] * ~relative
        weight[frames] = w
        edit_index[frames] = r.index

    return Plan(
        target=target,
        weight=weight,
        va=va,
        edit_index=edit_index,
        timestamps=ts,
        seed=seed,
        edits=resolved,
        speech_channels=SPEECH_CHANNELS if any_kept else (),
        fps=float(fps),
        transition_frames=int(transition_frames),
        smoothing=smoothing,
        knot_interval=float(knot_interval),
        knot_times=np.concatenate(knots_t) if knots_t else np.zeros(0),
        knot_va=np.concatenate(knots_va) if knots_va else np.zeros((0, 2)),
        knot_edit=np.concatenate(knots_edit) if knots_edit else np.zeros(0, dtype=np.int32),
        speech_edits=keeps,
        original_share=share,
    )


def make_plan_for_track(track: Any, edits: EditList | Sequence[Edit], decode: Decoder, **kwargs: Any) -> Plan:
    """`make_plan` on a `dfm.face.track.FaceTrack` (its timestamps, valid flags, expression and fps)."""
    kwargs.setdefault("fps", float(track.fps))
    return make_plan(edits, track.timestamps, track.valid, track.expression, decode, **kwargs)
