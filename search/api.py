"""The search as a library: define a search, run it, open a study, export its best decoders.

.. code-block:: python

    import search

    spec = search.define("demo", schedule="cpu", trials=6, steps=40, teacher="results/demo-teacher/codec.pt")
    study = search.run(spec)                  # or search.run("results/demo/spec.yaml")
    study = search.open("demo")               # later, from any process
    study.trials()                            # one row per trial (pandas)
    study.front()                             # the Pareto front
    search.export_codecs(study, top=3)        # codecs for `asymllic compress/decompress`

``asymllic search`` is exactly ``run(define(...))``: the same declarations give its flags, the same
:func:`resolve` applies the rules (default teacher, MAC budget, devices, checks).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Sequence

from asymllic import options as _options
from asymllic.options import DEFAULT_ROOT

from .spec import SearchSpec, StudyRef, read_config, stored_spec

__all__ = ["Study", "define", "export_codecs", "factorize", "load", "open", "resolve", "run"]


def define(study: str | None = None, **options) -> SearchSpec:
    """A resolved search spec: ``options`` are :class:`SearchSpec` fields (``asymllic search`` flags, with ``_``
    for ``-``); one not given takes its declared default, as on the command line. An unknown option, a value of
    the wrong type or outside its choices is a ``ConfigError`` naming it. See :func:`resolve` for the rules."""
    return resolve(unresolved(study, **options))


def unresolved(study: str | None = None, **options) -> SearchSpec:
    """The spec :func:`define` resolves: the options checked against their declarations, the defaults filled."""
    data = {f.name: _options.user_default(f) for f in _options.options(SearchSpec)
            if f.default is not dataclasses.MISSING}
    data.update(options)
    if study is not None:
        data["study"] = study
    if data.get("study") in (None, ""):
        from space import ConfigError

        raise ConfigError("study", "required: a study name (--study NAME, or study: in the config file)")
    return SearchSpec.from_dict(data, strict=True)


def load(path: str | Path, **overrides) -> SearchSpec:
    """The resolved spec of an experiment file (YAML: option: value, any :class:`SearchSpec` field), with
    ``overrides`` on top. A study's own ``spec.yaml`` gives the spec it was searched with."""
    return define(**{**read_config(path), **overrides})


def resolve(spec: SearchSpec, say: Callable = print) -> SearchSpec:
    """The spec a search runs, with every rule applied (a new spec; resolving a resolved spec changes nothing):

    - teacher: unset, ``<root>/teacher/<schedule>-<lmbda>/codec.pt`` (where ``asymllic teacher train`` writes);
      it must exist, and any teacher must be a model reference (checked now, in one line, not in a trial);
    - MAC budget: ``'teacher'``, the teacher's decoder GMACs at ``size``; ``'none'``, no budget;
    - devices: on Ray, GPUs reserved per trial as :func:`search.ray_backend.plan_ray_devices` decides; on Optuna
      with ``gpus_per_trial``, ``device`` auto means CUDA; the device and precision are checked here when trials
      run on this machine;
    - the study's folder must be writable.

    ``say``: where the decisions are told (one line each)."""
    from asymllic.errors import AsymllicError

    spec = dataclasses.replace(spec)
    if spec.teacher is None:
        from asymllic.training.stages import default_teacher

        spec.teacher = str(default_teacher(spec.schedule, spec.lmbda, spec.root))
    _plan_devices(spec, say)
    if spec.backend == "optuna" or not spec.gpus_per_trial:  # trials on this machine: CUDA asked where there is none
        from asymllic.device import pick_device, pick_precision

        pick_precision(spec.precision, pick_device(spec.device))
    from asymllic.codec.reference import resolve_config

    resolve_config(spec.teacher)  # not a model: one line now, before the study is touched
    if spec.mac_budget == "teacher":
        from .candidate import base_config, complexity

        spec.mac_budget = complexity(base_config(spec), spec.size)["decoder_gmacs"]
        say(f"MAC budget: {spec.mac_budget:.2f} GMACs, the teacher's decoder at {spec.size[0]}x{spec.size[1]} "
            "(--mac-budget N or none to change it)")
    elif spec.mac_budget == "none":
        spec.mac_budget = None
    if spec.min_steps is not None:
        say(f"multi-fidelity: candidates scored after {', '.join(map(str, spec.rungs()))} steps; at each rung "
            f"only the best 1/{spec.eta} go on")
    from asymllic.files import check_writable

    check_writable(spec.dir)  # before the study is touched: an unwritable results folder is one line
    spec._told = True  # its decisions were told: resolving it again (e.g. in run) applies the rules silently
    return spec


