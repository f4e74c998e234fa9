"""Argument helpers shared by the commands."""
from __future__ import annotations

import argparse
from pathlib import Path


MODEL_HELP = ("a model: preset name, config file, checkpoint (ours or an official LIC_TCM .pth.tar) or export "
              "folder (presets and configs get seeded untrained weights)")


def parse_size(text: str) -> tuple:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 768x512 (got {text!r})") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive (got {text!r})")
    return w, h


def resolve_config(ref: str):
    """Any model reference (preset, config file, checkpoint, export folder) -> its CodecConfig."""
    from asymllic.reference import resolve_config as resolve

    return resolve(ref)


def add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")


def add_run_args(p: argparse.ArgumentParser) -> None:
    """Where and how training runs: device, precision, data loading, the latent cache's policy."""
    from asymllic.device import PRECISIONS
    from asymllic.training.inherit import INHERIT

    add_device_arg(p)
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="autocast precision of the networks (auto: bf16 on CUDA, fp32 on CPU); entropy models stay fp32")
    p.add_argument("--loader-workers", type=int, default=None,
                   help="DataLoader worker processes decoding images (default min(8, cores))")
    p.add_argument("--cache-gib", type=float, default=4.0,
                   help="cap of the latent cache; a run that needs more computes the frozen parts on the fly")
    p.add_argument("--max-reuse", type=float, default=4.0,
                   help="uses per cached crop before the cache grows (or the run goes on the fly)")
    p.add_argument("--flips", action="store_true", help="random flips on top of random crops (TCM/CompressAI: none)")
    p.add_argument("--compile", action="store_true", help="torch.compile the trained parts")
    p.add_argument("--inherit", choices=INHERIT, default="none",
                   help="how a light part starts from the teacher's weights: none (default: ranks candidates best), copy "
                        "(tensors whose name and shape match) or slice (the overlapping block of tensors whose name "
                        "matches, as weight-sharing NAS: higher PSNR for teacher-like designs)")


def stage_run(args, out_dir: Path):
    from asymllic.training import StageRun

    run = StageRun(out_dir, Path(getattr(args, "cache", "results/cache")), args.seed, not getattr(args, "quiet", False),
                   device=args.device, precision=args.precision, loader_workers=args.loader_workers,
                   cache_gib=args.cache_gib, max_reuse=args.max_reuse, flips=args.flips, compile=args.compile, inherit=args.inherit)
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
    from asymllic.device import pick_device
    from asymllic.limits import Limits
    from asymllic.reference import load_model as load

    return load(args.model, pick_device(args.device), size, Limits(args.max_gmacs, args.max_memory), decoding)
