"""The NumPy Keras-graph evaluator against direct channels-last references (einsum over sliding windows)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from dfm.affect.keras_graph import KerasGraphNet, same_padding
from dfm.errors import AssetError


def _model(layers: list[tuple[str, str, list[str], dict]], output: str) -> dict:
    """A Keras 2 functional `model_config` with input layer 'x' and the given (class, name, inputs, config)."""
    nodes = [{"class_name": "InputLayer", "name": "x", "config": {}, "inbound_nodes": []}]
    for kind, name, inputs, cfg in layers:
        nodes.append({"class_name": kind, "name": name, "config": cfg, "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]]})
    return {"class_name": "Model", "config": {"layers": nodes, "input_layers": [["x", 0, 0]], "output_layers": [[output, 0, 0]]}}


def _conv_cfg(kernel, strides, padding, **extra) -> dict:
    return {"kernel_size": list(kernel), "strides": list(strides), "padding": padding, "activation": "linear", **extra}


def _pad_same(x: np.ndarray, kernel, strides, value: float = 0.0) -> np.ndarray:
    ph = same_padding(x.shape[1], kernel[0], strides[0])
    pw = same_padding(x.shape[2], kernel[1], strides[1])
    return np.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=value)


def _windows(x: np.ndarray, kernel, strides, padding, value: float = 0.0) -> np.ndarray:
    """(N, Ho, Wo, C, KH, KW) windows of channels-last x, TF padding."""
    xp = _pad_same(x, kernel, strides, value) if padding == "same" else x
    return sliding_window_view(xp, tuple(kernel), axis=(1, 2))[:, :: strides[0], :: strides[1]]


def _ref_conv(x, kernel, strides, padding, bias=None):
    out = np.einsum("nyxcij,ijcf->nyxf", _windows(x, kernel.shape[:2], strides, padding), kernel.astype(np.float64))
    return out if bias is None else out + bias


def _ref_separable(x, depthwise, pointwise, strides, padding):
    spatial = np.einsum("nyxcij,ijc->nyxc", _windows(x, depthwise.shape[:2], strides, padding), depthwise[..., 0].astype(np.float64))
    return spatial @ pointwise[0, 0].astype(np.float64)


def _ref_bn(x, w, eps):
    return (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + eps) * w["gamma"] + w["beta"]


def _bn_weights(rng, channels: int) -> dict[str, np.ndarray]:
    return {"gamma": rng.uniform(0.5, 1.5, channels).astype(np.float32), "beta": rng.normal(0, 0.3, channels).astype(np.float32),
            "moving_mean": rng.normal(0, 0.3, channels).astype(np.float32),
            "moving_variance": rng.uniform(0.2, 2.0, channels).astype(np.float32)}


def test_same_padding_puts_the_odd_pixel_after():
    assert same_padding(60, 3, 2) == (0, 1)  # the mini-Xception's first pool: 60 -> 30
    assert same_padding(15, 3, 2) == (1, 1)  # 15 -> 8
    assert same_padding(64, 3, 1) == (1, 1)
    assert same_padding(60, 1, 2) == (0, 0)
    assert same_padding(8, 4, 1) == (1, 2)


def test_max_pool_same_stride_two_pads_after_only():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    net = KerasGraphNet(_model([("MaxPooling2D", "pool", ["x"], {"pool_size": [3, 3], "strides": [2, 2], "padding": "same"})], "pool"), {})
    # windows rows/cols {0,1,2} and {2,3}: padding before (a symmetric split) would give 5 for the first
    np.testing.assert_array_equal(net(x)[0, :, :, 0], [[10, 11], [14, 15]])
    negative = -1.0 - x  # padded cells must not win the max either
    np.testing.assert_array_equal(net(negative)[0, :, :, 0], [[-1, -3], [-9, -11]])


@pytest.mark.parametrize(
    "kernel, strides, padding, size, batch",
    [((3, 3), (1, 1), "same", 9, 2), ((3, 3), (1, 1), "valid", 10, 2), ((3, 3), (2, 2), "same", 10, 2),
     ((1, 1), (2, 2), "same", 10, 3), ((5, 3), (1, 1), "same", 7, 1)],
)
@pytest.mark.parametrize("channels", [3, 40])  # per-tap products from 32 input channels, stacked taps below
def test_conv2d_with_folded_batch_norm_matches_reference(kernel, strides, padding, size, batch, channels):
    rng = np.random.default_rng(7)
    filters = 5
    x = rng.normal(size=(batch, size, size, channels)).astype(np.float32)
    weights = {"conv": {"kernel": rng.normal(0, 0.3, (*kernel, channels, filters)).astype(np.float32),
                        "bias": rng.normal(0, 0.3, filters).astype(np.float32)},
               "bn": _bn_weights(rng, filters)}
    net = KerasGraphNet(_model([("Conv2D", "conv", ["x"], _conv_cfg(kernel, strides, padding, use_bias=True)),
                                ("BatchNormalization", "bn", ["conv"], {"epsilon": 1e-3})], "bn"), weights)
    expected = _ref_bn(_ref_conv(x, weights["conv"]["kernel"], strides, padding, weights["conv"]["bias"]), weights["bn"], 1e-3)
    out = net(x)
    assert out.shape == expected.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("strides", [(1, 1), (2, 2)])
@pytest.mark.parametrize("batch, size", [(1, 6), (3, 24)])  # small images by shifted views, large by cv2.filter2D
def test_separable_conv_matches_reference(strides, batch, size):
    rng = np.random.default_rng(3)
    channels, filters = 4, 6
    x = rng.normal(size=(batch, size, size, channels)).astype(np.float32)
    weights = {"sep": {"depthwise_kernel": rng.normal(0, 0.5, (3, 3, channels, 1)).astype(np.float32),
                       "pointwise_kernel": rng.normal(0, 0.5, (1, 1, channels, filters)).astype(np.float32)}}
    net = KerasGraphNet(_model([("SeparableConv2D", "sep", ["x"], _conv_cfg((3, 3), strides, "same"))], "sep"), weights)
    expected = _ref_separable(x, weights["sep"]["depthwise_kernel"], weights["sep"]["pointwise_kernel"], strides, "same")
    np.testing.assert_allclose(net(x), expected, atol=2e-5, rtol=1e-5)


def test_residual_graph_with_shared_reader_matches_reference():
    """conv -> BN -> relu read by two branches (so neither the relu nor its input may be overwritten), a BN
    whose conv has a second reader (not folded), a residual add, global average pooling and softmax."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, 12, 12, 1)).astype(np.float32)
    x_before = x.copy()
    w = {"c1": {"kernel": rng.normal(0, 0.5, (3, 3, 1, 4)).astype(np.float32)}, "bn1": _bn_weights(rng, 4),
         "sep": {"depthwise_kernel": rng.normal(0, 0.5, (3, 3, 4, 1)).astype(np.float32),
                 "pointwise_kernel": rng.normal(0, 0.5, (1, 1, 4, 8)).astype(np.float32)},
         "bn2": _bn_weights(rng, 8),
         "skip": {"kernel": rng.normal(0, 0.5, (1, 1, 4, 8)).astype(np.float32)}, "bn3": _bn_weights(rng, 8)}
    layers = [
        ("Conv2D", "c1", ["x"], _conv_cfg((3, 3), (1, 1), "valid")),
        ("BatchNormalization", "bn1", ["c1"], {"epsilon": 1e-3}),
        ("Activation", "r1", ["bn1"], {"activation": "relu"}),
        ("SeparableConv2D", "sep", ["r1"], _conv_cfg((3, 3), (1, 1), "same")),
        ("BatchNormalization", "bn2", ["sep"], {"epsilon": 1e-3}),
        ("Activation", "r2", ["bn2"], {"activation": "relu"}),
        ("MaxPooling2D", "pool", ["r2"], {"pool_size": [3, 3], "strides": [2, 2], "padding": "same"}),
        ("Conv2D", "skip", ["r1"], _conv_cfg((1, 1), (2, 2), "same")),
        ("BatchNormalization", "bn3", ["skip"], {"epsilon": 1e-2}),
        ("Add", "add", ["pool", "bn3", "skip"], {}),  # 'skip' read twice: bn3 stays a separate layer
        ("GlobalAveragePooling2D", "gap", ["add"], {}),
        ("Activation", "out", ["gap"], {"activation": "softmax"}),
    ]
    net = KerasGraphNet(_model(layers, "out"), w)
    r1 = np.maximum(_ref_bn(_ref_conv(x, w["c1"]["kernel"], (1, 1), "valid"), w["bn1"], 1e-3), 0)
    r2 = np.maximum(_ref_bn(_ref_separable(r1, w["sep"]["depthwise_kernel"], w["sep"]["pointwise_kernel"], (1, 1), "same"), w["bn2"], 1e-3), 0)
    pool = _windows(r2, (3, 3), (2, 2), "same", -np.inf).max(axis=(-2, -1))
    skip = _ref_conv(r1, w["skip"]["kernel"], (2, 2), "same")
    logits = (pool + _ref_bn(skip, w["bn3"], 1e-2) + skip).mean(axis=(1, 2))
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    out = net(x)
    assert out.shape == (2, 8)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_array_equal(x, x_before)  # the caller's input is not overwritten
    np.testing.assert_array_equal(net(x), out)  # nothing kept between calls


