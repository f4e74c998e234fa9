"""Export trained candidates as self-contained codecs: config.json, codec.pt and a short card.

Which trials: by default the best candidate, never a reference preset (the teacher or the paper's decoder,
which every study trains first for comparison) unless ``include_references``; ``budget`` keeps to decoders
within that many GMACs; ``top`` spreads K picks along the Pareto front from the cheapest to the best;
``trial`` names one trial (a reference too). The front is the study's own: quality against decoder MACs, or
against decode time when it was searched with ``--objective latency`` (the budget stays in GMACs). Each pick
knows where it sits on the front, and its card says so.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

import space
from asymllic.files import write_text

from . import objectives
from .spec import REFERENCES, SearchSpec
from .table import pareto_mask

MACS = "decoder_gmacs"
MS = "decoder_ms"


@dataclass
class Pick:
    """One trial chosen for export and where it sits among the candidates."""
    row: pd.Series
    part: str
    rank: int | None  # 1 = the cheapest point of the Pareto front; None = not on it
    front_size: int
    cheaper_on_front: int  # Pareto points cheaper than this trial
    best: bool  # the best first objective on the front
    references_left_out: bool  # complete reference trials the front was drawn without
    budget: float | None = None
    teacher: pd.Series | None = None  # the study's teacher reference trial, when it has one
    cost: str = "macs"  # the study's cost objective: macs or latency
    references: list | None = None  # the study's complete reference trials with every objective (rows)

    @property
    def number(self) -> int:
        return int(self.row["number"])

    @property
    def reference(self) -> str | None:
        preset = self.row.get("preset")
        return preset if isinstance(preset, str) and preset in REFERENCES else None

    def position(self) -> str:
        """E.g. '2nd cheapest of 5 Pareto points (reference presets left out)'."""
        n = self.front_size
        scope = " (reference presets left out)" if self.references_left_out else ""
        first = objectives.names(self.part)[0]
        cheap, cheaper = ("cheapest", "cheaper") if self.cost == "macs" else ("fastest", "faster")
        if self.cost != "macs":
            scope = f" (quality vs decode time{'; reference presets left out' if self.references_left_out else ''})"
        if self.rank is None:
            many = f"all {n} are" if self.cheaper_on_front == n > 1 else f"{self.cheaper_on_front} of them are"
            return f"not on the Pareto front of {n} points{scope}: dominated; {many} {cheaper}"
        if n == 1:
            return f"the only Pareto point{scope}"
        where = cheap if self.rank == 1 else f"{ordinal(self.rank)} {cheap}"
        return f"{where} of {n} Pareto points{scope}" + (f", the best {first} on the front" if self.best else "")

    def versus_teacher(self) -> str | None:
        """E.g. "0.35x the teacher's decoder MACs, -0.40 dB"; None when the study has no teacher trial."""
        t = self.teacher
        if t is None or not (_finite(t.get(MACS)) and t[MACS] > 0 and _finite(self.row.get(MACS))):
            return None
        parts = [f"{self.row[MACS] / t[MACS]:.2f}x the teacher's decoder MACs"]
        if self.cost != "macs" and _finite(self.row.get(MS)) and _finite(t.get(MS)) and t[MS] > 0:
            parts.append(f"{self.row[MS] / t[MS]:.2f}x its decode time")
        for name in objectives.names(self.part):
            if name in (MACS, MS) or not (_finite(self.row.get(name)) and _finite(t.get(name))):
                continue
            d = float(self.row[name]) - float(t[name])
            parts.append(f"{d:+.2f} dB" if name == "psnr" else
                         f"{d:+.4f} {name}" + (f" ({d / t[name]:+.1%})" if t[name] else ""))
        return ", ".join(parts) + f" (teacher: trial {int(t['number'])})"

    def dominated_by(self) -> list:
        """The reference trials that dominate this one (no worse in every objective, better in one)."""
        return [r for r in self.references or () if int(r["number"]) != self.number
                and dominates(r, self.row, self.part, self.cost)]

    def versus_references(self) -> list:
        """One line per reference trial of the study: which dominates which, else what each is better in."""
        names, lines = objectives.names(self.part, self.cost), []
        for r in self.references or ():
            if int(r["number"]) == self.number:
                continue
            who = f"reference {r['preset']} (trial {int(r['number'])})"
            if dominates(r, self.row, self.part, self.cost):
                lines.append(f"{who} DOMINATES this decoder: no worse in {', '.join(names)}, better in "
                             f"{', '.join(_better(r, self.row, self.part, self.cost))}")
            elif dominates(self.row, r, self.part, self.cost):
                lines.append(f"this decoder dominates {who}")
            else:
                better = _better(self.row, r, self.part, self.cost)
                worse = _better(r, self.row, self.part, self.cost)
                lines.append(f"vs {who}: better in {', '.join(better) or 'nothing'}, worse in "
                             f"{', '.join(worse) or 'nothing'}")
        return lines

    def within_budget(self) -> str | None:
        if self.budget is None:
            return None
        g = float(self.row[MACS])
        return f"{self.budget:g} GMACs; this decoder needs {g:.3f} GMACs ({g / self.budget:.0%} of it)"

    def summary(self) -> str:
        """One line for the command line."""
        first = objectives.names(self.part)[0]
        bits = [f"trial {self.number}" + (f" (reference {self.reference})" if self.reference else ""),
                f"{first} {float(self.row[first]):.4f}" if _finite(self.row.get(first)) else None,
                f"{float(self.row[MACS]):.3f} GMACs" if _finite(self.row.get(MACS)) else None,
                f"{float(self.row[MS]):.2f} ms" if self.cost != "macs" and _finite(self.row.get(MS)) else None,
                self.position(), self.versus_teacher()]
        line = ", ".join(b for b in bits if b)
        by = self.dominated_by()
        if by:
            line += ("; DOMINATED by " + ", ".join(f"reference {r['preset']} (trial {int(r['number'])})" for r in by)
                     + ": that reference is at least as good in every objective")
        elif self.references:
            line += "; no reference dominates it"
        return line


@dataclass
class Exported:
    pick: Pick
    folder: Path


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def dominates(a: pd.Series, b: pd.Series, part: str, cost: str = "macs") -> bool:
    """Whether trial ``a`` dominates trial ``b``: no worse in every objective of ``part``, better in one."""
    better = _better(a, b, part, cost)
    return bool(better) and not _better(b, a, part, cost)


def _better(a: pd.Series, b: pd.Series, part: str, cost: str) -> list:
    """The objectives in which ``a`` is strictly better than ``b``."""
    return [n for n, d in zip(objectives.names(part, cost), objectives.directions(part, cost))
            if (float(a[n]) > float(b[n]) if d == "maximize" else float(a[n]) < float(b[n]))]


def references(df: pd.DataFrame, part: str, cost: str = "macs") -> list:
    """The complete reference trials with every objective, as rows (trial number order)."""
    rows = df[_usable(df, part, cost) & reference_mask(df)]
    return [row for _, row in rows.sort_values("number").iterrows()]


def reference_mask(df: pd.DataFrame) -> np.ndarray:
    """True for the reference presets' trials (user attr ``preset`` is 'paper' or 'teacher')."""
    if "preset" not in df:
        return np.zeros(len(df), dtype=bool)
    return df["preset"].isin(REFERENCES).to_numpy()


