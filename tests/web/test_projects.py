"""Projects: upload (video facts, analysis job), list/show/delete, the timeline series, the input with
range requests, and the upload checks (not a video, too large)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.web.conftest import upload, wait_job

pytestmark = pytest.mark.integration


def test_upload_returns_video_facts_and_starts_analysis(client, web_clip):
    from dfm.io.video import probe_video

    r = upload(client, web_clip)
    assert r.status_code == 201, r.text
    body = r.json()
    info = probe_video(web_clip)
    assert body["name"] == web_clip.name
    assert body["video"] == {"frames": info.n_frames, "fps": pytest.approx(info.fps), "width": info.width,
                             "height": info.height, "duration": pytest.approx(info.duration), "has_audio": info.has_audio}
    assert body["analysis"]["state"] in ("queued", "running", "done")
    done = wait_job(client, body["analysis"]["job"])
    assert done["state"] == "done" and done["progress"] == 1.0
    assert client.get(f"/api/projects/{body['id']}").json()["analysis"]["state"] == "done"


def test_list_show_delete(client, project):
    listed = client.get("/api/projects").json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == project["id"]
    assert client.get(f"/api/projects/{project['id']}").json()["name"] == project["name"]
    assert client.delete(f"/api/projects/{project['id']}").status_code == 204
    assert client.get(f"/api/projects/{project['id']}").status_code == 404
    assert client.get("/api/projects").json()["count"] == 0


def test_analysis_series_match_the_track(client, project, session, web_clip):
    a = client.get(f"/api/projects/{project['id']}/analysis").json()
    track = session.analyze(web_clip)
    assert a["frames"] == track.n_frames == len(a["times"]) == len(a["valid"]) == len(a["valence"]) == len(a["arousal"])
    assert a["valid"] == track.valid.tolist()
    ok = np.isfinite(track.valence)
    np.testing.assert_allclose(np.array(a["valence"], float)[ok], track.valence[ok], atol=1e-4)
    assert all(v is None for v, good in zip(a["valence"], ok) if not good)


def test_video_is_served_with_range_requests(client, project, web_clip):
    data = web_clip.read_bytes()
    full = client.get(f"/api/projects/{project['id']}/video")
    assert full.status_code == 200 and full.content == data and full.headers["accept-ranges"] == "bytes"
    part = client.get(f"/api/projects/{project['id']}/video", headers={"Range": "bytes=100-299"})
    assert part.status_code == 206 and part.content == data[100:300]
    assert part.headers["content-range"] == f"bytes 100-299/{len(data)}"


def test_text_file_named_mp4_is_refused_by_probing(client, tmp_path):
    fake = tmp_path / "holiday.mp4"
    fake.write_text("this is not a video\n" * 50)
    r = upload(client, fake)
    assert r.status_code == 415
    assert r.json()["detail"].startswith("holiday.mp4: not a video DFM can read")
    assert str(tmp_path) not in r.json()["detail"]  # no server paths in messages
    assert client.get("/api/projects").json()["count"] == 0


def test_image_is_not_a_video(client, tmp_path):
    import cv2

    png = tmp_path / "face.mp4"
    cv2.imwrite(str(tmp_path / "face.png"), np.zeros((64, 64, 3), np.uint8))
    png.write_bytes((tmp_path / "face.png").read_bytes())
    assert upload(client, png).status_code == 415


def test_oversized_upload_is_413(make_client, tmp_path, web_clip):
    client = make_client(workspace=tmp_path / "small", max_upload_mb=0.05)  # 50 KB; the clip is larger
    assert web_clip.stat().st_size > 0.05 * 1024 * 1024 + 64 * 1024
    r = upload(client, web_clip)
    assert r.status_code == 413 and "larger than the limit of 0.05 MB" in r.json()["detail"]
    assert client.get("/api/projects").json()["count"] == 0
    leftovers = list((tmp_path / "small").rglob("*.tmp"))
    assert leftovers == []


def test_oversized_chunked_upload_is_413(make_client, tmp_path):
    """Without a Content-Length the body is counted as it streams."""
    client = make_client(workspace=tmp_path / "small", max_upload_mb=0.05)

    def body():
        yield b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
        for _ in range(40):
            yield b"x" * 8192

    r = client.post("/api/projects", content=body(), headers={"Content-Type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 413


def test_waveform_follows_the_soundtrack(client, project, web_clip):
    w = client.get(f"/api/projects/{project['id']}/waveform", params={"buckets": 60}).json()
    assert w["has_audio"] and len(w["peaks"]) == 60 and max(w["peaks"]) == 1.0
    peaks = w["peaks"]
    assert max(peaks[:5]) < 0.2 and max(peaks[10:40]) > 0.5  # GRID: silence, then the spoken sentence
    assert client.get(f"/api/projects/{project['id']}/waveform", params={"buckets": 1}).status_code == 422
