"""The mouth refiner (`--renderer warp+refine`): a small network that repairs the warp renderer's mouth.

Where the warp renderer is weakest is the mouth: teeth and the inner mouth come from another frame
(or a dark cavity), and the lip seams of the blend show. The refiner looks at a `REFINER_SIZE` (96) px
crop around the TARGET mouth (centre: the target mesh's lip landmarks under the frame's smoothed
camera; side: `MOUTH_SIDE_CM` of face at the camera's scale; rotated with the head's roll) and sees
  - the warp renderer's output there (3 channels),
  - the target mesh's NMFC image there and its inner-mouth mask (3 + 1),
  - the exemplar: the same crop of the pool frame the renderer retrieved the mouth from (3; the warp
    output itself when it used none),
and outputs a residual (tanh x `max_residual`), added inside the feathered mouth region of the NMFC
(lips, inner mouth, the skin right around them) and scaled by the edit weight.

No flicker: the residual is smoothed over time (exponential, `temporal` = weight of the new one,
restarted at every edit), in mouth-crop coordinates that follow the smoothed geometry.

It trains self-supervised on the video (`dfm.pipelines.refiner_train`): frame j rendered by the warp
renderer from another training frame i towards j's fitted expression; target: real frame j.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator

import cv2
import numpy as np
import torch
from torch import nn

from dfm.face.model import FaceModel
from dfm.face.nmfc import render_nmfc
from dfm.face.track import project_vertices
from dfm.render.neural.conditioning import compose_camera, crop_frame, similarity_matrix, uncrop

__all__ = ["REFINER_SIZE", "MOUTH_SIDE_CM", "RefinerConfig", "MouthRefinerNet", "MouthRefiner", "RefinerInput",
           "RefinedRenderer", "IN_CHANNELS"]

REFINER_SIZE = 96
MOUTH_SIDE_CM = 8.0  # mouth crop side in model cm (the mouth is ~5 cm wide)
IN_CHANNELS = 10


@dataclass(frozen=True)
class RefinerConfig:
    size: int = REFINER_SIZE
    channels: int = 16
    max_residual: float = 0.5  # residual bound in [-1, 1] image units (0.5 = 64 grey levels)
    temporal: float = 0.5  # weight of the new residual in the temporal smoothing (1 = none)
    feather: float = 0.04  # feather of the blend mask, fraction of the crop side

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Block(nn.Sequential):
    def __init__(self, a: int, b: int, stride: int = 1):
        super().__init__(nn.Conv2d(a, b, 3, stride, 1), nn.GroupNorm(4, b), nn.LeakyReLU(0.2, True))


class MouthRefinerNet(nn.Module):
    """A small U-Net: (N, IN_CHANNELS, S, S) in [-1, 1] -> residual (N, 3, S, S) in [-max, max]."""

    def __init__(self, config: RefinerConfig):
        super().__init__()
        c = config.channels
        self.config = config
        self.e0 = nn.Sequential(_Block(IN_CHANNELS, c), _Block(c, c))
        self.e1 = nn.Sequential(_Block(c, 2 * c, 2), _Block(2 * c, 2 * c))
        self.e2 = nn.Sequential(_Block(2 * c, 4 * c, 2), _Block(4 * c, 4 * c), _Block(4 * c, 4 * c))
        self.d1 = nn.Sequential(_Block(4 * c + 2 * c, 2 * c), _Block(2 * c, 2 * c))
        self.d0 = nn.Sequential(_Block(2 * c + c, c), nn.Conv2d(c, 3, 3, 1, 1))
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.e0(x)
        b = self.e1(a)
        c = self.e2(b)
        d = self.d1(torch.cat([self.up(c), b], 1))
        return torch.tanh(self.d0(torch.cat([self.up(d), a], 1))) * self.config.max_residual


@dataclass
class RefinerInput:
    """One mouth crop's inputs (uint8 / bool, crop coordinates) and where the crop lies in the frame."""

    warp: np.ndarray  # (S, S, 3) uint8: the warp renderer's output
    nmfc: np.ndarray  # (S, S, 3) float32 in [0, 1]: target mesh
    mouth: np.ndarray  # (S, S) bool: target inner mouth
    region: np.ndarray  # (S, S) bool: target mouth region (lips + around): where the residual goes
    exemplar: np.ndarray  # (S, S, 3) uint8
    matrix: np.ndarray  # (2, 3) frame -> crop

    def tensor(self) -> torch.Tensor:
        """(IN_CHANNELS, S, S) float in [-1, 1]."""
        w = self.warp.astype(np.float32) / 127.5 - 1
        e = self.exemplar.astype(np.float32) / 127.5 - 1
        x = np.concatenate([w, self.nmfc * 2 - 1, (self.mouth.astype(np.float32) * 2 - 1)[..., None], e], 2)
        return torch.from_numpy(np.ascontiguousarray(x)).movedim(-1, 0)


