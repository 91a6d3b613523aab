"""The plan: target expression, weights, transitions, smoothing, speech preservation, nudges, seeds, I/O, plot."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.affect.regions import region_for
from dfm.edits import SPEECH_CHANNELS, Edit, Plan, make_plan, parse_edit_arg
from dfm.edits.plan import ramp_weights, smooth_curves
from dfm.edits.speech import speech_mask
from dfm.errors import DfmError
from dfm.face.expressions import EXPRESSION_NAMES, N_EXPRESSIONS, expression_index

FPS = 25.0
T = 400  # 16 s
TS = np.arange(T) / FPS
VALID = np.ones(T, dtype=bool)
SMILE, FROWN, JAW, BROW, PUCKER = (
    expression_index(n) for n in ("mouthSmile_L", "mouthFrown_L", "jawOpen", "browInnerUp_L", "mouthPucker")
)


def original_expression(seed: int = 0) -> np.ndarray:
    """A talking face: slow expression drift, 4 Hz jaw/lip articulation and tracker noise, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, N_EXPRESSIONS)
    x = 0.25 + 0.1 * np.sin(TS[:, None] * 0.7 + phase[None, :]) + 0.02 * rng.standard_normal((T, N_EXPRESSIONS))
    x[:, JAW] = 0.3 + 0.2 * np.sin(2 * np.pi * 4 * TS)
    x[:, PUCKER] = 0.2 + 0.15 * np.sin(2 * np.pi * 3 * TS + 1)
    return np.clip(x, 0, 1).astype(np.float32)


def decode(va: np.ndarray) -> np.ndarray:
    """Synthetic person: valence drives smile/frown, arousal opens jaw and raises brows; smooth in VA."""
    v, a = va[:, 0], va[:, 1]
    out = np.full((len(va), N_EXPRESSIONS), 0.1)
    for side in "LR":
        out[:, expression_index(f"mouthSmile_{side}")] = 0.1 + 0.8 * np.maximum(v, 0)
        out[:, expression_index(f"mouthFrown_{side}")] = 0.05 + 0.8 * np.maximum(-v, 0)
        out[:, expression_index(f"browInnerUp_{side}")] = 0.1 + 0.5 * np.maximum(a, 0) + 0.3 * np.maximum(-v, 0)
    out[:, JAW] = 0.1 + 0.7 * np.maximum(a, 0)
    out[:, PUCKER] = 0.3 - 0.2 * v
    return np.clip(out, 0, 1)


def jittery_decode(va: np.ndarray) -> np.ndarray:
    """A decoder with frame-to-frame jitter (like a nearest-neighbour regressor)."""
    noise = 0.05 * np.sin(np.arange(len(va)) * 2.9)[:, None]
    return np.clip(decode(va) + noise, 0, 1)


ORIG = original_expression()
EDITS = ["sad:high:1-4", "happy:high:5-8.5", "surprise:medium:9-11", "au:mouthSmile=+0.3:12-13.5", "neutral:14-15.5"]


def plan_for(edits=EDITS, original=ORIG, **kw) -> Plan:
    edits = [parse_edit_arg(e) if isinstance(e, str) else e for e in edits]
    return make_plan(edits, TS, VALID, original, kw.pop("decode", decode), **kw)


def test_plan_shapes_and_bookkeeping() -> None:
    plan = plan_for()
    assert plan.target.shape == (T, N_EXPRESSIONS) and plan.target.dtype == ORIG.dtype
    assert plan.weight.shape == (T,) and plan.va.shape == (T, 2) and plan.edit_index.shape == (T,)
    assert plan.seed == 0 and plan.transition_frames == 20
    assert plan.speech_channels == SPEECH_CHANNELS
    assert [r.label for r in plan.edits] == ["sad", "happy", "surprise", None, "neutral"]
    for r in plan.edits:
        assert np.all(plan.edit_index[r.first : r.stop] == r.index)
    assert np.all(np.isnan(plan.va[~plan.edited]))
    nudge = plan.edits[3]
    assert np.all(np.isnan(plan.va[nudge.first : nudge.stop]))  # a nudge-only edit has no VA
    assert np.all((plan.target >= 0) & (plan.target <= 1))


