"""The person behind the face: a saved person (unknown: 404), detaching, and a collection video whose
job reports the decoder's coverage per label."""

from __future__ import annotations

import pytest

from tests.web.conftest import wait_job

pytestmark = pytest.mark.integration


def test_person_coverage_and_unknown_person(client, project):
    pid = project["id"]
    own = client.get(f"/api/projects/{pid}/person").json()
    assert own["source"] == "this video's own frames"
    assert {row["label"] for row in own["labels"]} == {"neutral", "happy", "sad", "surprise", "fear", "anger", "disgust"}
    assert len(own["coverage"]) == 7 and all("coverage" in line for line in own["coverage"])
    r = client.put(f"/api/projects/{pid}/person", json={"person": "nobody"})
    assert r.status_code == 404 and "dfm person add" in r.json()["detail"]
    assert client.put(f"/api/projects/{pid}/person", json={"person": "../x"}).status_code == 422
    assert client.put(f"/api/projects/{pid}/person", json={"person": None}).status_code == 200
    assert client.get("/api/persons").status_code == 200


def test_collection_video_reports_coverage(client, project, videos_dir):
    other = videos_dir / "grid_greyhair_man_02.mp4"  # the same talker
    with open(other, "rb") as f:
        r = client.post(f"/api/projects/{project['id']}/collection", files={"file": (other.name, f, "video/mp4")})
    assert r.status_code == 202
    status = wait_job(client, r.json()["job"])
    assert status["state"] == "done", status
    assert status["result"]["source"] == "this video + 1 collection video(s)"
    assert len(status["result"]["labels"]) == 7
    p = client.get(f"/api/projects/{project['id']}").json()
    assert p["collection"] == ["01.mp4"]
    text = client.post(f"/api/projects/{project['id']}/collection", files={"file": ("x.mp4", b"not a video", "video/mp4")})
    assert text.status_code == 415
