"""Wall time, CPU time and process-tree memory of one video's analysis and edit: serial vs --workers N vs --ray.

Clips: the shared Pexels clip (640x360, ~20 s) and a 60-s clip made by looping it (packets copied, no
re-encode). Per clip and mode, each in a fresh process with a fresh workspace:
  analysis   `Session.analyze(force=True)` wall (models loaded and workers started inside the timing)
  edit       `Session.edit` of a happy edit over the first half (analysis cached): wall, and render+encode
             from the job report (the chunked stage); pass-through frames are the other half
  cold edit  analysis + edit in one go from an empty workspace (the end-to-end figure; the clip itself only)
and the peak RSS and PSS summed over the whole process tree (the job, its pool workers and the fork
server that starts them, Ray's daemons), sampled every 0.1 s. Speed-up = serial wall / mode wall.

This machine's speed drifts (other tenants' load: CPU time of the same work moves by up to ~1.7x between
hours), so every mode runs `--repeat` times, the modes interleaved and their order rotated each round;
the summary gives the median of each figure and the range of the speed-ups paired within a round. Each
run also prints the CPU seconds all cores spent meanwhile (the machine's busy time, /proc/stat) and the
share of time the hypervisor stole, and each round starts by measuring how much throughput N independent
processes get here against one (`machine_scaling`: no speed-up can beat it).
Run: DFM_ASSETS=../shared/models .venv/bin/python benchmarks/bench_parallel.py [--workers 2] [--no-ray]
     [--clips 0 60] [--repeat 3] [--json results.json]
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

import numpy as np

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


def tree_memory_mb(root: int) -> tuple[float, float]:
    """(RSS, PSS) of `root` and all its descendants (Linux /proc), in MB. RSS counts a page shared by
    several processes (the workers' copy-on-write pages of the fork server that started them, shared
    libraries) in each of them; PSS splits it between them, so it sums to the memory the tree holds."""
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
    total, pss, todo = 0, 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        pss += _pss_kb(p) * 1024
        todo += children.get(p, [])
    return total / 2**20, pss / 2**20


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpu_counters() -> tuple[float, float, float]:
    """(busy, stolen, all) seconds summed over the machine's cores since boot (Linux /proc/stat)."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in f.readline().split()[1:9])
    hz = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq
    return busy / hz, steal / hz, (busy + idle + iowait + steal) / hz


def run(clip: Path, workspace: Path, mode: str, workers: int, what: str) -> dict:
    before = cpu_counters()
    proc = subprocess.Popen([sys.executable, "-c", BODY, str(clip), str(workspace), mode, str(workers), what],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0.0, 0.0]

    def sample() -> None:
        while proc.poll() is None:
            peak[:] = np.maximum(peak, tree_memory_mb(proc.pid)).tolist()
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{mode} {what} failed:\n{stderr[-3000:]}")
    after = cpu_counters()
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_tree_mb"], result["peak_tree_pss_mb"] = peak
    result["cpu_s"] = after[0] - before[0]
    result["steal_pct"] = 100.0 * (after[1] - before[1]) / max(after[2] - before[2], 1e-9)
    return result


FIGURES = ("analysis", "render_encode", "cold")
SPIN = "x = 0\nfor i in range(8_000_000):\n    x += i * i\n"


def machine_scaling(workers: int) -> float:
    """How many times the throughput of one process `workers` independent single-threaded processes get
    here now (a pure-Python loop in each; `workers` on an idle machine with that many real cores). The
    speed-ups below cannot beat it: on this shared machine it moved between 1.29 and 2.22 for 2 workers
    from round to round (2026-12-02)."""
    def spin(n: int) -> float:
        t = time.perf_counter()
        for p in [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]:
            p.wait()
        return time.perf_counter() - t

    one = min(spin(1) for _ in range(2))
    return workers * one / min(spin(workers) for _ in range(2))


def summarise(name: str, runs: dict[str, list[dict]]) -> None:
    """Per mode: the median of each figure over the rounds, the speed-up of the medians and, in brackets,
    the range of the speed-ups paired within a round (serial of round r / mode of round r)."""
    base = runs["serial"]
    for mode, rows in runs.items():
        cells = []
        for key in FIGURES:
            values = [r[key] for r in rows]
            if not all(np.isfinite(values)):
                cells.append(f"{'':>26s}")
                continue
            paired = [b[key] / r[key] for b, r in zip(base, rows)]
            ratio = float(np.median([b[key] for b in base])) / float(np.median(values))
            cells.append(f"{np.median(values):7.1f} {ratio:5.2f} [{min(paired):4.2f}-{max(paired):4.2f}]")
        peak = max(r["peak_tree_mb_max"] for r in rows)
        peak_pss = max(r["peak_tree_pss_mb_max"] for r in rows)
        cpu = float(np.median([r["cpu_s"] for r in rows]))
        steal = float(np.median([r["steal_pct"] for r in rows]))
        print(f"{name:>6s} {mode:>7s} " + " ".join(cells) + f" {cpu:7.1f} {steal:6.1f} {peak:8.0f} {peak_pss:8.0f}", flush=True)


