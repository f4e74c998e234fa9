"""The Ray Tune driver: the same space (define-by-run through ``OptunaSearch``), objectives and candidates.

Local Ray by default, a cluster with ``--ray-address``; ``Tuner.restore`` resumes an interrupted
experiment. When the experiment ends its trials are mirrored into the Optuna storage of the study, so
``asymllic results | pareto | export`` read Ray and Optuna searches alike.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable

import space

from asymllic.files import write_text

from . import objectives
from .candidate import base_config, complexity, train_and_evaluate
from .spec import SearchSpec, reference_params
from .asha import minimise
from .trial import COMPLETE, FAILED, INFEASIBLE, MACHINE_ERROR, STOPPED, MachineError, TrialRecord, run_trial


RESULT_FILE = "result.json"
RUNGS_FILE = "rungs.json"
MAX_FAILURES = 2  # a trial whose node died is tried again, on any node, this many times


def _trainable(params: dict, spec_dict: dict, evaluate: Callable = train_and_evaluate) -> None:
    """The Ray adapter of ``run_trial``: one Ray trial reports its record. The record is also written to the
    trial folder, so a trial that finished just before the driver died is reported again on restore
    instead of being trained a second time."""
    from ray import tune

    spec = in_actor(SearchSpec.from_dict(spec_dict))
    cfg = space.config_from_params(params, spec.part, base_config(spec))
    trial_dir = spec.dir / "trials" / f"ray-{tune.get_context().get_trial_id()}-{space.config_id(cfg)}"
    done = trial_dir / RESULT_FILE
    directions = objectives.directions(spec.part, spec.objective)
    preset = next((name for name, p in reference_params(spec.part).items() if p == space.applicable(params, spec.part)),
                  None)

    rungs_seen = trial_dir / RUNGS_FILE  # {rung: minimised values}: every rung result reported so far
    history = json.loads(rungs_seen.read_text()) if rungs_seen.is_file() else {}

    def report(record: TrialRecord, **extra) -> None:
        result = {**record.attrs(), **extra}
        result["record"] = json.dumps(record.to_dict())
        if preset:
            result["preset"] = preset
        if "rung" in record.metrics and record.status in (COMPLETE, STOPPED):  # what MultiObjectiveASHA ranks
            result["rung_values"] = json.dumps(minimise(record.values(spec.part, spec.objective), directions))
            history[str(record.metrics["rung"])] = json.loads(result["rung_values"])
            write_text(json.dumps(history), rungs_seen)
        # the last result carries every rung: a scheduler restored with the trial rebuilds its ledger from it
        result["rung_history"] = json.dumps(history)
        tune.report({k: v for k, v in result.items() if k != "config"})

    def on_rung(rung: int, record: TrialRecord) -> bool:
        # reported as stopped: if the scheduler stops the trial here, this is its last result
        report(record.stopped(spec.rungs()[-1]))
        return True

    if done.is_file():
        record = TrialRecord.from_dict(json.loads(done.read_text()))
    else:
        try:
            record = run_trial(cfg, spec, trial_dir, evaluate, on_rung if spec.min_steps is not None else None)
        except MachineError as e:  # this machine cannot take trials: the experiment stops (MachineStop)
            from .nodes import host

            record = TrialRecord(FAILED, space.to_dict(cfg), space.config_id(cfg), complexity(cfg, spec.size),
                                 reason=str(e)[:1000], host=host())
            report(record, **{MACHINE_ERROR: f"on {host()}: {e}"[:1000]})
            return
        write_text(json.dumps(record.to_dict()), done)
    report(record)


def param_space(part: str) -> dict:
    """A plain Ray Tune param space of every axis (for Ray's own searchers); conditional axes are sampled and
    then ignored where they do not apply."""
    from ray import tune

    return {ax.name: tune.randint(ax.low, ax.high + 1) if ax.is_int else tune.choice(list(ax.choices))
            for ax in space.axes(part)}


class DefineByRun:
    """Ray's OptunaSearch space: asks the Optuna trial for each axis (picklable, for Ray's checkpoints)."""

    def __init__(self, part: str):
        self.part = part

    def __call__(self, trial) -> None:
        space.suggest_params(trial, self.part)


def run_ray(spec: SearchSpec, evaluate: Callable = train_and_evaluate, progress: bool = True):
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from .nodes import absolute, shared_paths
    from .ray_stopper import MachineStop

    spec = absolute(spec)
    if not ray.is_initialized():
        connect(spec.ray_address)
    spec.dir.mkdir(parents=True, exist_ok=True)
    check_ray_nodes(spec.dir, shared_paths(spec))  # every node sees the study's folder, teacher and data
    path = spec.dir / "ray"
    experiment = path / "tune"
    trainable = tune.with_resources(tune.with_parameters(_trainable, spec_dict=spec.to_dict(), evaluate=evaluate),
                                    {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial or 0})
    stopper = MachineStop()
    if tune.Tuner.can_restore(str(experiment)):  # a lost node's trial (errored) is tried again
        tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_errored=True)
    else:
        points = list(reference_params(spec.part).values()) if spec.enqueue_presets else None
        searcher = OptunaSearch(space=DefineByRun(spec.part), metric=objectives.names(spec.part, spec.objective),
                                mode=["max" if d == "maximize" else "min" for d in objectives.directions(spec.part, spec.objective)],
                                points_to_evaluate=points, seed=spec.seed)
        scheduler = None
        if spec.min_steps is not None:
            from .ray_asha import MultiObjectiveASHA

            scheduler = MultiObjectiveASHA(len(spec.rungs()) - 1, spec.eta)
        tuner = tune.Tuner(trainable,
                           # a reused actor imports torch and counts a config once, not once per trial
                           tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=spec.trials,
                                                       reuse_actors=True,
                                                       max_concurrent_trials=max(1, spec.workers)),
                           run_config=tune.RunConfig(name="tune", storage_path=str(path), stop=stopper,
                                                     failure_config=tune.FailureConfig(max_failures=MAX_FAILURES,
                                                                                       fail_fast=False),
                                                     verbose=1 if progress else 0))
    # the experiment state is what Tuner.restore resumes from: keep it at most a couple of seconds old
    with tune_environ(TUNE_GLOBAL_CHECKPOINT_S="2"):
        grid = tuner.fit()
    study = mirror(spec, grid)
    error = stopper.error or next((r.metrics.get(MACHINE_ERROR) for r in grid if (r.metrics or {}).get(MACHINE_ERROR)),
                                  None)
    if error:
        from asymllic.errors import AsymllicError

        raise AsymllicError(f"a machine cannot take trials, the search stopped ({error}); the study keeps every "
                            "finished trial: fix that machine (or leave it out of the cluster) and run the same "
                            "command again to resume")
    return study


def plan_ray_devices(device: str, gpus_per_trial: float | None, workers: int, cluster_gpus: float) -> tuple:
    """(device the trials train on, GPUs Ray reserves per trial). Ray hides every GPU from a trial that reserves
    none, so a trial meant for a GPU must reserve one:

    - ``cpu``: no GPU (reserving some with ``gpus_per_trial`` is an error: they would sit idle);
    - ``auto`` with GPUs in the cluster and ``gpus_per_trial`` unset or 0: GPUs reserved automatically, 1 per
      trial when there are at least ``workers`` GPUs, else a share (``cluster_gpus / workers``), on ``cuda``;
      ``auto`` without GPUs: the CPU;
    - ``cuda`` or ``cuda:N``: ``gpus_per_trial`` explicitly 0 is an error (Ray would hide the GPU); unset: reserved
      as for ``auto`` (no GPU in the cluster is an error). Inside a trial the GPU is Ray's choice
      (:func:`actor_device`), so ``cuda:N`` becomes ``cuda``.

    ``gpus_per_trial`` given (> 0) is kept as given."""
    from asymllic.errors import AsymllicError

    name = (device or "auto").strip().lower()
    auto_share = 1.0 if cluster_gpus >= max(1, workers) else cluster_gpus / max(1, workers)
    if name == "cpu":
        if gpus_per_trial:
            raise AsymllicError(f"--device cpu with --gpus-per-trial {gpus_per_trial:g}: the reserved GPUs would "
                                "sit idle; drop --gpus-per-trial or use --device cuda")
        return "cpu", 0.0
    if name == "auto":
        if gpus_per_trial:
            return "cuda", float(gpus_per_trial)
        return ("cuda", auto_share) if cluster_gpus > 0 else ("cpu", 0.0)
    if not name.startswith("cuda"):
        raise AsymllicError(f"unknown device {device!r}; choose auto, cpu, cuda or cuda:N")
    if gpus_per_trial == 0:
        raise AsymllicError(f"--device {device} with --gpus-per-trial 0: Ray hides the GPUs from trials that "
                            "reserve none; give --gpus-per-trial (e.g. 1, or 0.5 to share a GPU) or leave it unset")
    if gpus_per_trial:
        return "cuda", float(gpus_per_trial)
    if cluster_gpus <= 0:
        raise AsymllicError(f"--device {device}: the Ray cluster has no GPU")
    return "cuda", auto_share


def in_actor(spec: SearchSpec) -> SearchSpec:
    """``spec`` as a trial runs it inside its Ray actor: on the GPU Ray gave it, and with loader workers within the
    CPUs Ray reserved for it (the trial's own process takes one)."""
    spec = replace(spec, device=actor_device(spec.device))
    if spec.loader_workers is None:
        spec.loader_workers = max(0, int(spec.cpus_per_trial) - 1)
    return spec


def actor_device(device: str) -> str:
    """The device a trial uses inside its Ray actor: Ray sets ``CUDA_VISIBLE_DEVICES`` to the GPUs it assigned, so
    any CUDA request is the actor's first visible GPU, ``cuda:0`` (``cuda:N`` would name a GPU it cannot see)."""
    return "cuda:0" if (device or "").strip().lower().startswith("cuda") else device


def ray_tasks(fn, jobs: list, device: str, address: str | None = None, gpus_per_task: float | None = None):
    """``fn(job, device)`` for every job as one Ray task, all at once (a local Ray, or the cluster at ``address``),
    one CPU each and GPUs as a search reserves them (:func:`plan_ray_devices`); yields ``(job, result)`` as each
    finishes, ``result`` a ``RuntimeError`` holding the task's last error line when it failed (the others go on)."""
    import ray

    if not ray.is_initialized():
        connect(address)
    planned, gpus = plan_ray_devices(device, gpus_per_task, len(jobs), float(ray.cluster_resources().get("GPU", 0)))
    task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(fn)
    refs = {task.remote(job, actor_device(planned)): job for job in jobs}
    pending = list(refs)
    while pending:
        finished, pending = ray.wait(pending, num_returns=1)
        for ref in finished:
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as e:
                lines = [line for line in str(getattr(e, "cause", None) or e).strip().splitlines() if line.strip()]
                result = RuntimeError(lines[-1] if lines else type(e).__name__)
            yield refs[ref], result


def _node_report(job: tuple) -> tuple:
    from .nodes import host, problems

    probe, paths, version = job
    return host(), problems(probe, paths, version)


def check_ray_nodes(study_dir: Path, paths: dict) -> list:
    """Check every alive node of the running Ray cluster (one zero-CPU task pinned to each) as
    :mod:`search.nodes` says, or nothing when the cluster is this machine alone. Returns the hosts checked; raises
    one line for the first node that fails."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    import asymllic
    from asymllic.errors import AsymllicError

    from .nodes import remove_probe, write_probe

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    here = ray.get_runtime_context().get_node_id()
    if all(n["NodeID"] == here for n in nodes):
        return []
    probe = write_probe(study_dir)
    task = ray.remote(num_cpus=0, max_retries=0)(_node_report)
    try:
        refs = {task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote((probe, paths, asymllic.__version__)): n for n in nodes}
        checked = []
        for ref, node in refs.items():
            try:
                name, found = ray.get(ref, timeout=300)
            except Exception as e:  # noqa: BLE001 - a node that cannot even run the check is that node's problem
                name, found = node.get("NodeManagerHostname", "?"), [f"cannot run the check: "
                                                                     f"{str(e).strip().splitlines()[-1][:300]}"]
            if found:
                raise AsymllicError(f"node {name} ({node.get('NodeManagerAddress', '?')}) {found[0]}; no trial "
                                    "was started")
            checked.append(name)
        return checked
    finally:
        remove_probe(probe)


def cluster_gpus(address: str | None) -> float:
    """GPUs of the Ray cluster a search would run on: the running (or ``address``) cluster's, or this machine's
    when Ray is local and not started yet."""
    import ray

    if ray.is_initialized() or address:
        if not ray.is_initialized():
            connect(address)
        return float(ray.cluster_resources().get("GPU", 0))
    from asymllic import cuda

    return float(cuda.count())


@contextmanager
def tune_environ(**values: str):
    """Ray Tune's settings (read from the environment by its driver, in ``Tuner.fit``) for one block, each unless
    the user set it: the process's environment is as it was afterwards. Always: an infeasible or failed
    candidate reports its record without objective values (``TUNE_DISABLE_STRICT_METRIC_CHECKING``)."""
    values = {"TUNE_DISABLE_STRICT_METRIC_CHECKING": "1", **values}
    added = [name for name in values if name not in os.environ]
    os.environ.update({name: values[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def connect(address: str | None) -> None:
    """A local Ray, or the cluster at ``address``; a refused or unreachable cluster is a one-line error."""
    import ray
    from ray.exceptions import AuthenticationError

    from asymllic.errors import AsymllicError, exception_chain

    if not address:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        return
    try:
        ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, AuthenticationError) as e:
        # Ray wraps the refusal (sometimes only as text in a RuntimeError's message)
        chain = [f"{type(c).__name__}: {c}" for c in exception_chain(e)]
        if any("AuthenticationError" in c or "InvalidAuthToken" in c for c in chain):
            raise AsymllicError(f"the Ray cluster at {address} refused the connection: it uses token authentication; "
                                "export RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                                "~/.ray/auth_token)") from None
        raise AsymllicError(f"cannot connect to a Ray cluster at {address}: {str(e).splitlines()[0]}") from None


RAY_TRIAL = "ray_trial"  # the user attribute naming a mirrored trial's Ray trial (its folder in the experiment)


def mirror(spec: SearchSpec, grid):
    """Add the Ray results (each trial's record) to the study's Optuna storage. Trials stored before are kept (a
    rerun from any machine, even one that starts a new experiment, never deletes what a study holds); a Ray trial
    is added once per outcome (a trial that failed when its node was lost and then finished is both). A trial that
    raised is failed with Ray's reason, whatever it reported before; one that has not run yet is left out."""
    import optuna
    from optuna.distributions import CategoricalDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial

    from .artifacts import describe, frozen_artifacts, ray_curve, safe_store, save_curves
    from .optuna_backend import storage

    study = optuna.create_study(study_name=spec.study, storage=storage(spec), load_if_exists=True,
                                directions=objectives.directions(spec.part, spec.objective))
    stored = {(t.user_attrs.get(RAY_TRIAL), t.user_attrs.get("status")) for t in study.get_trials(deepcopy=False)}
    study.set_user_attr("spec", spec.stored_dict())  # the storage URL without its password
    study.set_user_attr("backend", "ray")
    describe(study, spec)  # what Optuna Dashboard shows: objectives with their units, the study's note
    store, added = safe_store(spec), 0
    axes = {a.name: a for a in space.axes(spec.part)}
    references = {json.dumps(p, sort_keys=True): n for n, p in reference_params(spec.part).items()}
    states = {COMPLETE: TrialState.COMPLETE, INFEASIBLE: TrialState.PRUNED, STOPPED: TrialState.PRUNED,
              FAILED: TrialState.FAIL}
    for result in grid:
        params = space.applicable(result.config, spec.part) if result.config else {}
        dists = {k: IntDistribution(axes[k].low, axes[k].high) if axes[k].is_int else CategoricalDistribution(list(axes[k].choices))
                 for k in params}
        if result.error is None and "record" not in (result.metrics or {}):
            continue  # not run yet (the experiment stopped first): mirrored when it has run
        if result.error is None:
            record = TrialRecord.from_dict(json.loads(result.metrics["record"]))
        else:  # it raised (its node was lost, its worker killed): failed with Ray's reason, not a rung it reported
            cfg = space.config_from_params(params, spec.part, base_config(spec))
            lines = [line for line in str(result.error).strip().splitlines() if line.strip()]
            record = TrialRecord(FAILED, space.to_dict(cfg), space.config_id(cfg), complexity(cfg, spec.size),
                                 reason=(lines[-1] if lines else type(result.error).__name__)[:500])
        key = Path(result.path).name if result.path else None
        if (key, record.status) in stored:
            continue
        attrs = {**record.attrs(), RAY_TRIAL: key}
        if json.dumps(params, sort_keys=True) in references:
            attrs["preset"] = references[json.dumps(params, sort_keys=True)]
        values = record.values(spec.part, spec.objective) if record.status == COMPLETE else None
        number = len(study.get_trials(deepcopy=False))  # the number add_trial gives it
        study.add_trial(create_trial(params=params, distributions=dists, values=values, user_attrs=attrs,
                                     state=states[record.status], intermediate_values=ray_curve(result, spec, record),
                                     system_attrs=frozen_artifacts(store, spec, record, number)))
        added += 1
    if added:
        save_curves(study, spec)
    return study
