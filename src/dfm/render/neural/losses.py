"""Losses of the neural renderer: least-squares GAN, feature matching, L1, and the stand-ins.

Head2Head++ (like pix2pixHD/vid2vid) also uses a VGG-19 perceptual loss and a FlowNet2 optical-flow loss.
Neither pretrained network is available here (nothing is downloaded), so:
- instead of the VGG loss: `pyramid_l1`, L1 over a 3-level image pyramid of the image AND of its x/y
  gradients (edges and texture at several scales, which is most of what the VGG loss adds over L1);
- instead of the flow loss: `temporal_l1`, L1 between the frame-to-frame differences of the generated and
  the real frames (the real motion, with no flow field in between), next to the temporal discriminator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["lsgan_d", "lsgan_g", "feature_matching", "pyramid_l1", "temporal_l1", "masked_l1"]


def _scores(outputs) -> list[torch.Tensor]:
    """The last map of each scale: accepts a PatchD output (list) or a MultiScaleD output (list of lists)."""
    if isinstance(outputs[0], torch.Tensor):
        return [outputs[-1]]
    return [o[-1] for o in outputs]


def _features(outputs) -> list[list[torch.Tensor]]:
    if isinstance(outputs[0], torch.Tensor):
        return [outputs]
    return outputs


def lsgan_d(real_out, fake_out) -> torch.Tensor:
    """Discriminator's least-squares loss: real -> 1, fake -> 0 (mean over scales)."""
    r, f = _scores(real_out), _scores(fake_out)
    return sum(0.5 * ((a - 1) ** 2).mean() + 0.5 * (b ** 2).mean() for a, b in zip(r, f)) / len(r)


def lsgan_g(fake_out) -> torch.Tensor:
    """Generator's least-squares loss: fake -> 1."""
    f = _scores(fake_out)
    return sum(((b - 1) ** 2).mean() for b in f) / len(f)


def feature_matching(real_out, fake_out) -> torch.Tensor:
    """pix2pixHD feature matching: L1 between D's intermediate features of real and fake (real detached)."""
    rs, fs = _features(real_out), _features(fake_out)
    total, n = 0.0, 0
    for r, f in zip(rs, fs):
        for a, b in zip(r[:-1], f[:-1]):
            total = total + F.l1_loss(b, a.detach())
            n += 1
    return total / max(n, 1)


def _grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def pyramid_l1(fake: torch.Tensor, real: torch.Tensor, levels: int = 3) -> torch.Tensor:
    """VGG stand-in (see module doc): L1 of images and their gradients over a `levels`-level pyramid."""
    total = 0.0
    a, b = fake, real
    for k in range(levels):
        if k:
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        gax, gay = _grad(a)
        gbx, gby = _grad(b)
        total = total + F.l1_loss(a, b) + F.l1_loss(gax, gbx) + F.l1_loss(gay, gby)
    return total / levels


def temporal_l1(fake_seq: torch.Tensor, real_seq: torch.Tensor) -> torch.Tensor:
    """Flow-loss stand-in: L1 between frame differences; sequences (N, L, 3, H, W), L >= 2."""
    return F.l1_loss(fake_seq[:, 1:] - fake_seq[:, :-1], real_seq[:, 1:] - real_seq[:, :-1])


def masked_l1(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 inside `mask` (N, 1, H, W) in [0, 1], normalised by the mask's area."""
    m = mask.expand_as(fake)
    return (m * (fake - real).abs()).sum() / m.sum().clamp_min(1.0)
