"""Both readings of stage 2, side by side on one decoder: stage 1 trains the light g_s once; stage 2 then trains
the light hyperprior path (a) through the teacher's frozen g_s (factorized: the stages are independent) and
(b) through the stage-1 g_s, frozen (sequential: the paper's "gradual substitution"). Each is combined with
stage 1 and evaluated on the test photos. Printed per reading: combined PSNR and bpp (payload), the gap to the
prediction a factorized search makes (stage 1's PSNR, stage 2's bpp), and training time.

    python bench/stage2_readings.py --teacher T [--decoder paper] [--schedule cpu] [--stage1-steps N] [--stage2-steps N]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asymllic.training.inherit import INHERIT  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True)
    p.add_argument("--decoder", default="paper", help="preset or config: its g_s and hyperprior path are trained")
    p.add_argument("--schedule", default="cpu")
    p.add_argument("--stage1-steps", type=int, default=None, help="default: the schedule's")
    p.add_argument("--stage2-steps", type=int, default=None, help="default: the schedule's")
    p.add_argument("--lmbda", type=float, default=0.0067)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inherit", choices=INHERIT, default="none", help="see asymllic train --help")
    p.add_argument("--out", default="results/stage2-readings")
    args = p.parse_args(argv)
    import pandas as pd

    from asymllic.codec.checkpoint import load_codec
    from asymllic.codec.reference import resolve_config
    from asymllic.data import resolve
    from asymllic.evaluation.evaluate import evaluate
    from asymllic.training import StageRun, combine, get_schedule, train_stage1, train_stage2
    from search.candidate import rd_cost

    schedule = get_schedule(args.schedule)
    cfg = resolve_config(args.decoder)
    out = Path(args.out)
    cache = out / "cache"
    images = resolve("bundled", "test").paths

    def score(path) -> dict:
        r = evaluate(load_codec(path), images, Path(path).parent.name, progress=False,
                     **schedule.eval_options())["results"]
        return {"psnr": r["psnr-rgb"][0], "bpp": r["bpp"][0], "rd_cost": rd_cost(r["mse"][0], r["bpp"][0], args.lmbda)}

    def timed(fn, *a, **kw):
        t0 = time.perf_counter()
        path = fn(*a, **kw)
        return path, time.perf_counter() - t0

    run = lambda name: StageRun(out / name, cache, args.seed, progress=False, device="cpu",  # noqa: E731
                                inherit=args.inherit)
    stage1, t1 = timed(train_stage1, args.teacher, cfg, schedule, args.lmbda, None, run("stage1"), args.stage1_steps)
    s1 = score(stage1)
    print(f"stage 1 ({t1:.0f} s): PSNR {s1['psnr']:.3f} dB with the teacher's hyperprior path", flush=True)
    rows = []
    for reading, synthesis_from in (("teacher g_s (factorized)", None), ("stage-1 g_s (sequential)", stage1)):
        name = "stage2-" + ("teacher" if synthesis_from is None else "sequential")
        stage2, t2 = timed(train_stage2, args.teacher, cfg, schedule, args.lmbda, None, run(name), args.stage2_steps,
                           synthesis_from=synthesis_from)
        s2 = score(stage2)
        combined = score(combine(stage1, stage2, out / f"combined-{name}" / "codec.pt"))
        rows.append({"stage 2 through": reading, "stage2_psnr": s2["psnr"], "stage2_bpp": s2["bpp"],
                     "combined_psnr": combined["psnr"], "combined_bpp": combined["bpp"],
                     "predicted_psnr": s1["psnr"], "predicted_bpp": s2["bpp"],
                     "psnr_gap_db": combined["psnr"] - s1["psnr"],
                     "combined_rd_cost": combined["rd_cost"], "stage2_seconds": t2})
        print(f"{reading} ({t2:.0f} s): combined PSNR {combined['psnr']:.3f} dB, bpp {combined['bpp']:.4f}", flush=True)
    df = pd.DataFrame(rows)
    print(f"\n{args.decoder} decoder, {args.schedule} schedule, stage 1 {t1:.0f} s; test photos:")
    print(df.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({"stage1_psnr": s1["psnr"], "stage1_seconds": t1, "rows": rows},
                                                 indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
