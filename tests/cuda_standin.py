"""A strict stand-in for ``torch.cuda``: a machine with GPUs as torch's CUDA API shows it, for a suite without one.

``StrictCuda`` keeps torch's own preconditions (torch 2.4-2.14, read from ``torch/cuda/__init__.py`` and
``memory.py`` and the C++ they call), so a call out of order fails here as it would on a card:

- CUDA starts lazily: ``init``, ``current_device``, ``set_device``, ``synchronize``, ``device(...)``, streams (so
  recording an event), ``mem_get_info``, ``get_device_name`` and placing a tensor start it; ``is_available`` and
  ``device_count`` do not. Before it has started, ``reset_peak_memory_stats`` raises torch's "Invalid device
  argument 0: did you call init?", ``max_memory_*`` read 0 and ``empty_cache`` does nothing.
- Device arguments are parsed as ``torch.cuda._utils._get_device_index`` parses them (``set_device`` needs an
  index; a CPU device is refused) and indexes outside ``0..count-1`` are "invalid device ordinal".
- Events record on the current device's stream; ``elapsed_time`` needs two timing events recorded on one device.
- After ``fault(...)`` (an illegal memory access, say) every later CUDA call raises, as a poisoned context does.
- Anything not modelled is an ``AttributeError`` naming it: the product cannot use an unmodelled call unseen.

Tensors are placed by ``Placement``: every tensor or module moved to, or made on, a ``cuda`` device lands on the
CPU instead (after the stand-in has checked the device and started CUDA, as a first allocation does), so the real
pipeline runs end to end with real values. ``install`` puts both in place for a process; ``sitecustomize`` in
``tests/cuda_standin_site`` does it in child processes (spawned search workers, Ray workers) when
``ASYMLLIC_STRICT_CUDA`` names the device count. Every call is logged (``log``; with ``ASYMLLIC_STRICT_CUDA_LOG``
as JSON lines appended to that file, one per call, with the process id).
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import time

import torch

ENV, LOG_ENV = "ASYMLLIC_STRICT_CUDA", "ASYMLLIC_STRICT_CUDA_LOG"
GIB = 2**30


class StrictCuda:
    OutOfMemoryError = torch.cuda.OutOfMemoryError

    def __init__(self, count: int = 2, log_file: str | None = None):
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")  # what Ray gives an actor: only those GPUs exist for it
        self.n = len([d for d in visible.split(",") if d.strip()]) if visible is not None else count
        self.initialised, self.current, self.poisoned = False, 0, None
        self.sync_mode = 0
        self.log: list = []
        self.log_file = log_file

    # --- bookkeeping ------------------------------------------------------------------------------------------
    def _note(self, call: str, device: int | None = None) -> None:
        if self.poisoned:
            raise RuntimeError(f"CUDA error: {self.poisoned}")
        entry = {"call": call, "device": device, "initialised": self.initialised, "pid": os.getpid()}
        self.log.append(entry)
        if self.log_file:
            with open(self.log_file, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def _lazy_init(self) -> None:
        if self.poisoned:
            raise RuntimeError(f"CUDA error: {self.poisoned}")
        self.initialised = True

    def _index(self, device, optional: bool) -> int:
        """torch.cuda._utils._get_device_index."""
        if isinstance(device, str):
            device = torch.device(device)
        if isinstance(device, torch.device):
            if device.type != "cuda":
                raise ValueError(f"Expected a cuda device, but got: {device}")
            device = device.index
        if device is None:
            if not optional:
                raise ValueError("Expected a torch.device with a specified index or an integer, but got:cuda")
            return self.current_device()
        return int(device)

    def _valid(self, index: int) -> int:
        if not 0 <= index < self.n:
            raise RuntimeError("CUDA error: invalid device ordinal")
        return index

    def fault(self, message: str = "an illegal memory access was encountered") -> None:
        """The context is poisoned from here on: every CUDA call of this process fails."""
        self.poisoned = message

    # --- torch.cuda -------------------------------------------------------------------------------------------
    def is_available(self) -> bool:
        return True

    def device_count(self) -> int:
        return self.n

    def is_initialized(self) -> bool:
        return self.initialised

    def init(self) -> None:
        self._lazy_init()
        self._note("init")

    def current_device(self) -> int:
        self._lazy_init()
        return self.current

    def set_device(self, device) -> None:
        index = self._index(device, optional=False)
        if index >= 0:
            self._lazy_init()
            self.current = self._valid(index)
            self._note("set_device", index)

    def synchronize(self, device=None) -> None:
        self._lazy_init()
        index = self._valid(self._index(device, optional=True))
        self._note("synchronize", index)

    @contextlib.contextmanager
    def device(self, device):
        index = self._index(device, optional=True)
        if index < 0:
            yield
            return
        self._lazy_init()
        previous, self.current = self.current, self._valid(index)
        self._note("device", index)
        try:
            yield
        finally:
            self.current = previous

    def Event(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False):  # noqa: N802
        return _Event(self, enable_timing)

    def mem_get_info(self, device=None) -> tuple:
        index = self._valid(self._index(device, optional=True))
        self._lazy_init()
        self._note("mem_get_info", index)
        return 64 * GIB, 80 * GIB

    def get_device_name(self, device=None) -> str:
        self._lazy_init()
        index = self._index(device, optional=True)
        if not 0 <= index < self.n:
            raise AssertionError("Invalid device id")
        self._note("get_device_name", index)
        return "strict CUDA stand-in"

    def reset_peak_memory_stats(self, device=None) -> None:
        index = self._index(device, optional=True)
        if not self.initialised or not 0 <= index < self.n:
            raise RuntimeError(f"Invalid device argument {index}: did you call init?")
        self._note("reset_peak_memory_stats", index)

    def _peak(self, device, what: str) -> int:
        index = self._index(device, optional=True)
        if not self.initialised:
            return 0
        self._note(what, self._valid(index))
        return GIB

    def max_memory_allocated(self, device=None) -> int:
        return self._peak(device, "max_memory_allocated")

    def max_memory_reserved(self, device=None) -> int:
        return self._peak(device, "max_memory_reserved")

    def empty_cache(self) -> None:
        if self.initialised:
            self._note("empty_cache")

    def get_sync_debug_mode(self) -> int:
        self._lazy_init()
        return self.sync_mode

    def set_sync_debug_mode(self, mode) -> None:
        self._lazy_init()
        modes = {"default": 0, "warn": 1, "error": 2}
        if isinstance(mode, str):
            if mode not in modes:
                raise RuntimeError("invalid value of debug_mode, expected one of `default`, `warn`, `error`")
            mode = modes[mode]
        self.sync_mode = int(mode)
        self._note("set_sync_debug_mode")

    def __getattr__(self, name: str):
        raise AttributeError(f"the strict torch.cuda stand-in does not model torch.cuda.{name}; model it (with "
                             "torch's preconditions) in tests/cuda_standin.py before the product calls it")


class _Event:
    def __init__(self, cuda: StrictCuda, timing: bool):
        self.cuda, self.timing, self.device, self.t = cuda, timing, None, None

    def record(self, stream=None) -> None:
        if stream is not None:
            raise NotImplementedError("the stand-in records on the current stream only")
        self.cuda._lazy_init()  # torch.cuda.current_stream() starts CUDA
        self.device, self.t = self.cuda.current, time.perf_counter()
        self.cuda._note("Event.record", self.device)

    def elapsed_time(self, end: "_Event") -> float:
        if not (self.timing and end.timing):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        if self.t is None or end.t is None:
            raise RuntimeError("Both events must be recorded before calculating elapsed time.")
        if self.device != end.device:
            raise RuntimeError("CUDA error: invalid resource handle (events recorded on different devices)")
        return 1000 * (end.t - self.t)


# --- where tensors go -----------------------------------------------------------------------------------------

FACTORIES = ("empty", "zeros", "ones", "full", "rand", "randn", "randint", "arange", "tensor", "empty_strided",
             "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "as_tensor")


class Placement:
    """Tensors asked for on ``cuda[:N]`` are made on the CPU, after ``cuda`` has checked the device and started."""

    def __init__(self, cuda: StrictCuda):
        self.cuda = cuda

    def host(self, device):
        """The device a tensor really goes to for ``device`` (checked as a CUDA allocation would be)."""
        if isinstance(device, (str, torch.device)):
            d = torch.device(device)
            if d.type == "cuda":
                self.cuda._lazy_init()
                self.cuda._valid(self.cuda.current if d.index is None else d.index)
                return torch.device("cpu")
        return device

    def patches(self) -> list:
        """(owner, name, replacement) for every function that places tensors."""
        out = []
        to = torch.Tensor.to

        @functools.wraps(to)
        def tensor_to(t, *args, **kwargs):
            args = tuple(self.host(a) for a in args)
            if "device" in kwargs:
                kwargs["device"] = self.host(kwargs["device"])
            return to(t, *args, **kwargs)

        def tensor_cuda(t, device=None, non_blocking=False, **kwargs):
            self.host(torch.device("cuda") if device is None else torch.device("cuda", device)
                      if isinstance(device, int) else device)
            return t

        def pin_memory(t, *args, **kwargs):
            self.cuda._lazy_init()  # the pinned-memory allocator starts CUDA
            return t

        out += [(torch.Tensor, "to", tensor_to), (torch.Tensor, "cuda", tensor_cuda),
                (torch.Tensor, "pin_memory", pin_memory)]
        for name in FACTORIES:
            fn = getattr(torch, name)

            def factory(*args, __fn=fn, **kwargs):
                if "device" in kwargs:
                    kwargs["device"] = self.host(kwargs["device"])
                return __fn(*args, **kwargs)

            out.append((torch, name, functools.wraps(fn)(factory)))
        return out


def install(count: int = 2, log_file: str | None = None, setattr_=setattr) -> StrictCuda:
    """Put the stand-in in place in this process: ``asymllic.cuda.api`` and tensor placement. ``setattr_`` is
    pytest's ``monkeypatch.setattr`` in a test (undone after it), plain ``setattr`` in a child process."""
    from asymllic import cuda as product_cuda

    cuda = StrictCuda(count, log_file)
    setattr_(product_cuda, "api", cuda)
    for owner, name, fn in Placement(cuda).patches():
        setattr_(owner, name, fn)
    return cuda


def read_log(path) -> list:
    """Every call the stand-in logged to ``path``, from every process."""
    try:
        return [json.loads(line) for line in open(path).read().splitlines() if line.strip()]
    except FileNotFoundError:
        return []
