"""Command-line syntax of one edit (`dfm plan --edit ...`, repeatable).

Grammar (fields separated by ':', the interval always last)::

    EDIT      := [LABEL [":" INTENSITY]] [":" NUDGES] ":" INTERVAL
               | "au" ":" NUDGES ":" INTERVAL              (nudge-only; "au:" may be left out)
    LABEL     := neutral | happy | sad | surprise | fear | anger | disgust     (any case)
    INTENSITY := low | medium | high | a number in (0, 1]  (required except for neutral, which takes none; 0 is refused)
    NUDGES    := NAME "=" OFFSET ("," NAME "=" OFFSET)*   OFFSET: signed number in [-1, 1], e.g. +0.3
    NAME      := an ICT blendshape name (mouthSmile_L, jawOpen, ...) or a two-sided stem without
                 _L/_R (mouthSmile = mouthSmile_L and mouthSmile_R)
    INTERVAL  := START "-" END         seconds, e.g. 2-5.5 or 2.0s-5.5s
               | "f" START "-" "f" END  frame indices, e.g. f48-f120

Intervals are half-open, [start, end): `2-5.5` covers the frames shown from 2.0 s up to (not including)
5.5 s; `f48-f120` covers frames 48..119.

Examples::

    happy:high:2.0-5.5
    sad:0.7:f48-f120
    neutral:10-12
    au:mouthSmile_L=+0.3,mouthSmile_R=+0.3:2.0-5.5
    mouthSmile=+0.3:2-5.5                              (same as the line above)
    surprise:low:browInnerUp=+0.2:6-8                  (an emotion plus a nudge)
"""

from __future__ import annotations

import math
import os
import re
from typing import Sequence

from dfm.affect.regions import LABELS
from dfm.edits.model import Edit, EditList, load_edits, unknown_blendshape_message
from dfm.errors import DfmError
from dfm.face.expressions import EXPRESSION_INDEX

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_SECONDS = re.compile(rf"^({_NUMBER})s?-({_NUMBER})s?$")
_FRAMES = re.compile(r"^f(\d+)-f(\d+)$")
NUDGE_ONLY = "au"


def parse_interval(text: str) -> tuple[float | int, float | int, str]:
    """'2-5.5' / '2.0s-5.5s' -> (2.0, 5.5, 'seconds'); 'f48-f120' -> (48, 120, 'frames'). ValueError if neither."""
    t = text.strip().lower().replace(" ", "")
    m = _FRAMES.match(t)
    if m:
        return int(m.group(1)), int(m.group(2)), "frames"
    m = _SECONDS.match(t)
    if m:
        return float(m.group(1)), float(m.group(2)), "seconds"
    raise ValueError(
        f"bad interval {text!r}: use START-END in seconds (e.g. 2.0-5.5) or fSTART-fEND in frames (e.g. f48-f120)"
    )


def parse_nudges(text: str) -> dict[str, float]:
    """'mouthSmile_L=+0.3,jawOpen=-0.1' -> {'mouthSmile_L': 0.3, 'jawOpen': -0.1}; stems expand to _L and _R."""
    out: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise ValueError(f"bad nudge {item!r}: use NAME=OFFSET, e.g. mouthSmile_L=+0.3")
        try:
            offset = float(value)
        except ValueError:
            raise ValueError(f"bad nudge offset {value.strip()!r} for {name}: use a signed number, e.g. +0.3") from None
        if not math.isfinite(offset):
            raise ValueError(f"nudge {name}={value.strip()} is not a finite number")
        if name in EXPRESSION_INDEX:
            names = [name]
        elif name + "_L" in EXPRESSION_INDEX and name + "_R" in EXPRESSION_INDEX:
            names = [name + "_L", name + "_R"]
        else:
            raise ValueError(unknown_blendshape_message(name))
        for n in names:
            if n in out:
                raise ValueError(f"blendshape {n} is nudged twice")
            out[n] = offset
    if not out:
        raise ValueError(f"no nudges in {text!r}")
    return out


def _parse_intensity_text(text: str) -> str | float:
    key = text.strip().lower()
    try:
        return float(key)
    except ValueError:
        return key  # a level name, or an unknown word Edit.check() reports


def parse_edit_arg(text: str) -> Edit:
    """Parse one `--edit` value (grammar in the module docstring) into a checked `Edit`; DfmError if invalid."""
    where = f"--edit {text!r}"
    parts = [p.strip() for p in str(text).strip().split(":")]
    if len(parts) < 2 or not all(parts):
        raise DfmError(
            f"{where}: expected LABEL[:INTENSITY]:START-END, e.g. happy:high:2.0-5.5 "
            "(or au:mouthSmile_L=+0.3:2.0-5.5)"
        )
    try:
        start, end, unit = parse_interval(parts[-1])
        label: str | None = None
        intensity: str | float | None = None
        nudges: dict[str, float] = {}
        head = parts[:-1]
        if head[0].lower() == NUDGE_ONLY:
            head = head[1:]
            if not head or "=" not in head[0]:
                raise ValueError("'au' must be followed by nudges, e.g. au:mouthSmile_L=+0.3:2-5")
        elif "=" not in head[0]:
            label = head[0].lower()
            if label not in LABELS:
                raise ValueError(f"unknown label {head[0]!r}; known labels: {', '.join(LABELS)}")
            head = head[1:]
            if head and "=" not in head[0]:
                intensity = _parse_intensity_text(head[0])
                head = head[1:]
        if head:
            if "=" not in head[0]:
                raise ValueError(f"unexpected field {head[0]!r}")
            nudges = parse_nudges(head[0])
            if len(head) > 1:
                raise ValueError(f"unexpected field {head[1]!r} after the nudges")
    except ValueError as e:
        raise DfmError(f"{where}: {e}") from None
    return Edit(start=start, end=end, label=label, intensity=intensity, nudges=nudges, unit=unit).check(where)


def edits_from_args(edits_file: str | os.PathLike | None = None, edit_args: Sequence[str] = ()) -> EditList:
    """The edits of one command line: those of `--edits FILE` (if given) followed by each `--edit` value."""
    edits = load_edits(edits_file).edits if edits_file is not None else []
    edits += [parse_edit_arg(text) for text in edit_args]
    if not edits:
        raise DfmError("no edits: give --edits FILE.json or --edit LABEL:INTENSITY:START-END (e.g. happy:high:2.0-5.5)")
    return EditList(edits)