def test_activations_do_not_overwrite_values_read_elsewhere():
    """relu(c) + c + relu(x) + x: each relu's input has a second reader (one of them is the caller's input)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 5, 5, 1)).astype(np.float32)
    x_before = x.copy()
    kernel = rng.normal(size=(1, 1, 1, 1)).astype(np.float32)
    layers = [
        ("Conv2D", "c", ["x"], _conv_cfg((1, 1), (1, 1), "valid")),
        ("Activation", "rc", ["c"], {"activation": "relu"}),
        ("Activation", "rx", ["x"], {"activation": "relu"}),
        ("Add", "out", ["rc", "c", "rx", "x"], {}),
    ]
    out = KerasGraphNet(_model(layers, "out"), {"c": {"kernel": kernel}})(x)
    c = x * kernel[0, 0, 0, 0]
    np.testing.assert_allclose(out, np.maximum(c, 0) + c + np.maximum(x_before, 0) + x_before, atol=1e-6)
    np.testing.assert_array_equal(x, x_before)
    only_relu = KerasGraphNet(_model([("Activation", "r", ["x"], {"activation": "relu"})], "r"), {})
    np.testing.assert_array_equal(only_relu(x), np.maximum(x_before, 0))
    np.testing.assert_array_equal(x, x_before)  # a single-channel input is planar without a copy


def test_unsupported_layers_are_asset_errors():
    with pytest.raises(AssetError, match="Dense is not supported"):
        KerasGraphNet(_model([("Dense", "fc", ["x"], {"units": 3})], "fc"), {})
    with pytest.raises(AssetError, match="activation 'tanh'"):
        KerasGraphNet(_model([("Activation", "a", ["x"], {"activation": "tanh"})], "a"), {})
    with pytest.raises(AssetError, match="dilated"):
        KerasGraphNet(_model([("Conv2D", "c", ["x"], _conv_cfg((3, 3), (1, 1), "same", dilation_rate=[2, 2]))], "c"),
                      {"c": {"kernel": np.zeros((3, 3, 1, 1), np.float32)}})
