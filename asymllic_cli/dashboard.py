"""``asymllic dashboard``: Optuna Dashboard over one study (its storage and its trials' artifacts), on loopback by
default, until interrupted. The flags are generated from ``search.dashboard.DashboardOptions``."""
from __future__ import annotations

from search.dashboard import DashboardOptions

from .options import add_options, given


def add_parsers(sub) -> None:
    p = sub.add_parser("dashboard", help="browse a study in Optuna Dashboard (named objectives, learning curves, "
                                         "reconstructions and cards per trial); works while its search runs",
                       description="Serves Optuna Dashboard over the study's storage and artifacts until Ctrl-C.")
    add_options(p, DashboardOptions, positional=("study",))
    p.set_defaults(run=run_dashboard)


def run_dashboard(args) -> int:
    from search.dashboard import serve_dashboard

    options = given(args, DashboardOptions)
    board = serve_dashboard(options.pop("study"), **options)
    print(f"Optuna Dashboard of study {board.study} ({board.storage_url}): {board.url}", flush=True)
    print("Ctrl-C stops it", flush=True)
    try:
        board.wait()
    except KeyboardInterrupt:
        print("dashboard stopped", flush=True)
    return 0
