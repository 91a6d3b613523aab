"""A small Keras functional model (HDF5 `model_config` + weights) evaluated in NumPy and OpenCV.

Enough of Keras for convolutional classifiers such as the FER mini-Xception: Conv2D, SeparableConv2D,
BatchNormalization, Activation (relu, softmax, linear), MaxPooling2D, Add, GlobalAveragePooling2D. The
graph is rebuilt from the file's own config, layer by layer; nothing is hand-copied.

Keras conventions handled: channels-last input, HWIO conv kernels, SeparableConv2D = depthwise (H, W, C, 1)
with the layer's strides followed by a 1x1 pointwise, the batch norm epsilon from the config, and
TensorFlow's 'same' padding, which is asymmetric (the odd pixel goes after: it matters for the stride-2
pools and convolutions on even sizes). Each batch norm that is the only reader of a convolution is folded
into that convolution's weights.

Why NumPy rather than torch: the network is tiny (~60k parameters) and importing torch costs seconds of CPU
in every analysis worker; on one core this runs about as fast as the torch port did. Internally tensors are
planar, (C, N, H, W) float32, so that
- a full convolution is matrix products on the padded input flattened to (C, N*Hp*Wp): tap (i, j) is the
  same matrix shifted by i*Wp + j columns, a view (the outputs that wrap across a row or an image are
  garbage and are cut away), see `_full_conv`;
- a depthwise 3x3 is one `cv2.filter2D` per channel over all the batch's padded images stacked into one
  tall image (the padding keeps the images apart for the outputs that are kept), or, for small images,
  nine multiply-adds of shifted views;
- a pointwise 1x1 is one (F, C) @ (C, N*H*W) product;
- a relu that only a convolution reads is applied while that convolution pads its input (one pass less).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from dfm.errors import AssetError


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'same' padding (before, after) along one axis: the odd pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _padding(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], mode: str) -> tuple[tuple[int, int], tuple[int, int]]:
    if mode == "valid":
        return (0, 0), (0, 0)
    return same_padding(x.shape[2], kernel[0], stride[0]), same_padding(x.shape[3], kernel[1], stride[1])


def _pad(x: np.ndarray, pad_h: tuple[int, int], pad_w: tuple[int, int], value: float, relu: bool = False) -> np.ndarray:
    """(C, N, H, W) -> a new contiguous (C, N, H + pads, W + pads) with the border filled with `value`
    (x itself when it is contiguous and needs neither padding nor relu); relu: max(x, 0) on the way."""
    c, n, h, w = x.shape
    (top, bottom), (left, right) = pad_h, pad_w
    if top == bottom == left == right == 0:
        return np.maximum(x, np.float32(0.0)) if relu else np.ascontiguousarray(x)
    out = np.empty((c, n, h + top + bottom, w + left + right), dtype=np.float32)
    inside = out[:, :, top : top + h, left : left + w]
    if relu:
        np.maximum(x, np.float32(0.0), out=inside)
    else:
        inside[...] = x
    # fill only the border strips (filling the whole buffer first would write it twice)
    out[:, :, :top] = value
    out[:, :, top + h :] = value
    out[:, :, top : top + h, :left] = value
    out[:, :, top : top + h, left + w :] = value
    return out


def _strided(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Of stride-1 'valid' outputs (C, N, Hp, Wp) whose last kernel-1 rows/columns are garbage, the strided ones."""
    rows = x.shape[2] - kernel[0] + 1
    cols = x.shape[3] - kernel[1] + 1
    return x[:, :, :rows : stride[0], :cols : stride[1]]


