"""1,000+ seeded mutations and truncations of a valid .alic file, decoded in a separate process."""
import subprocess
import sys

from PIL import Image

import space
from asymllic.codec.checkpoint import new_codec, save_codec
from conftest import ROOT, photo, run_cli

CASES = 1200
# a small decoder keeps the ~20 % of cases that reach the entropy decoder fast
LIGHT = space.CodecConfig(space.SynthesisConfig(widths=(32, 32, 32), depths=(0, 0, 0), block="res"),
                          space.HyperpriorConfig(num_slices=2, attn_dim=0, slice_hidden=(32,), hs_width=32, hs_depth=0),
                          encoder_width=32)


def test_fuzzed_bitstreams_never_crash_or_hang(tmp_path):
    ckpt = save_codec(new_codec(LIGHT), tmp_path / "light.pt")
    img = tmp_path / "x.png"
    Image.fromarray(photo("astronaut", (64, 64))).save(img)
    run_cli("compress", img, tmp_path / "x.alic", "--model", ckpt)
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "fuzz_decode.py"), str(ckpt),
                           str(tmp_path / "x.alic"), str(CASES), "7"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    # a segfault or abort would show as a negative return code; a hang as a timeout
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = dict(line.rsplit(" ", 1) for line in proc.stdout.strip().splitlines())
    assert int(counts["total"]) == CASES
    # everything that changes the header, the length or the CRC is rejected before the entropy decoder
    for kind in ("truncate", "flip", "bytes", "extend"):
        assert f"{kind}:decoded" not in counts, counts
    # payload damage behind a valid CRC reaches the entropy decoder and still decodes to an image
    assert int(counts.get("crc-fixed:decoded", 0)) + int(counts.get("crc-fixed:rejected", 0)) > 100
