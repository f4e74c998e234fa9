"""``asymllic compress | decompress | init``: a codec as a real file compressor."""
from __future__ import annotations

from .common import add_model_args, load_model, resolve_config


def add_parsers(sub) -> None:
    p = sub.add_parser("compress", help="compress an image into an .alic file")
    p.add_argument("input")
    p.add_argument("output")
    add_model_args(p)
    p.set_defaults(run=run_compress)

    p = sub.add_parser("decompress", help="decompress an .alic file into a PNG")
    p.add_argument("input")
    p.add_argument("output")
    add_model_args(p)
    p.set_defaults(run=run_decompress)

    p = sub.add_parser("init", help="write an untrained (entropy tables built) codec checkpoint for a preset or config")
    p.add_argument("config", help="preset name or config file")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run_init)


def run_compress(args) -> int:
    from asymllic.coding import compress_file
    from asymllic.images import image_size

    info = compress_file(load_model(args, image_size(args.input)), args.input, args.output)
    print(f"{args.output}: {info['bytes']} bytes, {info['bpp']:.4f} bpp ({info['width']}x{info['height']})")
    return 0


def run_decompress(args) -> int:
    from asymllic.coding import decompress_file, read_bitstream

    bs = read_bitstream(args.input)
    info = decompress_file(load_model(args, (bs.width, bs.height), decoding=True), bs, args.output)
    print(f"{args.output}: {info['width']}x{info['height']}")
    return 0


def run_init(args) -> int:
    from asymllic.checkpoint import new_codec, save_codec

    model = new_codec(resolve_config(args.config), seed=args.seed)
    save_codec(model, args.out, {"trained": False, "source": args.config})
    print(args.out)
    return 0
