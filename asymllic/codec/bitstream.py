"""The .alic file format: a small versioned header, the entropy-coded strings and a CRC-32.

.. code-block:: none

    offset  size  field
    0       4     magic "ALIC"
    4       1     format version (1)
    5       12    config id (ASCII hex, space.config_id of the decoder's config)
    17      8     weights digest (first 8 bytes of SHA-256 over the state dict)
    25      4     image width  (u32, big endian)
    29      4     image height (u32)
    33      2     pad multiple (u16): the image was padded right/bottom to a multiple of it
    35      2     z height (u16), 37: z width (u16)
    39      1     number of strings n (the y string, then the z string)
    40      16    entropy path (ASCII, NUL-padded): where the encoder computed the scale indexes, e.g. "cpu/AVX2"
    56      4     symbols CRC (u32): CRC-32 of every decoded y symbol (int32, little endian), in coding order
    60      4n    string lengths (u32 each)
    ...           strings
    end-4   4     CRC-32 of every byte before it

Everything is checked (magic, version, CRC, sizes, consistency) before the entropy decoder runs; after it, the
symbols CRC proves that the decoder computed the encoder's scale indexes (a decoder whose kernels differ would
otherwise lose sync and return a wrong image without an error). Version 1 files (no entropy path or symbols CRC:
offset 40 holds the string lengths) are still read.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import BitstreamError

MAGIC = b"ALIC"
VERSION = 2
READS = (1, 2)
_HEAD = struct.Struct(">4sB12s8sIIHHHB")
_PATH = struct.Struct(">16sI")  # version 2: entropy path, symbols CRC
_LEN = struct.Struct(">I")
MAX_SIDE = 1 << 16
Z_STRIDE = 64


@dataclass(frozen=True)
class Bitstream:
    config_id: str
    weights_digest: bytes
    width: int
    height: int
    pad: int
    z_shape: tuple
    strings: tuple  # (y string, z string)
    entropy_path: str = ""  # where the encoder computed the scale indexes ("" in a version 1 file)
    symbols_crc: int | None = None  # CRC-32 of the y symbols (None in a version 1 file: not checked)

    @property
    def padded_size(self) -> tuple:
        return (-(-self.width // self.pad) * self.pad, -(-self.height // self.pad) * self.pad)


def pack(bs: Bitstream) -> bytes:
    head = _HEAD.pack(MAGIC, VERSION, bs.config_id.encode("ascii"), bs.weights_digest, bs.width, bs.height,
                      bs.pad, bs.z_shape[0], bs.z_shape[1], len(bs.strings))
    head += _PATH.pack(bs.entropy_path.encode("ascii")[:16], bs.symbols_crc or 0)
    body = head + b"".join(_LEN.pack(len(s)) for s in bs.strings) + b"".join(bs.strings)
    return body + _LEN.pack(zlib.crc32(body))


def unpack(data: bytes) -> Bitstream:
    if len(data) < _HEAD.size + _LEN.size:
        raise BitstreamError(f"not an .alic file: {len(data)} bytes is shorter than the {_HEAD.size + 4}-byte header")
    magic, version, cid, digest, width, height, pad, zh, zw, n = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise BitstreamError(f"not an .alic file (magic {magic!r}, expected {MAGIC!r})")
    if version not in READS:
        raise BitstreamError(f"unsupported .alic version {version} (this build reads versions {READS[0]} to {READS[-1]})")
    (crc,) = _LEN.unpack_from(data, len(data) - _LEN.size)
    if zlib.crc32(data[:-_LEN.size]) != crc:
        raise BitstreamError("corrupt or truncated .alic file (CRC-32 mismatch)")
    if n != 2:
        raise BitstreamError(f"corrupt .alic file: {n} strings, expected 2")
    try:
        config_id = cid.decode("ascii")
    except UnicodeDecodeError:
        raise BitstreamError("corrupt .alic file: config id is not ASCII") from None
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise BitstreamError(f"corrupt .alic file: image size {width}x{height}")
    if pad < Z_STRIDE or pad % Z_STRIDE or pad > 4096:
        raise BitstreamError(f"corrupt .alic file: pad multiple {pad}")
    pw, ph = -(-width // pad) * pad, -(-height // pad) * pad
    if (zh, zw) != (ph // Z_STRIDE, pw // Z_STRIDE):
        raise BitstreamError(f"corrupt .alic file: z shape {zh}x{zw} does not match a {width}x{height} image")
    offset, path, symbols_crc = _HEAD.size, "", None
    if version >= 2:
        if len(data) < offset + _PATH.size + _LEN.size:
            raise BitstreamError("corrupt .alic file: shorter than its version 2 header")
        raw_path, symbols_crc = _PATH.unpack_from(data, offset)
        try:
            path = raw_path.rstrip(b"\0").decode("ascii")
        except UnicodeDecodeError:
            raise BitstreamError("corrupt .alic file: entropy path is not ASCII") from None
        offset += _PATH.size
    if len(data) < offset + 4 * n + _LEN.size:
        raise BitstreamError("corrupt .alic file: shorter than its string lengths")
    lengths = [_LEN.unpack_from(data, offset + 4 * i)[0] for i in range(n)]
    offset += 4 * n
    if offset + sum(lengths) != len(data) - _LEN.size:
        raise BitstreamError("corrupt .alic file: string lengths do not add up to the file size")
    strings = []
    for length in lengths:
        strings.append(bytes(data[offset:offset + length]))
        offset += length
    return Bitstream(config_id, digest, width, height, pad, (zh, zw), tuple(strings), path, symbols_crc)
