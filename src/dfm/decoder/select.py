"""Model selection on the time-block validation: a person's decoder never does worse than the mean.

With few, emotion-blocked frames a local-linear regression over VA can extrapolate badly: on one
actor the `fast` decoder's validation RMSE was 0.174 against 0.161 for the mean expression. So
PersonDecoder.fit fits every candidate on the SAME time-block split and keeps the one with the lowest
validation RMSE:

    local-linear               the requested preset (KernelDecoder for `fast`)
    local-linear, regularised  wider bandwidths, 25 shrinkage pseudo-pairs, strong slope ridge
    prior + mean               the person's mean + alpha * the FACS prior's activation (baselines.py)
    mean                       the person's mean expression (the baseline itself)

The mean is a candidate, so the chosen validation RMSE is at most the baseline's. The kernel candidates
choose their bandwidth on the same blocks, which flatters them slightly; the comparison is still between
models none of which saw the validation frames. Ties (within `tolerance`) go to the earlier candidate in
the list, i.e. to the one that carries more of the person's own VA layout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dfm.decoder.base import DataDecoder
from dfm.decoder.baselines import MeanDecoder, PriorMeanDecoder
from dfm.decoder.kernel import KernelDecoder

REGULARISED_BANDWIDTHS = (0.15, 0.2, 0.3, 0.4, 0.6)


@dataclass
class DecoderChoice:
    """Which candidate PersonDecoder kept, and every candidate's validation RMSE."""

    chosen: str
    rmse_val: float
    rmse_val_baseline: float  # the mean expression's
    candidates: dict[str, float] = field(default_factory=dict)  # name -> validation RMSE

    def line(self) -> str:
        others = ", ".join(f"{k} {v:.4f}" for k, v in self.candidates.items())
        return (f"decoder chosen on validation: {self.chosen} (RMSE {self.rmse_val:.4f}; mean baseline "
                f"{self.rmse_val_baseline:.4f}; candidates: {others})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DecoderChoice":
        return cls(str(d["chosen"]), float(d["rmse_val"]), float(d["rmse_val_baseline"]),
                   {str(k): float(v) for k, v in d.get("candidates", {}).items()})


def candidates(primary: DataDecoder) -> dict[str, DataDecoder]:
    """The unfitted candidates, the requested data decoder first, all with its split settings."""
    split = {k: getattr(primary, k) for k in ("val_fraction", "block_frames", "gap_frames", "seed")}
    name = "local-linear" if isinstance(primary, KernelDecoder) else primary.kind
    return {
        name: primary,
        "local-linear, regularised": KernelDecoder(bandwidths=REGULARISED_BANDWIDTHS, shrink=25.0, ridge=1.0, **split),
        "prior + mean": PriorMeanDecoder(**split),
        "mean": MeanDecoder(**split),
    }


def select_decoder(primary: DataDecoder, va: np.ndarray, expr: np.ndarray, *, video_ids: Any = None,
                   frame_index: Any = None, split=None, tolerance: float = 1e-3) -> tuple[DataDecoder, DecoderChoice]:
    """Fit every candidate on one time-block split and return the best fitted one with the choice record."""
    fitted: dict[str, DataDecoder] = {}
    for name, dec in candidates(primary).items():
        dec.fit(va, expr, video_ids=video_ids, frame_index=frame_index, split=split)
        split = dec.split_  # every candidate on the first one's blocks
        fitted[name] = dec
    errs = {name: float(d.report_.rmse_val) for name, d in fitted.items()}
    best = min(errs.values())
    baseline = float(fitted["mean"].report_.rmse_val)
    chosen = next(name for name, e in errs.items() if e <= best * (1.0 + tolerance) and e <= baseline)
    return fitted[chosen], DecoderChoice(chosen, errs[chosen], baseline, errs)
