"""Every command's options are declared once (``asymllic.options.option`` fields) and their flags generated from
the declarations; the shared defaults (root, schedule, device, precision, seed) are written once."""
from __future__ import annotations

import argparse
import ast
import dataclasses
from pathlib import Path

import pytest

from asymllic import options as declared
from asymllic_cli import setup_args
from asymllic_cli.options import help_text

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("space", "asymllic", "search", "asymllic_cli")
# each shared default, the one constant that holds it, and the literal no parameter or declaration may repeat
SHARED = {"root": ("DEFAULT_ROOT", declared.DEFAULT_ROOT), "schedule": ("DEFAULT_SCHEDULE", declared.DEFAULT_SCHEDULE),
          "device": ("DEFAULT_DEVICE", declared.DEFAULT_DEVICE),
          "precision": ("DEFAULT_PRECISION", declared.DEFAULT_PRECISION), "seed": ("DEFAULT_SEED", declared.DEFAULT_SEED)}


def commands(parser: argparse.ArgumentParser, path: tuple = ()) -> dict:
    """{command words: its parser} for every command that runs (a leaf of the sub-command tree)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {path: parser}
    found = {}
    for name, p in subs[0].choices.items():
        found.update(commands(p, path + (name,)))
    return found


def test_every_flag_of_every_command_comes_from_a_declaration():
    every = commands(setup_args())
    assert len(every) >= 23 and ("train", "stage1") in every and ("reproduce",) in every
    hand_written = []
    for words, parser in every.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or not action.option_strings:
                continue  # -h, and positional arguments (which may stay hand-written)
            f = getattr(action, "declaration", None)
            if f is None:
                hand_written.append(f"{' '.join(words)} {action.option_strings[0]}")
                continue
            meta = declared.meta(f)
            assert action.dest == f.name and meta["help"].split(" (default:")[0][:40] in action.help.replace("%%", "%")
            assert action.option_strings[0] == (meta["flag"] or "--" + f.name.replace("_", "-"))
    assert not hand_written, f"flags not generated from a declaration: {hand_written}"


def test_the_shared_options_are_one_declaration_each():
    every = commands(setup_args())
    for name in ("root", "schedule", "device", "precision", "seed", "png", "quiet", "max_gmacs", "cache", "top",
                 "trial", "budget"):
        fields = {id(a.declaration) for p in every.values() for a in p._actions
                  if getattr(a, "declaration", None) is not None and a.dest == name}
        assert len(fields) == 1, f"--{name} is declared {len(fields)} times"
    # precision has its choices everywhere, PNG copies have one polarity
    for words, parser in every.items():
        for a in parser._actions:
            if a.dest == "precision":
                assert tuple(a.choices) == declared.PRECISIONS, words
            if a.dest == "png":
                assert a.option_strings == ["--png"] and a.const is True, words


def test_a_flag_shows_the_default_it_takes():
    stage1 = commands(setup_args())[("train", "stage1")]
    by_dest = {a.dest: a for a in stage1._actions}
    assert by_dest["schedule"].default == declared.DEFAULT_SCHEDULE and by_dest["root"].default == declared.DEFAULT_ROOT
    assert f"(default: {declared.DEFAULT_SCHEDULE})" in by_dest["schedule"].help
    layers = {a.dest: a for a in commands(setup_args())[("figure", "layers")]._actions}
    assert layers["convention"].default == "thop" and layers["convention"].help.endswith("(default: thop)")
    confirm = {a.dest: a for a in commands(setup_args())[("confirm",)]._actions}
    assert confirm["device"].default is argparse.SUPPRESS and confirm["device"].help.endswith("(default: the study's)")
    f = next(f for f in dataclasses.fields(declared.Seed) if f.name == "seed")
    assert help_text(f).endswith(f"(default: {declared.DEFAULT_SEED})")


def _literal_defaults(tree: ast.AST) -> list:
    """(name, value, line) of every parameter and declared option named as a shared default whose default is a
    literal."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            pos = a.posonlyargs + a.args
            pairs = list(zip(pos[len(pos) - len(a.defaults):], a.defaults)) + list(zip(a.kwonlyargs, a.kw_defaults))
            found += [(arg.arg, d.value, d.lineno) for arg, d in pairs if isinstance(d, ast.Constant)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            v = node.value
            if isinstance(v, ast.Call) and getattr(v.func, "id", None) == "option" and v.args:
                v = v.args[0]
            if isinstance(v, ast.Constant):
                found.append((node.target.id, v.value, node.lineno))
    return found


def test_no_shared_default_is_written_twice():
    """root "results", schedule "cpu", device and precision "auto", seed 0: each written once, as a constant of
    asymllic.options; parameters and declarations name the constant. (A torch function's own ``device="cpu"``
    is where its tensors go, not the user's device option.)"""
    repeated = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name, value, line in _literal_defaults(ast.parse(path.read_text())):
                if name in SHARED and value == SHARED[name][1] and not isinstance(value, bool):
                    repeated.append(f"{path.relative_to(ROOT)}:{line}: {name}={value!r} (use {SHARED[name][0]})")
    assert not repeated, "\n".join(repeated)


@pytest.mark.parametrize("words", [("search", "--study", "s", "--quiet"), ("teacher", "train", "--quiet"),
                                   ("eval", "m", "--quiet"), ("confirm", "s", "--quiet"), ("rd", "d", "--teachers",
                                   "t", "--quiet"), ("reproduce", "table1", "--quiet")])
def test_long_commands_take_quiet(words):
    assert setup_args().parse_args(list(words)).quiet is True


def test_a_stage_without_a_teacher_names_the_one_it_looked_for(tmp_path, capsys):
    from asymllic_cli import main

    assert main(["train", "stage1", "--decoder", "paper", "--root", str(tmp_path), "--schedule", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"asymllic: error: no teacher checkpoint at {tmp_path / 'teacher' / 'smoke-0.0067' / 'codec.pt'}; "
                   f"run 'asymllic teacher train --schedule smoke --root {tmp_path}' or pass --teacher")
    assert not (tmp_path / "stage1").exists()
