"""Figures and reports of a person's data and decoder.

- `plot_va_scatter`: the person's frames on the valence-arousal plane (the paper's Fig. 4a), coloured by
  video or by time, over the outlines of the label regions of dfm.affect.regions (Fig. 4b).
- `coverage_table` / `coverage_markdown` / `write_coverage`: frames per label region and intensity, and,
  once a decoder is trained, the share of the decoded expression that comes from the universal prior.
- `plot_decoder_strip`: a VA orbit (dfm.decoder.va_orbit) decoded by the person's decoder and rendered on
  the mean ICT face, frontal and shaded, with the VA point under each face (like the paper's Fig. 5).
- `training_markdown`: the training report of a decoder as Markdown.

Matplotlib runs headless (Agg); every file is written atomically.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dfm.affect import regions
from dfm.io.files import atomic_output, atomic_write_text

# One colour per label (outlines, label text); colour-blind-safe where it matters (Okabe-Ito palette).
LABEL_COLORS: dict[str, str] = {
    "neutral": "#777777",
    "happy": "#E69F00",
    "sad": "#0072B2",
    "surprise": "#CC79A7",
    "fear": "#009E73",
    "anger": "#D55E00",
    "disgust": "#8C6D1F",
}
# Albedo of the parts of the rendered mean face (RGB).
FACE_COLORS: dict[str, tuple[int, int, int]] = {
    "skin": (214, 196, 182),
    "mouth": (120, 62, 66),
    "teeth": (238, 236, 226),
    "eyeball": (236, 236, 236),
    "socket": (70, 60, 60),
}

IRIS_COLOR, PUPIL_COLOR = (96, 74, 58), (28, 22, 22)
IRIS_COS, PUPIL_COS = math.cos(math.radians(30)), math.cos(math.radians(13))  # angular radii on the eyeball


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    plt = _plt()
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png", facecolor="white")
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------- label regions

def label_of(va: Sequence[float], near: float = 0.25) -> str:
    """Name of the region a VA point falls in ('happy high', 'neutral'); between regions, the nearest
    label within `near` as '(near sad)', else '(no label)'."""
    p = np.asarray(va, np.float64).reshape(1, 2)
    if regions.region_for("neutral", None).contains(p)[0]:
        return "neutral"
    best, dist = None, np.inf
    for label in regions.LABELS[1:]:
        for level in regions.INTENSITY_LEVELS:
            reg = regions.region_for(label, level)
            if reg.contains(p)[0]:
                return f"{label} {level}"
            d = float(reg.distance(p)[0])
            if d < dist:
                best, dist = label, d
    return f"(near {best})" if best is not None and dist <= near else "(no label)"


def _sector_outline(region: regions.VARegion, n: int = 48) -> np.ndarray:
    """(M, 2) closed polyline of an annular sector (or a circle for the neutral disc)."""
    if region.is_full_circle:
        t = np.linspace(0, 2 * math.pi, 4 * n)
        return region.radius_max * np.stack([np.cos(t), np.sin(t)], 1)
    t = np.linspace(region.angle_min, region.angle_max, n)
    outer = region.radius_max * np.stack([np.cos(t), np.sin(t)], 1)
    inner = region.radius_min * np.stack([np.cos(t[::-1]), np.sin(t[::-1])], 1)
    return np.concatenate([outer, inner, outer[:1]])


def draw_va_regions(ax, *, text: bool = True, fontsize: float = 8.5, lw: float = 1.0, alpha: float = 0.9,
                    levels: bool = True) -> None:
    """Outline every label's region (each intensity band) and the neutral disc on a VA axes; name them."""
    t = np.linspace(0, 2 * math.pi, 200)
    ax.plot(np.cos(t), np.sin(t), color="#bbbbbb", lw=0.6, ls=":", zorder=1)
    ax.axhline(0, color="#cccccc", lw=0.5, zorder=0)
    ax.axvline(0, color="#cccccc", lw=0.5, zorder=0)
    neutral = regions.region_for("neutral", None)
    xy = _sector_outline(neutral)
    ax.plot(xy[:, 0], xy[:, 1], color=LABEL_COLORS["neutral"], lw=lw, alpha=alpha, zorder=3)
    for label in regions.LABELS[1:]:
        color = LABEL_COLORS.get(label, "k")
        for level in (regions.INTENSITY_LEVELS if levels else {"medium": 0.5}):
            reg = regions.region_for(label, level)
            if not levels:
                reg = regions.VARegion(label, 0.5, reg.angle_min, reg.angle_max, regions.NEUTRAL_RADIUS, 1.0)
            xy = _sector_outline(reg)
            ax.plot(xy[:, 0], xy[:, 1], color=color, lw=lw, alpha=alpha, zorder=3)
        if text:
            reg = regions.region_for(label, "high")
            mid = 0.5 * (reg.angle_min + reg.angle_max)
            r = 1.09
            ha = "left" if math.cos(mid) > 0.25 else ("right" if math.cos(mid) < -0.25 else "center")
            va_ = "bottom" if math.sin(mid) > 0.25 else ("top" if math.sin(mid) < -0.25 else "center")
            ax.text(r * math.cos(mid), r * math.sin(mid), label, color=color, fontsize=fontsize, ha=ha, va=va_,
                    fontweight="bold", zorder=5)
    if text:
        ax.text(0, -regions.NEUTRAL_RADIUS - 0.02, "neutral", color=LABEL_COLORS["neutral"], fontsize=fontsize * 0.85,
                ha="center", va="top", zorder=5,
                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.6))


