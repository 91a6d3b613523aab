"""End-to-end edit throughput on the sample clip (analysis cached), warm preview latency, and peak
memory vs video length.

Prints: per-stage seconds of `dfm edit` (happy over the crying part, sad over the laughing part),
render+encode frames/s over the whole clip and over edited frames only, the median of 5 warm
`Session.preview` calls, and peak RSS of editing the first half vs the whole clip (fresh processes).
Run: DFM_ASSETS=../shared/models .venv/bin/python benchmarks/bench_edit.py
"""

from __future__ import annotations

import os
import sys
import tempfile

from fresh_process import run_fresh

BODY = r"""
from dfm.pipelines.session import Session
from dfm.pipelines.edit import EditOptions
from dfm.edits import parse_edit_arg
s = Session(workspace=workspace, progress=False)
dur = probe_video(src).duration
edits = [parse_edit_arg(f"happy:high:0.3-{min(4.8, dur / 2 - 0.5):.2f}"),
         parse_edit_arg(f"sad:high:{max(dur - 5.5, dur / 2 + 0.5):.2f}-{dur - 0.1:.2f}")]
s.analyze(src)
t = time.perf_counter()
r = s.edit(src, edits, workspace / f"out{n}.mp4", EditOptions(overwrite=True))
wall = time.perf_counter() - t
res = {"frames": r.report["frames"], "edited": r.report["edited_frames"], "seconds": r.report["seconds"], "wall": wall,
       "peak_rss_mb": peak_rss_mb()}
if n == 0:
    times = []
    for k in range(6):
        t = time.perf_counter(); s.preview(src, edits, at=1.0 + 0.5 * k); times.append(time.perf_counter() - t)
    res["preview_first"] = times[0]
    res["preview_warm_median"] = sorted(times[1:])[2]
print(json.dumps(res))
"""


def main() -> None:
    from dfm.assets import AssetStore

    video = sys.argv[1] if len(sys.argv) > 1 else str(AssetStore.from_env().path("sample-video"))
    with tempfile.TemporaryDirectory() as ws:
        full = run_fresh(BODY, video, ws)
        half = run_fresh(BODY, video, ws, full["frames"] // 2)
    sec = full["seconds"]
    n = full["frames"]
    print(f"dfm edit on {os.path.basename(video)}: {n} frames, {full['edited']} edited, {os.cpu_count()} CPU cores (analysis cached)")
    for stage, s in sec.items():
        print(f"  {stage:9s} {s:7.2f} s")
    re = sec["render"] + sec["encode"]
    print(f"  render+encode: {n / re:.1f} frames/s over the clip; render alone {full['edited'] / max(sec['render'], 1e-9):.1f} edited frames/s")
    print(f"  job wall time {full['wall']:.1f} s")
    print(f"  preview: first {full['preview_first']:.2f} s, warm median {full['preview_warm_median'] * 1000:.0f} ms")
    print(f"  peak RSS: {half['peak_rss_mb']:.0f} MB for {half['frames']} frames, {full['peak_rss_mb']:.0f} MB for {n} frames")


if __name__ == "__main__":
    main()
