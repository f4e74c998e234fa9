"""Every call the package makes into ``torch.cuda``, in one place.

torch's CUDA API has preconditions that only a GPU shows: memory statistics and peak resets need an initialised
CUDA context (``reset_peak_memory_stats`` raises "did you call init?" in a fresh process), ``set_device`` and
events need a device index, events time the stream of the device that is current when they are recorded. The
functions here keep those rules (each initialises what it needs and takes a device with its index), and the test
suite runs them against a strict stand-in for ``torch.cuda`` (``api``) that raises where torch would.
"""
from __future__ import annotations

import contextlib

import torch

api = torch.cuda  # the module every function below calls; the suite's strict stand-in takes its place

OutOfMemoryError = torch.cuda.OutOfMemoryError
GIB = 2**30


def available() -> bool:
    """A CUDA device is there (does not initialise CUDA)."""
    return api.is_available()


def count() -> int:
    return api.device_count()


def current() -> int:
    return api.current_device()


def use(device: torch.device) -> None:
    """Make ``device`` (with its index) the current one; initialises CUDA."""
    api.set_device(device)


def synchronize(device: torch.device) -> None:
    api.synchronize(device)


def elapsed_ms(fn, device: torch.device) -> float:
    """Milliseconds of ``fn()`` timed by events on ``device``'s stream (made current around them), synchronised."""
    with api.device(device):
        start, end = api.Event(enable_timing=True), api.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        api.synchronize(device)
        return start.elapsed_time(end)


def free_memory(device: torch.device) -> int:
    """Bytes free on ``device`` now (all processes counted)."""
    return api.mem_get_info(device)[0]


def name(device: torch.device) -> str:
    return api.get_device_name(device)


def reset_peak(device: torch.device) -> None:
    """Start a new memory peak on ``device`` for this process; initialises CUDA first (torch's reset does not, and
    raises in a process that has not touched the device yet: a spawned search worker)."""
    api.init()
    api.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> dict:
    """This process's peak on ``device`` since ``reset_peak``: memory its tensors held (allocated) and memory the
    caching allocator held for them (reserved, what other processes on the card could not use)."""
    return {"peak_gib": api.max_memory_allocated(device) / GIB,
            "peak_reserved_gib": api.max_memory_reserved(device) / GIB}


def release_cache() -> None:
    """Give the caching allocator's unused blocks back to the device (nothing to give before CUDA starts)."""
    if api.is_initialized():
        api.empty_cache()


@contextlib.contextmanager
def sync_debug(mode: str):
    """torch's sync debug mode (``warn`` or ``error`` on every host synchronisation) around a block."""
    saved = api.get_sync_debug_mode()
    api.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        api.set_sync_debug_mode(saved)
