"""Peak memory of analysis and edit vs video length, on 1280x720 (the shared Pexels clip, upscaled and looped).

Makes 720p clips of 30 s, 3 min and 10 min in a temp folder (the 640x360 clip upscaled once, encoded once,
then its packets repeated with shifted timestamps: no re-encode per loop), and prints, per length, the peak
RSS of `analyze_video` and of `Session.edit` (analysis cached, two 5 s edits), each in a fresh process.
Memory must stay flat apart from the compact per-frame arrays of the track (a few kB a frame).
Run: DFM_ASSETS=../shared/models .venv/bin/python benchmarks/bench_memory.py [SECONDS ...]   (default 30 180 600)
     [--work DIR]  keep the clips and analysis caches in DIR (reused by a later run) instead of a temp folder
     [--only analysis|edit]  run one stage; `edit` needs the analysis cached in DIR by an earlier run
Each stage runs in one process with no child processes (decoding, encoding and the C2PA signing run inside
it; `analyze_video` is called without a dfm.parallel executor and the edit's Session has workers=1, so no
chunk workers start), so its ru_maxrss is the job's whole peak; it includes the signing step at the edit's end.
The chunked paths (several worker processes) are measured by bench_parallel_render.py, not here.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from fractions import Fraction
from pathlib import Path

from fresh_process import run_fresh

ANALYZE = r"""
from dfm.pipelines.analyze import analyze_video
t = time.perf_counter()
track = analyze_video(src, workspace, progress=False)
print(json.dumps({"frames": track.n_frames, "wall": time.perf_counter() - t, "peak_rss_mb": peak_rss_mb()}))
"""

EDIT = r"""
from dfm.pipelines.session import Session
from dfm.pipelines.edit import EditOptions
from dfm.edits import parse_edit_arg
from dfm.parallel.options import ParallelOptions
s = Session(workspace=workspace, progress=False, parallel=ParallelOptions(workers=1))  # serial: one process
dur = probe_video(src).duration
edits = [parse_edit_arg("happy:high:0.3-4.8"), parse_edit_arg(f"sad:high:{dur - 5.6:.2f}-{dur - 0.1:.2f}")]
t = time.perf_counter()
r = s.edit(src, edits, workspace / "edited.mp4", EditOptions(overwrite=True))
print(json.dumps({"frames": r.report["frames"], "wall": time.perf_counter() - t, "peak_rss_mb": peak_rss_mb()}))
"""


def make_base_clip(source: Path, out: Path, width: int = 1280, height: int = 720) -> None:
    """The source clip resized to width x height, H.264 (its audio copied)."""
    import cv2

    from dfm.io.video import VideoWriter, iter_frames, probe_video

    with VideoWriter.like(probe_video(source), out, width=width, height=height, crf=18, preset="veryfast") as w:
        for f in iter_frames(source):
            w.write(cv2.resize(f.image, (width, height), interpolation=cv2.INTER_CUBIC), timestamp=f.timestamp)


def loop_clip(base: Path, out: Path, seconds: float) -> None:
    """`base` repeated (packets copied, timestamps shifted) until it lasts `seconds`."""
    import av

    with av.open(str(base)) as src:
        streams = [src.streams.video[0]] + list(src.streams.audio[:1])
        period = Fraction(src.streams.video[0].frames) / src.streams.video[0].average_rate
        packets: dict[int, list] = {s.index: [] for s in streams}
        for p in src.demux(streams):
            if p.size > 0:
                packets[p.stream.index].append(p)
        with av.open(str(out), "w", format="mp4") as dst:
            out_streams = {s.index: dst.add_stream_from_template(s) for s in streams}
            loops = int(-(-Fraction(seconds) // period))
            for k in range(loops):
                for s in streams:  # one loop's video, then its audio: the muxer interleaves by time
                    shift = round(k * period / s.time_base)
                    for p in packets[s.index]:
                        if p.pts is None or (p.pts - packets[s.index][0].pts) * s.time_base >= period:
                            continue
                        if (p.pts + shift) * s.time_base >= seconds:
                            continue
                        p.pts, p.dts = p.pts + shift, (p.dts + shift if p.dts is not None else None)
                        p.stream = out_streams[s.index]
                        dst.mux(p)
                        p.pts, p.dts = p.pts - shift, (p.dts - shift if p.dts is not None else None)


def main() -> None:
    from dfm.assets import AssetStore

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seconds", nargs="*", type=float, default=[30.0, 180.0, 600.0])
    ap.add_argument("--work", type=Path, default=None, help="keep clips and caches here (default: a temp folder)")
    ap.add_argument("--only", choices=("analysis", "edit"), default=None)
    args = ap.parse_args()
    source = AssetStore.from_env().path("sample-video")
    print(f"peak RSS of analysis and edit, 1280x720 {source.name} upscaled and looped; {os.cpu_count()} CPU cores")
    print(f"{'length':>8s} {'frames':>7s} {'analysis MB':>12s} {'(s)':>7s} {'edit MB':>9s} {'(s)':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        base = work / "base720.mp4"
        if not base.exists():
            make_base_clip(source, base.with_suffix(".part.mp4"))
            base.with_suffix(".part.mp4").rename(base)
        for seconds in args.seconds:
            clip = work / f"loop{int(seconds)}.mp4"
            ws = work / f"ws{int(seconds)}"
            ws.mkdir(exist_ok=True)
            if not clip.exists():
                loop_clip(base, clip.with_suffix(".part.mp4"), seconds)
                clip.with_suffix(".part.mp4").rename(clip)
            a = {"frames": 0, "peak_rss_mb": float("nan"), "wall": float("nan")}
            if args.only != "edit":
                a = run_fresh(ANALYZE, str(clip), str(ws))
            print(f"{seconds:7.0f}s {a['frames']:7d} {a['peak_rss_mb']:12.0f} {a['wall']:7.0f} ", end="", flush=True)
            if args.only != "analysis":
                e = run_fresh(EDIT, str(clip), str(ws))
                print(f"{e['peak_rss_mb']:9.0f} {e['wall']:7.0f}", end="", flush=True)
            print(flush=True)
            if args.work is None:
                clip.unlink()


if __name__ == "__main__":
    main()
