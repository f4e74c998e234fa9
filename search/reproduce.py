"""The paper's Tables I-III and Fig. 1 as experiments, measured beside the published figures.

Each table is driven by an experiment file that ships with the package (``search/experiments/<table>.yaml``):
what is trained (the presets of the table's rows), on which teacher, data, schedule and seeds, and which
published curves are compared. A file of the same keys (``config``) replaces some of them, as do the keyword
arguments; an unknown key is a one-line error.

- ``table1``: BD-rate against BPG on Kodak of each published method whose RD curve is packaged
  (``space/anchors_data/kodak``), beside the paper's Table I, with decoder and total complexity from the paper
  and, for the TCM teacher and AsymLLIC, from this project's counting. No training.
- ``table2`` / ``table3``: the four synthesis decoders (PSNR) and the four hyperprior paths (bpp) at lambda
  0.0067, each trained with several seeds through :func:`search.confirm.confirm` on a spec built from the
  experiment (the presets are the picks: no search), with the mean and its 95 % interval, the paper's figure,
  complexity in both conventions, and which pairs of rows the measurement separates beyond seed noise.
- ``fig1``: BD-rate against decoder MACs, the paper's points beside the measured ones (an offline HTML figure).

Every table is written as Markdown and CSV into ``out`` (default ``results/reproduce/<table>/``); Tables II and
III train in ``<root>/reproduce-<table>/confirm/`` (confirm's folders), so a rerun trains only what is not
finished.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import space
from asymllic.evaluation.bd import METRIC
from asymllic.options import DEFAULT_DEVICE, DEFAULT_LMBDA, DEFAULT_ROOT, DEFAULT_SCHEDULE

from .options import SEEDS, TABLES
from .spec import BACKENDS
EXPERIMENTS = Path(__file__).resolve().parent / "experiments"
SIZE = (768, 512)  # where the paper counts MACs (width x height)
PAPER_KEYS = {"table1": "table_I_systems", "table2": "table_II_synthesis_decoder",
              "table3": "table_III_hyperprior_path", "fig1": "table_I_systems"}
# what each experiment file may say, and the defaults of the keys a file leaves out
COMMON = {"table": None, "title": "", "out": None, "root": DEFAULT_ROOT}
CURVES = {"anchor": "bpg_444_x265_ycbcr", "metric": METRIC, "methods": {}, "counted": {}, "curves": {},
          "tolerance": 3.0}
PRECISION = "fp32"  # a reproduction trains as LIC_TCM does (fp32), unless its file or --precision says otherwise
TRAINED = {"part": "synthesis", "lmbda": DEFAULT_LMBDA, "teacher": None, "rows": {}, "data": None, "test_data": None,
           "schedule": DEFAULT_SCHEDULE, "seeds": SEEDS, "steps": None, "batch": None, "backend": BACKENDS[0],
           "device": DEFAULT_DEVICE, "precision": PRECISION, "root": DEFAULT_ROOT, "workers": 1,
           "ray_address": None}
KEYS = {"table1": {**COMMON, **CURVES}, "fig1": {**COMMON, **CURVES}, "table2": {**COMMON, **TRAINED},
        "table3": {**COMMON, **TRAINED}}
CONVENTIONS = ("PSNR on RGB (0..255 peak), bpp of the entropy-coded payload as CompressAI and LIC_TCM count it; "
               "MACs and params at 768x512 in the exact and the paper's (thop) convention")


def _error(message: str):
    from asymllic.errors import AsymllicError

    return AsymllicError(message)


# -- experiment files ----------------------------------------------------------------------------------------

def experiment_file(table: str) -> Path:
    """The packaged experiment file of ``table``."""
    if table not in TABLES:
        raise space.ConfigError("table", f"unknown table {table!r}; choose one of {', '.join(TABLES)} or all")
    path = EXPERIMENTS / f"{table}.yaml"
    if not path.is_file():
        raise _error(f"missing experiment file {path} (the package data is incomplete)")
    return path


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        d = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise _error(f"cannot read experiment file {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise _error(f"{path} is not YAML ({str(e).splitlines()[0]})") from None
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise _error(f"{path}: an experiment file is a mapping of keys (table, teacher, seeds, ...)")
    return d


def _checked(table: str, d: dict, where: str) -> dict:
    unknown = sorted(set(d) - set(KEYS[table]))
    if unknown:
        raise space.ConfigError("config", f"{where}: unknown key(s) {', '.join(unknown)} for {table}; known: "
                                          f"{', '.join(KEYS[table])}")
    if d.get("table") not in (None, table):
        raise space.ConfigError("config", f"{where} is the experiment of {d['table']}, not {table}")
    return d


def experiment(table: str, config: str | Path | dict | None = None, **overrides) -> dict:
    """The settings of ``table``: its packaged file, then ``config`` (a file or a dict of the same keys; a file
    of sections keyed by table gives each table its own), then ``overrides`` that are not None."""
    path = experiment_file(table)
    d = {**KEYS[table], **_checked(table, _read_yaml(path), str(path))}
    if config is not None:
        given = dict(config) if isinstance(config, dict) else _read_yaml(Path(config))
        where = "config" if isinstance(config, dict) else str(config)
        if given and set(given) <= set(TABLES):  # sections, one per table
            given = dict(given.get(table) or {})
        d.update(_checked(table, given, where))
    d.update(_checked(table, {k: v for k, v in overrides.items() if v is not None and k in KEYS[table]},
                      "arguments"))
    d["table"] = table
    return d


def paper_rows(table: str) -> tuple:
    """(columns, {row: values}) of the paper's table behind ``table``."""
    import json

    from space.anchors import paper_tables

    t = json.loads(paper_tables().read_text())[PAPER_KEYS[table]]
    return list(t["columns"]), {k: dict(zip(t["columns"], v)) for k, v in t["rows"].items()}


