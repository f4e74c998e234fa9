"""A static check of what the GPU machine gets: no GPU, no network.

    python scripts/check_wheels.py [--wheels .whl] [--installed] [--parts 1,2,3]

The GPU machine (CPython 3.12, Linux x86-64, offline) has the packages in scripts/device_packages.txt; the
rest travels as the wheels of the Makefile's WHEELS list (``make wheels`` puts them in .whl/, and
scripts/gpu_check.sh installs them with ``--no-deps``). Three parts:

1. every carried package's Requires-Dist (markers evaluated for CPython 3.12 on Linux x86-64, no extras) is met
   by the carried set or the device list (names; versions where the list gives one). The metadata is read from
   the wheel in .whl/ when there is one, else from this environment's installed copy, which must be the version
   the Makefile pins. The wheels in .whl/ must be exactly the pinned set, each installable on CPython 3.12
   manylinux x86-64.
2. every top-level module that importing the carried packages and what scripts/gpu_check.py uses at run time
   (the project modules it reaches, read from their import statements, and an Optuna SQLite storage) pulls in,
   in a fresh process, comes from the standard library, the project, the carried set or the device list.
3. what travels to the machine (the checkout's files that git does not ignore, shared/ inside it, .whl/) is at
   most 64 MiB.

It prints a table and exits 1 if any row is a problem.
"""
from __future__ import annotations

import argparse
import ast
import email.parser
import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
DEVICE_LIST = ROOT / "scripts" / "device_packages.txt"
KINDS = Path("/work/.library/device/KINDS.md")
PROJECT = ("space", "asymllic", "search")
# project modules the GPU check never runs, whose imports need what the GPU machine does not have (Ray, plotly):
# the Ray backend, the figures, and the confirm/rd commands that draw them. The static walk stops there; the
# GPU check's CPU-mode test (tests/test_scale.py) runs with ray and plotly made unimportable, so a run-time
# need of either would fail there.
NOT_ON_THE_GPU_MACHINE = ("search.ray_backend", "search.ray_asha", "search.plots", "search.confirm", "search.rd")
TRAVEL_LIMIT = 64 * 2**20
# the machine's interpreter: CPython 3.12.3 on Linux x86-64 (no extras requested)
ENVIRONMENT = {"implementation_name": "cpython", "implementation_version": "3.12.3", "os_name": "posix",
               "platform_machine": "x86_64", "platform_python_implementation": "CPython", "platform_release": "",
               "platform_system": "Linux", "platform_version": "", "python_full_version": "3.12.3",
               "python_version": "3.12", "sys_platform": "linux", "extra": ""}
PYTHON_TAGS = {"py3", "py2", "cp312", "py312", "py31"}  # what CPython 3.12 installs (py2 only beside py3)
ABI_TAGS = {"none", "abi3", "cp312"}
# Declared requirements that do not hold on the machine, each with why it is harmless and a test of that claim
# on the carried wheel (name, requirement, reason, check(wheel path) -> bool).
WAIVERS = {
    ("compressai", "numpy"): ("compressai 1.2.8 declares numpy<2.0, the machine has NumPy 2; its compiled parts "
                              "(_CXX, ans) use no NumPy C API, its Python only NumPy's public calls",
                              lambda whl: not _so_mentions(whl, b"_ARRAY_API", b"numpy")),
}


# --- the lists ------------------------------------------------------------------------------------------------

def parse_kinds(text: str) -> dict[str, str | None]:
    """Package name -> version (None where not given) of the device machine, from KINDS.md: the names of the
    section "Python packages already there" and the versions of the table's "pip list" row."""
    section = text.split("## Python packages already there", 1)[1]
    names = re.search(r"Packages:\s*(.+?)\.\s*$", section, re.M | re.S).group(1)
    out: dict[str, str | None] = {canonicalize_name(n.strip()): None for n in names.split(",") if n.strip()}
    row = next(line for line in text.splitlines() if line.startswith("| pip list"))
    listed = row.split("filtered by the names it asked for:", 1)[1].rsplit("|", 1)[0]
    for item in listed.split(","):
        name, version = item.split()
        out[canonicalize_name(name)] = version
    return out


def device_packages(path: Path = DEVICE_LIST) -> dict[str, str | None]:
    """scripts/device_packages.txt: 'name' or 'name version' per line; '#' starts a comment."""
    out: dict[str, str | None] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].split()
        if line:
            out[canonicalize_name(line[0])] = line[1] if len(line) > 1 else None
    return out


