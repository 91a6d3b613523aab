"""Evaluation (DESIGN "Evaluation protocol"): the paper's self-reenactment metrics, emotion fidelity,
temporal stability and speed.

- `dfm.eval.metrics`: APD, Face-APD, Mouth-APD, PSNR, SSIM on aligned 256x256 crops (`CropBox`).
- `dfm.eval.reenactment`: the self-reenactment protocol (`run_self_reenactment`, settings A and B).
- `dfm.eval.fidelity`: `emotion_fidelity` of an edited video against the requested VA regions.
- `dfm.eval.stability`: frame-to-frame crop change (`CropChange`) and `landmark_jitter`.
- `dfm.eval.report`: table and heat maps. The evaluation run itself (`dfm evaluate`) composes these in
  `dfm.pipelines.evaluate`.

The metrics import light (numpy, OpenCV); the rest is loaded on first use.
"""

from dfm.eval.metrics import CropBox, apd, frame_metrics, pixel_error, psnr, ssim

_LAZY = {
    "ProtocolConfig": "dfm.eval.reenactment", "ReenactmentResult": "dfm.eval.reenactment",
    "ProtocolViolation": "dfm.eval.reenactment", "run_self_reenactment": "dfm.eval.reenactment",
    "emotion_fidelity": "dfm.eval.fidelity", "CropChange": "dfm.eval.stability",
    "landmark_jitter": "dfm.eval.stability",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dfm.eval' has no attribute {name!r}")


__all__ = ["CropBox", "apd", "frame_metrics", "pixel_error", "psnr", "ssim", *_LAZY]