# ------------------------------------------------------------------------------------------ scatter

def plot_va_scatter(va: np.ndarray, path: str | os.PathLike, *, video_id: np.ndarray | None = None,
                    video_names: Sequence[str] | None = None, times: np.ndarray | None = None,
                    color_by: str = "auto", title: str | None = None, max_points: int = 60_000) -> Path:
    """The person's frames in the VA plane over the label regions (paper Fig. 4a) -> PNG.

    color_by: "video" (one colour per video, legend with frame counts), "time" (time within the video,
    needs `times`), or "auto" (video when there are several, else time).
    """
    plt = _plt()
    va = np.asarray(va, np.float64).reshape(-1, 2)
    n = va.shape[0]
    vid = np.zeros(n, np.int64) if video_id is None else np.asarray(video_id).reshape(-1)
    n_videos = int(vid.max()) + 1 if n else 1
    if color_by == "auto":
        color_by = "video" if n_videos > 1 or times is None else "time"
    if color_by not in ("video", "time"):
        raise ValueError(f"color_by must be 'video', 'time' or 'auto', got {color_by!r}")
    if color_by == "time" and times is None:
        raise ValueError("color_by='time' needs the frame times")
    order = np.arange(n)
    if n > max_points:  # a random subset keeps the file small; counts in the legend stay exact
        order = np.sort(np.random.default_rng(0).choice(n, max_points, replace=False))
    size = float(np.clip(20000.0 / max(len(order), 1), 2.0, 16.0))
    alpha = float(np.clip(1500.0 / max(len(order), 1), 0.15, 0.8))

    fig, ax = plt.subplots(figsize=(7.4, 7.0))
    draw_va_regions(ax)
    if color_by == "video":
        cmap = plt.get_cmap("tab10")
        for k in range(n_videos):
            sel = order[vid[order] == k]
            name = video_names[k] if video_names is not None and k < len(video_names) else f"video {k}"
            ax.scatter(va[sel, 0], va[sel, 1], s=size, alpha=alpha, color=cmap(k % 10), lw=0, zorder=2,
                       rasterized=True, label=f"{name} ({int((vid == k).sum())} frames)")
        leg = ax.legend(loc="lower right", fontsize=8, markerscale=max(1.0, 6.0 / math.sqrt(size)), framealpha=0.9)
        for h in leg.legend_handles:
            h.set_alpha(1.0)
    else:
        t = np.asarray(times, np.float64).reshape(-1)
        sc = ax.scatter(va[order, 0], va[order, 1], s=size, c=t[order], cmap="viridis", alpha=min(1.0, alpha * 1.5),
                        lw=0, zorder=2, rasterized=True)
        cb = fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.03)
        cb.set_label("time in the video (s)")
        cb.solids.set_alpha(1.0)
    if n:
        mean = va.mean(axis=0)
        ax.plot(*mean, marker="+", color="k", ms=12, mew=2, zorder=6)
        ax.annotate("mean", mean, xytext=(6, 6), textcoords="offset points", fontsize=8, zorder=6)
    ax.set_xlim(-1.32, 1.32)
    ax.set_ylim(-1.18, 1.18)
    ax.set_aspect("equal")
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    ax.set_title(title or f"{n} frames in the valence-arousal plane", fontsize=11)
    ax.grid(alpha=0.15)
    return _save(fig, path)


