"""`dfm batch analyze PATH_OR_GLOB...` and `dfm batch edit --manifest jobs.jsonl`: many videos, one command.

    dfm batch analyze clips/ "more/*.mov" [--recursive] [--report R.json] [--continue-on-error] [--force]
    dfm batch edit --manifest jobs.jsonl [--report R.json] [--continue-on-error] [--force] [--overwrite]

One overall progress bar, one result line per video (ok / skipped (why) / failed: why), a JSON report
(default: `jobs.report.json` beside the manifest; for analyze `WORKSPACE/batch/analyze-HASH.json`).
Exit status: 0 when no video failed, 1 when one did, 2 for a bad manifest or argument (before any work).
The logic is dfm.pipelines.batch; `register(sub)` adds the command to the dfm parser.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, replace
from pathlib import Path

from dfm.app.cli.parallel_args import add_parallel_arguments, parallel_options

# where each pipeline stage's progress lies within one video, for the overall bar
_STAGE_SPANS = {"analyze": {"analyze": (0.0, 1.0)}, "edit": {"analyze": (0.0, 0.5), "render": (0.5, 1.0)}}


def register(sub) -> argparse.ArgumentParser:
    from dfm.app.cli.main import _affect_args, _common_args, _subject_args

    batch = sub.add_parser("batch", help="analyse or edit many videos in one command, with resume")
    bsub = batch.add_subparsers(dest="batch_command", required=True, metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        p = bsub.add_parser(name, help=help, description=help)
        _common_args(p)
        p.add_argument("--report", type=Path, default=None, metavar="PATH",
                       help="the JSON report (default: beside the manifest / in the workspace)")
        p.add_argument("--continue-on-error", action="store_true",
                       help="a video that fails is reported and the batch goes on (exit 1 at the end)")
        p.add_argument("--force", action="store_true", help="redo the videos whose results are already there")
        add_parallel_arguments(p)
        _affect_args(p)
        _subject_args(p)
        return p

    an = action("analyze", "analyse every video found (cached per video; finished ones are skipped)")
    an.add_argument("inputs", nargs="+", metavar="PATH_OR_GLOB",
                    help="video files, folders (searched for video files) or globs such as 'clips/**/*.mp4'")
    an.add_argument("--recursive", "-r", action="store_true", help="also search the folders' subfolders")
    an.set_defaults(handler=cmd_batch_analyze)

    ed = action("edit", "edit the videos of a JSONL manifest (complete outputs are skipped)")
    ed.add_argument("--manifest", type=Path, required=True, metavar="JOBS.jsonl",
                    help="one JSON object per line: input, output, edits or edit_list, optional person, seed, ...")
    ed.add_argument("--overwrite", action="store_true",
                    help="replace files at the outputs that are not DFM's outputs of the same input")
    ed.add_argument("--sign-cert", type=Path, default=None, metavar="PEM", help="as for dfm edit")
    ed.add_argument("--sign-key", type=Path, default=None, metavar="PEM", help="as for dfm edit")
    ed.set_defaults(handler=cmd_batch_edit)
    return batch


def _session(args: argparse.Namespace):
    """The command's Session with its --workers/--ray (one for all the batch's videos: models and worker
    processes are started once)."""
    from dfm.app.cli.main import _session as cli_session

    return replace(cli_session(args), parallel=parallel_options(args))


def cmd_batch_analyze(args: argparse.Namespace) -> int:
    from dfm.pipelines.batch import analyze_tasks, default_analyze_report_path, discover_videos

    videos = discover_videos(args.inputs, recursive=args.recursive)
    with _session(args) as session:  # one chunk executor for all the videos, stopped at the end
        report = args.report or default_analyze_report_path(session.workspace, videos)
        return _run(args, "analyze", analyze_tasks(session, videos, force=args.force), report,
                    source=" ".join(args.inputs), session=session)


def cmd_batch_edit(args: argparse.Namespace) -> int:
    from dfm.pipelines.batch import default_report_path, edit_tasks, parse_manifest

    with _session(args) as session:  # one chunk executor for all the videos, stopped at the end
        manifest = parse_manifest(args.manifest, workspace=session.workspace)  # every line checked before any work
        tasks = edit_tasks(session, manifest, overwrite=args.overwrite, sign_cert=args.sign_cert,
                           sign_key=args.sign_key)
        return _run(args, "edit", tasks, args.report or default_report_path(args.manifest),
                    source=str(args.manifest), session=session)


def _run(args: argparse.Namespace, kind: str, tasks, report_path: Path, source: str, session) -> int:
    from tqdm import tqdm

    from dfm.pipelines.batch import BatchHooks, run_batch

    spans = _STAGE_SPANS[kind]
    bar = tqdm(total=len(tasks), desc=f"batch {kind}", unit="video", disable=not session.progress, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n:.1f}/{total} videos [{elapsed}<{remaining}]")
    current = {"index": 0}

    def advance_to(position: float) -> None:
        if position > bar.n:
            bar.update(position - bar.n)  # update(), not n= + refresh(): tqdm limits the redraw rate

    def on_start(index: int, task) -> None:
        current["index"] = index
        bar.set_postfix_str(task.name, refresh=False)
        advance_to(index)

    def on_event(event) -> None:
        span = spans.get(event.stage)
        if span is not None:
            a, b = span
            advance_to(current["index"] + a + (b - a) * event.fraction)

    def on_result(result) -> None:
        advance_to(current["index"] + 1)
        tqdm.write(result.summary(), file=sys.stdout)

    try:
        report = run_batch(tasks, report_path, kind=kind, source=source, continue_on_error=args.continue_on_error,
                           force=args.force, options={"parallel": asdict(session.parallel),
                                                      "workspace": str(session.workspace)},
                           hooks=BatchHooks(on_start=on_start, on_result=on_result, progress=on_event))
    except BaseException:
        bar.close()
        if report_path.exists():  # interrupted, or stopped by a bug: what was done is in the report
            print(f"dfm: batch report: {report_path}", file=sys.stderr)
        raise
    bar.close()
    counts = report.counts()
    parts = [f"{counts[s]} {s.replace('_', ' ')}" for s in ("ok", "skipped", "failed", "not_run") if counts.get(s)]
    print(f"batch {kind}: {', '.join(parts)} of {len(tasks)} video(s); report: {report_path}")
    if counts.get("not_run"):
        print("dfm: the batch stopped at the first failure (--continue-on-error goes on past it)", file=sys.stderr)
    return 1 if report.failed else 0
