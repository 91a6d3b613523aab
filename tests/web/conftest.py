"""Fixtures of the web tool's tests: one app per test over the run's shared Session (each clip is
analysed once per run), a short shared clip, and a project whose analysis is done."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

CLIP = "grid_greyhair_man_01.mp4"  # 3 s, 75 frames, 360x288, speech: the shortest shared clip with a face


@pytest.fixture(scope="session")
def web_clip(videos_dir) -> Path:
    path = videos_dir / CLIP
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


def make_app(workspace: Path, session, **settings):
    from dfm.app.web.config import Settings
    from dfm.app.web.main import create_app

    settings.setdefault("warm_preview", False)
    return create_app(Settings(workspace=workspace, **settings), session=session)


@pytest.fixture
def make_client(session, tmp_path):
    """make_client(**settings) -> a started TestClient (lifespan run) on a workspace under tmp_path."""
    from fastapi.testclient import TestClient

    clients = []

    def make(workspace: Path | None = None, **settings):
        client = TestClient(make_app(workspace or tmp_path / "web", session, **settings))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in reversed(clients):
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


def wait_job(client, job: str, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/api/jobs/{job}").json()
        if status["state"] not in ("queued", "running") or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def upload(client, path: Path, name: str | None = None):
    with open(path, "rb") as f:
        return client.post("/api/projects", files={"file": (name or path.name, f, "video/mp4")})


@pytest.fixture
def project(client, web_clip) -> dict:
    """An uploaded project with its analysis done."""
    r = upload(client, web_clip)
    assert r.status_code == 201, r.text
    body = r.json()
    status = wait_job(client, body["analysis"]["job"])
    assert status["state"] == "done", status
    return body


@pytest.fixture(scope="session")
def faceless_clip(web_clip, tmp_path_factory) -> Path:
    """The web clip with its first second blacked out: frames 0-24 have no face."""
    import numpy as np

    from dfm.io.video import VideoWriter, iter_frames, probe_video

    info = probe_video(web_clip)
    out = tmp_path_factory.mktemp("clips") / "black_start.mp4"
    with VideoWriter(out, width=info.width, height=info.height, rate=info.rate) as w:
        for f in iter_frames(web_clip):
            w.write(np.zeros_like(f.image) if f.index < 25 else np.asarray(f.image))
    return out
