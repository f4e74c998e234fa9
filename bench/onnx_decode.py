"""CPU decode time of the synthesis decoder g_s: torch vs onnxruntime, side by side, at 768x512.

    python bench/onnx_decode.py [--presets teacher paper] [--threads 2] [--repeats 5] [--warmup 2]

For each preset: g_s is exported to ONNX (asymllic.codec.onnx_runtime.export_synthesis, the default exporter), the
latents of a 768x512 photo are computed once, then torch's g_s and onnxruntime's (CPUExecutionProvider) decode
them alternately with the same number of intra-op threads, after warm-up runs. Reported: median and best of the
timed runs, the ratio torch / onnxruntime (> 1: onnxruntime is faster) and the largest difference of the
outputs. Untrained weights (seeded): the networks' cost does not depend on the weights.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import space  # noqa: E402
from asymllic.codec.checkpoint import new_codec  # noqa: E402
from asymllic.codec.onnx_runtime import OnnxSynthesis, export_synthesis  # noqa: E402
from asymllic.images import pad_to  # noqa: E402

SIZE = (768, 512)


def photo() -> torch.Tensor:
    import skimage.data

    img = Image.fromarray(skimage.data.coffee()).resize(SIZE, Image.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@torch.no_grad()
def measure(preset: str, x: torch.Tensor, folder: Path, threads: int, repeats: int, warmup: int) -> dict:
    model = new_codec(space.get_preset(preset)).eval()
    t = time.perf_counter()
    path = export_synthesis(model, folder / f"{preset.replace('/', '_')}_g_s.onnx")
    export_s = time.perf_counter() - t
    y_hat = model.entropy_forward(model.g_a(pad_to(x, model.config.pad_multiple())), likelihoods=False)["y_hat"]
    onnx = OnnxSynthesis(path, threads=threads, model=model)
    y_np = y_hat.numpy()
    run_torch, run_onnx = (lambda: model.g_s(y_hat)), (lambda: onnx.run(y_np))
    for _ in range(warmup):
        run_torch()
        run_onnx()
    t_torch, t_onnx = [], []
    for _ in range(repeats):  # alternate, so that a busy moment of the machine hits both
        t_torch.append(timed(run_torch))
        t_onnx.append(timed(run_onnx))
    diff = (model.g_s(y_hat) - torch.from_numpy(onnx.run(y_np))).abs().max().item()
    return {"preset": preset, "latent": tuple(y_hat.shape[-2:]), "exporter": onnx.exporter, "export_s": export_s,
            "torch": statistics.median(t_torch), "onnx": statistics.median(t_onnx), "torch_best": min(t_torch),
            "onnx_best": min(t_onnx), "max_abs": diff}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["teacher", "paper"])
    p.add_argument("--threads", type=int, default=2, help="torch threads and onnxruntime intra-op threads")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args(argv)
    import onnxruntime

    torch.set_num_threads(args.threads)
    x = photo()
    print(f"g_s decode at {SIZE[0]}x{SIZE[1]} on the CPU, {args.threads} threads for both; torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}; median (best) of {args.repeats} runs after {args.warmup} warm-up")
    print(f"{'preset':<10} {'latent':>7} {'exporter':>9} {'export s':>9} {'torch s':>16} {'onnxruntime s':>16} "
          f"{'torch/ort':>9} {'max |diff|':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            r = measure(preset, x, Path(tmp), args.threads, args.repeats, args.warmup)
            latent = "x".join(str(v) for v in r["latent"])
            print(f"{r['preset']:<10} {latent:>7} {r['exporter']:>9} {r['export_s']:>9.1f} "
                  f"{r['torch']:>7.3f} ({r['torch_best']:.3f}) {r['onnx']:>7.3f} ({r['onnx_best']:.3f}) "
                  f"{r['torch'] / r['onnx']:>9.2f} {r['max_abs']:>10.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
