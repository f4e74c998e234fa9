"""Tables of preset figures against the paper (for the README and ``asymllic space presets --complexity``)."""
from __future__ import annotations

import json

import space
from space.anchors import paper_tables

from .complexity import count


def paper_target(preset: str, tables: dict | None = None):
    """(component, [params M, GMACs], ...) of a preset's paper row, or None."""
    anchor = space.PRESETS[preset].anchor
    if anchor is None:
        return None
    tables = tables or json.loads(paper_tables().read_text())
    key, row, component = anchor
    values = tables[key]["rows"][row]
    return component, values[1:]


def _widths(cfg: space.CodecConfig, component: str) -> str:
    s, h = cfg.synthesis, cfg.hyperprior
    g = f"g_s {s.block} w={'/'.join(map(str, s.widths))} d={'/'.join(map(str, s.depths))} up={'/'.join(s.upsamplers)}" \
        f"{' shift' if s.shift else ''} heads={'/'.join(map(str, s.head_dims))} mlp={s.mlp_ratio:g}"
    p = f"hp slices={h.num_slices} attn={h.attn_dim}x{h.attn_depth} units={h.attn_res_units}" \
        f" hidden={'/'.join(map(str, h.slice_hidden))} hs={h.hs_width}x{h.hs_depth}{' shift' if h.shift else ''}"
    return {"g_s": g, "hyperprior": p}.get(component, f"{g}; {p}")


def preset_table(size: tuple = (768, 512)) -> str:
    """Markdown: each anchored preset's compared figures in both conventions, with the paper's and the error."""
    tables = json.loads(paper_tables().read_text()) if paper_tables().exists() else None
    lines = ["| preset | compared | thop params (M) | thop MACs (G) | paper | error | exact params (M) | exact MACs (G) | config |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in space.list_presets():
        p = space.PRESETS[name]
        if p.anchor is None and not name.startswith("tcm-"):
            continue
        cfg = p.build()
        reports = {c: count(cfg, size, c, name) for c in ("thop", "exact")}
        component = p.anchor[2] if p.anchor else "decoder"
        pick = {"total": "decoder"}.get(component, component)

        def fig(r):
            c = getattr(r, pick) if pick in ("decoder", "encoder", "total") else r.components[pick]
            return c.params / 1e6, c.macs / 1e9

        tp, tm = fig(reports["thop"])
        ep, em = fig(reports["exact"])
        paper, err = "", ""
        if tables is not None and p.anchor:
            _, vals = paper_target(name, tables)
            paper = f"{vals[0]} M / {vals[1]} G"
            err = f"{100 * (tp / vals[0] - 1):+.2f} % / {100 * (tm / vals[1] - 1):+.2f} %"
        lines.append(f"| {name} | {pick} | {tp:.2f} | {tm:.2f} | {paper} | {err} | {ep:.2f} | {em:.2f} | {_widths(cfg, pick)} |")
    return "\n".join(lines)
