"""A static check of the wheels the GPU check takes to a GPU machine without network; needs no GPU and no network.

    python scripts/check_wheels.py --target FREEZE [--python-version 3.12] [--platform TAG ...]
                                   [--wheels .whl] [--installed] [--parts 1,2,3] [--print needed|platforms]

The target is the GPU machine, described by its Python version, its platform tag(s) (e.g.
manylinux_2_34_x86_64: glibc 2.34 on x86-64; each manylinux tag also stands for the older ones) and FREEZE,
the output of `pip freeze` there (`name==version` per line; a bare name is a package of unknown version).
scripts/gpu_check.py needs the packages of GPU_PACKAGES beside torch and NumPy; those FREEZE lacks travel as
binary wheels at the versions of the lock, constraints.txt (`make wheels TARGET=FREEZE` downloads them into
.whl/, and scripts/gpu_check.sh installs them with ``--no-deps``). Three parts:

1. every carried package's Requires-Dist (markers evaluated for the target's interpreter and platform, no
   extras) is met by the carried set or FREEZE (names; versions where FREEZE gives one). The metadata is read
   from the wheel in .whl/ when there is one, else from this environment's installed copy, which must be the
   locked version. The wheels in .whl/ must be exactly the carried set, each installable on the target. A
   needed package FREEZE has must meet the range pyproject.toml declares for it.
2. every top-level module that importing the needed packages and what scripts/gpu_check.py uses at run time
   (the project modules it reaches, read from their import statements, and an Optuna SQLite storage) pulls in,
   in a fresh process, comes from the standard library, the project, the carried set or FREEZE.
3. sizes, for information: the checkout's files that git does not ignore, and .whl/.

It prints a table and exits 1 if any row is a problem. ``--print needed`` prints the carried set as
``name==version`` lines instead, ``--print platforms`` the platform tags the target installs (what
``make wheels`` passes to ``pip download``).
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

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"
PROJECT = ("space", "asymllic", "search")
# What scripts/gpu_check.py needs at run time beside torch and NumPy (part 2 checks that nothing else is
# imported): Optuna and its requirements (alembic, SQLAlchemy, Mako, colorlog), bjontegaard, CompressAI and its
# requirements pytorch-msssim and tomli. Their versions come from the lock.
GPU_PACKAGES = ("optuna", "alembic", "sqlalchemy", "mako", "colorlog", "pytorch-msssim", "bjontegaard",
                "compressai", "tomli")
# project modules the GPU check never runs, whose imports need what a GPU machine need not have (Ray, plotly,
# Optuna Dashboard): the Ray backend, the figures, the confirm/rd commands that draw them, the dashboard server
# and the paper's tables. The static walk stops there; the GPU check's CPU-mode test (tests/test_scale.py) runs
# with ray and plotly made unimportable, so a run-time need of either would fail there.
NOT_ON_THE_GPU_MACHINE = ("search.ray_backend", "search.ray_asha", "search.ray_stopper", "search.plots",
                          "search.confirm", "search.rd", "search.dashboard", "search.reproduce")
# imported inside functions that go on without them (search/artifacts.py: a search's note and learning-curve
# figure for Optuna Dashboard are skipped with one warning line), so a GPU machine need not have them
OPTIONAL_AT_RUN_TIME = {"optuna_dashboard": "the study's note and learning curves for Optuna Dashboard",
                        "plotly": "the learning-curve figure for Optuna Dashboard"}
DEFAULT_PYTHON = "3.12"
DEFAULT_PLATFORMS = ("manylinux_2_34_x86_64",)
# Declared requirements that do not hold on a machine, each with why it is harmless and a test of that claim
# on the carried wheel (name, requirement, reason, check(wheel path) -> bool).
WAIVERS = {
    ("compressai", "numpy"): ("compressai 1.2.8 declares numpy<2.0 but runs with NumPy 2: its compiled parts (_CXX, "
                              "ans) use no NumPy C API, its Python only NumPy's public calls",
                              lambda whl: not _so_mentions(whl, b"_ARRAY_API", b"numpy")),
}


# --- the target -------------------------------------------------------------------------------------------------

def expand_platforms(platforms) -> list[str]:
    """The platform tags a machine of these tags installs, highest first: manylinux_2_N_arch takes every older
    glibc (and the legacy manylinux2014/2010/1 names), musllinux_1_N_arch every older musl; others as given."""
    out: list[str] = []
    for tag in platforms:
        m = re.fullmatch(r"(manylinux|musllinux)_(\d+)_(\d+)_(.+)", tag)
        legacy = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
        m_legacy = re.fullmatch(r"(manylinux2014|manylinux2010|manylinux1)_(.+)", tag)
        if m_legacy:
            major, minor = legacy[m_legacy.group(1)]
            m = re.fullmatch(r"(manylinux)_(\d+)_(\d+)_(.+)", f"manylinux_{major}_{minor}_{m_legacy.group(2)}")
        if not m:
            out.append(tag)
            continue
        family, major, minor, arch = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        lowest = 0 if family == "musllinux" else 5 if arch in ("x86_64", "i686") else 17
        for k in range(minor, lowest - 1, -1):
            out.append(f"{family}_{major}_{k}_{arch}")
            if family == "manylinux":
                out += [f"{name}_{arch}" for name, mm in legacy.items() if mm == (major, k)
                        and (name == "manylinux2014" or arch in ("x86_64", "i686"))]
    return list(dict.fromkeys(out))


class Target:
    """The GPU machine's interpreter (CPython of a version) and platform tags."""

    def __init__(self, python_version: str = DEFAULT_PYTHON, platforms=DEFAULT_PLATFORMS):
        parts = python_version.split(".")
        if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
            raise SystemExit(f"check_wheels: --python-version {python_version}: give X.Y or X.Y.Z (e.g. 3.12)")
        self.version = tuple(int(p) for p in parts[:2])
        self.full_version = ".".join(parts + ["0"] * (3 - len(parts)))
        self.python_version = f"{self.version[0]}.{self.version[1]}"
        self.platforms = expand_platforms(platforms)
        first = platforms[0]
        if "linux" in first:
            system, sys_platform, os_name = "Linux", "linux", "posix"
        elif first.startswith("macosx"):
            system, sys_platform, os_name = "Darwin", "darwin", "posix"
        elif first.startswith("win"):
            system, sys_platform, os_name = "Windows", "win32", "nt"
        else:
            raise SystemExit(f"check_wheels: --platform {first}: not a Linux, macOS or Windows tag")
        arch = re.sub(r"^(manylinux_\d+_\d+|musllinux_\d+_\d+|manylinux\d+|linux|macosx_\d+_\d+|win)_", "", first)
        machine = {"amd64": "AMD64", "win32": "x86"}.get(arch, arch) if system == "Windows" else arch
        # the marker environment (PEP 508) of that interpreter, no extras requested
        self.environment = {
            "implementation_name": "cpython", "implementation_version": self.full_version, "os_name": os_name,
            "platform_machine": machine, "platform_python_implementation": "CPython", "platform_release": "",
            "platform_system": system, "platform_version": "", "python_full_version": self.full_version,
            "python_version": self.python_version, "sys_platform": sys_platform, "extra": ""}
        abi = f"cp{self.version[0]}{self.version[1]}"
        self.tags: set[Tag] = set(cpython_tags(self.version, abis=[abi], platforms=self.platforms)) | set(
            compatible_tags(self.version, abi, self.platforms))

    def __str__(self) -> str:
        return f"CPython {self.python_version} on {self.platforms[0]}"


