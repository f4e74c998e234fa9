"""Effective receptive field map of a synthesis decoder (the paper's Fig. 3c/3d)."""
from __future__ import annotations


def erf_figure(erf, title: str):
    import plotly.graph_objects as go

    fig = go.Figure(go.Heatmap(z=erf[::-1], colorscale="Viridis", zmin=0, zmax=1, colorbar=dict(title="|grad|")))
    fig.update_layout(title=title, xaxis_title="latent x", yaxis_title="latent y",
                      yaxis=dict(scaleanchor="x"), width=560, height=520)
    return fig
