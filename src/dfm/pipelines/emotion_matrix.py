"""The emotion matrix of `dfm evaluate --emotion-matrix` (figures: dfm.eval.emotion_matrix).

For one video, each cell edits the WHOLE video to one label at one intensity with the product's own job
(`Session.edit`, as `dfm edit` would, optionally with the person's collection), re-analyses the output
(tracking, fit, affect) and measures the cell. A contact sheet shows one frame (the middle of the video)
of the input and of every cell, so the figures can be checked by eye.

Files in the output folder: matrix/<label>_<intensity>.mp4 (+ sidecars), matrix/contact_sheet.png,
emotion_matrix.json, emotion_matrix.md.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dfm.errors import DfmError
from dfm.eval.emotion_matrix import DEFAULT_CELLS, MatrixCell, markdown_table, matrix_cell
from dfm.io.files import atomic_write_text


def prototype_aus(label: str) -> dict[str, tuple[str, ...]]:
    """'AU5 eyeWide' -> its ICT blendshapes, for each action unit of the label's EMFACS prototype."""
    from dfm.face.emfacs import prototype_shapes

    return {f"{au} {shapes[0].split('_')[0]}": shapes for au, shapes in prototype_shapes(label).items()}


def _cell_name(label: str, intensity: str | None) -> str:
    return label if intensity is None else f"{label}_{intensity}"


def run_emotion_matrix(session, video: str | os.PathLike, out_dir: str | os.PathLike,
                       cells: Sequence[tuple[str, str | None]] = DEFAULT_CELLS, *,
                       collection: Sequence[str | os.PathLike] = (), person: str | None = None, seed: int = 0,
                       overwrite: bool = False, keep_videos: bool = True) -> dict[str, Any]:
    """Edit, re-analyse and measure every (label, intensity) cell; returns the JSON document it wrote."""
    from dfm.edits import Edit, EditList
    from dfm.io.video import read_frame
    from dfm.pipelines.edit import EditOptions

    video, out = Path(video), Path(out_dir)
    folder = out / "matrix"
    folder.mkdir(parents=True, exist_ok=True)
    track = session.analyze(video)
    n = track.n_frames
    classes = list(track.meta.get("affect_classes") or [])
    mid = n // 2
    rows: list[MatrixCell] = []
    tiles = [("input", np.asarray(read_frame(video, mid).image))]
    decoder_report: dict[str, Any] = {}
    t0 = time.perf_counter()
    for label, intensity in cells:
        edits = EditList([Edit(0, n, label, intensity, unit="frames")])
        path = folder / f"{_cell_name(label, intensity)}.mp4"
        job = session.edit(video, edits, path, EditOptions(seed=seed, collection=list(collection), person=person,
                                                           overwrite=overwrite or path.exists()))
        decoder_report = job.report.get("decoder", {})
        plan = session.plan(video, edits, track=track, seed=seed)  # the weights only depend on the edit
        out_track = session.analyze(path)
        rows.append(matrix_cell(label, intensity, plan.weight, classes, track.affect_probs, out_track.affect_probs,
                                track.landmarks, track.valid, out_track.landmarks, out_track.valid,
                                track.expression, out_track.expression, prototype_aus(label)))
        tiles.append((rows[-1].name, np.asarray(read_frame(path, mid).image)))
        if not keep_videos:
            path.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    write_contact_sheet(tiles, folder / "contact_sheet.png", face_box(track, mid))
    doc = {
        "video": str(video.resolve()), "frames": n, "collection": [str(c) for c in collection], "person": person,
        "seed": seed, "affect_classes": classes, "decoder": decoder_report, "seconds": seconds,
        "contact_sheet": str((folder / "contact_sheet.png").relative_to(out)), "contact_frame": mid,
        "cells": [c.to_dict() for c in rows],
    }
    from dfm.pipelines.evaluate import to_jsonable

    atomic_write_text(out / "emotion_matrix.json", json.dumps(to_jsonable(doc), indent=2))
    atomic_write_text(out / "emotion_matrix.md", f"# Emotion matrix: {video.name}\n\n" + markdown_table(rows))
    return doc


def face_box(track, index: int, margin: float = 0.35) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) square box around the tracked face of frame `index` (None without a face)."""
    if not track.valid[index]:
        return None
    lm = np.asarray(track.landmarks[index])[:, :2]
    (x0, y0), (x1, y1) = lm.min(0), lm.max(0)
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    h, w = track.height, track.width
    side = min(side, h, w)
    bx = int(np.clip(cx - side / 2.0, 0, w - side))
    by = int(np.clip(cy - side / 2.0, 0, h - side))
    return bx, by, bx + int(side), by + int(side)


def write_contact_sheet(tiles: list[tuple[str, np.ndarray]], path: Path,
                        box: tuple[int, int, int, int] | None = None, size: int = 256, cols: int = 4) -> None:
    """Labelled tiles (cropped to `box`, scaled to `size` px) in rows of `cols`, written as PNG atomically."""
    import cv2

    from dfm.io.files import atomic_write_bytes

    imgs = []
    for name, img in tiles:
        if box is not None:
            img = img[box[1]:box[3], box[0]:box[2]]
        scale = size / max(img.shape[:2])
        im = np.ascontiguousarray(cv2.resize(img, (int(round(img.shape[1] * scale)), int(round(img.shape[0] * scale))),
                                             interpolation=cv2.INTER_AREA))
        cv2.putText(im, name, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(im, name, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        imgs.append(im)
    th, tw = imgs[0].shape[:2]
    rows = (len(imgs) + cols - 1) // cols
    canvas = np.zeros((rows * th, cols * tw, 3), np.uint8)
    for k, im in enumerate(imgs):
        r, c = divmod(k, cols)
        canvas[r * th:r * th + im.shape[0], c * tw:c * tw + im.shape[1]] = im[:th, :tw]
    ok, buf = cv2.imencode(".png", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DfmError(f"could not encode the contact sheet {path}")
    atomic_write_bytes(path, buf.tobytes())


__all__ = ["face_box", "prototype_aus", "run_emotion_matrix", "write_contact_sheet"]
