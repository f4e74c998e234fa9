"""Transformer blocks built on window attention: the channels-last core block and its wrappers.

- ``TransformerBlock``: pre-norm window-MSA + MLP on (B, H, W, C) (TCM's ``Block``).
- ``WindowTransformerBlock`` ('wtb'): one TransformerBlock on a (B, C, H, W) map (the paper's WTB).
- ``ConvTransBlock`` ('convtrans'): TCM's mixed block, a residual conv half and a transformer half.
- ``SwinStack``: TransformerBlocks ``block_1 .. block_n`` on (B, C, H, W) (SWAtten's non-local branch).
"""
from __future__ import annotations

import torch
import torch.nn as nn
from compressai.layers import ResidualBlock

from .window_attention import WindowAttention


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, head_dim: int, window: int, shifted: bool = False, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(round(dim * mlp_ratio))
        self.ln1 = nn.LayerNorm(dim)
        self.msa = WindowAttention(dim, head_dim, window, shifted)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.msa(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class WindowTransformerBlock(nn.Module):
    def __init__(self, dim: int, head_dim: int, window: int, shifted: bool = False, mlp_ratio: float = 4.0):
        super().__init__()
        self.trans_block = TransformerBlock(dim, head_dim, window, shifted, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trans_block(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvTransBlock(nn.Module):
    """TCM's block on 2 * half channels: 1x1 conv, split [conv | transformer], 1x1 conv, plus the input."""

    def __init__(self, half: int, head_dim: int, window: int, shifted: bool = False, mlp_ratio: float = 4.0):
        super().__init__()
        self.half = half
        self.trans_block = TransformerBlock(half, head_dim, window, shifted, mlp_ratio)
        self.conv1_1 = nn.Conv2d(2 * half, 2 * half, 1)
        self.conv1_2 = nn.Conv2d(2 * half, 2 * half, 1)
        self.conv_block = ResidualBlock(half, half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv_x, trans_x = torch.split(self.conv1_1(x), (self.half, self.half), dim=1)
        conv_x = self.conv_block(conv_x) + conv_x
        trans_x = self.trans_block(trans_x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.conv1_2(torch.cat((conv_x, trans_x), dim=1))


class SwinStack(nn.Module):
    def __init__(self, dim: int, head_dim: int, window: int, depth: int = 2, shift: bool = True):
        super().__init__()
        self.depth = depth
        for i in range(depth):
            self.add_module(f"block_{i + 1}", TransformerBlock(dim, head_dim, window, shifted=shift and i % 2 == 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        for i in range(self.depth):
            x = getattr(self, f"block_{i + 1}")(x)
        return x.permute(0, 3, 1, 2)
