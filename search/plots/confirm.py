"""The confirmation of a study's picks: each decoder's test figure over seeds (mean ± std) against its MACs, and
its paired difference to each reference preset with the 95 % confidence interval."""
from __future__ import annotations

import math

import pandas as pd

LABELS = {"psnr": "test PSNR (dB)", "bpp": "test bpp", "rd_cost": "test RD cost (lambda · 255² · MSE + bpp)"}


def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def confirm_figure(summary: pd.DataFrame, part: str, title: str = ""):
    """Left: mean ± std over seeds of the verdict's figure against decoder GMACs (references as stars). Right, per
    reference: each decoder's paired difference to it (decoder - reference) with its 95 % CI."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from ..verdicts import HIGHER_IS_BETTER, REFERENCE_NAMES, verdict_metric

    m = verdict_metric(part)
    refs = [c[len("verdict_vs_"):] for c in summary.columns if c.startswith("verdict_vs_")] if len(summary) else []
    titles = [f"{LABELS[m]}, mean ± std over seeds"] + [f"vs {REFERENCE_NAMES.get(r, r)} (95 % CI)" for r in refs]
    fig = make_subplots(rows=1, cols=1 + len(refs), subplot_titles=titles)
    if summary.empty:
        fig.update_layout(title=title or "confirmation: no run finished", template="plotly_white")
        return fig
    for kind, symbol in (("pick", "circle"), ("reference", "star")):
        rows = summary[summary["kind"] == kind]
        if rows.empty:
            continue
        std = [v if _finite(v) else 0.0 for v in rows[f"test_{m}_std"]]
        fig.add_trace(go.Scatter(x=rows["decoder_gmacs"], y=rows[f"test_{m}_mean"], mode="markers+text",
                                 name="references" if kind == "reference" else "picks", text=list(rows["decoder"]),
                                 textposition="top center", error_y=dict(type="data", array=std, visible=True),
                                 marker=dict(symbol=symbol, size=14 if kind == "reference" else 10),
                                 customdata=list(zip(rows["config_id"], rows["seeds"])),
                                 hovertemplate="%{text} · %{customdata[0]}<br>%{x:.2f} GMACs, %{y:.4f} "
                                               "(%{customdata[1]} seeds)<extra></extra>"), row=1, col=1)
    fig.update_xaxes(title_text="decoder GMACs (exact)", row=1, col=1)
    fig.update_yaxes(title_text=LABELS[m], row=1, col=1)
    better = "higher" if HIGHER_IS_BETTER[m] else "lower"
    for i, ref in enumerate(refs, start=2):
        col = f"test_{m}_vs_{ref}"
        rows = summary[summary[col].apply(_finite)] if col in summary else summary.iloc[0:0]
        mean, lo, hi = rows[col], rows[f"{col}_lo"], rows[f"{col}_hi"]
        up = [h - v if _finite(h) else 0.0 for v, h in zip(mean, hi)]
        down = [v - l if _finite(l) else 0.0 for v, l in zip(mean, lo)]
        fig.add_trace(go.Scatter(x=list(rows["decoder"]), y=mean, mode="markers", name=f"vs {ref}",
                                 error_y=dict(type="data", symmetric=False, array=up, arrayminus=down, visible=True),
                                 text=list(rows[f"verdict_vs_{ref}"]), marker=dict(size=10),
                                 hovertemplate="%{x}: %{y:+.4f}<br>%{text}<extra></extra>"), row=1, col=i)
        fig.add_hline(y=0, line=dict(color="grey", dash="dash"), row=1, col=i)
        fig.update_yaxes(title_text=f"difference ({better} is better)", row=1, col=i)
    fig.update_layout(title=title or "confirmation", template="plotly_white")
    return fig
