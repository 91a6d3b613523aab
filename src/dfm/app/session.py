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
from dfm.errors import DfmError
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

    def video_decoder(self, track: FaceTrack, preset: str = "fast"):
        """A decoder trained on one video's own (VA, expression) pairs (the video as its own collection),
        blended with the universal FACS prior where its data is thin; cached beside the track."""
        from dfm.decoder import PersonDecoder

        folder = Path(track.meta["cache"]).with_suffix("") / f"decoder-{preset}"
        if (folder / "card.json").exists():
            try:
                return PersonDecoder.load(folder)
            except DfmError:  # written by an older decoder format: retrain below
                pass
        va, expr, frames = track_pairs(track)
        if len(va) < 50:
            return PersonDecoder.universal()
        dec = PersonDecoder(preset).fit(va, expr, video_ids=np.zeros(len(va), np.int64), frame_index=frames,
                                        data_info={"video_sha256": track.meta.get("source_sha256")})
        dec.save(folder, overwrite=True)
        return dec

    def plan(self, video: str | os.PathLike, edits, *, decoder=None, seed: int = 0,
             transition_frames: int = 20, preserve_speech: bool | None = None, smoothing: float | None = 0.1):
        """Per-frame target expression and edit weights for an edit list (see dfm.edits.make_plan)."""
        from dfm.edits import make_plan_for_track
        from dfm.io.audio import has_speech

        track = self.analyze(video)
        decoder = decoder if decoder is not None else self.video_decoder(track)
        if preserve_speech is None:
            preserve_speech = has_speech(video)
        return make_plan_for_track(track, edits, decoder.predict, seed=seed, transition_frames=transition_frames,
                                   preserve_speech=preserve_speech, smoothing=smoothing)

    def inspect(self, video: str | os.PathLike, out_dir: str | os.PathLike, overwrite: bool = False) -> dict[str, Path]:
        from dfm.app.inspection import write_inspection

        track = self.analyze(video)
        return write_inspection(video, track, self.models.model, out_dir, progress=self.progress, overwrite=overwrite)


def track_pairs(track: FaceTrack) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(VA (N,2), expression (N,53), frame index (N,)) of the frames with a face and an affect estimate."""
    if track.valence is None:
        return np.zeros((0, 2), np.float32), np.zeros((0, 53), np.float32), np.zeros(0, np.int64)
    ok = track.valid & np.isfinite(track.valence) & np.isfinite(track.arousal)
    va = np.stack([track.valence, track.arousal], 1)[ok]
    return va.astype(np.float32), track.expression[ok], np.flatnonzero(ok)


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
