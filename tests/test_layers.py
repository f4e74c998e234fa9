"""The package layers, read from every import statement (module level or inside functions):
space (plain data) <- asymllic (torch) <- search (Optuna, Ray, plots) <- asymllic.cli (the command line)."""
import ast
from pathlib import Path

import pytest

from conftest import ROOT

# package -> top-level modules it must never import
FORBIDDEN = {
    "space": {"torch", "optuna", "ray", "asymllic", "search", "compressai", "plotly"},
    "asymllic": {"search", "optuna", "ray", "plotly"},  # asymllic.cli excepted: the top layer
    "search": set(),
}


def _imports(path: Path) -> set:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _modules(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        if package == "asymllic" and "cli" in path.relative_to(ROOT / package).parts[:1]:
            continue
        yield path


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_each_layer_imports_only_the_layers_below(package):
    bad = {str(p.relative_to(ROOT)): sorted(_imports(p) & FORBIDDEN[package]) for p in _modules(package)}
    assert not {k: v for k, v in bad.items() if v}


def test_search_never_imports_the_command_line():
    for path in _modules("search"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                assert not node.module.startswith("asymllic.cli"), path


def test_python_dash_m_asymllic_runs_the_command_line():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "asymllic", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "usage: asymllic" in proc.stdout
