"""The asymmetric protocol: teacher, stage 1 (light g_s), stage 2 (light hyperprior path), combine.

.. code-block:: none

    teacher:  train everything, L = lambda * 255^2 * MSE + bpp (+ aux loss of the entropy bottleneck)
    stage 1:  frozen teacher except a new g_s;  from cached y_hat:  L = lambda * 255^2 * MSE(g_s(y_hat), x)
    stage 2:  frozen teacher except h_a, a new h_s + f_c (and the z prior);  from cached y:  full RD loss
              through the teacher's frozen g_s
    combine:  g_a (teacher) + g_s (stage 1) + h_a, h_s, f_c, z prior (stage 2)

Light parts are warm-started from the teacher wherever a tensor's name and shape match.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from space import CodecConfig, config_id

from ..checkpoint import load_codec, save_codec
from ..data import CropSampler, resolve
from ..errors import AsymllicError
from ..metrics import distortion_loss, rd_loss
from ..models import ENTROPY_TABLES, HYPERPRIOR_PARTS, LicCodec
from .cache import latent_cache
from .loop import LoopSpec, run_loop
from .presets import TrainPreset

CODEC_FILE = "codec.pt"


@dataclass
class StageRun:
    """Where a stage writes and how it reports progress."""

    out_dir: Path
    cache_root: Path = Path("results/cache")
    seed: int = 0
    progress: bool = True


def warm_start(model: LicCodec, source: LicCodec) -> list:
    """Copy every tensor whose name and shape match; returns the names copied."""
    own = model.state_dict()
    copied = {k: v for k, v in source.state_dict().items() if k in own and own[k].shape == v.shape}
    torch.nn.Module.load_state_dict(model, copied, strict=False)  # CompressAI's override wants every table
    return sorted(copied)


def _loop(name: str, run: StageRun, model: LicCodec, params: list, step_fn, preset: TrainPreset, stage: str,
          aux: list | None = None, steps: int | None = None) -> dict:
    steps = steps or preset.steps(stage)
    return run_loop(LoopSpec(name=name, run_dir=run.out_dir, model=model, params=params, step_fn=step_fn,
                             steps=steps, lr=preset.lr, lr_drop_at=int(steps * preset.lr_drop),
                             lr_after=preset.lr_after, checkpoint_every=preset.checkpoint_every,
                             aux_params=aux or [], progress=run.progress))


def _finish(model: LicCodec, run: StageRun, meta: dict) -> Path:
    model.update(force=True)
    return save_codec(model.eval(), run.out_dir / CODEC_FILE, meta)


def _split_aux(named) -> tuple:
    main, aux = [], []
    for name, p in named:
        (aux if name.endswith("quantiles") else main).append(p)
    return main, aux


def train_teacher(config: CodecConfig, preset: TrainPreset, lmbda: float, data: str | None, run: StageRun,
                  steps: int | None = None) -> Path:
    torch.manual_seed(run.seed)
    model = LicCodec(config)
    images = resolve(data, "train")
    images.report()
    sampler = CropSampler(images.paths, preset.crop, preset.batch, run.seed)

    def step_fn(step: int) -> dict:
        x = sampler.batch_at(step)
        return rd_loss(model(x), x, lmbda)

    params, aux = _split_aux(model.named_parameters())
    metrics = _loop("teacher", run, model, params, step_fn, preset, "teacher", aux, steps)
    return _finish(model, run, {"stage": "teacher", "preset": preset.name, "lmbda": lmbda, "last": metrics})


def _freeze_all_but(model: LicCodec, prefixes: tuple) -> list:
    named = []
    for name, p in model.named_parameters():
        p.requires_grad_(name.split(".", 1)[0] in prefixes)
        if p.requires_grad:
            named.append((name, p))
    return named


def _cache(teacher: LicCodec, preset: TrainPreset, data: str | None, run: StageRun):
    images = resolve(data, "train")
    images.report()
    return latent_cache(teacher, images.paths, preset.crop, preset.cache_crops, run.cache_root, run.seed,
                        progress=run.progress)


def train_stage1(teacher_path: str | Path, config: CodecConfig, preset: TrainPreset, lmbda: float,
                 data: str | None, run: StageRun, steps: int | None = None) -> Path:
    """Light g_s of ``config.synthesis`` on the frozen teacher; distortion-only loss from cached y_hat."""
    teacher = load_codec(teacher_path)
    torch.manual_seed(run.seed)  # the new parts' initialisation is reproducible
    model = LicCodec(replace(teacher.config, synthesis=config.synthesis))
    warm_start(model, teacher)
    params = [p for _, p in _freeze_all_but(model, ("g_s",))]
    cache = _cache(teacher, preset, data, run)

    def step_fn(step: int) -> dict:
        x, _, y_hat = cache.batch_at(step, preset.batch, run.seed)
        return distortion_loss(model.g_s(y_hat), x, lmbda)

    metrics = _loop("stage1 g_s", run, model, params, step_fn, preset, "stage1", steps=steps)
    return _finish(model, run, {"stage": "stage1", "preset": preset.name, "lmbda": lmbda, "last": metrics,
                                "teacher": str(teacher_path), "teacher_config_id": config_id(teacher.config)})


def train_stage2(teacher_path: str | Path, config: CodecConfig, preset: TrainPreset, lmbda: float,
                 data: str | None, run: StageRun, steps: int | None = None) -> Path:
    """Light h_s + f_c of ``config.hyperprior``; h_a and the z prior retrain; full RD loss from cached y."""
    teacher = load_codec(teacher_path)
    torch.manual_seed(run.seed)
    model = LicCodec(replace(teacher.config, hyperprior=config.hyperprior))
    warm_start(model, teacher)
    params, aux = _split_aux(_freeze_all_but(model, ("h_a",) + HYPERPRIOR_PARTS))
    cache = _cache(teacher, preset, data, run)

    def step_fn(step: int) -> dict:
        x, y, _ = cache.batch_at(step, preset.batch, run.seed)
        out = model.entropy_forward(y)
        return rd_loss({"x_hat": model.g_s(out["y_hat"]), "likelihoods": out["likelihoods"]}, x, lmbda)

    metrics = _loop("stage2 h_s+f_c", run, model, params, step_fn, preset, "stage2", aux, steps)
    return _finish(model, run, {"stage": "stage2", "preset": preset.name, "lmbda": lmbda, "last": metrics,
                                "teacher": str(teacher_path), "teacher_config_id": config_id(teacher.config)})


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
    return save_codec(model.eval(), out, {"stage": "combined", "stage1": str(stage1_path), "stage2": str(stage2_path)})
