"""GDN kept in fp32 under autocast: its ``x^2`` overflows fp16 (max 65504) once |x| > 255."""
from __future__ import annotations

import torch
import torch.nn as nn
from compressai.layers import GDN

from ..device import fp32


class Fp32GDN(GDN):
    """CompressAI's GDN/IGDN (same parameters and keys), computed in fp32 whatever the autocast precision."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with fp32(x.device):
            return super().forward(x.float())


def fp32_gdn(module: nn.Module) -> nn.Module:
    """Every GDN inside ``module`` (CompressAI's residual blocks build their own) made an ``Fp32GDN`` in place."""
    for m in module.modules():
        if type(m) is GDN:
            m.__class__ = Fp32GDN
    return module
