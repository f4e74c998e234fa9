"""What a search is: the study, the part searched, its budget and where it keeps everything.

Every option is declared once, as a field of :class:`StudyRef` (which study, where), ``RunOptions`` (how
training runs, shared with a training stage) or :class:`SearchSpec`; the command line's flags, config files
(``asymllic search --config``) and stored specs are all read from these declarations. Plain data: importing
this module imports no torch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from asymllic import options as _options
from asymllic.options import (DEFAULT_ROOT, Batch, Lmbda, Root, RunOptions, Schedule, Seed, Size, Teacher, TestData, TrainData,
                              option)
from space import ConfigError
from space.domains import PARTS as _AXES_OF

PARTS = tuple(_AXES_OF)  # synthesis, hyperprior, joint
BACKENDS = ("optuna", "ray")
REFERENCES = ("paper", "teacher")  # presets every study trains first, for comparison (unless --no-presets)
SAMPLERS = ("nsga2", "tpe", "random")
OBJECTIVES = ("macs", "latency")
STAGE2_SYNTHESIS = ("stage1", "teacher")  # joint: the g_s stage 2 trains through (sequential or factorized reading)
BUDGET_WORDS = ("teacher", "none")
SPEC_FILE = "spec.yaml"  # every study's resolved spec, beside its results: `asymllic search --config` reruns it


def parse_budget(text: str):
    """A MAC budget as given: a number of GMACs, 'teacher' or 'none'."""
    if text.lower() in BUDGET_WORDS:
        return text.lower()
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"a number of GMACs, 'teacher' or 'none' (got {text!r})") from None


STUDY_NAME_MAX = 100


def check_study_name(name) -> None:
    """A study name is a name (a folder of ``root``, a study in a shared storage, a word in printed commands):
    letters, digits, ``.``, ``_`` and ``-``, not starting with ``.`` or ``-``, 1 to :data:`STUDY_NAME_MAX`
    characters. Anything else is a one-line ``ConfigError``: ``../x`` or ``/abs`` would be a folder outside the
    results."""
    import re

    if not isinstance(name, str) or not name:
        raise ConfigError("study", "required: a study name (--study NAME)")
    if len(name) > STUDY_NAME_MAX:
        raise ConfigError("study", f"{name[:20]!r}...: at most {STUDY_NAME_MAX} characters")
    if name[0] in ".-" or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ConfigError("study", f"{name!r} is not a study name: letters, digits, '.', '_' and '-', not starting "
                                   "with '.' or '-' (it names a folder of --root)")


@dataclass
class StudyRef(Root):
    """Which study, and where: enough to open one and read its results."""

    study: str = option(dataclasses.MISSING, "study name (<root>/<study>/)")
    storage: str | None = option(None, "Optuna storage URL, e.g. postgresql://user@host/db (the password from "
                                       "PGPASSWORD or ~/.pgpass), or env:VARNAME to read the URL from that "
                                       "environment variable; a password is never stored or printed "
                                       "(default: sqlite:///<root>/<study>/study.db)")

    @property
    def dir(self) -> Path:
        return Path(self.root) / self.study

    @property
    def storage_url(self) -> str:
        """The storage's URL as it may be printed: an ``env:`` URL read, the password masked. Opening the storage
        takes :meth:`connect_url`."""
        from .storage import safe_url

        return safe_url(self.connect_url(resolve=False))

    def connect_url(self, resolve: bool = True) -> str:
        """The URL the storage is opened with, password included (``resolve``: an ``env:VARNAME`` storage read from
        the environment). Never to be printed or stored: :attr:`storage_url` is that one."""
        from .storage import resolve_url

        url = self.storage or f"sqlite:///{(self.dir / 'study.db').as_posix()}"
        return resolve_url(url) if resolve else url

    def __post_init__(self):
        check_study_name(self.study)

    def where(self) -> list:
        """The flags that name this study's place in a command printed for a user to paste (its root when not the
        default, its storage without a password)."""
        from .storage import stored_url

        words = [] if str(self.root) == DEFAULT_ROOT else ["--root", str(self.root)]
        return words + (["--storage", stored_url(self.storage)] if self.storage else [])

    def ref(self) -> "StudyRef":
        return StudyRef(self.study, self.storage, root=self.root)


@dataclass(kw_only=True)
class Backend:
    backend: str = option("optuna", "optuna: worker processes on this machine (or several sharing one storage); "
                                    "ray: Ray Tune trials (a local Ray or a cluster)", choices=BACKENDS)


@dataclass(kw_only=True)
class RayAddress:
    ray_address: str | None = option(None, "Ray cluster address (default: a local Ray)")


@dataclass
class SearchSpec(RunOptions, Schedule, Lmbda, Seed, Batch, TrainData, TestData, Teacher, Size, Backend, RayAddress,
                 StudyRef):
    """A search: what is searched, how each candidate is trained and scored, on which backend."""

    part: str = option("synthesis", "the part searched", choices=PARTS)
    trials: int = option(20, "finished (complete or pruned) trials the study ends with")
    workers: int = option(1, "worker processes (Optuna) or concurrent trials (Ray)")
    mac_budget: float | str | None = option(
        None, "decoder GMACs at --size over which a candidate is not trained: a number, 'teacher' (the teacher's "
              "decoder, a light decoder being the point) or 'none'", user_default="teacher", parse=parse_budget,
        choices=BUDGET_WORDS, metavar="GMACS")
    objective: str = option("macs", "the decoder cost minimised beside quality: MACs, or decode time measured per "
                                    "candidate", choices=OBJECTIVES)
    latency_device: str = option("cpu", "where decode time is measured: cpu or cuda")
    latency_threads: int | None = option(None, "CPU threads for the decode-time measurement")
    latency_repeats: int = option(3, "decodes timed (median) after one warm-up")
    latency_budget: float | None = option(None, "ms at --size on the latency target; over it a candidate is not "
                                                "trained")
    sampler: str = option("nsga2", "Optuna sampler", choices=SAMPLERS)
    steps: int | None = option(None, "fine-tuning steps per candidate (default: the schedule's); with --min-steps, "
                                     "the top rung", aliases=("--max-steps",))
    min_steps: int | None = option(None, "multi-fidelity (MO-ASHA): score candidates first after this many steps; "
                                         "only the best 1/eta at each rung train on (x eta steps), up to --steps")
    eta: int = option(3, "multi-fidelity reduction factor between rungs")
    eval_data: str | None = option(None, "selection images: the objectives (default: bundled eval photos)")
    stage2_synthesis: str = option("stage1", "joint: stage 2 through the stage-1 g_s just trained, frozen "
                                             "(sequential: measured better and faster) or through the teacher's g_s "
                                             "(the factorized reading)", choices=STAGE2_SYNTHESIS)
    enqueue_presets: bool = option(True, "do not enqueue the paper's decoder and the teacher as the first trials",
                                   flag="--no-presets")
    cpus_per_trial: float = option(1.0, "CPUs Ray reserves per trial")
    gpus_per_trial: float | None = option(None, "GPUs Ray reserves per trial (default: with --device auto or cuda "
                                                "and GPUs in the cluster, 1, or a share when trials outnumber them)")
    heartbeat: int = option(60, "seconds; RDB storages fail and retry trials whose worker stopped beating")
    artifacts: str | None = option(None, "folder of the trials' artifacts (a reconstruction crop, a card, a per-layer "
                                         "MAC table each; Optuna Dashboard shows them): with several machines, one "
                                         "every worker can write (default: <root>/<study>/artifacts)")
    artifact_side: int = option(256, "side in pixels of the test-photo crop each trial's reconstruction shows (0: no "
                                     "reconstruction)")

    def __post_init__(self):
        check_study_name(self.study)
        _options.check_choices(self)
        if self.batch is not None and self.batch < 1:
            raise ConfigError("batch", f"{self.batch}: a step trains on at least one crop")
        if self.artifact_side < 0:
            raise ConfigError("artifact_side", f"{self.artifact_side}: a side in pixels, or 0 for no reconstruction")

    def rungs(self) -> list:
        """The steps each candidate is scored at: one fidelity ``[steps]``, or the multi-fidelity rungs."""
        from .asha import rungs

        top = self.steps or self.training_schedule().search_steps
        return [top] if self.min_steps is None else rungs(self.min_steps, top, self.eta)

    def training_schedule(self):
        """The schedule each candidate trains on: ``schedule`` with ``batch`` if given."""
        from asymllic.training.schedules import get_schedule

        return get_schedule(self.schedule, batch=self.batch)

    def rung(self) -> tuple:
        """(steps this candidate trains to, steps its learning-rate plan is laid out for): one fidelity."""
        top = self.rungs()[-1]
        return top, top

    def at_rung(self, steps: int, plan_steps: int) -> "RungSpec":
        """This spec for one rung of a candidate: ``steps`` now, in the plan of ``plan_steps`` (the top rung's)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(SearchSpec)}
        return RungSpec(**{**values, "steps": steps}, plan_steps=plan_steps)

    def to_dict(self) -> dict:
        """Every field as plain data, the storage URL as given (for this search's own worker processes); a spec
        that is stored or written takes :meth:`stored_dict`."""
        return _options.to_dict(self)

    def stored_dict(self) -> dict:
        """:meth:`to_dict` as a study stores it (its ``spec`` attribute, spec.yaml): the storage URL without its
        password (``search.storage.stored_url``)."""
        from .storage import stored_url

        return {**self.to_dict(), "storage": stored_url(self.storage)}

    @property
    def artifacts_dir(self) -> Path:
        """Where the trials' artifacts are kept: ``artifacts``, or ``<root>/<study>/artifacts``."""
        return Path(self.artifacts) if self.artifacts else self.dir / "artifacts"

    @classmethod
    def from_dict(cls, data: dict, strict: bool = False, **fixed) -> "SearchSpec":
        """A spec from plain data: a stored spec (``strict=False``: keys of another version left out, missing ones
        take their declared defaults) or a config file (``strict=True``: an unknown key is an error). ``fixed``:
        values set on top, e.g. the ``root`` a study was opened from."""
        return _options.from_dict(cls, data, strict, **fixed)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.stored_dict(), sort_keys=False)


