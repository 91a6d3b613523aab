"""Fitting the ICT face model to tracked landmarks: one identity per video, pose and expression per frame.

Observation model (see track.py): landmark L_i ≈ s R X_i + t, with X_i the ICT model point bound to
MediaPipe vertex i (correspondence.py), X = mean + B·identity + E·expression. All solves work in model
units (cm): a frame's landmarks are mapped back with the current pose, Y = Rᵀ(L - t)/s, and the residual
X - Y is weighted by Q = RᵀWR, where W weights the camera axes (MediaPipe's depth is less reliable than
x, y, so it counts less). Because Q is a 3×3 per frame, every normal matrix is a 9-term combination
of matrices precomputed once per video — that is what makes a frame cost well under a millisecond.

Expression: bounded least squares (weights in [0, 1]) with
  - a prior pulling towards MediaPipe's own blendshape scores (same ARKit names),
  - an L1 sparsity term (weights are non-negative, so it is linear),
  - optional temporal smoothness between neighbouring frames,
solved for all frames at once by projected Gauss–Seidel (box_qp.py: a numba kernel, numpy fallback).
Identity: regularised linear least squares (the modes are std-scaled, so the prior is N(0, I)) over
a subset of frames spread across the video, alternated with pose and expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dfm.face.box_qp import solve_box_qp
from dfm.face.correspondence import Correspondence, similarity_transforms
from dfm.face.model import FaceModel


# Frames per block of the per-frame solves: memory stays that of one block, whatever the video's length.
FIT_CHUNK = 512


@dataclass(frozen=True)
class FitBasis:
    """The face model restricted to the 468 MediaPipe-bound points."""

    mean: np.ndarray  # (P, 3)
    identity: np.ndarray  # (K, P, 3)
    expression: np.ndarray  # (53, P, 3)
    point_weight: np.ndarray  # (P,)

    @property
    def pose_weight(self) -> np.ndarray:
        """Weights for the pose solve: points that expressions move little (nose bridge, forehead,
        temples) dominate, so pose and expression barely compete and alternation converges fast."""
        motion = np.sqrt((self.expression**2).sum(-1).max(0))  # (P,) largest displacement, cm
        return (self.point_weight / (1.0 + (motion / 0.25) ** 2)).astype(np.float32)

    @classmethod
    def from_model(cls, model: FaceModel, corr: Correspondence, n_identity: int = 100) -> "FitBasis":
        return cls(corr.points(model.neutral).astype(np.float32),
                   corr.basis(model.identity_deltas[:n_identity]),
                   corr.basis(model.expression_deltas), corr.weight.astype(np.float32))

    def points(self, identity: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """Model points for one identity and expressions (..., 53) -> (..., P, 3)."""
        base = self.mean + np.tensordot(identity, self.identity, 1)
        return base + np.tensordot(expression, self.expression, 1)


@dataclass
class FitConfig:
    """Weights of the fit (model units: cm²). Defaults were tuned on synthetic and real clips."""

    axis_weights: tuple[float, float, float] = (1.0, 1.0, 0.25)  # camera x, y, depth
    prior_weight: float = 0.5  # pull towards MediaPipe's blendshape scores (per coefficient)
    sparsity: float = 0.02  # L1 on expression weights
    ridge: float = 1e-3  # keeps the QP strictly convex
    temporal_weight: float = 0.0  # smoothness between neighbouring frames (0 = off)
    identity_reg: float = 0.01  # per identity frame, N(0, I) prior strength (weak: the joint solve needs freedom)
    n_identity: int = 100  # identity modes used
    identity_frames: int = 40  # frames used to estimate the identity
    outer_iterations: int = 6
    sweeps: int = 60  # projected Gauss–Seidel sweeps per expression solve


@dataclass
class FitResult:
    identity: np.ndarray  # (100,)
    rotation: np.ndarray  # (T, 3, 3)
    translation: np.ndarray  # (T, 3)
    scale: np.ndarray  # (T,)
    expression: np.ndarray  # (T, 53)
    residual: np.ndarray  # (T,) RMS image-plane error, pixels
    info: dict = field(default_factory=dict)


class FaceFitter:
    """Fits identity, pose and expression to landmark sequences (scikit-learn-like: config in the
    constructor; `fit` returns a FitResult). Landmarks: (T, P, 3) in the pixel frame."""

    def __init__(self, basis: FitBasis, config: FitConfig | None = None):
        self.basis = basis
        self.config = config or FitConfig()
        w = basis.point_weight
        self._gram_e = _pair_grams(basis.expression, basis.expression, w)  # (3, 3, 53, 53)
        self._gram_b = _pair_grams(basis.identity, basis.identity, w)  # (3, 3, K, K)
        self._gram_eb = _pair_grams(basis.expression, basis.identity, w)  # (3, 3, 53, K)

    # ------------------------------------------------------------------------------------- public

    def fit(self, landmarks: np.ndarray, prior: np.ndarray | None = None,
            identity: np.ndarray | None = None) -> FitResult:
        """Fit a whole sequence of valid frames. `identity` given = keep it fixed (e.g. a person's).

        Pose and expression are solved block by block (FIT_CHUNK frames plus, with temporal smoothing,
        a margin of `sweeps` frames on each side: the solver's time coupling reaches one frame per sweep,
        so every kept frame gets exactly the whole-sequence answer); only the identity sees all blocks.
        Without temporal smoothing frames are independent given the identity, so this is
        `identity_path` on the identity frames, then `fit_frames` on all (which chunks can share out).
        """
        L = np.asarray(landmarks)
        prior_c = None if prior is None else np.clip(np.asarray(prior, np.float64), 0, 1)
        if self.config.temporal_weight > 0:
            return self._fit_coupled(L, prior_c, identity)
        path = self.identity_path(L, prior, identity)
        return self.fit_frames(L, prior, path)

    def identity_path(self, landmarks: np.ndarray, prior: np.ndarray | None = None,
                      identity: np.ndarray | None = None) -> np.ndarray:
        """The identity each outer iteration of `fit` uses, (outer_iterations, n_identity): solved on the
        identity frames alone (spread over the sequence), which sees the same per-frame solves as the
        whole sequence when frames are independent (no temporal smoothing). The last row is the answer."""
        cfg = self.config
        if cfg.temporal_weight > 0:
            raise ValueError("identity_path needs independent frames (temporal_weight 0)")
        L = np.asarray(landmarks)
        n_id = self.basis.identity.shape[0]
        ident = np.zeros(n_id) if identity is None else np.asarray(identity, np.float64)[:n_id].copy()
        if identity is not None:
            return np.repeat(ident[None], cfg.outer_iterations, axis=0)
        frames = _spread(L.shape[0], cfg.identity_frames)
        Lid = np.asarray(L[frames], np.float64)
        prior_id = None if prior is None else np.clip(np.asarray(prior, np.float64)[frames], 0, 1)
        expr = np.zeros((len(frames), 53)) if prior_id is None else prior_id.copy()
        path = []
        for it in range(cfg.outer_iterations):
            path.append(ident)
            R, t, s, expr = self._pose_and_expression(Lid, ident, prior_id, expr)
            if it < cfg.outer_iterations - 1:
                ident = self.fit_identity(Lid, R, t, s, expr, prior_id)
        return np.stack(path)

    def fit_frames(self, landmarks: np.ndarray, prior: np.ndarray | None, path: np.ndarray) -> FitResult:
        """Pose and expression of each frame replaying the outer iterations with `path`'s identities (from
        `identity_path`): any slice of frames gets exactly the rows the whole sequence would."""
        L = np.asarray(landmarks)  # float32 is kept as it is: blocks are converted one at a time
        prior_c = None if prior is None else np.clip(np.asarray(prior, np.float64), 0, 1)
        expr = np.zeros((L.shape[0], 53)) if prior_c is None else prior_c.copy()
        for ident in path:
            R, t, s, expr = self._pose_and_expression(L, ident, prior_c, expr)
        return self._result(L, path[-1], expr)

    def _fit_coupled(self, L: np.ndarray, prior_c: np.ndarray | None, identity: np.ndarray | None) -> FitResult:
        cfg = self.config
        T = L.shape[0]
        n_id = self.basis.identity.shape[0]
        expr = np.zeros((T, 53)) if prior_c is None else prior_c.copy()
        ident = np.zeros(n_id) if identity is None else np.asarray(identity, np.float64)[:n_id].copy()
        id_frames = _spread(T, cfg.identity_frames)
        for it in range(cfg.outer_iterations):
            R, t, s, expr = self._pose_and_expression(L, ident, prior_c, expr)
            if identity is None and it < cfg.outer_iterations - 1:
                ident = self.fit_identity(np.asarray(L[id_frames], np.float64), R[id_frames], t[id_frames],
                                          s[id_frames], expr[id_frames], None if prior_c is None else prior_c[id_frames])
        return self._result(L, ident, expr)

    def _result(self, L: np.ndarray, ident: np.ndarray, expr: np.ndarray) -> FitResult:
        T = L.shape[0]
        R, t, s = np.empty((T, 3, 3)), np.empty((T, 3)), np.empty(T)
        residual = np.empty(T)
        for a, b, _, _ in self._blocks(T, halo=0):
            Lb = np.asarray(L[a:b], np.float64)
            R[a:b], t[a:b], s[a:b] = self.fit_pose(Lb, ident, expr[a:b])
            residual[a:b] = self.residual(Lb, R[a:b], t[a:b], s[a:b], ident, expr[a:b])
        full_id = np.zeros(100, np.float32)
        full_id[:len(ident)] = ident
        return FitResult(full_id, R.astype(np.float32), t.astype(np.float32), s.astype(np.float32),
                         expr.astype(np.float32), residual.astype(np.float32))

    def _blocks(self, T: int, halo: int):
        """(a, b, lo, hi): frames [a, b) are kept from a solve over [lo, hi) = [a, b) plus `halo` each side."""
        for a in range(0, T, FIT_CHUNK):
            b = min(T, a + FIT_CHUNK)
            yield a, b, max(0, a - halo), min(T, b + halo)

    def _pose_and_expression(self, L, identity, prior, expression):
        """One alternation step for every frame: pose from the current expression, then expression."""
        T = len(L)
        R, t, s, out = np.empty((T, 3, 3)), np.empty((T, 3)), np.empty(T), np.empty((T, 53))
        halo = self.config.sweeps if self.config.temporal_weight > 0 else 0
        for a, b, lo, hi in self._blocks(T, halo):
            Lb = np.asarray(L[lo:hi], np.float64)
            Rb, tb, sb = self.fit_pose(Lb, identity, expression[lo:hi])
            eb = self.fit_expression(Lb, Rb, tb, sb, identity, None if prior is None else prior[lo:hi],
                                     expression[lo:hi])
            keep = slice(a - lo, b - lo)
            R[a:b], t[a:b], s[a:b], out[a:b] = Rb[keep], tb[keep], sb[keep], eb[keep]
        return R, t, s, out

    def fit_pose(self, L: np.ndarray, identity: np.ndarray, expression: np.ndarray):
        """Per-frame similarity (s, R, t) from model points to landmarks (weighted Umeyama)."""
        s, R, t = similarity_transforms(self.basis.points(identity, expression), L, self.basis.pose_weight)
        return R, t, s

    def fit_expression(self, L, R, t, s, identity, prior, init) -> np.ndarray:
        """Bounded least squares for all frames at once (projected Gauss–Seidel, Jacobi across frames)."""
        Q, D = self._model_space(L, R, t, s)
        D = D - np.tensordot(identity, self.basis.identity, 1)  # what the expression must explain
        H, g = self._expression_system(Q, D, prior)
        return solve_box_qp(H, g, np.clip(init, 0, 1), self.config.sweeps, self.config.temporal_weight)

    def fit_identity(self, L, R, t, s, expression, prior) -> np.ndarray:
        """Identity jointly with the frames' expressions (on their current active sets), by eliminating
        the free expression weights (Schur complement). Solving identity with expressions held fixed
        would let the identity soak up the average expression, and vice versa."""
        cfg = self.config
        Q, D = self._model_space(L, R, t, s)
        B, w = self.basis.identity, self.basis.point_weight
        H_ee, g_e = self._expression_system(Q, D, prior)
        H_bb = _combine(Q.sum(0, keepdims=True), self._gram_b)[0]
        H_eb = _combine(Q, self._gram_eb)
        g_b = _project(Q, D, w, B).sum(0)
        S = H_bb + cfg.identity_reg * len(L) * np.eye(B.shape[0])
        r = g_b.copy()
        for f in range(len(L)):
            free = (expression[f] > 1e-6) & (expression[f] < 1 - 1e-6)
            fixed = ~free
            e_fixed = expression[f, fixed]
            r -= H_eb[f, fixed].T @ e_fixed
            if free.any():
                rhs = g_e[f, free] - H_ee[f][np.ix_(free, fixed)] @ e_fixed
                Hff = H_ee[f][np.ix_(free, free)]
                HfB = H_eb[f, free]
                S -= HfB.T @ np.linalg.solve(Hff, HfB)
                r -= HfB.T @ np.linalg.solve(Hff, rhs)
        return np.linalg.solve(S, r)

    def _model_space(self, L, R, t, s):
        """Axis weighting Q (T,3,3) and landmarks minus the mean face in model space D (T,P,3)."""
        return _axis_quadratic(R, self.config.axis_weights), _to_model(L, R, t, s) - self.basis.mean

    def _expression_system(self, Q, D, prior):
        """Normal equations H e = g of the expression problem (before bounds), per frame."""
        cfg = self.config
        H = _combine(Q, self._gram_e)
        g = _project(Q, D, self.basis.point_weight, self.basis.expression)
        H = H + (cfg.ridge + (cfg.prior_weight if prior is not None else 0.0)) * np.eye(53)
        if prior is not None:
            g = g + cfg.prior_weight * prior
        return H, g - cfg.sparsity

    def residual(self, L, R, t, s, identity, expression) -> np.ndarray:
        X = self.basis.points(identity, expression)
        P = s[:, None, None] * (X @ np.swapaxes(R, 1, 2)) + t[:, None, :]  # R X_p per frame (a batched GEMM)
        return np.sqrt(((P[..., :2] - L[..., :2]) ** 2).sum(-1).mean(-1))


def _pair_grams(U: np.ndarray, V: np.ndarray, w: np.ndarray) -> np.ndarray:
    """G[a, b] = Σ_p w_p U[:, p, a] V[:, p, b]ᵀ: (3, 3, J, K) for bases U (J,P,3), V (K,P,3), as one
    matrix product (3J, P) x (P, 3K) (a three-operand einsum is ~20x slower: a worker pays this at setup)."""
    J, P, _ = U.shape
    K = V.shape[0]
    Uw = (U.astype(np.float64) * np.asarray(w, np.float64)[None, :, None]).transpose(2, 0, 1).reshape(3 * J, P)
    Vt = V.astype(np.float64).transpose(2, 0, 1).reshape(3 * K, P)
    return np.ascontiguousarray((Uw @ Vt.T).reshape(3, J, 3, K).transpose(0, 2, 1, 3))


def _combine(Q: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """Σ_ab Q[t,a,b] gram[a,b] for every frame: (T,3,3) x (3,3,J,K) -> (T,J,K), as one matrix product."""
    T = Q.shape[0]
    return (Q.reshape(T, 9) @ gram.reshape(9, -1)).reshape((T,) + gram.shape[2:])


def _project(Q: np.ndarray, D: np.ndarray, w: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Σ_p w_p basis[:, p]ᵀ Q_t D[t, p] for every frame: -> (T, K), as one matrix product."""
    Z = (D @ np.swapaxes(Q, 1, 2)) * w[None, :, None]  # Q_t D[t, p]; batched GEMMs beat einsum ~10x here
    return Z.reshape(len(Z), -1) @ basis.reshape(len(basis), -1).T.astype(np.float64)


def _axis_quadratic(R: np.ndarray, axis_weights) -> np.ndarray:
    """Q = Rᵀ diag(w) R per frame: the camera-axis weighting expressed in model coordinates."""
    return np.einsum("tki,k,tkj->tij", R, np.asarray(axis_weights, np.float64), R)


def _to_model(L, R, t, s) -> np.ndarray:
    return ((L - t[:, None, :]) @ R) / s[:, None, None]  # Rᵀ(L - t)/s per point


def _spread(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))
