"""Confirm a study's picks: retrain the chosen decoders and the reference presets (the paper's decoder, the
teacher's) on a longer schedule with several seeds, and say whether a pick's lead is outside seed noise.

A search ranks candidates after a short fine-tuning with one seed. Here each decoder is trained again with
``seeds`` seeds for ``steps`` steps (default: ``FACTOR`` times the study's steps per candidate), on the study's
data and teacher, through the same trial pipeline as the search (:func:`search.trial.run_trial`: same device,
precision and stage options), and scored on the test photos (``test_*`` figures, never selected by). Each
decoder is compared with each reference seed by seed: the mean paired difference with a 95 % confidence
interval (Student's t), and a verdict in words.

Every (decoder, seed) run trains in ``<study>/confirm/<config id>-s<seed>-<key>/`` (``<key>``: a digest of
what else the result depends on, :func:`run_key`) and writes its record there (``confirm.json``, atomically) when
it is done: a rerun skips the finished runs and resumes the others, and a run with other steps, teacher or
precision trains beside them instead of over them.
The summary goes to ``confirm.csv``, ``confirm.md`` and ``confirm.html`` (error bars) in ``<study>/confirm/``
(:mod:`search.confirm_report`).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

import space
from asymllic.options import DEFAULT_ROOT

from .candidate import base_config, complexity, train_and_evaluate
from .confirm_report import write_report
from .options import FACTOR, SEEDS
from .spec import BACKENDS, REFERENCES, SearchSpec, reference_params
from .trial import COMPLETE, FAILED, TrialRecord, run_trial
from .verdicts import CONFIRM_DIR, METRICS

RECORD_FILE = "confirm.json"


# -- the study: the few places that know how a study and its spec are stored ---------------------------------

def open_study_frame(study: str | SearchSpec, storage: str | None = None, root: str = DEFAULT_ROOT) -> tuple:
    """(spec, trials frame) of a study, opened through :func:`search.open`: a name in ``root`` (and ``storage``),
    or the study a spec names. The spec is the one the study was searched with (as given, for a spec); an unknown
    study is a one-line error."""
    from .api import open as open_study

    if isinstance(study, SearchSpec):
        return study, open_study(study.study, root=study.root, storage=study.storage).trials()
    opened = open_study(study, root=root, storage=storage)
    return opened.spec, opened.trials()


def reads_trials(picks) -> bool:
    """Whether ``picks`` name a study's trials (None: its best; trial numbers, export picks, trial rows), rather
    than configs alone."""
    if picks is None:
        return True
    items = list(picks.values()) if isinstance(picks, dict) else [picks] if not isinstance(picks, (list, tuple)) \
        else picks
    return not all(isinstance(p, (space.CodecConfig, space.SynthesisConfig, space.HyperpriorConfig)) for p in items)


def run_spec(spec: SearchSpec, seed: int, steps: int) -> SearchSpec:
    """The spec one confirmation run trains with: the study's, at one fidelity of ``steps`` steps with ``seed``;
    no budget (a reference may sit on it), the decoder being chosen already."""
    changes = {"seed": seed, "steps": steps, "min_steps": None, "mac_budget": None, "latency_budget": None}
    known = {f.name for f in fields(spec)}
    return replace(spec, **{k: v for k, v in changes.items() if k in known})


# -- what is confirmed ---------------------------------------------------------------------------------------

@dataclass
class Decoder:
    """One decoder to confirm: a study's trial, a reference preset, or a config given directly."""
    label: str  # "trial 12", "paper", "teacher", or the config id
    config: space.CodecConfig
    kind: str  # "pick" or "reference"
    trial: int | None = None
    reference: str | None = None  # the reference preset it is (a picked trial may be one)

    @property
    def config_id(self) -> str:
        return space.config_id(self.config)


def _row_decoder(row: pd.Series) -> Decoder:
    if not isinstance(row.get("config_json"), str):
        raise space.ConfigError("picks", f"trial {int(row['number'])} has no config")
    preset = row.get("preset")
    ref = preset if isinstance(preset, str) and preset in REFERENCES else None
    return Decoder(f"trial {int(row['number'])}", space.from_dict(json.loads(row["config_json"])), "pick",
                   int(row["number"]), ref)


