"""The face fit's bounded quadratic programs: min ½xᵀH_t x - g_tᵀx over 0 ≤ x ≤ 1, for T frames at once.

Projected Gauss–Seidel over the coordinates, Jacobi in time for the optional temporal coupling: in a
sweep, coordinate j of every frame is updated from the values its neighbouring frames had before that
coordinate's update. Two interchangeable back ends run exactly this iteration: a numba kernel (used when
numba imports and compiles; compiled once and cached on disk, so a fresh process only loads it) and the
numpy fallback (vectorised across frames, one small numpy call per coordinate and sweep: ~10x slower on
the fit's 53 coordinates). They agree to float rounding (summation order). `DFM_FIT_BACKEND=numpy|numba`
or the `backend` argument forces one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dfm.compiled import CompiledKernels

__all__ = ["solve_box_qp", "available_backends"]

# Frames whose sweeps the kernel interleaves (without temporal coupling): 8 frames' H is ~180 kB, in L2.
_FRAME_BLOCK = 8


def solve_box_qp(H: np.ndarray, g: np.ndarray, x0: np.ndarray, sweeps: int, temporal: float = 0.0,
                 backend: str | None = None) -> np.ndarray:
    """min_x ½xᵀH_t x - g_tᵀx (+ temporal/2 Σ||x_t - x_{t±1}||²) s.t. 0 ≤ x ≤ 1, for T problems at once.

    H (T, n, n), g (T, n), x0 (T, n) the start; `sweeps` passes over the coordinates. Projected
    Gauss–Seidel over coordinates, vectorised across the T problems (Jacobi in time for the temporal
    coupling, with the first and last frames' neighbours replicated). Converges for positive definite H.
    Returns float64 (T, n).
    """
    if KERNELS.choose(backend) == "numba":
        H64 = np.ascontiguousarray(H, np.float64)
        g64 = np.ascontiguousarray(g, np.float64)
        x = np.array(x0, np.float64, order="C", copy=True)
        KERNELS.get()(H64, g64, x, int(sweeps), float(temporal))
        return x
    return _solve_numpy(H, g, x0, sweeps, temporal)


def _solve_numpy(H: np.ndarray, g: np.ndarray, x0: np.ndarray, sweeps: int, temporal: float) -> np.ndarray:
    x = x0.astype(np.float64, copy=True)
    T, n = g.shape
    diag = np.einsum("tjj->tj", H) + (2.0 * temporal if temporal > 0 else 0.0)
    for _ in range(sweeps):
        for j in range(n):
            r = g[:, j] - np.einsum("tk,tk->t", H[:, j, :], x) + H[:, j, j] * x[:, j]
            if temporal > 0:
                prev = np.concatenate([x[:1, j], x[:-1, j]])
                nxt = np.concatenate([x[1:, j], x[-1:, j]])
                r = r + temporal * (prev + nxt)
            x[:, j] = np.clip(r / diag[:, j], 0.0, 1.0)
    return x


def _kernel(H, g, x, sweeps, temporal):
    """numba kernel: the numpy iteration, in place on x (T, n). Without temporal coupling the frames are
    independent, so a block of frames runs all its sweeps while its H stays in cache, the frames of the
    block interleaved: one frame's coordinate update waits on its previous one, another frame's does not."""
    T, n = g.shape
    if temporal > 0:
        for _ in range(sweeps):
            for j in range(n):
                before = x[0, j]  # coordinate j of frame t-1 before this update (replicated at t = 0)
                for t in range(T):
                    acc = 0.0
                    for k in range(n):
                        acc += H[t, j, k] * x[t, k]
                    own = x[t, j]
                    after = x[t + 1, j] if t + 1 < T else own
                    r = g[t, j] - acc + H[t, j, j] * own + temporal * (before + after)
                    v = r / (H[t, j, j] + 2.0 * temporal)
                    x[t, j] = 0.0 if v < 0.0 else (1.0 if v > 1.0 else v)  # np.clip: NaN passes through
                    before = own
    else:
        for t0 in range(0, T, _FRAME_BLOCK):
            t1 = min(T, t0 + _FRAME_BLOCK)
            for _ in range(sweeps):
                for j in range(n):
                    for t in range(t0, t1):
                        acc = 0.0
                        for k in range(n):
                            acc += H[t, j, k] * x[t, k]
                        r = g[t, j] - acc + H[t, j, j] * x[t, j]
                        v = r / H[t, j, j]
                        x[t, j] = 0.0 if v < 0.0 else (1.0 if v > 1.0 else v)


# --------------------------------------------------------------------------------------- back ends

def _compile() -> Any:
    """The kernel compiled (cached on disk by numba) and run once on a tiny problem, so a failure to
    compile shows here (and falls back) rather than in the middle of a fit."""
    import numba

    # reassoc only: the dot products vectorise (another summation order), NaN and inf stay IEEE.
    kernel = numba.njit(cache=True, nogil=True, fastmath={"reassoc"}, boundscheck=False)(_kernel)
    H, g = np.eye(2)[None].repeat(2, 0), np.full((2, 2), 0.5)
    for temporal in (0.0, 1.0):
        kernel(H, g, np.zeros((2, 2)), 1, temporal)
    return kernel


KERNELS = CompiledKernels("fit", "DFM_FIT_BACKEND", _compile)


def available_backends() -> tuple[str, ...]:
    """The back ends that work here: always 'numpy', and 'numba' when it imports and compiles."""
    return KERNELS.available()
