"""ICT-FaceKit light model: loader for the packed .npz and a converter from the upstream OBJ files.

vertices = neutral + identity @ identity_deltas + expression @ expression_deltas   (cm, see track.py for axes)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from dfm.errors import AssetError
from dfm.face.expressions import EXPRESSION_NAMES
from dfm.io.files import atomic_output


@dataclass(frozen=True, eq=False)
class FaceModel:
    """The linear 3-D face model. Arrays are read-only views of the packed file."""

    neutral: np.ndarray  # (V, 3) float32
    identity_deltas: np.ndarray  # (100, V, 3)
    expression_deltas: np.ndarray  # (53, V, 3)
    faces: np.ndarray  # (F, 4) int32, -1 in column 3 for triangles
    region_names: tuple[str, ...]
    region_vertex_ranges: np.ndarray  # (R, 2) inclusive
    region_face_ranges: np.ndarray  # (R, 2) inclusive
    landmarks68: np.ndarray  # (68,) vertex indices, Multi-PIE order

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FaceModel":
        """The packed model file at `path`, or the folder `unpacked_face_model` made of it (memory-mapped)."""
        path = Path(path)
        arrays = _unpacked_arrays(path) if path.is_dir() else _packed(path)
        names = tuple(str(s) for s in arrays["expression_names"])
        if names != EXPRESSION_NAMES:
            raise AssetError(f"{path}: expression names differ from the 53 ICT shapes DFM expects")
        return cls(
            neutral=arrays["neutral"],
            identity_deltas=arrays["identity_deltas"],
            expression_deltas=arrays["expression_deltas"],
            faces=arrays["faces"],
            region_names=tuple(str(s) for s in arrays["region_names"]),
            region_vertex_ranges=arrays["region_vertex_ranges"],
            region_face_ranges=arrays["region_face_ranges"],
            landmarks68=arrays["landmarks68"],
        )

    @property
    def n_vertices(self) -> int:
        return int(self.neutral.shape[0])

    @property
    def n_identity(self) -> int:
        return int(self.identity_deltas.shape[0])

    def vertices(self, identity: np.ndarray | None = None, expression: np.ndarray | None = None,
                 index: np.ndarray | None = None) -> np.ndarray:
        """Mesh vertices (V, 3) for the given weights; `index` restricts to a vertex subset (cheaper)."""
        sl = slice(None) if index is None else index
        v = self.neutral[sl].astype(np.float32, copy=True)
        if identity is not None:
            v += np.tensordot(np.asarray(identity, np.float32), self.identity_deltas[:, sl], 1)
        if expression is not None:
            v += np.tensordot(np.asarray(expression, np.float32), self.expression_deltas[:, sl], 1)
        return v

    def region_vertices(self, name: str) -> np.ndarray:
        a, b = self.region_vertex_ranges[self.region_names.index(name)]
        return np.arange(a, b + 1)

    def region_faces(self, name: str) -> np.ndarray:
        a, b = self.region_face_ranges[self.region_names.index(name)]
        return np.arange(a, b + 1)

    @cached_property
    def triangles(self) -> np.ndarray:
        """All polygons split into triangles (T, 3); quads become two triangles (0,1,2), (0,2,3)."""
        return triangulate(self.faces)

    def triangles_of(self, face_index: np.ndarray) -> np.ndarray:
        return triangulate(self.faces[face_index])


MODEL_ARRAYS = ("expression_names", "neutral", "identity_deltas", "expression_deltas", "faces", "region_names",
                "region_vertex_ranges", "region_face_ranges", "landmarks68")
UNPACKED_VERSION = 1


def _packed(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in MODEL_ARRAYS}
    except (OSError, ValueError, KeyError) as e:
        raise AssetError(f"cannot read the ICT face model at {path}: {e}") from None


def _unpacked_arrays(folder: Path) -> dict[str, np.ndarray]:
    try:
        return {name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in MODEL_ARRAYS}
    except (OSError, ValueError) as e:
        raise AssetError(f"cannot read the unpacked ICT face model in {folder}: {e}") from None


def unpacked_face_model(path: str | os.PathLike, cache_dir: str | os.PathLike) -> Path:
    """A folder in `cache_dir` holding the packed model at `path` unpacked, one .npy per array (made on
    first use; keyed by the file's path, size and modification time), for `FaceModel.load`: the packed
    file is deflate-compressed, and inflating its ~50 MB costs ~0.35 s in every process that loads it
    (each parallel worker too), where mapping the unpacked arrays costs milliseconds. `path` itself when
    the folder cannot be made (the cache only saves time)."""
    import hashlib
    import warnings

    from dfm.errors import CacheWarning
    from dfm.io.files import atomic_directory

    path, cache_dir = Path(path), Path(cache_dir)
    try:
        st = path.stat()
    except OSError:
        return path  # FaceModel.load says what is wrong with it
    key = hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{UNPACKED_VERSION}".encode()).hexdigest()[:16]
    folder = cache_dir / f"ict_face_model_{key}"
    if folder.is_dir():
        try:
            _unpacked_arrays(folder)
            return folder
        except AssetError as e:  # damaged (a file truncated or deleted): unpack it again
            warnings.warn(f"{e}; unpacking it again", CacheWarning, stacklevel=2)
    arrays = _packed(path)
    try:
        with atomic_directory(folder) as tmp:
            for name, a in arrays.items():
                np.save(tmp / f"{name}.npy", a, allow_pickle=False)
    except OSError as e:
        warnings.warn(f"cannot keep the unpacked face model in {cache_dir} ({e}); reading the packed file each time",
                      CacheWarning, stacklevel=2)
        return path
    return folder


def triangulate(faces: np.ndarray) -> np.ndarray:
    quads = faces[faces[:, 3] >= 0]
    tris = faces[faces[:, 3] < 0, :3]
    return np.concatenate([tris, quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]).astype(np.int32)


# --------------------------------------------------------------------------------------------- OBJ

def read_obj(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Parse an OBJ: vertices (V,3), uvs (U,2), faces (F,4; -1 pads triangles), face uv indices,
    material names and per-face material index."""
    verts, uvs, faces, face_uvs, face_mat = [], [], [], [], []
    materials: list[str] = []
    current = -1
    with open(path, "r") as f:
        for line in f:
            if line.startswith("v "):
                verts.append(line.split()[1:4])
            elif line.startswith("vt "):
                uvs.append(line.split()[1:3])
            elif line.startswith("f "):
                corners = line.split()[1:]
                if len(corners) not in (3, 4):
                    raise AssetError(f"{path}: face with {len(corners)} corners (only triangles and quads)")
                vi = [int(c.split("/")[0]) - 1 for c in corners]
                ti = [int(c.split("/")[1]) - 1 if "/" in c and c.split("/")[1] else -1 for c in corners]
                faces.append(vi + [-1] * (4 - len(vi)))
                face_uvs.append(ti + [-1] * (4 - len(ti)))
                face_mat.append(current)
            elif line.startswith("usemtl "):
                name = line.split(maxsplit=1)[1].strip()
                if name not in materials:
                    materials.append(name)
                current = materials.index(name)
    return (np.asarray(verts, np.float32), np.asarray(uvs, np.float32), np.asarray(faces, np.int32),
            np.asarray(face_uvs, np.int32), materials, np.asarray(face_mat, np.int32))


def read_obj_vertices(path: str | os.PathLike) -> np.ndarray:
    """Only the `v` records of an OBJ (fast path for the 150+ blendshape files)."""
    with open(path, "r") as f:
        rows = [line.split()[1:4] for line in f if line.startswith("v ")]
    return np.asarray(rows, np.float32)


def convert_ict_objs(src_dir: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Pack an upstream ICT-FaceKit `FaceXModel/` folder into DFM's .npz (the schema of the asset README).

    Needs generic_neutral_mesh.obj, vertex_indices.json, the 53 expression OBJs and identity000..099.obj.
    """
    src = Path(src_dir)
    index = json.loads((src / "vertex_indices.json").read_text())
    neutral, uvs, faces, face_uvs, materials, face_mat = read_obj(src / "generic_neutral_mesh.obj")

    def deltas(names: list[str]) -> np.ndarray:
        out = np.empty((len(names),) + neutral.shape, np.float32)
        for i, name in enumerate(names):
            p = src / f"{name}.obj"
            if not p.exists():
                raise AssetError(f"ICT-FaceKit folder {src} lacks {p.name}")
            v = read_obj_vertices(p)
            if v.shape != neutral.shape:
                raise AssetError(f"{p}: {v.shape[0]} vertices, the neutral mesh has {neutral.shape[0]}")
            out[i] = v - neutral
        return out

    expression_names = list(index["expressions"])
    identity_names = [f"identity{i:03d}" for i in range(100)]
    arrays = {
        "neutral": neutral,
        "expression_names": np.asarray(expression_names),
        "expression_deltas": deltas(expression_names),
        "identity_names": np.asarray(identity_names),
        "identity_deltas": deltas(identity_names),
        "faces": faces,
        "uvs": uvs,
        "face_uvs": face_uvs,
        "face_material": face_mat,
        "material_names": np.asarray(materials),
        "landmarks68": np.asarray(index["idx_to_landmark_verts"], np.int32),
        "fitting_vertex_indices": np.asarray(index["idx_to_fitting_verts"], np.int32),
        "rigid_vertex_indices": np.asarray(index["idx_to_rigid_verts"], np.int32),
        "region_names": np.asarray([r[0] for r in ICT_REGIONS]),
        "region_vertex_ranges": np.asarray([r[1] for r in ICT_REGIONS], np.int32),
        "region_face_ranges": np.asarray([r[2] for r in ICT_REGIONS], np.int32),
    }
    out_path = Path(out_path)
    with atomic_output(out_path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return out_path


# Geometry regions of the light model: (name, inclusive vertex range, inclusive polygon range),
# from the upstream README's table (the OBJ files do not carry them).
ICT_REGIONS: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("Face", (0, 9408), (0, 9229)),
    ("Head and Neck", (9409, 11247), (9230, 11143)),
    ("Mouth socket", (11248, 13293), (11144, 13225)),
    ("Eye socket left", (13294, 13677), (13226, 13629)),
    ("Eye socket right", (13678, 14061), (13630, 14033)),
    ("Gums and tongue", (14062, 17038), (14034, 17005)),
    ("Teeth", (17039, 21450), (17006, 21495)),
    ("Eyeball left", (21451, 23020), (21496, 23093)),
    ("Eyeball right", (23021, 24590), (23094, 24691)),
    ("Lacrimal fluid left", (24591, 24794), (24692, 24854)),
    ("Lacrimal fluid right", (24795, 24998), (24855, 25017)),
    ("Eye blend left", (24999, 25022), (25018, 25032)),
    ("Eye blend right", (25023, 25046), (25033, 25047)),
    ("Eye occlusion left", (25047, 25198), (25048, 25175)),
    ("Eye occlusion right", (25199, 25350), (25176, 25303)),
    ("Eyelashes left", (25351, 26034), (25304, 25843)),
    ("Eyelashes right", (26035, 26718), (25844, 26383)),
)
