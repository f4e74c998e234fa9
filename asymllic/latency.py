"""Measured decode time of a decoder config on a target: what MACs stand in for.

The decoder side of decoding an image: the hyper-synthesis, the slice networks with their scale-table
indexes, and g_s, timed at one size (768x512 by default) on a device (``cpu`` with a thread count, or
``cuda`` timed with CUDA events), median of ``repeats`` runs after ``warmup``. Rounding stands in for
the rANS decoder, whose cost is the same for every candidate of a part (it codes the same latents);
weights are seeded and untrained, since time does not depend on their values.
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager

import torch
from space import HYPER_CHANNELS, LATENT_CHANNELS, CodecConfig

from .device import pick_device
from .models import LicCodec


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
    """The networks of ``LicCodec.decompress`` in its order, with rounding in place of the rANS decoder."""
    gc = model.gaussian_conditional
    means, scales = model.hyper_params(z_hat)
    slices: list = []
    for i, y_slice in enumerate(y.chunk(model.num_slices, 1)):
        mu, sigma, support = model.slice_params(i, means, scales, slices)
        gc.build_indexes(sigma)
        slices.append(model.refine(i, support, torch.round(y_slice - mu) + mu))
    return model.g_s(torch.cat(slices, 1)).clamp_(0, 1)


def decode_latency(config: CodecConfig, size: tuple = (768, 512), device: str = "cpu", threads: int | None = None,
                   repeats: int = 5, warmup: int = 1, seed: int = 0) -> dict:
    """{"decoder_ms": median, "decoder_ms_min", "decoder_ms_max", "latency_target"} at ``size`` = (width, height)."""
    dev = pick_device(device)
    pad = config.pad_multiple()
    w, h = (-(-s // pad) * pad for s in size)
    torch.manual_seed(seed)
    model = LicCodec(config).to(dev).eval()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    y = (torch.randn(1, LATENT_CHANNELS, h // 16, w // 16, generator=gen) * 4).to(dev)
    z_hat = torch.randn(1, HYPER_CHANNELS, h // 64, w // 64, generator=gen).round().to(dev)
    times = []
    with _threads(threads):
        for i in range(warmup + repeats):
            if dev.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                decode_networks(model, z_hat, y)
                end.record()
                torch.cuda.synchronize(dev)
                ms = start.elapsed_time(end)
            else:
                t0 = time.perf_counter()
                decode_networks(model, z_hat, y)
                ms = 1000 * (time.perf_counter() - t0)
            if i >= warmup:
                times.append(ms)
    target = f"{dev.type}" + (f" x{threads or torch.get_num_threads()} threads" if dev.type == "cpu" else "")
    return {"decoder_ms": statistics.median(times), "decoder_ms_min": min(times), "decoder_ms_max": max(times),
            "latency_target": target}
