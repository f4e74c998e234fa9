"""Image sets and training batches.

An image set is a folder (recursive), a text file with one path per line (the usual form of ImageNet or
Flickr lists; relative paths are read from the list's folder), one image, or the photos bundled with
scikit-image. Training streams it: ``CropDataset`` decodes one file per sample and keeps nothing, in
DataLoader worker processes; sample ``k`` depends only on (seed, k), so a resumed run sees the same
batches. Files are opened only when drawn: a file that fails to decode or is smaller than the crop is
skipped, named in the log and counted, and more than 1 % bad files stops the run.
Augmentation follows TCM's and CompressAI's training scripts: a uniformly random crop, nothing else;
random flips are an option.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import AsymllicError
from .options import DEFAULT_SEED

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm"}
# scikit-image ships these photos in its wheel (no download). Held-out evaluation: chelsea, rocket, camera.
BUNDLED = {
    "train": ("astronaut.png", "coffee.png", "motorcycle_left.png", "motorcycle_right.png",
              "hubble_deep_field.jpg", "ihc.png", "retina.jpg"),
    "eval": ("chelsea.png", "rocket.jpg", "camera.png"),  # selection: what a search ranks candidates by
    "test": ("brick.png", "grass.png", "gravel.png", "moon.png"),  # reporting: never trained on nor selected by
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


def _listed(root: Path) -> list:
    """A folder's image files (recursive), a list file's paths, or one image file; no file is opened."""
    if root.is_dir():
        return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                      and p.suffix.lower() in IMAGE_SUFFIXES)
    if root.suffix.lower() in (".txt", ".lst", ".list"):
        lines = (line.strip() for line in root.read_text().splitlines())
        return [p if p.is_absolute() else root.parent / p
                for p in (Path(line) for line in lines if line and not line.startswith("#"))]
    return [root]


def list_images(root: str | Path) -> ImageSet:
    """The images of a folder or list file, by name only: for training sets of any size (nothing is opened)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"no such data folder or list: {root}")
    paths = _listed(root)
    if not paths:
        raise DataError(f"no usable images in {root} (no image file names)")
    return ImageSet(paths)


