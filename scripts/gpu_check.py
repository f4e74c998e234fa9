"""The GPU check: the protocol and a small search at the paper's crop and batch, timed, in one table.

    bash scripts/gpu_check.sh [--device cuda] [--steps 200] [--out DIR]      # on a GPU machine
    bash scripts/gpu_check.sh --device cpu --steps 2 --crop 128 --batch 1 --search-schedule smoke  # CPU mode (tests)

Runs, each on a bundled-photo training set: teacher training (fp32, bf16), stage 1 with the paper's g_s
and stage 2 with the paper's hyperprior path (fp32 and bf16, each from the latent cache and on the
fly), a 3-candidate synthesis search through Optuna with two workers sharing the device, evaluation of
the combined codec, and a file encoded on the device decoded there and on the CPU. Prints one table
(steps/s, samples/s, peak GPU memory, loss after the first and the last step) and writes it, with a JSON
copy, to --out (default: $OUT when set, else results/gpu_check).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import space  # noqa: E402
from asymllic.device import peak_memory_gib, pick_device  # noqa: E402
from asymllic.training import StageRun, combine, get_schedule, train_stage1, train_stage2, train_teacher  # noqa: E402


def _log_figures(run_dir: Path, batch: int) -> dict:
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    steady = [r["seconds"] for r in rows[len(rows) // 5:]] or [r["seconds"] for r in rows]  # after warm-up
    per_step = statistics.median(steady)
    return {"steps": len(rows), "steps_per_s": 1 / per_step, "samples_per_s": batch / per_step,
            "loss_first": rows[0]["loss"], "loss_last": rows[-1]["loss"]}


class Table:
    def __init__(self, device: torch.device):
        self.device, self.rows = device, []

    def run(self, name: str, fn, **fields):
        """Run one check; a failure is a row with its reason, and the check goes on."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        row = {"check": name, **fields}
        try:
            row.update(fn() or {})
            row["status"] = "ok"
        except Exception as e:  # noqa: BLE001 - the table reports every failure and continues
            row["status"] = f"FAILED: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
            traceback.print_exc()
        row["wall_s"] = time.perf_counter() - t0
        row["peak_gib"] = peak_memory_gib(self.device)
        self.rows.append(row)
        print(self.format_row(row), flush=True)
        return row

    COLUMNS = ("check", "precision", "latents", "steps", "steps_per_s", "samples_per_s", "peak_gib", "loss_first",
               "loss_last", "wall_s", "note", "status")

    @staticmethod
    def _cell(v) -> str:
        if v is None:
            return ""
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    def format_row(self, row: dict) -> str:
        return "| " + " | ".join(self._cell(row.get(c)) for c in self.COLUMNS) + " |"

    def markdown(self) -> str:
        head = "| " + " | ".join(self.COLUMNS) + " |\n|" + "---|" * len(self.COLUMNS) + "\n"
        return head + "\n".join(self.format_row(r) for r in self.rows) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=200, help="training steps of each run")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--search-schedule", default="paper", help="training schedule of the search candidates")
    p.add_argument("--search-steps", type=int, default=None, help="steps per search candidate (default --steps)")
    p.add_argument("--loader-workers", type=int, default=None)
    p.add_argument("--precisions", nargs="+", choices=("fp32", "bf16", "fp16"), default=["fp32", "bf16"],
                   help="the precisions each training run is checked in (default fp32 bf16)")
    p.add_argument("--out", default=os.environ.get("OUT") or "results/gpu_check")
    args = p.parse_args(argv)

    device = pick_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work" if "OUT" not in os.environ else Path("/tmp/asymllic-gpu-check")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, device {device} ({name}), crop {args.crop}, batch {args.batch}, "
          f"{args.steps} steps per run", flush=True)
    precisions = tuple(args.precisions)
    # the paper's crop and batch; a small cache_crops so that a short run may cache
    schedule = get_schedule("paper", crop=args.crop, batch=args.batch, cache_crops=64,
                              checkpoint_every=max(1, args.steps), eval_max_side=0)
    table = Table(device)

    def stage_run(folder: str, precision: str, cache_gib: float = 4.0) -> StageRun:
        return StageRun(work / folder, work / "cache", progress=False, device=str(device), precision=precision,
                        loader_workers=args.loader_workers, cache_gib=cache_gib)

    ckpts: dict = {}

    def teacher(precision):
        def fn():
            ckpts[f"teacher-{precision}"] = train_teacher(space.teacher_config(64), schedule, 0.0067, None,
                                                          stage_run(f"teacher-{precision}", precision), args.steps)
            return _log_figures(work / f"teacher-{precision}", args.batch)
        return fn

    for precision in precisions:
        table.run("teacher (TCM-small)", teacher(precision), precision=precision, latents="-")
    teacher_ckpt = next((ckpts[f"teacher-{p}"] for p in precisions if f"teacher-{p}" in ckpts), None)
    if teacher_ckpt is None:
        print("no teacher was trained; the other checks need one", file=sys.stderr)
    else:
        paper = space.get_preset("paper")
        for stage, fn in (("stage1", train_stage1), ("stage2", train_stage2)):
            for precision in precisions:
                for latents, cap in (("cache", 4.0), ("on the fly", 0.0)):
                    folder = f"{stage}-{precision}-{latents.replace(' ', '-')}"

                    def run_stage(fn=fn, folder=folder, precision=precision, cap=cap):
                        ckpts[folder] = fn(teacher_ckpt, paper, schedule, 0.0067, None, stage_run(folder, precision, cap),
                                           args.steps)
                        return _log_figures(work / folder, args.batch)

                    what = "paper g_s" if stage == "stage1" else "paper h_s + f_c"
                    table.run(f"{stage} ({what})", run_stage, precision=precision, latents=latents)
        table.run("search: 3 synthesis candidates, 2 Optuna workers", lambda: _search(args, device, teacher_ckpt, work),
                  precision="auto", latents="policy")
        s1 = next((v for k, v in ckpts.items() if k.startswith("stage1")), None)
        s2 = next((v for k, v in ckpts.items() if k.startswith("stage2")), None)
        if s1 and s2:
            table.run("eval: combined codec (bundled held-out photos)", lambda: _eval(s1, s2, work, device, args.search_schedule))
            table.run("file coded on the device, decoded there and on the CPU", lambda: _cross(work, device))
    text = table.markdown()
    (out / "gpu_check.md").write_text(f"device: {device} ({name}), torch {torch.__version__}\n\n{text}")
    (out / "gpu_check.json").write_text(json.dumps({"device": name, "torch": torch.__version__, "rows": table.rows},
                                                   indent=1, default=str))
    print("\n" + text)
    print(f"written: {out / 'gpu_check.md'}")
    return 0 if all(r["status"] == "ok" for r in table.rows) else 1


