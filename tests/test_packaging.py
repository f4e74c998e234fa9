"""Packaging: the lock pins what is installed, the wheel works outside the checkout (its reference figures ship as
package data), the wheels for a GPU machine are checked statically (scripts/check_wheels.py), and no tracked
file names a path outside the repository."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, run_cli, script_module
from space import anchors

SHARED = ROOT.parent / "shared" / "anchors"  # the project's reference figures, where the checkout has them
GPU_FREEZE = ROOT / "tests" / "data" / "gpu_freeze.txt"  # a GPU machine's pip freeze


def _check_wheels():
    return script_module("scripts/check_wheels.py")


# --- the anchors ------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no {SHARED} beside this checkout to compare with")
def test_packaged_anchors_equal_shared():
    """space/anchors_data is a byte-for-byte copy of shared/anchors' figures: they cannot drift apart."""
    packaged = sorted(str(p.relative_to(anchors.PACKAGED)) for p in anchors.PACKAGED.rglob("*") if p.is_file())
    shared = sorted(str(p.relative_to(SHARED)) for p in SHARED.rglob("*.json"))
    assert packaged == shared
    for rel in packaged:
        assert (anchors.PACKAGED / rel).read_bytes() == (SHARED / rel).read_bytes(), rel


def test_anchors_default_to_the_package_and_missing_ones_are_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(anchors.ENV, raising=False)
    assert anchors.anchors_dir() == anchors.PACKAGED
    assert json.loads(anchors.paper_tables().read_text())
    assert anchors.kodak_anchor("bpg_444_x265_ycbcr").is_file() and anchors.kodak_anchor("vtm.json").is_file()
    assert anchors.tcm_state_dict_shapes().is_file()

    monkeypatch.setenv(anchors.ENV, str(tmp_path / "nowhere"))
    with pytest.raises(anchors.AnchorError, match=r"no anchors folder at .*nowhere \(from \$ASYMLLIC_ANCHORS\)"):
        anchors.paper_tables()
    monkeypatch.setenv(anchors.ENV, str(tmp_path))  # an override of the same layout, here empty
    with pytest.raises(anchors.AnchorError, match="missing anchor file .*asymllic_paper_tables.json"):
        anchors.paper_tables()
    with pytest.raises(anchors.AnchorError, match="no Kodak anchors folder"):
        anchors.kodak_dir()
    (tmp_path / "kodak").mkdir()
    shutil.copy(anchors.PACKAGED / "kodak" / "hm.json", tmp_path / "kodak")
    with pytest.raises(anchors.AnchorError, match=r"no Kodak anchor vtm.json in .* \(there: hm\)"):
        anchors.kodak_anchor("vtm")
    assert anchors.kodak_anchor("hm") == tmp_path / "kodak" / "hm.json"  # the override is used

    # the command line: one line, no traceback
    test = tmp_path / "hm.json"
    shutil.copy(anchors.PACKAGED / "kodak" / "hm.json", test)
    proc = run_cli("bdrate", test, "--kodak", check=False, env={anchors.ENV: str(tmp_path / "nowhere")})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"asymllic: error: anchors: no anchors folder at {tmp_path / 'nowhere'} (from $ASYMLLIC_ANCHORS)"]


# --- the wheel, installed outside the checkout ------------------------------------------------------------------

