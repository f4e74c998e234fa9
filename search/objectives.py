"""Objectives per searched part: quality metric(s) from training, and the decoder's cost: MACs from counting
(``macs``, the default) or decode time measured on a target (``latency``)."""
from __future__ import annotations

# (metric key, Optuna direction). MACs are the whole decoder's (g_s + hyperprior path), exact convention.
OBJECTIVES = {
    "synthesis": (("psnr", "maximize"), ("decoder_gmacs", "minimize")),
    # the RD cost at the study's lambda (lambda * 255^2 * MSE + bpp on real files): stage 2 changes y_hat through
    # h_a and the LRP, so bpp alone would let a candidate buy bits with quality
    "hyperprior": (("rd_cost", "minimize"), ("decoder_gmacs", "minimize")),
    "joint": (("psnr", "maximize"), ("bpp", "minimize"), ("decoder_gmacs", "minimize")),
}
COSTS = {"macs": "decoder_gmacs", "latency": "decoder_ms"}  # --objective: what the search minimises beside quality


def _objectives(part: str, cost: str = "macs") -> list:
    return [(COSTS[cost] if k == "decoder_gmacs" else k, d) for k, d in OBJECTIVES[part]]


def names(part: str, cost: str = "macs") -> list:
    return [k for k, _ in _objectives(part, cost)]


def directions(part: str, cost: str = "macs") -> list:
    return [d for _, d in _objectives(part, cost)]


def values(part: str, metrics: dict, cost: str = "macs") -> list:
    return [float(metrics[k]) for k in names(part, cost)]