def decoders(spec: SearchSpec, df: pd.DataFrame | None, picks, references: Sequence[str]) -> list:
    """The decoders to confirm, picks first then references, each config once. ``picks``: trial numbers,
    ``search.export.Pick`` records, trial rows or configs, or a mapping {name: config} (the name labels the
    config's rows and progress lines); None: the study's best candidate (export's default);
    ``references``: preset names among ``REFERENCES``, built as the study built them."""
    for name in references:
        if name not in REFERENCES:
            raise space.ConfigError("references", f"unknown reference {name!r}; choose among {', '.join(REFERENCES)}")
    if picks is None:
        from .export import pick

        if df is None or df.empty:
            raise space.ConfigError("picks", f"study {spec.study!r} has no trials to pick from")
        picks = pick(df, spec.part, cost=spec.objective)
    elif isinstance(picks, (int, np.integer, space.CodecConfig, space.SynthesisConfig, space.HyperpriorConfig)) \
            or hasattr(picks, "row"):
        picks = [picks]
    base = base_config(spec)
    named = dict(picks) if isinstance(picks, dict) else {}
    out = []
    for name, p in (named.items() if named else ((None, p) for p in picks)):
        if isinstance(p, (space.CodecConfig, space.SynthesisConfig, space.HyperpriorConfig)):
            cfg = complete(p, spec.part, base)
            out.append(Decoder(name or space.config_id(cfg), cfg, "pick"))
        elif isinstance(p, (int, np.integer)):
            rows = df[df["number"] == int(p)] if df is not None and not df.empty else None
            if rows is None or rows.empty:
                raise space.ConfigError("picks", f"trial {int(p)} is not a trial of study {spec.study!r}")
            out.append(_row_decoder(rows.iloc[0]))
        elif hasattr(p, "row"):  # search.export.Pick
            out.append(_row_decoder(p.row))
        elif isinstance(p, pd.Series):
            out.append(_row_decoder(p))
        else:
            raise space.ConfigError("picks", f"{p!r} is not a trial number, an export pick or a config")
    params = reference_params(spec.part)
    for name in references:
        out.append(Decoder(name, space.config_from_params(params[name], spec.part, base), "reference", reference=name))
    seen: dict = {}
    for d in out:  # one run per config: a pick that is a reference preset is that reference
        have = seen.get(d.config_id)
        if have is None:
            seen[d.config_id] = d
        elif d.kind == "reference":
            have.label, have.kind, have.reference = d.label, "reference", d.reference
    return list(seen.values())


FIXED = {"synthesis": ("hyperprior", "encoder_width"), "hyperprior": ("synthesis", "encoder_width"),
         "joint": ("encoder_width",)}  # what a study of each part keeps from its teacher


def complete(pick, part: str, base: space.CodecConfig) -> space.CodecConfig:
    """A pick given as a config, completed with the study's fixed part (``base``: the teacher's config), as the
    study counts, trains and codes it: a synthesis or hyperprior config alone is set into ``base``; a whole codec
    config must carry ``base``'s fixed part, else it is a one-line error (it would be counted with a part that
    training and coding replace by the teacher's)."""
    if isinstance(pick, space.SynthesisConfig):
        if part == "hyperprior":
            raise space.ConfigError("picks", "a synthesis config is no pick of a hyperprior study; give a "
                                             "hyperprior config or a whole codec config")
        return replace(base, synthesis=pick)
    if isinstance(pick, space.HyperpriorConfig):
        if part == "synthesis":
            raise space.ConfigError("picks", "a hyperprior config is no pick of a synthesis study; give a "
                                             "synthesis config or a whole codec config")
        return replace(base, hyperprior=pick)
    differ = [f for f in FIXED[part] if getattr(pick, f) != getattr(base, f)]
    if differ:
        what = " and ".join("its encoder width" if f == "encoder_width" else f"its {f}" for f in differ)
        raise space.ConfigError("picks", f"pick {space.config_id(pick)} differs from the study's teacher in {what}, "
                                         f"which a {part} study keeps from the teacher (training and coding use "
                                         f"the teacher's); give the pick's {part} part alone, or the config with "
                                         "the teacher's")
    return pick


def seed_list(spec: SearchSpec, seeds: int | Iterable[int]) -> list:
    """``seeds`` seeds from the study's own (an int), or the seeds given."""
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise space.ConfigError("seeds", f"{seeds}: confirm with at least 1 seed")
        return [spec.seed + i for i in range(int(seeds))]
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise space.ConfigError("seeds", f"{out}: give distinct seeds")
    return out


