"""`dfm evaluate`: the whole evaluation of one video, written to a folder.

1. Self-reenactment (paper §4.2, Table 1; `dfm.eval.reenactment`): settings A and B on the last 30 % of
   the frames, APD / Face-APD / Mouth-APD / PSNR / SSIM, error heat maps of a few test frames.
2. An edit run with the product's own job (`Session.edit`, as `dfm edit`: analysis -> decoder on the
   whole video -> plan -> pool -> warp renderer -> encode; here losslessly encoded so untouched frames
   decode bit-exact), with a default edit list (`default_edits`) unless edits are given; its output is
   analysed again (tracking, fit, affect) to measure
   - emotion fidelity (`dfm.eval.fidelity`),
   - temporal stability (`dfm.eval.stability`: crop change outside edits / at edit boundaries, landmark
     jitter of the re-tracked output),
   - how well the output's re-fitted expression matches the plan's target.
3. Speed: seconds and frames/s per stage (decode, track, fit, affect: from the analysis run, read from
   `track.meta['seconds']`; decoder, plan, render (= pool + render), encode: from the edit job's report)
   and end to end.

4. Optionally (`emotion_matrix`) the emotion matrix: every label over the whole video, re-analysed
   (dfm.pipelines.emotion_matrix).

Files in the output folder: evaluation.json, evaluation.md, per_frame.csv, heatmaps/*.png, edited.mp4 (+ its
disclosure sidecar edited.dfm.json); with the emotion matrix also emotion_matrix.json / .md and matrix/.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dfm.errors import DfmError, InputError
from dfm.eval.metrics import METRIC_NAMES
from dfm.eval.reenactment import ProtocolConfig, VARIANTS, VideoTrainingFrames, run_self_reenactment, split_frames
from dfm.eval.report import PAPER, reenactment_table, write_heatmap
from dfm.eval.stability import CropChange, jitter_report
from dfm.eval.fidelity import emotion_fidelity
from dfm.io.files import atomic_write_text
from dfm.io.video import DEFAULT_CRF

from dfm.render.registry import RENDERERS

OUTPUT_FILES = ("evaluation.json", "evaluation.md", "per_frame.csv", "edited.mp4", "edited.dfm.json", "heatmaps",
                "emotion_matrix.json", "emotion_matrix.md", "matrix")


@dataclass
class EvaluationOptions:
    split: float = 0.7
    renderer: str = "warp"
    edits: Any = None  # EditList / list of Edit; None = default_edits(track)
    seed: int = 0
    heatmaps: int = 4
    edit_run: bool = True
    decoder: str = "fast"
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    emotion_matrix: bool = False  # edit the whole video to every label (dfm.pipelines.emotion_matrix)
    collection: tuple = ()  # the person's other videos, for the emotion matrix's edits


def default_edits(track) -> Any:
    """Two labelled edits that cover most of the video: happy:high over 15-45 % of its duration and
    sad:high over 55-85 % (two opposite labels, so one of them differs from whatever the person shows)."""
    from dfm.edits import Edit, EditList

    n = track.n_frames
    a, b, c, d = (int(round(x * n)) for x in (0.15, 0.45, 0.55, 0.85))
    return EditList([Edit(a, b, "happy", "high", unit="frames"), Edit(c, d, "sad", "high", unit="frames")])


def machine_info() -> dict[str, Any]:
    """CPU, cores, Python / platform, load average and the date: where and when the figures were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        load = None
    return {"cpu": cpu, "cores": cores, "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_1_5_15": load, "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}


def _check_output_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"output path exists and is not a folder: {out}")
    if out.exists() and not overwrite:
        clash = [name for name in OUTPUT_FILES if (out / name).exists()]
        if clash:
            raise InputError(f"{out} already holds an evaluation ({', '.join(clash)}); use --overwrite or another folder")
    out.mkdir(parents=True, exist_ok=True)


def _fps(n: int, seconds: float | None) -> float | None:
    if seconds is None or seconds <= 0:
        return None
    return n / seconds


