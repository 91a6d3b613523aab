"""The neural renderer at inference: a trained generator renders edited frames, in order.

For each frame with a non-zero edit weight w, the target expression is the original moved w of the way
to the requested one, eye shapes kept (as the warp renderer: gaze and blinks stay the person's own);
the generator sees the conditioning of this frame and the 2 before it and the 2 crops shown before it
(its own outputs inside an edit, the real crops before one). The crop goes back into the frame with
`composite` (soft face mask, colour matching). Frames with weight 0 are returned as the input object.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from dfm.face.expressions import EXPRESSION_NAMES
from dfm.face.model import FaceModel
from dfm.face.track import FaceTrack
from dfm.render.neural.composite import composite
from dfm.render.neural.conditioning import Conditioning, FrameConditioning
from dfm.render.neural.generator import Generator
from dfm.render.renderer import EYE_SHAPES, FrameReport, RenderReport

__all__ = ["NeuralRenderer", "mix_target"]

_EYES = np.array([EXPRESSION_NAMES.index(n) for n in EYE_SHAPES], np.int64)


def mix_target(original: np.ndarray, target: np.ndarray, weight: float) -> np.ndarray:
    """original + weight * (target - original), eye shapes kept from the original."""
    t = np.asarray(target, np.float32).copy()
    o = np.asarray(original, np.float32)
    t[_EYES] = o[_EYES]
    w = float(np.clip(weight, 0.0, 1.0))
    return (o + w * (t - o)).astype(np.float32)


class NeuralRenderer:
    """model: face model; track: the video's FaceTrack; generator: trained `Generator` (eval mode);
    sigma: temporal smoothing of the crop (frames), as in training."""

    def __init__(self, model: FaceModel, track: FaceTrack, generator: Generator, sigma: float = 3.0,
                 device: str = "cpu"):
        self.generator = generator.eval()
        self.device = torch.device(device)
        self.size = generator.config.size
        self.track = track
        self.cond = Conditioning(model, track, self.size, sigma=sigma)
        self.report = RenderReport()
        self.reset()

    def reset(self) -> None:
        self._history: list[tuple[int, np.ndarray, np.ndarray]] = []  # (index, cond (S,S,6), shown crop uint8)
        self.report = RenderReport()

    def _remember(self, index: int, cond: FrameConditioning | np.ndarray, shown: np.ndarray) -> None:
        c = cond.stacked() if isinstance(cond, FrameConditioning) else cond
        self._history = [h for h in self._history if h[0] in (index - 1,)] + [(index, c, shown)]

    def observe(self, index: int, image: np.ndarray) -> None:
        """Record an unedited frame shown at `index` (its real crop and fitted conditioning)."""
        if not self.track.valid[index]:
            self._history = []
            return
        self._remember(index, self.cond.frame(index), self.cond.crop(index, image))

    @torch.no_grad()
    def generate(self, index: int, image: np.ndarray, expression: np.ndarray) -> tuple[np.ndarray, FrameConditioning]:
        """The generated (S, S, 3) uint8 crop of frame `index` showing `expression`, and its conditioning."""
        fc = self.cond.frame(index, expression)
        real = self.cond.crop(index, image)
        hist = {h[0]: h for h in self._history}
        conds, prevs = [], []
        for k in (index - 2, index - 1):
            if k in hist:
                conds.append(hist[k][1])
                prevs.append(hist[k][2])
            else:  # cold start: this frame's own conditioning and real crop stand in
                conds.append(fc.stacked())
                prevs.append(real)
        conds.append(fc.stacked())
        c = torch.from_numpy(np.stack(conds)).float().movedim(-1, 1).reshape(1, -1, self.size, self.size)
        p = torch.from_numpy(np.stack(prevs)).float().div(127.5).sub(1).movedim(-1, 1).reshape(1, -1, self.size, self.size)
        out = self.generator(torch.cat([c, p], 1).to(self.device))[0]
        crop = ((out.movedim(0, -1).cpu().numpy() + 1.0) * 127.5 + 0.5).clip(0, 255).astype(np.uint8)
        return crop, fc

    def render_frame(self, index: int, image: np.ndarray, target_expression: np.ndarray, weight: float,
                     keep_mask: np.ndarray | None = None, target_va: np.ndarray | None = None) -> np.ndarray:
        t0 = time.perf_counter()
        rep = FrameReport(index=int(index), weight=float(weight), edited=False)
        self.report.frames.append(rep)
        if not weight > 0.0 or not (0 <= index < self.track.n_frames) or not self.track.valid[index]:
            if 0 <= index < self.track.n_frames:
                self.observe(index, image)
            return image
        e = mix_target(self.track.expression[index], target_expression, weight)
        crop, fc = self.generate(index, image, e)
        out = composite(image, crop, fc.matrix, fc.blend)
        if keep_mask is not None:
            k = np.clip(np.asarray(keep_mask, np.float32), 0, 1)[..., None]
            out = np.clip(out + k * (image.astype(np.float32) - out) + 0.5, 0, 255).astype(np.uint8)
        self._remember(index, fc, crop)
        rep.edited = True
        rep.timings_ms["total"] = (time.perf_counter() - t0) * 1e3
        return out

    def render_video(self, frames: Iterable[Any], targets: np.ndarray, weights: np.ndarray,
                     target_va: np.ndarray | None = None) -> Iterator[Any]:
        """As WarpRenderer.render_video: one output per input frame, in order."""
        weights = np.asarray(weights, np.float32)
        for i, frame in enumerate(frames):
            is_array = isinstance(frame, np.ndarray)
            index = i if is_array else int(getattr(frame, "index", i))
            image = frame if is_array else frame.image
            if not weights[index] > 0.0:
                self.report.frames.append(FrameReport(index=index, weight=float(weights[index]), edited=False))
                if weights[index + 1:index + 3].max(initial=0.0) > 0.0 and self.track.valid[index]:
                    self.observe(index, image)
                yield frame
                continue
            out = self.render_frame(index, image, targets[index], float(weights[index]))
            # a frame left as it was comes back as the input object (its decoded planes, its timestamp)
            yield out if is_array else frame if out is image else frame.with_image(out)
