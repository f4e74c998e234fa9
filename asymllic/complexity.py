"""Parameter and MAC counting of a codec, per component and per layer, on the meta device.

Two conventions, because published figures differ:

- ``thop`` (the paper's): ``thop.profile``'s rules (thop 0.1.1), restated here in ``_THOP_RULES`` so that
  counting needs no thop (which imports ``distutils``, gone from Python 3.12). Only leaf modules with a
  rule count (conv, linear, norms, activations); attention matmuls and GDN/IGDN (a functional conv) count
  zero, parameters owned by non-leaf modules (relative-position tables, GDN's beta/gamma) are missed, and a
  ConvTranspose2d is counted at output resolution (stride^2 times its real MACs). A test checks every
  preset against ``thop.profile`` itself where thop is installed.
- ``exact`` (default): every multiply-accumulate torch performs (``FlopCounterMode``, MACs = FLOPs / 2),
  attention matmuls and GDN included, and every parameter.

The model runs its inference path (analysis, hyper-analysis, hyper-synthesis, slice networks,
synthesis; no likelihoods) on meta tensors: no memory, no arithmetic. The same run tracks how many bytes
of intermediate tensors are alive at once (the peak), which with the weights gives the memory the codec
needs at that size, so a config too large for a machine is refused before anything is allocated.
"""
from __future__ import annotations

import math
import threading
import weakref
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
from space import CodecConfig
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import flop_registry as _FLOP_REGISTRY

from .models import ENCODER_PARTS, HYPERPRIOR_PARTS
from .models.lic import codec_parts
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


def _nbytes(t: torch.Tensor) -> int:
    return t.untyped_storage().nbytes()


class _Frame:
    """One module call being recorded: where its events start, the live bytes at entry and the peak inside."""

    __slots__ = ("prefix", "start", "entry", "peak", "ok")

    def __init__(self, prefix: str, start: int, entry: int):
        self.prefix, self.start, self.entry, self.peak, self.ok = prefix, start, entry, entry, True


class _Pass(TorchDispatchMode):
    """One inference pass that yields both conventions and the activation peak.

    - MACs per module (``exact``): each op's FLOPs by ``torch.utils.flop_counter``'s formulas (an op without
      one is decomposed first, as ``FlopCounterMode`` does), charged to the innermost module running.
    - Calls of leaf modules that thop has a rule for, with their input and output shapes (``thop``: the rule
      is applied afterwards, outside the pass: ``_THOP_RULES``).
    - Live bytes: storages created by ops and still referenced, and their peak (a view or an in-place
      result adds nothing; memory is freed when the last tensor using it dies).

    Each module call is a unit keyed by (structure of the module, argument shapes): a unit met again, in
    this model or an earlier one, is replayed (its events re-emitted under its name, the peak it reached
    above its entry level applied, an output of the same shape and strides created) instead of run.
    """

    def __init__(self, weights: set, x: torch.Tensor, cache: dict):
        """``weights``: the storages of the model's parameters and buffers (not activations)."""
        super().__init__()
        self._seen = weights
        self.current = self.peak = 0
        self.events: list = []  # (full name, flops) | (full name, thop key)
        self.frames: list = []
        self.stack: list = [""]
        self.cache = cache
        self._track(x)

    # --- live bytes -----------------------------------------------------------------------------
    def _free(self, key: int, size: int) -> None:
        self._seen.discard(key)
        self.current -= size

    def _bump(self, level: int) -> None:
        if level > self.peak:
            self.peak = level
        for f in self.frames:
            if level > f.peak:
                f.peak = level

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        if storage._cdata not in self._seen:
            self._seen.add(storage._cdata)
            size = storage.nbytes()
            self.current += size
            self._bump(self.current)
            weakref.finalize(storage, self._free, storage._cdata, size)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not torch.ops.prim.device.default:  # FlopCounterMode's rule: decompose where possible
            with self:
                r = func.decompose(*args, **kwargs)
            if r is not NotImplemented:
                return r
        out = func(*args, **kwargs)
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t)
        formula = _FLOP_REGISTRY.get(func._overloadpacket)
        if formula is not None:
            flops = formula(*args, **kwargs, out_val=out)
            if flops:
                self.events.append((self.stack[-1], flops))
        return out

    # --- module units -----------------------------------------------------------------------------
    def call(self, name: str, module: nn.Module, sig: int, thop_rule: bool, forward, args, kwargs):
        key = _unit_key(sig, args, kwargs)
        hit = self.cache.get(key) if key is not None else None
        if hit:
            return self._replay(name, hit)
        frame = _Frame(name + "." if name else "", len(self.events), self.current)
        self.frames.append(frame)
        self.stack.append(name)
        try:
            out = forward(*args, **kwargs)
        finally:
            self.stack.pop()
            self.frames.pop()
        if thop_rule:
            self.events.append((name, (sig, _shape_of(args[0] if args else None), _shape_of(out))))
        if key is not None and key not in self.cache:
            self.cache[key] = self._recorded(frame, name, args, out) or False
        return out

    def _recorded(self, frame: _Frame, name: str, args, out):
        """What replaying this call needs, or None when it cannot be replayed faithfully."""
        if not isinstance(out, torch.Tensor) or out.storage_offset() or \
                _nbytes(out) != out.numel() * out.element_size():
            return None
        if any(isinstance(a, torch.Tensor) and a.untyped_storage()._cdata == out.untyped_storage()._cdata
               for a in args):
            return None  # the output is (a view of) an input
        if self.current - frame.entry != _nbytes(out):
            return None  # it left other tensors alive
        events = []
        for full, what in self.events[frame.start:]:
            if full == name:
                rel = None
            elif full.startswith(frame.prefix):
                rel = full[len(frame.prefix):]
            else:
                return None  # it ran a module outside its own subtree
            events.append((rel, what))
        return (tuple(events), frame.peak - frame.entry, tuple(out.shape), out.stride(), out.dtype)

    def _replay(self, name: str, hit: tuple) -> torch.Tensor:
        events, rise, shape, stride, dtype = hit
        prefix = name + "." if name else ""
        self.events.extend((name if rel is None else prefix + rel, what) for rel, what in events)
        self._bump(self.current + rise)
        return torch.empty_strided(shape, stride, dtype=dtype, device="meta")


