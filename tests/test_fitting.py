"""Correspondence and fitting on synthetic landmarks with known pose, identity and expression."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from dfm.face.correspondence import (MEDIAPIPE_68, build_correspondence, load_or_build_correspondence, read_canonical_mesh,
                                     similarity_transform, similarity_transforms)
from dfm.face import box_qp
from dfm.face.fitting import FaceFitter, FitBasis, FitConfig, _pair_grams, solve_box_qp
from dfm.face.model import FaceModel
from dfm.face.track import FRONTAL

T = 40


@pytest.fixture(scope="module")
def model(assets_dir):
    return FaceModel.load(assets_dir / "ict_facekit" / "ict_face_model.npz")


@pytest.fixture(scope="module")
def corr(model, assets_dir):
    return build_correspondence(model, *read_canonical_mesh(assets_dir / "mediapipe" / "canonical_face_model.obj"))


@pytest.fixture(scope="module")
def basis(model, corr):
    return FitBasis.from_model(model, corr)


def random_expressions(rng, n, active=4):
    E = np.zeros((n, 53))
    for f in range(n):
        k = rng.choice(53, active, replace=False)
        E[f, k] = rng.uniform(0.2, 0.9, active)
    return E


def random_poses(rng, n):
    """Yaw ±45°, pitch ±25°, roll ±20°, scale 10..20 px/cm, anywhere in a 640x360 frame."""
    ang = np.stack([rng.uniform(-45, 45, n), rng.uniform(-25, 25, n), rng.uniform(-20, 20, n)], 1)
    R = np.array([FRONTAL @ Rotation.from_euler("yxz", a, degrees=True).as_matrix() for a in ang])
    s = rng.uniform(10, 20, n)
    t = np.stack([rng.uniform(200, 440, n), rng.uniform(150, 210, n), rng.uniform(-10, 10, n)], 1)
    return R, s, t


def render_landmarks(basis, identity, E, R, s, t, rng, noise=0.005):
    X = basis.points(identity, E)
    L = s[:, None, None] * np.einsum("tij,tpj->tpi", R, X) + t[:, None]
    size = np.ptp(L[:, :, :2], axis=1).max(1)  # face size in pixels
    return L + rng.normal(size=L.shape) * noise * size[:, None, None]


def rotation_errors_deg(R_fit, R_true):
    return np.array([np.degrees(Rotation.from_matrix(a @ b.T).magnitude()) for a, b in zip(R_fit, R_true)])


def test_correspondence_binds_every_mediapipe_vertex_close_to_the_ict_face(corr, model):
    assert corr.vertex_ids.shape == (468, 3) and np.allclose(corr.bary.sum(1), 1, atol=1e-5)
    assert (corr.bary >= -1e-6).all()
    assert np.median(corr.distance) < 0.15  # cm
    face = model.region_vertices("Face")
    assert np.isin(corr.vertex_ids, face).all()
    # Semantic check: MediaPipe's nose tip / eye corners / mouth corners land near ICT's own landmarks.
    pts = corr.points(model.neutral)
    for k68 in (30, 36, 45, 48, 54):
        d = np.linalg.norm(pts[MEDIAPIPE_68[k68]] - model.neutral[model.landmarks68[k68]])
        assert d < 0.6, (k68, d)


def test_correspondence_is_cached(model, assets_dir, tmp_path):
    args = (model, assets_dir / "ict_facekit" / "ict_face_model.npz", assets_dir / "mediapipe" / "canonical_face_model.obj", tmp_path)
    a = load_or_build_correspondence(*args)
    assert len(list(tmp_path.glob("mp_ict_correspondence_*.npz"))) == 1
    b = load_or_build_correspondence(*args)
    np.testing.assert_array_equal(a.vertex_ids, b.vertex_ids)


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(50, 3))
    R = Rotation.from_euler("xyz", [10, -30, 5], degrees=True).as_matrix()
    dst = 3.0 * src @ R.T + [1, 2, 3]
    s, R_fit, t = similarity_transform(src, dst)
    assert s == pytest.approx(3.0) and np.allclose(R_fit, R) and np.allclose(t, [1, 2, 3])


def test_similarity_transforms_of_many_frames_equal_the_one_frame_solve():
    """The batched pose solve of the fit gives each frame exactly what similarity_transform gives it,
    a mirrored frame (the determinant correction) included."""
    rng = np.random.default_rng(6)
    src = rng.normal(size=(5, 30, 3))
    R = Rotation.random(5, random_state=6).as_matrix()
    dst = 2.0 * np.einsum("tij,tpj->tpi", R, src) + rng.normal(size=(5, 1, 3)) + 0.05 * rng.normal(size=src.shape)
    dst[1, :, 2] *= -1
    w = rng.uniform(0.1, 1.0, 30).astype(np.float32)
    s, R_fit, t = similarity_transforms(src, dst, w)
    for f in range(5):
        s1, R1, t1 = similarity_transform(src[f], dst[f], w)
        assert s[f] == pytest.approx(s1, rel=1e-12)
        np.testing.assert_allclose(R_fit[f], R1, atol=1e-12)
        np.testing.assert_allclose(t[f], t1, atol=1e-12)
    assert np.allclose(np.linalg.det(R_fit), 1.0) and np.allclose(R_fit[0], R[0], atol=0.05)


def test_box_qp_matches_a_reference_solver():
    from scipy.optimize import lsq_linear

    rng = np.random.default_rng(2)
    A = rng.normal(size=(3, 80, 10))
    b = rng.normal(size=(3, 80))
    H = np.einsum("tpi,tpj->tij", A, A)
    g = np.einsum("tpi,tp->ti", A, b)
    x = solve_box_qp(H, g, np.zeros((3, 10)), sweeps=500)
    for k in range(3):
        ref = lsq_linear(A[k], b[k], bounds=(0, 1)).x
        np.testing.assert_allclose(x[k], ref, atol=1e-4)


def random_box_qp(rng, T=11, n=53):
    """Positive definite problems whose unconstrained optimum lies partly outside [0, 1]: active bounds."""
    A = rng.normal(size=(T, 80, n))
    H = np.einsum("tpi,tpj->tij", A, A) / 80 + 0.05 * np.eye(n)
    g = np.einsum("tij,tj->ti", H, rng.uniform(-0.6, 1.6, (T, n)))
    return H, g, rng.uniform(0, 1, (T, n))


@pytest.mark.parametrize("temporal", [0.0, 0.7])
def test_box_qp_numba_kernel_runs_the_numpy_iteration(temporal):
    """Both back ends, forced: the same iterate after a few sweeps (not yet converged, so a different
    iteration order or time coupling would show) and at convergence, with coordinates at 0 and at 1;
    11 frames span more than one of the kernel's frame blocks."""
    if "numba" not in box_qp.available_backends():
        pytest.skip("numba does not compile here")
    rng = np.random.default_rng(12)
    H, g, x0 = random_box_qp(rng)
    for sweeps in (3, 60):
        ref = solve_box_qp(H, g, x0, sweeps, temporal, backend="numpy")
        x = solve_box_qp(H, g, x0, sweeps, temporal, backend="numba")
        assert x.dtype == np.float64 and x.shape == ref.shape
        assert np.abs(x - ref).max() <= 1e-9
    assert (ref == 0).mean() > 0.05 and (ref == 1).mean() > 0.05  # the bounds are active
    # The temporal coupling is real in both: it changes the answer.
    if temporal:
        assert np.abs(ref - solve_box_qp(H, g, x0, 60, 0.0, backend="numpy")).max() > 1e-3


