"""An edit's render + encode in frame-range chunks on the session's executor, joined without re-encoding.

    job = plan_chunked_render(session, info, plan, options)      # None: render serially (short video, 1 worker)
    done = render_chunked(session, job, video, info, track, pool, plan, options, output=tmp, metadata=...)

1. The main process writes one job file into the workspace (`tmp/.render.dfm-HOST-PID-*.tmp/job.pkl`): the plan's
   per-frame arrays, the appearance pool, the renderer's name, parameters and trained-model folders, the
   input's VideoInfo and the face model's path; the track is read from the analysis cache (it goes into
   the job file only when the cache does not hold this very track). Chunks carry that path and their
   frame range only, so nothing big is pickled per chunk. The folder is private (mode 0700) and deleted
   at the end; one left by a killed job is deleted by the next chunked render of the workspace.
2. Each worker loads the job once (the pool, the track, the face model, its renderer) and, per chunk,
   renders its frames and encodes them into a video-only segment with the serial writer's settings
   (`VideoWriter.like`: codec, crf or lossless, pixel format, the input's timestamps; x264 threads: the
   worker's share of the cores). Frames outside every edit are the decoded frames, passed through as in
   the serial path.
3. Seams: the renderers carry state across frames (the warp renderer's source choices and
   cross-fades, the refiner's smoothed residual, the neural renderer's previous outputs), reset by
   every frame without an edit. A chunk that starts inside an edit replays the frames of that edit
   before it with the warp renderer's `advance` (source choices only, no pixels: exactly the serial
   state). warp+refine replays its warp part so and renders the `RENDER_WARMUP` frames before the chunk
   (dropped) for the refiner's smoothing, which decays within them; neural renders those frames only.
   Those two are therefore close to the serial result, not exact.
   Boundaries are moved onto frames without an edit where one is near, so most chunks need none.
4. The segments are joined packet for packet (`dfm.io.segments`), the input's audio muxed once, the
   disclosure tags written; the caller's credentials step signs the file as in the serial path.

A side-by-side video is chunked the same way (a second segment per chunk, joined with the audio).
A failed chunk (an exception, a killed worker) fails the job with the chunk named; the job folder
(segments, job file) is deleted whatever happens.
"""

from __future__ import annotations

import contextlib
import pickle
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dfm.parallel.chunks import Chunk

# Frames rendered (not just replayed) before a chunk for renderers without `advance`: the refiner's
# exponential smoothing (weight 0.5 on the past) leaves 0.5**16 of a stale residual, and the neural
# renderer looks back 2 frames.
RENDER_WARMUP = 16


@dataclass(frozen=True)
class ChunkPolicy:
    """When chunking pays. Per job, chunking adds the job file, each worker's load of it (pool, track,
    face model: about a second) and the join (a fraction of one), and, the first time, the workers' start;
    so a video renders serially below `min_video_frames` (about 6 s at 24 fps; the chunked analysis uses
    the same threshold) and each chunk has at least `min_frames`. `benchmarks/bench_parallel_render.py --break-even` prints serial vs chunked times on
    cuts of the Pexels clip to check the threshold on a machine."""

    min_video_frames: int = 150
    min_frames: int = 24
    per_worker: int = 2  # up to this many chunks per worker (fillers aside): one that finishes early takes the next
    # costs in pass-through frames (decode + encode), CPU time on the Pexels clip: fitted 2026-12-01 to
    # 2-chunk edits' per-chunk CPU with x264 'fast' at crf 10 (an edited frame, render + encode, 4.2; a
    # replayed one, WarpRenderer.advance: the flow's geometry and the source choice, 0.95), then rescaled
    # for the default encoder's 3.3 ms less a frame (pass-through ~17.3 -> ~14.0 ms); the replay scaled
    # again when it rasterised only the mouth's window (2026-12-03: 13.4 -> 8.5 ms a frame)
    edit_cost: float = 4.9
    replay_cost: float = 0.75
    snap: int = 12  # move a boundary up to this many frames onto a frame without an edit (no warm-up there)
    # the frames without an edit at either end of a chunk with edits become chunks of their own, of about
    # this many frames or more (fillers: cheap, never replayed, submitted last, so whichever worker finishes
    # its edited frames first takes them; the balance then no longer rests on the costs above, which were
    # measured to drift by ~30% between hours of this machine); 0 = keep them in their chunk
    filler_frames: int = 60
    # about this many fillers a worker (4 evened the workers' finish out better on the looped 60-s clip,
    # 0.3-0.5 s against 0.7 s of idle tail, but their extra starts cost as much CPU: the same wall time)
    fillers_per_worker: int = 2
    # a frame decoded before a chunk's first, from the keyframe before it (~1 of a pass-through frame's ~9 ms)
    seek_cost: float = 0.12