# -- counting ------------------------------------------------------------------------------------------------

def counted(cfg: space.CodecConfig, component: str | None = None) -> dict:
    """Params (M) and MACs (G) at 768x512 in both conventions: of ``component`` (``g_s``, ``hyperprior``), else
    the decoder and the whole codec."""
    from asymllic.complexity import count

    out = {}
    for conv, suffix in (("exact", ""), ("thop", "_thop")):
        r = count(cfg, SIZE, conv)
        if component:
            c = r.components[component]
            out[f"params_m{suffix}"], out[f"gmacs{suffix}"] = c.params / 1e6, c.macs / 1e9
        else:
            out[f"dec_params_m{suffix}"], out[f"dec_gmacs{suffix}"] = r.decoder.params / 1e6, r.decoder.macs / 1e9
            out[f"tot_params_m{suffix}"], out[f"tot_gmacs{suffix}"] = r.total.params / 1e6, r.total.macs / 1e9
    return out


def _num(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _md_table(frame: pd.DataFrame, columns: dict) -> list:
    """``columns``: {frame column: (header, digits)}; a column the frame lacks is left out."""
    import pandas as pd

    cols = [(c, h, d) for c, (h, d) in columns.items() if c in frame]
    lines = ["| " + " | ".join(h for _, h, _ in cols) + " |", "|" + "---|" * len(cols)]
    for _, r in frame.iterrows():
        lines.append("| " + " | ".join(_num(r[c], d) if d is not None else ("" if pd.isna(r[c]) else str(r[c]))
                                       for c, _, d in cols) + " |")
    return lines


# -- Table I and Fig. 1: the packaged curves -----------------------------------------------------------------

def bd_rows(exp: dict) -> pd.DataFrame:
    """One row per method of the paper's Table I: BD-rate of its packaged Kodak curve against the anchor (nan
    with the reason in ``note`` where there is none), the paper's figures and the counted complexity."""
    import pandas as pd

    import json

    from asymllic.evaluation.bd import BDOverlapWarning, bd_overlap, bd_rate

    from .rd import load_anchor

    _, paper = paper_rows("table1")
    anchor = load_anchor(exp["anchor"])  # a missing anchor: one line naming it
    methods, curves, counts = dict(exp["methods"] or {}), dict(exp["curves"] or {}), dict(exp["counted"] or {})
    unknown = sorted((set(methods) | set(curves) | set(counts)) - set(paper))
    if unknown:
        raise space.ConfigError("methods", f"{', '.join(unknown)}: not a row of the paper's Table I "
                                           f"({', '.join(paper)})")
    rows = []
    for method, published in paper.items():
        row = {"method": method, "curve": "", "bd_rate_pct": math.nan, "paper_bd_rate_pct": published["bd_rate_vs_bpg_pct"],
               "delta_points": math.nan, "within": "", "overlap_pct": math.nan, "note": ""}
        row.update({f"paper_{k}": published[k] for k in ("dec_params_m", "dec_gmacs", "tot_params_m", "tot_gmacs")})
        source = curves.get(method) or methods.get(method)
        if source:
            if curves.get(method) and not Path(str(source)).is_file():
                raise _error(f"{method}: no curve file {source}")
            curve = load_anchor(source)
            row["curve"] = str(curves.get(method) or methods[method])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    row["bd_rate_pct"] = bd_rate(anchor, curve, exp["metric"])
                except ValueError as e:
                    row["note"] = str(e).splitlines()[0]
            row["overlap_pct"] = 100 * bd_overlap(anchor, curve, exp["metric"])[0]
            notes = [str(w.message) for w in caught if issubclass(w.category, BDOverlapWarning)]
            if math.isfinite(row["bd_rate_pct"]):
                row["delta_points"] = row["bd_rate_pct"] - row["paper_bd_rate_pct"]
                ok = abs(row["delta_points"]) <= float(exp["tolerance"])
                row["within"] = "yes" if ok else "no"
                if not ok:
                    notes.append(f"{abs(row['delta_points']):.2f} points from the paper: the paper does not publish "
                                 "the BPG curve and RD points it measured against"
                                 + (", and the curves overlap little" if notes else ""))
            row["note"] = "; ".join(filter(None, [row["note"]] + notes))
        else:
            row["note"] = "no Kodak RD curve of it is packaged (the paper's BD-rate only)" if method != "AsymLLIC" else \
                "no published curve: measure one with `asymllic rd paper --teachers <six LIC_TCM checkpoints>` " \
                "and give it under curves"
        if counts.get(method):
            c = counted(space.get_preset(counts[method]))
            row["counted_as"] = counts[method]
            row.update({k: v for k, v in c.items() if k.startswith(("dec_gmacs", "tot_gmacs", "dec_params", "tot_params"))})
        rows.append(row)
    return pd.DataFrame(rows)


def table1(exp: dict, out: Path) -> dict:
    from asymllic.files import write_text

    frame = bd_rows(exp)
    anchor = exp["anchor"]
    lines = [f"# Table I: BD-rate against BPG (Kodak) and complexity, beside the paper", "",
             f"- measured: BD-rate ({exp['metric']}, akima, points need not match) of each packaged Kodak curve "
             f"against {anchor}; no training",
             "- paper: the AsymLLIC paper's Table I; complexity in params (M) and MACs (G) at 768x512, the paper's in "
             "its (thop) convention, ours in the exact and the thop convention (TCM-small and AsymLLIC only)",
             f"- within: |measured - paper| <= {exp['tolerance']:g} BD-rate points; where not, or where the curves "
             "overlap little, the note says why", ""]
    lines += _md_table(frame, {"method": ("method", None), "bd_rate_pct": ("BD-rate (%)", 2),
                               "paper_bd_rate_pct": ("paper (%)", 2), "delta_points": ("Δ (points)", 2),
                               "within": (f"within {exp['tolerance']:g}", None), "overlap_pct": ("overlap (%)", 0),
                               "paper_dec_gmacs": ("dec GMACs paper", 2), "dec_gmacs_thop": ("dec GMACs ours thop", 2),
                               "dec_gmacs": ("dec GMACs ours exact", 2), "paper_tot_gmacs": ("total GMACs paper", 2),
                               "tot_gmacs_thop": ("total GMACs ours thop", 2), "paper_dec_params_m": ("dec M paper", 2),
                               "dec_params_m_thop": ("dec M ours", 2), "note": ("note", None)})
    files = [write_text("\n".join(lines) + "\n", out / "table1.md"), write_text(frame.to_csv(index=False), out / "table1.csv")]
    return {"table": "table1", "frame": frame, "files": files, "folder": out}


def fig1(exp: dict, out: Path) -> dict:
    import pandas as pd

    import plotly.graph_objects as go

    from asymllic.files import write_text

    from .plots.io import write_figure

    frame = bd_rows(exp)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=frame["paper_dec_gmacs"], y=frame["paper_bd_rate_pct"], mode="markers+text",
                             text=frame["method"], textposition="top center", name="paper (Table I)",
                             marker={"size": 10, "symbol": "circle-open"}))
    got = frame[frame["bd_rate_pct"].notna()]
    x = [r["dec_gmacs_thop"] if pd.notna(r.get("dec_gmacs_thop")) else r["paper_dec_gmacs"] for _, r in got.iterrows()]
    fig.add_trace(go.Scatter(x=x, y=got["bd_rate_pct"], mode="markers", name=f"measured (packaged Kodak curves vs "
                                                                            f"{exp['anchor']})",
                             text=[f"{m}: {n}" if n else m for m, n in zip(got["method"], got["note"])],
                             marker={"size": 9, "symbol": "x"}))
    fig.update_layout(title="Fig. 1: BD-rate against BPG (Kodak) vs decoder MACs at 768x512",
                      xaxis_title="decoder GMACs (thop convention)", yaxis_title="BD-rate vs BPG (%), lower is better")
    files = write_figure(fig, out / "fig1", png=False)
    keep = ["method", "paper_dec_gmacs", "dec_gmacs_thop", "paper_bd_rate_pct", "bd_rate_pct", "note"]
    small = frame[[c for c in keep if c in frame]]
    lines = ["# Fig. 1: BD-rate against decoder MACs, beside the published methods", "",
             f"- BD-rate against {exp['anchor']} (Kodak) of the packaged curves; decoder GMACs at 768x512 from the "
             "paper's Table I, counted (thop convention) for TCM-small and AsymLLIC", "- figure: fig1.html (offline)",
             ""] + _md_table(small, {"method": ("method", None), "paper_dec_gmacs": ("dec GMACs paper", 2),
                                     "dec_gmacs_thop": ("dec GMACs ours", 2), "paper_bd_rate_pct": ("paper (%)", 2),
                                     "bd_rate_pct": ("measured (%)", 2), "note": ("note", None)})
    files += [write_text("\n".join(lines) + "\n", out / "fig1.md"), write_text(small.to_csv(index=False), out / "fig1.csv")]
    return {"table": "fig1", "frame": frame, "files": files, "folder": out, "figure": fig}


