"""ICT-FaceKit loader and OBJ converter."""

import json

import numpy as np
import pytest

from dfm.errors import AssetError
from dfm.face.expressions import EXPRESSION_NAMES, mediapipe_scores_to_ict
from dfm.face.model import FaceModel, convert_ict_objs, read_obj, read_obj_vertices, unpacked_face_model


@pytest.fixture(scope="module")
def model(assets_dir):
    return FaceModel.load(assets_dir / "ict_facekit" / "ict_face_model.npz")


def test_loader_shapes(model):
    assert model.neutral.shape == (26719, 3)
    assert model.identity_deltas.shape == (100, 26719, 3)
    assert model.expression_deltas.shape == (53, 26719, 3)
    assert model.region_names[0] == "Face"
    # quads split in two, triangles kept: 25,836 quads + 548 triangles
    assert model.triangles.shape == (2 * 25836 + 548, 3)


def test_the_unpacked_copy_loads_the_same_model_and_is_made_once(model, assets_dir, tmp_path):
    packed = assets_dir / "ict_facekit" / "ict_face_model.npz"
    folder = unpacked_face_model(packed, tmp_path)
    assert folder.is_dir() and folder.parent == tmp_path
    unpacked = FaceModel.load(folder)
    for name in ("neutral", "identity_deltas", "expression_deltas", "faces", "region_vertex_ranges",
                 "region_face_ranges", "landmarks68"):
        np.testing.assert_array_equal(getattr(unpacked, name), getattr(model, name), err_msg=name)
    assert unpacked.region_names == model.region_names
    stamp = (folder / "neutral.npy").stat().st_mtime_ns
    assert unpacked_face_model(packed, tmp_path) == folder and (folder / "neutral.npy").stat().st_mtime_ns == stamp


def test_a_damaged_unpacked_copy_is_made_again_and_an_unwritable_cache_is_skipped(assets_dir, tmp_path):
    from dfm.errors import CacheWarning

    packed = assets_dir / "ict_facekit" / "ict_face_model.npz"
    folder = unpacked_face_model(packed, tmp_path)
    (folder / "identity_deltas.npy").write_bytes(b"garbage")
    with pytest.warns(CacheWarning, match="unpacking it again"):
        again = unpacked_face_model(packed, tmp_path)
    assert FaceModel.load(again).identity_deltas.shape[0] == 100
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.warns(CacheWarning, match="cannot keep"):
        assert unpacked_face_model(packed, blocker / "cache") == packed


def test_vertices_is_the_linear_model(model):
    rng = np.random.default_rng(0)
    idw, exw = rng.normal(size=100), rng.uniform(size=53)
    idx = np.array([0, 100, 5000])
    expect = model.neutral[idx] + np.tensordot(idw, model.identity_deltas[:, idx], 1) + np.tensordot(exw, model.expression_deltas[:, idx], 1)
    np.testing.assert_allclose(model.vertices(idw, exw, index=idx), expect, atol=1e-4)
    np.testing.assert_allclose(model.vertices(idw, exw)[idx], expect, atol=1e-4)


def test_obj_reader_reproduces_the_packed_model(model, assets_dir):
    raw = assets_dir / "ict_facekit" / "raw"
    verts, uvs, faces, face_uvs, materials, face_mat = read_obj(raw / "generic_neutral_mesh.obj")
    np.testing.assert_array_equal(verts, model.neutral)
    np.testing.assert_array_equal(faces, model.faces)
    assert len(materials) == 12 and uvs.shape == (28911, 2)
    jaw = read_obj_vertices(raw / "jawOpen.obj") - verts
    np.testing.assert_allclose(jaw, model.expression_deltas[EXPRESSION_NAMES.index("jawOpen")], atol=1e-5)
    ident = read_obj_vertices(raw / "identity000.obj") - verts
    np.testing.assert_allclose(ident, model.identity_deltas[0], atol=1e-5)


def _write_obj(path, verts, faces):
    lines = [f"v {x} {y} {z}" for x, y, z in verts] + ["vt 0 0"]
    lines += ["f " + " ".join(f"{i + 1}/1" for i in f) for f in faces]
    path.write_text("\n".join(lines) + "\n")


def test_converter_packs_an_upstream_folder(tmp_path):
    # A miniature FaceXModel folder: 4 vertices, one quad; every shape moves vertex k by a known delta.
    src = tmp_path / "FaceXModel"
    src.mkdir()
    base = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
    _write_obj(src / "generic_neutral_mesh.obj", base, [[0, 1, 2, 3]])
    for j, name in enumerate(EXPRESSION_NAMES):
        v = base.copy(); v[j % 4, 2] += (j + 1) * 0.01
        _write_obj(src / f"{name}.obj", v, [[0, 1, 2, 3]])
    for i in range(100):
        v = base.copy(); v[i % 4, 0] += (i + 1) * 0.001
        _write_obj(src / f"identity{i:03d}.obj", v, [[0, 1, 2, 3]])
    (src / "vertex_indices.json").write_text(json.dumps({
        "expressions": list(EXPRESSION_NAMES), "idx_to_landmark_verts": [0] * 68,
        "idx_to_fitting_verts": [0, 1], "idx_to_rigid_verts": [2]}))
    out = convert_ict_objs(src, tmp_path / "out" / "ict_face_model.npz")
    with np.load(out, allow_pickle=False) as z:
        assert [str(s) for s in z["expression_names"]] == list(EXPRESSION_NAMES)
        assert z["expression_deltas"].shape == (53, 4, 3)
        np.testing.assert_allclose(z["expression_deltas"][5, 1, 2], 0.06, atol=1e-6)
        np.testing.assert_allclose(z["identity_deltas"][99, 3, 0], 0.1, atol=1e-6)
        assert z["faces"].tolist() == [[0, 1, 2, 3]]


def test_converter_names_the_missing_file(tmp_path):
    src = tmp_path / "FaceXModel"
    src.mkdir()
    _write_obj(src / "generic_neutral_mesh.obj", np.zeros((3, 3)), [[0, 1, 2]])
    (src / "vertex_indices.json").write_text(json.dumps({"expressions": ["browDown_L"], "idx_to_landmark_verts": [],
                                                       "idx_to_fitting_verts": [], "idx_to_rigid_verts": []}))
    with pytest.raises(AssetError, match="browDown_L.obj"):
        convert_ict_objs(src, tmp_path / "x.npz")


def test_mediapipe_names_map_to_ict_columns():
    names = ["_neutral", "mouthSmileLeft", "browInnerUp", "jawLeft", "cheekPuff"]
    out = mediapipe_scores_to_ict(names, np.array([0.9, 0.5, 0.3, 0.2, 0.1]))
    i = EXPRESSION_NAMES.index
    assert out[i("mouthSmile_L")] == pytest.approx(0.5)
    assert out[i("browInnerUp_L")] == out[i("browInnerUp_R")] == pytest.approx(0.3)
    assert out[i("jawLeft")] == pytest.approx(0.2)
    assert out[i("cheekPuff_R")] == pytest.approx(0.1)
    assert out.sum() == pytest.approx(0.5 + 0.6 + 0.2 + 0.2)
