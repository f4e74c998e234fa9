"""Fit preset widths to the paper's Tables II/III with the project's own space and counter.

Each target row gets a small grid over the axes the paper says its variant changes; every grid point is
a validated config counted in the paper's (thop) convention at 768x512, and the best points (smallest
worst-case relative error over params and MACs) are printed. The chosen values live in
``space/presets.py``; rerun this to see how they were found::

    python tools/fit_presets.py g_s/ours hp/slices_5_ours
"""
from __future__ import annotations

import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

import space
from asymllic.complexity import count
from space.anchors import paper_tables


GRIDS = {
    "g_s/conv_k5": ("synthesis", {"widths": [(a, b, c) for a in (96, 128, 160) for b in (64, 96, 128) for c in (32, 48, 64)]}),
    "g_s/rbu": ("synthesis", {"widths": [(a, b, c) for a in (96, 128, 160, 192) for b in (64, 96, 128, 160) for c in (32, 48, 64, 96) if a >= b >= c]}),
    "g_s/tcm_pruned": ("synthesis", {"widths": [(a, b, c) for a in (64, 96, 128) for b in (64, 80, 96, 112, 128) for c in (32, 48, 64, 80)],
                                      "depths": [(2, 2, 2), (0, 2, 2), (2, 2, 0), (0, 0, 2), (0, 2, 0), (2, 0, 0)]}),
    "g_s/ours": ("synthesis", {"widths": [(a, b, c) for a in (96, 128, 160, 192) for b in (64, 96, 128) for c in (32, 48, 64) if a >= b >= c],
                                "mlp_ratio": [2.0, 4.0]}),
    "hp/slices_1": ("hyperprior", {"attn_dim": [0, 32, 64, 128], "slice_hidden": [(96,), (128,), (160,), (128, 96)],
                                    "hs_width": [256, 288, 320, 352, 384], "hs_depth": [1, 2]}),
    "hp/slices_2": ("hyperprior", {"attn_dim": [96, 128, 192], "slice_hidden": [(160, 128), (224, 128), (256, 192), (320, 256)],
                                    "hs_width": [96, 128, 160, 192], "hs_depth": [1, 2]}),
    "hp/slices_5_tcm_pruned": ("hyperprior", {"attn_dim": [32, 48, 64], "slice_hidden": [(96, 64), (112, 80), (112, 96), (128, 64), (128, 80), (128, 96)],
                                               "hs_width": [64, 80, 96], "hs_depth": [1, 2]}),
    "hp/slices_5_ours": ("hyperprior", {"attn_dim": [32, 64], "slice_hidden": [(128,), (160,), (192,), (224,), (128, 96), (160, 96), (160, 128)],
                                         "hs_width": [64, 96, 128], "hs_depth": [0, 1, 2]}),
}


def target(preset: str) -> tuple:
    tables = json.loads(paper_tables().read_text())
    key, row, component = space.PRESETS[preset].anchor
    return component, tables[key]["rows"][row][1:3]


def fit(preset: str, top: int = 5) -> list:
    part, grid = GRIDS[preset]
    component, (params_m, gmacs) = target(preset)
    base = space.get_preset(preset)
    rows = []
    for values in tqdm(list(itertools.product(*grid.values())), desc=preset, leave=False):
        try:
            cfg = replace(base, **{part: replace(getattr(base, part), **dict(zip(grid, values)))})
            c = count(cfg, convention="thop").components[component]
        except space.ConfigError:
            continue
        err = max(abs(c.params / 1e6 / params_m - 1), abs(c.macs / 1e9 / gmacs - 1))
        rows.append((err, dict(zip(grid, values)), round(c.params / 1e6, 3), round(c.macs / 1e9, 3)))
    rows.sort(key=lambda r: r[0])
    return rows[:top]


if __name__ == "__main__":
    for name in sys.argv[1:] or list(GRIDS):
        print(name, "target", target(name))
        for err, values, p, m in fit(name):
            print(f"  {100 * err:5.2f}%  {values}  {p} M  {m} G")
