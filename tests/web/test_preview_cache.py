"""The Previewer's caches return what a cold read returns: frames decoded forward (playback, stepping),
after a jump back, after a seek far ahead, and repeated renders of one frame."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.integration


def test_frames_match_cold_reads(session, web_clip):
    from dfm.edits import EditList
    from dfm.io.video import read_frame
    from dfm.pipelines.preview import Previewer

    p = Previewer(session, web_clip)
    empty = EditList([])
    for index in [3, 4, 5, 9, 2, 60, 61, 74, 0, 70]:
        got = p.frame(empty, index=index)
        assert got.index == index and got.weight == 0
        np.testing.assert_array_equal(got.image, np.asarray(read_frame(web_clip, index).image))


def test_repeated_render_is_the_same_frame(session, web_clip):
    from dfm.edits import EditList
    from dfm.pipelines.preview import Previewer

    edits = EditList.from_json_obj({"version": 1, "edits": [{"start": 0.6, "end": 2.4, "label": "sad", "intensity": 0.7}]})
    p = Previewer(session, web_clip)
    first = p.frame(edits, at=1.5)
    p.frame(edits, at=1.0)
    again = p.frame(edits, at=1.5)
    assert first.weight > 0 and "render" not in again.timings
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.image, session.preview(web_clip, edits, at=1.5))
