"""The inner-mouth shape and its 2-D transfer (dfm.render.mouth) on coarse, tilted grids.

The regression seen by eye: a surprise or disgust edit on a 256-px MEAD face showed split "fang" teeth.
The target's opening is sampled on the flow's work grid (2 px steps there); with 24 column bins over a
40-px mouth a tilted axis split grid columns between bins, so some bins saw only part of the opening's
height, and the transfer stretched the source's teeth into spikes in those columns.
"""

from __future__ import annotations

import numpy as np
import pytest

from dfm.render.mouth import MouthShape, grid_spacing, span_map


def ellipse(step: float, tilt_deg: float, a: float = 20.0, b: float = 5.0, centre=(50.0, 50.0)):
    """Grid points (spacing `step`) inside a tilted ellipse (half-axes a along the mouth, b across), and u."""
    xs, ys = np.meshgrid(np.arange(0, 100, step) + step / 2, np.arange(0, 100, step) + step / 2)
    p = np.stack([xs.ravel(), ys.ravel()], 1) - np.asarray(centre)
    t = np.radians(tilt_deg)
    u = np.array([np.cos(t), np.sin(t)])
    v = np.array([-u[1], u[0]])
    inside = ((p @ u) / a) ** 2 + ((p @ v) / b) ** 2 <= 1.0
    return p[inside] + np.asarray(centre), u


@pytest.mark.parametrize("step", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("tilt", [0.0, 3.0, 8.0])
def test_opening_height_follows_the_true_shape_on_coarse_tilted_grids(step: float, tilt: float) -> None:
    pts, u = ellipse(step, tilt)
    shape = MouthShape.from_points(pts, u, spacing=step)
    alpha = (np.arange(len(shape.top)) + 0.5) / len(shape.top)
    true = 10.0 * np.sqrt(np.clip(1.0 - (2.0 * alpha - 1.0) ** 2, 0.0, 1.0))
    mid = (alpha > 0.2) & (alpha < 0.8)
    h = shape.bottom - shape.top
    assert np.max(np.abs(h[mid] - true[mid]) / true[mid]) < 0.3, (h[mid], true[mid])
    assert abs(shape.height - 2 * 5.0 * np.pi / 4) < 0.25 * 10.0  # mean height of an ellipse of height 10
    assert abs(shape.width - 40.0) < 4.0


def test_grid_spacing_is_estimated() -> None:
    pts, _ = ellipse(2.0, 5.0)
    assert grid_spacing(pts) == pytest.approx(2.0, rel=0.05)


def test_transfer_from_a_fine_source_has_no_column_spikes() -> None:
    """Target on a coarse tilted grid, source on a fine one: every target column maps onto the source's
    opening with about the same vertical scale (a spike is one column stretched far more than the rest)."""
    target, u_t = ellipse(2.0, 4.0, a=20.0, b=5.0)
    source, u_s = ellipse(1.0, 0.0, a=21.0, b=6.5)
    t_shape = MouthShape.from_points(target, u_t, spacing=2.0)
    s_shape = MouthShape.from_points(source, u_s, spacing=1.0)
    # per target column bin: the vertical scale from target to source of a short segment in its middle
    alpha = np.linspace(0.25, 0.75, 21)
    scales = []
    for a in alpha:
        x = t_shape.a_lo + a * t_shape.width
        k = a * (len(t_shape.top) - 1)
        idx = np.arange(len(t_shape.top))
        mid = 0.5 * (np.interp(k, idx, t_shape.top) + np.interp(k, idx, t_shape.bottom))
        pts = t_shape.origin + np.array([x * t_shape.u + (mid + d) * t_shape.v for d in (-1.0, 1.0)])
        src = span_map(t_shape, pts, s_shape)
        scales.append(np.linalg.norm(src[1] - src[0]) / 2.0)
    scales = np.asarray(scales)
    assert scales.max() / scales.min() < 1.5, scales


def test_a_taller_opening_keeps_the_teeth_at_their_size() -> None:
    """Disgust's raised upper lip and lowered lower lip open the mouth far more than any source: the teeth
    keep their height (upper under the upper lip, lower on the lower lip) and the gap between widens."""
    from dfm.render.mouth import span_map_teeth

    source_pts, u = ellipse(1.0, 0.0, a=20.0, b=4.0)
    tall_pts, _ = ellipse(1.0, 0.0, a=20.0, b=12.0)
    source = MouthShape.from_points(source_pts, u, spacing=1.0)
    tall = MouthShape.from_points(tall_pts, u, spacing=1.0)
    # a column through the middle of the mouth, top to bottom of the tall opening
    ys = np.linspace(50.0 - 11.0, 50.0 + 11.0, 45)
    col = np.stack([np.full_like(ys, 50.0), ys], 1)
    pos, gap = span_map_teeth(tall, col, source, source_per_target=1.0)
    near_top = ys < 50.0 - 11.0 + 3.0
    step = np.diff(pos[near_top, 1])
    assert np.allclose(step, ys[1] - ys[0], atol=0.15)  # 1:1 near the upper lip: the teeth are not stretched
    assert gap[np.abs(ys - 50.0) < 3.0].min() == pytest.approx(1.0)  # the middle is the widened gap
    assert gap[near_top].max() == 0.0
    # an opening the source's size maps as span_map does, no gap
    same_pos, same_gap = span_map_teeth(source, col[np.abs(ys - 50.0) < 3.5], source, 1.0)
    assert not same_gap.any()
    assert np.allclose(same_pos, span_map(source, col[np.abs(ys - 50.0) < 3.5], source), atol=1e-4)
