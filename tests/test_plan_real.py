"""Edit planning on the real Pexels clip (crying -> surprise -> laughing), and the `dfm plan` CLI."""

import numpy as np
import pytest

from dfm.app.cli.main import main
from dfm.edits import Plan, parse_edit_arg
from dfm.face.expressions import EXPRESSION_INDEX

pytestmark = pytest.mark.integration
SMILE = [EXPRESSION_INDEX["mouthSmile_L"], EXPRESSION_INDEX["mouthSmile_R"]]


def test_happy_over_crying_raises_and_sad_over_laughing_lowers_the_smile(session, sample_video, pexels_track):
    t = pexels_track.timestamps
    plan = session.plan(sample_video, [parse_edit_arg("happy:high:0.3-4.8"), parse_edit_arg(f"sad:high:{t[-1] - 5.5:.2f}-{t[-1]:.2f}")])
    crying = plan.weight == 1
    crying[t > 6] = False
    laughing = (plan.weight == 1) & (t > 6)
    orig, tgt = pexels_track.expression, plan.target
    assert tgt[crying][:, SMILE].mean() > orig[crying][:, SMILE].mean() + 0.1  # crying already stretches the lips
    assert tgt[laughing][:, SMILE].mean() < orig[laughing][:, SMILE].mean() - 0.3
    outside = plan.weight == 0
    np.testing.assert_array_equal(tgt[outside], orig[outside])


def test_plan_cli_writes_plan_and_plot(dfm_env, sample_video, pexels_track, tmp_path):
    out = tmp_path / "plan.npz"
    assert main(["plan", str(sample_video), "--edit", "surprise:medium:8-11", "-o", str(out), "-q"]) == 0
    plan = Plan.load(out)
    assert plan.target.shape == (472, 53) and plan.weight.max() == 1.0
    assert out.with_suffix(".png").stat().st_size > 20_000
    assert main(["plan", str(sample_video), "--edit", "surprise:medium:8-11", "-o", str(out), "-q"]) == 2
