"""Plotly figures. Functions named ``*_figure`` return a ``go.Figure`` and never save; ``write_figure`` saves."""
from .io import write_figure

__all__ = ["write_figure"]
