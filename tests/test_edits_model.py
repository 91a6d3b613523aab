"""Edit model: command-line syntax, JSON document, schema, load/save."""

from __future__ import annotations

import json

import pytest

from dfm.edits import Edit, EditList, edits_json_schema, load_edits, parse_edit_arg, save_edits
from dfm.edits.schema import EDITS_VERSION, schema_errors
from dfm.errors import DfmError

# -- command-line syntax ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("happy:high:2.0-5.5", Edit(2.0, 5.5, "happy", "high")),
        ("HAPPY:High:2-5.5", Edit(2.0, 5.5, "happy", "high")),
        ("sad:0.7:f48-f120", Edit(48, 120, "sad", 0.7, unit="frames")),
        ("surprise:low:2.0s-5.5s", Edit(2.0, 5.5, "surprise", "low")),
        ("neutral:10-12", Edit(10.0, 12.0, "neutral")),
        ("fear:1:0-1", Edit(0.0, 1.0, "fear", 1.0)),
        ("anger:medium:.5-1.25", Edit(0.5, 1.25, "anger", "medium")),
        (
            "au:mouthSmile_L=+0.3,mouthSmile_R=+0.3:2.0-5.5",
            Edit(2.0, 5.5, nudges={"mouthSmile_L": 0.3, "mouthSmile_R": 0.3}),
        ),
        ("mouthSmile=+0.3:2-5.5", Edit(2.0, 5.5, nudges={"mouthSmile_L": 0.3, "mouthSmile_R": 0.3})),
        ("au:jawOpen=-0.1:f0-f30", Edit(0, 30, nudges={"jawOpen": -0.1}, unit="frames")),
        (
            "disgust:high:browDown=0.2:3-4",
            Edit(3.0, 4.0, "disgust", "high", {"browDown_L": 0.2, "browDown_R": 0.2}),
        ),
    ],
)
def test_parse_edit_arg(text: str, expected: Edit) -> None:
    edit = parse_edit_arg(text)
    assert edit == expected
    assert parse_edit_arg(edit.to_arg()) == edit  # the canonical form parses back to the same edit


@pytest.mark.parametrize(
    "text, message",
    [
        ("hapy:high:2-5", "unknown label 'hapy'; known labels: neutral, happy, sad, surprise, fear, anger, disgust"),
        ("happy:hgh:2-5", "unknown intensity 'hgh'"),
        ("happy:1.5:2-5", "intensity 1.5 is out of range [0, 1]"),
        ("happy:-0.5:2-5", "intensity -0.5 is out of range [0, 1]"),
        ("happy:high:5.5-2", "must be before the end"),
        ("happy:high:2-2", "must be before the end"),
        ("happy:high:f50-f10", "must be before the end"),
        ("neutral:high:2-5", "neutral takes no intensity"),
        ("happy:2-5", "happy needs an intensity"),
        ("happy:high:2-x", "bad interval '2-x'"),
        ("happy:high:f2-5", "bad interval"),
        ("happy:high:-1-5", "bad interval"),
        ("happy", "expected LABEL[:INTENSITY]:START-END"),
        ("happy:high:", "expected LABEL[:INTENSITY]:START-END"),
        ("au:mouthSmil_L=0.3:2-5", "unknown blendshape 'mouthSmil_L' in nudges; did you mean mouthSmile_L"),
        ("au:foo=0.3:2-5", "unknown blendshape 'foo' in nudges; known: browDown_L"),
        ("au:jawOpen=1.5:2-5", "nudge jawOpen=+1.5 is out of range [-1, 1]"),
        ("au:jawOpen=abc:2-5", "bad nudge offset 'abc'"),
        ("au:jawOpen:2-5", "'au' must be followed by nudges"),
        ("au:2-5", "'au' must be followed by nudges"),
        ("au:mouthSmile=0.1,mouthSmile_L=0.2:2-5", "mouthSmile_L is nudged twice"),
        ("happy:high:low:2-5", "unexpected field 'low'"),
    ],
)
def test_parse_edit_arg_errors(text: str, message: str) -> None:
    with pytest.raises(DfmError) as info:
        parse_edit_arg(text)
    text_of_error = str(info.value)
    assert message in text_of_error
    assert text_of_error.startswith(f"--edit {text!r}: ")
    assert "\n" not in text_of_error


