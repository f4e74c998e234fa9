"""``asymllic compress | decompress | init``: a codec as a real file compressor."""
from __future__ import annotations

from dataclasses import dataclass

from asymllic.options import Seed, option

from .common import add_model_args, load_model, resolve_config
from .options import add_options


@dataclass(kw_only=True)
class Decompress:
    runtime: str = option("torch", "where the synthesis decoder g_s runs: torch, or onnxruntime on the CPU (the "
                                   "entropy decoding and the hyperprior path always run in torch)",
                          choices=("torch", "onnx"))
    onnx: str | None = option(None, "with --runtime onnx: the g_s ONNX file (default: g_s.onnx in the --model "
                                    "export folder)", metavar="PATH")


@dataclass(kw_only=True)
class Init(Seed):
    out: str = option(None, "the checkpoint written")


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
    add_options(p, Decompress)
    p.set_defaults(run=run_decompress)

    p = sub.add_parser("init", help="write an untrained (entropy tables built) codec checkpoint for a preset or config")
    p.add_argument("config", help="preset name or config file")
    add_options(p, Init, required=("out",))
    p.set_defaults(run=run_init)


def run_compress(args) -> int:
    from asymllic.codec.coding import compress_file
    from asymllic.images import image_size

    info = compress_file(load_model(args, image_size(args.input)), args.input, args.output)
    print(f"{args.output}: {info['bytes']} bytes, {info['bpp']:.4f} bpp ({info['width']}x{info['height']})")
    return 0


def run_decompress(args) -> int:
    from asymllic.codec.coding import decompress_file, read_bitstream

    from asymllic.codec.onnx_runtime import synthesis_file

    bs = read_bitstream(args.input)
    path = synthesis_file(args.model, args.onnx, args.runtime)
    model = load_model(args, (bs.width, bs.height), decoding=True)
    synthesis = None
    if path is not None:
        from asymllic.codec.onnx_runtime import OnnxSynthesis

        synthesis = OnnxSynthesis(path, model=model)
    info = decompress_file(model, bs, args.output, synthesis=synthesis)
    print(f"{args.output}: {info['width']}x{info['height']}" + (f" (g_s on onnxruntime: {path})" if path else ""))
    return 0


def run_init(args) -> int:
    from asymllic.codec.checkpoint import new_codec, save_codec

    model = new_codec(resolve_config(args.config), seed=args.seed)
    save_codec(model, args.out, {"trained": False, "source": args.config})
    print(args.out)
    return 0
