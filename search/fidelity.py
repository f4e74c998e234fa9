"""How short can candidates train and still be ranked right? Given each candidate's score at a ladder of
step counts (one row per candidate and rung: ``name``, ``rung``, ``gmacs`` and a score column), compare each
rung's ranking with the longest rung's (Spearman, Kendall) and measure the regret of choosing by it.
``bench/fidelity.py`` trains the ladder; this module only reads its table.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .table import dominated


def _at(df: pd.DataFrame, rung: int) -> pd.DataFrame:
    return df[df["rung"] == rung].set_index("name")


def front(rows: pd.DataFrame, score: str, maximise: bool) -> list:
    """Names of the rows no other row beats on both ``score`` and ``gmacs``."""
    vals = np.column_stack([rows[score].to_numpy(float) * (-1.0 if maximise else 1.0), rows["gmacs"].to_numpy(float)])
    return list(rows.index[~dominated(vals, vals)])


def regret(df: pd.DataFrame, rung: int, top: int, score: str = "psnr", maximise: bool = True) -> float:
    """Mean, over the long rung's front, of the score lost (read at the long rung) by taking instead the best
    candidate of the short rung's front that costs no more MACs. 0: the short rung picks as well as the long one.
    Points of the long front cheaper than every short-front candidate are left out (nothing to choose there)."""
    short, long = _at(df, rung), _at(df, top)
    picks = front(short, score, maximise)
    sign = 1.0 if maximise else -1.0
    losses = []
    for name in front(long, score, maximise):
        within = [long.loc[m, score] * sign for m in picks if long.loc[m, "gmacs"] <= long.loc[name, "gmacs"]]
        if within:
            losses.append(long.loc[name, score] * sign - max(within))
    return float(np.mean(losses)) if losses else float("nan")


def agreement(df: pd.DataFrame, score: str = "psnr", maximise: bool = True) -> pd.DataFrame:
    """Per rung: Spearman and Kendall correlation of its ranking with the longest rung's, the regret, and where
    the rung's winner ends at the longest rung (1: it is also the long winner)."""
    from scipy.stats import kendalltau, spearmanr

    top = int(df["rung"].max())
    final = _at(df, top)[score]
    long_rank = final.rank(ascending=not maximise)
    rows = []
    for rung in sorted(df["rung"].unique()):
        s = _at(df, rung)[score].reindex(final.index)
        winner = s.idxmax() if maximise else s.idxmin()
        rows.append({"rung": int(rung), "spearman": float(spearmanr(s, final)[0]),
                     "kendall": float(kendalltau(s, final)[0]), "regret": regret(df, rung, top, score, maximise),
                     "winner": winner, "winner_rank_at_top": int(long_rank[winner])})
    return pd.DataFrame(rows)
