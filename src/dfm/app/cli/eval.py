"""`dfm evaluate`: the paper's self-reenactment protocol, emotion fidelity, stability and speed of one video.

Registered by `dfm.app.cli.main.build_parser` with `register(sub)`; the work is done by `dfm.pipelines.evaluate.evaluate_video`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> argparse.ArgumentParser:
    """Add the `evaluate` command to the `dfm` sub-command parsers `sub`."""
    p = sub.add_parser(
        "evaluate",
        help="self-reenactment metrics (APD / Face-APD / Mouth-APD, settings A and B), emotion fidelity, stability, speed",
        description="Evaluate the renderer on one video with the paper's self-reenactment protocol (first SPLIT of "
                    "the frames train, the rest test), and an edit run for emotion fidelity, temporal stability and "
                    "speed. Writes evaluation.json, evaluation.md, per_frame.csv, heatmaps/*.png and edited.mp4.",
    )
    p.add_argument("video", type=Path)
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--split", type=float, default=0.7, help="share of the frames, from the start, that train (default 0.7)")
    p.add_argument("--renderer", default="warp", help="renderer to evaluate: warp (default), warp+refine or neural (trained on the training frames: "
                        "`dfm renderer train VIDEO [--refiner] --frames train`)")
    p.add_argument("--json", action="store_true", help="also print the evaluation JSON on stdout")
    p.add_argument("--edit", action="append", default=[], metavar="EDIT",
                   help="edit for the fidelity/stability run, e.g. happy:high:2-5.5 (repeatable; default: happy:high "
                        "over 15-45%% and sad:high over 55-85%% of the video)")
    p.add_argument("--edits", type=Path, default=None, help="edit list JSON file for the fidelity/stability run")
    p.add_argument("--no-edit-run", action="store_true", help="self-reenactment only (no fidelity/stability/render speed)")
    p.add_argument("--emotion-matrix", action="store_true",
                   help="also edit the whole video to every label (high; sad and surprise also low/medium), re-analyse "
                        "and report per label the share of frames called that label, its mean class probability and "
                        "the landmark jitter ratio (emotion_matrix.md, matrix/contact_sheet.png)")
    p.add_argument("--collection", nargs="+", type=Path, default=[], metavar="VIDEO",
                   help="the person's other videos, used by the emotion matrix's edits (decoder pairs, appearance)")
    p.add_argument("--heatmaps", type=int, default=4, help="test frames with an error heat map PNG (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the edit plan (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an evaluation already in the output folder")
    p.add_argument("--affect", default="fer", help="affect estimator: fer (default), emonet")
    p.add_argument("--affect-weights", default=None, help="weights file for the affect estimator (emonet: emonet_8.pth)")
    from dfm.app.cli.parallel_args import add_parallel_arguments

    add_parallel_arguments(p)
    p.set_defaults(handler=cmd_evaluate)
    return p


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dfm.app.cli.main import _session
    from dfm.errors import DfmError
    from dfm.pipelines.evaluate import EvaluationOptions, evaluate_video

    if args.affect.strip().lower() == "none":
        raise DfmError("dfm evaluate needs an affect estimator (setting B and emotion fidelity); use --affect fer or emonet")
    if args.heatmaps < 0:
        raise DfmError(f"--heatmaps must be >= 0, got {args.heatmaps}")
    edits = None
    if args.edit or args.edits is not None:
        from dfm.edits import edits_from_args

        edits = edits_from_args(args.edits, args.edit)
    opts = EvaluationOptions(split=args.split, renderer=args.renderer.strip().lower(), edits=edits, seed=args.seed,
                             heatmaps=args.heatmaps, edit_run=not args.no_edit_run,
                             emotion_matrix=args.emotion_matrix, collection=tuple(args.collection))
    session = _session(args)
    doc = evaluate_video(session, args.video, args.output, opts, overwrite=args.overwrite)
    if args.json:
        print((args.output / "evaluation.json").read_text())
    else:
        summary = doc["self_reenactment"]["summary"]
        for s in ("A", "B"):
            if s in summary:
                m = summary[s]
                print(f"setting {s}: APD {m['apd']:.2f}  Face-APD {m['face_apd']:.2f}  Mouth-APD {m['mouth_apd']:.2f}  "
                      f"PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.3f}  ({int(m['frames'])} test frames)")
        if "edit_run" in doc:
            fo = doc["edit_run"]["emotion_fidelity"]["overall"]
            print(f"emotion fidelity: {_pct(fo['output']['in_region'])} of edited frames in the requested VA region "
                  f"(input: {_pct(fo['input']['in_region'])})")
        dec = doc["self_reenactment"].get("decoder", {}).get("choice")
        if dec:
            print(f"decoder: {dec['chosen']} (validation RMSE {dec['rmse_val']:.4f}, mean baseline "
                  f"{dec['rmse_val_baseline']:.4f})")
        for c in doc.get("emotion_matrix", {}).get("cells", []):
            print(f"emotion matrix {c['name']}: called {_pct(c['share_output'])} (input {_pct(c['share_input'])}), "
                  f"mean prob {c['prob_output'] if c['prob_output'] is None else round(c['prob_output'], 2)}, "
                  f"jitter ratio {c['jitter_ratio']:.2f}")
        e2e = doc["speed"]["end_to_end"]
        if e2e.get("fps"):
            print(f"end to end: {e2e['fps']:.1f} frames/s")
        print(f"report: {args.output / 'evaluation.md'}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _pct(x) -> str:
    return "–" if x is None or x != x else f"{100 * x:.0f}%"
