"""Memory that does not grow with the video's length: block-wise fitting gives the whole-sequence answer,
and the streamed helpers keep nothing per frame beyond the track's own arrays."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import dfm.face.fitting as fitting
from dfm.face.fitting import FaceFitter, FitConfig
from dfm.face.track import FRONTAL


@pytest.fixture(scope="module")
def basis(session):
    return session.models.basis  # the shared session's (its correspondence is built once per run)


def _landmarks(basis, n, rng):
    E = np.zeros((n, 53))
    for f in range(n):
        k = rng.choice(53, 4, replace=False)
        E[f, k] = rng.uniform(0.2, 0.9, 4)
    ang = np.stack([rng.uniform(-30, 30, n), rng.uniform(-15, 15, n), rng.uniform(-10, 10, n)], 1)
    R = np.array([FRONTAL @ Rotation.from_euler("yxz", a, degrees=True).as_matrix() for a in ang])
    identity = rng.normal(size=100) * 0.5
    X = basis.points(identity, E)
    L = rng.uniform(10, 20, n)[:, None, None] * np.einsum("tij,tpj->tpi", R, X) + np.array([320, 180, 0.0])
    return (L + rng.normal(size=L.shape) * 0.3).astype(np.float32), np.clip(E + rng.normal(size=E.shape) * 0.05, 0, 1)


@pytest.fixture(scope="module")
def fitter(basis):
    return FaceFitter(basis)  # building one costs seconds (its Gram matrices); the config is swapped per test


@pytest.mark.parametrize("temporal", [0.0, 0.5])
def test_block_wise_fit_equals_the_whole_sequence_fit(basis, fitter, monkeypatch, temporal):
    L, prior = _landmarks(basis, 40, np.random.default_rng(3))
    monkeypatch.setattr(fitter, "config", FitConfig(temporal_weight=temporal, sweeps=6, outer_iterations=2))
    whole = fitter.fit(L, prior)
    monkeypatch.setattr(fitting, "FIT_CHUNK", 12)  # 4 blocks, each with a 6-frame margin when smoothing
    blocks = fitter.fit(L, prior)
    np.testing.assert_allclose(blocks.expression, whole.expression, atol=1e-5)
    np.testing.assert_allclose(blocks.rotation, whole.rotation, atol=1e-5)
    np.testing.assert_allclose(blocks.identity, whole.identity, atol=1e-4)
    np.testing.assert_allclose(blocks.residual, whole.residual, atol=1e-4)


def test_block_margin_is_needed_when_frames_are_coupled(basis, fitter, monkeypatch):
    """Guard of the test above: without the margin, smoothing across block edges changes the answer."""
    L, prior = _landmarks(basis, 40, np.random.default_rng(3))
    monkeypatch.setattr(fitter, "config", FitConfig(temporal_weight=0.5, sweeps=6, outer_iterations=2))
    whole = fitter.fit(L, prior)
    monkeypatch.setattr(fitting, "FIT_CHUNK", 12)
    blocks = FaceFitter._blocks
    monkeypatch.setattr(FaceFitter, "_blocks", lambda self, T, halo: blocks(self, T, 0))
    cut = fitter.fit(L, prior)
    assert np.abs(cut.expression - whole.expression).max() > 1e-4


def test_long_videos_fit_the_occlusion_model_on_a_spread_subset_and_score_every_frame(mesh, monkeypatch):
    """Above MODEL_FRAMES frames the occluder model is fitted on a spread subset (flat memory) and
    every frame is still scored, block by block: the hand frames are still found (the full fit's
    version of this check is tests/test_render_occlusion.py)."""
    import dfm.render.occlusion as occlusion
    from dfm.render.pool import FramePool
    from test_render_occlusion import _occluded_scene

    track, frames, boxes = _occluded_scene(mesh)
    monkeypatch.setattr(occlusion, "MODEL_FRAMES", 60)
    monkeypatch.setattr(occlusion, "SCORE_BLOCK", 25)
    fitted = []
    fit = occlusion.OcclusionModel.fit.__func__
    monkeypatch.setattr(occlusion.OcclusionModel, "fit",
                        classmethod(lambda cls, features, *a, **k: fitted.append(len(features)) or fit(cls, features, *a, **k)))
    sub = FramePool.build(track, frames, range(track.n_frames), mesh).occlusion[""]
    assert fitted == [60]
    assert len(sub.frames) == track.n_frames
    hand = sorted(boxes)
    others = [i for i in range(track.n_frames) if abs(i - 46) > 12]
    assert sub.share[hand].min() > sub.share[others].max()
    assert set(sub.excluded.tolist()) >= set(hand)
