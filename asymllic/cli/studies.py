"""``asymllic search | results | pareto | export``: multi-objective decoder search and its results."""
from __future__ import annotations

import json
from pathlib import Path

from asymllic.training.schedules import SCHEDULES

from search.objectives import COSTS
from search.spec import BACKENDS, OBJECTIVES, PARTS, SAMPLERS, STAGE2_SYNTHESIS

from .common import MODEL_HELP, add_run_args, parse_size


def _budget(text: str):
    if text.lower() in ("none", "teacher"):
        return text.lower()
    try:
        return float(text)
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(f"a number of GMACs, 'teacher' or 'none' (got {text!r})") from None


def _study_args(p) -> None:
    p.add_argument("study", help="study name (results/<study>/)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default sqlite:///results/<study>/study.db)")
    p.add_argument("--root", default="results")


def add_parsers(sub) -> None:
    p = sub.add_parser("search", help="multi-objective search over decoder configs (Optuna or Ray Tune)")
    p.add_argument("--study", required=True)
    p.add_argument("--part", choices=PARTS, default="synthesis")
    p.add_argument("--schedule", choices=tuple(SCHEDULES), default="cpu", help="training schedule of each candidate")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--backend", choices=BACKENDS, default="optuna")
    p.add_argument("--storage", default=None, help="SQLAlchemy URL, e.g. postgresql://user@host/db (default: SQLite)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (Optuna) or concurrent trials (Ray)")
    p.add_argument("--mac-budget", type=_budget, default="teacher",
                   help="decoder GMACs at --size over which a candidate is not trained: a number, 'teacher' (default: "
                        "the teacher's decoder, a light decoder being the point) or 'none'")
    p.add_argument("--objective", choices=OBJECTIVES, default="macs",
                   help="the decoder cost minimised beside quality: MACs, or decode time measured per candidate")
    p.add_argument("--latency-device", default="cpu", help="where decode time is measured: cpu or cuda")
    p.add_argument("--latency-threads", type=int, default=None, help="CPU threads for the decode-time measurement")
    p.add_argument("--latency-repeats", type=int, default=3, help="decodes timed (median) after one warm-up")
    p.add_argument("--latency-budget", type=float, default=None,
                   help="ms at --size on the latency target; over it a candidate is not trained")
    p.add_argument("--teacher", default=None, help="the frozen teacher: " + MODEL_HELP)
    p.add_argument("--lmbda", type=float, default=0.0067)
    p.add_argument("--sampler", choices=SAMPLERS, default="nsga2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", "--max-steps", dest="steps", type=int, default=None,
                   help="fine-tuning steps per candidate (default: the schedule's); with --min-steps, the top rung")
    p.add_argument("--min-steps", type=int, default=None,
                   help="multi-fidelity (MO-ASHA): score candidates first after this many steps; only the best 1/eta "
                        "at each rung train on (x eta steps), up to --steps")
    p.add_argument("--eta", type=int, default=3, help="multi-fidelity reduction factor between rungs (default 3)")
    p.add_argument("--data", default=None, help="training images (default: bundled photos)")
    p.add_argument("--eval-data", default=None, help="selection images: the objectives (default: bundled eval photos)")
    p.add_argument("--test-data", default=None,
                   help="reporting images: test_* figures, never selected by (default: bundled test photos)")
    p.add_argument("--stage2-synthesis", choices=STAGE2_SYNTHESIS, default="stage1",
                   help="joint: stage 2 through the stage-1 g_s just trained, frozen (sequential, default: measured "
                        "better and faster) or through the teacher's g_s (the factorized reading)")
    p.add_argument("--size", type=parse_size, default=(768, 512), help="where MACs are counted")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: a local Ray)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--gpus-per-trial", type=float, default=0.0)
    p.add_argument("--heartbeat", type=int, default=60, help="seconds; dead workers' trials are retried")
    p.add_argument("--no-presets", action="store_true", help="do not enqueue the paper's decoder and the teacher")
    p.add_argument("--root", default="results")
    add_run_args(p)
    p.set_defaults(run=run_search)

    p = sub.add_parser("results", help="table of a study's trials")
    _study_args(p)
    p.add_argument("--csv", default=None)
    p.add_argument("--parquet", default=None)
    p.add_argument("--all-columns", action="store_true")
    p.set_defaults(run=run_results)

    p = sub.add_parser("pareto", help="Pareto plot, hypervolume history and axis importance (HTML + PNG)")
    _study_args(p)
    p.add_argument("--no-png", action="store_true")
    p.add_argument("--x", choices=("macs", "latency"), default=None,
                   help="the cost on the x axis (default: the one the study minimised)")
    p.set_defaults(run=run_pareto)

    p = sub.add_parser("factorize", help="combine a synthesis study's front and a hyperprior study's front")
    p.add_argument("synthesis_study")
    p.add_argument("hyperprior_study")
    p.add_argument("--storage", default=None)
    p.add_argument("--root", default="results")
    p.add_argument("--measure", type=int, default=0, help="combine and evaluate the K cheapest joint-front pairs")
    p.add_argument("--max-side", type=int, default=None,
                   help="centre-crop held-out photos for --measure (default: as the studies' training schedule)")
    p.add_argument("--joint", default=None, help="a joint study to compare the factorized front with")
    p.add_argument("--no-png", action="store_true")
    p.add_argument("--csv", default=None)
    p.set_defaults(run=run_factorize)

    p = sub.add_parser("export", help="export the best trained decoders as codecs (never the reference presets "
                                      "unless --include-references)")
    _study_args(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--top", type=int, default=None, metavar="K",
                   help="K points spread along the Pareto front, from the cheapest to the best (default 1: the best)")
    g.add_argument("--trial", type=int, default=None, metavar="N", help="that trial (a reference preset too)")
    g.add_argument("--budget", type=float, default=None, metavar="GMACS",
                   help="the best candidate whose decoder needs at most GMACS")
    p.add_argument("--onnx", action="store_true",
                   help="also write g_s.onnx (dynamic size), checked against torch on a photo (see the card)")
    p.add_argument("--include-references", action="store_true",
                   help="let the reference presets (teacher, paper) be picked too")
    p.set_defaults(run=run_export)


