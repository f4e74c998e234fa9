"""The Optuna driver: one objective, any RDB storage (SQLite by default, PostgreSQL to scale out), K workers.

Each trial samples a config from ``space`` (define-by-run), counts it before any training, prunes it
as infeasible when over the MAC budget, and otherwise trains and evaluates it. Everything a trial
knows is stored as user attributes, so the study database alone is the result.
"""
from __future__ import annotations

import os
import socket
import time
import warnings
import zlib
from contextlib import contextmanager
from typing import Callable

import space
from asymllic.errors import exception_chain

from . import objectives
from .asha import minimise, promotable
from .candidate import base_config, train_and_evaluate
from .spec import SearchSpec, StudyRef, reference_params, stored_spec
from .storage import StorageError
from .trial import FAILED, INFEASIBLE, STOPPED, MachineError, run_trial

FINISHED = ("COMPLETE", "PRUNED")
CREATOR = "asymllic:creator"  # a study system attribute: host:pid of the process that created the study


def storage(ref: StudyRef, heartbeat: int | None = None):
    """The study's RDB storage (see ``search.storage``): schema created once; with a ``heartbeat`` (a search's),
    trials whose worker stopped beating are failed and retried."""
    from .storage import open_storage

    if ref.storage_url.startswith("sqlite:///"):
        ref.dir.mkdir(parents=True, exist_ok=True)
    return open_storage(ref.connect_url(), heartbeat)


def sampler(spec: SearchSpec, stream: tuple = ()):
    """The study's sampler, seeded with ``spec.seed`` (no ``stream``: a new study's first worker, see
    ``worker_stream``), else with a seed mixed from ``spec.seed`` and ``stream``: with one seed, every worker
    would draw the same configs, and a resumed study the configs already drawn (seen here: a resumed study
    re-trained its first sampled config seven times; worker 0 on two machines drew the same three configs).
    The seed is the sampler's ``asymllic_seed``; each trial records it (system attribute ``sampler_seed``)."""
    import numpy as np
    import optuna

    seed = int(np.random.SeedSequence([spec.seed, *stream]).generate_state(1)[0]) if stream else spec.seed
    if spec.sampler == "tpe":
        chosen = optuna.samplers.TPESampler(seed=seed, multivariate=True)
    elif spec.sampler == "random":
        chosen = optuna.samplers.RandomSampler(seed=seed)
    else:
        assert spec.sampler == "nsga2", spec.sampler  # SearchSpec validates the name
        chosen = optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, spec.trials // 3)))
    chosen.asymllic_seed = seed
    return chosen


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_stream(study, drawn: int, index: int) -> tuple:
    """What a worker's sampler seed mixes in (``sampler``): nothing for the first worker of a new study (no trial
    drawn yet, worker index 0, in the process that created the study or its child), so that a single-process
    run of a new study is reproducible; for any other worker the trials drawn, its index, host, pid and 64
    random bits, so that workers on several machines, or in several processes of one, draw different configs."""
    host, pid = socket.gethostname(), os.getpid()
    creator = study._storage.get_study_system_attrs(study._study_id).get(CREATOR)
    if drawn == 0 and index == 0 and creator in (f"{host}:{pid}", f"{host}:{os.getppid()}"):
        return ()
    noise = int.from_bytes(os.urandom(8), "little")
    return drawn, index, zlib.crc32(host.encode()), pid, noise & 0xFFFFFFFF, noise >> 32


