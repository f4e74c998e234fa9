"""The TCM encoder side: analysis transform g_a and hyper-analysis h_a (Liu, Sun, Katto, CVPR 2023)."""
from __future__ import annotations

import torch.nn as nn
from compressai.layers import ResidualBlockWithStride, conv3x3
from space import HYPER_CHANNELS, LATENT_CHANNELS

from ..layers.factory import create_stage

ENCODER_HEAD_DIMS = (8, 16, 32)
ENCODER_WINDOW = 8
HYPER_WINDOW = 4


def build_analysis(n: int) -> nn.Sequential:
    """g_a: RBWS(3, 2N) | 2 CTB (head 8) | RBWS | 2 CTB (16) | RBWS | 2 CTB (32) | conv3x3(2N, M, /2)."""
    layers: list[nn.Module] = [ResidualBlockWithStride(3, 2 * n, 2)]
    for i, head_dim in enumerate(ENCODER_HEAD_DIMS):
        layers += create_stage("convtrans", 2, 2 * n, head_dim, ENCODER_WINDOW, shift=True)
        layers.append(ResidualBlockWithStride(2 * n, 2 * n, 2) if i < 2 else conv3x3(2 * n, LATENT_CHANNELS, stride=2))
    return nn.Sequential(*layers)


def build_hyper_analysis(n: int) -> nn.Sequential:
    """h_a: RBWS(M, 2N) | 2 CTB (head 32, window 4) | conv3x3(2N, 192, /2)."""
    return nn.Sequential(
        ResidualBlockWithStride(LATENT_CHANNELS, 2 * n, 2),
        *create_stage("convtrans", 2, 2 * n, 32, HYPER_WINDOW, shift=True),
        conv3x3(2 * n, HYPER_CHANNELS, stride=2),
    )
