"""Pareto primitives on arrays of minimised objectives: which points another set dominates, and the
hypervolume of a front (the figures every table, ranking and bench of a search shares)."""
from __future__ import annotations

import numpy as np


def dominated(points: np.ndarray, by: np.ndarray) -> np.ndarray:
    """For each row of ``points`` (objectives minimised), whether some row of ``by`` dominates it."""
    if len(by) == 0:
        return np.zeros(len(points), dtype=bool)
    return np.array([np.any(np.all(by <= p, axis=1) & np.any(by < p, axis=1)) for p in points], dtype=bool)


def hypervolume(vals: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Hypervolume of minimised ``vals`` scaled to [0, 1] by ``lo``/``hi``, reference point 1.1."""
    from optuna._hypervolume import compute_hypervolume

    if len(vals) == 0:
        return 0.0
    norm = (vals - lo) / np.where(hi > lo, hi - lo, 1.0)
    norm = norm[(norm < 1.1).all(axis=1)]  # points beyond the reference add nothing
    return float(compute_hypervolume(norm, np.full(vals.shape[1], 1.1))) if len(norm) else 0.0
