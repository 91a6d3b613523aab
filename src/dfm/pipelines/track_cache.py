"""Cached FaceTracks that are checked on load: a damaged entry is rebuilt, never a traceback.

`save_track` writes the track (`FaceTrack.save`: .npz + .json header) and records the SHA-256 and size
of the .npz in the header; `load_track` returns the track only when the header parses, the checksum
matches and the arrays have the shapes the header promises. Anything else (a truncated or garbled file,
a broken header, a missing half) is reported in one line (a `CacheWarning`) and answered with None, so
the caller analyses again and overwrites the entry atomically.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from dfm.errors import CacheWarning
from dfm.face.expressions import N_EXPRESSIONS
from dfm.face.track import FaceTrack
from dfm.face.tracking import N_LANDMARKS
from dfm.io.files import atomic_write_text, sha256_file


def save_track(track: FaceTrack, path: str | os.PathLike) -> Path:
    """`track.save(path)`, then the data file's checksum into its header."""
    path = Path(path)
    track.save(path)
    header_path = path.with_suffix(".json")
    header = json.loads(header_path.read_text())
    header["npz_sha256"] = sha256_file(path)
    header["npz_bytes"] = path.stat().st_size
    atomic_write_text(header_path, json.dumps(header, indent=2, default=str))
    return path


def load_track(path: str | os.PathLike) -> FaceTrack | None:
    """The cached track at `path`, or None when there is none or it is damaged (with a warning)."""
    path = Path(path)
    header_path = path.with_suffix(".json")
    if not path.exists() and not header_path.exists():
        return None
    try:
        return _checked_load(path, header_path)
    except Exception as e:  # any damage at all means: rebuild (the message says what was wrong)
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        warnings.warn(f"cached analysis {path.name} is damaged ({reason}); analysing the video again",
                      CacheWarning, stacklevel=2)
        return None


def _checked_load(path: Path, header_path: Path) -> FaceTrack:
    if not path.exists() or not header_path.exists():
        raise ValueError(f"{(header_path if path.exists() else path).name} is missing")
    try:
        header = json.loads(header_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"unreadable header: {e}") from None
    if not isinstance(header, dict) or not isinstance(header.get("meta"), dict):
        raise ValueError("the header is not a track header")
    size = header.get("npz_bytes")
    if size is not None and path.stat().st_size != size:
        raise ValueError(f"the data file has {path.stat().st_size} bytes, the header says {size}")
    digest = header.get("npz_sha256")
    if digest is None:
        raise ValueError("the header has no checksum")
    if sha256_file(path) != digest:
        raise ValueError("checksum mismatch")
    track = FaceTrack.load(path)
    _check_shapes(track, int(header.get("n_frames", -1)))
    return track


def _check_shapes(track: FaceTrack, n: int) -> None:
    expected = {"timestamps": (n,), "valid": (n,), "landmarks": (n, N_LANDMARKS, 3), "blendshapes": (n, N_EXPRESSIONS),
                "rotation": (n, 3, 3), "translation": (n, 3), "scale": (n,), "expression": (n, N_EXPRESSIONS),
                "residual": (n,)}
    for name, shape in expected.items():
        got = np.shape(getattr(track, name))
        if got != shape:
            raise ValueError(f"{name} has shape {got}, expected {shape}")
    if not np.isfinite(track.timestamps).all():
        raise ValueError("non-finite timestamps")
