"""Image sets: folders of the user's photos or the photos bundled with scikit-image; random crops."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import AsymllicError, ImageError
from .images import read_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}
# scikit-image ships these photos in its wheel (no download). Held-out evaluation: chelsea, rocket, camera.
BUNDLED = {
    "train": ("astronaut.png", "coffee.png", "motorcycle_left.png", "motorcycle_right.png",
              "hubble_deep_field.jpg", "ihc.png", "retina.jpg"),
    "eval": ("chelsea.png", "rocket.jpg", "camera.png"),
}


class DataError(AsymllicError):
    """An image set that cannot be used (missing, empty)."""


@dataclass
class ImageSet:
    paths: list
    skipped: list = field(default_factory=list)  # (path, reason)

    def report(self, stream=sys.stderr) -> None:
        for path, reason in self.skipped:
            print(f"asymllic: skipped {path}: {reason}", file=stream)
        if self.skipped:
            print(f"asymllic: skipped {len(self.skipped)} of {len(self.paths) + len(self.skipped)} files", file=stream)


def bundled_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


def bundled(split: str) -> list:
    if split not in BUNDLED:
        raise DataError(f"unknown split {split!r}; choose one of {sorted(BUNDLED)}")
    root = bundled_dir()
    return [root / name for name in BUNDLED[split]]


def _check(path: Path) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as e:  # noqa: BLE001 - any decoder failure means "not an image"
        return f"not a readable image ({type(e).__name__})"
    return None


def scan(root: str | Path) -> ImageSet:
    """Every image under ``root`` (recursive); unreadable files are reported by name and skipped."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"no such data folder: {root}")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    good, skipped = [], []
    for p in files:
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            if root.is_file():
                skipped.append((p, "not an image file name"))
            continue
        reason = _check(p)
        (skipped.append((p, reason)) if reason else good.append(p))
    if not good:
        raise DataError(f"no usable images in {root} ({len(skipped)} skipped)")
    return ImageSet(good, skipped)


def resolve(data: str | None, split: str = "train") -> ImageSet:
    """``None`` or ``"bundled"``: the bundled photos of ``split``; else a folder (or one file)."""
    if data in (None, "bundled"):
        return ImageSet(bundled(split))
    return scan(data)


def random_crop(x: torch.Tensor, crop: int, gen: torch.Generator) -> torch.Tensor:
    """(1, 3, H, W) -> (3, crop, crop), replicate-padding images smaller than the crop, random flips."""
    h, w = x.shape[-2:]
    if h < crop or w < crop:
        x = F.pad(x, (0, max(0, crop - w), 0, max(0, crop - h)), mode="replicate")
        h, w = x.shape[-2:]
    top = int(torch.randint(0, h - crop + 1, (1,), generator=gen))
    left = int(torch.randint(0, w - crop + 1, (1,), generator=gen))
    out = x[0, :, top:top + crop, left:left + crop]
    if torch.rand(1, generator=gen) < 0.5:
        out = out.flip(-1)
    if torch.rand(1, generator=gen) < 0.5:
        out = out.flip(-2)
    return out


class CropSampler:
    """Batches of random crops; batch ``step`` depends only on (seed, step), so a resumed run sees the same data."""

    def __init__(self, paths: list, crop: int, batch: int, seed: int = 0, keep_in_memory: bool = True):
        self.paths, self.crop, self.batch, self.seed = list(paths), crop, batch, seed
        self._images: dict = {}
        self.keep = keep_in_memory

    def _image(self, i: int) -> torch.Tensor:
        if i in self._images:
            return self._images[i]
        try:
            x = read_image(self.paths[i])
        except ImageError as e:
            raise DataError(str(e)) from None
        if self.keep:
            self._images[i] = x
        return x

    def batch_at(self, step: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        idx = torch.randint(0, len(self.paths), (self.batch,), generator=gen).tolist()
        return torch.stack([random_crop(self._image(i), self.crop, gen) for i in idx])
