"""The right person every time, on real faces: two GRID speakers side by side with the subject blacked out
for 0.5 s, and a cut from one speaker to another (clips composed from the shared clips at test time)."""

import json
import os

import numpy as np
import pytest

from dfm.errors import InputError
from dfm.face.subject import SubjectSpec, parse_subject
from dfm.io.video import iter_frames
from dfm.pipelines.analyze import AnalysisOptions
from subject_clips import cut, side_by_side

pytestmark = pytest.mark.integration

N = 44  # frames (1.76 s at 25 fps)
GAP = (15, 28)  # the left speaker is blacked out over these frames: 13 frames, 0.52 s
HALF = 360  # each GRID clip is 360 px wide; the left speaker's face lies left of x = 360


@pytest.fixture(scope="module")
def clips(tmp_path_factory, videos_dir):
    root = tmp_path_factory.mktemp("subject")
    left, right = videos_dir / "grid_blonde_woman_01.mp4", videos_dir / "grid_glasses_man_01.mp4"
    return {"two": side_by_side(left, right, root / "two.mp4", N, hide_left=GAP),
            "cut": cut(left, right, root / "cut.mp4", 30, 30), "root": root}


@pytest.fixture(scope="module")
def quick(session):
    """The shared session, its analysis without affect (faster) and with the subject chosen per test."""
    saved = session.analysis
    yield session
    session.analysis = saved


def analyse(session, video, subject):
    session.analysis = AnalysisOptions(affect="none", subject=parse_subject(subject))
    return session.analyze(video)


def centre_x(track):
    return track.landmarks[track.valid, :, 0].mean(1)


def test_subject_is_the_same_person_after_the_gap(quick, clips):
    track = analyse(quick, clips["two"], "leftmost")
    expected = np.ones(N, bool)
    expected[GAP[0]:GAP[1]] = False
    np.testing.assert_array_equal(track.valid, expected)  # hidden -> absent, never the other speaker
    assert (centre_x(track) < HALF).all()
    subject = track.meta["subject"]
    assert subject["subject_frames"] == [[0, GAP[0] - 1], [GAP[1], N - 1]]
    assert subject["other_face_frames"] == [[0, N - 1]]
    assert subject["person_changes"] == []  # the other speaker stayed where they were


def test_subject_choices_select_the_intended_face(quick, clips):
    faces = quick.faces_at(clips["two"], 0.2)
    assert len(faces) == 2 and faces[0].centre[0] < HALF < faces[1].centre[0]

    right = analyse(quick, clips["two"], "rightmost")
    assert right.valid.all() and (centre_x(right) > HALF).all()  # the right speaker is never hidden

    x, y = faces[1].centre
    clicked = analyse(quick, clips["two"], str(SubjectSpec.at(0.2, x, y)))  # what a click gives
    assert clicked.valid.all() and (centre_x(clicked) > HALF).all()
    x, y = faces[0].centre  # the left speaker, named in a frame after the gap: followed back to frame 0
    by_frame = analyse(quick, clips["two"], f"f{N - 4}:{x:.0f},{y:.0f}")
    assert by_frame.valid[:GAP[0]].all() and not by_frame.valid[GAP[0]:GAP[1]].any()
    assert (centre_x(by_frame) < HALF).all()

    largest = analyse(quick, clips["two"], "largest")
    bigger_is_right = faces[1].area > faces[0].area
    assert ((centre_x(largest) > HALF) == bigger_is_right).all()

    with pytest.raises(InputError, match="no face at"):
        analyse(quick, clips["two"], "0.2s:5,5")


def test_a_cut_to_another_person_is_detected_and_reported(quick, clips, capsys):
    from dfm.app.cli.main import main

    track = analyse(quick, clips["cut"], "largest")
    assert track.valid[:30].all() and not track.valid[30:].any()  # the second speaker is not the subject
    changes = track.meta["subject"]["person_changes"]
    assert [c["frame"] for c in changes] == [30] and changes[0]["kind"] == "to_other"
    assert changes[0]["time"] == pytest.approx(1.2)
    assert track.meta["subject"]["other_face_frames"] == [[30, 59]]

    assert main(["--workspace", str(quick.workspace), "-q", "analyze", str(clips["cut"]), "--affect", "none"]) == 0
    out = capsys.readouterr().out
    assert "change of person at frame 30 (1.20 s): another person from there" in out


def test_the_edit_lands_on_the_subject_and_the_report_lists_the_frames(quick, clips, capsys):
    from dfm.app.cli.main import main

    out_video = clips["root"] / "edited.mp4"
    argv = ["--workspace", str(quick.workspace), "-q", "edit", str(clips["two"]), "--subject", "leftmost",
            "--edit", "happy:high:0.0-0.56", "--edit", "happy:high:1.12-1.76", "--transitions", "4", "-o", str(out_video),
            "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["subject"]["spec"] == "leftmost"
    assert report["subject"]["subject_frames"] == [[0, GAP[0] - 1], [GAP[1], N - 1]]
    assert report["subject"]["other_face_frames"] == [[0, N - 1]]

    changed_left, changed_right = [], []
    for a, b in zip(iter_frames(clips["two"]), iter_frames(out_video)):
        diff = np.abs(np.asarray(a.image, np.int16) - np.asarray(b.image, np.int16)).max(axis=2)
        changed_left.append(float((diff[:, :HALF] > 24).mean()))
        changed_right.append(float((diff[:, HALF:] > 24).mean()))
    changed_left, changed_right = np.array(changed_left), np.array(changed_right)
    assert max(changed_right) < 1e-3  # the other speaker's face is untouched
    shown = np.r_[4:GAP[0] - 4, GAP[1] + 4:N - 4]  # the subject's frames, away from the ramps in and out
    assert (changed_left[shown] > 5e-3).all()  # the smile lands on the subject (>0.5% of the half changes)
    assert max(changed_left[GAP[0]:GAP[1]]) < 1e-3  # frames without the subject pass through
    if os.environ.get("DFM_TEST_LOOK"):  # a contact sheet to look at: input over output, before and after the gap
        import cv2

        from dfm.io.video import read_frames_at

        rows = [np.concatenate([np.asarray(f.image) for f in read_frames_at(v, [8, GAP[1] + 8])], axis=1)
                for v in (clips["two"], out_video)]
        cv2.imwrite(os.environ["DFM_TEST_LOOK"], cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
