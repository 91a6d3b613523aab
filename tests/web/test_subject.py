"""Choosing the face to edit in the web tool: the faces at a time, a click on one (PUT .../subject) analyses
the video again for that person; bad choices are 422. On two GRID speakers side by side (made at test time)."""

from __future__ import annotations

import pytest

from subject_clips import side_by_side
from web.conftest import upload, wait_job

pytestmark = pytest.mark.integration

HALF = 360  # each GRID clip is 360 px wide: the left speaker's face lies left of x = 360


@pytest.fixture(scope="module")
def two_people(tmp_path_factory, videos_dir):
    root = tmp_path_factory.mktemp("web-subject")
    return side_by_side(videos_dir / "grid_blonde_woman_01.mp4", videos_dir / "grid_glasses_man_01.mp4",
                        root / "two.mp4", 30)


@pytest.fixture
def two_project(client, two_people):
    r = upload(client, two_people)
    assert r.status_code == 201, r.text
    assert wait_job(client, r.json()["analysis"]["job"])["state"] == "done"
    return r.json()


def subject_centre_x(session, project, workspace):
    track = session.with_subject(project["subject"]).analyze(workspace / "projects" / project["id"] / "input.mp4")
    return float(track.landmarks[track.valid, :, 0].mean())


def test_click_on_a_face_makes_it_the_subject(client, two_project, session, tmp_path):
    pid = two_project["id"]
    assert two_project["subject"] == "largest"
    faces = client.get(f"/api/projects/{pid}/faces", params={"t": 0.4}).json()
    assert len(faces["faces"]) == 2
    left, right = faces["faces"]
    assert left["x1"] < HALF < right["x0"]  # left to right, in video pixels
    cx, cy = (right["x0"] + right["x1"]) / 2, (right["y0"] + right["y1"]) / 2
    r = client.put(f"/api/projects/{pid}/subject", json={"subject": f"0.4s:{cx:.0f},{cy:.0f}"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["subject"] == f"0.4s:{cx:.0f},{cy:.0f}"
    assert body["analysis"]["job"] != two_project["analysis"]["job"]
    assert wait_job(client, body["analysis"]["job"])["state"] == "done"
    project = client.get(f"/api/projects/{pid}").json()
    assert project["subject"] == body["subject"]
    assert subject_centre_x(session, project, tmp_path / "web") > HALF  # the right speaker is tracked now
    assert client.get(f"/api/projects/{pid}/preview", params={"t": 0.5}).status_code == 200

    r = client.put(f"/api/projects/{pid}/subject", json={"subject": "leftmost"})
    assert r.status_code == 202
    assert wait_job(client, r.json()["analysis"]["job"])["state"] == "done"
    project = client.get(f"/api/projects/{pid}").json()
    assert subject_centre_x(session, project, tmp_path / "web") < HALF


@pytest.mark.parametrize("choice,needle", [("the tall one", "bad subject"), ("0.4s:5,5", "no face at"),
                                            ("99s:100,100", "outside the video")])
def test_bad_subject_choices_are_422(client, two_project, choice, needle):
    r = client.put(f"/api/projects/{two_project['id']}/subject", json={"subject": choice})
    assert r.status_code == 422
    assert needle in r.json()["detail"]
    assert client.get(f"/api/projects/{two_project['id']}").json()["subject"] == "largest"


def test_faces_past_the_end_is_422(client, two_project):
    assert client.get(f"/api/projects/{two_project['id']}/faces", params={"t": 99}).status_code == 422