def seed_plan(spec: SearchSpec, seeds: int | Iterable[int] | Mapping, chosen: list) -> dict:
    """{config id: its seeds} of the ``chosen`` decoders: ``seeds`` for every one (a count or a list), or a
    mapping {decoder name: count or list} naming each decoder (so a close pair gets more seeds than the rest)."""
    if not isinstance(seeds, Mapping):
        common = seed_list(spec, seeds)
        return {d.config_id: common for d in chosen}
    check_named(seeds, [d.label for d in chosen])
    return {d.config_id: seed_list(spec, seeds[d.label]) for d in chosen}


def check_named(seeds: Mapping, names: Sequence[str], what: str = "decoder") -> None:
    """One line unless the mapping ``seeds`` names each of ``names`` and nothing else."""
    unknown, missing = sorted(map(str, set(seeds) - set(names))), [n for n in names if n not in seeds]
    if unknown or missing:
        said = ([f"unknown {', '.join(unknown)}"] if unknown else []) + ([f"missing {', '.join(missing)}"] if missing else [])
        raise space.ConfigError("seeds", f"seeds per {what} must name each {what} ({', '.join(names)}): {'; '.join(said)}")


# -- one (decoder, seed) run ---------------------------------------------------------------------------------

def run_folder(study_dir: Path, config_id: str, seed: int, key: dict | None = None) -> Path:
    """Where the run of ``config_id`` with ``seed`` trains: named by its :func:`run_key` too, so a run under
    another key (other steps, teacher, precision, ...) keeps its own folder and is never overwritten; without a
    key, the folder of earlier versions (``<config id>-s<seed>``), still read back when its record's key matches."""
    name = f"{config_id}-s{seed}"
    if key is not None:
        import hashlib

        name += "-" + hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return Path(study_dir) / CONFIRM_DIR / name


def _where(path: str | None) -> str | None:
    """A path as a run's key holds it: absolute where it names a file or folder here (a Ray run sees it absolute),
    else as given (a preset, "bundled")."""
    return str(Path(path).resolve()) if path is not None and Path(path).exists() else path


def run_key(spec: SearchSpec, steps: int) -> dict:
    """What a confirmation run's result depends on beyond its decoder and seed: a record of another key (other
    steps, schedule, batch, teacher, lambda, data, precision, inherit, flips) is never read back as this run's."""
    return {"steps": steps, "schedule": spec.schedule, "batch": spec.training_schedule().batch,
            "teacher": _where(spec.teacher), "lmbda": spec.lmbda, "data": _where(spec.data),
            "test_data": _where(spec.test_data), "precision": spec.precision, "inherit": spec.inherit,
            "flips": spec.flips, "stage2_synthesis": spec.stage2_synthesis}


def read_record(folder: Path, key: dict | None = None) -> dict | None:
    """The finished run's record in ``folder``: complete and (if ``key`` is given) made under that
    :func:`run_key`; else None (it is trained again)."""
    path = Path(folder) / RECORD_FILE
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if rec.get("status") != COMPLETE or (key is not None and rec.get("key") != key):
        return None
    return rec


def run_pair(decoder: Decoder, spec: SearchSpec, seed: int, steps: int, folder: Path,
             evaluate: Callable = train_and_evaluate) -> dict:
    """Train and evaluate ``decoder`` with ``seed`` for ``steps`` steps in ``folder`` through the search's trial
    pipeline; the record is written to ``folder/confirm.json`` (atomically) and returned."""
    from asymllic.files import write_text

    t0 = time.perf_counter()
    record = run_trial(decoder.config, run_spec(spec, seed, steps), Path(folder), evaluate)
    rec = {"label": decoder.label, "kind": decoder.kind, "trial": decoder.trial, "reference": decoder.reference,
           "config_id": record.config_id, "seed": seed, "steps": steps, "schedule": spec.schedule,
           "batch": spec.training_schedule().batch, "study": spec.study, "status": record.status,
           "reason": record.reason, "seconds": time.perf_counter() - t0, "record": record.to_dict(),
           "key": run_key(spec, steps)}
    write_text(json.dumps(rec, indent=1, default=str), Path(folder) / RECORD_FILE)
    return rec


def _run_job(job: dict, spec_dict: dict, evaluate: Callable = train_and_evaluate) -> dict:
    """One run from plain data (a Ray trial, a worker process)."""
    d = Decoder(job["label"], space.from_dict(job["config"]), job["kind"], job["trial"], job["reference"])
    return run_pair(d, SearchSpec.from_dict(dict(spec_dict), strict=False), job["seed"], job["steps"], Path(job["folder"]), evaluate)


