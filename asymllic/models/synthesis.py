"""Synthesis decoder g_s built from a ``space.SynthesisConfig``."""
from __future__ import annotations

import torch.nn as nn
from space import SynthesisConfig

from ..layers.factory import create_stage, create_upsampler


def build_synthesis(cfg: SynthesisConfig, latent_channels: int = 320) -> nn.Sequential:
    """Flat ``nn.Sequential`` [up0, blocks0..., up1, blocks1..., up2, blocks2..., up3]: TCM's key layout."""
    layers: list[nn.Module] = []
    cin = latent_channels
    for i, (width, depth) in enumerate(zip(cfg.widths, cfg.depths)):
        layers.append(create_upsampler(cfg.upsamplers[i], cin, width))
        layers += create_stage(cfg.block, depth, width, cfg.head_dims[i], cfg.window, cfg.shift, cfg.mlp_ratio)
        cin = width
    layers.append(create_upsampler(cfg.upsamplers[-1], cin, 3, final=True))
    return nn.Sequential(*layers)
