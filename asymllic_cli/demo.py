"""``make demo``: a small real search on this machine, ending with a Pareto plot and an exported codec.

Steps (each resumable; a second run reuses what the first finished):
1. train a small TCM-small teacher on the photos bundled with scikit-image (cpu schedule, few steps);
2. search synthesis decoders with Optuna NSGA-II (the paper's decoder and the teacher are the first trials),
   each candidate fine-tuned by stage 1 on cached latents and scored on held-out photos;
3. write the Pareto plot, export the best candidate and use it as a real codec on a held-out photo.
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from . import main as cli

ROOT = Path(os.environ.get("ASYMLLIC_DEMO_ROOT", "results"))
TEACHER_STEPS = int(os.environ.get("ASYMLLIC_DEMO_TEACHER_STEPS", "120"))
TRIALS = int(os.environ.get("ASYMLLIC_DEMO_TRIALS", "6"))
STEPS = int(os.environ.get("ASYMLLIC_DEMO_STEPS", "40"))


def run(argv: list) -> None:
    rc = cli([str(a) for a in argv])
    if rc:
        sys.exit(rc)


def step(title: str, argv: list) -> None:
    print(f"\n== {title}\n$ {shlex.join(['asymllic', *map(str, argv)])}", flush=True)
    run(argv)


def main() -> int:
    teacher_dir = ROOT / "demo-teacher"
    step("1/5 complexity of the teacher and of the paper's decoder (paper's thop convention)",
         ["complexity", "tcm-small", "--convention", "thop"])
    run(["complexity", "paper", "--convention", "thop"])
    step(f"2/5 train a small teacher ({TEACHER_STEPS} steps, cpu schedule, bundled photos)",
         ["teacher", "train", "--schedule", "cpu", "--steps", TEACHER_STEPS, "--out", teacher_dir])
    step(f"3/5 search {TRIALS} synthesis decoders (stage 1, {STEPS} steps each)",
         ["search", "--study", "demo", "--part", "synthesis", "--schedule", "cpu", "--trials", TRIALS, "--steps", STEPS,
          "--teacher", teacher_dir / "codec.pt", "--root", ROOT])
    step("4/5 results, Pareto plot and export", ["results", "demo", "--root", ROOT])
    run(["pareto", "demo", "--root", ROOT, "--png"])
    run(["export", "demo", "--top", "1", "--root", ROOT])
    export = max((ROOT / "demo" / "export").glob("*/card.md"), key=lambda p: p.stat().st_mtime).parent  # this run's
    from asymllic.data import bundled

    photo = bundled("eval")[0]
    step("5/5 the exported decoder as a real codec",
         ["compress", photo, ROOT / "demo" / "chelsea.alic", "--codec", export])
    run(["decompress", ROOT / "demo" / "chelsea.alic", ROOT / "demo" / "chelsea.png", "--codec", export])
    print(f"\nPareto plot: {ROOT / 'demo' / 'pareto.html'} (and .png)\nExported codec: {export}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
