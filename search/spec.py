"""What a search is: the study, the part searched, its budget and where it keeps everything."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from space.domains import PARTS as _AXES_OF

PARTS = tuple(_AXES_OF)  # synthesis, hyperprior, joint
BACKENDS = ("optuna", "ray")
REFERENCES = ("paper", "teacher")  # presets every study trains first, for comparison (unless --no-presets)
SAMPLERS = ("nsga2", "tpe", "random")
OBJECTIVES = ("macs", "latency")
STAGE2_SYNTHESIS = ("stage1", "teacher")  # joint: the g_s stage 2 trains through (sequential or factorized reading)


@dataclass
class SearchSpec:
    study: str
    part: str = "synthesis"
    schedule: str = "cpu"  # training schedule of each candidate (smoke, cpu, paper)
    trials: int = 20
    backend: str = "optuna"
    storage: str | None = None  # default: sqlite:///<root>/<study>/study.db
    workers: int = 1
    mac_budget: float | None = None  # GMACs of the whole decoder at `size` (exact convention)
    teacher: str | None = None
    lmbda: float = 0.0067
    seed: int = 0
    sampler: str = "nsga2"
    data: str | None = None  # training images (default: bundled)
    eval_data: str | None = None  # selection images: the objectives (default: bundled eval split)
    test_data: str | None = None  # reporting images: test_* figures (default: bundled test split)
    stage2_synthesis: str = "stage1"  # joint: stage 2 through the stage-1 g_s, frozen (sequential) or the teacher's
    root: str = "results"
    size: tuple = (768, 512)  # where MACs are counted
    steps: int | None = None  # override the schedule's steps per candidate (with min_steps: the top rung)
    min_steps: int | None = None  # multi-fidelity: the first rung's steps (see search.asha); None: one fidelity
    eta: int = 3  # multi-fidelity: reduction factor between rungs (the best 1/eta go on)
    plan_steps: int | None = None  # steps the learning-rate plan is laid out for (default: steps); set per rung
    enqueue_presets: bool = True  # the paper's decoder and the teacher are the first trials
    ray_address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    heartbeat: int = 60  # seconds; RDB storages fail and retry trials whose worker stopped beating
    device: str = "auto"  # Optuna worker i on n GPUs: cuda:(i mod n); Ray: the GPU Ray assigned the trial
    precision: str = "auto"
    loader_workers: int | None = None
    cache_gib: float = 4.0
    max_reuse: float = 4.0
    flips: bool = False
    compile: bool = False
    inherit: str = "none"  # how each candidate's light part starts from the teacher: none, copy, slice
    objective: str = "macs"  # the cost minimised beside quality: macs or latency (decode time measured per candidate)
    latency_device: str = "cpu"  # where decode time is measured: cpu (with latency_threads) or cuda
    latency_threads: int | None = None
    latency_repeats: int = 3  # median of this many decodes after one warm-up
    latency_budget: float | None = None  # ms; over it a candidate is not trained

    def __post_init__(self):
        from space import ConfigError

        for name, value, allowed in (("part", self.part, PARTS), ("backend", self.backend, BACKENDS),
                                     ("sampler", self.sampler, SAMPLERS), ("objective", self.objective, OBJECTIVES),
                                     ("stage2_synthesis", self.stage2_synthesis, STAGE2_SYNTHESIS)):
            if value not in allowed:
                raise ConfigError(name, f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")

    @property
    def dir(self) -> Path:
        return Path(self.root) / self.study

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.dir / 'study.db').as_posix()}"

    def rungs(self) -> list:
        """The steps each candidate is scored at: one fidelity ``[steps]``, or the multi-fidelity rungs."""
        from asymllic.training.schedules import get_schedule

        from .asha import rungs

        top = self.steps or get_schedule(self.schedule).search_steps
        return [top] if self.min_steps is None else rungs(self.min_steps, top, self.eta)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["size"] = list(self.size)
        return d


def reference_params(part: str) -> dict:
    """{preset name: the axis values of that preset} for the references a study enqueues first."""
    import space

    return {name: space.params_from_config(space.get_preset(name), part) for name in REFERENCES}
