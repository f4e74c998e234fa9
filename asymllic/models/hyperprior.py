"""Hyperprior path built from a ``space.HyperpriorConfig``: h_mean_s, h_scale_s and the slice networks."""
from __future__ import annotations

import torch.nn as nn
from compressai.models.utils import conv
from space import HYPER_CHANNELS, LATENT_CHANNELS, HyperpriorConfig

from ..layers import SWAtten
from ..layers.factory import create_stage, create_upsampler
from ..layers.memo import build


def build_hyper_decoder(cfg: HyperpriorConfig) -> nn.Sequential:
    """RBU(192, hs_width) | hs_depth blocks | subpel(hs_width, M): TCM's h_mean_s / h_scale_s."""
    return nn.Sequential(
        create_upsampler("rbu", HYPER_CHANNELS, cfg.hs_width),
        *create_stage(cfg.hs_block, cfg.hs_depth, cfg.hs_width, cfg.hs_head_dim, cfg.hs_window, cfg.shift),
        create_upsampler("subpel", cfg.hs_width, LATENT_CHANNELS, final=True),
    )


def _conv_chain(cin: int, hidden: tuple, cout: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [conv(cin, width, stride=1, kernel_size=3), nn.GELU()]
        cin = width
    layers.append(conv(cin, cout, stride=1, kernel_size=3))
    return nn.Sequential(*layers)


def support_channels(cfg: HyperpriorConfig, index: int) -> int:
    return LATENT_CHANNELS + cfg.slice_channels * cfg.support_slices(index)


def _attention(cin: int, dim: int, head_dim: int, window: int, depth: int, res_units: int, shift: bool) -> nn.Module:
    return nn.Sequential(SWAtten(cin, dim, head_dim, window, depth, res_units, shift) if dim else nn.Identity())


def build_attention(cfg: HyperpriorConfig) -> nn.ModuleList:
    return nn.ModuleList(build(_attention, support_channels(cfg, i), cfg.attn_dim, cfg.attn_head_dim, cfg.attn_window,
                               cfg.attn_depth, cfg.attn_res_units, cfg.shift) for i in range(cfg.num_slices))


def build_slice_transforms(cfg: HyperpriorConfig, lrp: bool = False) -> nn.ModuleList:
    """Mean/scale chains map the support to one slice; LRP chains also see the y-hat slice."""
    extra = cfg.slice_channels if lrp else 0
    return nn.ModuleList(build(_conv_chain, support_channels(cfg, i) + extra, cfg.slice_hidden, cfg.slice_channels)
                         for i in range(cfg.num_slices))