def scan(root: str | Path) -> ImageSet:
    """Every image under ``root``, each opened and verified: for evaluation sets (unreadable files are
    reported by name and skipped)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"no such data folder: {root}")
    files = [root] if root.is_file() and root.suffix.lower() in IMAGE_SUFFIXES else (
        sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")) if root.is_dir()
        else _listed(root))
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
    """``None`` or ``"bundled"``: the bundled photos of ``split``; else a folder, list file or image. A training
    set is listed without opening a file; an evaluation set is verified file by file."""
    if data in (None, "bundled"):
        return ImageSet(bundled(split))
    return list_images(data) if split == "train" else scan(data)


MAX_DRAWS = 64  # files tried for one sample before the set is declared unusable
BAD_SHARE = 0.01  # more bad files than this share of those opened stops a run
BAD_CHECK_AFTER = 100  # ... once this many distinct files were opened (or all of a smaller set)


def _crop_file(path: Path, crop: int, rng: np.random.Generator, flips: bool) -> np.ndarray | str:
    """A (3, crop, crop) uint8 crop, or why the file was skipped ("small: ..." or "bad: ...")."""
    from PIL import Image

    from .images import MAX_PIXELS, rgb8

    try:
        with Image.open(path) as img:
            w, h = img.size
            if w < crop or h < crop:
                return f"small: {w}x{h} is smaller than the {crop}x{crop} crop"
            if w * h > MAX_PIXELS:
                return f"bad: {w}x{h} is over the {MAX_PIXELS}-pixel limit"
            top, left = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
            arr = rgb8(img.crop((left, top, left + crop, top + crop)))
    except Exception as e:  # noqa: BLE001 - any decoder failure means "not an image"
        return f"bad: not a readable image ({type(e).__name__})"
    if flips and rng.random() < 0.5:
        arr = arr[:, ::-1]
    if flips and rng.random() < 0.5:
        arr = arr[::-1]
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


class CropDataset(torch.utils.data.Dataset):
    """Sample ``k``: a random crop of a random file, drawn from (seed, k) alone; nothing is kept in memory.

    Each item is ``(crop uint8 (3, c, c), indexes of the files opened, [(index, reason)] of those skipped)``.
    """

    def __init__(self, paths: list, crop: int, seed: int = DEFAULT_SEED, flips: bool = False):
        self.paths = [str(p) for p in paths]
        self.crop, self.seed, self.flips = crop, seed, flips

    def __len__(self) -> int:  # samples are drawn by index from any sampler; this is only nominal
        return len(self.paths)

    def __getitem__(self, k: int):
        rng = np.random.default_rng([self.seed, int(k)])
        opened, skipped = [], []
        for _ in range(MAX_DRAWS):
            i = int(rng.integers(len(self.paths)))
            out = _crop_file(Path(self.paths[i]), self.crop, rng, self.flips)
            opened.append(i)
            if isinstance(out, np.ndarray):
                return torch.from_numpy(out), opened, skipped
            skipped.append((i, out))
        raise DataError(f"no usable image in {MAX_DRAWS} files drawn for sample {k} (e.g. "
                        f"{self.paths[skipped[-1][0]]}: {skipped[-1][1]})")


def _collate(items):
    return (torch.stack([x for x, _, _ in items]), [i for _, o, _ in items for i in o],
            [s for _, _, sk in items for s in sk])


class DataReport:
    """Files opened and skipped so far (summed over loader workers); stops a run with too many bad files."""

    def __init__(self, paths: list, stream=None):
        self.paths, self.stream = paths, stream  # None: sys.stderr at the time of writing
        self.opened: set = set()
        self.bad: dict = {}
        self.small: dict = {}

    def add(self, opened: list, skipped: list) -> None:
        self.opened.update(opened)
        for i, reason in skipped:
            kind, why = reason.split(": ", 1)
            seen = self.bad if kind == "bad" else self.small
            if i not in seen:
                seen[i] = why
                print(f"asymllic: skipped {self.paths[i]}: {why}", file=self.stream or sys.stderr)
        checked = len(self.opened) >= min(BAD_CHECK_AFTER, len(self.paths))
        if checked and len(self.bad) > BAD_SHARE * len(self.opened):
            raise DataError(f"{len(self.bad)} of {len(self.opened)} files opened are not readable images "
                            f"(more than {BAD_SHARE:.0%}), e.g. {self.paths[next(iter(self.bad))]}; fix or remove them")

    def summary(self) -> dict:
        return {"files_opened": len(self.opened), "bad_files": len(self.bad), "small_files": len(self.small)}


def _one_line(e: Exception) -> str:
    """A loader worker's error re-raised in this process carries the worker's traceback: keep its last line."""
    lines = [line for line in str(e).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else type(e).__name__
    return last.split(": ", 1)[1] if last.startswith(("asymllic.data.DataError", "DataError")) else last


class Batches:
    """``batches(step)`` -> the (batch, 3, c, c) float batch of that step on ``device``, from a DataLoader.

    Batch ``step`` holds samples ``step * batch ... step * batch + batch - 1``; steps are asked for in order
    (a jump, as at a resume, restarts the loader there)."""

    def __init__(self, images: ImageSet, crop: int, batch: int, steps: int, seed: int = DEFAULT_SEED, workers: int = 0,
                 device: torch.device | str = "cpu", flips: bool = False):
        self.dataset = CropDataset(images.paths, crop, seed, flips)
        self.batch, self.steps, self.workers = batch, steps, workers
        self.device = torch.device(device)
        self.report = DataReport(self.dataset.paths)
        self._it, self._next = None, None

    def _start(self, step: int) -> None:
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch, sampler=range(step * self.batch, self.steps * self.batch),
            num_workers=self.workers, collate_fn=_collate, pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if self.workers else None, persistent_workers=False)
        self._it, self._next = iter(loader), step

    def __call__(self, step: int) -> torch.Tensor:
        if self._it is None or step != self._next:
            self._start(step)
        try:
            x, opened, skipped = next(self._it)
        except DataError as e:
            raise DataError(_one_line(e)) from None
        self.report.add(opened, skipped)
        self._next = step + 1
        return x.to(self.device, non_blocking=True).float().div_(255)


def default_loader_workers() -> int:
    from .device import cpu_threads

    return min(8, cpu_threads())