def test_outside_edits_target_is_original_bit_for_bit() -> None:
    plan = plan_for()
    outside = ~plan.edited
    assert outside.sum() > 100
    assert plan.target[outside].tobytes() == ORIG[outside].tobytes()
    assert np.all(plan.weight[outside] == 0) and np.all(plan.edit_index[outside] == -1)


def test_empty_edit_list_gives_the_original() -> None:
    plan = plan_for([])
    assert plan.target.tobytes() == ORIG.tobytes() and not plan.edited.any()


def test_va_inside_each_region_and_continuous() -> None:
    plan = plan_for()
    for r in plan.edits:
        if r.label is None:
            continue
        region = region_for(r.label, r.intensity)
        assert region.contains(plan.va[r.first : r.stop]).all()
        knots = plan.knot_va[plan.knot_edit == r.index]
        assert len(knots) >= 2 and region.contains(knots).all()
        assert np.linalg.norm(np.diff(plan.va[r.first : r.stop], axis=0), axis=1).max() < 0.1


def test_target_is_continuous() -> None:
    """No jump between frames beyond what the original itself does (plus the ramp's small steps)."""
    plan = plan_for()
    jump = np.abs(np.diff(plan.target.astype(np.float64), axis=0)).max(axis=1)
    orig_jump = np.abs(np.diff(ORIG.astype(np.float64), axis=0)).max(axis=1)
    assert np.all(jump <= orig_jump + 0.1)
    # and at the edit boundaries the step from the untouched frame is tiny
    for r in plan.edits:
        step = np.abs(plan.target[r.first].astype(float) - ORIG[r.first]).max()
        assert step < 0.02


@pytest.mark.parametrize("transition_frames", [20, 8, 1])
def test_transitions_have_the_configured_length(transition_frames: int) -> None:
    plan = plan_for(["happy:high:f100-f200"], transition_frames=transition_frames)
    w = plan.weight[100:200]
    ramp = (w > 0) & (w < 1)
    assert ramp[:transition_frames].all() and ramp[-transition_frames:].all()
    assert ramp.sum() == 2 * transition_frames
    assert np.all(w[transition_frames:-transition_frames] == 1)
    assert np.all(np.diff(w[: transition_frames + 1]) > 0)  # rising smoothly
    assert np.allclose(w[::-1], w)  # symmetric


def test_transitions_scale_down_for_short_edits() -> None:
    plan = plan_for(["happy:high:f100-f130"], transition_frames=20)  # 30 frames < 2 * 20 + 1
    (r,) = plan.edits
    assert r.transition == 14
    w = plan.weight[100:130]
    assert ((w > 0) & (w < 1)).sum() == 28 and (w == 1).sum() == 2


def test_zero_transition_is_a_hard_cut() -> None:
    plan = plan_for(["happy:high:f100-f130"], transition_frames=0)
    assert np.all(plan.weight[100:130] == 1)


def test_ramp_weights() -> None:
    w = ramp_weights(50, 5)
    assert np.allclose(w[:5], 0.5 - 0.5 * np.cos(np.pi * np.arange(1, 6) / 6))
    assert np.all(w[5:45] == 1)


def test_emotions_move_the_right_coefficients() -> None:
    plan = plan_for()
    sad, happy = plan.edits[0], plan.edits[1]
    core = lambda r: slice(r.first + r.transition, r.stop - r.transition)  # noqa: E731
    assert plan.target[core(happy), SMILE].mean() > ORIG[core(happy), SMILE].mean() + 0.3
    assert plan.target[core(sad), FROWN].mean() > ORIG[core(sad), FROWN].mean() + 0.3
    assert plan.target[core(sad), SMILE].mean() < plan.target[core(happy), SMILE].mean() - 0.4


def test_same_seed_same_plan_different_seed_different() -> None:
    a, b, c = plan_for(seed=11), plan_for(seed=11), plan_for(seed=12)
    assert a.target.tobytes() == b.target.tobytes() and np.array_equal(a.va, b.va, equal_nan=True)
    assert not np.allclose(a.va[a.edited], c.va[c.edited], equal_nan=True)
    assert not np.array_equal(a.target, c.target)
    assert a.seed == 11 and c.seed == 12