def run_search(args) -> int:
    from search.spec import SearchSpec

    teacher = args.teacher or str(Path(args.root) / "teacher" / f"{args.schedule}-{args.lmbda:g}" / "codec.pt")
    spec = SearchSpec(study=args.study, part=args.part, schedule=args.schedule, trials=args.trials, backend=args.backend,
                      storage=args.storage, workers=args.workers, mac_budget=None, teacher=teacher,
                      lmbda=args.lmbda, seed=args.seed, sampler=args.sampler, data=args.data, eval_data=args.eval_data,
                      root=args.root, size=tuple(args.size), steps=args.steps, min_steps=args.min_steps, eta=args.eta, enqueue_presets=not args.no_presets,
                      ray_address=args.ray_address, cpus_per_trial=args.cpus_per_trial,
                      gpus_per_trial=args.gpus_per_trial, heartbeat=args.heartbeat,
                      device="cuda" if args.gpus_per_trial and args.device == "auto" else args.device,
                      precision=args.precision, loader_workers=args.loader_workers, cache_gib=args.cache_gib,
                      max_reuse=args.max_reuse, flips=args.flips, compile=args.compile, inherit=args.inherit,
                      objective=args.objective,
                      latency_device=args.latency_device, latency_threads=args.latency_threads,
                      latency_repeats=args.latency_repeats, latency_budget=args.latency_budget, test_data=args.test_data,
                      stage2_synthesis=args.stage2_synthesis)
    if args.backend == "optuna" or not args.gpus_per_trial:
        from asymllic.device import pick_device, pick_precision

        pick_precision(args.precision, pick_device(spec.device))  # CUDA asked for where there is none: one line
    if not args.teacher and not Path(teacher).is_file():
        from asymllic.errors import AsymllicError

        raise AsymllicError(f"no teacher checkpoint at {teacher}; run 'asymllic teacher train --schedule {args.schedule}' "
                            "or pass --teacher")
    from asymllic.reference import resolve_config

    resolve_config(teacher)  # not a model: one line now, before the study is touched
    if args.mac_budget == "teacher":
        from search.candidate import base_config, complexity

        spec.mac_budget = complexity(base_config(spec), spec.size)["decoder_gmacs"]
        print(f"MAC budget: {spec.mac_budget:.2f} GMACs, the teacher's decoder at {spec.size[0]}x{spec.size[1]} "
              "(--mac-budget N or none to change it)", flush=True)
    elif args.mac_budget != "none":
        spec.mac_budget = args.mac_budget
    if spec.min_steps is not None:
        print(f"multi-fidelity: candidates scored after {', '.join(map(str, spec.rungs()))} steps; at each rung "
              f"only the best 1/{spec.eta} go on", flush=True)
    from asymllic.files import check_writable

    check_writable(spec.dir)  # before the study is touched: an unwritable results folder is one line
    from search.driver import run_search

    run_search(spec)
    return _summary(spec.study, spec.storage, spec.root)


def _load(args_or_study, storage=None, root="results"):
    from search.optuna_backend import open_study
    from search.spec import SearchSpec
    from search.table import trials_frame

    spec = SearchSpec(study=args_or_study, storage=storage, root=root)
    try:
        study = open_study(spec, create=False)
    except KeyError:
        from asymllic.errors import AsymllicError

        raise AsymllicError(f"no study {args_or_study!r} in {spec.storage_url}") from None
    return study, trials_frame(study), study.user_attrs.get("spec", {})


def _summary(study_name: str, storage, root) -> int:
    _, df, spec = _load(study_name, storage, root)
    counts = df["state"].value_counts().to_dict() if not df.empty else {}
    print(f"study {study_name}: {len(df)} trials {counts}, {int(df['pareto'].sum()) if not df.empty else 0} on the Pareto front")
    print(f"next: asymllic results {study_name} | asymllic pareto {study_name} | asymllic export {study_name}")
    return 0