def candidates(df: pd.DataFrame, part: str, include_references: bool = False, cost: str = "macs") -> pd.DataFrame:
    """Complete trials with every objective, the reference presets left out unless asked, with their own
    ``front`` column (Pareto among these), sorted cheapest first (ties: better objectives first)."""
    pool = df[_usable(df, part, cost) & (include_references | ~reference_mask(df))].copy()
    pool["front"] = pareto_mask(pool, part, cost) if len(pool) else np.zeros(0, dtype=bool)
    return _sorted(pool, part, cost)


def _usable(df: pd.DataFrame, part: str, cost: str) -> np.ndarray:
    names = objectives.names(part, cost)
    return (df["state"] == "COMPLETE").to_numpy() & df.reindex(columns=names).notna().all(axis=1).to_numpy()


def _sorted(rows: pd.DataFrame, part: str, cost: str) -> pd.DataFrame:
    """Cheapest first by the study's cost, ties by the other objectives."""
    names = objectives.names(part, cost)
    return rows.iloc[_order(rows, part, cost, [names[-1]] + names[:-1])]


def _order(rows: pd.DataFrame, part: str, cost: str, keys: list) -> np.ndarray:
    """Positions of ``rows`` sorted by ``keys`` in turn, each in its objective's better-first direction."""
    dirs = dict(zip(objectives.names(part, cost), objectives.directions(part, cost)))
    cols = [rows[k].to_numpy(dtype=float) * (-1.0 if dirs[k] == "maximize" else 1.0) for k in keys]
    return np.lexsort(cols[::-1]) if len(rows) else np.zeros(0, dtype=int)


