"""Latents of the frozen teacher for stages 1 and 2: from a memory-mapped cache, or computed on the fly.

The frozen parts (g_a, and for stage 1 the teacher's entropy path) give the same output for the same
crop, so a short run computes them once for a fixed, seeded set of crops and reads them back
(``LatentCache``: x as uint8, y and y_hat as float16, each a ``.npy`` file opened memory-mapped, so a
process holds only the pages it touches and workers on one machine share them). A long run would
reuse each cached crop many times, or need a cache larger than the disk and memory it should take,
where the paper draws fresh crops: it runs the frozen parts on the fly (no_grad, fp32, as the cache) instead.
``plan_latents`` decides and says why:

.. code-block:: none

    samples = steps * batch
    crops   = max(minimum crops, ceil(samples / max_reuse))
    cache   if crops * bytes per crop <= cache_gib, else on the fly

The cache lives under ``<root>/<teacher weights digest>/<crop set key>/``: another teacher has another
digest, so a cache is never stale. It is built by streaming batches to files in a folder of its own
and renamed into place when complete; two workers building the same cache never collide.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from space import LATENT_CHANNELS

from ..codec.checkpoint import weights_digest
from ..data import Batches, ImageSet
from ..device import fp32
from ..files import write_text
from ..models import LicCodec
from ..options import DEFAULT_SEED

ARRAYS = ("x", "y", "y_hat")
META = "meta.json"


def bytes_per_crop(crop: int) -> int:
    """x (uint8) + y and y_hat (float16) of one crop."""
    return 3 * crop * crop + 2 * 2 * LATENT_CHANNELS * (crop // 16) ** 2


@dataclass(frozen=True)
class LatentPlan:
    mode: str  # "cache" or "on the fly"
    crops: int  # crops the cache holds (or would hold)
    bytes: int
    reuse: float  # how many times a cached crop is used
    reason: str

    def describe(self, stage: str) -> str:
        return f"{stage}: frozen parts {'from the latent cache' if self.mode == 'cache' else 'on the fly'} ({self.reason})"


def plan_latents(steps: int, batch: int, crop: int, min_crops: int, cache_gib: float, max_reuse: float) -> LatentPlan:
    samples = steps * batch
    crops = max(min_crops, math.ceil(samples / max_reuse))
    size = crops * bytes_per_crop(crop)
    reuse = samples / crops
    gib = size / 2**30
    if size > cache_gib * 2**30:
        return LatentPlan("on the fly", crops, size, reuse,
                          f"{steps} steps x batch {batch} would use each of {crops} cached crops at most "
                          f"{max_reuse:g} times only with a {gib:.1f} GiB cache > --cache-gib {cache_gib:g}")
    return LatentPlan("cache", crops, size, reuse, f"{crops} crops, {gib:.2f} GiB <= --cache-gib {cache_gib:g}, "
                                                   f"each crop used {reuse:.1f} times <= {max_reuse:g}")


class LatentCache:
    """Read side: rows of the memory-mapped arrays, gathered per batch."""

    def __init__(self, folder: Path):
        self.path = Path(folder)
        self.arrays = {k: np.load(self.path / f"{k}.npy", mmap_mode="r") for k in ARRAYS}

    def __len__(self) -> int:
        return self.arrays["x"].shape[0]

    def rows(self, idx: np.ndarray) -> tuple:
        idx = np.sort(idx)  # reading in file order touches fewer pages
        return tuple(torch.from_numpy(np.ascontiguousarray(self.arrays[k][idx])) for k in ARRAYS)

    def batch_at(self, step: int, batch: int, seed: int = DEFAULT_SEED, device: torch.device | str = "cpu") -> tuple:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(0, len(self), (batch,), generator=gen).numpy()
        rows, device = self.rows(idx), torch.device(device)
        cuda = device.type == "cuda"
        if cuda:  # from pinned host memory the three copies are asynchronous: no stream sync per step
            rows = tuple(t.pin_memory() for t in rows)
        x, y, y_hat = (t.to(device, non_blocking=cuda) for t in rows)
        return x.float().div_(255), y.float(), y_hat.float()


class CacheWriter:
    """Write side: arrays of ``count`` rows created on disk in a temporary folder of this writer's own, filled
    batch by batch, renamed into place when complete unless another writer's complete cache is there first."""

    def __init__(self, folder: Path, count: int, crop: int):
        self.folder = Path(folder)
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        # a folder of this writer's own: host, pid and a random suffix, created exclusively (two nodes of a
        # shared root may run writers with the same pid; neither ever touches the other's folder)
        self.tmp = self.folder.parent / f".{self.folder.name}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
        self.tmp.mkdir()
        lat = (count, LATENT_CHANNELS, crop // 16, crop // 16)
        shapes = {"x": ((count, 3, crop, crop), np.uint8), "y": (lat, np.float16), "y_hat": (lat, np.float16)}
        self.arrays = {k: np.lib.format.open_memmap(self.tmp / f"{k}.npy", mode="w+", dtype=dt, shape=shape)
                       for k, (shape, dt) in shapes.items()}
        self.filled = 0

    def add(self, x: np.ndarray, y: np.ndarray, y_hat: np.ndarray) -> None:
        n = x.shape[0]
        for k, v in zip(ARRAYS, (x, y, y_hat)):
            self.arrays[k][self.filled:self.filled + n] = v
        self.filled += n

    def close(self, meta: dict) -> LatentCache:
        for a in self.arrays.values():
            a.flush()
        self.arrays.clear()
        write_text(json.dumps(meta, indent=1), self.tmp / META)
        if not (self.folder / META).is_file():
            try:  # atomic; refused when the final folder exists and holds anything
                os.rename(self.tmp, self.folder)
                return LatentCache(self.folder)
            except OSError:
                if not (self.folder / META).is_file():
                    raise
        shutil.rmtree(self.tmp, ignore_errors=True)  # another writer finished the same cache first: use theirs
        return LatentCache(self.folder)

    def abort(self) -> None:
        self.arrays.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _data_key(paths: list, crop: int, count: int, seed: int) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = Path(p).stat() if Path(p).exists() else None
        h.update(f"{Path(p).resolve()}:{st.st_size if st else -1}:{int(st.st_mtime) if st else -1}".encode())
    return f"c{crop}_n{count}_s{seed}_{h.hexdigest()[:10]}"


@torch.no_grad()
def latent_cache(teacher: LicCodec, images: ImageSet, crop: int, count: int, root: str | Path, seed: int = DEFAULT_SEED,
                 chunk: int = 8, workers: int = 0, progress: bool = True) -> LatentCache:
    """Open the cache for (teacher, crops), or build it: g_a and the entropy path run once per crop, in fp32."""
    from tqdm import tqdm

    folder = Path(root) / weights_digest(teacher).hex() / _data_key(images.paths, crop, count, seed)
    if (folder / META).is_file():
        return LatentCache(folder)
    teacher.eval()
    device = next(teacher.parameters()).device
    batches = Batches(images, crop, chunk, math.ceil(count / chunk), seed, workers, device)
    writer = CacheWriter(folder, count, crop)
    try:
        for step in tqdm(range(math.ceil(count / chunk)), desc="latent cache", disable=not progress, leave=False):
            x = batches(step)[: count - writer.filled]
            y, y_hat = frozen_targets(teacher, x)
            writer.add(x.mul(255).round().to(torch.uint8).cpu().numpy(), y.cpu().numpy(), y_hat.cpu().numpy())
        return writer.close({"crop": crop, "count": count, "seed": seed, "files": len(images.paths),
                             **batches.report.summary()})
    except BaseException:
        writer.abort()
        raise


@torch.no_grad()
def frozen_targets(teacher: LicCodec, x: torch.Tensor, need_y_hat: bool = True) -> tuple:
    """(y, y_hat) of the frozen teacher, as the cache stores them: computed in fp32 (outside any autocast), kept in
    fp16. The cache and the on-the-fly path share it, so a stage trains on the same targets in either mode."""
    with fp32(x.device):
        y = teacher.g_a(x.float()).float()
        y_hat = teacher.entropy_forward(y, likelihoods=False)["y_hat"] if need_y_hat else None
    return y.half(), (y_hat.half() if y_hat is not None else None)


class FrozenOnTheFly:
    """Fresh crops every step through the frozen teacher (``frozen_targets``): (x, y, y_hat or None), fp32 tensors."""

    def __init__(self, teacher: LicCodec, batches: Batches, need_y_hat: bool):
        self.teacher, self.batches, self.need_y_hat = teacher.eval(), batches, need_y_hat

    def batch_at(self, step: int) -> tuple:
        x = self.batches(step)
        y, y_hat = frozen_targets(self.teacher, x, self.need_y_hat)
        return x, y.float(), (y_hat.float() if y_hat is not None else None)
