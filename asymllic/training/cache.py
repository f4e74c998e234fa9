"""The latent cache: g_a (and, for stage 1, the teacher's entropy path) are frozen, so compute them once.

For a fixed, seeded set of crops the cache stores x (uint8), y = g_a(x) and y_hat (the teacher's
hard-quantised latents, float16) under ``<root>/<teacher weights digest>/<crop set key>/``. A different
teacher has a different digest and therefore a different folder: the cache is never stale.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..files import save_torch, write_text
from ..checkpoint import weights_digest
from ..data import CropSampler
from ..models import LicCodec


@dataclass
class LatentCache:
    x: torch.Tensor  # (N, 3, c, c) uint8
    y: torch.Tensor  # (N, M, c/16, c/16) float16
    y_hat: torch.Tensor  # (N, M, c/16, c/16) float16
    path: Path

    def __len__(self) -> int:
        return self.x.shape[0]

    def batch_at(self, step: int, batch: int, seed: int = 0) -> tuple:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(0, len(self), (batch,), generator=gen)
        return self.x[idx].float().div_(255), self.y[idx].float(), self.y_hat[idx].float()


def _data_key(paths: list, crop: int, count: int, seed: int) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = Path(p).stat()
        h.update(f"{Path(p).resolve()}:{st.st_size}:{int(st.st_mtime)}".encode())
    return f"c{crop}_n{count}_s{seed}_{h.hexdigest()[:10]}"


@torch.no_grad()
def latent_cache(teacher: LicCodec, paths: list, crop: int, count: int, root: str | Path, seed: int = 0,
                 chunk: int = 8, progress: bool = True) -> LatentCache:
    """Load the cache for (teacher, crops) or build it (g_a and the entropy path run once per crop)."""
    from tqdm import tqdm

    folder = Path(root) / weights_digest(teacher).hex() / _data_key(paths, crop, count, seed)
    meta_path = folder / "meta.json"
    if meta_path.exists():
        t = torch.load(folder / "latents.pt", map_location="cpu", weights_only=True)
        return LatentCache(t["x"], t["y"], t["y_hat"], folder)
    teacher.eval()
    device = next(teacher.parameters()).device
    sampler = CropSampler(paths, crop, batch=1, seed=seed)
    xs, ys, yhs = [], [], []
    for start in tqdm(range(0, count, chunk), desc="latent cache", disable=not progress, leave=False):
        x = torch.cat([sampler.batch_at(start + i) for i in range(min(chunk, count - start))]).to(device)
        y = teacher.g_a(x)
        y_hat = teacher.entropy_forward(y, likelihoods=False)["y_hat"]
        xs.append(x.mul(255).round().to(torch.uint8).cpu())
        ys.append(y.half().cpu())
        yhs.append(y_hat.half().cpu())
    cache = LatentCache(torch.cat(xs), torch.cat(ys), torch.cat(yhs), folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_torch({"x": cache.x, "y": cache.y, "y_hat": cache.y_hat}, folder / "latents.pt")
    write_text(json.dumps({"crop": crop, "count": count, "seed": seed, "paths": [str(p) for p in paths]}, indent=1),
               meta_path)
    return cache