# -- Tables II and III: trained through confirm --------------------------------------------------------------

METRIC = {"table2": ("psnr", "psnr_db", True, "PSNR (dB)", 2), "table3": ("bpp", "bpp", False, "bpp", 4)}
COMPONENT = {"table2": "g_s", "table3": "hyperprior"}


def _teacher(exp: dict) -> str:
    from asymllic.codec.reference import checkpoint_file

    from .rd import teacher_lambda

    lam = float(exp["lmbda"])
    if not exp.get("teacher"):
        raise _error(f"{exp['table']}: no teacher for lambda {lam:g}; give one (--teacher, or teacher: in the "
                     f"experiment file): LIC_TCM's N=64 checkpoint for lambda {lam:g}, or one trained with "
                     "'asymllic teacher train'")
    path = checkpoint_file(exp["teacher"])
    if path is None:
        raise _error(f"{exp['table']}: teacher {exp['teacher']!r} is an architecture, not a trained checkpoint; "
                     f"give the checkpoint for lambda {lam:g}")
    try:
        have = teacher_lambda(path)
    except Exception:  # noqa: BLE001 - no lambda in its meta nor its name: taken as the experiment's
        have = lam
    if not math.isclose(have, lam, rel_tol=1e-6):
        raise _error(f"{exp['table']}: teacher {path} is for lambda {have:g}, the table is at lambda {lam:g}; give "
                     f"the teacher for lambda {lam:g}")
    return str(path)


