"""Plain NSGA-II vs multi-fidelity (MO-ASHA) at equal total training steps, side by side in one run.

    python bench/multi_fidelity.py --teacher T [--part synthesis] [--steps 160] [--min-steps 40] [--eta 2]
                                   [--budget-steps 1280] [--schedule cpu] [--report]

Both searches run at once, one thread each, on the same space, sampler (NSGA-II) and seed, so they meet the
same candidates in the same order; the plain one trains each for --steps, the multi-fidelity one scores them
at rungs from --min-steps up to --steps. Each search runs (and is resumed with more trials) until no
further candidate fits in --budget-steps; a search runs one trial after another, so the trials that fit in
the budget are a prefix of its study: exactly what a search stopped at that budget would hold. Printed
per search, over that prefix: candidates scored (at any rung), steps, wall time, candidates per hour, the
front (top-rung trials only) and its hypervolume on common scales, on the selection photos (what the search
ranks by) and on the test photos (the same front's points, as reported).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asymllic.training.inherit import INHERIT  # noqa: E402


def search(study: str, extra: list, trials: int, args) -> subprocess.Popen:
    """``asymllic search`` in a process of one thread; run again with more trials, it resumes the study."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "asymllic", "search", "--study", study, "--part", args.part, "--schedule",
           args.schedule, "--trials", str(trials), "--steps", str(args.steps), "--sampler", "nsga2", "--seed",
           str(args.seed), "--teacher", args.teacher, "--root", args.root, "--inherit", args.inherit,
           *(["--batch", str(args.batch)] if args.batch else []), *extra]
    log = open(Path(args.root) / f"{study}.log", "a")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def within_budget(df, budget: int):
    """The first trials (by number) whose steps add up to at most ``budget``."""
    df = df.sort_values("number").copy()
    df["steps_trained"] = steps_trained(df)
    return df[df["steps_trained"].cumsum() <= budget]


def steps_trained(df):
    """Steps each trial trained (an over-budget sample: none)."""
    return df["steps"].fillna(0) if "steps" in df else 0 * df["number"]


def as_tested(df, part: str):
    """``df`` with its selection objectives replaced by the test photos' figures (the same points, as reported)."""
    from search import objectives

    return df.assign(**{n: df[f"test_{n}"] for n in objectives.names(part) if f"test_{n}" in df})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True)
    p.add_argument("--part", default="synthesis", choices=("synthesis", "hyperprior", "joint"))
    p.add_argument("--schedule", default="cpu")
    p.add_argument("--batch", type=int, default=None, help="training crops per step (default: the schedule's)")
    p.add_argument("--steps", type=int, default=160, help="steps of a plain candidate, and the top rung")
    p.add_argument("--min-steps", type=int, default=40)
    p.add_argument("--eta", type=int, default=2)
    p.add_argument("--budget-steps", type=int, default=None, help="default: 8 plain candidates (8 x --steps)")
    p.add_argument("--report", action="store_true", help="only print the table of the studies already run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inherit", choices=INHERIT, default="none", help="see asymllic search --help")
    p.add_argument("--root", default="results/mf-bench")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from search.optuna_backend import open_study
    from search.pareto import hypervolume
    from search.spec import SearchSpec
    from search.table import minimised, pareto_mask

    budget = args.budget_steps or 8 * args.steps
    arms = {"plain NSGA-II": ("plain", [], args.steps),
            "multi-fidelity": ("mf", ["--min-steps", str(args.min_steps), "--eta", str(args.eta)], args.min_steps)}
    Path(args.root).mkdir(parents=True, exist_ok=True)

    def frame(study: str):
        from search.table import trials_frame

        return trials_frame(open_study(SearchSpec(study=study, root=args.root), create=False))

    def spend(name: str) -> float:
        """Runs (or resumes) one arm's search, a trial more each time, until no candidate fits in the budget."""
        study, extra, least = arms[name]
        t = time.perf_counter()
        trials = budget // args.steps
        while True:
            if search(study, extra, trials, args).wait():
                raise SystemExit(f"{name} search failed: see {args.root}/{study}.log")
            df = frame(study)
            left = budget - steps_trained(df).sum()
            if left < least or len(df) >= 4 * budget // args.min_steps:
                return time.perf_counter() - t
            trials = len(df) + max(1, int(left // args.steps))  # what surely fits; then resumed for more

    if not args.report:
        if search("warm", ["--no-presets", "--steps", "1"], 1, args).wait():  # the shared latent cache, built once
            raise SystemExit(f"warm-up search failed: see {args.root}/warm.log")
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:  # both at once: the same machine load for each
            walls = dict(zip(arms, pool.map(spend, arms)))
        print("whole runs: " + ", ".join(f"{n} {w:.0f} s" for n, w in walls.items()))
    frames = {name: within_budget(frame(study), budget) for name, (study, _, _) in arms.items()}
    done = [f[f["state"] == "COMPLETE"] for f in frames.values()]
    allv = np.concatenate([minimised(d, args.part) for d in done])
    lo, hi = allv.min(0), allv.max(0)
    test = [as_tested(d, args.part) for d in done]
    allt = np.concatenate([minimised(d, args.part) for d in test])
    lo_t, hi_t = allt.min(0), allt.max(0)
    print(f"{args.part}, {args.schedule} schedule, budget {budget} steps; plain: {args.steps} steps a candidate; "
          f"multi-fidelity: rungs from {args.min_steps} by eta {args.eta} to {args.steps}")
    print("| search | candidates scored | at the top rung | stopped | over the MAC budget | steps | wall s "
          "(trials) | candidates/hour | front | hypervolume (selection) | hypervolume (test) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, df), d in zip(frames.items(), done):
        front = pareto_mask(df, args.part)
        stopped = df["stopped"].notna().sum() if "stopped" in df else 0
        infeasible = df["infeasible"].notna().sum() if "infeasible" in df else 0
        scored = len(d) + stopped
        seconds = df["duration_s"].sum()
        hv = hypervolume(minimised(df[front], args.part), lo, hi)
        hv_t = hypervolume(minimised(as_tested(df[front], args.part), args.part), lo_t, hi_t)
        print(f"| {name} | {scored} | {len(d)} | {stopped} | {infeasible} | {int(df['steps_trained'].sum())} | "
              f"{seconds:.0f} | {3600 * scored / seconds:.1f} | {int(front.sum())} | {hv:.3f} | {hv_t:.3f} |")
    for name, df in frames.items():
        cols = [c for c in ("number", "state", "pareto", "preset", "config_id", "psnr", "test_psnr", "decoder_gmacs",
                            "steps", "duration_s") if c in df]
        print(f"\n{name}:")
        print(df.assign(pareto=pareto_mask(df, args.part))[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
