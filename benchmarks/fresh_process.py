"""Run a benchmark body in a fresh Python process (so its peak RSS is its own) on a clip or its first
n frames, and read back the JSON line it prints. Shared by bench_analysis.py and bench_edit.py."""

from __future__ import annotations

import json
import subprocess
import sys

# Prepended to every body: defines `video`, `workspace` and `src` (the clip, or its first n frames as a clip).
PRELUDE = r"""
import json, resource, sys, time
from pathlib import Path
from dfm.io.video import iter_frames, VideoWriter, probe_video
video, workspace, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
src = video
if n > 0:
    src = str(workspace / f"first{n}.mp4")
    with VideoWriter.like(probe_video(video), src, overwrite=True) as w:
        for f in iter_frames(video, stop=n):
            w.write(f)
def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""


def run_fresh(body: str, video: str, workspace: str, n_frames: int = 0) -> dict:
    """Run PRELUDE + body with (video, workspace, n_frames); n_frames 0 = the whole clip."""
    out = subprocess.run([sys.executable, "-c", PRELUDE + body, video, workspace, str(n_frames)],
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])
