"""The emotion matrix: does every label read as itself when a whole video is edited to it?

One cell = one edit of the whole video to one label at one intensity, re-analysed (tracking, fit, affect).
Per cell, on the full-weight frames (edit weight >= `min_weight`, frames with a face in input and output):

- `share`: share of frames whose most probable affect class is the requested label (input and output);
- `mean_prob`: mean class probability of the requested label (input and output);
- `jitter_ratio`: landmark jitter of the re-tracked output / of the input over the same frames
  (dfm.eval.stability.landmark_jitter; 1 = as steady as the input);
- `aus`: per action unit of the label's EMFACS prototype, the mean re-fitted weight of its ICT
  blendshapes in input and output, so a cell also says whether the face moved the way the label's
  action units move it.

Arrays in, figures out: the pipeline that renders and re-analyses the cells is
dfm.pipelines.emotion_matrix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from dfm.affect.circumplex import canonical_label
from dfm.eval.stability import landmark_jitter

# every label at high (neutral has no intensity), plus low and medium for two labels
DEFAULT_CELLS: tuple[tuple[str, str | None], ...] = (
    ("neutral", None), ("happy", "high"), ("sad", "high"), ("surprise", "high"), ("fear", "high"),
    ("anger", "high"), ("disgust", "high"),
    ("sad", "low"), ("sad", "medium"), ("surprise", "low"), ("surprise", "medium"),
)


@dataclass
class MatrixCell:
    """Figures of one (label, intensity) edit of the whole video."""

    label: str
    intensity: str | None
    frames: int  # full-weight frames with a face in input and output
    share_output: float | None
    share_input: float | None
    prob_output: float | None
    prob_input: float | None
    jitter_ratio: float
    aus: dict[str, dict[str, float]] = field(default_factory=dict)  # action unit -> {"input", "output"}

    @property
    def name(self) -> str:
        return self.label if self.intensity is None else f"{self.label}:{self.intensity}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"name": self.name}


def class_names(classes: Sequence[str]) -> list[str]:
    """The estimator's class names in dfm's label vocabulary (unknown names kept as they are)."""
    out = []
    for c in classes:
        try:
            out.append(canonical_label(c))
        except KeyError:
            out.append(str(c))
    return out


def _share_prob(probs: np.ndarray | None, names: list[str], label: str, sel: np.ndarray):
    if probs is None or label not in names or not sel.any():
        return None, None
    p = np.asarray(probs, np.float64)[sel]
    p = p[np.isfinite(p).all(1)]
    if not len(p):
        return None, None
    called = np.array(names)[np.argmax(p, axis=1)]
    return float((called == label).mean()), float(p[:, names.index(label)].mean())


def matrix_cell(label: str, intensity: str | None, weight: np.ndarray, classes: Sequence[str],
                probs_in: np.ndarray | None, probs_out: np.ndarray | None,
                landmarks_in: np.ndarray, valid_in: np.ndarray, landmarks_out: np.ndarray, valid_out: np.ndarray,
                expr_in: np.ndarray, expr_out: np.ndarray, au_shapes: Mapping[str, Sequence[str]] | None = None,
                min_weight: float = 0.999) -> MatrixCell:
    """Figures of one cell (see the module doc).

    weight (T,) the plan's edit weight; probs_* (T, C) class probabilities in the order of `classes`
    (None: no classes); landmarks_* (T, K, >=2) pixels; valid_* (T,) bool; expr_* (T, 53) re-fitted
    expression of input and output; au_shapes: action unit name -> its blendshapes (the label's prototype).
    """
    from dfm.face.expressions import expression_index

    both = np.asarray(valid_in, bool) & np.asarray(valid_out, bool)
    sel = both & (np.asarray(weight, np.float64) >= min_weight)
    names = class_names(classes)
    s_out, p_out = _share_prob(probs_out, names, label, sel)
    s_in, p_in = _share_prob(probs_in, names, label, sel)
    j_in = landmark_jitter(landmarks_in, both, sel)["px"]
    j_out = landmark_jitter(landmarks_out, both, sel)["px"]
    ratio = j_out / j_in if np.isfinite(j_in) and j_in > 0 else float("nan")
    aus = {}
    if sel.any():
        for au, shapes in (au_shapes or {}).items():
            cols = [expression_index(n) for n in shapes]
            aus[au] = {"input": float(np.asarray(expr_in)[sel][:, cols].mean()),
                       "output": float(np.asarray(expr_out)[sel][:, cols].mean())}
    return MatrixCell(label, intensity, int(sel.sum()), s_out, s_in, p_out, p_in, float(ratio), aus)


def _pct(x: float | None) -> str:
    return "–" if x is None or x != x else f"{100 * x:.0f}%"


def _num(x: float | None, d: int = 2) -> str:
    return "–" if x is None or x != x else f"{x:.{d}f}"


def markdown_table(cells: Sequence[MatrixCell]) -> str:
    """One row per cell: share called the label and mean class probability (input -> output), jitter ratio,
    and the label's prototype blendshapes (mean input -> output)."""
    lines = ["| edit | frames | called the label (in → out) | mean class prob (in → out) | jitter ratio | "
             "prototype blendshapes (in → out) |", "|---|---:|---:|---:|---:|---|"]
    for c in cells:
        aus = ", ".join(f"{k} {v['input']:.2f}→{v['output']:.2f}" for k, v in c.aus.items())
        lines.append(f"| {c.name} | {c.frames} | {_pct(c.share_input)} → **{_pct(c.share_output)}** | "
                     f"{_num(c.prob_input)} → {_num(c.prob_output)} | {_num(c.jitter_ratio)} | {aus} |")
    return "\n".join(lines) + "\n"


__all__ = ["DEFAULT_CELLS", "MatrixCell", "class_names", "markdown_table", "matrix_cell"]
