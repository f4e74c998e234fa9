"""The GPU check: the protocol and a small search at the paper's crop and batch, timed, in one table.

    bash scripts/gpu_check.sh [--device cuda] [--steps 200] [--budget-s 540] [--out DIR]       # on a GPU machine
    bash scripts/gpu_check.sh --device cpu --steps 2 --crop 128 --batch 1 --search-schedule smoke  # CPU mode (tests)

Rows, most important first, each on a bundled-photo training set in a work folder of its own (a fresh one
per run: a rerun never reports an earlier run's figures): the teacher (TCM-small), stage 1 with the paper's g_s
and stage 2 with the paper's hyperprior path in the first precision, a 3-candidate synthesis search through
Optuna with two workers sharing the device (peak memory per worker), a file encoded on the device and decoded
there and on the CPU, host syncs per training step, throughput against the card's measured matrix rate, then
the other precisions, on-the-fly latents and the combined codec's evaluation. The table (steps/s, samples/s,
peak GPU memory, loss after the first and the last step) and its JSON copy are rewritten after every row in
--out (default: $OUT when set, else results/gpu_check), so a run stopped by a time limit keeps what it did;
--budget-s stops the run cleanly (a row still running at the budget is stopped and marked so; later rows are
marked skipped); it counts from GPU_CHECK_T0 (epoch seconds; gpu_check.sh exports it before pip) when set, else from
this script's start. The header and every row say the precision and TF32 state they ran with (read after
``prepare``, which turns TF32 on for training). At the end one line per row says "ok" or its status; the exit
status is 0 when the table was written (failed rows included: the table is the finding), 1 when it could not be.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

STARTED = time.time(), time.monotonic()  # before torch's import: the budget counts from here at the latest

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import space  # noqa: E402
from asymllic import cuda  # noqa: E402
from asymllic.device import (peak_memory, pick_device, pick_precision, prepare, reset_peak_memory,  # noqa: E402
                             tf32_state)
from asymllic.training import StageRun, combine, get_schedule, train_stage1, train_stage2, train_teacher  # noqa: E402
from asymllic.training.latents import META  # noqa: E402


class OverBudget(BaseException):
    """The check's time budget ran out during a row. A BaseException (as KeyboardInterrupt): the broad ``except
    Exception`` handlers inside a row (a refused file, a failed trial) let it through to ``Table.run``."""


def budget_start(environ=os.environ) -> tuple:
    """(monotonic time the budget counts from, what it is): GPU_CHECK_T0 (epoch seconds, set by gpu_check.sh before
    pip, imports and CUDA start-up) when set and plausible, else this script's start."""
    wall, mono = STARTED
    try:
        before = wall - float(environ.get("GPU_CHECK_T0", ""))
    except ValueError:
        before = None
    if before is None or not -5 < before < 86_400:  # unset, or not this run's (a stale export)
        return mono, "this script's start"
    before = max(0.0, before)
    return mono - before, f"GPU_CHECK_T0 ({before:.1f} s before this script)"


def tf32_cell(state: dict | None = None) -> str:
    """TF32 in one cell: on, off, or each of matmul and cuDNN."""
    state = state or tf32_state()
    matmul, conv = bool(state["matmul_tf32"]), bool(state["cudnn_tf32"])
    if matmul == conv:
        return "on" if matmul else "off"
    return f"matmul {'on' if matmul else 'off'}, cudnn {'on' if conv else 'off'}"


