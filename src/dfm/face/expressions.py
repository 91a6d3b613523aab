"""The public expression representation: 53 ICT-FaceKit blendshape weights with ARKit-style names.

Order is the ICT model's (alphabetical), so column j of every expression array is EXPRESSION_NAMES[j].
"""

from __future__ import annotations

import numpy as np

EXPRESSION_NAMES: tuple[str, ...] = (
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L",
    "browOuterUp_R", "cheekPuff_L", "cheekPuff_R", "cheekSquint_L", "cheekSquint_R",
    "eyeBlink_L", "eyeBlink_R", "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L",
    "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R", "eyeLookUp_L", "eyeLookUp_R",
    "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R", "jawForward",
    "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimple_L",
    "mouthDimple_R", "mouthFrown_L", "mouthFrown_R", "mouthFunnel", "mouthLeft",
    "mouthLowerDown_L", "mouthLowerDown_R", "mouthPress_L", "mouthPress_R", "mouthPucker",
    "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmile_L", "mouthSmile_R", "mouthStretch_L", "mouthStretch_R", "mouthUpperUp_L",
    "mouthUpperUp_R", "noseSneer_L", "noseSneer_R",
)
N_EXPRESSIONS = len(EXPRESSION_NAMES)
EXPRESSION_INDEX: dict[str, int] = {name: i for i, name in enumerate(EXPRESSION_NAMES)}


def expression_index(name: str) -> int:
    """Column of a blendshape by its ICT name; raises KeyError naming the unknown shape."""
    try:
        return EXPRESSION_INDEX[name]
    except KeyError:
        raise KeyError(f"unknown blendshape {name!r}; known: {', '.join(EXPRESSION_NAMES)}") from None


def expression_vector(**weights: float) -> np.ndarray:
    """A (53,) float32 expression with the named blendshapes set, e.g. expression_vector(jawOpen=0.5)."""
    e = np.zeros(N_EXPRESSIONS, np.float32)
    for name, value in weights.items():
        e[expression_index(name)] = value
    return e


def mediapipe_to_ict_name(mp_name: str) -> list[str]:
    """ICT names fed by one MediaPipe/ARKit blendshape score ('mouthSmileLeft' -> ['mouthSmile_L']).

    ICT splits ARKit's browInnerUp and cheekPuff into left/right halves; both halves get the score.
    MediaPipe's '_neutral' has no ICT counterpart.
    """
    if mp_name == "_neutral":
        return []
    if mp_name in ("browInnerUp", "cheekPuff"):
        return [mp_name + "_L", mp_name + "_R"]
    for side, suffix in (("Left", "_L"), ("Right", "_R")):
        # jawLeft/mouthLeft are directions, not sides: ICT keeps them whole.
        if mp_name.endswith(side) and mp_name not in ("jawLeft", "jawRight", "mouthLeft", "mouthRight"):
            return [mp_name[: -len(side)] + suffix]
    return [mp_name]


def mediapipe_scores_to_ict(names: list[str], scores: np.ndarray) -> np.ndarray:
    """Map MediaPipe blendshape scores (..., len(names)) to the 53 ICT columns (..., 53)."""
    scores = np.asarray(scores, dtype=np.float32)
    out = np.zeros(scores.shape[:-1] + (N_EXPRESSIONS,), dtype=np.float32)
    for k, name in enumerate(names):
        for ict in mediapipe_to_ict_name(name):
            out[..., EXPRESSION_INDEX[ict]] = scores[..., k]
    return out
