"""What a confirmation (:func:`search.confirm.confirm`) reports, from its runs' records (``confirm.json``, one per
decoder and seed): one row per run (``runs_frame``), one row per decoder with the mean and std over seeds of the
test figures and, against each reference, the difference paired by seed with its 95 % t interval and the verdict
(``summarize``, through :mod:`search.verdicts`) and that summary as a Markdown page (``markdown``).
``write_report`` writes them into ``<study>/confirm/``: ``confirm.csv``, ``confirm_runs.csv``, ``confirm.md`` and
``confirm.html`` (error bars; ``png``: also ``confirm.png``).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .spec import SearchSpec
from .trial import COMPLETE, FAILED
from .verdicts import CSV, METRICS, UNITS, amount, paired, seed_text, verdict, verdict_metric

MD, RUNS_CSV, FIGURE = "confirm.md", "confirm_runs.csv", "confirm"


def runs_frame(records: list) -> pd.DataFrame:
    """One row per (decoder, seed) record: label, config id, seed, status, test figures, decoder MACs."""
    rows = []
    for rec in records:
        r = rec["record"]
        row = {k: rec.get(k) for k in ("label", "kind", "trial", "reference", "config_id", "seed", "steps", "status",
                                       "reason", "seconds")}
        row.update({k: r["figures"].get(k) for k in ("decoder_gmacs", "decoder_mparams", "decoder_ms")
                    if k in r["figures"]})
        row.update({k: v for k, v in r["metrics"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        row["checkpoint"] = r["metrics"].get("checkpoint")
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(runs: pd.DataFrame, part: str, order: list | None = None) -> pd.DataFrame:
    """One row per decoder: mean and std over its complete seeds of the test figures, and for each reference
    among the decoders the paired difference (95 % CI), MAC ratio and verdict."""
    if runs.empty:
        return pd.DataFrame()
    done = runs[runs["status"] == COMPLETE]
    ids = order or list(dict.fromkeys(runs["config_id"]))
    refs = {}  # reference name -> config id
    for cid in ids:
        first = runs[runs["config_id"] == cid].iloc[0]
        if isinstance(first.get("reference"), str) and first["kind"] == "reference":
            refs[first["reference"]] = cid
    key = verdict_metric(part)

    def per_seed(cid: str, metric: str) -> dict:
        rows = done[done["config_id"] == cid]
        col = f"test_{metric}"
        if col not in rows:
            return {}
        return {int(s): float(v) for s, v in zip(rows["seed"], rows[col]) if v is not None and math.isfinite(v)}

    out = []
    for cid in ids:
        mine = runs[runs["config_id"] == cid]
        first = mine.iloc[0]
        ok = done[done["config_id"] == cid]
        row = {"decoder": first["label"], "kind": first["kind"],
               "trial": int(first["trial"]) if pd.notna(first.get("trial")) else None,
               "config_id": cid, "decoder_gmacs": first.get("decoder_gmacs"), "seeds": len(ok),
               "failed": int((mine["status"] == FAILED).sum()), "steps": int(first["steps"])}
        if "decoder_ms" in mine and pd.notna(first.get("decoder_ms")):
            row["decoder_ms"] = float(ok["decoder_ms"].mean()) if len(ok) else first["decoder_ms"]
        for m in METRICS:
            vals = list(per_seed(cid, m).values())
            row[f"test_{m}_mean"] = float(np.mean(vals)) if vals else math.nan
            row[f"test_{m}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan
        texts = []
        for ref, rid in refs.items():
            if rid == cid:
                continue
            ref_macs = _macs(runs, rid)
            ratio = row["decoder_gmacs"] / ref_macs if ref_macs and pd.notna(row["decoder_gmacs"]) else None
            row[f"macs_vs_{ref}"] = ratio
            diffs = {m: paired(per_seed(cid, m), per_seed(rid, m)) for m in METRICS}
            for m, p in diffs.items():
                row[f"test_{m}_vs_{ref}"] = p.mean
                row[f"test_{m}_vs_{ref}_lo"] = p.lo
                row[f"test_{m}_vs_{ref}_hi"] = p.hi
            extra = ""
            if part == "joint":  # the verdict is on the RD cost; say what it is made of
                bits = [f"PSNR {amount('psnr', diffs['psnr'].mean)} dB" if math.isfinite(diffs["psnr"].mean) else "",
                        f"bpp {amount('bpp', diffs['bpp'].mean)}" if math.isfinite(diffs["bpp"].mean) else ""]
                extra = ", ".join(b for b in bits if b)
            text = verdict(diffs[key], key, ref, ratio, extra)
            row[f"verdict_vs_{ref}"] = text
            texts.append(text)
        row["verdict"] = "; ".join(texts)
        out.append(row)
    table = pd.DataFrame(out)
    table["trial"] = table["trial"].astype("Int64")  # a trial number, or none for a reference or a config
    return table


def _macs(runs: pd.DataFrame, cid: str) -> float | None:
    v = runs[runs["config_id"] == cid]["decoder_gmacs"]
    v = v.dropna() if len(v) else v
    return float(v.iloc[0]) if len(v) and float(v.iloc[0]) > 0 else None


def _cell(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def markdown(summary: pd.DataFrame, spec: SearchSpec, steps: int, seeds: list) -> str:
    """The summary as a Markdown page: settings, one table row per decoder, the verdicts."""
    lines = [f"# Confirmation of study {spec.study} ({spec.part})", "",
             f"- seeds {seed_text(seeds)} x {steps} steps per decoder (the seeds column: how many finished), schedule "
             f"{spec.schedule} (batch {spec.training_schedule().batch}), lambda {spec.lmbda}",
             f"- teacher: {spec.teacher}", f"- training images: {spec.data or 'bundled'}; figures on the test photos "
             f"({spec.test_data or 'bundled test split'}), mean ± std over seeds",
             f"- verdicts on {verdict_metric(spec.part)}: paired by seed, 95 % t confidence interval", ""]
    if summary.empty:
        return "\n".join(lines + ["No run finished yet.", ""])
    head = ["decoder", "config id", "GMACs", "seeds"] + [f"test {m}" for m in METRICS]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in summary.iterrows():
        cells = [str(r["decoder"]), r["config_id"], _cell(r["decoder_gmacs"], 2),
                 f"{r['seeds']}" + (f" ({r['failed']} failed)" if r["failed"] else "")]
        for m in METRICS:
            mean, std = r[f"test_{m}_mean"], r[f"test_{m}_std"]
            digits = UNITS[m][1]
            cells.append(_cell(mean, digits) + (f" ± {std:.{digits}f}" if math.isfinite(std) else ""))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Verdicts", ""]
    for _, r in summary.iterrows():
        if r["verdict"]:
            lines.append(f"- {r['decoder']} ({r['config_id']}): {r['verdict']}")
    return "\n".join(lines) + "\n"


def write_report(records: list, spec: SearchSpec, steps: int, seeds: list, order: list, folder: Path,
                 png: bool = False) -> tuple:
    """(summary, runs, files): the ``records`` (one per decoder and seed, decoders in ``order`` of config id) as
    tables, written with the Markdown page and the figure into ``folder``."""
    from asymllic.files import write_text

    from .plots.confirm import confirm_figure
    from .plots.io import write_figure

    folder = Path(folder)
    runs = runs_frame(records)
    summary = summarize(runs, spec.part, order)
    files = [write_text(summary.to_csv(index=False), folder / CSV),
             write_text(runs.to_csv(index=False), folder / RUNS_CSV),
             write_text(markdown(summary, spec, steps, seeds), folder / MD)]
    files += write_figure(confirm_figure(summary, spec.part, title=f"study {spec.study}: seeds {seed_text(seeds)} x "
                                                                   f"{steps} steps"), folder / FIGURE, png=png)
    return summary, runs, files