def study_spec(exp: dict):
    """The SearchSpec the table's decoders are confirmed on (no search: the presets are the picks)."""
    from .spec import SearchSpec

    seeds = exp["seeds"]
    first = int(seeds[0]) if isinstance(seeds, (list, tuple)) and seeds else 0  # a count (or per-row counts) from 0
    return SearchSpec(study=f"reproduce-{exp['table']}", part=exp["part"], schedule=exp["schedule"],
                      batch=exp["batch"], teacher=_teacher(exp), lmbda=float(exp["lmbda"]), data=exp["data"],
                      test_data=exp["test_data"], root=str(exp["root"]), seed=first, backend=exp["backend"],
                      workers=int(exp["workers"]), ray_address=exp["ray_address"], device=exp["device"],
                      precision=exp["precision"], enqueue_presets=False)


def row_seeds(exp: dict):
    """The seeds of a trained table: a count or a list for every row, or {row: count or list} naming each row
    (more seeds where the paper's rows lie close)."""
    seeds = exp["seeds"]
    if isinstance(seeds, dict):
        from .confirm import check_named

        check_named(seeds, list(exp["rows"] or {}), "row")
        return {row: _seed_value(v) for row, v in seeds.items()}
    return _seed_value(seeds)


def _seed_value(v):
    return [int(s) for s in v] if isinstance(v, (list, tuple)) else int(v)


