"""Emotion-matrix figures on synthetic arrays with known answers."""

from __future__ import annotations

import numpy as np

from dfm.eval.emotion_matrix import DEFAULT_CELLS, MatrixCell, markdown_table, matrix_cell
from dfm.face.emfacs import prototype_shapes
from dfm.face.expressions import N_EXPRESSIONS, expression_index

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # fer's order and names


def test_matrix_cell_known_answer() -> None:
    t = 40
    weight = np.ones(t)
    weight[:5] = weight[-5:] = 0.5  # ramps: not counted
    probs_in = np.tile(np.eye(7)[6] * 0.9 + 0.1 / 7, (t, 1))  # neutral everywhere
    probs_out = probs_in.copy()
    probs_out[5:25] = np.eye(7)[5] * 0.7 + 0.3 / 7  # 20 of the 30 full-weight frames called surprise
    rng = np.random.default_rng(0)
    lm_in = rng.normal(0, 1.0, (t, 478, 2)) + 100.0
    lm_out = lm_in + rng.normal(0, 1.0, (t, 478, 2))  # jitter sqrt(2) times the input's
    valid = np.ones(t, bool)
    e_in = np.zeros((t, N_EXPRESSIONS), np.float32)
    e_out = e_in.copy()
    e_out[:, expression_index("eyeWide_L")] = e_out[:, expression_index("eyeWide_R")] = 0.4
    c = matrix_cell("surprise", "high", weight, CLASSES, probs_in, probs_out, lm_in, valid, lm_out, valid,
                    e_in, e_out, prototype_shapes("surprise"))
    assert c.frames == 30
    assert abs(c.share_output - 20 / 30) < 1e-9 and c.share_input == 0.0
    want = (20 * (0.7 + 0.3 / 7) + 10 * (0.1 / 7)) / 30
    assert abs(c.prob_output - want) < 1e-9
    assert 1.2 < c.jitter_ratio < 1.6
    assert c.aus["AU5"] == {"input": 0.0, "output": np.float32(0.4).item()}
    assert c.aus["AU1"]["output"] == 0.0
    table = markdown_table([c])
    assert "| surprise:high | 30 | 0% → **67%** |" in table and "AU5 0.00→0.40" in table


def test_default_cells_cover_every_label_at_high_and_two_labels_at_low_and_medium() -> None:
    high = {label for label, i in DEFAULT_CELLS if i in ("high", None)}
    assert high == {"neutral", "happy", "sad", "surprise", "fear", "anger", "disgust"}
    graded = {label for label, i in DEFAULT_CELLS if i in ("low", "medium")}
    assert len(graded) == 2
    assert MatrixCell("sad", "low", 0, None, None, None, None, float("nan")).name == "sad:low"