def _plan_devices(spec: SearchSpec, say: Callable) -> None:
    if spec.backend != "ray":
        if spec.gpus_per_trial and spec.device == "auto":
            spec.device = "cuda"
        spec.gpus_per_trial = float(spec.gpus_per_trial or 0.0)
        return
    from .ray_backend import cluster_gpus, plan_ray_devices

    name = (spec.device or "auto").strip().lower()
    # the cluster's GPUs matter only where the reservation is left to the plan
    counted = not spec.gpus_per_trial and (name == "auto" or name.startswith("cuda") and spec.gpus_per_trial is None)
    gpus = cluster_gpus(spec.ray_address) if counted else 0.0
    device, per_trial = plan_ray_devices(spec.device, spec.gpus_per_trial, spec.workers, gpus)
    why = f" ({gpus:g} GPUs in the cluster, {spec.workers} concurrent trials)" if counted else ""
    say(f"Ray: trials train on {device}, {per_trial:g} GPU reserved per trial{why}")
    spec.device, spec.gpus_per_trial = device, per_trial


def run(spec: SearchSpec | str | Path, evaluate: Callable | None = None, progress: bool = True) -> "Study":
    """Run (or resume) the search ``spec`` (a spec, resolved here if it is not, or an experiment file) and return
    its :class:`Study`. The resolved spec is written to ``<root>/<study>/spec.yaml``. ``evaluate``: what scores a
    candidate (default: train and evaluate it, ``search.candidate.train_and_evaluate``); ``progress``: a line per
    finished trial (Ray: its progress table)."""
    from .driver import run_search

    if isinstance(spec, (str, Path)):
        spec = load(spec)
    else:  # a spec from define() has had its decisions told once already
        spec = resolve(spec, say=(lambda *_: None) if getattr(spec, "_told", False) else print)
    if evaluate is None:
        run_search(spec, progress=progress)
    else:
        run_search(spec, evaluate, progress)
    return open(spec.study, root=spec.root, storage=spec.storage)


class Study:
    """A study in its storage: ``name``, ``spec`` (the :class:`SearchSpec` it was searched with), ``optuna``
    (the ``optuna.Study``), its trials and Pareto front as pandas frames."""

    def __init__(self, ref: StudyRef):
        from asymllic.errors import AsymllicError

        from .optuna_backend import open_study

        url = ref.storage_url
        if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():  # not created by asking
            raise AsymllicError(f"no study {ref.study!r} in {url}")
        try:
            self.optuna = open_study(ref, create=False)
        except KeyError:
            raise AsymllicError(f"no study {ref.study!r} in {ref.storage_url}") from None
        self.ref = ref
        self.spec = stored_spec(self.optuna, ref)

    @property
    def name(self) -> str:
        return self.ref.study

    @property
    def dir(self) -> Path:
        return self.ref.dir

    def trials(self):
        """Every trial: number, state, pareto, preset, config id, objectives, figures, the sampled axes."""
        from .table import trials_frame

        return trials_frame(self.optuna)

    def front(self):
        """The complete trials no other dominates (quality against the study's cost), cheapest first."""
        from . import objectives

        df = self.trials()
        if df.empty:
            return df
        cost = objectives.COSTS[self.spec.objective]
        return df[df["pareto"]].sort_values(cost).reset_index(drop=True)

    def export(self, top: int | None = None, *, trial: int | Sequence[int] | None = None, budget: float | None = None,
               onnx: bool = False, include_references: bool = False, out: str | Path | None = None) -> list:
        """See :func:`export_codecs`."""
        from .export import export as write

        return write(self.trials(), self.spec, Path(out) if out else self.dir / "export", top=top, trial=trial,
                     budget=budget, include_references=include_references, onnx=onnx)

    def figures(self, png: bool = False, x: str | None = None, out: str | Path | None = None,
                say: Callable = print) -> list:
        """Write the Pareto plot (quality against ``x``: ``"macs"`` or ``"latency"``, default the cost the study
        minimised), the hypervolume history and each axis's importance for the first objective (Optuna's
        PED-ANOVA on the objective made "lower is better") as HTML, and with ``png`` also PNG, into ``out``
        (default the study's folder), as ``asymllic pareto`` does. Returns the paths written. An importance that
        cannot be computed (too few trials) is skipped and told through ``say`` in one line; a cost the study did
        not measure is one ``AsymllicError`` line."""
        import warnings

        from asymllic.errors import AsymllicError

        from . import objectives
        from .plots import write_figure
        from .plots.pareto import history_figure, importance_figure, pareto_figure
        from .table import hypervolume_history

        df = self.trials()
        part, cost = self.spec.part, self.spec.objective
        if x is not None and x not in objectives.COSTS:
            from space import ConfigError

            raise ConfigError("x", f"unknown cost {x!r}; choose one of {', '.join(objectives.COSTS)}")
        column = objectives.COSTS[x or cost]
        if column not in df:
            raise AsymllicError(f"study {self.name} has no {column} figures: it was searched with --objective {cost} "
                                "(decode time is measured when the objective is latency or a --latency-budget is set)")
        out = Path(out) if out is not None else self.dir
        paths = write_figure(pareto_figure(df, part, f"{self.name}: {part} search", column), out / "pareto", png=png)
        hv = hypervolume_history(df, part, cost)
        paths += write_figure(history_figure(hv, f"{self.name}: hypervolume history"), out / "history", png=png)
        try:
            import optuna

            sign = -1.0 if objectives.directions(part)[0] == "maximize" else 1.0  # PED-ANOVA ranks low targets
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                imp = optuna.importance.get_param_importances(self.optuna, target=lambda t: sign * t.values[0])
            paths += write_figure(importance_figure(imp, f"{self.name}: importance of each axis for {part} objective 1"),
                                  out / "importance", png=png)
        except (RuntimeError, ValueError, ZeroDivisionError, ImportError) as e:
            say(f"importance skipped: {e}")
        return paths

    def __repr__(self) -> str:
        return f"Study({self.name!r}, part={self.spec.part!r}, storage={self.ref.storage_url!r})"


