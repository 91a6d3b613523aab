"""Progress and cancellation for long pipelines, shared by every sink (the CLI's tqdm bars, the job runner).

A pipeline reports through a `StageProgress` per long step:

    with stage_progress("render", total=n, hooks=hooks, desc="render clip.mp4", bar=session.progress) as p:
        for frame in frames:
            ...
            p.update()        # tqdm bar + ProgressEvent to hooks.progress + hooks.cancel check

`hooks.cancel()` returning True raises `Cancelled` at the next update, so a cancelled job stops between
frames and its writers (opened in `with` blocks) discard their partial outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from dfm.errors import Cancelled


@dataclass(frozen=True)
class ProgressEvent:
    """`done` of `total` units (frames, or 1 step) of the pipeline stage `stage` are finished."""

    stage: str
    done: int
    total: int

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 1.0


ProgressHook = Callable[[ProgressEvent], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class Hooks:
    """Optional observers of a pipeline run: `progress` gets every ProgressEvent; `cancel` is asked
    between units of work and stops the run (Cancelled) when it returns True."""

    progress: ProgressHook | None = None
    cancel: CancelCheck | None = None

    def check(self) -> None:
        """Raise Cancelled if the run was cancelled."""
        if self.cancel is not None and self.cancel():
            raise Cancelled("cancelled by the user")

    def emit(self, stage: str, done: int, total: int) -> None:
        self.check()
        if self.progress is not None:
            self.progress(ProgressEvent(stage, done, total))


NO_HOOKS = Hooks()


class StageProgress:
    """One stage's progress: a tqdm bar (when `bar`) and events to `hooks`, from one `update()` call."""

    def __init__(self, stage: str, total: int, hooks: Hooks | None = None, desc: str | None = None,
                 bar: bool = True, unit: str = "frame"):
        from tqdm import tqdm

        self.stage, self.total, self.done = stage, int(total), 0
        self.hooks = hooks or NO_HOOKS
        self._bar = tqdm(total=total, desc=desc or stage, unit=unit, disable=not bar, leave=False, dynamic_ncols=True)
        self.hooks.emit(stage, 0, self.total)

    def update(self, n: int = 1) -> None:
        self.done += n
        self._bar.update(n)
        self.hooks.emit(self.stage, self.done, self.total)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "StageProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stage_progress(stage: str, total: int, hooks: Hooks | None = None, desc: str | None = None,
                   bar: bool = True, unit: str = "frame") -> StageProgress:
    return StageProgress(stage, total, hooks, desc, bar, unit)


def step(hooks: Hooks | None, stage: str) -> None:
    """A short stage without per-unit progress: check for cancellation and announce it."""
    (hooks or NO_HOOKS).emit(stage, 0, 1)
