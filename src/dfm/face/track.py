"""FaceTrack: everything the analysis stage knows about one video's face, stored as .npz + JSON header.

Camera convention (shared by fitting, NMFC and rendering): a point X of the ICT model (cm; +y up,
+z towards the viewer, +x = subject's left) lands at

    p = scale * rotation @ X + translation          (pixels: x right, y down; z = depth, larger = farther)

i.e. a scaled-orthographic ("weak perspective") camera. `rotation` is a proper rotation; a face looking
straight into the camera has rotation = diag(1, -1, -1). MediaPipe landmarks are stored in the same
pixel frame (x * width, y * height, z * width), so the fit compares like with like.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from dfm.errors import DfmError
from dfm.face.expressions import EXPRESSION_NAMES
from dfm.io.files import atomic_output, atomic_write_text

FACETRACK_FORMAT_VERSION = 1
FRONTAL = np.diag([1.0, -1.0, -1.0]).astype(np.float32)


@dataclass
class FaceTrack:
    """Per-video face analysis. Arrays are indexed by frame; invalid frames hold zeros/NaN and valid=False."""

    fps: float
    width: int
    height: int
    timestamps: np.ndarray  # (T,) seconds of each frame (variable frame rate kept)
    valid: np.ndarray  # (T,) bool: a face was tracked and fitted
    landmarks: np.ndarray  # (T, 478, 3) float32, pixel frame (see module doc)
    blendshapes: np.ndarray  # (T, 53) float32, MediaPipe's scores mapped to ICT columns
    rotation: np.ndarray  # (T, 3, 3) float32
    translation: np.ndarray  # (T, 3) float32, pixels
    scale: np.ndarray  # (T,) float32, pixels per cm
    expression: np.ndarray  # (T, 53) float32 in [0, 1]
    identity: np.ndarray  # (100,) float32, ICT identity weights (std-scaled modes)
    residual: np.ndarray  # (T,) float32, RMS 3-D landmark fit error in pixels
    valence: np.ndarray | None = None  # (T,) in [-1, 1], filled by the affect stage
    arousal: np.ndarray | None = None  # (T,)
    affect_probs: np.ndarray | None = None  # (T, C) class probabilities of the affect estimator
    meta: dict[str, Any] = field(default_factory=dict)  # versions, source file hash, estimator names...

    @property
    def n_frames(self) -> int:
        return int(self.valid.shape[0])

    @property
    def expression_names(self) -> tuple[str, ...]:
        return EXPRESSION_NAMES

    def frame_index_at(self, seconds: float) -> int:
        """Index of the frame shown at time `seconds` (the last frame starting at or before it)."""
        i = int(np.searchsorted(self.timestamps, seconds + 1e-6, side="right")) - 1
        return int(np.clip(i, 0, self.n_frames - 1))

    def project(self, vertices: np.ndarray, frame: int) -> np.ndarray:
        """Model-space vertices (V, 3) cm -> pixel frame (V, 3) with this frame's camera."""
        return project_vertices(vertices, self.rotation[frame], self.translation[frame], self.scale[frame])

    def save(self, path: str | os.PathLike) -> Path:
        """Write `path` (.npz) and `path` with .json header, atomically."""
        path = Path(path)
        arrays = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                arrays[f.name] = value
        header = {
            "format_version": FACETRACK_FORMAT_VERSION,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "n_frames": self.n_frames,
            "n_valid": int(self.valid.sum()),
            "expression_names": list(EXPRESSION_NAMES),
            "meta": self.meta,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
        atomic_write_text(path.with_suffix(".json"), json.dumps(header, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FaceTrack":
        path = Path(path)
        header = json.loads(path.with_suffix(".json").read_text())
        if header.get("format_version") != FACETRACK_FORMAT_VERSION:
            raise DfmError(
                f"{path} was written by an incompatible DFM version (format "
                f"{header.get('format_version')}, expected {FACETRACK_FORMAT_VERSION}); re-run `dfm analyze`"
            )
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        return cls(fps=header["fps"], width=header["width"], height=header["height"], meta=header["meta"], **arrays)


def project_vertices(vertices: np.ndarray, rotation: np.ndarray, translation: np.ndarray, scale: float) -> np.ndarray:
    """Scaled-orthographic projection of model points (V, 3) into the pixel frame (V, 3)."""
    return (scale * vertices @ np.asarray(rotation).T + translation).astype(np.float32)