# ----------------------------------------------------------------------------------------- coverage

def coverage_table(va: np.ndarray, decoder: Any = None) -> dict[str, Any]:
    """Per label and intensity: frames inside the region, their share of all frames, and — given a fitted
    PersonDecoder — the share of the decoded expression there that comes from the person's data and from
    the universal prior (mean blend weight over the region)."""
    va = np.asarray(va, np.float64).reshape(-1, 2)
    counts = regions.coverage(va)
    n = int(np.isfinite(va).all(axis=1).sum())
    levels = {}
    if decoder is not None:
        rep = decoder.coverage_report()
        levels = {(r.label, r.intensity): r for r in rep.levels}
        summary = {r.label: r for r in rep.labels}
    rows = []
    for label in regions.LABELS:
        for level in ([None] if label == "neutral" else list(regions.INTENSITY_LEVELS)):
            k = counts["neutral"]["all"] if label == "neutral" else counts[label][level]
            row: dict[str, Any] = {"label": label, "intensity": level, "frames": int(k),
                                   "frame_share": k / n if n else 0.0}
            if decoder is not None:
                r = levels.get((label, level))
                row["data_share"] = None if r is None else r.data_share
                row["prior_share"] = None if r is None else 1.0 - r.data_share
                row["source"] = None if r is None else r.source
            rows.append(row)
    out: dict[str, Any] = {"n_frames": n, "rows": rows, "unassigned": int(counts["unassigned"]["all"])}
    if decoder is not None:
        out["labels"] = [{"label": lab, "frames": int(r.n_pairs), "data_share": r.data_share,
                          "prior_share": 1.0 - r.data_share, "source": r.source} for lab, r in summary.items()]
    return out


def coverage_markdown(table: dict[str, Any], title: str | None = None) -> str:
    """The coverage table as Markdown (also what `dfm person dataset` prints)."""
    blend = "labels" in table
    head = ["label", "intensity", "frames", "% of frames"] + (["from data", "prior blend", "decoded from"] if blend else [])
    lines = [f"## {title}", ""] if title else []
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in table["rows"]:
        cells = [r["label"], r["intensity"] or "-", str(r["frames"]), f"{100 * r['frame_share']:.1f}"]
        if blend:
            ds = r.get("data_share")
            cells += ["?" if ds is None else f"{100 * ds:.0f}%", "?" if ds is None else f"{100 * (1 - ds):.0f}%",
                      r.get("source") or "?"]
        lines.append("| " + " | ".join(cells) + " |")
    n = table["n_frames"]
    lines.append("")
    lines.append(f"{n} frames in all; {table['unassigned']} ({100 * table['unassigned'] / max(n, 1):.1f}%) "
                 "fall in no label region (between sectors or outside the unit circle).")
    if blend:
        lines.append("")
        lines.append("Per label (all intensities): " + "; ".join(
            f"{r['label']} {100 * r['prior_share']:.0f}% prior" for r in table["labels"]) + ".")
        lines.append("'prior blend' = mean weight of the universal FACS prior in the decoded expression over "
                     "the region (0% = all from the person's data).")
    else:
        lines.append("")
        lines.append("No decoder trained yet: `dfm person train NAME` adds how much of each region the "
                     "person's data decodes and how much the universal prior fills in.")
    return "\n".join(lines) + "\n"