SHOW = ["number", "state", "pareto", "preset", "config_id", "psnr", "bpp", "decoder_gmacs", "decoder_mparams",
        "decoder_gmacs_thop", "steps", "wall_seconds", "infeasible", "stopped", "error"]


def run_results(args) -> int:
    import pandas as pd

    _, df, _ = _load(args.study, args.storage, args.root)
    if args.csv:
        df.to_csv(args.csv, index=False)
    if args.parquet:
        df.to_parquet(args.parquet, index=False)
    view = df if args.all_columns else df[[c for c in SHOW if c in df]]
    with pd.option_context("display.max_rows", 500, "display.width", 200, "display.max_colwidth", 60):
        print(view.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def run_pareto(args) -> int:
    from search.plots import write_figure
    from search.plots.pareto import history_figure, importance_figure, pareto_figure
    from search.table import hypervolume_history

    study, df, spec = _load(args.study, args.storage, args.root)
    part, cost = spec.get("part", "synthesis"), spec.get("objective", "macs")
    x = COSTS[args.x or cost]
    if x not in df:
        from asymllic.errors import AsymllicError

        raise AsymllicError(f"study {args.study} has no {x} figures: it was searched with --objective {cost} "
                            "(decode time is measured when the objective is latency or a --latency-budget is set)")
    out = Path(args.root) / args.study
    paths = write_figure(pareto_figure(df, part, f"{args.study}: {part} search", x), out / "pareto", png=not args.no_png)
    hv = hypervolume_history(df, part, cost)
    paths += write_figure(history_figure(hv, f"{args.study}: hypervolume history"), out / "history", png=not args.no_png)
    try:
        import warnings

        import optuna

        from search import objectives

        sign = -1.0 if objectives.directions(part)[0] == "maximize" else 1.0  # PED-ANOVA ranks low targets
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = optuna.importance.get_param_importances(study, target=lambda t: sign * t.values[0])
        paths += write_figure(importance_figure(imp, f"{args.study}: importance of each axis for {part} objective 1"),
                              out / "importance", png=not args.no_png)
    except (RuntimeError, ValueError, ZeroDivisionError, ImportError) as e:
        print(f"importance skipped: {e}")
    for p in paths:
        print(p)
    return 0


def run_factorize(args) -> int:
    import pandas as pd

    from asymllic.training import get_schedule

    from search.factorized import combine_fronts, compare_with_joint, measure
    from search.plots import write_figure
    from search.plots.pareto import factorized_figure

    _, gs, spec = _load(args.synthesis_study, args.storage, args.root)
    _, hp, _ = _load(args.hyperprior_study, args.storage, args.root)
    pairs = combine_fronts(gs, hp)
    if args.csv:
        pairs.to_csv(args.csv, index=False)
    show = dict(index=False, float_format=lambda v: f"{v:.4f}")
    with pd.option_context("display.width", 200):
        print(pairs[["gs_trial_number", "hp_trial_number", "psnr", "bpp", "decoder_gmacs", "pareto"]].to_string(**show))
    out = Path(args.root) / f"{args.synthesis_study}+{args.hyperprior_study}"
    measured = None
    if args.measure:
        max_side = args.max_side if args.max_side is not None else get_schedule(spec.get("schedule", "cpu")).eval_max_side
        measured = measure(pairs, out, eval_data=spec.get("eval_data"), max_side=max_side, top=args.measure)
        print("\nfactorized pairs combined into codecs and measured:")
        with pd.option_context("display.width", 200):
            print(measured.drop(columns=["checkpoint"]).to_string(**show))
    joint = None
    stem = out / "factorized"
    if args.joint:
        _, joint, _ = _load(args.joint, args.storage, args.root)
        cmp = compare_with_joint(pairs, joint, gs, hp, measured)
        stem = out / f"vs-{args.joint}"
        if not cmp.same_config.empty:
            print(f"\nconfigs trained both ways (factorized prediction vs joint study {args.joint}):")
            with pd.option_context("display.width", 200):
                print(cmp.same_config.to_string(**show))
            cmp.same_config.to_csv(stem.with_suffix(".csv"), index=False)
        print(f"\nfactorized ({args.synthesis_study} + {args.hyperprior_study}) vs joint ({args.joint}):")
        for k, v in cmp.summary.items():
            print(f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}")
        from asymllic.files import write_text

        write_text(json.dumps(cmp.summary, indent=1), stem.with_suffix(".json"))
    title = f"{args.synthesis_study} + {args.hyperprior_study}" + (f" vs {args.joint}" if args.joint else "")
    for path in write_figure(factorized_figure(pairs, joint, measured, title), stem, png=not args.no_png):
        print(path)
    return 0


def run_export(args) -> int:
    from search.export import export

    _, df, spec = _load(args.study, args.storage, args.root)
    for done in export(df, spec, Path(args.root) / args.study / "export", args.top, args.trial, args.budget,
                       args.include_references, args.onnx):
        print(done.pick.summary())
        print(done.folder)
    return 0
