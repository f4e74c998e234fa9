"""Reading and writing images as (1, 3, H, W) float tensors in [0, 1], with clear errors."""
from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import ImageError
from .files import write_bytes

MAX_PIXELS = 8192 * 8192  # decompression-bomb limit


def rgb8(img: Image.Image) -> np.ndarray:
    """Any PIL image -> (H, W, 3) uint8 RGB (16-bit and float scaled, alpha composited on white)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        arr = np.clip(arr / (257.0 if arr.max() > 255 else 1.0), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if img.mode == "F":
        arr = np.clip(np.asarray(img) * (255.0 if np.asarray(img).max() <= 1 else 1.0), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)  # alpha is composited on white, then dropped
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


@contextmanager
def _open(path: str | Path):
    """The image at ``path``, opened lazily (header only) and checked for size; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"no such image: {path}")
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageError(f"{path}: {img.width}x{img.height} is over the {MAX_PIXELS}-pixel limit "
                                 "(decompression-bomb guard)")
            if img.width == 0 or img.height == 0:
                raise ImageError(f"{path}: empty image")
            yield img
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: refused as a decompression bomb ({e})") from None
    except Exception as e:  # UnidentifiedImageError, truncated data, OSError
        raise ImageError(f"{path}: not a readable image ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def image_size(path: str | Path) -> tuple:
    """(width, height) from the file's header, without decoding its pixels."""
    with _open(path) as img:
        return img.width, img.height


def read_image(path: str | Path) -> torch.Tensor:
    with _open(path) as img:
        arr = rgb8(img)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0).unsqueeze(0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> (H, W, 3) uint8, rounding as every writer here does."""
    return x.detach().clamp(0, 1).mul(255).round().to(torch.uint8)[0].permute(1, 2, 0).cpu().numpy()


def write_image(x: torch.Tensor, path: str | Path) -> Path:
    """PNG, JPEG, ... by the suffix of ``path``; written atomically."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unknown image format {path.suffix!r} (use .png)")
    buf = io.BytesIO()
    Image.fromarray(to_uint8(x)).save(buf, format=fmt)
    return write_bytes(buf.getvalue(), path)


def pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad right and bottom to a multiple (crop back with ``x[..., :h, :w]``)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x
