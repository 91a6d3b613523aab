"""Benchmark: `dfm evaluate` over every clip of a folder, written to benchmarks/RESULTS.md.

For each clip (default: ../shared/data/videos/*.mp4): the self-reenactment protocol of the paper (settings
A and B, first 70 % train, last 30 % test), the default edit run (emotion fidelity, temporal stability)
and the speed per stage. Per-clip outputs (evaluation.json / .md, heat maps, edited video) go to
--work; the summary goes to benchmarks/RESULTS.md (or --results) with the machine, the date and the
load average (2 shared CPU cores: figures measured on a loaded machine are slower than on an idle one).

Analysis runs in a fresh workspace by default (--workspace to reuse a cache), so the analysis stage
times are measured in this run.

    .venv/bin/python benchmarks/run_evaluation.py [FOLDER] [--work DIR] [--results FILE] [--split 0.7]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _f(x, d: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, str):
        return x
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{float(x):.{d}f}"


def _mean(values) -> float:
    v = [float(x) for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(v) / len(v) if v else float("nan")


def code_state() -> str:
    """The commit, and a digest of the renderer and evaluation sources (they may hold uncommitted work)."""
    import hashlib
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=REPO, capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", ""
    h = hashlib.sha256()
    for path in sorted((REPO / "src" / "dfm").glob("render/*.py")) + sorted((REPO / "src" / "dfm").glob("eval/*.py")):
        h.update(path.read_bytes())
    state = f"commit {commit}" + (" + uncommitted changes in src/" if dirty else "")
    return f"{state}; sha256 of src/dfm/render/*.py + src/dfm/eval/*.py: {h.hexdigest()[:16]}"


def results_markdown(docs: list[dict], machine: dict, started: str, wall_s: float, command: str,
                     code: str | None = None) -> str:
    from dfm.eval.report import PAPER

    lines = [
        "# DFM evaluation results",
        "",
        "Written by `benchmarks/run_evaluation.py` (`dfm evaluate` on every shared clip). Protocol: DESIGN.md",
        "\"Evaluation protocol\" and `src/dfm/eval/reenactment.py`: the first 70 % of each clip's frames train",
        "(decoder, retrieval pool, source frames), the last 30 % test; the source of a test frame is the training",
        "frame closest in head pose (ties within 1 degree by expression), re-posed to the test frame and edited",
        "by the warp renderer to A: the expression fitted on the test frame, B: the expression decoded from the",
        "affect estimator's (V, A) of the test frame (`fer` estimator; the paper used EmoNet). Metrics on",
        "256x256 crops from the test frame's landmarks (10 % margin), pixel values 0..255; Mouth-APD over the",
        "NMFC `mouth_region` (lip hull dilated by 0.2 x mouth width).",
        "",
        f"- Run: {started} ({wall_s / 60:.1f} min wall), command `{command}`",
        f"- Code: {code or code_state()}",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, {machine['platform']}",
        f"- Load average at start {machine.get('loadavg_1_5_15')}, at end {machine.get('loadavg_end')}: "
        + ("the 2 cores were SHARED with other work during this run, so the speed figures are lower than on an "
           "idle machine; the image metrics do not depend on load."
           if machine.get("loadavg_1_5_15") and max(machine["loadavg_1_5_15"][0], (machine.get("loadavg_end") or [0])[0])
           > 1.5 else "the machine was otherwise idle."),
        "",
        "## Self-reenactment (paper Table 1)",
        "",
        "| clip | frames (test) | A: APD | Face-APD | Mouth-APD | PSNR | SSIM | B: APD | Face-APD | Mouth-APD | PSNR | SSIM |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    keys = ("apd", "face_apd", "mouth_apd", "psnr", "ssim")
    for d in docs:
        s = d["self_reenactment"]["summary"]
        a, b = s.get("A", {}), s.get("B", {})
        lines.append(f"| {Path(d['video']).stem} | {d['frames']} ({int(a.get('frames', 0))}) | "
                     + " | ".join(_f(a.get(k), 3 if k == "ssim" else 2) for k in keys) + " | "
                     + " | ".join(_f(b.get(k), 3 if k == "ssim" else 2) for k in keys) + " |")
    mean = {s: {k: _mean(d["self_reenactment"]["summary"].get(s, {}).get(k) for d in docs) for k in keys} for s in ("A", "B")}
    lines.append("| **mean over clips** | | " + " | ".join(f"**{_f(mean['A'][k], 3 if k == 'ssim' else 2)}**" for k in keys)
                 + " | " + " | ".join(f"**{_f(mean['B'][k], 3 if k == 'ssim' else 2)}**" for k in keys) + " |")
    lines.append("| paper (Head2Head++, own videos) | | " + " | ".join(_f(PAPER["A"][k]) for k in keys[:3]) + " | – | – | "
                 + " | ".join(_f(PAPER["B"][k]) for k in keys[:3]) + " | – | – |")
    lines += ["", "Baselines on the same crops (mean over clips): what the renderer's appearance stage adds.", "",
              "| variant | APD | Face-APD | Mouth-APD | PSNR | SSIM |", "|---|---:|---:|---:|---:|---:|"]
    names = {"A": "A: warp renderer (re-pose + edit + retrieval)", "warp_A": "A: pure warp (one flow, no retrieval)",
             "B": "B: warp renderer", "warp_B": "B: pure warp", "repose": "source re-posed, expression not edited"}
    for v in ("A", "warp_A", "B", "warp_B", "repose"):
        m = {k: _mean(d["self_reenactment"]["summary"].get(v, {}).get(k) for d in docs) for k in keys}
        lines.append(f"| {names[v]} | " + " | ".join(_f(m[k], 3 if k == "ssim" else 2) for k in keys) + " |")

    runs = [d for d in docs if "edit_run" in d]
    if runs:
        lines += ["", "## Edit run: emotion fidelity and temporal stability", "",
                  "`Session.edit` (the `dfm edit` job, encoded losslessly so untouched frames decode bit-exact) with the",
                  "default edits per clip: happy:high over 15-45 % and sad:high over 55-85 % of the clip (ramps of a fifth",
                  "of an edit, at most 20 frames); output re-analysed (tracking, fit, affect). Fidelity over full-weight edited frames: share in the requested",
                  "VA region at the edit's intensity, in the label's sector at any intensity, and the share the",
                  "estimator's top class calls the label, output vs input. Crop change:",
                  "mean |frame t - frame t-1| of the 256-px face crop (0..255), output vs input; landmark jitter:",
                  "second difference of the re-tracked landmarks, output / input.", "",
                  "| clip | in region out / in | in label sector out / in | label called out / in | VA distance out / in | crop change outside (out = in?) | at boundaries out / in | inside out / in | jitter in edits out/in | outside |",
                  "|---|---|---|---|---|---|---|---|---:|---:|"]
        for d in runs:
            r = d["edit_run"]
            o = r["emotion_fidelity"]["overall"]
            cc = r["stability"]["crop_change"]
            j = r["stability"]["landmark_jitter"]
            lines.append(
                f"| {Path(d['video']).stem} | {_f(o['output']['in_region'])} / {_f(o['input']['in_region'])} | "
                f"{_f(o['output']['in_sector'])} / {_f(o['input']['in_sector'])} | "
                f"{_f(o['output']['label_share'])} / {_f(o['input']['label_share'])} | "
                f"{_f(o['output']['distance'], 3)} / {_f(o['input']['distance'], 3)} | "
                f"{_f(cc['outside']['output'], 2)} ({'yes' if cc['outside_equal'] else 'NO'}) | "
                f"{_f(cc['boundary']['output'], 2)} / {_f(cc['boundary']['input'], 2)} | "
                f"{_f(cc['inside']['output'], 2)} / {_f(cc['inside']['input'], 2)} | "
                f"{_f(j['inside_edits']['ratio'])} | {_f(j['outside_edits']['ratio'])} |")
    lines += ["", "## Speed (frames/s per stage, 2 CPU cores)", "",
              "| clip | size | decode | track | fit | affect | plan | render | encode | end to end | decoder training (s) |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for d in docs:
        st = d["speed"]["stages"]
        fps = [_f(st.get(k, {}).get("fps"), 1) for k in ("decode", "track", "fit", "affect", "plan", "render", "encode")]
        lines.append(f"| {Path(d['video']).stem} | {d['width']}x{d['height']} | " + " | ".join(fps)
                     + f" | {_f(d['speed']['end_to_end']['fps'], 1)} | {_f(st.get('decoder', {}).get('seconds'), 1)} |")
    lines += ["", "Stages: decode, track, fit, affect from the analysis run (`track.meta['seconds']`); plan, render (= pool",
              "build + `WarpRenderer` over the video), encode from the `Session.edit` job's report; frames/s over ALL frames",
              "of the clip. Encode is LOSSLESS x264 here (`dfm edit` defaults to crf 8.5). End to end = the sum of these",
              "seven; decoder training (once per person, cached) is not in it.",
              "", "Per-clip reports (with heat maps) were written to the work folder; see `dfm evaluate VIDEO -o DIR`."]
    return "\n".join(lines) + "\n"


KEPT_SECTION = "## Emotion matrix"  # written by benchmarks/bench_emotion_matrix.py: kept when this script rewrites


def kept_sections(results: Path) -> str:
    """The emotion-matrix section of an existing RESULTS.md (another script's figures), to append unchanged."""
    if not results.exists():
        return ""
    text = results.read_text()
    start = text.find("\n" + KEPT_SECTION)
    return "" if start < 0 else text[start:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", type=Path, default=SHARED / "data" / "videos")
    ap.add_argument("--work", type=Path, default=None, help="per-clip output folders (default: a temp folder)")
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    ap.add_argument("--workspace", type=Path, default=None, help="analysis cache (default: fresh, so stages are timed)")
    ap.add_argument("--split", type=float, default=0.7)
    ap.add_argument("--no-edit-run", action="store_true")
    ap.add_argument("--heatmaps", type=int, default=4)
    ap.add_argument("--from-json", type=Path, default=None,
                    help="only rewrite --results from the all.json of an earlier run (no evaluation)")
    args = ap.parse_args()
    if args.from_json is not None:
        from dfm.io.files import atomic_write_text

        b = json.loads(args.from_json.read_text())
        atomic_write_text(args.results, results_markdown(b["docs"], b["machine"], b["started"], b["wall_s"], b["command"],
                                                         b.get("code")) + kept_sections(args.results))
        print(f"wrote {args.results} from {args.from_json}")
        return 0
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("DFM_ASSETS", str(SHARED / "models"))

    from dfm.pipelines.analyze import AnalysisOptions
    from dfm.pipelines.session import Session
    from dfm.pipelines.evaluate import EvaluationOptions, evaluate_video, machine_info, to_jsonable
    from dfm.io.files import atomic_write_text

    clips = sorted(args.folder.glob("*.mp4"))
    if not clips:
        print(f"no .mp4 clips in {args.folder}", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="dfm-eval-"))
    workspace = args.workspace or work / "workspace"
    session = Session(workspace=workspace, progress=False, analysis=AnalysisOptions())
    machine = machine_info()
    started = machine["date"]
    t0 = time.perf_counter()
    docs = []
    for clip in clips:
        c0 = time.perf_counter()
        doc = evaluate_video(session, clip, work / clip.stem,
                             EvaluationOptions(split=args.split, heatmaps=args.heatmaps, edit_run=not args.no_edit_run),
                             overwrite=True)
        docs.append(doc)
        a, b = doc["self_reenactment"]["summary"]["A"], doc["self_reenactment"]["summary"].get("B", {})
        print(f"{clip.name}: A {a['apd']:.2f}/{a['face_apd']:.2f}/{a['mouth_apd']:.2f}  "
              f"B {b.get('apd', float('nan')):.2f}/{b.get('face_apd', float('nan')):.2f}/{b.get('mouth_apd', float('nan')):.2f}  "
              f"({time.perf_counter() - c0:.0f} s)", flush=True)
    machine["loadavg_end"] = machine_info()["loadavg_1_5_15"]
    wall = time.perf_counter() - t0
    command = "python benchmarks/run_evaluation.py" + (f" {args.folder}" if args.folder != SHARED / "data" / "videos" else "")
    code = code_state()
    md = results_markdown(docs, machine, started, wall, command, code) + kept_sections(args.results)
    atomic_write_text(args.results, md)
    atomic_write_text(work / "all.json", json.dumps(to_jsonable({"machine": machine, "started": started, "wall_s": wall,
                                                                 "command": command, "code": code, "docs": docs}),
                                                     indent=2))
    print(md)
    print(f"wrote {args.results}; per-clip reports in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
