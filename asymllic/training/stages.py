"""The asymmetric protocol: teacher, stage 1 (light g_s), stage 2 (light hyperprior path), combine.

.. code-block:: none

    teacher:  train everything, L = lambda * 255^2 * MSE + bpp (+ aux loss of the entropy bottleneck)
    stage 1:  frozen teacher except a new g_s;  from the teacher's y_hat:  L = lambda * 255^2 * MSE(g_s(y_hat), x)
    stage 2:  frozen teacher except h_a, a new h_s + f_c (and the z prior);  from y = g_a(x):  full RD loss
              through the teacher's frozen g_s
    combine:  g_a (teacher) + g_s (stage 1) + h_a, h_s, f_c, z prior (stage 2)

Light parts start from the teacher's weights as ``StageRun.inherit`` says (``inherit``: none, copy, slice). The frozen
parts' output comes from the latent cache or is computed on the fly (``latents.plan_latents``). Every
model, batch and optimiser state lives on ``StageRun.device``; checkpoints are written device-independent.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from space import CodecConfig, config_id

from ..codec.checkpoint import base_of, load_codec, save_codec
from ..codec.reference import checkpoint_file, load_model, resolve_config
from ..data import Batches, resolve
from ..device import pick_device, pick_precision, prepare, with_index
from ..errors import AsymllicError
from ..evaluation.metrics import distortion_loss, rd_loss
from ..models import ENTROPY_TABLES, HYPERPRIOR_PARTS, LicCodec
from ..options import (CACHE_DIR, DEFAULT_LMBDA, DEFAULT_ROOT, DEFAULT_SCHEDULE, DEFAULT_SEED, RunOptions,
                       teacher_dir)
from .inherit import check_mode, inherit
from .latents import FrozenOnTheFly, latent_cache, plan_latents
from .loop import LoopSpec, run_loop
from .schedules import Schedule

CODEC_FILE = "codec.pt"
LIGHT_HYPERPRIOR = tuple(p for p in HYPERPRIOR_PARTS if p not in ("entropy_bottleneck", "gaussian_conditional"))


@dataclass
class StageRun(RunOptions):
    """Where a stage writes, where it runs and how it reports progress; the run options (device, precision, data
    loading, latent cache, inherit: ``asymllic.options.RunOptions``) are keyword arguments."""

    out_dir: Path
    cache_root: Path = Path(DEFAULT_ROOT) / CACHE_DIR
    seed: int = DEFAULT_SEED
    progress: bool = True

    def __post_init__(self):
        check_mode(self.inherit)  # one line before any teacher is loaded

    def resolved(self) -> tuple:
        """(device, precision) checked against this machine; a CUDA device always with its index."""
        device = with_index(pick_device(self.device))
        return device, pick_precision(self.precision, device)

    def workers(self) -> int:
        from ..data import default_loader_workers

        return default_loader_workers() if self.loader_workers is None else self.loader_workers


def _loop(name: str, run: StageRun, model: LicCodec, params: list, step_fn, schedule: Schedule, steps: int,
          aux: list | None = None, plan_steps: int | None = None) -> dict:
    """Train to ``steps``; the learning rate drops at ``lr_drop`` of ``plan_steps`` (default ``steps``), so a run
    stopped early and resumed later (a multi-fidelity rung) follows one plan."""
    device, precision = run.resolved()
    plan = plan_steps or steps
    return run_loop(LoopSpec(name=name, run_dir=run.out_dir, model=model, params=params, step_fn=step_fn,
                             steps=steps, lr=schedule.lr, lr_drop_at=int(plan * schedule.lr_drop),
                             lr_after=schedule.lr_after, checkpoint_every=schedule.checkpoint_every,
                             aux_params=aux or [], progress=run.progress, device=device, precision=precision,
                             batch=schedule.batch))


def _compiled(model: LicCodec, parts: tuple, run: StageRun) -> None:
    """``torch.compile`` the trained parts. Dynamo's caches are reset first: a long-lived search worker compiles a
    new architecture per candidate, and past the recompile limit Dynamo would silently fall back to eager."""
    if run.compile:
        torch._dynamo.reset()
        for part in parts:
            getattr(model, part).compile()


def _finish(model: LicCodec, run: StageRun, meta: dict, teacher_ref=None, parts: tuple = ()) -> Path:
    """Save the trained model; a stage fine-tuned from a teacher checkpoint keeps only its trained ``parts`` and
    reads the frozen rest from that checkpoint (a preset teacher has no file: everything is written)."""
    model.update(force=True)
    base = checkpoint_file(teacher_ref) if teacher_ref is not None else None
    return save_codec(model.eval(), run.out_dir / CODEC_FILE, meta, base=base, parts=parts)


def _split_aux(named) -> tuple:
    main, aux = [], []
    for name, p in named:
        (aux if name.endswith("quantiles") else main).append(p)
    return main, aux


def _batches(data: str | None, schedule: Schedule, steps: int, run: StageRun) -> Batches:
    images = resolve(data, "train")
    images.report()
    return Batches(images, schedule.crop, schedule.batch, steps, run.seed, run.workers(), run.resolved()[0], run.flips)


def train_teacher(config: CodecConfig, schedule: Schedule, lmbda: float, data: str | None, run: StageRun,
                  steps: int | None = None) -> Path:
    device, _ = run.resolved()
    prepare(device)
    steps = steps or schedule.steps("teacher")
    torch.manual_seed(run.seed)
    model = LicCodec(config).to(device)
    batches = _batches(data, schedule, steps, run)

    def step_fn(step: int) -> dict:
        x = batches(step)
        return rd_loss(model(x), x, lmbda)

    params, aux = _split_aux(model.named_parameters())
    _compiled(model, ("g_a", "g_s"), run)
    metrics = _loop("teacher", run, model, params, step_fn, schedule, steps, aux)
    return _finish(model, run, {"stage": "teacher", "schedule": schedule.name, "lmbda": lmbda, "last": metrics,
                                "data": batches.report.summary()})


def _run_at(out: Path, root: str | Path, cache: str | Path | None, seed: int, progress: bool, run_options: dict):
    run = StageRun(out, Path(cache) if cache is not None else Path(root) / CACHE_DIR, seed, progress, **run_options)
    run.resolved()  # CUDA asked for where there is none: one line now, not after the data is listed
    return run


def train_teacher_at(schedule: str = DEFAULT_SCHEDULE, lmbda: float = DEFAULT_LMBDA, *,
                     config: str | CodecConfig = "teacher", root: str | Path = DEFAULT_ROOT,
                     out: str | Path | None = None, data: str | None = None, steps: int | None = None,
                     batch: int | None = None, seed: int = DEFAULT_SEED, cache: str | Path | None = None,
                     progress: bool = True, **run_options) -> Path:
    """Train a teacher as ``asymllic teacher train`` does and return its checkpoint: the schedule by name
    (``batch`` overrides its batch size, ``steps`` its step count), ``config`` a preset, config file or model
    reference (default TCM-small), into ``out`` (default ``asymllic.options.teacher_dir(schedule, lmbda, root)``,
    where ``search.resolve`` and :func:`train_stage_at` look for a default teacher). ``cache``: the latent cache
    folder (default ``<root>/cache``); ``run_options``: ``asymllic.options.RunOptions`` fields (device, precision,
    ...). A run already in ``out`` resumes. A device this machine lacks is one line before the data is listed."""
    from .schedules import get_schedule

    plan = get_schedule(schedule, batch=batch)
    run = _run_at(Path(out) if out is not None else teacher_dir(schedule, lmbda, root), root, cache, seed, progress,
                  run_options)
    cfg = config if isinstance(config, CodecConfig) else resolve_config(config)
    return train_teacher(cfg, plan, lmbda, data, run, steps)


def default_teacher(schedule: str, lmbda: float, root: str | Path = DEFAULT_ROOT) -> Path:
    """The teacher :func:`train_teacher_at` writes by default for ``schedule`` and ``lmbda`` under ``root``, or a
    one-line error saying how to train it."""
    import shlex

    path = teacher_dir(schedule, lmbda, root) / CODEC_FILE
    if not path.is_file():
        words = ["asymllic", "teacher", "train", "--schedule", schedule]
        words += [] if lmbda == DEFAULT_LMBDA else ["--lmbda", f"{lmbda:g}"]
        words += [] if str(root) == DEFAULT_ROOT else ["--root", str(root)]
        raise AsymllicError(f"no teacher checkpoint at {path}; run '{shlex.join(words)}' or pass --teacher")
    return path


def train_stage_at(stage: str, config: str | CodecConfig, teacher: str | Path | None = None,
                   schedule: str = DEFAULT_SCHEDULE, lmbda: float = DEFAULT_LMBDA, *, root: str | Path = DEFAULT_ROOT,
                   out: str | Path | None = None, data: str | None = None, steps: int | None = None,
                   batch: int | None = None, seed: int = DEFAULT_SEED, cache: str | Path | None = None,
                   synthesis_from: str | Path | None = None, progress: bool = True, **run_options) -> Path:
    """Train ``stage`` (``"stage1"``: the synthesis part of ``config``; ``"stage2"``: its hyperprior path, through
    the g_s of the stage-1 checkpoint ``synthesis_from`` if given) on the frozen ``teacher`` (default: the one
    :func:`train_teacher_at` writes for ``schedule`` and ``lmbda`` under ``root``), as ``asymllic train stage1|
    stage2`` does, and return its checkpoint. ``out`` defaults to ``<root>/<stage>/<config id>-<schedule>-<lmbda>``;
    the other arguments are :func:`train_teacher_at`'s."""
    from .schedules import get_schedule

    if stage not in ("stage1", "stage2"):
        raise AsymllicError(f"unknown stage {stage!r}; choose stage1 or stage2")
    if synthesis_from is not None and stage != "stage2":
        raise AsymllicError("synthesis_from is for stage 2 (the stage-1 g_s it trains through)")
    cfg = config if isinstance(config, CodecConfig) else resolve_config(config)
    teacher = teacher if teacher is not None else default_teacher(schedule, lmbda, root)
    plan = get_schedule(schedule, batch=batch)
    folder = Path(out) if out is not None else Path(root) / stage / f"{config_id(cfg)}-{schedule}-{lmbda:g}"
    run = _run_at(folder, root, cache, seed, progress, run_options)
    if stage == "stage1":
        return train_stage1(teacher, cfg, plan, lmbda, data, run, steps)
    return train_stage2(teacher, cfg, plan, lmbda, data, run, steps, synthesis_from=synthesis_from)


