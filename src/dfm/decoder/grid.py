"""A regular grid over the valence-arousal square [-1, 1]^2: linear binning, Gaussian smoothing, smooth lookup.

Binned kernel estimation (Wand 1994, "Fast computation of multivariate kernel estimators", JCGS 3(4);
Fan & Marron 1994): each pair spreads its weight over the 4 surrounding grid nodes (linear binning),
a Gaussian kernel is then a separable convolution of the node sums, and the estimate at a query point is
a cubic-spline interpolation of the node values (C2, so decoded expressions vary smoothly with VA).
Cost: O(N) to bin, O(G^2) per bandwidth, independent of N.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage, sparse

LO, HI = -1.0, 1.0


@dataclass(frozen=True)
class LookupWeights:
    """VAGrid.lookup_weights: per point, weights over the grid rows `rows` (u) and columns `cols` (v)."""

    u: np.ndarray  # (N, len(rows))
    v: np.ndarray  # (N, len(cols))
    rows: slice
    cols: slice


class VAGrid:
    def __init__(self, size: int = 129):
        if size < 8:
            raise ValueError("grid size must be >= 8")
        self.size = int(size)
        self.spacing = (HI - LO) / (self.size - 1)
        self._kernels: dict[tuple[float, int], np.ndarray] = {}  # (bandwidth, power) -> kernel_matrix

    def _positions(self, va: np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(va, np.float64) - LO) / self.spacing, 0.0, self.size - 1.0)

    def binning_matrix(self, va: np.ndarray) -> sparse.csr_matrix:
        """(G*G, N) sparse matrix of linear-binning weights (each column sums to 1)."""
        g = self.size
        p = self._positions(va)
        i0 = np.clip(np.floor(p).astype(np.int64), 0, g - 2)
        f = p - i0
        n = p.shape[0]
        cols = np.arange(n)
        rows, vals = [], []
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
            wx = f[:, 0] if dx else 1.0 - f[:, 0]
            wy = f[:, 1] if dy else 1.0 - f[:, 1]
            rows.append((i0[:, 0] + dx) * g + (i0[:, 1] + dy))
            vals.append(wx * wy)
        return sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.tile(cols, 4))), shape=(g * g, n)
        )

    def bin(self, va: np.ndarray, values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Node counts (G, G) and, if values (N, C) are given, node sums (G, G, C)."""
        w = self.binning_matrix(va)
        g = self.size
        counts = np.asarray(w.sum(axis=1)).reshape(g, g)
        sums = None
        if values is not None:
            sums = np.asarray(w @ np.asarray(values, np.float64)).reshape(g, g, -1)
        return counts, sums

    def sigma_nodes(self, bandwidth: float) -> float:
        return float(bandwidth) / self.spacing

    def kernel_matrix(self, bandwidth: float, power: int = 0) -> np.ndarray:
        """(G, G) matrix M[i, m] = u^power exp(-u^2 / 2), u = (node m - node i) / bandwidth.

        The Gaussian is not normalised (its peak is 1), so M @ counts is an effective number of pairs.
        Computed once per (bandwidth, power) on this grid (read-only: it is shared between calls).
        """
        key = (float(bandwidth), int(power))
        m = self._kernels.get(key)
        if m is None:
            idx = np.arange(self.size, dtype=np.float64)
            u = (idx[None, :] - idx[:, None]) / self.sigma_nodes(bandwidth)
            m = u**power * np.exp(-0.5 * u * u)
            m.setflags(write=False)
            self._kernels[key] = m
        return m

    def convolve(self, arr: np.ndarray, bandwidth: float, px: int = 0, py: int = 0) -> np.ndarray:
        """sum_m,n Kx[i, m] Ky[j, n] arr[m, n, ...] with Kx, Ky = kernel_matrix(bandwidth, px / py).

        Dense matrix products (G = 129): faster than a long 1-D filter, and exact (no truncation).
        """
        a = np.asarray(arr, np.float64)
        g = self.size
        out = (self.kernel_matrix(bandwidth, px) @ a.reshape(g, -1)).reshape(a.shape)
        ky = self.kernel_matrix(bandwidth, py)
        if a.ndim == 2:
            return out @ ky.T
        # axis 1: one (G, G) @ (G, G * C) product on the transposed array
        t = np.ascontiguousarray(out.transpose(1, 0, 2)).reshape(g, -1)
        return (ky @ t).reshape(g, g, -1).transpose(1, 0, 2)

    def convolve_many(
        self,
        arr: np.ndarray,
        bandwidth: float,
        powers: Sequence[tuple[int, int]],
        rows: slice = slice(None),
        cols: slice = slice(None),
    ) -> list[np.ndarray]:
        """[convolve(arr, bandwidth, px, py)[rows, cols] for px, py in powers], the same sums with less work.

        Binned data occupies few grid rows and columns, so only those enter the products (the others
        add zeros); each first-axis product serves every moment that shares its power, and the
        second-axis kernels are stacked into one product. The axis with more occupied lines goes first,
        so the second (larger) products run over the fewer. Only the output nodes rows x cols are
        computed. Equal to `convolve` up to rounding. The results are fresh arrays (callers may modify
        them), not always C-contiguous.
        """
        a = np.asarray(arr, np.float64)
        g = self.size
        flat = a.reshape(g, g, -1)
        occupied = np.any(flat != 0.0, axis=2)
        data_rows = np.flatnonzero(occupied.any(axis=1))
        data_cols = np.flatnonzero(occupied.any(axis=0))
        out_rows, out_cols = np.arange(g)[rows], np.arange(g)[cols]
        shape = (out_rows.size, out_cols.size) + a.shape[2:]
        if data_cols.size > data_rows.size:
            swapped = self._convolve_occupied(flat.swapaxes(0, 1), (data_cols, data_rows), (out_cols, out_rows),
                                              bandwidth, [(py, px) for px, py in powers])
            return [m.swapaxes(0, 1).reshape(shape) for m in swapped]
        occupied_out = self._convolve_occupied(flat, (data_rows, data_cols), (out_rows, out_cols), bandwidth, powers)
        return [m.reshape(shape) for m in occupied_out]

    def _convolve_occupied(self, flat, data, out, bandwidth, powers) -> list[np.ndarray]:
        """convolve_many on (G, G, C) with data only in the lines data = (rows, cols), output nodes
        out = (rows, cols), axis 0 first: (len(out rows), len(out cols), C) each."""
        (rows, cols), (out_rows, out_cols) = data, out
        compact = flat[np.ix_(rows, cols)].reshape(rows.size, -1)  # (r, c * C)
        pxs = sorted({px for px, _ in powers})
        kx = np.concatenate([self.kernel_matrix(bandwidth, px)[np.ix_(out_rows, rows)] for px in pxs])
        first = (kx @ compact).reshape(len(pxs), out_rows.size, cols.size, -1)  # axis 0 done: (., R, c, C)
        result: dict[tuple[int, int], np.ndarray] = {}
        for k, px in enumerate(pxs):
            pys = sorted({py for p, py in powers if p == px})
            ky = np.stack([self.kernel_matrix(bandwidth, py)[np.ix_(out_cols, cols)] for py in pys])[:, None]
            second = np.matmul(ky, first[k])  # len(pys) R products (S, c) @ (c, C): (len(pys), R, S, C)
            for m, py in enumerate(pys):
                result[(px, py)] = second[m]
        return [result[(int(px), int(py))] for px, py in powers]

    def effective_count(self, counts: np.ndarray, bandwidth: float) -> np.ndarray:
        """sum_i exp(-|q - va_i|^2 / (2 h^2)) at every node q: the number of pairs 'near' each node."""
        return self.convolve(counts, bandwidth)

    @staticmethod
    def spline_coefficients(values: np.ndarray) -> np.ndarray:
        """Cubic B-spline coefficients (mirror boundary) of node values (G, G) or (G, G, C), for `lookup`."""
        v = np.asarray(values, np.float64)
        # spline_filter1d works along one axis of an n-d array: all channels at once
        out = ndimage.spline_filter1d(v, order=3, axis=0, mode="mirror")
        return ndimage.spline_filter1d(out, order=3, axis=1, mode="mirror")

    def lookup_weights(self, va: np.ndarray) -> LookupWeights:
        """The spline lookup at fixed points as weights: lookup(spline_coefficients(v), va)[n] = U[n] @ v @ V[n].

        The prefilter (F, applied along each axis) and the cubic B-spline lookup (weights B) are linear
        and separable, so a point's value is (B_x F) v (B_y F)^T. F is the prefilter of the identity and
        B the lookup of unit impulses, both by scipy itself, so the boundary handling (mirror) is theirs.
        The weights decay by 2 - sqrt(3) per node away from a point; nodes where every point's weight is
        below 1e-17 of the largest are left out (a rounding-level change that spares work when the
        points lie in a part of the plane).
        """
        g = self.size
        f = ndimage.spline_filter1d(np.eye(g), order=3, axis=0, mode="mirror")  # coeffs = f @ values
        p = self._positions(va)
        eye = np.eye(g)
        out = []
        for axis in (0, 1):
            b = np.stack(
                [ndimage.map_coordinates(eye[i], p[None, :, axis], order=3, mode="mirror", prefilter=False)
                 for i in range(g)],
                axis=1,
            )  # (N, G): B-spline weight of coefficient i at each point
            w = b @ f
            peak = np.abs(w).max(axis=0, initial=0.0)
            used = np.flatnonzero(peak > 1e-17 * peak.max(initial=0.0))
            span = slice(int(used[0]), int(used[-1]) + 1) if used.size else slice(0, 0)
            out.append((np.ascontiguousarray(w[:, span]), span))
        (u, rows), (v, cols) = out
        return LookupWeights(u, v, rows, cols)

    @staticmethod
    def weighted_lookup(weights: LookupWeights, values: np.ndarray) -> np.ndarray:
        """Spline value at the points of `lookup_weights`: (N, C), from the node values (G, G, C) or only
        those the weights use, values[weights.rows, weights.cols]."""
        u, v = weights.u, weights.v
        vals = np.asarray(values, np.float64)
        if vals.shape[:2] != (u.shape[1], v.shape[1]):
            vals = vals[weights.rows, weights.cols]
        r, c, ch = vals.shape
        a = (u @ vals.reshape(r, c * ch)).reshape(u.shape[0], c, ch)  # axis 0 contracted: (N, c, C)
        return np.einsum("nj,njc->nc", v, a)

    def lookup(self, coeffs: np.ndarray, va: np.ndarray) -> np.ndarray:
        """Cubic B-spline value at query points: (N,) for (G, G) coefficients, (N, C) for (G, G, C)."""
        p = self._positions(va).T  # (2, N)
        if coeffs.ndim == 2:
            return ndimage.map_coordinates(coeffs, p, order=3, mode="mirror", prefilter=False)
        out = np.empty((p.shape[1], coeffs.shape[-1]), np.float64)
        for c in range(coeffs.shape[-1]):
            out[:, c] = ndimage.map_coordinates(coeffs[..., c], p, order=3, mode="mirror", prefilter=False)
        return out
