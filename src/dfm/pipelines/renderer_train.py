"""`dfm renderer train`: train the neural renderer (or the mouth refiner) on one video, with checkpoints.

Where: beside the video's cached track (`<track cache>/renderer-neural-<frames>-<size>/`, refiner:
`renderer-refiner-<frames>/`): `checkpoint.safetensors` (networks, optimiser moments, the sampler's RNG
state and the step: everything a resumed run needs), `card.json` (configuration, video hash, frames,
step, loss history, timings), and `samples/step_NNNNNN.png` grids (rows: NMFC, eye image, generated,
real) written at every checkpoint.

`--steps N` is the total: a run that finds a checkpoint with the same configuration continues from its
step up to N (a second call after an interruption resumes; a call with N <= the saved step does nothing
more). Ctrl-C saves a checkpoint before it stops. `--frames train` trains on the first 70 % of the
frames only (`dfm.eval.reenactment.split_frames`, the split `dfm evaluate` tests on); `all` on every frame.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from dfm.errors import InputError
from dfm.io.files import atomic_output, atomic_write_text
from dfm.render.neural.checkpoint import CARD, CHECKPOINT, load_generator

__all__ = ["RendererTrainOptions", "TrainResult", "renderer_dir", "train_neural_renderer", "load_generator",
           "build_training_data", "training_indices", "trained_renderer", "check_trained", "FRAME_SETS", "RESOLUTIONS", "DEVICES"]

FRAME_SETS = ("train", "all")
RESOLUTIONS = (64, 128, 256)
DEVICES = ("cpu", "cuda")


@dataclass
class RendererTrainOptions:
    steps: int = 2000
    device: str = "cpu"
    resolution: int = 64
    frames: str = "train"  # train | all
    split: float = 0.7
    seed: int = 0
    batch: int | None = None  # None: by resolution and device
    checkpoint_every: int = 200
    threads: int | None = None  # torch CPU threads (None: leave torch's setting)
    generator: dict[str, Any] = field(default_factory=dict)  # GeneratorConfig overrides
    d_channels: int | None = None
    crop_sigma: float = 3.0


@dataclass
class TrainResult:
    folder: Path
    step: int
    resumed_from: int
    losses: list[dict[str, float]]
    seconds: float
    samples: list[Path]

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "step": self.step, "resumed_from": self.resumed_from,
                "seconds": self.seconds, "samples": [str(p) for p in self.samples],
                "last_losses": self.losses[-1] if self.losses else None}


def renderer_dir(track, kind: str, frames: str, resolution: int | None = None) -> Path:
    """The folder of a trained renderer of this video (beside its cached track)."""
    base = Path(track.meta["cache"]).with_suffix("")
    return base / (f"renderer-{kind}-{frames}" + (f"-{resolution}" if resolution else ""))


def trained_renderer(track, kind: str, frames: Sequence[str] = ("all", "train")) -> Path | None:
    """The folder of this video's trained model of `kind` ("refiner" | "neural"; the neural one at the
    highest resolution trained), first found among the frame sets `frames`; None if there is none."""
    from dfm.render.neural.checkpoint import is_trained

    for f in frames:
        for res in ((None,) if kind == "refiner" else sorted(RESOLUTIONS, reverse=True)):
            folder = renderer_dir(track, kind, f, res)
            if is_trained(folder):
                return folder
    return None


def check_trained(name: str, track, frames: Sequence[str] = ("all", "train")) -> None:
    """InputError (one line naming the training command) when renderer `name` needs a model this video lacks."""
    from dfm.render.registry import RendererNotTrained, TRAIN_COMMANDS, needs_training

    kind = needs_training(name)
    if kind is not None and trained_renderer(track, kind, frames) is None:
        which = "" if tuple(frames) == ("all", "train") else f" (trained on --frames {'/'.join(frames)})"
        raise RendererNotTrained(f"the {name} renderer has no trained model for this video{which}; train it with "
                                 f"`{TRAIN_COMMANDS[name]}" + (" --frames train`" if tuple(frames) == ("train",) else "`"))


def training_indices(n_frames: int, frames: str, split: float = 0.7) -> np.ndarray:
    from dfm.eval.reenactment import split_frames

    if frames not in FRAME_SETS:
        raise InputError(f"--frames must be one of {', '.join(FRAME_SETS)}, got {frames!r}")
    return split_frames(n_frames, split)[0] if frames == "train" else np.arange(n_frames)


def check_options(options: RendererTrainOptions) -> None:
    import torch

    if options.resolution not in RESOLUTIONS:
        raise InputError(f"--resolution must be one of {', '.join(map(str, RESOLUTIONS))}, got {options.resolution}")
    if options.device not in DEVICES:
        raise InputError(f"--device must be cpu or cuda, got {options.device!r}")
    if options.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available on this machine (use --device cpu)")
    if options.steps < 1:
        raise InputError(f"--steps must be >= 1, got {options.steps}")
    if options.frames not in FRAME_SETS:
        raise InputError(f"--frames must be one of {', '.join(FRAME_SETS)}, got {options.frames!r}")


def build_training_data(model, track, frames: Callable[[int], np.ndarray], indices: np.ndarray, size: int,
                        sigma: float = 3.0, progress: bool = False):
    """TrainingData of the frames `indices` (sorted) at crop side `size`; `frames(i)` -> RGB frame i."""
    from tqdm import tqdm

    from dfm.render.neural.conditioning import COND_CHANNELS, Conditioning
    from dfm.render.neural.training import TrainingData

    cond = Conditioning(model, track, size, sigma=sigma)
    idx = np.asarray(indices, np.int64)
    n = len(idx)
    c = np.zeros((n, size, size, COND_CHANNELS), np.uint8)
    real = np.zeros((n, size, size, 3), np.uint8)
    fg = np.zeros((n, size, size), bool)
    mouth = np.zeros((n, 2), np.float32)
    valid = np.asarray(track.valid, bool)[idx].copy()
    for k, t in enumerate(tqdm(idx, desc="conditioning", unit="frame", disable=not progress, leave=False)):
        if not valid[k]:
            continue
        fc = cond.frame(int(t))
        c[k] = np.clip(fc.stacked() * 255.0 + 0.5, 0, 255).astype(np.uint8)
        real[k] = cond.crop(int(t), frames(int(t)))
        fg[k] = fc.foreground
        mouth[k] = fc.mouth_centre
    return TrainingData(cond=c, real=real, foreground=fg, mouth=mouth, frames=idx, valid=valid)


def _train_config(options: RendererTrainOptions):
    from dataclasses import replace

    from dfm.render.neural.generator import GeneratorConfig
    from dfm.render.neural.training import TrainConfig

    g = replace(GeneratorConfig.for_size(options.resolution, options.device), **options.generator)
    batch = options.batch or (8 if options.device == "cuda" else (4 if options.resolution <= 64 else 2))
    d_ch = options.d_channels or (64 if options.device == "cuda" else 32)
    return TrainConfig(generator=g, d_channels=d_ch, batch=batch, seed=options.seed)


def _save(trainer, folder: Path, card: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    with atomic_output(folder / CHECKPOINT, suffix=".safetensors") as tmp:
        save_file(trainer.state_tensors(), str(tmp), metadata={"format": "dfm-neural-renderer", "step": str(trainer.step_count)})
    atomic_write_text(folder / CARD, json.dumps(card, indent=2))


def _sample_grid(trainer, data, positions: np.ndarray) -> np.ndarray:
    """(4 S, k S, 3) uint8: per column one training frame; rows NMFC, eyes, generated (from the real
    previous frames), real."""
    import torch

    from dfm.render.neural.generator import generator_input
    from dfm.render.neural.training import _cond_tensor, to_tensor_images

    cols = []
    g = trainer.G
    was = g.training
    g.eval()
    with torch.no_grad():
        for p in positions:
            rows = np.arange(p - 2, p + 1)
            cond = _cond_tensor(data.cond[rows])[None].to(trainer.device)
            prev = to_tensor_images(data.real[rows[:2]])[None].to(trainer.device)
            out = g(generator_input(cond, prev))[0].movedim(0, -1).cpu().numpy()
            gen = ((out + 1) * 127.5 + 0.5).clip(0, 255).astype(np.uint8)
            cols.append(np.concatenate([data.cond[p][..., :3], data.cond[p][..., 3:], gen, data.real[p]], 0))
    g.train(was)
    return np.concatenate(cols, 1)


def _write_png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def train_neural_renderer(session, video: str | os.PathLike, options: RendererTrainOptions | None = None,
                          on_step: Callable[[int, dict[str, float]], None] | None = None) -> TrainResult:
    """Train (or resume) the neural renderer of `video` (see module doc)."""
    import torch
    from safetensors.torch import load_file
    from tqdm import tqdm

    from dfm import __version__
    from dfm.io.video import iter_frames
    from dfm.render.neural.training import NeuralTrainer, TrainConfig

    opts = options or RendererTrainOptions()
    check_options(opts)
    if opts.threads:
        torch.set_num_threads(int(opts.threads))
    video = Path(video)
    track = session.analyze(video)
    model = session.models.model
    idx = training_indices(track.n_frames, opts.frames, opts.split)
    stop = int(idx.max()) + 1
    wanted = set(idx.tolist())
    images = {f.index: f.image for f in iter_frames(video, 0, stop) if f.index in wanted}
    data = build_training_data(model, track, images.__getitem__, idx, opts.resolution, opts.crop_sigma,
                               progress=session.progress)
    config = _train_config(opts)
    folder = renderer_dir(track, "neural", opts.frames, opts.resolution)
    trainer = NeuralTrainer(config, data, device=opts.device)
    history: list[dict[str, float]] = []
    seconds = 0.0
    resumed = 0
    previous: list[Path] = []
    card_path = folder / CARD
    if (folder / CHECKPOINT).exists() and card_path.exists():
        card = json.loads(card_path.read_text())
        if card.get("config") == json.loads(json.dumps(config.to_dict())):
            trainer.load_state_tensors(load_file(str(folder / CHECKPOINT), device="cpu"))
            history = card.get("losses", [])
            seconds = float(card.get("seconds", 0.0))
            resumed = trainer.step_count
            previous = [folder / p for p in card.get("samples", [])]
        else:
            raise InputError(f"{folder} holds a renderer trained with other settings; delete the folder to start again")

    positions = data.starts(1)
    positions = positions[np.unique(np.linspace(0, len(positions) - 1, min(4, len(positions))).round().astype(int))]
    samples: list[Path] = list(previous)

    def card() -> dict[str, Any]:
        return {"kind": "neural", "format": 1, "dfm_version": __version__, "torch": torch.__version__,
                "video": str(video.resolve()), "video_sha256": track.meta.get("source_sha256"),
                "frames": opts.frames, "split": opts.split, "train_frames": [int(idx[0]), int(idx[-1]) + 1],
                "resolution": opts.resolution, "device": opts.device, "crop_sigma": opts.crop_sigma,
                "config": config.to_dict(), "step": trainer.step_count, "seconds": seconds,
                "steps_per_second": trainer.step_count / seconds if seconds > 0 else None,
                "losses": history, "samples": [str(p.relative_to(folder)) for p in samples]}

    def checkpoint() -> None:
        samples.append(_write_png(folder / "samples" / f"step_{trainer.step_count:06d}.png",
                                  _sample_grid(trainer, data, positions)))
        _save(trainer, folder, card())

    bar = tqdm(total=opts.steps, initial=min(trainer.step_count, opts.steps), desc=f"train neural renderer {video.name}",
               unit="step", disable=not session.progress, leave=False)
    acc: dict[str, list[float]] = {}
    try:
        while trainer.step_count < opts.steps:
            t0 = time.perf_counter()
            losses = trainer.step()
            seconds += time.perf_counter() - t0
            for k, v in losses.items():
                acc.setdefault(k, []).append(v)
            if on_step is not None:
                on_step(trainer.step_count, losses)
            bar.update(1)
            bar.set_postfix(l1=f"{losses['l1']:.3f}", d=f"{losses['d_total']:.2f}")
            if trainer.step_count % 10 == 0 or trainer.step_count == opts.steps:
                history.append({"step": trainer.step_count, **{k: float(np.mean(v)) for k, v in acc.items()}})
                acc = {}
            if trainer.step_count % opts.checkpoint_every == 0:
                checkpoint()
    except KeyboardInterrupt:
        checkpoint()
        raise
    finally:
        bar.close()
    if not samples or samples[-1].name != f"step_{trainer.step_count:06d}.png":  # the last step is saved once
        checkpoint()
    return TrainResult(folder, trainer.step_count, resumed, history, seconds, samples)
