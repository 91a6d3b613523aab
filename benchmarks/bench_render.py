"""Benchmark: warp renderer frames/s on 640x360 frames with a realistic face size (~260 px face box).

Synthetic scene (the ICT mesh with a procedural texture), so it needs only the face model. Prints the
per-frame time of `WarpRenderer.render_frame` for: pure warp (empty pool, dark-cavity fallback) and
warp + region retrieval from a pool of the person's frames, with the stage split.

    .venv/bin/python benchmarks/bench_render.py [--frames 60] [--scale 17]
    .venv/bin/python benchmarks/bench_render.py --video CLIP.mp4 --track TRACK.npz [--target-frame 336]
    .venv/bin/python benchmarks/bench_render.py --video CLIP.mp4 --track TRACK.npz --start 7 --frames 109 --decoded happy:high

With --video/--track (a FaceTrack saved by the analysis stage) it renders --frames frames from --start
towards the expression fitted at --target-frame (or the video decoder's target for --decoded), with the
whole clip as the pool. On a shared machine compare CPU times and rerun the baseline in the same call:
other processes inflate wall times (the 1-min load average is printed at the end).
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
    keys = ("flow+warp", "appearance", "select", "skin", "mouth", "occlusion")
    stages = {k: np.median([f.timings_ms.get(k, 0.0) for f in r.report.frames]) for k in keys}
    print(f"{name:22s}: median {np.median(t):6.1f} ms  p95 {np.percentile(t, 95):6.1f} ms  "
          f"-> {1000 / np.median(t):5.1f} frames/s   (CPU time median {np.median(cpu):.1f} ms, p20 {np.percentile(cpu, 20):.1f} ms)")
    print(f"{'':22s}  median stages: " + ", ".join(f"{k} {v:.1f} ms" for k, v in stages.items()))
    summary = r.report.summary()
    print(f"{'':22s}  report: {summary['fallback_frames']} fallbacks, {summary['occluded_frames']} occluded, "
          f"sources {summary['source_frames']}")


def _real(args: argparse.Namespace, model: FaceModel) -> None:
    from dfm.face.track import FaceTrack
    from dfm.io.video import iter_frames

    track = FaceTrack.load(args.track)
    track.meta["cache"] = str(Path(args.track).with_suffix(".json"))  # where the session keeps its decoder
    mesh = RenderMesh.build(model, track.identity)
    frames = [f.image for f in iter_frames(args.video, args.start, args.start + args.frames)]
    t0 = time.perf_counter()
    pool = FramePool.build(track, iter_frames(args.video), range(track.n_frames), mesh)
    t_pool = time.perf_counter() - t0
    if args.decoded:  # the target a real edit renders: the video's own decoder at the label's VA centre
        from dfm.affect.regions import region_for
        from dfm.pipelines.session import Session

        label, intensity = args.decoded.split(":")
        target = np.asarray(Session(progress=False).video_decoder(track).predict(
            region_for(label, intensity).center()[None]))[0]
        what = f"decoded {args.decoded}"
    else:
        target = track.expression[args.target_frame]
        what = f"expression of frame {args.target_frame}"
    items = [(args.start + i, img, target) for i, img in enumerate(frames) if track.valid[args.start + i]]
    excluded = sum(len(v) for v in pool.excluded.values())
    print(f"{args.video}: {len(items)} frames {frames[0].shape[1]}x{frames[0].shape[0]} from {args.start}, "
          f"pool {len(pool)} frames ({excluded} occluded frames left out; built in {t_pool:.1f} s), target = {what}")
    _timed("pure warp (no pool)", WarpRenderer(mesh, track, None), items)
    _timed("warp + retrieval", WarpRenderer(mesh, track, pool), items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--scale", type=float, default=17.0, help="camera px per cm (17 ~ a 260 px face box)")
    ap.add_argument("--video", help="a real clip (needs --track)")
    ap.add_argument("--track", help="its FaceTrack .npz")
    ap.add_argument("--target-frame", type=int, default=336)
    ap.add_argument("--start", type=int, default=0, help="first frame rendered (real clip)")
    ap.add_argument("--decoded", help="LABEL:INTENSITY: render towards the video decoder's target for it "
                    "(needs the analysis cached: DFM_WORKSPACE)")
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