def _ray_trainable(params: dict, spec_dict: dict, evaluate: Callable = train_and_evaluate) -> None:
    """One run as a Ray trial; its record travels back in the result (the driver need not share the disk)."""
    from ray import tune

    from .ray_backend import in_actor

    rec = _run_job(params["job"], in_actor(SearchSpec.from_dict(dict(spec_dict), strict=False)).to_dict(), evaluate)
    tune.report({"done": 1, "status": rec["status"], "record": json.dumps(rec, default=str)})


def _run_ray(jobs: list, spec: SearchSpec, folder: Path, evaluate: Callable) -> tuple:
    """The runs as a Ray Tune grid, ``spec.workers`` at a time with the study's resources per trial, after every
    node is checked (:func:`search.ray_backend.check_ray_nodes`); each writes its record as in-process runs do and sends
    it back. Returns ({run folder: record}, {run folder: Ray's error} for the trials that raised)."""
    import ray
    from ray import tune

    from .nodes import shared_paths
    from .ray_backend import check_ray_nodes, connect, tune_environ

    if not ray.is_initialized():
        connect(spec.ray_address)
    check_ray_nodes(spec.dir, shared_paths(spec))
    trainable = tune.with_resources(tune.with_parameters(_ray_trainable, spec_dict=spec.to_dict(), evaluate=evaluate),
                                    {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial or 0})
    tuner = tune.Tuner(trainable, param_space={"job": tune.grid_search(jobs)},
                       tune_config=tune.TuneConfig(max_concurrent_trials=max(1, spec.workers), reuse_actors=True),
                       run_config=tune.RunConfig(name=f"confirm-{int(time.time())}", storage_path=str(folder / "ray"),
                                                 failure_config=tune.FailureConfig(fail_fast=False), verbose=0))
    records, errors = {}, {}
    with tune_environ():  # an infeasible or failed job reports its record without objective values
        grid = tuner.fit()
    for result in grid:
        if not result.config:
            continue
        where = result.config["job"]["folder"]
        if result.error is not None:
            lines = [line for line in str(result.error).strip().splitlines() if line.strip()]
            errors[where] = (lines[-1] if lines else type(result.error).__name__)[:500]
        elif "record" in (result.metrics or {}):
            records[where] = json.loads(result.metrics["record"])
    return records, errors


# -- the whole confirmation ----------------------------------------------------------------------------------

@dataclass
class ConfirmResult:
    summary: pd.DataFrame  # one row per decoder (see ``search.confirm_report.summarize``)
    runs: pd.DataFrame  # one row per (decoder, seed)
    folder: Path  # <study>/confirm
    files: list = field(default_factory=list)
    trained: int = 0  # runs trained by this call (the rest were finished before)


