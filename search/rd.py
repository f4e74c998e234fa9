"""Rate-distortion curve of one decoder config: one teacher checkpoint per lambda (as TCM publishes them), the
decoder trained on each (stage 1, then stage 2 through that stage-1 g_s, then combined), the combined codec and
the teacher itself evaluated on the same photos.

Writes, in ``out`` (default ``<root>/rd/<config id>/``, through :mod:`search.rd_report`): ``rd-decoder.json`` and
``rd-teacher.json`` (CompressAI's results format, one point per lambda, sorted by bpp, with the lambdas in
``results.lmbda``), ``bd.csv`` (BD-rate and BD-PSNR of the decoder against the teacher and each anchor, and of the
teacher against each anchor) and ``rd.html`` (PSNR against bpp; ``png`` also ``rd.png``). Each lambda trains in
``points/lambda-<lambda>/`` and is kept when done (``point.json``, written last, atomically): a rerun skips the
finished lambdas and resumes the others from their finished stages and training states. ``backend="ray"`` trains
the lambdas at once as Ray tasks (a local Ray, or the cluster at ``ray_address``), each on a GPU of its own where
the cluster has GPUs (as a Ray search reserves them); the folders are the same, so either backend resumes what the
other left.

A teacher's lambda comes from ``lmbdas`` (one per teacher), else from its checkpoint's meta (``lmbda``: the
teachers this project trains), else from its file name when that holds one of the lambdas of TCM's N=64 models
(``TCM_LAMBDAS``).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

import space

from asymllic.options import CACHE_DIR

from .options import RD_BACKENDS, RDTraining
from .rd_report import bd_table, curves, write_report

TCM_LAMBDAS = (0.0025, 0.0035, 0.0067, 0.013, 0.025, 0.05)  # LIC_TCM's released MSE models, N=64 ("small")
POINTS_DIR = "points"
POINT_FILE = "point.json"
KEY_FILE = "key.json"


def _error(message: str):
    from asymllic.errors import AsymllicError

    return AsymllicError(message)


# -- inputs --------------------------------------------------------------------------------------------------

def _lambda_in_name(path: Path) -> float | None:
    for text in re.findall(r"\d+(?:\.\d+)?(?:e-?\d+)?", path.name):
        try:
            v = float(text)
        except ValueError:
            continue
        for known in TCM_LAMBDAS:
            if math.isclose(v, known, rel_tol=1e-9):
                return known
    return None


def teacher_lambda(teacher: str | Path, given: float | None = None) -> float:
    """The lambda ``teacher`` was trained for: ``given``, else its checkpoint's meta ``lmbda``, else a TCM lambda
    in its file name; none of these is a one-line error."""
    from asymllic.codec.checkpoint import read_checkpoint

    path = Path(teacher)
    if given is not None:
        try:
            v = float(given)
        except (TypeError, ValueError):
            raise space.ConfigError("lmbdas", f"{given!r} for {path.name} is not a number") from None
        if not v > 0 or not math.isfinite(v):
            raise space.ConfigError("lmbdas", f"{given!r} for {path.name}: a lambda is a positive number")
        return v
    meta = read_checkpoint(path).get("meta") or {}
    if isinstance(meta, dict) and meta.get("lmbda") is not None:
        return float(meta["lmbda"])
    found = _lambda_in_name(path)
    if found is not None:
        return found
    raise _error(f"no lambda for teacher {path}: its checkpoint has none in its meta and its name none of TCM's "
                 f"({', '.join(f'{v:g}' for v in TCM_LAMBDAS)}); give one per teacher (lmbdas)")


def teachers_by_lambda(teachers, lmbdas: Sequence | None = None) -> list:
    """[(lambda, teacher checkpoint)] sorted by lambda; a teacher that is not a checkpoint, a missing file, a
    teacher without lambda or two teachers of one lambda are one-line errors."""
    from asymllic.codec.reference import checkpoint_file

    teachers = [teachers] if isinstance(teachers, (str, Path)) else list(teachers)
    if not teachers:
        raise space.ConfigError("teachers", "give at least one teacher checkpoint")
    if lmbdas is not None:
        lmbdas = [lmbdas] if isinstance(lmbdas, (int, float)) else list(lmbdas)
        if len(lmbdas) != len(teachers):
            raise space.ConfigError("lmbdas", f"{len(lmbdas)} lambdas for {len(teachers)} teachers; give one per teacher")
    out, seen = [], {}
    for i, t in enumerate(teachers):
        path = checkpoint_file(t)  # a missing file or a non-model: one line
        if path is None:
            raise space.ConfigError("teachers", f"{t!r} is an architecture, not a trained teacher; give a checkpoint "
                                                "(.pt, .pth.tar) per lambda")
        lam = teacher_lambda(path, lmbdas[i] if lmbdas is not None else None)
        if lam in seen:
            raise space.ConfigError("lmbdas", f"lambda {lam:g} twice ({seen[lam]} and {path}): one teacher per lambda")
        seen[lam] = path
        out.append((lam, path.resolve()))
    return sorted(out)


def decoder_config(decoder) -> space.CodecConfig:
    """A config, or any model reference (a preset name, a config file, a checkpoint, an export folder); anything
    else is a one-line error."""
    if isinstance(decoder, space.CodecConfig):
        return decoder
    from asymllic.codec.reference import resolve_config

    return resolve_config(decoder)


def load_anchor(anchor) -> dict:
    """A CompressAI-format results dict: given as one, as a JSON file, or by a Kodak anchor's name
    (``space.anchors.kodak_anchor``, e.g. ``vtm``)."""
    if isinstance(anchor, dict):
        d = anchor
    else:
        path = Path(anchor)
        if not path.is_file():
            from space.anchors import kodak_anchor

            path = kodak_anchor(str(anchor))
        try:
            d = json.loads(path.read_text())
        except ValueError as e:
            raise space.ConfigError("anchors", f"{path} is not JSON ({e})") from None
        d.setdefault("name", path.stem)
    r = d.get("results") if isinstance(d, dict) else None
    if not isinstance(r, dict) or not r.get("bpp") or not r.get("psnr-rgb"):
        raise space.ConfigError("anchors", f"{anchor if not isinstance(anchor, dict) else d.get('name')}: not in "
                                           "CompressAI's results format (results.bpp and results.psnr-rgb)")
    return d


# -- one lambda ----------------------------------------------------------------------------------------------

class RDOptions(RDTraining):
    """How each lambda's decoder is trained and evaluated (declared in ``search.options.RDTraining``)."""

    def training_schedule(self):
        from asymllic.training import get_schedule

        return get_schedule(self.schedule, batch=self.batch)

    def stage_steps(self) -> tuple:
        sched = self.training_schedule()
        return (self.steps or sched.steps("stage1"), self.steps or sched.steps("stage2"))