def _shape_of(t) -> tuple | None:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else None


def _spec(value):
    if isinstance(value, torch.Tensor):
        return (tuple(value.shape), value.stride(), value.dtype, value.device.type)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError


def _unit_key(sig: int, args, kwargs):
    try:
        return (sig, tuple(_spec(a) for a in args), tuple((k, _spec(v)) for k, v in sorted(kwargs.items())))
    except TypeError:
        return None


_SIGNATURES: dict = {}  # a module's structure -> a small int


def _plain(value) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _signatures(model: nn.Module) -> dict:
    """module -> int, equal for two modules of the same class, settings, parameter and buffer shapes and
    children (recursively): what makes two calls on equal inputs count the same."""
    out: dict = {}

    def sig(m: nn.Module) -> int:
        if m in out:
            return out[m]
        attrs = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in vars(m).items()
                             if not k.startswith("_") and _plain(v)))
        tensors = tuple((k, tuple(v.shape), v.dtype) for k, v in (*m._parameters.items(), *m._buffers.items())
                        if v is not None)
        children = tuple((k, sig(c)) for k, c in m._modules.items() if c is not None)
        structure = (type(m).__module__, type(m).__qualname__, attrs, tensors, children)
        out[m] = _SIGNATURES.setdefault(structure, len(_SIGNATURES))
        return out[m]

    sig(model)
    return out


class _Row:
    """What counting needs of one module of a part, computed once per part: its name in the codec, type, own
    parameters and all its parameters (thop's rows)."""

    __slots__ = ("name", "module", "type", "own_params", "params")

    def __init__(self, name: str, module: nn.Module, own_params: int, params: int):
        self.name, self.module, self.type = name, module, type(module).__name__
        self.own_params, self.params = own_params, params


def _rows(part: nn.Module, name: str) -> list:
    """One row per module of ``part`` in ``named_modules`` order, parameters summed bottom-up."""
    rows: list = []
    totals: dict = {}

    def visit(m: nn.Module, full: str) -> int:
        if m in totals:  # a module met twice is counted once, as named_modules lists it once
            return 0
        own = sum(p.numel() for p in m._parameters.values() if p is not None)
        row = _Row(full, m, own, 0)
        totals[m] = row
        rows.append(row)
        row.params = own + sum(visit(c, f"{full}.{k}" if full else k) for k, c in m._modules.items() if c is not None)
        return row.params

    visit(part, name)
    return rows


_ACTIVE: list = [None]  # the pass running now (one at a time: counting holds _LOCK)


