"""The `dfm` command line. Every command calls the same Python API as the web tool (dfm.pipelines.session).

User mistakes (bad paths, bad edits, missing models) print one line `dfm: error: ...` and exit with 2;
anything else is a bug and keeps its traceback. Ctrl-C (SIGINT) and SIGTERM stop the job cleanly: the
with-blocks delete their temporary files and release their locks, then one line and exit 130 / 143.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Callable, Sequence

from dfm import __version__
from dfm.app.cli.parallel_args import add_parallel_arguments, parallel_options
from dfm.errors import DfmError, DfmWarning

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dfm", description="Deep Facial Manipulator: edit the emotions on a face in a video.")
    p.add_argument("--version", action="version", version=f"dfm {__version__}")
    p.add_argument("--workspace", type=Path, default=None,
                   help="folder for caches and intermediate results (default: $DFM_WORKSPACE or ~/.cache/dfm/workspace)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true", help="also show the native libraries' log lines (MediaPipe, TFLite)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = sub.add_parser

    def add_parser(name: str, **kw) -> argparse.ArgumentParser:
        sp = add(name, **kw)
        _common_args(sp)
        return sp

    sub.add_parser = add_parser  # type: ignore[method-assign]

    models = sub.add_parser("models", help="list or download the model files")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    ml = msub.add_parser("list", help="which model files are present and where")
    ml.add_argument("--json", action="store_true")
    ml.set_defaults(handler=cmd_models_list)
    md = msub.add_parser("download", help="fetch missing model files (SHA-256 checked) into the user cache")
    md.set_defaults(handler=cmd_models_download)

    an = sub.add_parser("analyze", help="track and fit the face in every frame (cached)")
    an.add_argument("video", type=Path)
    an.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    an.add_argument("--force", action="store_true", help="ignore the cache")
    _affect_args(an)
    _subject_args(an)
    add_parallel_arguments(an)
    an.set_defaults(handler=cmd_analyze)

    ins = sub.add_parser("inspect", help="write an overlay video and expression plots to check the fit")
    ins.add_argument("video", type=Path)
    ins.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    ins.add_argument("--overwrite", action="store_true")
    _affect_args(ins)
    _subject_args(ins)
    add_parallel_arguments(ins)
    ins.set_defaults(handler=cmd_inspect)
    pl = sub.add_parser("plan", help="turn edits into a per-frame target expression (writes plan.npz + a plot)")
    pl.add_argument("video", type=Path)
    _edit_args(pl)
    pl.add_argument("-o", "--output", type=Path, required=True, help="plan file (.npz); a .png plot is written beside it")
    pl.add_argument("--overwrite", action="store_true")
    _affect_args(pl)
    _subject_args(pl)
    add_parallel_arguments(pl)
    pl.set_defaults(handler=cmd_plan)

    ed = sub.add_parser("edit", help="the whole job: edits in, manipulated video out (with disclosure)")
    ed.add_argument("video", type=Path)
    _edit_args(ed)
    ed.add_argument("-o", "--output", type=Path, required=True, help="output video (.mp4)")
    ed.add_argument("--person", default=None, help="use this person's trained decoder (dfm person add/train)")
    ed.add_argument("--collection", type=Path, nargs="+", default=[], metavar="VIDEO",
                    help="more videos of the same person: data for the decoder and frames for appearance")
    ed.add_argument("--lossless", action="store_true", help="x264 qp 0: unedited frames decode bit-exact")
    ed.add_argument("--side-by-side", type=Path, default=None, metavar="PATH", help="also write input | output")
    ed.add_argument("--overwrite", action="store_true")
    ed.add_argument("--json", action="store_true", help="print the job report (JSON) on stdout")
    ed.add_argument("--sign-cert", type=Path, default=None, metavar="PEM",
                    help="sign the Content Credentials with this certificate chain (default: $DFM_C2PA_CERT, "
                         "else a local test certificate)")
    ed.add_argument("--sign-key", type=Path, default=None, metavar="PEM", help="its private key ($DFM_C2PA_KEY)")
    ed.add_argument("--force-analysis", action="store_true", help="analyse the video again, ignoring the cache")
    _renderer_arg(ed)
    _affect_args(ed)
    _subject_args(ed)
    add_parallel_arguments(ed)
    ed.set_defaults(handler=cmd_edit)

    pv = sub.add_parser("preview", help="render one frame of an edit fast (PNG)")
    pv.add_argument("video", type=Path)
    _edit_args(pv)
    pv.add_argument("--at", type=float, required=True, metavar="SECONDS", help="time of the frame")
    pv.add_argument("--person", default=None)
    pv.add_argument("-o", "--output", type=Path, required=True, help="PNG file")
    pv.add_argument("--overwrite", action="store_true")
    _renderer_arg(pv)
    _affect_args(pv)
    _subject_args(pv)
    add_parallel_arguments(pv)
    pv.set_defaults(handler=cmd_preview)

    from dfm.app.cli.person import register as register_person

    register_person(sub)

    from dfm.app.cli.eval import register as register_eval

    register_eval(sub)

    from dfm.app.cli.verify import register as register_verify

    register_verify(sub)

    from dfm.app.cli.gui import register as register_gui

    register_gui(sub)

    from dfm.app.cli.renderer import register as register_renderer

    register_renderer(sub)

    from dfm.app.cli.batch import register as register_batch

    register_batch(sub)
    return p


def _edit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--edits", type=Path, default=None, help="edit list JSON file")
    p.add_argument("--edit", action="append", default=[], metavar="LABEL:INTENSITY:START-END",
                   help="an edit, e.g. happy:high:2.0-5.5 or sad:0.7:f48-f120 (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the VA trajectory sampling (recorded)")
    p.add_argument("--transitions", type=int, default=20, help="frames of blend at each end of an edit")
    speech = p.add_mutually_exclusive_group()
    speech.add_argument("--preserve-speech", dest="preserve_speech", action="store_true", default=None,
                        help="keep the original lip/jaw articulation (default: per edit, on when the audio has speech "
                             "or the face is seen talking near it)")
    speech.add_argument("--no-preserve-speech", dest="preserve_speech", action="store_false")


def _renderer_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--renderer", default="warp", metavar="NAME",
                   help="warp (default, no training), warp+refine or neural (trained with `dfm renderer train`)")


def _common_args(p: argparse.ArgumentParser) -> None:
    # Also accepted after the command name; SUPPRESS keeps the top-level value when not given here.
    p.add_argument("--workspace", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _affect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--affect", default="fer", help="affect estimator: fer (default), emonet, none")
    p.add_argument("--affect-weights", default=None, help="weights file for the affect estimator (emonet: emonet_8.pth)")


def _subject_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subject", type=_subject_spec, default=None, metavar="WHO",
                   help="which face to edit: largest (default), leftmost, rightmost, or the face under a point "
                        "at a time or frame: 2.5s:320,180, f60:320,180")


def _subject_spec(text: str):
    from dfm.errors import InputError
    from dfm.face.subject import parse_subject

    try:
        return parse_subject(text)
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _session(args: argparse.Namespace):
    """The command's Session (one per command: main() closes it, stopping its worker processes)."""
    from dfm.face.subject import SubjectSpec
    from dfm.pipelines.analyze import AnalysisOptions, default_workspace
    from dfm.pipelines.session import Session

    if getattr(args, "session_", None) is None:
        options = AnalysisOptions(affect=getattr(args, "affect", "fer"),
                                  affect_weights=getattr(args, "affect_weights", None),
                                  subject=getattr(args, "subject", None) or SubjectSpec())
        args.session_ = Session(workspace=args.workspace or default_workspace(), progress=not args.quiet,
                                analysis=options, parallel=parallel_options(args))
    return args.session_


