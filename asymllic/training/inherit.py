"""How a light part starts: from its own initialisation, or inheriting the teacher's weights.

.. code-block:: none

    none   every tensor of the light part keeps its (seeded) initialisation
    copy   a tensor whose name and shape match the teacher's is copied whole
    slice  a tensor whose name and rank match gets the teacher's overlapping block, as weight-sharing NAS
           inherits a supernet's weights: leading channels, centred kernel taps (and centred relative
           offsets of an attention bias table); a fused q|k|v projection is sliced per part

Everything outside the light part (the frozen encoder, h_a, the z prior) is the teacher's in every mode.
"""
from __future__ import annotations

import torch

from ..errors import AsymllicError
from ..options import INHERIT  # declared once, torch-free, for the command line too

FUSED = {"embedding_layer": 3}  # Linear C -> 3C laid out [q | k | v]: sliced as (3, C)


def check_mode(mode: str) -> str:
    """``mode`` if it is one of ``INHERIT``; otherwise one clear error."""
    if mode not in INHERIT:
        raise AsymllicError(f"unknown inherit mode {mode!r}; choose one of {', '.join(INHERIT)}")
    return mode


def _spatial_from(t: torch.Tensor, name: str) -> int:
    """First dimension that is spatial (centred when sliced): conv kernels (O, I, k, k), bias tables (heads, s, s)."""
    if t.dim() == 4:
        return 2
    if t.dim() == 3 and name.endswith("relative_position_params"):
        return 1
    return t.dim()


def _overlap(own: torch.Tensor, src: torch.Tensor, name: str) -> tuple:
    """Index tuples of the block both tensors share: leading along channels, centred along space."""
    first = _spatial_from(own, name)
    a, b = [], []
    for d, (n_own, n_src) in enumerate(zip(own.shape, src.shape)):
        n = min(n_own, n_src)
        o_own, o_src = ((n_own - n) // 2, (n_src - n) // 2) if d >= first else (0, 0)
        a.append(slice(o_own, o_own + n))
        b.append(slice(o_src, o_src + n))
    return tuple(a), tuple(b)


def _copy_block(own: torch.Tensor, src: torch.Tensor, name: str) -> int:
    a, b = _overlap(own, src, name)
    own[a] = src[b].to(own.dtype)
    return own[a].numel()


@torch.no_grad()
def slice_into(own: torch.Tensor, src: torch.Tensor, name: str) -> int:
    """Copy the teacher's overlapping block of ``src`` into ``own`` in place; returns the elements copied."""
    parts = FUSED.get(name.rsplit(".", 2)[-2] if name.count(".") >= 2 else "", 1)
    if parts > 1 and own.shape[0] % parts == 0 and src.shape[0] % parts == 0:
        own_v = own.view(parts, own.shape[0] // parts, *own.shape[1:])
        src_v = src.view(parts, src.shape[0] // parts, *src.shape[1:])
        return sum(_copy_block(own_v[i], src_v[i], name) for i in range(parts))
    return _copy_block(own, src, name)


def inherit(model: torch.nn.Module, source: torch.nn.Module, light: tuple, mode: str) -> dict:
    """Load ``source``'s weights into ``model``: all of them outside the modules named in ``light``, and inside
    them as ``mode`` says. Returns ``{"mode", "tensors", "share"}``: tensors of the light part that inherited
    something and the share of its parameter elements that came from the teacher."""
    check_mode(mode)
    own, src = model.state_dict(), source.state_dict()

    def is_light(key: str) -> bool:
        return key.split(".", 1)[0] in light

    whole = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape
             and (not is_light(k) or mode != "none")}
    torch.nn.Module.load_state_dict(model, whole, strict=False)  # CompressAI's override wants every table
    params = dict(model.named_parameters())
    light_params = {k: p for k, p in params.items() if is_light(k)}
    done = {k: p.numel() for k, p in light_params.items() if k in whole}
    if mode == "slice":
        for k, p in light_params.items():
            if k not in done and k in src and src[k].dim() == p.dim() and p.dim() > 0:
                done[k] = slice_into(p.data, src[k], k)
    total = sum(p.numel() for p in light_params.values())
    return {"mode": mode, "tensors": len(done), "share": sum(done.values()) / total if total else 0.0}
