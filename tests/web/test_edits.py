"""Edit lists (PUT/GET, the CLI's messages on 422) and the live preview (PNG, equal to Session.preview)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.integration

GOOD = {"format": "dfm-edits", "version": 1,
        "edits": [{"start": 0.6, "end": 2.4, "unit": "seconds", "label": "happy", "intensity": "high"}]}


def cli_error(capsys, session, video, doc, tmp_path) -> str:
    """The one line `dfm edit --edits FILE` prints for this document."""
    from dfm.app.cli.main import main

    path = tmp_path / "edits.json"
    path.write_text(json.dumps(doc))
    capsys.readouterr()
    rc = main(["--workspace", str(session.workspace), "-q", "edit", str(video), "--edits", str(path),
               "-o", str(tmp_path / "never.mp4")])
    assert rc == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("dfm: error: ")
    return line[len("dfm: error: "):].replace(str(path), "edit list")  # the CLI names the file, the API "edit list"


def test_put_get_round_trip(client, project):
    pid = project["id"]
    assert client.get(f"/api/projects/{pid}/edits").json()["edits"] == []
    r = client.put(f"/api/projects/{pid}/edits", json=GOOD)
    assert r.status_code == 200 and r.json() == GOOD
    assert client.get(f"/api/projects/{pid}/edits").json() == GOOD


@pytest.mark.parametrize("doc", [
    {"version": 1, "edits": [{"start": 0.5, "end": 2.0, "label": "joyful", "intensity": "high"}]},
    {"version": 1, "edits": [{"start": 0.5, "end": 9.0, "label": "happy", "intensity": "high"}]},
    {"version": 1, "edits": [{"start": 0.2, "end": 1.5, "label": "happy", "intensity": "high"},
                             {"start": 1.0, "end": 2.5, "label": "sad", "intensity": "low"}]},
    {"version": 1, "edits": [{"start": 1.0, "end": 1.2, "label": "sad", "intensity": 0.5}]},
    {"edits": []},
], ids=["unknown-label", "past-the-end", "overlap", "too-short", "no-version"])
def test_invalid_edits_are_422_with_the_cli_message(client, project, session, web_clip, capsys, tmp_path, doc):
    pid = project["id"]
    client.put(f"/api/projects/{pid}/edits", json=GOOD)
    r = client.put(f"/api/projects/{pid}/edits", json=doc)
    assert r.status_code == 422
    assert r.json()["detail"] == cli_error(capsys, session, web_clip, doc, tmp_path)
    assert client.get(f"/api/projects/{pid}/edits").json() == GOOD  # the saved list is unchanged


def _png(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_preview_equals_session_preview_and_leaves_other_frames_alone(client, project, session, web_clip):
    from dfm.edits import EditList
    from dfm.io.video import read_frame

    pid = project["id"]
    client.put(f"/api/projects/{pid}/edits", json=GOOD)
    inside = client.get(f"/api/projects/{pid}/preview", params={"t": 1.5})
    image = _png(inside)
    assert image.shape == (project["video"]["height"], project["video"]["width"], 3)
    assert float(inside.headers["x-dfm-weight"]) > 0.9
    expected = session.preview(web_clip, EditList.from_json_obj(GOOD), at=1.5)
    np.testing.assert_array_equal(image, expected)
    original = np.asarray(read_frame(web_clip, int(inside.headers["x-dfm-frame"])).image)
    assert np.abs(image.astype(int) - original).max() > 20  # the face changed

    outside = client.get(f"/api/projects/{pid}/preview", params={"t": 2.8})
    assert float(outside.headers["x-dfm-weight"]) == 0
    np.testing.assert_array_equal(_png(outside), np.asarray(read_frame(web_clip, int(outside.headers["x-dfm-frame"])).image))


def test_preview_follows_intensity(client, project):
    pid = project["id"]
    frames = []
    for intensity in (0.2, 1.0):
        doc = {"version": 1, "edits": [{**GOOD["edits"][0], "intensity": intensity}]}
        assert client.put(f"/api/projects/{pid}/edits", json=doc).status_code == 200
        frames.append(_png(client.get(f"/api/projects/{pid}/preview", params={"t": 1.5})).astype(int))
    assert np.abs(frames[0] - frames[1]).mean() > 0.05


def test_preview_keeps_or_rests_the_lip_motion_as_asked(client, project, session, web_clip):
    """The GRID speaker talks (and has sound): by default the preview keeps his lip motion, as a render would;
    preserve_speech=false lays the mouth on its closed rest, as `dfm edit --no-preserve-speech`."""
    from dfm.edits import EditList

    pid = project["id"]
    client.put(f"/api/projects/{pid}/edits", json=GOOD)
    auto = client.get(f"/api/projects/{pid}/preview", params={"t": 1.5})
    rest = client.get(f"/api/projects/{pid}/preview", params={"t": 1.5, "preserve_speech": "false"})
    kept = client.get(f"/api/projects/{pid}/preview", params={"t": 1.5, "preserve_speech": "true"})
    assert (auto.headers["x-dfm-speech"], rest.headers["x-dfm-speech"], kept.headers["x-dfm-speech"]) == (
        "kept", "rest", "kept")
    np.testing.assert_array_equal(_png(auto), _png(kept))
    expected = session.preview(web_clip, EditList.from_json_obj(GOOD), at=1.5, preserve_speech=False)
    np.testing.assert_array_equal(_png(rest), expected)
    assert np.abs(_png(rest).astype(int) - _png(kept)).max() > 20  # the mouth differs


def test_preview_needs_a_time(client, project):
    assert client.get(f"/api/projects/{project['id']}/preview").status_code == 422
    assert client.get(f"/api/projects/{project['id']}/preview", params={"t": -1}).status_code == 422


def test_vocabulary_lists_all_labels(client):
    v = client.get("/api/vocabulary").json()
    assert set(v["labels"]) == {"neutral", "happy", "sad", "surprise", "fear", "anger", "disgust"}
    assert "mouthSmile_L" in v["blendshapes"] and v["minimum_edit_frames"] == 21


def test_edit_over_frames_without_a_face_is_422(client, faceless_clip):
    from tests.web.conftest import upload, wait_job

    r = upload(client, faceless_clip)
    assert wait_job(client, r.json()["analysis"]["job"])["state"] == "done"
    pid = r.json()["id"]
    valid = client.get(f"/api/projects/{pid}/analysis").json()["valid"]
    assert not any(valid[:25]) and all(valid[26:])
    bad = {"version": 1, "edits": [{"start": 0.5, "end": 2.0, "label": "happy", "intensity": "high"}]}
    r = client.put(f"/api/projects/{pid}/edits", json=bad)
    assert r.status_code == 422
    assert "without a tracked face" in r.json()["detail"] and "move, shorten or split the edit" in r.json()["detail"]
    ok = {"version": 1, "edits": [{"start": 1.2, "end": 2.8, "label": "happy", "intensity": "high"}]}
    assert client.put(f"/api/projects/{pid}/edits", json=ok).status_code == 200
