"""`dfm renderer train VIDEO --refiner`: train the mouth refiner (dfm.render.neural.refiner) on one video.

Self-supervised pairs: the training frames are cut into `folds` (5) contiguous blocks in time; for
every chosen frame j (at most `max_pairs`, evenly spaced) the warp renderer renders j from the training
frame i OUTSIDE j's block whose head pose is closest (the self-reenactment rig of `dfm.eval.reenactment`,
with a retrieval pool of the other blocks only, so neither j nor its neighbours are ever an exemplar),
towards j's fitted expression; the target is real frame j. (With 2 blocks, the first version, sources
were much farther from the targets than the protocol's, and the refiner learned to over-correct.) The refiner learns the residual that takes the warp output's
mouth crop to the real one (L1 + gradient L1 inside the feathered mouth region). The last 10 % of the
pairs (in time) are held out: the card reports the mouth-region APD of the warp output and of the
refined output on them.

Folder: `<track cache>/renderer-refiner-<frames>/` with checkpoint.safetensors, card.json and
samples/step_NNNNNN.png (rows: warp output, exemplar, target NMFC, refined, real). `--steps` is the
total; a run finding a checkpoint with the same configuration resumes it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dfm.errors import InputError
from dfm.pipelines.renderer_train import TrainResult, _write_png, renderer_dir, training_indices
from dfm.render.neural.checkpoint import CARD, CHECKPOINT, load_refiner

__all__ = ["RefinerTrainOptions", "RefinerPairs", "refiner_pairs", "train_refiner", "load_refiner"]


@dataclass
class RefinerTrainOptions:
    steps: int = 1500
    frames: str = "train"
    split: float = 0.7
    seed: int = 0
    batch: int = 8
    lr: float = 1e-3
    max_pairs: int = 600
    folds: int = 5
    checkpoint_every: int = 250
    threads: int | None = None
    channels: int = 16


@dataclass
class RefinerPairs:
    """Inputs and targets of the self-supervised pairs (N of them, crop side S)."""

    warp: np.ndarray  # (N, S, S, 3) uint8
    nmfc: np.ndarray  # (N, S, S, 3) uint8 (x 1/255)
    mouth: np.ndarray  # (N, S, S) bool
    region: np.ndarray  # (N, S, S) bool
    exemplar: np.ndarray  # (N, S, S, 3) uint8
    real: np.ndarray  # (N, S, S, 3) uint8
    target: np.ndarray  # (N,) frame j
    source: np.ndarray  # (N,) frame i

    def __len__(self) -> int:
        return len(self.target)


def refiner_pairs(model, track, frames: Callable[[int], np.ndarray], indices: np.ndarray, max_pairs: int,
                  size: int, progress: bool = False, folds: int = 5) -> RefinerPairs:
    """Build the pairs (see module doc) from the training frames `indices`."""
    from tqdm import tqdm

    from dfm.eval.reenactment import ProtocolConfig, SelfReenactment, select_sources
    from dfm.render.neural.conditioning import crop_frame
    from dfm.render.neural.refiner import MouthRefiner, MouthRefinerNet, RefinerConfig, refiner_inputs

    valid = np.asarray(track.valid, bool)
    idx = np.asarray(indices, np.int64)
    idx = idx[valid[idx]]
    if len(idx) < 8:
        raise InputError(f"the refiner needs at least 8 tracked training frames, this video has {len(idx)}")
    blocks = np.array_split(idx, max(2, min(int(folds), len(idx) // 4)))  # contiguous blocks of frames in time
    pick = idx[np.unique(np.linspace(0, len(idx) - 1, min(int(max_pairs), len(idx))).round().astype(int))]
    geometry = MouthRefiner(MouthRefinerNet(RefinerConfig(size=size)), model, track.identity)
    rows: dict[str, list] = {k: [] for k in ("warp", "nmfc", "mouth", "region", "exemplar", "real", "target", "source")}
    bar = tqdm(total=len(pick), desc="refiner pairs", unit="pair", disable=not progress, leave=False)
    expr = np.asarray(track.expression, np.float32)
    for block in blocks:
        targets = pick[np.isin(pick, block)]
        if not len(targets):
            continue
        sources = idx[~np.isin(idx, block)]  # the other blocks: their pixels and their pool only
        rig = SelfReenactment(model, track, frames, sources, ProtocolConfig())
        src, _ = select_sources(track, sources, targets, expr[targets])
        renderer = rig.renderers["A"]
        for j, i in zip(targets.tolist(), src.tolist()):
            bar.update(1)
            out = rig.render("A", j, i, expr[j])
            e = renderer.target_expression(j, expr[j], 1.0)
            inp = refiner_inputs(geometry, renderer, j, out, e)
            rows["warp"].append(inp.warp)
            rows["nmfc"].append(np.clip(inp.nmfc * 255 + 0.5, 0, 255).astype(np.uint8))
            rows["mouth"].append(inp.mouth)
            rows["region"].append(inp.region)
            rows["exemplar"].append(inp.exemplar)
            rows["real"].append(crop_frame(frames(j), inp.matrix, size))
            rows["target"].append(j)
            rows["source"].append(i)
    bar.close()
    order = np.argsort(np.asarray(rows["target"]))
    return RefinerPairs(**{k: np.asarray(v)[order] for k, v in rows.items()})


def _tensors(pairs: RefinerPairs, sel: np.ndarray):
    import torch

    from dfm.render.neural.refiner import RefinerInput

    x = torch.stack([RefinerInput(pairs.warp[k], pairs.nmfc[k].astype(np.float32) / 255, pairs.mouth[k], pairs.region[k],
                                  pairs.exemplar[k], np.zeros((2, 3))).tensor() for k in sel])
    real = torch.from_numpy(pairs.real[sel]).float().div(127.5).sub(1).movedim(-1, 1)
    return x, real


def _blend_masks(pairs: RefinerPairs, sel: np.ndarray, size: int, feather: float):
    import cv2
    import torch

    sig = max(feather * size, 0.5)
    m = np.stack([np.clip(cv2.GaussianBlur(pairs.region[k].astype(np.float32), (0, 0), sig), 0, 1) for k in sel])
    return torch.from_numpy(m)[:, None]


def _region_apd(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    d = np.linalg.norm(a.astype(np.float64) - b.astype(np.float64), axis=-1)
    return float(d[region].mean()) if region.any() else float("nan")


def train_refiner(session, video: str | os.PathLike, options: RefinerTrainOptions | None = None,
                  on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train (or resume) the mouth refiner of `video` (see module doc)."""
    import torch
    from safetensors.torch import load_file, save_file
    from tqdm import tqdm

    from dfm import __version__
    from dfm.eval.reenactment import VideoTrainingFrames
    from dfm.io.files import atomic_output, atomic_write_text
    from dfm.render.neural.losses import masked_l1
    from dfm.render.neural.refiner import MouthRefinerNet, RefinerConfig

    opts = options or RefinerTrainOptions()
    if opts.steps < 1:
        raise InputError(f"--steps must be >= 1, got {opts.steps}")
    if opts.threads:
        torch.set_num_threads(int(opts.threads))
    video = Path(video)
    track = session.analyze(video)
    model = session.models.model
    idx = training_indices(track.n_frames, opts.frames, opts.split)
    t_start = time.perf_counter()
    config = RefinerConfig(channels=opts.channels)
    folder = renderer_dir(track, "refiner", opts.frames)
    pairs_file = folder / f"pairs-{opts.max_pairs}-{opts.split}-{opts.folds}.npz"  # rendering them is the slow part: kept
    if pairs_file.exists():
        with np.load(pairs_file) as z:
            pairs = RefinerPairs(**{k: z[k] for k in z.files})
    else:
        reader = VideoTrainingFrames(video, int(idx.max()) + 1)
        pairs = refiner_pairs(model, track, reader, idx, opts.max_pairs, config.size, progress=session.progress,
                              folds=opts.folds)
        del reader
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_output(pairs_file, suffix=".npz") as tmp:
            np.savez(tmp, **{k: getattr(pairs, k) for k in RefinerPairs.__dataclass_fields__})
    t_pairs = time.perf_counter() - t_start
    n = len(pairs)
    n_hold = max(int(round(0.1 * n)), 1) if n >= 10 else 0
    train_sel = np.arange(n - n_hold)
    hold_sel = np.arange(n - n_hold, n)

    torch.manual_seed(opts.seed)
    net = MouthRefinerNet(config)
    opt = torch.optim.Adam(net.parameters(), lr=opts.lr)
    rng = torch.Generator().manual_seed(opts.seed)
    step = 0
    card_cfg = {"refiner": config.to_dict(), "batch": opts.batch, "lr": opts.lr, "seed": opts.seed,
                "max_pairs": opts.max_pairs, "folds": opts.folds, "split": opts.split}
    history: list[dict[str, float]] = []
    seconds = 0.0
    resumed = 0
    previous: list[Path] = []
    if (folder / CHECKPOINT).exists() and (folder / CARD).exists():
        card0 = json.loads((folder / CARD).read_text())
        if card0.get("config") != json.loads(json.dumps(card_cfg)):
            raise InputError(f"{folder} holds a refiner trained with other settings; delete the folder to start again")
        state = load_file(str(folder / CHECKPOINT), device="cpu")
        net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        st: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in state.items():
            if k.startswith("opt."):
                pid, key = k[4:].split(".", 1)
                st.setdefault(int(pid), {})[key] = v
        opt.load_state_dict({"state": st, "param_groups": opt.state_dict()["param_groups"]})
        rng.set_state(state["rng"].clone())
        step = resumed = int(state["step"][0])
        history = card0.get("losses", [])
        seconds = float(card0.get("seconds", 0.0))
        previous = [folder / p for p in card0.get("samples", [])]

    show = train_sel[np.unique(np.linspace(0, len(train_sel) - 1, min(6, len(train_sel))).round().astype(int))]
    samples: list[Path] = list(previous)

    def refined(sel: np.ndarray) -> np.ndarray:
        net.eval()
        with torch.no_grad():
            x, _ = _tensors(pairs, sel)
            r = net(x).movedim(1, -1).numpy() * 127.5
        net.train()
        m = _blend_masks(pairs, sel, config.size, config.feather)[:, 0].numpy()[..., None]
        return np.clip(pairs.warp[sel].astype(np.float32) + r * m + 0.5, 0, 255).astype(np.uint8)

    def held_out() -> dict[str, float]:
        if not len(hold_sel):
            return {}
        out = refined(hold_sel)
        w = np.mean([_region_apd(pairs.warp[k], pairs.real[k], pairs.region[k]) for k in hold_sel])
        r = np.mean([_region_apd(out[n_], pairs.real[k], pairs.region[k]) for n_, k in enumerate(hold_sel)])
        return {"pairs": int(len(hold_sel)), "mouth_region_apd_warp": float(w), "mouth_region_apd_refined": float(r)}

    def checkpoint() -> None:
        out = refined(show)
        grid = np.concatenate([np.concatenate([pairs.warp[k], pairs.exemplar[k], pairs.nmfc[k], out[n_], pairs.real[k]], 0)
                               for n_, k in enumerate(show)], 1)
        samples.append(_write_png(folder / "samples" / f"step_{step:06d}.png", grid))
        state = {f"net.{k}": v.detach().contiguous().clone() for k, v in net.state_dict().items()}
        for pid, s in opt.state_dict()["state"].items():
            for k, v in s.items():
                state[f"opt.{pid}.{k}"] = torch.as_tensor(v).detach().contiguous().clone()
        state["rng"] = rng.get_state().clone()
        state["step"] = torch.tensor([step], dtype=torch.int64)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_output(folder / CHECKPOINT, suffix=".safetensors") as tmp:
            save_file(state, str(tmp), metadata={"format": "dfm-mouth-refiner", "step": str(step)})
        card = {"kind": "refiner", "format": 1, "dfm_version": __version__, "torch": torch.__version__,
                "video": str(video.resolve()), "video_sha256": track.meta.get("source_sha256"), "frames": opts.frames,
                "split": opts.split, "train_frames": [int(idx[0]), int(idx[-1]) + 1], "config": card_cfg, "step": step,
                "pairs": int(n), "seconds": seconds, "seconds_pairs": t_pairs, "held_out": held_out(),
                "losses": history, "samples": [str(p.relative_to(folder)) for p in samples]}
        atomic_write_text(folder / CARD, json.dumps(card, indent=2))

    bar = tqdm(total=opts.steps, initial=min(step, opts.steps), desc=f"train mouth refiner {video.name}", unit="step",
               disable=not session.progress, leave=False)
    acc: list[float] = []
    net.train()
    try:
        while step < opts.steps:
            t0 = time.perf_counter()
            sel = train_sel[torch.randint(len(train_sel), (opts.batch,), generator=rng).numpy()]
            x, real = _tensors(pairs, sel)
            mask = _blend_masks(pairs, sel, config.size, config.feather)
            pred = x[:, :3] + net(x) * mask
            gx = lambda t: (t[..., :, 1:] - t[..., :, :-1], t[..., 1:, :] - t[..., :-1, :])  # noqa: E731
            (px, py), (rx, ry) = gx(pred), gx(real)
            loss = masked_l1(pred, real, mask) + 0.5 * (masked_l1(px, rx, mask[..., :, 1:]) + masked_l1(py, ry, mask[..., 1:, :]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            seconds += time.perf_counter() - t0
            acc.append(float(loss.detach()))
            if on_step is not None:
                on_step(step, acc[-1])
            bar.update(1)
            bar.set_postfix(loss=f"{acc[-1]:.4f}")
            if step % 10 == 0 or step == opts.steps:
                history.append({"step": step, "loss": float(np.mean(acc))})
                acc = []
            if step % opts.checkpoint_every == 0:
                checkpoint()
    except KeyboardInterrupt:
        checkpoint()
        raise
    finally:
        bar.close()
    if not samples or samples[-1].name != f"step_{step:06d}.png":  # the last step is saved once
        checkpoint()
    return TrainResult(folder, step, resumed, history, seconds, samples)
