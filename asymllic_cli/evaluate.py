"""``asymllic eval`` and ``asymllic bdrate``: RD points from real files, BD-rate against anchors."""
from __future__ import annotations

import json

from dataclasses import dataclass

from asymllic.evaluation.bd import METRIC
from asymllic.options import MODEL_HELP, Device, Quiet, SizeLimits, option

from .options import add_options

@dataclass(kw_only=True)
class Evaluate(Device, SizeLimits, Quiet):
    data: str = option("bundled", "image folder, or 'bundled' (held-out scikit-image photos)")
    name: str | None = option(None, "the curve's name in the JSON")
    out: str | None = option(None, "write the JSON here (default: print it)")
    max_side: int = option(0, "centre-crop larger images to this side (0: full images)")
    jpeg: bool = option(False, "also code each image with JPEG at the same bpp")


@dataclass(kw_only=True)
class BDRate:
    anchor: tuple[str, ...] = option((), "anchor JSON (repeatable)", repeat=True)
    kodak: bool = option(False, "add the packaged BPG and VTM Kodak curves as anchors")
    metric: str = option(METRIC, "the quality key of the curves")


def add_parsers(sub) -> None:
    p = sub.add_parser("eval", help="evaluate codec checkpoints on an image set (CompressAI JSON)")
    p.add_argument("checkpoints", nargs="+", metavar="MODEL", help="one model per RD point (e.g. one per lambda): " + MODEL_HELP)
    add_options(p, Evaluate)
    p.set_defaults(run=run_eval)
    p = sub.add_parser("bdrate", help="BD-rate (%%) of RD curves against anchors (akima)")
    p.add_argument("test", nargs="+", help="CompressAI-style JSON files with 2+ points")
    add_options(p, BDRate)
    p.set_defaults(run=run_bdrate)


def run_eval(args) -> int:
    from asymllic.evaluation.evaluate import evaluate_models
    from asymllic.limits import Limits

    result = evaluate_models(args.checkpoints, args.data, name=args.name, max_side=args.max_side, jpeg=args.jpeg,
                             device=args.device, limits=Limits(args.max_gmacs, args.max_memory), out=args.out,
                             progress=not args.quiet)
    if args.out:
        r = result["results"]
        print(f"{args.out}: psnr {r['psnr-rgb']} dB, bpp {r['bpp']} (estimated {r['estimated_bpp']})")
    else:
        print(json.dumps(result, indent=1))
    return 0


def run_bdrate(args) -> int:
    import math

    from asymllic.evaluation.bd import bd_rates

    rows = bd_rates(args.test, args.anchor or (), args.metric, kodak=args.kodak)
    for r in rows:
        value = f"{r['bd_rate_pct']:+.2f} %" if not math.isnan(r["bd_rate_pct"]) else f"n/a ({r['note']})"
        note = f" ({r['note']})" if r["note"] and not math.isnan(r["bd_rate_pct"]) else ""
        print(f"{r['test']} vs {r['anchor']}: {value}{note}")
    return 0
