"""Rasteriser / NMFC / shading throughput on the ICT face in a 640x360 frame (one core).

    python benchmarks/bench_raster.py [--repeat 50] [--face-width 260]

Prints, per back end (numba when installed, numpy always): rasterising the ICT Face region (~18k
triangles) at the given face width (Face region x extent, px), interpolating 3 channels, the full
render_nmfc (45k triangles: face, mouth interior, eyes; masks included) and render_shaded. Times are the
best and the median of --repeat runs, in ms of wall clock; the machine's load average is printed too,
since a shared machine inflates them. Not a timed test: it only prints.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: BLAS too
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from dfm.face.expressions import EXPRESSION_INDEX, N_EXPRESSIONS  # noqa: E402
from dfm.face.model import FaceModel  # noqa: E402
from dfm.face.nmfc import nmfc_triangles, render_nmfc  # noqa: E402
from dfm.face.track import FRONTAL, project_vertices  # noqa: E402
from dfm.render import raster as R  # noqa: E402
from dfm.render.shading import render_shaded  # noqa: E402

H, W = 360, 640


def model_path() -> Path:
    root = Path(os.environ.get("DFM_ASSETS", Path(__file__).resolve().parents[2] / "shared" / "models"))
    return root / "ict_facekit" / "ict_face_model.npz"


def timeit(fn, repeat: int) -> tuple[float, float]:
    fn()  # warm (JIT, caches)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts) * 1e3, statistics.median(ts) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--face-width", type=float, default=260.0, help="Face region width in px")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # pin to one core
    except (AttributeError, OSError):
        pass

    model = FaceModel.load(model_path())
    face_tri = model.triangles_of(model.region_faces("Face"))
    face_v = model.neutral[model.region_vertices("Face")]
    scale = args.face_width / float(np.ptp(face_v[:, 0]))
    t = np.array([W / 2, H / 2 - 0.4 * scale, 1000.0], np.float32)
    ex = np.zeros(N_EXPRESSIONS, np.float32)
    ex[EXPRESSION_INDEX["jawOpen"]] = 0.6
    ex[EXPRESSION_INDEX["mouthSmile_L"]] = ex[EXPRESSION_INDEX["mouthSmile_R"]] = 0.8
    identity = np.random.default_rng(0).normal(size=model.n_identity).astype(np.float32) * 0.5
    verts = model.vertices(identity, ex)
    p = project_vertices(verts, FRONTAL, t, scale)
    all_tri = nmfc_triangles(model)
    attr = np.random.default_rng(1).random((model.n_vertices, 3)).astype(np.float32)

    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f} (1 min); pinned to one core")
    print(f"frame {W}x{H}, Face region {args.face_width:.0f} px wide ({scale:.2f} px/cm), "
          f"Face triangles {len(face_tri)}, NMFC triangles {len(all_tri)}; best / median of {args.repeat} [ms]")
    for backend in R.available_backends():
        os.environ["DFM_RASTER_BACKEND"] = backend
        r = R.rasterize(p, face_tri, H, W)
        rows = [
            ("rasterize Face region", lambda: R.rasterize(p, face_tri, H, W)),
            ("rasterize Face, cull back faces", lambda: R.rasterize(p, face_tri, H, W, cull_backfaces=True)),
            ("interpolate 3 channels", lambda: R.interpolate(r, attr, face_tri)),
            ("render_nmfc (shape+project+raster+masks)",
             lambda: render_nmfc(model, identity, ex, FRONTAL, t, scale, H, W)),
            ("render_shaded (45k tris)", lambda: render_shaded(p, all_tri, H, W)),
        ]
        print(f"\n[{backend}]  covered pixels: {int(r.mask.sum())}")
        for name, fn in rows:
            best, med = timeit(fn, args.repeat)
            print(f"  {name:44s} {best:7.2f} / {med:7.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
