"""Measured decode time of a decoder config on a target: what MACs stand in for.

The decoder side of decoding an image as ``asymllic.codec.coding.decompress`` runs it: the hyper-synthesis and the
slice networks with their scale-table indexes (built by ``update()``: without tables there are no indexes to
build) on the CPU, where decoding computes them, and g_s on the target device. Timed at one size (768x512 by
default) on a device (``cpu`` with a thread count, or ``cuda`` timed with CUDA events on that device), median
of ``repeats`` runs after ``warmup``, with reproducible kernels (no cuDNN autotuning inside the timing).
Rounding stands in for the rANS decoder, whose cost is the same for every candidate of a part (it codes the
same latents); weights are seeded and untrained, since time does not depend on their values.
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager

import torch
from space import HYPER_CHANNELS, LATENT_CHANNELS, CodecConfig

from .. import cuda
from ..codec.coding import entropy_model
from ..device import exact_kernels, pick_device, with_index
from ..models import LicCodec
from ..options import DEFAULT_SEED


@contextmanager
def _threads(n: int | None):
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@torch.no_grad()
def decode_networks(model: LicCodec, z_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The networks of ``LicCodec.decompress`` on the devices decoding uses, rounding in place of the rANS decoder."""
    entropy = entropy_model(model)
    y_chunks = y.chunk(model.num_slices, 1)
    y_hat = entropy.latent_slices(z_hat, lambda i, mu, index: torch.round(y_chunks[i] - mu))
    return model.g_s(y_hat.to(next(model.g_s.parameters()).device)).clamp_(0, 1)


def _timed(fn, device: torch.device) -> float:
    """Milliseconds of ``fn()``: CUDA events on ``device`` itself (not the current one), or the wall clock."""
    if device.type != "cuda":
        t0 = time.perf_counter()
        fn()
        return 1000 * (time.perf_counter() - t0)
    return cuda.elapsed_ms(fn, device)


def decode_latency(config: CodecConfig, size: tuple = (768, 512), device: str = "cpu", threads: int | None = None,
                   repeats: int = 5, warmup: int = 1, seed: int = DEFAULT_SEED) -> dict:
    """{"decoder_ms": median, "decoder_ms_min", "decoder_ms_max", "latency_target"} at ``size`` = (width, height)."""
    dev = with_index(pick_device(device))
    pad = config.pad_multiple()
    w, h = (-(-s // pad) * pad for s in size)
    torch.manual_seed(seed)
    model = LicCodec(config).eval()
    model.update(force=True)  # the scale table the indexes are built from, as in every coded model
    model = model.to(dev)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    y = torch.randn(1, LATENT_CHANNELS, h // 16, w // 16, generator=gen) * 4  # the CPU side, as decoding
    z_hat = torch.randn(1, HYPER_CHANNELS, h // 64, w // 64, generator=gen).round()
    times = []
    with _threads(threads), exact_kernels():
        for i in range(warmup + repeats):
            ms = _timed(lambda: decode_networks(model, z_hat, y), dev)
            if i >= warmup:
                times.append(ms)
    target = f"{dev.type}" + (f" x{threads or torch.get_num_threads()} threads" if dev.type == "cpu" else
                              f" ({cuda.name(dev)}; entropy path on the CPU)")
    return {"decoder_ms": statistics.median(times), "decoder_ms_min": min(times), "decoder_ms_max": max(times),
            "latency_target": target}