def _log_figures(run_dir: Path, batch: int) -> dict:
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    steady = [r["seconds"] for r in rows[len(rows) // 5:]] or [r["seconds"] for r in rows]  # after warm-up
    per_step = statistics.median(steady)
    return {"steps": rows[-1].get("step", len(rows)), "steps_per_s": 1 / per_step, "samples_per_s": batch / per_step,
            "loss_first": rows[0]["loss"], "loss_last": rows[-1]["loss"]}


class Table:
    """Rows run one by one; the markdown table and its JSON copy are rewritten after each."""

    COLUMNS = ("check", "precision", "tf32", "latents", "steps", "steps_per_s", "samples_per_s", "peak_gib",
               "loss_first", "loss_last", "wall_s", "note", "status")

    def __init__(self, device: torch.device, out: Path, header: dict, budget_s: float, min_row_s: float = 15.0,
                 start: float | None = None):
        """``start``: the monotonic time the budget counts from (default now)."""
        self.device, self.out, self.header, self.rows = device, out, header, []
        self.deadline = (time.monotonic() if start is None else start) + budget_s
        self.min_row_s, self.written = min_row_s, False

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, name: str, fn, **fields) -> dict:
        """Run one check; a failure is a row with its reason, and the check goes on. The row says the TF32 state
        it started with unless ``fields`` says otherwise (coding rows: exact kernels)."""
        row = {"check": name, **fields}
        row.setdefault("tf32", tf32_cell())
        if self.left() < self.min_row_s:
            row["status"] = "skipped: time budget spent"
            return self._add(row)
        reset_peak_memory(self.device)
        t0 = time.perf_counter()
        previous = signal.signal(signal.SIGALRM, _over_budget)
        signal.alarm(max(1, math.ceil(self.left())))
        try:
            try:
                row.update(fn() or {})
                row["status"] = "ok"
            finally:
                signal.alarm(0)  # inside the handlers below: an alarm up to here is still this row's
        except OverBudget:
            row["status"] = "stopped: time budget spent during this row"
        except Exception as e:  # noqa: BLE001 - the table reports every failure and continues
            row["status"] = f"FAILED: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
            traceback.print_exc()
        finally:
            signal.signal(signal.SIGALRM, previous)
        row["wall_s"] = time.perf_counter() - t0
        row.setdefault("peak_gib", peak_memory(self.device).get("peak_gib"))
        return self._add(row)

    def _add(self, row: dict) -> dict:
        self.rows.append(row)
        print(self.format_row(row), flush=True)
        self.write()
        return row

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

    def write(self) -> bool:
        """Rewrite the table and its JSON copy; False (and why, on stderr) when they could not be written."""
        about = ", ".join(f"{k} {v}" for k, v in self.header.items())
        try:
            for name, text in (("gpu_check.md", f"{about}\n\n{self.markdown()}"),
                               ("gpu_check.json", json.dumps({**self.header, "rows": self.rows}, indent=1,
                                                             default=str))):
                tmp = self.out / f".{name}.tmp"
                tmp.write_text(text)
                tmp.replace(self.out / name)
        except OSError as e:
            print(f"gpu_check: could not write the table in {self.out}: {e}", file=sys.stderr, flush=True)
            self.written = False
            return False
        self.written = True
        return True

    def summary(self) -> str:
        """One line per row: ok, or its status; with the precision and TF32 state it ran with."""
        lines = []
        for r in self.rows:
            ok = r.get("status") == "ok"
            lines.append(f"{'ok' if ok else 'NOT OK'}: {r['check']} [precision {r.get('precision') or '-'}, "
                         f"TF32 {r.get('tf32') or '-'}" + (f", latents {r['latents']}" if r.get("latents") else "")
                         + "]" + ("" if ok else f": {r.get('status')}"))
        return "\n".join(lines)


def _over_budget(signum, frame):
    raise OverBudget()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=200, help="training steps of each run")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--search-schedule", default="paper", help="training schedule of the search candidates")
    p.add_argument("--search-steps", type=int, default=None, help="steps per search candidate (default --steps)")
    p.add_argument("--loader-workers", type=int, default=None)
    p.add_argument("--precisions", nargs="+", choices=("fp32", "bf16", "fp16"), default=["bf16", "fp32"],
                   help="the precisions each training run is checked in, the first one first (default bf16 fp32)")
    p.add_argument("--budget-s", type=float, default=540.0,
                   help="seconds for the whole check (default 540: one device call of at most 9 minutes)")
    p.add_argument("--out", default=os.environ.get("OUT") or "results/gpu_check")
    args = p.parse_args(argv)

    start, counted_from = budget_start()
    # what every training row does first (cuDNN autotuning, TF32 on): done here, so the header's TF32 state is
    # the one the rows run with, the fp32 matmul reference of the throughput rows included
    device = prepare(pick_device(args.device))
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"gpu_check: could not create {out}: {e}", file=sys.stderr)
        return 1
    # a fresh work folder every run (never under $OUT, whose files travel back)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-", dir=None if "OUT" in os.environ else out))
    name = cuda.name(device) if device.type == "cuda" else "CPU"
    first, rest = args.precisions[0], args.precisions[1:]
    header = {"device": f"{device} ({name})", "torch": torch.__version__, "crop": args.crop, "batch": args.batch,
              "steps": args.steps, "precisions": " ".join(args.precisions), "tf32": tf32_cell(),
              **{k: str(v) for k, v in tf32_state().items()},
              "budget_s": f"{args.budget_s:g} from {counted_from}"}
    print(", ".join(f"{k} {v}" for k, v in header.items()) + f"; work folder {work}", flush=True)
    schedule = get_schedule("paper", crop=args.crop, batch=args.batch, cache_crops=64,
                            checkpoint_every=max(1, args.steps), eval_max_side=0)
    table = Table(device, out, header, args.budget_s, start=start)
    check = Check(args, device, work, schedule)
    coded = {"precision": "fp32 (coding)", "tf32": "off (exact kernels)"}
    table.run("teacher (TCM-small)", check.teacher(first), precision=first, latents="-")
    if check.teacher_ckpt is None:
        print("no teacher was trained; the other checks need one", file=sys.stderr)
    else:
        table.run("stage1 (paper g_s)", check.stage("stage1", first, "cache"), precision=first, latents="cache")
        table.run("stage2 (paper h_s + f_c)", check.stage("stage2", first, "cache"), precision=first, latents="cache")
        table.run("search: 3 synthesis candidates, 2 Optuna workers", check.search,
                  precision=f"auto ({pick_precision('auto', device)})", latents="policy")
        table.run("file coded on the device, decoded there and on the CPU", check.cross, **coded)
        table.run("host syncs per training step (teacher; stages 1 and 2 from the cache)", check.host_syncs,
                  precision=first, latents="cache")
        for part in ("teacher", "stage1"):  # eager and channels_last first; compiling takes minutes
            for layout in ("eager", "channels_last"):
                table.run(f"throughput: {part} step, {layout}", check.throughput(part, first, layout), precision=first)
        for part in ("teacher", "stage1"):
            table.run(f"throughput: {part} step, compiled", check.throughput(part, first, "compile"), precision=first)
        for precision in rest:
            table.run("teacher (TCM-small)", check.teacher(precision), precision=precision, latents="-")
        for precision in args.precisions:
            for stage, what in (("stage1", "paper g_s"), ("stage2", "paper h_s + f_c")):
                for latents in (("on the fly",) if precision == first else ("cache", "on the fly")):
                    table.run(f"{stage} ({what})", check.stage(stage, precision, latents), precision=precision,
                              latents=latents)
        table.run("eval: combined codec (bundled held-out photos)", check.evaluate, **coded)
    print("\n" + table.markdown())
    if not table.write():
        print(f"gpu_check: the table could not be written in {out}", file=sys.stderr)
        return 1
    print(f"written: {out / 'gpu_check.md'}")
    print(table.summary(), flush=True)
    return 0  # the table is the product: failed rows are findings in it


