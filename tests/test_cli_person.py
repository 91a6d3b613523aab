"""`dfm person ...` through dfm.app.cli.main: exit codes, one-line errors, and the full flow on a real clip."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dfm.app.cli import main as cli


@pytest.fixture
def dfm():
    """The `dfm` command line, run in-process."""
    return cli.main


def _one_line_error(capsys, pattern: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("dfm: error: ") and pattern in err, err
    return err


def test_unknown_person_is_a_one_line_error_with_exit_2(dfm, tmp_path, capsys):
    for action in (["train", "nobody"], ["dataset", "nobody"], ["show", "nobody", "-o", str(tmp_path / "o")]):
        assert dfm(["person", *action, "--workspace", str(tmp_path), "--quiet"]) == 2
        _one_line_error(capsys, "unknown person 'nobody'")
    assert not (tmp_path / "o").exists()


def test_add_errors(dfm, tmp_path, capsys):
    assert dfm(["--workspace", str(tmp_path), "person", "add", "bob", str(tmp_path / "nope.mp4")]) == 2
    _one_line_error(capsys, "video not found")
    (tmp_path / "v.mp4").write_bytes(b"x")
    assert dfm(["person", "add", "../bob", str(tmp_path / "v.mp4"), "--workspace", str(tmp_path)]) == 2
    _one_line_error(capsys, "invalid person name")


def test_list_of_an_empty_workspace(dfm, tmp_path, capsys):
    assert dfm(["person", "list", "--workspace", str(tmp_path)]) == 0
    assert "no persons" in capsys.readouterr().out


def test_usage_errors_exit_2(dfm, tmp_path):
    with pytest.raises(SystemExit) as e:
        dfm(["person", "train", "x", "--preset", "huge", "--workspace", str(tmp_path)])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        dfm(["person", "show", "x", "--workspace", str(tmp_path)])  # -o is required
    assert e.value.code == 2


@pytest.mark.integration
def test_person_flow_on_the_pexels_clip(dfm, dfm_env, tmp_path, sample_video, capsys):
    ws = Path(os.environ["DFM_WORKSPACE"])  # the run-wide workspace: the clip's analysis is shared
    name = "pexels-cli"
    common = ["--workspace", str(ws), "--quiet"]

    assert dfm(["person", "add", name, str(sample_video), *common]) == 0
    out = capsys.readouterr().out
    assert f"person {name}: 1 video(s), 472/472 frames" in out

    assert dfm(["person", "add", name, str(sample_video), *common]) == 2
    _one_line_error(capsys, "already exists")

    assert dfm(["person", "dataset", name, *common]) == 0
    out = capsys.readouterr().out
    assert "472 pairs" in out and "| happy | high |" in out and "va_scatter:" in out
    folder = ws / "persons" / name
    for f in ("dataset.npz", "va_scatter.png", "coverage.md", "coverage.json"):
        assert (folder / f).is_file(), f

    assert dfm(["person", "train", name, "--preset", "fast", *common]) == 0
    out = capsys.readouterr().out
    assert "RMSE train" in out and "validation" in out and "baseline" in out and "prior blend per label" in out
    assert out.count("% prior") == 7
    assert "prior blend" in (folder / "coverage.md").read_text()  # coverage now carries the blend
    assert json.loads((folder / "decoder" / "card.json").read_text())["data"]["person"] == name

    assert dfm(["person", "train", name, "--epochs", "3", *common]) == 2
    _one_line_error(capsys, "--epochs applies to the network presets")

    show = tmp_path / "show"
    assert dfm(["person", "show", name, "-o", str(show), *common]) == 0
    out = capsys.readouterr().out
    for f in ("decoder_strip.png", "va_scatter.png", "report.md"):
        assert (show / f).is_file() and (show / f).stat().st_size > 1000, f
    report = (show / "report.md").read_text()
    assert "mean-expression baseline" in report and "prior blend" in report
    assert dfm(["person", "show", name, "-o", str(show), *common]) == 2  # outputs are not silently replaced
    _one_line_error(capsys, "already exists; pass --overwrite")
    assert dfm(["person", "show", name, "-o", str(show), "--overwrite", "--orbit", "8", *common]) == 0
    capsys.readouterr()

    assert dfm(["--quiet", "--workspace", str(ws), "person", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{name}: 1 video(s), 472/472 frames with a face, dataset: 472 pairs, decoder: fast" in out
