"""Decode many mutated .alic files in this process; print one line per outcome class. Used by test_fuzz.py.

    python tests/fuzz_decode.py CKPT VALID.alic CASES SEED
"""
import random
import sys
import zlib
from collections import Counter

from asymllic.codec.bitstream import _LEN
from asymllic.codec.checkpoint import load_codec
from asymllic.codec.coding import decompress
from asymllic.errors import BitstreamError


def mutate(data: bytes, rng: random.Random) -> tuple:
    kind = rng.choice(["truncate", "flip", "bytes", "crc-fixed", "extend"])
    b = bytearray(data)
    if kind == "truncate":
        b = b[: rng.randrange(0, len(b))]
    elif kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        i = rng.randrange(len(b))
        b[i:i + rng.randint(1, 16)] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 16)))
    elif kind == "extend":
        b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:  # damage the entropy-coded payload and recompute the CRC: the header check passes
        body = b[:-4]
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(48, len(body))  # past the header: the rANS strings
            body[i] = rng.randrange(256)
        b = body + _LEN.pack(zlib.crc32(bytes(body)))
    return kind, bytes(b)


def main(ckpt, valid, cases, seed):
    model = load_codec(ckpt)
    data = open(valid, "rb").read()
    rng = random.Random(int(seed))
    outcomes = Counter()
    for _ in range(int(cases)):
        kind, bad = mutate(data, rng)
        try:
            x = decompress(model, bad)
            assert x.shape[0] == 1 and x.shape[1] == 3
            outcomes[f"{kind}:decoded"] += 1
        except BitstreamError:
            outcomes[f"{kind}:rejected"] += 1
    for k, v in sorted(outcomes.items()):
        print(k, v)
    print("total", sum(outcomes.values()))


if __name__ == "__main__":
    main(*sys.argv[1:])
