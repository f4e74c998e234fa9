"""The synthesis decoder g_s as an ONNX model, run with onnxruntime: the part of a decoder a device runs.

- ``export_synthesis(model, path)``: g_s -> ONNX (input ``y_hat`` float32 (N, 320, h, w), output ``x_hat``
  (N, 3, 16h, 16w); batch, height and width dynamic), with the synthesis config and a digest of g_s's weights
  in the file's metadata.
- ``OnnxSynthesis(path, threads, model=...)``: a callable y_hat -> x_hat (torch tensors) on an onnxruntime
  CPU session, checked against the model before anything runs; ``asymllic.codec.coding.decompress(model, data,
  synthesis=...)`` uses it in place of the torch g_s.
- ``check_synthesis(model, path)``: torch's g_s and onnxruntime's on the latents of a real photo, compared.

Only g_s moves: the entropy decoding and the hyperprior path stay where the file was encoded (torch), since the
hyperprior path decides the scale-table indexes and any float difference there would desynchronise the rANS
decoder. Every bad file (not ONNX, truncated, a g_s of another config) is an ``OnnxError``: one line.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import AsymllicError

INPUT, OUTPUT = "y_hat", "x_hat"
STRIDE = 16  # g_s upsamples y_hat by 16
DEFAULT_OPSET = 18
EXPORT_LATENT = (8, 8)  # the latent size traced at export: a 128x128 image
EXPORTERS = ("auto", "dynamo", "torchscript")
# metadata_props keys written by export_synthesis
META_FORMAT, META_SYNTHESIS, META_DIGEST = "asymllic.format", "asymllic.synthesis", "asymllic.g_s_digest"
META_MULTIPLE, META_EXPORTER, META_CONFIG_ID = "asymllic.latent_multiple", "asymllic.exporter", "asymllic.config_id"
FORMAT = "asymllic-g_s-1"


class OnnxError(AsymllicError):
    """An ONNX synthesis decoder that cannot be exported, read or run, or that does not fit the model."""


def latent_channels() -> int:
    from space import LATENT_CHANNELS

    return LATENT_CHANNELS


def latent_multiple(config) -> int:
    """y_hat's height and width must be multiples of this for g_s's attention windows to tile every stage
    (the codec pads images to ``config.pad_multiple()``, 16 times a multiple of it)."""
    s = config.synthesis
    if not s.uses_attention:
        return 1
    return max(1, max(stride * s.window for stride, d in zip(s.stage_strides(), s.depths) if d) // STRIDE)


def synthesis_json(config) -> str:
    from space import to_dict

    return json.dumps(to_dict(config.synthesis), sort_keys=True, separators=(",", ":"))


def g_s_digest(model) -> str:
    """16 hex digits of the SHA-256 of g_s's state (names and values)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.g_s.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _one_line(e: BaseException, limit: int = 300) -> str:
    text = " ".join(str(e).split())
    # onnxruntime prefixes its messages with the C++ source location: keep what it says, not where
    text = re.sub(r"/onnxruntime_src/\S+ \S+ ", "", text)
    text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- export --------------------------------------------------------------------------------------------
class _Synthesis(nn.Module):
    """g_s with its argument named as the ONNX input."""

    def __init__(self, g_s: nn.Module):
        super().__init__()
        self.g_s = g_s

    def forward(self, y_hat: torch.Tensor) -> torch.Tensor:
        return self.g_s(y_hat)


def _export_dynamo(module: nn.Module, example: torch.Tensor, opset: int):
    import onnx

    dim = torch.export.Dim
    program = torch.onnx.export(module, (example,), None, input_names=[INPUT], output_names=[OUTPUT],
                                opset_version=opset, dynamo=True, verbose=False,
                                dynamic_shapes={INPUT: {0: dim("N"), 2: dim("h"), 3: dim("w")}})
    return onnx.load_from_string(program.model_proto.SerializeToString())


def _export_torchscript(module: nn.Module, example: torch.Tensor, opset: int):
    import warnings

    import onnx

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings of the window code's Python-side shape arithmetic
        torch.onnx.export(module, (example,), buf, input_names=[INPUT], output_names=[OUTPUT], opset_version=opset,
                          dynamo=False, dynamic_axes={INPUT: {0: "N", 2: "h", 3: "w"},
                                                      OUTPUT: {0: "N", 2: f"{STRIDE}*h", 3: f"{STRIDE}*w"}})
    return onnx.load_from_string(buf.getvalue())


