"""Expression decoder: valence-arousal -> the person's 53 ICT expression coefficients (paper §3.3 and beyond).

Public API:
- `PersonDecoder` — what the rest of the product uses: a data decoder fitted on the person's pairs, blended
  with the universal `FacsPrior` where the data covers the VA plane poorly; `save` / `load`.
- data decoders (scikit-learn style): `KernelDecoder` (the `fast` default), `PaperDecoder` (the paper's
  MLP and training setting), `MLPDecoder` (smaller MLPs); `make_decoder(preset)`.
- `FacsPrior` — FACS emotion prototypes on the ICT blendshapes, laid out on the VA plane.
- `time_block_split`, `TrainingReport`, `CoverageReport`, `load_model`, `save_model`, `FORMAT_VERSION`.
"""

from dfm.decoder.base import DataDecoder
from dfm.decoder.kernel import KernelDecoder
from dfm.decoder.persist import FORMAT_VERSION, load_model, read_card, save_model
from dfm.decoder.person import PRESETS, CoverageReport, CoverageRow, PersonDecoder, make_decoder, va_orbit
from dfm.decoder.prior import EMFACS_PROTOTYPES, FACS_TO_ICT, FacsPrior
from dfm.decoder.report import TrainingReport, rmse
from dfm.decoder.split import TimeBlockSplit, time_block_split

_TORCH_NAMES = ("MLPDecoder", "PaperDecoder", "build_mlp", "RMSELoss")


def __getattr__(name: str):
    """The MLP decoders import torch; load them only when asked for (the kernel decoder does not need it)."""
    if name in _TORCH_NAMES:
        from dfm.decoder import mlp

        return getattr(mlp, name)
    raise AttributeError(f"module 'dfm.decoder' has no attribute {name!r}")


__all__ = [
    "CoverageReport", "CoverageRow", "DataDecoder", "EMFACS_PROTOTYPES", "FACS_TO_ICT", "FORMAT_VERSION",
    "FacsPrior", "KernelDecoder", "MLPDecoder", "PRESETS", "PaperDecoder", "PersonDecoder", "RMSELoss", "TimeBlockSplit",
    "TrainingReport", "build_mlp", "load_model", "make_decoder", "read_card", "rmse", "save_model",
    "time_block_split", "va_orbit",
]
