"""Multi-fidelity search: asynchronous successive halving over rungs of training steps, with promotion by
non-dominated sorting, then crowding distance (the NSGA-II ranking that MO-ASHA uses; Schmucker et al.,
"Multi-objective Asynchronous Successive Halving", 2021).

A candidate trains to the first rung's steps and is scored there; it goes on to the next rung (resuming from
its checkpoint) only if it ranks among the best ``1/eta`` of every result recorded at that rung so far,
itself included (the asynchronous "stopping" form of ASHA: no worker ever waits for a rung to fill). The
first candidate at a rung always goes on. The study's front uses top-rung figures only.

The ranking is pure: it takes minimised objective vectors keyed by trial and returns a decision, so the
Optuna adapter (rung results in the study's storage) and the Ray scheduler (rung results it has seen) share it.
"""
from __future__ import annotations

import numpy as np

from .pareto import dominated


def rungs(min_steps: int, max_steps: int, eta: int) -> list:
    """The steps at which candidates are scored: min_steps * eta^k below max_steps, then max_steps."""
    from space import ConfigError

    if min_steps < 1 or max_steps < min_steps:
        raise ConfigError("min_steps", f"need 1 <= --min-steps ({min_steps}) <= --max-steps ({max_steps})")
    if eta < 2:
        raise ConfigError("eta", f"the reduction factor --eta must be at least 2, got {eta}")
    out, steps = [], min_steps
    while steps < max_steps:
        out.append(steps)
        steps *= eta
    return out + [max_steps]


def nondominated_fronts(points: np.ndarray) -> list:
    """Indices of ``points`` (rows of minimised objectives) by front: the non-dominated first, and so on."""

    points = np.asarray(points, dtype=float)
    left = list(range(len(points)))
    fronts = []
    while left:
        front = [i for i, beaten in zip(left, dominated(points[left], points[left])) if not beaten]
        fronts.append(front)
        left = [i for i in left if i not in front]
    return fronts


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each row within its own set: boundary points get infinity."""
    points = np.asarray(points, dtype=float)
    n, m = points.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(points[:, k], kind="stable")
        span = points[order[-1], k] - points[order[0], k]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (points[order[2:], k] - points[order[:-2], k]) / span
    return dist


def ranking(points: np.ndarray) -> list:
    """Row indices best first: by non-dominated front, then by crowding distance (larger first), then by index."""
    points = np.asarray(points, dtype=float)
    order = []
    for front in nondominated_fronts(points):
        crowd = crowding_distance(points[front])
        order += [i for _, i in sorted(zip(-crowd, front), key=lambda t: (t[0], t[1]))]
    return order


def promotable(results: dict, key, eta: int) -> bool:
    """Whether ``key`` ranks among the best ``max(1, n // eta)`` of the ``n`` results recorded at one rung.

    ``results``: {trial key: minimised objective vector}, ``key`` included. Keys are sorted first, so every
    worker that sees the same results takes the same decision."""
    keys = sorted(results, key=str)
    if key not in results:
        raise KeyError(f"{key!r} has no result at this rung")
    order = ranking(np.array([results[k] for k in keys], dtype=float))
    return keys.index(key) in order[:max(1, len(keys) // eta)]


def minimise(values: list, directions: list) -> list:
    """Objective values with every maximised one negated."""
    return [-float(v) if d == "maximize" else float(v) for v, d in zip(values, directions)]
