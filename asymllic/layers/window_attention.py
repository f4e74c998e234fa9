"""Window multi-head self-attention with a relative-position bias (Swin style, TCM's parameter layout).

Parameter names and shapes follow the official TCM code so its checkpoints load: ``embedding_layer``
(Linear C -> 3C, output laid out [q heads | k heads | v heads]), ``relative_position_params`` of shape
[heads, 2w-1, 2w-1] and ``linear`` (Linear C -> C). Inputs are channels-last (B, H, W, C); maps that
are not a multiple of the window are padded and cropped back.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _relative_index(window: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + window - 1  # (2, w*w, w*w)
    return rel[0] * (2 * window - 1) + rel[1]


def _shift_mask(h_windows: int, w_windows: int, window: int, device) -> torch.Tensor:
    """True where a token pair straddles the wrap-around seam of the cyclic shift (last row/column of windows)."""
    s = window - window // 2
    mask = torch.zeros(h_windows, w_windows, window, window, window, window, dtype=torch.bool, device=device)
    mask[-1, :, :s, :, s:, :] = True
    mask[-1, :, s:, :, :s, :] = True
    mask[:, -1, :, :s, :, s:] = True
    mask[:, -1, :, s:, :, :s] = True
    return mask.reshape(h_windows * w_windows, window * window, window * window)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, head_dim: int, window: int, shifted: bool = False):
        super().__init__()
        self.dim, self.head_dim, self.window, self.shifted = dim, head_dim, window, shifted
        self.heads = dim // head_dim
        self.scale = head_dim ** -0.5
        self.embedding_layer = nn.Linear(dim, 3 * dim)
        self.relative_position_params = nn.Parameter(torch.zeros(self.heads, 2 * window - 1, 2 * window - 1))
        nn.init.trunc_normal_(self.relative_position_params, std=0.02)
        self.linear = nn.Linear(dim, dim)
        self.register_buffer("relative_index", _relative_index(window), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        ws = self.window
        ph, pw = (-h) % ws, (-w) % ws
        if ph or pw:
            x = F.pad(x, (0, 0, 0, pw, 0, ph))
        hp, wp = h + ph, w + pw
        if self.shifted:
            x = torch.roll(x, shifts=(-(ws // 2), -(ws // 2)), dims=(1, 2))
        nh, nw = hp // ws, wp // ws
        tokens = x.reshape(b, nh, ws, nw, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, nh * nw, ws * ws, c)
        qkv = self.embedding_layer(tokens).reshape(b, nh * nw, ws * ws, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(3, 0, 4, 1, 2, 5)  # each (b, heads, windows, tokens, head_dim)
        sim = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        bias = self.relative_position_params.flatten(1)[:, self.relative_index]  # (heads, tokens, tokens)
        sim = sim + bias[:, None]
        if self.shifted:
            sim = sim.masked_fill(_shift_mask(nh, nw, ws, x.device), float("-inf"))
        out = torch.matmul(sim.softmax(dim=-1), v)  # (b, heads, windows, tokens, head_dim)
        out = out.permute(0, 2, 3, 1, 4).reshape(b, nh * nw, ws * ws, c)
        out = self.linear(out)
        out = out.reshape(b, nh, nw, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        if self.shifted:
            out = torch.roll(out, shifts=(ws // 2, ws // 2), dims=(1, 2))
        return out[:, :h, :w] if (ph or pw) else out