def cmd_models_list(args: argparse.Namespace) -> int:
    from dfm.assets import AssetStore

    rows = AssetStore.from_env().status()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        state = "present" if r["present"] else ("missing (user-supplied)" if r["user_supplied"] else "missing")
        print(f"{r['name']:26s} {state:24s} {r['path'] or ''}")
        print(f"{'':26s} {r['license']}; from {r['upstream']}")
    return 0


def cmd_models_download(args: argparse.Namespace) -> int:
    from dfm.assets import AssetStore

    store = AssetStore.from_env()
    fetched = store.download_missing(log=lambda m: print(m, file=sys.stderr))
    print(f"downloaded {len(fetched)} asset(s) into {store.cache_models}" if fetched else "all downloadable assets are present")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from dfm.pipelines.session import analysis_summary

    track = _session(args).analyze(args.video, force=args.force)
    summary = analysis_summary(track)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{args.video}: {summary['valid_frames']}/{summary['frames']} frames with a fitted face, "
              f"{summary['fps']:.3f} fps; track: {summary['track']}")
        if "mean_valence" in summary and summary["mean_valence"] is not None:
            print(f"mean valence {summary['mean_valence']:+.2f}, arousal {summary['mean_arousal']:+.2f}")
        for line in _subject_lines(summary.get("subject")):
            print(line)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    outputs = _session(args).inspect(args.video, args.output, overwrite=args.overwrite)
    for name, path in outputs.items():
        print(f"{name}: {path}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from dfm.edits import edits_from_args, plot_plan

    from dfm.io.paths import check_output_file

    check_output_file(args.output, overwrite=args.overwrite)
    session = _session(args)
    edits = edits_from_args(args.edits, args.edit)
    plan = session.plan(args.video, edits, seed=args.seed, transition_frames=args.transitions,
                        preserve_speech=args.preserve_speech)
    plan.save(args.output, overwrite=True)
    png = args.output.with_suffix(".png")
    plot_plan(plan, session.analyze(args.video).expression, png)
    print(f"plan: {args.output} ({int((plan.weight > 0).sum())} frames edited); plot: {png}")
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    from dfm.pipelines.edit import EditOptions
    from dfm.edits import edits_from_args

    edits = edits_from_args(args.edits, args.edit)
    options = EditOptions(seed=args.seed, transition_frames=args.transitions, preserve_speech=args.preserve_speech,
                          lossless=args.lossless, side_by_side=args.side_by_side, overwrite=args.overwrite,
                          person=args.person, collection=args.collection,
                          sign_cert=args.sign_cert, sign_key=args.sign_key,
                          force_analysis=args.force_analysis, renderer=args.renderer)
    result = _session(args).edit(args.video, edits, args.output, options)
    if args.json:
        print(json.dumps(result.report, indent=2, default=str))
    else:
        r = result.report
        print(f"{result.output}: {r['edited_frames']}/{r['frames']} frames edited; disclosure: {result.sidecar}")
        kept = [str(i + 1) for i, k in enumerate(r["preserve_speech_edits"]) if k]
        print(f"lip motion kept in edit{'s' if len(kept) > 1 else ''} {', '.join(kept)}" if kept
              else "lip motion: not kept (no speech heard or seen near the edits)")
        if result.side_by_side:
            print(f"side by side: {result.side_by_side}")
        for w in r["warnings"]:
            print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    import cv2

    from dfm.edits import edits_from_args
    from dfm.io.files import atomic_output

    from dfm.io.paths import check_output_file

    check_output_file(args.output, overwrite=args.overwrite)
    edits = edits_from_args(args.edits, args.edit)
    image = _session(args).preview(args.video, edits, args.at, seed=args.seed, person=args.person,
                                   preserve_speech=args.preserve_speech, renderer=args.renderer)
    with atomic_output(args.output, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    print(f"preview: {args.output}")
    return 0


def _subject_lines(subject: dict | None) -> list[str]:
    """What `dfm analyze` says about the subject when there is more than one person to speak of."""
    if not subject or not (subject["other_face_frames"] or subject["person_changes"]):
        return []

    def ranges(rs):
        return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in rs) or "none"

    lines = [f"subject ({subject['spec']}): frames {ranges(subject['subject_frames'])}; "
             f"other faces seen in frames {ranges(subject['other_face_frames'])}"]
    for c in subject["person_changes"]:
        who = "another person" if c["kind"] == "to_other" else "the subject"
        lines.append(f"change of person at frame {c['frame']} ({c['time']:.2f} s): {who} from there")
    return lines


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so every with-block cleans up on the way out."""


@contextlib.contextmanager
def _sigterm_as_interrupt():
    def raise_terminated(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread (e.g. called from a test runner's worker thread)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "verbose", False):
        from dfm.io.native_log import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"
    else:
        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging (the rest: dfm.io.native_log)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with warnings.catch_warnings():
            show = warnings.showwarning

            def one_line(message, category, filename, lineno, file=None, line=None):
                if issubclass(category, DfmWarning):  # DFM's own warnings: one line, no source location
                    print(f"dfm: warning: {message}", file=sys.stderr)
                else:
                    show(message, category, filename, lineno, file, line)

            warnings.showwarning = one_line
            with _sigterm_as_interrupt():
                try:
                    return args.handler(args)
                finally:
                    if getattr(args, "session_", None) is not None:
                        args.session_.close()
    except DfmError as e:
        print(f"dfm: error: {e}", file=sys.stderr)
        return 2
    except Terminated:
        print("dfm: terminated (SIGTERM); the partial output was removed", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("dfm: interrupted; the partial output was removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
