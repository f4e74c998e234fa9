"""Seed statistics and verdicts: the paired difference of a decoder and a reference over the seeds both
finished, its 95 % interval (Student's t), the verdict in words ("beats the paper's decoder by ... outside
seed noise"), and where a study keeps its confirmed verdicts (``<study>/confirm/confirm.csv``) for an
export's card to read."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import objectives

CONFIRM_DIR = "confirm"
CSV = "confirm.csv"
METRICS = ("psnr", "bpp", "rd_cost")  # reported on the test photos: test_psnr, test_bpp, test_rd_cost
HIGHER_IS_BETTER = {"psnr": True, "bpp": False, "rd_cost": False}
UNITS = {"psnr": ("dB PSNR", 2), "bpp": ("bpp", 4), "rd_cost": ("in RD cost", 4)}
REFERENCE_NAMES = {"paper": "the paper's decoder", "teacher": "the teacher's decoder"}


def verdict_metric(part: str) -> str:
    """The figure a verdict is decided on: the part's quality objective; for the joint part (PSNR and bpp) the
    RD cost at the study's lambda, the trade-off both stages were trained for."""
    return "rd_cost" if part == "joint" else objectives.names(part)[0]


_T975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
         2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
         2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272)


def t_quantile(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (a 95 % two-sided interval): the table up
    to 30, a Cornish-Fisher expansion beyond (error below 1e-4)."""
    if df < 1:
        raise ValueError(f"t quantile: {df} degrees of freedom")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959963985
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2) + \
        (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3)


@dataclass
class Paired:
    """The paired difference (decoder - reference) over the seeds both finished."""
    n: int
    mean: float
    lo: float  # 95 % confidence interval (nan with fewer than 2 seeds)
    hi: float
    std: float = math.nan

    @property
    def outside_noise(self) -> bool:
        return self.n >= 2 and (self.lo > 0 or self.hi < 0)

    @property
    def half_width(self) -> float:
        """Half the 95 % interval's width (nan with fewer than 2 seeds)."""
        return (self.hi - self.lo) / 2


def seeds_needed(std: float, gap: float, most: int = 10_000) -> int | None:
    """The fewest seeds whose 95 % t interval of a paired difference with standard deviation ``std`` is
    narrower on each side than ``gap``; None beyond ``most``, or with no gap to resolve."""
    if not (math.isfinite(std) and math.isfinite(gap)) or std < 0 or gap == 0:
        return None
    for n in range(2, most + 1):
        if t_quantile(n - 1) * std / math.sqrt(n) < abs(gap):
            return n
    return None


def paired(a: dict, b: dict) -> Paired:
    """``a`` and ``b``: {seed: value}; the mean of a - b over common seeds with its t interval."""
    seeds = sorted(set(a) & set(b))
    d = np.array([a[s] - b[s] for s in seeds], dtype=float)
    if len(d) == 0:
        return Paired(0, math.nan, math.nan, math.nan)
    mean = float(d.mean())
    if len(d) < 2:
        return Paired(1, mean, math.nan, math.nan)
    sd = float(d.std(ddof=1))
    half = t_quantile(len(d) - 1) * sd / math.sqrt(len(d))
    return Paired(len(d), mean, mean - half, mean + half, sd)


def seed_text(seeds) -> str:
    """Seeds as short ranges: [0, 1, 2, 3, 7, 9, 10] -> "0-3, 7, 9-10"."""
    out: list = []
    for s in sorted({int(s) for s in seeds}):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in out)


def amount(metric: str, v: float, signed: bool = True) -> str:
    unit, digits = UNITS[metric]
    return f"{v:+.{digits}f}" if signed else f"{abs(v):.{digits}f}"


def verdict(p: Paired, metric: str, reference: str, macs_ratio: float | None = None, extra: str = "") -> str:
    """E.g. "beats the paper's decoder by 0.41 dB PSNR (95% CI +0.22 to +0.60, 3 seeds) at 38 % of its MACs,
    outside seed noise"; "within seed noise of ..."; "worse than ... by ..."."""
    who = REFERENCE_NAMES.get(reference, reference)
    unit = UNITS[metric][0]
    macs = f" at {100 * macs_ratio:.0f} % of its MACs" if macs_ratio is not None and math.isfinite(macs_ratio) else ""
    extra = f"; {extra}" if extra else ""
    if p.n == 0:
        return f"no seed finished for both it and {who}"
    if p.n < 2:
        return f"one seed in common with {who}: {amount(metric, p.mean)} {unit}{macs}, no confidence interval " \
               f"(confirm with more seeds){extra}"
    ci = f"(95% CI {amount(metric, p.lo)} to {amount(metric, p.hi)}, {p.n} seeds{extra})"
    if not p.outside_noise:
        return f"within seed noise of {who}: {amount(metric, p.mean)} {unit} {ci}{macs}"
    better = (p.mean > 0) == HIGHER_IS_BETTER[metric]
    head = f"beats {who} by" if better else f"worse than {who} by"
    return f"{head} {amount(metric, p.mean, signed=False)} {unit} {ci}{macs}, outside seed noise"


def verdict_for(study_dir: str | Path, config_id: str) -> str | None:
    """The confirmation verdict of decoder ``config_id`` in ``study_dir/confirm/confirm.csv`` (for an export's
    card); None when it was not confirmed."""
    path = Path(study_dir) / CONFIRM_DIR / CSV
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, dtype={"config_id": str})
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None
    rows = table[table["config_id"] == config_id] if "config_id" in table else table.iloc[0:0]
    if rows.empty or "verdict" not in rows or not isinstance(rows.iloc[0]["verdict"], str):
        return None
    r = rows.iloc[0]
    return f"{r['verdict']} ({int(r['seeds'])} seeds x {int(r['steps'])} steps)"
