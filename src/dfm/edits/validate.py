"""Edits checked against one video: seconds -> frame ranges, and every way an edit can not fit the video.

Frame selection: an edit [start, end) in seconds covers the frames whose timestamp (the instant the frame
starts being shown) lies in [start, end); in frames it covers start..end-1. Transitions lie inside the
edit: the first and last `transition` frames ramp, so frames outside every edit stay untouched.

Transition length: `transition_frames` at each end, scaled down for short edits to
`min(transition_frames, (n - 1) // 2)` so at least one frame has full strength. Shorter than half the
configured length would be a visible pop, so an edit must have at least
`minimum_edit_frames(transition_frames) = 2 * ceil(transition_frames / 2) + 1` frames (21 for 20).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from dfm.edits.model import Edit, EditList
from dfm.errors import DfmError

_TIME_TOL = 1e-3  # of a frame period: absorbs float noise when a time equals a frame's timestamp
_MAX_RANGES = 8  # frame ranges listed in a message before "... and N more"


@dataclass(frozen=True)
class ResolvedEdit:
    """An edit placed on a video: frames first..stop-1, its intensity as a number, its transition length."""

    index: int  # position in the user's edit list (0-based); messages say index + 1
    edit: Edit
    first: int
    stop: int
    intensity: float | None  # None for neutral and nudge-only edits
    transition: int  # frames of ramp at each end (<= the configured transition_frames)

    @property
    def n_frames(self) -> int:
        return self.stop - self.first

    @property
    def label(self) -> str | None:
        return self.edit.label

    @property
    def nudges(self) -> dict[str, float]:
        return self.edit.nudges

    def describe(self) -> str:
        return f"edit {self.index + 1} ({self.edit.to_arg(safe=True)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "edit": self.edit.to_dict(),
            "first": self.first,
            "stop": self.stop,
            "intensity": self.intensity,
            "transition": self.transition,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ResolvedEdit":
        return cls(
            index=int(d["index"]),
            edit=Edit.from_dict(d["edit"]),
            first=int(d["first"]),
            stop=int(d["stop"]),
            intensity=None if d["intensity"] is None else float(d["intensity"]),
            transition=int(d["transition"]),
        )


def minimum_edit_frames(transition_frames: int) -> int:
    """Fewest frames an edit may have with this transition length (both ramps at least half long + 1)."""
    return 2 * math.ceil(max(0, transition_frames) / 2) + 1


def transition_length(n_frames: int, transition_frames: int) -> int:
    """Ramp frames at each end of an edit of n_frames: the configured length, scaled down for short edits."""
    return max(0, min(int(transition_frames), (int(n_frames) - 1) // 2))


def format_frame_ranges(frames: Iterable[int], timestamps: np.ndarray | None = None) -> str:
    """[3,4,5,9,12,13] -> '3-5, 9, 12-13' (+ ' (0.13-0.21 s, ...)' with timestamps); long lists are cut."""
    frames = sorted(int(f) for f in frames)
    ranges: list[tuple[int, int]] = []
    for f in frames:
        if ranges and f == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], f)
        else:
            ranges.append((f, f))
    shown = ranges[:_MAX_RANGES]
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in shown)
    if timestamps is not None:
        secs = ", ".join(
            f"{timestamps[a]:.2f} s" if a == b else f"{timestamps[a]:.2f}-{timestamps[b]:.2f} s" for a, b in shown
        )
        text += f" ({secs})"
    if len(ranges) > _MAX_RANGES:
        text += f" and {len(ranges) - _MAX_RANGES} more ranges"
    return text


def video_duration(timestamps: np.ndarray, fps: float) -> float:
    """End of the last frame in seconds (its timestamp + one frame period)."""
    return float(timestamps[-1]) + 1.0 / fps if len(timestamps) else 0.0


def _frame_range(edit: Edit, ts: np.ndarray, fps: float, what: str) -> tuple[int, int]:
    n = len(ts)
    if edit.unit == "frames":
        first, stop = int(edit.start), int(edit.end)
        if first >= n:
            raise DfmError(f"{what} starts at frame {first}, after the end of the video (frames 0-{n - 1})")
        if stop > n:
            raise DfmError(
                f"{what} ends at frame {stop} (exclusive) but the video has {n} frames (f0-f{n}); "
                f"end it at f{n} or earlier"
            )
        return first, stop
    period = 1.0 / fps
    tol = _TIME_TOL * period
    duration = video_duration(ts, fps)
    start, end = float(edit.start), float(edit.end)
    if start >= duration - tol:
        raise DfmError(f"{what} starts at {start:g} s, after the end of the video ({duration:.2f} s, {n} frames)")
    if end > duration + 0.5 * period:  # half a frame of slack: "19.69" for a 19.686 s video is the end
        raise DfmError(
            f"{what} ends at {end:g} s, after the end of the video ({duration:.2f} s, {n} frames)"
        )
    first = int(np.searchsorted(ts, start - tol, side="left"))
    stop = int(np.searchsorted(ts, end - tol, side="left"))
    if first >= stop:
        before = max(first - 1, 0)
        raise DfmError(
            f"{what} covers no frame: it lies between frame {before} ({ts[before]:.3f} s) "
            f"and frame {min(first, n - 1)} ({ts[min(first, n - 1)]:.3f} s)"
        )
    return first, stop


def validate_edits(
    edits: EditList | Sequence[Edit],
    timestamps: np.ndarray,
    valid: np.ndarray,
    fps: float,
    transition_frames: int = 20,
) -> list[ResolvedEdit]:
    """Check edits against a video and place them on its frames (result in the order of `edits`).

    timestamps: (T,) seconds of each frame, increasing; valid: (T,) bool, a face was tracked; fps: the
    nominal frame rate (used for the duration and for messages in seconds). Raises DfmError with one line
    naming the edit (1-based position and CLI form) and what is wrong.
    """
    ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    valid = np.asarray(valid, dtype=bool).reshape(-1)
    if ts.shape != valid.shape:
        raise ValueError(f"timestamps {ts.shape} and valid {valid.shape} differ in length")
    if len(ts) == 0:
        raise DfmError("the video has no frames")
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps must be positive, got {fps}")
    if transition_frames < 0:
        raise DfmError(f"transition length must be >= 0 frames, got {transition_frames}")
    edits = list(edits)
    min_frames = minimum_edit_frames(transition_frames)
    resolved: list[ResolvedEdit] = []
    for i, edit in enumerate(edits):
        what = f"edit {i + 1} ({edit.to_arg(safe=True)})"
        edit.check(what)
        first, stop = _frame_range(edit, ts, fps, what)
        n = stop - first
        if n < min_frames:
            raise DfmError(
                f"{what} is too short: {n} frames ({n / fps:.2f} s); with --transitions {transition_frames} "
                f"(frames of blend at each end) an edit needs at least {min_frames} frames "
                f"({min_frames / fps:.2f} s at {fps:g} fps): lengthen it or pass a smaller --transitions"
            )
        resolved.append(
            ResolvedEdit(
                index=i,
                edit=edit,
                first=first,
                stop=stop,
                intensity=edit.intensity_value,
                transition=transition_length(n, transition_frames),
            )
        )
    by_time = sorted(resolved, key=lambda r: (r.first, r.stop))
    for a, b in zip(by_time, by_time[1:]):
        if b.first < a.stop:
            last = min(a.stop, b.stop) - 1
            first_a, first_b = sorted((a, b), key=lambda r: r.index)
            raise DfmError(
                f"{first_a.describe()} and {first_b.describe()} overlap on frames {b.first}-{last} "
                f"({ts[b.first]:.2f}-{ts[last]:.2f} s); one frame can show only one edit"
            )
    for r in resolved:
        missing = np.flatnonzero(~valid[r.first : r.stop]) + r.first
        if missing.size:
            raise DfmError(
                f"{r.describe()} covers {missing.size} frame(s) without a tracked face: "
                f"{format_frame_ranges(missing, ts)}; move, shorten or split the edit"
            )
    return resolved
