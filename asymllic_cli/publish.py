"""``asymllic confirm | rd``: results to publish. ``confirm`` retrains a study's picks and the reference decoders over
seeds at a longer schedule (``search.confirm``); ``rd`` trains one decoder per teacher lambda into an RD curve with
BD-rate and BD-PSNR (``search.rd``)."""
from __future__ import annotations

from search.spec import StudyRef

from .common import MODEL_HELP
from .options import add_options


def add_parsers(sub) -> None:
    p = sub.add_parser("confirm", help="retrain a study's picks and the reference decoders over seeds at a longer "
                                       "schedule; mean, spread, paired differences and a verdict")
    add_options(p, StudyRef, positional=("study",))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--trial", type=int, nargs="+", default=None, metavar="N", help="these trials")
    g.add_argument("--top", type=int, default=None, metavar="K", help="K points spread along the Pareto front")
    g.add_argument("--budget", type=float, default=None, metavar="GMACS",
                   help="the best candidate whose decoder needs at most GMACS")
    p.add_argument("--references", nargs="*", default=["paper", "teacher"], metavar="PRESET",
                   help="reference decoders trained beside the picks (default: paper teacher; none: no argument)")
    p.add_argument("--steps", type=int, default=None, help="training steps per run (default: --factor x the study's)")
    p.add_argument("--factor", type=int, default=4, help="default steps as a multiple of the study's (default 4)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per decoder (default 3)")
    p.add_argument("--backend", choices=("optuna", "ray"), default=None, help="default: the study's")
    p.add_argument("--device", default=None, help="default: the study's")
    p.add_argument("--precision", default=None, help="default: the study's")
    p.add_argument("--png", action="store_true", help="also write confirm.png (needs Chromium)")
    p.set_defaults(run=run_confirm)

    p = sub.add_parser("rd", help="an RD curve of one decoder over several teachers (one per lambda), with BD-rate "
                                  "and BD-PSNR against the teachers and anchors")
    p.add_argument("decoder", help="the decoder: a preset, config file or export folder")
    p.add_argument("--teachers", nargs="+", required=True, metavar="MODEL",
                   help="one teacher checkpoint per lambda (ours or official LIC_TCM): " + MODEL_HELP)
    p.add_argument("--lmbdas", type=float, nargs="+", default=None,
                   help="the teachers' lambdas, in order (default: read from each checkpoint or its file name)")
    p.add_argument("--anchor", action="append", default=[], metavar="JSON",
                   help="a CompressAI-format RD curve, or a Kodak anchor name (e.g. vtm, bpg_444_x265_ycbcr); repeatable")
    p.add_argument("--schedule", default="cpu", help="training schedule of each stage (smoke, cpu, paper)")
    p.add_argument("--steps", type=int, default=None, help="steps of each stage (default: the schedule's)")
    p.add_argument("--batch", type=int, default=None, help="training crops per step (default: the schedule's)")
    p.add_argument("--data", default=None, help="training images (default: bundled photos)")
    p.add_argument("--test-data", default=None, help="evaluation images (default: bundled test photos)")
    p.add_argument("--out", default=None, help="output folder (default: <root>/rd/<config id>)")
    p.add_argument("--root", default="results")
    p.add_argument("--name", default=None, help="the curve's name in the JSON and the plot")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: one lambda after another here; ray: all lambdas at once as Ray tasks")
    p.add_argument("--ray-address", default=None, help="with --backend ray: a running cluster (default: a local Ray)")
    p.add_argument("--gpus-per-point", type=float, default=None,
                   help="with --backend ray: GPUs each lambda reserves (default: 1 where the cluster has GPUs)")
    p.add_argument("--png", action="store_true", help="also write rd.png (needs Chromium)")
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
    overrides = {k: v for k, v in (("device", args.device), ("precision", args.precision)) if v is not None}
    result = confirm(spec, picks, tuple(args.references), args.steps, args.seeds, factor=args.factor,
                     backend=args.backend, overrides=overrides, png=args.png)
    for _, row in result.summary.iterrows():
        print(f"{row['decoder']} ({row['config_id']}): {row.get('verdict') or 'reference'}")
    for path in result.files:
        print(path)
    return 0


def run_rd(args) -> int:
    import pandas as pd

    from search.rd import rd_curve

    result = rd_curve(args.decoder, args.teachers, args.lmbdas, anchors=args.anchor, schedule=args.schedule,
                      steps=args.steps, batch=args.batch, data=args.data, test_data=args.test_data, out=args.out, root=args.root,
                      name=args.name, seed=args.seed, device=args.device, precision=args.precision,
                      backend=args.backend, ray_address=args.ray_address, gpus_per_point=args.gpus_per_point,
                      png=args.png)
    with pd.option_context("display.width", 200):
        print(result.bd.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for path in result.files:
        print(path)
    return 0
