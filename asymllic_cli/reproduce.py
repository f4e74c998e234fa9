"""``asymllic reproduce``: the paper's Tables I-III and Fig. 1 from the experiment files that ship with the package
(``search/experiments/<table>.yaml``), measured beside the published figures. The flags are generated from
``search.options.Reproduce`` and ``ReproduceOverrides``."""
from __future__ import annotations

from search.options import TABLES, Reproduce, ReproduceOverrides

from .options import add_options, given


def add_parsers(sub) -> None:
    p = sub.add_parser("reproduce", help="the paper's Tables I-III and Fig. 1, measured beside the published figures",
                       description="Runs the packaged experiment of each table (search/experiments/<table>.yaml): "
                                   "table1 and fig1 from the packaged Kodak curves (no training), table2 and table3 "
                                   "by training the rows' presets over seeds (asymllic confirm; finished runs are "
                                   "read back). Writes <table>.md and <table>.csv (fig1 also fig1.html) into --out.")
    p.add_argument("table", choices=TABLES + ("all",), help="which table (all: every one)")
    add_options(p, Reproduce)
    add_options(p, ReproduceOverrides, given_only=True, defaults_from="the experiment file's")
    p.set_defaults(run=run_reproduce)


def run_reproduce(args) -> int:
    from search.reproduce import experiment_file, reproduce

    if args.print_config:
        for t in TABLES if args.table == "all" else (args.table,):
            print(experiment_file(t).read_text().rstrip())
            print()
        return 0
    done = reproduce(args.table, config=args.config, progress=not args.quiet, **given(args, ReproduceOverrides))
    for name, t in done.tables.items():
        print(f"{name}: {t['folder']}")
    return 0