def pinned_wheels(makefile: Path = ROOT / "Makefile") -> dict[str, str]:
    """The Makefile's WHEELS list: canonical name -> pinned version."""
    text = makefile.read_text().replace("\\\n", " ")
    value = re.search(r"^WHEELS\s*:?=\s*(.*)$", text, re.M).group(1)
    out = {}
    for item in value.split():
        name, _, version = item.partition("==")
        if not version:
            raise SystemExit(f"check_wheels: Makefile WHEELS: {item} is not pinned (name==version)")
        out[canonicalize_name(name)] = version
    return out


# --- wheels -----------------------------------------------------------------------------------------------------

def _so_mentions(whl: Path, *needles: bytes) -> bool:
    with zipfile.ZipFile(whl) as z:
        return any(needle in z.read(n) for n in z.namelist() if n.endswith(".so") for needle in needles)


def wheel_metadata(whl: Path):
    with zipfile.ZipFile(whl) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        return email.parser.Parser().parsestr(z.read(name).decode())


def wheel_problem(whl: Path) -> str | None:
    """Why CPython 3.12 on manylinux x86-64 would not install this wheel, or None."""
    _, _, _, tags = parse_wheel_filename(whl.name)
    for tag in tags:
        if tag.interpreter in PYTHON_TAGS and tag.abi in ABI_TAGS and (
                tag.platform == "any" or re.fullmatch(r"(manylinux(1|2010|2014|_2_\d+))_x86_64", tag.platform)):
            return None
    return "tags " + ", ".join(sorted(str(t) for t in tags)) + " do not install on CPython 3.12 manylinux x86-64"


def glibc_needed(whl: Path) -> str:
    """The highest GLIBC symbol version its shared objects need ('' for a pure wheel)."""
    minors = set()
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            if n.endswith(".so") or ".so." in n:
                minors |= {int(m) for m in re.findall(rb"GLIBC_2\.(\d+)", z.read(n))}
    return f"2.{max(minors)}" if minors else ""


def tag_glibc(whl: Path) -> str:
    """The lowest glibc any of its manylinux tags accepts ('' for a pure wheel)."""
    legacy = {"manylinux1": 5, "manylinux2010": 12, "manylinux2014": 17}
    minors = [legacy.get(t.platform.rsplit("_", 2)[0].split("_")[0], None) if not t.platform.startswith("manylinux_2_")
              else int(t.platform.split("_")[2]) for t in parse_wheel_filename(whl.name)[3] if t.platform != "any"]
    minors = [m for m in minors if m is not None]
    return f"2.{min(minors)}" if minors else ""


# --- part 1: requirements ---------------------------------------------------------------------------------------

def _requirements(meta) -> list[Requirement]:
    out = []
    for text in meta.get_all("Requires-Dist") or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(ENVIRONMENT):
            out.append(req)
    return out


