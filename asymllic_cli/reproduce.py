"""``asymllic reproduce``: the paper's Tables I-III and Fig. 1 from the experiment files that ship with the package
(``search/experiments/<table>.yaml``), measured beside the published figures."""
from __future__ import annotations

TABLES = ("table1", "table2", "table3", "fig1")  # as search.reproduce.TABLES (this module imports no search code)


def _seeds(text: str):
    parts = [p for p in text.split(",") if p.strip()]
    try:
        return int(parts[0]) if len(parts) == 1 else [int(p) for p in parts]
    except (ValueError, IndexError):
        import argparse

        raise argparse.ArgumentTypeError(f"{text!r}: a number of seeds (3) or a list of seeds (0,1,2)") from None


def add_parsers(sub) -> None:
    p = sub.add_parser("reproduce", help="the paper's Tables I-III and Fig. 1, measured beside the published figures",
                       description="Runs the packaged experiment of each table (search/experiments/<table>.yaml): "
                                   "table1 and fig1 from the packaged Kodak curves (no training), table2 and table3 "
                                   "by training the rows' presets over seeds (asymllic confirm; finished runs are "
                                   "read back). Writes <table>.md and <table>.csv (fig1 also fig1.html) into --out.")
    p.add_argument("table", choices=TABLES + ("all",), help="which table (all: every one)")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="an experiment file of the same keys (or sections keyed by table) replacing the packaged one's")
    p.add_argument("--print-config", action="store_true", help="print the packaged experiment file(s) and stop")
    p.add_argument("--schedule", default=None, help="training schedule of tables 2 and 3: smoke, cpu or paper")
    p.add_argument("--seeds", type=_seeds, default=None, metavar="N|S,S,..", help="seeds per row (tables 2 and 3)")
    p.add_argument("--steps", type=int, default=None, help="training steps per run (default: the schedule's)")
    p.add_argument("--teacher", default=None, metavar="MODEL",
                   help="the N=64 teacher checkpoint for lambda 0.0067 (tables 2 and 3), e.g. LIC_TCM's official one")
    p.add_argument("--data", default=None, help="training images (default: the experiment's, bundled photos)")
    p.add_argument("--test-data", default=None, help="the photos tables 2 and 3 are measured on (the paper: Kodak)")
    p.add_argument("--out", default=None, help="output folder (default results/reproduce/<table>/; for all, one "
                                               "sub-folder per table)")
    p.add_argument("--root", default=None, help="folder of the training runs and latent cache (default results)")
    p.add_argument("--backend", default=None, choices=("optuna", "ray"), help="runs here one after another, or Ray")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default=None, help="autocast precision (auto, fp32, bf16, fp16)")
    p.set_defaults(run=run_reproduce)


def run_reproduce(args) -> int:
    from search.reproduce import experiment_file, reproduce

    if args.print_config:
        for t in TABLES if args.table == "all" else (args.table,):
            print(experiment_file(t).read_text().rstrip())
            print()
        return 0
    done = reproduce(args.table, config=args.config, schedule=args.schedule, seeds=args.seeds, steps=args.steps,
                     teacher=args.teacher, data=args.data, test_data=args.test_data, out=args.out, root=args.root,
                     backend=args.backend, device=args.device, precision=args.precision, progress=True)
    for name, t in done.tables.items():
        print(f"{name}: {t['folder']}")
    return 0
