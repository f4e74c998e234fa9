"""CPU decode wall time of the paper's decoder vs the teacher on a 768x512 photo, measured side by side.

    python bench/decode_time.py [--repeats 3] [--presets teacher paper]

Both models are untrained (random weights, entropy tables built): the networks' cost does not depend on
the weights. The rANS decoder's cost does (it grows with the bits), so the report separates the full
``decompress`` from the network-only part (hyper-decoder + slice networks + g_s on the decoded latents), and
the entropy-parameter path (hyper-decoder + slice networks) from it: decoding runs that part on the CPU on every
machine, so on a GPU machine it is the part of the decode time the GPU does not shorten.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import space  # noqa: E402
from asymllic.codec.bitstream import unpack  # noqa: E402
from asymllic.codec.checkpoint import new_codec  # noqa: E402
from asymllic.codec.coding import compress  # noqa: E402
from asymllic.complexity import count  # noqa: E402


def photo_768x512() -> torch.Tensor:
    import skimage.data

    img = Image.fromarray(skimage.data.coffee()).resize((768, 512), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


@torch.no_grad()
def measure(name: str, x: torch.Tensor, repeats: int) -> dict:
    from asymllic.evaluation.latency import decode_networks
    from asymllic.images import pad_to

    model = new_codec(space.get_preset(name))
    data = compress(model, x)
    bs = unpack(data)
    strings = [[bs.strings[0]], [bs.strings[1]]]
    model.decompress(strings, bs.z_shape)  # warm-up
    full = best_of(lambda: model.decompress(strings, bs.z_shape), repeats)
    z_hat = model.entropy_bottleneck.decompress(strings[1], bs.z_shape)
    y = model.g_a(pad_to(x, model.config.pad_multiple()))
    chunks = y.chunk(model.num_slices, 1)
    nets = best_of(lambda: decode_networks(model, z_hat, y), repeats)
    # the entropy-parameter path alone: what decoding runs on the CPU on every machine (GPU or not)
    entropy = best_of(lambda: model.latent_slices(z_hat, lambda i, mu, index: torch.round(chunks[i] - mu)), repeats)
    macs = count(space.get_preset(name), (768, 512), "thop").decoder.macs / 1e9
    return {"name": name, "bytes": len(data), "decompress": full, "networks": nets, "entropy": entropy, "gmacs": macs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--presets", nargs=2, default=["teacher", "paper"], metavar=("BASELINE", "CANDIDATE"))
    args = p.parse_args(argv)
    x = photo_768x512()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, 768x512, best / median of {args.repeats}")
    rows = [measure(n, x, args.repeats) for n in args.presets]
    for r in rows:
        print(f"{r['name']:>10}: decompress {r['decompress'][0]:.3f} s (median {r['decompress'][1]:.3f}), "
              f"networks {r['networks'][0]:.3f} s (entropy-parameter path {r['entropy'][0]:.3f} s, "
              f"{100 * r['entropy'][0] / r['decompress'][0]:.0f} % of decompress), decoder {r['gmacs']:.2f} GMACs (thop), "
              f"{r['bytes']} bytes")
    base, cand = rows
    print(f"ratio {base['name']}/{cand['name']}: decompress {base['decompress'][0] / cand['decompress'][0]:.2f}x, "
          f"networks {base['networks'][0] / cand['networks'][0]:.2f}x, MACs {base['gmacs'] / cand['gmacs']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
