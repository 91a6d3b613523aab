"""Self-reenactment protocol: split, source rule, no test-frame pixels reach the renderer (poisoning),
and a real-clip run on a GRID clip (integration)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dfm.errors import DfmError
from dfm.eval.reenactment import (ProtocolConfig, ProtocolViolation, TrainingFrames, run_self_reenactment,
                                  select_sources, split_frames)
from dfm.face.expressions import expression_vector
from dfm.face.model import FaceModel
from dfm.face.track import project_vertices
from dfm.render import synthetic as syn
from dfm.render.mesh import RenderMesh

H, W, SCALE, T = 200, 240, 8.0, 16


class _FixedDecoder:
    """Setting B's decoder stand-in: a slight smile whatever the (V, A)."""

    def predict(self, va):
        return np.repeat(expression_vector(mouthSmile_L=0.3, mouthSmile_R=0.3)[None], len(np.atleast_2d(va)), 0)


@pytest.fixture(scope="module")
def model(assets_dir) -> FaceModel:
    return FaceModel.load(assets_dir / "ict_facekit" / "ict_face_model.npz")


@pytest.fixture(scope="module")
def scene(model):
    """16 synthetic frames: the head turns a little, the mouth smiles / opens a little; 11 train, 5 test."""
    mesh = RenderMesh.build(model)
    k = np.arange(T)
    e = np.stack([expression_vector(mouthSmile_L=0.4 * (1 + np.sin(i)) / 2, mouthSmile_R=0.4 * (1 + np.sin(i)) / 2,
                        jawOpen=0.15 * (1 + np.cos(1.3 * i)) / 2) for i in k])
    rot = np.stack([syn.rotation_xyz(2.0 * np.sin(0.7 * i), 6.0 * np.sin(0.5 * i), 0.0) for i in k])
    track = syn.synthetic_track(e, W, H, SCALE, rotations=rot)
    pick = mesh.face_vertices[np.linspace(0, len(mesh.face_vertices) - 1, 478).astype(int)]
    track.landmarks = np.stack([project_vertices(mesh.vertices(e[i])[pick], rot[i], track.translation[i], SCALE)
                                for i in k]).astype(np.float32)
    track.valence = np.linspace(-0.2, 0.6, T).astype(np.float32)
    track.arousal = np.zeros(T, np.float32)
    frames = syn.scene_frames(mesh, mesh.neutral, track)
    return track, frames, mesh


def test_split_takes_the_first_70_percent():
    train, test = split_frames(75, 0.7)
    assert train[0] == 0 and train[-1] == 51 and test[0] == 52 and test[-1] == 74
    with pytest.raises(DfmError):
        split_frames(75, 1.0)
    with pytest.raises(DfmError):
        split_frames(1, 0.5)


def test_source_is_the_closest_pose_with_ties_broken_by_expression(scene):
    track, _, _ = scene
    tr = track.__class__(**{**track.__dict__})
    tr.rotation = track.rotation.copy()
    tr.rotation[2] = tr.rotation[3] = syn.rotation_xyz(0.0, 20.0, 0.0)  # two training frames, same pose
    tr.rotation[5] = syn.rotation_xyz(0.0, 21.5, 0.0)
    tr.rotation[12] = syn.rotation_xyz(0.0, 21.0, 0.0)  # test frame: 1 deg from 2/3, 0.5 deg from 5
    train, test = np.arange(12), np.array([12])
    tr.expression = track.expression.copy()
    target = tr.expression[3][None]
    src, ang = select_sources(tr, train, test, target, tie_deg=1.0)
    assert src[0] == 3 and ang[0] == pytest.approx(1.0, abs=1e-3)  # ties within 1 deg: expression decides
    src, ang = select_sources(tr, train, test, target, tie_deg=0.1)
    assert src[0] == 5 and ang[0] == pytest.approx(0.5, abs=1e-3)


def test_training_frames_guard_refuses_test_frames():
    guard = TrainingFrames(lambda i: np.zeros((2, 2, 3), np.uint8), np.arange(5))
    guard(4)
    with pytest.raises(ProtocolViolation):
        guard(5)
    assert guard.requested == [4, 5]


