"""Parameter and MAC counting of a codec, per component and per layer, on the meta device.

Two conventions, because published figures differ:

- ``thop`` (the paper's): ``thop.profile`` rules. Only leaf modules with a rule count (conv, linear,
  norms, activations); attention matmuls and GDN/IGDN (a functional conv) count zero, parameters owned
  by non-leaf modules (relative-position tables, GDN's beta/gamma) are missed, and a ConvTranspose2d is
  counted at output resolution (stride^2 times its real MACs).
- ``exact`` (default): every multiply-accumulate torch performs (``FlopCounterMode``, MACs = FLOPs / 2),
  attention matmuls and GDN included, and every parameter.

The model runs its inference path (analysis, hyper-analysis, hyper-synthesis, slice networks,
synthesis; no likelihoods) on meta tensors: no memory, no arithmetic. The same run tracks how many bytes
of intermediate tensors are alive at once (the peak), which with the weights gives the memory the codec
needs at that size, so a config too large for a machine is refused before anything is allocated.
"""
from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
from space import CodecConfig
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .models import ENCODER_PARTS, HYPERPRIOR_PARTS
from .models.meta import meta_model

CONVENTIONS = ("exact", "thop")
COMPONENTS = ("g_a", "h_a", "g_s", "hyperprior")
ENCODER_COMPONENTS = ENCODER_PARTS
DECODER_COMPONENTS = ("g_s", "hyperprior")


def component_of(name: str) -> str:
    top = name.split(".", 1)[0]
    if top in HYPERPRIOR_PARTS:
        return "hyperprior"
    return top


@dataclass
class Count:
    params: int = 0
    macs: int = 0

    def __add__(self, other: "Count") -> "Count":
        return Count(self.params + other.params, self.macs + other.macs)


@dataclass
class LayerCount:
    name: str
    component: str
    type: str
    params: int
    macs: int


@dataclass
class ComplexityReport:
    model: str
    size: tuple  # (width, height)
    convention: str
    components: dict = field(default_factory=dict)  # name -> Count
    layers: list = field(default_factory=list)  # LayerCount, in execution order
    activation_bytes: int = 0  # peak of intermediate tensors alive at once (inference, fp32)

    def _sum(self, names) -> Count:
        out = Count()
        for n in names:
            out = out + self.components.get(n, Count())
        return out

    @property
    def encoder(self) -> Count:
        return self._sum(ENCODER_COMPONENTS)

    @property
    def decoder(self) -> Count:
        return self._sum(DECODER_COMPONENTS)

    @property
    def total(self) -> Count:
        return self._sum(self.components)

    @property
    def memory_bytes(self) -> int:
        """Weights (fp32) plus the activation peak: what coding an image of ``size`` needs."""
        return 4 * self.total.params + self.activation_bytes

    def to_dict(self, per_layer: bool = True) -> dict:
        out = {"model": self.model, "size": list(self.size), "convention": self.convention,
               "encoder": asdict(self.encoder), "decoder": asdict(self.decoder), "total": asdict(self.total),
               "components": {k: asdict(v) for k, v in self.components.items()},
               "activation_bytes": self.activation_bytes, "memory_bytes": self.memory_bytes}
        out["layers"] = [asdict(layer) for layer in self.layers] if per_layer else []
        return out


class _LiveBytes(TorchDispatchMode):
    """Bytes of storages created by ops and still referenced, and their peak. Tracked per storage, so a
    view or an in-place result adds nothing and memory is freed when the last tensor using it dies."""

    def __init__(self, model: nn.Module, x: torch.Tensor):
        super().__init__()
        self._seen = {t.untyped_storage()._cdata for t in (*model.parameters(), *model.buffers())}
        self.current = self.peak = 0
        self._track(x)

    def _free(self, key: int, size: int) -> None:
        self._seen.discard(key)
        self.current -= size

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        if storage._cdata not in self._seen:
            self._seen.add(storage._cdata)
            self.current += storage.nbytes()
            self.peak = max(self.peak, self.current)
            weakref.finalize(storage, self._free, storage._cdata, storage.nbytes())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t)
        return out


def _thop_layers(model: nn.Module, x: torch.Tensor) -> list:
    import thop

    _, _, tree = thop.profile(model, inputs=(x, False), verbose=False, ret_layer_info=True)
    modules = dict(model.named_modules())
    rows = []

    def walk(prefix: str, node: dict):
        for name, (ops, params, children) in node.items():
            full = f"{prefix}{name}"
            if children:
                walk(full + ".", children)
            elif ops or params:
                rows.append(LayerCount(full, component_of(full), type(modules[full]).__name__,
                                       int(round(params)), int(round(ops))))

    walk("", tree)
    return rows


def _exact_layers(model: nn.Module, x: torch.Tensor) -> list:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(x, False)
    root = type(model).__name__
    totals = {}
    for key, ops in counter.get_flop_counts().items():
        if key == root or key.startswith(root + "."):
            totals[key[len(root) + 1:]] = sum(ops.values())  # "" is the model itself
    children_sum: dict = {}
    for name, flops in totals.items():
        if name:  # charge to the nearest ancestor that ran (a ModuleList is indexed, never called)
            parent = name
            while parent:
                parent = parent.rsplit(".", 1)[0] if "." in parent else ""
                if parent in totals:
                    break
            children_sum[parent] = children_sum.get(parent, 0) + flops
    rows = []
    for name, module in model.named_modules():
        own_params = sum(p.numel() for p in module.parameters(recurse=False))
        own_flops = totals.get(name, 0) - children_sum.get(name, 0)
        if name and (own_params or own_flops):
            rows.append(LayerCount(name, component_of(name), type(module).__name__, own_params, own_flops // 2))
    if totals.get("", 0) - children_sum.get("", 0):
        raise RuntimeError("the model's own forward performed MACs outside any submodule")
    return rows


def count(config: CodecConfig, size: tuple = (768, 512), convention: str = "exact", name: str = "") -> ComplexityReport:
    """Count params and MACs of ``config`` at ``size`` = (width, height) in the given convention."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose one of {list(CONVENTIONS)}")
    width, height = size
    config.check_size(width, height)
    model = meta_model(config).eval()
    x = torch.empty(1, 3, height, width, device="meta")
    with torch.no_grad(), _LiveBytes(model, x) as live:
        layers = _thop_layers(model, x) if convention == "thop" else _exact_layers(model, x)
    components = {c: Count() for c in COMPONENTS}
    for layer in layers:
        components[layer.component] = components[layer.component] + Count(layer.params, layer.macs)
    return ComplexityReport(name or "config", (width, height), convention, components, layers, live.peak)


__all__ = ["CONVENTIONS", "ComplexityReport", "Count", "LayerCount", "count"]
