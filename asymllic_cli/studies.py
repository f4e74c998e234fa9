"""``asymllic search | results | pareto | export``: multi-objective decoder search and its results. The search's
flags are generated from the declarations of ``search.spec.SearchSpec``; ``search.define``/``search.run`` apply
the same rules to them as to a library caller's options."""
from __future__ import annotations

from search.spec import SearchSpec, StudyRef

from .options import add_options, given


def _study_args(p) -> None:
    add_options(p, StudyRef, positional=("study",))


def add_parsers(sub) -> None:
    p = sub.add_parser("search", help="multi-objective search over decoder configs (Optuna or Ray Tune)",
                       description="Every option below is a field of search.SearchSpec; an experiment file "
                                   "(--config) may set any of them, and flags given here override it.")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="experiment file (YAML option: value); a study's own results/<study>/spec.yaml reruns it")
    add_options(p, SearchSpec, given_only=True)
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
    add_options(p, StudyRef, skip=("study",))
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
    import search
    from search.spec import read_config

    config = read_config(args.config) if args.config else {}
    study = search.run(search.define(**{**config, **given(args, SearchSpec)}))
    return _summary(study)


def _load(study: str, storage=None, root="results"):
    """The study (``search.Study``) and its trials frame."""
    import search

    opened = search.open(study, root=root, storage=storage)
    return opened, opened.trials()


def _summary(study) -> int:
    import shlex

    from search.storage import stored_url

    where = [] if str(study.spec.root) == "results" else ["--root", str(study.spec.root)]  # commands to paste
    if study.spec.storage:
        where += ["--storage", stored_url(study.spec.storage)]  # never its password
    df = study.trials()
    counts = df["state"].value_counts().to_dict() if not df.empty else {}
    print(f"study {study.name}: {len(df)} trials {counts}, {int(df['pareto'].sum()) if not df.empty else 0} on the Pareto front")
    print("next: " + " | ".join(shlex.join(["asymllic", command, study.name, *where]) for command in ("results", "pareto", "export")))
    return 0


SHOW = ["number", "state", "pareto", "preset", "config_id", "psnr", "bpp", "decoder_gmacs", "decoder_mparams",
        "decoder_gmacs_thop", "steps", "wall_seconds", "infeasible", "stopped", "error"]


def run_results(args) -> int:
    import pandas as pd

    _, df = _load(args.study, args.storage, args.root)
    if args.csv:
        df.to_csv(args.csv, index=False)
    if args.parquet:
        df.to_parquet(args.parquet, index=False)
    view = df if args.all_columns else df[[c for c in SHOW if c in df]]
    with pd.option_context("display.max_rows", 500, "display.width", 200, "display.max_colwidth", 60):
        print(view.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def run_pareto(args) -> int:
    opened, _ = _load(args.study, args.storage, args.root)
    for p in opened.figures(png=not args.no_png, x=args.x):
        print(p)
    return 0


def run_factorize(args) -> int:
    import pandas as pd

    import search

    done = search.factorize(args.synthesis_study, args.hyperprior_study, measure=args.measure, max_side=args.max_side,
                            joint=args.joint, png=not args.no_png, csv=args.csv, root=args.root, storage=args.storage)
    show = dict(index=False, float_format=lambda v: f"{v:.4f}")
    with pd.option_context("display.width", 200):
        print(done.pairs[["gs_trial_number", "hp_trial_number", "psnr", "bpp", "decoder_gmacs", "pareto"]].to_string(**show))
    if done.measured is not None:
        print("\nfactorized pairs combined into codecs and measured:")
        with pd.option_context("display.width", 200):
            print(done.measured.drop(columns=["checkpoint"]).to_string(**show))
    cmp = done.comparison
    if cmp is not None:
        if not cmp.same_config.empty:
            print(f"\nconfigs trained both ways (factorized prediction vs joint study {args.joint}):")
            with pd.option_context("display.width", 200):
                print(cmp.same_config.to_string(**show))
        print(f"\nfactorized ({args.synthesis_study} + {args.hyperprior_study}) vs joint ({args.joint}):")
        for k, v in cmp.summary.items():
            print(f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}")
    for path in done.figures:
        print(path)
    return 0


def run_export(args) -> int:
    import search

    for done in search.export_codecs(args.study, args.top, args.trial, args.budget, args.onnx, args.include_references,
                              root=args.root, storage=args.storage):
        print(done.pick.summary())
        print(done.folder)
    return 0