def _source_tree(dest: Path) -> Path:
    """The checkout's files that git does not ignore (what a fresh clone plus new files holds), copied."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for f in files:
        if f and (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / f, dest / f)
    return dest


@pytest.mark.xdist_group("packaging")
def test_wheel_works_outside_the_checkout(tmp_path):
    """Build the wheel, install it into a folder of its own and run the commands that read the anchors, and a
    smoke search, from another folder with only that folder and the environment's packages on the path."""
    t0 = time.perf_counter()
    src, dist, site, work = (tmp_path / d for d in ("src", "dist", "site", "work"))
    _source_tree(src)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(pip[:3] + ["wheel", *pip[3:], "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist),
                              str(src)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = dist.glob("asymllic-*.whl")
    with zipfile.ZipFile(wheel) as z:
        shipped = sorted(n for n in z.namelist() if n.startswith("space/anchors_data/"))
    assert shipped == sorted(f"space/anchors_data/{p.relative_to(anchors.PACKAGED).as_posix()}"
                             for p in anchors.PACKAGED.rglob("*") if p.is_file())
    subprocess.run(pip[:3] + ["install", *pip[3:], "--no-deps", "--no-index", "--no-compile", "--target", str(site),
                              str(wheel)], check=True, capture_output=True, cwd=tmp_path)
    work.mkdir()
    packages = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", anchors.ENV, "PYTHONHOME")}
    env.update(PYTHONPATH=os.pathsep.join([str(site), *packages]), OMP_NUM_THREADS="1", PYTHONNOUSERSITE="1")
    py = [sys.executable, "-S"]  # no site processing: the checkout's editable install is not on the path

    def run(*args, **kw):
        return subprocess.Popen([*py, *args], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, **kw)

    def done(proc, what: str) -> str:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{out[-2000:]}\n{err[-3000:]}"
        return out

    test = work / "hm.json"
    shutil.copy(anchors.PACKAGED / "kodak" / "hm.json", test)
    bdrate = run("-m", "asymllic", "bdrate", str(test), "--kodak")  # alongside the rest: two cores
    init = run("-m", "asymllic", "init", "teacher", "--out", "t.pt")
    # where the packages come from, and the paper's figures that `space presets --complexity` prints beside its
    # counts, through the same function (the command itself counts every preset at 768x512 with thop: about 70 s
    # of CPU that says nothing about packaging)
    where = json.loads(done(run("-c", "import json, sys, space, asymllic, search, space.anchors as a; "
                                "from asymllic.report import paper_target; print(json.dumps([m.__file__ for m in "
                                "(space, asymllic, search)] + [str(a.paper_tables()), paper_target('g_s/ours'), "
                                "sys.path]))"), "import"))
    *files, tables, target, path = where
    assert all(Path(f).is_relative_to(site) for f in files), files
    assert Path(tables) == site / "space" / "anchors_data" / "asymllic_paper_tables.json"
    assert target[0] == "g_s" and len(target[1]) >= 2, target
    assert str(ROOT) not in path and str(src) not in path, path

    out = done(bdrate, "bdrate --kodak")
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all(line.endswith(" %") for line in lines), out  # BPG and VTM, each a figure
    assert "BPG" in lines[0] and "VTM" in lines[1], out

    done(init, "init teacher")
    out = done(run("-m", "asymllic", "search", "--study", "s", "--part", "synthesis", "--schedule", "smoke",
                   "--trials", "1", "--teacher", "t.pt", "--no-presets", "--mac-budget", "none", "--sampler", "random",
                   "--root", "studies"), "smoke search")
    assert "1 trials {'COMPLETE': 1}" in out, out
    print(f"wheel built, installed and run outside the checkout in {time.perf_counter() - t0:.0f} s")


# --- the lock ---------------------------------------------------------------------------------------------------

def test_lock_pins_the_installed_versions():
    """constraints.txt pins every package exactly; each one installed here has the locked version (make setup
    installs with it), and every dependency pyproject.toml declares, test extra included, is locked."""
    import importlib.metadata as md

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    cw = _check_wheels()
    lock = cw.locked()  # exits naming any package that is not pinned as name==version
    drift = []
    for name, version in sorted(lock.items()):
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            continue  # only another platform's set-up installs it
        if Version(installed) != Version(version):
            drift.append(f"{name}: locked {version}, installed {installed}")
    assert not drift, ("installed versions differ from constraints.txt (make setup installs the lock; make lock "
                       "after a deliberate upgrade): " + "; ".join(drift))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    unlocked = sorted({canonicalize_name(Requirement(r).name) for r in declared} - set(lock))
    assert not unlocked, f"declared in pyproject.toml but not in constraints.txt (make lock): {unlocked}"


# --- the GPU machine's wheels -----------------------------------------------------------------------------------

def test_carried_wheels_meet_requirements_and_imports():
    """Parts 1-2 of scripts/check_wheels.py from the installed metadata, for the fixture GPU machine: every
    requirement of a carried package and every module that importing what the GPU check uses pulls in is carried
    or on the machine."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_wheels.py"), "--target", str(GPU_FREEZE),
                           "--installed", "--parts", "1,2"],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 requires  compressai -> tomli" in proc.stdout and "2 imports   sqlalchemy" in proc.stdout, proc.stdout


def test_check_wheels_flags_what_is_missing():
    """A GPU machine without a package the carried set needs is a problem row; one that has a needed package
    does not get it carried, and one with a version the project does not accept is a problem row."""
    cw = _check_wheels()
    need, device = cw.needed(), cw.parse_freeze(GPU_FREEZE)
    assert set(cw.carried(need, device)) == set(need)  # the fixture has none of them
    rows: list = []
    cw.check_requirements(need, {k: v for k, v in device.items() if k != "typing-extensions"}, None, rows,
                          installed_only=True)
    bad = [r for r in rows if r[2] == "PROBLEM"]
    assert bad and all("typing-extensions" in r[1] for r in bad), bad

    rows = []
    cw.check_requirements(need, {**device, "optuna": "3.6.1", "thop": None}, None, rows, installed_only=True)
    assert "optuna" not in cw.carried(need, {**device, "optuna": "3.6.1"})
    bad = [r for r in rows if r[2] == "PROBLEM"]
    assert [r[1] for r in bad] == ["optuna 3.6.1"] and "optuna>=4" in bad[0][3], bad


def test_check_wheels_target_follows_its_python_and_platform(tmp_path):
    """The marker environment and the wheel tags come from the Python version and platform given."""
    cw = _check_wheels()
    t310 = cw.Target("3.10", ["manylinux_2_28_aarch64"])
    assert t310.environment["python_version"] == "3.10" and t310.environment["python_full_version"] == "3.10.0"
    assert t310.environment["platform_machine"] == "aarch64" and t310.environment["sys_platform"] == "linux"
    t312 = cw.Target("3.12.3", ["manylinux_2_34_x86_64"])
    assert t312.environment["python_full_version"] == "3.12.3"
    assert "manylinux2014_x86_64" in t312.platforms and "manylinux_2_35_x86_64" not in t312.platforms
    for name, ok in [("a-1.0-cp312-cp312-manylinux_2_34_x86_64.whl", True), ("a-1.0-py3-none-any.whl", True),
                     ("a-1.0-cp310-abi3-manylinux2014_x86_64.whl", True),
                     ("a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", False),
                     ("a-1.0-cp312-cp312-manylinux_2_35_x86_64.whl", False),
                     ("a-1.0-cp312-cp312-win_amd64.whl", False)]:
        assert (cw.wheel_problem(Path(name), t312) is None) == ok, name
    freeze = tmp_path / "freeze.txt"
    freeze.write_text("# a comment\nTorch==2.4.0\ntyping_extensions\nfoo @ https://example.org/foo-1.whl\n"
                      "-e git+https://example.org/y#egg=y\n")
    assert cw.parse_freeze(freeze) == {"torch": "2.4.0", "typing-extensions": None, "foo": None}


# --- the repository ---------------------------------------------------------------------------------------------

def test_no_tracked_file_names_a_path_outside_the_repository():
    """No tracked file names a fixed location of one particular machine (a path outside the repository)."""
    # built by concatenation, so that this file does not match itself
    patterns = [s.encode() for s in ("/" + "work/", "/" + "farm/", "." + "library/", "/opt/" + "pypi",
                                     "/opt/" + "wheels")]
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if proc.returncode:
        pytest.skip("not a git checkout")
    found = []
    for f in proc.stdout.decode().split("\0"):
        path = ROOT / f
        if not f or not path.is_file():
            continue
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            hits = [p.decode() for p in patterns if p in line]
            if hits:
                found.append(f"{f}:{number}: {', '.join(hits)}")
    assert not found, found
