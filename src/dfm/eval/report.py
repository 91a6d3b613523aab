"""Writing the evaluation: the Markdown table beside the paper's numbers, and the error heat maps (Fig. 9)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence


from dfm.eval.metrics import mask_outline
from dfm.io.files import atomic_output

# Solanki & Roussos 2022, Table 1 (self-reenactment, Head2Head++ renderer, 256x256 crops):
PAPER = {"A": {"apd": 15.54, "face_apd": 18.24, "mouth_apd": 18.68},
         "B": {"apd": 17.17, "face_apd": 20.98, "mouth_apd": 22.34}}
HEAT_VMAX = 60.0
VARIANT_TITLES = {
    "A": "A: fitted expression", "B": "B: decoded from (V, A)", "warp_A": "A, pure warp",
    "warp_B": "B, pure warp", "repose": "source re-posed",
}


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def reenactment_table(summary: dict[str, dict[str, float]], include_paper: bool = True,
                      variants: Sequence[str] = ("A", "B", "warp_A", "warp_B", "repose")) -> str:
    """Markdown: one row per setting/variant (ours) with the paper's row next to A and B."""
    lines = ["| setting | renderer | APD | Face-APD | Mouth-APD | PSNR (dB) | SSIM | frames |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for v in variants:
        if v not in summary:
            continue
        m = summary[v]
        setting = v[-1] if v.startswith("warp_") else (v if v in PAPER else "–")
        renderer = {"A": "DFM warp renderer", "B": "DFM warp renderer", "repose": "source re-posed, no edit"}.get(
            v, "pure warp (no retrieval)")
        lines.append(f"| {setting} | {renderer} | {_fmt(m['apd'])} | {_fmt(m['face_apd'])} | {_fmt(m['mouth_apd'])} | "
                     f"{_fmt(m['psnr'])} | {_fmt(m['ssim'], 3)} | {int(m['frames'])} |")
        if include_paper and v in PAPER:
            p = PAPER[v]
            lines.append(f"| {v} | paper (Head2Head++) | {p['apd']:.2f} | {p['face_apd']:.2f} | {p['mouth_apd']:.2f} | – | – | – |")
    return "\n".join(lines)


def write_heatmap(record: dict[str, Any], path: Path, variants: Sequence[str] = ("A", "B", "warp_A", "repose"),
                  vmax: float = HEAT_VMAX) -> Path:
    """One PNG for one test frame (the paper's Fig. 9): top row the ground truth and each variant's output,
    bottom row the ground truth with the metric masks outlined (face: green, mouth region: blue) and each
    variant's per-pixel error (RGB L2 distance, 0..vmax, 'jet' colour map)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [v for v in variants if v in record["outputs"]]
    ncols = 1 + len(shown)
    fig, axes = plt.subplots(2, ncols, figsize=(2.6 * ncols + 0.5, 5.6), squeeze=False)
    axes[0, 0].imshow(record["truth"])
    axes[0, 0].set_title(f"ground truth, frame {record['index']}", fontsize=8)
    gt = mask_outline(mask_outline(record["truth"], record["face_mask"], (0, 230, 0)), record["mouth_mask"], (40, 120, 255))
    axes[1, 0].imshow(gt)
    axes[1, 0].set_title("face mask / mouth region", fontsize=8)
    im = None
    for j, v in enumerate(shown, start=1):
        m = record["metrics"].get(v, {})
        setting = v[-1] if v.startswith("warp_") else ("A" if v == "repose" else v)
        axes[0, j].imshow(record["outputs"][v])
        axes[0, j].set_title(f"{VARIANT_TITLES.get(v, v)} (source f{record['source'].get(setting)})", fontsize=8)
        im = axes[1, j].imshow(record["errors"][v], cmap="jet", vmin=0.0, vmax=vmax)
        axes[1, j].set_title(f"APD {_fmt(m.get('apd'), 1)}  face {_fmt(m.get('face_apd'), 1)}  "
                             f"mouth {_fmt(m.get('mouth_apd'), 1)}", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if im is not None:
        cb = fig.colorbar(im, ax=list(axes[1]), fraction=0.015, pad=0.01)
        cb.set_label("RGB distance (0..255 units)", fontsize=7)
        cb.ax.tick_params(labelsize=7)
    path = Path(path)
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)
    return path
