"""Evaluation on real files: PSNR, MS-SSIM, bpp from the real bytes and from the likelihoods, timings.

Results are written in CompressAI's JSON format (``name``, ``description``, ``results`` with lists
``psnr-rgb``, ``ms-ssim-rgb``, ``bpp``, ``encoding_time``, ``decoding_time``), one point per model, so
CompressAI's plot tool and the BD-rate and BD-PSNR of ``asymllic.evaluation.bd`` read them. ``bpp`` counts the
entropy-coded payload, as CompressAI and LIC_TCM do (and BD figures use it); ``file_bpp`` the whole ``.alic``
file (header, lengths and CRC included).
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..codec.bitstream import unpack
from ..codec.coding import decompress, encode
from ..device import exact_kernels
from ..errors import AsymllicError
from ..images import read_image
from ..models import LicCodec
from ..options import DEFAULT_DEVICE
from .metrics import bpp_from_likelihoods, ms_ssim, psnr

METRICS = ("psnr-rgb", "ms-ssim-rgb", "bpp", "file_bpp", "estimated_bpp", "encoding_time", "decoding_time", "mse")


def centre_crop(x: torch.Tensor, side: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if not side or (h <= side and w <= side):
        return x
    th, tw = min(h, side), min(w, side)
    top, left = (h - th) // 2, (w - tw) // 2
    return x[..., top:top + th, left:left + tw]


def jpeg_at_bpp(x: torch.Tensor, target_bpp: float) -> dict:
    """PIL JPEG (4:2:0) at the quality whose size is closest to ``target_bpp``."""
    arr = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    h, w = arr.shape[:2]
    best = None
    for q in range(1, 96):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=q)
        bpp = 8 * buf.tell() / (h * w)
        if best is None or abs(bpp - target_bpp) < abs(best[1] - target_bpp):
            best = (q, bpp, buf.getvalue())
    q, bpp, data = best
    dec = torch.from_numpy(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).copy()).permute(2, 0, 1).float().div(255)[None]
    return {"quality": q, "bpp": bpp, "psnr-rgb": psnr(dec, x)}


@torch.no_grad()
def evaluate_image(model: LicCodec, x: torch.Tensor, jpeg: bool = False) -> dict:
    h, w = x.shape[-2:]
    t0 = time.perf_counter()
    data, y = encode(model, x)
    t1 = time.perf_counter()
    x_hat = decompress(model, data)
    t2 = time.perf_counter()
    with exact_kernels():  # as coding: no autotuning of every convolution for each new image size
        out = model.entropy_forward(y)  # the likelihoods of what was coded: the estimated rate
    payload = sum(len(s) for s in unpack(data).strings)  # the entropy-coded strings, as CompressAI counts
    row = {"psnr-rgb": psnr(x_hat, x), "ms-ssim-rgb": ms_ssim(x_hat, x), "bpp": 8 * payload / (h * w),
           "file_bpp": 8 * len(data) / (h * w), "mse": float(torch.mean((x_hat.clamp(0, 1) - x.clamp(0, 1)) ** 2)),
           "estimated_bpp": float(bpp_from_likelihoods(out["likelihoods"], h * w)),
           "encoding_time": t1 - t0, "decoding_time": t2 - t1, "width": w, "height": h}
    if jpeg:
        row["jpeg"] = jpeg_at_bpp(x, row["bpp"])
    return row


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def evaluate(model: LicCodec, paths: list, name: str, description: str = "", max_side: int = 0,
             jpeg: bool = False, progress: bool = True, photos: int = 0) -> dict:
    """Per-image rows and their means, in CompressAI's results layout (one point). ``photos``: only the first n of
    ``paths`` (0: all)."""
    from tqdm import tqdm

    paths = list(paths)[:photos] if photos else paths
    model.eval()
    rows = []
    for p in tqdm(paths, desc=f"eval {name}", disable=not progress, leave=False):
        row = evaluate_image(model, centre_crop(read_image(p), max_side), jpeg)
        row["image"] = Path(p).name
        rows.append(row)
    results = {k: [_mean(r[k] for r in rows)] for k in METRICS}
    if jpeg:
        results["jpeg-bpp"] = [_mean(r["jpeg"]["bpp"] for r in rows)]
        results["jpeg-psnr-rgb"] = [_mean(r["jpeg"]["psnr-rgb"] for r in rows)]
    return {"name": name, "description": description, "results": results, "per_image": rows}


def evaluate_models(models, data: str | None = None, *, name: str | None = None, max_side: int = 0,
                    jpeg: bool = False, device: str = DEFAULT_DEVICE, limits=None, out: str | Path | None = None,
                    progress: bool = True) -> dict:
    """Evaluate each of ``models`` (model references: presets, config files, checkpoints, export folders; one per
    RD point, e.g. one per lambda) on the images of ``data`` (a folder; None or ``"bundled"``: the held-out
    scikit-image photos), as ``asymllic eval`` does. ``max_side``: centre-crop larger images (0: full images);
    ``jpeg``: also code each image with JPEG at the same bpp; ``limits``: an ``asymllic.limits.Limits`` (GMACs,
    GiB) each model is refused against, at the largest image, before it is built. Returns CompressAI's results
    layout: one point for one model, else the merged curve (sorted by bpp) with ``per_checkpoint``; ``name``
    (default the first model's folder or file name) names it. ``out``: also write the JSON there."""
    from ..codec.reference import load_model
    from ..data import resolve
    from ..device import pick_device
    from ..images import image_size
    from ..limits import Limits

    models = [models] if isinstance(models, (str, Path)) else list(models)
    images = resolve(None if data in (None, "bundled") else data, "eval")
    images.report()
    sizes = [image_size(p) for p in images.paths]
    if max_side:
        sizes = [(min(w, max_side), min(h, max_side)) for w, h in sizes]
    largest = max(sizes, key=lambda s: s[0] * s[1])  # checked against the limits before each model is built
    limits = limits if limits is not None else Limits()
    device = pick_device(device)
    runs = [evaluate(load_model(m, device, largest, limits), images.paths,
                     Path(m).name if Path(m).is_dir() else (Path(m).parent.name or Path(m).stem),
                     str(m), max_side, jpeg, progress) for m in models]
    result = runs[0] if len(runs) == 1 else dict(merge_points(runs, name or runs[0]["name"]), per_checkpoint=runs)
    result["name"] = name or runs[0]["name"]
    if out:
        from ..files import write_text

        write_text(json.dumps(result, indent=1), out)
    return result


def merge_points(runs: list, name: str, description: str = "") -> dict:
    """Several one-point results (e.g. one per lambda) -> one RD curve sorted by bpp."""
    order = np.argsort([r["results"]["bpp"][0] for r in runs])
    keys = [k for k in runs[0]["results"] if all(k in r["results"] for r in runs)]
    return {"name": name, "description": description,
            "results": {k: [runs[i]["results"][k][0] for i in order] for k in keys}}


def load_results(path: str | Path) -> dict:
    """An RD curve in CompressAI's results format from its JSON file; a file that cannot be read or parsed is one
    ``AsymllicError`` line."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as e:
        raise AsymllicError(f"cannot read the RD curve {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise AsymllicError(f"{path} is not a JSON RD curve: {e}") from None