def best_index(front: pd.DataFrame, part: str, cost: str = "macs") -> int:
    """Position in ``front`` of the best first objective (ties: the other objectives, then the cheaper)."""
    return int(_order(front, part, cost, objectives.names(part, cost))[0])


def spread(n: int, k: int, best: int) -> list:
    """``k`` distinct positions among ``n`` points sorted cheapest first, evenly spaced by rank; with k >= 2
    they include the cheapest (0) and ``best``; k = 1 is ``best`` alone."""
    if k >= n:
        return list(range(n))
    if k == 1:
        return [best]
    picks = [int(math.floor(i * (n - 1) / (k - 1) + 0.5)) for i in range(k)]  # distinct: the step is >= 1
    if best not in picks:  # a three-objective front's best need not be its most expensive point
        nearest = min(range(1, k), key=lambda i: abs(picks[i] - best))
        picks[nearest] = best
    return sorted(picks)


def pick(df: pd.DataFrame, part: str, top: int | None = None, trial: int | Sequence[int] | None = None,
         budget: float | None = None, include_references: bool = False, cost: str = "macs") -> list:
    """The trials to export, as :class:`Pick` records, cheapest first.

    ``trial``: that complete trial, or those trials (a reference preset too). Otherwise the candidates' Pareto front (the
    reference presets left out unless ``include_references``; quality against ``cost``, the study's
    objective), drawn among those within ``budget`` GMACs if given: ``top`` K points spread along it from the
    cheapest to the best (default 1: the best, i.e. the best candidate within the budget, among the front's
    points no reference trial dominates when there is one). Each pick is compared with every reference."""
    if top is not None and top < 1:
        raise space.ConfigError("top", f"{top}: export at least 1 trial")
    if budget is not None and not budget > 0:
        raise space.ConfigError("budget", f"{budget}: a decoder MAC budget is a positive number of GMACs")
    teacher = _teacher(df)
    refs = references(df, part, cost)
    if trial is not None:
        return [_given(df, number, part, include_references, budget, teacher, cost, refs)
                for number in ([trial] if isinstance(trial, int) else trial)]

    pool = candidates(df, part, include_references, cost)
    done = (df["state"] == "COMPLETE").to_numpy()
    if pool.empty:
        refs = df[reference_mask(df) & done]
        hint = (f"; only the reference presets ({', '.join(sorted(set(refs['preset'])))}) are, "
                "--include-references exports them" if not include_references and len(refs) else "")
        raise space.ConfigError("export", f"no complete candidate in this study{hint}")
    within = pool
    if budget is not None:
        within = pool[pool[MACS] <= budget] if MACS in pool else pool.iloc[:0]
        if within.empty:
            if MACS not in pool or pool[MACS].isna().all():
                raise space.ConfigError("budget", "no candidate of this study has its decoder MACs counted")
            cheapest = pool.loc[pool[MACS].idxmin()]
            hint = ""
            if not include_references:
                fits = df[reference_mask(df) & done & (df[MACS] <= budget).to_numpy()]
                if len(fits):
                    hint = f" (reference {', '.join(fits['preset'])} fits: --include-references)"
            raise space.ConfigError("budget", f"no candidate fits in {budget:g} GMACs: the cheapest, trial "
                                              f"{int(cheapest['number'])}, needs {float(cheapest[MACS]):.3f} GMACs"
                                    + hint)
    front = within[pareto_mask(within, part, cost)]  # the front of what fits the budget
    if (top or 1) == 1:  # the one default pick: a point no reference dominates, when the front has one
        free = [i for i in range(len(front))
                if not any(dominates(r, front.iloc[i], part, cost) for r in refs
                           if int(r["number"]) != int(front.iloc[i]["number"]))]
        if free and len(free) < len(front):
            sub = front.iloc[free]
            chosen = [free[best_index(sub, part, cost)]]
        else:
            chosen = [best_index(front, part, cost)]
    else:
        chosen = spread(len(front), top, best_index(front, part, cost))
    return [_locate(df, pool, int(front.iloc[i]["number"]), part, include_references, budget, teacher, cost, refs)
            for i in chosen]


