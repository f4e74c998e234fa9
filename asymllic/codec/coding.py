"""Image <-> .alic bytes with a ``LicCodec`` (the Python API behind ``asymllic compress/decompress``).

g_a and g_s run on the model's device; the entropy-parameter path (h_s and the slice networks, which decide the
rANS coder's scale indexes) always runs on the CPU in fp32 with reproducible kernels (``ENTROPY_DEVICE``), so a
file encoded on a GPU decodes on a CPU and the other way round. cuDNN's TF32 convolutions (the default on
Ampere and Hopper) move those scales by about 1e-3, enough to pick another scale index and desynchronise the
decoder. The header records where the indexes were computed, and a CRC-32 of the symbols proves that the
decoder reproduced them: a mismatch is a one-line error, never a wrong image.
"""
from __future__ import annotations

import copy
import weakref
from pathlib import Path

import torch
from space import config_id

from ..device import exact_kernels
from ..errors import BitstreamError
from ..files import write_bytes
from ..images import pad_to, read_image, write_image
from ..models import LicCodec
from .bitstream import Bitstream, pack, unpack
from .checkpoint import weights_digest


ENTROPY_DEVICE = torch.device("cpu")
_ENTROPY_TWINS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _digest(model: LicCodec) -> bytes:
    if getattr(model, "_digest", None) is None:
        model._digest = weights_digest(model)
    return model._digest


def entropy_model(model: LicCodec) -> LicCodec:
    """The codec that runs ``model``'s entropy-parameter path: the model itself when it lives on the CPU, else a CPU
    copy made once per model (coding assumes the weights no longer change, as the header's digest does)."""
    if next(model.parameters()).device == ENTROPY_DEVICE:
        return model
    twin = _ENTROPY_TWINS.get(model)
    if twin is None:
        twin = _ENTROPY_TWINS[model] = copy.deepcopy(model).to(ENTROPY_DEVICE).eval()
    return twin


def entropy_path() -> str:
    """What the header records about where the scale indexes are computed: the CPU and its kernels' ISA."""
    return f"{ENTROPY_DEVICE.type}/{torch.backends.cpu.get_cpu_capability()}"[:16]


def compress(model: LicCodec, x: torch.Tensor) -> bytes:
    """(1, 3, H, W) in [0, 1] -> .alic bytes."""
    return encode(model, x)[0]


@torch.no_grad()
def encode(model: LicCodec, x: torch.Tensor) -> tuple:
    """(.alic bytes, y): the file and the analysis output it codes (padded, on the model's device), e.g. for a rate
    estimate from the same pass."""
    h, w = x.shape[-2:]
    pad = model.config.pad_multiple()
    device = next(model.parameters()).device
    with exact_kernels():
        out = model.compress(pad_to(x, pad).to(device), entropy=entropy_model(model))
    strings = (out["strings"][0][0], out["strings"][1][0])
    return pack(Bitstream(config_id(model.config), _digest(model), w, h, pad, tuple(out["shape"]), strings,
                          entropy_path(), out["symbols_crc"])), out["y"]


def check_model(model: LicCodec, bs: Bitstream) -> None:
    cid = config_id(model.config)
    if bs.config_id != cid:
        raise BitstreamError(f"wrong model: the file was written by config {bs.config_id}, this model is {cid}")
    if bs.weights_digest != _digest(model):
        raise BitstreamError(f"wrong weights: the file was written by weights {bs.weights_digest.hex()}, "
                             f"this model has {_digest(model).hex()} (same config {cid})")
    if bs.pad != model.config.pad_multiple():
        raise BitstreamError(f"corrupt .alic file: pad multiple {bs.pad}, this model pads to {model.config.pad_multiple()}")


@torch.no_grad()
def decompress(model: LicCodec, data: bytes | Bitstream, synthesis=None) -> torch.Tensor:
    """.alic bytes (or their unpacked Bitstream) -> (1, 3, H, W) in [0, 1], after the header, CRC and model checks.

    ``synthesis``: a callable y_hat -> x_hat that replaces the final ``model.g_s`` call only (e.g.
    ``asymllic.codec.onnx_runtime.OnnxSynthesis``); the entropy decoding and the hyperprior path, which decide the
    rANS decoder's scale indexes, run in torch as the encoder did."""
    bs = data if isinstance(data, Bitstream) else unpack(data)
    check_model(model, bs)
    with exact_kernels():
        out = model.decompress([[bs.strings[0]], [bs.strings[1]]], bs.z_shape, synthesis=synthesis,
                               entropy=entropy_model(model))
    if bs.symbols_crc is not None and out["symbols_crc"] != bs.symbols_crc:
        raise BitstreamError(f"decoding failed: the decoded symbols differ from the encoder's (CRC-32 {out['symbols_crc']:08x}"
                             f" vs {bs.symbols_crc:08x}); the file's scale indexes were computed on {bs.entropy_path!r}, "
                             f"this decoder computed them on {entropy_path()!r} (decode where the entropy path matches, "
                             "or re-encode here)")
    return out["x_hat"][..., : bs.height, : bs.width].cpu()


@torch.no_grad()
def reconstruct(model: LicCodec, x: torch.Tensor) -> torch.Tensor:
    """What ``forward`` (eval: hard rounding) reconstructs; equal to decompress(compress(x))."""
    h, w = x.shape[-2:]
    device = next(model.parameters()).device
    out = model(pad_to(x, model.config.pad_multiple()).to(device), likelihoods=False)
    return out["x_hat"].clamp(0, 1)[..., :h, :w].cpu()


def compress_file(model: LicCodec, src: str | Path, dst: str | Path) -> dict:
    x = read_image(src)
    data = compress(model, x)
    write_bytes(data, dst)
    h, w = x.shape[-2:]
    return {"bytes": len(data), "bpp": 8 * len(data) / (h * w), "width": w, "height": h}


def read_bitstream(path: str | Path) -> Bitstream:
    """The checked header and strings of an .alic file (size, config id, ...) before any model is built."""
    path = Path(path)
    if not path.is_file():
        raise BitstreamError(f"no such file: {path}")
    return unpack(path.read_bytes())


def decompress_file(model: LicCodec, src: str | Path | Bitstream, dst: str | Path, synthesis=None) -> dict:
    """An .alic file (or one already read with ``read_bitstream``) -> an image file (``synthesis``: see decompress)."""
    x = decompress(model, src if isinstance(src, Bitstream) else read_bitstream(src), synthesis=synthesis)
    write_image(x, dst)
    return {"width": x.shape[-1], "height": x.shape[-2]}