def test_fresh_seed_is_recorded_and_reproduces() -> None:
    a = plan_for(seed=None)
    assert isinstance(a.seed, int) and a.seed >= 0
    assert plan_for(seed=a.seed).target.tobytes() == a.target.tobytes()


def test_each_edit_has_its_own_random_stream() -> None:
    """Adding or reordering edits does not change the VA trajectories of the others."""
    a = plan_for(["happy:high:5-8.5"], seed=3)
    b = plan_for(["sad:low:1-3", "happy:high:5-8.5"], seed=3)
    c = plan_for(["happy:high:5-8.5", "sad:low:1-3"], seed=3)
    assert np.array_equal(a.va[a.edited], b.va[a.edited])
    assert np.array_equal(a.va[a.edited], c.va[a.edited])
    moved = plan_for(["happy:high:5.2-8.5"], seed=3)
    assert not np.allclose(a.va[moved.edited], moved.va[moved.edited])


def test_intensity_change_moves_the_trajectory_continuously() -> None:
    """Same interval and seed: a slightly higher intensity gives a slightly different trajectory, not a new one."""
    a = plan_for([Edit(5, 8.5, "happy", 0.5)])
    b = plan_for([Edit(5, 8.5, "happy", 0.52)])
    far = plan_for([Edit(5, 8.5, "happy", 0.5)], seed=1)
    step = np.abs(a.va[a.edited] - b.va[b.edited]).max()
    assert 0 < step < 0.05
    assert np.abs(a.va[a.edited] - far.va[far.edited]).max() > 2 * step


def test_smoothing_removes_decoder_jitter() -> None:
    rough = plan_for(["happy:high:f100-f300"], decode=jittery_decode, smoothing=0)
    smooth = plan_for(["happy:high:f100-f300"], decode=jittery_decode)
    core = slice(125, 275)
    jitter = lambda x: np.abs(np.diff(x[core, SMILE].astype(float), n=2)).mean()  # noqa: E731
    assert jitter(smooth.target) < 0.2 * jitter(rough.target)
    # the level is kept: smoothing is not flattening
    assert abs(smooth.target[core, SMILE].mean() - rough.target[core, SMILE].mean()) < 0.02


def test_smooth_curves_gcv_and_off() -> None:
    t = np.arange(100) / FPS
    y = np.stack([np.sin(t), np.full_like(t, 0.3)], axis=1) + np.array([[0.02, 0.0]]) * np.sin(t * 70)[:, None]
    assert np.array_equal(smooth_curves(t, y, 0), y)
    gcv = smooth_curves(t, y, None)
    assert np.abs(gcv[:, 0] - np.sin(t)).mean() < np.abs(y[:, 0] - np.sin(t)).mean()
    assert np.array_equal(gcv[:, 1], y[:, 1])  # a constant stays exactly constant


def test_speech_channels_keep_the_original_articulation() -> None:
    """On speech channels target - original does not depend on the original: lip motion is kept."""
    other = ORIG.copy()
    rng = np.random.default_rng(5)
    mask = speech_mask()
    other[:, mask] = np.clip(0.1 + 0.3 * rng.random((T, mask.sum())), 0, 1).astype(np.float32)
    a, b = plan_for(), plan_for(original=other)
    inside = a.edited
    unclipped = inside[:, None] & (a.target < 1) & (b.target < 1) & (a.target > 0) & (b.target > 0)
    diff_a = a.target.astype(float) - ORIG
    diff_b = b.target.astype(float) - other
    sel = unclipped & mask[None, :]
    assert sel.sum() > 1000
    assert np.allclose(diff_a[sel], diff_b[sel], atol=1e-5)
    # the non-speech channels do not care about the original at full weight
    full = a.weight == 1
    assert np.allclose(a.target[full][:, ~mask], b.target[full][:, ~mask], atol=1e-6)


def test_emotion_adds_its_jaw_drop_on_top_of_speech() -> None:
    plan = plan_for()
    surprise = plan.edits[2]
    core = slice(surprise.first + surprise.transition, surprise.stop - surprise.transition)
    added = plan.target[core, JAW].astype(float) - ORIG[core, JAW]
    assert np.all(added >= -1e-6) and added.mean() > 0.2  # decoded jaw drop of surprise survives
    # articulation kept: the 4 Hz jaw motion is still there at full amplitude (up to the clip at 1)
    corr = np.corrcoef(plan.target[core, JAW], ORIG[core, JAW])[0, 1]
    assert corr > 0.95
    # an emotion never closes a talking mouth: pucker (decoded lower than neutral when happy) is kept
    happy = plan.edits[1]
    assert np.all(plan.target[happy.first : happy.stop, PUCKER] >= ORIG[happy.first : happy.stop, PUCKER] - 1e-6)


