"""Roofline pieces: a training step's MACs, the device's measured matmul rate, and timing that waits for the device.

- ``step_gmacs(config, part, crop, batch)``: forward + backward MACs of one training step of ``part``
  ("teacher", "stage1", "stage2"), from the exact counter at ``crop`` x ``crop``. Convention: the backward
  pass of a trained layer costs 2x its forward (gradients of the input and of the weights); a frozen layer
  the gradient passes through costs 1x (input gradient only); a frozen layer before every trained one, 0.
  teacher: 3 x everything; stage 1: 3 x g_s (y_hat from the latent cache); stage 2: 3 x (h_a + hyperprior
  path) + 2 x g_s (frozen, on the gradient path; y from the cache, so g_a does not run).
- ``matmul_tflops(device, dtype)``: dense GEMM rate measured here, in TFLOP/s (1 MAC = 2 FLOPs).
- ``time_steps(fn, steps, device)``: seconds per call of ``fn``, the device synchronised around each.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from space import CodecConfig

from .. import cuda

PARTS = ("teacher", "stage1", "stage2")


def step_gmacs(config: CodecConfig, part: str, crop: int, batch: int = 1) -> float:
    """Forward + backward GMACs of one training step (see the module docstring for the convention)."""
    from ..complexity import count

    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; choose one of {list(PARTS)}")
    c = count(config, (crop, crop), "exact").components
    if part == "teacher":
        macs = 3 * sum(v.macs for v in c.values())
    elif part == "stage1":
        macs = 3 * c["g_s"].macs
    else:
        macs = 3 * (c["h_a"].macs + c["hyperprior"].macs) + 2 * c["g_s"].macs
    return batch * macs / 1e9


def synchronize(device: torch.device | str) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        cuda.synchronize(device)


def time_steps(fn: Callable[[], object], steps: int, device: torch.device | str, warmup: int = 1) -> list:
    """Seconds of each of ``steps`` calls of ``fn`` after ``warmup`` untimed ones; the device is synchronised
    before and after each call, so asynchronous (CUDA) work is inside the call that queued it."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        out.append(time.perf_counter() - t0)
    return out


def matmul_tflops(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, n: int | None = None,
                  repeat: int = 5) -> float:
    """The best of ``repeat`` timed n x n @ n x n products, in TFLOP/s (default n: 4096 on CUDA, 1024 on CPU)."""
    device = torch.device(device)
    n = n or (4096 if device.type == "cuda" else 1024)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    calls = 10 if device.type == "cuda" else 1
    seconds = min(time_steps(lambda: [a @ b for _ in range(calls)], repeat, device, warmup=1)) / calls
    return 2 * n ** 3 / seconds / 1e12


def median_seconds(times: list, skip: int = 0) -> float:
    return statistics.median(times[skip:] or times)


__all__ = ["PARTS", "matmul_tflops", "median_seconds", "step_gmacs", "synchronize", "time_steps"]