def _search(args, device, teacher_ckpt, work) -> dict:
    from search.optuna_backend import run_optuna
    from search.spec import SearchSpec
    from search.table import trials_frame

    spec = SearchSpec(study="gpu-check", part="synthesis", schedule=args.search_schedule, trials=3, workers=2,
                      teacher=str(teacher_ckpt), root=str(work / "studies"), steps=args.search_steps or args.steps,
                      device=str(device), loader_workers=args.loader_workers, heartbeat=0, sampler="random")
    t0 = time.perf_counter()
    df = trials_frame(run_optuna(spec))
    done = df[df["state"] == "COMPLETE"]
    if len(done) < 3:
        raise RuntimeError(f"{len(done)} of 3 candidates completed: {df['state'].tolist()}")
    seconds = time.perf_counter() - t0
    return {"steps": int(len(done)) * spec.steps, "note": f"{len(done)} candidates in {seconds:.0f} s, PSNR "
            + "/".join(f"{v:.2f}" for v in done["psnr"]) + " dB"}


def _eval(s1, s2, work, device, schedule: str) -> dict:
    """The combined codec on the bundled held-out photos, as large as the search schedule evaluates them."""
    from asymllic.checkpoint import load_codec
    from asymllic.training import get_schedule
    from asymllic.data import resolve
    from asymllic.evaluation import evaluate

    codec = combine(s1, s2, work / "combined.pt")
    r = evaluate(load_codec(codec, device), resolve(None, "eval").paths, "combined",
                 max_side=get_schedule(schedule).eval_max_side, progress=False)["results"]
    return {"note": f"PSNR {r['psnr-rgb'][0]:.2f} dB, {r['bpp'][0]:.4f} bpp, decode {r['decoding_time'][0]:.3f} s/image"}


def _cross(work, device) -> dict:
    """Encode on ``device``; decode on it and on the CPU; compare."""
    from asymllic.checkpoint import load_codec
    from asymllic.coding import compress, decompress
    from asymllic.data import resolve
    from asymllic.images import read_image, to_uint8

    x = read_image(resolve(None, "eval").paths[0])
    here = load_codec(work / "combined.pt", device)
    data = compress(here, x)
    same = to_uint8(decompress(here, data))
    try:
        cpu = to_uint8(decompress(load_codec(work / "combined.pt", "cpu"), data))
        diff = int(abs(cpu.astype(int) - same.astype(int)).max())
        verdict = "bit-exact" if diff == 0 else f"NOT bit-exact: max abs difference {diff} (of 255)"
    except Exception as e:  # noqa: BLE001 - a desynchronised entropy decoder may fail outright
        verdict = f"CPU decode failed: {type(e).__name__}: {str(e).splitlines()[0][:100]}"
    return {"note": f"{len(data)} bytes; decoded on {device}: ok; on the CPU: {verdict}"}


if __name__ == "__main__":
    sys.exit(main())