def _freeze_all_but(model: LicCodec, prefixes: tuple) -> list:
    named = []
    for name, p in model.named_parameters():
        p.requires_grad_(name.split(".", 1)[0] in prefixes)
        if p.requires_grad:
            named.append((name, p))
    return named


def frozen_latents(teacher: LicCodec, schedule: Schedule, data: str | None, run: StageRun, steps: int,
                   stage: str):
    """``batch_at(step) -> (x, y, y_hat)`` on the run's device: from the latent cache or on the fly, whichever
    ``plan_latents`` picks for this run (printed with its reason)."""
    device, _ = run.resolved()
    images = resolve(data, "train")
    images.report()
    plan = plan_latents(steps, schedule.batch, schedule.crop, schedule.cache_crops, run.cache_gib, run.max_reuse)
    if run.progress or plan.mode != "cache":
        print(f"asymllic: {plan.describe(stage)}", file=sys.stderr)
    if plan.mode == "cache":
        cache = latent_cache(teacher, images, schedule.crop, plan.crops, run.cache_root, run.seed,
                             workers=run.workers(), progress=run.progress)

        class Cached:
            def batch_at(self, step: int) -> tuple:
                return cache.batch_at(step, schedule.batch, run.seed, device)

        return Cached()
    batches = Batches(images, schedule.crop, schedule.batch, steps, run.seed, run.workers(), device, run.flips)
    return FrozenOnTheFly(teacher, batches, need_y_hat=stage == "stage1")