def test_without_speech_preservation_the_decoder_owns_the_mouth() -> None:
    plan = plan_for(preserve_speech=False)
    assert plan.speech_channels == ()
    happy = plan.edits[1]
    core = slice(happy.first + happy.transition, happy.stop - happy.transition)
    assert abs(np.corrcoef(plan.target[core, JAW], ORIG[core, JAW])[0, 1]) < 0.3  # the articulation is gone


def test_speech_preservation_is_decided_per_edit() -> None:
    """Flags per edit: each edit is planned exactly as with its flag for all edits; saved and loaded with the plan."""
    flags = [True, False, True, False, True]
    mixed, kept, rested = plan_for(preserve_speech=flags), plan_for(), plan_for(preserve_speech=False)
    assert mixed.speech_edits == tuple(flags) and mixed.speech_channels == SPEECH_CHANNELS
    assert kept.speech_edits == (True,) * 5 and rested.speech_edits == (False,) * 5
    for r, flag in zip(mixed.edits, flags):
        same = kept if flag else rested
        np.testing.assert_array_equal(mixed.target[r.first:r.stop], same.target[r.first:r.stop])
    assert plan_for(preserve_speech=[False] * 5).speech_channels == ()
    with pytest.raises(ValueError, match="2 flags for 5 edits"):
        plan_for(preserve_speech=[True, False])


def test_the_plan_says_how_much_of_each_target_is_the_original() -> None:
    """original_share: 1 outside edits, on kept speech and eye channels and in nudge-only edits; 1 - weight
    where the emotion owns a channel; the speech channels are owned when the edit does not keep them."""
    from dfm.edits.eyes import eye_follow_mask

    plan = plan_for(preserve_speech=[True, False, True, True, True])
    share, speech, eyes = plan.original_share, speech_mask(), eye_follow_mask()
    assert share.shape == (T, N_EXPRESSIONS) and np.all(share[~plan.edited] == 1)
    sad, happy, nudged = plan.edits[0], plan.edits[1], plan.edits[3]
    for r, kept in ((sad, True), (happy, False)):
        w = plan.weight[r.first:r.stop, None]
        s = share[r.first:r.stop]
        np.testing.assert_array_equal(s[:, eyes], 1)
        np.testing.assert_allclose(s[:, speech], 1 if kept else np.broadcast_to(1 - w, s[:, speech].shape), atol=1e-6)
        owned = s[:, SMILE]  # no prototype floor in this synthetic plan: the emotion owns the smile
        np.testing.assert_allclose(owned, 1 - w[:, 0], atol=1e-6)
    np.testing.assert_array_equal(share[nudged.first:nudged.stop], 1)
    # where the share is 1 the target is the original plus an offset that does not depend on it
    full = plan.weight == 1
    keep = full[:, None] & (share == 1) & plan.edited[:, None] & (plan.target > 0) & (plan.target < 1)
    other = plan_for(preserve_speech=[True, False, True, True, True], original=np.clip(ORIG + 0.05, 0, 1))
    keep &= (other.target > 0) & (other.target < 1)
    np.testing.assert_allclose((other.target - plan.target)[keep], 0.05, atol=1e-5)


