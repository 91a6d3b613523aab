"""Semantic edits: from labels on a timeline to a per-frame target expression (paper §3.4, first half).

    edits = load_edits("edits.json")                     # or [parse_edit_arg("happy:high:2.0-5.5"), ...]
    plan = make_plan(edits, track.timestamps, track.valid, track.expression, decoder.predict, seed=0)
    # or: make_plan_for_track(track, edits, decoder.predict, seed=0, preserve_speech=True)
    plan.save("plan.npz"); plot_plan(plan, track.expression, "plan.png")

Modules: `schema` (versioned JSON Schema), `model` (Edit, EditList, load/save), `parse` (command-line
syntax), `validate` (edits against a video), `trajectory` (VA sampling + B-spline), `speech` (speech
preservation), `plan` (target expression, weights, transitions, smoothing), `plot` (PNG).
`plot_plan` is imported lazily so that planning does not import matplotlib.
"""

from dfm.edits.model import Edit, EditList, load_edits, save_edits
from dfm.edits.parse import edits_from_args, parse_edit_arg
from dfm.edits.plan import DEFAULT_SMOOTHING, DEFAULT_TRANSITION_FRAMES, Plan, make_plan, make_plan_for_track
from dfm.edits.schema import EDITS_VERSION, edits_json_schema
from dfm.edits.speech import SPEECH_CHANNELS
from dfm.edits.validate import ResolvedEdit, minimum_edit_frames, validate_edits

__all__ = [
    "DEFAULT_SMOOTHING",
    "DEFAULT_TRANSITION_FRAMES",
    "EDITS_VERSION",
    "Edit",
    "EditList",
    "Plan",
    "ResolvedEdit",
    "SPEECH_CHANNELS",
    "edits_from_args",
    "edits_json_schema",
    "load_edits",
    "make_plan",
    "make_plan_for_track",
    "minimum_edit_frames",
    "parse_edit_arg",
    "plot_plan",
    "save_edits",
    "validate_edits",
]


def __getattr__(name: str):
    if name == "plot_plan":
        from dfm.edits.plot import plot_plan

        return plot_plan
    raise AttributeError(f"module 'dfm.edits' has no attribute {name!r}")