@contextmanager
def optuna_verbosity(level: int):
    """Optuna's log level for one block, the previous one restored afterwards (importing or calling the search
    leaves the process's logging as it found it)."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(level)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def open_study(spec: StudyRef, create: bool = True):
    """The Optuna study ``spec`` names: opened (``create=False``: any ``StudyRef``; a ``KeyError`` if there is
    none), or created with its sampler, directions, stored spec and enqueued presets (a ``SearchSpec``)."""
    import optuna
    from optuna.exceptions import ExperimentalWarning

    with optuna_verbosity(optuna.logging.WARNING), warnings.catch_warnings():  # no INFO line for the study
        warnings.simplefilter("ignore", ExperimentalWarning)  # e.g. set_metric_names, the heartbeat: known
        return _open_study(spec, create)


def _open_study(spec: StudyRef, create: bool):
    import optuna

    if not create:
        return optuna.load_study(study_name=spec.study, storage=storage(spec))
    store = storage(spec, spec.heartbeat)
    try:  # only the process that creates the study describes it and enqueues the presets, exactly once
        study = optuna.create_study(study_name=spec.study, storage=store, sampler=sampler(spec),
                                    directions=objectives.directions(spec.part, spec.objective))
    except optuna.exceptions.DuplicatedStudyError:  # resuming, or another worker (machine) was first
        study = optuna.load_study(study_name=spec.study, storage=store, sampler=sampler(spec))
        part = stored_spec(study).part if study.user_attrs.get("spec") else spec.part
        if part != spec.part:
            from asymllic.errors import AsymllicError

            raise AsymllicError(f"study {spec.study!r} searches the {part} part, not {spec.part}; "
                                "use another --study name") from None
        return study
    else:
        from .artifacts import describe

        study.set_user_attr("spec", spec.stored_dict())  # the storage URL without its password
        study._storage.set_study_system_attr(study._study_id, CREATOR, this_process())  # see worker_stream
        study.set_user_attr("objectives", objectives.names(spec.part, spec.objective))
        describe(study, spec)  # what Optuna Dashboard shows: objectives with their units, the study's note
        if spec.enqueue_presets:
            for name, params in reference_params(spec.part).items():
                study.enqueue_trial(params, user_attrs={"preset": name}, skip_if_exists=True)
    return study


def rung_key(rung: int) -> str:
    return f"rung_{rung}"


def rung_decider(spec: SearchSpec, trial) -> Callable:
    """``on_rung`` of one Optuna trial: store its rung result in the study (every worker sees it) and rank it
    among every result stored at that rung so far (``search.asha``). The reference presets always go on."""
    directions = objectives.directions(spec.part, spec.objective)

    def on_rung(rung: int, record) -> bool:
        from .artifacts import report_rung

        report_rung(trial, spec, record)  # the learning curve: this rung's figure at its training steps
        key = rung_key(rung)
        trial.set_user_attr(key, minimise(record.values(spec.part, spec.objective), directions))
        if trial.user_attrs.get("preset"):
            return True
        results = {t.number: t.user_attrs[key] for t in trial.study.get_trials(deepcopy=False) if key in t.user_attrs}
        results[trial.number] = trial.user_attrs[key]
        return promotable(results, trial.number, spec.eta)

    return on_rung


class TrialFailed(RuntimeError):
    """A candidate that crashed or gave no finite objective (its reason is the trial's ``error`` attribute)."""


def make_objective(spec: SearchSpec, evaluate: Callable = train_and_evaluate, stopped: list | None = None):
    """The Optuna adapter of ``run_trial``: its record becomes user attributes and a complete, pruned
    (infeasible) or failed trial; a machine error, or a study storage still lost after its retries, is appended
    to ``stopped`` and stops the study."""
    import optuna

    base = base_config(spec)
    stopped = [] if stopped is None else stopped

    def objective(trial):
        seed = getattr(trial.study.sampler, "asymllic_seed", None)
        trial.storage.set_trial_system_attr(trial._trial_id, "sampler_seed", seed)  # see sampler
        trial.storage.set_trial_system_attr(trial._trial_id, "worker", this_process())
        cfg = space.config_from_params(space.suggest_params(trial, spec.part), spec.part, base)
        trial_dir = spec.dir / "trials" / f"{trial.number:04d}-{space.config_id(cfg)}"
        try:
            record = run_trial(cfg, spec, trial_dir, evaluate, rung_decider(spec, trial))
        except MachineError as e:
            trial.set_user_attr("error", str(e)[:1000])
            stopped.append(str(e))
            trial.study.stop()
            raise
        try:  # each write is retried across a lost connection (search.storage); past that, this worker stops
            for k, v in record.attrs().items():
                trial.set_user_attr(k, v)
        except StorageError as e:
            stopped.append(e)
            trial.study.stop()
            raise
        _show(trial, spec, record)
        if record.status in (INFEASIBLE, STOPPED):
            raise optuna.TrialPruned(record.reason)
        if record.status == FAILED:
            raise TrialFailed(record.reason)
        return record.values(spec.part, spec.objective)

    return objective


def _show(trial, spec: SearchSpec, record) -> None:
    """What Optuna Dashboard shows of a trial that ran: its last rung's figure as an intermediate value, its
    artifacts (card, MAC table, reconstruction), the study's learning curves. Warnings only, never a failure."""
    from .artifacts import report_rung, save_curves, store_trial

    if record.status != INFEASIBLE:
        report_rung(trial, spec, record)
    store_trial(trial, spec, record)
    if record.status != INFEASIBLE:
        save_curves(trial.study, spec)


def finished(study) -> int:
    return sum(t.state.name in FINISHED for t in study.get_trials(deepcopy=False))


def progress_callback(spec: SearchSpec):
    """One line per finished trial: how far the study is, and what the trial gave."""
    def report(study, trial) -> None:
        values = ", ".join(f"{n} {v:.4g}" for n, v in zip(objectives.names(spec.part, spec.objective), trial.values or []))
        attrs = trial.user_attrs
        detail = values or attrs.get("infeasible") or attrs.get("stopped") or attrs.get("error", "")
        state = "stopped" if "stopped" in attrs else trial.state.name.lower()
        print(f"[{finished(study)}/{spec.trials}] trial {trial.number} {state} "
              f"{trial.user_attrs.get('config_id', '')}: {detail}", flush=True)

    return report


def run_worker(spec: SearchSpec, evaluate: Callable = train_and_evaluate, threads: int | None = None,
               index: int = 0, progress: bool = True) -> None:
    """Optimise until the study holds ``spec.trials`` finished (complete or pruned) trials; ``index``: which
    of the study's worker processes this is; ``progress``: a line per finished trial."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    if threads:
        import torch

        torch.set_num_threads(threads)
    study = open_study(spec)
    if finished(study) >= spec.trials:
        return
    drawn = sum(t.state.name != "WAITING" for t in study.get_trials(deepcopy=False))
    study.sampler = sampler(spec, worker_stream(study, drawn, index))
    stopped: list = []
    # a failed trial is one line of progress_callback (with its error), not Optuna's warning and traceback
    try:
        with optuna_verbosity(optuna.logging.ERROR):
            study.optimize(make_objective(spec, evaluate, stopped), n_trials=3 * spec.trials, catch=(Exception,),
                           callbacks=[MaxTrialsCallback(spec.trials, states=(TrialState.COMPLETE, TrialState.PRUNED)),
                                      *([progress_callback(spec)] if progress else [])],
                           gc_after_trial=True)
    except Exception as e:  # the study storage lost past its retries: its one line, not Optuna's traceback
        lost = next((c for c in exception_chain(e) if isinstance(c, StorageError)), None)
        if lost is None:
            raise
        raise lost from None
    if stopped and isinstance(stopped[0], StorageError):
        raise stopped[0]
    if stopped:
        from asymllic.errors import AsymllicError

        raise AsymllicError(f"{stopped[0]}; the search stopped and its study ({spec.storage_url}) is "
                            f"intact with {finished(study)} finished trials: free space or fix the folder, then "
                            "run the same command again to resume")


def _spawned_worker(spec_dict: dict, threads: int, index: int = 0, progress: bool = True) -> None:
    import sys

    from asymllic.device import worker_device
    from asymllic.errors import AsymllicError

    try:
        spec = SearchSpec.from_dict(spec_dict)
        spec.device = str(worker_device(spec.device, index))  # worker i: GPU i mod n
        run_worker(spec, threads=threads, index=index, progress=progress)
    except AsymllicError as e:
        print(f"asymllic: worker error: {e}", file=sys.stderr)
        sys.exit(2)


def _stop(procs: list, grace_s: float = 5.0) -> None:
    """End the worker processes that are still running: SIGTERM, ``grace_s`` seconds to go, then SIGKILL."""
    started = [p for p in procs if p.pid is not None]
    for p in started:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in started:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in started:
        if p.is_alive():
            p.kill()
            p.join(grace_s)


def run_optuna(spec: SearchSpec, evaluate: Callable = train_and_evaluate, progress: bool = True):
    """Run ``spec.workers`` worker processes on one study (or this process alone for one worker); ``progress``: a
    line per finished trial."""
    from .nodes import check_study_machine

    study = open_study(spec)  # create (and enqueue presets) once, before the workers race
    check_study_machine(study, spec)  # this machine sees the study's folder, teacher and data (several machines)
    if spec.workers <= 1:
        run_worker(spec, evaluate, progress=progress)
        return study
    import multiprocessing as mp

    threads = max(1, (os.cpu_count() or 1) // spec.workers)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_spawned_worker, args=(spec.to_dict(), threads, i, progress)) for i in range(spec.workers)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    except BaseException:  # interrupted (Ctrl-C, a caller's time budget): the workers stop too, not train on
        _stop(procs)
        raise
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        from asymllic.errors import AsymllicError

        raise AsymllicError(f"{len(failed)} of {len(procs)} workers stopped with an error (see above); the study "
                            f"({spec.storage_url}) keeps every finished trial: run the same command again to resume")
    return study
