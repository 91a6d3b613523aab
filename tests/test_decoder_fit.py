"""Data decoders on synthetic pairs with a known smooth VA -> expression map (dfm.decoder.synthetic)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dfm.decoder import KernelDecoder, MLPDecoder, TrainingReport, make_decoder
from dfm.decoder.synthetic import synthetic_pairs
from dfm.face.expressions import EXPRESSION_NAMES


@pytest.fixture(scope="module")
def data():
    return synthetic_pairs(12_000, n_videos=6, seed=7)


@pytest.fixture(scope="module")
def fast(data):
    return make_decoder("fast").fit(data.va, data.expr, video_ids=data.video_ids, frame_index=data.frame_index)


def test_fast_is_the_kernel_decoder_and_beats_the_baseline_near_the_noise_floor(data, fast):
    assert isinstance(fast, KernelDecoder)
    rep = fast.report_
    floor = data.noise_floor(fast.split_.val)
    assert rep.rmse_val < 0.4 * rep.rmse_val_baseline  # clearly better than the mean expression
    assert rep.rmse_val < 1.08 * floor  # close to the best possible (the true map's own error)
    assert rep.n_train + rep.n_val + rep.n_dropped == rep.n_pairs == data.va.shape[0]
    assert 0.03 <= rep.selected["bandwidth"] <= 0.5
    assert rep.epochs is None and rep.train_seconds > 0
    assert len(rep.history) == len(fast.bandwidths)


def test_report_is_json_with_per_coefficient_errors(fast):
    d = json.loads(fast.report_.to_json())
    assert list(d["per_coefficient_val_rmse"]) == list(EXPRESSION_NAMES)
    for key in ("rmse_train", "rmse_val", "rmse_val_baseline", "train_seconds", "n_pairs", "epochs", "split"):
        assert key in d
    again = TrainingReport.from_dict(d)
    assert again.rmse_val == pytest.approx(fast.report_.rmse_val)
    assert "baseline" in fast.report_.summary()


def test_predict_shape_range_and_smoothness(data, fast):
    t = np.linspace(0, 1, 4001)
    # a wiggly path across the plane, 0.0015 VA units per step
    path = np.stack([0.9 * np.cos(2 * np.pi * t) * np.cos(7 * t), 0.9 * np.sin(2 * np.pi * t)], 1).astype(np.float32)
    pred = fast.predict(path)
    assert pred.shape == (t.size, 53) and pred.dtype == np.float32
    assert pred.min() >= 0.0 and pred.max() <= 1.0
    step = np.linalg.norm(np.diff(path, axis=0), axis=1)
    slope = np.abs(np.diff(pred, axis=0)).max(axis=1) / step
    true_slope = np.abs(np.diff(data.true_map(path), axis=0)).max(axis=1) / step
    assert slope.max() < 2.0 * true_slope.max() + 1.0  # no jumps: as smooth as the truth, give or take
    assert fast.predict([0.1, 0.2]).shape == (1, 53)


def test_small_mlp_trains_with_early_stopping(data):
    m = MLPDecoder(hidden_sizes=(32, 32), batch_size=512, epochs=40, patience=3, num_threads=1)
    m.fit(data.va[:4000], data.expr[:4000], video_ids=data.video_ids[:4000], frame_index=data.frame_index[:4000])
    rep = m.report_
    assert rep.decoder == "mlp" and 1 <= rep.best_epoch <= rep.epochs <= 40
    assert len(rep.history) == rep.epochs
    assert rep.rmse_val < rep.rmse_val_baseline
    # the restored weights are those of the best epoch
    best = min(h["rmse_val"] for h in rep.history)
    assert rep.rmse_val == pytest.approx(best, rel=1e-4, abs=1e-6)


# -- the kernel decoder's fast paths against straightforward references ------------------------------
from dfm.decoder.grid import VAGrid  # noqa: E402
from dfm.decoder.kernel import inverse_first_row  # noqa: E402


def test_weighted_lookup_equals_the_spline_lookup_up_to_the_mirror_edges():
    grid = VAGrid(129)
    rng = np.random.default_rng(3)
    values = rng.normal(size=(129, 129, 3))
    edge = 2.5 * grid.spacing  # within the last nodes, where the mirror boundary acts
    va = np.concatenate([
        rng.uniform(-1, 1, (200, 2)),
        np.stack([rng.uniform(-1, -1 + edge, 50), rng.uniform(1 - edge, 1, 50)], 1),
        np.stack([rng.uniform(1 - edge, 1, 50), rng.uniform(-1, 1, 50)], 1),
        [[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.2, -1.3]],  # corners and outside (clipped)
    ])
    coeffs = grid.spline_coefficients(values)
    got = grid.weighted_lookup(grid.lookup_weights(va), values)
    assert np.abs(got - grid.lookup(coeffs, va)).max() <= 1e-10
    # points in one corner: the weights leave out the nodes too far to matter
    corner = rng.uniform(-1, -0.7, (100, 2))
    weights = grid.lookup_weights(corner)
    assert weights.u.shape[1] < grid.size and weights.v.shape[1] < grid.size
    got = grid.weighted_lookup(weights, values)
    assert np.abs(got - grid.lookup(coeffs, corner)).max() <= 1e-10


def test_inverse_first_row_by_cofactors_equals_the_inverse():
    rng = np.random.default_rng(4)
    m = rng.normal(size=(40, 30, 3, 3))
    a = m @ np.swapaxes(m, -1, -2) + 0.1 * np.eye(3)  # symmetric positive definite
    rows = inverse_first_row(a[..., 0, 0], a[..., 0, 1], a[..., 0, 2], a[..., 1, 1], a[..., 1, 2], a[..., 2, 2])
    want = np.linalg.inv(a)[..., 0, :]
    assert np.abs(np.stack(rows, -1) - want).max() <= 1e-9 * np.abs(want).max()


def _binned_data(grid, rng, box):
    """Pairs in a sub-rectangle of the VA square (few occupied grid rows/columns), binned."""
    (x0, x1), (y0, y1) = box
    va = np.stack([rng.uniform(x0, x1, 150), rng.uniform(y0, y1, 150)], 1)
    expr = rng.uniform(0, 1, (150, 4))
    counts, sums = grid.bin(va, expr)
    return counts, sums, expr.mean(axis=0)


@pytest.mark.parametrize("box", [((-0.6, 0.2), (0.1, 0.4)), ((0.5, 0.7), (-0.9, 0.8))])  # rows > cols, cols > rows
def test_convolve_many_equals_convolve(box):
    grid = VAGrid(33)
    counts, sums, _ = _binned_data(grid, np.random.default_rng(5), box)
    powers = ((0, 0), (1, 0), (0, 1), (2, 0), (0, 2), (1, 1))
    for arr in (counts, sums):
        for got, (px, py) in zip(grid.convolve_many(arr, 0.15, powers), powers):
            want = grid.convolve(arr, 0.15, px, py)
            assert got.shape == want.shape
            assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()
        rows, cols = slice(2, 30), slice(5, 19)  # only some output nodes
        for got, (px, py) in zip(grid.convolve_many(arr, 0.15, powers, rows, cols), powers):
            want = grid.convolve(arr, 0.15, px, py)[rows, cols]
            assert got.shape == want.shape
            assert np.abs(got - want).max() <= 1e-12 * np.abs(want).max()


@pytest.mark.parametrize("degree", [0, 1])
@pytest.mark.parametrize("box", [((-0.6, 0.2), (0.1, 0.4)), ((0.5, 0.7), (-0.9, 0.8))])
def test_node_estimate_equals_a_direct_weighted_least_squares(degree, box):
    grid = VAGrid(17)
    counts, sums, mean = _binned_data(grid, np.random.default_rng(6), box)
    dec = KernelDecoder(degree=degree, shrink=2.0, ridge=0.05)
    h = 0.2
    got = dec._node_estimate(grid, counts, sums, mean, h)
    # at each node q: weighted least squares over the binned nodes, design [1, u_x, u_y]
    g = grid.size
    idx = np.arange(g, dtype=np.float64)
    want = np.empty_like(got)
    for i in range(g):
        for j in range(g):
            ux = (idx[:, None] - i) / grid.sigma_nodes(h) + 0 * idx[None, :]
            uy = (idx[None, :] - j) / grid.sigma_nodes(h) + 0 * idx[:, None]
            k = np.exp(-0.5 * (ux**2 + uy**2)).ravel()
            w = counts.ravel() * k  # each node's pairs, weighted by the kernel
            x = np.stack([np.ones(g * g), ux.ravel(), uy.ravel()], 1)[:, : 1 + 2 * degree]
            a = x.T @ (w[:, None] * x)
            b = x.T @ (k[:, None] * sums.reshape(g * g, -1))  # sums already carry the pairs' counts
            a[0, 0] += dec.shrink
            b[0] += dec.shrink * mean
            if degree == 1:
                a[1:, 1:] += np.eye(2) * (dec.ridge * w.sum() + 1e-9)
            want[i, j] = np.linalg.solve(a, b)[0]
    assert np.abs(got - want).max() <= 1e-9


def test_kernel_fit_validates_every_bandwidth_as_the_full_spline_lookup_would(data):
    # pairs in one part of the plane: the validation uses only the nodes that reach them
    part = np.flatnonzero((data.va[:, 0] < -0.2) & (data.va[:, 1] > 0.1))[:3000]
    va, expr = data.va[part], data.expr[part]
    dec = KernelDecoder(refit=False).fit(va, expr, video_ids=data.video_ids[part], frame_index=data.frame_index[part])
    tr, vl = dec.split_.train, dec.split_.val
    grid = VAGrid(dec.grid_size)
    weights = grid.lookup_weights(va[vl])
    assert weights.u.shape[1] * weights.v.shape[1] < 0.7 * grid.size**2  # the restricted path is the one tested
    counts, sums = grid.bin(va[tr], expr[tr])
    mean = expr[tr].mean(axis=0).astype(np.float64)
    for row in dec.report_.history:
        full = dec._node_estimate(grid, counts, sums, mean, row["bandwidth"])
        pred = np.clip(grid.lookup(grid.spline_coefficients(full), va[vl]), 0, 1)
        assert row["rmse_val"] == pytest.approx(np.sqrt(np.mean((pred - expr[vl]) ** 2)), abs=1e-12)
    full = dec._node_estimate(grid, counts, sums, mean, dec.bandwidth_)
    np.testing.assert_array_equal(dec.node_values_, full.astype(np.float32))


@pytest.mark.parametrize("box", [((-0.6, 0.2), (0.1, 0.4)), ((0.5, 0.7), (-0.9, 0.8))])
def test_node_estimate_on_part_of_the_grid_equals_the_full_one_there(box):
    grid = VAGrid(33)
    counts, sums, mean = _binned_data(grid, np.random.default_rng(7), box)
    dec = KernelDecoder()
    rows, cols = slice(3, 20), slice(11, 31)
    full = dec._node_estimate(grid, counts, sums, mean, 0.1)
    part = dec._node_estimate(grid, counts, sums, mean, 0.1, rows, cols)
    assert part.shape == (17, 20, 4)
    assert np.abs(part - full[rows, cols]).max() <= 1e-12


def test_kernel_fit_validates_many_pairs_by_the_spline_lookup_with_the_same_result(data, monkeypatch):
    """Above WEIGHTED_LOOKUP_MAX_PAIRS validation pairs the fit validates by the spline lookup (cheaper
    there); both paths give the same history and choice."""
    from dfm.decoder import kernel

    va, expr = data.va[:8000], data.expr[:8000]
    fit = dict(video_ids=data.video_ids[:8000], frame_index=data.frame_index[:8000])
    spline = KernelDecoder(refit=False).fit(va, expr, **fit)
    assert len(spline.split_.val) > kernel.WEIGHTED_LOOKUP_MAX_PAIRS  # the spline path is the one taken
    monkeypatch.setattr(kernel, "WEIGHTED_LOOKUP_MAX_PAIRS", 10**9)
    weighted = KernelDecoder(refit=False).fit(va, expr, **fit)
    for a, b in zip(spline.report_.history, weighted.report_.history, strict=True):
        assert a["bandwidth"] == b["bandwidth"] and a["rmse_val"] == pytest.approx(b["rmse_val"], abs=1e-12)
    assert spline.bandwidth_ == weighted.bandwidth_
    np.testing.assert_array_equal(spline.node_values_, weighted.node_values_)
