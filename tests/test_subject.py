"""The subject of a job (dfm.face.subject): the spec and its parser, and the selector on synthetic faces
whose identity is known — kept across a gap and a swap of places, never handed to another person."""

import cv2
import numpy as np
import pytest

from dfm.errors import InputError
from dfm.face.subject import (LEFT_EYE, NOSE_TIP, RIGHT_EYE, FaceBox, SubjectSelector, SubjectSpec, face_signature,
                              SubjectIdentity, frame_ranges, parse_subject, pick_by_rule)


# -- the spec


@pytest.mark.parametrize("text, spec", [
    ("largest", SubjectSpec()),
    ("Leftmost", SubjectSpec("leftmost")),
    ("rightmost", SubjectSpec("rightmost")),
    ("2.5s:320,180", SubjectSpec("point", seconds=2.5, point=(320.0, 180.0))),
    ("2.5:320,180", SubjectSpec("point", seconds=2.5, point=(320.0, 180.0))),
    ("f60:320.5, 180", SubjectSpec("point", frame=60, point=(320.5, 180.0))),
    (None, SubjectSpec()),
])
def test_parse_subject(text, spec):
    assert parse_subject(text) == spec
    assert parse_subject(str(spec)) == spec  # str() is the canonical, parseable form (cache keys, reports)


@pytest.mark.parametrize("text", ["biggest", "2.5s", "2.5s:320", "f:1,2", "x:1,2", "", "2.5s:a,b"])
def test_parse_subject_refuses_nonsense(text):
    with pytest.raises(InputError, match="subject"):
        parse_subject(text)


def test_spec_frame_index_and_bounds():
    ts = np.arange(50) / 25.0
    assert SubjectSpec.at(1.0, 5, 5).frame_index(ts) == 25
    assert SubjectSpec("point", frame=7, point=(1, 1)).frame_index(ts) == 7
    assert SubjectSpec("largest").frame_index(ts) is None
    with pytest.raises(InputError, match="outside"):
        SubjectSpec("point", frame=50, point=(1, 1)).frame_index(ts)
    with pytest.raises(InputError, match="outside"):
        SubjectSpec.at(9.0, 1, 1).frame_index(ts)


def test_frame_ranges():
    assert frame_ranges(np.array([1, 1, 0, 0, 1, 0, 1, 1], bool)) == [[0, 1], [4, 4], [6, 7]]
    assert frame_ranges(np.zeros(4, bool)) == []


def test_pick_by_rule():
    boxes = [FaceBox(200, 10, 260, 70), FaceBox(10, 10, 100, 100), FaceBox(400, 10, 430, 40)]
    assert pick_by_rule(boxes, SubjectSpec("largest")) == 1
    assert pick_by_rule(boxes, SubjectSpec("leftmost")) == 1
    assert pick_by_rule(boxes, SubjectSpec("rightmost")) == 2
    assert pick_by_rule(boxes, SubjectSpec.at(0, 230, 40)) == 0
    assert pick_by_rule(boxes, SubjectSpec.at(0, 300, 300)) is None
    assert pick_by_rule([], SubjectSpec()) is None


# -- synthetic people: a landmark layout, a skin colour and a skin texture of their own


class Person:
    def __init__(self, seed: int, colour):
        rng = np.random.default_rng(seed)
        angle = rng.uniform(0, 2 * np.pi, 478)
        radius = np.sqrt(rng.uniform(0, 1, 478))
        self.shape = np.stack([38 * radius * np.cos(angle), 48 * radius * np.sin(angle), rng.normal(0, 4, 478)], 1)
        self.shape[list(RIGHT_EYE)] = [[-26, -12, 0], [-10, -12, 0]]
        self.shape[list(LEFT_EYE)] = [[10, -12, 0], [26, -12, 0]]
        self.shape[NOSE_TIP] = [0, 8, -10]
        self.colour = np.array(colour, np.float32)
        self.texture = rng.uniform(-60, 60, (100, 80, 3)).astype(np.float32)
        self.texture = cv2.GaussianBlur(self.texture, (0, 0), 3)

    def draw(self, canvas: np.ndarray, cx: float, cy: float, rng) -> np.ndarray:
        """Paint the face centred at (cx, cy) into `canvas`; its landmarks (478, 3) with a little jitter."""
        x0, y0 = int(cx) - 40, int(cy) - 50
        patch = np.clip(self.colour + self.texture + rng.normal(0, 2, self.texture.shape), 0, 255)
        mask = np.zeros((100, 80), np.uint8)
        cv2.ellipse(mask, (40, 50), (40, 50), 0, 0, 360, 1, -1)
        region = canvas[y0:y0 + 100, x0:x0 + 80]
        region[mask > 0] = patch[mask > 0].astype(np.uint8)
        return (self.shape + [cx, cy, 0] + rng.normal(0, 0.3, self.shape.shape)).astype(np.float32)


ALICE = Person(1, (190, 150, 130))
BOB = Person(2, (120, 90, 70))