def write_coverage(table: dict[str, Any], folder: str | os.PathLike, title: str | None = None,
                   stem: str = "coverage") -> dict[str, Path]:
    """Write <stem>.md and <stem>.json into `folder`."""
    folder = Path(folder)
    md, js = folder / f"{stem}.md", folder / f"{stem}.json"
    atomic_write_text(md, coverage_markdown(table, title))
    atomic_write_text(js, json.dumps(table, indent=2))
    return {"coverage_md": md, "coverage_json": js}


# ---------------------------------------------------------------------------------- training report

def training_markdown(decoder: Any, title: str | None = None) -> str:
    """The decoder's training report (RMSE per split vs the mean-expression baseline, worst coefficients,
    time) and its coverage blend per label, as Markdown."""
    lines = [f"## {title}", ""] if title else []
    rep = decoder.report_
    if rep is None:
        lines.append("Universal FACS prior only (no person data).")
    else:
        lines += [
            "| | RMSE |", "|---|---|",
            f"| train | {rep.rmse_train:.4f} |",
            f"| validation | {rep.rmse_val:.4f} |",
            f"| validation, mean-expression baseline | {rep.rmse_val_baseline:.4f} |",
            "",
            f"- decoder: {rep.decoder}; {100 * rep.improvement_over_baseline:.0f}% below the baseline on validation",
            f"- pairs: {rep.n_pairs} ({rep.n_train} train, {rep.n_val} validation in time blocks of "
            f"{rep.split.get('block_frames', '?')} frames, {rep.n_dropped} purged next to them)",
            f"- training time: {rep.train_seconds:.1f} s" + (f", {rep.epochs} epochs (best {rep.best_epoch})"
                                                              if rep.epochs is not None else ""),
        ]
        if rep.selected:
            lines.append("- selected on validation: " + ", ".join(f"{k} = {v}" for k, v in rep.selected.items()))
        worst = rep.worst_coefficients(5)
        if worst:
            lines.append("- largest validation errors: " + ", ".join(f"{k} {v:.3f}" for k, v in worst))
    lines += ["", f"Neutral expression: {getattr(decoder, 'neutral_source_', '?')}.", "",
              "Coverage (share of the decoded expression from the person's data; the rest is the universal prior):", ""]
    lines += [f"- {line}" for line in decoder.coverage_report().lines()]
    return "\n".join(lines) + "\n"


def training_lines(decoder: Any) -> list[str]:
    """What `dfm person train` prints: RMSE train/val, baseline, time, blend per label."""
    rep = decoder.report_
    out = []
    if rep is not None:
        out.append(f"RMSE train {rep.rmse_train:.4f}, validation {rep.rmse_val:.4f} "
                   f"(mean-expression baseline {rep.rmse_val_baseline:.4f}, {100 * rep.improvement_over_baseline:.0f}% lower)")
        out.append(f"{rep.decoder} decoder, {rep.n_train} train / {rep.n_val} validation pairs "
                   f"(time blocks), {rep.train_seconds:.1f} s"
                   + (f", {rep.epochs} epochs (best {rep.best_epoch})" if rep.epochs is not None else ""))
    out.append("prior blend per label:")
    for r in decoder.coverage_report().labels:
        out.append(f"  {r.label:9s} {100 * (1 - r.data_share):4.0f}% prior  ({r.n_pairs} frames; {r.source})")
    return out


# ------------------------------------------------------------------------------------ mean-face strip

