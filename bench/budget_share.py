"""How much of a search's sampling does the default MAC budget (the teacher's decoder) prune? For each part,
N configs are drawn uniformly from the space (the distribution of NSGA-II's first generation and of the
random sampler), counted on the meta device, and compared with the teacher's decoder MACs.

    python bench/budget_share.py [--n 100] [--size 768 512]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import space  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--size", type=int, nargs=2, default=(768, 512))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import numpy as np

    from asymllic.complexity import count

    base = space.teacher_config(64)
    budget = count(base, tuple(args.size), "exact").decoder.macs / 1e9
    print(f"budget: the teacher's decoder, {budget:.2f} GMACs at {args.size[0]}x{args.size[1]} (exact convention)")
    print("| part | samples | over the budget | median GMACs | 90th percentile | largest | counting s/sample |")
    print("|---|---|---|---|---|---|---|")
    for part in ("synthesis", "hyperprior", "joint"):
        rng = random.Random(args.seed)
        t0 = time.perf_counter()
        gmacs = np.array([count(space.config_from_params(space.random_params(rng, part), part, base),
                                tuple(args.size), "exact").decoder.macs / 1e9 for _ in range(args.n)])
        per = (time.perf_counter() - t0) / args.n
        print(f"| {part} | {args.n} | {100 * (gmacs > budget).mean():.0f} % | {np.median(gmacs):.1f} | "
              f"{np.percentile(gmacs, 90):.1f} | {gmacs.max():.1f} | {per:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
