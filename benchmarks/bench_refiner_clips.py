"""Mouth refiner over the evaluation clips: `dfm evaluate --renderer warp` vs `--renderer warp+refine`, per clip and mean.

For every clip (default: the clips `benchmarks/run_evaluation.py` evaluates, ../shared/data/videos/*.mp4):
  1. `dfm renderer train VIDEO --refiner --frames train [--steps N]`   (the first 70 % only; resumes a checkpoint)
  2. `dfm evaluate VIDEO --renderer warp --no-edit-run`  and  `... --renderer warp+refine --no-edit-run`
then prints one row per clip (settings A and B: APD / Face-APD / Mouth-APD, warp vs warp+refine) and the mean
over the clips done. The commands run as `dfm` subprocesses in one workspace (--workspace: the analysis and the
refiners are cached there, so a second run only evaluates what is missing); each clip's evaluation.json lands
in --work/<clip>/<renderer>/, and an existing one is reused (delete it to re-run). Ctrl-C stops after the
current command; the table of the clips done so far can be printed again with --table-only.

    .venv/bin/python benchmarks/bench_refiner_clips.py [CLIP ...] --workspace WS --work DIR [--steps N] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
RENDERERS = ("warp", "warp+refine")
METRICS = ("apd", "face_apd", "mouth_apd")


def dfm(*args: str) -> list[str]:
    """The `dfm` command line with this interpreter (so PYTHONPATH and the virtualenv are the caller's)."""
    return [sys.executable, "-c", "import sys; from dfm.app.cli.main import main; sys.exit(main())", *args]


def run(cmd: list[str], log: Path) -> float:
    """Run one command, its output appended to `log`; its wall seconds. A failure stops the benchmark."""
    t = time.perf_counter()
    with log.open("a") as f:
        f.write(f"$ {' '.join(cmd[3:])}\n")
        f.flush()
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc:
        raise SystemExit(f"failed (exit {rc}): dfm {' '.join(cmd[3:])}; see {log}")
    return time.perf_counter() - t


def evaluation_path(work: Path, clip: Path, renderer: str) -> Path:
    return work / clip.stem / renderer.replace("+", "_") / "evaluation.json"


def clip_row(work: Path, clip: Path) -> dict[str, dict[str, dict[str, float]]] | None:
    """{renderer: {setting: {metric: value}}} of a clip whose two evaluations exist, else None."""
    row = {}
    for r in RENDERERS:
        p = evaluation_path(work, clip, r)
        if not p.exists():
            return None
        summary = json.loads(p.read_text())["self_reenactment"]["summary"]
        row[r] = {s: {m: float(summary[s][m]) for m in METRICS} for s in ("A", "B") if s in summary}
    return row


def table(rows: dict[str, dict], steps: int) -> str:
    head = ("| clip | A: warp APD | refine | warp Face-APD | refine | warp Mouth-APD | refine | Δ Mouth | "
            "B: warp Mouth-APD | refine | Δ Mouth |")
    lines = [f"warp vs warp+refine (refiner: {steps} steps, --frames train), settings A and B", "", head,
             "|---|" + "---:|" * 10]

    def cells(row):
        a_w, a_r = row["warp"]["A"], row["warp+refine"]["A"]
        b_w, b_r = row["warp"].get("B"), row["warp+refine"].get("B")
        c = [a_w["apd"], a_r["apd"], a_w["face_apd"], a_r["face_apd"], a_w["mouth_apd"], a_r["mouth_apd"],
             a_r["mouth_apd"] - a_w["mouth_apd"]]
        c += [b_w["mouth_apd"], b_r["mouth_apd"], b_r["mouth_apd"] - b_w["mouth_apd"]] if b_w and b_r else [math.nan] * 3
        return c

    all_cells = []
    for name, row in rows.items():
        c = cells(row)
        all_cells.append(c)
        lines.append(f"| {name} | " + " | ".join(f"{x:+.2f}" if k in (6, 9) else f"{x:.2f}" for k, x in enumerate(c)) + " |")
    if all_cells:
        mean = [sum(c[k] for c in all_cells) / len(all_cells) for k in range(len(all_cells[0]))]
        better = sum(1 for c in all_cells if c[6] < 0)
        lines.append(f"| **mean over {len(all_cells)} clips** | " +
                     " | ".join(f"**{x:+.2f}**" if k in (6, 9) else f"**{x:.2f}**" for k, x in enumerate(mean)) + " |")
        lines += ["", f"A: Mouth-APD lower with the refiner on {better} of {len(all_cells)} clips"]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*", type=Path, help="videos (default: ../shared/data/videos/*.mp4)")
    ap.add_argument("--workspace", type=Path, required=True, help="analysis + refiner cache (reused)")
    ap.add_argument("--work", type=Path, required=True, help="per-clip evaluation folders and the log")
    ap.add_argument("--steps", type=int, default=300, help="refiner training steps per clip (default 300)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads of the training (default 1)")
    ap.add_argument("--table-only", action="store_true", help="print the table of the clips already evaluated")
    args = ap.parse_args()
    clips = args.clips or sorted((SHARED / "data" / "videos").glob("*.mp4"))
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / "commands.log"
    rows: dict[str, dict] = {}
    for clip in clips:
        row = clip_row(args.work, clip)
        if row is None and not args.table_only:
            ws = ["--workspace", str(args.workspace), "-q"]
            t_train = run(dfm("renderer", "train", str(clip), "--refiner", "--frames", "train", "--steps", str(args.steps),
                              "--threads", str(args.threads), *ws), log)
            t_eval = {}
            for r in RENDERERS:
                out = evaluation_path(args.work, clip, r).parent
                t_eval[r] = run(dfm("evaluate", str(clip), "-o", str(out), "--renderer", r, "--no-edit-run",
                                    "--heatmaps", "0", "--overwrite", *ws), log)
            row = clip_row(args.work, clip)
            a = {r: row[r]["A"]["mouth_apd"] for r in RENDERERS}
            print(f"{clip.name}: A Mouth-APD warp {a['warp']:.2f} -> warp+refine {a['warp+refine']:.2f} "
                  f"(train {t_train:.0f} s, evaluate {t_eval['warp']:.0f} s + {t_eval['warp+refine']:.0f} s)", flush=True)
        if row is not None:
            rows[clip.stem] = row
    print(table(rows, args.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
