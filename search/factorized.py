"""Factorized search: g_s (stage 1) and the hyperprior path (stage 2) train independently, so their fronts
combine into a joint one. A pair's decoder MACs add (g_s + hyperprior path), its PSNR is predicted by the
g_s trial and its bpp by the hyperprior trial; ``measure`` combines the best pairs' checkpoints into real
codecs and evaluates them, which says how close the prediction comes, and ``compare_with_joint`` sets the
factorized front beside the candidates of a joint study (same configs, fronts, hypervolume, cost).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from .pareto import dominated, hypervolume
from .table import minimised, pareto_mask

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


def measure(pairs: pd.DataFrame, out_dir, eval_data=None, max_side: int = 0, top: int = 3,
            photos: int = 0) -> pd.DataFrame:
    """Combine the ``top`` cheapest joint-front pairs into codecs and evaluate them on held-out photos."""
    from pathlib import Path

    from asymllic.codec.checkpoint import load_codec
    from asymllic.data import resolve
    from asymllic.evaluation.evaluate import evaluate
    from asymllic.training import combine

    images = resolve(eval_data or "bundled", "eval").paths
    rows = []
    for _, p in pairs[pairs["pareto"]].head(top).iterrows():
        name = f"{p['gs_trial_config_id']}+{p['hp_trial_config_id']}"
        path = combine(p["gs_trial_checkpoint"], p["hp_trial_checkpoint"], Path(out_dir) / name / "codec.pt")
        r = evaluate(load_codec(path), images, name, max_side=max_side, progress=False, photos=photos)["results"]
        rows.append({"pair": name, "decoder_gmacs": p["decoder_gmacs"], "predicted_psnr": p["psnr"],
                     "measured_psnr": r["psnr-rgb"][0], "predicted_bpp": p["bpp"], "measured_bpp": r["bpp"][0],
                     "checkpoint": str(path)})
    out = pd.DataFrame(rows)
    if not out.empty:
        out["psnr_error_db"] = out["measured_psnr"] - out["predicted_psnr"]
        out["bpp_error_pct"] = 100 * (out["measured_bpp"] / out["predicted_bpp"] - 1)
    return out


class JointComparison(NamedTuple):
    same_config: pd.DataFrame  # joint trials whose g_s and hyperprior path were also trained alone
    summary: dict  # front sizes, dominance, hypervolumes on common scales, training time


def _part_key(row: pd.Series, part: str) -> str | None:
    if not isinstance(row.get("config_json"), str):
        return None
    return json.dumps(json.loads(row["config_json"])[part], sort_keys=True)


def _dominated(points: np.ndarray, by: np.ndarray) -> int:
    """How many of the (minimised) ``points`` some point of ``by`` dominates."""
    return int(dominated(points, by).sum())


def compare_with_joint(pairs: pd.DataFrame, joint: pd.DataFrame, synthesis: pd.DataFrame, hyperprior: pd.DataFrame,
                       measured: pd.DataFrame | None = None) -> JointComparison:
    """How close the factorized front comes to a joint study: per shared config and front against front."""
    done = joint[joint["state"] == "COMPLETE"]
    gs = {_part_key(r, "synthesis"): r for _, r in synthesis[synthesis["state"] == "COMPLETE"].iterrows()}
    hp = {_part_key(r, "hyperprior"): r for _, r in hyperprior[hyperprior["state"] == "COMPLETE"].iterrows()}
    rows = []
    for _, j in done.iterrows():
        g, h = gs.get(_part_key(j, "synthesis")), hp.get(_part_key(j, "hyperprior"))
        if g is None or h is None:
            continue
        rows.append({"joint_trial": j["number"], "preset": j.get("preset"), "gs_trial": g["number"],
                     "hp_trial": h["number"], "decoder_gmacs": j["decoder_gmacs"], "predicted_psnr": g["psnr"],
                     "joint_psnr": j["psnr"], "predicted_bpp": h["bpp"], "joint_bpp": j["bpp"]})
    same = pd.DataFrame(rows)
    if not same.empty:
        same["psnr_error_db"] = same["joint_psnr"] - same["predicted_psnr"]
        same["bpp_error_pct"] = 100 * (same["joint_bpp"] / same["predicted_bpp"] - 1)

    joint_front = minimised(done[done["pareto"]], "joint")
    fact_front = minimised(pairs[pairs["pareto"]], "joint")
    fronts = {"joint": joint_front, "factorized_predicted": fact_front}
    if measured is not None and not measured.empty:
        m = measured.rename(columns={"measured_psnr": "psnr", "measured_bpp": "bpp"})
        fronts["factorized_measured"] = minimised(m, "joint")
    every = np.vstack([v for v in fronts.values() if len(v)])
    lo, hi = every.min(0), every.max(0)
    wall = {name: float(df.loc[df["state"] == "COMPLETE", "wall_seconds"].sum()) if "wall_seconds" in df else float("nan")
            for name, df in (("joint", joint), ("synthesis", synthesis), ("hyperprior", hyperprior))}
    summary = {
        "joint_trials": len(done), "joint_front": len(joint_front),
        "factorized_trials": int((synthesis["state"] == "COMPLETE").sum() + (hyperprior["state"] == "COMPLETE").sum()),
        "factorized_pairs": len(pairs), "factorized_front": len(fact_front),
        **{f"hypervolume_{k}": hypervolume(v, lo, hi) for k, v in fronts.items()},
        "joint_front_dominated_by_factorized_prediction": _dominated(joint_front, fact_front),
        "factorized_front_dominated_by_joint": _dominated(fact_front, joint_front),
        **({"joint_front_dominated_by_factorized_measured": _dominated(joint_front, fronts["factorized_measured"]),
            "factorized_measured_dominated_by_joint": _dominated(fronts["factorized_measured"], joint_front)}
           if "factorized_measured" in fronts else {}),
        "train_seconds_joint": wall["joint"], "train_seconds_factorized": wall["synthesis"] + wall["hyperprior"],
    }
    if not same.empty:
        summary["same_config_psnr_error_db"] = float(same["psnr_error_db"].mean())
        summary["same_config_bpp_error_pct"] = float(same["bpp_error_pct"].mean())
    return JointComparison(same, summary)


@dataclass
class Factorized:
    """What ``search.factorize`` made: the pairs (every front pair, ``pareto`` the joint front), the measured
    pairs (None unless measured), the comparison with a joint study (None without one), the folder
    (``<root>/<synthesis>+<hyperprior>``), the figure's files and every file written (figures included)."""
    pairs: pd.DataFrame
    measured: pd.DataFrame | None
    comparison: JointComparison | None
    folder: Path
    figures: list = field(default_factory=list)
    files: list = field(default_factory=list)
