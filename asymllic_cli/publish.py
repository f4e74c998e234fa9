"""``asymllic confirm | rd``: results to publish. ``confirm`` retrains a study's picks and the reference decoders over
seeds at a longer schedule (``search.confirm``); ``rd`` trains one decoder per teacher lambda into an RD curve with
BD-rate and BD-PSNR (``search.rd``)."""
from __future__ import annotations

from search.options import RD, Confirm, StudyOverrides

from .options import add_options, given


def add_parsers(sub) -> None:
    p = sub.add_parser("confirm", help="retrain a study's picks and the reference decoders over seeds at a longer "
                                       "schedule; mean, spread, paired differences and a verdict")
    add_options(p, Confirm, positional=("study",))
    add_options(p, StudyOverrides, given_only=True, defaults_from="the study's")
    p.set_defaults(run=run_confirm)

    p = sub.add_parser("rd", help="an RD curve of one decoder over several teachers (one per lambda), with BD-rate "
                                  "and BD-PSNR against the teachers and anchors")
    p.add_argument("decoder", help="the decoder: a preset, config file or export folder")
    add_options(p, RD, required=("teachers",))
    p.set_defaults(run=run_rd)


def run_confirm(args) -> int:
    from search.confirm import confirm

    overrides = given(args, StudyOverrides)
    backend = overrides.pop("backend", None)
    result = confirm(args.study, args.trial, args.references, args.steps, args.seeds, top=args.top,
                     budget=args.budget, factor=args.factor, backend=backend, storage=args.storage, root=args.root,
                     overrides=overrides, png=args.png, progress=not args.quiet)
    for _, row in result.summary.iterrows():
        print(f"{row['decoder']} ({row['config_id']}): {row.get('verdict') or 'reference'}")
    for path in result.files:
        print(path)
    return 0


def run_rd(args) -> int:
    import pandas as pd

    from search.rd import rd_curve

    options = given(args, RD)
    options["progress"] = not options.pop("quiet")
    result = rd_curve(args.decoder, options.pop("teachers"), options.pop("lmbdas"),
                      anchors=options.pop("anchor") or (), **options)
    with pd.option_context("display.width", 200):
        print(result.bd.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for path in result.files:
        print(path)
    return 0
