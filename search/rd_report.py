"""What an RD curve run (:func:`search.rd.rd_curve`) reports, from its finished lambdas: the decoder's and the
teachers' curves (CompressAI's results format, one point per lambda, sorted by bpp, the lambdas in
``results.lmbda``), their BD-rate and BD-PSNR against the teacher and each anchor (``asymllic.evaluation.bd``),
and the files: ``rd-decoder.json``, ``rd-teacher.json``, ``bd.csv`` and ``rd.html`` (``png``: also ``rd.png``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

DECODER_JSON, TEACHER_JSON, BD_CSV, FIGURE = "rd-decoder.json", "rd-teacher.json", "bd.csv", "rd"
BD_COLUMNS = ["test", "anchor", "bd_rate_pct", "bd_psnr_db", "note"]


def curves(points: list, label: str, about: str, photos: str) -> tuple:
    """(decoder curve, teacher curve) from the lambdas' points (``{"decoder", "teacher"}``, one-point results each):
    the decoder's named ``label`` (``about``: how it was trained), both evaluated on ``photos``."""
    from asymllic.evaluation.evaluate import merge_points

    decoder = merge_points([p["decoder"] for p in points], label, f"{about}, evaluated on {photos}")
    teacher = merge_points([p["teacher"] for p in points], "teacher", f"the teachers themselves, on {photos}")
    return decoder, teacher


def bd_table(decoder: dict, teacher: dict, anchors: list) -> pd.DataFrame:
    """BD-rate and BD-PSNR of the decoder against the teacher and each anchor, then of the teacher against each
    anchor; one row each (``BD_COLUMNS``), a figure that cannot be had nan with the reason in ``note``."""
    from asymllic.evaluation.bd import bd_row

    rows = [bd_row(decoder, teacher)] + [bd_row(decoder, a) for a in anchors] + [bd_row(teacher, a) for a in anchors]
    return pd.DataFrame(rows, columns=BD_COLUMNS)


def write_report(decoder: dict, teacher: dict, anchors: list, bd: pd.DataFrame, lmbdas: list, folder: Path,
                 png: bool = False) -> list:
    """Both curves as JSON, ``bd`` as CSV and the figure (the curves and ``anchors``, titled with the decoder's
    name, the ``lmbdas`` and its BD-rate against the teacher) in ``folder``; returns the files written."""
    from asymllic.files import write_text

    from .plots.io import write_figure
    from .plots.rd import rd_figure

    folder = Path(folder)
    files = [write_text(json.dumps(decoder, indent=1), folder / DECODER_JSON),
             write_text(json.dumps(teacher, indent=1), folder / TEACHER_JSON),
             write_text(bd.to_csv(index=False), folder / BD_CSV)]
    title = f"{decoder['name']}: {len(lmbdas)} lambdas ({', '.join(f'{lam:g}' for lam in lmbdas)})"
    first = bd.iloc[0]
    if np.isfinite(first["bd_rate_pct"]):
        title += f"; BD-rate vs teacher {first['bd_rate_pct']:+.2f} %"
    return files + write_figure(rd_figure([decoder, teacher], anchors, title=title), folder / FIGURE, png=png)