# --- the lists --------------------------------------------------------------------------------------------------

def parse_freeze(path: Path) -> dict[str, str | None]:
    """`pip freeze` output (also the lock): canonical name -> version, None where the line gives none (a bare
    name, or `name @ url`). Comments, blank lines and option lines (-e, -r, --...) are skipped."""
    if not Path(path).is_file():
        raise SystemExit(f"check_wheels: no file {path} (the target's `pip freeze` output)")
    out: dict[str, str | None] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as e:
            raise SystemExit(f"check_wheels: {path}:{number}: not a `pip freeze` line: {line} ({e})") from None
        pins = [s.version for s in req.specifier if s.operator in ("==", "===")]
        out[canonicalize_name(req.name)] = pins[0] if len(pins) == 1 and "*" not in pins[0] else None
    return out


def locked(lock: Path = LOCK) -> dict[str, str]:
    """The lock (constraints.txt): canonical name -> pinned version; every line must pin one."""
    out = parse_freeze(lock)
    loose = sorted(name for name, version in out.items() if version is None)
    if loose:
        raise SystemExit(f"check_wheels: {lock}: not pinned (name==version): {', '.join(loose)}")
    return out  # type: ignore[return-value]


def needed(lock: Path = LOCK) -> dict[str, str]:
    """GPU_PACKAGES at the versions of the lock."""
    versions = locked(lock)
    missing = [name for name in GPU_PACKAGES if canonicalize_name(name) not in versions]
    if missing:
        raise SystemExit(f"check_wheels: {lock} does not pin {', '.join(missing)} (make lock)")
    return {canonicalize_name(name): versions[canonicalize_name(name)] for name in GPU_PACKAGES}


