"""Benchmark: warp renderer frames/s on 640x360 frames with a realistic face size (~260 px face box).

Synthetic scene (the ICT mesh with a procedural texture), so it needs only the face model. Prints the
per-frame time of `WarpRenderer.render_frame` for: pure warp (empty pool, dark-cavity fallback) and
warp + region retrieval from a pool of the person's frames, with the stage split.

    .venv/bin/python benchmarks/bench_render.py [--frames 60] [--scale 17]
    .venv/bin/python benchmarks/bench_render.py --video CLIP.mp4 --track TRACK.npz [--target-frame 336]

With --video/--track (a FaceTrack saved by the analysis stage) it renders the clip's first --frames
frames towards the expression fitted at --target-frame, with the whole clip as the pool.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from dfm.face.expressions import expression_index as ei
from dfm.face.model import FaceModel
from dfm.render import synthetic as syn
from dfm.render.mesh import RenderMesh
from dfm.render.pool import FramePool
from dfm.render.renderer import WarpRenderer

MODEL = Path(os.environ.get("DFM_ASSETS", Path(__file__).resolve().parents[2] / "shared" / "models")) / "ict_facekit" / "ict_face_model.npz"


def _expr(jaw: float, smile: float, brows: float = 0.0) -> np.ndarray:
    e = np.zeros(53, np.float32)
    e[ei("jawOpen")] = jaw
    e[ei("mouthSmile_L")] = e[ei("mouthSmile_R")] = smile
    e[ei("browInnerUp_L")] = e[ei("browInnerUp_R")] = brows
    e[ei("cheekSquint_L")] = e[ei("cheekSquint_R")] = 0.5 * smile
    return e


def _timed(name: str, r: WarpRenderer, items: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
    for i, img, tgt in items[:3]:  # warm-up (numba compile, caches)
        r.render_frame(i, img, tgt, 1.0)
    r.reset()
    times, cpu = [], []
    for i, img, tgt in items:
        s, c = time.perf_counter(), time.process_time()
        r.render_frame(i, img, tgt, 1.0)
        times.append((time.perf_counter() - s) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    t = np.array(times)
    stages = {k: np.median([f.timings_ms.get(k, 0.0) for f in r.report.frames]) for k in ("flow+warp", "appearance")}
    print(f"{name:22s}: median {np.median(t):6.1f} ms  p95 {np.percentile(t, 95):6.1f} ms  "
          f"-> {1000 / np.median(t):5.1f} frames/s   (median flow+warp {stages['flow+warp']:.1f} ms, "
          f"appearance {stages['appearance']:.1f} ms; CPU time median {np.median(cpu):.1f} ms)")
    summary = r.report.summary()
    print(f"{'':22s}  report: {summary['fallback_frames']} fallbacks, sources {summary['source_frames']}")


def _real(args: argparse.Namespace, model: FaceModel) -> None:
    from dfm.face.track import FaceTrack
    from dfm.io.video import iter_frames

    track = FaceTrack.load(args.track)
    mesh = RenderMesh.build(model, track.identity)
    frames = [f.image for f in iter_frames(args.video, 0, args.frames)]
    pool = FramePool.build(track, iter_frames(args.video), range(track.n_frames), mesh)
    target = track.expression[args.target_frame]
    items = [(i, img, target) for i, img in enumerate(frames) if track.valid[i]]
    print(f"{args.video}: {len(items)} frames {frames[0].shape[1]}x{frames[0].shape[0]}, pool {len(pool)} frames, "
          f"target = expression of frame {args.target_frame}")
    _timed("pure warp (no pool)", WarpRenderer(mesh, track, None), items)
    _timed("warp + retrieval", WarpRenderer(mesh, track, pool), items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--scale", type=float, default=17.0, help="camera px per cm (17 ~ a 260 px face box)")
    ap.add_argument("--video", help="a real clip (needs --track)")
    ap.add_argument("--track", help="its FaceTrack .npz")
    ap.add_argument("--target-frame", type=int, default=336)
    args = ap.parse_args()
    n = args.frames
    model = FaceModel.load(MODEL)
    if args.video:
        _real(args, model)
        _load()
        return
    mesh = RenderMesh.build(model)
    # the person: crying-ish first half, smiling second half, small head motion
    t = np.arange(n)
    expr = np.stack([_expr(0.1 + 0.05 * np.sin(i / 3), 0.0, 0.8) if i < n // 2 else
                     _expr(0.3 + 0.1 * np.sin(i / 4), 0.9, 0.0) for i in t])
    rot = np.stack([syn.rotation_xyz(4 * np.sin(i / 9), 8 * np.sin(i / 13), 2 * np.sin(i / 7)) for i in t])
    track = syn.synthetic_track(expr, 640, 360, args.scale, rotations=rot)
    t0 = time.perf_counter()
    frames = syn.scene_frames(mesh, mesh.neutral, track)
    print(f"synthetic scene: {n} frames 640x360, face scale {args.scale} px/cm ({time.perf_counter() - t0:.1f} s to draw)")
    edited = range(n // 2)
    target = expr[-1]
    pool = FramePool.build(track, frames, range(n // 2, n), mesh)

    items = [(i, frames[i], target) for i in edited]
    _timed("pure warp (no pool)", WarpRenderer(mesh, track, None), items)
    _timed("warp + retrieval", WarpRenderer(mesh, track, pool), items)
    _load()


def _load() -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(1-min load average at the end: {load:.1f} on {os.cpu_count()} CPUs; other processes inflate wall times)")


if __name__ == "__main__":
    main()