def count_host_syncs(runs: dict, debug=None) -> dict:
    """Each of ``runs`` (name -> run(steps, folder)) for 2 and 6 steps under the sync debug mode ``warn`` (``debug``:
    ``cuda.sync_debug``); the warnings about synchronising calls counted, their difference over 4 steps per step."""
    debug = debug or cuda.sync_debug
    per_step, counts = {}, {}
    for part, run in runs.items():
        counted = []
        for steps in (2, 6):
            with warnings.catch_warnings(record=True) as caught, debug("warn"):
                warnings.simplefilter("always")
                run(steps, f"syncs-{part.split()[0]}-{steps}")
            counted.append(sum("synchroniz" in str(w.message).lower() for w in caught))
        counts[part], per_step[part] = counted, (counted[1] - counted[0]) / 4
    return {"steps": 4 * len(per_step), "syncs_per_step": per_step, "sync_counts_2_6_steps": counts,
            "note": "host syncs per step: " + ", ".join(f"{k} {v:.1f}" for k, v in per_step.items())
                    + " (" + "; ".join(f"{k} {a} in 2 steps, {b} in 6" for k, (a, b) in counts.items())
                    + ", set-up included)"}


class Check:
    """The work of each row; trained checkpoints are kept for the rows after."""

    def __init__(self, args, device: torch.device, work: Path, schedule):
        self.args, self.device, self.work, self.schedule = args, device, work, schedule
        self.teacher_ckpt = None
        self.ckpts: dict = {}

    def run(self, folder: str, precision: str, cache_gib: float = 4.0) -> StageRun:
        return StageRun(self.work / folder, self.work / "cache", progress=False, device=str(self.device),
                        precision=precision, loader_workers=self.args.loader_workers, cache_gib=cache_gib)

    def teacher(self, precision: str, steps: int | None = None, folder: str | None = None):
        def fn():
            where = folder or f"teacher-{precision}"
            ckpt = train_teacher(space.teacher_config(64), self.schedule, 0.0067, None, self.run(where, precision),
                                 steps or self.args.steps)
            if folder is None:
                self.teacher_ckpt = self.teacher_ckpt or ckpt
            return _log_figures(self.work / where, self.args.batch)
        return fn

    def stage(self, stage: str, precision: str, latents: str, steps: int | None = None, folder: str | None = None):
        """A stage's row; ``steps``/``folder``: a shorter run of it (host syncs), planned as the row's run (the
        same latent cache)."""
        def fn():
            where = folder or f"{stage}-{precision}-{latents.replace(' ', '-')}"
            train = train_stage1 if stage == "stage1" else train_stage2
            ckpt = train(self.teacher_ckpt, space.get_preset("paper"), self.schedule, 0.0067, None,
                         self.run(where, precision, 4.0 if latents == "cache" else 0.0), steps or self.args.steps,
                         plan_steps=self.args.steps)
            if folder is None:
                self.ckpts.setdefault(stage, ckpt)  # the first row's (most important precision) is combined
            return _log_figures(self.work / where, self.args.batch)
        return fn

    def search(self) -> dict:
        from search.optuna_backend import run_optuna
        from search.spec import SearchSpec
        from search.table import trials_frame

        spec = SearchSpec(study="gpu-check", part="synthesis", schedule=self.args.search_schedule, trials=3, workers=2,
                          teacher=str(self.teacher_ckpt), root=str(self.work / "studies"),
                          steps=self.args.search_steps or self.args.steps, device=str(self.device),
                          loader_workers=self.args.loader_workers, heartbeat=0, sampler="random")
        t0 = time.perf_counter()
        df = trials_frame(run_optuna(spec))
        done = df[df["state"] == "COMPLETE"]
        if len(done) < 3:
            raise RuntimeError(f"{len(done)} of 3 candidates completed: {df['state'].tolist()}")
        seconds = time.perf_counter() - t0
        peaks = [float(v) for v in df.get("peak_gib", []) if v == v and v is not None]  # each worker's own
        return {"steps": int(len(done)) * spec.steps, "peak_gib": max(peaks) if peaks else None,
                "note": f"{len(done)} candidates in {seconds:.0f} s, PSNR " + "/".join(f"{v:.2f}" for v in done["psnr"])
                + " dB" + (f"; peak per candidate " + "/".join(f"{v:.2f}" for v in peaks) + " GiB" if peaks else "")}

    def combined(self) -> Path:
        path = self.work / "combined.pt"
        if not path.exists():
            combine(self.ckpts["stage1"], self.ckpts["stage2"], path)
        return path

    def cross(self) -> dict:
        """Encode on the device; decode on it and on the CPU; compare."""
        from asymllic.codec.checkpoint import load_codec
        from asymllic.codec.coding import compress, decompress
        from asymllic.data import resolve
        from asymllic.images import read_image, to_uint8

        x = read_image(resolve(None, "eval").paths[0])
        here = load_codec(self.combined(), self.device)
        data = compress(here, x)
        same = to_uint8(decompress(here, data))
        try:
            cpu = to_uint8(decompress(load_codec(self.combined(), "cpu"), data))
            diff = int(abs(cpu.astype(int) - same.astype(int)).max())
            verdict = "bit-exact" if diff == 0 else f"decoded, max abs difference {diff} (of 255; g_s kernels differ)"
        except Exception as e:  # noqa: BLE001 - a refused file is the row's finding
            verdict = f"refused: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
        return {"note": f"{len(data)} bytes; decoded on {self.device}: ok; on the CPU: {verdict}"}

    def sync_runs(self) -> dict:
        """name -> run(steps, folder) of each training loop whose host syncs are counted: the teacher, and stages 1
        and 2 reading the latent cache (as the stage rows: same plan, same cache)."""
        first = self.args.precisions[0]
        return {"teacher": lambda steps, folder: self.teacher(first, steps, folder)(),
                "stage1 (cache)": lambda steps, folder: self.stage("stage1", first, "cache", steps, folder)(),
                "stage2 (cache)": lambda steps, folder: self.stage("stage2", first, "cache", steps, folder)()}

    def host_syncs(self) -> dict:
        """Synchronising calls per steady-state training step, from CUDA's sync debug mode, for the teacher and
        stages 1 and 2 from the latent cache: runs of 2 and 6 steps differ by 4 steps' syncs (set-up, checkpoints
        and the first step cancel out). The cache is built before counting (by the stage rows, else here)."""
        if self.device.type != "cuda":
            return {"note": "CUDA only (torch's sync debug mode)"}
        if not any((self.work / "cache").glob(f"*/*/{META}")):  # the stage rows did not build it: once, uncounted
            self.stage("stage1", self.args.precisions[0], "cache", 1, "syncs-cache")()
        return count_host_syncs(self.sync_runs())

    def throughput(self, part: str, precision: str, layout: str):
        """Steps/s of one training step of ``part`` (forward, backward, Adam) at the check's crop and batch, and the
        achieved share of the card's measured dense matmul rate in that precision (asymllic.training.throughput:
        the step's MACs from the project's counter). ``layout``: eager, channels_last or compile."""
        def fn():
            from asymllic.device import DTYPES, autocast
            from asymllic.evaluation.metrics import distortion_loss, rd_loss
            from asymllic.models import LicCodec
            from asymllic.training.throughput import matmul_tflops, median_seconds, step_gmacs, time_steps

            if layout == "compile" and self.device.type != "cuda":
                return {"note": "CUDA only (Inductor's CPU build of these models takes minutes)"}
            if layout == "channels_last" and self.device.type != "cuda" and part == "teacher":
                # torch 2.14.1 on the CPU: the teacher's g_a backward in channels_last aborts the process (heap
                # corruption), with or without this project's changes; the row is for GPUs
                return {"note": "CUDA only (torch's CPU channels_last backward of g_a aborts the process)"}
            config = space.teacher_config(64) if part == "teacher" else space.get_preset("paper")
            torch.manual_seed(0)
            model = LicCodec(config).to(self.device).train()
            crop, batch = self.args.crop, self.args.batch
            x = torch.rand(batch, 3, crop, crop, device=self.device)
            y_hat = torch.randn(batch, 320, crop // 16, crop // 16, device=self.device) * 4
            if layout == "channels_last":
                model = model.to(memory_format=torch.channels_last)
                x, y_hat = (t.contiguous(memory_format=torch.channels_last) for t in (x, y_hat))
            net = model.g_s if part == "stage1" else model
            trained = [p for p in net.parameters()]
            if layout == "compile":
                torch._dynamo.reset()
                net.compile()
            opt = torch.optim.Adam(trained, lr=1e-4)

            def step():
                with autocast(self.device, precision):
                    loss = (rd_loss(model(x), x, 0.0067) if part == "teacher"
                            else distortion_loss(model.g_s(y_hat), x, 0.0067))["loss"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            seconds = median_seconds(time_steps(step, max(3, self.args.steps // 10), self.device,
                                                warmup=3 if layout == "compile" else 1))
            gmacs = step_gmacs(config, part, crop, batch)
            possible = matmul_tflops(self.device, DTYPES.get(precision, torch.float32))
            achieved = 2 * gmacs * 1e9 / seconds / 1e12
            return {"steps_per_s": 1 / seconds, "samples_per_s": batch / seconds,
                    "note": f"{gmacs:.1f} GMACs/step: {achieved:.3g} of {possible:.3g} TFLOP/s measured "
                            f"({100 * achieved / possible:.1f} %)"}
        return fn

    def evaluate(self) -> dict:
        """The combined codec on the bundled held-out photos, as large as the search schedule evaluates them."""
        from asymllic.codec.checkpoint import load_codec
        from asymllic.data import resolve
        from asymllic.evaluation.evaluate import evaluate

        r = evaluate(load_codec(self.combined(), self.device), resolve(None, "eval").paths, "combined",
                     progress=False, **get_schedule(self.args.search_schedule).eval_options())["results"]
        return {"note": f"PSNR {r['psnr-rgb'][0]:.2f} dB, {r['bpp'][0]:.4f} bpp, decode {r['decoding_time'][0]:.3f} s/image"}


if __name__ == "__main__":
    sys.exit(main())
