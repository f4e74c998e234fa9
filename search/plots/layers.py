"""Per-layer MACs of a component, teacher against candidate (the paper's Fig. 3e)."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from asymllic.options import DEFAULT_ROOT, DEFAULT_SIZE

FIGURES_DIR = "figures"  # <root>/figures: where the model figures go by default


class LayerBars(NamedTuple):
    labels: list
    macs_g: list
    params_m: list


def layer_bars(report, component: str = "g_s") -> LayerBars:
    """MACs grouped by the component's top-level blocks (e.g. g_s.0 = first upsampler), in order."""
    groups: dict = {}
    for layer in report.layers:
        if layer.component != component:
            continue
        parts = layer.name.split(".")
        key = ".".join(parts[:2]) if component != "hyperprior" else parts[0]
        groups.setdefault(key, [0, 0])
        groups[key][0] += layer.macs
        groups[key][1] += layer.params
    labels, macs, params = [], [], []
    for key, (m, p) in groups.items():
        labels.append(key)
        macs.append(m / 1e9)
        params.append(p / 1e6)
    return LayerBars(labels, macs, params)


def layer_macs_figure(reports: dict, component: str = "g_s", block_names: dict | None = None):
    """One bar series per model: GMACs of each top-level block of ``component``."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = list(reports)
    fig = make_subplots(rows=1, cols=len(names), shared_yaxes=True, subplot_titles=[
        f"{n}: {sum(layer_bars(r, component).macs_g):.2f} GMACs" for n, r in reports.items()])
    for i, (name, report) in enumerate(reports.items(), start=1):
        bars = layer_bars(report, component)
        labels = [f"{lab}<br>{(block_names or {}).get(name, {}).get(lab, '')}" for lab in bars.labels]
        fig.add_trace(go.Bar(x=labels, y=bars.macs_g, name=name, customdata=bars.params_m,
                             hovertemplate="%{x}<br>%{y:.2f} GMACs<br>%{customdata:.3f} M params<extra></extra>"), row=1, col=i)
    w, h = next(iter(reports.values())).size
    fig.update_layout(title=f"{component} MACs per block at {w}x{h} ({next(iter(reports.values())).convention} convention)",
                      yaxis_title="GMACs", showlegend=False, bargap=0.25)
    return fig


def block_types(config, component: str = "g_s") -> dict:
    """Top-level block label -> short type name (for axis labels)."""
    from asymllic.models.meta import meta_model

    model = meta_model(config)
    root = getattr(model, component)
    return {f"{component}.{i}": type(m).__name__ for i, m in enumerate(root)}


def write_layers_figure(candidate: str, baseline: str = "teacher", component: str = "g_s",
                        size: tuple = DEFAULT_SIZE, convention: str = "thop", out: str | Path | None = None,
                        root: str | Path = DEFAULT_ROOT, png: bool = False) -> list:
    """The paper's Fig. 3e as ``asymllic figure layers`` draws it: MACs per block of ``component`` of the model
    references ``baseline`` and ``candidate`` at ``size`` (``convention``: the paper's thop figures, or exact),
    written as ``layers_<component>_<baseline>_vs_<candidate>.html`` (with ``png`` also PNG) into ``out``
    (default ``<root>/figures``). Returns the paths."""
    from asymllic.codec.reference import resolve_config
    from asymllic.complexity import count

    from .io import write_figure

    reports, names = {}, {}
    for ref in (baseline, candidate):
        cfg = resolve_config(ref)
        reports[ref] = count(cfg, size, convention, name=ref)
        names[ref] = block_types(cfg, component) if component != "hyperprior" else {}
    fig = layer_macs_figure(reports, component, names)
    stem = figures_folder(out, root) / f"layers_{component}_{slug(baseline)}_vs_{slug(candidate)}"
    return write_figure(fig, stem, png=png, width=1400, height=560)


def figures_folder(out: str | Path | None, root: str | Path) -> Path:
    """Where a model figure goes: ``out``, else ``<root>/figures``."""
    return Path(out) if out is not None else Path(root) / FIGURES_DIR


def slug(ref: str) -> str:
    """A model reference as part of a file name: a file's stem, or a preset's name without slashes."""
    return Path(ref).stem if Path(ref).exists() else ref.replace("/", "_")
