"""Do MACs rank decoders the way decode time does? Sampled synthesis decoders (and the presets), each
counted (exact and thop MACs) and timed (``asymllic.evaluation.latency.decode_latency``: hyper-synthesis, slice
networks and g_s at 768x512), then the rank correlations and the candidates whose ranks differ most.

    python bench/macs_vs_latency.py [--n 20] [--threads 2] [--repeats 3] [--size 768x512] [--seed 0]
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import space  # noqa: E402
from asymllic.complexity import count  # noqa: E402
from asymllic.evaluation.latency import decode_latency  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20, help="sampled configs (the teacher and the paper's decoder are added)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--size", default="768x512")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-gmacs", type=float, default=300.0, help="skip samples heavier than this (time)")
    args = p.parse_args(argv)
    import pandas as pd
    from scipy.stats import kendalltau, spearmanr

    size = tuple(int(v) for v in args.size.split("x"))
    base = space.teacher_config(64)
    rng = random.Random(args.seed)
    configs = {"teacher": base, "paper": space.config_from_params(
        space.params_from_config(space.get_preset("paper"), "synthesis"), "synthesis", base)}
    while len(configs) < args.n + 2:
        cfg = space.config_from_params(space.random_params(rng, "synthesis"), "synthesis", base)
        configs.setdefault(space.config_id(cfg), cfg)
    rows = []
    print(f"{len(configs)} decoders at {size[0]}x{size[1]}, cpu x{args.threads} threads, median of {args.repeats}",
          flush=True)
    for name, cfg in configs.items():
        exact, thop = count(cfg, size, "exact"), count(cfg, size, "thop")
        if exact.decoder.macs / 1e9 > args.max_gmacs:
            continue
        t = decode_latency(cfg, size, "cpu", args.threads, repeats=args.repeats)
        s = cfg.synthesis
        rows.append({"name": name, "gmacs": exact.decoder.macs / 1e9, "gmacs_thop": thop.decoder.macs / 1e9,
                     "ms": t["decoder_ms"], "block": s.block, "depths": "/".join(map(str, s.depths)),
                     "widths": "/".join(map(str, s.widths)), "up": f"{s.upsamplers[0]}/{s.upsamplers[-1]}",
                     "window": s.window if s.block != "res" and any(s.depths) else "-"})
        print(f"  {name}: {rows[-1]['gmacs']:.1f} GMACs, {rows[-1]['ms']:.0f} ms", flush=True)
    df = pd.DataFrame(rows)
    df["rank_macs"] = df["gmacs"].rank().astype(int)
    df["rank_ms"] = df["ms"].rank().astype(int)
    df["rank_gap"] = df["rank_ms"] - df["rank_macs"]
    df["ms_per_gmac"] = df["ms"] / df["gmacs"]
    print(f"\nSpearman(MACs exact, ms) = {spearmanr(df['gmacs'], df['ms'])[0]:.3f}, "
          f"Kendall = {kendalltau(df['gmacs'], df['ms'])[0]:.3f}; "
          f"Spearman(MACs thop, ms) = {spearmanr(df['gmacs_thop'], df['ms'])[0]:.3f}")
    show = ["name", "gmacs", "gmacs_thop", "ms", "ms_per_gmac", "rank_macs", "rank_ms", "rank_gap", "block", "depths",
            "widths", "up", "window"]
    print("\nall decoders, by MACs:")
    print(df.sort_values("gmacs")[show].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print("\nranks that differ most (slower than their MACs say: positive gap):")
    print(df.reindex(df["rank_gap"].abs().sort_values(ascending=False).index)[show].head(6)
          .to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