def _teacher(df: pd.DataFrame) -> pd.Series | None:
    if "preset" not in df or MACS not in df:
        return None
    rows = df[(df["preset"] == "teacher").to_numpy() & df[MACS].notna().to_numpy()]
    if rows.empty:
        return None
    done = rows[rows["state"] == "COMPLETE"]  # a complete one has the metrics too; a pruned one MACs only
    return (done if len(done) else rows).iloc[0]


def _locate(df: pd.DataFrame, pool: pd.DataFrame, number: int, part: str, include: bool, budget, teacher,
            cost: str, refs: list | None = None) -> Pick:
    """Where trial ``number`` sits on ``pool``'s front (cheapest first by ``cost``)."""
    front = pool[pool["front"]]
    row = pool[pool["number"] == number].iloc[0]
    on = bool(row["front"])
    rank = int(np.flatnonzero(front["number"].to_numpy() == number)[0]) + 1 if on else None
    best = on and int(front.iloc[best_index(front, part, cost)]["number"]) == number
    axis = objectives.COSTS[cost]
    left_out = not include and bool((reference_mask(df) & (df["state"] == "COMPLETE").to_numpy()).any())
    return Pick(row=row, part=part, rank=rank, front_size=len(front), cheaper_on_front=int((front[axis] < row[axis]).sum()),
                best=best, references_left_out=left_out, budget=budget, teacher=teacher, cost=cost,
                references=refs)


def _typed(spec: SearchSpec | dict) -> SearchSpec:
    """A study's spec: typed already, or as stored (a mapping; missing keys take their declared defaults)."""
    return spec if isinstance(spec, SearchSpec) else SearchSpec.from_dict(spec, strict=False)


