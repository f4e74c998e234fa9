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
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    html = stem.with_suffix(".html")
    fig.write_html(html, include_plotlyjs="cdn")
    paths = [html]
    if png:
        _browser()
        out = stem.with_suffix(".png")
        fig.write_image(out, width=width, height=height)
        paths.append(out)
    return paths
