"""Model references: what every command that takes a model accepts, resolved here and nowhere else.

A reference is one of

- a preset name (``teacher``, ``paper``, ...): the architecture, with seeded untrained weights;
- a config file (``.json``/``.yaml``): likewise;
- one of our checkpoints (``codec.pt``) or an official LIC_TCM checkpoint (``.pth.tar``): trained weights;
- an export folder (``config.json`` + ``codec.pt``, as ``asymllic export`` writes it): trained weights.
"""
from __future__ import annotations

from pathlib import Path

import space

from ..errors import CheckpointError
from .checkpoint import CHECKPOINT_SUFFIXES, config_of, load_codec, new_codec, read_checkpoint
from ..options import DEFAULT_SEED

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


def _what() -> str:
    return (f"a preset ({', '.join(space.list_presets())}), a config file (.json/.yaml), a checkpoint (.pt, .pth.tar) "
            "or an export folder (config.json + codec.pt)")


def checkpoint_file(ref: str | Path) -> Path | None:
    """The checkpoint behind ``ref`` (the file itself, or an export folder's codec.pt); None for a preset or a
    config file. A reference that is none of these is a one-line error."""
    text, path = str(ref), Path(ref)
    if path.is_dir():
        if (path / "codec.pt").is_file():
            return path / "codec.pt"
        raise CheckpointError(f"{path} is a folder without codec.pt; a model is {_what()}")
    if path.is_file() and path.suffix.lower() not in CONFIG_SUFFIXES:
        return path
    if text in space.PRESETS or (path.is_file() and path.suffix.lower() in CONFIG_SUFFIXES):
        return None
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        raise CheckpointError(f"no such checkpoint: {path}")
    if path.suffix.lower() in CONFIG_SUFFIXES:
        raise CheckpointError(f"no such config file: {path}")
    raise CheckpointError(f"{text!r} is not a model: give {_what()}")


def resolve_config(ref: str | Path) -> space.CodecConfig:
    """The architecture of any reference, without building the model."""
    ckpt = checkpoint_file(ref)
    if ckpt is not None:
        return config_of(read_checkpoint(ckpt), ckpt)
    return space.get_preset(str(ref)) if str(ref) in space.PRESETS else space.load(ref)


def is_trained(ref: str | Path) -> bool:
    return checkpoint_file(ref) is not None


def load_model(ref: str | Path, device="cpu", size: tuple | None = None, limits=None, decoding: bool = False,
               seed: int = DEFAULT_SEED):
    """A ready-to-code model from any reference (a checkpoint's weights, or seeded untrained weights); with
    ``size`` = (width, height) it is first checked against ``limits`` (see ``load_codec``)."""
    ckpt = checkpoint_file(ref)
    if ckpt is not None:
        return load_codec(ckpt, device, size, limits, decoding)
    config = resolve_config(ref)
    if size is not None:
        from ..limits import Limits, check

        check(config, size, limits or Limits(), device, what=str(ref), decoding=decoding)
    return new_codec(config, seed=seed).to(device)