def card(p: Pick, spec: SearchSpec | dict, cfg: space.CodecConfig, onnx: dict | None = None) -> str:
    spec = _typed(spec)
    row = p.row
    fig = {k: row.get(k) for k in ("psnr", "bpp", "estimated_bpp", "ms_ssim", "decoding_time", "decoder_gmacs",
                                   "decoder_ms", "decoder_mparams", "decoder_gmacs_thop", "decoder_mparams_thop")}
    lines = [f"# Decoder {space.config_id(cfg)} (study {spec.study}, trial {row['number']})", "",
             "## Where it sits", "", f"- Pareto front: {p.position()}"]
    if p.reference:
        lines.append(f"- this is the reference preset '{p.reference}', trained for comparison, not a searched candidate")
    lines += [f"- vs teacher: {v}" for v in [p.versus_teacher()] if v]
    by = p.dominated_by()
    if by:
        lines.append("- **a reference dominates this decoder**: "
                     + ", ".join(f"{r['preset']} (trial {int(r['number'])})" for r in by)
                     + " is at least as good in every objective; prefer it unless this decoder is wanted for "
                       "another reason")
    lines += [f"- against the references: {v}" for v in p.versus_references()]
    lines += [f"- decoder MAC budget: {v}" for v in [p.within_budget()] if v]
    from .verdicts import verdict_for

    lines += [f"- confirmed over seeds: {v}" for v in [verdict_for(spec.dir, space.config_id(cfg))] if v]
    lines += ["", "## Metrics (held-out photos)", ""]
    lines += [f"- {k}: {v:.4f}" if isinstance(v, float) else f"- {k}: {v}" for k, v in fig.items()
              if v is not None and not (isinstance(v, float) and math.isnan(v))]
    lines += ["", "## How it was trained", "",
              f"- part searched: {spec.part}, training schedule: {spec.schedule}, lambda {spec.lmbda}",
              f"- frozen teacher: {spec.teacher}",
              f"- steps per candidate: {spec.steps or 'schedule default'}, seed {spec.seed}",
              "", "## Use", "", "```", "asymllic compress IN.png OUT.alic --codec <this folder>",
              "asymllic decompress OUT.alic OUT.png --codec <this folder>",
              "asymllic complexity <this folder>/config.json", "```", ""]
    if onnx:
        lines += ["## g_s.onnx (onnxruntime)", "",
                  f"- checked against torch on {Path(onnx['image']).name} ({onnx['size'][0]}x{onnx['size'][1]}): "
                  f"max abs difference {onnx['max_abs']:.2e} on [0, 1] ({onnx['max_levels']} of 255 levels), "
                  f"PSNR {onnx['psnr_torch']:.3f} dB torch vs {onnx['psnr_onnx']:.3f} dB onnxruntime "
                  f"({onnx['psnr_diff_db']:+.4f} dB); exporter {onnx['exporter']}",
                  "- `asymllic decompress OUT.alic OUT.png --model <this folder> --runtime onnx` runs g_s in "
                  "onnxruntime; the entropy decoding and the hyperprior path stay in torch", ""]
    return "\n".join(lines)


def export(df: pd.DataFrame, spec: SearchSpec | dict, out_root: Path, top: int | None = None,
           trial: int | Sequence[int] | None = None, budget: float | None = None, include_references: bool = False,
           onnx: bool = False) -> list:
    """Write each pick (see :func:`pick`) to ``out_root/<config id>/``, with ``onnx`` also ``g_s.onnx`` checked
    against torch on a photo; returns :class:`Exported` records."""
    from asymllic.codec.checkpoint import save_self_contained

    written = []
    spec = _typed(spec)
    part, cost = spec.part, spec.objective
    for p in pick(df, part, top, trial, budget, include_references, cost):
        cfg = space.from_dict(json.loads(p.row["config_json"]))
        src = Path(str(p.row.get("checkpoint") or ""))
        if not src.is_file():
            raise space.ConfigError("checkpoint", f"trial {p.number}'s checkpoint {src} is missing")
        folder = Path(out_root) / space.config_id(cfg)
        folder.mkdir(parents=True, exist_ok=True)
        space.save(cfg, folder / "config.json")
        save_self_contained(src, folder / "codec.pt")  # a trial's checkpoint may read its teacher; an export never
        check = None
        if onnx:
            from asymllic.codec.checkpoint import load_codec
            from asymllic.codec.onnx_runtime import check_synthesis, export_synthesis

            model = load_codec(folder / "codec.pt")
            check = check_synthesis(model, export_synthesis(model, folder / "g_s.onnx"))
        write_text(card(p, spec, cfg, check), folder / "card.md")
        written.append(Exported(p, folder))
    return written


def _given(df: pd.DataFrame, trial: int, part: str, include_references: bool, budget, teacher, cost: str,
           refs) -> "Pick":
    """The pick of one given trial (``pick(trial=...)``)."""
    rows = df[df["number"] == trial]
    if rows.empty or rows.iloc[0]["state"] != "COMPLETE":
        raise space.ConfigError("trial", f"trial {trial} is not a complete trial of this study")
    include = include_references or bool(reference_mask(rows)[0])
    pool = candidates(df, part, include, cost)
    if trial not in set(pool["number"]):
        raise space.ConfigError("trial", f"trial {trial} has no {' and '.join(objectives.names(part, cost))} "
                                         "to export")
    return _locate(df, pool, trial, part, include, budget, teacher, cost, refs)
