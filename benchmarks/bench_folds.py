"""Does an edit paste brow folds the target does not have? Glabella fold contrast of the output against the input.

    python benchmarks/bench_folds.py [--workspace DIR] [--labels neutral happy surprise sad anger]

For each clip and label (the whole clip edited, as `dfm edit` would plan it), every frame is rendered in
order by the warp renderer (its temporal source choice as in a real render), once with the retrieval's
fold cost (`MatchParams.fold_weight`, the default) and once without it. Per frame: the glabella fold
contrast (dfm.render.folds.glabella_folds, at the input's landmarks) of the output over the input's, and
whether the upper face came from a pool frame more folded than 1.3 times the person's calm level. Prints a
markdown table: the median ratio, the share of frames whose folds grew by more than 30%, and that share of
folded sources. Sad and anger lower the brows, where folds belong: the cost leaves them alone.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
CLIPS = [  # (clip, collection glob or None, what it is)
    ("pexels_wolfganglanger_woman_emotions_01.mp4", None, "Pexels: crying, surprise, laughing (the video alone)"),
    ("mead_w009_neutral_01.mp4", "mead_w009_*.mp4", "MEAD W009 neutral, her 7 other clips as the collection"),
    ("mead_w011_neutral_01.mp4", "mead_w011_*.mp4", "MEAD W011 neutral, her 7 other clips as the collection"),
]


def measure(session, video: Path, collection: list[Path], label: str, fold_weight: float | None) -> dict:
    from dfm.edits import parse_edit_arg
    from dfm.io.video import iter_frames
    from dfm.render.folds import glabella_folds
    from dfm.render.renderer import renderer_targets
    from dfm.render.retrieval import MatchParams

    track = session.analyze(video)
    decoder = session.decoder_for(track, collection=collection)[0] if collection else session.decoder_for(track)[0]
    pool = session.frame_pool(video, track, collection=collection)
    end = track.timestamps[-1] + 0.05
    edit = parse_edit_arg(f"neutral:0-{end:.2f}" if label == "neutral" else f"{label}:high:0-{end:.2f}")
    plan = session.plan(video, [edit], decoder=decoder, track=track)
    params = None if fold_weight is None else {"match": MatchParams(fold_weight=fold_weight)}
    renderer = session.renderer("warp", track, pool, params=params)
    targets = renderer_targets(renderer, plan.target, plan.original_share)
    entry_folds = {(f.video, f.index): float(r) for f, r in zip(pool.frames, pool.folds)}
    ratios, folded_source = [], []
    for frame in iter_frames(video):
        i = frame.index
        if plan.weight[i] < 1.0 or not track.valid[i]:
            renderer.render_frame(i, frame.image, targets[i], float(plan.weight[i]), target_va=plan.va[i])
            continue
        out = renderer.render_frame(i, frame.image, targets[i], 1.0, target_va=plan.va[i])
        rep = renderer.report.frames[-1]
        lm, px = track.landmarks[i], float(track.scale[i])
        before, after = glabella_folds(frame.image, lm, px), glabella_folds(out, lm, px)
        if np.isfinite(before) and before > 0 and np.isfinite(after):
            ratios.append(after / before)
        main = max(rep.sources.get("upper", [(-1, 1.0)]), key=lambda sw: sw[1])[0]
        src_video = rep.source_videos.get("upper", "")
        folded_source.append(main >= 0 and entry_folds.get((src_video, main), 1.0) > 1.3)
    r = np.asarray(ratios)
    return {"frames": len(r), "median": float(np.median(r)) if len(r) else float("nan"),
            "grew": float((r > 1.3).mean()) if len(r) else float("nan"),
            "folded": float(np.mean(folded_source)) if folded_source else float("nan")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", type=Path, default=None)
    ap.add_argument("--labels", nargs="*", default=["neutral", "happy", "surprise", "sad", "anger"])
    args = ap.parse_args()
    os.environ.setdefault("DFM_WORKSPACE", str(args.workspace or Path(tempfile.mkdtemp(prefix="dfm-folds-"))))
    from dfm import Session

    print("| clip | label | frames | folds out / in, median: without → with | frames with folds +30% | "
          "upper face from a folded frame |")
    print("|---|---|---:|---|---|---|")
    with Session(progress=False) as session:
        for clip, pattern, what in CLIPS:
            video = VIDEOS / clip
            if not video.exists():
                print(f"| {clip} | skipped: not found |")
                continue
            collection = sorted(p for p in VIDEOS.glob(pattern) if p.name != clip) if pattern else []
            for label in args.labels:
                off = measure(session, video, collection, label, 0.0)
                on = measure(session, video, collection, label, None)
                print(f"| {clip} ({what}) | {label} | {on['frames']} | {off['median']:.2f} → {on['median']:.2f} | "
                      f"{off['grew']:.0%} → {on['grew']:.0%} | {off['folded']:.0%} → {on['folded']:.0%} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
