"""Counting speed: the one-pass counter (``asymllic.complexity.count``) against the two-pass reference it
replaced, per config, both conventions, with the figures checked equal.

    python bench/counting.py [--size 768x512] [--configs paper teacher ...] [--repeat 3]

The reference (kept here, not in the library) builds the meta model with a ``torch.device("meta")`` context
plus a mode that only skips random draws, then runs it once per convention: under ``FlopCounterMode`` and a
live-bytes mode (exact), and through ``thop.profile`` (thop). The new counter builds the model once (its
initialisers skipped), runs one pass for both conventions and replays module calls it has met before.

Columns: ``ref_s`` both conventions by the reference; ``cold_s`` both by the new counter with its caches
empty (the first config of a process); ``warm_s`` both by the new counter after the other configs were counted
(their blocks and parts met before); ``build_s`` building the meta model alone.

A second table is what a search's trials see: ``--sampled N`` configs drawn as a search draws them (seeded, for
each search part: synthesis, hyperprior, joint), counted one after the other in both conventions, with the parts
of earlier configs kept (``kept_s``, the counter as it is) and with every part built anew for each config
(``rebuilt_s``, the counter before it kept parts: module calls replayed, the whole model built each time).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import weakref
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_leaves, tree_map  # noqa: E402

import space  # noqa: E402
from asymllic import complexity  # noqa: E402
from asymllic.complexity import COMPONENTS, ComplexityReport, Count, LayerCount, component_of  # noqa: E402
from asymllic.models import LicCodec  # noqa: E402


# --- the reference: two passes, FlopCounterMode and thop.profile --------------------------------------------
def _to_meta(value):
    return value.to("meta") if isinstance(value, torch.Tensor) and not value.is_meta else value


class _MetaBuildRef(TorchFunctionMode):
    _SKIP = {torch.Tensor.uniform_, torch.Tensor.normal_}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self._SKIP:
            return args[0]
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        if any(t.is_meta for t in tensors) and not all(t.is_meta for t in tensors):
            args, kwargs = tree_map(_to_meta, args), tree_map(_to_meta, kwargs)
        return func(*args, **kwargs)


def reference_meta_model(config) -> LicCodec:
    with torch.device("meta"), _MetaBuildRef():
        model = LicCodec(config)
    return model.to("meta")


class _LiveBytes(TorchDispatchMode):
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
            totals[key[len(root) + 1:]] = sum(ops.values())
    children_sum: dict = {}
    for name, flops in totals.items():
        if name:
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
    return rows


def reference_count(config, size=(768, 512), convention="exact") -> ComplexityReport:
    width, height = size
    model = reference_meta_model(config).eval()
    x = torch.empty(1, 3, height, width, device="meta")
    with torch.no_grad(), _LiveBytes(model, x) as live:
        layers = _thop_layers(model, x) if convention == "thop" else _exact_layers(model, x)
    components = {c: Count() for c in COMPONENTS}
    for layer in layers:
        components[layer.component] = components[layer.component] + Count(layer.params, layer.macs)
    return ComplexityReport("config", (width, height), convention, components, layers, live.peak)


# --- the bench ----------------------------------------------------------------------------------------------
def _same(a: ComplexityReport, b: ComplexityReport) -> bool:
    return a.components == b.components and \
        [(l.name, l.params, l.macs) for l in a.layers] == [(l.name, l.params, l.macs) for l in b.layers]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="768x512")
    ap.add_argument("--configs", nargs="*", default=None, help="preset names (default: all)")
    ap.add_argument("--repeat", type=int, default=3, help="timings per cell; the median is printed")
    ap.add_argument("--sampled", type=int, default=30, help="configs drawn per search part (0: none)")
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    names = args.configs or space.list_presets()
    torch.set_num_threads(1)
    both = ("exact", "thop")
    print(f"counting at {size[0]}x{size[1]}, both conventions; median of {args.repeat}; torch {torch.__version__}")
    print("| config | ref_s | cold_s | warm_s | build_s | equal |\n|---|---|---|---|---|---|")
    rows = []
    for name in names:
        cfg = space.get_preset(name)
        ref, cold, warm, build = [], [], [], []
        equal = True
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            old = {c: reference_count(cfg, size, c) for c in both}
            ref.append(time.perf_counter() - t0)
            complexity.forget()
            t0 = time.perf_counter()
            new = {c: complexity.count(cfg, size, c) for c in both}
            cold.append(time.perf_counter() - t0)
            equal &= all(_same(old[c], new[c]) for c in both)
            # warm: every other config counted first (its units kept), then this one
            complexity.forget()
            for other in names:
                if other != name:
                    complexity.count(space.get_preset(other), size, "exact")
            t0 = time.perf_counter()
            for c in both:
                complexity.count(cfg, size, c)
            warm.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            complexity.meta_model(cfg)
            build.append(time.perf_counter() - t0)
        row = [name] + [statistics.median(v) for v in (ref, cold, warm, build)] + [equal]
        rows.append(row)
        print(f"| {name} | {row[1]:.3f} | {row[2]:.3f} | {row[3]:.3f} | {row[4]:.3f} | {'yes' if equal else 'NO'} |",
              flush=True)
    med = [statistics.median(r[i] for r in rows) for i in (1, 2, 3, 4)]
    print(f"| median | {med[0]:.3f} | {med[1]:.3f} | {med[2]:.3f} | {med[3]:.3f} | "
          f"{'yes' if all(r[5] for r in rows) else 'NO'} |")
    if args.sampled:
        sampled(args.sampled, size)
    return 0 if all(r[5] for r in rows) else 1


def sampled(n: int, size: tuple) -> None:
    """Per search part: seconds per config, both conventions, parts kept vs rebuilt, over the same draws."""
    import random

    print(f"\n{n} sampled configs per search part, counted in turn, both conventions; seconds per config")
    print("| part | kept_s median | kept_s max | rebuilt_s median | rebuilt_s max | rebuilt / kept |\n|---|---|---|---|---|---|")
    base = space.get_preset("paper")
    for part in ("synthesis", "hyperprior", "joint"):
        rng = random.Random(0)
        configs = [space.config_from_params(space.random_params(rng, part), part, base) for _ in range(n)]
        times = {}
        for mode in ("kept", "rebuilt"):
            complexity.forget()
            complexity.count(base, size)  # a search counts its base (the paper's decoder) first
            times[mode] = []
            for cfg in configs:
                if mode == "rebuilt":
                    complexity._PARTS.clear()
                t0 = time.perf_counter()
                for c in ("exact", "thop"):
                    complexity.count(cfg, size, c)
                times[mode].append(time.perf_counter() - t0)
        k, r = times["kept"], times["rebuilt"]
        print(f"| {part} | {statistics.median(k):.3f} | {max(k):.3f} | {statistics.median(r):.3f} | {max(r):.3f} | "
              f"{statistics.median(r) / statistics.median(k):.1f}x |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
