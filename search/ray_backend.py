"""The Ray Tune driver: the same space (define-by-run through ``OptunaSearch``), objectives and candidates.

Local Ray by default, a cluster with ``--ray-address``; ``Tuner.restore`` resumes an interrupted
experiment. When the experiment ends its trials are mirrored into the Optuna storage of the study, so
``asymllic results | pareto | export`` read Ray and Optuna searches alike.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import space

from asymllic.files import write_text

from . import objectives
from .candidate import base_config, complexity, train_and_evaluate
from .spec import SearchSpec


RESULT_FILE = "result.json"


class InfeasibleCandidate(RuntimeError):
    """Over the MAC budget: counted, never trained."""


def _trainable(params: dict, spec_dict: dict) -> None:
    """One Ray trial. Its result is also written to the trial folder, so a trial that finished just before
    the driver died is reported again on restore instead of being trained a second time."""
    from ray import tune

    spec = SearchSpec(**{**spec_dict, "size": tuple(spec_dict["size"])})
    cfg = space.config_from_params(params, spec.part, base_config(spec))
    cid = space.config_id(cfg)
    trial_dir = spec.dir / "trials" / f"ray-{tune.get_context().get_trial_id()}-{cid}"
    done = trial_dir / RESULT_FILE
    if done.is_file():
        tune.report(json.loads(done.read_text()))
        return
    figures = complexity(cfg, spec.size)
    if spec.mac_budget is not None and figures["decoder_gmacs"] > spec.mac_budget:
        raise InfeasibleCandidate(f"decoder {figures['decoder_gmacs']:.2f} GMACs > budget {spec.mac_budget} GMACs")
    result = {**figures, **train_and_evaluate(cfg, spec, trial_dir), "config_id": cid, "config": space.to_dict(cfg)}
    write_text(json.dumps(result), done)
    tune.report(result)


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


def run_ray(spec: SearchSpec):
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    spec = replace(spec, root=str(Path(spec.root).resolve()))
    if spec.teacher:
        spec = replace(spec, teacher=str(Path(spec.teacher).resolve()))
    if not ray.is_initialized():
        connect(spec.ray_address)
    # the experiment state is what Tuner.restore resumes from: keep it at most a couple of seconds old
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    path = spec.dir / "ray"
    experiment = path / "tune"
    trainable = tune.with_resources(tune.with_parameters(_trainable, spec_dict=spec.to_dict()),
                                    {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial})
    if tune.Tuner.can_restore(str(experiment)):
        tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_errored=False)
    else:
        points = [space.params_from_config(space.get_preset(n), spec.part) for n in ("paper", "teacher")] \
            if spec.enqueue_presets else None
        searcher = OptunaSearch(space=DefineByRun(spec.part), metric=objectives.names(spec.part),
                                mode=["max" if d == "maximize" else "min" for d in objectives.directions(spec.part)],
                                points_to_evaluate=points, seed=spec.seed)
        tuner = tune.Tuner(trainable,
                           tune_config=tune.TuneConfig(search_alg=searcher, num_samples=spec.trials,
                                                       max_concurrent_trials=max(1, spec.workers)),
                           run_config=tune.RunConfig(name="tune", storage_path=str(path),
                                                     failure_config=tune.FailureConfig(fail_fast=False),
                                                     verbose=1))
    grid = tuner.fit()
    return mirror(spec, grid)


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


def mirror(spec: SearchSpec, grid):
    """Copy the Ray results into the study's Optuna storage (replacing an earlier mirror)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial

    from .optuna_backend import storage

    store = storage(replace(spec, heartbeat=0))
    try:
        optuna.delete_study(study_name=spec.study, storage=store)
    except KeyError:
        pass
    study = optuna.create_study(study_name=spec.study, storage=store, directions=objectives.directions(spec.part))
    study.set_user_attr("spec", spec.to_dict())
    study.set_user_attr("backend", "ray")
    axes = {a.name: a for a in space.axes(spec.part)}
    presets = {space.config_id(space.config_from_params(space.params_from_config(space.get_preset(n), spec.part),
                                                        spec.part, base_config(spec))): n for n in ("paper", "teacher")}
    for result in grid:
        params = space.applicable(result.config, spec.part) if result.config else {}
        dists = {k: IntDistribution(axes[k].low, axes[k].high) if axes[k].is_int else CategoricalDistribution(list(axes[k].choices))
                 for k in params}
        m = dict(result.metrics or {})
        attrs = {k: v for k, v in m.items() if k in ("config_id", "config", "checkpoint") or isinstance(v, (int, float))
                 and not k.startswith(("time_", "timestamp", "training_iteration", "pid", "done"))}
        if m.get("config_id") in presets:
            attrs["preset"] = presets[m["config_id"]]
        if result.error is None and all(k in m for k in objectives.names(spec.part)):
            study.add_trial(create_trial(params=params, distributions=dists, values=objectives.values(spec.part, m),
                                         user_attrs=attrs, state=TrialState.COMPLETE))
        else:
            reason = str(result.error).strip().splitlines()[-1][:500] if result.error else "no metrics"
            infeasible = "InfeasibleCandidate" in str(result.error)
            attrs["infeasible" if infeasible else "error"] = reason
            if params and "config_id" not in attrs:  # counted before training: keep its figures
                cfg = space.config_from_params(params, spec.part, base_config(spec))
                attrs.update(config_id=space.config_id(cfg), config=space.to_dict(cfg), **complexity(cfg, spec.size))
            study.add_trial(create_trial(params=params, distributions=dists, user_attrs=attrs,
                                         state=TrialState.PRUNED if infeasible else TrialState.FAIL))
    return study
