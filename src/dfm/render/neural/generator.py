"""Head2Head++-style generator: conditioning of the current and previous frames + previously generated
frames -> the current frame's face crop.

Input (N, C, S, S), channels in this order: the conditioning (NMFC + eyes, `COND_CHANNELS` each, in
[0, 1]) of frames t-2, t-1, t, then the generated (or, where none was generated, real) crops of t-2, t-1
(RGB in [-1, 1]). Architecture as pix2pixHD's global generator / vid2vid's: a 7x7 stem, `n_down`
stride-2 convolutions (channels doubling up to `max_channels`), `n_res` residual blocks, as many
upsampling stages (nearest x2 + 3x3 convolution: no checkerboard artefacts of transposed convolutions),
a 7x7 head with tanh. Instance normalisation and ReLU; reflection padding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from dfm.render.neural.conditioning import COND_CHANNELS

__all__ = ["GeneratorConfig", "Generator", "N_COND_FRAMES", "N_PREV_FRAMES", "generator_input"]

N_COND_FRAMES = 3  # t-2, t-1, t
N_PREV_FRAMES = 2  # generated t-2, t-1


@dataclass(frozen=True)
class GeneratorConfig:
    size: int = 64
    base_channels: int = 32
    max_channels: int = 256
    n_down: int = 2
    n_res: int = 4

    @classmethod
    def for_size(cls, size: int, device: str = "cpu") -> "GeneratorConfig":
        """Defaults by resolution: CPU-sized at 64/128; Head2Head++'s 256 px shape on CUDA (64 base
        channels, 4 downsamplings, 9 residual blocks, as pix2pixHD's global generator)."""
        if device == "cuda" and size >= 256:
            return cls(size=size, base_channels=64, max_channels=512, n_down=4, n_res=9)
        if size >= 256:
            return cls(size=size, base_channels=32, max_channels=256, n_down=4, n_res=6)
        if size >= 128:
            return cls(size=size, base_channels=32, max_channels=256, n_down=3, n_res=4)
        return cls(size=size, base_channels=32, max_channels=128, n_down=2, n_res=4)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def in_channels(self) -> int:
        return N_COND_FRAMES * COND_CHANNELS + N_PREV_FRAMES * 3


class _ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch, affine=True), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    """(N, in_channels, S, S) -> (N, 3, S, S) in [-1, 1] (see module doc)."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        c = config.base_channels
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(config.in_channels, c, 7),
                                   nn.InstanceNorm2d(c, affine=True), nn.ReLU(True)]
        chans = [c]
        for _ in range(config.n_down):
            nxt = min(chans[-1] * 2, config.max_channels)
            layers += [nn.Conv2d(chans[-1], nxt, 3, stride=2, padding=1), nn.InstanceNorm2d(nxt, affine=True), nn.ReLU(True)]
            chans.append(nxt)
        layers += [_ResBlock(chans[-1]) for _ in range(config.n_res)]
        for k in range(config.n_down):
            a, b = chans[-1 - k], chans[-2 - k]
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1), nn.Conv2d(a, b, 3),
                       nn.InstanceNorm2d(b, affine=True), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, 3, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.config.in_channels:
            raise ValueError(f"generator input must have {self.config.in_channels} channels, got {tuple(x.shape)}")
        return self.net(x)


def generator_input(cond: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """cond (N, 3, COND_CHANNELS, S, S) of t-2, t-1, t in [0, 1]; prev (N, 2, 3, S, S) of t-2, t-1 in [-1, 1]
    -> (N, in_channels, S, S)."""
    n, _, _, h, w = cond.shape
    return torch.cat([cond.reshape(n, -1, h, w), prev.reshape(n, -1, h, w)], 1)
