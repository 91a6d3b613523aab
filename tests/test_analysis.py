"""The analysis stage on the real clips: tracking + fit + affect, caching, the analyze/inspect CLI."""

import json
import time

import numpy as np
import pytest

from dfm.app.cli.main import main
from dfm.face.expressions import EXPRESSION_INDEX

pytestmark = pytest.mark.integration


def _mean(track, names, frames):
    cols = [EXPRESSION_INDEX[n] for n in names]
    ok = track.valid[frames]
    return float(track.expression[frames][ok][:, cols].mean())


def test_pexels_laughing_part_smiles_more_than_crying_part(pexels_track):
    t = pexels_track.timestamps
    crying, laughing = t < 5.0, t > t[-1] - 5.0
    smile = ("mouthSmile_L", "mouthSmile_R")
    assert _mean(pexels_track, smile, laughing) > _mean(pexels_track, smile, crying) + 0.2
    # and the crying part shows more sadness cues (frown, raised inner brows)
    assert _mean(pexels_track, ("mouthFrown_L", "mouthFrown_R"), crying) > _mean(pexels_track, ("mouthFrown_L", "mouthFrown_R"), laughing)


def test_pexels_track_is_complete_and_plausible(pexels_track):
    tr = pexels_track
    assert tr.n_frames == 472 and tr.width == 640 and tr.height == 360
    assert tr.fps == pytest.approx(24000 / 1001)
    assert tr.valid.mean() >= 0.99
    assert np.all(np.diff(tr.timestamps) > 0)
    assert tr.expression.min() >= 0 and tr.expression.max() <= 1
    # The fit follows the landmarks: RMS image error a small fraction of the face (~260 px wide).
    assert np.nanmedian(tr.residual[tr.valid]) < 6.0
    assert np.allclose(np.linalg.det(tr.rotation[tr.valid]), 1, atol=1e-3)


def test_rerun_loads_the_cache(session, sample_video, pexels_track):
    from dfm.pipelines.session import Session

    t0 = time.perf_counter()
    again = Session(workspace=session.workspace, progress=False).analyze(sample_video)  # a new process's view
    assert time.perf_counter() - t0 < 1.0
    assert again.meta["cached"]
    np.testing.assert_array_equal(again.expression, pexels_track.expression)


def test_analyze_json_summary(session, sample_video, pexels_track, capsys):
    assert main(["analyze", str(sample_video), "--json", "-q"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 472 and summary["valid_frames"] >= 468
    assert set(summary["seconds"]) >= {"decode", "track", "fit", "affect"}
    assert summary["track"].endswith(".npz")
    assert summary["mean_expression"]["mouthSmile_L"] > 0.2
    assert -1 <= summary["mean_valence"] <= 1


def test_inspect_writes_overlay_video_and_plots(session, videos_dir, tmp_path):
    clip = videos_dir / "grid_greyhair_man_01.mp4"
    out = tmp_path / "inspect"
    assert main(["inspect", str(clip), "-o", str(out), "-q"]) == 0
    from dfm.io.video import probe_video

    info = probe_video(out / "overlay.mp4")
    assert info.n_frames == 75 and info.width == 3 * 360
    for name in ("expressions.png", "contact_sheet.png", "affect.png"):
        assert (out / name).stat().st_size > 10_000
    # nothing overwritten silently
    assert main(["inspect", str(clip), "-o", str(out), "-q"]) == 2


@pytest.mark.slow
def test_every_shared_clip_gets_a_valid_fit_on_at_least_99_percent_of_frames(session, videos_dir):
    clips = sorted(videos_dir.glob("*.mp4"))
    assert len(clips) >= 10
    for clip in clips:
        track = session.analyze(clip)
        assert track.valid.mean() >= 0.99, (clip.name, track.valid.mean())
        assert np.nanmedian(track.residual[track.valid]) < 0.03 * max(track.width, track.height), clip.name
