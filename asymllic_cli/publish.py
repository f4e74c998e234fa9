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
    import search
    from search.confirm import confirm
    from search.export import pick

    study = search.open(args.study, root=args.root, storage=args.storage)
    spec, df = study.spec, study.trials()
    picks = args.trial
    if args.top is not None or args.budget is not None:
        picks = pick(df, spec.part, top=args.top, budget=args.budget, cost=spec.objective)
    overrides = given(args, StudyOverrides)
    backend = overrides.pop("backend", None)
    result = confirm(spec, picks, tuple(args.references), args.steps, args.seeds, factor=args.factor,
                     backend=backend, overrides=overrides, png=args.png)
    for _, row in result.summary.iterrows():
        print(f"{row['decoder']} ({row['config_id']}): {row.get('verdict') or 'reference'}")
    for path in result.files:
        print(path)
    return 0


def run_rd(args) -> int:
    import pandas as pd

    from search.rd import rd_curve

    result = rd_curve(args.decoder, args.teachers, args.lmbdas, anchors=tuple(args.anchor or ()), schedule=args.schedule,
                      steps=args.steps, batch=args.batch, data=args.data, test_data=args.test_data, out=args.out, root=args.root,
                      name=args.name, seed=args.seed, device=args.device, precision=args.precision,
                      backend=args.backend, ray_address=args.ray_address, gpus_per_point=args.gpus_per_point,
                      png=args.png)
    with pd.option_context("display.width", 200):
        print(result.bd.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for path in result.files:
        print(path)
    return 0
