"""Export trained candidates as self-contained codecs: config.json, codec.pt and a short card."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import space
from asymllic.files import copy_file, write_text

from . import objectives


def pick(df: pd.DataFrame, part: str, top: int | None = None, trial: int | None = None) -> pd.DataFrame:
    """Trial ``trial``, or the ``top`` Pareto trials ranked by the first objective."""
    if trial is not None:
        rows = df[df["number"] == trial]
        if rows.empty or rows.iloc[0]["state"] != "COMPLETE":
            raise space.ConfigError("trial", f"trial {trial} is not a complete trial of this study")
        return rows
    front = df[df["pareto"]]
    first, direction = objectives.OBJECTIVES[part][0]
    return front.sort_values(first, ascending=direction == "minimize").head(top or 1)


def card(row: pd.Series, spec: dict, cfg: space.CodecConfig) -> str:
    fig = {k: row.get(k) for k in ("psnr", "bpp", "estimated_bpp", "ms_ssim", "decoding_time", "decoder_gmacs",
                                   "decoder_mparams", "decoder_gmacs_thop", "decoder_mparams_thop")}
    lines = [f"# Decoder {space.config_id(cfg)} (study {spec.get('study')}, trial {row['number']})", "",
             "## Metrics (held-out photos)", ""]
    lines += [f"- {k}: {v:.4f}" if isinstance(v, float) else f"- {k}: {v}" for k, v in fig.items() if v is not None]
    lines += ["", "## How it was trained", "",
              f"- part searched: {spec.get('part')}, training schedule: {spec.get('schedule')}, lambda {spec.get('lmbda')}",
              f"- frozen teacher: {spec.get('teacher')}",
              f"- steps per candidate: {spec.get('steps') or 'schedule default'}, seed {spec.get('seed')}",
              "", "## Use", "", "```", "asymllic compress IN.png OUT.alic --codec <this folder>",
              "asymllic decompress OUT.alic OUT.png --codec <this folder>",
              "asymllic complexity <this folder>/config.json", "```", ""]
    return "\n".join(lines)


def export(df: pd.DataFrame, spec: dict, out_root: Path, top: int | None = None, trial: int | None = None) -> list:
    written = []
    for _, row in pick(df, spec.get("part", "synthesis"), top, trial).iterrows():
        cfg = space.from_dict(json.loads(row["config_json"]))
        folder = Path(out_root) / space.config_id(cfg)
        folder.mkdir(parents=True, exist_ok=True)
        space.save(cfg, folder / "config.json")
        src = Path(row["checkpoint"])
        if not src.is_file():
            raise space.ConfigError("checkpoint", f"trial {row['number']}'s checkpoint {src} is missing")
        copy_file(src, folder / "codec.pt")
        write_text(card(row, spec, cfg), folder / "card.md")
        written.append(folder)
    return written
