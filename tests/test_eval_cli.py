"""`dfm evaluate` end to end on a GRID clip, and its one-line user errors."""

from __future__ import annotations

import json

import pytest

from dfm.app.cli import main as cli

pytestmark = pytest.mark.integration


@pytest.fixture
def dfm_main(monkeypatch, assets_dir, tmp_path):
    """The `dfm` command line, run in-process, with the shared models and a fresh workspace."""
    monkeypatch.setenv("DFM_ASSETS", str(assets_dir))
    monkeypatch.setenv("DFM_WORKSPACE", str(tmp_path / "ws"))
    return cli.main


@pytest.fixture
def grid(videos_dir):
    return videos_dir / "grid_greyhair_man_01.mp4"


def test_user_errors_are_one_line(dfm_main, grid, tmp_path, capsys):
    assert dfm_main(["evaluate", str(grid), "-o", str(tmp_path / "o"), "--renderer", "foo"]) == 2
    assert "unknown renderer 'foo'; choose one of warp, warp+refine, neural" in capsys.readouterr().err
    assert dfm_main(["evaluate", str(grid), "-o", str(tmp_path / "o"), "--renderer", "neural", "--no-edit-run"]) == 2
    err = capsys.readouterr().err
    assert "no trained model for this video" in err and "dfm renderer train VIDEO --frames train" in err
    assert err.count("\n") == 1
    assert dfm_main(["evaluate", str(grid), "-o", str(tmp_path / "o"), "--split", "1.2"]) == 2
    assert "--split" in capsys.readouterr().err
    assert dfm_main(["evaluate", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "evaluation.json").write_text("{}")
    assert dfm_main(["evaluate", str(grid), "-o", str(tmp_path / "busy")]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_writes_json_table_heatmaps_and_edit_run(dfm_main, grid, tmp_path, capsys):
    out = tmp_path / "eval"
    assert dfm_main(["--quiet", "evaluate", str(grid), "-o", str(out), "--heatmaps", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads((out / "evaluation.json").read_text())
    sr = doc["self_reenactment"]
    assert sr["train_frames"] == [0, 52] and sr["test_frames"] == [52, 75]
    for s in ("A", "B"):
        assert 0 < sr["summary"][s]["apd"] < 30
    md = (out / "evaluation.md").read_text()
    assert "15.54" in md and "22.34" in md and "| A | DFM warp renderer |" in md
    assert len(doc["heatmaps"]) == 1 and (out / doc["heatmaps"][0]).stat().st_size > 10_000
    assert (out / "per_frame.csv").read_text().count("\n") == 1 + 23
    run = doc["edit_run"]
    assert run["stability"]["crop_change"]["outside_equal"] is True
    assert [e["label"] for e in run["emotion_fidelity"]["edits"]] == ["happy", "sad"]
    assert run["emotion_fidelity"]["overall"]["output"]["frames"] > 10
    assert (out / "edited.mp4").exists()
    stages = doc["speed"]["stages"]
    assert {"decode", "track", "fit", "affect", "plan", "render", "encode"} <= set(stages)
    assert doc["speed"]["end_to_end"]["fps"] > 0
    # a second run into the same folder needs --overwrite
    assert dfm_main(["--quiet", "evaluate", str(grid), "-o", str(out), "--no-edit-run", "--heatmaps", "0",
                     "--overwrite"]) == 0