def _wrap(part: nn.Module, name: str) -> None:
    """Route every module call of this (private, meta) part, named ``name`` in the codec, through the pass
    running at the time; keep the rows and parameter storages counting reads."""
    sigs = _signatures(part)
    rows = _rows(part, name)
    for row in rows:
        full, m = row.name, row.module
        if type(m) in _THOP_UNSUPPORTED:
            raise NotImplementedError(f"{full}: thop has a rule for {type(m).__name__} that the thop convention "
                                      "here does not restate (asymllic.complexity._THOP_RULES)")
        thop_rule = type(m) in _THOP_RULES
        forward = m.forward

        def wrapped(*args, _n=full, _m=m, _s=sigs[m], _t=thop_rule, _f=forward, **kwargs):
            run = _ACTIVE[0]
            return _f(*args, **kwargs) if run is None else run.call(_n, _m, _s, _t, _f, args, kwargs)

        m.__dict__["forward"] = wrapped  # (Module.__setattr__'s checks skipped: a plain attribute)
    part._count_rows = rows
    part._count_storages = {t.untyped_storage()._cdata for t in (*part.parameters(), *part.buffers())}


# --- the thop convention: thop.profile's rules (thop 0.1.1, vision/basic_hooks.py and calc_func.py), restated -----
# thop hooks each module whose exact type has a rule; a rule sees the module, its first positional input and its
# output (shapes are all any rule reads) and adds to the module's ops, once per call. thop then walks the tree:
# a module with a rule reports its ops and all its parameters (``parameters()``, children's included) and is not
# descended into; any other module, and a Sequential or ModuleList even though thop hooks Sequential, is
# descended into. Here the same rules are functions (module, input shape, output shape) -> ops.


def _zero(m: nn.Module, x: tuple, y: tuple) -> int:
    return 0


