"""``asymllic space show | presets | id``: the search space, its presets and config ids."""
from __future__ import annotations

import json
from dataclasses import dataclass

from asymllic.options import Json, option
from space.domains import PARTS

from .options import add_options


@dataclass(kw_only=True)
class Show(Json):
    part: str = option("joint", "whose axes", choices=tuple(PARTS))


@dataclass(kw_only=True)
class Presets:
    complexity: bool = option(False, "count each preset in both conventions (markdown table)")


def add_parsers(sub) -> None:
    p = sub.add_parser("space", help="inspect the search space")
    ssub = p.add_subparsers(dest="space_command", required=True, metavar="WHAT")
    s = ssub.add_parser("show", help="list every axis with its domain")
    add_options(s, Show)
    s.set_defaults(run=run_show)
    s = ssub.add_parser("presets", help="list the named presets (with --complexity: their figures vs the paper)")
    add_options(s, Presets)
    s.set_defaults(run=run_presets)
    s = ssub.add_parser("id", help="print the config id of a preset or config file")
    s.add_argument("config")
    s.set_defaults(run=run_id)


def run_show(args) -> int:
    import space

    axes = space.axes(args.part)
    if args.json:
        print(json.dumps([{"name": a.name, "domain": a.domain(), "conditional": a.when is not None, "doc": a.doc} for a in axes], indent=1))
        return 0
    print(f"{'axis':<20}{'domain':<44}{'when':<6}doc")
    for a in axes:
        print(f"{a.name:<20}{a.domain():<44}{'cond' if a.when else '':<6}{a.doc}")
    return 0


def run_id(args) -> int:
    import space

    from .common import resolve_config

    print(space.config_id(resolve_config(args.config)))
    return 0


def run_presets(args) -> int:
    import space

    if not args.complexity:
        for name in space.list_presets():
            p = space.PRESETS[name]
            print(f"{name:<24}{space.config_id(p.build())}  {p.doc}")
        return 0
    from asymllic.report import preset_table

    print(preset_table())
    return 0
