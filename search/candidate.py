"""One candidate: count it, fine-tune its light part(s) under the frozen-encoder protocol, evaluate real files."""
from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

import space

from .spec import SearchSpec


def complexity(cfg: space.CodecConfig, size: tuple) -> dict:
    """Decoder/total params and MACs in both conventions, before any training. Counted once per config and size
    in a process (a search meets the same configs again: the presets, a resumed study, the mirror)."""
    return dict(_complexity(cfg, tuple(size)))


@lru_cache(maxsize=1024)
def _complexity(cfg: space.CodecConfig, size: tuple) -> dict:
    from asymllic.complexity import count

    out = {}
    for conv in ("exact", "thop"):
        r = count(cfg, size, conv)
        suffix = "" if conv == "exact" else "_thop"
        out[f"decoder_gmacs{suffix}"] = r.decoder.macs / 1e9
        out[f"decoder_mparams{suffix}"] = r.decoder.params / 1e6
        out[f"gs_gmacs{suffix}"] = r.components["g_s"].macs / 1e9
        out[f"hyperprior_gmacs{suffix}"] = r.components["hyperprior"].macs / 1e9
    return out


def train_and_evaluate(cfg: space.CodecConfig, spec: SearchSpec, trial_dir: Path, progress: bool = False) -> dict:
    """Stage 1 (synthesis), stage 2 (hyperprior) or both + combine (joint); then evaluate on held-out photos."""
    from asymllic.codec.checkpoint import load_codec
    from asymllic.data import resolve
    from asymllic.errors import AsymllicError
    from asymllic.evaluation.evaluate import evaluate
    from asymllic.training import StageRun, combine, train_stage1, train_stage2

    if not spec.teacher:
        raise AsymllicError(f"no teacher; train one with 'asymllic teacher train --schedule {spec.schedule}' and pass "
                            "--teacher")
    schedule = spec.training_schedule()
    steps, plan = spec.rung()  # a multi-fidelity rung stops early in the top rung's learning-rate plan
    cache = Path(spec.root) / "cache"
    t0 = time.perf_counter()

    def run(stage: str) -> StageRun:
        return StageRun(trial_dir / stage, cache, spec.seed, progress, **spec.run_options())

    from asymllic.device import peak_memory, reset_peak_memory

    device, _ = run("eval").resolved()
    reset_peak_memory(device)  # this worker's own peak (training and evaluation), for workers sharing a GPU
    paths = {}
    if spec.part in ("synthesis", "joint"):
        paths["stage1"] = train_stage1(spec.teacher, cfg, schedule, spec.lmbda, spec.data, run("stage1"), steps, plan)
    if spec.part in ("hyperprior", "joint"):
        # joint: stage 2 against the teacher's g_s, or (sequential) against the stage-1 g_s just trained
        synthesis = paths["stage1"] if spec.part == "joint" and spec.stage2_synthesis == "stage1" else None
        paths["stage2"] = train_stage2(spec.teacher, cfg, schedule, spec.lmbda, spec.data, run("stage2"), steps,
                                       synthesis_from=synthesis, plan_steps=plan)
    codec = combine(paths["stage1"], paths["stage2"], trial_dir / "codec.pt") if spec.part == "joint" \
        else next(iter(paths.values()))
    model = load_codec(codec, device)
    out = {"train_seconds": time.perf_counter() - t0, "checkpoint": str(codec)}
    # selected on one set, reported on another: the objectives use the first, test_* figures the second (only at
    # the top rung: a lower rung's result only decides whether the candidate goes on)
    sets = (("", spec.eval_data, "eval"),) + ((("test_", spec.test_data, "test"),) if steps >= plan else ())
    for prefix, data, split in sets:
        r = evaluate(model, resolve(data or "bundled", split).paths, name=trial_dir.name,
                     progress=False, **schedule.eval_options())["results"]
        out.update({f"{prefix}psnr": r["psnr-rgb"][0], f"{prefix}bpp": r["bpp"][0], f"{prefix}file_bpp": r["file_bpp"][0],
                    f"{prefix}estimated_bpp": r["estimated_bpp"][0], f"{prefix}ms_ssim": r["ms-ssim-rgb"][0],
                    f"{prefix}rd_cost": rd_cost(r["mse"][0], r["bpp"][0], spec.lmbda)})
        if not prefix:
            out["decoding_time"] = r["decoding_time"][0]
    out.update(peak_memory(device))
    if steps >= plan:  # only a run that may go on (to the next rung, or after a crash) needs its optimiser state
        drop_resume_state(trial_dir)
    return out


def drop_resume_state(trial_dir: Path) -> None:
    from asymllic.training.loop import STATE_FILE

    for state in Path(trial_dir).glob(f"stage*/{STATE_FILE}"):
        state.unlink()


def rd_cost(mse: float, bpp: float, lmbda: float) -> float:
    """The rate-distortion cost training minimises, on real files: lambda * 255^2 * MSE + bpp (payload)."""
    return lmbda * 255 ** 2 * mse + bpp


def base_config(spec: SearchSpec) -> space.CodecConfig:
    """The codec the searched part is swapped into: the teacher's config (any model reference) or TCM-small."""
    if spec.teacher:
        from asymllic.codec.reference import resolve_config

        return resolve_config(spec.teacher)
    return space.teacher_config(64)
