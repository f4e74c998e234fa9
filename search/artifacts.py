"""What a study shows in Optuna Dashboard, written by the search itself (both backends):

- the study: its objectives named with their units (``study.set_metric_names``) and a note (part, schedule,
  teacher, budget, photos, and the commands that export and confirm its picks);
- each trial: its first objective after every rung as an intermediate value (at step = the rung's training steps),
  and three files in an Optuna artifact store beside the study (``SearchSpec.artifacts_dir``): a reconstruction
  of one test photo (a crop of the candidate's decoding beside the teacher's and the original, one PNG), a card
  (config, MACs per part, figures, rung; markdown) and the per-layer MAC table (CSV);
- a "learning curves" figure (the first objective against training steps, one line per trial), because the
  dashboard draws intermediate values as curves only for single-objective studies.

Optuna's ``Trial.report`` refuses multi-objective studies, so the rung values are written through the storage
(``set_trial_intermediate_value``, what ``report`` itself calls): the dashboard lists them with each trial.
Nothing here fails a trial or a search: what cannot be written is one warning line on stderr.
"""
from __future__ import annotations

import json
import shlex
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from . import objectives
from .spec import SearchSpec

CURVES_ID = "learning-curves"  # the dashboard's id of the learning-curve figure (overwritten as trials finish)
RECONSTRUCTION, CARD, MAC_TABLE = "reconstruction.png", "card.md", "macs.csv"
PARTS_SHOWN = {"synthesis": "synthesis (g_s)", "hyperprior": "hyperprior (h_s + f_c, h_a retrained)",
               "joint": "joint (g_s, h_s + f_c)"}


def warn(text: str) -> None:
    print(f"asymllic: warning: {text}", file=sys.stderr, flush=True)


# ---- the study ------------------------------------------------------------------------------------------------

def metric_names(spec: SearchSpec) -> list:
    """The study's objectives as the dashboard labels them, with their units, in the study's order."""
    w, h = spec.size
    threads = f", {spec.latency_threads} threads" if spec.latency_threads else ""
    labels = {"psnr": "PSNR (dB)", "bpp": "bpp", "rd_cost": f"RD cost (lambda {spec.lmbda:g})",
              "decoder_gmacs": f"decoder GMACs (exact, {w}x{h})",
              "decoder_ms": f"decoder ms ({spec.latency_device}{threads}, {w}x{h})"}
    return [labels.get(k, k) for k in objectives.names(spec.part, spec.objective)]


def _photos(data: str | None, split: str) -> str:
    if data not in (None, "bundled"):
        return f"`{data}`"
    try:
        from asymllic.data import bundled

        return f"bundled {split} photos ({', '.join(Path(p).stem for p in bundled(split))})"
    except Exception:  # noqa: BLE001 - a description, never a failure
        return f"bundled {split} photos"


def _budget(spec: SearchSpec) -> str:
    w, h = spec.size
    parts = []
    if isinstance(spec.mac_budget, (int, float)):
        parts.append(f"{spec.mac_budget:.2f} decoder GMACs at {w}x{h}")
    elif spec.mac_budget is not None:
        parts.append(f"{spec.mac_budget} (decoder GMACs at {w}x{h})")
    if spec.latency_budget is not None:
        parts.append(f"{spec.latency_budget:g} ms on {spec.latency_device}")
    return ", ".join(parts) or "none"


def commands(spec: SearchSpec) -> list:
    """The shell commands (quoted) that open, export and confirm this study's picks."""
    where = spec.where()
    line = lambda *words: shlex.join(["asymllic", *words[:2], *where, *words[2:]])  # noqa: E731
    return [line("export", spec.study), line("export", spec.study, "--top", "3"),
            line("confirm", spec.study, "--top", "3", "--seeds", "3"), line("dashboard", spec.study)]


def study_note(spec: SearchSpec) -> str:
    """The study's note (markdown): what was searched, on what, and how to use its results."""
    rungs = spec.rungs()
    if len(rungs) > 1:
        training = f"{spec.schedule} schedule, multi-fidelity: rungs at {', '.join(map(str, rungs))} steps (eta {spec.eta})"
    else:
        training = f"{spec.schedule} schedule, {rungs[0]} steps per candidate"
    names = metric_names(spec)
    directions = objectives.directions(spec.part, spec.objective)
    goals = ", ".join(f"{n} {'up' if d == 'maximize' else 'down'}" for n, d in zip(names, directions))
    rows = [("part", PARTS_SHOWN.get(spec.part, spec.part)), ("training", training),
            ("teacher", f"`{spec.teacher}` (lambda {spec.lmbda:g})"), ("objectives", goals),
            ("budget", _budget(spec)), ("selection photos", _photos(spec.eval_data, "eval")),
            ("test photos", _photos(spec.test_data, "test")),
            ("search", f"{spec.backend}, {spec.sampler} sampler, seed {spec.seed}, {spec.trials} trials")]
    table = "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
    shell = "\n".join(commands(spec))
    return (f"## {spec.study}: a {spec.part} decoder search\n\n{table}\n\n"
            f"Export the best decoder (or three along the front) and confirm them over seeds:\n\n"
            f"```bash\n{shell}\n```\n")


