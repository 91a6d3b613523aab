"""Picture of a plan: original vs target curves of the main coefficients, edits shaded, the VA trajectory,
and per edit the blendshapes it moves (mean |target - original| over its full-strength frames)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from dfm.edits.eyes import KEPT_EYE_CHANNELS, LID_CHANNELS
from dfm.edits.plan import Plan
from dfm.face.expressions import EXPRESSION_INDEX
from dfm.io.files import atomic_output

# The coefficients that show the emotions: smile/frown (happy/sad), inner brow raise and brow lowerer
# (sad, fear, anger), jaw drop and eye widening (surprise, fear), cheek raiser (Duchenne smile),
# stretch (fear), sneer (disgust).
DEFAULT_PLOT_NAMES: tuple[str, ...] = (
    "mouthSmile_L",
    "mouthSmile_R",
    "mouthFrown_L",
    "mouthFrown_R",
    "cheekSquint_L",
    "browInnerUp_L",
    "browDown_L",
    "eyeWide_L",
    "eyeSquint_L",
    "eyeBlink_L",
    "jawOpen",
    "mouthStretch_L",
    "noseSneer_L",
    "mouthPress_L",
    "mouthUpperUp_L",
)
MOVED_TOP = 10  # blendshapes listed per edit in the "moves" panels


def moved_blendshapes(plan: Plan, original: np.ndarray, edit: int, top: int = MOVED_TOP,
                      min_change: float = 0.01) -> list[tuple[str, float]]:
    """The blendshapes edit `edit` (its index) moves most: (name, mean target - original) over its frames
    at full strength (all its frames if none is), largest |change| first, at most `top`, |change| >= min_change."""
    from dfm.face.expressions import EXPRESSION_NAMES

    sel = plan.edit_index == edit
    full = sel & (plan.weight >= 0.999)
    sel = full if full.any() else sel
    if not sel.any():
        return []
    d = (np.asarray(plan.target, np.float64)[sel] - np.asarray(original, np.float64)[sel]).mean(axis=0)
    order = np.argsort(-np.abs(d))[:top]
    return [(EXPRESSION_NAMES[j], float(d[j])) for j in order if abs(d[j]) >= min_change]

_EDIT_COLOURS = {
    "neutral": "#9e9e9e",
    "happy": "#f2c200",
    "sad": "#3f6fd8",
    "surprise": "#ff8c1a",
    "fear": "#8e44ad",
    "anger": "#d62728",
    "disgust": "#2ca02c",
    None: "#17becf",  # nudge-only
}


def _edit_caption(r) -> str:
    if r.label is None:
        return "AU nudges"
    text = r.label if r.edit.intensity is None else f"{r.label}:{r.edit.intensity}"
    return text + (" +AU" if r.nudges else "")


def _shade_edits(ax, plan: Plan, label: bool = False) -> None:
    ts = plan.timestamps
    period = 1.0 / plan.fps
    span = max(float(ts[-1] - ts[0]) + period, period)
    row_ends: list[float] = []  # right end (axis fraction) of the last caption in each text row
    for r in sorted(plan.edits, key=lambda e: e.first):
        colour = _EDIT_COLOURS.get(r.label, "#17becf")
        t0, t1 = ts[r.first], ts[r.stop - 1] + period
        ax.axvspan(t0, t1, color=colour, alpha=0.13, lw=0)
        if r.transition:  # full-strength part darker than the ramps
            ax.axvspan(ts[r.first + r.transition], ts[r.stop - 1 - r.transition] + period, color=colour, alpha=0.12, lw=0)
        if label:
            text = _edit_caption(r)
            centre = ((t0 + t1) / 2 - ts[0]) / span
            half = 0.0045 * len(text)  # about half the caption's width as a fraction of a wide axis
            row = next((k for k, end in enumerate(row_ends) if centre - half > end), len(row_ends))
            if row == len(row_ends):
                row_ends.append(0.0)
            row_ends[row] = centre + half
            ax.text((t0 + t1) / 2, 1.02 + 0.09 * row, text, transform=ax.get_xaxis_transform(), ha="center",
                    va="bottom", fontsize=8, color=colour, fontweight="bold", clip_on=False)


def plot_plan(
    plan: Plan,
    original: np.ndarray,
    path: str | os.PathLike,
    names: Sequence[str] = DEFAULT_PLOT_NAMES,
    title: str | None = None,
) -> Path:
    """Write a PNG: the VA trajectory over time and in the VA plane, then original (grey) vs target (colour)
    of each named coefficient over time, edit intervals shaded (lighter: transitions). Atomic write."""
    # A bare Figure renders with Agg and never touches pyplot's global state or a GUI backend.
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    from dfm.affect.regions import region_for

    original = np.asarray(original)
    for name in names:
        if name not in EXPRESSION_INDEX:
            raise ValueError(f"unknown blendshape {name!r}")
    ts = plan.timestamps
    ncols = 3
    nrows = math.ceil(len(names) / ncols)
    n_moved = math.ceil(len(plan.edits) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 2.9 + 1.9 * nrows + 2.4 * n_moved), dpi=100, layout="constrained")
    grid = fig.add_gridspec(nrows + 1 + n_moved, ncols, height_ratios=[1.5] + [1.0] * nrows + [1.3] * n_moved)

    # VA over time (+ weight)
    ax_va = fig.add_subplot(grid[0, :2])
    _shade_edits(ax_va, plan, label=True)
    ax_va.plot(ts, plan.va[:, 0], color="#c0392b", lw=1.6, label="valence")
    ax_va.plot(ts, plan.va[:, 1], color="#2c3e50", lw=1.6, label="arousal")
    if len(plan.knot_times):
        ax_va.plot(plan.knot_times, plan.knot_va[:, 0], "o", color="#c0392b", ms=3.5)
        ax_va.plot(plan.knot_times, plan.knot_va[:, 1], "o", color="#2c3e50", ms=3.5)
    ax_va.plot(ts, plan.weight, color="#7f8c8d", lw=1.0, ls="--", label="edit weight")
    ax_va.set_xlim(ts[0], ts[-1] + 1.0 / plan.fps)
    ax_va.set_ylim(-1.05, 1.05)
    ax_va.axhline(0, color="k", lw=0.4)
    ax_va.set_ylabel("target VA")
    ax_va.legend(loc="lower left", fontsize=8, ncol=3, framealpha=0.8)
    ax_va.grid(alpha=0.25)

    # VA plane: regions and trajectories
    ax_plane = fig.add_subplot(grid[0, 2])
    ax_plane.add_patch(Circle((0, 0), 1.0, fill=False, color="#bbbbbb", lw=0.8))
    ax_plane.axhline(0, color="#bbbbbb", lw=0.6)
    ax_plane.axvline(0, color="#bbbbbb", lw=0.6)
    for r in plan.edits:
        if r.label is None:
            continue
        colour = _EDIT_COLOURS.get(r.label, "#17becf")
        region = region_for(r.label, r.intensity)
        _draw_region(ax_plane, region, colour)
        sel = plan.edit_index == r.index
        ax_plane.plot(plan.va[sel, 0], plan.va[sel, 1], color=colour, lw=1.2)
        k = plan.knot_edit == r.index
        ax_plane.plot(plan.knot_va[k, 0], plan.knot_va[k, 1], "o", color="k", ms=2.5)
    ax_plane.set_xlim(-1.05, 1.05)
    ax_plane.set_ylim(-1.05, 1.05)
    ax_plane.set_aspect("equal")
    ax_plane.set_xlabel("valence", fontsize=8)
    ax_plane.set_ylabel("arousal", fontsize=8)
    ax_plane.tick_params(labelsize=7)
    ax_plane.set_title("VA plane", fontsize=9)

    for k, name in enumerate(names):
        ax = fig.add_subplot(grid[1 + k // ncols, k % ncols], sharex=ax_va)
        _shade_edits(ax, plan)
        j = EXPRESSION_INDEX[name]
        ax.plot(ts, original[:, j], color="#7f7f7f", lw=1.0, label="original")
        ax.plot(ts, plan.target[:, j], color="#1f77b4", lw=1.3, label="target")
        ax.set_ylim(-0.03, 1.03)
        note = ("  (speech: kept)" if name in plan.speech_channels else "  (kept: the person's)"
                if name in KEPT_EYE_CHANNELS else "  (lids: + difference)" if name in LID_CHANNELS else "")
        ax.set_title(name + note, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25)
        if k == 0:
            ax.legend(loc="upper left", fontsize=7)
        if k // ncols == nrows - 1:
            ax.set_xlabel("time (s)", fontsize=8)
    # per edit: which blendshapes it moves, and by how much (full-strength frames)
    for k, r in enumerate(sorted(plan.edits, key=lambda e: e.first)):
        ax = fig.add_subplot(grid[1 + nrows + k // ncols, k % ncols])
        moved = moved_blendshapes(plan, original, r.index)
        colour = _EDIT_COLOURS.get(r.label, "#17becf")
        if moved:
            ax.barh(range(len(moved)), [v for _, v in moved], color=colour, alpha=0.85)
            ax.set_yticks(range(len(moved)), [n for n, _ in moved], fontsize=7)
            ax.invert_yaxis()
        ax.axvline(0, color="k", lw=0.5)
        ax.set_xlim(-1.0, 1.0)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(f"edit {r.index} ({_edit_caption(r)}) moves: mean target − original", fontsize=8)
        ax.grid(alpha=0.25, axis="x")
    heading = title or "dfm plan"
    fig.suptitle(
        f"{heading} — {len(plan.edits)} edit(s), seed {plan.seed}, transitions {plan.transition_frames} frames"
        f", speech preservation {'on' if plan.speech_channels else 'off'}",
        fontsize=10,
    )
    path = Path(path)
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return path


def _draw_region(ax, region, colour: str) -> None:
    """Outline of an annular sector / disc region in the VA plane."""
    from matplotlib.patches import Circle, Wedge

    if getattr(region, "is_full_circle", False):
        ax.add_patch(Circle((0, 0), region.radius_max, color=colour, alpha=0.25, lw=0))
        return
    if not hasattr(region, "angle_min"):
        c = region.center()
        ax.plot([c[0]], [c[1]], "s", color=colour)
        return
    ax.add_patch(
        Wedge(
            (0, 0),
            region.radius_max,
            np.degrees(region.angle_min),
            np.degrees(region.angle_max),
            width=region.radius_max - region.radius_min,
            color=colour,
            alpha=0.25,
            lw=0,
        )
    )
