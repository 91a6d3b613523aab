"""`dfm gui`: registered in the CLI, binds 127.0.0.1 by default, warns for other hosts, one-line errors."""

from __future__ import annotations

import pytest

pytest.importorskip("uvicorn")


@pytest.fixture
def served(monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_gui_defaults_to_localhost(served, tmp_path, capsys):
    from dfm.app.cli.main import main

    assert main(["--workspace", str(tmp_path), "gui"]) == 0
    app, kw = served[0]
    assert kw["host"] == "127.0.0.1" and kw["port"] == 7860
    err = capsys.readouterr().err
    assert "http://127.0.0.1:7860/" in err and "warning" not in err
    assert app.title == "DFM web tool"


def test_gui_other_host_warns(served, tmp_path, capsys):
    from dfm.app.cli.main import main

    assert main(["--workspace", str(tmp_path), "gui", "--host", "0.0.0.0", "--port", "8000", "--max-upload-mb", "10"]) == 0
    assert served[0][1]["host"] == "0.0.0.0"
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "dfm: warning: listening on 0.0.0.0: anyone on the network can reach" in err


@pytest.mark.parametrize("args,message", [(["--port", "0"], "--port must be in 1..65535"),
                                          (["--max-upload-mb", "-1"], "--max-upload-mb must be positive")])
def test_gui_bad_options_are_one_line_errors(served, tmp_path, capsys, args, message):
    from dfm.app.cli.main import main

    assert main(["--workspace", str(tmp_path), "gui", *args]) == 2
    assert capsys.readouterr().err.strip() == f"dfm: error: {message}" + (", got 0" if "port" in message else ", got -1")
    assert served == []