def _pointwise(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """1x1 convolution: x (C, N, H, W), weight (F, C), bias (F,) -> (F, N, H, W)."""
    c, n, h, w = x.shape
    out = weight @ np.ascontiguousarray(x).reshape(c, n * h * w)
    if bias is not None:
        out += bias[:, None]
    return out.reshape(-1, n, h, w)


def _full_conv(xp: np.ndarray, weight: np.ndarray, block: int = 8192) -> np.ndarray:
    """Stride-1 correlation of padded xp (C, N, Hp, Wp) with weight (F, KH, KW, C) -> (F, N, Hp, Wp), the
    valid outputs in the top-left (Hp-KH+1, Wp-KW+1) of each image, the rest garbage.

    In the flattened input, tap (i, j) reads the same matrix shifted by i*Wp + j columns. With few input
    channels, columns go `block` at a time: the block's taps are stacked into one (KH*KW*C, block) matrix
    that stays in cache, and one matrix product gives the block's outputs (a whole-batch im2col would be
    ~70 MB here); with many, each tap is one product on the shifted view.
    """
    c, n, hp, wp = xp.shape
    f, kh, kw, _ = weight.shape
    flat = xp.reshape(c, n * hp * wp)
    length = n * hp * wp - ((kh - 1) * wp + (kw - 1))  # output columns whose every tap lies inside xp
    offsets = [i * wp + j for i in range(kh) for j in range(kw)]
    out = np.zeros((f, n * hp * wp), dtype=np.float32)
    if c >= 32:
        # enough input channels for one product per tap to run at full speed; no stacking copy
        acc, tap = out[:, :length], np.empty((f, length), dtype=np.float32)
        for t, offset in enumerate(offsets):
            np.matmul(weight[:, t // kw, t % kw], flat[:, offset : offset + length], out=tap)
            acc += tap
        return out.reshape(f, n, hp, wp)
    matrix = weight.reshape(f, kh * kw * c)
    stacked = np.empty((kh * kw * c, block), dtype=np.float32)
    for start in range(0, length, block):
        stop = min(start + block, length)
        width = stop - start
        for t, offset in enumerate(offsets):
            stacked[t * c : (t + 1) * c, :width] = flat[:, start + offset : stop + offset]
        np.matmul(matrix, stacked[:, :width], out=out[:, start:stop])
    return out.reshape(f, n, hp, wp)


def _depthwise(xp: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Stride-1 per-channel correlation of padded xp (C, N, Hp, Wp) with kernel (C, KH, KW) -> (C, N, Hp, Wp),
    valid outputs in the top-left of each image (see _full_conv)."""
    c, n, hp, wp = xp.shape
    _, kh, kw = kernel.shape
    if n * hp * wp < 1024:
        # small images: OpenCV's ~5 us per call outweighs the work; multiply-add the shifted views instead
        flat = xp.reshape(c, n * hp * wp)
        length = n * hp * wp - ((kh - 1) * wp + (kw - 1))
        out = np.zeros((c, n * hp * wp), dtype=np.float32)
        acc, tap = out[:, :length], np.empty((c, length), dtype=np.float32)
        for i in range(kh):
            for j in range(kw):
                np.multiply(flat[:, i * wp + j : i * wp + j + length], kernel[:, i, j : j + 1], out=tap)
                acc += tap
        return out.reshape(c, n, hp, wp)
    out = np.empty_like(xp)
    for ch in range(c):
        # all the batch's images stacked into one tall image; anchor (0, 0): output (y, x) reads rows
        # y..y+KH-1 and columns x..x+KW-1 (OpenCV correlates, as TensorFlow does)
        cv2.filter2D(xp[ch].reshape(n * hp, wp), cv2.CV_32F, kernel[ch], dst=out[ch].reshape(n * hp, wp),
                     anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    return out


class _Node:
    """One layer of the Keras graph; `inputs` names the layers it reads. Subclasses read their Keras
    config and weights in __init__ and evaluate planar (C, N, H, W) arrays (or (N, C) ones) in __call__."""

    def __init__(self, name: str, inputs: list[str], cfg: dict | None = None, weights: dict[str, np.ndarray] | None = None) -> None:
        self.name = name
        self.inputs = inputs

    def __call__(self, *args: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _Conv(_Node):
    """Conv2D or SeparableConv2D (depth multiplier 1), no dilation, optional bias, linear activation."""

    def __init__(self, name: str, inputs: list[str], cfg: dict, weights: dict[str, np.ndarray]) -> None:
        super().__init__(name, inputs)
        if tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
            raise AssetError(f"layer {name}: dilated convolutions are not supported")
        if cfg.get("activation", "linear") not in ("linear", None):
            raise AssetError(f"layer {name}: fused activation {cfg['activation']!r} is not supported")
        self.kernel = tuple(cfg["kernel_size"])
        self.stride = tuple(cfg["strides"])
        self.padding = cfg["padding"]
        self.depthwise: np.ndarray | None = None
        if "depthwise_kernel" in weights:
            if cfg.get("depth_multiplier", 1) != 1:
                raise AssetError(f"layer {name}: depth_multiplier != 1 is not supported")
            self.depthwise = weights["depthwise_kernel"][:, :, :, 0].transpose(2, 0, 1).copy()  # (C, KH, KW)
            self.weight = weights["pointwise_kernel"][0, 0].T.copy()  # (F, C)
        else:
            self.weight = weights["kernel"].transpose(3, 0, 1, 2).copy()  # HWIO -> (F, KH, KW, C)
        bias = weights.get("bias")
        self.bias = None if bias is None else bias.astype(np.float32)
        self.relu_input = False  # set by the graph when this layer reads a relu that nothing else reads

    def fold_batch_norm(self, scale: np.ndarray, shift: np.ndarray) -> None:
        """Absorb a following inference batch norm (y = x * scale + shift, per output channel)."""
        self.weight = (self.weight * scale.reshape((-1,) + (1,) * (self.weight.ndim - 1))).astype(np.float32)
        self.bias = (shift if self.bias is None else self.bias * scale + shift).astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        pad_h, pad_w = _padding(x, self.kernel, self.stride, self.padding)
        xp = _pad(x, pad_h, pad_w, 0.0, relu=self.relu_input)
        if self.depthwise is not None:
            spatial = _depthwise(xp, self.depthwise)
            if self.stride == (1, 1):
                # the pointwise step on the whole padded grid (contiguous, no copy), then cut the valid part
                return _strided(_pointwise(spatial, self.weight, self.bias), self.kernel, self.stride)
            return _pointwise(_strided(spatial, self.kernel, self.stride), self.weight, self.bias)
        if self.kernel == (1, 1):
            return _pointwise(_strided(xp, self.kernel, self.stride), self.weight[:, 0, 0], self.bias)
        out = _full_conv(xp, self.weight)
        if self.bias is not None:
            out += self.bias[:, None, None, None]
        return _strided(out, self.kernel, self.stride)


class _BatchNorm(_Node):
    def __init__(self, name: str, inputs: list[str], cfg: dict, weights: dict[str, np.ndarray]) -> None:
        super().__init__(name, inputs)
        if cfg.get("axis", -1) not in (-1, 3, [3], [-1]):
            raise AssetError(f"layer {name}: batch norm over axis {cfg['axis']} is not supported")
        eps = float(cfg["epsilon"])
        mean = weights["moving_mean"].astype(np.float64)
        gamma = weights.get("gamma", np.ones_like(mean))
        beta = weights.get("beta", np.zeros_like(mean))
        # inference batch norm as one scale and shift per channel
        scale = gamma / np.sqrt(weights["moving_variance"].astype(np.float64) + eps)
        self.scale = scale.astype(np.float32)
        self.shift = (beta - mean * scale).astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        shape = (-1,) + (1,) * (x.ndim - 1) if x.ndim == 4 else (1, -1)
        return x * self.scale.reshape(shape) + self.shift.reshape(shape)


class _Activation(_Node):
    def __init__(self, name: str, inputs: list[str], cfg: dict, weights: dict[str, np.ndarray]) -> None:
        super().__init__(name, inputs)
        self.kind = cfg["activation"]
        if self.kind not in ("relu", "softmax", "linear"):
            raise AssetError(f"layer {name}: activation {self.kind!r} is not supported")
        self.in_place = False  # set by the graph when nothing else reads this layer's input

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "relu":
            return np.maximum(x, np.float32(0.0), out=x if self.in_place else None)
        if self.kind == "softmax":
            axis = 0 if x.ndim == 4 else -1  # the channel axis (planar 4-D, or (N, C))
            e = np.exp(x - x.max(axis=axis, keepdims=True))
            return e / e.sum(axis=axis, keepdims=True)
        return x


class _MaxPool(_Node):
    def __init__(self, name: str, inputs: list[str], cfg: dict, weights: dict[str, np.ndarray]) -> None:
        super().__init__(name, inputs)
        self.pool = tuple(cfg["pool_size"])
        self.stride = tuple(cfg["strides"] or cfg["pool_size"])
        self.padding = cfg["padding"]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        pad_h, pad_w = _padding(x, self.pool, self.stride, self.padding)
        xp = _pad(x, pad_h, pad_w, -np.inf)  # padded cells never win the max
        (kh, kw), (sh, sw) = self.pool, self.stride
        rows = (xp.shape[2] - kh) // sh + 1
        cols = (xp.shape[3] - kw) // sw + 1
        # separable max over strided views: the window's rows first (whole rows, contiguous), then its columns
        tall = xp[:, :, 0 : sh * (rows - 1) + 1 : sh].copy()
        for i in range(1, kh):
            np.maximum(tall, xp[:, :, i : i + sh * (rows - 1) + 1 : sh], out=tall)
        out = tall[:, :, :, 0 : sw * (cols - 1) + 1 : sw].copy()
        for j in range(1, kw):
            np.maximum(out, tall[:, :, :, j : j + sw * (cols - 1) + 1 : sw], out=out)
        return out


class _Add(_Node):
    def __call__(self, *xs: np.ndarray) -> np.ndarray:
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out += x
        return out


class _GlobalAveragePool(_Node):
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x.mean(axis=(2, 3), dtype=np.float32).T  # (C, N, H, W) -> (N, C)


class _Alias(_Node):
    """A layer folded into a neighbour (a batch norm into the convolution it reads, a relu into the one
    convolution that reads it): passes the value through."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x


_LAYER_TYPES = {
    "Conv2D": _Conv,
    "SeparableConv2D": _Conv,
    "BatchNormalization": _BatchNorm,
    "Activation": _Activation,
    "MaxPooling2D": _MaxPool,
    "Add": _Add,
    "GlobalAveragePooling2D": _GlobalAveragePool,
}


class KerasGraphNet:
    """A Keras functional model of the layer types above: __call__(x (N, H, W, C) float32) -> its output
    ((N, K) for a classifier; a 4-D output comes back channels last)."""

    def __init__(self, model_config: dict, weights: dict[str, dict[str, np.ndarray]]) -> None:
        config = model_config["config"]
        self.input_name = config["input_layers"][0][0]
        self.output_name = config["output_layers"][0][0]
        self.nodes: list[_Node] = []
        for layer in config["layers"]:
            kind, name = layer["class_name"], layer["name"]
            if kind == "InputLayer":
                continue
            if kind not in _LAYER_TYPES:
                raise AssetError(f"layer {name}: Keras layer type {kind} is not supported")
            if len(layer["inbound_nodes"]) != 1:
                raise AssetError(f"layer {name} is shared between several calls; not supported")
            inputs = [inbound[0] for inbound in layer["inbound_nodes"][0]]
            self.nodes.append(_LAYER_TYPES[kind](name, inputs, layer["config"], weights.get(name, {})))
        self._fold_batch_norms()

    def _fold_batch_norms(self) -> None:
        """Fold each batch norm that is the only reader of a convolution into it, and each relu that only a
        convolution reads into that convolution's input padding (same output, fewer passes over memory);
        let the other activations overwrite inputs that nothing else reads."""
        readers: dict[str, int] = {}
        for node in self.nodes:
            for name in node.inputs:
                readers[name] = readers.get(name, 0) + 1
        by_name = {node.name: node for node in self.nodes}
        for index, node in enumerate(self.nodes):
            source = by_name.get(node.inputs[0])
            if isinstance(node, _BatchNorm) and isinstance(source, _Conv) and readers[source.name] == 1:
                source.fold_batch_norm(node.scale, node.shift)
                self.nodes[index] = by_name[node.name] = _Alias(node.name, node.inputs)
        for index, node in enumerate(self.nodes):
            source = by_name.get(node.inputs[0])
            if isinstance(node, _Conv) and isinstance(source, _Activation) and source.kind == "relu" and readers[source.name] == 1:
                node.relu_input = True
                self.nodes[self.nodes.index(source)] = by_name[source.name] = _Alias(source.name, source.inputs)
        for node in self.nodes:
            if isinstance(node, _Activation):
                node.in_place = self._may_overwrite(node.inputs[0], readers, by_name)

    def _may_overwrite(self, name: str, readers: dict[str, int], by_name: dict[str, _Node]) -> bool:
        """Whether the array under `name` has one reader, also through the layers that pass it on unchanged,
        and is not the caller's input."""
        while name != self.input_name and readers[name] == 1:
            node = by_name[name]
            if not isinstance(node, _Alias) and not (isinstance(node, _Activation) and node.kind == "linear"):
                return True
            name = node.inputs[0]
        return False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 4:
            raise ValueError(f"expected input (N, H, W, C), got shape {x.shape}")
        values = {self.input_name: np.ascontiguousarray(x.transpose(3, 0, 1, 2))}  # channels last -> planar
        for node in self.nodes:
            values[node.name] = node(*(values[name] for name in node.inputs))
        out = values[self.output_name]
        return out.transpose(1, 2, 3, 0) if out.ndim == 4 else out


def _read_keras_weights(group) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {weight name: array}} from an HDF5 `model_weights` group (Keras 2 layout)."""
    weights: dict[str, dict[str, np.ndarray]] = {}
    for layer_name in group.attrs.get("layer_names", list(group.keys())):
        layer_name = layer_name.decode() if isinstance(layer_name, bytes) else str(layer_name)
        layer_group = group[layer_name]
        arrays = {}
        for weight_name in layer_group.attrs.get("weight_names", []):
            weight_name = weight_name.decode() if isinstance(weight_name, bytes) else str(weight_name)
            short = weight_name.split("/")[-1].split(":")[0]  # '.../depthwise_kernel:0' -> 'depthwise_kernel'
            arrays[short] = np.asarray(layer_group[weight_name], dtype=np.float32)
        weights[layer_name] = arrays
    return weights


def load_keras_hdf5(path: str | Path, what: str = "model") -> KerasGraphNet:
    """A KerasGraphNet from a Keras 2 HDF5 file (architecture from its `model_config`, weights via h5py).
    `what` names the model in error messages."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise AssetError(f"{what} not found at {path}")
    try:
        with h5py.File(path, "r") as handle:
            raw_config = handle.attrs["model_config"]
            config = json.loads(raw_config.decode() if isinstance(raw_config, bytes) else raw_config)
            weights = _read_keras_weights(handle["model_weights"])
    except (OSError, KeyError, ValueError) as exc:
        raise AssetError(f"{what} {path} is not a readable Keras HDF5 model ({exc})") from None
    try:
        return KerasGraphNet(config, weights)
    except KeyError as exc:
        raise AssetError(f"{what} {path} lacks weights or config entry {exc}") from None
