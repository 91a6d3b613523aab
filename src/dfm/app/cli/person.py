"""`dfm person ...`: a person's video collection, (VA, expression) dataset and expression decoder.

    dfm person add NAME VIDEO... [--overwrite] [--affect fer]
    dfm person dataset NAME            dataset.npz, va_scatter.png, coverage.md/.json; prints the coverage table
    dfm person train NAME [--preset fast|paper|mlp] [--epochs N]
    dfm person show NAME -o DIR        decoder strip (paper Fig. 5), VA scatter, training report
    dfm person list

`register(sub)` adds the command to the `dfm` parser (dfm.app.cli.main.build_parser).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dfm.errors import DfmError


def register(sub) -> argparse.ArgumentParser:
    """Add `person` and its actions to the subparsers object `sub` of the dfm parser."""
    from dfm.app.cli.main import _affect_args, _common_args
    from dfm.app.cli.parallel_args import add_parallel_arguments

    person = sub.add_parser("person", help="a person's videos, (VA, expression) dataset and expression decoder")
    psub = person.add_subparsers(dest="person_command", required=True, metavar="ACTION")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        p = psub.add_parser(name, help=help, description=help)
        _common_args(p)
        return p

    add = action("add", "analyse a person's videos and fit one identity over all of them")
    add.add_argument("name", help="person name (letters, digits, _ - .)")
    add.add_argument("videos", nargs="+", type=Path, metavar="VIDEO")
    add.add_argument("--overwrite", action="store_true", help="replace an existing person of that name")
    _affect_args(add)
    add_parallel_arguments(add)  # analyses the videos not analysed yet
    add.set_defaults(handler=cmd_person_add)

    ds = action("dataset", "build the (valence-arousal, expression) pairs; write the VA scatter and coverage report")
    ds.add_argument("name")
    ds.add_argument("-o", "--output", type=Path, default=None,
                    help="also copy the scatter plot and coverage report into this folder")
    ds.add_argument("--color-by", choices=("auto", "video", "time"), default="auto", help="scatter colours")
    ds.add_argument("--overwrite", action="store_true", help="replace existing files in the --output folder")
    add_parallel_arguments(ds)  # analyses the videos not analysed yet
    ds.set_defaults(handler=cmd_person_dataset)

    tr = action("train", "train the person's expression decoder (VA -> 53 blendshapes)")
    tr.add_argument("name")
    tr.add_argument("--preset", choices=("fast", "paper", "mlp"), default="fast",
                    help="fast: kernel regression (seconds); paper: the paper's MLP and training setting; mlp: a small MLP")
    tr.add_argument("--epochs", type=int, default=None, help="epochs for the paper/mlp presets (paper default: 1000)")
    add_parallel_arguments(tr)  # analyses the videos not analysed yet
    tr.set_defaults(handler=cmd_person_train)

    sh = action("show", "write the decoder strip (VA orbit on the mean face), VA scatter and training report")
    sh.add_argument("name")
    sh.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    sh.add_argument("--orbit", type=int, default=12, help="points on the VA orbit (default 12)")
    sh.add_argument("--radius", type=float, default=0.8, help="radius of the VA orbit (default 0.8)")
    sh.add_argument("--overwrite", action="store_true", help="replace existing files in the output folder")
    sh.set_defaults(handler=cmd_person_show)

    ls = action("list", "list the persons in the workspace")
    ls.set_defaults(handler=cmd_person_list)
    return person


def _session(args: argparse.Namespace):
    from dfm.app.cli.main import _session as cli_session

    return cli_session(args)


def _check_outputs(folder: Path, names: tuple[str, ...], overwrite: bool) -> None:
    """Outputs are never silently overwritten (DESIGN conventions)."""
    if folder.exists() and not folder.is_dir():
        raise DfmError(f"output {folder} exists and is not a folder")
    if not overwrite:
        taken = [n for n in names if (folder / n).exists()]
        if taken:
            raise DfmError(f"{folder / taken[0]} already exists; pass --overwrite to replace it")


def _log(args: argparse.Namespace):
    if getattr(args, "quiet", False):
        return None
    return lambda msg: print(msg, file=sys.stderr, flush=True)


def cmd_person_add(args: argparse.Namespace) -> int:
    from dfm.pipelines.person import add_person

    person = add_person(_session(args), args.name, args.videos, overwrite=args.overwrite, log=_log(args))
    print(f"person {person.name}: {len(person.videos)} video(s), {person.n_valid}/{person.n_frames} frames with a face")
    for v, name in zip(person.videos, person.video_names()):
        print(f"  {name}: {v.n_valid}/{v.n_frames} frames, {v.fps:.3f} fps")
    fit = person.identity_fit
    print(f"one identity fitted over {fit.get('n_frames')} frames of all videos "
          f"(residual {fit.get('residual_px', float('nan')):.2f} px); record: {person.record_path}")
    print(f"next: dfm person dataset {person.name}")
    return 0


def cmd_person_dataset(args: argparse.Namespace) -> int:
    from dfm.viz import figures
    from dfm.pipelines.person import build_dataset, dataset_times, load_decoder, load_person

    session = _session(args)
    data = build_dataset(session, args.name)
    person = load_person(session.workspace, args.name)
    decoder = None
    if person.decoder:
        try:
            decoder = load_decoder(session.workspace, args.name)
        except DfmError:
            decoder = None
    written = figures.write_dataset_figures(person, data, dataset_times(person, data), decoder=decoder, color_by=args.color_by)
    if args.output is not None:
        _check_outputs(args.output, ("va_scatter.png", "coverage.md", "coverage.json"), args.overwrite)
        written = figures.write_dataset_figures(person, data, dataset_times(person, data), args.output, decoder=decoder, color_by=args.color_by)
    per_video = ", ".join(f"{n} {k}" for n, k in zip(person.video_names(), person.dataset["pairs_per_video"]))
    print(f"dataset of {person.name}: {data.n_pairs} pairs ({per_video}) -> {person.dataset_path}")
    print(written["coverage_md"].read_text(), end="")
    for key in ("va_scatter", "coverage_md", "coverage_json"):
        print(f"{key}: {written[key]}")
    return 0


def cmd_person_train(args: argparse.Namespace) -> int:
    from dfm.viz import figures
    from dfm.pipelines.person import load_dataset, load_person, train_person

    session = _session(args)
    model = train_person(session, args.name, preset=args.preset, epochs=args.epochs, log=_log(args))
    person = load_person(session.workspace, args.name)
    for line in figures.training_lines(model):
        print(line)
    # the coverage report now has the blend columns
    data = load_dataset(session.workspace, args.name)
    files = figures.write_coverage(figures.coverage_table(data.va, model), person.folder,
                                   title=f"Coverage of the VA label regions: {person.name}")
    print(f"decoder: {person.decoder_dir}; coverage: {files['coverage_md']}")
    return 0


def cmd_person_show(args: argparse.Namespace) -> int:
    from dfm.viz import figures
    from dfm.pipelines.person import dataset_times, load_dataset, load_decoder, load_person
    from dfm.io.files import atomic_write_text

    session = _session(args)
    person = load_person(session.workspace, args.name)
    decoder = load_decoder(session.workspace, args.name)
    if args.orbit < 1:
        raise DfmError(f"--orbit must be at least 1, got {args.orbit}")
    if not 0.0 < args.radius <= 1.0:
        raise DfmError(f"--radius must be in (0, 1], got {args.radius}")
    out = args.output
    _check_outputs(out, ("decoder_strip.png", "va_scatter.png", "report.md"), args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    rep = decoder.report_
    preset = (person.decoder or {}).get("preset", "?")
    title = f"{person.name}: decoded expressions along a VA orbit (radius {args.radius:g}), {preset} decoder on the mean ICT face"
    written = {"strip": figures.plot_decoder_strip(decoder, session.models.model, out / "decoder_strip.png",
                                                   n=args.orbit, radius=args.radius, title=title)}
    data = load_dataset(session.workspace, args.name)
    written["va_scatter"] = figures.plot_va_scatter(
        data.va, out / "va_scatter.png", video_id=data.video_id, video_names=person.video_names(),
        times=dataset_times(person, data),
        title=f"{person.name}: {data.n_pairs} frames of {len(person.videos)} video(s) in the VA plane")
    report = figures.training_markdown(decoder, title=f"Decoder of {person.name} ({preset})")
    report += "\n" + figures.coverage_markdown(figures.coverage_table(data.va, decoder), title="Coverage")
    atomic_write_text(out / "report.md", report)
    written["report"] = out / "report.md"
    if rep is not None:
        print(f"{person.name}: val RMSE {rep.rmse_val:.4f} vs baseline {rep.rmse_val_baseline:.4f}")
    for key, path in written.items():
        print(f"{key}: {path}")
    return 0


def cmd_person_list(args: argparse.Namespace) -> int:
    from dfm.pipelines.person import list_persons, persons_root

    session = _session(args)
    problems: list[tuple[str, str]] = []
    persons = list_persons(session.workspace, problems)
    if not persons and not problems:
        print(f"no persons in {persons_root(session.workspace)}; add one with `dfm person add NAME VIDEO...`")
        return 0
    for p in persons:
        print(p.summary())
    for name, why in problems:
        print(f"{name}: unreadable ({why})")
    return 0
