"""Argument helpers shared by the commands."""
from __future__ import annotations

import argparse
from pathlib import Path

from asymllic.options import MODEL_HELP, RunOptions, parse_size as _parse_size

from .options import add_options, given



def parse_size(text: str) -> tuple:
    try:
        return _parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def resolve_config(ref: str):
    """Any model reference (preset, config file, checkpoint, export folder) -> its CodecConfig."""
    from asymllic.codec.reference import resolve_config as resolve

    return resolve(ref)


def add_device_arg(p: argparse.ArgumentParser) -> None:
    add_options(p, RunOptions, only=("device",))


def add_run_args(p: argparse.ArgumentParser) -> None:
    """Where and how training runs (``asymllic.options.RunOptions``): device, precision, data loading, the latent
    cache's policy, inherit."""
    add_options(p, RunOptions)


def stage_run(args, out_dir: Path):
    from asymllic.training import StageRun

    run = StageRun(out_dir, Path(getattr(args, "cache", "results/cache")), args.seed, not getattr(args, "quiet", False),
                   **given(args, RunOptions))
    run.resolved()  # CUDA asked for where there is none: one line now, not after the data is listed
    return run


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "--codec", dest="model", required=True, help=MODEL_HELP)
    add_device_arg(p)
    p.add_argument("--max-gmacs", type=float, default=None, help="refuse an image that needs more GMACs")
    p.add_argument("--max-memory", type=float, default=None,
                   help="GiB; refuse an image that needs more (default: what the device has available)")


def load_model(args, size: tuple | None = None, decoding: bool = False):
    """The codec of --model; with ``size`` it is refused first if over --max-gmacs/--max-memory."""
    from asymllic.codec.reference import load_model as load
    from asymllic.device import pick_device
    from asymllic.limits import Limits

    return load(args.model, pick_device(args.device), size, Limits(args.max_gmacs, args.max_memory), decoding)