def evaluate_video(session, video: str | os.PathLike, out_dir: str | os.PathLike,
                   options: EvaluationOptions | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Run the evaluation of one video (see module doc); returns the JSON document it wrote."""
    from dfm.io.video import iter_frames, probe_video

    opts = options or EvaluationOptions()
    from dfm.render.registry import check_renderer_name

    opts = replace(opts, renderer=check_renderer_name(opts.renderer))
    if not 0.0 < opts.split < 1.0:
        raise DfmError(f"--split must be between 0 and 1 (exclusive), got {opts.split}")
    video = Path(video)
    out = Path(out_dir)
    progress = bool(getattr(session, "progress", False))
    info = probe_video(video)
    _check_output_dir(out, overwrite)
    machine_start = machine_info()

    t0 = time.perf_counter()
    track = session.analyze(video)
    t_analysis = time.perf_counter() - t0
    model = session.models.model
    n = track.n_frames
    train, test = split_frames(n, opts.split)

    # ------------------------------------------------------------------------- 1. self-reenactment
    cfg = replace(opts.protocol, split=opts.split, heatmap_frames=opts.heatmaps, decoder=opts.decoder)
    from dfm.pipelines.renderer_eval import protocol_render_hook

    hook = protocol_render_hook(session, track, opts.renderer, opts.split)  # trained on the training frames only
    training_frames = VideoTrainingFrames(video, len(train))  # decodes [0, n_train) only
    test_frames = {f.index: f.image for f in iter_frames(video, int(test[0]), n)}
    result = run_self_reenactment(model, track, training_frames, test_frames.__getitem__, cfg, progress=progress,
                                  render_hook=hook)
    del training_frames, test_frames
    heat_paths = []
    for rec in result.heatmaps:
        heat_paths.append(str(write_heatmap(rec, out / "heatmaps" / f"heatmap_f{rec['index']:05d}.png").relative_to(out)))

    doc: dict[str, Any] = {
        "video": str(video.resolve()),
        "frames": n, "fps": track.fps, "width": track.width, "height": track.height,
        "valid_frames": int(np.asarray(track.valid).sum()),
        "renderer": opts.renderer,
        "affect_estimator": track.meta.get("affect_estimator"),
        "machine": machine_start,
        "self_reenactment": result.to_dict(per_frame=False),
        "paper": PAPER,
        "heatmaps": heat_paths,
    }

    # --------------------------------------------------------------------------------- 2. edit run
    speed: dict[str, Any] = {}
    if opts.edit_run:
        doc["edit_run"], speed = _edit_run(session, video, info, track, opts, out, overwrite, progress)

    if opts.emotion_matrix:  # every label over the whole video, re-analysed (emotion_matrix.json / .md)
        from dfm.pipelines.emotion_matrix import run_emotion_matrix

        doc["emotion_matrix"] = run_emotion_matrix(session, video, out, collection=opts.collection, seed=opts.seed,
                                                   overwrite=overwrite)

    # ------------------------------------------------------------------------------------ 3. speed
    secs = dict(track.meta.get("seconds", {}))
    stages: dict[str, dict[str, Any]] = {}
    for name in ("decode", "track", "fit", "affect"):
        if name in secs:
            stages[name] = {"seconds": float(secs[name]), "fps": _fps(n, float(secs[name])), "from": "analysis run"}
    for name, s in speed.get("stages", {}).items():
        stages[name] = {"seconds": s, "fps": _fps(n, s), "from": "edit run"}
    total = sum(v["seconds"] for k, v in stages.items() if k in ("decode", "track", "fit", "affect", "plan", "render", "encode"))
    if "decoder" in stages:
        stages["decoder"]["from"] = "edit run (training, once per person: not in end to end)"
    doc["speed"] = {
        "frames": n, "stages": stages,
        "end_to_end": {"seconds": total, "fps": _fps(n, total),
                       "stages": "decode+track+fit+affect (analysis) + plan+render+encode (edit run)"},
        "analysis_cached": bool(track.meta.get("cached", False)),
        "analysis_seconds_this_call": t_analysis,
        "note": "analysis stage times are those of the run that filled the cache" if track.meta.get("cached") else
                "all stages measured in this call",
        **{k: v for k, v in speed.items() if k != "stages"},
    }
    doc["machine"]["loadavg_end"] = machine_info()["loadavg_1_5_15"]

    atomic_write_text(out / "evaluation.json", json.dumps(_jsonable(doc), indent=2))
    atomic_write_text(out / "evaluation.md", markdown_report(doc))
    atomic_write_text(out / "per_frame.csv", _per_frame_csv(result))
    return doc


def _edit_run(session, video: Path, info, track, opts: EvaluationOptions, out: Path, overwrite: bool,
              progress: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Edit the video with the product's own job (`Session.edit`, losslessly encoded so that untouched
    frames decode bit-exact), re-analyse the output and measure fidelity and stability on the files."""
    from dfm.pipelines.edit import EditOptions
    from dfm.edits import DEFAULT_TRANSITION_FRAMES, EditList
    from dfm.io.video import iter_frames

    n = track.n_frames
    edits = opts.edits if opts.edits is not None else default_edits(track)
    edit_list = edits if isinstance(edits, EditList) else EditList(list(edits))
    transition = DEFAULT_TRANSITION_FRAMES
    if opts.edits is None:  # the default edits: ramps of a fifth of the edit (<= the planner's default)
        shortest = min(int(e.end) - int(e.start) for e in edit_list)
        transition = int(min(DEFAULT_TRANSITION_FRAMES, max(2, round(0.2 * shortest))))
    out_video = out / "edited.mp4"
    job = session.edit(video, edit_list, out_video,
                       EditOptions(seed=opts.seed, transition_frames=transition, lossless=True, overwrite=overwrite,
                                   renderer=opts.renderer))
    report = job.report
    # the same plan the job rendered (same track, cached decoder, seed, transitions and speech setting)
    plan = session.plan(video, edit_list, track=track, seed=opts.seed, transition_frames=transition,
                        preserve_speech=report.get("preserve_speech_edits", bool(report.get("preserve_speech"))))

    t0 = time.perf_counter()
    change = CropChange(track.landmarks, np.asarray(track.valid, bool))
    n_out = 0
    bar = _progress(n, "stability", progress)
    for f_in, f_out in zip(iter_frames(video), iter_frames(out_video)):
        change.add(f_in.index, f_in.image, f_out.image, float(plan.weight[f_in.index]))
        n_out += 1
        bar.update(1)
    bar.close()
    if n_out != n:
        raise DfmError(f"the edited video has {n_out} frames, the input {n}")
    t_stability = time.perf_counter() - t0

    t4 = time.perf_counter()
    out_track = session.analyze(out_video)
    t_reanalysis = time.perf_counter() - t4

    va_in = np.stack([track.valence, track.arousal], 1) if track.valence is not None else np.full((n, 2), np.nan)
    va_out = (np.stack([out_track.valence, out_track.arousal], 1) if out_track.valence is not None
              else np.full((n, 2), np.nan))
    va_in = np.where(np.asarray(track.valid)[:, None], va_in, np.nan)
    va_out = np.where(np.asarray(out_track.valid)[:, None], va_out, np.nan)
    classes = list(track.meta.get("affect_classes") or [])
    fidelity = emotion_fidelity(plan.edit_index, plan.weight, plan.edits, va_out, va_in,
                                out_track.affect_probs, track.affect_probs, classes)
    jitter = jitter_report(track.landmarks, track.valid, out_track.landmarks, out_track.valid, plan.weight)
    expression = _expression_check(plan, track, out_track)

    secs = report.get("seconds", {})
    edited = int((plan.weight > 0).sum())
    run = {
        "edits": [r.to_dict() for r in plan.edits],
        "edits_arg": [r.edit.to_arg(safe=True) for r in plan.edits],
        "decoder": report.get("decoder", {}).get("source"),
        "decoder_choice": report.get("decoder", {}).get("choice_line"),
        "plan_seed": plan.seed,
        "transition_frames": plan.transition_frames,
        "preserve_speech": bool(plan.speech_channels),
        "edited_frames": edited,
        "output": str(out_video),
        "encoding": "x264 lossless (qp 0): frames outside edits decode bit-exact",
        "job_warnings": report.get("warnings", []),
        "renderer_report": report.get("render"),
        "emotion_fidelity": fidelity,
        "stability": {"crop_change": change.result(), "landmark_jitter": jitter},
        "expression_check": expression,
        "seconds": {"stability": t_stability, "reanalysis": t_reanalysis},
    }
    render_s = float(secs.get("pool", 0.0)) + float(secs.get("render", 0.0))
    speed = {
        "stages": {"decoder": float(secs.get("decoder", 0.0)), "plan": float(secs.get("plan", 0.0)),
                   "render": render_s, "encode": float(secs.get("encode", 0.0))},
        "detail": {"edit_job_seconds": secs, "edited_frames": edited,
                   "render_fps_edited": _fps(edited, float(secs.get("render", 0.0))),
                   "render_encode_fps": report.get("render_encode_fps"),
                   "encode_note": f"lossless x264 (qp 0); `dfm edit` encodes at crf {DEFAULT_CRF:g} by default"},
    }
    return run, speed


def _expression_check(plan, track, out_track) -> dict[str, Any]:
    """RMS distance (53 coefficients) between the plan's target and the fitted expression, on the
    full-weight edited frames: of the input (what the edit asked to change) and of the re-analysed output."""
    sel = (plan.weight >= 0.999) & np.asarray(track.valid, bool) & np.asarray(out_track.valid, bool)
    if not sel.any():
        return {"frames": 0}
    tgt = np.asarray(plan.target, np.float64)[sel]
    e_in = np.asarray(track.expression, np.float64)[sel]
    e_out = np.asarray(out_track.expression, np.float64)[sel]
    from dfm.face.expressions import EXPRESSION_INDEX

    smile = [EXPRESSION_INDEX["mouthSmile_L"], EXPRESSION_INDEX["mouthSmile_R"]]
    frown = [EXPRESSION_INDEX["mouthFrown_L"], EXPRESSION_INDEX["mouthFrown_R"]]
    out: dict[str, Any] = {
        "frames": int(sel.sum()),
        "rms_target_vs_input": float(np.sqrt(((tgt - e_in) ** 2).mean())),
        "rms_target_vs_output": float(np.sqrt(((tgt - e_out) ** 2).mean())),
        "per_edit": [],
    }
    for r in plan.edits:
        s = sel & (plan.edit_index == r.index)
        if not s.any():
            continue
        out["per_edit"].append({
            "edit": r.index, "label": r.label,
            "smile": {"target": float(plan.target[s][:, smile].mean()), "input": float(track.expression[s][:, smile].mean()),
                      "output": float(out_track.expression[s][:, smile].mean())},
            "frown": {"target": float(plan.target[s][:, frown].mean()), "input": float(track.expression[s][:, frown].mean()),
                      "output": float(out_track.expression[s][:, frown].mean())},
        })
    return out


# ------------------------------------------------------------------------------------------ writing

def to_jsonable(x: Any) -> Any:
    """A copy of x that json.dumps writes as strict JSON (NaN -> null, inf -> \"inf\", numpy -> Python)."""
    return _jsonable(x)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return None if math.isnan(v) else ("inf" if math.isinf(v) else v)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, Path):
        return str(x)
    return x