def open(study: str, root: str | Path = DEFAULT_ROOT, storage: str | None = None) -> Study:  # noqa: A001
    """The study ``study`` in ``storage`` (default: ``<root>/<study>/study.db``); an unknown study is one line."""
    return Study(StudyRef(study, storage, root=str(root)))


def export_codecs(study: Study | str, top: int | None = None, *, trial: int | Sequence[int] | None = None,
                  budget: float | None = None, onnx: bool = False, include_references: bool = False,
                  root: str | Path = DEFAULT_ROOT, storage: str | None = None, out: str | Path | None = None) -> list:
    """Write the study's best decoders as codecs (``config.json``, ``codec.pt``, a card; with ``onnx`` also a
    checked ``g_s.onnx``) into ``<study>/export/<config id>/`` (or ``out``): by default the best candidate;
    ``top`` K points along the Pareto front, ``trial`` a trial or several, ``budget`` the best within that many GMACs.
    The reference presets are left out unless ``include_references``. Returns ``search.export.Exported``
    records (``.folder``, ``.pick``)."""
    if not isinstance(study, Study):
        study = open(study, root=root, storage=storage)
    return study.export(top, trial=trial, budget=budget, onnx=onnx, include_references=include_references, out=out)



def factorize(synthesis: Study | str, hyperprior: Study | str, *, measure: int = 0, max_side: int | None = None,
              joint: Study | str | None = None, png: bool = False, csv: str | Path | None = None,
              root: str | Path = DEFAULT_ROOT, storage: str | None = None):
    """Combine a synthesis study's front and a hyperprior study's front into a joint one, as ``asymllic factorize``
    does: every pair of front trials, its decoder MACs added, its PSNR predicted by the synthesis trial and its bpp
    by the hyperprior trial, the joint front marked (``csv``: also written there). ``measure`` K: the K cheapest
    joint-front pairs combined into codecs (``<root>/<synthesis>+<hyperprior>/<pair>/codec.pt``) and evaluated on
    the synthesis study's held-out photos (``max_side``: centre-crop them, default the study's schedule's).
    ``joint``: a joint study to compare with (``vs-<joint>.csv`` for the configs trained both ways, ``.json`` for
    the summary). Writes the figure (``factorized`` or ``vs-<joint>``, HTML and with ``png`` PNG) in that folder.
    Studies are names in ``root``/``storage`` or opened :class:`Study` objects. Returns a
    ``search.factorized.Factorized`` record (``pairs``, ``measured``, ``comparison``, ``folder``, ``figures``,
    ``files``)."""
    import json

    from asymllic.files import write_text

    from .factorized import Factorized, combine_fronts, compare_with_joint, measure as measure_pairs
    from .plots import write_figure
    from .plots.pareto import factorized_figure

    def opened(study):
        return study if isinstance(study, Study) else open(study, root=root, storage=storage)

    synthesis, hyperprior = opened(synthesis), opened(hyperprior)
    gs, hp = synthesis.trials(), hyperprior.trials()
    pairs = combine_fronts(gs, hp)
    files = []
    if csv:
        pairs.to_csv(csv, index=False)
        files.append(Path(csv))
    folder = Path(root) / f"{synthesis.name}+{hyperprior.name}"
    measured = None
    if measure:
        from asymllic.training import get_schedule

        options = get_schedule(synthesis.spec.schedule).eval_options()
        if max_side is not None:
            options["max_side"] = max_side
        measured = measure_pairs(pairs, folder, eval_data=synthesis.spec.eval_data, top=measure, **options)
        files += [Path(c) for c in measured.get("checkpoint", [])]
    comparison, joint_df, stem = None, None, folder / "factorized"
    if joint is not None:
        joint = opened(joint)
        joint_df = joint.trials()
        comparison = compare_with_joint(pairs, joint_df, gs, hp, measured)
        stem = folder / f"vs-{joint.name}"
        if not comparison.same_config.empty:
            files.append(write_text(comparison.same_config.to_csv(index=False), stem.with_suffix(".csv")))
        files.append(write_text(json.dumps(comparison.summary, indent=1), stem.with_suffix(".json")))
    title = f"{synthesis.name} + {hyperprior.name}" + (f" vs {joint.name}" if joint is not None else "")
    figures = write_figure(factorized_figure(pairs, joint_df, measured, title), stem, png=png)
    return Factorized(pairs, measured, comparison, folder, figures, files + list(figures))
