"""Emotion fidelity: does the affect estimator read the requested emotion on the OUTPUT inside each edit?

For every labelled edit of a plan (nudge-only edits have no VA target and are skipped), over its
full-weight frames (edit weight >= `min_weight`: the transition ramps at the ends are half-way faces
and are left out) that have an affect estimate:

- `in_region`: share of frames whose (valence, arousal) lies inside the requested label's VA region at
  the edit's intensity (`dfm.affect.regions.region_for`, the same table the planner samples from);
- `in_sector`: share inside the label's sector at ANY intensity (radius 0.15..1: the right emotion,
  whatever its strength; neutral: the neutral disc);
- `distance`: mean Euclidean distance of the VA estimates to that region (0 inside);
- `label_share`: share of frames whose most probable estimator class is the requested label (when the
  estimator gives class probabilities);
- `mean_va`: mean (valence, arousal).

The same figures on the INPUT's frames (same estimator, same crop rule, same smoothing) say what the
edit changed. `overall` pools the frames of all labelled edits.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dfm.affect.circumplex import canonical_label
from dfm.affect.regions import NEUTRAL_RADIUS, VARegion, region_for


def label_sector(label: str) -> VARegion:
    """The label's VA region over all intensities (its sector from the neutral disc out to radius 1)."""
    if label == "neutral":
        return region_for("neutral", None)
    r = region_for(label, 0.5)
    return VARegion(label, 1.0, r.angle_min, r.angle_max, NEUTRAL_RADIUS, 1.0)


def _figures(va: np.ndarray, region, probs: np.ndarray | None, classes: Sequence[str], label: str) -> dict[str, Any]:
    ok = np.isfinite(va).all(1)
    out: dict[str, Any] = {"frames": int(ok.sum())}
    if not ok.any():
        out.update(in_region=float("nan"), in_sector=float("nan"), distance=float("nan"), mean_va=[float("nan")] * 2,
                   label_share=None)
        return out
    v = va[ok]
    out["in_region"] = float(region.contains(v).mean())
    out["in_sector"] = float(label_sector(label).contains(v).mean())
    out["distance"] = float(region.distance(v).mean())
    out["mean_va"] = [float(x) for x in v.mean(0)]
    out["label_share"] = None
    if probs is not None and len(classes):
        names = []
        for c in classes:
            try:
                names.append(canonical_label(c))
            except KeyError:
                names.append(str(c))
        p = probs[ok]
        good = np.isfinite(p).all(1)
        if good.any():
            called = np.array(names)[np.argmax(p[good], axis=1)]
            out["label_share"] = float((called == label).mean())
    return out


def emotion_fidelity(edit_index: np.ndarray, weight: np.ndarray, edits: Sequence[Any], va_output: np.ndarray,
                     va_input: np.ndarray, probs_output: np.ndarray | None = None,
                     probs_input: np.ndarray | None = None, classes: Sequence[str] = (),
                     min_weight: float = 0.999) -> dict[str, Any]:
    """Fidelity figures per edit and pooled (see module doc).

    edit_index (T,) position of each frame's edit (-1 outside), weight (T,) edit weight (a Plan's
    `edit_index` and `weight`); edits: the plan's ResolvedEdits (anything with .index, .label,
    .intensity, .first, .stop); va_output / va_input (T, 2) with NaN where no face; probs_* (T, C) class
    probabilities in the order of `classes`, optional.
    """
    edit_index = np.asarray(edit_index)
    weight = np.asarray(weight, np.float64)
    va_out = np.asarray(va_output, np.float64)
    va_in = np.asarray(va_input, np.float64)
    per_edit = []
    for r in edits:
        if r.label is None:
            continue
        region = region_for(r.label, None if r.label == "neutral" else r.intensity)
        sel = (edit_index == r.index) & (weight >= min_weight)
        row = {
            "edit": r.index, "label": r.label, "intensity": r.intensity, "first": int(r.first), "stop": int(r.stop),
            "full_weight_frames": int(sel.sum()),
            "output": _figures(va_out[sel], region, None if probs_output is None else probs_output[sel], classes, r.label),
            "input": _figures(va_in[sel], region, None if probs_input is None else probs_input[sel], classes, r.label),
        }
        per_edit.append(row)
    overall: dict[str, Any] = {}
    for side in ("output", "input"):
        n = inside = sector = 0
        dist = 0.0
        called = called_n = 0
        for row in per_edit:
            f = row[side]
            k = f["frames"]
            if k:
                n += k
                inside += f["in_region"] * k
                sector += f["in_sector"] * k
                dist += f["distance"] * k
                if f["label_share"] is not None:
                    called += f["label_share"] * k
                    called_n += k
        overall[side] = {"frames": n, "in_region": inside / n if n else float("nan"),
                         "in_sector": sector / n if n else float("nan"),
                         "distance": dist / n if n else float("nan"),
                         "label_share": called / called_n if called_n else None}
    return {"edits": per_edit, "overall": overall, "min_weight": min_weight}
