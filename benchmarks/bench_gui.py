"""Warm preview latency of the web tool: GET /api/projects/{id}/preview through the real app (TestClient),
on the sample clip (640x360), after the project is analysed and the preview warmed up.

Prints the median over requests of (a) the playhead moved (same edits, frames not yet decoded), (b) the
playhead moved back onto decoded frames, (c) the edits changed (new plan), each with the server's
per-step split (plan / decode / render; PNG encoding and HTTP are the rest), so the stage that holds a
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
    with tempfile.TemporaryDirectory() as ws, TestClient(create_app(Settings(workspace=ws))) as c:
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
            return {"version": 1, "edits": [{"start": 0.3, "end": 4.8, "label": "happy", "intensity": intensity}]}

        def preview(at):
            t0 = time.perf_counter()
            r = c.get(f"/api/projects/{pid}/preview", params={"t": at})
            assert r.status_code == 200, r.text
            steps = dict(part.split(";dur=") for part in r.headers["server-timing"].split(", "))
            return time.perf_counter() - t0, {k: float(v) / 1000 for k, v in steps.items()}

        c.put(f"/api/projects/{pid}/edits", json=edits("high"))
        preview(1.0)
        cases = {
            "playhead moved (new frames)": [preview(1.0 + 0.4 * k) for k in range(1, 9)],
            "playhead on decoded frames": [preview(1.0 + 0.4 * k) for k in range(1, 9)],
        }
        changed = []
        for k in range(8):
            c.put(f"/api/projects/{pid}/edits", json=edits(round(0.3 + 0.08 * k, 2)))
            changed.append(preview(2.0))
        cases["edits changed (new plan)"] = changed
        for name, runs in cases.items():
            total = statistics.median(r[0] for r in runs)
            split = {k: statistics.median(r[1].get(k, 0.0) for r in runs) for k in ("plan", "decode", "render")}
            rest = total - sum(split.values())
            print(f"  {name:30s} median {1000 * total:6.1f} ms  (plan {1000 * split['plan']:.1f}, decode "
                  f"{1000 * split['decode']:.1f}, render {1000 * split['render']:.1f}, PNG + HTTP {1000 * rest:.1f})")


if __name__ == "__main__":
    main()