def _check_data(exp: dict) -> None:
    for key in ("data", "test_data"):
        folder = exp.get(key)
        if folder and folder != "bundled":
            p = Path(folder)
            if not p.is_dir():
                raise _error(f"{exp['table']}: {key} folder {p} does not exist")
            if not any(f.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
                       for f in p.rglob("*") if f.is_file()):
                raise _error(f"{exp['table']}: {key} folder {p} holds no images")


def trained_table(exp: dict, out: Path, evaluate: Callable | None = None, progress: bool = True) -> dict:
    """Table II or III: the rows' presets confirmed over seeds, beside the paper."""
    import pandas as pd

    from asymllic.files import write_text

    from .candidate import train_and_evaluate
    from .confirm import confirm
    from .verdicts import paired, seed_text, seeds_needed, t_quantile

    table = exp["table"]
    metric, paper_col, higher, label, digits = METRIC[table]
    _, paper = paper_rows(table)
    rows = dict(exp["rows"] or {})
    unknown = sorted(set(rows) - set(paper))
    if unknown or not rows:
        raise space.ConfigError("rows", f"{table}: rows {', '.join(unknown) or '(none)'}; the paper's are "
                                        f"{', '.join(paper)}")
    _check_data(exp)
    spec = study_spec(exp)
    configs = {row: space.get_preset(name) for row, name in rows.items()}
    config_ids = {row: space.config_id(cfg) for row, cfg in configs.items()}
    seeds = row_seeds(exp)
    steps = exp["steps"] or spec.training_schedule().steps("stage1" if exp["part"] == "synthesis" else "stage2")
    res = confirm(spec, picks=configs, references=(), steps=int(steps), seeds=seeds,
                  backend=exp["backend"], evaluate=evaluate or train_and_evaluate, progress=progress)
    runs = res.runs
    done = runs[runs["status"] == "complete"] if not runs.empty else runs
    per_seed = {}
    out_rows = []
    for row, cfg in configs.items():
        cid = config_ids[row]
        mine = done[done["config_id"] == cid] if not done.empty else done
        col = f"test_{metric}"
        vals = {int(s): float(v) for s, v in zip(mine["seed"], mine[col])} if col in mine else {}
        per_seed[row] = vals
        n = len(vals)
        mean = sum(vals.values()) / n if n else math.nan
        half = math.nan
        if n > 1:
            sd = float(pd.Series(list(vals.values())).std(ddof=1))
            half = t_quantile(n - 1) * sd / math.sqrt(n)
        c = counted(cfg, COMPONENT[table])
        out_rows.append({"row": row, "preset": rows[row], "config_id": cid, "seeds": n,
                         "failed": int((runs[runs["config_id"] == cid]["status"] != "complete").sum()),
                         f"{metric}_mean": mean, f"{metric}_ci_lo": mean - half if n > 1 else math.nan,
                         f"{metric}_ci_hi": mean + half if n > 1 else math.nan,
                         f"paper_{metric}": paper[row][paper_col], **c, "paper_params_m": paper[row]["params_m"],
                         "paper_gmacs": paper[row]["gmacs"]})
    frame = pd.DataFrame(out_rows)
    order = sorted(rows, key=lambda r: paper[r][paper_col], reverse=higher)  # best first, as the paper ranks
    measured = sorted([r for r in rows if per_seed[r]], key=lambda r: frame.set_index("row").loc[r, f"{metric}_mean"],
                      reverse=higher)
    sign = ">" if higher else "<"
    pairs = []
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            p = paired(per_seed[a], per_seed[b])
            better = (p.mean > 0) == higher
            if p.n < 2:
                what = "one seed in common: no interval" if p.n == 1 else "no seed in common"
            elif not p.outside_noise:
                what = "within noise"
            elif better:
                what = "confirmed"
            else:
                what = "reversed (outside seed noise)"
            gap = round(abs(paper[a][paper_col] - paper[b][paper_col]), 6)  # the published figures have 2-3 digits
            pairs.append({"pair": f"{a} {sign} {b}", "verdict": what, "difference": p.mean, "ci_lo": p.lo,
                          "ci_hi": p.hi, "seeds": p.n, "paper_gap": gap, "half_width": p.half_width,
                          "resolves_paper_gap": bool(p.n >= 2 and p.half_width < gap),
                          "seeds_needed": seeds_needed(p.std, gap) if p.n >= 2 else None})
    unit = "dB" if metric == "psnr" else "bpp"
    by_seeds: dict = {}
    for row in rows:
        by_seeds.setdefault(seed_text(runs[runs["config_id"] == config_ids[row]]["seed"]) if not runs.empty else "",
                            []).append(row)
    seeds_text = by_seeds.popitem()[0] if len(by_seeds) == 1 else \
        "; ".join(f"{text} ({', '.join(names)})" for text, names in by_seeds.items())
    sched = spec.training_schedule()
    name = "II: PSNR of the four synthesis decoders" if table == "table2" else "III: bpp of the four hyperprior paths"
    lines = [f"# Table {name} at lambda {spec.lmbda:g}, beside the paper", "",
             f"- schedule {spec.schedule} (batch {sched.batch}, crop {sched.crop}), {int(steps)} steps of stage "
             f"{1 if exp['part'] == 'synthesis' else 2} per run, "
             f"seeds {seeds_text}; precision {spec.precision}, device {spec.device}",
             f"- teacher: {spec.teacher}; the {'hyperprior path' if exp['part'] == 'synthesis' else 'synthesis decoder'}"
             " and the encoder are the teacher's",
             f"- training data: {spec.data or 'bundled photos'}; measured on {spec.test_data or 'the bundled test photos'}"
             f" ({'all photos' if not sched.eval_photos else f'first {sched.eval_photos}'}"
             f"{f', centre crops of {sched.eval_max_side} px' if sched.eval_max_side else ''}); the paper: Kodak, "
             "converged (0.6M steps)",
             f"- {CONVENTIONS}", f"- mean over seeds with its 95 % t interval; runs in {res.folder}"]
    if spec.schedule != "paper":
        lines.append(f"- the {spec.schedule} schedule trains far shorter than the paper: absolute figures are not "
                     "the paper's converged ones; the order and the pairs say what this training separates")
    lines.append("")
    lines += _md_table(frame.assign(interval=[f"{lo:.{digits}f} to {hi:.{digits}f}" if math.isfinite(lo) else ""
                                              for lo, hi in zip(frame[f"{metric}_ci_lo"], frame[f"{metric}_ci_hi"])]),
                       {"row": ("row", None), "preset": ("preset", None), f"{metric}_mean": (f"{label} measured", digits),
                        "interval": ("95 % interval", None), "seeds": ("seeds", None),
                        f"paper_{metric}": (f"{label} paper", digits), "params_m": ("M exact", 2),
                        "params_m_thop": ("M thop", 2), "paper_params_m": ("M paper", 2), "gmacs": ("GMACs exact", 2),
                        "gmacs_thop": ("GMACs thop", 2), "paper_gmacs": ("GMACs paper", 2)})
    lines += ["", "## Order", "", f"- paper: {f' {sign} '.join(order)} ({'higher' if higher else 'lower'} {unit} first)",
              f"- measured: {f' {sign} '.join(measured) if measured else 'no run finished'}", "",
              "## Pairs in the paper's order (paired by seed)", ""]
    lines += [f"- {p['pair']}: {p['verdict']} ({_difference(p, unit, digits)}); {_resolution(p, unit, digits)}"
              for p in pairs]
    settled = [p for p in pairs if p["resolves_paper_gap"]]
    lines += ["", f"Resolution: {len(settled)} of {len(pairs)} pairs have a 95 % interval narrower on each side than "
                  "the paper's gap between the two rows (a pair that does not can neither confirm nor refute the "
                  "paper's order; the seeds it would need assume the measured spread holds)."]
    pair_frame = pd.DataFrame(pairs)
    files = [write_text("\n".join(lines) + "\n", out / f"{table}.md"), write_text(frame.to_csv(index=False), out / f"{table}.csv"),
             write_text(pair_frame.to_csv(index=False), out / f"{table}_pairs.csv")]
    return {"table": table, "frame": frame, "pairs": pair_frame, "files": files, "folder": out,
            "trained": res.trained, "order": {"paper": order, "measured": measured}}