def check_requirements(pins: dict[str, str], device: dict[str, str | None], wheels: Path | None, rows: list,
                       installed_only: bool) -> None:
    found: dict[str, Path] = {}
    if wheels is not None and wheels.is_dir() and not installed_only:
        for f in sorted(wheels.iterdir()):
            if not f.name.endswith(".whl"):
                rows.append(("1 wheels", f.name, "PROBLEM", "not a wheel: gpu_check.sh installs wheels only"))
                continue
            name, version, _, _ = parse_wheel_filename(f.name)
            problem = wheel_problem(f)
            if name not in pins:
                rows.append(("1 wheels", f.name, "PROBLEM", "not in the Makefile's WHEELS (a stale download?)"))
            elif Version(pins[name]) != version:
                rows.append(("1 wheels", f.name, "PROBLEM", f"the Makefile pins {pins[name]}"))
            elif problem:
                rows.append(("1 wheels", f.name, "PROBLEM", problem))
            else:
                found[name] = f
                glibc, tagged = glibc_needed(f), tag_glibc(f)
                rows.append(("1 wheels", f.name, "ok", f"{f.stat().st_size / 2**20:.2f} MiB"
                             + (f"; installs where glibc >= {tagged} (its code needs {glibc}; the machine's glibc "
                                "is not recorded)" if tagged else "")))
        for name in sorted(set(pins) - set(found)):
            rows.append(("1 wheels", f"{name}=={pins[name]}", "PROBLEM", f"no wheel in {wheels} (make wheels)"))
    carried = {name: Version(v) for name, v in pins.items()}
    for name, version in sorted(pins.items()):
        overlap = name in device and (device[name] is None or Version(device[name]) != Version(version))
        if name in found:
            meta, source = wheel_metadata(found[name]), "wheel"
        else:
            try:
                dist = md.distribution(name)
            except md.PackageNotFoundError:
                rows.append(("1 requires", f"{name}=={version}", "PROBLEM", "no wheel and not installed here: "
                             "its requirements cannot be read"))
                continue
            if Version(dist.version) != Version(version):
                rows.append(("1 requires", f"{name}=={version}", "PROBLEM",
                             f"installed here is {dist.version}: the metadata read would not be the pinned one"))
                continue
            meta, source = dist.metadata, "installed"
        if overlap:
            rows.append(("1 carried", f"{name}=={version}", "note", f"the machine has {device[name] or 'a version'}"
                         "; the carried one comes first on PYTHONPATH"))
        for req in _requirements(meta):
            dep = canonicalize_name(req.name)
            where, have = ("carried", carried[dep]) if dep in carried else \
                ("device", Version(device[dep]) if device.get(dep) else None) if dep in device else (None, None)
            label = f"{name} -> {req}"
            if where is None:
                rows.append(("1 requires", label, "PROBLEM", "neither carried nor on the machine"))
            elif have is None or not req.specifier:
                rows.append(("1 requires", label, "ok", f"{where}" + (f" {have}" if have else ", version not recorded")))
            elif req.specifier.contains(have, prereleases=True):
                rows.append(("1 requires", label, "ok", f"{where} {have} ({source} metadata)"))
            elif (name, dep) in WAIVERS and name in found and WAIVERS[(name, dep)][1](found[name]):
                rows.append(("1 requires", label, "waived", f"{where} {have}: {WAIVERS[(name, dep)][0]}"))
            elif (name, dep) in WAIVERS and name not in found:
                rows.append(("1 requires", label, "waived", f"{where} {have}: {WAIVERS[(name, dep)][0]} "
                             "(checked on the wheel when .whl/ has it)"))
            else:
                rows.append(("1 requires", label, "PROBLEM", f"{where} has {have}"))


# --- part 2: what importing pulls in ----------------------------------------------------------------------------

def _module_imports(path: Path, modname: str) -> set[str]:
    package = modname if path.name == "__init__.py" else modname.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return out


def gpu_check_imports(script: Path = ROOT / "scripts" / "gpu_check.py") -> tuple[list[str], list[str]]:
    """(project modules, outside top-level names) that scripts/gpu_check.py reaches through import statements,
    those inside functions included."""
    def file_of(name: str) -> Path | None:
        p = ROOT.joinpath(*name.split("."))
        return p / "__init__.py" if (p / "__init__.py").is_file() else p.with_suffix(".py") if \
            p.with_suffix(".py").is_file() else None

    seen: dict[str, Path] = {}
    outside: set[str] = set()
    todo = [("", script)]
    while todo:
        mod, path = todo.pop()
        for name in _module_imports(path, mod):
            top = name.split(".")[0]
            if top not in PROJECT:
                outside.add(top)
                continue
            parts = name.split(".")
            for k in range(1, len(parts) + 1):
                sub = ".".join(parts[:k])
                f = file_of(sub)
                if sub.startswith(NOT_ON_THE_GPU_MACHINE):
                    break
                if f is not None and sub not in seen:
                    seen[sub] = f
                    todo.append((sub, f))
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    return sorted(seen), sorted(n for n in outside if n and n not in stdlib)


_PROBE = r"""
import json, sys, tempfile, warnings
warnings.simplefilter("ignore")
before = set(sys.modules)
for name in json.loads(sys.argv[1]):
    __import__(name)
from search.storage import open_storage  # what a search opens: Optuna's RDB storage on SQLite
import optuna
with tempfile.TemporaryDirectory() as d:
    study = optuna.create_study(storage=open_storage(f"sqlite:///{d}/s.db"), sampler=optuna.samplers.RandomSampler())
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
tops = {m.split(".")[0] for m in set(sys.modules) - before}
print(json.dumps({t: getattr(sys.modules.get(t), "__file__", None) for t in sorted(tops)}))
"""


