"""Effective receptive field map of a synthesis decoder (the paper's Fig. 3c/3d)."""
from __future__ import annotations

from pathlib import Path

from asymllic.options import DEFAULT_ROOT


def erf_figure(erf, title: str):
    import plotly.graph_objects as go

    fig = go.Figure(go.Heatmap(z=erf[::-1], colorscale="Viridis", zmin=0, zmax=1, colorbar=dict(title="|grad|")))
    fig.update_layout(title=title, xaxis_title="latent x", yaxis_title="latent y",
                      yaxis=dict(scaleanchor="x"), width=560, height=520)
    return fig


def write_erf_figure(model: str, latent: tuple = (16, 16), out: str | Path | None = None,
                     root: str | Path = DEFAULT_ROOT, png: bool = False) -> list:
    """The paper's Fig. 3c/3d as ``asymllic figure erf`` draws it: the effective receptive field of the g_s of the
    model reference ``model`` (a preset or config: random weights; a checkpoint: trained) on a ``latent`` (W, H)
    grid, written as ``erf_<model>.html`` (with ``png`` also PNG) into ``out`` (default ``<root>/figures``).
    Returns the paths."""
    from asymllic.codec.reference import is_trained, load_model
    from asymllic.evaluation.analysis import effective_receptive_field

    from .io import write_figure
    from .layers import figures_folder, slug

    codec, trained = load_model(model), is_trained(model)
    label = f"{Path(model).name} (trained)" if trained else f"{model} (random init)"
    w, h = latent
    fig = erf_figure(effective_receptive_field(codec, (h, w)), f"g_s effective receptive field: {label}")
    return write_figure(fig, figures_folder(out, root) / f"erf_{slug(model)}", png=png, width=560, height=520)
