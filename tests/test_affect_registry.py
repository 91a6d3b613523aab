"""Affect estimators by name."""

from __future__ import annotations

import pytest

from dfm.affect.registry import make_estimator
from dfm.errors import DfmError


def test_fer_is_the_default(assets_dir):
    estimator = make_estimator("fer", None, assets_dir)
    assert estimator.name == "fer" and estimator.crop_size == 128
    assert make_estimator(assets_dir=assets_dir).name == "fer"


def test_unknown_name_lists_known_ones(tmp_path):
    with pytest.raises(DfmError, match=r"unknown affect estimator 'openface'; known: emonet, fer"):
        make_estimator("openface", None, tmp_path)


def test_emonet_needs_weights(tmp_path):
    with pytest.raises(DfmError, match="needs its weights.*CC BY-NC-ND"):
        make_estimator("emonet", None, tmp_path)
    with pytest.raises(DfmError, match="not found"):
        make_estimator("emonet", tmp_path / "emonet_8.pth", tmp_path)


def test_missing_fer_asset_is_a_clear_error(tmp_path):
    with pytest.raises(DfmError, match="fer model not found"):
        make_estimator("fer", None, tmp_path)
