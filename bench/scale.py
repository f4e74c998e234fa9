"""Scaling measurements, each pair side by side in one run: (1) a stage-1/stage-2 training step from the latent
cache vs on the fly, (2) crop loading with 0 vs 2 DataLoader workers, (3) the private memory of two processes
reading one memory-mapped latent cache vs a torch.load of the same arrays (the old design).

    python bench/scale.py [--batch 4] [--crop 128] [--steps 8] [--load-batch 8] [--load-crop 256]
                          [--load-steps 30] [--cache-gib 2] [--threads 1] [--quick]

One torch thread by default: with other processes on the cores, OpenMP threads wait for one another at every op,
and on a busy 2-core machine two threads made a step 5-100x slower than one (the header prints the load average).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import space  # noqa: E402
from asymllic.data import Batches, ImageSet, resolve  # noqa: E402
from asymllic.evaluation.metrics import distortion_loss, rd_loss  # noqa: E402
from asymllic.models import HYPERPRIOR_PARTS, LicCodec  # noqa: E402
from asymllic.training.latents import (CacheWriter, FrozenOnTheFly, LatentCache, bytes_per_crop,  # noqa: E402
                                       latent_cache)
from asymllic.training.inherit import inherit  # noqa: E402
from asymllic.training.stages import LIGHT_HYPERPRIOR, _freeze_all_but, _split_aux  # noqa: E402

def stage_steps(args, tmp: Path) -> None:
    torch.manual_seed(0)
    teacher = LicCodec(space.teacher_config(64)).eval()
    light, images, b = space.get_preset("paper"), resolve(None, "train"), args.batch
    cache = latent_cache(teacher, images, args.crop, 16 * b, tmp / "latents", seed=0, progress=False)
    print(f"\n[1] training step, batch {b} x {args.crop}^2, median of {args.steps} alternating steps "
          f"(cache of {len(cache)} crops; loader workers 0, so the data work is inside the step)")
    s1 = LicCodec(space.CodecConfig(light.synthesis, teacher.config.hyperprior, 64)).train()
    s2 = LicCodec(space.CodecConfig(teacher.config.synthesis, light.hyperprior, 64)).train()
    inherit(s1, teacher, ("g_s",), "copy"), inherit(s2, teacher, LIGHT_HYPERPRIOR, "copy")
    p1 = [p for _, p in _freeze_all_but(s1, ("g_s",))]
    p2, aux2 = _split_aux(_freeze_all_but(s2, ("h_a",) + HYPERPRIOR_PARTS))

    def loss1(x, y, y_hat):
        return distortion_loss(s1.g_s(y_hat), x, 0.0067)["loss"]

    def loss2(x, y, y_hat):
        out = s2.entropy_forward(y)
        return rd_loss({"x_hat": s2.g_s(out["y_hat"]), "likelihoods": out["likelihoods"]}, x, 0.0067)["loss"]

    for name, model, params, aux, loss_fn in (("stage 1", s1, p1, [], loss1), ("stage 2", s2, p2, aux2, loss2)):
        opt = torch.optim.Adam(params, 1e-4)
        aux_opt = torch.optim.Adam(aux, 1e-3) if aux else None
        fly = FrozenOnTheFly(teacher, Batches(images, args.crop, b, args.steps + 1, 0, 0), name == "stage 1")
        sources = {"on the fly": fly.batch_at, "cache": lambda step: cache.batch_at(step, b, 0)}

        def step(source, i: int) -> float:  # as asymllic.training.loop: clip, Adam, aux Adam
            t = time.perf_counter()
            loss = loss_fn(*sources[source](i))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if aux_opt is not None:
                aux_opt.zero_grad(set_to_none=True)
                model.aux_loss().backward()
                aux_opt.step()
            return time.perf_counter() - t

        times = [[step(k, i) for k in sources] for i in range(args.steps + 1)][1:]  # step 0: warm-up
        fly_ms, cache_ms = (statistics.median(t) * 1000 for t in zip(*times))
        print(f"{name}: on the fly {fly_ms:.0f} ms/step, from cache {cache_ms:.0f} ms/step, "
              f"ratio on-the-fly/cache {fly_ms / cache_ms:.2f}x")


def jpeg_folder(folder: Path, count: int) -> ImageSet:
    import skimage.data
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    photos = []
    for fn in (skimage.data.astronaut, skimage.data.coffee, skimage.data.chelsea):
        img = Image.fromarray(fn())
        scale = 1024 / min(img.size)  # chelsea (451x300) and coffee (600x400) are smaller than 512
        photos.append(img.resize((round(img.width * scale), round(img.height * scale)), Image.BICUBIC))
    for i in range(count):
        img = photos[i % len(photos)]
        left, top = int(rng.integers(0, img.width - 511)), int(rng.integers(0, img.height - 511))
        img.crop((left, top, left + 512, top + 512)).save(folder / f"{i:04d}.jpg", quality=90)
    return ImageSet(sorted(folder.glob("*.jpg")))


def loading(args, tmp: Path) -> None:
    images = jpeg_folder(tmp / "jpegs", args.jpegs)
    b, n = args.load_batch, args.load_steps
    print(f"\n[2] loading {n} batches of {b} x {args.load_crop}^2 crops from {len(images.paths)} 512x512 JPEGs "
          f"(wall time including the loader's start)")
    rates = {}
    for workers in (0, 2, 0, 2):
        batches = Batches(images, args.load_crop, b, n, seed=0, workers=workers)
        t = time.perf_counter()
        for i in range(n):
            batches(i)
        rates.setdefault(workers, []).append(n * b / (time.perf_counter() - t))
    for w, r in rates.items():
        print(f"workers {w}: {max(r):.0f} samples/s (runs: {', '.join(f'{x:.0f}' for x in r)})")
    print(f"ratio 2 workers / 0 workers: {max(rates[2]) / max(rates[0]):.2f}x "
          f"(on this {os.cpu_count()}-core machine the main process competes with the 2 workers for the cores)")


def memory() -> dict:
    """This process's memory in MiB: /proc/self/status (RssAnon, RssFile, VmHWM) and smaps_rollup (Pss_*)."""
    text = Path("/proc/self/status").read_text() + Path("/proc/self/smaps_rollup").read_text()
    fields = (line.split() for line in text.splitlines())
    return {k[:-1]: int(v[0]) / 1024 for k, *v in fields if k[:-1] in ("RssAnon", "RssFile", "VmHWM", "Pss_File")}


