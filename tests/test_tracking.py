"""MediaPipe tracking: per-frame arrays, one subject (the largest, then the one that continues), no invention."""

import cv2
import numpy as np
import pytest

from dfm.face.tracking import track_frames
from dfm.io.video import read_frames_at

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def landmarker(assets_dir):
    return assets_dir / "mediapipe" / "face_landmarker.task"


def test_track_frames_returns_per_frame_arrays(landmarker, videos_dir):
    frames = read_frames_at(videos_dir / "grid_blonde_woman_01.mp4", list(range(8)))
    result = track_frames(((f.timestamp, np.asarray(f.image)) for f in frames), landmarker)
    assert result.valid.all() and result.landmarks.shape == (8, 478, 3)
    assert (result.blendshapes >= 0).all() and (result.blendshapes <= 1).all()
    x, y = result.landmarks[0, :, 0], result.landmarks[0, :, 1]
    assert 0 < x.min() < x.max() < 360 and 0 < y.min() < y.max() < 288  # pixel frame of a 360x288 clip


def test_the_largest_face_is_the_subject_and_a_blank_frame_is_invalid(landmarker, sample_video):
    big = np.asarray(read_frames_at(sample_video, [300])[0].image)
    canvas = big.copy()
    small = cv2.resize(big, None, fx=0.45, fy=0.45, interpolation=cv2.INTER_AREA)
    canvas[-small.shape[0]:, :small.shape[1]] = small  # a second, smaller face bottom-left
    blank = np.full_like(big, 40)
    result = track_frames([(0.0, canvas), (0.04, canvas), (0.08, blank)], landmarker)
    assert result.valid.tolist() == [True, True, False]
    assert result.n_faces[0] == 2
    width = np.ptp(result.landmarks[0, :, 0])
    assert width > 150  # the big face (~260 px wide), not the small copy (~115 px)
    assert np.all(result.landmarks[2] == 0)  # nothing invented for the blank frame


def test_mediapipe_imports_without_matplotlib_and_leaves_the_real_one_importable():
    import subprocess
    import sys

    code = ("import sys; from dfm.face.tracking import import_mediapipe; import_mediapipe(); "
            "from mediapipe.tasks.python import vision; assert vision.FaceLandmarker; "
            "assert 'matplotlib' not in sys.modules and 'matplotlib.pyplot' not in sys.modules; "
            "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; plt.figure(); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_the_c_result_reader_gives_exactly_the_public_results(landmarker, sample_video, monkeypatch):
    """FaceTracker.detect reads MediaPipe's C result into arrays; MediaPipe's own result objects must
    give the same faces, bit for bit (two faces in a frame, one, and none)."""
    import dfm.face.tracking as tracking

    big = np.asarray(read_frames_at(sample_video, [300])[0].image)
    two = big.copy()
    small = cv2.resize(big, None, fx=0.45, fy=0.45, interpolation=cv2.INTER_AREA)
    two[-small.shape[0]:, :small.shape[1]] = small
    frames = [two, big, np.full_like(big, 40), big]

    def detect_all() -> list:
        with tracking.FaceTracker(landmarker) as tracker:
            return [tracker.detect(f, 0.04 * i) for i, f in enumerate(frames)]

    fast = detect_all()
    monkeypatch.setattr(tracking, "_detect_for_video_arrays", lambda *args: None)
    public = detect_all()
    assert [len(f) for f in fast] == [2, 1, 0, 1]
    assert [len(f) for f in public] == [len(f) for f in fast]
    for mine, theirs in zip(fast, public):
        for a, b in zip(mine, theirs):
            np.testing.assert_array_equal(a.landmarks, b.landmarks)
            np.testing.assert_array_equal(a.blendshapes, b.blendshapes)
            np.testing.assert_array_equal(a.transform, b.transform)
            assert a.n_faces == b.n_faces
