"""Evaluation (DESIGN "Evaluation protocol"): the paper's self-reenactment metrics, emotion fidelity,
temporal stability and speed.

- `dfm.eval.metrics`: APD, Face-APD, Mouth-APD, PSNR, SSIM on aligned 256x256 crops (`CropBox`).
- `dfm.eval.reenactment`: the self-reenactment protocol (`run_self_reenactment`, settings A and B).
- `dfm.eval.fidelity`: `emotion_fidelity` of an edited video against the requested VA regions.
- `dfm.eval.stability`: frame-to-frame crop change (`CropChange`) and `landmark_jitter`.
- `dfm.eval.run`: `evaluate_video`, what `dfm evaluate` runs; `dfm.eval.report`: table and heat maps.
"""

from dfm.eval.metrics import CropBox, apd, frame_metrics, pixel_error, psnr, ssim

__all__ = ["CropBox", "apd", "frame_metrics", "pixel_error", "psnr", "ssim"]
