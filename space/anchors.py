"""Where the reference figures live: the paper's tables, the Kodak RD anchors and the TCM state-dict shapes.

They ship with the package in ``space/anchors_data/`` (a byte-for-byte copy of the project's
``shared/anchors``: ``asymllic_paper_tables.json``, ``tcm_state_dict_shapes.json``, ``kodak/*.json``), so an
installed wheel has them. ``$ASYMLLIC_ANCHORS`` names another folder of the same layout instead.

A missing folder or file raises :class:`AnchorError`, one line that names the path and the override; callers
never skip an anchor silently.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

ENV = "ASYMLLIC_ANCHORS"
PACKAGED = Path(__file__).resolve().parent / "anchors_data"


class AnchorError(ConfigError):
    """A reference figure that is not there (the CLI prints it as one line)."""

    def __init__(self, message: str):
        super().__init__("anchors", message)


def _source() -> str:
    return f"${ENV}" if os.environ.get(ENV) else "the package data (set $ASYMLLIC_ANCHORS to use another folder)"


def anchors_dir() -> Path:
    """The anchors folder: ``$ASYMLLIC_ANCHORS`` if set, else the packaged copy; raises if it is not a folder."""
    env = os.environ.get(ENV)
    path = Path(env).expanduser() if env else PACKAGED
    if not path.is_dir():
        raise AnchorError(f"no anchors folder at {path} (from {_source()})")
    return path


def anchor_file(*parts: str) -> Path:
    """A file in the anchors folder, e.g. ``anchor_file("kodak", "hm.json")``; raises if it is not there."""
    path = anchors_dir().joinpath(*parts)
    if not path.is_file():
        raise AnchorError(f"missing anchor file {path} (from {_source()})")
    return path


def paper_tables() -> Path:
    """``asymllic_paper_tables.json``: Tables I-III of the AsymLLIC paper."""
    return anchor_file("asymllic_paper_tables.json")


def tcm_state_dict_shapes() -> Path:
    """``tcm_state_dict_shapes.json``: every key and shape of the official TCM state dict (N=64 and N=128)."""
    return anchor_file("tcm_state_dict_shapes.json")


def kodak_dir() -> Path:
    """The folder of Kodak RD anchors (CompressAI results format)."""
    path = anchors_dir() / "kodak"
    if not path.is_dir():
        raise AnchorError(f"no Kodak anchors folder at {path} (from {_source()})")
    return path


def kodak_anchor(name: str) -> Path:
    """One Kodak RD anchor by name, e.g. ``kodak_anchor("bpg_444_x265_ycbcr")``; raises if it is not there."""
    path = kodak_dir() / (name if name.endswith(".json") else f"{name}.json")
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in kodak_dir().glob("*.json")))
        raise AnchorError(f"no Kodak anchor {path.name} in {path.parent} (there: {have})")
    return path
