"""The package layering of DESIGN/STYLE: stages never import pipelines or interfaces; pipelines never import
the interfaces. Checked on the source (every import statement, also those inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dfm"
STAGES = ["io", "face", "affect", "decoder", "edits", "render", "eval", "viz", "provenance"]
# dfm.parallel runs pipeline functions in workers: it may import nothing above stages either (the worker
# functions it runs are named by their callers)
FORBIDDEN = {**{s: ("dfm.pipelines", "dfm.jobs", "dfm.app") for s in STAGES}, "pipelines": ("dfm.jobs", "dfm.app"),
             "jobs": ("dfm.app",), "parallel": ("dfm.pipelines", "dfm.jobs", "dfm.app")}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_upper_layers(package):
    bad = []
    for path in sorted((SRC / package).rglob("*.py")):
        for line, module in imported_modules(path):
            if module.startswith(FORBIDDEN[package]):
                bad.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert not bad, "layering broken:\n" + "\n".join(bad)


def test_layer_check_sees_function_level_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from dfm.pipelines.session import Session\n")
    assert imported_modules(probe) == [(2, "dfm.pipelines.session")]


def test_app_holds_interfaces_only():
    # No pipeline modules left behind in app/ (the layout step of the web-tool issue).
    names = {p.stem for p in (SRC / "app").glob("*.py")}
    assert names == {"__init__"}, f"modules at the top of dfm.app: {sorted(names)}"
    assert not (SRC / "analysis.py").exists()
    for module in ("session", "analyze", "edit", "person", "evaluate"):
        assert (SRC / "pipelines" / f"{module}.py").exists()
