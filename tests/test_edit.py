"""The end-to-end edit on real clips: same frames/fps/size/audio, untouched frames outside the edits,
disclosure (tags, sidecar, C2PA credentials), the emotion actually changes (re-analysed), preview."""

import json

import av
import numpy as np
import pytest

from dfm.app.cli.main import main
from dfm.pipelines.edit import EditOptions, sidecar_path
from dfm.edits import parse_edit_arg
from dfm.face.expressions import EXPRESSION_INDEX
from dfm.io.video import iter_frames, probe_video

pytestmark = pytest.mark.integration
SMILE = [EXPRESSION_INDEX["mouthSmile_L"], EXPRESSION_INDEX["mouthSmile_R"]]


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return np.inf if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _audio_packets(path):
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


@pytest.fixture(scope="module")
def grid_clip(videos_dir):
    return videos_dir / "grid_greyhair_man_01.mp4"


@pytest.fixture(scope="module")
def lossless_edit(session, grid_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("edit") / "happy.mp4"
    edits = [parse_edit_arg("happy:high:0.8-2.4")]
    result = session.edit(grid_clip, edits, out, EditOptions(lossless=True))
    return result, session.plan(grid_clip, edits)


def test_output_keeps_frames_fps_size_and_audio(lossless_edit, grid_clip):
    result, _ = lossless_edit
    a, b = probe_video(grid_clip), probe_video(result.output)
    assert (b.n_frames, b.width, b.height, b.rate) == (a.n_frames, a.width, a.height, a.rate)
    assert b.has_audio and _audio_packets(result.output) == _audio_packets(grid_clip)


def test_frames_outside_edits_decode_bit_exact_with_lossless(lossless_edit, grid_clip):
    result, plan = lossless_edit
    outside = plan.weight == 0
    assert outside.sum() > 10 and (~outside).sum() > 10
    for fa, fb in zip(iter_frames(grid_clip), iter_frames(result.output)):
        if outside[fa.index]:
            np.testing.assert_array_equal(np.asarray(fa.image), np.asarray(fb.image))
        elif plan.weight[fa.index] == 1:
            assert not np.array_equal(np.asarray(fa.image), np.asarray(fb.image)), fa.index


def test_output_carries_the_disclosure(lossless_edit, grid_clip):
    result, _ = lossless_edit
    with av.open(str(result.output)) as c:
        meta = c.metadata
    assert "manipulated" in meta.get("comment", "").lower() and "DFM" in meta["comment"]
    side = json.loads(sidecar_path(result.output).read_text())
    assert side["manipulated"] is True
    assert side["edits"]["edits"][0]["label"] == "happy"
    import hashlib

    assert side["input"]["sha256"] == hashlib.sha256(grid_clip.read_bytes()).hexdigest()
    assert side["versions"]["dfm"] and side["versions"]["face-landmarker"]["sha256"]


def test_output_carries_content_credentials_that_verify_validates(lossless_edit, grid_clip, capsys):
    import hashlib

    from dfm.pipelines.verify import verify_video

    result, _ = lossless_edit
    report = verify_video(result.output)
    assert report.status == "valid" and report.manipulated is True
    assert report.intervals == ["0.8-2.4 s: happy (high)"]
    assert report.input_sha256 == hashlib.sha256(grid_clip.read_bytes()).hexdigest()
    assert report.sidecar is not None and report.sidecar.agrees
    side = json.loads(sidecar_path(result.output).read_text())
    assert side["credentials"]["c2pa"] and side["credentials"]["manifests"][str(result.output)] == report.credentials.manifest
    assert result.report["credentials"]["local_test_certificate"] and "sign" in result.report["seconds"]
    assert main(["verify", str(result.output)]) == 0
    assert capsys.readouterr().out.startswith(f"{result.output.name}: Content Credentials VALID")


def test_reanalysing_the_output_measures_a_bigger_smile(session, lossless_edit, grid_clip):
    result, plan = lossless_edit
    inside = plan.weight == 1
    before = session.analyze(grid_clip).expression[inside][:, SMILE].mean()
    after = session.analyze(result.output).expression[inside][:, SMILE].mean()
    assert after > before + 0.15, (before, after)


def test_default_quality_keeps_untouched_frames_above_45_db(session, grid_clip, tmp_path):
    out = tmp_path / "sad.mp4"
    edits = [parse_edit_arg("sad:medium:1.0-2.0")]
    session.edit(grid_clip, edits, out)
    weight = session.plan(grid_clip, edits).weight
    worst = min(_psnr(np.asarray(a.image), np.asarray(b.image))
                for a, b in zip(iter_frames(grid_clip), iter_frames(out)) if weight[a.index] == 0)
    assert worst >= 45.0


def test_cli_edit_refuses_to_overwrite_and_writes_side_by_side(dfm_env, grid_clip, tmp_path, capsys):
    out, sbs = tmp_path / "o.mp4", tmp_path / "sbs.mp4"
    argv = ["edit", str(grid_clip), "--edit", "surprise:medium:1.0-2.2", "-o", str(out), "--side-by-side", str(sbs), "-q"]
    assert main(argv) == 0
    assert "\nlip motion kept in edit 1\n" in capsys.readouterr().out  # a GRID speaker, with sound
    assert probe_video(sbs).width == 2 * probe_video(grid_clip).width
    assert main(["verify", str(sbs)]) == 0 and main(["verify", str(out)]) == 0  # both carry credentials
    assert "Side-by-side comparison" in capsys.readouterr().out
    capsys.readouterr()
    assert main(argv) == 2
    assert "exists" in capsys.readouterr().err


def test_cli_rejects_bad_edits_with_one_line(dfm_env, grid_clip, tmp_path, capsys):
    for bad in ("joy:high:1-2", "happy:high:2-1", "happy:high:1-99", "happy:1.5:1-2"):
        assert main(["edit", str(grid_clip), "--edit", bad, "-o", str(tmp_path / "x.mp4"), "-q"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("dfm: error:"), err
    assert not (tmp_path / "x.mp4").exists()


def test_preview_renders_the_frame_at_a_time(session, grid_clip):
    edits = [parse_edit_arg("happy:high:0.8-2.4")]
    track = session.analyze(grid_clip)
    inside = session.preview(grid_clip, edits, at=1.6)
    outside = session.preview(grid_clip, edits, at=0.2)
    frames = {f.index: np.asarray(f.image) for f in iter_frames(grid_clip)}
    assert inside.shape == frames[0].shape
    assert not np.array_equal(inside, frames[track.frame_index_at(1.6)])
    np.testing.assert_array_equal(outside, frames[track.frame_index_at(0.2)])


@pytest.mark.slow
def test_happy_edit_over_crying_reads_happier(session, sample_video, tmp_path):
    """Emotion reads: the affect estimator calls more output frames happy (and higher valence) than input."""
    out = tmp_path / "happy.mp4"
    edits = [parse_edit_arg("happy:high:0.3-4.8")]
    session.edit(sample_video, edits, out)
    inside = session.plan(sample_video, edits).weight == 1
    before, after = session.analyze(sample_video), session.analyze(out)
    happy = list(before.meta["affect_classes"]).index("happy")
    p_before = (before.affect_probs[inside].argmax(1) == happy).mean()
    p_after = (after.affect_probs[inside].argmax(1) == happy).mean()
    assert p_after > p_before + 0.2, (p_before, p_after)
    assert np.nanmean(after.valence[inside]) > np.nanmean(before.valence[inside]) + 0.2


def test_speech_preservation_keeps_the_lip_sync(session, videos_dir, tmp_path):
    """A GRID speaker (speech detected -> preservation on by default): after a happy edit the re-analysed
    jaw motion still follows the original articulation, much more than with preservation off."""
    clip = videos_dir / "grid_moustache_man_01.mp4"
    edits = [parse_edit_arg("happy:high:0.4-2.8")]
    jaw = EXPRESSION_INDEX["jawOpen"]
    inside = session.plan(clip, edits).weight == 1
    original = session.analyze(clip).expression[inside, jaw]
    corr = {}
    for preserve in (None, False):
        out = tmp_path / f"speech-{preserve}.mp4"
        result = session.edit(clip, edits, out, EditOptions(preserve_speech=preserve))
        assert result.report["preserve_speech"] is (preserve is None)
        corr[preserve] = np.corrcoef(original, session.analyze(out).expression[inside, jaw])[0, 1]
    assert corr[None] > 0.75 and corr[None] > corr[False] + 0.1, corr