def _light_model(teacher_ref, run: StageRun, light: tuple, **part) -> tuple:
    """The teacher, and a codec with ``part`` swapped in: the teacher's weights outside ``light``, inside it
    as ``run.inherit`` says."""
    device, _ = run.resolved()
    prepare(device)
    teacher = load_model(teacher_ref, device)
    torch.manual_seed(run.seed)  # the new parts' initialisation is reproducible
    model = LicCodec(replace(teacher.config, **part))
    inherit(model, teacher, light, run.inherit)
    return teacher, model.to(device)


def train_stage1(teacher_ref: str | Path, config: CodecConfig, schedule: Schedule, lmbda: float,
                 data: str | None, run: StageRun, steps: int | None = None, plan_steps: int | None = None) -> Path:
    """Light g_s of ``config.synthesis`` on the frozen teacher; distortion-only loss from the teacher's y_hat.
    ``plan_steps``: the run's planned length when it stops early at ``steps`` (resumed later from its state)."""
    steps = steps or schedule.steps("stage1")
    teacher, model = _light_model(teacher_ref, run, ("g_s",), synthesis=config.synthesis)
    params = [p for _, p in _freeze_all_but(model, ("g_s",))]
    latents = frozen_latents(teacher, schedule, data, run, plan_steps or steps, "stage1")
    _compiled(model, ("g_s",), run)

    def step_fn(step: int) -> dict:
        x, _, y_hat = latents.batch_at(step)
        return distortion_loss(model.g_s(y_hat), x, lmbda)

    metrics = _loop("stage1 g_s", run, model, params, step_fn, schedule, steps, plan_steps=plan_steps)
    return _finish(model, run, {"stage": "stage1", "schedule": schedule.name, "lmbda": lmbda, "last": metrics,
                                "teacher": str(teacher_ref), "teacher_config_id": config_id(teacher.config)},
                   teacher_ref, ("g_s",))


