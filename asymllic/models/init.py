"""Building a codec without paying for weight initialisation (meta models for counting)."""
from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode
from space import CodecConfig

from .codec import LicCodec


class _SkipRandomInit(TorchFunctionMode):
    """Skips the random in-place initialisers; the weights are garbage and only their shapes matter."""

    _SKIP = {torch.Tensor.uniform_, torch.Tensor.normal_}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self._SKIP:
            return args[0]
        return func(*args, **(kwargs or {}))


def meta_model(config: CodecConfig) -> LicCodec:
    """A ``LicCodec`` whose parameters live on the meta device: shapes only, no memory."""
    with _SkipRandomInit():
        model = LicCodec(config)
    return model.to("meta")
