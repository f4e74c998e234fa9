"""Pareto front, hypervolume history and axis importance of a study (compute the info, then draw)."""
from __future__ import annotations

import math
from typing import NamedTuple

import pandas as pd

from .. import objectives

LABELS = {"psnr": "PSNR (dB)", "bpp": "bpp", "decoder_gmacs": "decoder GMACs (exact, 768x512)",
          "decoder_ms": "decoder decode time (ms, 768x512)", "test_psnr": "test PSNR (dB)", "test_bpp": "test bpp"}
UNITS = {"decoder_gmacs": "GMACs", "decoder_ms": "ms"}
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
    stopped: pd.DataFrame  # multi-fidelity: stopped at a lower rung, with that rung's figures (never on the front)


def pareto_info(df: pd.DataFrame, part: str, x: str = "decoder_gmacs", y: str | None = None) -> ParetoInfo:
    """The front (the study's own, whatever cost it minimised) drawn against ``x``: decoder_gmacs or decoder_ms.
    ``y``: the figure drawn, by default the study's first objective (e.g. ``test_psnr`` where the rows carry it)."""
    y = y or objectives.names(part)[0]
    done = df[df["state"] == "COMPLETE"]
    presets = done[done["preset"].notna()] if "preset" in done else done.iloc[0:0]
    infeasible = df[df["infeasible"].notna()] if "infeasible" in df else df.iloc[0:0]
    stopped = df[df["stopped"].notna()] if "stopped" in df else df.iloc[0:0]
    return ParetoInfo(x, y, done[done["pareto"]].sort_values(x), done[~done["pareto"]], infeasible, presets, stopped)


def _hover(df: pd.DataFrame) -> list:
    cols = [c for c in KEY_AXES if c in df]
    out = []
    for _, r in df.iterrows():
        axes = ", ".join(f"{c[len('param_'):]}={r[c]}" for c in cols if pd.notna(r[c]))
        out.append(f"trial {r['number']} · {r.get('config_id', '')}<br>{axes}")
    return out


def spread_column(df: pd.DataFrame, col: str) -> str | None:
    """The column holding the seed-to-seed standard deviation of ``col``, if the rows carry one: ``<col>_std``
    (``psnr_std`` beside ``psnr``), or for a mean ``<name>_mean`` its ``<name>_std`` (a confirmation's
    ``test_psnr_std`` beside ``test_psnr_mean``)."""
    for name in (f"{col}_std", f"{col[:-len('_mean')]}_std" if col.endswith("_mean") else None):
        if name and name in df:
            return name
    return None


def error_bars(rows: pd.DataFrame, x: str, y: str) -> dict:
    """``error_x`` / ``error_y`` of a scatter trace from the rows' seed spread (± one standard deviation); none
    where the rows carry no spread, so a figure without seed data is drawn as it always was. A missing
    standard deviation (one seed) is a bar of length 0."""
    out = {}
    for key, col in (("error_x", x), ("error_y", y)):
        std = spread_column(rows, col)
        if std is not None:
            vals = pd.to_numeric(rows[std], errors="coerce")
            out[key] = dict(type="data", visible=True, thickness=1.2,
                            array=[float(v) if math.isfinite(v) else 0.0 for v in vals])
    return out


