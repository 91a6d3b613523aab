"""The one Python API behind the CLI and the web tool.

    from dfm import Session
    s = Session()                          # workspace from DFM_WORKSPACE or the user cache
    track = s.analyze("clip.mp4")          # FaceTrack, cached by content
    s.inspect("clip.mp4", "out/")          # overlay video + plots
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfm.analysis import AnalysisOptions, FaceModels, analyze_video, default_workspace
from dfm.assets import AssetStore
from dfm.face.expressions import EXPRESSION_NAMES
from dfm.face.track import FaceTrack


@dataclass
class Session:
    workspace: Path = field(default_factory=default_workspace)
    store: AssetStore = field(default_factory=AssetStore.from_env)
    progress: bool = True
    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)
    _models: FaceModels | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.workspace = Path(self.workspace)

    @property
    def models(self) -> FaceModels:
        if self._models is None:
            self._models = FaceModels.load(self.store)
        return self._models

    def analyze(self, video: str | os.PathLike, force: bool = False, identity: np.ndarray | None = None) -> FaceTrack:
        return analyze_video(video, self.workspace, self.store, self.analysis, identity=identity,
                             models=None if self._models is None else self._models,
                             progress=self.progress, force=force)

    def inspect(self, video: str | os.PathLike, out_dir: str | os.PathLike, overwrite: bool = False) -> dict[str, Path]:
        from dfm.app.inspection import write_inspection

        track = self.analyze(video)
        return write_inspection(video, track, self.models.model, out_dir, progress=self.progress, overwrite=overwrite)


def analysis_summary(track: FaceTrack) -> dict[str, Any]:
    """The machine-readable summary `dfm analyze --json` prints."""
    valid = track.valid
    mean_expr = track.expression[valid].mean(0) if valid.any() else np.zeros(len(EXPRESSION_NAMES))
    out: dict[str, Any] = {
        "video": track.meta.get("source"),
        "frames": track.n_frames,
        "valid_frames": int(valid.sum()),
        "fps": track.fps,
        "width": track.width,
        "height": track.height,
        "duration": float(track.timestamps[-1] + 1.0 / track.fps) if track.n_frames else 0.0,
        "seconds": track.meta.get("seconds", {}),
        "cached": bool(track.meta.get("cached", False)),
        "track": track.meta.get("cache"),
        "mean_residual_px": float(np.nanmean(track.residual[valid])) if valid.any() else None,
        "mean_expression": {n: round(float(v), 4) for n, v in zip(EXPRESSION_NAMES, mean_expr)},
    }
    if track.valence is not None:
        ok = valid & ~np.isnan(track.valence)
        out["affect_estimator"] = track.meta.get("affect_estimator")
        out["mean_valence"] = float(track.valence[ok].mean()) if ok.any() else None
        out["mean_arousal"] = float(track.arousal[ok].mean()) if ok.any() else None
    return out
