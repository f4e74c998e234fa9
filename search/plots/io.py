"""Saving figures: interactive HTML always, PNG through kaleido (needs a Chromium, e.g. Debian's).

The HTML must open without internet (GPU clusters rarely have any), so it never loads plotly.js from a CDN.
By default plotly.js is written once beside the figures, as ``plotly-<version>.min.js`` (about 4.8 MB), and every
HTML in that folder loads it by a relative ``<script src>``: a results folder of several figures carries one copy
instead of one per figure, and the folder opens anywhere it is copied whole. The file name carries plotly.js's
version, so figures written later by another plotly never change what older figures in the same folder load; it is
rewritten only when missing or different. A figure meant to travel alone (mailed, attached) is written with
``embed=True``: plotly.js inside the HTML, nothing beside it.
"""
from __future__ import annotations

import functools
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def _browser():
    """Kaleido finds Chromium through ``BROWSER_PATH``: set, for this block only, to a Chromium on the PATH
    unless the user set it (the process's environment is as it was afterwards)."""
    path = None
    if "BROWSER_PATH" not in os.environ:
        path = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if path:
        os.environ["BROWSER_PATH"] = path
    try:
        yield
    finally:
        if path:
            os.environ.pop("BROWSER_PATH", None)


@functools.lru_cache(maxsize=1)
def _plotlyjs() -> tuple[str, bytes]:
    """(file name, content) of the plotly.js bundled with the installed plotly."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    return f"plotly-{get_plotlyjs_version()}.min.js", get_plotlyjs().encode()


def write_plotlyjs(folder: str | Path) -> Path:
    """Write plotly.js into ``folder`` unless the same file is already there; returns its path."""
    from asymllic.files import write_bytes

    name, data = _plotlyjs()
    path = Path(folder) / name
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return path
    except OSError:  # missing (or unreadable: rewrite it)
        pass
    return write_bytes(data, path)


def write_figure(fig, stem: str | Path, png: bool = True, width: int = 1000, height: int = 600,
                 embed: bool = False) -> list[Path]:
    """Write ``stem.html`` (and ``stem.png``); returns the figure files written (not the shared plotly.js).

    The HTML loads plotly.js from ``plotly-<version>.min.js`` beside it (see ``write_plotlyjs``), or carries it
    inside with ``embed=True``; either way it opens offline.
    """
    from asymllic.files import write_bytes, write_text

    stem = Path(stem)
    if embed:
        html = fig.to_html(include_plotlyjs=True)
    else:
        html = fig.to_html(include_plotlyjs=write_plotlyjs(stem.parent).name)  # relative: the folder can move
    paths = [write_text(html, stem.with_suffix(".html"))]
    if png:
        with _browser():
            png_bytes = fig.to_image(format="png", width=width, height=height)
        paths.append(write_bytes(png_bytes, stem.with_suffix(".png")))
    return paths
