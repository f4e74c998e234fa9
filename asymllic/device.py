"""Where and in what precision the networks run.

``--device auto|cpu|cuda|cuda:N`` (auto: CUDA when present) and ``--precision auto|fp32|bf16|fp16`` (auto:
bf16 on CUDA, fp32 on the CPU). Mixed precision is autocast around the networks; the entropy models
(likelihoods, the rate term, scale-table indexes) run in fp32 inside it, and compress/decompress never
use autocast, so what must be bit-exact stays fp32.
"""
from __future__ import annotations

import contextlib
import os

import torch

from . import cuda
from .errors import AsymllicError
from .options import PRECISIONS  # declared once, torch-free, for the command line too

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceError(AsymllicError):
    """A device asked for that this machine does not have."""


def pick_device(name: str = "auto") -> torch.device:
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if cuda.available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not cuda.available():
            raise DeviceError(f"--device {name} asked for CUDA, but this machine has no CUDA device "
                              "(torch.cuda.is_available() is False); use --device cpu or auto")
        if device.index is not None and device.index >= cuda.count():
            raise DeviceError(f"--device {name}: this machine has {cuda.count()} CUDA device(s), "
                              f"cuda:0 to cuda:{cuda.count() - 1}")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    return device


def with_index(device: torch.device) -> torch.device:
    """``cuda`` -> ``cuda:<current device>``: what setting the device, CUDA events and memory figures need."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", cuda.current())
    return device


def worker_device(name: str, worker: int) -> torch.device:
    """Worker ``i`` of a search on ``cuda`` (no index) with n GPUs uses ``cuda:(i mod n)``."""
    device = pick_device(name)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", worker % cuda.count())
    return device


def pick_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise AsymllicError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise AsymllicError("--precision fp16 needs CUDA (the CPU has no fp16 autocast worth using); use bf16 or fp32")
    return precision


def autocast(device: torch.device | str, precision: str):
    """Autocast to ``precision`` on ``device`` (a no-op context for fp32)."""
    device = torch.device(device)
    if precision in ("fp32", "auto", None) or precision not in DTYPES:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def fp32(device: torch.device | str):
    """Leave autocast for a block that must run in fp32 (the entropy models); a no-op outside autocast."""
    kind = torch.device(device).type
    if kind not in ("cpu", "cuda") or not torch.is_autocast_enabled(kind):
        return contextlib.nullcontext()
    return torch.autocast(kind, enabled=False)


def prepare(device: torch.device) -> torch.device:
    """Per-process habits for training on ``device`` (returned with its index): cuDNN picks its fastest kernels
    for the fixed crop size, and TF32 matmuls are allowed for training (coding turns them off: ``exact_kernels``)."""
    device = with_index(torch.device(device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        cuda.use(device)
    return device


@contextlib.contextmanager
def exact_kernels():
    """Reproducible kernels for a block whose results must agree between runs (coding, timed evaluation): no TF32,
    no cuDNN autotuning, cuDNN's deterministic algorithms. CPU kernels are deterministic already. Restores the
    previous settings."""
    cudnn = torch.backends.cudnn
    saved = (torch.backends.cuda.matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark, cudnn.deterministic)
    torch.backends.cuda.matmul.allow_tf32 = cudnn.allow_tf32 = cudnn.benchmark = False
    cudnn.deterministic = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark, cudnn.deterministic = saved


def tf32_state() -> dict:
    """What a GPU report states about TF32 (matmul and cuDNN) right now."""
    return {"matmul_tf32": torch.backends.cuda.matmul.allow_tf32, "cudnn_tf32": torch.backends.cudnn.allow_tf32,
            "float32_matmul_precision": torch.get_float32_matmul_precision()}


def peak_memory(device: torch.device) -> dict:
    """This process's peak device memory since ``reset_peak_memory`` (allocated and reserved GiB); {} off CUDA."""
    return cuda.peak_gib(with_index(device)) if device.type == "cuda" else {}


def cpu_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def is_out_of_memory(e: BaseException) -> bool:
    """A device allocation failed: maybe this work's size, maybe another process on the same GPU."""
    return isinstance(e, cuda.OutOfMemoryError) or (isinstance(e, RuntimeError) and "out of memory" in str(e))


def is_device_fault(e: BaseException) -> bool:
    """A CUDA error that leaves the process's CUDA context unusable (an illegal access, a device-side assert):
    every later kernel of this process fails too, so the process must stop rather than go on to other work."""
    accelerator = getattr(torch, "AcceleratorError", ())
    return (isinstance(e, accelerator) or (isinstance(e, RuntimeError) and "CUDA error" in str(e))) \
        and not is_out_of_memory(e)


def release_memory() -> None:
    """Give cached device memory back (after an out-of-memory error, before one retry)."""
    cuda.release_cache()


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak for ``peak_memory`` (per process: each search worker reports its own)."""
    if device.type == "cuda":
        cuda.reset_peak(with_index(device))