def describe(study, spec: SearchSpec) -> None:
    """Name the study's objectives and write its note (a warning line if the storage refuses)."""
    try:
        study.set_metric_names(metric_names(spec))
        from optuna_dashboard import save_note

        save_note(study, study_note(spec))
    except Exception as e:  # noqa: BLE001 - what the dashboard shows never stops a search
        warn(f"study {spec.study}: objective names or note not stored ({type(e).__name__}: {e})")


# ---- rungs ----------------------------------------------------------------------------------------------------

def rung_value(spec: SearchSpec, record) -> tuple | None:
    """(training steps, first objective) of a record scored at a rung, or None (not trained, not finite)."""
    import math

    steps = record.metrics.get("steps")
    if steps is None:
        return None
    try:
        value = record.values(spec.part, spec.objective)[0]
    except (KeyError, TypeError, ValueError):
        return None
    return (int(steps), float(value)) if math.isfinite(value) else None


def report_rung(trial, spec: SearchSpec, record) -> None:
    """The record's first objective as the running Optuna ``trial``'s intermediate value at its rung's steps."""
    point = rung_value(spec, record)
    if point is None:
        return
    try:
        trial.study._storage.set_trial_intermediate_value(trial._trial_id, *point)
    except Exception as e:  # noqa: BLE001
        warn(f"trial {trial.number}: rung value not stored ({type(e).__name__}: {e})")


def save_curves(study, spec: SearchSpec) -> None:
    """The learning-curve figure of every trial with intermediate values, as the dashboard shows it."""
    try:
        import plotly.graph_objects as go
        from optuna_dashboard import save_plotly_graph_object

        name = metric_names(spec)[0]
        fig = go.Figure()
        for t in study.get_trials(deepcopy=False):
            if t.intermediate_values:
                steps = sorted(t.intermediate_values)
                fig.add_trace(go.Scatter(x=steps, y=[t.intermediate_values[s] for s in steps], mode="lines+markers",
                                         name=f"trial {t.number}"))
        fig.update_layout(template="none", title=f"{spec.study}: {name} after each rung", xaxis_title="training steps",
                          yaxis_title=name, margin={"l": 60, "r": 20, "t": 50, "b": 50})
        save_plotly_graph_object(study, fig, graph_object_id=CURVES_ID)
    except Exception as e:  # noqa: BLE001
        warn(f"study {spec.study}: learning curves not stored ({type(e).__name__}: {e})")


# ---- trial files ----------------------------------------------------------------------------------------------

def artifact_store(spec: SearchSpec):
    """The study's Optuna artifact store, a folder (created): ``spec.artifacts_dir``."""
    from optuna.artifacts import FileSystemArtifactStore

    spec.artifacts_dir.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(spec.artifacts_dir))


def safe_store(spec: SearchSpec):
    """:func:`artifact_store`, or None with a warning line when its folder cannot be made."""
    try:
        return artifact_store(spec)
    except Exception as e:  # noqa: BLE001
        warn(f"study {spec.study}: no artifacts ({spec.artifacts_dir}: {type(e).__name__}: {e})"[:500])
        return None


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


FIGURES = (("psnr", "PSNR (dB), selection photos"), ("bpp", "bpp, selection photos"), ("rd_cost", "RD cost"),
           ("ms_ssim", "MS-SSIM"), ("file_bpp", "bpp of the whole .alic file"), ("test_psnr", "PSNR (dB), test photos"),
           ("test_bpp", "bpp, test photos"), ("test_rd_cost", "RD cost, test photos"), ("decoder_ms", "decode ms"),
           ("decoding_time", "decode s (selection photos, mean)"), ("train_seconds", "training s"),
           ("wall_seconds", "trial s"))