@dataclass
class RungSpec(SearchSpec):
    """A candidate's spec at one rung of a multi-fidelity search: ``steps`` is the rung's, ``plan_steps`` the top
    rung's (the learning-rate plan a run stopped early still follows). Made by the trial pipeline, never an option."""

    plan_steps: int = option(0, cli=False)

    def rung(self) -> tuple:
        return self.steps, self.plan_steps or self.steps


def read_config(path: str | Path) -> dict:
    """A YAML (or JSON) experiment file as a mapping; a file that is no mapping is one ``ConfigError``."""
    import yaml


    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise ConfigError("config", f"cannot read {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ConfigError("config", f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config", f"{path}: expected a mapping of option: value")
    return data


def write_spec(spec: SearchSpec) -> Path:
    """The study's resolved spec as ``<root>/<study>/spec.yaml`` (``asymllic search --config`` of it reruns it)."""
    from asymllic.files import write_text

    path = spec.dir / SPEC_FILE
    write_text(spec.to_yaml(), path)
    return path


def stored_spec(study, ref: StudyRef | None = None) -> SearchSpec:
    """The spec an Optuna study was searched with (its ``spec`` user attribute), typed; keys of another version
    are left out and missing ones take their declared defaults. ``ref``: where it was opened from (root,
    storage), which the stored spec may no longer name."""
    data = dict(study.user_attrs.get("spec") or {})
    data["study"] = study.study_name
    fixed = {"root": ref.root, "storage": ref.storage} if ref is not None else {}
    return SearchSpec.from_dict({k: v for k, v in data.items() if k not in fixed}, strict=False, **fixed)


def reference_params(part: str) -> dict:
    """{preset name: the axis values of that preset} for the references a study enqueues first."""
    import space

    return {name: space.params_from_config(space.get_preset(name), part) for name in REFERENCES}


@dataclass(kw_only=True)
class Pick:
    """Which trials of a study: K points along its front, given trials, or the best within a MAC budget (one of
    them; none: the default pick of the command)."""

    top: int | None = option(None, "K points spread along the Pareto front, from the cheapest to the best",
                             metavar="K", group="pick")
    trial: tuple[int, ...] | None = option(None, "these trials (a reference preset's too)", metavar="N",
                                           group="pick")
    budget: float | None = option(None, "the best candidate whose decoder needs at most GMACS", metavar="GMACS",
                                  group="pick")
