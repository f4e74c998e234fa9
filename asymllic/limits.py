"""Refusing work a machine cannot do: a codec's MACs and memory at a given size are counted on the meta
device (nothing allocated) and compared with limits before any weight or image tensor exists."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from space import CodecConfig

from .complexity import ComplexityReport, count
from .errors import LimitError

# Tracked tensors miss library scratch space (convolution workspaces, allocator slack). Measured on this
# CPU: RSS grew 920 MiB for 702 MiB of tracked activations (teacher, 768x512); 1.5x covers it.
SCRATCH_MARGIN = 1.5
GIB = 2**30


@dataclass(frozen=True)
class Limits:
    max_gmacs: float | None = None  # None: no MAC limit
    max_memory_gb: float | None = None  # None: the memory the device has available now


def available_memory(device: str | torch.device = "cpu") -> int:
    device = torch.device(device)
    if device.type == "cuda":
        from . import cuda

        return cuda.free_memory(device)
    import psutil

    return psutil.virtual_memory().available


def check(config: CodecConfig, size: tuple, limits: Limits = Limits(), device: str | torch.device = "cpu",
          what: str = "this codec", decoding: bool = False) -> ComplexityReport:
    """Count ``config`` at ``size`` = (width, height) and raise LimitError if it is over a limit. MACs are
    the decoder's when ``decoding``, else the whole codec's; memory is the round trip's (an upper bound
    for decoding alone)."""
    width, height = size
    pad = config.pad_multiple()  # the codec works on the padded image
    report = count(config, (-(-width // pad) * pad, -(-height // pad) * pad), "exact")
    gmacs = (report.decoder if decoding else report.total).macs / 1e9
    if limits.max_gmacs is not None and gmacs > limits.max_gmacs:
        raise LimitError(f"refused: {what} needs {gmacs:.1f} GMACs for a {width}x{height} image, over the "
                         f"limit of {limits.max_gmacs:g} GMACs (--max-gmacs)")
    need = SCRATCH_MARGIN * report.memory_bytes
    if limits.max_memory_gb is not None:
        have, where = limits.max_memory_gb * GIB, "the limit (--max-memory)"
    else:
        have, where = available_memory(device), f"what {torch.device(device).type} memory has available"
    if need > have:
        raise LimitError(f"refused: {what} needs about {need / GIB:.1f} GiB for a {width}x{height} image "
                         f"({gmacs:.0f} GMACs), more than {have / GIB:.1f} GiB, {where}")
    return report


__all__ = ["GIB", "LimitError", "Limits", "SCRATCH_MARGIN", "available_memory", "check"]