def card(record, spec: SearchSpec, number: int) -> str:
    """The candidate's card (markdown): status, rung, MACs per part, figures, config."""
    f, m = record.figures, record.metrics
    w, h = spec.size
    head = f"# trial {number}: {record.config_id} ({record.status})\n\n{spec.part} search `{spec.study}`"
    if "rung" in m:
        head += f", rung {m['rung']} ({m['steps']} training steps)"
    if record.reason:
        head += f"\n\n{record.reason}"
    cost = ["| part | GMACs (exact) | GMACs (thop) | M params |", "|---|---:|---:|---:|"]
    for key, label in (("gs", "g_s"), ("hyperprior", "hyperprior path")):
        if f"{key}_gmacs" in f:
            cost.append(f"| {label} | {f[f'{key}_gmacs']:.3f} | {f.get(f'{key}_gmacs_thop', float('nan')):.3f} | |")
    if "decoder_gmacs" in f:
        cost.append(f"| decoder | {f['decoder_gmacs']:.3f} | {f.get('decoder_gmacs_thop', float('nan')):.3f} | "
                    f"{f.get('decoder_mparams', float('nan')):.3f} |")
    values = {**f, **m}
    figures = ["| figure | value |", "|---|---:|"] + [f"| {label} | {_fmt(values[k])} |" for k, label in FIGURES
                                                        if isinstance(values.get(k), (int, float))]
    config = "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in record.config.items()) + "\n}"
    return (f"{head}\n\n## Decoder cost at {w}x{h}\n\n" + "\n".join(cost) + "\n\n## Figures\n\n" + "\n".join(figures)
            + f"\n\n## Config\n\n```json\n{config}\n```\n")


def mac_table(record, spec: SearchSpec, path: Path) -> Path:
    """Every layer's params and MACs at the study's size, both conventions, in execution order (CSV; the
    ``component`` column says which part: g_a, h_a, g_s, hyperprior)."""
    import csv

    import space
    from asymllic.complexity import count

    cfg = space.from_dict(record.config)
    exact = count(cfg, tuple(spec.size), "exact").layers
    thop = {layer.name: layer.macs for layer in count(cfg, tuple(spec.size), "thop").layers}
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["layer", "component", "type", "params", "macs_exact", "macs_thop"])
        for layer in exact:  # thop counts no MACs for some layers (normalisations, softmax): left empty
            writer.writerow([layer.name, layer.component, layer.type, layer.params, layer.macs, thop.get(layer.name, "")])
    return path


def _coded(model, x):
    """(decoded image as uint8 HxWx3, PSNR dB, bpp) of ``x`` through real files: compress, then decompress; bpp of
    the entropy-coded payload, as the search's figures count it."""
    from asymllic.codec.bitstream import unpack
    from asymllic.codec.coding import compress, decompress
    from asymllic.evaluation.metrics import psnr
    from asymllic.images import to_uint8

    data = compress(model, x)
    x_hat = decompress(model, data)
    payload = sum(len(s) for s in unpack(data).strings)
    return to_uint8(x_hat), float(psnr(x_hat, x)), 8 * payload / (x.shape[-1] * x.shape[-2])


def _photo(spec: SearchSpec):
    from asymllic.data import resolve
    from asymllic.evaluation.evaluate import centre_crop
    from asymllic.images import read_image

    path = resolve(spec.test_data or "bundled", "test").paths[0]
    return path, centre_crop(read_image(path), spec.artifact_side)


@lru_cache(maxsize=4)
def _teacher_panel(teacher: str, stamp: float, photo: str, side: int, device: str):
    """The teacher's decoding of the crop: the same for every trial of a study, computed once per process."""
    from asymllic.codec.reference import load_model
    from asymllic.evaluation.evaluate import centre_crop
    from asymllic.images import read_image

    x = centre_crop(read_image(photo), side)
    return _coded(load_model(teacher, device).eval(), x)