def main() -> None:
    from dfm.assets import AssetStore

    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--clips", type=float, nargs="*", default=[0, 60], help="0 = the clip itself, else looped seconds")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of every mode (interleaved)")
    ap.add_argument("--json", help="also write every run's figures to this file")
    args = ap.parse_args()
    modes = ["serial", "pool"] + ([] if args.no_ray else ["ray"])
    source = AssetStore.from_env().path("sample-video")
    print(f"{source.name}; {os.cpu_count()} CPU cores; --workers {args.workers}; {args.repeat} rounds; "
          f"load average before {os.getloadavg()[0]:.1f}")
    print(f"{'clip':>6s} {'mode':>7s} {'round':>5s} {'analysis s':>10s} {'edit s':>7s} {'render+enc s':>12s} "
          f"{'cold edit s':>11s} {'cpu s':>7s} {'steal%':>6s} {'peak MB':>8s} {'PSS MB':>8s}")
    results: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.clips:
            clip = source
            if seconds:
                clip = Path(tmp) / f"loop{int(seconds)}.mp4"
                loop_clip(source, clip, seconds)
            name = f"{seconds:.0f}s" if seconds else "20s"
            runs: dict[str, list[dict]] = {mode: [] for mode in modes}
            for r in range(args.repeat):
                scaling = machine_scaling(args.workers)
                print(f"{name:>6s} round {r}: {args.workers} processes get {scaling:.2f}x one's throughput now", flush=True)
                for mode in modes[r % len(modes):] + modes[:r % len(modes)]:  # each mode first in turn
                    ws = Path(tmp) / f"ws_{int(seconds)}_{mode}_{r}"
                    ws.mkdir()
                    a = run(clip, ws, mode, args.workers, "analysis")
                    e = run(clip, ws, mode, args.workers, "edit")
                    c = {"wall": float("nan"), "peak_tree_mb": 0.0, "peak_tree_pss_mb": 0.0, "cpu_s": float("nan")}
                    if not seconds:  # the end-to-end goal is for the clip itself
                        cold_ws = Path(tmp) / f"cold_{int(seconds)}_{mode}_{r}"
                        cold_ws.mkdir()
                        c = run(clip, cold_ws, mode, args.workers, "cold")
                    row = {"analysis": a["wall"], "render_encode": e["render_encode"], "cold": c["wall"],
                           "edit": e["wall"], "cpu_analysis_s": a["cpu_s"], "cpu_cold_s": c["cpu_s"],
                           "peak_tree_mb_max": max(a["peak_tree_mb"], e["peak_tree_mb"], c["peak_tree_mb"]),
                           "peak_tree_pss_mb_max": max(a["peak_tree_pss_mb"], e["peak_tree_pss_mb"],
                                                       c["peak_tree_pss_mb"]),
                           # the cold edit's CPU when there is one, else the analysis's
                           "cpu_s": c["cpu_s"] if seconds == 0 else a["cpu_s"],
                           "machine_scaling": scaling,
                           "steal_pct": float(np.mean([x["steal_pct"] for x in (a, e) + ((c,) if not seconds else ())]))}
                    runs[mode].append(row)
                    print(f"{name:>6s} {mode:>7s} {r:5d} {a['wall']:10.1f} {e['wall']:7.1f} {e['render_encode']:12.1f} "
                          f"{c['wall']:11.1f} {row['cpu_s']:7.1f} {row['steal_pct']:6.1f} "
                          f"{row['peak_tree_mb_max']:8.0f} {row['peak_tree_pss_mb_max']:8.0f}", flush=True)
            results[name] = runs
    print(f"\nmedians over {args.repeat} rounds; speed-up of the medians [range of the speed-ups paired within a round]; "
          "cpu s = busy seconds of all cores during the cold edit (20 s) or the analysis (60 s)")
    print(f"{'clip':>6s} {'mode':>7s} " + " ".join(f"{k + ' s':>7s} {'x':>5s} {'[paired]':>12s}" for k in FIGURES)
          + f" {'cpu s':>7s} {'steal%':>6s} {'peak MB':>8s} {'PSS MB':>8s}")
    for name, runs in results.items():
        summarise(name, runs)
        scalings = [r["machine_scaling"] for r in runs["serial"]]
        print(f"{name:>6s} machine scaling ({args.workers} processes / one) per round: "
              + ", ".join(f"{x:.2f}" for x in scalings))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"load average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