def test_box_qp_backends_are_chosen_as_asked(monkeypatch):
    rng = np.random.default_rng(13)
    H, g, x0 = random_box_qp(rng, T=3, n=5)
    monkeypatch.setenv("DFM_FIT_BACKEND", "numpy")
    assert box_qp.KERNELS.choose(None) == "numpy"
    np.testing.assert_array_equal(solve_box_qp(H, g, x0, 5), box_qp._solve_numpy(H, g, x0, 5, 0.0))
    monkeypatch.setenv("DFM_FIT_BACKEND", "fortran")
    with pytest.raises(ValueError):
        solve_box_qp(H, g, x0, 5)
    monkeypatch.delenv("DFM_FIT_BACKEND")
    assert box_qp.KERNELS.choose(None) == box_qp.available_backends()[0]
    assert (x0 == solve_box_qp(H, g, x0, 0)).all()  # no sweeps: the start, copied, in every back end
    x0_before = x0.copy()
    for name in box_qp.available_backends():
        solve_box_qp(H, g, x0, 5, backend=name)
    np.testing.assert_array_equal(x0, x0_before)  # the start is not modified
    # numba missing or failing to compile: the automatic choice falls back, a forced numba says why.
    monkeypatch.setattr(box_qp.KERNELS, "_kernels", None)
    monkeypatch.setattr(box_qp.KERNELS, "error", "ModuleNotFoundError: No module named 'numba'")
    assert box_qp.available_backends() == ("numpy",)
    np.testing.assert_array_equal(solve_box_qp(H, g, x0, 5), box_qp._solve_numpy(H, g, x0, 5, 0.0))
    with pytest.raises(RuntimeError, match="numba"):
        solve_box_qp(H, g, x0, 5, backend="numba")


