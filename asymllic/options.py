"""Declared options: each option is one dataclass field whose metadata holds what a command-line flag and a
config file need (help, choices, flag name, how text becomes a value). The command line is generated from
these declarations, and config files and stored specs are read back through :func:`from_dict`.

This module imports no torch (nor anything heavy): a parser can be built from it at once. The tuples of
allowed values below are the ones the torch side checks against (``asymllic.device``,
``asymllic.training.inherit``, ``asymllic.training.schedules``; ``tests/test_api.py`` keeps them equal).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from space.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
INHERIT = ("none", "copy", "slice")
SCHEDULE_NAMES = ("smoke", "cpu", "paper")  # asymllic.training.schedules.SCHEDULES, by name
CONVENTIONS = ("exact", "thop")  # asymllic.complexity: every MAC and parameter, or the paper's thop.profile figures
DEFAULT_LMBDA = 0.0067  # the rate-distortion trade-off (CompressAI convention) of a teacher and a search
# The defaults every command and library function shares, written here only (tests/test_options.py checks):
DEFAULT_ROOT = "results"  # the folder runs write into
DEFAULT_SCHEDULE = "cpu"
DEFAULT_DEVICE = "auto"
DEFAULT_PRECISION = "auto"
DEFAULT_SEED = 0
DEFAULT_SIZE = (768, 512)  # the paper's image size for MACs
CACHE_DIR = "cache"  # the latent cache: <root>/cache unless a cache folder is given
MODEL_HELP = ("a model: preset name, config file, checkpoint (ours or an official LIC_TCM .pth.tar) or export "
              "folder (presets and configs get seeded untrained weights)")


def option(default: Any = None, help: str = "", *, choices: tuple | None = None, flag: str | None = None,
           aliases: tuple = (), parse: Callable | None = None, metavar: str | None = None,
           user_default: Any = dataclasses.MISSING, cli: bool = True, nargs: str | None = None,
           repeat: bool = False, group: str | None = None) -> Any:
    """A dataclass field declared as an option.

    ``flag``: the command-line flag (default ``--field-name``; a ``True``-default bool needs a ``--no-...`` flag);
    ``parse``: text -> value, for the command line and for strings in config files (validates, e.g. sizes);
    ``user_default``: the default of :func:`search.define` and the command line where it differs from the
    field's own (the value a spec built field by field gets); ``cli=False``: not an option at all.
    A tuple option takes its values after one flag (``nargs``: ``"+"``, or ``"*"`` where none is a value) or, with
    ``repeat``, one per repeated flag; options of one ``group`` exclude each other on the command line."""
    meta = {"help": help, "choices": choices, "flag": flag, "aliases": tuple(aliases), "parse": parse,
            "metavar": metavar, "user_default": user_default, "cli": cli, "nargs": nargs, "repeat": repeat,
            "group": group}
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults are not options")
    return dataclasses.field(default=default, metadata={"option": meta})


def options(cls) -> list:
    """The fields of dataclass ``cls`` that are options (of the command line and of config files)."""
    return [f for f in dataclasses.fields(cls) if f.init and meta(f)["cli"]]


def meta(f: dataclasses.Field) -> dict:
    return f.metadata.get("option", {"help": "", "choices": None, "flag": None, "aliases": (), "parse": None,
                                     "metavar": None, "user_default": dataclasses.MISSING, "cli": True,
                                     "nargs": None, "repeat": False, "group": None})


def user_default(f: dataclasses.Field) -> Any:
    """What :func:`search.define` and the command line take when the option is not given."""
    ud = meta(f)["user_default"]
    return f.default if ud is dataclasses.MISSING else ud


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _allowed(hint) -> tuple:
    """The plain types a hint allows (``int | None`` -> (int, NoneType))."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(t for a in typing.get_args(hint) for t in _allowed(a))
    return (typing.get_origin(hint) or hint,)


def type_name(hint) -> str:
    names = {type(None): "null", bool: "true/false", int: "an integer", float: "a number", str: "text",
             tuple: "a list", Path: "a path"}
    return " or ".join(names.get(t, getattr(t, "__name__", str(t))) for t in _allowed(hint))