def mouth_matrix(model: FaceModel, identity: np.ndarray, expression: np.ndarray, rotation: np.ndarray,
                 translation: np.ndarray, scale: float, size: int = REFINER_SIZE) -> np.ndarray:
    """(2, 3) frame -> mouth crop: centred on the lip landmarks of the mesh (identity, expression) under
    the camera, side MOUTH_SIDE_CM x scale, rotated with the head's in-plane roll."""
    lips = model.landmarks68[48:68].astype(np.int64)
    v = model.vertices(identity, expression, index=lips)
    p = project_vertices(v, np.asarray(rotation, np.float32), np.asarray(translation, np.float32), float(scale))
    r = np.asarray(rotation, np.float64)
    roll = float(np.arctan2(r[1, 0], r[0, 0]))
    return similarity_matrix(p[:, :2].mean(0), MOUTH_SIDE_CM * float(scale), roll, size)


class MouthRefiner:
    """A trained MouthRefinerNet with the geometry around it. model: face model; identity (100,)."""

    def __init__(self, net: MouthRefinerNet, model: FaceModel, identity: np.ndarray, device: str = "cpu"):
        self.net = net.eval()
        self.model = model
        self.identity = np.asarray(identity, np.float32)
        self.size = net.config.size
        self.device = torch.device(device)
        self._prev: tuple[int, np.ndarray] | None = None  # (frame index, smoothed residual) of the last frame

    def reset(self) -> None:
        self._prev = None

    def inputs(self, image: np.ndarray, expression: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
               scale: float, exemplar: np.ndarray | None = None) -> RefinerInput:
        """The refiner's inputs for a warp output `image` (H, W, 3) showing `expression` (53,) under the
        camera; `exemplar` = (crop (h, w, 3) uint8, its (2, 3) matrix to the mouth crop) or None."""
        m = mouth_matrix(self.model, self.identity, expression, rotation, translation, scale, self.size)
        r, t, s = compose_camera(m, rotation, translation, scale)
        nm = render_nmfc(self.model, self.identity, expression, r, t, s, self.size, self.size)
        warp = crop_frame(image, m, self.size)
        ex = warp if exemplar is None else exemplar
        return RefinerInput(warp=warp, nmfc=nm.image.astype(np.float32), mouth=nm.mouth, region=nm.mouth_region,
                            exemplar=ex, matrix=m)

    def blend_mask(self, region: np.ndarray) -> np.ndarray:
        sig = max(self.net.config.feather * self.size, 0.5)
        """(S, S) float32 in [0, 1]: the mouth region feathered (the residual fades out at its edge)."""
        return np.clip(cv2.GaussianBlur(region.astype(np.float32), (0, 0), sig), 0, 1)

    @torch.no_grad()
    def residual(self, inp: RefinerInput) -> np.ndarray:
        """(S, S, 3) float32 residual in grey levels (0..255 scale)."""
        x = inp.tensor()[None].to(self.device)
        return self.net(x)[0].movedim(0, -1).cpu().numpy() * 127.5

    def apply(self, index: int, image: np.ndarray, inp: RefinerInput, weight: float = 1.0) -> np.ndarray:
        """`image` (H, W, 3) uint8 with the (temporally smoothed) residual added in the mouth region."""
        r = self.residual(inp)
        a = float(self.net.config.temporal)
        if self._prev is not None and self._prev[0] == index - 1 and a < 1.0:
            r = a * r + (1.0 - a) * self._prev[1]
        self._prev = (int(index), r)
        mask = self.blend_mask(inp.region) * float(np.clip(weight, 0, 1))
        h, w = image.shape[:2]
        big_r = uncrop(np.ascontiguousarray(r * mask[..., None]), inp.matrix, h, w)
        big_m = uncrop(mask, inp.matrix, h, w)
        ys, xs = np.nonzero(big_m > 1e-3)
        out = image.copy()
        if ys.size:
            y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            out[y0:y1, x0:x1] = np.clip(out[y0:y1, x0:x1].astype(np.float32) + big_r[y0:y1, x0:x1] + 0.5, 0, 255
                                        ).astype(np.uint8)
        return out


