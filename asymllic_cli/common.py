"""Argument helpers shared by the commands."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from asymllic.options import MODEL_HELP, Device, SizeLimits, option

from .options import add_options


def resolve_config(ref: str):
    """Any model reference (preset, config file, checkpoint, export folder) -> its CodecConfig."""
    from asymllic.codec.reference import resolve_config as resolve

    return resolve(ref)


@dataclass(kw_only=True)
class ModelOptions(Device, SizeLimits):
    """A trained codec to run (compress, decompress) on a device, within size limits."""

    model: str = option(None, MODEL_HELP, aliases=("--codec",))


def add_model_args(p: argparse.ArgumentParser) -> None:
    add_options(p, ModelOptions, required=("model",))


def load_model(args, size: tuple | None = None, decoding: bool = False):
    """The codec of --model; with ``size`` it is refused first if over --max-gmacs/--max-memory."""
    from asymllic.codec.reference import load_model as load
    from asymllic.device import pick_device
    from asymllic.limits import Limits

    return load(args.model, pick_device(args.device), size, Limits(args.max_gmacs, args.max_memory), decoding)