def check_value(f: dataclasses.Field, hint, value: Any) -> Any:
    """``value`` as field ``f`` holds it (a number as float, a list as tuple), or a ``ConfigError`` naming the
    field: wrong type, or a string outside its choices."""
    m = meta(f)
    if isinstance(value, str) and m["parse"] is not None:
        try:
            value = m["parse"](value)
        except (ValueError, TypeError) as e:
            raise ConfigError(f.name, str(e)) from None
    allowed = _allowed(hint)
    ok = None
    if value is None:
        ok = type(None) in allowed
    elif isinstance(value, bool):
        ok = bool in allowed
    elif isinstance(value, int) and int in allowed:
        ok = True
    elif isinstance(value, (int, float)) and float in allowed:
        value, ok = float(value), True
    elif isinstance(value, str):
        ok = str in allowed
    elif isinstance(value, (list, tuple)) and tuple in allowed:
        args = [a for a in typing.get_args(hint) if typing.get_origin(a) is tuple] or [hint]
        inner = typing.get_args(args[0])
        if len(inner) == 2 and inner[1] is Ellipsis:  # tuple[int, ...]: any length
            inner = (inner[0],) * len(value)
        ok = not inner or (len(value) == len(inner) and all(isinstance(v, t) and not isinstance(v, bool)
                                                            for v, t in zip(value, inner)))
        value = tuple(value)
    if not ok:
        raise ConfigError(f.name, f"{value!r} is not {type_name(hint)}")
    if isinstance(value, str) and m["choices"] is not None and value not in m["choices"]:
        raise ConfigError(f.name, f"unknown value {value!r}; choose one of {', '.join(map(str, m['choices']))}")
    return value


def from_dict(cls, data: dict, strict: bool = True, **fixed):
    """An instance of option dataclass ``cls`` from plain data (a config file, a stored spec): each value
    checked against its declaration, a missing one taking the field's default. ``strict``: an unknown key is a
    ``ConfigError`` (a config file); otherwise it is left out (a spec stored by another version)."""
    if not isinstance(data, dict):
        raise ConfigError("config", f"expected a mapping of option: value, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown and strict:
        raise ConfigError(unknown[0], f"unknown option; known: {', '.join(sorted(fields))}")
    hints = _hints(cls)
    values = {k: check_value(fields[k], hints[k], v) for k, v in data.items() if k in fields}
    values.update(fixed)
    missing = [n for n, f in fields.items() if n not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(missing[0], "required")
    return cls(**values)


def to_dict(obj) -> dict:
    """The fields of an option dataclass as plain data (tuples as lists, paths as text)."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v
    return out


def parse_size(text: str) -> tuple:
    """``"768x512"`` -> ``(768, 512)``."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must be WIDTHxHEIGHT, e.g. 768x512 (got {text!r})") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"size must be positive (got {text!r})")
    return w, h


# -- options shared by commands: each declared once, here; a command's options inherit the ones it takes -------

@dataclass(kw_only=True)
class Root:
    root: str = option(DEFAULT_ROOT, "folder the runs write into (studies, training runs, the latent cache)")


@dataclass(kw_only=True)
class Schedule:
    schedule: str = option(DEFAULT_SCHEDULE, "training schedule: sizes and step counts", choices=SCHEDULE_NAMES)


@dataclass(kw_only=True)
class Seed:
    seed: int = option(DEFAULT_SEED, "random seed (training crops and initial weights; a search's sampler too)")


@dataclass(kw_only=True)
class Device:
    device: str = option(DEFAULT_DEVICE, "auto (CUDA when present), cpu, cuda or cuda:N")


@dataclass(kw_only=True)
class Precision:
    precision: str = option(DEFAULT_PRECISION, "autocast precision of the networks (auto: bf16 on CUDA, fp32 on "
                                               "CPU); entropy models stay fp32", choices=PRECISIONS)


@dataclass(kw_only=True)
class Lmbda:
    lmbda: float = option(DEFAULT_LMBDA, "rate-distortion trade-off (CompressAI convention)")


@dataclass(kw_only=True)
class Batch:
    batch: int | None = option(None, "training crops per step (default: the schedule's)")


@dataclass(kw_only=True)
class Steps:
    steps: int | None = option(None, "training steps of each run (default: the schedule's)")


@dataclass(kw_only=True)
class TrainData:
    data: str | None = option(None, "training images: a folder (default: the photos bundled with scikit-image)")


