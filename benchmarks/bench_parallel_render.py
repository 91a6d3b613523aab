"""Render + encode of an edit: serial vs chunked on a local process pool (and its break-even length).

On the Pexels clip (or VIDEO), an edit covering half the video (happy, from 0.5 s): the render+encode
wall time serially (workers=1) and with --workers N, once with the pool started for the job (cold:
worker start included) and once on the session's pool already running (warm: the web tool, or an edit
after a chunked analysis); the speed-up; whether the outputs agree (worst PSNR of a frame, serial vs
chunked); the load average before and after (the machine may be shared: say so with the figures).
With --break-even, the same on the clip's first 48 / 96 / 144 / 240 frames (re-encoded into a temp
folder), chunking forced, to place `ChunkPolicy.min_video_frames`.

Run: DFM_ASSETS=../shared/models .venv/bin/python benchmarks/bench_parallel_render.py [VIDEO] [--workers 2] [--break-even]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from dfm.edits import parse_edit_arg
from dfm.io.video import VideoWriter, iter_frames, probe_video
from dfm.parallel import ParallelOptions
from dfm.pipelines import render_chunks
from dfm.pipelines.edit import EditOptions
from dfm.pipelines.session import Session

PEXELS = Path(__file__).resolve().parents[1].parent / "shared/data/videos/pexels_wolfganglanger_woman_emotions_01.mp4"


def half_edit(video: Path):
    info = probe_video(video)
    return [parse_edit_arg(f"happy:high:0.5-{0.5 + info.duration / 2:.2f}")]


def render_encode_seconds(report) -> float:
    """Wall time of render + encode (+ join), with the start of the job's workers when it started them."""
    par = report["parallel"]
    if par:
        return par["render_encode_wall_seconds"] + par["executor_start_seconds"]
    return report["seconds"]["render"] + report["seconds"]["encode"]


def worst_psnr(a: Path, b: Path) -> float:
    worst = np.inf
    for x, y in zip(iter_frames(a), iter_frames(b)):
        mse = np.mean((np.asarray(x.image, np.float64) - np.asarray(y.image, np.float64)) ** 2)
        worst = min(worst, np.inf if mse == 0 else 10 * np.log10(255.0**2 / mse))
    return worst


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def compare(video: Path, workspace: Path, out: Path, workers: int, warm: bool = True) -> dict:
    edits = half_edit(video)
    serial = Session(workspace=workspace, progress=False, parallel=ParallelOptions(workers=1))
    serial.analyze(video)
    serial.edit(video, edits, out / "warmup.mp4", EditOptions(overwrite=True))  # decoder, pool: cached from here on
    row = {"frames": probe_video(video).n_frames, "load_before": load()}
    cpu = time.process_time()
    r = serial.edit(video, edits, out / "serial.mp4", EditOptions(overwrite=True))
    row["serial_cpu_s"] = time.process_time() - cpu  # the whole (cached) edit: mostly its render + encode
    row["serial_s"] = render_encode_seconds(r.report)
    with Session(workspace=workspace, progress=False, parallel=ParallelOptions(workers=workers)) as par:
        par._cache = serial._cache  # the same pool and decoder objects: time the render, not their builds
        t = time.perf_counter()
        r = par.edit(video, edits, out / "chunked.mp4", EditOptions(overwrite=True))
        row["cold_total_s"] = time.perf_counter() - t
        row["cold_s"] = render_encode_seconds(r.report)
        row["chunks"] = r.report["parallel"]["chunks"] if r.report["parallel"] else 0
        row["replayed"] = r.report["parallel"]["warmup_frames_replayed"] if r.report["parallel"] else 0
        if warm:
            cpu = time.process_time()
            r = par.edit(video, edits, out / "chunked.mp4", EditOptions(overwrite=True))
            row["warm_s"] = render_encode_seconds(r.report)
            row["chunked_cpu_s"] = time.process_time() - cpu + (r.report["parallel"] or {}).get("worker_cpu_seconds", 0.0)
    row["worst_psnr_db"] = worst_psnr(out / "serial.mp4", out / "chunked.mp4")
    row["load_after"] = load()
    return row


def cut(video: Path, n: int, out: Path) -> Path:
    info = probe_video(video)
    with VideoWriter.like(info, out, overwrite=True) as w:
        for f in iter_frames(video, 0, n):
            w.write(f)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("video", nargs="?", type=Path, default=PEXELS)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--break-even", action="store_true")
    ap.add_argument("--skip-full", action="store_true", help="only the break-even cuts")
    ap.add_argument("--workspace", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        workspace = args.workspace or tmp / "workspace"
        print(f"cores: {os.cpu_count()}, load average (1/5/15 min) at start: {load()}")
        row = None if args.skip_full else compare(args.video, workspace, tmp, args.workers)
        if row is not None:
            print(f"{args.video.name}: {row['frames']} frames, half edited; render+encode serial {row['serial_s']:.1f} s, "
                  f"workers={args.workers}: {row['cold_s']:.1f} s cold (pool started for the job; whole edit "
                  f"{row['cold_total_s']:.1f} s), {row['warm_s']:.1f} s warm; speed-up {row['serial_s'] / row['cold_s']:.2f}x "
                  f"cold, {row['serial_s'] / row['warm_s']:.2f}x warm; {row['chunks']} chunks, {row['replayed']} frames "
                  f"replayed at seams; worst frame PSNR serial vs chunked {row['worst_psnr_db']:.1f} dB; "
                  f"CPU time serial {row['serial_cpu_s']:.1f} s, chunked (main + workers) {row['chunked_cpu_s']:.1f} s; "
                  f"load {row['load_before']} -> {row['load_after']}")
        if args.break_even:
            render_chunks.DEFAULT_POLICY = dataclasses.replace(render_chunks.DEFAULT_POLICY, min_video_frames=0)
            for n in (48, 96, 144, 240):
                clip = cut(args.video, n, tmp / f"first{n}.mp4")
                r = compare(clip, workspace, tmp, args.workers, warm=True)
                print(f"first {n} frames: serial {r['serial_s']:.2f} s, workers={args.workers} cold "
                      f"{r['cold_s']:.2f} s, warm {r['warm_s']:.2f} s ({r['chunks']} chunks); CPU serial "
                      f"{r['serial_cpu_s']:.1f} s, chunked {r['chunked_cpu_s']:.1f} s; load {r['load_after']}")


if __name__ == "__main__":
    main()
