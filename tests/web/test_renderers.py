"""The renderer choice of the web tool (`dfm edit|preview --renderer`): listed per project with what is
trained, refused with the command that trains it (preview and render, before a job is queued), and used
by the preview and the render job once its model exists."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from tests.web.conftest import make_app, upload, wait_job

pytestmark = pytest.mark.integration

EDITS = {"format": "dfm-edits", "version": 1,
         "edits": [{"start": 0.6, "end": 1.6, "unit": "seconds", "label": "happy", "intensity": "high"}]}


def _png(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_untrained_renderers_are_refused_with_the_command_that_trains_them(client, project, session):
    pid = project["id"]
    assert client.get("/api/vocabulary").json()["renderers"] == ["warp", "warp+refine", "neural"]
    client.put(f"/api/projects/{pid}/edits", json=EDITS)
    listed = {r["name"]: r for r in client.get(f"/api/projects/{pid}/renderers").json()["data"]}
    assert listed["warp"] == {"name": "warp", "trained": True, "message": None}
    refine, neural = listed["warp+refine"], listed["neural"]
    assert not refine["trained"] and not neural["trained"]
    input_path = client.app.state.web.projects.get(pid).input
    # the exact command for this project's video (the server's workspace is the default one: no --workspace)
    assert refine["message"] == (f"the warp+refine renderer has no trained model for this video; train it with "
                                 f"`dfm renderer train {input_path} --refiner`")
    assert neural["message"].endswith(f"`dfm renderer train {input_path}`")

    r = client.get(f"/api/projects/{pid}/preview", params={"t": 1.0, "renderer": "warp+refine"})
    assert r.status_code == 422 and r.headers["x-dfm-error"] == "renderer" and r.json()["detail"] == refine["message"]
    r = client.get(f"/api/projects/{pid}/preview", params={"t": 1.0, "renderer": "foo"})
    assert r.status_code == 422 and r.headers["x-dfm-error"] == "renderer"
    assert r.json()["detail"] == "unknown renderer 'foo'; choose one of warp, warp+refine, neural"
    before = len(client.get(f"/api/projects/{pid}/jobs").json())
    r = client.post(f"/api/projects/{pid}/render", json={"seed": 0, "renderer": "neural"})
    assert r.status_code == 422 and r.json()["detail"] == neural["message"]
    assert len(client.get(f"/api/projects/{pid}/jobs").json()) == before  # nothing was queued


def test_a_trained_refiner_is_used_by_preview_and_render(session, web_clip, tmp_path):
    """A workspace of its own (the shared one must stay without a refiner for this clip): the clip's cached
    track is copied in, and a tiny refiner (a few steps: enough to change the mouth) is trained there."""
    from fastapi.testclient import TestClient

    from dfm.io.video import iter_frames
    from dfm.pipelines.refiner_train import RefinerTrainOptions, train_refiner
    from dfm.pipelines.session import Session

    cache = session.analyze(web_clip).meta["cache"]
    ws = tmp_path / "ws"
    (ws / "tracks").mkdir(parents=True)
    for f in (cache, str(cache).replace(".npz", ".json")):
        shutil.copy(f, ws / "tracks")
    own = Session(workspace=ws, progress=False, _models=session.models)
    train_refiner(own, web_clip, RefinerTrainOptions(steps=12, max_pairs=12, batch=4, threads=1, checkpoint_every=1000))

    with TestClient(make_app(ws, own)) as client:
        r = upload(client, web_clip)
        assert wait_job(client, r.json()["analysis"]["job"])["state"] == "done"
        pid = r.json()["id"]
        listed = {x["name"]: x for x in client.get(f"/api/projects/{pid}/renderers").json()["data"]}
        assert listed["warp+refine"]["trained"] and listed["warp+refine"]["message"] is None
        input_path = client.app.state.web.projects.get(pid).input
        assert listed["neural"]["message"].endswith(f"`dfm renderer train {input_path} --workspace {ws}`")
        client.put(f"/api/projects/{pid}/edits", json=EDITS)
        warp = _png(client.get(f"/api/projects/{pid}/preview", params={"t": 1.0})).astype(int)
        refined = _png(client.get(f"/api/projects/{pid}/preview", params={"t": 1.0, "renderer": "warp+refine"})).astype(int)
        changed = np.abs(refined - warp).max(2) > 2
        assert changed.sum() > 50  # the refiner changed the mouth ...
        track = own.analyze(web_clip)
        lips = track.landmarks[track.frame_index_at(1.0)][[61, 291, 0, 17]]  # mouth corners, upper and lower lip
        ys, xs = np.nonzero(changed)
        width = lips[1, 0] - lips[0, 0]
        assert ys.min() > lips[2, 1] - width and ys.max() < lips[3, 1] + width  # ... and only the mouth

        outputs = {}
        for name in ("warp", "warp+refine"):
            r = client.post(f"/api/projects/{pid}/render", json={"seed": 0, "renderer": name})
            assert r.status_code == 202, r.text
            assert wait_job(client, r.json()["job"])["state"] == "done"
            outputs[name] = tmp_path / f"{name}.mp4"
            outputs[name].write_bytes(client.get(f"/api/projects/{pid}/output").content)
        frames = {name: {f.index: np.asarray(f.image).astype(int) for f in iter_frames(p)} for name, p in outputs.items()}
        i = track.frame_index_at(1.0)
        mouth = np.zeros(warp.shape[:2], bool)
        x0, x1 = int(lips[0, 0] - 0.3 * width), int(lips[1, 0] + 0.3 * width)
        y0, y1 = int(lips[2, 1] - 0.3 * width), int(lips[3, 1] + 0.3 * width)
        mouth[y0:y1, x0:x1] = True
        d = np.abs(frames["warp+refine"][i] - frames["warp"][i]).max(2)
        assert d[mouth].mean() > 2 * d[~mouth].mean() + 0.5  # the render job used the refiner (mouth only)
