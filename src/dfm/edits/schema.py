"""The versioned JSON Schema of an edit-list document — the contract the CLI, the Python API and the web tool share.

An edit-list document (version 1)::

    {
      "format": "dfm-edits",                  # optional, must be this string when present
      "version": 1,                           # required; a newer version is refused with a clear message
      "edits": [
        {"start": 2.0, "end": 5.5, "label": "happy", "intensity": "high"},
        {"start": 48, "end": 120, "unit": "frames", "label": "sad", "intensity": 0.7},
        {"start": 8.0, "end": 10.0, "label": "neutral"},
        {"start": 11.0, "end": 13.0, "nudges": {"mouthSmile_L": 0.3, "mouthSmile_R": 0.3}}
      ]
    }

Per edit: `start`/`end` in seconds (default) or frame indices (`"unit": "frames"`, integers); the interval
is half-open, [start, end). `label` is one of `dfm.affect.regions.LABELS` (omitted or null for a
nudge-only edit); `intensity` is low | medium | high or a number in (0, 1] (0 is refused: no edit), required for every label but
`neutral`, which takes none. `nudges` maps ICT blendshape names (`dfm.face.expressions.EXPRESSION_NAMES`) to
offsets in [-1, 1] added to the target expression. An edit needs a label, nudges, or both.

The schema states the structure; `dfm.edits.model.Edit.check` states the same rules with friendlier
messages (plus start < end, which JSON Schema cannot express). Tests keep the two in agreement.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema

from dfm.affect.regions import INTENSITY_LEVELS, LABELS
from dfm.face.expressions import EXPRESSION_NAMES

EDITS_FORMAT = "dfm-edits"
EDITS_VERSION = 1
UNITS = ("seconds", "frames")
EDIT_FIELDS = ("start", "end", "unit", "label", "intensity", "nudges")
NUDGE_LIMIT = 1.0  # |offset| of one nudge; a blendshape weight lives in [0, 1]

_EMOTIONS = [label for label in LABELS if label != "neutral"]

EDIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["start", "end"],
    "properties": {
        "start": {"type": "number", "minimum": 0},
        "end": {"type": "number", "minimum": 0},
        "unit": {"enum": list(UNITS)},
        "label": {"enum": [*LABELS, None]},
        "intensity": {
            "anyOf": [
                {"enum": list(INTENSITY_LEVELS)},
                {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                {"type": "null"},
            ]
        },
        "nudges": {
            "type": "object",
            "propertyNames": {"enum": list(EXPRESSION_NAMES)},
            "additionalProperties": {"type": "number", "minimum": -NUDGE_LIMIT, "maximum": NUDGE_LIMIT},
        },
    },
    "allOf": [
        {  # frame indices are integers
            "if": {"required": ["unit"], "properties": {"unit": {"const": "frames"}}},
            "then": {"properties": {"start": {"type": "integer"}, "end": {"type": "integer"}}},
        },
        {  # neutral takes no intensity
            "if": {"required": ["label"], "properties": {"label": {"const": "neutral"}}},
            "then": {"properties": {"intensity": {"type": "null"}}},
        },
        {  # every other label needs one
            "if": {"required": ["label"], "properties": {"label": {"enum": _EMOTIONS}}},
            "then": {"required": ["intensity"], "properties": {"intensity": {"not": {"type": "null"}}}},
        },
        {  # without a label: no intensity, and at least one nudge
            "if": {"anyOf": [{"not": {"required": ["label"]}}, {"properties": {"label": {"type": "null"}}}]},
            "then": {
                "required": ["nudges"],
                "properties": {"nudges": {"minProperties": 1}, "intensity": {"type": "null"}},
            },
        },
    ],
}

EDITS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"https://dfm.invalid/schemas/edits-v{EDITS_VERSION}.json",
    "title": "DFM edit list",
    "description": "Time intervals of a video with the emotion (and/or blendshape nudges) to show there.",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "edits"],
    "properties": {
        "format": {"const": EDITS_FORMAT},
        "version": {"const": EDITS_VERSION},
        "edits": {"type": "array", "items": EDIT_SCHEMA},
    },
}

_VALIDATOR = jsonschema.Draft202012Validator(EDITS_SCHEMA)


def edits_json_schema() -> dict[str, Any]:
    """A copy of the edit-list JSON Schema (e.g. for the web tool or to publish next to the docs)."""
    return copy.deepcopy(EDITS_SCHEMA)


def _where(path: Any) -> str:
    """JSON path of an error as `edits[2].label` (indices shown 0-based as in the document)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


def schema_errors(doc: Any) -> list[str]:
    """One line per schema violation of an edit-list document (empty list: valid)."""
    errors = sorted(_VALIDATOR.iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [f"{_where(e.absolute_path)}: {_message(e)}" for e in errors]


def first_schema_error(doc: Any) -> str | None:
    """The most relevant schema violation as one line, or None when the document is valid."""
    best = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(doc))
    return None if best is None else f"{_where(best.absolute_path)}: {_message(best)}"


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "enum" and isinstance(error.validator_value, list):
        known = ", ".join(str(v) for v in error.validator_value if v is not None)
        return f"{error.instance!r} is not allowed; allowed: {known}"
    if error.validator == "const":
        return f"must be {error.validator_value!r}, got {error.instance!r}"
    return error.message.replace("\n", " ")
