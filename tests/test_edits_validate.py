"""Edits against a video: frame ranges and every validation error, with its message."""

from __future__ import annotations

import numpy as np
import pytest

from dfm.edits import Edit, minimum_edit_frames, parse_edit_arg, validate_edits
from dfm.edits.validate import format_frame_ranges, transition_length
from dfm.errors import DfmError

FPS = 23.976
T = 472  # the Pexels clip: 19.69 s
TS = np.arange(T) / FPS
VALID = np.ones(T, dtype=bool)


def _validate(*args: str | Edit, valid: np.ndarray = VALID, transition_frames: int = 20):
    edits = [parse_edit_arg(a) if isinstance(a, str) else a for a in args]
    return validate_edits(edits, TS, valid, FPS, transition_frames)


def _error(*args: str | Edit, **kw) -> str:
    with pytest.raises(DfmError) as info:
        _validate(*args, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_seconds_to_frames() -> None:
    (r,) = _validate("happy:high:2.0-5.5")
    # frames whose timestamp lies in [2.0, 5.5): 2.0 s * 23.976 = 47.95 -> 48; 5.5 s -> 131.87 -> last 131
    assert (r.first, r.stop) == (48, 132)
    assert TS[r.first] >= 2.0 > TS[r.first - 1]
    assert TS[r.stop - 1] < 5.5 <= TS[r.stop]
    assert r.intensity == pytest.approx(5 / 6)
    assert r.transition == 20
    assert r.index == 0


def test_frames_are_half_open_and_time_on_a_frame_is_included() -> None:
    (r,) = _validate("sad:0.7:f48-f120")
    assert (r.first, r.stop, r.n_frames) == (48, 120, 72)
    (r,) = _validate(Edit(float(TS[100]), float(TS[200]), "sad", "low"))
    assert (r.first, r.stop) == (100, 200)


def test_whole_video_and_adjacent_edits_are_fine() -> None:
    (r,) = _validate(f"neutral:0-{T / FPS}")
    assert (r.first, r.stop) == (0, T)
    (r,) = _validate("neutral:15-19.69")  # the duration as printed (19.686 s) reaches the last frame
    assert r.stop == T
    a, b = _validate("happy:low:f0-f100", "sad:low:f100-f200")
    assert a.stop == b.first


def test_results_keep_the_input_order() -> None:
    rs = _validate("sad:low:10-12", "happy:low:1-3")
    assert [r.index for r in rs] == [0, 1]
    assert rs[0].first > rs[1].first


def test_unknown_label() -> None:
    message = _error(Edit(1, 3, "joy", "high"))
    assert message.startswith("edit 1 (")
    assert "unknown label 'joy'; known labels: neutral, happy, sad, surprise, fear, anger, disgust" in message


def test_intensity_out_of_range() -> None:
    assert "intensity 1.3 is out of range [0, 1]" in _error("happy:low:5-7", Edit(1, 3, "sad", 1.3))
    assert "edit 2" in _error("happy:low:5-7", Edit(1, 3, "sad", 1.3))


def test_start_not_before_end() -> None:
    assert "must be before the end" in _error(Edit(3, 3, "sad", "low"))
    assert "must be before the end" in _error(Edit(80, 40, "sad", "low", unit="frames"))


def test_interval_outside_the_video() -> None:
    message = _error("happy:high:15-25")
    assert "ends at 25 s, after the end of the video (19.69 s, 472 frames)" in message
    message = _error("happy:high:30-32")
    assert "starts at 30 s, after the end of the video (19.69 s" in message
    message = _error("happy:high:f400-f500")
    assert "ends at frame 500" in message and "the video has 472 frames" in message
    message = _error("happy:high:f480-f500")
    assert "starts at frame 480, after the end of the video (frames 0-471)" in message


def test_edit_covering_no_frame() -> None:
    between = (TS[10] + TS[11]) / 2
    message = _error(Edit(between, between + 0.01, "sad", "low"), transition_frames=0)
    assert "covers no frame" in message and "frame 10" in message and "frame 11" in message


def test_overlapping_edits_name_both() -> None:
    message = _error("happy:high:2-5.5", "neutral:10-12", "sad:low:5-8")
    assert "edit 1 (happy:high:2-5.5) and edit 3 (sad:low:5-8) overlap on frames 120-131" in message
    message = _error("sad:low:f10-f100", "happy:high:f30-f60")  # one inside the other
    assert "edit 1 (sad:low:f10-f100) and edit 2 (happy:high:f30-f60) overlap on frames 30-59" in message


def test_too_short_for_the_transitions() -> None:
    message = _error("happy:high:f100-f112")
    assert "is too short: 12 frames (0.50 s)" in message
    assert ("with --transitions 20 (frames of blend at each end) an edit needs at least 21 frames "
            "(0.88 s at 23.976 fps): lengthen it or pass a smaller --transitions") in message
    (r,) = _validate("happy:high:f100-f121")  # exactly the minimum
    assert r.transition == 10
    assert "at least 7 frames" in _error("happy:high:f100-f106", transition_frames=6)
    (r,) = _validate("happy:high:f100-f101", transition_frames=0)  # hard cut: one frame is enough
    assert r.transition == 0


def test_minimum_and_transition_length() -> None:
    assert minimum_edit_frames(20) == 21
    assert minimum_edit_frames(5) == 7
    assert minimum_edit_frames(0) == 1
    assert transition_length(100, 20) == 20
    assert transition_length(41, 20) == 20
    assert transition_length(40, 20) == 19  # scaled down: one full-strength frame left
    assert transition_length(21, 20) == 10


def test_frames_without_a_face() -> None:
    valid = VALID.copy()
    valid[[100, 101, 102, 103, 104, 110, 300]] = False
    message = _error("happy:high:f50-f200", valid=valid)
    assert "edit 1 (happy:high:f50-f200) covers 6 frame(s) without a tracked face: 100-104, 110" in message
    assert "(4.17-4.34 s, 4.59 s)" in message
    _validate("happy:high:f120-f200", valid=valid)  # the same video, an edit on tracked frames only


def test_unknown_blendshape_in_nudges() -> None:
    message = _error(Edit(1, 3, nudges={"mouthSmile": 0.3}))
    assert "unknown blendshape 'mouthSmile' in nudges; it has two sides: use mouthSmile_L and mouthSmile_R" in message
    assert "did you mean eyeWide_L" in _error(Edit(1, 3, nudges={"eyewide_L": 0.3}))


def test_no_edits_is_fine() -> None:
    assert validate_edits([], TS, VALID, FPS) == []


def test_format_frame_ranges() -> None:
    assert format_frame_ranges([9, 3, 4, 5, 12, 13]) == "3-5, 9, 12-13"
    long = format_frame_ranges(range(0, 40, 2))
    assert long.startswith("0, 2, 4") and long.endswith("and 12 more ranges")
