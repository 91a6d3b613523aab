"""The emotion matrix (dfm.pipelines.emotion_matrix) on three shared clips; prints markdown tables.

    python benchmarks/bench_emotion_matrix.py OUT_DIR [--clips pexels,w009,w011]

pexels: the Pexels sample clip on its own; w009 / w011: the MEAD actress's neutral clip, edited with her
seven other acted clips as the person collection (decoder pairs and appearance sources). Each clip's
folder gets emotion_matrix.json / .md and matrix/contact_sheet.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
MEAD_EMOTIONS = ("angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised")


def clips(videos: Path) -> dict[str, tuple[Path, list[Path]]]:
    out = {"pexels": (videos / "pexels_wolfganglanger_woman_emotions_01.mp4", [])}
    for actor in ("w009", "w011"):
        out[actor] = (videos / f"mead_{actor}_neutral_01.mp4",
                      [videos / f"mead_{actor}_{e}_01.mp4" for e in MEAD_EMOTIONS])
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--clips", default="pexels,w009,w011")
    ap.add_argument("--workspace", type=Path, default=None)
    ap.add_argument("--cells", default=None, help="LABEL[:INTENSITY],... (default: dfm.eval.emotion_matrix.DEFAULT_CELLS)")
    args = ap.parse_args()
    from dfm import Session
    from dfm.eval.emotion_matrix import DEFAULT_CELLS, MatrixCell, markdown_table
    from dfm.pipelines.emotion_matrix import run_emotion_matrix

    videos = Path(os.environ.get("DFM_VIDEOS", VIDEOS))
    session = Session(workspace=args.workspace) if args.workspace else Session()
    session.progress = False
    for name in args.clips.split(","):
        video, collection = clips(videos)[name]
        t = time.perf_counter()
        cells = DEFAULT_CELLS if args.cells is None else [
            (c.split(":")[0], c.split(":")[1] if ":" in c else None) for c in args.cells.split(",")]
        doc = run_emotion_matrix(session, video, args.out / name, cells, collection=collection, overwrite=True)
        cells = [MatrixCell(**{k: v for k, v in c.items() if k != "name"}) for c in doc["cells"]]
        dec = doc["decoder"]
        print(f"\n### {video.name}" + (f" (collection: {len(collection)} clips of the same actress)" if collection else ""))
        print(f"\n{doc['frames']} frames; decoder: {dec.get('source')}; {time.perf_counter() - t:.0f} s\n")
        print(markdown_table(cells))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