def test_renderer_sees_no_test_frame_pixels(model, scene):
    """Poison the test frames (constant images) in the reader the renderer gets: nothing may change."""
    track, frames, mesh = scene
    n_train = int(np.floor(0.7 * T))
    cfg = ProtocolConfig(heatmap_frames=T, baselines=True)
    truth = frames.__getitem__
    clean = run_self_reenactment(model, track, frames.__getitem__, truth, cfg, mesh=mesh, decoder=_FixedDecoder())
    poison = np.full((H, W, 3), 255, np.uint8)
    seen: list[int] = []

    def poisoned(i: int) -> np.ndarray:
        seen.append(i)
        return poison if i >= n_train else frames[i]

    dirty = run_self_reenactment(model, track, poisoned, truth, cfg, mesh=mesh, decoder=_FixedDecoder())
    assert seen and max(seen) < n_train  # only training frames were ever read
    assert len(clean.heatmaps) == len(dirty.heatmaps) == T - n_train
    for a, b in zip(clean.heatmaps, dirty.heatmaps):
        assert a["index"] == b["index"] >= n_train
        assert a["source"] == b["source"] and all(s < n_train for s in a["source"].values())
        for v in a["outputs"]:
            np.testing.assert_array_equal(a["outputs"][v], b["outputs"][v])
    assert [r.metrics for r in clean.frames] == [r.metrics for r in dirty.frames]
    # and the protocol itself works on this scene: the edited frame is close to the truth
    s = clean.summary
    assert set(s) == {"A", "B", "warp_A", "warp_B", "repose"}
    assert s["A"]["frames"] == T - n_train
    assert s["A"]["apd"] < 12.0 and s["A"]["ssim"] > 0.8
    assert s["A"]["mouth_apd"] < s["repose"]["mouth_apd"]  # editing the expression beats re-posing alone
    assert all(math.isfinite(s[v]["face_apd"]) for v in s)


def test_a_renderer_that_reads_a_test_frame_is_caught(model, scene, monkeypatch):
    track, frames, mesh = scene
    from dfm.eval import reenactment

    orig = reenactment.SelfReenactment.repose

    def leaky(self, source, camera_of, expression):
        self.frames(camera_of)  # the bug: reading the test frame itself
        return orig(self, source, camera_of, expression)

    monkeypatch.setattr(reenactment.SelfReenactment, "repose", leaky)
    with pytest.raises(ProtocolViolation):
        run_self_reenactment(model, track, frames.__getitem__, frames.__getitem__, ProtocolConfig(baselines=False),
                             mesh=mesh, decoder=_FixedDecoder())


@pytest.mark.integration
@pytest.mark.slow
def test_self_reenactment_on_a_grid_clip(videos_dir, assets_dir, tmp_path, monkeypatch):
    """75-frame GRID clip: both settings measured on frames 52..74 from training pixels only."""
    monkeypatch.setenv("DFM_ASSETS", str(assets_dir))
    from dfm.pipelines.session import Session
    from dfm.eval.reenactment import VideoTrainingFrames
    from dfm.io.video import iter_frames

    video = videos_dir / "grid_greyhair_man_01.mp4"
    session = Session(workspace=tmp_path / "ws", progress=False)
    track = session.analyze(video)
    n_train = int(np.floor(0.7 * track.n_frames))
    train_frames = VideoTrainingFrames(video, n_train)
    assert len(train_frames.frames) == n_train  # the test frames are never even decoded for rendering
    truth = {f.index: f.image for f in iter_frames(video, n_train)}
    guard = TrainingFrames(train_frames, np.arange(n_train))
    res = run_self_reenactment(session.models.model, track, guard, truth.__getitem__,
                               ProtocolConfig(heatmap_frames=2))
    assert max(guard.requested) < n_train
    assert res.train == (0, 52) and res.test == (52, 75) and not res.skipped
    for s in ("A", "B"):
        m = res.summary[s]
        assert m["frames"] == 23
        assert 0 < m["apd"] < 30 and 0 < m["face_apd"] < 30 and 0 < m["mouth_apd"] < 40
        assert 20 < m["psnr"] < 50 and 0.5 < m["ssim"] < 1.0
    # the fitted expression reproduces the mouth better than the expression decoded from (V, A)
    assert res.summary["A"]["mouth_apd"] < res.summary["B"]["mouth_apd"]
    assert res.summary["A"]["mouth_apd"] < 0.85 * res.summary["repose"]["mouth_apd"]  # the edit moved the mouth
    assert res.decoder["available"] and res.decoder["n_pairs"] == 52
    assert len(res.heatmaps) == 2