def _conv(m: nn.Module, x: tuple, y: tuple) -> int:
    # output elements x input channels per group x kernel elements, bias ignored; for a transposed conv too, whose
    # output is the larger side (hence stride^2 times its real MACs)
    return math.prod(y) * (x[1] // m.groups) * math.prod(m.weight.shape[2:])


def _norm(m: nn.Module, x: tuple, y: tuple) -> int:
    # 2 per input element, twice that with an affine transform (BatchNorm's ``affine``, LayerNorm's
    # ``elementwise_affine``)
    ops = 2 * math.prod(x)
    return 2 * ops if getattr(m, "affine", False) or getattr(m, "elementwise_affine", False) else ops


def _prelu(m: nn.Module, x: tuple, y: tuple) -> int:
    return math.prod(x)  # thop counts it in eval mode only, and profiles in eval mode


def _softmax(m: nn.Module, x: tuple, y: tuple) -> int:
    features = x[m.dim]
    return (math.prod(x) // features) * (3 * features - 1)  # exp, add, div per feature, one add fewer


def _avgpool(m: nn.Module, x: tuple, y: tuple) -> int:
    return math.prod(y)


def _adaptive_avgpool(m: nn.Module, x: tuple, y: tuple) -> int:
    kernel = 1.0
    for a, b in zip(x[2:], y[2:]):
        kernel *= float(a) / float(b)
    return int((kernel + 1) * math.prod(y))


_UPSAMPLE_OPS = {"nearest": 1, "linear": 5, "bilinear": 11, "bicubic": 224 + 35}  # per output element; others 0


def _upsample(m: nn.Module, x: tuple, y: tuple) -> int:
    return _UPSAMPLE_OPS.get(m.mode, 0) * math.prod(y)


def _linear(m: nn.Module, x: tuple, y: tuple) -> int:
    return m.in_features * math.prod(y)


_THOP_RULES: dict = {
    **dict.fromkeys((nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
                    _conv),
    **dict.fromkeys((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.LayerNorm,
                     nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d), _norm),
    nn.PReLU: _prelu,
    nn.Softmax: _softmax,
    **dict.fromkeys((nn.ZeroPad2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Dropout, nn.PixelShuffle,
                     nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
                     nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d), _zero),
    **dict.fromkeys((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d), _avgpool),
    **dict.fromkeys((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d), _adaptive_avgpool),
    **dict.fromkeys((nn.Upsample, nn.UpsamplingBilinear2d, nn.UpsamplingNearest2d), _upsample),
    nn.Linear: _linear,
}
# thop's recurrent rules, not restated (no model here has one): a model with one is refused rather than miscounted
_THOP_UNSUPPORTED = frozenset((nn.RNNCell, nn.GRUCell, nn.LSTMCell, nn.RNN, nn.GRU, nn.LSTM))


_THOP_OPS: dict = {}  # (module signature, input shape, output shape) -> thop's ops for one call


def _thop_ops(module: nn.Module, key: tuple) -> int:
    """thop's ops for one call of ``module``; ``key``: (signature, input shape, output shape) of the call, a shape
    None where the call had no tensor there (a rule that reads it then fails, as thop's does)."""
    ops = _THOP_OPS.get(key)
    if ops is None:
        _, x_shape, y_shape = key
        ops = _THOP_OPS[key] = _THOP_RULES[type(module)](module, x_shape, y_shape)
    return ops


def _layers(rows: list, run: _Pass) -> dict:
    """Per-layer rows of both conventions from one pass's events."""
    flops: dict = {}
    thop_calls: dict = {}
    for name, what in run.events:
        if isinstance(what, tuple):
            thop_calls.setdefault(name, []).append(what)
        else:
            flops[name] = flops.get(name, 0) + what
    if flops.get(""):
        raise RuntimeError("the model's own forward performed MACs outside any submodule")
    exact, thop_rows = [], []
    for row in rows:
        own_flops = flops.get(row.name, 0)
        if row.own_params or own_flops:
            exact.append(LayerCount(row.name, component_of(row.name), row.type, row.own_params, own_flops // 2))
        if row.name in thop_calls:
            ops = sum(_thop_ops(row.module, key) for key in thop_calls[row.name])
            if ops or row.params:
                thop_rows.append(LayerCount(row.name, component_of(row.name), row.type, row.params, ops))
    return {"exact": exact, "thop": thop_rows}


_UNITS: dict = {}  # replayable module calls, shared by every count in the process
_UNITS_MAX = 20_000
_PARTS: dict = {}  # meta parts (wrapped) and blocks met before (see meta_model), shared by every count in the process
_PARTS_MAX = 500
_REPORTS: dict = {}  # (config, size) -> {convention: ComplexityReport}
_REPORTS_MAX = 256
_LOCK = threading.Lock()


def forget() -> None:
    """Empty every memo of the counter (parts and blocks, replayed calls, reports, thop's results): the next count
    starts as the first of a process."""
    with _LOCK:
        for memo in (_PARTS, _UNITS, _REPORTS, _THOP_OPS):
            memo.clear()


def _meta_codec(config: CodecConfig) -> tuple:
    """The config's meta model, its parts taken from (or added to) ``_PARTS``, and its parts in order."""
    if len(_PARTS) > _PARTS_MAX:
        _PARTS.clear()
    model = meta_model(config, _PARTS)
    model.training = False  # its parts are evaluated already (meta_model's memo)
    parts = []
    for name, _, _ in codec_parts(config):
        parts.append(getattr(model, name))
        if not hasattr(parts[-1], "_count_rows"):
            _wrap(parts[-1], name)
    return model, parts


def _count_both(config: CodecConfig, size: tuple) -> dict:
    key = (config, tuple(size))
    with _LOCK:
        if key in _REPORTS:
            return _REPORTS[key]
        width, height = size
        model, parts = _meta_codec(config)
        x = torch.empty(1, 3, height, width, device="meta")
        if len(_UNITS) > _UNITS_MAX:
            _UNITS.clear()
        run = _Pass(set().union(*(p._count_storages for p in parts)), x, _UNITS)
        _ACTIVE[0] = run
        try:
            with torch.no_grad(), run:
                model(x, False)
        finally:
            _ACTIVE[0] = None
        reports = {}
        for convention, layers in _layers([row for p in parts for row in p._count_rows], run).items():
            components = {c: Count() for c in COMPONENTS}
            for layer in layers:
                components[layer.component] = components[layer.component] + Count(layer.params, layer.macs)
            reports[convention] = ComplexityReport("config", (width, height), convention, components, layers, run.peak)
        if len(_REPORTS) >= _REPORTS_MAX:
            _REPORTS.pop(next(iter(_REPORTS)))
        _REPORTS[key] = reports
        return reports


def count(config: CodecConfig, size: tuple = (768, 512), convention: str = "exact", name: str = "") -> ComplexityReport:
    """Count params and MACs of ``config`` at ``size`` = (width, height) in the given convention.

    One pass gives both conventions; the reports of a (config, size) are kept, so asking for the other
    convention, or the same config again, costs nothing."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose one of {list(CONVENTIONS)}")
    width, height = size
    config.check_size(width, height)
    r = _count_both(config, (width, height))[convention]
    return ComplexityReport(name or "config", r.size, convention, dict(r.components), list(r.layers),
                            r.activation_bytes)


__all__ = ["CONVENTIONS", "ComplexityReport", "Count", "LayerCount", "count", "forget"]