def reconstruction(record, spec: SearchSpec, number: int, path: Path) -> Path | None:
    """Original | teacher | candidate, a crop of one test photo decoded from real files, with PSNR and bpp above
    each panel (one PNG); None without a trained checkpoint."""
    import numpy as np
    from PIL import Image, ImageDraw

    from asymllic.codec.checkpoint import load_codec
    from asymllic.device import pick_device
    from asymllic.images import to_uint8

    checkpoint = record.metrics.get("checkpoint")
    if not spec.artifact_side or not checkpoint or not Path(checkpoint).is_file():
        return None
    try:
        device = str(pick_device(spec.device))
    except Exception:  # noqa: BLE001 - e.g. the Ray driver, without the GPU its trials had
        device = "cpu"
    photo, x = _photo(spec)
    teacher_path = Path(spec.teacher or "")
    stamp = teacher_path.stat().st_mtime if teacher_path.is_file() else 0.0
    teacher = _teacher_panel(str(spec.teacher), stamp, str(photo), spec.artifact_side, device)
    candidate = _coded(load_codec(checkpoint, device), x)
    panels = [(to_uint8(x), f"original {Path(photo).stem}"),
              (teacher[0], f"teacher {teacher[1]:.2f} dB {teacher[2]:.3f} bpp"),
              (candidate[0], f"trial {number} {candidate[1]:.2f} dB {candidate[2]:.3f} bpp")]
    h, w = panels[0][0].shape[:2]
    band, gap = 16, 4
    canvas = Image.new("RGB", (3 * w + 2 * gap, h + band), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (img, label) in enumerate(panels):
        left = i * (w + gap)
        canvas.paste(Image.fromarray(np.ascontiguousarray(img)), (left, band))
        draw.text((left + 2, 2), label, fill="black")
    canvas.save(path, optimize=True)
    return path


def trial_files(record, spec: SearchSpec, number: int, folder: Path) -> list:
    """The trial's artifact files written into ``folder``: card, MAC table, reconstruction (when trained). A file
    that cannot be made is a warning line; the others are still made."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    steps = (("card", lambda p: (p.write_text(card(record, spec, number)), p)[1], CARD),
             ("MAC table", lambda p: mac_table(record, spec, p), MAC_TABLE),
             ("reconstruction", lambda p: reconstruction(record, spec, number, p), RECONSTRUCTION))
    for what, make, name in steps:
        try:
            path = make(folder / name)
        except Exception as e:  # noqa: BLE001 - an artifact never fails a trial
            warn(f"trial {number}: {what} not written ({type(e).__name__}: {e})"[:500])
            continue
        if path is not None:
            made.append(path)
    return made


def store_trial(trial, spec: SearchSpec, record) -> list:
    """Write the running Optuna ``trial``'s artifacts into the study's store; returns their artifact ids."""
    ids = []
    try:
        from optuna.artifacts import upload_artifact

        store = artifact_store(spec)
        with tempfile.TemporaryDirectory(prefix="asymllic-artifacts-") as tmp:
            for path in trial_files(record, spec, trial.number, Path(tmp)):
                ids.append(upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial))
    except Exception as e:  # noqa: BLE001
        warn(f"trial {trial.number}: artifacts not stored in {spec.artifacts_dir} ({type(e).__name__}: {e})"[:500])
    return ids


def frozen_artifacts(store, spec: SearchSpec, record, number: int) -> dict:
    """The artifacts of a trial that is added finished (the Ray mirror): the files written into ``store`` and the
    system attributes that list them, as ``optuna.artifacts.upload_artifact`` records them (a finished trial takes
    no attribute afterwards)."""
    import mimetypes
    import uuid
    from dataclasses import asdict

    from optuna.artifacts import ArtifactMeta

    attrs = {}
    if store is None:
        return attrs
    try:
        with tempfile.TemporaryDirectory(prefix="asymllic-artifacts-") as tmp:
            for path in trial_files(record, spec, number, Path(tmp)):
                artifact_id = str(uuid.uuid4())
                mimetype, encoding = mimetypes.guess_type(path.name)
                with open(path, "rb") as f:
                    store.write(artifact_id, f)
                meta = ArtifactMeta(artifact_id, path.name, mimetype or "application/octet-stream", encoding)
                attrs[f"artifacts:{artifact_id}"] = json.dumps(asdict(meta))
    except Exception as e:  # noqa: BLE001
        warn(f"trial {number}: artifacts not stored in {spec.artifacts_dir} ({type(e).__name__}: {e})"[:500])
    return attrs


def ray_curve(result, spec: SearchSpec, record) -> dict:
    """{training steps: first objective} of a Ray trial: every rung it reported (its results' history), else its
    record's own rung."""
    import math

    key = objectives.names(spec.part, spec.objective)[0]
    curve = {}
    try:
        df = result.metrics_dataframe
        if df is not None and key in df and "steps" in df:
            for steps, value in zip(df["steps"], df[key]):
                if steps == steps and value == value and math.isfinite(float(value)):  # not NaN
                    curve[int(steps)] = float(value)
    except Exception:  # noqa: BLE001 - the history is optional: the record's rung remains
        pass
    point = rung_value(spec, record) if record.status != "infeasible" else None
    if point is not None:
        curve.setdefault(*point)
    return curve
