"""Shared fixtures: where the shared models and clips are.

Integration tests need ../shared (beside the checkout) or DFM_ASSETS / DFM_SAMPLE_VIDEO. On a user's
machine without them they skip with the reason; under CI (CI=true) a missing asset is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _require(path: Path, what: str) -> Path:
    if path.exists():
        return path
    msg = f"{what} not found at {path} (set DFM_ASSETS / DFM_SAMPLE_VIDEO or put ../shared beside the checkout)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    """Folder of model assets (the asset store root): DFM_ASSETS, ../shared/models, or the user cache that
    `dfm models download` filled (same layout)."""
    if "DFM_ASSETS" in os.environ:
        return _require(Path(os.environ["DFM_ASSETS"]), "model assets")
    from dfm.assets import default_cache_dir

    cached = default_cache_dir() / "models"
    if not (SHARED / "models").exists() and (cached / "ict_facekit" / "ict_face_model.npz").exists():
        return cached
    return _require(SHARED / "models", "model assets")


@pytest.fixture(scope="session")
def videos_dir() -> Path:
    """Folder of the shared real face clips."""
    default = SHARED / "data" / "videos"
    if "DFM_SAMPLE_VIDEO" in os.environ:
        default = Path(os.environ["DFM_SAMPLE_VIDEO"]).parent
    return _require(default, "shared video clips")


@pytest.fixture(scope="session")
def sample_video() -> Path:
    """The expressive Pexels clip (crying -> surprise -> laughing), 472 frames, 640x360, 23.976 fps:
    DFM_SAMPLE_VIDEO, ../shared/data/videos, or the copy `dfm models download` put in the user cache."""
    name = "pexels_wolfganglanger_woman_emotions_01.mp4"
    if "DFM_SAMPLE_VIDEO" in os.environ:
        return _require(Path(os.environ["DFM_SAMPLE_VIDEO"]), "sample video")
    from dfm.assets import default_cache_dir

    cached = default_cache_dir() / "models" / "videos" / name
    if not (SHARED / "data" / "videos" / name).exists() and cached.exists():
        return cached
    return _require(SHARED / "data" / "videos" / name, "sample video")


@pytest.fixture(scope="session")
def mesh(assets_dir):
    """The warp renderer's mesh of the generic ICT face (built once per run)."""
    from dfm.face.model import FaceModel
    from dfm.render.mesh import RenderMesh

    return RenderMesh.build(FaceModel.load(assets_dir / "ict_facekit" / "ict_face_model.npz"))


@pytest.fixture(scope="session")
def dfm_env(assets_dir, tmp_path_factory):
    """Point the asset store, cache, workspace and config (signing keys) at the shared models and a per-run
    temp folder."""
    root = tmp_path_factory.mktemp("dfm")
    saved = {k: os.environ.get(k) for k in ("DFM_ASSETS", "DFM_CACHE", "DFM_WORKSPACE", "DFM_CONFIG")}
    os.environ.update(DFM_ASSETS=str(assets_dir), DFM_CACHE=str(root / "cache"), DFM_WORKSPACE=str(root / "workspace"),
                      DFM_CONFIG=str(root / "config"))
    yield root
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def session(dfm_env):
    """One Session for the whole run, so each clip is analysed once and its cached track reused."""
    from dfm.pipelines.session import Session

    return Session(progress=False)


@pytest.fixture(scope="session")
def pexels_track(session, sample_video):
    return session.analyze(sample_video)
