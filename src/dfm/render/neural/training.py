"""One training step of the Head2Head++-style renderer, and its state as flat tensors (checkpoints).

Per step, `batch` sequences of `seq_len` consecutive frames are drawn (a seeded torch.Generator: the
draw is part of the saved state, so a resumed run takes the same next step). The generator renders
them in order, each frame from the conditioning of it and its 2 predecessors and the 2 previously
generated frames (for the first frame of a sequence: the real ones; after that its own outputs,
detached, as vid2vid trains). Then
- D step: image D (per frame), mouth D (per frame, mouth crops), temporal D (the sequence), LSGAN;
- G step: LSGAN against all three, feature matching (image + temporal D), L1 + `pyramid_l1` (the VGG
  stand-in), mouth L1, `temporal_l1` (the flow stand-in) — see losses.py.
Adam (2e-4, betas 0.5/0.999), as pix2pixHD.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from dfm.render.neural.conditioning import COND_CHANNELS
from dfm.render.neural.discriminators import MultiScaleD, PatchD
from dfm.render.neural.generator import Generator, GeneratorConfig, N_PREV_FRAMES, generator_input
from dfm.render.neural.losses import (feature_matching, lsgan_d, lsgan_g, masked_l1, pyramid_l1, temporal_l1)

__all__ = ["LossWeights", "TrainConfig", "TrainingData", "NeuralTrainer", "mouth_side", "to_tensor_images"]


@dataclass(frozen=True)
class LossWeights:
    gan: float = 1.0
    mouth_gan: float = 1.0
    temporal_gan: float = 1.0
    feature_matching: float = 10.0
    l1: float = 10.0
    pyramid: float = 10.0
    mouth_l1: float = 10.0
    temporal_l1: float = 5.0


@dataclass(frozen=True)
class TrainConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    d_channels: int = 32
    batch: int = 4
    seq_len: int = 3
    lr: float = 2e-4
    seed: int = 0
    weights: LossWeights = field(default_factory=LossWeights)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        d["generator"] = GeneratorConfig(**d["generator"])
        d["weights"] = LossWeights(**d["weights"])
        return cls(**d)


def mouth_side(size: int) -> int:
    """Side (crop px) of the square mouth crop the mouth D sees: 3/8 of the face crop, a multiple of 4."""
    return max(16, int(round(size * 3 / 8 / 4)) * 4)


@dataclass
class TrainingData:
    """Per-frame arrays of one video in crop coordinates (index = position, not frame number).

    cond (T, S, S, COND_CHANNELS) uint8 (x 1/255), real (T, S, S, 3) uint8, foreground (T, S, S) bool,
    mouth (T, 2) crop px centre, frames (T,) video frame indices, valid (T,) bool."""

    cond: np.ndarray
    real: np.ndarray
    foreground: np.ndarray
    mouth: np.ndarray
    frames: np.ndarray
    valid: np.ndarray

    def starts(self, seq_len: int) -> np.ndarray:
        """Positions p such that p-2 .. p+seq_len-1 are consecutive valid frames."""
        span = N_PREV_FRAMES + seq_len
        ok = []
        for p in range(N_PREV_FRAMES, len(self.frames) - seq_len + 1):
            sl = slice(p - N_PREV_FRAMES, p + seq_len)
            if self.valid[sl].all() and (np.diff(self.frames[sl]) == 1).all():
                ok.append(p)
        if not ok:
            raise ValueError(f"no run of {span} consecutive tracked frames to train on")
        return np.asarray(ok, np.int64)


def to_tensor_images(x: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, C) -> float (..., C, H, W) in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(x)).float().div_(127.5).sub_(1.0)
    return t.movedim(-1, -3)


def _cond_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0).movedim(-1, -3)


class NeuralTrainer:
    """Networks, optimisers and the data sampler of one training run (see module doc)."""

    def __init__(self, config: TrainConfig, data: TrainingData, device: str = "cpu"):
        self.config = config
        self.data = data
        self.device = torch.device(device)
        torch.manual_seed(config.seed)
        g = config.generator
        self.G = Generator(g).to(self.device)
        c = config.d_channels
        self.D_image = MultiScaleD(COND_CHANNELS + 3, 2, c).to(self.device)
        self.D_temporal = MultiScaleD(config.seq_len * (3 + 3), 2, c).to(self.device)
        self.D_mouth = PatchD(6, c, n_layers=2 if g.size <= 64 else 3).to(self.device)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=(0.5, 0.999))
        d_params = [*self.D_image.parameters(), *self.D_temporal.parameters(), *self.D_mouth.parameters()]
        self.opt_D = torch.optim.Adam(d_params, lr=config.lr, betas=(0.5, 0.999))
        self.rng = torch.Generator().manual_seed(config.seed)
        self.step_count = 0
        self._starts = torch.from_numpy(data.starts(config.seq_len))
        self.mouth_side = mouth_side(g.size)

    # ------------------------------------------------------------------------------------------ data
    def _batch(self) -> dict[str, torch.Tensor]:
        cfg = self.config
        pick = self._starts[torch.randint(len(self._starts), (cfg.batch,), generator=self.rng)].numpy()
        rows = pick[:, None] + np.arange(-N_PREV_FRAMES, cfg.seq_len)[None]  # (B, 2 + L)
        d = self.data
        return {"cond": _cond_tensor(d.cond[rows]).to(self.device),  # (B, 2+L, C, S, S)
                "real": to_tensor_images(d.real[rows]).to(self.device),  # (B, 2+L, 3, S, S)
                "fg": torch.from_numpy(d.foreground[rows]).float().unsqueeze(2).to(self.device),
                "mouth": torch.from_numpy(d.mouth[rows]).to(self.device)}

    def _mouth_crops(self, images: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Square crops (N, C, m, m) around `centres` (N, 2) crop px, shifted to stay inside."""
        m, s = self.mouth_side, images.shape[-1]
        out = []
        for img, c in zip(images, centres.detach().cpu().numpy()):
            x0 = int(np.clip(round(float(c[0]) - m / 2), 0, s - m))
            y0 = int(np.clip(round(float(c[1]) - m / 2), 0, s - m))
            out.append(img[:, y0:y0 + m, x0:x0 + m])
        return torch.stack(out)

    # ------------------------------------------------------------------------------------------ step
    def generate_sequence(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Render the batch's sequences in order -> (B, L, 3, S, S) (with gradients)."""
        cond, real = batch["cond"], batch["real"]
        prev = [real[:, 0], real[:, 1]]
        fakes = []
        for k in range(self.config.seq_len):
            t = k + N_PREV_FRAMES
            x = generator_input(cond[:, t - 2:t + 1], torch.stack(prev, 1))
            f = self.G(x)
            fakes.append(f)
            prev = [prev[1], f.detach()]
        return torch.stack(fakes, 1)

    def step(self) -> dict[str, float]:
        """One D step and one G step; returns the losses."""
        cfg, w = self.config, self.config.weights
        b = self._batch()
        L = cfg.seq_len
        fake = self.generate_sequence(b)  # (B, L, 3, S, S)
        real = b["real"][:, N_PREV_FRAMES:]
        cond = b["cond"][:, N_PREV_FRAMES:]
        nmfc = cond[:, :, :3] * 2 - 1
        mouth = b["mouth"][:, N_PREV_FRAMES:]
        flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
        B = real.shape[0]

        def image_in(img):
            return torch.cat([flat(cond), flat(img)], 1)

        def mouth_in(img):
            return self._mouth_crops(torch.cat([flat(img), flat(nmfc)], 1), flat(mouth))

        def temporal_in(img):
            return torch.cat([img.reshape(B, L * 3, *img.shape[-2:]), nmfc.reshape(B, L * 3, *img.shape[-2:])], 1)

        # ---- D
        fd = fake.detach()
        loss_d_img = lsgan_d(self.D_image(image_in(real)), self.D_image(image_in(fd)))
        loss_d_mouth = lsgan_d(self.D_mouth(mouth_in(real)), self.D_mouth(mouth_in(fd)))
        loss_d_tmp = lsgan_d(self.D_temporal(temporal_in(real)), self.D_temporal(temporal_in(fd)))
        loss_d = loss_d_img + loss_d_mouth + loss_d_tmp
        self.opt_D.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_D.step()

        # ---- G
        out_fake, out_real = self.D_image(image_in(fake)), self.D_image(image_in(real))
        tmp_fake, tmp_real = self.D_temporal(temporal_in(fake)), self.D_temporal(temporal_in(real))
        m_fake = self.D_mouth(mouth_in(fake))
        mouth_f = self._mouth_crops(flat(fake), flat(mouth))
        mouth_r = self._mouth_crops(flat(real), flat(mouth))
        losses = {
            "g_gan": lsgan_g(out_fake), "g_mouth_gan": lsgan_g(m_fake), "g_temporal_gan": lsgan_g(tmp_fake),
            "g_fm": feature_matching(out_real, out_fake) + feature_matching(tmp_real, tmp_fake),
            "l1": (flat(fake) - flat(real)).abs().mean(),
            "pyramid": pyramid_l1(flat(fake), flat(real)),
            "mouth_l1": (mouth_f - mouth_r).abs().mean(),
            "temporal_l1": temporal_l1(fake, real),
        }
        loss_g = (w.gan * losses["g_gan"] + w.mouth_gan * losses["g_mouth_gan"] + w.temporal_gan * losses["g_temporal_gan"]
                  + w.feature_matching * losses["g_fm"] + w.l1 * losses["l1"] + w.pyramid * losses["pyramid"]
                  + w.mouth_l1 * losses["mouth_l1"] + w.temporal_l1 * losses["temporal_l1"])
        self.opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_G.step()
        self.step_count += 1
        out = {k: float(v.detach()) for k, v in losses.items()}
        out.update({"g_total": float(loss_g.detach()), "d_total": float(loss_d.detach()),
                    "d_image": float(loss_d_img.detach()), "d_mouth": float(loss_d_mouth.detach()),
                    "d_temporal": float(loss_d_tmp.detach())})
        return out

    # ----------------------------------------------------------------------------------------- state
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything a resumed run needs, as a flat dict of CPU tensors (safetensors-compatible)."""
        out: dict[str, torch.Tensor] = {}
        for name, mod in self._modules().items():
            for k, v in mod.state_dict().items():
                out[f"{name}.{k}"] = v.detach().cpu().contiguous().clone()
        for name, opt in (("opt_G", self.opt_G), ("opt_D", self.opt_D)):
            for pid, st in opt.state_dict()["state"].items():
                for k, v in st.items():
                    out[f"{name}.{pid}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous().clone()
        out["rng"] = self.rng.get_state().clone()
        out["step"] = torch.tensor([self.step_count], dtype=torch.int64)
        return out

    def load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        for name, mod in self._modules().items():
            prefix = name + "."
            mod.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        for name, opt in (("opt_G", self.opt_G), ("opt_D", self.opt_D)):
            prefix = name + "."
            st: dict[int, dict[str, torch.Tensor]] = {}
            for k, v in state.items():
                if k.startswith(prefix):
                    pid, key = k[len(prefix):].split(".", 1)
                    st.setdefault(int(pid), {})[key] = v.to(self.device) if key != "step" else v
            opt.load_state_dict({"state": st, "param_groups": opt.state_dict()["param_groups"]})
        self.rng.set_state(state["rng"].clone())
        self.step_count = int(state["step"][0])

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D_image": self.D_image, "D_temporal": self.D_temporal, "D_mouth": self.D_mouth}
