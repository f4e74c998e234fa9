"""Window multi-head self-attention with a relative-position bias (Swin style, TCM's parameter layout).

Parameter names and shapes follow the official TCM code so its checkpoints load: ``embedding_layer``
(Linear C -> 3C, output laid out [q heads | k heads | v heads]), ``relative_position_params`` of shape
[heads, 2w-1, 2w-1] and ``linear`` (Linear C -> C). Inputs are channels-last (B, H, W, C); maps that
are not a multiple of the window are padded and cropped back.

Attention runs through ``F.scaled_dot_product_attention`` (a fused kernel where the backend has one) with
one additive ``attn_mask``: the relative-position bias plus, for shifted windows, -inf where a token pair
straddles the wrap-around seam. The gather index is computed once per window size, the seam mask once per
(window grid, device, dtype); with gradients off (inference) the combined mask is kept per module until its
parameters change.
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import flop_registry, register_flop_formula, sdpa_backward_flop_count, sdpa_flop_count

aten = torch.ops.aten

# torch's flop counter knows the CUDA attention kernels; teach it the CPU one SDPA picks, so a FlopCounterMode
# on real CPU tensors counts the two attention matmuls as the math path (and the meta-device counter) does
if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu") and \
        aten._scaled_dot_product_flash_attention_for_cpu not in flop_registry:
    @register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu)
    def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)

if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward") and \
        aten._scaled_dot_product_flash_attention_for_cpu_backward not in flop_registry:
    @register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu_backward)
    def _cpu_sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None,
                                **kwargs) -> int:
        return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


@lru_cache(maxsize=None)
def _relative_index(window: int) -> torch.Tensor:
    """(w*w, w*w) index into the flattened [2w-1, 2w-1] table: computed once per window size, on the CPU."""
    coords = torch.stack(torch.meshgrid(torch.arange(window, device="cpu"), torch.arange(window, device="cpu"),
                                        indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + window - 1  # (2, w*w, w*w)
    return rel[0] * (2 * window - 1) + rel[1]


def shift_seam(h_windows: int, w_windows: int, window: int, device=None) -> torch.Tensor:
    """True where a token pair straddles the wrap-around seam of the cyclic shift (last row/column of windows):
    (windows, w*w, w*w)."""
    s = window - window // 2
    mask = torch.zeros(h_windows, w_windows, window, window, window, window, dtype=torch.bool, device=device)
    mask[-1, :, :s, :, s:, :] = True
    mask[-1, :, s:, :, :s, :] = True
    mask[:, -1, :, :s, :, s:] = True
    mask[:, -1, :, s:, :, :s] = True
    return mask.reshape(h_windows * w_windows, window * window, window * window)


_SEAMS: dict = {}  # (h_windows, w_windows, window, device, dtype) -> additive mask (windows, 1, T, T)
_SEAMS_MAX = 64


def _tracing() -> bool:
    """Inside an exporter or a compiler: sizes may be symbolic, so masks are built from them, never cached."""
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling() or torch.jit.is_tracing()


def _additive_seam(h_windows: int, w_windows: int, window: int, device: torch.device, dtype) -> torch.Tensor:
    cache = device.type != "meta" and not _tracing()  # a meta tensor holds nothing worth keeping
    key = (h_windows, w_windows, window, str(device), dtype)
    mask = _SEAMS.get(key) if cache else None
    if mask is None:
        seam = shift_seam(h_windows, w_windows, window, device)
        mask = torch.zeros(seam.shape, dtype=dtype, device=device).masked_fill_(seam, float("-inf"))[:, None]
        if cache:
            if len(_SEAMS) >= _SEAMS_MAX:
                _SEAMS.pop(next(iter(_SEAMS)))
            _SEAMS[key] = mask
    return mask


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
        self._mask_memo: tuple = (None, None)  # (key, mask): the last inference mask

    def attn_mask(self, batch: int, h_windows: int, w_windows: int, dtype, device) -> torch.Tensor:
        """The additive mask for ``batch`` * windows attention rows: (1 or batch * windows, heads, T, T)."""
        table = self.relative_position_params
        memo = not torch.is_grad_enabled() and device.type != "meta" and not _tracing()
        key = (table._version, batch, h_windows, w_windows, dtype, str(device)) if memo else None
        if memo and self._mask_memo[0] == key:
            return self._mask_memo[1]
        mask = table.flatten(1)[:, self.relative_index].to(dtype)[None]  # (1, heads, T, T)
        if self.shifted:
            mask = mask + _additive_seam(h_windows, w_windows, self.window, device, dtype)  # (windows, heads, T, T)
            if _tracing() or batch != 1:  # an exported graph takes any batch (checked first: no guard on it)
                mask = mask.repeat(batch, 1, 1, 1)
        if memo:
            self._mask_memo = (key, mask)
        return mask

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
        tokens = x.reshape(b, nh, ws, nw, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b * nh * nw, ws * ws, c)
        qkv = self.embedding_layer(tokens).reshape(b * nh * nw, ws * ws, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (b * windows, heads, tokens, head_dim)
        mask = self.attn_mask(b, nh, nw, q.dtype, q.device)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        out = out.permute(0, 2, 1, 3).reshape(b * nh * nw, ws * ws, c)
        out = self.linear(out)
        out = out.reshape(b, nh, nw, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        if self.shifted:
            out = torch.roll(out, shifts=(ws // 2, ws // 2), dims=(1, 2))
        return out[:, :h, :w] if (ph or pw) else out
