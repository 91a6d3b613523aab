"""An edit's appearance-pool scan on a parallel session's workers, while the main process fits the decoder.

Between the analysis and the render an edit needs its video's decoder (trained on the video's own frames
unless cached: ~2 s on the Pexels clip, in this process) and the appearance pool (a pass over every
frame's pixels, ~2 s, then the occlusion fit and the selection, ~0.3 s). Neither needs the other, so when
the render will be chunked

    prep = PoolScanPrep.start(session, background, video, track)   # None: the pool is in memory already
    decoder, info = session.decoder_for(track)                     # this process, meanwhile
    pool = session.frame_pool(video, track, scanned=prep.result())

runs the pool's scan as one map of frame ranges (dfm.pipelines.pool_chunks) on the workers, from a
background thread that only waits for it, and this process assembles the pool from the scans. Each worker
makes the pool's plan (which frames to score and crop: geometry only) from the track and its own mesh, so
the scan starts before this process has built its mesh; this process makes the same plan meanwhile. The scan
loads each worker's render state (face model, this identity's mesh, the track), which the chunked render
that follows reuses; when it is done the idle workers load the rasteriser's kernels
(render_chunks.import_renderer) while this process assembles the pool and plans the render.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class PoolScanPrep:
    future: Future  # the map of the scan chunks
    plan: Any  # dfm.render.pool.PoolPlan
    started: float

    @classmethod
    def start(cls, session, background: ThreadPoolExecutor, video, track) -> "PoolScanPrep | None":
        """Submit the scan (the caller's thread starts the session's executor: Ray ties its daemons to the
        thread that started it); None when this video's pool is in memory."""
        from dfm.parallel import run_item
        from dfm.pipelines.pool_chunks import pool_scan_items
        from dfm.pipelines.render_chunks import RenderSetup, import_renderer
        from dfm.render.pool import PoolPlan

        if session.has_frame_pool(video, track):
            return None
        executor = session.executor()
        # the workers make the pool's plan themselves: submitted now, before this process builds its mesh
        scans = pool_scan_items(track, str(video), session.face_model_path, executor.n_workers)
        executor.prepare_after_map(RenderSetup(), warm=import_renderer)
        started = time.perf_counter()
        future = background.submit(executor.map, run_item, scans, RenderSetup())
        # meanwhile this process makes the same plan (for the assembly) with its own mesh
        plan = PoolPlan.for_track(track, np.arange(track.n_frames), session.render_mesh(track))
        return cls(future, plan, started)

    def result(self) -> tuple:
        """(pool plan, scans) for `Session.frame_pool(scanned=)`, when the workers are done."""
        return self.plan, self.future.result()
