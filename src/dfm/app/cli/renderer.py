"""`dfm renderer train`: train this video's neural renderer or mouth refiner.

Registered by `dfm.app.cli.main.build_parser` with `register(sub)`; the work is done by
`dfm.pipelines.renderer_train.train_neural_renderer` and `dfm.pipelines.refiner_train.train_refiner`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub) -> argparse.ArgumentParser:
    """Add the `renderer` command group to the `dfm` sub-command parsers `sub`."""
    from dfm.app.cli.main import _common_args

    p = sub.add_parser("renderer", help="train a video's neural renderer (Head2Head++-style) or mouth refiner")
    rsub = p.add_subparsers(dest="renderer_command", required=True, metavar="ACTION")
    t = rsub.add_parser(
        "train", help="train on one video (checkpoints beside its analysis; a second call resumes)",
        description="Train the neural renderer (default; used by --renderer neural) or, with --refiner, the mouth "
                    "refiner (--renderer warp+refine) on one video. --steps is the total: an interrupted run "
                    "resumes from its last checkpoint. Sample grids are written under the model's samples/ folder.")
    _common_args(t)
    t.add_argument("video", type=Path)
    t.add_argument("--refiner", action="store_true", help="train the mouth refiner of warp+refine instead")
    t.add_argument("--steps", type=int, default=None, help="total training steps (default: 2000 neural, 1500 refiner)")
    t.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="neural renderer: cpu (default) or cuda")
    t.add_argument("--resolution", type=int, default=64, choices=(64, 128, 256), help="neural renderer crop side (px)")
    t.add_argument("--frames", default="train", choices=("train", "all"),
                   help="train: the first 70%% of the frames (the split dfm evaluate tests on; default); all: every frame")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    from dfm.app.cli.parallel_args import add_parallel_arguments

    add_parallel_arguments(t)  # the video's analysis, when not cached
    t.set_defaults(handler=cmd_renderer_train)
    return p


def cmd_renderer_train(args: argparse.Namespace) -> int:
    from dfm.app.cli.main import _session

    session = _session(args)
    if args.refiner:
        from dfm.pipelines.refiner_train import RefinerTrainOptions, train_refiner

        opts = RefinerTrainOptions(frames=args.frames, seed=args.seed, threads=args.threads)
        if args.steps is not None:
            opts.steps = args.steps
        result = train_refiner(session, args.video, opts)
    else:
        from dfm.pipelines.renderer_train import RendererTrainOptions, train_neural_renderer

        opts = RendererTrainOptions(device=args.device, resolution=args.resolution, frames=args.frames, seed=args.seed,
                                    threads=args.threads)
        if args.steps is not None:
            opts.steps = args.steps
        result = train_neural_renderer(session, args.video, opts)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        kind = "mouth refiner" if args.refiner else "neural renderer"
        resumed = f" (resumed at step {result.resumed_from})" if result.resumed_from else ""
        print(f"{kind}: step {result.step}{resumed}, {result.seconds:.0f} s of training; model: {result.folder}")
        if result.samples:
            print(f"samples: {result.samples[-1]}")
    return 0