def carried(need: dict[str, str], device: dict[str, str | None]) -> dict[str, str]:
    """What travels: the needed packages the target does not have."""
    return {name: version for name, version in need.items() if name not in device}


def project_ranges(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, Requirement]:
    """The project's declared dependencies (pyproject.toml), by canonical name."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return {canonicalize_name(r.name): r for r in map(Requirement, deps)}


# --- wheels -----------------------------------------------------------------------------------------------------

def _so_mentions(whl: Path, *needles: bytes) -> bool:
    with zipfile.ZipFile(whl) as z:
        return any(needle in z.read(n) for n in z.namelist() if n.endswith(".so") for needle in needles)


def wheel_metadata(whl: Path):
    with zipfile.ZipFile(whl) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        return email.parser.Parser().parsestr(z.read(name).decode())


def wheel_problem(whl: Path, target: Target) -> str | None:
    """Why the target would not install this wheel, or None."""
    tags = parse_wheel_filename(whl.name)[3]
    if tags & target.tags:
        return None
    return "tags " + ", ".join(sorted(str(t) for t in tags)) + f" do not install on {target}"


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

def _requirements(meta, target: Target) -> list[Requirement]:
    out = []
    for text in meta.get_all("Requires-Dist") or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(target.environment):
            out.append(req)
    return out


def check_requirements(need: dict[str, str], device: dict[str, str | None], wheels: Path | None, rows: list,
                       installed_only: bool, target: Target | None = None) -> None:
    target = target or Target()
    carry = carried(need, device)
    ranges = project_ranges()
    for name in sorted(set(need) - set(carry)):
        have, declared = device[name], ranges.get(name)
        if declared is None or not declared.specifier:
            rows.append(("1 on target", f"{name} {have or ''}".strip(), "ok", "on the machine, not carried"))
        elif have is None:
            rows.append(("1 on target", name, "ok", f"on the machine, version not recorded (the project asks "
                         f"{declared})"))
        elif declared.specifier.contains(Version(have), prereleases=True):
            rows.append(("1 on target", f"{name} {have}", "ok", f"on the machine, meets {declared}"))
        else:
            rows.append(("1 on target", f"{name} {have}", "PROBLEM", f"the project asks {declared}: upgrade it there"))
    found: dict[str, Path] = {}
    if wheels is not None and wheels.is_dir() and not installed_only:
        for f in sorted(wheels.iterdir()):
            if not f.name.endswith(".whl"):
                rows.append(("1 wheels", f.name, "PROBLEM", "not a wheel: gpu_check.sh installs wheels only"))
                continue
            name, version, _, _ = parse_wheel_filename(f.name)
            problem = wheel_problem(f, target)
            if name not in carry:
                rows.append(("1 wheels", f.name, "PROBLEM", "not carried: the target has it or the GPU check does "
                             "not need it (a stale download? make wheels)"))
            elif Version(carry[name]) != version:
                rows.append(("1 wheels", f.name, "PROBLEM", f"the lock pins {carry[name]}"))
            elif problem:
                rows.append(("1 wheels", f.name, "PROBLEM", problem))
            else:
                found[name] = f
                glibc, tagged = glibc_needed(f), tag_glibc(f)
                rows.append(("1 wheels", f.name, "ok", f"{f.stat().st_size / 2**20:.2f} MiB"
                             + (f"; installs where glibc >= {tagged} (its code needs {glibc})" if tagged else "")))
        for name in sorted(set(carry) - set(found)):
            rows.append(("1 wheels", f"{name}=={carry[name]}", "PROBLEM", f"no wheel in {wheels} (make wheels)"))
    versions = {name: Version(v) for name, v in carry.items()}
    for name, version in sorted(carry.items()):
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
                             f"installed here is {dist.version}: the metadata read would not be the locked one"))
                continue
            meta, source = dist.metadata, "installed"
        for req in _requirements(meta, target):
            dep = canonicalize_name(req.name)
            where, have = ("carried", versions[dep]) if dep in versions else \
                ("target", Version(device[dep]) if device.get(dep) else None) if dep in device else (None, None)
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


def check_imports(need: dict[str, str], device: dict[str, str | None], rows: list) -> None:
    carry = carried(need, device)
    project, outside = gpu_check_imports()
    for name in sorted(set(outside) & set(OPTIONAL_AT_RUN_TIME)):
        rows.append(("2 imports", f"{name} (optional)", "ok", f"without it: no {OPTIONAL_AT_RUN_TIME[name]} (one "
                                                                 "warning line)"))
    outside = [n for n in outside if n not in OPTIONAL_AT_RUN_TIME]
    carried_modules = ["compressai", "optuna", "pytorch_msssim", "bjontegaard"]
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
        where = "carried" if dist in carry else "target" if dist in device else None
        rows.append(("2 imports", f"{dist} ({', '.join(tops)})", "ok" if where else "PROBLEM",
                     where or "imported at run time, neither carried nor on the machine"))


# --- part 3: sizes ----------------------------------------------------------------------------------------------

def sizes(wheels: Path | None, rows: list) -> None:
    """The checkout's files that git does not ignore, and the wheels: printed, no limit."""
    try:
        files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                               capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        files = []
    if files:
        tree = sum((ROOT / f).stat().st_size for f in files if f and (ROOT / f).is_file())
        rows.append(("3 size", "checkout (files git does not ignore)", "ok", f"{tree / 2**20:.2f} MiB"))
    if wheels is not None and wheels.is_dir():
        size = sum(p.stat().st_size for p in wheels.iterdir() if p.is_file())
        rows.append(("3 size", f"{wheels.name}/", "ok", f"{size / 2**20:.2f} MiB"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, help="the GPU machine's `pip freeze` output")
    p.add_argument("--python-version", default=DEFAULT_PYTHON, help=f"its Python, X.Y[.Z] (default {DEFAULT_PYTHON})")
    p.add_argument("--platform", action="append", help="its platform tag, highest first; repeatable "
                   f"(default {' '.join(DEFAULT_PLATFORMS)})")
    p.add_argument("--lock", default=str(LOCK), help="the lock the versions come from (default constraints.txt)")
    p.add_argument("--wheels", default=str(ROOT / ".whl"), help="the carried wheels (default .whl/)")
    p.add_argument("--installed", action="store_true", help="read requirements from installed metadata, not .whl/")
    p.add_argument("--parts", default="1,2,3")
    p.add_argument("--print", choices=("needed", "platforms"), dest="show",
                   help="print the carried set (name==version) or the target's platform tags, one a line, and exit")
    args = p.parse_args(argv)
    target = Target(args.python_version, args.platform or DEFAULT_PLATFORMS)
    device = parse_freeze(Path(args.target))
    need = needed(Path(args.lock))
    if args.show == "needed":
        print("\n".join(f"{name}=={version}" for name, version in carried(need, device).items()))
        return 0
    if args.show == "platforms":
        print("\n".join(target.platforms))
        return 0
    parts = {int(x) for x in args.parts.split(",")}
    wheels = Path(args.wheels)
    rows: list = []
    if 1 in parts:
        check_requirements(need, device, wheels, rows, args.installed, target)
    if 2 in parts:
        check_imports(need, device, rows)
    if 3 in parts:
        sizes(None if args.installed else wheels, rows)
    print(f"check_wheels: target {target}, {len(device)} packages in {args.target}; "
          f"carried: {', '.join(carried(need, device)) or 'nothing'}")
    width = [max(len(str(r[i])) for r in rows + [("part", "item", "status", "")]) for i in range(3)]
    print(f"{'part':<{width[0]}}  {'item':<{width[1]}}  {'status':<{width[2]}}  detail")
    for r in rows:
        print(f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]:<{width[2]}}  {r[3]}")
    problems = sum(r[2] == "PROBLEM" for r in rows)
    print(f"check_wheels: {problems} problem(s) in {len(rows)} rows")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
