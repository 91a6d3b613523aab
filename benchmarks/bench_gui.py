"""Warm preview latency of the web tool: GET /api/projects/{id}/preview through the real app (TestClient),
on the sample clip (640x360), after the project is analysed and the preview warmed up.

Prints the median over requests of: the playhead moved forward (frames decoded forward, no seek), the
playhead jumped (a seek), the same frame again (the result cache), and the edits changed (a new plan),
each with the server's per-step split (plan / decode / render / PNG) and the server process's CPU time
(on a loaded machine the wall time includes waiting for a core), so the stage that holds a
preview back is named.
Run: DFM_ASSETS=../shared/models .venv/bin/python benchmarks/bench_gui.py [VIDEO]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    from fastapi.testclient import TestClient

    from dfm.app.web.config import Settings
    from dfm.app.web.main import create_app
    from dfm.assets import AssetStore

    video = Path(sys.argv[1] if len(sys.argv) > 1 else AssetStore.from_env().path("sample-video"))
    ws_root = os.environ.get("DFM_BENCH_WORKSPACE")  # reuse an analysed workspace when given
    with tempfile.TemporaryDirectory(dir=ws_root) as ws, TestClient(create_app(Settings(workspace=ws))) as c:
        t = time.perf_counter()
        with open(video, "rb") as f:
            p = c.post("/api/projects", files={"file": (video.name, f, "video/mp4")}).json()
        job = p["analysis"]["job"]
        while c.get(f"/api/jobs/{job}").json()["state"] in ("queued", "running"):
            time.sleep(0.2)
        print(f"{video.name}: {p['video']['width']}x{p['video']['height']}, {p['video']['frames']} frames, "
              f"{os.cpu_count()} CPU cores; upload + analysis + preview warm-up {time.perf_counter() - t:.1f} s")
        pid = p["id"]

        def edits(intensity):
            return {"version": 1, "edits": [{"start": 0.3, "end": 4.8, "label": "happy", "intensity": intensity},
                                            {"start": 14.0, "end": 19.5, "label": "sad", "intensity": "high"}]}

        def preview(at):
            t0 = time.perf_counter()
            r = c.get(f"/api/projects/{pid}/preview", params={"t": at})
            assert r.status_code == 200, r.text
            steps = dict(part.split(";dur=") for part in r.headers["server-timing"].split(", "))
            return time.perf_counter() - t0, {k: float(v) / 1000 for k, v in steps.items()}

        c.put(f"/api/projects/{pid}/edits", json=edits("high"))
        preview(1.0)
        cases = {
            "playhead moved forward 0.4 s": [preview(1.0 + 0.4 * k) for k in range(1, 9)],
            "playhead jumped (seek)": [preview(t) for t in (14.6, 3.2, 17.8, 1.3, 16.1, 2.6, 15.2, 4.1)],
            "same frame again (cached)": [preview(4.1) for _ in range(8)],
        }
        changed = []
        for k in range(8):
            c.put(f"/api/projects/{pid}/edits", json=edits(round(0.3 + 0.08 * k, 2)))
            changed.append(preview(2.0))
        cases["edits changed (new plan)"] = changed
        for name, runs in cases.items():
            total = statistics.median(r[0] for r in runs)
            split = {k: statistics.median(r[1].get(k, 0.0) for r in runs)
                     for k in ("lookup", "plan", "decode", "render", "png", "total", "cpu")}
            print(f"  {name:30s} median {1000 * total:6.1f} ms at the client, {1000 * split['total']:6.1f} ms in the server "
                  f"(lookup {1000 * split['lookup']:.1f}, plan {1000 * split['plan']:.1f}, decode {1000 * split['decode']:.1f}, "
                  f"render {1000 * split['render']:.1f}, PNG {1000 * split['png']:.1f}); "
                  f"server CPU {1000 * split['cpu']:.1f} ms")
        print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall times include waiting for the CPU; "
              "the CPU time is what an idle machine would need)")

if __name__ == "__main__":
    main()
