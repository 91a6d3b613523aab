"""`--workers N` and `--ray [ADDRESS]`, the same on every command that analyses or renders a video."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfm.parallel import ParallelOptions


def add_parallel_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("parallel")
    g.add_argument("--workers", type=_positive, default=None, metavar="N",
                   help="processes for one video's chunks (default: the machine's cores; 1 = serial)")
    g.add_argument("--ray", nargs="?", const="", default=None, type=_ray_address, metavar="ADDRESS",
                   help="run the chunks on Ray: a cluster address (ray://host:10001, auto), or none for "
                        "DFM_RAY_ADDRESS or a local Ray instance; paths must be readable on every node")


def parallel_options(args: argparse.Namespace) -> ParallelOptions:
    ray = getattr(args, "ray", None)
    return ParallelOptions(workers=getattr(args, "workers", None), ray=ray is not None, ray_address=ray or None)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def _ray_address(text: str) -> str:
    # `--ray` takes an optional value, so in `--ray clips/` the inputs would silently become the address
    if text and Path(text).exists():
        raise argparse.ArgumentTypeError(
            f"{text!r} is a file or folder, not a Ray address: write --ray=ADDRESS, or put --ray after the inputs")
    return text
