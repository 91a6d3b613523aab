"""Reading trained renderer folders (checkpoint.safetensors + card.json) for inference."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["CHECKPOINT", "CARD", "load_generator", "load_refiner", "is_trained"]

CHECKPOINT = "checkpoint.safetensors"
CARD = "card.json"


def is_trained(folder: Path | None) -> bool:
    return folder is not None and (folder / CHECKPOINT).exists() and (folder / CARD).exists()


def load_generator(folder: Path, device: str = "cpu"):
    """(Generator in eval mode, card dict) of a trained neural renderer folder."""
    from safetensors.torch import load_file

    from dfm.render.neural.generator import Generator
    from dfm.render.neural.training import TrainConfig

    card = json.loads((folder / CARD).read_text())
    cfg = TrainConfig.from_dict(card["config"])
    g = Generator(cfg.generator)
    state = load_file(str(folder / CHECKPOINT), device="cpu")
    g.load_state_dict({k[2:]: v for k, v in state.items() if k.startswith("G.")})
    return g.to(device).eval(), card


def load_refiner(folder: Path):
    """(MouthRefinerNet in eval mode, card dict) of a trained refiner folder."""
    from safetensors.torch import load_file

    from dfm.render.neural.refiner import MouthRefinerNet, RefinerConfig

    card = json.loads((folder / CARD).read_text())
    net = MouthRefinerNet(RefinerConfig(**card["config"]["refiner"]))
    state = load_file(str(folder / CHECKPOINT), device="cpu")
    net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
    return net.eval(), card
