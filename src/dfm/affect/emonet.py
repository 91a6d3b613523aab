"""`emonet` estimator: EmoNet (Toisoul et al., "Estimation of continuous valence and arousal levels from
faces in naturalistic conditions", Nature Machine Intelligence 3:42-50, 2021), the paper's estimator.

Re-implemented here so that the official state dicts (`emonet_8.pth`, `emonet_5.pth` from github
face-analysis/emonet `pretrained/`, license CC BY-NC-ND 4.0: users download them and pass the path) load
unchanged with `load_state_dict(strict=True)`. Module names and shapes follow that layout:

- a FAN face-alignment trunk: `conv1` (7x7/2, 3->64, bias) + `bn1`, `conv2` ConvBlock(64,128), max-pool,
  `conv3` ConvBlock(128,128), `conv4` ConvBlock(128,256);
- two stacked hourglasses `m0`, `m1` (depth 4, 256 features; blocks `b1_<level>`, `b2_<level>`,
  `b2_plus_1`, `b3_<level>`), each followed by `top_m_<i>`, `conv_last<i>` (1x1) + `bn_end<i>`, and a 68-landmark
  heatmap head `l<i>`; between them `bl0` (256->256) and `al0` (68->256) feed the next stack;
- the emotion branch: the trunk features and both stacks' features, the latter weighted by the summed
  heatmap of the last stack (attention), -> `conv1x1_input_emo_2` (768->256) -> `emo_net_2` (4 x [ConvBlock,
  max-pool]: indices 0, 2, 4, 6 hold weights) -> 4x4 average -> `emo_fc_2` (Linear 256->128, BatchNorm1d,
  ReLU, Linear 128->n_classes+2): expression logits, then valence, arousal.

Every normalisation layer of the original is a BatchNorm2d (its code aliases InstanceNorm2d to it), so each
holds weight, bias, running_mean, running_var and num_batches_tracked. Input: RGB in [0, 1], 256x256,
no mean/std normalisation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dfm.affect.base import AffectResult, check_crops
from dfm.errors import AssetError

EMONET_CLASS_NAMES: dict[int, tuple[str, ...]] = {
    8: ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt"),
    5: ("neutral", "happy", "sad", "surprise", "fear"),
}
EMONET_INPUT_SIZE = 256
N_LANDMARKS = 68
HOURGLASS_DEPTH = 4
N_STACKS = 2
FEATURES = 256


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)


class ConvBlock(nn.Module):
    """FAN's multi-scale residual block: three pre-activated 3x3 convs (out/2, out/4, out/4) concatenated."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        half, quarter = out_channels // 2, out_channels // 4
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = _conv3x3(in_channels, half)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = _conv3x3(half, quarter)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = _conv3x3(quarter, quarter)
        self.downsample = (
            nn.Sequential(
                nn.BatchNorm2d(in_channels),
                nn.ReLU(),
                nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            )
            if in_channels != out_channels
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1 = self.conv1(F.relu(self.bn1(x)))
        branch2 = self.conv2(F.relu(self.bn2(branch1)))
        branch3 = self.conv3(F.relu(self.bn3(branch2)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.cat((branch1, branch2, branch3), dim=1) + shortcut


class HourGlass(nn.Module):
    """Recursive hourglass: at each level a skip block (b1) and a pooled path (b2 -> deeper -> b3), upsampled."""

    def __init__(self, depth: int, features: int) -> None:
        super().__init__()
        self.depth = depth
        for level in range(depth, 0, -1):
            self.add_module(f"b1_{level}", ConvBlock(features, features))
            self.add_module(f"b2_{level}", ConvBlock(features, features))
            self.add_module(f"b3_{level}", ConvBlock(features, features))
        self.add_module("b2_plus_1", ConvBlock(features, features))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        skip = self._modules[f"b1_{level}"](x)
        low = self._modules[f"b2_{level}"](F.max_pool2d(x, 2, stride=2))
        low = self._level(level - 1, low) if level > 1 else self._modules["b2_plus_1"](low)
        low = self._modules[f"b3_{level}"](low)
        return skip + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, x)


class EmoNet(nn.Module):
    """EmoNet with attention (the released configuration): 256x256 RGB in [0, 1] -> logits, valence, arousal."""

    def __init__(self, n_expression: int = 8) -> None:
        super().__init__()
        self.n_expression = n_expression
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, FEATURES)
        for stack in range(N_STACKS):
            self.add_module(f"m{stack}", HourGlass(HOURGLASS_DEPTH, FEATURES))
            self.add_module(f"top_m_{stack}", ConvBlock(FEATURES, FEATURES))
            self.add_module(f"conv_last{stack}", nn.Conv2d(FEATURES, FEATURES, kernel_size=1))
            self.add_module(f"bn_end{stack}", nn.BatchNorm2d(FEATURES))
            self.add_module(f"l{stack}", nn.Conv2d(FEATURES, N_LANDMARKS, kernel_size=1))
            if stack < N_STACKS - 1:
                self.add_module(f"bl{stack}", nn.Conv2d(FEATURES, FEATURES, kernel_size=1))
                self.add_module(f"al{stack}", nn.Conv2d(N_LANDMARKS, FEATURES, kernel_size=1))
        self.conv1x1_input_emo_2 = nn.Conv2d(FEATURES * (N_STACKS + 1), FEATURES, kernel_size=1)
        emotion_layers: list[nn.Module] = []
        for _ in range(4):
            emotion_layers += [ConvBlock(FEATURES, FEATURES), nn.MaxPool2d(2, 2)]
        self.emo_net_2 = nn.Sequential(*emotion_layers)
        self.emo_fc_2 = nn.Sequential(
            nn.Linear(FEATURES, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, n_expression + 2)
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(self.conv2(x), 2, stride=2)
        x = self.conv4(self.conv3(x))
        previous = x
        stack_features = []
        heatmaps = x  # replaced by the last stack's heatmaps below
        for stack in range(N_STACKS):
            features = self._modules[f"top_m_{stack}"](self._modules[f"m{stack}"](previous))
            features = F.relu(self._modules[f"bn_end{stack}"](self._modules[f"conv_last{stack}"](features)))
            heatmaps = self._modules[f"l{stack}"](features)
            if stack < N_STACKS - 1:
                features = self._modules[f"bl{stack}"](features)
                previous = previous + features + self._modules[f"al{stack}"](heatmaps)
            stack_features.append(features)
        # attention: the summed landmark heatmaps weight the hourglass features
        attention = heatmaps.sum(dim=1, keepdim=True)
        emotion_input = torch.cat((x, torch.cat(stack_features, dim=1) * attention), dim=1)
        pooled = F.avg_pool2d(self.emo_net_2(self.conv1x1_input_emo_2(emotion_input)), 4)
        head = self.emo_fc_2(pooled.flatten(1))
        return {
            "heatmap": heatmaps,
            "expression": head[:, :-2],
            "valence": head[:, -2],
            "arousal": head[:, -1],
        }


def _extract_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]  # a training checkpoint wrapping the weights
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise AssetError(f"EmoNet weights {path} are not a PyTorch state dict (expected the official emonet_8.pth or emonet_5.pth)")
    # the official files were saved from nn.DataParallel: keys start with 'module.'
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def emonet_from_state_dict(state: dict[str, torch.Tensor], source: str = "state dict") -> EmoNet:
    """Build an EmoNet of the right class count and load `state` strictly; AssetError with one line otherwise."""
    head = state.get("emo_fc_2.3.weight")
    if head is None or head.ndim != 2 or head.shape[0] - 2 not in EMONET_CLASS_NAMES:
        found = "missing" if head is None else tuple(head.shape)
        raise AssetError(
            f"{source} is not an EmoNet state dict: 'emo_fc_2.3.weight' should be (10, 128) or (7, 128), found {found}"
        )
    model = EmoNet(n_expression=head.shape[0] - 2)
    expected = model.state_dict()
    state = dict(state)
    for key, value in expected.items():
        # files saved by PyTorch < 0.4.1 lack BatchNorm's step counter, which inference never reads
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value.clone()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong_shape:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if wrong_shape:
            key = wrong_shape[0]
            problems.append(
                f"{len(wrong_shape)} keys of wrong shape (e.g. {key}: {tuple(state[key].shape)} instead of {tuple(expected[key].shape)})"
            )
        raise AssetError(f"{source} does not match the EmoNet layout: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)
    return model.eval()


class EmoNetEstimator:
    """EmoNet on 256x256 RGB crops: expression probabilities (softmax of the logits) and direct valence, arousal."""

    name = "emonet"
    crop_size = EMONET_INPUT_SIZE
    crop_margin = 0.05  # see crops.py: AffectNet's face crops are close to the detector box

    def __init__(self, model: EmoNet, batch_size: int = 8) -> None:
        self.model = model.eval()
        self.batch_size = batch_size
        self.class_names = EMONET_CLASS_NAMES[model.n_expression]

    def predict(self, crops: np.ndarray) -> AffectResult:
        crops = check_crops(crops, self.crop_size)
        valence, arousal, probs = [], [], []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                chunk = torch.from_numpy(crops[start : start + self.batch_size]).permute(0, 3, 1, 2).float() / 255.0
                out = self.model(chunk)
                valence.append(out["valence"].clamp(-1.0, 1.0).numpy())
                arousal.append(out["arousal"].clamp(-1.0, 1.0).numpy())
                probs.append(F.softmax(out["expression"], dim=1).numpy())
        n_classes = len(self.class_names)
        return AffectResult(
            valence=np.concatenate(valence).astype(np.float32) if valence else np.zeros(0, np.float32),
            arousal=np.concatenate(arousal).astype(np.float32) if arousal else np.zeros(0, np.float32),
            probs=np.concatenate(probs).astype(np.float32) if probs else np.zeros((0, n_classes), np.float32),
            class_names=self.class_names,
        )


def load_emonet(path: str | Path) -> EmoNetEstimator:
    """EmoNet estimator from an official state dict file (5 or 8 classes, detected from the file)."""
    path = Path(path)
    if not path.is_file():
        raise AssetError(
            f"EmoNet weights not found at {path} (get emonet_8.pth or emonet_5.pth from github.com/face-analysis/emonet, CC BY-NC-ND)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and unpickler errors all mean: not a loadable state dict
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AssetError(f"EmoNet weights {path} could not be read as a PyTorch state dict ({reason[:120]})") from None
    return EmoNetEstimator(emonet_from_state_dict(_extract_state_dict(obj, path), source=f"EmoNet weights {path}"))
