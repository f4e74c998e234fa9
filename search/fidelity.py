"""How short can candidates train and still be ranked right? Read a rung table, the one ``bench/fidelity.py``
writes (``rungs.csv``): one row per candidate and rung with ``name``, ``rung`` (training steps), ``gmacs`` and a
score column (``psnr`` by default; ``maximise=False`` for a score where lower is better, such as bpp or RD cost),
and optionally ``seed``. Nothing here trains or writes files: each function takes such a table and returns
pandas tables, names, numbers or text:

- ``agreement``: per rung, Spearman and Kendall correlation of its ranking with the longest rung's, the ``regret``
  of choosing by it (score lost at the longest rung) and where its winner ends there;
- ``seed_means``: the table averaged over seeds; ``front``: the names on a rung's score-MACs Pareto front.

With a ``seed`` column the table holds several training seeds per candidate and rung (a table without it is one
seed). Then the rankings compare seed means, and the seed-to-seed noise is measured against them: the spread of each
candidate's score over seeds (``spread``), a bootstrap interval on each rung's rank agreement (``seed_agreement``),
the candidate pairs whose difference at the longest rung stands out of that noise (``pairs``: Welch t tests), and
all of these with a plain summary in words (``seeded_report``: a ``SeededReport``).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from .pareto import dominated


def _at(df: pd.DataFrame, rung: int) -> pd.DataFrame:
    return df[df["rung"] == rung].set_index("name")


def front(rows: pd.DataFrame, score: str, maximise: bool) -> list:
    """Names of the rows no other row beats on both ``score`` and ``gmacs``."""
    vals = np.column_stack([rows[score].to_numpy(float) * (-1.0 if maximise else 1.0), rows["gmacs"].to_numpy(float)])
    return list(rows.index[~dominated(vals, vals)])


def seed_means(df: pd.DataFrame, score: str = "psnr") -> pd.DataFrame:
    """One row per candidate and rung: ``score`` averaged over the seeds (``gmacs`` is the candidate's). A table
    without a ``seed`` column is returned as it is."""
    if "seed" not in df:
        return df
    return df.groupby(["name", "rung"], as_index=False, sort=False).agg(gmacs=("gmacs", "first"),
                                                                        **{score: (score, "mean")})


def regret(df: pd.DataFrame, rung: int, top: int, score: str = "psnr", maximise: bool = True) -> float:
    """Mean, over the long rung's front, of the score lost (read at the long rung) by taking instead the best
    candidate of the short rung's front that costs no more MACs. 0: the short rung picks as well as the long one.
    Points of the long front cheaper than every short-front candidate are left out (nothing to choose there).
    Several seeds: read on the seed means."""
    df = seed_means(df, score)
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
    the rung's winner ends at the longest rung (1: it is also the long winner). Several seeds: on the seed means."""
    from scipy.stats import kendalltau, spearmanr

    df = seed_means(df, score)
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


# --- several seeds: the noise floor ------------------------------------------------------------------------------


def _seeded(df: pd.DataFrame) -> pd.DataFrame:
    return df if "seed" in df else df.assign(seed=0)


def spread(df: pd.DataFrame, score: str = "psnr") -> pd.DataFrame:
    """Seed-to-seed spread of each candidate's ``score`` at each rung: ``seeds`` (how many), ``mean``, ``std``
    (sample standard deviation, NaN with one seed) and ``range`` (max - min, 0 with one seed)."""
    out = (_seeded(df).groupby(["rung", "name"])[score]
           .agg(seeds="count", mean="mean", std="std", lo="min", hi="max").reset_index())
    out["range"] = out.pop("hi") - out.pop("lo")
    return out[["rung", "name", "seeds", "mean", "std", "range"]]


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share the mean of their places) along the last axis."""
    below = (x[..., :, None] > x[..., None, :]).sum(-1)
    same = (x[..., :, None] == x[..., None, :]).sum(-1)
    return below + (same + 1) / 2


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho along the last axis (Pearson correlation of the average ranks); NaN where a side is constant."""
    return _pearson(_ranks(x), _ranks(y))


