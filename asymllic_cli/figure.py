"""``asymllic figure layers | erf``: the paper's Fig. 3e (MACs per block) and Fig. 3c/3d (receptive field)."""
from __future__ import annotations

from dataclasses import dataclass

from asymllic.options import Convention, Png, Root, Size, option, parse_size

from .options import add_options, given


@dataclass(kw_only=True)
class Figures(Png, Root):
    out: str | None = option(None, "output folder (default: <root>/figures)")


@dataclass(kw_only=True)
class Layers(Figures, Size, Convention):
    baseline: str = option("teacher", "the model the candidate is drawn beside")
    component: str = option("g_s", "which part's blocks", choices=("g_s", "hyperprior", "g_a", "h_a"))


@dataclass(kw_only=True)
class Erf(Figures):
    latent: tuple[int, int] = option((16, 16), "latent WxH the field is measured on", parse=parse_size, metavar="WxH")


def add_parsers(sub) -> None:
    p = sub.add_parser("figure", help="per-block MAC chart or effective receptive field map")
    fsub = p.add_subparsers(dest="figure", required=True, metavar="WHICH")
    f = fsub.add_parser("layers", help="MACs per block, baseline vs candidate (plotly HTML + PNG)")
    f.add_argument("candidate", help="preset, config file or checkpoint")
    add_options(f, Layers, defaults={"convention": "thop"})  # the paper's Fig. 3e counts as thop does
    f.set_defaults(run=run_layers)
    f = fsub.add_parser("erf", help="effective receptive field of g_s (PNG + HTML)")
    f.add_argument("model", help="preset or config (random weights) or a checkpoint (trained weights)")
    add_options(f, Erf)
    f.set_defaults(run=run_erf)


def run_layers(args) -> int:
    from search.plots.layers import write_layers_figure

    options = given(args, Layers)
    for path in write_layers_figure(args.candidate, **options):
        print(path)
    return 0


def run_erf(args) -> int:
    from search.plots.erf import write_erf_figure

    for path in write_erf_figure(args.model, **given(args, Erf)):
        print(path)
    return 0