def child(kind: str, path: str) -> None:
    """Read every row of the cache (kind "mmap") or of the torch.save'd arrays ("torch.load"), then wait for
    the parent's go (both readers map the file at once) and print the memory growth as JSON."""
    before = memory()
    if kind == "mmap":
        cache = LatentCache(Path(path))
        n, rows = len(cache), cache.rows
    else:
        arrays = torch.load(path)
        n = len(arrays["x"])
        rows = lambda idx: tuple(arrays[k][torch.from_numpy(idx)] for k in ("x", "y", "y_hat"))  # noqa: E731
    for i in range(0, n, 16):  # a training batch's worth of rows at a time
        sum(float(t[:, :1].float().sum()) for t in rows(np.arange(i, min(n, i + 16))))
    print("ready", flush=True)
    sys.stdin.readline()
    after = memory()
    print(json.dumps({k: v - before[k] if k != "VmHWM" else v for k, v in after.items()}), flush=True)
    sys.stdin.read()  # keep the mapping until every reader has measured


def readers(kind: str, path: Path, count: int) -> list:
    procs = [subprocess.Popen([sys.executable, __file__, "--child", kind, str(path)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(count)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n"), p.stdin.flush()
    out = [json.loads(p.stdout.readline()) for p in procs]
    for p in procs:
        p.communicate()
    return out


def shared_cache(args, tmp: Path) -> None:
    gib = args.cache_gib
    free = shutil.disk_usage(tmp).free / 2**30
    if free < 2.5 * gib:
        print(f"\n(only {free:.1f} GiB free under {tmp}: the cache shrinks from {gib:g} GiB to 1 GiB)")
        gib = 1.0
    crop, chunk = 256, 64
    count = max(chunk, int(gib * 2**30 // bytes_per_crop(crop)) // chunk * chunk)
    size = count * bytes_per_crop(crop) / 2**20
    writer, rng = CacheWriter(tmp / "big", count, crop), np.random.default_rng(0)
    lat = (chunk, space.LATENT_CHANNELS, crop // 16, crop // 16)
    for _ in range(count // chunk):
        writer.add(rng.integers(0, 256, (chunk, 3, crop, crop), np.uint8),
                   *(rng.standard_normal(lat, np.float32).astype(np.float16) for _ in range(2)))
    cache = writer.close({"crop": crop, "count": count})
    print(f"\n[3] memory of processes reading all {count} rows (16 at a time) of one {size:.0f} MiB latent cache\n"
          f"(growth in MiB; RssAnon: private; RssFile: file pages, shared and reclaimable; Pss_File: RssFile split "
          f"between the processes mapping them; peak RSS: VmHWM, all pages)")
    new = readers("mmap", cache.path, 2)
    for i, m in enumerate(new):
        print(f"mmap reader {i}: RssAnon {m['RssAnon']:+.0f}, RssFile {m['RssFile']:+.0f}, "
              f"Pss_File {m['Pss_File']:+.0f}, peak RSS {m['VmHWM']:.0f}")
    arrays = {k: torch.from_numpy(np.load(cache.path / f"{k}.npy", mmap_mode="c")) for k in ("x", "y", "y_hat")}
    torch.save(arrays, tmp / "latents.pt")
    del arrays, cache
    shutil.rmtree(tmp / "big")
    old = readers("torch.load", tmp / "latents.pt", 1)[0]
    print(f"torch.load reader (old design, every process held a copy): RssAnon {old['RssAnon']:+.0f}, "
          f"RssFile {old['RssFile']:+.0f}, peak RSS {old['VmHWM']:.0f}")
    worst = max(m["RssAnon"] for m in new)
    print(f"ratio private memory per process, torch.load / mmap: {old['RssAnon'] / max(worst, 1):.0f}x "
          f"({old['RssAnon']:.0f} vs {worst:.0f} MiB)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--steps", type=int, default=8, help="timed training steps per mode and stage")
    p.add_argument("--jpegs", type=int, default=200)
    p.add_argument("--load-batch", type=int, default=8)
    p.add_argument("--load-crop", type=int, default=256)
    p.add_argument("--load-steps", type=int, default=30)
    p.add_argument("--cache-gib", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's own choice)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run (under a minute)")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    if args.quick:
        args.batch, args.crop, args.steps, args.jpegs = 2, 64, 2, 12
        args.load_batch, args.load_crop, args.load_steps, args.cache_gib = 4, 128, 4, 1 / 32
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    tmp = Path(tempfile.mkdtemp(prefix="asymllic-scale-"))
    try:
        stage_steps(args, tmp)
        loading(args, tmp)
        shared_cache(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