def train_stage2(teacher_ref: str | Path, config: CodecConfig, schedule: Schedule, lmbda: float,
                 data: str | None, run: StageRun, steps: int | None = None, synthesis_from: str | Path | None = None,
                 plan_steps: int | None = None) -> Path:
    """Light h_s + f_c of ``config.hyperprior``; h_a and the z prior retrain; full RD loss from y = g_a(x), through
    the teacher's frozen g_s, or (``synthesis_from``: a stage-1 checkpoint; the sequential reading of the paper)
    through that stage's light g_s, frozen."""
    steps = steps or schedule.steps("stage2")
    light_gs = load_codec(synthesis_from) if synthesis_from else None
    part = {"synthesis": light_gs.config.synthesis} if light_gs else {}
    teacher, model = _light_model(teacher_ref, run, LIGHT_HYPERPRIOR, hyperprior=config.hyperprior, **part)
    if light_gs is not None:
        model.g_s.load_state_dict(light_gs.g_s.state_dict())
    trained = ("h_a",) + HYPERPRIOR_PARTS
    params, aux = _split_aux(_freeze_all_but(model, trained))
    latents = frozen_latents(teacher, schedule, data, run, plan_steps or steps, "stage2")

    def step_fn(step: int) -> dict:
        x, y, _ = latents.batch_at(step)
        out = model.entropy_forward(y)
        return rd_loss({"x_hat": model.g_s(out["y_hat"]), "likelihoods": out["likelihoods"]}, x, lmbda)

    metrics = _loop("stage2 h_s+f_c", run, model, params, step_fn, schedule, steps, aux, plan_steps)
    return _finish(model, run, {"stage": "stage2", "schedule": schedule.name, "lmbda": lmbda, "last": metrics,
                                "synthesis_from": str(synthesis_from) if synthesis_from else "teacher",
                                "teacher": str(teacher_ref), "teacher_config_id": config_id(teacher.config)},
                   teacher_ref, trained + (("g_s",) if light_gs is not None else ()))


def combine(stage1_path: str | Path, stage2_path: str | Path, out: str | Path) -> Path:
    """g_a and g_s from stage 1, h_a and the whole hyperprior path from stage 2: one asymmetric codec."""
    s1, s2 = load_codec(stage1_path), load_codec(stage2_path)
    if s1.config.encoder_width != s2.config.encoder_width or any(
            not torch.equal(a, b) for a, b in zip(s1.g_a.state_dict().values(), s2.g_a.state_dict().values())):
        raise AsymllicError(f"{stage1_path} and {stage2_path} were not trained from the same teacher (g_a differs)")
    model = LicCodec(replace(s1.config, hyperprior=s2.config.hyperprior))
    state = {k: v for k, v in s1.state_dict().items() if k.split(".", 1)[0] in ("g_a", "g_s")}
    state.update({k: v for k, v in s2.state_dict().items()
                  if k.split(".", 1)[0] in ("h_a",) + HYPERPRIOR_PARTS and not k.endswith(ENTROPY_TABLES)})
    missing = set(model.state_dict()) - set(state)
    torch.nn.Module.load_state_dict(model, state, strict=False)
    bad = {k for k in missing if not k.endswith(ENTROPY_TABLES)}
    if bad:
        raise AsymllicError(f"combine: no weights for {sorted(bad)[:3]}")
    model.update(force=True)
    base = base_of(stage1_path)[0]  # both stages' teacher (same g_a): the combined codec keeps all but g_a
    return save_codec(model.eval(), out, {"stage": "combined", "stage1": str(stage1_path), "stage2": str(stage2_path)},
                      base=base, parts=("g_s", "h_a") + HYPERPRIOR_PARTS if base else ())