def frame(faces, rng, shuffle=True, background=60):
    canvas = np.full((140, 360, 3), background, np.uint8)
    drawn = [p.draw(canvas, x, 70, rng) for p, x in faces]
    who = [p for p, _ in faces]
    if shuffle and len(drawn) > 1:
        order = rng.permutation(len(drawn))
        drawn, who = [drawn[k] for k in order], [who[k] for k in order]
    return canvas, drawn, who


def test_signature_tells_people_apart():
    rng = np.random.default_rng(0)
    a1 = face_signature(*_one(ALICE, rng))
    a2 = face_signature(*_one(ALICE, rng))
    b = face_signature(*_one(BOB, rng))
    alice = SubjectIdentity(a1)
    assert alice.distance(a2) < 1.5 and alice.distance(b) > 3 * alice.distance(a2) + 3


@pytest.mark.parametrize("n", [5, 6, 7, 8, 50, 100])
def test_the_spread_is_numpys_75th_percentile(n):
    from dfm.face.subject import _percentile75

    rows = np.random.default_rng(n).gamma(2.0, 0.3, (n, 3))
    np.testing.assert_array_equal(_percentile75(rows), np.percentile(rows, 75, axis=0))


def test_alignment_undoes_a_rotation_and_never_reflects():
    from dfm.face.subject import _aligned

    rng = np.random.default_rng(1)
    ref = rng.normal(size=(9, 3))
    ref -= ref.mean(0)
    c, s = np.cos(0.4), np.sin(0.4)
    turned = ref @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(_aligned(turned, ref), ref, atol=1e-12)
    mirrored = ref * np.array([1.0, 1.0, -1.0])  # the best orthogonal fit is the mirror: a rotation is used
    r = np.linalg.lstsq(mirrored, _aligned(mirrored, ref), rcond=None)[0]
    assert np.linalg.det(r) == pytest.approx(1.0)


def _one(person, rng):
    canvas, drawn, _ = frame([(person, 180)], rng)
    return canvas, drawn[0]


def test_subject_is_kept_across_a_gap_and_a_swap_of_places():
    rng = np.random.default_rng(3)
    selector = SubjectSelector(SubjectSpec("leftmost"))
    script = ([[(ALICE, 90), (BOB, 270)]] * 10  # Alice on the left is the subject
              + [[(BOB, 270)]] * 12  # Alice hidden: only Bob is seen
              + [[(BOB, 90), (ALICE, 270)]] * 10)  # Alice back, now on the right; Bob on the left
    chosen = []
    for faces in script:
        canvas, drawn, who = frame(faces, rng)
        k = selector.choose(canvas, drawn)
        chosen.append(None if k is None else who[k])
    assert chosen[:10] == [ALICE] * 10
    assert chosen[10:22] == [None] * 12  # absent, never Bob
    assert chosen[22:] == [ALICE] * 10
    report = selector.report().to_dict()
    assert report["subject_frames"] == [[0, 9], [22, 31]]
    assert report["other_face_frames"] == [[0, 31]]
    assert report["spec"] == "leftmost"
    assert report["person_changes"] == []  # hidden while Bob stayed in his place: not a change of person


def test_a_cut_to_another_person_is_a_change_not_the_subject():
    rng = np.random.default_rng(4)
    selector = SubjectSelector(SubjectSpec())
    chosen = []
    for faces in [[(ALICE, 180)]] * 10 + [[(BOB, 180)]] * 10 + [[(ALICE, 180)]] * 5:
        canvas, drawn, who = frame(faces, rng)
        k = selector.choose(canvas, drawn)
        chosen.append(None if k is None else who[k])
    assert chosen == [ALICE] * 10 + [None] * 10 + [ALICE] * 5
    report = selector.report().to_dict(np.arange(25) / 25.0)
    assert report["person_changes"] == [{"frame": 10, "kind": "to_other", "time": 0.4},
                                        {"frame": 20, "kind": "to_subject", "time": 0.8}]
    assert report["other_face_frames"] == [[10, 19]]


def test_a_point_spec_follows_that_face_from_the_start():
    rng = np.random.default_rng(5)
    canvas, drawn, who = frame([(ALICE, 90), (BOB, 270)], rng, shuffle=False)
    reference = face_signature(canvas, drawn[1])  # what subject_reference measures at the spec frame
    selector = SubjectSelector(SubjectSpec("point", frame=6, point=(270.0, 70.0)), reference, spec_frame=6)
    for _ in range(12):
        canvas, drawn, who = frame([(ALICE, 90), (BOB, 270)], rng)
        k = selector.choose(canvas, drawn)
        assert who[k] is BOB


def test_a_cut_to_another_person_elsewhere_in_the_frame_is_a_change():
    rng = np.random.default_rng(6)
    selector = SubjectSelector(SubjectSpec())
    for k in range(20):
        shot = [(ALICE, 90)] if k < 10 else [(BOB, 270)]
        canvas, drawn, who = frame(shot, rng, background=60 if k < 10 else 170)
        assert (selector.choose(canvas, drawn) is None) == (k >= 10)
    report = selector.report().to_dict()
    assert [c["frame"] for c in report["person_changes"]] == [10]
    assert [c["frame"] for c in report["scene_changes"]] == [10]
