"""Decoder benchmark: training time and validation RMSE of `fast` and `paper` (and other candidates).

    .venv/bin/python benchmarks/bench_decoder.py                      # 50,000 synthetic pairs
    .venv/bin/python benchmarks/bench_decoder.py pairs.npz            # + a real person's dataset
    .venv/bin/python benchmarks/bench_decoder.py --paper-epochs 3 --candidates fast,fast-nw,mlp,paper

The paper preset (2-4096-2048-1024-512-128-64-53, batch 32, 1000 epochs) takes about a day on a 2-core
CPU, so it runs here with a capped epoch count (--paper-epochs, and --paper-max-seconds as a wall-clock
cap; both are printed). Every decoder is trained on the same time-block split and scored on the same
validation blocks; "noise floor" is the RMSE of the true map on those blocks (synthetic data only): no
decoder can beat it except by chance.

A real dataset file is an .npz with `va` (N, 2) (or `valence` and `arousal`), `expr` / `expression`
(N, 53), and optionally `video_ids` / `video_id` and `frame_index` / `frames` (N,).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from dfm.decoder import time_block_split
from dfm.decoder.kernel import KernelDecoder
from dfm.decoder.report import rmse
from dfm.decoder.synthetic import synthetic_pairs


def load_pairs(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        keys = set(z.files)

        def pick(*names):
            for n in names:
                if n in keys:
                    return np.asarray(z[n])
            return None

        va = pick("va")
        if va is None:
            v, a = pick("valence"), pick("arousal")
            if v is None or a is None:
                sys.exit(f"{path}: no 'va' (or 'valence' + 'arousal') array; has {sorted(keys)}")
            va = np.stack([v, a], 1)
        expr = pick("expr", "expression", "expressions")
        if expr is None:
            sys.exit(f"{path}: no 'expr' / 'expression' array; has {sorted(keys)}")
        vids = pick("video_ids", "video_id", "video")
        frames = pick("frame_index", "frames", "frame")
    n = va.shape[0]
    ok = np.isfinite(va).all(1) & np.isfinite(expr).all(1)
    out = {
        "va": va.astype(np.float32),
        "expr": expr.astype(np.float32),
        "video_ids": np.zeros(n, np.int64) if vids is None else vids.astype(np.int64),
        "frame_index": np.arange(n) if frames is None else frames.astype(np.int64),
    }
    return {k: v[ok] for k, v in out.items()}


def make(name: str, args) -> object:
    if name == "fast":
        return KernelDecoder()
    if name == "fast-nw":
        return KernelDecoder(degree=0)
    from dfm.decoder.mlp import MLPDecoder, PaperDecoder

    if name == "mlp":
        return MLPDecoder(num_threads=args.threads)
    if name == "paper":
        return PaperDecoder(epochs=args.paper_epochs, max_seconds=args.paper_max_seconds, num_threads=args.threads)
    sys.exit(f"unknown candidate {name!r}")


def run(title: str, data: dict, args, truth=None) -> None:
    split = time_block_split(data["video_ids"], data["frame_index"], 0.2, block_frames=args.block_frames)
    floor = None
    if truth is not None:
        floor = rmse(truth(data["va"][split.val]), data["expr"][split.val])
    print(f"\n== {title}: {data['va'].shape[0]} pairs, {len(np.unique(data['video_ids']))} videos; "
          f"split {split.train.size} train / {split.val.size} val / {split.dropped.size} purged "
          f"(blocks of {split.block_frames} frames)")
    head = f"{'decoder':<34}{'train s':>9}{'epochs':>8}{'val RMSE':>10}{'baseline':>10}"
    print(head + (f"{'floor':>9}" if floor is not None else ""))
    for name in args.candidates.split(","):
        dec = make(name.strip(), args)
        t0 = time.perf_counter()
        dec.fit(data["va"], data["expr"], video_ids=data["video_ids"], frame_index=data["frame_index"], split=split)
        wall = time.perf_counter() - t0
        rep = dec.report_
        label = name
        if name.startswith("fast"):
            label += f" (kernel deg {dec.degree}, h={dec.bandwidth_:.3f})"
        elif name == "paper":
            label += f" (capped: {args.paper_epochs} ep"
            label += f", {args.paper_max_seconds:.0f} s)" if args.paper_max_seconds else ")"
        elif name == "mlp":
            label += f" ({'-'.join(map(str, dec.hidden_sizes))}, bs {dec.batch_size})"
        epochs = "-" if rep.epochs is None else f"{rep.epochs}"
        line = f"{label:<34}{wall:>9.1f}{epochs:>8}{rep.rmse_val:>10.4f}{rep.rmse_val_baseline:>10.4f}"
        print(line + (f"{floor:>9.4f}" if floor is not None else ""), flush=True)
        if rep.epochs is not None and len(rep.history) > 1:
            curve = ", ".join(f"{h['rmse_val']:.4f}" for h in rep.history[:20])
            print(f"{'':<4}val RMSE by epoch: {curve}{' ...' if len(rep.history) > 20 else ''}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", nargs="?", type=Path, help="optional real dataset (.npz)")
    ap.add_argument("--n", type=int, default=50_000, help="synthetic pairs (default 50,000)")
    ap.add_argument("--candidates", default="fast,fast-nw,mlp,paper")
    ap.add_argument("--paper-epochs", type=int, default=2, help="epoch cap of the paper preset (paper: 1000)")
    ap.add_argument("--paper-max-seconds", type=float, default=900.0, help="wall-clock cap of the paper preset")
    ap.add_argument("--block-frames", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-synthetic", action="store_true", help="only the given dataset")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.skip_synthetic and args.dataset is None:
        ap.error("--skip-synthetic needs a dataset")
    if not args.skip_synthetic:
        syn = synthetic_pairs(args.n, seed=1)
        run("synthetic", {"va": syn.va, "expr": syn.expr, "video_ids": syn.video_ids, "frame_index": syn.frame_index},
            args, truth=syn.true_map)
    if args.dataset is not None:
        run(str(args.dataset), load_pairs(args.dataset), args)


if __name__ == "__main__":
    main()