# -- Edit.check on programmatic edits ------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, message",
    [
        (Edit(1, 2, "joy", "high"), "unknown label 'joy'"),
        (Edit(1, 2, "happy", 2.0), "out of range [0, 1]"),
        (Edit(1, 2, "happy", "extreme"), "unknown intensity 'extreme'"),
        (Edit(3, 2, "happy", "low"), "must be before the end"),
        (Edit(-1, 2, "happy", "low"), "start must not be negative"),
        (Edit(1, 2), "needs an emotion label"),
        (Edit(1, 2, None, "high", {"jawOpen": 0.1}), "needs an emotion label"),
        (Edit(1.5, 20, "sad", "low", unit="frames"), "whole frame index"),
        (Edit(1, 2, "sad", "low", unit="minutes"), "unknown unit 'minutes'"),
        (Edit(1, 2, "sad", "low", {"mouthSmile": 0.2}), "unknown blendshape 'mouthSmile'"),
        (Edit(float("nan"), 2, "sad", "low"), "start must be a number"),
    ],
)
def test_edit_check_errors(edit: Edit, message: str) -> None:
    with pytest.raises(DfmError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        edit.check()


# -- JSON document and schema -------------------------------------------------------------------

VALID_EDITS = [
    {"start": 2.0, "end": 5.5, "label": "happy", "intensity": "high"},
    {"start": 48, "end": 120, "unit": "frames", "label": "sad", "intensity": 0.7},
    {"start": 8.0, "end": 10.0, "label": "neutral"},
    {"start": 8.0, "end": 10.0, "label": "neutral", "intensity": None},
    {"start": 11.0, "end": 13.0, "nudges": {"mouthSmile_L": 0.3, "mouthSmile_R": 0.3}},
    {"start": 11.0, "end": 13.0, "label": None, "nudges": {"jawOpen": -0.2}},
    {"start": 0, "end": 1, "label": "fear", "intensity": 0.05, "nudges": {"eyeWide_L": 0.1}},
]

INVALID_EDITS = [
    ({"start": 2.0, "end": 5.5, "label": "hapy", "intensity": "high"}, "unknown label 'hapy'"),
    ({"start": 2.0, "end": 5.5, "label": "happy", "intensity": 1.2}, "out of range [0, 1]"),
    ({"start": 2.0, "end": 5.5, "label": "happy", "intensity": 0}, "intensity 0 is no edit"),
    ({"start": 2.0, "end": 5.5, "label": "happy", "intensity": "loud"}, "unknown intensity"),
    ({"start": 2.0, "end": 5.5, "label": "happy"}, "happy needs an intensity"),
    ({"start": 2.0, "end": 5.5, "label": "neutral", "intensity": "low"}, "neutral takes no intensity"),
    ({"start": 2.0, "end": 5.5}, "needs an emotion label"),
    ({"start": 2.0, "end": 5.5, "nudges": {}}, "needs an emotion label"),
    ({"start": 2.0, "end": 5.5, "intensity": "low", "nudges": {"jawOpen": 0.1}}, "needs an emotion label"),
    ({"start": 2.0, "end": 5.5, "nudges": {"smile": 0.3}}, "unknown blendshape 'smile'"),
    ({"start": 2.0, "end": 5.5, "nudges": {"jawOpen": -3}}, "out of range [-1, 1]"),
    ({"start": 2.0, "end": 5.5, "label": "sad", "intensity": "low", "colour": "red"}, "unknown field 'colour'"),
    ({"start": 2.5, "end": 9, "unit": "frames", "label": "sad", "intensity": "low"}, "whole frame index"),
    ({"start": "2", "end": 5, "label": "sad", "intensity": "low"}, "start must be a number"),
    ({"start": -1, "end": 5, "label": "sad", "intensity": "low"}, "must not be negative"),
    ({"end": 5, "label": "sad", "intensity": "low"}, "missing 'start'"),
    ({"start": 1, "end": 5, "unit": "hours", "label": "sad", "intensity": "low"}, "unknown unit"),
    ({"start": 1, "end": 5, "label": "sad", "intensity": True}, "intensity must be"),
    ("happy:high:2-5", "must be a JSON object"),
]


def _doc(*edits: object) -> dict:
    return {"format": "dfm-edits", "version": EDITS_VERSION, "edits": list(edits)}


@pytest.mark.parametrize("d", VALID_EDITS)
def test_valid_edit_accepted_by_schema_and_model(d: dict) -> None:
    assert schema_errors(_doc(d)) == []
    edit = Edit.from_dict(d)
    again = edit.to_dict()
    assert schema_errors(_doc(again)) == []
    assert Edit.from_dict(again) == edit


@pytest.mark.parametrize("d, message", INVALID_EDITS)
def test_invalid_edit_rejected_by_schema_and_model(d: object, message: str) -> None:
    """The friendly checks and the published schema agree on what is invalid."""
    with pytest.raises(DfmError) as info:
        EditList.from_json_obj(_doc(d), source="edits.json")
    assert message in str(info.value)
    assert str(info.value).startswith("edits.json: edit 1")
    assert schema_errors(_doc(d)), f"schema accepts {d}"


def test_start_after_end_is_a_model_error() -> None:
    # JSON Schema cannot compare two fields: this rule lives in Edit.check only
    with pytest.raises(DfmError, match="must be before the end"):
        EditList.from_json_obj(_doc({"start": 5, "end": 2, "label": "sad", "intensity": "low"}))


def test_json_round_trip(tmp_path) -> None:
    edits = EditList([Edit.from_dict(d) for d in VALID_EDITS] + [parse_edit_arg("surprise:0.25:1-3")])
    path = save_edits(tmp_path / "edits.json", edits)
    text = path.read_text()
    doc = json.loads(text)
    assert doc["version"] == EDITS_VERSION and doc["format"] == "dfm-edits"
    assert schema_errors(doc) == []
    loaded = load_edits(path)
    assert loaded.edits == edits.edits
    assert loaded.to_json() == text
    assert [p.name for p in tmp_path.iterdir()] == ["edits.json"]  # no temp file left behind


def test_save_refuses_to_overwrite_when_asked(tmp_path) -> None:
    path = tmp_path / "edits.json"
    save_edits(path, [parse_edit_arg("happy:high:1-3")])
    with pytest.raises(DfmError, match="already exists"):
        save_edits(path, [parse_edit_arg("sad:low:1-3")], overwrite=False)
    assert load_edits(path)[0].label == "happy"


def test_save_rejects_invalid_edit(tmp_path) -> None:
    with pytest.raises(DfmError, match="edit 1 .*unknown label"):
        save_edits(tmp_path / "e.json", [Edit(1, 2, "joy", "high")])
    assert not (tmp_path / "e.json").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object with 'version' and 'edits'"),
        ('{"edits": []}', "missing 'version'"),
        ('{"version": 2, "edits": []}', "edit list version 2 is newer than this dfm supports (1)"),
        ('{"version": 1}', "'edits' must be a list"),
        ('{"version": 1, "format": "other", "edits": []}', "'format' is 'other'"),
        ('{"version": 1, "edits": [], "extra": 1}', "Additional properties"),
        ('{"version": 0, "edits": []}', "version: must be 1, got 0"),
    ],
)
def test_load_document_errors(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "edits.json"
    path.write_text(text)
    with pytest.raises(DfmError) as info:
        load_edits(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_load_missing_file(tmp_path) -> None:
    with pytest.raises(DfmError, match="not found"):
        load_edits(tmp_path / "nope.json")


def test_load_names_the_bad_edit(tmp_path) -> None:
    path = tmp_path / "edits.json"
    path.write_text(json.dumps(_doc(VALID_EDITS[0], {"start": 6, "end": 8, "label": "joy", "intensity": "low"})))
    with pytest.raises(DfmError, match=r"edits.json: edit 2 \(joy\): unknown label 'joy'; known labels: neutral"):
        load_edits(path)


def test_schema_is_a_valid_json_schema() -> None:
    import jsonschema

    schema = edits_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["version"]["const"] == EDITS_VERSION
    schema["title"] = "changed"
    assert edits_json_schema()["title"] != "changed"  # a copy


def test_minimal_document_without_format() -> None:
    edits = EditList.from_json('{"version": 1, "edits": [{"start": 1, "end": 2, "label": "sad", "intensity": "low"}]}')
    assert edits[0] == Edit(1.0, 2.0, "sad", "low")
    assert edits[0].intensity_value == pytest.approx(1 / 6)


def test_edits_from_args(tmp_path) -> None:
    from dfm.edits import edits_from_args

    path = save_edits(tmp_path / "e.json", [parse_edit_arg("sad:low:1-3")])
    edits = edits_from_args(path, ["happy:high:5-7", "au:jawOpen=+0.1:8-9"])
    assert [e.label for e in edits] == ["sad", "happy", None]
    assert [e.label for e in edits_from_args(None, ["fear:0.3:1-2"])] == ["fear"]
    with pytest.raises(DfmError, match="no edits: give --edits"):
        edits_from_args(None, [])
