"""Frame ranges of one video for chunked work: contiguous, in order, covering every frame once, each with
the frames before it that a stateful stage (tracking, smoothing) runs through first and then drops."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    """Frames [start, stop) are this chunk's result; [start - warmup, start) are run only to warm state up."""

    index: int
    start: int
    stop: int
    warmup: int = 0

    @property
    def first(self) -> int:
        """The first frame the chunk decodes."""
        return self.start - self.warmup

    @property
    def n_frames(self) -> int:
        return self.stop - self.start

    def describe(self) -> str:
        return f"chunk {self.index} (frames {self.start}-{self.stop - 1})"


def plan_chunks(n_frames: int, n_workers: int, warmup: int = 0, min_frames: int = 48,
                per_worker: int = 2) -> list[Chunk]:
    """`per_worker` chunks for each worker (a worker that finishes early takes the next: uneven frames even
    out), none shorter than `min_frames` unless the video is; the first chunk has no warm-up, so it gets
    `warmup` more frames than the others: every chunk runs about the same number of frames."""
    if n_frames <= 0:
        return []
    n = max(1, min(n_workers * per_worker, n_frames // max(1, min_frames)))
    work = (n_frames + (n - 1) * warmup) / n  # frames each chunk runs, its warm-up included
    if n > 1 and work - warmup >= min_frames:
        edges = [0] + [round(k * work - (k - 1) * warmup) for k in range(1, n)] + [n_frames]
    else:
        edges = [round(k * n_frames / n) for k in range(n + 1)]
    return [Chunk(k, edges[k], edges[k + 1], min(warmup, edges[k])) for k in range(n)]