class MeanFaceRenderer:
    """Frontal, Lambert-shaded renders of the mean ICT face (no identity) with a given expression."""

    def __init__(self, model: Any, size: int = 240, margin: float = 0.08):
        from dfm.face.nmfc import NMFC_REGIONS, nmfc_triangles

        self.model = model
        self.size = int(size)
        self.triangles = nmfc_triangles(model)
        parts = {"Face": "skin", "Mouth socket": "mouth", "Gums and tongue": "mouth", "Teeth": "teeth",
                 "Eyeball left": "eyeball", "Eyeball right": "eyeball", "Eye socket left": "socket",
                 "Eye socket right": "socket"}
        counts = [len(model.triangles_of(model.region_faces(name))) for name in NMFC_REGIONS]
        if sum(counts) != len(self.triangles):  # layout of nmfc_triangles changed: one colour for all
            self.part = np.array(["skin"] * len(self.triangles))
        else:
            self.part = np.repeat(np.array([parts.get(n, "skin") for n in NMFC_REGIONS]), counts)
        # iris and pupil: eyeball points whose direction from the eyeball's centre is near the forward axis
        # (per vertex, so they follow the eyeball when a gaze blendshape rotates it)
        self.eye_forward = np.zeros(model.n_vertices, np.float32)
        for name in ("Eyeball left", "Eyeball right"):
            if name in model.region_names:
                idx = model.region_vertices(name)
                d = model.neutral[idx] - model.neutral[idx].mean(axis=0)
                self.eye_forward[idx] = d[:, 2] / np.maximum(np.linalg.norm(d, axis=1), 1e-9)
        # frame the inner face: the 68 landmarks (brows to chin, jaw line), widened a little and with some forehead
        lm = model.neutral[np.asarray(model.landmarks68, np.int64)]
        lo, hi = lm.min(axis=0).astype(np.float64), lm.max(axis=0).astype(np.float64)
        w, h = hi[0] - lo[0], hi[1] - lo[1]
        lo[0], hi[0] = lo[0] - margin * w, hi[0] + margin * w
        lo[1], hi[1] = lo[1] - margin * h, hi[1] + 2.5 * margin * h
        self.center = 0.5 * (lo + hi)
        self.scale = self.size / float(max(hi[0] - lo[0], hi[1] - lo[1]))

    def project(self, vertices: np.ndarray) -> np.ndarray:
        from dfm.face.track import FRONTAL, project_vertices

        c = self.size / 2.0
        s = self.scale
        # p = s R X + t with R = diag(1, -1, -1) puts the face centre at the image centre
        t = np.array([c - s * self.center[0], c + s * self.center[1], 1000.0 + s * self.center[2]], np.float32)
        return project_vertices(vertices, FRONTAL, t, s)

    def render(self, expression: np.ndarray | None, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
        """(size, size, 3) uint8 RGB."""
        from dfm.render.raster import rasterize
        from dfm.render.shading import render_shaded

        p = self.project(self.model.vertices(None, expression))
        ras = rasterize(p, self.triangles, self.size, self.size)
        out = np.empty((self.size, self.size, 3), np.uint8)
        out[:] = np.asarray(background, np.uint8)
        covered = ras.triangle >= 0
        pix_part = np.where(covered, self.part[np.maximum(ras.triangle, 0)], "")
        for part, color in FACE_COLORS.items():
            m = pix_part == part
            if m.any():
                img = render_shaded(p, self.triangles, self.size, self.size, color=color, ambient=0.35, raster=ras)
                out[m] = img[m]
        eye = pix_part == "eyeball"
        if eye.any():
            from dfm.render.raster import interpolate

            forward = interpolate(ras, self.eye_forward, self.triangles)
            tint = np.ones(forward.shape + (3,), np.float32)
            base = np.asarray(FACE_COLORS["eyeball"], np.float32)
            tint[forward > IRIS_COS] = np.asarray(IRIS_COLOR, np.float32) / base
            tint[forward > PUPIL_COS] = np.asarray(PUPIL_COLOR, np.float32) / base
            out[eye] = np.clip(out[eye] * tint[eye], 0, 255).astype(np.uint8)
        return out


def plot_decoder_strip(decoder: Any, model: Any, path: str | os.PathLike, *, n: int = 12, radius: float = 0.8,
                       include_center: bool = True, face_px: int = 200, title: str | None = None) -> Path:
    """Decode a VA orbit (and the origin) and render each expression on the mean ICT face -> PNG strip,
    with the VA point, its label region and the prior blend weight under each face (cf. paper Fig. 5)."""
    from dfm.decoder import va_orbit

    plt = _plt()
    va = va_orbit(n, radius)
    if include_center:
        va = np.concatenate([np.zeros((1, 2), np.float32), va])
    expr = decoder.predict(va)
    try:
        prior_w = decoder.blend_weights(va)
    except Exception:  # a plain data decoder has no blend
        prior_w = None
    renderer = MeanFaceRenderer(model, size=face_px)
    faces = [renderer.render(e) for e in expr]
    crop = _common_crop(faces)
    cols = len(va)
    fig = plt.figure(figsize=(1.55 * cols, 3.35))
    gs = fig.add_gridspec(2, cols, height_ratios=[1.25, 1.0], hspace=0.05, wspace=0.06)
    t = np.linspace(0, 2 * math.pi, 100)
    for k in range(cols):
        ax = fig.add_subplot(gs[0, k])
        ax.imshow(faces[k][crop])
        ax.set_axis_off()
        ax2 = fig.add_subplot(gs[1, k])
        draw_va_regions(ax2, text=False, lw=0.5, alpha=0.55, levels=False)
        ax2.plot(radius * np.cos(t), radius * np.sin(t), color="#999999", lw=0.6, ls="--")
        ax2.plot(va[:, 0], va[:, 1], ".", color="#999999", ms=2)
        ax2.plot(va[k, 0], va[k, 1], "o", color="#d62728", ms=5, zorder=6)
        ax2.set_xlim(-1.05, 1.05)
        ax2.set_ylim(-1.05, 1.05)
        ax2.set_aspect("equal")
        ax2.set_xticks([])
        ax2.set_yticks([])
        for s in ax2.spines.values():
            s.set_color("#cccccc")
        v, a = (float(np.round(x, 2)) + 0.0 for x in va[k])  # + 0.0: no "-0.00"
        txt = f"V {v:+.2f}  A {a:+.2f}\n{label_of(va[k])}"
        if prior_w is not None:
            txt += f"\nprior {100 * float(prior_w[k]):.0f}%"
        ax2.set_xlabel(txt, fontsize=7, labelpad=2)
    fig.suptitle(title or "Decoded expressions along a valence-arousal orbit (mean ICT face)", fontsize=10, y=0.99)
    return _save(fig, path, dpi=150)


def _common_crop(images: list[np.ndarray], pad: int = 4) -> tuple[slice, slice]:
    """Bounding box of the non-background pixels over all images (same crop for every face)."""
    fg = np.zeros(images[0].shape[:2], bool)
    for im in images:
        fg |= (im != 255).any(axis=-1)
    ys, xs = np.nonzero(fg)
    if ys.size == 0:
        return slice(None), slice(None)
    h, w = fg.shape
    return (slice(max(0, ys.min() - pad), min(h, ys.max() + pad + 1)),
            slice(max(0, xs.min() - pad), min(w, xs.max() + pad + 1)))


# -------------------------------------------------------------------------------- person-level files

def write_dataset_figures(person: Any, data: Any, times: np.ndarray, folder: str | os.PathLike | None = None,
                          decoder: Any = None, color_by: str = "auto") -> dict[str, Path]:
    """va_scatter.png and coverage.md/.json of a person's dataset (in the person's folder by default);
    times: (N,) seconds of each pair within its video (`dfm.pipelines.person.dataset_times`)."""
    folder = Path(folder) if folder is not None else person.folder
    folder.mkdir(parents=True, exist_ok=True)

    affect = (person.analysis or {}).get("affect", "?")
    out = {"va_scatter": plot_va_scatter(
        data.va, folder / "va_scatter.png", video_id=data.video_id, video_names=person.video_names(),
        times=times, color_by=color_by,
        title=f"{person.name}: {data.va.shape[0]} frames of {len(person.videos)} video(s) in the VA plane "
              f"({affect} estimator)")}
    out.update(write_coverage(coverage_table(data.va, decoder), folder,
                              title=f"Coverage of the VA label regions: {person.name}"))
    return out
