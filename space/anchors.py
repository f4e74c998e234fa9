"""Where the reference figures live: the paper's tables and the Kodak RD anchors (``shared/anchors`` beside
the checkout, or ``$ASYMLLIC_ANCHORS``)."""
from __future__ import annotations

import os
from pathlib import Path


def anchors_dir() -> Path:
    env = os.environ.get("ASYMLLIC_ANCHORS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "anchors"


def paper_tables() -> Path:
    return anchors_dir() / "asymllic_paper_tables.json"


def kodak_dir() -> Path:
    return anchors_dir() / "kodak"