def _difference(p: dict, unit: str, digits: int) -> str:
    """E.g. "-0.03 dB, 95 % CI -0.17 to +0.12, 41 seeds"."""
    if p["seeds"] == 0:
        return "no seed in common"
    ci = f", 95 % CI {p['ci_lo']:+.{digits}f} to {p['ci_hi']:+.{digits}f}" if p["seeds"] >= 2 else ""
    return f"{p['difference']:+.{digits}f} {unit}{ci}, {p['seeds']} seed{'s' if p['seeds'] > 1 else ''}"


def _resolution(p: dict, unit: str, digits: int) -> str:
    """E.g. "interval ±0.21 dB against the paper's gap of 0.18 dB: wider, about 37 seeds at this spread"."""
    gap = f"the paper's gap of {p['paper_gap']:.{digits}f} {unit}"
    if p["seeds"] < 2:
        return f"no interval to set against {gap}"
    head = f"interval ±{p['half_width']:.{digits}f} {unit} against {gap}"
    if p["resolves_paper_gap"]:
        return f"{head}: narrower"
    need = p["seeds_needed"]
    if p["paper_gap"] == 0:
        return f"{head}: the paper gives both rows the same figure"
    return f"{head}: wider, " + (f"about {need} seeds at this spread" if need else "over 10,000 seeds at this spread")


