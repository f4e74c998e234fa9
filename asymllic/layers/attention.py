"""SWAtten: CompressAI's attention block with a window-transformer non-local branch (TCM's context model)."""
from __future__ import annotations

import torch
import torch.nn as nn
from compressai.layers import conv1x1, conv3x3

from .transformer import SwinStack


class ResidualUnit(nn.Module):
    """Bottleneck residual unit (1x1 -> 3x3 -> 1x1 at half width), as in CompressAI's AttentionBlock."""

    def __init__(self, n: int):
        super().__init__()
        self.conv = nn.Sequential(conv1x1(n, n // 2), nn.ReLU(inplace=True), conv3x3(n // 2, n // 2),
                                  nn.ReLU(inplace=True), conv1x1(n // 2, n))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x) + x)


class SWAtten(nn.Module):
    """x -> in_conv -> [conv_a(x) * sigmoid(conv_b(window attention(x)))] + x -> out_conv."""

    def __init__(self, in_dim: int, inter_dim: int, head_dim: int, window: int, depth: int = 2,
                 res_units: int = 3, shift: bool = True):
        super().__init__()
        self.conv_a = nn.Sequential(*[ResidualUnit(inter_dim) for _ in range(res_units)])
        self.conv_b = nn.Sequential(*[ResidualUnit(inter_dim) for _ in range(res_units)], conv1x1(inter_dim, inter_dim))
        self.non_local_block = SwinStack(inter_dim, head_dim, window, depth, shift)
        self.in_conv = conv1x1(in_dim, inter_dim)
        self.out_conv = conv1x1(inter_dim, in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.in_conv(x)
        z = self.non_local_block(x)
        out = self.conv_a(x) * torch.sigmoid(self.conv_b(z)) + x
        return self.out_conv(out)
