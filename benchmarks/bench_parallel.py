"""Wall time and process-tree memory of one video's analysis and edit: serial vs --workers N vs --ray (local).

Clips: the shared Pexels clip (640x360, ~20 s) and a 60-s clip made by looping it (packets copied, no
re-encode). Per clip and mode, each in a fresh process with a fresh workspace:
  analysis   `Session.analyze(force=True)` wall (models loaded and workers started inside the timing)
  edit       `Session.edit` of a happy edit over the first half (analysis cached): wall, and render+encode
             from the job report (the chunked stage); pass-through frames are the other half
  cold edit  analysis + edit in one go from an empty workspace (the end-to-end figure; the clip itself only)
and the peak RSS summed over the whole process tree (the job, its pool workers, Ray's daemons), sampled
every 50 ms. Speed-up = serial wall / mode wall.
Run: DFM_ASSETS=../shared/models .venv/bin/python benchmarks/bench_parallel.py [--workers 2] [--no-ray] [--clips 20 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import loop_clip  # noqa: E402

BODY = r"""
import json, sys, time
from pathlib import Path
from dfm.pipelines.session import Session
from dfm.pipelines.edit import EditOptions
from dfm.parallel import ParallelOptions
from dfm.edits import parse_edit_arg
from dfm.io.video import probe_video
clip, workspace, mode, workers, what = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
parallel = {"serial": ParallelOptions(workers=1), "pool": ParallelOptions(workers=workers),
            "ray": ParallelOptions(workers=workers, ray=True)}[mode]
dur = probe_video(clip).duration
edits = [parse_edit_arg(f"happy:high:0.0-{dur / 2:.2f}")]
out = {}
t = time.perf_counter()
with Session(workspace=workspace, progress=False, parallel=parallel) as s:
    if what == "analysis":
        s.analyze(clip, force=True)
    else:
        if what == "edit":
            s.analyze(clip)  # cached by the analysis run before
            t = time.perf_counter()
        r = s.edit(clip, edits, workspace / f"edited_{mode}.mp4", EditOptions(overwrite=True))
        sec, par = r.report["seconds"], r.report.get("parallel") or {}
        # chunked: the stages are the workers' sums; the wall time of render + encode + join is its own entry
        out["render_encode"] = par.get("render_encode_wall_seconds", sec.get("render", 0) + sec.get("encode", 0))
        out["pool"] = sec.get("pool", 0)
        out["frames"] = r.report["frames"]
    out["wall"] = time.perf_counter() - t
print(json.dumps(out))
"""


def tree_rss_mb(root: int) -> float:
    """RSS of `root` and all its descendants (Linux /proc), in MB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(parts[1]), []).append(int(d))
            rss[int(d)] = int(parts[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total / 2**20


def run(clip: Path, workspace: Path, mode: str, workers: int, what: str) -> dict:
    proc = subprocess.Popen([sys.executable, "-c", BODY, str(clip), str(workspace), mode, str(workers), what],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0.0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{mode} {what} failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_tree_mb"] = peak[0]
    return result


def main() -> None:
    from dfm.assets import AssetStore

    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--clips", type=float, nargs="*", default=[0, 60], help="0 = the clip itself, else looped seconds")
    args = ap.parse_args()
    modes = ["serial", "pool"] + ([] if args.no_ray else ["ray"])
    source = AssetStore.from_env().path("sample-video")
    print(f"{source.name}; {os.cpu_count()} CPU cores; --workers {args.workers}; load average before "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'clip':>6s} {'mode':>7s} {'analysis s':>10s} {'x':>5s} {'edit s':>7s} {'render+enc s':>12s} {'x':>5s} "
          f"{'cold edit s':>11s} {'x':>5s} {'peak MB':>8s}")
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.clips:
            clip = source
            if seconds:
                clip = Path(tmp) / f"loop{int(seconds)}.mp4"
                loop_clip(source, clip, seconds)
            base: dict = {}
            for mode in modes:
                ws = Path(tmp) / f"ws_{int(seconds)}_{mode}"
                ws.mkdir()
                a = run(clip, ws, mode, args.workers, "analysis")
                e = run(clip, ws, mode, args.workers, "edit")
                c = {"wall": float("nan"), "peak_tree_mb": 0.0}
                if not seconds:  # the end-to-end goal is for the clip itself
                    cold_ws = Path(tmp) / f"cold_{int(seconds)}_{mode}"
                    cold_ws.mkdir()
                    c = run(clip, cold_ws, mode, args.workers, "cold")
                row = {"analysis": a["wall"], "render_encode": e["render_encode"], "cold": c["wall"]}
                base = base or row
                peak = max(a["peak_tree_mb"], e["peak_tree_mb"], c["peak_tree_mb"])
                name = f"{seconds:.0f}s" if seconds else "20s"
                print(f"{name:>6s} {mode:>7s} {a['wall']:10.1f} {base['analysis'] / a['wall']:5.2f} {e['wall']:7.1f} "
                      f"{e['render_encode']:12.1f} {base['render_encode'] / max(e['render_encode'], 1e-9):5.2f} "
                      f"{c['wall']:11.1f} {base['cold'] / c['wall']:5.2f} {peak:8.0f}", flush=True)
    print(f"load average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
