"""The package layers, read from every import statement (module level or inside functions):
space (plain data) <- asymllic (torch) <- search (Optuna, Ray, plots) <- asymllic_cli (the command line).

One rule, no exemption: a file of a package, its ``__main__.py`` included, imports only the layers below it.
``python -m asymllic`` runs the top layer as a program (``runpy``), not through an import; nothing imports an
entry script (``__main__.py``)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

LAYERS = ("space", "asymllic", "search", "asymllic_cli")  # bottom to top
LIBRARIES = {"space": set(), "asymllic": {"torch", "compressai"}, "search": {"optuna", "ray", "plotly"},
             "asymllic_cli": set()}  # heavy third-party packages first allowed at each layer


def forbidden(package: str) -> set:
    """Every layer above ``package`` and every library first allowed above it."""
    above = LAYERS[LAYERS.index(package) + 1:]
    return set(above) | {lib for layer in above for lib in LIBRARIES[layer]}


def _imports(path: Path) -> set:
    """Full names of the modules ``path`` imports (absolute; a relative import resolved from its package)."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


def _modules(package: str):
    yield from sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", LAYERS)
def test_each_layer_imports_only_the_layers_below(package):
    bad = {str(p.relative_to(ROOT)): sorted({n.split(".")[0] for n in _imports(p)} & forbidden(package))
           for p in _modules(package)}
    assert not {k: v for k, v in bad.items() if v}


def test_every_python_package_is_a_layer():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages == set(LAYERS)


def test_nothing_imports_an_entry_script():
    for package in LAYERS:
        for path in _modules(package):
            assert not [n for n in _imports(path) if n.endswith("__main__")], path
    for package in LAYERS:
        for path in (ROOT / "tests").glob("*.py"):
            assert f"{package}.__main__" not in _imports(path), path


def test_python_dash_m_asymllic_runs_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "asymllic", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "usage: asymllic" in proc.stdout


def test_the_command_line_runs_in_process():
    from conftest import run_cli

    out = run_cli("space", "show", "--part", "synthesis").stdout
    assert out.startswith("axis") and len(out.splitlines()) > 3
    assert run_cli("search", "--schedule", "nope", check=False).returncode == 2  # argparse: a bad choice


def test_building_the_parser_imports_no_heavy_library():
    code = ("import sys, asymllic_cli; asymllic_cli.setup_args(); "
            "print(sorted(m for m in ('torch', 'optuna', 'ray', 'plotly', 'pandas', 'compressai') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert proc.stdout.strip() == "[]"


def test_a_report_module_imports_nothing_of_the_module_that_runs_it():
    """search/<name>_report.py (tables, Markdown, figures) is imported by search/<name>.py (the running: studies,
    training, Ray), never the other way round."""
    reports = sorted((ROOT / "search").glob("*_report.py"))
    assert reports
    for path in reports:
        runner = "search." + path.stem[: -len("_report")]
        assert (ROOT / "search" / f"{path.stem[: -len('_report')]}.py").is_file(), path
        assert not [n for n in _imports(path) if n == runner or n.startswith(runner + ".")], path
