"""Pareto front, hypervolume history and axis importance of a study (compute the info, then draw)."""
from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from .. import objectives

LABELS = {"psnr": "PSNR (dB)", "bpp": "bpp", "decoder_gmacs": "decoder GMACs (exact, 768x512)"}
KEY_AXES = ("param_g_block", "param_g_width_0", "param_g_width_1", "param_g_width_2", "param_g_depth_0",
            "param_g_depth_1", "param_g_depth_2", "param_g_upsampler", "param_h_num_slices", "param_h_attn_dim",
            "param_h_hs_width")


class ParetoInfo(NamedTuple):
    x: str
    y: str
    front: pd.DataFrame
    dominated: pd.DataFrame
    infeasible: pd.DataFrame
    presets: pd.DataFrame


def pareto_info(df: pd.DataFrame, part: str) -> ParetoInfo:
    names = objectives.names(part)
    y = names[0]
    x = "decoder_gmacs"
    done = df[df["state"] == "COMPLETE"]
    presets = done[done["preset"].notna()] if "preset" in done else done.iloc[0:0]
    infeasible = df[df["infeasible"].notna()] if "infeasible" in df else df.iloc[0:0]
    return ParetoInfo(x, y, done[done["pareto"]].sort_values(x), done[~done["pareto"]], infeasible, presets)


def _hover(df: pd.DataFrame) -> list:
    cols = [c for c in KEY_AXES if c in df]
    out = []
    for _, r in df.iterrows():
        axes = ", ".join(f"{c[len('param_'):]}={r[c]}" for c in cols if pd.notna(r[c]))
        out.append(f"trial {r['number']} · {r.get('config_id', '')}<br>{axes}")
    return out


def pareto_figure(df: pd.DataFrame, part: str, title: str = ""):
    import plotly.graph_objects as go

    info = pareto_info(df, part)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=info.dominated[info.x], y=info.dominated[info.y], mode="markers", name="dominated",
                             marker=dict(color="lightsteelblue", size=9, opacity=0.45), text=_hover(info.dominated),
                             hovertemplate="%{text}<br>%{x:.2f} GMACs, %{y:.4f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=info.front[info.x], y=info.front[info.y], mode="lines+markers", name="Pareto front",
                             marker=dict(color="crimson", size=11), line=dict(shape="hv", color="crimson"),
                             text=_hover(info.front), hovertemplate="%{text}<br>%{x:.2f} GMACs, %{y:.4f}<extra></extra>"))
    for _, r in info.presets.iterrows():
        fig.add_trace(go.Scatter(x=[r[info.x]], y=[r[info.y]], mode="markers+text", name=f"{r['preset']} (preset)",
                                 text=[r["preset"]], textposition="top center",
                                 marker=dict(symbol="star", size=18, line=dict(width=1, color="black"))))
    if len(info.infeasible):
        fig.add_trace(go.Scatter(x=info.infeasible[info.x], y=[None] * len(info.infeasible), mode="markers",
                                 name="over MAC budget (not trained)", marker=dict(symbol="x", color="grey")))
    n = len(df)
    fig.update_layout(title=title or f"{part} search: {n} trials, {len(info.front)} on the front",
                      xaxis_title=LABELS[info.x], yaxis_title=LABELS.get(info.y, info.y), template="plotly_white")
    return fig


def history_figure(hv: pd.DataFrame, title: str = "hypervolume history"):
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=hv["number"], y=hv["hypervolume"], mode="lines+markers"))
    fig.update_layout(title=title, xaxis_title="trial", yaxis_title="hypervolume (normalised objectives)",
                      template="plotly_white")
    return fig


def importance_figure(importances: dict, title: str):
    import plotly.graph_objects as go

    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h"))
    fig.update_layout(title=title, xaxis_title="importance (PED-ANOVA, Optuna default)", template="plotly_white")
    return fig
