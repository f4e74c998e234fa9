"""Blocks met before, copied instead of built again, while a meta model is being built for counting.

Building a module costs far more than counting it (Python constructors, one initialiser call per weight). A
search counts hundreds of configs whose parts differ while most of their blocks recur (the same block at the
same width, the same upsampler between the same widths). ``build`` is how the factories make a block: normally
it calls the builder; inside ``memo_active(memo)`` (what ``asymllic.models.meta.meta_model`` does with a memo)
a builder called with arguments met before returns a structural copy of the module built then: new module
objects, the same meta tensors (which hold no data).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import torch.nn as nn

_STATE = threading.local()  # .memo: the dict of the meta build running on this thread, if any


@contextmanager
def memo_active(memo: dict):
    """Within this block, on this thread, ``build`` takes blocks from ``memo`` and adds the ones it builds."""
    previous = getattr(_STATE, "memo", None)
    _STATE.memo = memo
    try:
        yield memo
    finally:
        _STATE.memo = previous


def build(builder, *arguments) -> nn.Module:
    """``builder(*arguments)``, or a copy of the module it returned for these arguments under ``memo_active``."""
    memo = getattr(_STATE, "memo", None)
    if memo is None:
        return builder(*arguments)
    key = (builder, arguments)
    prototype = memo.get(key)
    if prototype is None:
        prototype = memo[key] = builder(*arguments)
    return structural_copy(prototype)


def structural_copy(module: nn.Module) -> nn.Module:
    """New module objects all the way down, sharing the tensors: each container attribute (parameter, buffer and
    hook dicts, sets, lists) copied one level, submodules copied the same way."""
    out = module.__class__.__new__(module.__class__)
    state = {}
    for name, value in module.__dict__.items():
        if name == "_modules":
            value = {k: None if m is None else structural_copy(m) for k, m in value.items()}
        elif isinstance(value, (dict, list, set)):
            value = value.copy() if value else type(value)()  # (an empty OrderedDict's copy() is slow)
        state[name] = value
    out.__dict__.update(state)
    return out


__all__ = ["build", "memo_active", "structural_copy"]
