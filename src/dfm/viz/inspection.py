"""Inspection outputs for an analysed video: an overlay video and plots a person can check by eye.

overlay.mp4: [frame + landmarks | frame + fitted mesh (shaded, semi-transparent) | NMFC image] per frame.
expressions.png: the main expression coefficients over time; affect.png: valence/arousal over time.
contact_sheet.png: a few overlay frames in one image.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from dfm.face.model import FaceModel
from dfm.face.track import FaceTrack
from dfm.face.expressions import EXPRESSION_INDEX
from dfm.io.files import atomic_output

MAIN_CURVES = ("mouthSmile_L", "mouthSmile_R", "mouthFrown_L", "jawOpen", "browInnerUp_L", "browDown_L",
               "eyeBlink_L", "eyeWide_L", "cheekSquint_L", "mouthStretch_L")


def overlay_panels(model: FaceModel, track: FaceTrack, index: int, image: np.ndarray) -> np.ndarray:
    """One inspection frame: three panels side by side, same height as the video frame."""
    from dfm.face.nmfc import nmfc_triangles, render_nmfc_projected
    from dfm.render.shading import render_shaded

    h, w = image.shape[:2]
    left = image.copy()
    mid = image.copy()
    right = np.zeros_like(image)
    if track.valid[index]:
        for x, y, _ in track.landmarks[index, :468:2]:
            cv2.circle(left, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1, lineType=cv2.LINE_AA)
        verts = track.project(model.vertices(track.identity, track.expression[index]), index)
        nm = render_nmfc_projected(model, verts, h, w)
        shaded = render_shaded(verts, nmfc_triangles(model), h, w, raster=nm.raster)
        m = nm.foreground
        mid[m] = (0.45 * image[m] + 0.55 * shaded[m]).astype(np.uint8)
        right = (nm.image * 255).astype(np.uint8)
    else:
        cv2.putText(left, "no face", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 60, 60), 2)
    return np.concatenate([left, mid, right], axis=1)


def write_inspection(video: str | os.PathLike, track: FaceTrack, model: FaceModel, out_dir: str | os.PathLike,
                     progress: bool = True, overwrite: bool = False) -> dict[str, Path]:
    from tqdm import tqdm

    from dfm.io.video import VideoWriter, iter_frames, probe_video

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = probe_video(video)
    outputs = {"overlay": out_dir / "overlay.mp4", "expressions": out_dir / "expressions.png",
               "contact_sheet": out_dir / "contact_sheet.png"}
    sheet_frames = set(np.linspace(0, track.n_frames - 1, 8).round().astype(int).tolist())
    sheet: list[np.ndarray] = []
    width = 3 * info.width
    with VideoWriter(outputs["overlay"], width=width + width % 2, height=info.height + info.height % 2,
                     rate=info.rate, crf=20, overwrite=overwrite) as writer:
        for frame in tqdm(iter_frames(video), total=info.n_frames, desc="inspect", disable=not progress, leave=False):
            panels = overlay_panels(model, track, frame.index, np.asarray(frame.image))
            panels = np.pad(panels, ((0, info.height % 2), (0, width % 2), (0, 0)))
            writer.write(panels, timestamp=frame.timestamp)
            if frame.index in sheet_frames:
                sheet.append(cv2.resize(panels, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    _write_png(outputs["contact_sheet"], _grid(sheet, cols=2))
    plot_expression_curves(track, outputs["expressions"])
    if track.valence is not None:
        outputs["affect"] = out_dir / "affect.png"
        plot_affect(track, outputs["affect"])
    return outputs


def plot_expression_curves(track: FaceTrack, path: Path, names=MAIN_CURVES) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    expr = np.where(track.valid[:, None], track.expression, np.nan)
    for n in names:
        ax.plot(track.timestamps, expr[:, EXPRESSION_INDEX[n]], label=n, lw=1.2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("blendshape weight")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Fitted expression coefficients (ICT blendshapes)")
    ax.legend(ncol=5, fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    _save_figure(fig, path)


def plot_affect(track: FaceTrack, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 3.5))
    ax.plot(track.timestamps, track.valence, label="valence", color="tab:blue")
    ax.plot(track.timestamps, track.arousal, label="arousal", color="tab:red")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_title(f"Valence / arousal per frame ({track.meta.get('affect_estimator', '?')} estimator, smoothed)")
    ax.legend()
    ax.grid(alpha=0.3)
    _save_figure(fig, path)


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def _grid(images: list[np.ndarray], cols: int) -> np.ndarray:
    h, w = images[0].shape[:2]
    rows = -(-len(images) // cols)
    out = np.zeros((rows * h, cols * w, 3), np.uint8)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = im
    return out


def _write_png(path: Path, rgb: np.ndarray) -> None:
    with atomic_output(path) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