def point_key(cfg: space.CodecConfig, teacher: Path, lmbda: float, opts: RDOptions) -> dict:
    """What a lambda's point depends on: a folder holding another key is never mixed into this curve."""
    sched = opts.training_schedule()
    return {"decoder": space.config_id(cfg), "teacher": str(teacher), "lmbda": lmbda, "schedule": opts.schedule,
            "batch": sched.batch, "steps": list(opts.stage_steps()), "data": opts.data, "test_data": opts.test_data,
            "seed": opts.seed, "inherit": opts.inherit, "max_side": sched.eval_max_side,
            **({"photos": sched.eval_photos} if sched.eval_photos else {})}  # (absent when all: older keys still match)


def claim(folder: Path, key: dict) -> dict | None:
    """Take ``folder`` for the point ``key``: its finished point when there is one, else None (its key written); a
    folder that holds another run's point is a one-line error."""
    from asymllic.files import write_text

    held = Path(folder) / KEY_FILE
    if not held.is_file():
        write_text(json.dumps(key, indent=1), held)
        return None
    old = json.loads(held.read_text())
    if old != key:
        diff = ", ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in key.items() if old.get(k) != v)
        raise _error(f"{folder} holds a point of another run ({diff}); give another out folder or remove it")
    try:
        done = json.loads((Path(folder) / POINT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return done if done.get("key") == key else None


def point(cfg: space.CodecConfig, teacher: Path, lmbda: float, folder: Path, opts: RDOptions,
          progress: bool = False) -> dict:
    """One lambda: train (or read back) the decoder on ``teacher`` and evaluate it and the teacher on the test
    photos; returns ``{"key", "decoder", "teacher"}`` (CompressAI one-point results, with ``lmbda``)."""
    from asymllic.codec.checkpoint import load_codec
    from asymllic.codec.reference import load_model
    from asymllic.data import resolve
    from asymllic.evaluation.evaluate import evaluate
    from asymllic.files import write_text
    from asymllic.training import CODEC_FILE, StageRun, combine, train_stage1, train_stage2

    from .candidate import drop_resume_state

    folder = Path(folder)
    key = point_key(cfg, teacher, lmbda, opts)
    done = claim(folder, key)
    if done is not None:
        return done
    sched = opts.training_schedule()
    s1_steps, s2_steps = opts.stage_steps()

    def run(stage: str) -> StageRun:
        return StageRun(folder / stage, Path(opts.root) / CACHE_DIR, opts.seed, progress, **opts.run_options())

    s1 = folder / "stage1" / CODEC_FILE  # a stage's codec is written when it is done: a finished stage is kept
    if not s1.is_file():
        s1 = train_stage1(teacher, cfg, sched, lmbda, opts.data, run("stage1"), s1_steps)
    s2 = folder / "stage2" / CODEC_FILE
    if not s2.is_file():  # sequential: through the stage-1 g_s, frozen
        s2 = train_stage2(teacher, cfg, sched, lmbda, opts.data, run("stage2"), s2_steps, synthesis_from=s1)
    codec = folder / CODEC_FILE  # written last (atomically): there, it is the combination of these stages
    if not codec.is_file():
        codec = combine(s1, s2, codec)
    drop_resume_state(folder)
    device, _ = run("eval").resolved()
    paths = resolve(opts.test_data or "bundled", "test").paths
    out = {"key": key}
    for who, model in (("decoder", lambda: load_codec(codec, device)), ("teacher", lambda: load_model(teacher, device))):
        r = evaluate(model(), paths, name=f"{who} lambda {lmbda:g}", progress=False, **sched.eval_options())
        r["results"]["lmbda"] = [lmbda]
        out[who] = r
    out["codec"] = str(codec)
    write_text(json.dumps(out, indent=1), folder / POINT_FILE)
    return out


# -- the lambdas as Ray tasks -------------------------------------------------------------------------------

def _ray_point(job: tuple, device: str) -> dict:
    """One lambda inside a Ray task, from plain data."""
    cfg, teacher, lmbda, folder, opts = job
    workers = 0 if opts["loader_workers"] is None else opts["loader_workers"]  # the task's one CPU: no loader workers
    return point(space.from_dict(cfg), Path(teacher), lmbda, Path(folder),
                 RDOptions(**{**opts, "device": device, "loader_workers": workers}))


def points_on_ray(cfg: space.CodecConfig, jobs: list, opts: RDOptions, address: str | None,
                  gpus_per_point: float | None, tell) -> dict:
    """Every ``(lambda, teacher, folder)`` of ``jobs`` as one Ray task, at once; ``tell(i, lambda, point)`` as each
    finishes. A lambda that fails does not stop the others: what finished is on disk, and the failures are one
    line at the end."""
    from .ray_backend import ray_tasks

    plain = [(space.to_dict(cfg), str(teacher), lam, str(where), asdict(opts)) for lam, teacher, where in jobs]
    got, failed = {}, []
    for (_, _, lam, _, _), result in ray_tasks(_ray_point, plain, opts.device, address, gpus_per_point):
        if isinstance(result, Exception):
            failed.append(f"lambda {lam:g}: {result}")
            continue
        got[lam] = result
        tell(len(got), lam, result)
    if failed:
        raise _error(f"{len(failed)} of {len(jobs)} lambdas failed ({'; '.join(failed)}); the finished ones are kept")
    return got


# -- the curve -----------------------------------------------------------------------------------------------

@dataclass
class RDResult:
    decoder: dict  # CompressAI-format curve of the decoder, one point per lambda
    teacher: dict  # the teachers' curve on the same photos
    anchors: list  # the anchor curves drawn and compared with
    bd: pd.DataFrame  # test, anchor, bd_rate_pct, bd_psnr_db, note
    folder: Path
    files: list = field(default_factory=list)
    trained: list = field(default_factory=list)  # the lambdas trained by this call (the rest were done before)


def lambda_folder(out: Path, lmbda: float) -> Path:
    return Path(out) / POINTS_DIR / f"lambda-{lmbda:g}"


def rd_curve(decoder, teachers, lmbdas: Sequence | None = None, *, anchors: Sequence = (),
             out: str | Path | None = None, name: str | None = None, backend: str = RD_BACKENDS[0],
             ray_address: str | None = None, gpus_per_point: float | None = None, png: bool = False,
             progress: bool = True, **options) -> RDResult:
    """The RD curve of ``decoder`` (a config, preset, config file or export folder) over ``teachers`` (one
    checkpoint per lambda; ``lmbdas``: theirs, when their checkpoints do not say), beside the teachers' own
    curve and ``anchors`` (CompressAI-format JSON files, dicts or Kodak anchor names), with BD-rate and BD-PSNR.
    ``steps``: each stage's steps, ``batch`` its crops per step (default: the schedule's). Finished lambdas are
    read back, not retrained. ``backend``: ``local`` (one lambda after another here) or ``ray`` (all at once as
    Ray tasks; ``gpus_per_point`` GPUs each, by default one where the cluster has GPUs). ``options``: fields of
    ``search.options.RDTraining`` (``schedule``, ``steps``, ``batch``, ``data``, ``test_data``, ``seed``, ``root``,
    and the run options ``device``, ``precision``, ``loader_workers``, ``inherit``, ...); an unknown one or a
    wrong value is a one-line ``space.ConfigError``."""
    from asymllic.options import from_dict
    from asymllic.training import get_schedule

    opts = from_dict(RDOptions, options)
    schedule, steps, batch = opts.schedule, opts.steps, opts.batch
    get_schedule(schedule)  # an unknown schedule: one line, before anything is read
    cfg = decoder_config(decoder)
    pairs = teachers_by_lambda(teachers, lmbdas)
    anchor_curves = [load_anchor(a) for a in anchors]
    if steps is not None and steps < 1:
        raise space.ConfigError("steps", f"{steps}: train each stage at least 1 step")
    if batch is not None and batch < 1:
        raise space.ConfigError("batch", f"{batch}: a step trains on at least one crop")
    if backend not in RD_BACKENDS:
        raise space.ConfigError("backend", f"{backend!r}: choose one of {', '.join(RD_BACKENDS)}")
    from .nodes import absolute

    # paths from here (a Ray task runs in a working folder of its own, perhaps on another machine)
    opts = absolute(opts)
    cid = space.config_id(cfg)
    folder = (Path(out) if out is not None else Path(opts.root) / "rd" / cid).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    label = name or (str(decoder) if isinstance(decoder, str) and decoder in space.PRESETS else cid)
    jobs = [(lam, teacher, lambda_folder(folder, lam)) for lam, teacher in pairs]
    held = {lam: claim(where, point_key(cfg, teacher, lam, opts)) for lam, teacher, where in jobs}  # before training
    trained = [lam for lam, p in held.items() if p is None]

    def tell(i: int, lam: float, p: dict) -> None:
        if progress:
            d, t = p["decoder"]["results"], p["teacher"]["results"]
            print(f"[{i}/{len(jobs)}] lambda {lam:g}: decoder {d['psnr-rgb'][0]:.3f} dB at {d['bpp'][0]:.4f} bpp, "
                  f"teacher {t['psnr-rgb'][0]:.3f} dB at {t['bpp'][0]:.4f} bpp"
                  + ("" if lam in trained else " (done before)"), flush=True)

    if backend == "ray":
        got = {lam: p for lam, p in held.items() if p is not None}
        for i, (lam, p) in enumerate(got.items(), 1):
            tell(i, lam, p)
        todo = [job for job in jobs if held[job[0]] is None]
        if todo:
            got.update(points_on_ray(cfg, todo, opts, ray_address, gpus_per_point,
                                     lambda i, lam, p: tell(len(got) + i, lam, p)))
        points = [got[lam] for lam, _, _ in jobs]
    else:
        points = []
        for i, (lam, teacher, where) in enumerate(jobs, 1):
            points.append(held[lam] or point(cfg, teacher, lam, where, opts))
            tell(i, lam, points[-1])
    dec_curve, tea_curve = curves(points, label, f"decoder {cid} trained on each teacher ({schedule} schedule)",
                                  opts.test_data or "bundled test photos")
    bd = bd_table(dec_curve, tea_curve, anchor_curves)
    files = write_report(dec_curve, tea_curve, anchor_curves, bd, [lam for lam, _ in pairs], folder, png)
    return RDResult(dec_curve, tea_curve, anchor_curves, bd, folder, files, trained)
