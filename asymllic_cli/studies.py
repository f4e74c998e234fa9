"""``asymllic search | results | pareto | export``: multi-objective decoder search and its results. The search's
flags are generated from the declarations of ``search.spec.SearchSpec``; ``search.define``/``search.run`` apply
the same rules to them as to a library caller's options."""
from __future__ import annotations

from search.options import Export, Factorize, Pareto, Results
from search.spec import SearchSpec

from asymllic.options import ExperimentFile, Quiet

from .options import add_options, given


def add_parsers(sub) -> None:
    p = sub.add_parser("search", help="multi-objective search over decoder configs (Optuna or Ray Tune)",
                       description="Every option below is a field of search.SearchSpec; an experiment file "
                                   "(--config; a study's own <root>/<study>/spec.yaml reruns it) may set any of "
                                   "them, and flags given here override it.")
    add_options(p, ExperimentFile)
    add_options(p, Quiet)
    add_options(p, SearchSpec, given_only=True)
    p.set_defaults(run=run_search)

    p = sub.add_parser("results", help="table of a study's trials")
    add_options(p, Results, positional=("study",))
    p.set_defaults(run=run_results)

    p = sub.add_parser("pareto", help="Pareto plot, hypervolume history and axis importance (HTML + PNG)")
    add_options(p, Pareto, positional=("study",))
    p.set_defaults(run=run_pareto)

    p = sub.add_parser("factorize", help="combine a synthesis study's front and a hyperprior study's front")
    p.add_argument("synthesis_study")
    p.add_argument("hyperprior_study")
    add_options(p, Factorize, skip=("study",))
    p.set_defaults(run=run_factorize)

    p = sub.add_parser("export", help="export the best trained decoders as codecs (never the reference presets "
                                      "unless --include-references; default: the best candidate)")
    add_options(p, Export, positional=("study",))
    p.set_defaults(run=run_export)


def run_search(args) -> int:
    import search
    from search.spec import read_config

    config = read_config(args.config) if args.config else {}
    study = search.run(search.define(**{**config, **given(args, SearchSpec)}), progress=not args.quiet)
    return _summary(study)


def _load(args):
    """The study (``search.Study``) of the command's study, root and storage, and its trials frame."""
    import search

    opened = search.open(args.study, root=args.root, storage=args.storage)
    return opened, opened.trials()


def _summary(study) -> int:
    import shlex

    where = study.spec.where()  # the flags of the commands to paste (never a password)
    df = study.trials()
    counts = df["state"].value_counts().to_dict() if not df.empty else {}
    print(f"study {study.name}: {len(df)} trials {counts}, {int(df['pareto'].sum()) if not df.empty else 0} on the Pareto front")
    print("next: " + " | ".join(shlex.join(["asymllic", command, study.name, *where]) for command in ("results", "pareto", "export")))
    return 0


SHOW = ["number", "state", "pareto", "preset", "config_id", "psnr", "bpp", "decoder_gmacs", "decoder_mparams",
        "decoder_gmacs_thop", "steps", "wall_seconds", "infeasible", "stopped", "error"]


def run_results(args) -> int:
    import pandas as pd

    _, df = _load(args)
    if args.csv:
        df.to_csv(args.csv, index=False)
    if args.parquet:
        df.to_parquet(args.parquet, index=False)
    view = df if args.all_columns else df[[c for c in SHOW if c in df]]
    with pd.option_context("display.max_rows", 500, "display.width", 200, "display.max_colwidth", 60):
        print(view.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def run_pareto(args) -> int:
    opened, _ = _load(args)
    for p in opened.figures(png=args.png, x=args.x):
        print(p)
    return 0


def run_factorize(args) -> int:
    import pandas as pd

    import search

    done = search.factorize(args.synthesis_study, args.hyperprior_study, measure=args.measure, max_side=args.max_side,
                            joint=args.joint, png=args.png, csv=args.csv, root=args.root, storage=args.storage)
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

    options = given(args, Export)
    for done in search.export_codecs(options.pop("study"), **options):
        print(done.pick.summary())
        print(done.folder)
    return 0
