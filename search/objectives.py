"""Objectives per searched part: quality metric(s) from training, decoder MACs from counting."""
from __future__ import annotations

# (metric key, Optuna direction). MACs are the whole decoder's (g_s + hyperprior path), exact convention.
OBJECTIVES = {
    "synthesis": (("psnr", "maximize"), ("decoder_gmacs", "minimize")),
    "hyperprior": (("bpp", "minimize"), ("decoder_gmacs", "minimize")),
    "joint": (("psnr", "maximize"), ("bpp", "minimize"), ("decoder_gmacs", "minimize")),
}


def names(part: str) -> list:
    return [k for k, _ in OBJECTIVES[part]]


def directions(part: str) -> list:
    return [d for _, d in OBJECTIVES[part]]


def values(part: str, metrics: dict) -> list:
    return [float(metrics[k]) for k in names(part)]
