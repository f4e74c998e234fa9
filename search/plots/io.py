"""Saving figures: interactive HTML always, PNG through kaleido (needs a Chromium, e.g. Debian's)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def _browser() -> None:
    if "BROWSER_PATH" not in os.environ:
        for name in ("chromium", "chromium-browser", "google-chrome"):
            path = shutil.which(name)
            if path:
                os.environ["BROWSER_PATH"] = path
                return


def write_figure(fig, stem: str | Path, png: bool = True, width: int = 1000, height: int = 600) -> list[Path]:
    """Write ``stem.html`` (and ``stem.png``); returns the paths written."""
    from asymllic.files import write_bytes, write_text

    stem = Path(stem)
    paths = [write_text(fig.to_html(include_plotlyjs="cdn"), stem.with_suffix(".html"))]
    if png:
        _browser()
        paths.append(write_bytes(fig.to_image(format="png", width=width, height=height), stem.with_suffix(".png")))
    return paths
