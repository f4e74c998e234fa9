"""One training loop for every stage: Adam, a step-drop schedule, atomic checkpoints, resume, NaN guard.

A stage supplies ``step_fn(step) -> {"loss": tensor, "mse": ..., "bpp": ...}`` and the parameters it
trains; the loop owns optimisation, mixed precision (``step_fn`` runs under autocast; fp16 scales the loss
with a GradScaler), progress (samples/s, and peak memory on CUDA) and persistence. The state file holds the model's
trained parameters (and buffers), the optimisers and the step, and is written atomically every ``checkpoint_every``
steps: a killed run restarts from the last one, and a diverging run stops with the last good one kept.

A step never waits for the device: the metrics are summed where they are computed, and whether the loss and the
gradients are finite comes from one number per step, the gradients' total norm (which the clipping computes anyway:
it is non-finite exactly when a gradient is) together with the loss. The host reads these once per logged row:
every ``log_every`` steps, the first step of a run, the last one and every checkpoint. A divergence found there
stops the run with ``TrainingDiverged``, names the first bad step and puts the last checkpoint's weights back in
the model; no checkpoint is written after a bad step, since each one is preceded by that check.
``log.jsonl`` gets one line per logged row, flushed as it is written: the means over the steps it covers
(``steps``), ``step`` (the last of them) and ``seconds`` (wall time per step over the row).
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

from ..device import autocast, peak_memory
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
    log_every: int = 10  # steps per log.jsonl row (also the longest a divergence goes unnoticed)
    check: str = "deferred"  # "deferred": as above; "every_step": read every gradient and metric each step (slow)


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


def _grad_norm(params: list, clip: float) -> torch.Tensor:
    """The gradients' total 2-norm, one device tensor (clipping to ``clip`` on the way when it is set)."""
    if clip:
        return torch.nn.utils.clip_grad_norm_(params, clip)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _restore_last_good(spec: LoopSpec) -> None:
    """The last checkpoint's trained tensors back in the model (the steps after it may have written NaN)."""
    path = spec.run_dir / STATE_FILE
    if path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
        spec.model.load_state_dict(state["model"], strict=False)


class _Window:
    """What happened since the last logged row, kept on the device: sums of the step metrics, and the first
    non-finite step with its loss."""

    def __init__(self, device: torch.device):
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums: dict = {}
        self.steps = 0
        self.t0 = time.perf_counter()
        self.bad_step = self.bad_loss = None

    def add(self, step: int, out: dict, norm: torch.Tensor | None) -> None:
        for k, v in out.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.steps += 1
        loss = out["loss"].detach().float()
        bad = ~torch.isfinite(loss) if norm is None else ~torch.isfinite(loss + norm.float())
        first = self.bad_step is None
        # the first bad step of the window and its loss: where(no bad step yet and this one is bad, this one, kept)
        take = bad if first else bad & (self.bad_step < 0)
        here = torch.full((), step, device=loss.device, dtype=torch.long)
        self.bad_step = torch.where(take, here, torch.full_like(here, -1) if first else self.bad_step)
        self.bad_loss = torch.where(take, loss, loss if first else self.bad_loss)

    def read(self) -> tuple:
        """(means, first bad step or -1, its loss): one transfer from the device."""
        keys = list(self.sums)
        values = torch.stack([self.sums[k] for k in keys] + [self.bad_step.double(), self.bad_loss]).tolist()
        means = {k: v / self.steps for k, v in zip(keys, values)}
        return means, int(values[-2]), values[-1]


def run_loop(spec: LoopSpec) -> dict:
    """Train to ``spec.steps`` (resuming if a state exists); returns the last logged row's metrics."""
    from tqdm import tqdm

    if spec.check not in ("deferred", "every_step"):
        raise ValueError(f"LoopSpec.check: {spec.check!r} is not 'deferred' or 'every_step'")
    every_step = spec.check == "every_step"
    log_every = 1 if every_step else max(1, spec.log_every)
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    opt = torch.optim.Adam(spec.params, lr=spec.lr)
    aux_opt = torch.optim.Adam(spec.aux_params, lr=1e-3) if spec.aux_params else None
    scaler = torch.amp.GradScaler(spec.device.type, enabled=spec.precision == "fp16")
    start = _load_state(spec, opt, aux_opt, scaler)
    last_saved = start
    log = (spec.run_dir / "log.jsonl").open("a", buffering=1)  # line-buffered: ``tail -f`` sees each row
    metrics: dict = {}
    window = _Window(spec.device)
    spec.model.train()
    bar = tqdm(total=spec.steps, initial=start, desc=spec.name, disable=not spec.progress, dynamic_ncols=True)

    def diverged(what: str) -> TrainingDiverged:
        _restore_last_good(spec)
        return TrainingDiverged(f"{spec.name}: {what}; kept the last good checkpoint (step {last_saved}) in "
                                f"{spec.run_dir}")

    try:
        for step in range(start, spec.steps):
            for group in opt.param_groups:
                group["lr"] = spec.lr if step < spec.lr_drop_at else spec.lr_after
            with autocast(spec.device, spec.precision):
                out = spec.step_fn(step)
            loss = out["loss"]
            if every_step and not _finite(loss):
                raise diverged(f"loss is {loss.item()} at step {step}")
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            if every_step:
                grads = [p.grad for p in spec.params if p.grad is not None]
                if grads and not scaler.is_enabled() and not all(_finite(g) for g in grads):
                    raise diverged(f"non-finite gradient at step {step}")
            norm = _grad_norm(spec.params, spec.clip)
            scaler.step(opt)
            scaler.update()
            if aux_opt is not None:  # the entropy bottleneck's quantiles, always in fp32
                aux_opt.zero_grad(set_to_none=True)
                aux = spec.model.aux_loss()
                aux.backward()
                aux_opt.step()
            # fp16: an overflowing step is the scaler's to skip (it lowers the scale), not a divergence
            window.add(step, out, None if scaler.is_enabled() else norm)
            bar.update(1)
            done = step + 1
            checkpoint = done % spec.checkpoint_every == 0 or done == spec.steps
            if not (checkpoint or done - start == 1 or done % log_every == 0):
                continue
            means, bad_step, bad_loss = window.read()
            if bad_step >= 0:
                raise diverged(f"loss is {bad_loss} at step {bad_step}" if not math.isfinite(bad_loss)
                               else f"non-finite gradient at step {bad_step}")
            seconds = (time.perf_counter() - window.t0) / window.steps
            metrics = dict(means)
            if "mse" in metrics:  # of the mean MSE over the row's steps
                metrics["psnr"] = 10 * math.log10(1 / max(metrics["mse"], 1e-12))
            metrics.update(step=done, steps=window.steps, seconds=seconds,
                           samples_per_s=spec.batch / max(seconds, 1e-9))
            metrics.update(peak_memory(spec.device))
            log.write(json.dumps(metrics) + "\n")
            bar.set_postfix({k: f"{metrics[k]:.4g}" for k in ("loss", "psnr", "bpp", "samples_per_s", "peak_gib")
                             if k in metrics})
            if checkpoint:
                _save_state(spec, done, opt, aux_opt, scaler)
                last_saved = done
            window.reset()
    finally:
        bar.close()
        log.close()
    return metrics