def exemplar_crop(renderer, model: FaceModel, identity: np.ndarray, size: int = REFINER_SIZE) -> np.ndarray | None:
    """The mouth crop of the pool frame the warp renderer just retrieved the mouth from (its last frame
    report), or None when it used the frame itself or nothing."""
    if not renderer.report.frames:
        return None
    rep = renderer.report.frames[-1]
    choice = rep.sources.get("mouth")
    if not choice:
        return None
    label = max(choice, key=lambda s: s[1])[0]
    if label < 0:
        return None
    video = rep.source_videos.get("mouth", "")
    pf = next((f for f in renderer.pool.frames if f.index == label and f.video == video), None)
    if pf is None:
        pf = next((f for f in renderer.pool.frames if f.index == label), None)
    if pf is None:
        return None
    lips = model.landmarks68[48:68].astype(np.int64)
    p = pf.project(model.vertices(identity, pf.expression, index=lips))
    r = np.asarray(pf.rotation, np.float64)
    m = similarity_matrix(p[:, :2].mean(0), MOUTH_SIDE_CM * float(pf.scale) * float(pf.crop_scale),
                          float(np.arctan2(r[1, 0], r[0, 0])), size)
    return crop_frame(pf.crop, m, size)


def refiner_inputs(refiner: MouthRefiner, renderer, index: int, image: np.ndarray, expression: np.ndarray) -> RefinerInput:
    """Inputs for the warp renderer's output `image` of frame `index` that shows `expression` (53,)."""
    g = renderer.geometry
    ex = exemplar_crop(renderer, refiner.model, refiner.identity, refiner.size)
    return refiner.inputs(image, expression, g.rotation[index], g.translation[index], float(g.scale[index]), ex)


class RefinedRenderer:
    """The warp renderer followed by the mouth refiner; same calls as WarpRenderer (render_frame,
    render_video, report, reset)."""

    def __init__(self, warp, refiner: MouthRefiner):
        self.warp = warp
        self.refiner = refiner

    @property
    def report(self):
        return self.warp.report

    def reset(self) -> None:
        self.warp.reset()
        self.refiner.reset()

    def render_frame(self, index: int, image: np.ndarray, target_expression: np.ndarray, weight: float,
                     keep_mask: np.ndarray | None = None, target_va: np.ndarray | None = None) -> np.ndarray:
        out = self.warp.render_frame(index, image, target_expression, weight, keep_mask=keep_mask, target_va=target_va)
        rep = self.warp.report.frames[-1] if self.warp.report.frames else None
        if out is image or rep is None or not rep.edited:
            self.refiner.reset()
            return out
        e = self.warp.target_expression(index, target_expression, weight)
        inp = refiner_inputs(self.refiner, self.warp, index, out, e)
        refined = self.refiner.apply(index, out, inp, weight)
        if keep_mask is not None:
            k = np.clip(np.asarray(keep_mask, np.float32), 0, 1)[..., None]
            refined = np.clip(refined + k * (image.astype(np.float32) - refined) + 0.5, 0, 255).astype(np.uint8)
        return refined

    def render_video(self, frames: Iterable[Any], targets: np.ndarray, weights: np.ndarray,
                     target_va: np.ndarray | None = None) -> Iterator[Any]:
        targets = np.asarray(targets, np.float32)
        weights = np.asarray(weights, np.float32)
        for i, frame in enumerate(frames):
            is_array = isinstance(frame, np.ndarray)
            index = i if is_array else int(getattr(frame, "index", i))
            image = frame if is_array else frame.image
            va = None if target_va is None else target_va[index]
            out = self.render_frame(index, image, targets[index], float(weights[index]), target_va=va)
            # a frame left as it was comes back as the input object (its decoded planes, its timestamp)
            yield out if is_array else frame if out is image else frame.with_image(out)
