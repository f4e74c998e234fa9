"""BD-rate and BD-PSNR (Bjøntegaard deltas) of two RD curves in CompressAI's results format (``results.bpp`` and
``results[metric]``), through the ``bjontegaard`` package (akima, points need not match), in this project's words.

BD-rate (%, negative is better) averages the rate difference along ``metric``; BD-PSNR (dB, positive is better)
averages the ``metric`` difference along log10 bpp. Each averages over the range both curves cover along its
axis: where that is less than ``MIN_OVERLAP`` of the range either covers (``bd_overlap``), a ``BDOverlapWarning``
says so in one line (``overlap_note``); curves that do not overlap, a curve of fewer than 2 points or a curve
whose lists differ in length are a one-line ValueError. bjontegaard's own warnings never pass through.
``bd_row``: both figures of one pair of curves, nan with the reason in ``note`` where one cannot be had.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

METRIC = "psnr-rgb"  # the quality key of CompressAI's results format the BD figures use by default
KODAK_ANCHORS = ("bpg_444_x265_ycbcr.json", "vtm.json")  # the packaged Kodak curves ``bd_rates(kodak=True)`` adds
MIN_OVERLAP = 0.75  # below this share of common range, a BD figure averages over a small part of the curves
RATE, PSNR = "rate", "psnr"  # the two figures: BD-rate (along the metric), BD-PSNR (along log10 bpp)
NAMES = {RATE: "BD-rate", PSNR: "BD-PSNR"}


class BDOverlapWarning(UserWarning):
    """Two RD curves overlap little: the BD figure averages over the common part only (said in one line)."""


def _axis(curve: dict, metric: str, figure: str) -> np.ndarray:
    """The values ``figure`` integrates along: ``metric`` for BD-rate, log10 bpp for BD-PSNR."""
    r = curve["results"]
    return np.asarray(r[metric], float) if figure == RATE else np.log10(np.asarray(r["bpp"], float))


def bd_overlap(anchor: dict, test: dict, metric: str = METRIC, figure: str = RATE) -> tuple:
    """(share, common, union) of the two curves along the axis ``figure`` integrates over (bjontegaard's measure):
    ``metric`` for BD-rate (``RATE``), log10 bpp for BD-PSNR (``PSNR``). ``share``: the common range of both curves
    over the range either covers; ``common`` and ``union``: (low, high) pairs in ``metric``'s units or in bpp,
    ``common`` None when they do not overlap."""
    a, t = _axis(anchor, metric, figure), _axis(test, metric, figure)
    lo, hi = max(a.min(), t.min()), min(a.max(), t.max())
    union = (min(a.min(), t.min()), max(a.max(), t.max()))
    width = union[1] - union[0]
    share = float(max(hi - lo, 0.0) / width) if width > 0 else 0.0
    unit = float if figure == RATE else (lambda v: float(10 ** v))
    return share, ((unit(lo), unit(hi)) if hi > lo else None), (unit(union[0]), unit(union[1]))


def _note(overlap: tuple, metric: str, figure: str) -> str:
    share, common, union = overlap
    if share >= MIN_OVERLAP:
        return ""
    if figure == RATE:
        axis, unit, fmt = metric, " dB" if metric.startswith("psnr") else "", ".2f"
    else:
        axis, unit, fmt = "log bpp", " bpp", ".3f"
    span = f"{union[0]:{fmt}}-{union[1]:{fmt}}{unit}"
    if common is None:
        return f"the curves do not overlap in {axis} ({span} between them): no {NAMES[figure]}"
    return (f"overlap {100 * share:.0f} % of the curves' joint {axis} range ({common[0]:{fmt}}-{common[1]:{fmt}}{unit} "
            f"of {span}); the {NAMES[figure]} averages over that part only")


def overlap_note(anchor: dict, test: dict, metric: str = METRIC, figure: str = RATE) -> str:
    """One line when the curves overlap on less than ``MIN_OVERLAP`` of their joint range along the axis ``figure``
    integrates over (see ``bd_overlap``), else ""."""
    return _note(bd_overlap(anchor, test, metric, figure), metric, figure)


def _bd(anchor: dict, test: dict, metric: str, figure: str) -> float:
    """The BD figure, the overlap warned in one line; bjontegaard's own warnings are dropped."""
    import bjontegaard as bd

    name = NAMES[figure]
    for curve in (test, anchor):
        r = curve["results"]
        if len(r["bpp"]) != len(r[metric]):
            raise ValueError(f"{name}: {curve.get('name')!r} has {len(r['bpp'])} bpp values and {len(r[metric])} "
                             f"{metric} values")
        if len(r["bpp"]) < 2:
            raise ValueError(f"{name} needs at least 2 RD points in {curve.get('name')!r} (got {len(r['bpp'])}); "
                             "evaluate several lambdas")
    overlap = bd_overlap(anchor, test, metric, figure)
    note = _note(overlap, metric, figure)
    if overlap[1] is None:
        raise ValueError(note)
    ra, da = anchor["results"]["bpp"], anchor["results"][metric]
    rt, dt = test["results"]["bpp"], test["results"][metric]
    delta = bd.bd_rate if figure == RATE else bd.bd_psnr
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        value = float(delta(ra, da, rt, dt, method="akima", require_matching_points=False))
    if note:
        warnings.warn(note, BDOverlapWarning, stacklevel=3)
    return value


def bd_rate(anchor: dict, test: dict, metric: str = METRIC) -> float:
    """BD-rate (%) of ``test`` against ``anchor`` (akima, points need not match); negative is better. Curves that
    overlap on less than ``MIN_OVERLAP`` of their joint ``metric`` range give a ``BDOverlapWarning`` in this
    project's words (``overlap_note``); curves that do not overlap are a ValueError."""
    return _bd(anchor, test, metric, RATE)


def bd_psnr(anchor: dict, test: dict, metric: str = METRIC) -> float:
    """BD-PSNR (dB, or ``metric``'s unit) of ``test`` against ``anchor`` (akima, points need not match); positive
    is better. Curves that overlap on less than ``MIN_OVERLAP`` of their joint log10 bpp range give a
    ``BDOverlapWarning`` in this project's words (``overlap_note``); curves that do not overlap are a ValueError."""
    return _bd(anchor, test, metric, PSNR)


def bd_row(test: dict, anchor: dict, metric: str = METRIC) -> dict:
    """BD-rate (%) and BD-PSNR (dB) of ``test`` against ``anchor``; a figure that cannot be had (too few points,
    curves that do not overlap) is nan with the reason in ``note``, as are the overlap warnings."""
    row = {"test": test.get("name"), "anchor": anchor.get("name"), "bd_rate_pct": math.nan, "bd_psnr_db": math.nan,
           "note": ""}
    notes = []
    for key, fn in (("bd_rate_pct", bd_rate), ("bd_psnr_db", bd_psnr)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                row[key] = float(fn(anchor, test, metric))
            except Exception as e:  # noqa: BLE001 - too few points, no overlap, a curve akima cannot follow
                notes.append(f"{key}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        notes += [f"{key}: {w.message}" for w in caught]
    if len(test["results"]["bpp"]) < 2:
        notes = [f"one RD point in {test.get('name')!r}: give teachers of several lambdas for BD figures"]
    row["note"] = "; ".join(dict.fromkeys(notes))
    return row


def bd_rates(tests, anchors=(), metric: str = METRIC, kodak: bool = False) -> list:
    """``asymllic bdrate``: the BD-rate of each test curve against each anchor (CompressAI-format JSON files or
    loaded curves; ``kodak`` adds the packaged BPG and VTM Kodak curves), as dicts of ``test``, ``anchor`` (their
    names), ``bd_rate_pct`` (nan where none can be had) and ``note`` (why not, or how little the curves overlap,
    in one line). No anchor is a one-line ``space.ConfigError``."""
    from pathlib import Path

    from .evaluate import load_results

    anchors = list(anchors)
    if kodak:
        from space.anchors import kodak_dir

        anchors += [kodak_dir() / f for f in KODAK_ANCHORS if (kodak_dir() / f).exists()]
    if not anchors:
        from space import ConfigError

        raise ConfigError("anchor", "at least one anchor curve is needed (--anchor JSON, or --kodak)")
    load = lambda c: c if isinstance(c, dict) else load_results(c)  # noqa: E731
    named = lambda c, ref: c.get("name") or (Path(ref).name if not isinstance(ref, dict) else "?")  # noqa: E731
    rows = []
    for ref in tests:
        test = load(ref)
        for aref in anchors:
            anchor = load(aref)
            row = {"test": named(test, ref), "anchor": named(anchor, aref), "bd_rate_pct": math.nan, "note": ""}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    row["bd_rate_pct"] = float(bd_rate(anchor, test, metric))
                except ValueError as e:
                    row["note"] = str(e)
            row["note"] = "; ".join([row["note"]] * bool(row["note"]) + [str(w.message) for w in caught
                                                                          if issubclass(w.category, BDOverlapWarning)])
            rows.append(row)
    return rows