def pareto_figure(df: pd.DataFrame, part: str, title: str = "", x: str = "decoder_gmacs", y: str | None = None):
    """The study's front and its other trials against ``x``; where the rows carry seed spread (``psnr_std`` beside
    ``psnr``, see ``spread_column``) each point gets ± one standard deviation error bars."""
    import plotly.graph_objects as go

    info = pareto_info(df, part, x, y)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=info.dominated[info.x], y=info.dominated[info.y], mode="markers", name="dominated",
                             marker=dict(color="lightsteelblue", size=9, opacity=0.45), text=_hover(info.dominated),
                             hovertemplate="%{text}<br>%{x:.2f} " + UNITS[info.x] + ", %{y:.4f}<extra></extra>",
                             **error_bars(info.dominated, info.x, info.y)))
    fig.add_trace(go.Scatter(x=info.front[info.x], y=info.front[info.y], mode="lines+markers", name="Pareto front",
                             marker=dict(color="crimson", size=11), line=dict(shape="hv", color="crimson"),
                             text=_hover(info.front), hovertemplate="%{text}<br>%{x:.2f} " + UNITS[info.x] + ", %{y:.4f}<extra></extra>",
                             **error_bars(info.front, info.x, info.y)))
    if len(info.stopped):
        text = [f"{h}<br>stopped at rung {int(r['rung'])} ({int(r['steps'])} steps)"
                for h, (_, r) in zip(_hover(info.stopped), info.stopped.iterrows())]
        fig.add_trace(go.Scatter(x=info.stopped[info.x], y=info.stopped[info.y], mode="markers",
                                 name="stopped at a lower rung (its figures)",
                                 marker=dict(symbol="circle-open", color="grey", size=8, opacity=0.5), text=text,
                                 hovertemplate="%{text}<br>%{x:.2f} " + UNITS[info.x] + ", %{y:.4f}<extra></extra>",
                                 **error_bars(info.stopped, info.x, info.y)))
    for i, (_, r) in enumerate(info.presets.iterrows()):
        fig.add_trace(go.Scatter(x=[r[info.x]], y=[r[info.y]], mode="markers+text", name=f"{r['preset']} (preset)",
                                 text=[r["preset"]], textposition="top center",
                                 marker=dict(symbol="star", size=18, line=dict(width=1, color="black")),
                                 **error_bars(info.presets.iloc[[i]], info.x, info.y)))
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


def factorized_figure(pairs: pd.DataFrame, joint: pd.DataFrame | None = None, measured: pd.DataFrame | None = None,
                      title: str = ""):
    """PSNR and bpp against decoder GMACs: the factorized front as predicted (and measured), beside a joint study."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("PSNR", "bpp"))
    front = pairs[pairs["pareto"]].sort_values("decoder_gmacs")
    hover = [f"g_s trial {g} + hyperprior trial {h}" for g, h in zip(front["gs_trial_number"], front["hp_trial_number"])]
    series = [("factorized front (predicted)", front, "psnr", "bpp", dict(color="crimson", size=9), hover)]
    if measured is not None and not measured.empty:
        series.append(("factorized pairs (measured)", measured, "measured_psnr", "measured_bpp",
                       dict(color="darkorange", size=11, symbol="diamond"), list(measured["pair"])))
    if joint is not None:
        done = joint[joint["state"] == "COMPLETE"]
        for label, rows, marker in (("joint study", done[~done["pareto"]], dict(color="lightsteelblue", size=9)),
                                    ("joint front", done[done["pareto"]], dict(color="navy", size=11, symbol="square"))):
            text = [f"joint trial {n}" + (f" ({p})" if isinstance(p, str) else "")
                    for n, p in zip(rows["number"], rows.get("preset", [None] * len(rows)))]
            series.append((label, rows, "psnr", "bpp", marker, text))
    for label, rows, psnr, bpp, marker, text in series:
        for col, key in ((1, psnr), (2, bpp)):
            fig.add_trace(go.Scatter(x=rows["decoder_gmacs"], y=rows[key], mode="markers", name=label, marker=marker,
                                     text=text, legendgroup=label, showlegend=col == 1,
                                     hovertemplate="%{text}<br>%{x:.1f} GMACs, %{y:.4f}<extra></extra>"), row=1, col=col)
    fig.update_xaxes(title_text=LABELS["decoder_gmacs"])
    fig.update_yaxes(title_text=LABELS["psnr"], row=1, col=1)
    fig.update_yaxes(title_text=LABELS["bpp"], row=1, col=2)
    fig.update_layout(title=title or "factorized front vs joint study", template="plotly_white")
    return fig