def confirm(study_or_spec: str | SearchSpec, picks=None, references: Sequence[str] = REFERENCES,
            steps: int | None = None, seeds: int | Iterable[int] | Mapping = SEEDS, *, top: int | None = None,
            budget: float | None = None, factor: int = FACTOR, backend: str | None = None,
            storage: str | None = None, root: str = DEFAULT_ROOT, overrides: dict | None = None,
            evaluate: Callable = train_and_evaluate, png: bool = False, progress: bool = True) -> ConfirmResult:
    """Retrain ``picks`` and ``references`` with each of ``seeds`` for ``steps`` steps and compare them.

    ``study_or_spec``: a study name (in ``root``/``storage``) or its SearchSpec; the study's spec gives the
    teacher, lambda, data, schedule and device options, ``overrides`` replaces some (e.g. ``{"device": "cuda"}``).
    ``picks``: trial numbers, ``search.export.pick`` records or configs, or {name: config} (None: the study's best
    candidate); or
    ``top`` K points along the study's front, or ``budget`` the best candidate within that many GMACs, as
    ``search.export.pick`` chooses them (one of the three).
    ``seeds``: a count (the study's seed and the next ones) or a list for every decoder, or {name: count or
    list} naming each decoder (the names of ``picks`` given as a mapping, the references' names).
    ``steps``: default ``factor`` times the study's steps per candidate. ``backend``: ``optuna`` (runs one after
    the other in this process) or ``ray`` (a Ray Tune grid, ``workers`` at a time); default the study's.
    Finished runs are read back, not trained again. Writes confirm.csv, confirm.md, confirm_runs.csv and the
    figure (confirm.html; ``png`` also confirm.png) in ``<study>/confirm/``."""
    from asymllic.files import write_text

    if sum(x is not None for x in (picks, top, budget)) > 1:
        raise space.ConfigError("picks", "give trials, top or budget: one of them")
    if isinstance(study_or_spec, SearchSpec) and not reads_trials(picks) and top is None and budget is None:
        spec, df = study_or_spec, None  # configs to confirm on a spec's settings: no study need be stored
    else:
        spec, df = open_study_frame(study_or_spec, storage, root)
    if top is not None or budget is not None:
        from .export import pick

        picks = pick(df, spec.part, top=top, budget=budget, cost=spec.objective)
    if overrides:
        spec = replace(spec, **overrides)
    backend = backend or spec.backend
    if backend not in BACKENDS:
        raise space.ConfigError("backend", f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if factor < 1:
        raise space.ConfigError("factor", f"{factor}: confirm with at least the study's steps")
    steps = steps or factor * spec.rungs()[-1]
    if steps < 1:
        raise space.ConfigError("steps", f"{steps}: confirm with at least 1 step")
    chosen = decoders(spec, df, picks, references)
    plan = seed_plan(spec, seeds, chosen)
    if backend == "ray":  # Ray trials run in their own working folders, perhaps on other machines
        from .nodes import absolute

        spec = absolute(spec)
    folder = spec.dir / CONFIRM_DIR
    folder.mkdir(parents=True, exist_ok=True)

    records, jobs = {}, []
    key = run_key(spec, steps)
    for d in chosen:
        for s in plan[d.config_id]:
            where = run_folder(spec.dir, d.config_id, s, key)
            rec = read_record(where, key) or read_record(run_folder(spec.dir, d.config_id, s), key)
            if rec is not None:
                records[(d.config_id, s)] = rec
            else:
                jobs.append((d, s, where))
    if progress:
        print(f"confirm {spec.study}: {len(chosen)} decoders x {_seed_count(plan)} seeds, {steps} steps each; "
              f"{len(records)} runs done, {len(jobs)} to train", flush=True)
    if jobs and backend == "ray":
        sent, errors = _run_ray([{"label": d.label, "config": space.to_dict(d.config), "kind": d.kind,
                                  "trial": d.trial, "reference": d.reference, "seed": s, "steps": steps,
                                  "folder": str(w)} for d, s, w in jobs], spec, folder, evaluate)
        for d, s, w in jobs:
            rec = sent.get(str(w))
            if rec is not None:  # the record Ray brought back, kept here too (a resumed confirm reads it)
                write_text(json.dumps(rec, indent=1, default=str), Path(w) / RECORD_FILE)
            records[(d.config_id, s)] = rec or _missing(d, s, steps, spec, "the Ray trial sent no record: "
                                                                           + errors.get(str(w), "no error reported"))
    else:
        for i, (d, s, w) in enumerate(jobs, 1):
            rec = run_pair(d, spec, s, steps, w, evaluate)
            records[(d.config_id, s)] = rec
            if progress:
                m = rec["record"]["metrics"]
                what = ", ".join(f"test {k} {m[f'test_{k}']:.4f}" for k in METRICS if f"test_{k}" in m) \
                    if rec["status"] == COMPLETE else rec["reason"]
                print(f"[{i}/{len(jobs)}] {d.label} ({d.config_id}) seed {s}: {rec['status']}, {what} "
                      f"({rec['seconds']:.0f} s)", flush=True)
    summary, runs, files = write_report([records[(d.config_id, s)] for d in chosen for s in plan[d.config_id]], spec,
                                        steps, sorted({s for v in plan.values() for s in v}),
                                        [d.config_id for d in chosen], folder, png)
    return ConfirmResult(summary, runs, folder, files, len(jobs))


def _seed_count(plan: dict) -> str:
    counts = sorted({len(v) for v in plan.values()})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"


def _missing(d: Decoder, seed: int, steps: int, spec: SearchSpec, reason: str) -> dict:
    rec = TrialRecord(FAILED, space.to_dict(d.config), d.config_id, complexity(d.config, spec.size), reason=reason)
    return {"label": d.label, "kind": d.kind, "trial": d.trial, "reference": d.reference, "config_id": d.config_id,
            "seed": seed, "steps": steps, "schedule": spec.schedule, "study": spec.study, "status": FAILED,
            "reason": reason, "seconds": 0.0, "record": rec.to_dict()}
