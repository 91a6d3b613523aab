"""Does the mouth refiner flicker? The existing stability figure (dfm.eval.stability.CropChange: mean
|crop(t) - crop(t-1)| of the 256-px face crop, input vs output, by pair group) for one edit rendered by
`warp`, `warp+refine` (residual smoothed over time, the default) and `warp+refine` without the smoothing.

    python benchmarks/bench_refiner_stability.py [VIDEO] [--edit happy:high:2-6] [--frames train|all]

Needs the video's refiner (`dfm renderer train VIDEO --refiner`). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path


def main() -> None:
    import numpy as np

    from dfm.edits import parse_edit_arg
    from dfm.eval.stability import CropChange
    from dfm.io.video import iter_frames
    from dfm.pipelines.renderer_train import trained_renderer
    from dfm.pipelines.session import Session
    from dfm.render.neural.checkpoint import load_refiner
    from dfm.render.neural.refiner import MouthRefiner, RefinedRenderer
    from dfm.render.renderer import WarpRenderer

    ap = argparse.ArgumentParser()
    ap.add_argument("video", nargs="?", default=os.environ.get("DFM_SAMPLE_VIDEO"))
    ap.add_argument("--edit", default="happy:high:14-17")
    ap.add_argument("--frames", default="train", choices=("train", "all"))
    a = ap.parse_args()
    video = Path(a.video)
    s = Session(progress=False)
    track = s.analyze(video)
    edits = [parse_edit_arg(a.edit)]
    plan = s.plan(video, edits, decoder=s.decoder_for(track)[0], track=track)
    sel = np.flatnonzero(plan.weight > 0)
    lo, hi = max(int(sel[0]) - 5, 0), min(int(sel[-1]) + 6, track.n_frames)
    frames = [f.image for f in iter_frames(video, lo, hi)]
    pool = s.frame_pool(video, track)
    folder = trained_renderer(track, "refiner", (a.frames,))
    net, card = load_refiner(folder)
    raw = type(net)(replace(net.config, temporal=1.0))
    raw.load_state_dict(net.state_dict())
    raw.eval()
    variants = {
        "warp": WarpRenderer(s.render_mesh(track), track, pool),
        "warp+refine": RefinedRenderer(WarpRenderer(s.render_mesh(track), track, pool),
                                       MouthRefiner(net, s.models.model, track.identity)),
        "warp+refine, no temporal smoothing": RefinedRenderer(WarpRenderer(s.render_mesh(track), track, pool),
                                                              MouthRefiner(raw, s.models.model, track.identity)),
    }
    out = {"video": str(video), "edit": a.edit, "frames": [lo, hi], "refiner": str(folder), "variants": {}}
    for name, r in variants.items():
        cc = CropChange(track.landmarks, np.asarray(track.valid, bool))
        t0 = time.perf_counter()
        for k, img in enumerate(frames):
            i = lo + k
            o = r.render_frame(i, img, plan.target[i], float(plan.weight[i]), target_va=plan.va[i])
            cc.add(i, img, o, float(plan.weight[i]))
        res = cc.result()
        out["variants"][name] = {g: res[g] for g in ("inside", "boundary")} | {"seconds": time.perf_counter() - t0}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
