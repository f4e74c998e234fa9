"""Sampling configs from an Optuna trial (define-by-run; Ray Tune uses it through OptunaSearch) or a seeded RNG."""
from __future__ import annotations

from typing import Any

from .config import CodecConfig
from .domains import Params, applicable, axes, config_from_params


def suggest_params(trial: Any, part: str) -> Params:
    """Ask ``trial`` (an ``optuna.Trial``, also what Ray's OptunaSearch passes) for each applicable axis."""
    params: Params = {}
    for ax in axes(part):
        if not ax.applies(params):
            continue
        if ax.is_int:
            params[ax.name] = trial.suggest_int(ax.name, ax.low, ax.high)
        else:
            params[ax.name] = trial.suggest_categorical(ax.name, list(ax.choices))
    return params


def sample_config(trial: Any, part: str, base: CodecConfig | None = None) -> CodecConfig:
    return config_from_params(suggest_params(trial, part), part, base)


def random_params(rng, part: str) -> Params:
    """Seeded sampling without any library (``rng`` is a ``random.Random``): the same axes, uniformly."""
    params: Params = {}
    for ax in axes(part):
        if ax.applies(params):
            params[ax.name] = rng.randint(ax.low, ax.high) if ax.is_int else rng.choice(ax.choices)
    return params


__all__ = ["suggest_params", "sample_config", "random_params", "applicable"]
