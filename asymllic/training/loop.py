"""One training loop for every stage: Adam, a step-drop schedule, atomic checkpoints, resume, NaN guard.

A stage supplies ``step_fn(step) -> {"loss": tensor, "mse": ..., "bpp": ...}`` and the parameters it
trains; the loop owns optimisation, mixed precision (``step_fn`` runs under autocast; fp16 scales the loss
with a GradScaler), progress (samples/s, and peak memory on CUDA) and persistence. The state file holds the model's
trained parameters (and buffers), the optimisers and the step, and is written atomically every ``checkpoint_every``
steps: a killed run restarts from the last one, and a diverging run stops with the last good one kept.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from ..device import autocast, peak_memory_gib
from ..errors import AsymllicError
from ..files import save_torch

STATE_FILE = "train_state.pt"


class TrainingDiverged(AsymllicError):
    """The loss or a gradient became NaN or infinite."""


@dataclass
class LoopSpec:
    name: str
    run_dir: Path
    model: nn.Module
    params: list  # trained by Adam
    step_fn: Callable[[int], dict]
    steps: int
    lr: float
    lr_drop_at: int
    lr_after: float
    checkpoint_every: int
    aux_params: list = field(default_factory=list)  # entropy-bottleneck quantiles (aux loss)
    clip: float = 1.0
    progress: bool = True
    device: torch.device = torch.device("cpu")
    precision: str = "fp32"
    batch: int = 1  # samples per step, for the throughput figure


def _trained_state(spec: LoopSpec) -> dict:
    """What the loop changes: the trained parameters and every buffer (the frozen rest is rebuilt on resume)."""
    trained = {id(p) for p in (*spec.params, *spec.aux_params)}
    return {k: v.detach() for k, v in spec.model.state_dict(keep_vars=True).items()
            if id(v) in trained or not isinstance(v, nn.Parameter)}


def _cpu(obj):
    """Tensors of a nested state moved to the CPU: a state written on a GPU resumes anywhere."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj


def _save_state(spec: LoopSpec, step: int, opt, aux_opt, scaler) -> Path:
    return save_torch(_cpu({"step": step, "model": _trained_state(spec), "opt": opt.state_dict(),
                            "aux_opt": aux_opt.state_dict() if aux_opt else None,
                            "scaler": scaler.state_dict() if scaler.is_enabled() else None}), spec.run_dir / STATE_FILE)


def _load_state(spec: LoopSpec, opt, aux_opt, scaler) -> int:
    path = spec.run_dir / STATE_FILE
    if not path.exists():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=True)
    expected = _trained_state(spec)
    if set(state["model"]) != set(expected):
        raise AsymllicError(f"{path} is the state of another run (its trained tensors differ); "
                            "delete it or use another run folder")
    spec.model.load_state_dict(state["model"], strict=False)
    opt.load_state_dict(state["opt"])
    if aux_opt is not None and state.get("aux_opt"):
        aux_opt.load_state_dict(state["aux_opt"])
    if scaler.is_enabled() and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    return int(state["step"])


def _finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


def run_loop(spec: LoopSpec) -> dict:
    """Train to ``spec.steps`` (resuming if a state exists); returns the last step's metrics."""
    from tqdm import tqdm

    spec.run_dir.mkdir(parents=True, exist_ok=True)
    opt = torch.optim.Adam(spec.params, lr=spec.lr)
    aux_opt = torch.optim.Adam(spec.aux_params, lr=1e-3) if spec.aux_params else None
    scaler = torch.amp.GradScaler(spec.device.type, enabled=spec.precision == "fp16")
    start = _load_state(spec, opt, aux_opt, scaler)
    last_saved = start
    log = (spec.run_dir / "log.jsonl").open("a")
    metrics: dict = {}
    spec.model.train()
    bar = tqdm(total=spec.steps, initial=start, desc=spec.name, disable=not spec.progress, dynamic_ncols=True)
    try:
        for step in range(start, spec.steps):
            for group in opt.param_groups:
                group["lr"] = spec.lr if step < spec.lr_drop_at else spec.lr_after
            t0 = time.perf_counter()
            with autocast(spec.device, spec.precision):
                out = spec.step_fn(step)
            loss = out["loss"]
            if not _finite(loss):
                raise TrainingDiverged(f"{spec.name}: loss is {loss.item()} at step {step}; "
                                       f"kept the last good checkpoint (step {last_saved}) in {spec.run_dir}")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            grads = [p.grad for p in spec.params if p.grad is not None]
            # fp16: an overflowing step is the scaler's to skip (it lowers the scale), not a divergence
            if grads and not scaler.is_enabled() and not all(_finite(g) for g in grads):
                raise TrainingDiverged(f"{spec.name}: non-finite gradient at step {step}; "
                                       f"kept the last good checkpoint (step {last_saved}) in {spec.run_dir}")
            if spec.clip:
                torch.nn.utils.clip_grad_norm_(spec.params, spec.clip)
            scaler.step(opt)
            scaler.update()
            if aux_opt is not None:  # the entropy bottleneck's quantiles, always in fp32
                aux_opt.zero_grad(set_to_none=True)
                aux = spec.model.aux_loss()
                aux.backward()
                aux_opt.step()
            metrics = {k: float(v.detach()) for k, v in out.items()}
            if "mse" in metrics:
                metrics["psnr"] = 10 * math.log10(1 / max(metrics["mse"], 1e-12))
            seconds = time.perf_counter() - t0
            metrics["step"], metrics["seconds"] = step + 1, seconds
            metrics["samples_per_s"] = spec.batch / max(seconds, 1e-9)
            peak = peak_memory_gib(spec.device)
            if peak is not None:
                metrics["peak_gib"] = peak
            log.write(json.dumps(metrics) + "\n")
            bar.set_postfix({k: f"{metrics[k]:.4g}" for k in ("loss", "psnr", "bpp", "samples_per_s", "peak_gib")
                             if k in metrics})
            bar.update(1)
            if (step + 1) % spec.checkpoint_every == 0 or step + 1 == spec.steps:
                _save_state(spec, step + 1, opt, aux_opt, scaler)
                last_saved = step + 1
    finally:
        bar.close()
        log.close()
    return metrics
