"""Latent-cache speedup: one stage-1 and one stage-2 training step from cached latents vs recomputing the frozen
encoder (and, for stage 1, the frozen entropy path) on the fly, measured side by side.

    python bench/latent_cache.py [--batch 4] [--crop 128] [--repeats 5]

The bound: the cache removes only the frozen part's forward pass; the trainable part's forward and
backward remain (stage 1: the light g_s; stage 2: h_a, h_s, f_c and the backward through the frozen g_s).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import space  # noqa: E402
from asymllic.evaluation.metrics import distortion_loss, rd_loss  # noqa: E402
from asymllic.models import LicCodec  # noqa: E402
from asymllic.models import HYPERPRIOR_PARTS  # noqa: E402
from asymllic.training.inherit import inherit  # noqa: E402
from asymllic.training.stages import LIGHT_HYPERPRIOR, _freeze_all_but  # noqa: E402


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--decoder", default="paper")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    teacher = LicCodec(space.teacher_config(64)).eval()
    x = torch.rand(args.batch, 3, args.crop, args.crop)
    with torch.no_grad():
        y = teacher.g_a(x)
        y_hat = teacher.entropy_forward(y, likelihoods=False)["y_hat"]
    light = space.get_preset(args.decoder)

    s1 = LicCodec(space.CodecConfig(light.synthesis, teacher.config.hyperprior, 64))
    inherit(s1, teacher, ("g_s",), "copy")
    opt1 = torch.optim.Adam([q for _, q in _freeze_all_but(s1, ("g_s",))], 1e-4)

    def stage1(recompute: bool):
        def step():
            if recompute:
                with torch.no_grad():
                    yh = teacher.entropy_forward(teacher.g_a(x), likelihoods=False)["y_hat"]
            else:
                yh = y_hat
            loss = distortion_loss(s1.g_s(yh), x, 0.0067)["loss"]
            opt1.zero_grad()
            loss.backward()
            opt1.step()
        return step

    s2 = LicCodec(space.CodecConfig(teacher.config.synthesis, light.hyperprior, 64)).train()
    inherit(s2, teacher, LIGHT_HYPERPRIOR, "copy")
    opt2 = torch.optim.Adam([q for _, q in _freeze_all_but(s2, ("h_a",) + HYPERPRIOR_PARTS)], 1e-4)

    def stage2(recompute: bool):
        def step():
            if recompute:
                with torch.no_grad():
                    yy = teacher.g_a(x)
            else:
                yy = y
            out = s2.entropy_forward(yy)
            loss = rd_loss({"x_hat": s2.g_s(out["y_hat"]), "likelihoods": out["likelihoods"]}, x, 0.0067)["loss"]
            opt2.zero_grad()
            loss.backward()
            opt2.step()
        return step

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch} x {args.crop}^2, "
          f"decoder '{args.decoder}', best of {args.repeats}")
    for name, make in (("stage 1", stage1), ("stage 2", stage2)):
        slow, fast = timed(make(True), args.repeats), timed(make(False), args.repeats)
        print(f"{name}: recompute frozen encoder {slow * 1000:.0f} ms/step, from cache {fast * 1000:.0f} ms/step, "
              f"speedup {slow / fast:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
