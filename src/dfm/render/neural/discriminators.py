"""Discriminators of the neural renderer (Head2Head++ / vid2vid): image, temporal and mouth.

All are pix2pixHD PatchGAN discriminators (4x4 stride-2 convolutions, LeakyReLU 0.2, instance norm)
that return every layer's output, so the generator can be trained with feature matching.

- Image D (`MultiScaleD`, 2 scales): conditioning of frame t (NMFC + eyes) + an image (real or generated).
- Temporal D (`MultiScaleD`, 2 scales): 3 consecutive frames and their NMFC images, stacked on channels
  (vid2vid's temporal discriminator; Head2Head++ also feeds optical flow, which needs a flow network
  we do not have: the stacked NMFC images carry the motion of the conditioning instead).
- Mouth D (`PatchD`): a square crop around the mouth of the image and of its NMFC image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PatchD", "MultiScaleD"]


class PatchD(nn.Module):
    """PatchGAN: (N, in_channels, H, W) -> list of feature maps, the last one the (N, 1, h, w) score."""

    def __init__(self, in_channels: int, channels: int = 32, n_layers: int = 3, max_channels: int = 256):
        super().__init__()
        blocks: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, channels, 4, 2, 2), nn.LeakyReLU(0.2, True))]
        c = channels
        for k in range(1, n_layers):
            nxt = min(c * 2, max_channels)
            blocks.append(nn.Sequential(nn.Conv2d(c, nxt, 4, 2, 2), nn.InstanceNorm2d(nxt), nn.LeakyReLU(0.2, True)))
            c = nxt
        nxt = min(c * 2, max_channels)
        blocks.append(nn.Sequential(nn.Conv2d(c, nxt, 4, 1, 2), nn.InstanceNorm2d(nxt), nn.LeakyReLU(0.2, True)))
        blocks.append(nn.Conv2d(nxt, 1, 4, 1, 2))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for b in self.blocks:
            x = b(x)
            out.append(x)
        return out


class MultiScaleD(nn.Module):
    """`n_scales` PatchDs on the input and its 2x, 4x... average-pooled copies -> list (per scale) of lists."""

    def __init__(self, in_channels: int, n_scales: int = 2, channels: int = 32, n_layers: int = 3):
        super().__init__()
        self.scales = nn.ModuleList(PatchD(in_channels, channels, n_layers) for _ in range(n_scales))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for k, d in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out
