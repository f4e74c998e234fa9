"""Result tables: one row per trial (pandas), the Pareto front, hypervolume history."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from . import objectives

AXIS_PREFIX = "param_"


def trials_frame(study) -> pd.DataFrame:
    """Every trial: number, state, config id, preset, objectives, figures, error, and the sampled axes."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {"number": t.number, "state": t.state.name, **{k: v for k, v in t.user_attrs.items() if k != "config"}}
        row["config_json"] = json.dumps(t.user_attrs["config"]) if "config" in t.user_attrs else None
        row["duration_s"] = t.duration.total_seconds() if t.duration else None
        row.update({AXIS_PREFIX + k: v for k, v in t.params.items()})
        if t.state.name == "FAIL" and "error" not in row:
            row["error"] = t.system_attrs.get("fail_reason", "failed")
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    part = study.user_attrs.get("spec", {}).get("part", "synthesis")
    df["pareto"] = pareto_mask(df, part)
    first = ["number", "state", "pareto", "preset", "config_id"] + objectives.names(part)
    return df[[c for c in first if c in df] + [c for c in df.columns if c not in first]]


def pareto_mask(df: pd.DataFrame, part: str) -> np.ndarray:
    """True for complete trials that no other complete trial dominates."""
    names, dirs = objectives.names(part), objectives.directions(part)
    ok = (df["state"] == "COMPLETE").to_numpy() & df.reindex(columns=names).notna().all(axis=1).to_numpy()
    vals = df.reindex(columns=names).to_numpy(dtype=float)
    vals = vals * np.array([-1.0 if d == "maximize" else 1.0 for d in dirs])  # all minimised
    mask = np.zeros(len(df), dtype=bool)
    for i in np.flatnonzero(ok):
        others = vals[ok]
        dominated = np.any(np.all(others <= vals[i], axis=1) & np.any(others < vals[i], axis=1))
        mask[i] = not dominated
    return mask


def hypervolume_history(df: pd.DataFrame, part: str) -> pd.DataFrame:
    """Hypervolume of the front after each trial (objectives normalised to the ranges seen)."""
    from optuna._hypervolume import compute_hypervolume

    names, dirs = objectives.names(part), objectives.directions(part)
    done = df[df["state"] == "COMPLETE"].sort_values("number")
    if done.empty:
        return pd.DataFrame(columns=["number", "hypervolume"])
    vals = done[names].to_numpy(dtype=float) * np.array([-1.0 if d == "maximize" else 1.0 for d in dirs])
    lo, hi = vals.min(0), vals.max(0)
    norm = (vals - lo) / np.where(hi > lo, hi - lo, 1.0)
    ref = np.full(len(names), 1.1)
    hv = [compute_hypervolume(norm[: i + 1], ref) for i in range(len(norm))]
    return pd.DataFrame({"number": done["number"].to_numpy(), "hypervolume": hv})
