"""What an open Optuna Dashboard costs a running search: seconds per trial of a search with `asymllic dashboard`
serving its study and a browser tab's polling beside it, against the same search without, in one run.

    python bench/dashboard_overhead.py [--teacher T] [--trials 3] [--schedule smoke] [--poll 1.0]

Both searches draw the same configs (a new study's first worker uses the seed as given) on separate SQLite
studies under a temporary folder, after a one-trial warm-up study that fills the latent cache; each runs one
trial more than timed, the first (during which the dashboard starts, as soon as the study exists). The dashboard
runs in a process of its own, as `asymllic dashboard` does, and the bench reads the study's detail from it every
`--poll` seconds, as an open tab does (the dashboard's page polls less often: this is the heavier load).
Without --teacher, a smoke teacher is trained first (seconds). Every trial also writes its artifacts in both runs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def asymllic(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asymllic", *map(str, args)], cwd=ROOT, check=True,
                          capture_output=True, text=True, **kwargs)


def search_command(study: str, trials: int, args, root: Path) -> list:
    return [sys.executable, "-m", "asymllic", "search", "--study", study, "--schedule", args.schedule, "--trials",
            str(trials), "--no-presets", "--mac-budget", "none", "--teacher", args.teacher, "--root", str(root),
            "--seed", "0"]


def search(study: str, trials: int, args, root: Path) -> float:
    t = time.perf_counter()
    subprocess.run(search_command(study, trials, args, root), cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - t


def created(study: str, root: Path) -> bool:
    import sqlite3

    try:
        with sqlite3.connect(root / study / "study.db", timeout=30) as db:
            return bool(db.execute("SELECT 1 FROM studies WHERE study_name = ?", (study,)).fetchall())
    except sqlite3.Error:  # no file or no tables yet
        return False


def per_trial(study: str, root: Path, skip: int) -> tuple:
    """(mean seconds from start to completion of the trials after the first ``skip``, their config ids)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=study, storage=f"sqlite:///{root / study / 'study.db'}").trials[skip:]
    seconds = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]
    return sum(seconds) / len(seconds), [t.user_attrs.get("config_id") for t in trials]


class Tab(threading.Thread):
    """A browser tab left open on the study: the study's detail from the dashboard's API every ``every`` s."""

    def __init__(self, url: str, every: float):
        super().__init__(daemon=True)
        self.url, self.every, self.requests, self.stopped = url, every, 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            with urllib.request.urlopen(self.url, timeout=60) as r:
                json.loads(r.read())
            self.requests += 1


def watched_search(study: str, args, root: Path) -> tuple:
    """The search with, as soon as its study exists, the dashboard and a tab polling it: (command seconds, the
    tab's reads, CPU seconds the dashboard process used from its first read to the search's end)."""
    import psutil

    t = time.perf_counter()
    with open(root / f"{study}.log", "w+") as log:
        run = subprocess.Popen(search_command(study, 1 + args.trials, args, root), cwd=ROOT, stdout=log,
                               stderr=subprocess.STDOUT)
        while not created(study, root):
            time.sleep(0.1)
        board = subprocess.Popen([sys.executable, "-m", "asymllic", "dashboard", study, "--root", str(root),
                                  "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            page = board.stdout.readline().rsplit(" ", 1)[-1].strip()
            cpu = psutil.Process(board.pid)
            before = sum(cpu.cpu_times()[:2])
            tab = Tab(page.split("/dashboard/")[0] + f"/api/studies/{page.rsplit('/', 1)[-1]}", args.poll)
            tab.start()
            if run.wait() != 0:
                raise RuntimeError(f"the watched search failed: {(root / f'{study}.log').read_text()[-2000:]}")
            seconds = time.perf_counter() - t
            used = sum(cpu.cpu_times()[:2]) - before
            tab.stopped.set()
            tab.join(60)
        finally:
            board.terminate()
            board.wait(30)
    return seconds, tab.requests, used


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default=None, help="a teacher checkpoint (default: train a smoke teacher first)")
    p.add_argument("--schedule", default="smoke")
    p.add_argument("--trials", type=int, default=3, help="timed trials per search")
    p.add_argument("--rounds", type=int, default=2, help="pairs of searches, in alternating order")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between the tab's reads of the study")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.teacher is None:
            asymllic("teacher", "train", "--schedule", "smoke", "--out", root / "teacher", "--cache", root / "cache",
                     "--quiet")
            args.teacher = str(root / "teacher" / "codec.pt")
        search("warm", 1, args, root)  # fills the latent cache and the page cache for every run
        for i in range(args.rounds):
            row = {}
            for kind in (("plain", "watched") if i % 2 == 0 else ("watched", "plain")):
                study = f"{kind}{i}"
                if kind == "plain":
                    row["plain_command"] = search(study, 1 + args.trials, args, root)
                else:
                    row["watched_command"], row["reads"], row["board_cpu"] = watched_search(study, args, root)
                row[kind], row[f"{kind}_ids"] = per_trial(study, root, 1)
            rows.append(row)
    print(f"{os.cpu_count()} cores, {args.trials} timed trials per search ({args.schedule} schedule), {args.rounds} "
          f"rounds in alternating order; the tab reads the study every {args.poll:g} s")
    print("round | without: s/trial | with the dashboard: s/trial | ratio | tab reads | dashboard CPU s | configs")
    for i, r in enumerate(rows):
        same = "same" if r["plain_ids"] == r["watched_ids"] else "differ"
        print(f"{i} | {r['plain']:.2f} | {r['watched']:.2f} | {r['watched'] / r['plain']:.3f}x | {r['reads']} | "
              f"{r['board_cpu']:.2f} ({1000 * r['board_cpu'] / max(1, r['reads']):.0f} ms a read, "
              f"{100 * r['board_cpu'] / r['watched_command']:.1f} % of the search's wall time) | {same}")
    plain, watched = sum(r["plain"] for r in rows), sum(r["watched"] for r in rows)
    print(f"ratio with / without over all rounds: {watched / plain:.3f}x per trial")
    return 0


if __name__ == "__main__":
    sys.exit(main())