def kendall(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b along the last axis (ties counted as scipy does); NaN where a side is constant."""
    i, j = np.triu_indices(x.shape[-1], 1)
    sx, sy = np.sign(x[..., i] - x[..., j]), np.sign(y[..., i] - y[..., j])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sx * sy).sum(-1) / np.sqrt((sx != 0).sum(-1) * (sy != 0).sum(-1))


def _ladders(df: pd.DataFrame, score: str) -> tuple:
    """(candidates present at the longest rung, rungs ascending, per candidate its seeds x rungs array of scores;
    NaN where a seed lacks a rung)."""
    d = _seeded(df)
    rungs = sorted(int(r) for r in d["rung"].unique())
    names = list(dict.fromkeys(d.loc[d["rung"] == rungs[-1], "name"]))
    wide = d.pivot_table(index=["name", "seed"], columns="rung", values=score, aggfunc="mean").reindex(columns=rungs)
    return names, rungs, [wide.loc[n].to_numpy(float) for n in names]


def _mean_over_seeds(values: np.ndarray) -> np.ndarray:
    """Mean over axis -2 leaving NaN out (NaN where every seed lacks the rung), without warnings."""
    ok = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, values, 0.0).sum(-2) / ok.sum(-2)


def seed_agreement(df: pd.DataFrame, score: str = "psnr", maximise: bool = True, resamples: int = 1000,
                   rng_seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per rung: Spearman and Kendall correlation of its seed-mean ranking with the longest rung's, each with a
    bootstrap ``level`` interval (``*_lo``, ``*_hi``), plus ``agreement``'s regret and winner on the seed means.

    The bootstrap resamples seeds within each candidate, with replacement and as many as it has: a drawn seed brings
    its whole ladder (its short and its long rung trained in one run), the seed means and both correlations are
    recomputed, and the interval is the percentile interval over ``resamples`` draws of ``numpy``'s generator seeded
    with ``rng_seed`` (reproducible). Where every candidate's seeds agree exactly, or each has one seed, every draw
    gives the point estimate and the interval collapses to it. ``seeds``: the fewest seeds a candidate has there."""
    names, rungs, ladders = _ladders(df, score)
    rng = np.random.default_rng(rng_seed)
    point = np.stack([_mean_over_seeds(a) for a in ladders])  # candidates x rungs
    boot = np.stack([_mean_over_seeds(a[rng.integers(0, len(a), size=(resamples, len(a)))]) for a in ladders],
                    axis=1)  # resamples x candidates x rungs
    counts = np.stack([(~np.isnan(a)).sum(0) for a in ladders])  # candidates x rungs
    q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    base = agreement(df, score, maximise).set_index("rung")
    rows = []
    for r, rung in enumerate(rungs):
        keep = ~np.isnan(point[:, r]) & ~np.isnan(point[:, -1])
        row = {"rung": rung, "seeds": int(counts[keep, r].min()) if keep.any() else 0}
        for name, fn in (("spearman", spearman), ("kendall", kendall)):
            row[name] = float(fn(point[keep, r], point[keep, -1]))
            draws = fn(boot[:, keep, r], boot[:, keep, -1])
            draws = draws[~np.isnan(draws)]
            lo, hi = np.percentile(draws, q) if len(draws) else (math.nan, math.nan)
            row[f"{name}_lo"], row[f"{name}_hi"] = float(lo), float(hi)
        row.update(base.loc[rung, ["regret", "winner", "winner_rank_at_top"]].to_dict())
        rows.append(row)
    return pd.DataFrame(rows)


def pairs(df: pd.DataFrame, score: str = "psnr", rung: int | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of candidates at ``rung`` (default the longest): the difference of their seed means (``a - b``)
    and whether it stands out of the seed noise (``beyond``).

    The test is Welch's t test, two-sided at ``alpha`` (5 %): t = (mean_a - mean_b) / se with
    se = sqrt(var_a / n_a + var_b / n_b) (sample variances over seeds), on the Welch-Satterthwaite degrees of freedom.
    It is chosen over a fixed "twice the standard error" rule because with the few seeds a ladder affords it
    widens the bar as it should (2 + 2 seeds of equal spread: df 2, |t| must pass 4.30, not 2). Seeds that agree
    exactly (se 0): any difference is beyond the noise. A candidate with one seed has no measured noise: its pairs
    are not ``tested`` and never ``beyond``."""
    from scipy.stats import t as student

    d = _seeded(df)
    d = d[d["rung"] == (d["rung"].max() if rung is None else rung)]
    stats = d.groupby("name", sort=False)[score].agg(n="count", mean="mean", var="var")
    names = list(stats.index)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            (na, ma, va), (nb, mb, vb) = stats.loc[a], stats.loc[b]
            diff = ma - mb
            row = {"a": a, "b": b, "mean_a": ma, "mean_b": mb, "diff": diff, "se": math.nan, "t": math.nan,
                   "df": math.nan, "p": math.nan, "tested": bool(na > 1 and nb > 1), "beyond": False}
            if row["tested"]:
                ea, eb = va / na, vb / nb
                se = math.sqrt(ea + eb)
                row["se"] = se
                if se == 0:
                    row["p"] = 0.0 if diff != 0 else 1.0
                else:
                    row["t"] = diff / se
                    row["df"] = (ea + eb) ** 2 / (ea ** 2 / (na - 1) + eb ** 2 / (nb - 1))
                    row["p"] = float(2 * student.sf(abs(row["t"]), row["df"]))
                row["beyond"] = bool(row["p"] < alpha)
            rows.append(row)
    cols = ["a", "b", "mean_a", "mean_b", "diff", "se", "t", "df", "p", "tested", "beyond"]
    return pd.DataFrame(rows, columns=cols)


class SeededReport(NamedTuple):
    spread: pd.DataFrame  # per rung and candidate: seeds, mean, std, range
    agreement: pd.DataFrame  # per rung: correlations with the longest rung and their bootstrap intervals
    pairs: pd.DataFrame  # candidate pairs at the longest rung, tested against the seed noise
    text: str  # the plain summary


def summary(agree: pd.DataFrame, pair_table: pd.DataFrame, trust: float = 0.8, level: float = 0.95,
            alpha: float = 0.05) -> str:
    """A few plain sentences: each short rung's agreement with its interval, how many pairs the longest rung tells
    apart beyond seed noise, and which short rung (if any) can be trusted: the shortest whose whole Spearman
    interval lies at or above ``trust``."""
    top = int(agree["rung"].max())
    n, beyond, tested = len(pair_table), int(pair_table["beyond"].sum()), int(pair_table["tested"].sum())
    pct = f"{100 * level:g} %"
    lines = [f"rung {int(r['rung'])}: Spearman {r['spearman']:.2f} [{r['spearman_lo']:.2f}, {r['spearman_hi']:.2f}], "
             f"Kendall {r['kendall']:.2f} [{r['kendall_lo']:.2f}, {r['kendall_hi']:.2f}] vs {top}"
             for _, r in agree[agree["rung"] < top].iterrows()]
    lines.append(f"{beyond} of {n} pairs differ beyond seed noise at {top} (Welch t test, {100 * alpha:g} %"
                 + (f"; {n - tested} pairs untested: a candidate with one seed" if tested < n else "") + ").")
    short = agree[agree["rung"] < top]
    if len(agree) and agree["seeds"].min() < 2:
        lines.append(f"With one seed per candidate the seed noise is not measured and every {pct} interval is a "
                     "point: no rung can be shown trustworthy; train more seeds.")
    elif n and beyond == 0:
        lines.append(f"No pair differs beyond seed noise even at {top}: its ranking is itself noise, so no short rung "
                     "can be trusted to reproduce it; more seeds or longer training are needed first.")
    else:
        good = short[short["spearman_lo"] >= trust]
        if len(good):
            r = good.iloc[0]
            lines.append(f"Rung {int(r['rung'])} can be trusted: its whole {pct} Spearman interval lies at or above "
                         f"{trust:g} (shortest such rung).")
        elif len(short):
            lines.append(f"No short rung can be trusted: none has its whole {pct} Spearman interval at or above "
                         f"{trust:g}.")
    return "\n".join(lines)


def seeded_report(df: pd.DataFrame, score: str = "psnr", maximise: bool = True, resamples: int = 1000,
                  rng_seed: int = 0, level: float = 0.95, alpha: float = 0.05, trust: float = 0.8) -> SeededReport:
    """Spread, bootstrap agreement, pair tests at the longest rung and the summary of a (seeded) rung table."""
    agree = seed_agreement(df, score, maximise, resamples, rng_seed, level)
    pair_table = pairs(df, score, alpha=alpha)
    return SeededReport(spread(df, score), agree, pair_table, summary(agree, pair_table, trust, level, alpha))
