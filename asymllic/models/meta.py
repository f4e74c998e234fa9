"""Building a codec without allocating or initialising its weights (meta models for counting), or without
drawing random initial weights (a model whose weights are about to be loaded)."""
from __future__ import annotations

from contextlib import nullcontext

import torch
from space import CodecConfig
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors
from torch.utils._pytree import tree_map

from ..layers.memo import memo_active
from .lic import LicCodec, build_part


def _to_meta(value):
    return value.to("meta") if isinstance(value, torch.Tensor) and not value.is_meta else value


# random draws only: deterministic constants (fills, scalings) are computed as usual
_RANDOM_INIT = {torch.Tensor.uniform_, torch.Tensor.normal_, torch.nn.init.kaiming_uniform_, torch.nn.init.uniform_,
                torch.nn.init.normal_, torch.nn.init.trunc_normal_}


class _NoRandomInit(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _RANDOM_INIT:
            return args[0] if args else next(iter(kwargs.values()))
        return func(*args, **kwargs)


def model_to_load(config: CodecConfig) -> LicCodec:
    """A ``LicCodec`` built without its random initial draws (their memory left as allocated): only for a model
    whose every parameter and persistent buffer a strict load overwrites next. Deterministic constants
    (non-persistent buffers, fills) are computed as in a normal build. About 3x faster to build."""
    with _NoRandomInit():
        return LicCodec(config)


class _MetaBuild(TorchFunctionMode):
    """Construction on the meta device: tensor factories default to meta (as under ``torch.device("meta")``,
    without a second mode on every call), initialisers are skipped (only shapes matter: in-place fills and
    random draws change no shape) and the few CPU constants CompressAI creates with the legacy
    ``torch.Tensor([...])`` constructor (GDN pedestals, lower bounds) are moved to meta when they meet a
    meta tensor."""

    _SKIP = _RANDOM_INIT | {torch.Tensor.erfinv_, torch.Tensor.mul_, torch.Tensor.add_, torch.Tensor.clamp_,
                            torch.Tensor.fill_, torch.Tensor.zero_, torch.nn.init.constant_}

    _CONSTRUCTORS = frozenset(_device_constructors())

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self._SKIP:
            return args[0] if args else next(iter(kwargs.values()))
        kwargs = kwargs or {}
        if func in self._CONSTRUCTORS and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        if len(args) + len(kwargs) > 1:  # where a meta tensor may meet a CPU one
            tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
            if len(tensors) > 1 and any(t.is_meta for t in tensors) and not all(t.is_meta for t in tensors):
                args, kwargs = tree_map(_to_meta, args), tree_map(_to_meta, kwargs)
        return func(*args, **kwargs)


def _to_meta_in_place(module: torch.nn.Module) -> None:
    """Move what legacy ``torch.Tensor(...)`` constructors left on the CPU to meta (``Module.to`` without its
    per-tensor bookkeeping)."""
    for m in module.modules():
        for name, param in m._parameters.items():
            if param is not None and not param.is_meta:
                m._parameters[name] = torch.nn.Parameter(param.to("meta"), param.requires_grad)
        for name, buffer in m._buffers.items():
            if buffer is not None and not buffer.is_meta:
                m._buffers[name] = buffer.to("meta")


def meta_model(config: CodecConfig, memo: dict | None = None) -> LicCodec:
    """A ``LicCodec`` whose parameters live on the meta device: shapes only, nothing allocated.

    ``memo``: a dict of meta parts (see ``codec_parts``) and blocks (see ``asymllic.layers.memo``) built before,
    which this model takes what it can from and adds what it builds to. Models built with one memo share their
    part objects: for uses that only read them (counting)."""

    def build(name: str, builder, arguments: tuple):
        key = ("part", name, builder, arguments)
        part = memo.get(key) if memo is not None else None
        if part is None:
            with _MetaBuild(), memo_active(memo) if memo is not None else nullcontext():
                part = build_part(name, builder, arguments)
            _to_meta_in_place(part)
            if memo is not None:
                memo[key] = part.eval()  # (a kept part is only ever counted)
        return part

    return LicCodec(config, build=build)
