"""How reliably the subject stays the right person, on clips composed from the shared GRID speakers.

For every ordered pair (A, B) of the 6 different GRID speakers:
- cut: 30 frames of A then 30 of B. Right when the subject is A's 30 frames exactly (B's are absent)
  and a change of person is reported at frame 30;
- gap: A | B side by side for 50 frames, A blacked out over frames 15-27 (0.52 s), subject `leftmost`.
  Right when the subject is A on frames 0-14 and 28-49, absent in the gap, never B.
Also a cut between two clips of the same speaker (must stay the subject), and every shared clip alone
(the share of frames where its one person stays the subject; it should be all of them).

    .venv/bin/python benchmarks/bench_subject.py [--videos DIR] [--assets DIR] [--no-singles]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dfm.face.subject import SubjectSpec
from dfm.face.tracking import FaceTracker
from dfm.io.video import iter_frames

SHARED = Path(__file__).resolve().parents[2] / "shared"
SPEAKERS = ("grid_blonde_woman_01", "grid_glasses_man_01", "grid_brownhair_woman_01", "grid_greyhair_man_01",
            "grid_curlygrey_woman_01", "grid_moustache_man_01")


def track(path: Path, landmarker: Path, spec: SubjectSpec) -> tuple[np.ndarray, dict]:
    xs = []
    with FaceTracker(landmarker, subject=spec) as tracker:
        for f in iter_frames(path):
            row = tracker.track(np.asarray(f.image), f.timestamp)
            xs.append(np.nan if row is None else float(row.landmarks[:, 0].mean()))
    return np.array(xs), tracker.report().to_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=SHARED / "data" / "videos")
    ap.add_argument("--assets", type=Path, default=SHARED / "models")
    ap.add_argument("--no-singles", action="store_true", help="skip the single-person clips")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from subject_clips import cut, side_by_side

    landmarker = args.assets / "mediapipe" / "face_landmarker.task"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cuts = gaps = pairs = 0
        for a in SPEAKERS:
            for b in SPEAKERS:
                if a == b:
                    continue
                pairs += 1
                clip = cut(args.videos / f"{a}.mp4", args.videos / f"{b}.mp4", root / f"cut_{a}_{b}.mp4", 30, 30)
                _, rep = track(clip, landmarker, SubjectSpec())
                ok_cut = rep["subject_frames"] == [[0, 29]] and [c["frame"] for c in rep["person_changes"]] == [30]
                clip = side_by_side(args.videos / f"{a}.mp4", args.videos / f"{b}.mp4", root / f"sbs_{a}_{b}.mp4",
                                    50, hide_left=(15, 28))
                xs, rep = track(clip, landmarker, SubjectSpec("leftmost"))
                ok_gap = rep["subject_frames"] == [[0, 14], [28, 49]] and bool((xs[np.isfinite(xs)] < 360).all())
                cuts += ok_cut
                gaps += ok_gap
                print(f"{a:26s} {b:26s} cut {'ok' if ok_cut else 'WRONG'}  gap {'ok' if ok_gap else 'WRONG'}", flush=True)
        same = cut(args.videos / "grid_greyhair_man_01.mp4", args.videos / "grid_greyhair_man_02.mp4",
                   root / "same.mp4", 30, 30)
        _, rep = track(same, landmarker, SubjectSpec())
        print(f"cut between two clips of one speaker: subject frames {rep['subject_frames']} (want [[0, 59]])")
        print(f"cuts between two people detected: {cuts}/{pairs}; subject kept across a 0.52 s gap: {gaps}/{pairs}")
    if not args.no_singles:
        shares = []
        for clip in sorted(args.videos.glob("*.mp4")):
            xs, rep = track(clip, landmarker, SubjectSpec())
            shares.append(float(np.isfinite(xs).mean()))
            print(f"{clip.name:48s} subject in {100 * shares[-1]:6.2f}% of frames, changes {rep['person_changes']}",
                  flush=True)
        print(f"single-person clips: lowest share {100 * min(shares):.2f}%, mean {100 * np.mean(shares):.2f}%")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
