"""A video's appearance-pool scan in frame-range chunks on the session's executor.

    plan, scans = scan_pool_chunked(executor, track, video, mesh, model_path)
    pool = FramePool.assemble(plan, track, mesh, scans)                      # == FramePool.build(...)

`FramePool.build` is three steps (dfm.render.pool): the plan (which frames to score and crop: geometry
only), the scan (decode every frame, the occlusion detector's features of the scored ones, the crops of
the candidates: the costly pixel pass) and the assembly (the occlusion fit over all scored frames, the
occluded frames dropped, the final spread). Here the scan runs on the workers, one frame range each, and
this process assembles the scans: the same pool as the one-pass build, because the assembly orders the
scored frames by index before fitting and the scan of a frame does not depend on any other frame.
Workers keep the face model and the identity's mesh in the render state (render_chunks.RenderSetup), so
the chunked render that follows finds them loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from dfm.parallel.chunks import Chunk, plan_chunks
from dfm.parallel.executor import run_item
from dfm.pipelines.render_chunks import RenderSetup, cache_holds

MIN_SCAN_FRAMES = 48  # no scan chunk shorter (decoder start and the track's load cost ~0.1-0.4 s each)
# Outside an edit (Session.frame_pool: a preview, a pool asked for itself) videos shorter than this build
# their pool in the main process: the pass costs ~4-5 ms a frame, so below ~900 frames half of it on each
# of 2 workers saves less than the workers' load of the render state (~1-2 s) that the scan waits for. An
# edit whose render is chunked always scans on the workers (dfm.pipelines.edit_prep): its render needs that
# state loaded anyway.
MIN_VIDEO_FRAMES = 900


@dataclass(frozen=True)
class PoolScanChunk:
    """One frame range of one video for a worker: the plan, and the track by its cache path (or itself)."""

    chunk: Chunk
    video: str
    plan: Any  # dfm.render.pool.PoolPlan; None: the worker makes the whole video's plan from the track
    model_path: str
    track_cache: str | None
    track_key: str
    track: Any = None  # the FaceTrack when the cache does not hold it
    max_face_px: float | None = 400.0
    pad: float = 0.15

    def describe(self) -> str:
        return f"pool scan {self.chunk.describe()}"

    def __call__(self, state, report: Callable[[int], None]):
        """Decode this range and scan it (dfm.render.pool.scan_pool_frames), on a worker (parallel.run_item)."""
        from dfm.io.video import iter_frames
        from dfm.render.pool import PoolPlan, scan_pool_frames

        track = self.track if self.track is not None else state.cached_track(self.track_cache, self.track_key)
        _, mesh = state.mesh(self.model_path, track.identity)
        plan = self.plan if self.plan is not None else PoolPlan.for_track(track, np.arange(track.n_frames), mesh)
        c = self.chunk

        def frames():
            for f in iter_frames(self.video, c.start, c.stop):
                yield f
                report(1)

        return scan_pool_frames(plan, track, frames(), mesh, video=self.video, max_face_px=self.max_face_px,
                                pad=self.pad, frame_range=(c.start, c.stop))


def pool_scan_items(track, video: str, model_path: str, n_workers: int, plan=None) -> list[PoolScanChunk]:
    """The scan chunks (one per worker) of the whole video's pool plan for a map: `plan` if given, else each
    worker makes it from the track and its mesh (the same computation as `PoolPlan.for_track(track, every
    frame, mesh)` here: this process can then submit the scan before building its own mesh)."""
    from pathlib import Path

    from dfm.render.occlusion import track_key

    chunks = plan_chunks(track.n_frames, n_workers, min_frames=MIN_SCAN_FRAMES, per_worker=1)
    cache = track.meta.get("cache")
    key = track_key(track)
    in_cache = bool(cache) and Path(cache).exists() and cache_holds(Path(cache), key)
    return [PoolScanChunk(c, str(video), plan, model_path, str(cache) if in_cache else None, key,
                          None if in_cache else track) for c in chunks]


def scan_pool_chunked(executor, track, video: str, mesh, model_path: str, *,
                      on_progress: Callable[[int], None] | None = None, cancel: Callable[[], bool] | None = None):
    """(plan, scans): the pixel pass of FramePool.build(track, iter_frames(video), all frames, mesh) on
    `executor`'s workers, one range each; `FramePool.assemble(plan, track, mesh, scans)` makes the pool."""
    from dfm.render.pool import PoolPlan

    plan = PoolPlan.for_track(track, np.arange(track.n_frames), mesh)
    items = pool_scan_items(track, video, model_path, executor.n_workers, plan)
    scans = executor.map(run_item, items, RenderSetup(), on_progress=on_progress, cancel=cancel,
                         sizes=[item.chunk.n_frames for item in items])
    return plan, scans
