"""An edit's preparation on a parallel session's workers, beside the main process.

Between the analysis and the render an edit needs its video's decoder (trained on the video's own frames
unless cached: ~2.6 s on the Pexels clip) and the appearance pool (a pass over every frame's pixels and
the occlusion fit: ~5 s). Neither needs the other, so in a parallel session

    prep = WorkerPrep.start(session, background, video, track)   # None: nothing for the workers
    pool = session.frame_pool(video, track)                       # this process, meanwhile (short videos)
    fitted, scanned = prep.result()

runs the decoder's fit and, for a long video, the pool's scan chunks (dfm.pipelines.pool_chunks) as one
map on the workers, from a background thread that only waits for it; the main process meanwhile builds a
short video's pool itself (its pass is cheaper than the workers' start on it) or, for a long one,
assembles the pool from the scans afterwards. The workers were asked to load the render state first
(render_chunks.warm_render_workers), so the render that follows finds it loaded.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass
class WorkerPrep:
    future: Future  # the map: [fitted decoder?] + [pool scans...]
    fits_decoder: bool
    pool_plan: Any | None  # dfm.render.pool.PoolPlan when the scan runs on the workers
    started: float

    @classmethod
    def start(cls, session, background: ThreadPoolExecutor, video, track) -> "WorkerPrep | None":
        """Submit the workers' share (the caller's thread starts the session's executor: Ray ties its
        daemons to the thread that started it); None when there is none (decoder cached, short video)."""
        from dfm.parallel import run_item
        from dfm.pipelines.pool_chunks import pool_scan_items
        from dfm.pipelines.render_chunks import RenderSetup

        items: list = []
        fit = session.video_decoder_fit(track)
        if fit is not None:
            items.append(fit)
        plan = None
        if session.chunks_pool_scan(track) and not session.has_frame_pool(video, track):
            executor = session.executor()
            plan, scans = pool_scan_items(track, str(video), session.render_mesh(track),
                                          str(session.store.path("ict-face-model")), executor.n_workers)
            items += scans
        if not items:
            return None
        executor = session.executor()
        future = background.submit(executor.map, run_item, items, RenderSetup())
        return cls(future, fit is not None, plan, time.perf_counter())

    @property
    def scans_pool(self) -> bool:
        return self.pool_plan is not None

    def result(self) -> tuple[Any | None, tuple | None]:
        """(the fitted decoder or None, (pool plan, scans) or None), when the workers are done."""
        out = self.future.result()
        fitted = out[0] if self.fits_decoder else None
        scans = out[1:] if self.fits_decoder else out
        return fitted, (self.pool_plan, scans) if self.scans_pool else None