@dataclass(kw_only=True)
class TestData:
    test_data: str | None = option(None, "reporting images: a folder the test figures are measured on (default: "
                                         "the bundled test photos)")


@dataclass(kw_only=True)
class Teacher:
    teacher: str | None = option(None, "the frozen teacher: " + MODEL_HELP + " (default: "
                                       "<root>/teacher/<schedule>-<lmbda>/codec.pt, where `asymllic teacher train` "
                                       "writes it)")


@dataclass(kw_only=True)
class Cache:
    cache: str | None = option(None, f"latent cache folder (default: <root>/{CACHE_DIR})")


@dataclass(kw_only=True)
class Size:
    size: tuple[int, int] = option(DEFAULT_SIZE, "WIDTHxHEIGHT where MACs (and decode time) are counted",
                                   parse=parse_size, metavar="WxH")


@dataclass(kw_only=True)
class Convention:
    convention: str = option("exact", "exact: every MAC and parameter; thop: the paper's thop.profile figures",
                             choices=CONVENTIONS)


@dataclass(kw_only=True)
class SizeLimits:
    max_gmacs: float | None = option(None, "refuse an image that needs more GMACs")
    max_memory: float | None = option(None, "GiB; refuse an image that needs more (default: what the device has "
                                            "available)")


@dataclass(kw_only=True)
class Png:
    png: bool = option(False, "also write PNG copies of the figures (they need Chromium); the HTML figures open "
                              "offline")


@dataclass(kw_only=True)
class Quiet:
    quiet: bool = option(False, "no progress bars or progress lines")


@dataclass(kw_only=True)
class Json:
    json: bool = option(False, "print JSON")


@dataclass(kw_only=True)
class ExperimentFile:
    config: str | None = option(None, "experiment file (YAML of option: value) whose values replace the defaults; "
                                      "flags given here replace the file's", metavar="FILE")


@dataclass(kw_only=True)
class RunOptions(Device, Precision):
    """Where and how training runs: device, precision, data loading, the latent cache's policy. A training stage
    (``asymllic.training.StageRun``) and a search (``search.SearchSpec``) both take these options."""

    loader_workers: int | None = option(None, "DataLoader worker processes decoding images (default min(8, cores))")
    cache_gib: float = option(4.0, "cap of the latent cache; a run that needs more computes the frozen parts "
                                   "on the fly")
    max_reuse: float = option(4.0, "uses per cached crop before the cache grows (or the run goes on the fly)")
    flips: bool = option(False, "random flips on top of random crops (TCM/CompressAI: none)")
    compile: bool = option(False, "torch.compile the trained parts")
    inherit: str = option("none", "how a light part starts from the teacher's weights: none (ranks candidates "
                                  "best), copy (tensors whose name and shape match) or slice (the overlapping block "
                                  "of tensors whose name matches, as weight-sharing NAS: higher PSNR for "
                                  "teacher-like designs)", choices=INHERIT)

    def run_options(self) -> dict:
        """These options alone, as keyword arguments (e.g. of a ``StageRun``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(RunOptions)}


@dataclass(kw_only=True)
class TrainOptions(RunOptions, Schedule, Lmbda, TrainData, Steps, Batch, Seed, Cache, Quiet, Root):
    """How a teacher or a training stage runs: ``asymllic teacher train`` and ``asymllic train stage1|stage2``
    (``asymllic.training.train_teacher_at`` and ``train_stage_at`` take these as keyword arguments)."""

    out: str | None = option(None, "run folder (default: <root>/teacher/<schedule>-<lmbda> for a teacher, "
                                   "<root>/<stage>/<config id>-<schedule>-<lmbda> for a stage)")


def check_choices(obj) -> None:
    """A ``ConfigError`` naming the first text option of ``obj`` outside its declared choices."""
    for f in dataclasses.fields(obj):
        choices = meta(f)["choices"]
        value = getattr(obj, f.name)
        if choices is not None and isinstance(value, str) and value not in choices:
            raise ConfigError(f.name, f"unknown {f.name} {value!r}; choose one of {', '.join(map(str, choices))}")


def teacher_dir(schedule: str, lmbda: float, root: str | Path = DEFAULT_ROOT) -> Path:
    """Where ``asymllic teacher train`` writes a teacher by default, and where a search looks for one."""
    return Path(root) / "teacher" / f"{schedule}-{lmbda:g}"
