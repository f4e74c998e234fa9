"""``asymllic complexity``: params and MACs per component (and per layer) of a preset or config."""
from __future__ import annotations

import json
from dataclasses import dataclass

from asymllic.options import Convention, Json, Size, option

from .common import resolve_config
from .options import add_options


@dataclass(kw_only=True)
class Complexity(Size, Convention, Json):
    per_layer: bool = option(False, "include every layer")


def add_parsers(sub) -> None:
    p = sub.add_parser("complexity", help="count params and MACs (encoder, decoder, components, layers)")
    p.add_argument("config", help="preset name (e.g. tcm-small, paper), config file, export folder or checkpoint")
    add_options(p, Complexity)
    p.set_defaults(run=run)


def format_report(report, per_layer: bool = False) -> str:
    w, h = report.size
    lines = [f"{report.model} at {w}x{h}, {report.convention} convention",
             f"{'part':<12}{'params (M)':>12}{'MACs (G)':>12}"]
    rows = [(k, v) for k, v in report.components.items()]
    rows += [("encoder", report.encoder), ("decoder", report.decoder), ("total", report.total)]
    for name, c in rows:
        lines.append(f"{name:<12}{c.params / 1e6:>12.3f}{c.macs / 1e9:>12.3f}")
    lines.append(f"memory: {4 * report.total.params / 2**20:.0f} MiB of fp32 weights + a "
                 f"{report.activation_bytes / 2**20:.0f} MiB activation peak (inference)")
    if per_layer:
        lines.append("")
        lines.append(f"{'layer':<56}{'type':<26}{'params':>12}{'MACs (M)':>12}")
        for layer in report.layers:
            lines.append(f"{layer.name:<56}{layer.type:<26}{layer.params:>12}{layer.macs / 1e6:>12.2f}")
    return "\n".join(lines)


def run(args) -> int:
    from asymllic.complexity import count

    report = count(resolve_config(args.config), args.size, args.convention, name=args.config)
    if args.json:
        print(json.dumps(report.to_dict(per_layer=args.per_layer)))
    else:
        print(format_report(report, args.per_layer))
    return 0
