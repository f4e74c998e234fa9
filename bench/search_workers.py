"""Search throughput: candidates per hour with 1 worker x 2 threads vs 2 workers x 1 thread, in one run.

    python bench/search_workers.py --teacher results/protocol-cpu/teacher/codec.pt [--trials 6] [--steps 30]

Both runs search the same synthesis space (random sampler, same seed) on separate SQLite studies under a
temporary folder. On a 2-core machine torch already uses both cores in one process, so the second
worker can only win what one process leaves idle (Python overhead, entropy coding, I/O).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(study: str, workers: int, threads: int, trials: int, args, root: Path) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "asymllic", "search", "--study", study, "--schedule", args.schedule,
           "--trials", str(trials), "--steps", str(args.steps), "--workers", str(workers), "--sampler", "random",
           "--teacher", args.teacher, "--root", str(root), "--no-presets"]
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True)
    p.add_argument("--schedule", default="cpu")
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cores = os.cpu_count() or 1
        run("warm", 1, cores, 1, args, Path(tmp))  # builds the shared latent cache so neither run pays for it
        one = run("one", 1, cores, args.trials, args, Path(tmp))
        two = run("two", 2, 1, args.trials, args, Path(tmp))
    print(f"{os.cpu_count()} cores, {args.trials} candidates ({args.schedule} schedule, {args.steps} steps each)")
    print(f"1 worker x {os.cpu_count()} threads: {one:.1f} s, {3600 * args.trials / one:.1f} candidates/hour")
    print(f"2 workers x 1 thread:  {two:.1f} s, {3600 * args.trials / two:.1f} candidates/hour")
    print(f"ratio 2 workers / 1 worker: {one / two:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