# -- the command ---------------------------------------------------------------------------------------------

@dataclass
class Reproduced:
    """What :func:`reproduce` wrote: per table its frame, files and folder (Tables II/III: runs trained now)."""
    tables: dict = field(default_factory=dict)  # table -> dict(frame, files, folder, ...)

    @property
    def files(self) -> list:
        return [f for t in self.tables.values() for f in t["files"]]


def reproduce(tables: str | Sequence[str] = "all", *, config: str | Path | dict | None = None,
              schedule: str | None = None, seeds: int | Sequence[int] | None = None, steps: int | None = None,
              teacher: str | None = None, data: str | None = None, test_data: str | None = None,
              out: str | Path | None = None, root: str | None = None, backend: str | None = None,
              device: str | None = None, precision: str | None = None, evaluate: Callable | None = None,
              progress: bool = True) -> Reproduced:
    """Reproduce ``tables`` (``table1``, ``table2``, ``table3``, ``fig1``, a list of them, or ``all``) from their
    experiment files (``search/experiments/<table>.yaml``), with ``config`` (a file or dict of the same keys) and
    the arguments given (not None) replacing their settings. ``out``: the folder of one table, or for several
    the folder holding one sub-folder per table (default ``results/reproduce/<table>/``). ``evaluate``: the
    training-and-scoring function of Tables II/III (default the search's). Finished runs are read back."""
    names = list(TABLES) if tables == "all" or tables == ["all"] else ([tables] if isinstance(tables, str) else list(tables))
    for t in names:
        experiment_file(t)  # an unknown table: one line before anything runs
    given = {"schedule": schedule, "seeds": seeds, "steps": steps, "teacher": teacher, "data": data,
             "test_data": test_data, "root": root, "backend": backend, "device": device, "precision": precision}
    plans = {t: experiment(t, config, **given) for t in names}  # every input checked before any training
    if steps is not None and steps < 1:
        raise space.ConfigError("steps", f"{steps}: train each stage at least 1 step")
    for t, exp in plans.items():
        if t in ("table2", "table3"):
            _teacher(exp)
            row_seeds(exp)
            _check_data(exp)
            from asymllic.training import get_schedule

            get_schedule(exp["schedule"])
        else:
            from .rd import load_anchor

            load_anchor(exp["anchor"])
    done = Reproduced()
    for t, exp in plans.items():
        if out is not None:
            folder = Path(out) if len(names) == 1 else Path(out) / t
        elif exp.get("out"):
            folder = Path(exp["out"])
        else:
            folder = Path(exp.get("root") or DEFAULT_ROOT) / "reproduce" / t
        folder.mkdir(parents=True, exist_ok=True)
        if t == "table1":
            done.tables[t] = table1(exp, folder)
        elif t == "fig1":
            done.tables[t] = fig1(exp, folder)
        else:
            done.tables[t] = trained_table(exp, folder, evaluate, progress)
        if progress:
            print(f"{t}: {', '.join(str(f) for f in done.tables[t]['files'])}", flush=True)
    return done
