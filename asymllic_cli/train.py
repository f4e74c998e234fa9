"""``asymllic teacher train``, ``asymllic train stage1 | stage2 | combine``: the asymmetric protocol. The flags are
generated from ``asymllic.options.TrainOptions`` and the commands' own declarations below."""
from __future__ import annotations

from dataclasses import dataclass

from asymllic.options import Teacher, TrainOptions, option

from .options import add_options, given


@dataclass(kw_only=True)
class TeacherTrain(TrainOptions):
    config: str = option("teacher", "teacher preset or config (teacher: TCM-small)")


@dataclass(kw_only=True)
class Stage1(TrainOptions, Teacher):
    decoder: str = option(None, "preset or config whose synthesis part is trained")


@dataclass(kw_only=True)
class Stage2(TrainOptions, Teacher):
    hyperprior: str = option(None, "preset or config whose hyperprior part is trained")
    synthesis_from: str | None = option(None, "train through this stage-1 checkpoint's light g_s (frozen) instead of "
                                              "the teacher's", metavar="STAGE1_CKPT")


@dataclass(kw_only=True)
class Combine:
    stage1: str = option(None, "the stage-1 checkpoint (its g_a and light g_s)")
    stage2: str = option(None, "the stage-2 checkpoint (its hyperprior path)")
    out: str = option(None, "output checkpoint (.pt)")


def add_parsers(sub) -> None:
    t = sub.add_parser("teacher", help="the teacher codec (TCM)")
    tsub = t.add_subparsers(dest="teacher_command", required=True, metavar="WHAT")
    p = tsub.add_parser("train", help="train a teacher from scratch (RD loss + aux loss, Adam)")
    add_options(p, TeacherTrain)
    p.set_defaults(run=run_teacher)

    t = sub.add_parser("train", help="asymmetric training stages")
    tsub = t.add_subparsers(dest="stage", required=True, metavar="STAGE")
    p = tsub.add_parser("stage1", help="train a light synthesis decoder g_s on the frozen teacher")
    add_options(p, Stage1, required=("decoder",))
    p.set_defaults(run=run_stage, options=Stage1, part="decoder")
    p = tsub.add_parser("stage2", help="train a light hyperprior path (h_a, h_s, f_c) on the frozen teacher")
    add_options(p, Stage2, required=("hyperprior",))
    p.set_defaults(run=run_stage, options=Stage2, part="hyperprior")
    p = tsub.add_parser("combine", help="frozen g_a + stage-1 g_s + stage-2 hyperprior path = one codec")
    add_options(p, Combine, required=("stage1", "stage2", "out"))
    p.set_defaults(run=run_combine)


def _training(args, cls) -> dict:
    options = given(args, cls)
    options["progress"] = not options.pop("quiet")
    return options


def run_teacher(args) -> int:
    from asymllic.training import train_teacher_at

    print(train_teacher_at(**_training(args, TeacherTrain)))
    return 0


def run_stage(args) -> int:
    from asymllic.training import train_stage_at

    options = _training(args, args.options)
    print(train_stage_at(args.stage, options.pop(args.part), **options))
    return 0


def run_combine(args) -> int:
    from asymllic.training import combine

    print(combine(args.stage1, args.stage2, args.out))
    return 0
