"""``asymllic figure layers | erf``: the paper's Fig. 3e (MACs per block) and Fig. 3c/3d (receptive field)."""
from __future__ import annotations

from pathlib import Path

from .common import MODEL_HELP, parse_size, resolve_config


def add_parsers(sub) -> None:
    p = sub.add_parser("figure", help="per-block MAC chart or effective receptive field map")
    fsub = p.add_subparsers(dest="figure", required=True, metavar="WHICH")
    f = fsub.add_parser("layers", help="MACs per block, baseline vs candidate (plotly HTML + PNG)")
    f.add_argument("candidate", help="preset, config file or checkpoint")
    f.add_argument("--baseline", default="teacher")
    f.add_argument("--component", choices=("g_s", "hyperprior", "g_a", "h_a"), default="g_s")
    f.add_argument("--size", type=parse_size, default=(768, 512))
    f.add_argument("--convention", choices=("exact", "thop"), default="thop")
    f.add_argument("--out", default="results/figures")
    f.add_argument("--no-png", action="store_true")
    f.set_defaults(run=run_layers)
    f = fsub.add_parser("erf", help="effective receptive field of g_s (PNG + HTML)")
    f.add_argument("model", help="preset or config (random weights) or a checkpoint (trained weights)")
    f.add_argument("--latent", type=parse_size, default=(16, 16), help="latent WxH (default 16x16)")
    f.add_argument("--out", default="results/figures")
    f.add_argument("--no-png", action="store_true")
    f.set_defaults(run=run_erf)


def _slug(spec: str) -> str:
    return Path(spec).stem if Path(spec).exists() else spec.replace("/", "_")


def run_layers(args) -> int:
    from asymllic.complexity import count

    from search.plots import write_figure
    from search.plots.layers import block_types, layer_macs_figure

    reports, names = {}, {}
    for spec in (args.baseline, args.candidate):
        cfg = resolve_config(spec)
        reports[spec] = count(cfg, args.size, args.convention, name=spec)
        names[spec] = block_types(cfg, args.component) if args.component != "hyperprior" else {}
    fig = layer_macs_figure(reports, args.component, names)
    stem = Path(args.out) / f"layers_{args.component}_{_slug(args.baseline)}_vs_{_slug(args.candidate)}"
    for path in write_figure(fig, stem, png=not args.no_png, width=1400, height=560):
        print(path)
    return 0


def run_erf(args) -> int:
    from asymllic.evaluation.analysis import effective_receptive_field

    from search.plots import write_figure
    from search.plots.erf import erf_figure

    from asymllic.codec.reference import is_trained, load_model

    model, trained = load_model(args.model), is_trained(args.model)
    label = f"{Path(args.model).name} (trained)" if trained else f"{args.model} (random init)"
    w, h = args.latent
    erf = effective_receptive_field(model, (h, w))
    fig = erf_figure(erf, f"g_s effective receptive field: {label}")
    for p in write_figure(fig, Path(args.out) / f"erf_{_slug(args.model)}", png=not args.no_png, width=560, height=520):
        print(p)
    return 0
