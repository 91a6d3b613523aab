"""The C2PA manifest DFM writes into an edited video: what was changed, from which input, by which tool.

- `c2pa.actions.v2`: `c2pa.opened` of the input (added by the C2PA library for the parent ingredient),
  then `c2pa.edited` with the IPTC digital source type for algorithmic media, DFM as the software agent,
  a one-line description of the edits and one temporal region per edit (`changes`: seconds as npt
  times, or frame ranges), so any C2PA reader can show which intervals were changed and how.
- the ingredient (`parentOf`): the input file by name, with its SHA-256 in the ingredient metadata.
- `org.dfm.edit`: DFM's own record, the same one the `.dfm.json` sidecar holds (disclosure, the input's
  hash, the edit list document, seed, version), so `dfm verify` can check the sidecar against it.
"""

from __future__ import annotations

import mimetypes
from typing import Any, Mapping

from dfm.edits.model import Edit, EditList

IPTC_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"
DFM_ASSERTION = "org.dfm.edit"
TOOL_NAME = "DFM (Deep Facial Manipulator)"
CLAIM_GENERATOR = "dfm"
SHA256_KEY = "org.dfm.sha256"  # in the ingredient's metadata


def _num(x: float | int) -> str:
    """Shortest text of a number that reads back the same (2.0 -> '2', 0.7 -> '0.7')."""
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


def describe_edit(edit: Edit) -> str:
    """One edit in words: 'happy (high), 0.3-4.8 s', 'sad (0.7) + mouthSmile_L -0.2, frames 48-120'."""
    what = []
    if edit.label is not None:
        what.append(edit.label if edit.intensity is None
                    else f"{edit.label} ({edit.intensity if isinstance(edit.intensity, str) else _num(edit.intensity)})")
    if edit.nudges:
        what.append(", ".join(f"{k} {float(v):+g}" for k, v in edit.nudges.items()))
    where = (f"frames {_num(edit.start)}-{_num(edit.end)}" if edit.unit == "frames"
             else f"{_num(edit.start)}-{_num(edit.end)} s")
    return f"{' + '.join(what)}, {where}"


def edit_region(edit: Edit) -> dict[str, Any]:
    """A C2PA region of interest for one edit: its time interval (or frame range) and what was done there."""
    if edit.unit == "frames":
        span = {"type": "frame", "frame": {"start": int(edit.start), "end": int(edit.end)}}
    else:
        span = {"type": "temporal", "time": {"type": "npt", "start": _num(edit.start), "end": _num(edit.end)}}
    return {"region": [span], "description": describe_edit(edit)}


def edit_description(edits: EditList, side_by_side: bool = False) -> str:
    said = "; ".join(describe_edit(e) for e in edits)
    if side_by_side:
        return ("Side-by-side comparison: left the input, right the input with the facial expressions "
                f"changed by software (DFM): {said}")
    return f"Facial expressions changed by software (DFM): {said}"


def dfm_record(*, disclosure: str, input_name: str, input_sha256: str, edits: EditList, seed: int | None,
               version: str, side_by_side: bool = False) -> dict[str, Any]:
    """DFM's own assertion (the facts the sidecar also states)."""
    return {
        "manipulated": True,
        "disclosure": disclosure,
        "tool": TOOL_NAME,
        "version": version,
        "input": {"name": input_name, "sha256": input_sha256},
        "edits": edits.to_json_obj(),
        "seed": seed,
        "layout": "side_by_side" if side_by_side else "edited",
    }


def edit_manifest(*, title: str, record: Mapping[str, Any], edits: EditList, version: str) -> dict[str, Any]:
    """The manifest definition (C2PA JSON) for one output video; `record` from `dfm_record`."""
    side_by_side = record.get("layout") == "side_by_side"
    edited = {
        "action": "c2pa.edited",
        "digitalSourceType": IPTC_ALGORITHMIC_MEDIA,
        "softwareAgent": {"name": TOOL_NAME, "version": version},
        "description": edit_description(edits, side_by_side),
        "changes": [edit_region(e) for e in edits],
    }
    return {
        "claim_generator_info": [{"name": CLAIM_GENERATOR, "version": version}],
        "title": title,
        "format": "video/mp4",
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [edited]}},
            {"label": DFM_ASSERTION, "data": dict(record)},
        ],
    }


def ingredient(title: str, sha256: str) -> dict[str, Any]:
    """The input as the parent ingredient, identified by its content hash."""
    mime = mimetypes.guess_type(title)[0] or "application/octet-stream"
    return {"title": title, "relationship": "parentOf", "format": mime, "metadata": {SHA256_KEY: sha256}}