def export_synthesis(model, path: str | Path, opset: int = DEFAULT_OPSET, exporter: str = "auto",
                     latent: tuple = EXPORT_LATENT) -> Path:
    """Write ``model.g_s`` to ``path`` as ONNX with dynamic batch, height and width; returns the path.

    ``exporter``: ``dynamo`` (torch.export), ``torchscript`` (the tracer, ``dynamo=False``) or ``auto`` (dynamo,
    the tracer if dynamo fails). Which one wrote the file is in its metadata (``read_metadata``). The graph is
    traced on y_hat of size ``latent`` (h, w), a multiple of ``latent_multiple``, and runs at any such size."""
    import onnx

    from ..files import write_bytes

    if exporter not in EXPORTERS:
        raise OnnxError(f"unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}")
    mult = latent_multiple(model.config)
    h, w = (-(-v // mult) * mult for v in latent)
    device = next(model.parameters()).device
    example = torch.randn(1, latent_channels(), h, w, device=device)
    module = _Synthesis(model.g_s).eval()
    was_training = model.training
    model.eval()
    proto, used, errors = None, None, []
    try:
        for name in (("dynamo", "torchscript") if exporter == "auto" else (exporter,)):
            try:
                with torch.no_grad():
                    proto = (_export_dynamo if name == "dynamo" else _export_torchscript)(module, example, opset)
                used = name
                break
            except Exception as e:  # noqa: BLE001 - the exporters raise anything; keep each one's reason
                errors.append(f"{name}: {_one_line(e, 200)}")
    finally:
        model.train(was_training)
    if proto is None:
        raise OnnxError(f"could not export g_s to ONNX ({'; '.join(errors)})")
    from space import config_id

    meta = {META_FORMAT: FORMAT, META_SYNTHESIS: synthesis_json(model.config), META_DIGEST: g_s_digest(model),
            META_MULTIPLE: str(mult), META_EXPORTER: used, META_CONFIG_ID: config_id(model.config)}
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, meta)
    return write_bytes(proto.SerializeToString(), path)


# --- reading and checking --------------------------------------------------------------------------------
def _load_proto(path: Path):
    import onnx

    if not path.is_file():
        raise OnnxError(f"no such ONNX file: {path}")
    data = path.read_bytes()
    if not data:
        raise OnnxError(f"{path}: empty file, not an ONNX model")
    try:
        proto = onnx.load_from_string(data)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise OnnxError(f"{path}: not an ONNX model, or a truncated one "
                        f"(cannot be parsed: {_one_line(e, 120)})") from None
    try:
        onnx.checker.check_model(proto)
    except Exception as e:  # noqa: BLE001 - ValidationError: a truncated file often parses but is incomplete
        raise OnnxError(f"{path}: not a valid ONNX model, truncated or damaged ({_one_line(e, 160)})") from None
    return proto


def _dims(value_info) -> list:
    """The shape of a graph input/output: ints, symbol names, or None for an unnamed dynamic axis."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return []
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def _check_signature(path: Path, proto) -> None:
    """One input y_hat float32 (N, 320, h, w), one output x_hat float32 (N, 3, 16h, 16w), h and w dynamic."""
    import onnx

    graph = proto.graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise OnnxError(f"{path}: not a synthesis decoder: it has {len(inputs)} inputs and {len(graph.output)} outputs "
                        f"(a g_s has one input {INPUT!r} and one output {OUTPUT!r})")
    x_in, x_out = inputs[0], graph.output[0]
    if (x_in.name, x_out.name) != (INPUT, OUTPUT):
        raise OnnxError(f"{path}: not a synthesis decoder: input {x_in.name!r} and output {x_out.name!r}, expected "
                        f"{INPUT!r} and {OUTPUT!r} (export it with asymllic.codec.onnx_runtime.export_synthesis)")
    for v in (x_in, x_out):
        if v.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            kind = onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type)
            raise OnnxError(f"{path}: {v.name} is {kind}, a g_s takes and returns float32")
    din, dout = _dims(x_in), _dims(x_out)
    if len(din) != 4 or len(dout) != 4:
        raise OnnxError(f"{path}: {INPUT} has shape {din} and {OUTPUT} {dout}: a g_s maps (N, C, h, w) to (N, 3, H, W)")
    channels = latent_channels()
    if din[1] != channels:
        raise OnnxError(f"{path}: input channel mismatch: {INPUT} has {din[1]} channels, this codec's latents have "
                        f"{channels}")
    if dout[1] != 3:
        raise OnnxError(f"{path}: {OUTPUT} has {dout[1]} channels, an image has 3")
    for axis, name in ((2, "height"), (3, "width")):
        if isinstance(din[axis], int):
            raise OnnxError(f"{path}: exported for one latent size ({din[2]}x{din[3]}): its {name} is not dynamic; "
                            "re-export it with dynamic height and width (export_synthesis)")
        out = dout[axis]
        if isinstance(out, int):
            raise OnnxError(f"{path}: {OUTPUT} has a fixed {name} {out} for a dynamic {INPUT} {name}")
        m = re.fullmatch(r"\s*(\d+)\s*\*\s*(\w+)\s*", out or "")
        if m and m.group(2) == din[axis] and int(m.group(1)) != STRIDE:
            raise OnnxError(f"{path}: upsampling mismatch: {OUTPUT}'s {name} is {out}, {INPUT}'s x{m.group(1)}; "
                            f"a g_s upsamples x{STRIDE}")


def read_metadata(path: str | Path) -> dict:
    """The metadata_props of an ONNX file (after the checks that it is one)."""
    proto = _load_proto(Path(path))
    return {p.key: p.value for p in proto.metadata_props}


def _check_against(path: Path, meta: dict, model) -> None:
    """A file that export_synthesis wrote must hold this model's g_s: same synthesis config, same weights."""
    if META_SYNTHESIS not in meta:
        # a g_s exported elsewhere (or by a tool that drops metadata): the signature checks are all there is,
        # and the output shape at run time
        return
    theirs, ours = json.loads(meta[META_SYNTHESIS]), json.loads(synthesis_json(model.config))
    if theirs != ours:
        diff = "; ".join(f"{k} {theirs.get(k)} vs {ours.get(k)}" for k in sorted(set(theirs) | set(ours))
                         if theirs.get(k) != ours.get(k))
        raise OnnxError(f"{path}: a g_s of another config (config {meta.get(META_CONFIG_ID, '?')}); file vs model: "
                        f"{diff}")
    digest = g_s_digest(model)
    if meta.get(META_DIGEST) != digest:
        raise OnnxError(f"{path}: same g_s config but other weights (file {meta.get(META_DIGEST)}, model {digest}); "
                        "re-export it from this model (export_synthesis)")


class OnnxSynthesis:
    """g_s on onnxruntime (CPUExecutionProvider): ``OnnxSynthesis(path)(y_hat) -> x_hat`` on torch tensors.

    The file is checked before a session is made: an ONNX model, the g_s signature (y_hat (N, 320, h, w) ->
    x_hat (N, 3, 16h, 16w), dynamic h and w) and, with ``model``, that it holds that model's g_s (config and
    weights, from the metadata export_synthesis writes). ``threads``: onnxruntime's intra-op threads (None: its
    default, one per physical core)."""

    def __init__(self, onnx_path: str | Path, threads: int | None = None, model=None):
        import onnxruntime as ort

        self.path = Path(onnx_path)
        proto = _load_proto(self.path)
        _check_signature(self.path, proto)
        self.metadata = {p.key: p.value for p in proto.metadata_props}
        if model is not None:
            _check_against(self.path, self.metadata, model)
        multiple = self.metadata.get(META_MULTIPLE, "1")
        self.latent_multiple = int(multiple) if multiple.isdigit() and int(multiple) > 0 else 1
        self.exporter = self.metadata.get(META_EXPORTER)
        options = ort.SessionOptions()
        if threads is not None:
            if threads < 1:
                raise OnnxError(f"threads must be at least 1 (got {threads})")
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 4  # its errors come back as our one line, not as log lines on stderr
        try:
            self.session = ort.InferenceSession(proto.SerializeToString(), sess_options=options,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime's Fail, InvalidGraph, NotImplemented, ...
            raise OnnxError(f"{self.path}: onnxruntime cannot load it ({_one_line(e)})") from None
        self.threads = threads

    def __repr__(self) -> str:
        return f"OnnxSynthesis({str(self.path)!r}, threads={self.threads})"

    def run(self, y_hat):
        """numpy float32 (N, 320, h, w) -> numpy (N, 3, 16h, 16w)."""
        import numpy as np

        if y_hat.ndim != 4 or y_hat.shape[1] != latent_channels():
            raise OnnxError(f"{self.path}: y_hat must be (N, {latent_channels()}, h, w), got {tuple(y_hat.shape)}")
        n, _, h, w = y_hat.shape
        m = self.latent_multiple
        if h % m or w % m:
            raise OnnxError(f"{self.path}: y_hat is {h}x{w}; this g_s's windows need a multiple of {m} "
                            f"(pad the image to a multiple of {STRIDE * m})")
        try:
            out = self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(y_hat, dtype=np.float32)})[0]
        except Exception as e:  # noqa: BLE001 - onnxruntime's errors at run time
            raise OnnxError(f"{self.path}: onnxruntime failed on y_hat {n}x{latent_channels()}x{h}x{w} "
                            f"({_one_line(e)})") from None
        expected = (n, 3, STRIDE * h, STRIDE * w)
        if tuple(out.shape) != expected:
            raise OnnxError(f"{self.path}: upsampling mismatch: it returned x_hat {tuple(out.shape)} for y_hat "
                            f"{(n, latent_channels(), h, w)}, a g_s returns {expected}")
        return out

    def __call__(self, y_hat: torch.Tensor) -> torch.Tensor:
        out = self.run(y_hat.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(out).to(y_hat.device)


def synthesis_file(model_ref: str | Path, onnx: str | Path | None = None, runtime: str = "torch") -> Path | None:
    """The g_s ONNX file a decompression with ``runtime`` (``"torch"`` or ``"onnx"``) runs, as ``asymllic
    decompress --runtime --onnx`` picks it: ``onnx`` if given (with the onnx runtime only), else ``g_s.onnx`` in
    the export folder ``model_ref``; None for torch. A file that cannot be had is one ``OnnxError`` line."""
    if onnx is not None:
        if runtime != "onnx":
            raise OnnxError("--onnx is for --runtime onnx (add --runtime onnx, or drop --onnx)")
        return Path(onnx)
    if runtime != "onnx":
        return None
    folder = Path(model_ref)
    if not folder.is_dir():
        raise OnnxError("--runtime onnx needs --onnx PATH (a g_s exported with asymllic.codec.onnx_runtime.export_synthesis),"
                        " or --model an export folder holding g_s.onnx")
    path = folder / "g_s.onnx"
    if not path.is_file():
        raise OnnxError(f"{folder} has no g_s.onnx: give --onnx PATH, or export it there "
                        "(asymllic.codec.onnx_runtime.export_synthesis)")
    return path


def load_synthesis(onnx_path: str | Path, model, threads: int | None = None) -> OnnxSynthesis:
    return OnnxSynthesis(onnx_path, threads, model=model)


# --- checking an export against torch ----------------------------------------------------------------------
@torch.no_grad()
def check_synthesis(model, onnx_path: str | Path, image: str | Path | None = None, threads: int | None = None) -> dict:
    """torch's g_s and onnxruntime's on the latents of a real photo (default: the first bundled evaluation photo).

    Returns the image and latent sizes, ``max_abs`` (max |x_torch - x_onnx| on the decoded [0, 1] images),
    ``max_abs_raw`` (before clamping), ``max_levels`` (max difference in uint8 levels, as written to a PNG),
    ``psnr_torch`` and ``psnr_onnx`` against the photo, and ``psnr_diff_db`` (onnx - torch)."""
    from ..data import bundled
    from ..images import pad_to, read_image, to_uint8
    from ..evaluation.metrics import psnr

    image = Path(image) if image is not None else bundled("eval")[0]
    synthesis = OnnxSynthesis(onnx_path, threads, model=model)
    x = read_image(image)
    h, w = x.shape[-2:]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        y_hat = model.entropy_forward(model.g_a(pad_to(x, model.config.pad_multiple()).to(device)),
                                      likelihoods=False)["y_hat"]
        raw_torch = model.g_s(y_hat).float().cpu()
    finally:
        model.train(was_training)
    raw_onnx = synthesis(y_hat).cpu()
    x_torch, x_onnx = (r.clamp(0, 1)[..., :h, :w] for r in (raw_torch, raw_onnx))
    p_torch, p_onnx = psnr(x_torch, x), psnr(x_onnx, x)
    levels = to_uint8(x_torch).astype(int) - to_uint8(x_onnx).astype(int)
    return {"image": str(image), "size": (int(w), int(h)), "latent": tuple(int(v) for v in y_hat.shape[-2:]),
            "exporter": synthesis.exporter, "max_abs": float((x_torch - x_onnx).abs().max()),
            "max_abs_raw": float((raw_torch - raw_onnx).abs().max()), "max_levels": int(abs(levels).max()),
            "psnr_torch": p_torch, "psnr_onnx": p_onnx, "psnr_diff_db": p_onnx - p_torch}
