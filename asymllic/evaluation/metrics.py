"""Rate and distortion measures (CompressAI conventions: images in [0, 1], MSE on the 0..255 scale in the loss)."""
from __future__ import annotations

import math

import torch


def bpp_from_likelihoods(likelihoods: dict, num_pixels: int) -> torch.Tensor:
    """Estimated bits per pixel: -sum(log2 p) / pixels (batch mean when num_pixels counts one image)."""
    return sum(-torch.log2(lk).sum() for lk in likelihoods.values()) / num_pixels


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(1 / mse)


def ms_ssim(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """MS-SSIM (5 scales) or None when the image is too small for it (< 161 px per side)."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    if min(a.shape[-2:]) < 161:
        return None
    return float(_ms_ssim(a.clamp(0, 1), b.clamp(0, 1), data_range=1.0))


def rd_loss(out: dict, x: torch.Tensor, lmbda: float) -> dict:
    """L = lambda * 255^2 * MSE + bpp (CompressAI's RateDistortionLoss)."""
    n, _, h, w = x.shape
    mse = torch.mean((out["x_hat"].float() - x) ** 2)
    bpp = bpp_from_likelihoods(out["likelihoods"], n * h * w)
    return {"loss": lmbda * 255 ** 2 * mse + bpp, "mse": mse, "bpp": bpp}


def distortion_loss(x_hat: torch.Tensor, x: torch.Tensor, lmbda: float) -> dict:
    mse = torch.mean((x_hat.float() - x) ** 2)
    return {"loss": lmbda * 255 ** 2 * mse, "mse": mse}