def check_imports(pins: dict[str, str], device: dict[str, str | None], rows: list) -> None:
    project, outside = gpu_check_imports()
    carried_modules = ["compressai", "optuna", "thop", "pytorch_msssim", "bjontegaard"]
    names = sorted(set(carried_modules + outside)) + project
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(names)], capture_output=True, text=True,
                              env=env, cwd=cwd)
    if proc.returncode:
        rows.append(("2 imports", "probe", "PROBLEM", (proc.stderr.strip().splitlines() or ["failed"])[-1]))
        return
    loaded: dict[str, str | None] = json.loads(proc.stdout.strip().splitlines()[-1])
    dists = md.packages_distributions()
    stdlib = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    stdlib_dirs = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}
    roots = sorted({str(Path(p).resolve()) for p in sys.path if p and Path(p).is_dir()} - stdlib_dirs, key=len)[::-1]
    by_dist: dict[str, list[str]] = {}
    internal = []
    for top, file in loaded.items():
        if top in stdlib or top in PROJECT or top.startswith("__"):
            continue
        name = top
        if top not in dists and file:  # a module registered under a short name, or a vendored one: its folder's
            path = str(Path(file).resolve())
            if any(path.startswith(d + os.sep) for d in stdlib_dirs):
                continue
            root = next((r for r in roots if path.startswith(r + os.sep)), None)
            name = Path(path[len(root) + 1:]).parts[0] if root else top
            name = name[:-3] if name.endswith(".py") else name.split(".")[0]
        elif top not in dists:  # no file: an extension's runtime module (Cython's _cython_3_x, cython_runtime)
            internal.append(top)
            continue
        providers = sorted({canonicalize_name(d) for d in dists.get(name, [])})
        if not providers:
            rows.append(("2 imports", f"{top} ({file})", "PROBLEM", "imported, but no installed distribution provides it"))
            continue
        for dist in providers:
            by_dist.setdefault(dist, []).append(top)
    if internal:
        rows.append(("2 imports", f"{len(internal)} modules with no file", "ok",
                     "registered by compiled extensions: " + ", ".join(internal)))
    for dist, tops in sorted(by_dist.items()):
        where = "carried" if dist in pins else "device" if dist in device else None
        rows.append(("2 imports", f"{dist} ({', '.join(tops)})", "ok" if where else "PROBLEM",
                     where or "imported at run time, neither carried nor on the machine"))


# --- part 3: what travels ---------------------------------------------------------------------------------------

def travel_size(wheels: Path | None, rows: list) -> int:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    tree = sum((ROOT / f).stat().st_size for f in files if f and (ROOT / f).is_file())
    rows.append(("3 travels", "checkout (files git does not ignore)", "ok", f"{tree / 2**20:.2f} MiB"))
    total = tree
    shared = ROOT / "shared"
    if shared.is_dir():
        size = sum(p.stat().st_size for p in shared.rglob("*") if p.is_file())
        rows.append(("3 travels", "shared/", "ok", f"{size / 2**20:.2f} MiB"))
        total += size
    if wheels is not None and wheels.is_dir():
        size = sum(p.stat().st_size for p in wheels.iterdir() if p.is_file())
        rows.append(("3 travels", f"{wheels.name}/", "ok", f"{size / 2**20:.2f} MiB"))
        total += size
    rows.append(("3 travels", "total", "ok" if total <= TRAVEL_LIMIT else "PROBLEM",
                 f"{total / 2**20:.2f} MiB of {TRAVEL_LIMIT / 2**20:.0f} MiB"))
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wheels", default=str(ROOT / ".whl"), help="the carried wheels (default .whl/)")
    p.add_argument("--installed", action="store_true", help="read requirements from installed metadata, not .whl/")
    p.add_argument("--parts", default="1,2,3")
    p.add_argument("--device-list", default=str(DEVICE_LIST))
    args = p.parse_args(argv)
    parts = {int(x) for x in args.parts.split(",")}
    pins, device = pinned_wheels(), device_packages(Path(args.device_list))
    wheels = Path(args.wheels)
    rows: list = []
    if 1 in parts:
        check_requirements(pins, device, wheels, rows, args.installed)
    if 2 in parts:
        check_imports(pins, device, rows)
    if 3 in parts:
        travel_size(None if args.installed else wheels, rows)
    width = [max(len(str(r[i])) for r in rows + [("part", "item", "status", "")]) for i in range(3)]
    print(f"{'part':<{width[0]}}  {'item':<{width[1]}}  {'status':<{width[2]}}  detail")
    for r in rows:
        print(f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]:<{width[2]}}  {r[3]}")
    problems = sum(r[2] == "PROBLEM" for r in rows)
    print(f"check_wheels: {problems} problem(s) in {len(rows)} rows")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
