"""The fit's per-frame half in chunks on the executor's workers.

The identity is solved once, in the parent, on the frames spread over the video (`FaceFitter.identity_path`:
the identity of each outer iteration); each worker then replays those iterations on its frames
(`FaceFitter.fit_frames`), which gives exactly the rows the whole-sequence fit gives (frames are
independent given the identity when the fit has no temporal smoothing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from dfm.face.fitting import FaceFitter, FitBasis, FitConfig, FitResult
from dfm.parallel.chunks import Chunk

MIN_THREAD_FRAMES = 64  # fewer frames a thread cost more in its start than they save


@dataclass(frozen=True)
class FitSetup:
    """The basis travels with the setup (about 2 MB): workers need no model files for the fit."""

    basis: FitBasis
    config: FitConfig
    models: str  # names the basis for the worker's state key

    @property
    def key(self) -> tuple:
        return ("fit", self.models, repr(self.config))

    def __call__(self) -> FaceFitter:
        from dfm.face.box_qp import available_backends

        available_backends()  # load the QP kernel now (numba's start-up, ~1.2-1.4 s in a fresh worker), not in the first chunk
        return FaceFitter(self.basis, self.config)


@dataclass(frozen=True)
class FitChunk:
    chunk: Chunk
    landmarks: np.ndarray  # (n, P, 3) this chunk's valid frames
    prior: np.ndarray | None
    path: np.ndarray  # (outer_iterations, n_identity)

    def describe(self) -> str:
        return f"fit of {self.chunk.describe()}"


def fit_chunk(fitter: FaceFitter, item: FitChunk, report: Callable[[int], None]) -> FitResult:
    result = fitter.fit_frames(item.landmarks, item.prior, item.path)
    report(len(item.landmarks))
    return result


def fit_chunked(fitter: FaceFitter, executor, setup: FitSetup, landmarks: np.ndarray, prior: np.ndarray | None,
                identity: np.ndarray | None, cancel: Callable[[], bool] | None = None) -> FitResult:
    """`fitter.fit(landmarks, prior, identity)`, with the per-frame half shared out on `executor`.

    When this process has the compiled QP kernel it fits a share of the frames too (`own_share`), in a
    thread (the kernel releases the GIL) while the workers fit theirs: right after their tracking the
    workers still start their kernel (numba's start-up, ~1.2-1.4 s of a fresh worker), which this process
    loaded during the tracking."""
    from concurrent.futures import ThreadPoolExecutor

    from dfm.parallel.chunks import plan_chunks

    path = fitter.identity_path(landmarks, prior, identity)
    n = len(landmarks)
    own = round(n * own_share(executor.n_workers))
    chunks = plan_chunks(n - own, executor.n_workers, min_frames=32, per_worker=1)
    items = [FitChunk(c, np.ascontiguousarray(landmarks[c.start:c.stop]),
                      None if prior is None else np.ascontiguousarray(prior[c.start:c.stop]), path) for c in chunks]
    with ThreadPoolExecutor(1, thread_name_prefix="dfm-fit") as here:
        mine = here.submit(fitter.fit_frames, landmarks[n - own:], None if prior is None else prior[n - own:],
                           path) if own else None
        parts = executor.map(fit_chunk, items, setup, cancel=cancel) if items else []
        if mine is not None:
            parts.append(mine.result())
    return joined_fits(parts)


def fit_in_threads(fitter: FaceFitter, landmarks: np.ndarray, prior: np.ndarray | None,
                   identity: np.ndarray | None, threads: int) -> FitResult:
    """`fitter.fit(landmarks, prior, identity)` with the per-frame half split over `threads` threads of this
    process, for when the cores are this process's alone (a short chunked analysis: its workers wait for
    the fit). The QP kernel releases the GIL; with the NumPy fallback (which mostly holds it) or one
    thread this is the plain fit. Exact: any slice of frames gets the whole fit's rows."""
    from concurrent.futures import ThreadPoolExecutor

    from dfm.face.box_qp import available_backends

    n = len(landmarks)
    threads = min(threads, n // MIN_THREAD_FRAMES)
    if threads <= 1 or fitter.config.temporal_weight > 0 or "numba" not in available_backends():
        return fitter.fit(landmarks, prior, identity)
    path = fitter.identity_path(landmarks, prior, identity)
    edges = np.linspace(0, n, threads + 1).round().astype(int)
    with ThreadPoolExecutor(threads - 1, thread_name_prefix="dfm-fit") as pool:
        rest = [pool.submit(fitter.fit_frames, landmarks[a:b], None if prior is None else prior[a:b], path)
                for a, b in zip(edges[1:-1], edges[2:])]
        first = fitter.fit_frames(landmarks[:edges[1]], None if prior is None else prior[:edges[1]], path)
        parts = [first] + [f.result() for f in rest]
    return joined_fits(parts)


def joined_fits(parts: list[FitResult]) -> FitResult:
    """Consecutive slices' fits (one identity) as one."""
    return FitResult(parts[0].identity, *(np.concatenate([getattr(p, k) for p in parts])
                                          for k in ("rotation", "translation", "scale", "expression", "residual")))


def own_share(n_workers: int) -> float:
    """The share of a chunked fit's frames this process fits itself: one worker's worth when it has the
    compiled QP kernel (2 ms a frame), none on the NumPy fallback (~5 ms a frame: it would finish last)."""
    from dfm.face.box_qp import available_backends

    return 1.0 / (n_workers + 1) if "numba" in available_backends() else 0.0
