"""Writing result files atomically: a full disk or a read-only folder leaves no half-written file, and the
error names the file it could not write."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Callable

from .errors import exception_chain

# the machine's fault, not the candidate's: a search stops on these instead of failing trial after trial
RESOURCE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
_UMASK = os.umask(0)
os.umask(_UMASK)


def _atomic(path: str | Path, write: Callable) -> Path:
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a temporary of its own: two workers writing the same file (a shared latent cache) never collide
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
        tmp = Path(name)
        os.fchmod(fd, 0o666 & ~_UMASK)  # the permissions a plain open() would give, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:  # through a Python file: a full disk is an OSError, not a C++ abort
            write(f)
        tmp.replace(path)
    except Exception as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        cause = os_error(e)  # torch's zip writer masks the disk's OSError with a RuntimeError on close
        if cause is None:
            raise
        raise OSError(cause.errno, cause.strerror, str(path)) from None
    return path


def os_error(e: BaseException | None) -> OSError | None:
    """The OSError behind ``e`` (itself, or what it was raised from or during), if any."""
    return next((c for c in exception_chain(e) if isinstance(c, OSError)), None)


def save_torch(obj, path: str | Path) -> Path:
    """``torch.save`` to ``path`` via a temporary file renamed into place."""
    import torch

    return _atomic(path, lambda f: torch.save(obj, f))


def write_bytes(data: bytes, path: str | Path) -> Path:
    return _atomic(path, lambda f: f.write(data))


def write_text(text: str, path: str | Path) -> Path:
    return _atomic(path, lambda f: f.write(text.encode()))


def copy_file(src: str | Path, dst: str | Path) -> Path:
    import shutil

    def write(f):
        with open(src, "rb") as s:
            shutil.copyfileobj(s, f, 1 << 20)

    return _atomic(dst, write)


def is_resource_error(e: BaseException) -> bool:
    cause = os_error(e)
    return cause is not None and cause.errno in RESOURCE_ERRNOS


def describe(e: BaseException, folder: str | Path | None = None) -> str:
    """'cannot write PATH: No space left on device' (``folder`` when the error does not name a file)."""
    cause = os_error(e) or e
    where = getattr(cause, "filename", None) or (f"under {folder}" if folder else None)
    return f"cannot write{' ' + str(where) if where else ''}: {getattr(cause, 'strerror', None) or cause}"


def check_writable(folder: str | Path) -> None:
    """Raise the OSError a write into ``folder`` would raise (creating it if needed)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(folder)) from None