def test_a_plan_saved_before_per_edit_flags_loads_with_its_one_setting(tmp_path) -> None:
    import json

    plan = plan_for(preserve_speech=[True, False, True, False, True])
    loaded = Plan.load(plan.save(tmp_path / "mixed.npz"))
    assert loaded.speech_edits == plan.speech_edits
    np.testing.assert_array_equal(loaded.original_share, plan.original_share)
    path = plan_for(preserve_speech=False).save(tmp_path / "old.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    del meta["speech_edits"], arrays["original_share"]
    np.savez_compressed(path, **{**arrays, "meta": np.array(json.dumps(meta))})
    old = Plan.load(path)
    assert old.speech_edits == (False,) * 5 and not old.original_share.any()  # the targets as they are


def test_nudge_only_edit_adds_the_offsets() -> None:
    plan = plan_for(["au:mouthSmile_L=+0.3,jawOpen=-0.1:f100-f200"])
    w = plan.weight[100:200, None].astype(float)
    o = ORIG[100:200].astype(float)
    expected = o.copy()
    expected[:, [SMILE]] = np.clip(o[:, [SMILE]] + w * 0.3, 0, 1)
    expected[:, [JAW]] = np.clip(o[:, [JAW]] - w * 0.1, 0, 1)
    assert np.allclose(plan.target[100:200], expected, atol=1e-6)


def test_nudges_add_to_an_emotion() -> None:
    base = plan_for(["sad:medium:f100-f200"])
    nudged = plan_for([Edit(100, 200, "sad", "medium", {"mouthSmile_L": 0.25, "jawOpen": 0.1}, unit="frames")])
    w = base.weight[100:200].astype(float)
    for j, offset in ((SMILE, 0.25), (JAW, 0.1)):
        d = nudged.target[100:200, j].astype(float) - base.target[100:200, j]
        ok = nudged.target[100:200, j] < 1
        assert np.allclose(d[ok], w[ok] * offset, atol=1e-5)
    assert np.array_equal(nudged.va, base.va, equal_nan=True)  # same random stream


def test_plan_validates_the_edits() -> None:
    with pytest.raises(DfmError, match="overlap"):
        plan_for(["happy:high:1-4", "sad:low:3-6"])
    valid = VALID.copy()
    valid[50:60] = False
    with pytest.raises(DfmError, match="without a tracked face: 50-59"):
        make_plan([parse_edit_arg("happy:high:1-4")], TS, valid, ORIG, decode)


def test_plan_save_load_round_trip(tmp_path) -> None:
    plan = plan_for(seed=4)
    path = plan.save(tmp_path / "plan.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["plan.npz"]
    loaded = Plan.load(path)
    for name in ("target", "weight", "edit_index", "timestamps", "knot_times", "knot_va", "knot_edit"):
        assert np.array_equal(getattr(loaded, name), getattr(plan, name)), name
    assert np.array_equal(loaded.va, plan.va, equal_nan=True)
    assert loaded.edits == plan.edits
    assert (loaded.seed, loaded.speech_channels, loaded.transition_frames, loaded.smoothing) == (
        4, SPEECH_CHANNELS, 20, plan.smoothing
    )
    assert loaded.fps == plan.fps == pytest.approx(FPS)
    with pytest.raises(DfmError, match="already exists"):
        plan.save(path, overwrite=False)


def test_plan_load_errors(tmp_path) -> None:
    with pytest.raises(DfmError, match="not found"):
        Plan.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, target=np.zeros(3))
    with pytest.raises(DfmError, match="not a dfm plan"):
        Plan.load(bad)


def test_bad_decoder_output_is_reported() -> None:
    with pytest.raises(ValueError, match="decode returned shape"):
        plan_for(["happy:high:1-4"], decode=lambda va: np.zeros((len(va), 52)))


def test_plot_plan(tmp_path) -> None:
    from dfm.edits import plot_plan

    plan = plan_for()
    path = plot_plan(plan, ORIG, tmp_path / "plan.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    assert [p.name for p in tmp_path.iterdir()] == ["plan.png"]
    with pytest.raises(ValueError, match="unknown blendshape"):
        plot_plan(plan, ORIG, tmp_path / "x.png", names=["smile"])


def test_speech_channel_list_is_known_names() -> None:
    assert set(SPEECH_CHANNELS) <= set(EXPRESSION_NAMES)
    assert "jawOpen" in SPEECH_CHANNELS and "mouthSmile_L" not in SPEECH_CHANNELS


def test_make_plan_for_track() -> None:
    from types import SimpleNamespace

    from dfm.edits import make_plan_for_track

    track = SimpleNamespace(fps=FPS, timestamps=TS, valid=VALID, expression=ORIG)
    plan = make_plan_for_track(track, [parse_edit_arg("happy:high:1-4")], decode, seed=2)
    assert plan.fps == FPS
    assert plan.target.tobytes() == plan_for(["happy:high:1-4"], seed=2, fps=FPS).target.tobytes()
