"""Errors the tool reports as one clear line (the CLI prints them without a traceback)."""
from __future__ import annotations

from typing import Iterator


def exception_chain(e: BaseException | None) -> Iterator[BaseException]:
    """``e``, then what it was raised from or during, and so on (each once)."""
    seen: set = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


class AsymllicError(Exception):
    """Base of every expected, user-facing failure."""


class BitstreamError(AsymllicError):
    """A file that is not a valid .alic bitstream, or not one for this model."""


class ImageError(AsymllicError):
    """An input that cannot be read as an image."""


class CheckpointError(AsymllicError):
    """A checkpoint that cannot be loaded safely or does not fit the architecture."""


class LimitError(AsymllicError):
    """Work refused before it starts: a codec's MACs or memory at a size exceed a limit."""
