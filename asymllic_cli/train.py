"""``asymllic teacher train``, ``asymllic train stage1 | stage2 | combine``: the asymmetric protocol."""
from __future__ import annotations

from pathlib import Path

from asymllic.options import DEFAULT_LMBDA, SCHEDULE_NAMES

from .common import MODEL_HELP, add_run_args, resolve_config, stage_run
from .options import given


def _common(p, out_default: str) -> None:
    p.add_argument("--schedule", choices=SCHEDULE_NAMES, default="cpu", help="training schedule: sizes and step counts")
    p.add_argument("--lmbda", type=float, default=DEFAULT_LMBDA, help="rate-distortion trade-off (CompressAI convention)")
    p.add_argument("--data", default=None, help="image folder (default: the photos bundled with scikit-image)")
    p.add_argument("--out", default=None, help=f"run folder (default: {out_default})")
    p.add_argument("--steps", type=int, default=None, help="override the schedule's step count")
    p.add_argument("--batch", type=int, default=None, help="override the schedule's batch size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default="results/cache", help="latent cache folder")
    add_run_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_parsers(sub) -> None:
    t = sub.add_parser("teacher", help="the teacher codec (TCM)")
    tsub = t.add_subparsers(dest="teacher_command", required=True, metavar="WHAT")
    p = tsub.add_parser("train", help="train a teacher from scratch (RD loss + aux loss, Adam)")
    p.add_argument("--config", default="teacher", help="teacher preset or config (default: TCM-small)")
    _common(p, "results/teacher/<schedule>-<lambda>")
    p.set_defaults(run=run_teacher)

    t = sub.add_parser("train", help="asymmetric training stages")
    tsub = t.add_subparsers(dest="stage", required=True, metavar="STAGE")
    p = tsub.add_parser("stage1", help="train a light synthesis decoder g_s on the frozen teacher")
    p.add_argument("--teacher", required=True, help="the frozen teacher: " + MODEL_HELP)
    p.add_argument("--decoder", required=True, help="preset or config whose synthesis part is trained")
    _common(p, "results/stage1/<config id>")
    p.set_defaults(run=run_stage)
    p = tsub.add_parser("stage2", help="train a light hyperprior path (h_a, h_s, f_c) on the frozen teacher")
    p.add_argument("--teacher", required=True)
    p.add_argument("--hyperprior", required=True, help="preset or config whose hyperprior part is trained")
    p.add_argument("--synthesis-from", default=None, metavar="STAGE1_CKPT",
                   help="train through this stage-1 checkpoint's light g_s (frozen) instead of the teacher's")
    _common(p, "results/stage2/<config id>")
    p.set_defaults(run=run_stage)
    p = tsub.add_parser("combine", help="frozen g_a + stage-1 g_s + stage-2 hyperprior path = one codec")
    p.add_argument("--stage1", required=True)
    p.add_argument("--stage2", required=True)
    p.add_argument("--out", required=True, help="output checkpoint (.pt)")
    p.set_defaults(run=run_combine)


def _schedule_and_run(args, default_out: Path):
    from asymllic.training import get_schedule

    schedule = get_schedule(args.schedule, batch=args.batch)
    return schedule, stage_run(args, Path(args.out) if args.out else default_out)


def run_teacher(args) -> int:
    from asymllic.options import RunOptions
    from asymllic.training import train_teacher_at

    print(train_teacher_at(args.schedule, args.lmbda, config=args.config, out=args.out, data=args.data,
                           steps=args.steps, batch=args.batch, seed=args.seed, cache=args.cache,
                           progress=not args.quiet, **given(args, RunOptions)))
    return 0


def run_stage(args) -> int:
    import space
    from asymllic.training import train_stage1, train_stage2

    cfg = resolve_config(args.decoder if args.stage == "stage1" else args.hyperprior)
    schedule, run = _schedule_and_run(args, Path("results") / args.stage / f"{space.config_id(cfg)}-{args.schedule}-{args.lmbda:g}")
    fn = train_stage1 if args.stage == "stage1" else train_stage2
    extra = {"synthesis_from": args.synthesis_from} if args.stage == "stage2" else {}
    print(fn(args.teacher, cfg, schedule, args.lmbda, args.data, run, args.steps, **extra))
    return 0


def run_combine(args) -> int:
    from asymllic.training import combine

    print(combine(args.stage1, args.stage2, args.out))
    return 0
