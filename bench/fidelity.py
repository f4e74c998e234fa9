"""How short can a candidate train and still be ranked right? Each of K decoders (the Table II presets
plus sampled configs) is trained at a ladder of step counts (each rung continues the previous one's
run) and scored on the selection photos after every rung, as a search scores it. Printed: Spearman
and Kendall correlation of each rung's PSNR ranking with the longest rung's, the regret of choosing by
a short rung (the PSNR lost at equal or lower MACs against the long rung's front), and the Table II
ordering at the longest rung.

With ``--seeds S`` every candidate's ladder is trained S times (seeds --seed, --seed + 1, ...; rows tagged with
``seed``) and the rankings compare seed means against the seed-to-seed noise (``search.fidelity.seeded_report``):
each candidate's spread over seeds, a bootstrap interval on each rung's agreement, the pairs the longest rung tells
apart beyond that noise, and a summary of which short rung can be trusted. The first seed trains where a one-seed
run trains, so a finished one-seed run resumes into a seeded one.

A rerun resumes: ``<out>/<part>-<inherit>/rungs.csv`` is written after every rung, and a (candidate, seed, rung)
row already there is kept rather than measured again (a finished ladder's checkpoint holds its longest rung, so
its shorter rungs could not be scored again); an unfinished ladder continues from its last checkpoint.

    python bench/fidelity.py --teacher T [--part synthesis] [--rungs 40 160 640] [--k 8] [--schedule cpu]
        [--inherit none|copy|slice]   (how each light part starts: item 6 of the fidelity question)
        [--seeds 3]                   (training seeds per candidate: the noise floor of the ranking)

With ``--backend ray`` every (candidate, seed) ladder is a Ray task (a local Ray, or the cluster at
``--ray-address``; a GPU each where the cluster has GPUs), all at once; the table and the resume are the same.

A quick end-to-end check: ``--teacher teacher --schedule smoke --rungs 1 2 --k 2 --seeds 2``.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import space  # noqa: E402
from asymllic.training.inherit import INHERIT  # noqa: E402

TABLE_II = ("g_s/ours", "g_s/rbu", "g_s/tcm_pruned", "g_s/conv_k5")  # the paper's order at equal MACs, best first
TABLE_III = ("hp/slices_5_ours", "hp/slices_5_tcm_pruned", "hp/slices_2", "hp/slices_1")


def candidates(part: str, k: int, base, seed: int) -> dict:
    presets = TABLE_II if part == "synthesis" else TABLE_III
    out = {}
    for name in presets[:k]:
        p = space.get_preset(name)
        out[name] = space.CodecConfig(p.synthesis if part == "synthesis" else base.synthesis,
                                      p.hyperprior if part == "hyperprior" else base.hyperprior, base.encoder_width)
    rng = random.Random(seed)
    from asymllic.complexity import count

    teacher_gmacs = count(base, (768, 512), "exact").decoder.macs / 1e9
    while len(out) < k:
        cfg = space.config_from_params(space.random_params(rng, part), part, base)
        if count(cfg, (768, 512), "exact").decoder.macs / 1e9 <= teacher_gmacs:  # light decoders only
            out.setdefault(space.config_id(cfg), cfg)
    return out


def inherited_share(teacher, cfg, part: str, mode: str) -> float:
    """Share of the light part's parameters that start from ``teacher``'s weights (a loaded codec) in ``mode``."""
    from asymllic.models import LicCodec
    from asymllic.training.inherit import inherit
    from asymllic.training.stages import LIGHT_HYPERPRIOR

    light = ("g_s",) if part == "synthesis" else LIGHT_HYPERPRIOR
    return inherit(LicCodec(cfg), teacher, light, mode)["share"]


ROWS_FILE = "rows.json"  # a ladder's rows so far, in its folder: what an interrupted Ray task had measured


def ladder(job: dict, on_row=None) -> list:
    """One candidate at one seed up the rungs (each rung resuming the previous one's state, in one plan, as a
    multi-fidelity search trains), scored after each; rows already in ``job["done"]`` are kept, not measured again.
    Each new row goes to ``on_row`` and to the ladder folder's ``rows.json`` as it is measured. Plain data in and
    out, so a Ray task runs it as the driver does."""
    from asymllic.codec.checkpoint import load_codec
    from asymllic.data import resolve
    from asymllic.evaluation.evaluate import evaluate
    from asymllic.training import StageRun, get_schedule, train_stage1, train_stage2
    from search.candidate import rd_cost

    name, seed, rungs = job["name"], job["seed"], job["rungs"]
    schedule = get_schedule(job["schedule"], batch=job["batch"])
    train = train_stage1 if job["part"] == "synthesis" else train_stage2
    cfg = space.from_dict(job["config"])
    run = StageRun(Path(job["folder"]), Path(job["cache"]), seed, progress=False, device=job["device"],
                   inherit=job["inherit"])
    images = resolve(None, "eval").paths
    rows, t0 = [], time.perf_counter()
    for rung in rungs:
        if rung in job["done"]:
            rows.append(job["done"][rung])
            continue
        ckpt = train(job["teacher"], cfg, schedule, 0.0067, None, run, rung, plan_steps=max(rungs))
        r = evaluate(load_codec(ckpt), images, name, progress=False, **schedule.eval_options())["results"]
        rows.append({"name": name, "rung": rung, "seed": seed, "gmacs": job["gmacs"], "psnr": r["psnr-rgb"][0],
                     "bpp": r["bpp"][0], "rd_cost": rd_cost(r["mse"][0], r["bpp"][0], 0.0067),
                     "seconds": time.perf_counter() - t0, "inherit": job["inherit"], "share": job["share"],
                     "reused": False})
        tmp = Path(job["folder"]) / (ROWS_FILE + ".tmp")
        tmp.write_text(json.dumps([r for r in rows if not r.get("reused")], default=float))
        tmp.replace(Path(job["folder"]) / ROWS_FILE)
        if on_row is not None:
            on_row(rows[-1])
    return rows


def ladder_task(job: dict, device: str) -> list:
    """One ladder inside a Ray task, on the device Ray gave it."""
    return ladder({**job, "device": device})


def save(rows: list, done: dict | None, table: Path):
    """The rows so far, with the previous run's rows this run has not reached yet (nothing measured is lost when a
    rerun is interrupted), written atomically to ``table``; returns this run's rows."""
    import pandas as pd

    df = pd.DataFrame(rows)
    have = {(r["name"], int(r["seed"]), int(r["rung"])) for r in rows}
    rest = [r for k, r in (done or {}).items() if k not in have]
    table.parent.mkdir(parents=True, exist_ok=True)
    tmp = table.with_suffix(".tmp")
    (pd.concat([df, pd.DataFrame(rest)], ignore_index=True) if rest else df).to_csv(tmp, index=False)
    tmp.replace(table)
    return df


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", required=True)
    p.add_argument("--part", choices=("synthesis", "hyperprior"), default="synthesis")
    p.add_argument("--rungs", type=int, nargs="+", default=[40, 160, 640])
    p.add_argument("--k", type=int, default=8, help="candidates: the presets (the first K when K is fewer), then "
                   "sampled light configs")
    p.add_argument("--schedule", default="cpu")
    p.add_argument("--batch", type=int, default=None, help="training crops per step (default: the schedule's)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed of the candidates and first training seed")
    p.add_argument("--seeds", type=int, default=1, metavar="S",
                   help="training seeds per candidate (--seed, --seed + 1, ...): S > 1 measures the seed noise")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of the seeded report")
    p.add_argument("--inherit", choices=INHERIT, default="none",
                   help="how each light part starts from the teacher (results go to <out>/<part>-<inherit>)")
    p.add_argument("--reuse", default=None, metavar="RUNGS_CSV",
                   help="a previous run's rungs.csv (same candidates, rungs and seed): a candidate that inherits "
                        "nothing from the teacher in both runs starts from the same seeded weights, so its rows are "
                        "taken from there instead of trained again (seed by seed; a table without a seed column "
                        "holds --seed)")
    p.add_argument("--out", default="results/fidelity")
    p.add_argument("--cache", default="results/cache", help="the teacher's latent cache")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: one ladder after another here; ray: every (candidate, seed) ladder at once as a Ray task")
    p.add_argument("--ray-address", default=None, help="with --backend ray: a running cluster (default: a local Ray)")
    p.add_argument("--device", default="cpu", help="where the ladders train (auto, cpu, cuda)")
    args = p.parse_args(argv)
    import pandas as pd
    from asymllic.codec.reference import load_model, resolve_config
    from asymllic.complexity import count
    from search.fidelity import agreement, seeded_report

    base = resolve_config(args.teacher)
    cands = candidates(args.part, args.k, base, args.seed)
    out = Path(args.out) / f"{args.part}-{args.inherit}"
    teacher = load_model(args.teacher, "cpu")  # read once: each candidate's inherited share is counted against it
    reuse = pd.read_csv(args.reuse) if args.reuse else None
    reuse_mode = reuse["inherit"].iloc[0] if reuse is not None and "inherit" in reuse else "copy"  # older tables: copy
    if reuse is not None and "seed" not in reuse:
        reuse = reuse.assign(seed=args.seed)  # older tables: one seed, the one their run was given
    seeds = [args.seed + i for i in range(args.seeds)]
    table = out / "rungs.csv"
    done = pd.read_csv(table) if table.is_file() else None  # a previous (maybe interrupted) run of this command
    if done is not None:
        done = done.assign(seed=args.seed) if "seed" not in done else done
        done = {(r["name"], int(r["seed"]), int(r["rung"])): r for r in done.to_dict("records")}
    for partial in sorted(out.glob(f"*/{ROWS_FILE}")):  # rows an interrupted ladder measured after the table's last save
        for r in json.loads(partial.read_text()):
            done = done if done is not None else {}
            done.setdefault((r["name"], int(r["seed"]), int(r["rung"])), r)
    rows = []
    print(f"{len(cands)} {args.part} candidates, rungs {args.rungs} ({args.schedule} schedule), inherit "
          f"{args.inherit}, training seeds {seeds}", flush=True)
    info = {}
    for name, cfg in cands.items():
        share = inherited_share(teacher, cfg, args.part, args.inherit)
        unshared = reuse is not None and share == 0 and inherited_share(teacher, cfg, args.part, reuse_mode) == 0
        info[name] = count(cfg, (768, 512), "exact").decoder.macs / 1e9, share, unshared
    jobs = []
    for seed in seeds:  # seed by seed: the first seed alone already gives a whole (one-seed) table
        for name, cfg in cands.items():
            gmacs, share, unshared = info[name]
            tag = f" (seed {seed})" if len(seeds) > 1 else ""
            if unshared:
                old = reuse[(reuse["name"] == name) & (reuse["seed"] == seed) & reuse["rung"].isin(args.rungs)]
                if len(old) == len(args.rungs):
                    rows += [{**r, "inherit": args.inherit, "share": 0.0, "reused": True}
                             for r in old.to_dict("records")]
                    print(f"  {name}{tag}: inherits nothing in either run, rows taken from {args.reuse}", flush=True)
                    save(rows, done, table)
                    continue
            folder = name.replace("/", "_") + ("" if seed == args.seed else f"-seed{seed}")
            jobs.append({"name": name, "tag": tag, "seed": seed, "config": space.to_dict(cfg), "gmacs": gmacs,
                         "share": share, "rungs": list(args.rungs), "part": args.part, "schedule": args.schedule,
                         "batch": args.batch, "teacher": str(Path(args.teacher).resolve()) if Path(args.teacher).is_file()
                         else args.teacher, "folder": str((out / folder).resolve()),
                         "cache": str(Path(args.cache).resolve()), "device": args.device, "inherit": args.inherit,
                         "done": {rung: done[(name, seed, rung)] for rung in args.rungs
                                  if done is not None and (name, seed, rung) in done}})
    failed = []

    def tell_row(job: dict, r: dict) -> None:
        rows.append(r)
        kept = " (kept from an earlier run)" if r["rung"] in job["done"] else ""
        print(f"  {job['name']}{job['tag']}: {r['rung']} steps, {r['gmacs']:.1f} GMACs, PSNR {r['psnr']:.2f} dB, "
              f"bpp {r['bpp']:.4f}{kept}", flush=True)
        save(rows, done, table)

    def tell(job: dict, got) -> None:
        if isinstance(got, Exception):
            failed.append(f"{job['name']}{job['tag']}: {got}")
            print(f"  {job['name']}{job['tag']}: failed: {got}", flush=True)
            return
        for r in got:
            tell_row(job, r)

    finished = [job for job in jobs if len(job["done"]) == len(job["rungs"])]
    for job in finished:  # nothing left to train: no Ray task either
        tell(job, [job["done"][rung] for rung in job["rungs"]])
    jobs = [job for job in jobs if job not in finished]
    if args.backend == "ray" and jobs:
        from search.ray_backend import ray_tasks

        for job, got in ray_tasks(ladder_task, jobs, args.device, args.ray_address):
            tell(job, got)
    else:
        for job in jobs:
            for rung in job["rungs"]:  # the kept rows first, then each new one as it is measured
                if rung in job["done"]:
                    tell_row(job, job["done"][rung])
            ladder(job, on_row=lambda r, job=job: tell_row(job, r))
    if failed:
        print(f"{len(failed)} ladders failed; the finished ones are in {table}: " + "; ".join(failed), file=sys.stderr)
        return 1
    df = save(rows, done, table)
    score, maximise = ("psnr", True) if args.part == "synthesis" else ("rd_cost", False)
    summary = agreement(df, score, maximise)
    mean = " (seed means)" if len(seeds) > 1 else ""
    print(f"\nranking of each rung vs the longest ({score}{', seed means' if mean else ''}; regret in "
          f"{'dB' if maximise else 'RD cost'}):")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if len(seeds) > 1:
        report = seeded_report(df, score, maximise, resamples=args.resamples, rng_seed=args.seed)
        print(f"\nseed-to-seed spread of {score} ({len(seeds)} seeds):")
        print(report.spread.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(f"\nagreement with the longest rung on seed means, 95 % bootstrap intervals ({args.resamples} "
              "resamples of the seeds):")
        print(report.agreement.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print("\n" + report.text)
        report.spread.to_csv(out / "spread.csv", index=False)
        report.pairs.to_csv(out / "pairs.csv", index=False)
        (out / "noise.txt").write_text(report.text + "\n")
        summary = report.agreement
    top = max(args.rungs)
    presets = TABLE_II if args.part == "synthesis" else TABLE_III
    at_top = df[(df["rung"] == top) & df["name"].isin(presets)]
    if len(seeds) > 1:
        at_top = at_top.groupby("name", as_index=False)[["gmacs", "psnr", "bpp", "rd_cost"]].mean()
    at_top = at_top.sort_values(score, ascending=score != "psnr")
    print(f"\n{'Table II' if args.part == 'synthesis' else 'Table III'} presets at {top} steps{mean}, best first "
          f"(paper: {' > '.join(presets)}):")
    print(at_top[["name", "gmacs", "psnr", "bpp", "rd_cost"]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    (out / "summary.json").write_text(summary.to_json(orient="records", indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