def _per_frame_csv(result) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    variants = [v for v in VARIANTS if any(v in r.metrics for r in result.frames)]
    w.writerow(["frame", "source_A", "source_B", "pose_deg_A", "pose_deg_B"]
               + [f"{v}_{m}" for v in variants for m in METRIC_NAMES])
    for r in result.frames:
        row = [r.index, r.source.get("A", ""), r.source.get("B", ""),
               _num(r.pose_angle_deg.get("A")), _num(r.pose_angle_deg.get("B"))]
        row += [_num(r.metrics.get(v, {}).get(m)) for v in variants for m in METRIC_NAMES]
        w.writerow(row)
    return buf.getvalue()


def _num(x: Any) -> str:
    if x is None:
        return ""
    v = float(x)
    return "" if math.isnan(v) else f"{v:.4f}"


def _f(x: Any, d: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    v = float(x)
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "inf"
    return f"{v:.{d}f}"


def markdown_report(doc: dict[str, Any]) -> str:
    """The human-readable evaluation.md."""
    sr = doc["self_reenactment"]
    m = doc["machine"]
    lines = [
        f"# DFM evaluation: {Path(doc['video']).name}",
        "",
        f"{doc['frames']} frames ({doc['valid_frames']} with a face), {doc['width']}x{doc['height']}, "
        f"{doc['fps']:.3f} fps; renderer: {doc['renderer']}; affect estimator: {doc.get('affect_estimator')}.",
        f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores), load average at start "
        f"{m.get('loadavg_1_5_15')}, at end {m.get('loadavg_end')}.",
        "",
        "## Self-reenactment (paper §4.2, Table 1)",
        "",
        f"Frames {sr['train_frames'][0]}..{sr['train_frames'][1] - 1} train, {sr['test_frames'][0]}.."
        f"{sr['test_frames'][1] - 1} test (split {sr['config']['split']}). Source of each test frame: "
        f"{sr['config']['source_rule']}. 256x256 crops from the test frame's landmarks; Mouth-APD over the "
        f"{sr['config']['mouth_apd_mask']}.",
        "",
        reenactment_table(sr["summary"]),
        "",
        _decoder_line(sr["decoder"]),
        "",
    ]
    if doc.get("heatmaps"):
        lines += ["Heat maps (per-pixel RGB error, paper Fig. 9): " + ", ".join(f"[{Path(p).name}]({p})" for p in doc["heatmaps"]), ""]
    run = doc.get("edit_run")
    if run:
        fid = run["emotion_fidelity"]
        lines += ["## Edit run", "", f"`Session.edit` (as `dfm edit`, lossless encoding) with edits "
                  f"{', '.join(run['edits_arg'])} (transitions {run['transition_frames']} frames, decoder: "
                  f"{run['decoder']}, speech preservation {'on' if run['preserve_speech'] else 'off'}); "
                  f"{run['edited_frames']} edited frames; output re-analysed.", "",
                  *([f"Edit-run decoder: {run['decoder_choice']}.", ""] if run.get("decoder_choice") else []),
                  "### Emotion fidelity (full-weight edited frames)", "",
                  "| edit | frames | in region: output | input | in label sector: output | input | distance: output | input | label called: output | input | mean VA output | input |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
        for e in fid["edits"]:
            o, i = e["output"], e["input"]
            lines.append(f"| {e['label']} {_f(e['intensity'])} | {o['frames']} | {_f(o['in_region'])} | {_f(i['in_region'])} | "
                         f"{_f(o['in_sector'])} | {_f(i['in_sector'])} | "
                         f"{_f(o['distance'], 3)} | {_f(i['distance'], 3)} | {_f(o['label_share'])} | {_f(i['label_share'])} | "
                         f"({_f(o['mean_va'][0])}, {_f(o['mean_va'][1])}) | ({_f(i['mean_va'][0])}, {_f(i['mean_va'][1])}) |")
        ov = fid["overall"]
        lines.append(f"| all | {ov['output']['frames']} | {_f(ov['output']['in_region'])} | {_f(ov['input']['in_region'])} | "
                     f"{_f(ov['output']['in_sector'])} | {_f(ov['input']['in_sector'])} | "
                     f"{_f(ov['output']['distance'], 3)} | {_f(ov['input']['distance'], 3)} | {_f(ov['output']['label_share'])} | "
                     f"{_f(ov['input']['label_share'])} | | |")
        st = run["stability"]
        cc = st["crop_change"]
        lines += ["", "### Temporal stability", "",
                  "| frame pairs | pairs | crop change input | output |", "|---|---:|---:|---:|"]
        for g in ("outside", "boundary", "inside"):
            lines.append(f"| {g} edits | {cc[g]['pairs']} | {_f(cc[g]['input'], 3)} | {_f(cc[g]['output'], 3)} |")
        lines.append(f"\nCrop change: mean |crop(t) - crop(t-1)| (0..255) of the 256x256 face crop, input and decoded "
                     f"output. Outside edits the output equals the input: {cc['outside_equal']}.\n")
        lines += ["| landmark jitter (2nd difference) | input px | output px | input % IOD | output % IOD | output/input |",
                  "|---|---:|---:|---:|---:|---:|"]
        for k, v in st["landmark_jitter"].items():
            lines.append(f"| {k} | {_f(v['input']['px'], 3)} | {_f(v['output']['px'], 3)} | {_f(v['input']['iod_pct'], 3)} | "
                         f"{_f(v['output']['iod_pct'], 3)} | {_f(v['ratio'])} |")
        ex = run["expression_check"]
        if ex.get("frames"):
            lines += ["", f"Re-fitted expression vs the plan's target (RMS over 53 coefficients, full-weight frames): "
                      f"input {_f(ex['rms_target_vs_input'], 3)}, output {_f(ex['rms_target_vs_output'], 3)}."]
            for e in ex["per_edit"]:
                lines.append(f"- edit {e['edit'] + 1} ({e['label']}): smile target {_f(e['smile']['target'])}, input "
                             f"{_f(e['smile']['input'])}, output {_f(e['smile']['output'])}; frown target "
                             f"{_f(e['frown']['target'])}, input {_f(e['frown']['input'])}, output {_f(e['frown']['output'])}")
    em = doc.get("emotion_matrix")
    if em:
        from dfm.eval.emotion_matrix import MatrixCell, markdown_table

        cells = [MatrixCell(**{k: v for k, v in c.items() if k != "name"}) for c in em["cells"]]
        lines += ["", "## Emotion matrix", "", f"Each row: the whole video edited to that label (`Session.edit`), "
                  f"re-analysed; figures over the {cells[0].frames if cells else 0} full-weight frames. Decoder: "
                  f"{(em.get('decoder') or {}).get('choice_line') or (em.get('decoder') or {}).get('source')}. "
                  f"Contact sheet (frame {em['contact_frame']}): [{em['contact_sheet']}]({em['contact_sheet']}).", "",
                  markdown_table(cells)]
    sp = doc.get("speed")
    if sp:
        lines += ["", "## Speed", "", "| stage | seconds | frames/s | measured in |", "|---|---:|---:|---|"]
        for name, s in sp["stages"].items():
            lines.append(f"| {name} | {_f(s['seconds'])} | {_f(s['fps'], 1)} | {s['from']} |")
        e2e = sp["end_to_end"]
        lines.append(f"| end to end | {_f(e2e['seconds'])} | {_f(e2e['fps'], 1)} | {e2e['stages']} |")
        lines.append(f"\n{sp['note']}.")
    return "\n".join(lines) + "\n"


def _decoder_line(d: dict[str, Any]) -> str:
    if not d.get("available"):
        return "Setting B: not available (no affect estimates)."
    choice = d.get("choice") or {}
    chosen = (f"; chosen on the time-block validation: {choice['chosen']} (candidates: "
              + ", ".join(f"{k} {_f(v, 3)}" for k, v in choice.get("candidates", {}).items()) + ")") if choice else ""
    return (f"Decoder for B: `{d.get('preset')}` PersonDecoder on {d.get('n_pairs')} training pairs; validation RMSE "
            f"{_f(d.get('rmse_val'), 3)} (mean-expression baseline {_f(d.get('rmse_val_baseline'), 3)}){chosen}; on "
            f"the test frames its expression is {_f(d.get('test_rmse_vs_fitted'), 3)} RMS from the fitted one.")


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=not enabled, leave=False, dynamic_ncols=True)


__all__ = ["EvaluationOptions", "default_edits", "evaluate_video", "machine_info", "markdown_report", "RENDERERS",
           "to_jsonable"]
