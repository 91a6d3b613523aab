"""How steady the lips of talking people stay inside an edit: the output re-tracked, as a user's would be.

    python benchmarks/bench_lip_jitter.py [--workspace DIR]

For each (clip, edit) below: `Session.edit` (lossless), the output analysed again, and the mean second
difference of MediaPipe's lip-contour landmarks and of the other face landmarks over the edit's
full-weight frames, output and input (px). A ratio near 1 is as steady as the input; above 1 the edit adds
motion of its own. Speech sync: the correlation of the output's inner-lip gap (landmarks 13-14, cm) with
the input's over the same frames, and the ratio of their standard deviations (how much of the
articulation's amplitude is left). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
CASES = [  # (clip, edit, what the clip is)
    ("mead_w009_neutral_01.mp4", "neutral:f0-f104", "MEAD W009, talking, no sound"),
    ("mead_w009_neutral_01.mp4", "sad:high:f0-f104", "MEAD W009, talking, no sound"),
    ("mead_w011_neutral_01.mp4", "happy:high:f0-f99", "MEAD W011, talking, no sound"),
    ("grid_moustache_man_01.mp4", "happy:high:f0-f75", "GRID speaker, with sound"),
    ("obama_oval_office_01.mp4", "surprise:high:4-12", "Obama, speech, with sound"),
    ("pexels_wolfganglanger_woman_emotions_01.mp4", "sad:high:14-19.5", "Pexels, laughing, no words"),
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", type=Path, default=None)
    args = ap.parse_args()
    from dfm import Session
    from dfm.edits import EditList, parse_edit_arg
    from dfm.eval.stability import LIP_CONTOUR, landmark_jitter
    from dfm.face.speaking import mouth_opening
    from dfm.pipelines.edit import EditOptions

    videos = Path(os.environ.get("DFM_VIDEOS", VIDEOS))
    session = Session(workspace=args.workspace) if args.workspace else Session()
    session.progress = False
    rest = np.setdiff1d(np.arange(468), LIP_CONTOUR)
    print("| clip | edit | lip motion | lips out / in (px) | ratio | rest of the face out / in | ratio | "
          "lip gap corr | gap std out / in |")
    print("|---|---|---|---|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for k, (clip, edit, what) in enumerate(CASES):
            video = videos / clip
            edits = EditList([parse_edit_arg(edit)])
            result = session.edit(video, edits, Path(tmp) / f"{k}.mp4", EditOptions(lossless=True))
            track, out = session.analyze(video), session.analyze(result.output)
            plan = session.plan(video, edits)
            ok = (plan.weight >= 0.999) & track.valid & out.valid
            lips = [landmark_jitter(t.landmarks, ok, points=LIP_CONTOUR)["px"] for t in (out, track)]
            face = [landmark_jitter(t.landmarks, ok, points=rest)["px"] for t in (out, track)]
            kept = "kept" if result.report["preserve_speech_edits"][0] else "rest"
            gap_out = mouth_opening(out.landmarks, out.scale, out.valid)[ok]
            gap_in = mouth_opening(track.landmarks, track.scale, track.valid)[ok]
            corr = np.corrcoef(gap_out, gap_in)[0, 1]
            print(f"| {clip} ({what}) | `{edit}` | {kept} | {lips[0]:.2f} / {lips[1]:.2f} | {lips[0] / lips[1]:.2f} | "
                  f"{face[0]:.2f} / {face[1]:.2f} | {face[0] / face[1]:.2f} | {corr:.2f} | "
                  f"{gap_out.std() / gap_in.std():.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
