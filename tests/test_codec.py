"""Real files through the real entropy coder, across processes, and every bad input gets one clear line."""
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import space
from asymllic.codec.bitstream import Bitstream, pack, unpack
from asymllic.codec.checkpoint import load_codec, new_codec, save_codec, weights_digest
from asymllic.codec.coding import compress, decompress, reconstruct
from asymllic.errors import BitstreamError
from asymllic.images import read_image, to_uint8
from conftest import run_cli


def test_round_trip_across_processes_is_bit_exact(tmp_path, photo_path, teacher_ckpt):
    alic, png = tmp_path / "a.alic", tmp_path / "a.png"
    out = run_cli("compress", photo_path, alic, "--model", teacher_ckpt, "--device", "cpu")
    assert "bpp" in out.stdout
    run_cli("decompress", alic, png, "--model", teacher_ckpt, "--device", "cpu", process=True)  # a second process
    decoded = np.asarray(Image.open(png))
    x = read_image(photo_path)
    expected = to_uint8(reconstruct(load_codec(teacher_ckpt), x))
    assert decoded.shape == (136, 200, 3)
    assert np.array_equal(decoded, expected)
    bs = unpack(alic.read_bytes())
    assert (bs.width, bs.height, bs.pad) == (200, 136, 128)
    assert bs.config_id == space.config_id(space.teacher_config(64))


def _run_bad(*args):
    proc = run_cli(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("asymllic: error:")
    return lines[0]


def test_bad_inputs_get_one_clear_line(tmp_path, photo_path, teacher_ckpt):
    alic = tmp_path / "a.alic"
    run_cli("compress", photo_path, alic, "--model", teacher_ckpt)
    data = alic.read_bytes()
    (tmp_path / "trunc.alic").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    (tmp_path / "flip.alic").write_bytes(bytes(flipped))
    (tmp_path / "text.txt").write_text("not an image at all\n")
    other = tmp_path / "other.pt"
    save_codec(new_codec(space.teacher_config(64), seed=5), other)
    paper = tmp_path / "paper.pt"
    save_codec(new_codec(space.get_preset("paper")), paper)
    m = ("--model", teacher_ckpt)
    assert "CRC" in _run_bad("decompress", tmp_path / "trunc.alic", tmp_path / "o.png", *m)
    assert "CRC" in _run_bad("decompress", tmp_path / "flip.alic", tmp_path / "o.png", *m)
    assert "not an .alic file" in _run_bad("decompress", photo_path, tmp_path / "o.png", *m)
    assert "wrong weights" in _run_bad("decompress", alic, tmp_path / "o.png", "--model", other)
    assert "wrong model" in _run_bad("decompress", alic, tmp_path / "o.png", "--model", paper)
    assert "not a readable image" in _run_bad("compress", tmp_path / "text.txt", tmp_path / "o.alic", *m)
    assert "no such image" in _run_bad("compress", tmp_path / "missing.png", tmp_path / "o.alic", *m)
    assert "no such checkpoint" in _run_bad("compress", photo_path, tmp_path / "o.alic", "--model", tmp_path / "nope.pt")
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "o.alic").exists()


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16"])
def test_unusual_images_are_coded(tmp_path, mode):
    arr = np.linspace(0, 255, 70 * 90).reshape(70, 90).astype(np.uint8)
    if mode == "L":
        img = Image.fromarray(arr, "L")
    elif mode == "RGBA":
        img = Image.fromarray(np.dstack([arr, arr, arr, np.full_like(arr, 200)]), "RGBA")
    else:
        img = Image.fromarray(arr.astype(np.uint16) * 257)
    img.save(tmp_path / "x.png")
    x = read_image(tmp_path / "x.png")
    assert x.shape == (1, 3, 70, 90) and 0 <= x.min() and x.max() <= 1


def test_every_byte_of_the_header_is_checked(teacher_ckpt, photo_path):
    model = load_codec(teacher_ckpt)
    data = compress(model, read_image(photo_path))
    for i in range(0, 48):
        bad = bytearray(data)
        bad[i] ^= 0xFF
        with pytest.raises(BitstreamError):
            decompress(model, bytes(bad))
    assert torch.equal(decompress(model, data), decompress(model, data))


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG whose header claims width x height (a few dozen bytes: what a decompression bomb looks like)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))


def test_decompression_bombs_are_refused_from_the_header(tmp_path, teacher_ckpt):
    _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)  # over Pillow's own bomb limit
    _png_header_only(tmp_path / "huge.png", 9000, 9000)  # under Pillow's, over ours
    assert "decompression bomb" in _run_bad("compress", tmp_path / "bomb.png", tmp_path / "o.alic", "--model", teacher_ckpt)
    assert "9000x9000 is over" in _run_bad("compress", tmp_path / "huge.png", tmp_path / "o.alic", "--model", teacher_ckpt)
    assert not (tmp_path / "o.alic").exists()


def test_over_the_limits_is_refused_before_the_model_is_built(tmp_path, photo_path, teacher_ckpt):
    m = ("--model", teacher_ckpt)
    line = _run_bad("compress", photo_path, tmp_path / "o.alic", *m, "--max-gmacs", "5")
    assert "GMACs for a 200x136 image" in line and "--max-gmacs" in line
    assert "--max-memory" in _run_bad("compress", photo_path, tmp_path / "o.alic", *m, "--max-memory", "0.05")
    # a well-formed header (CRC and all) that claims an 8192x8192 image: refused before decoding
    model = load_codec(teacher_ckpt)
    pad = model.config.pad_multiple()
    z = (8192 // 64, 8192 // 64)
    bs = Bitstream(space.config_id(model.config), weights_digest(model), 8192, 8192, pad, z, (b"\0" * 8, b"\0" * 8))
    (tmp_path / "big.alic").write_bytes(pack(bs))
    line = _run_bad("decompress", tmp_path / "big.alic", tmp_path / "o.png", *m, "--max-memory", "64")
    assert "for a 8192x8192 image" in line and "GiB" in line
    assert not (tmp_path / "o.alic").exists() and not (tmp_path / "o.png").exists()
    run_cli("compress", photo_path, tmp_path / "ok.alic", *m, "--max-gmacs", "100")  # under the limits: coded
