"""The edit model: one `Edit` (interval + label/intensity and/or blendshape nudges) and the `EditList` document.

`Edit` holds what the user wrote (an intensity stays "high", not 0.833, so a document round-trips
unchanged); `Edit.check` applies the rules of `dfm.edits.schema` with one-line messages. Everything that
needs the video (frame ranges, overlaps, tracked faces) is in `dfm.edits.validate`.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

import numpy as np

from dfm.affect.regions import INTENSITY_LEVELS, LABELS, parse_intensity
from dfm.edits.schema import (
    EDIT_FIELDS,
    EDITS_FORMAT,
    EDITS_VERSION,
    NUDGE_LIMIT,
    UNITS,
    first_schema_error,
)
from dfm.errors import DfmError
from dfm.face.expressions import EXPRESSION_INDEX, EXPRESSION_NAMES
from dfm.io.files import atomic_write_text

Unit = Literal["seconds", "frames"]


def _fmt_num(x: float | int) -> str:
    """Shortest text that reads back as the same number (2.0 -> '2', 0.7 -> '0.7')."""
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def _is_number(x: Any) -> bool:
    """int/float (numpy's too), not bool."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def unknown_blendshape_message(name: str) -> str:
    if name + "_L" in EXPRESSION_INDEX and name + "_R" in EXPRESSION_INDEX:
        return f"unknown blendshape {name!r} in nudges; it has two sides: use {name}_L and {name}_R"
    close = difflib.get_close_matches(name, EXPRESSION_NAMES, n=3, cutoff=0.6)
    if close:
        return f"unknown blendshape {name!r} in nudges; did you mean {' or '.join(close)}?"
    return f"unknown blendshape {name!r} in nudges; known: {', '.join(EXPRESSION_NAMES)}"


@dataclass
class Edit:
    """One requested change of the face over a half-open interval [start, end).

    start, end: seconds (unit="seconds") or frame indices (unit="frames", integers).
    label: one of `LABELS`, or None for a nudge-only edit.
    intensity: "low" | "medium" | "high" | a number in [0, 1]; None for neutral and nudge-only edits.
    nudges: {ICT blendshape name: offset in [-1, 1]} added to the target expression inside the edit.
    """

    start: float
    end: float
    label: str | None = None
    intensity: str | float | None = None
    nudges: dict[str, float] = field(default_factory=dict)
    unit: Unit = "seconds"

    # -- rules ------------------------------------------------------------------------------------
    def check(self, where: str | None = None) -> "Edit":
        """Raise DfmError (one line, prefixed by `where`, default: the edit as a CLI string) if invalid."""
        problem = self._problem()
        if problem is not None:
            prefix = where if where is not None else f"edit {self.to_arg(safe=True)}"
            raise DfmError(f"{prefix}: {problem}")
        return self

    def _problem(self) -> str | None:
        if self.unit not in UNITS:
            return f"unknown unit {self.unit!r}; use seconds or frames"
        for name in ("start", "end"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(float(value)):
                return f"{name} must be a number, got {value!r}"
            if self.unit == "frames" and not float(value).is_integer():
                return f"{name} must be a whole frame index, got {value!r}"
            if float(value) < 0:
                return f"{name} must not be negative, got {_fmt_num(value)}"
        if float(self.start) >= float(self.end):
            u = " s" if self.unit == "seconds" else ""
            what = "start frame" if self.unit == "frames" else "start"
            return (
                f"{what} ({_fmt_num(self.start)}{u}) must be before the end ({_fmt_num(self.end)}{u})"
            )
        if not isinstance(self.nudges, dict):
            return f"nudges must map blendshape names to offsets, got {self.nudges!r}"
        for name, offset in self.nudges.items():
            if name not in EXPRESSION_INDEX:
                return unknown_blendshape_message(str(name))
            if not _is_number(offset) or not math.isfinite(float(offset)):
                return f"nudge {name} must be a number, got {offset!r}"
            if abs(float(offset)) > NUDGE_LIMIT:
                return f"nudge {name}={float(offset):+g} is out of range [-1, 1]"
        if self.label is None:
            if self.intensity is not None:
                return f"an intensity ({self.intensity!r}) needs an emotion label"
            if not self.nudges:
                return f"an edit needs an emotion label ({', '.join(LABELS)}) or blendshape nudges"
            return None
        if not isinstance(self.label, str) or self.label not in LABELS:
            return f"unknown label {self.label!r}; known labels: {', '.join(LABELS)}"
        if self.label == "neutral":
            if self.intensity is not None:
                return f"neutral takes no intensity (got {self.intensity!r})"
            return None
        if self.intensity is None:
            return f"{self.label} needs an intensity: low, medium, high or a number in [0, 1]"
        if isinstance(self.intensity, str):
            if self.intensity not in INTENSITY_LEVELS:
                return (
                    f"unknown intensity {self.intensity!r}; use low, medium, high or a number in [0, 1]"
                )
        elif not _is_number(self.intensity):
            return f"intensity must be low, medium, high or a number in [0, 1], got {self.intensity!r}"
        elif not (0.0 <= float(self.intensity) <= 1.0):
            return f"intensity {_fmt_num(self.intensity)} is out of range [0, 1]"
        elif float(self.intensity) == 0.0:
            # 0 would still place the target at the rim of the neutral disc: a change nobody asked for
            return (f"intensity 0 is no edit: use a number in (0, 1] (e.g. 0.1 for a trace of {self.label}), "
                    "or remove the edit")
        return None

    @property
    def intensity_value(self) -> float | None:
        """The intensity as a number in [0, 1] (None for neutral and nudge-only edits). Call check() first."""
        if self.label is None:
            return None
        try:
            return parse_intensity(self.intensity, self.label)
        except ValueError as e:
            raise DfmError(str(e)) from None

    # -- conversions ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON object of this edit (only the fields that are set; unit always written)."""
        frames = self.unit == "frames"
        d: dict[str, Any] = {
            "start": int(self.start) if frames else float(self.start),
            "end": int(self.end) if frames else float(self.end),
            "unit": self.unit,
        }
        if self.label is not None:
            d["label"] = self.label
        if self.intensity is not None:
            d["intensity"] = self.intensity if isinstance(self.intensity, str) else float(self.intensity)
        if self.nudges:
            d["nudges"] = {k: float(v) for k, v in self.nudges.items()}
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "edit") -> "Edit":
        """Edit from its JSON object; DfmError (prefixed by `where`) if it breaks a rule."""
        if not isinstance(d, dict):
            raise DfmError(f"{where}: an edit must be a JSON object, got {type(d).__name__}")
        unknown = [k for k in d if k not in EDIT_FIELDS]
        if unknown:
            raise DfmError(f"{where}: unknown field {unknown[0]!r}; fields: {', '.join(EDIT_FIELDS)}")
        for key in ("start", "end"):
            if key not in d:
                raise DfmError(f"{where}: missing {key!r}")
        nudges = d.get("nudges") or {}
        unit = d.get("unit", "seconds")
        start, end = d["start"], d["end"]
        if unit == "frames":  # 48.0 in JSON is frame 48
            start, end = (int(v) if _is_number(v) and float(v).is_integer() else v for v in (start, end))
        edit = cls(
            start=start,
            end=end,
            label=d.get("label"),
            intensity=d.get("intensity"),
            nudges=dict(nudges) if isinstance(nudges, dict) else nudges,
            unit=unit,
        )
        return edit.check(where)

    def to_arg(self, safe: bool = False) -> str:
        """The edit in the command-line syntax of `parse_edit_arg` (round-trips exactly)."""
        try:
            parts: list[str] = []
            if self.label is not None:
                parts.append(str(self.label))
                if self.intensity is not None:
                    parts.append(
                        self.intensity if isinstance(self.intensity, str) else _fmt_num(self.intensity)
                    )
            elif self.nudges:
                parts.append("au")
            if self.nudges:
                parts.append(",".join(f"{k}={float(v):+}" for k, v in self.nudges.items()))
            if self.unit == "frames":
                parts.append(f"f{_fmt_num(self.start)}-f{_fmt_num(self.end)}")
            else:
                parts.append(f"{_fmt_num(self.start)}-{_fmt_num(self.end)}")
            return ":".join(parts)
        except (TypeError, ValueError):
            if not safe:
                raise
            return repr(self.to_dict_unchecked())

    def to_dict_unchecked(self) -> dict[str, Any]:
        return {
            "start": self.start, "end": self.end, "unit": self.unit, "label": self.label,
            "intensity": self.intensity, "nudges": self.nudges,
        }

    def __str__(self) -> str:
        return self.to_arg(safe=True)


@dataclass
class EditList:
    """An edit-list document: the edits in the order the user gave them."""

    edits: list[Edit] = field(default_factory=list)
    version: int = EDITS_VERSION

    def __iter__(self) -> Iterator[Edit]:
        return iter(self.edits)

    def __len__(self) -> int:
        return len(self.edits)

    def __getitem__(self, i: int) -> Edit:
        return self.edits[i]

    def check(self) -> "EditList":
        for i, edit in enumerate(self.edits):
            edit.check(f"edit {i + 1} ({edit.to_arg(safe=True)})")
        return self

    def to_json_obj(self) -> dict[str, Any]:
        return {"format": EDITS_FORMAT, "version": EDITS_VERSION, "edits": [e.to_dict() for e in self.edits]}

    def to_json(self) -> str:
        return json.dumps(self.to_json_obj(), indent=2) + "\n"

    @classmethod
    def from_json_obj(cls, doc: Any, source: str = "edit list") -> "EditList":
        """Parse a decoded JSON document; DfmError naming `source` and the offending edit if invalid."""
        if not isinstance(doc, dict):
            raise DfmError(
                f"{source}: an edit list must be a JSON object with 'version' and 'edits', "
                f"got {type(doc).__name__}"
            )
        version = doc.get("version")
        if version is None:
            raise DfmError(f"{source}: missing 'version' (this dfm writes and reads version {EDITS_VERSION})")
        if _is_number(version) and float(version) > EDITS_VERSION:
            raise DfmError(
                f"{source}: edit list version {version} is newer than this dfm supports "
                f"({EDITS_VERSION}); update dfm"
            )
        if "format" in doc and doc["format"] != EDITS_FORMAT:
            raise DfmError(f"{source}: 'format' is {doc['format']!r}, expected {EDITS_FORMAT!r}")
        raw = doc.get("edits")
        if not isinstance(raw, list):
            raise DfmError(f"{source}: 'edits' must be a list of edits")
        edits = []
        for i, d in enumerate(raw):
            label = d.get("label") if isinstance(d, dict) else None
            edits.append(Edit.from_dict(d, where=f"{source}: edit {i + 1}" + (f" ({label})" if label else "")))
        problem = first_schema_error(doc)  # backstop: anything the friendly checks did not catch
        if problem is not None:
            raise DfmError(f"{source}: {problem}")
        return cls(edits=edits, version=EDITS_VERSION)

    @classmethod
    def from_json(cls, text: str, source: str = "edit list") -> "EditList":
        try:
            doc = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
        except json.JSONDecodeError as e:
            raise DfmError(f"{source}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
        except _DuplicateKey as e:
            raise DfmError(f"{source}: key {e.args[0]!r} appears twice in one JSON object "
                           "(JSON readers would silently keep only the last one)") from None
        return cls.from_json_obj(doc, source)


class _DuplicateKey(ValueError):
    pass


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def load_edits(path: str | os.PathLike) -> EditList:
    """Read and check an edit-list JSON file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DfmError(f"edit list {path} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DfmError(f"cannot read edit list {path}: {e}") from None
    return EditList.from_json(text, source=str(path))


def save_edits(path: str | os.PathLike, edits: EditList | Iterable[Edit], overwrite: bool = True) -> Path:
    """Check and write an edit list atomically. With overwrite=False an existing file is an error."""
    path = Path(path)
    doc = edits if isinstance(edits, EditList) else EditList(list(edits))
    doc.check()
    if not overwrite and path.exists():
        raise DfmError(f"{path} already exists; refusing to overwrite it")
    atomic_write_text(path, doc.to_json())
    return path
