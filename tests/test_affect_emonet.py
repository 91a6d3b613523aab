"""EmoNet: architecture in the official key layout, strict loading of 5/8-class state dicts, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dfm.affect.emonet import EmoNet, EmoNetEstimator, emonet_from_state_dict, load_emonet  # noqa: E402
from dfm.errors import AssetError, DfmError  # noqa: E402

# Key names and shapes read off the public code (github face-analysis/emonet, emonet/models/emonet.py):
# FAN trunk, hourglass blocks named b1_/b2_/b2_plus_/b3_<level>, a BatchNorm2d wherever the code says
# InstanceNorm2d (it aliases one to the other), the emotion branch emo_net_2 (ConvBlock, MaxPool)x4 and
# the head emo_fc_2 = Linear, BatchNorm1d, ReLU, Linear(128, n + 2).
OFFICIAL_KEYS_8 = {
    "conv1.weight": (64, 3, 7, 7),
    "conv1.bias": (64,),
    "bn1.running_var": (64,),
    "conv2.bn1.weight": (64,),
    "conv2.conv1.weight": (64, 64, 3, 3),
    "conv2.conv2.weight": (32, 64, 3, 3),
    "conv2.conv3.weight": (32, 32, 3, 3),
    "conv2.downsample.0.running_mean": (64,),
    "conv2.downsample.2.weight": (128, 64, 1, 1),
    "conv4.downsample.2.weight": (256, 128, 1, 1),
    "m0.b1_4.conv1.weight": (128, 256, 3, 3),
    "m0.b2_plus_1.conv3.weight": (64, 64, 3, 3),
    "m1.b3_1.bn3.num_batches_tracked": (),
    "top_m_1.bn1.bias": (256,),
    "conv_last0.weight": (256, 256, 1, 1),
    "bn_end1.running_mean": (256,),
    "l0.weight": (68, 256, 1, 1),
    "l1.bias": (68,),
    "bl0.weight": (256, 256, 1, 1),
    "al0.weight": (256, 68, 1, 1),
    "conv1x1_input_emo_2.weight": (256, 768, 1, 1),
    "emo_net_2.0.conv1.weight": (128, 256, 3, 3),
    "emo_net_2.6.bn3.running_var": (64,),
    "emo_fc_2.0.weight": (128, 256),
    "emo_fc_2.1.running_mean": (128,),
    "emo_fc_2.3.weight": (10, 128),
    "emo_fc_2.3.bias": (10,),
}
ABSENT_KEYS = ("bl1.weight", "al1.weight", "emo_net_2.1.weight", "conv3.downsample.0.weight", "emo_convs.0.bn1.weight")


@pytest.fixture(scope="module")
def random_state_8():
    torch.manual_seed(0)
    model = EmoNet(n_expression=8)
    # non-trivial running statistics, so a load that skipped buffers would show
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval().state_dict()


@pytest.fixture(scope="module")
def official_file_8(tmp_path_factory, random_state_8):
    path = tmp_path_factory.mktemp("emonet") / "emonet_8.pth"
    # the official files were saved from nn.DataParallel: every key starts with 'module.'
    torch.save({"module." + k: v for k, v in random_state_8.items()}, path)
    return path


def test_key_layout_matches_official(random_state_8):
    assert len(random_state_8) == 682
    for key, shape in OFFICIAL_KEYS_8.items():
        assert tuple(random_state_8[key].shape) == shape, key
    for key in ABSENT_KEYS:
        assert key not in random_state_8
    levels = {k.split(".")[1] for k in random_state_8 if k.startswith("m0.")}
    assert levels == {"b1_4", "b2_4", "b3_4", "b1_3", "b2_3", "b3_3", "b1_2", "b2_2", "b3_2", "b1_1", "b2_1", "b3_1", "b2_plus_1"}


def test_loader_reloads_official_layout_strictly(official_file_8, random_state_8):
    estimator = load_emonet(official_file_8)
    assert isinstance(estimator, EmoNetEstimator)
    assert len(estimator.class_names) == 8 and estimator.class_names[1] == "happy"
    loaded = estimator.model.state_dict()
    assert set(loaded) == set(random_state_8)
    for key in ("emo_fc_2.3.weight", "m1.b2_plus_1.bn2.running_var", "conv1.bias"):
        assert torch.equal(loaded[key], random_state_8[key])


def test_five_class_variant_is_detected(tmp_path):
    torch.manual_seed(1)
    state = EmoNet(n_expression=5).state_dict()
    assert tuple(state["emo_fc_2.3.weight"].shape) == (7, 128)
    path = tmp_path / "emonet_5.pth"
    torch.save(state, path)
    estimator = load_emonet(path)
    assert estimator.class_names == ("neutral", "happy", "sad", "surprise", "fear")


def test_forward_outputs_and_clipping(random_state_8):
    estimator = EmoNetEstimator(emonet_from_state_dict(random_state_8))
    crops = np.random.default_rng(0).integers(0, 256, size=(1, 256, 256, 3), dtype=np.uint8)
    with torch.inference_mode():
        raw = estimator.model(torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255)
    assert raw["expression"].shape == (1, 8)
    assert raw["heatmap"].shape == (1, 68, 64, 64)
    result = estimator.predict(crops)
    assert result.probs.shape == (1, 8)
    np.testing.assert_allclose(result.probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(result.valence, np.clip(raw["valence"].numpy(), -1, 1), atol=1e-5)
    assert np.all(np.abs(result.va) <= 1.0)


def test_missing_num_batches_tracked_is_tolerated(random_state_8):
    old_style = {k: v for k, v in random_state_8.items() if not k.endswith("num_batches_tracked")}
    model = emonet_from_state_dict(old_style)
    assert torch.equal(model.state_dict()["l1.weight"], random_state_8["l1.weight"])


def test_not_a_state_dict(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a torch file at all")
    with pytest.raises(DfmError, match="could not be read as a PyTorch state dict") as info:
        load_emonet(garbage)
    assert "\n" not in str(info.value)
    a_list = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], a_list)
    with pytest.raises(AssetError, match="not a PyTorch state dict"):
        load_emonet(a_list)
    with pytest.raises(AssetError, match="not found"):
        load_emonet(tmp_path / "missing.pth")


def test_wrong_keys(tmp_path, random_state_8):
    renamed = dict(random_state_8)
    renamed["extra.weight"] = renamed.pop("l0.weight")
    path = tmp_path / "renamed.pth"
    torch.save(renamed, path)
    with pytest.raises(AssetError, match=r"1 missing keys \(e\.g\. l0\.weight\); 1 unexpected keys \(e\.g\. extra\.weight\)"):
        load_emonet(path)
    resnet_like = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(10, 128)}, resnet_like)
    with pytest.raises(AssetError, match="not an EmoNet state dict"):
        load_emonet(resnet_like)


def test_wrong_shapes(tmp_path, random_state_8):
    reshaped = dict(random_state_8)
    reshaped["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    path = tmp_path / "reshaped.pth"
    torch.save(reshaped, path)
    with pytest.raises(AssetError, match=r"wrong shape \(e\.g\. conv1\.weight: \(64, 3, 5, 5\) instead of \(64, 3, 7, 7\)\)"):
        load_emonet(path)
    six_classes = dict(random_state_8)
    six_classes["emo_fc_2.3.weight"] = torch.zeros(8, 128)
    with pytest.raises(AssetError, match="should be \\(10, 128\\) or \\(7, 128\\)"):
        emonet_from_state_dict(six_classes)
