"""Analysis throughput (decode + track + fit + affect) on the sample clip, and peak memory vs length.

Prints frames/s per stage and end to end for the 640x360 Pexels clip, then the peak RSS of analysing
the first half vs the whole clip in fresh processes (memory must not grow with video length).
Run: DFM_ASSETS=../shared/models .venv/bin/python benchmarks/bench_analysis.py [VIDEO]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from fresh_process import run_fresh

BODY = r"""
from dfm.pipelines.analyze import analyze_video
t = time.perf_counter()
track = analyze_video(src, workspace, progress=False, force=True)
wall = time.perf_counter() - t
print(json.dumps({"frames": track.n_frames, "wall": wall, "seconds": track.meta["seconds"], "peak_rss_mb": peak_rss_mb()}))
"""


def main() -> None:
    from dfm.assets import AssetStore

    video = sys.argv[1] if len(sys.argv) > 1 else str(AssetStore.from_env().path("sample-video"))
    with tempfile.TemporaryDirectory() as ws:
        full = run_fresh(BODY, video, ws)
        half = run_fresh(BODY, video, ws, full["frames"] // 2)
    n, sec = full["frames"], full["seconds"]
    print(f"analysis of {Path(video).name}: {n} frames, {os.cpu_count()} CPU cores")
    for stage, s in sec.items():
        print(f"  {stage:8s} {s:7.2f} s  {n / s:8.1f} frames/s")
    print(f"  end to end {full['wall']:.2f} s = {n / full['wall']:.1f} frames/s (decode included, models loaded)")
    print(f"  peak RSS: {half['peak_rss_mb']:.0f} MB for {half['frames']} frames, {full['peak_rss_mb']:.0f} MB for {n} frames")


if __name__ == "__main__":
    main()