def test_pair_grams_equal_the_weighted_einsum():
    rng = np.random.default_rng(14)
    U, V, w = rng.normal(size=(6, 40, 3)), rng.normal(size=(4, 40, 3)).astype(np.float32), rng.uniform(0, 1, 40)
    ref = np.einsum("jpa,kpb,p->abjk", U, V.astype(np.float64), w)
    G = _pair_grams(U, V, w)
    assert G.shape == (3, 3, 6, 4) and G.flags.c_contiguous
    np.testing.assert_allclose(G, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_fit_recovers_pose_and_expression_for_a_known_identity(basis):
    """The per-frame job (identity known, e.g. a person's): expression MAE < 0.05, rotation < 2°,
    and changing only the pose changes the fitted expression by < 0.03."""
    rng = np.random.default_rng(0)
    identity = rng.normal(size=100)
    E = random_expressions(rng, T)
    R, s, t = random_poses(rng, T)
    fitter = FaceFitter(basis)
    fit = fitter.fit(render_landmarks(basis, identity, E, R, s, t, rng), identity=identity)
    assert np.abs(fit.expression - E).mean() < 0.05
    assert rotation_errors_deg(fit.rotation, R).max() < 2.0
    np.testing.assert_allclose(fit.scale, s, rtol=0.03)

    R2, s2, t2 = random_poses(np.random.default_rng(7), T)
    fit2 = fitter.fit(render_landmarks(basis, identity, E, R2, s2, t2, np.random.default_rng(8)), identity=identity)
    assert np.abs(fit2.expression - fit.expression).mean() < 0.03


def test_fit_recovers_expression_with_identity_and_a_noisy_blendshape_prior(basis):
    """The whole-video job: identity unknown; MediaPipe's blendshape scores as prior, simulated as the
    truth plus noise (σ = 0.1). The fit must beat the prior and reach MAE < 0.05, rotation < 2°."""
    rng = np.random.default_rng(3)
    identity = rng.normal(size=100)
    E = random_expressions(rng, T)
    R, s, t = random_poses(rng, T)
    prior = np.clip(E + rng.normal(0, 0.1, E.shape), 0, 1)
    fit = FaceFitter(basis).fit(render_landmarks(basis, identity, E, R, s, t, rng), prior)
    mae = np.abs(fit.expression - E).mean()
    assert mae < 0.05
    assert mae < 0.8 * np.abs(prior - E).mean()
    assert rotation_errors_deg(fit.rotation, R).max() < 2.0


def test_fit_recovers_identity_pose_and_expression_from_landmarks_alone(basis):
    """Identity unknown and no prior: one identity is fitted jointly with the frames' expressions."""
    rng = np.random.default_rng(11)
    identity = rng.normal(size=100)
    E = random_expressions(rng, T)
    R, s, t = random_poses(rng, T)
    fit = FaceFitter(basis).fit(render_landmarks(basis, identity, E, R, s, t, rng))
    assert np.abs(fit.expression - E).mean() < 0.05
    assert rotation_errors_deg(fit.rotation, R).max() < 2.0
    # The identity's shape at the landmarks is recovered (not only the expressions).
    shape_err = np.tensordot(fit.identity - identity, basis.identity, 1)
    shape_true = np.tensordot(identity, basis.identity, 1)
    assert np.sqrt((shape_err**2).sum(-1).mean()) < 0.5 * np.sqrt((shape_true**2).sum(-1).mean())


def test_fit_stays_in_bounds_and_reports_residual(basis):
    rng = np.random.default_rng(4)
    E = random_expressions(rng, 8)
    R, s, t = random_poses(rng, 8)
    L = render_landmarks(basis, np.zeros(100), E, R, s, t, rng, noise=0.0)
    fit = FaceFitter(basis, FitConfig(temporal_weight=0.5)).fit(L)
    assert fit.expression.min() >= 0 and fit.expression.max() <= 1
    assert fit.residual.shape == (8,) and (fit.residual < 1.0).all()  # pixels, noise-free


def _count_fit_frames(monkeypatch) -> list[int]:
    """The frame counts FaceFitter.fit_frames is called with, from now on."""
    sizes = []
    real_fit_frames = FaceFitter.fit_frames

    def counted(self, landmarks, prior, path):
        sizes.append(len(landmarks))
        return real_fit_frames(self, landmarks, prior, path)

    monkeypatch.setattr(FaceFitter, "fit_frames", counted)
    return sizes


def test_the_chunked_fit_shares_frames_with_this_process_and_equals_the_whole_fit(basis, monkeypatch):
    from dfm.parallel import SerialExecutor
    from dfm.pipelines import fit_chunks

    rng = np.random.default_rng(8)
    identity = rng.normal(size=100)
    E = random_expressions(rng, 80)
    R, s, t = random_poses(rng, 80)
    L = render_landmarks(basis, identity, E, R, s, t, rng)
    config = FitConfig(identity_frames=12)
    fitter = FaceFitter(basis, config)
    whole = fitter.fit(L, None)
    setup = fit_chunks.FitSetup(basis, config, "synthetic")
    sizes = _count_fit_frames(monkeypatch)
    for share in (0.5, 0.0):  # with the compiled kernel here: half of it in this process; without: none
        monkeypatch.setattr(fit_chunks, "own_share", lambda n, share=share: share)
        sizes.clear()
        chunked = fit_chunks.fit_chunked(fitter, SerialExecutor(), setup, L, None, None)
        assert sorted(sizes) == ([40, 40] if share else [80])
        for k in ("rotation", "translation", "scale", "expression", "residual"):
            np.testing.assert_allclose(getattr(chunked, k), getattr(whole, k), atol=1e-6, err_msg=k)
    assert fit_chunks.own_share(2) in (0.0, 1 / 3)


def test_the_fit_in_threads_splits_the_frames_and_equals_the_whole_fit(basis, monkeypatch):
    from dfm.face.box_qp import available_backends
    from dfm.pipelines import fit_chunks

    rng = np.random.default_rng(9)
    identity = rng.normal(size=100)
    E = random_expressions(rng, 150)
    R, s, t = random_poses(rng, 150)
    L = render_landmarks(basis, identity, E, R, s, t, rng)
    fitter = FaceFitter(basis, FitConfig(identity_frames=12))
    whole = fitter.fit(L, None)
    sizes = _count_fit_frames(monkeypatch)
    threaded = fit_chunks.fit_in_threads(fitter, L, None, None, threads=2)
    # split in two with the compiled kernel (it releases the GIL); the plain fit on the NumPy fallback
    assert sorted(sizes) == ([75, 75] if "numba" in available_backends() else [150])
    for k in ("identity", "rotation", "translation", "scale", "expression", "residual"):
        np.testing.assert_array_equal(getattr(threaded, k), getattr(whole, k), err_msg=k)
    sizes.clear()
    fit_chunks.fit_in_threads(fitter, L[:100], None, None, threads=2)  # under 2 x 64 frames: one thread
    assert sizes == [100]


def test_fit_is_an_identity_path_then_frames_any_slice_of_which_gives_the_same_rows(basis):
    """What lets the chunked analysis fit in the workers: the identity solved on the spread frames alone,
    then each slice of frames replayed with it, equals the whole-sequence fit exactly."""
    rng = np.random.default_rng(5)
    identity = rng.normal(size=100)
    E = random_expressions(rng, 90)
    R, s, t = random_poses(rng, 90)
    L = render_landmarks(basis, identity, E, R, s, t, rng)
    prior = np.clip(E + rng.normal(scale=0.05, size=E.shape), 0, 1)
    fitter = FaceFitter(basis, FitConfig(identity_frames=12))
    whole = fitter.fit(L, prior)
    path = fitter.identity_path(L, prior)
    assert path.shape == (fitter.config.outer_iterations, 100) and not path[0].any()  # starts from the mean face
    np.testing.assert_array_equal(whole.identity, path[-1].astype(np.float32))
    parts = [fitter.fit_frames(L[a:b], prior[a:b], path) for a, b in ((0, 17), (17, 60), (60, 90))]
    for k in ("rotation", "translation", "scale", "expression", "residual"):
        np.testing.assert_allclose(np.concatenate([getattr(p, k) for p in parts]), getattr(whole, k), atol=1e-6)
    given = fitter.identity_path(L, prior, identity)
    assert (given == identity).all()
    with pytest.raises(ValueError):
        FaceFitter(basis, FitConfig(temporal_weight=0.5)).identity_path(L)
