"""Factorized search: g_s (stage 1) and the hyperprior path (stage 2) train independently, so their fronts
combine into a joint one. A pair's decoder MACs add (g_s + hyperprior path), its PSNR is predicted by the
g_s trial and its bpp by the hyperprior trial; ``measure`` combines the best pairs' checkpoints into real
codecs and evaluates them, which says how close the prediction comes.
"""
from __future__ import annotations

import pandas as pd

from .table import pareto_mask

COLUMNS = ("number", "config_id", "psnr", "bpp", "gs_gmacs", "hyperprior_gmacs", "checkpoint")


def combine_fronts(synthesis: pd.DataFrame, hyperprior: pd.DataFrame) -> pd.DataFrame:
    """Every pair of a synthesis-front trial and a hyperprior-front trial, with the joint front marked."""
    g = synthesis[synthesis["pareto"]][list(COLUMNS)].add_prefix("gs_trial_")
    h = hyperprior[hyperprior["pareto"]][list(COLUMNS)].add_prefix("hp_trial_")
    pairs = g.merge(h, how="cross")
    pairs["psnr"] = pairs["gs_trial_psnr"]
    pairs["bpp"] = pairs["hp_trial_bpp"]
    pairs["decoder_gmacs"] = pairs["gs_trial_gs_gmacs"] + pairs["hp_trial_hyperprior_gmacs"]
    pairs["state"] = "COMPLETE"
    pairs["pareto"] = pareto_mask(pairs, "joint")
    return pairs.sort_values("decoder_gmacs").reset_index(drop=True)


def measure(pairs: pd.DataFrame, out_dir, eval_data=None, max_side: int = 0, top: int = 3) -> pd.DataFrame:
    """Combine the ``top`` cheapest joint-front pairs into codecs and evaluate them on held-out photos."""
    from pathlib import Path

    from asymllic.checkpoint import load_codec
    from asymllic.data import resolve
    from asymllic.evaluation import evaluate
    from asymllic.training import combine

    images = resolve(eval_data or "bundled", "eval").paths
    rows = []
    for _, p in pairs[pairs["pareto"]].head(top).iterrows():
        name = f"{p['gs_trial_config_id']}+{p['hp_trial_config_id']}"
        path = combine(p["gs_trial_checkpoint"], p["hp_trial_checkpoint"], Path(out_dir) / name / "codec.pt")
        r = evaluate(load_codec(path), images, name, max_side=max_side, progress=False)["results"]
        rows.append({"pair": name, "decoder_gmacs": p["decoder_gmacs"], "predicted_psnr": p["psnr"],
                     "measured_psnr": r["psnr-rgb"][0], "predicted_bpp": p["bpp"], "measured_bpp": r["bpp"][0],
                     "checkpoint": str(path)})
    out = pd.DataFrame(rows)
    if not out.empty:
        out["psnr_error_db"] = out["measured_psnr"] - out["predicted_psnr"]
        out["bpp_error_pct"] = 100 * (out["measured_bpp"] / out["predicted_bpp"] - 1)
    return out
