"""Result tables: one row per trial (pandas), the Pareto front, hypervolume history."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from . import objectives
from .pareto import dominated, hypervolume
from .spec import stored_spec

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
    spec = stored_spec(study)
    part, cost = spec.part, spec.objective
    df["pareto"] = pareto_mask(df, part, cost)
    first = ["number", "state", "pareto", "preset", "config_id"] + objectives.names(part, cost)
    return df[[c for c in first if c in df] + [c for c in df.columns if c not in first]]


def pareto_mask(df: pd.DataFrame, part: str, cost: str = "macs") -> np.ndarray:
    """True for complete trials that no other complete trial dominates."""
    names, dirs = objectives.names(part, cost), objectives.directions(part, cost)
    ok = (df["state"] == "COMPLETE").to_numpy() & df.reindex(columns=names).notna().all(axis=1).to_numpy()
    vals = df.reindex(columns=names).to_numpy(dtype=float)
    vals = vals * np.array([-1.0 if d == "maximize" else 1.0 for d in dirs])  # all minimised
    mask = np.zeros(len(df), dtype=bool)
    mask[ok] = ~dominated(vals[ok], vals[ok])
    return mask


def minimised(df: pd.DataFrame, part: str, cost: str = "macs") -> np.ndarray:
    """The objectives of ``part`` as a (rows, objectives) array in which every column is minimised."""
    dirs = objectives.directions(part, cost)
    return df[objectives.names(part, cost)].to_numpy(dtype=float) * np.array([-1.0 if d == "maximize" else 1.0 for d in dirs])


def hypervolume_history(df: pd.DataFrame, part: str, cost: str = "macs") -> pd.DataFrame:
    """Hypervolume of the front after each trial (objectives normalised to the ranges seen)."""
    done = df[df["state"] == "COMPLETE"].sort_values("number")
    if done.empty:
        return pd.DataFrame(columns=["number", "hypervolume"])
    vals = minimised(done, part, cost)
    lo, hi = vals.min(0), vals.max(0)
    hv = [hypervolume(vals[: i + 1], lo, hi) for i in range(len(vals))]
    return pd.DataFrame({"number": done["number"].to_numpy(), "hypervolume": hv})
