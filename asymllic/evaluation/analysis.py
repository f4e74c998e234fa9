"""Analyses of a decoder beyond counting: the effective receptive field of g_s (paper Fig. 3c/3d)."""
from __future__ import annotations

import numpy as np
import torch
from space import LATENT_CHANNELS

from ..models import LicCodec
from ..options import DEFAULT_SEED


def effective_receptive_field(model: LicCodec, latent_hw: tuple = (16, 16), samples: int = 4, seed: int = DEFAULT_SEED) -> np.ndarray:
    """|d x_hat[centre] / d y_hat|, summed over channels and averaged over random latents: (h, w), max 1.

    The centre output pixel's gradient with respect to every latent position shows how far g_s
    gathers information; shifted windows and deeper stages widen it.
    """
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    h, w = latent_hw
    acc = torch.zeros(h, w)
    was_training = model.training
    model.eval()
    for _ in range(samples):
        y_hat = torch.randn(1, LATENT_CHANNELS, h, w, generator=gen).to(device).requires_grad_(True)
        x_hat = model.g_s(y_hat)
        cy, cx = x_hat.shape[-2] // 2, x_hat.shape[-1] // 2
        x_hat[0, :, cy, cx].sum().backward()
        acc += y_hat.grad[0].abs().sum(0).cpu()
    model.train(was_training)
    acc /= acc.max().clamp_min(1e-12)
    return acc.numpy()
