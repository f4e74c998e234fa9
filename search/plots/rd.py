"""Rate-distortion curves: quality against bpp, one line per codec (CompressAI results format)."""
from __future__ import annotations

METRIC_LABELS = {"psnr-rgb": "PSNR (dB, RGB)", "ms-ssim-rgb": "MS-SSIM (RGB)"}


def rd_figure(curves: list, anchors: list = (), metric: str = "psnr-rgb", title: str = ""):
    """``curves`` (solid lines with markers) and ``anchors`` (dashed), each a CompressAI-format dict with
    ``results.bpp`` and ``results[metric]``; ``lmbda`` in the results, when there, labels the points."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for group, dash in ((curves, "solid"), (anchors, "dash")):
        for c in group:
            r = c["results"]
            if metric not in r:
                continue
            text = [f"lambda {v:g}" for v in r["lmbda"]] if "lmbda" in r else None
            fig.add_trace(go.Scatter(x=r["bpp"], y=r[metric], mode="lines+markers", name=c.get("name", "?"),
                                     line=dict(dash=dash), text=text,
                                     hovertemplate=(("%{text}<br>" if text else "") +
                                                    "%{x:.4f} bpp, %{y:.3f}<extra>" + c.get("name", "") + "</extra>")))
    fig.update_layout(title=title or "rate-distortion", xaxis_title="bpp (entropy-coded payload)",
                      yaxis_title=METRIC_LABELS.get(metric, metric), template="plotly_white")
    return fig
