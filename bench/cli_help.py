"""How fast the command line answers: ``asymllic --help``, ``asymllic search --help`` and ``asymllic results NAME``,
each timed in fresh processes (what a user waits for), min and median of several runs.

    python bench/cli_help.py [--runs 7] [--json out.json]

``results`` reads a small study this script writes first (synthetic trials straight through Optuna, nothing
trained), so the figure is the command's own start-up and table, not a search.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_study(root: Path, name: str = "bench", trials: int = 12) -> None:
    """A study as ``asymllic search`` leaves one: its spec and complete trials with objectives and figures."""
    import optuna
    from optuna.distributions import IntDistribution
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    (root / name).mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{(root / name / 'study.db').as_posix()}",
                                directions=["maximize", "minimize"])
    study.set_user_attr("spec", {"study": name, "part": "synthesis", "objective": "macs", "schedule": "smoke"})
    for i in range(trials):
        psnr, gmacs = 28 + 0.3 * i, 10 + 5 * i
        study.add_trial(create_trial(params={"depth": i % 4}, distributions={"depth": IntDistribution(0, 3)},
                                     values=[psnr, gmacs], state=optuna.trial.TrialState.COMPLETE,
                                     user_attrs={"config_id": f"{i:012d}", "psnr": psnr, "bpp": 0.5,
                                                 "decoder_gmacs": gmacs, "status": "complete"}))


def time_command(argv: list, runs: int) -> dict:
    seconds = []
    for _ in range(runs):
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "asymllic", *argv], cwd=ROOT, capture_output=True, text=True)
        seconds.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise SystemExit(f"asymllic {' '.join(argv)} failed:\n{proc.stderr}")
    return {"min_s": min(seconds), "median_s": statistics.median(seconds), "runs": runs}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        make_study(Path(tmp))
        commands = {"asymllic --help": ["--help"], "asymllic search --help": ["search", "--help"],
                    "asymllic results NAME": ["results", "bench", "--root", tmp]}
        figures = {label: time_command(argv, args.runs) for label, argv in commands.items()}
    print(f"{'command':<26}{'min (s)':>10}{'median (s)':>12}  ({args.runs} fresh processes each)")
    for label, f in figures.items():
        print(f"{label:<26}{f['min_s']:>10.2f}{f['median_s']:>12.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
