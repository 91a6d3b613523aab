"""Saving and loading decoders: a directory with a JSON card and the learned arrays.

    card.json            format_version, what the model is, its parameters, the data it learned from,
                         its metrics, the code versions that wrote it
    weights.safetensors  torch nets (MLP / paper decoder): the network's state dict, loadable by torch
    state.npz            non-parametric state (kernel decoder node values)
    person.npz           PersonDecoder: coverage counts grid and the person's neutral expression

The directory is written next to its final place and renamed onto it (atomic); an existing model is not
replaced unless overwrite=True. Loading checks `format_version`: a card from another version is either
migrated (MIGRATIONS) or refused with a DfmError that says to retrain.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path
from typing import Any, Callable

import numpy as np

import dfm
from dfm.decoder.base import DataDecoder
from dfm.decoder.kernel import KernelDecoder
from dfm.decoder.prior import FacsPrior
from dfm.decoder.report import TrainingReport, to_jsonable
from dfm.errors import DfmError
from dfm.io.files import atomic_directory

FORMAT_VERSION = 1
CARD = "card.json"
TORCH_KINDS = ("mlp", "paper")  # decoders whose weights are a torch state dict (safetensors)
DECODER_KINDS = ("kernel", "mean", "prior_mean") + TORCH_KINDS


def _decoder_class(kind: str) -> type[DataDecoder]:
    from dfm.decoder.baselines import MeanDecoder, PriorMeanDecoder

    if kind == KernelDecoder.kind:
        return KernelDecoder
    if kind in (MeanDecoder.kind, PriorMeanDecoder.kind):
        return MeanDecoder if kind == MeanDecoder.kind else PriorMeanDecoder
    from dfm.decoder.mlp import MLPDecoder, PaperDecoder  # torch only when a net is loaded

    return {MLPDecoder.kind: MLPDecoder, PaperDecoder.kind: PaperDecoder}[kind]
# format_version -> function(card dict, directory) -> card dict of the next version. Empty: version 1 is
# the first format; add an entry here when the format changes and old models can be converted.
MIGRATIONS: dict[int, Callable[[dict, Path], dict]] = {}


def _versions() -> dict[str, str]:
    import sys

    import scipy

    out = {
        "dfm": dfm.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].__version__
    return out


def _decoder_card(dec: DataDecoder) -> dict[str, Any]:
    is_torch = dec.kind in TORCH_KINDS
    return {
        "kind": dec.kind,
        "class": type(dec).__name__,
        "params": to_jsonable(dec.get_params()),
        "weights": "weights.safetensors" if is_torch else "state.npz",
        "mean_expression": [float(x) for x in dec.mean_expression_],
    }


def _write_decoder_state(dec: DataDecoder, folder: Path) -> None:
    state = dec._state()
    if dec.kind in TORCH_KINDS:
        from safetensors.numpy import save_file  # same file format as safetensors.torch

        save_file({k: np.ascontiguousarray(v) for k, v in state.items()},
                  str(folder / "weights.safetensors"), metadata={"format": "pt"})
    else:
        np.savez_compressed(folder / "state.npz", **state)


def _read_decoder(card: dict[str, Any], folder: Path, metrics: dict | None) -> DataDecoder:
    kind = card.get("kind")
    if kind not in DECODER_KINDS:
        raise DfmError(f"unknown decoder kind {kind!r} in {folder / CARD}; known: {', '.join(DECODER_KINDS)}")
    cls = _decoder_class(kind)
    params = dict(card.get("params", {}))
    if "hidden_sizes" in params:
        params["hidden_sizes"] = tuple(params["hidden_sizes"])
    for name in ("bandwidths", "alphas"):
        if name in params:
            params[name] = tuple(params[name])
    dec = cls(**params)
    path = folder / card["weights"]
    if not path.exists():
        raise DfmError(f"decoder weights {path} are missing; retrain the model")
    try:
        if card["weights"].endswith(".safetensors"):
            from safetensors.numpy import load_file

            arrays = load_file(str(path))
        else:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        dec._set_state(arrays)
    except DfmError:
        raise
    except Exception as e:  # corrupt or mismatched file
        raise DfmError(f"cannot read decoder weights {path}: {e}") from None
    dec.mean_expression_ = np.asarray(card["mean_expression"], np.float32)
    dec.report_ = TrainingReport.from_dict(metrics or {}) if metrics else _empty_report(dec.kind)
    return dec


def _empty_report(kind: str) -> TrainingReport:
    nan = float("nan")
    return TrainingReport(kind, 0, 0, 0, 0, nan, nan, nan, {}, 0.0)


def save_model(model: Any, directory: str | os.PathLike, *, overwrite: bool = False,
               data_info: dict | None = None) -> Path:
    """Write a fitted PersonDecoder or DataDecoder to `directory` (atomically)."""
    from dfm.decoder.person import PersonDecoder

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not overwrite:
        raise DfmError(f"{directory} already holds a model; pass overwrite=True (--force) to replace it")
    card: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    with atomic_directory(directory) as tmp:
        if isinstance(model, PersonDecoder):
            model._check_fitted()
            card["model"] = "person_decoder"
            card["blend"] = {
                "coverage_bandwidth": model.coverage_bandwidth,
                "prior_strength": model.prior_strength,
                "neutral": model.neutral if isinstance(model.neutral, str) else "given",
                "neutral_source": getattr(model, "neutral_source_", None),
                "min_neutral_pairs": model.min_neutral_pairs,
                "grid_size": model.grid_size,
            }
            prior_params = model.prior_.get_params()
            prior_params.pop("neutral", None)  # stored in person.npz
            card["prior"] = {"kind": FacsPrior.kind, "params": prior_params, "prototypes": model.prior_.table()}
            card["data"] = to_jsonable(model.data_info_)
            if model.decoder_ is not None:
                card["decoder"] = _decoder_card(model.decoder_)
                card["metrics"] = model.decoder_.report_.to_dict()
                _write_decoder_state(model.decoder_, tmp)
            else:
                card["decoder"] = None
                card["metrics"] = None
            choice = getattr(model, "choice_", None)
            card["choice"] = None if choice is None else choice.to_dict()
            card["coverage"] = model.coverage_report().to_dict()
            np.savez_compressed(tmp / "person.npz", coverage_counts=model.coverage_counts_, neutral=model.neutral_)
        elif isinstance(model, DataDecoder):
            model._check_fitted()
            card["model"] = "data_decoder"
            card["decoder"] = _decoder_card(model)
            card["metrics"] = model.report_.to_dict()
            card["data"] = to_jsonable({"n_pairs": model.report_.n_pairs, **(data_info or {})})
            _write_decoder_state(model, tmp)
        else:
            raise DfmError(f"cannot save a {type(model).__name__}")
        (tmp / CARD).write_text(json.dumps(to_jsonable(card), indent=2))
    return directory


def read_card(directory: str | os.PathLike) -> dict[str, Any]:
    """The model card, migrated to FORMAT_VERSION; DfmError (saying to retrain) if that is not possible."""
    directory = Path(directory)
    path = directory / CARD
    if not path.exists():
        raise DfmError(f"no decoder model in {directory} ({CARD} missing); train one with `dfm person train NAME`")
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DfmError(f"decoder model card {path} is unreadable ({e}); retrain with `dfm person train NAME`") from None
    if not isinstance(card, dict):
        raise DfmError(f"decoder model card {path} is not a JSON object; retrain with `dfm person train NAME`")
    version = card.get("format_version")
    while version != FORMAT_VERSION and version in MIGRATIONS:
        card = MIGRATIONS[version](card, directory)
        version = card.get("format_version")
    if version != FORMAT_VERSION:
        person = (card.get("data") or {}).get("person") or "NAME"
        wrote = (card.get("versions") or {}).get("dfm", "an unknown version")
        raise DfmError(
            f"the decoder model in {directory} has format version {version!r} (written by dfm {wrote}); "
            f"this dfm {dfm.__version__} reads format {FORMAT_VERSION}: retrain it with `dfm person train {person}`"
        )
    return card


def load_model(directory: str | os.PathLike) -> Any:
    """Load what save_model wrote: a PersonDecoder or a DataDecoder."""
    from dfm.decoder.person import PersonDecoder

    directory = Path(directory)
    card = read_card(directory)
    model = card.get("model")
    if model == "data_decoder":
        return _read_decoder(card["decoder"], directory, card.get("metrics"))
    if model != "person_decoder":
        raise DfmError(f"{directory / CARD} describes an unknown model {model!r}")
    blend = card["blend"]
    prior = FacsPrior(**card["prior"]["params"])
    person_file = directory / "person.npz"
    if not person_file.exists():
        raise DfmError(f"{person_file} is missing; retrain with `dfm person train NAME`")
    with np.load(person_file, allow_pickle=False) as z:
        counts, neutral = z["coverage_counts"], z["neutral"]
    data_decoder = _read_decoder(card["decoder"], directory, card.get("metrics")) if card.get("decoder") else None
    obj = PersonDecoder(
        decoder=data_decoder if data_decoder is not None else "fast",
        prior=prior,
        coverage_bandwidth=blend["coverage_bandwidth"],
        prior_strength=blend["prior_strength"],
        neutral=blend["neutral"] if blend["neutral"] in ("auto", "zeros") else neutral,
        min_neutral_pairs=blend["min_neutral_pairs"],
        grid_size=blend["grid_size"],
    )
    obj.decoder_ = data_decoder
    obj.coverage_counts_ = counts
    obj.neutral_ = neutral.astype(np.float32)
    obj.neutral_source_ = blend.get("neutral_source")
    obj.prior_ = prior.with_neutral(obj.neutral_)
    obj.data_info_ = card.get("data") or {}
    from dfm.decoder.select import DecoderChoice

    obj.choice_ = DecoderChoice.from_dict(card["choice"]) if card.get("choice") else None
    obj._density = None
    return obj
