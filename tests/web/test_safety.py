"""Every id in every route: unknown ids are 404, and `../` or URL-encoded traversal never reaches a file
outside the workspace (a secret file beside it must never come back)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

PROJECT_ROUTES = [("GET", ""), ("DELETE", ""), ("GET", "/analysis"), ("GET", "/video"), ("GET", "/edits"),
                  ("PUT", "/edits"), ("GET", "/preview?t=1"), ("PUT", "/person"), ("GET", "/person"),
                  ("POST", "/collection"), ("POST", "/render"), ("GET", "/output"), ("GET", "/output/sidecar"),
                  ("GET", "/jobs"), ("GET", "/waveform"), ("GET", "/faces?t=1"), ("PUT", "/subject")]
BAD_IDS = ["000000000000", "..", "..%2F..%2Fsecret", "%2e%2e", "%2e%2e%2fsecret", "..%5csecret",
           "../../secret", "abc", "0123456789ab%00"]
SECRET = "TOP-SECRET-CONTENT"


@pytest.fixture
def guarded(client, tmp_path):
    (tmp_path / "secret").write_text(SECRET)
    (tmp_path / "web" / "secret").write_text(SECRET)
    return client


def _call(client, method, url):
    kw = {}
    if method == "PUT" and url.endswith("/person"):
        kw["json"] = {"person": None}
    elif method == "PUT" and url.endswith("/subject"):
        kw["json"] = {"subject": "largest"}
    elif method == "PUT":
        kw["json"] = {"version": 1, "edits": []}
    elif method == "POST" and url.endswith("/collection"):
        kw["files"] = {"file": ("a.mp4", b"x", "video/mp4")}
    return client.request(method, url, **kw)


@pytest.mark.parametrize("method,suffix", PROJECT_ROUTES)
@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_project_ids(guarded, method, suffix, bad):
    r = _call(guarded, method, f"/api/projects/{bad}{suffix}")
    assert r.status_code in (404, 405, 422), (method, suffix, bad, r.status_code)
    assert SECRET not in r.text


@pytest.mark.parametrize("bad", ["0123456789abcdef", "..", "..%2F..%2Fsecret", "%2e%2e", "../secret", "xyz"])
@pytest.mark.parametrize("method,suffix", [("GET", ""), ("DELETE", ""), ("GET", "/events")])
def test_bad_job_ids(guarded, method, suffix, bad):
    r = guarded.request(method, f"/api/jobs/{bad}{suffix}")
    assert r.status_code in (404, 405, 422)
    assert SECRET not in r.text


@pytest.mark.parametrize("path", ["/../secret", "/..%2Fsecret", "/%2e%2e/secret", "/static/../../secret",
                                  "/..%2F..%2F..%2Fetc%2Fpasswd", "/%2e%2e%2f%2e%2e%2fetc%2fpasswd"])
def test_page_files_only(guarded, path):
    r = guarded.get(path)
    assert r.status_code == 404
    assert SECRET not in r.text and "root:" not in r.text


def test_page_is_served(guarded):
    r = guarded.get("/")
    assert r.status_code == 200 and "<canvas id=\"timeline\"" in r.text
    assert guarded.get("/app.js").status_code == 200 and guarded.get("/style.css").status_code == 200
    assert guarded.get("/api/health").json()["status"] == "ok"
    assert "/api/projects/{id}/preview" in guarded.get("/openapi.json").json()["paths"]  # FastAPI's /docs


def test_upload_name_cannot_place_files(client, web_clip, tmp_path):
    from tests.web.conftest import upload, wait_job

    r = upload(client, web_clip, name="../../../evil.mp4")
    assert r.status_code == 201 and r.json()["name"] == "evil.mp4"
    wait_job(client, r.json()["analysis"]["job"])
    assert not (tmp_path / "evil.mp4").exists() and not list(tmp_path.rglob("evil.mp4"))
