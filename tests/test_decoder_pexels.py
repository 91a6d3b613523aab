"""Acceptance on the real Pexels clip (crying -> surprise -> laughing) used as a one-video collection.

Runs the analysis stage (tracking, fit, `fer` affect; about 20 s on 2 cores, cached in a temporary
workspace), trains the default person decoder on the clip's (VA, expression) pairs with the time-block
split, and checks the issue's acceptance: validation RMSE clearly below the mean-expression baseline,
and decoding the happy region gives more mouthSmile than decoding the sad region.
"""

from __future__ import annotations

import numpy as np
import pytest

from dfm.decoder import PersonDecoder
from dfm.face.expressions import expression_index

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def pexels_pairs(pexels_track):
    track = pexels_track
    ok = track.valid & np.isfinite(track.valence) & np.isfinite(track.arousal)
    idx = np.flatnonzero(ok)
    va = np.stack([track.valence[idx], track.arousal[idx]], 1)
    return va, track.expression[idx], idx


def test_person_decoder_on_the_pexels_clip(pexels_pairs, tmp_path):
    va, expr, frames = pexels_pairs
    assert len(frames) > 300
    person = PersonDecoder().fit(va, expr, video_ids=np.zeros(len(frames), int), frame_index=frames,
                                 data_info={"person": "pexels"})
    rep = person.report_
    assert rep.n_val > 40
    assert rep.rmse_val < 0.85 * rep.rmse_val_baseline, rep.summary()
    smile = [expression_index("mouthSmile_L"), expression_index("mouthSmile_R")]
    happy = person.decode_label("happy", "high")[smile].mean()
    sad = person.decode_label("sad", "high")[smile].mean()
    assert happy > sad + 0.2, (happy, sad)
    # the person's own data decodes the happy region (the clip ends laughing)
    assert person.coverage_report().share("happy", "high") > 0.5
    person.save(tmp_path / "pexels")
    again = PersonDecoder.load(tmp_path / "pexels")
    assert np.array_equal(again.predict(va), person.predict(va))
