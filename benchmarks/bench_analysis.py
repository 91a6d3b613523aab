"""Analysis throughput (decode + track + fit + affect) on the sample clip, and peak memory vs length.

Prints frames/s per stage and end to end for the 640x360 Pexels clip, then the peak RSS of analysing
the first half vs the whole clip in fresh processes (memory must not grow with video length).
Run: DFM_ASSETS=../shared/models .venv/bin/python benchmarks/bench_analysis.py [VIDEO]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from dfm.analysis import AnalysisOptions, analyze_video
from dfm.io.video import iter_frames, VideoWriter, probe_video
video, workspace, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
src = video
if n > 0:  # the first n frames as their own clip
    info = probe_video(video)
    src = str(workspace / f"first{n}.mp4")
    with VideoWriter.like(info, src, overwrite=True) as w:
        for f in iter_frames(video, stop=n):
            w.write(f)
t = time.perf_counter()
track = analyze_video(src, workspace, progress=False, force=True)
wall = time.perf_counter() - t
print(json.dumps({"frames": track.n_frames, "wall": wall, "seconds": track.meta["seconds"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(video: str, workspace: str, n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, video, workspace, str(n)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from dfm.assets import AssetStore

    video = sys.argv[1] if len(sys.argv) > 1 else str(AssetStore.from_env().path("sample-video"))
    with tempfile.TemporaryDirectory() as ws:
        full = run(video, ws, 0)
        half = run(video, ws, full["frames"] // 2)
    n, sec = full["frames"], full["seconds"]
    print(f"analysis of {Path(video).name}: {n} frames, {os.cpu_count()} CPU cores")
    for stage, s in sec.items():
        print(f"  {stage:8s} {s:7.2f} s  {n / s:8.1f} frames/s")
    print(f"  end to end {full['wall']:.2f} s = {n / full['wall']:.1f} frames/s (decode included, models loaded)")
    print(f"  peak RSS: {half['peak_rss_mb']:.0f} MB for {half['frames']} frames, {full['peak_rss_mb']:.0f} MB for {n} frames")


if __name__ == "__main__":
    main()