DEFAULT_POLICY = ChunkPolicy()


def plan_render_chunks(weight: np.ndarray, n_workers: int, policy: ChunkPolicy = DEFAULT_POLICY,
                       keyframes: np.ndarray | None = None) -> list[Chunk]:
    """Contiguous chunks covering every frame once, of about equal cost (edited frames cost more, and so
    does replaying the edit that runs into a chunk), with boundaries next to frames without an edit where
    one is within `policy.snap`; `warmup` = the frames of the edit running into the chunk (0 when the
    chunk's first frame or the one before it has no edit).

    Candidates: one chunk per worker, or `per_worker` per worker (a worker that finishes early takes the
    next); and, where the video has frames without an edit, its edited frames alone cut in 1 to that many
    chunks with those frames as fillers (`with_fillers`). The one chosen finishes first (workers taking the
    dearest chunk left) in the worst of three cases: the costs as the policy says, and edited frames 30%
    cheaper or dearer (the drift measured between hours of this machine), so a plan whose balance rests on
    exact costs loses to one that evens out. Every boundary inside an edit costs a replay, so a long edit
    is often better cut in fewer chunks. `keyframes` (the input's keyframe frames, `keyframe_indices`):
    the fillers' inner edges go onto them where one is near (a chunk that starts elsewhere first decodes
    from the keyframe before it: up to a GOP of wasted frames)."""
    weight = np.asarray(weight, np.float32)
    n = len(weight)
    most = max(1, min(n_workers * policy.per_worker, n // max(1, policy.min_frames)))
    if most < 2:
        return [Chunk(0, 0, n, 0)]
    edited = weight > 0

    def warmup(a: int) -> int:
        run = a
        while 0 < run and a < n and edited[run - 1] and edited[a]:
            run -= 1
        return a - run

    def cut(cum: np.ndarray, k: int, target: float) -> list[int]:
        """Boundaries giving chunks of about `target` cost each (frames + replay), snapped, long enough."""
        edges = [0]
        for _ in range(1, k):
            a = edges[-1]
            e = int(np.searchsorted(cum, cum[a] + max(target - policy.replay_cost * warmup(a), 0.0)))
            # a chunk may start fresh where its first frame or the one before has no edit (the renderers reset there)
            free = [s for s in range(max(1, e - policy.snap), min(n, e + policy.snap + 1))
                    if not (edited[s - 1] and edited[s])]
            if free:
                e = min(free, key=lambda s: abs(s - e))
            e = max(e, a + policy.min_frames)
            if n - e < policy.min_frames:
                break
            edges.append(e)
        return edges + [n]

    def plan(k: int, pass_cost: float) -> list[Chunk]:
        cum = np.concatenate([[0.0], np.cumsum(np.where(edited, policy.edit_cost, pass_cost))])  # cost of [0, i)
        edges = cut(cum, k, cum[-1] / k)
        replay = policy.replay_cost * sum(warmup(a) for a in edges[:-1])
        edges = cut(cum, k, (cum[-1] + replay) / k)  # the replays the first cut implies, shared out too
        return [Chunk(i, a, b, warmup(a)) for i, (a, b) in enumerate(zip(edges, edges[1:]))]

    n_edited = int(edited.sum())

    def worst_finish(chunks: list[Chunk]) -> float:
        """The last worker's finish over an even share of the frames' work (replays not counted there: they
        are the chunking's own cost), in the worst of the three cost cases."""
        worst = 0.0
        for scale in (1.0, 0.7, 1.3):
            true = replace(policy, edit_cost=policy.edit_cost * scale)
            loads = [0.0] * n_workers
            for c in sorted(chunks, key=lambda c: -chunk_cost(weight, c, policy, keyframes)):  # as render_chunked submits
                loads[int(np.argmin(loads))] += chunk_cost(weight, c, true, keyframes)
            worst = max(worst, max(loads) / ((n_edited * true.edit_cost + n - n_edited) / n_workers))
        return worst

    ks = sorted({min(n_workers, most), most})
    plans = [plan(k, 1.0) for k in ks]
    if policy.filler_frames > 0 and edited.any() and not edited.all():
        # the edited frames shared out alone (frames without an edit cost nothing here), the rest as fillers
        plans += [with_fillers(plan(k, 0.0), edited, n_workers, policy, keyframes) for k in range(1, most + 1)]
    return min(plans, key=lambda p: (round(worst_finish(p), 3), len(p)))


def with_fillers(chunks: list[Chunk], edited: np.ndarray, n_workers: int, policy: ChunkPolicy = DEFAULT_POLICY,
                 keyframes: np.ndarray | None = None) -> list[Chunk]:
    """`chunks` with the runs of frames without an edit at the ends of each chunk that has edits split off
    into chunks of about `policy.filler_frames` or more (longer where the runs are long: about
    `policy.fillers_per_worker` a worker in all; never under `policy.min_frames`), renumbered. A filler starts where no edit runs into it,
    so it needs no warm-up, and the chunk it came off keeps its warm-up (its first edited frame's). An
    edge between two fillers moves onto the nearest of `keyframes` within half a filler, if any."""
    if policy.filler_frames <= 0:
        return chunks
    runs: list[tuple[int, int]] = []  # (start, stop) of the runs split off
    cores: list[Chunk] = []
    for c in chunks:
        e = np.flatnonzero(edited[c.start:c.stop])
        if len(e) == 0:
            cores.append(c)
            continue
        a, b = c.start + int(e[0]), c.start + int(e[-1]) + 1
        if a - c.start < policy.min_frames:
            a = c.start
        if c.stop - b < policy.min_frames:
            b = c.stop
        if b - a < policy.min_frames:  # the edited frames alone would make too short a chunk
            cores.append(c)
            continue
        runs += [r for r in ((c.start, a), (b, c.stop)) if r[1] > r[0]]
        cores.append(Chunk(c.index, a, b, c.warmup if a == c.start else 0))
    if not runs:
        return chunks
    total = sum(b - a for a, b in runs)
    size = max(policy.filler_frames, policy.min_frames, -(-total // (policy.fillers_per_worker * n_workers)))
    pieces: list[Chunk] = []
    for a, b in runs:
        k = max(1, (b - a) // size)
        edges = [a + round(i * (b - a) / k) for i in range(k + 1)]
        if keyframes is not None and len(keyframes):
            for i in range(1, k):
                lo, hi = max(edges[i - 1] + policy.min_frames, edges[i] - size // 2), edges[i] + size // 2
                near = keyframes[(keyframes >= lo) & (keyframes <= min(hi, edges[i + 1] - policy.min_frames))]
                if len(near):
                    edges[i] = int(near[np.argmin(np.abs(near - edges[i]))])
        pieces += [Chunk(0, x, y, 0) for x, y in zip(edges, edges[1:])]
    ordered = sorted(cores + pieces, key=lambda c: c.start)
    return [Chunk(i, c.start, c.stop, c.warmup) for i, c in enumerate(ordered)]


def chunk_cost(weight: np.ndarray, chunk: Chunk, policy: ChunkPolicy = DEFAULT_POLICY,
               keyframes: np.ndarray | None = None) -> float:
    """A chunk's estimated cost in pass-through frames (its frames, edited ones dearer, its replay and,
    with the input's `keyframes`, the frames decoded from the keyframe before its first one)."""
    edited = int((np.asarray(weight)[chunk.start:chunk.stop] > 0).sum())
    cost = edited * policy.edit_cost + (chunk.n_frames - edited) + chunk.warmup * policy.replay_cost
    if keyframes is not None and len(keyframes):
        before = keyframes[keyframes <= chunk.start]
        cost += policy.seek_cost * (chunk.start - (int(before[-1]) if len(before) else 0))
    return cost


@dataclass(frozen=True)
class ChunkedRender:
    """A planned chunked render: the chunks and the executor that will run them."""

    chunks: list[Chunk]
    executor: Any
    backend: str  # "local" | "ray"
    start_seconds: float = 0.0  # getting the session's executor (its workers' start, unless they were running)
    costs: list[float] = field(default_factory=list)  # chunk_cost of each chunk


def plan_chunked_render(session, info, plan, options, policy: ChunkPolicy | None = None,
                        keyframes: np.ndarray | None = None) -> ChunkedRender | None:
    """The chunked render of this edit, or None when it should stay serial: one worker, a video too short
    to gain (policy.min_video_frames), or a plan that gives fewer than 2 chunks. `keyframes`: the input's
    (plan_render_chunks)."""
    policy = policy or DEFAULT_POLICY
    parallel = session.parallel
    if not parallel.chunks(info.n_frames, policy.min_video_frames):
        return None
    chunks = plan_render_chunks(plan.weight, parallel.n_workers, policy, keyframes)
    if len(chunks) < 2:
        return None
    t = time.perf_counter()
    executor = session.executor()  # started here unless the session's analysis (or an earlier job) did
    if executor.n_workers != parallel.n_workers:  # Ray without a worker count: one per CPU of the cluster
        chunks = plan_render_chunks(plan.weight, executor.n_workers, policy, keyframes)
    return ChunkedRender(chunks, executor, "ray" if parallel.ray else "local", time.perf_counter() - t,
                         [chunk_cost(plan.weight, c, policy, keyframes) for c in chunks])


# --- the job file and the worker side -------------------------------------------------------------------

@dataclass
class RenderJob:
    """What every chunk of one render needs (written once, loaded once per worker)."""

    info: Any  # dfm.io.video.VideoInfo of the input
    video: str
    targets: np.ndarray  # (T, 53) plan
    original_share: np.ndarray  # (T, 53) the plan's (re-based by each worker's renderer)
    weights: np.ndarray  # (T,)
    va: np.ndarray | None  # (T, 2)
    renderer: str
    params: dict[str, Any]
    trained: dict[str, str]  # kind -> folder of this video's trained model (the one the renderer needs)
    model_path: str  # the ICT face model
    track_cache: str | None  # the analysis cache holding the track (None: `track` below)
    track_key: str
    track: Any = None
    pool: Any = None  # FramePool
    lossless: bool = False
    side_by_side: bool = False
    folder: str = ""  # where the segments go
    encoder_threads: int | None = None  # x264 threads a chunk's writers use: the worker's share of the cores


@dataclass(frozen=True)
class RenderChunk:
    """One chunk's work item: the job file, the chunk's frames."""

    job: str
    chunk: Chunk

    def describe(self) -> str:
        return self.chunk.describe()


@dataclass
class ChunkResult:
    index: int
    segment: str
    side_by_side: str | None
    frames: list  # FrameReport per frame of the chunk
    written: int
    render_seconds: float
    encode_seconds: float
    replayed: int  # warm-up frames replayed with advance()
    rendered_warmup: int  # warm-up frames rendered and dropped
    pix_fmt: str
    cpu_seconds: float = 0.0  # CPU time of the worker process on this chunk (all its threads: the encoder's too)


@dataclass(frozen=True)
class RenderSetup:
    """The worker state of chunked renders: one slot, so a worker holds one job's pool at a time."""

    key: str = "dfm.render"

    def __call__(self) -> "_RenderWorker":
        return _RenderWorker()


@dataclass
class _RenderWorker:
    models: dict[str, Any] = field(default_factory=dict)  # face model path -> FaceModel
    meshes: dict[bytes, Any] = field(default_factory=dict)  # identity -> RenderMesh (last one)
    job_file: str | None = None
    job: RenderJob | None = None
    renderer: Any = None
    track_slot: tuple = ()  # (cache path, track key, FaceTrack): the last track read from a cache

    def mesh(self, model_path: str, identity: np.ndarray):
        """(FaceModel, RenderMesh) for this identity: loaded once, the last one kept."""
        from dfm.face.model import FaceModel
        from dfm.render.mesh import RenderMesh

        if model_path not in self.models:
            self.models = {model_path: FaceModel.load(model_path)}
        model = self.models[model_path]
        key = np.round(identity, 5).tobytes()
        if key not in self.meshes:
            self.meshes = {key: RenderMesh.build(model, identity)}
        return model, self.meshes[key]

    def cached_track(self, cache: str, key: str):
        """The track in the analysis cache `cache`, checked to be the one the job was planned on (the last
        one is kept: the pool scan and the render of one edit read the same)."""
        from dfm.face.track import FaceTrack
        from dfm.render.occlusion import track_key

        if self.track_slot[:2] == (cache, key):
            return self.track_slot[2]
        self.track_slot = ()
        track = FaceTrack.load(cache)
        track.meta["cache"] = cache
        if track_key(track) != key:
            raise RuntimeError(f"the analysis cache {cache} changed during the job")
        self.track_slot = (cache, key, track)
        return track

    def load(self, job_file: str):
        if job_file == self.job_file:
            return self.job, self.renderer
        from dfm.render.registry import RendererContext, make_renderer

        self.job_file = self.job = self.renderer = None  # the last job's pool goes before the next one loads
        with open(job_file, "rb") as f:
            job: RenderJob = pickle.load(f)
        track = job.track if job.track is not None else self.cached_track(job.track_cache, job.track_key)
        model, mesh = self.mesh(job.model_path, track.identity)
        trained = {k: Path(v) for k, v in job.trained.items()}
        ctx = RendererContext(model, mesh, track, job.pool, dict(job.params), trained=trained.get)
        self.renderer = make_renderer(job.renderer, ctx)
        self.job, self.job_file = job, job_file
        return self.job, self.renderer


@dataclass(frozen=True)
class RenderWarmup:
    """A task for idle workers before an edit's chunks (executor.prepare(RenderSetup(), warm=...)): import
    the renderer, load the face model, this identity's mesh and the track, and the rasteriser's compiled
    kernels, while the main process fits the decoder (about 2-3 s of each worker's first chunk otherwise).
    For when the pool is in memory already; otherwise the pool's scan on the workers loads the same
    (dfm.pipelines.edit_prep)."""

    model_path: str
    track_cache: str
    track_key: str

    def __call__(self, state: _RenderWorker, item: None, report) -> None:
        import_renderer(state, item, report)
        track = state.cached_track(self.track_cache, self.track_key)
        state.mesh(self.model_path, track.identity)


def import_renderer(state: _RenderWorker, item: None, report) -> None:
    """The part of RenderWarmup that needs no analysis: the warp renderer's modules and the rasteriser's
    and the relight's compiled kernels (~1.4 s of a fresh worker)."""
    import dfm.render.renderer  # noqa: F401  (the warp renderer and what it imports)
    from dfm.render.raster import warm_up
    from dfm.render.relight import warm_up as warm_up_relight

    warm_up()
    warm_up_relight()


def chunks_render(session, track) -> bool:
    """Whether this edit's render will be chunked on the session's workers: a parallel session, a long
    enough video and the track in the analysis cache (the workers read it from there)."""
    from dfm.render.occlusion import track_key

    cache = track.meta.get("cache")
    return (bool(cache) and session.parallel.chunks(track.n_frames, DEFAULT_POLICY.min_video_frames)
            and cache_holds(Path(cache), track_key(track)))


def warm_render_workers(session, track) -> None:
    """Have the session's workers load the render state now (RenderWarmup), for a render that
    `chunks_render`. The workers are started here, in the caller's thread (Ray ties its daemons to the
    thread that starts it)."""
    from dfm.render.occlusion import track_key

    session.executor().prepare(RenderSetup(), warm=RenderWarmup(session.face_model_path,
                                                               str(track.meta["cache"]), track_key(track)))


def render_chunk(state: _RenderWorker, item: RenderChunk, report) -> ChunkResult:
    """Warm up, render and encode one chunk into its segment(s) (the executor's task)."""
    from dfm.io.video import VideoWriter, iter_frames
    from dfm.render.renderer import render_with_inputs, renderer_targets

    cpu = time.process_time()
    job, renderer = state.load(item.job)
    targets = renderer_targets(renderer, job.targets, job.original_share)  # as the serial render's
    c = item.chunk
    renderer.reset()
    t_encode = 0.0
    replayed = rendered_warmup = 0
    t0 = time.perf_counter()
    # The warp renderer's state is replayed exactly (advance: no pixels needed). A renderer on top of it
    # (warp+refine) has its warp part replayed and renders the last RENDER_WARMUP frames before the chunk
    # (the refiner's smoothing decays within them); others (neural) render those frames only.
    advance = getattr(renderer, "advance", None) or getattr(getattr(renderer, "warp", None), "advance", None)
    first = c.start if hasattr(renderer, "advance") else max(0, c.start - RENDER_WARMUP)
    if c.warmup and advance is not None:
        for i in range(c.start - c.warmup, first):
            advance(i, targets[i], float(job.weights[i]), None if job.va is None else job.va[i])
        replayed = max(0, first - (c.start - c.warmup))
    rendered_warmup = c.start - first
    t_render = time.perf_counter() - t0  # the replay counts as rendering
    folder = Path(job.folder)
    segment = folder / f"segment-{c.index:04d}.mp4"
    sbs_segment = folder / f"side-by-side-{c.index:04d}.mp4" if job.side_by_side else None
    info = job.info
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(VideoWriter.like(info, segment, copy_audio=False, lossless=job.lossless,
                                                      overwrite=True, threads=job.encoder_threads))
        sbs = None
        if sbs_segment is not None:  # the serial side-by-side writer's settings, without the audio
            sbs = stack.enter_context(VideoWriter(sbs_segment, width=2 * info.width, height=info.height,
                                                  rate=info.rate, overwrite=True, threads=job.encoder_threads))
        for original, out, seconds in render_with_inputs(renderer, iter_frames(job.video, first, c.stop), targets,
                                                         job.weights, job.va):
            t_render += seconds
            if original.index < c.start:  # a rendered warm-up frame
                continue
            t0 = time.perf_counter()
            writer.write(out)
            if sbs is not None:
                sbs.write(np.concatenate([np.asarray(original.image), np.asarray(out.image)], axis=1),
                          timestamp=original.timestamp)
            t_encode += time.perf_counter() - t0
            report(1)
        pix_fmt = writer.pix_fmt
        written = writer.frames_written
    frames_report = [f for f in renderer.report.frames if c.start <= f.index < c.stop]
    return ChunkResult(c.index, str(segment), str(sbs_segment) if sbs_segment else None, frames_report, written,
                       t_render, t_encode, replayed, rendered_warmup, pix_fmt, time.process_time() - cpu)


# --- the main process side -----------------------------------------------------------------------------

@dataclass
class ChunkedResult:
    frames_written: int
    pix_fmt: str
    report: Any  # RenderReport merged over the chunks, in frame order
    stages: dict[str, float]  # render / encode seconds (summed over the workers)
    parallel: dict[str, Any]  # the job report's "parallel" entry


def render_chunked(session, job: ChunkedRender, video: Path, info, track, pool, plan, options, *, output: Path,
                   side_by_side: Path | None, metadata: dict[str, str]) -> ChunkedResult:
    """Render and encode `job`'s chunks on its executor and join them into `output` (and `side_by_side`)."""
    from dfm.io.files import remove_stale_temporaries, temp_prefix
    from dfm.io.segments import join_segments
    from dfm.parallel import ChunkFailed
    from dfm.pipelines.base import stage_progress
    from dfm.pipelines.renderer_train import trained_renderer
    from dfm.render.occlusion import track_key
    from dfm.render.pool import FramePool
    from dfm.render.registry import needs_training
    from dfm.render.renderer import RenderReport

    wall = time.perf_counter()
    target = Path(session.workspace) / "tmp" / "render"  # the job folder is named after it (and this process)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)  # job folders of killed jobs
    folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=temp_prefix(target), suffix=".tmp"))
    try:
        cache = track.meta.get("cache")
        in_cache = bool(cache) and Path(cache).exists() and cache_holds(Path(cache), track_key(track))
        record = RenderJob(
            info=info, video=str(video), targets=np.asarray(plan.target, np.float32),
            original_share=np.asarray(plan.original_share, np.float32),
            weights=np.asarray(plan.weight, np.float32), va=None if plan.va is None else np.asarray(plan.va, np.float32),
            renderer=options.renderer, params=dict(options.render),
            trained={kind: str(trained_renderer(track, kind)) for kind in filter(None, [needs_training(options.renderer)])},
            model_path=session.face_model_path, track_cache=str(cache) if in_cache else None,
            track_key=track_key(track), track=None if in_cache else track,
            # a fresh pool object: the original's feature cache is keyed by this process's object ids
            pool=FramePool(pool.frames, pool.occlusion, pool.excluded) if pool is not None else None,
            lossless=options.lossless, side_by_side=side_by_side is not None, folder=str(folder),
            encoder_threads=job.executor.threads_per_worker)
        job_file = folder / "job.pkl"
        with open(job_file, "wb") as f:
            pickle.dump(record, f, protocol=pickle.HIGHEST_PROTOCOL)
        # dearest first (a worker that finishes early takes the next): the last chunk to start is a cheap one
        order = sorted(range(len(job.chunks)), key=lambda i: -job.costs[i]) if job.costs else list(range(len(job.chunks)))
        items = [RenderChunk(str(job_file), job.chunks[i]) for i in order]
        with stage_progress("render", info.n_frames, options.hooks, f"render {video.name} ({len(items)} chunks)",
                            bar=session.progress) as bar:
            cancel = options.hooks.cancel if options.hooks is not None else None
            # a failed map stops its workers; the executor starts fresh ones for the session's next job
            done = job.executor.map(render_chunk, items, RenderSetup(), on_progress=bar.update, cancel=cancel,
                                    sizes=[item.chunk.n_frames for item in items])
        results = sorted(done, key=lambda r: r.index)
        t_join = time.perf_counter()
        written = sum(r.written for r in results)
        if written != info.n_frames:
            raise ChunkFailed(f"the chunks wrote {written} frames but the input has {info.n_frames}")
        audio = video if info.has_audio else None
        join_segments([r.segment for r in results], output, audio_from=audio, metadata=metadata, rotation=info.rotation)
        if side_by_side is not None:
            join_segments([r.side_by_side for r in results], side_by_side, audio_from=audio, metadata=metadata)
        t_join = time.perf_counter() - t_join
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report = RenderReport([f for r in results for f in r.frames])
    stages = {"render": sum(r.render_seconds for r in results),
              "encode": sum(r.encode_seconds for r in results) + t_join}
    parallel = {"backend": job.backend, "workers": job.executor.n_workers, "chunks": len(results),
                "executor_start_seconds": job.start_seconds,
                "chunk_frames": [[c.start, c.stop] for c in job.chunks],
                "warmup_frames_replayed": sum(r.replayed for r in results),
                "warmup_frames_rendered": sum(r.rendered_warmup for r in results),
                "chunk_seconds": [{"render": r.render_seconds, "encode": r.encode_seconds, "cpu": r.cpu_seconds}
                                  for r in results],
                "join_seconds": t_join, "worker_cpu_seconds": sum(r.cpu_seconds for r in results),
                "render_encode_wall_seconds": time.perf_counter() - wall}
    return ChunkedResult(written, results[0].pix_fmt, report, stages, parallel)


def cache_holds(cache: Path, key: str) -> bool:
    """Whether the analysis cache file holds the track whose `track_key` is `key` (workers read it from
    there). Reads only the two arrays the key hashes, not the whole track."""
    from types import SimpleNamespace

    from dfm.render.occlusion import track_key

    try:
        with np.load(cache, allow_pickle=False) as z:
            return track_key(SimpleNamespace(expression=z["expression"], translation=z["translation"])) == key
    except Exception:
        return False
