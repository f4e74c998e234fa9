"""g_s on onnxruntime: export with dynamic sizes, agreement with torch, decoding real files, one-line errors.

The tolerance: on untrained presets, onnxruntime's x_hat differs from torch's by at most ~1e-6 on [0, 1]
images (measured: paper 5e-7, teacher 6e-7 at 200x136 and 451x300), so TOL = 1e-4 leaves a 100x margin; in
uint8 levels (what a PNG holds) the difference is at most 1, where a value sits on a rounding boundary.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import run_cli
from PIL import Image

TOL = 1e-4  # max |x_torch - x_onnx| on [0, 1] images
MAX_LEVELS = 1  # max difference in uint8 levels


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """preset -> (model, g_s.onnx), exported once per preset with the default exporter."""
    from asymllic.codec.onnx_runtime import export_synthesis
    from asymllic.codec.reference import load_model

    cache = {}

    def get(preset: str):
        if preset not in cache:
            model = load_model(preset, "cpu")
            path = export_synthesis(model, tmp_path_factory.mktemp(f"onnx_{preset}") / "g_s.onnx")
            cache[preset] = (model, path)
        return cache[preset]

    return get


@pytest.fixture(scope="module")
def teacher_alic(tmp_path_factory, photo_path):
    out = tmp_path_factory.mktemp("alic") / "astronaut.alic"
    run_cli("compress", photo_path, out, "--model", "teacher")
    return out


def one_line_error(proc, *phrases) -> str:
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "\n" not in err and err.startswith("asymllic: error: "), err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in err, err
    return err


@pytest.mark.parametrize("preset", ["paper", "teacher"])
def test_export_has_dynamic_batch_height_width(exported, preset):
    import onnx

    from asymllic.codec.onnx_runtime import read_metadata, synthesis_json

    model, path = exported(preset)
    graph = onnx.load(path).graph
    dims = [[d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim] for v in (graph.input[0], graph.output[0])]
    assert dims == [["N", 320, "h", "w"], ["N", 3, "16*h", "16*w"]]
    meta = read_metadata(path)
    assert meta["asymllic.exporter"] == "dynamo"  # torch's default exporter handles the window attention
    assert meta["asymllic.synthesis"] == synthesis_json(model.config)


@pytest.mark.parametrize("preset", ["paper", "teacher"])
def test_onnxruntime_matches_torch_at_another_size(exported, preset, photo_path):
    from asymllic.codec.onnx_runtime import EXPORT_LATENT, OnnxSynthesis, check_synthesis

    model, path = exported(preset)
    # the photo: 200x136 padded to 256x256 -> 16x16 latents, the graph was traced on 8x8
    report = check_synthesis(model, path, photo_path, threads=2)
    assert report["size"] == (200, 136) and report["latent"] == (16, 16) != EXPORT_LATENT
    assert report["max_abs"] < TOL and report["max_abs_raw"] < TOL, report
    assert report["max_levels"] <= MAX_LEVELS, report
    assert abs(report["psnr_diff_db"]) < 1e-3, report
    # a batch of two, not square (shifted windows wrap at another place, the reshapes see other H and W)
    y_hat = torch.randn(2, 320, 12, 20)
    with torch.no_grad():
        ref = model.g_s(y_hat)
    out = OnnxSynthesis(path, threads=2, model=model)(y_hat)
    assert out.shape == ref.shape == (2, 3, 192, 320)
    assert (out - ref).abs().max().item() < TOL


def test_torchscript_exporter_is_dynamic_too(tmp_path, photo_path):
    from asymllic.codec.onnx_runtime import check_synthesis, export_synthesis
    from asymllic.codec.reference import load_model

    model = load_model("teacher", "cpu")
    path = export_synthesis(model, tmp_path / "g_s.onnx", exporter="torchscript")
    report = check_synthesis(model, path, photo_path, threads=2)
    assert report["exporter"] == "torchscript" and report["latent"] == (16, 16)
    assert report["max_abs"] < TOL and report["max_levels"] <= MAX_LEVELS, report


def test_decompress_with_onnx_synthesis_decodes_the_same_latents(exported, teacher_alic):
    from asymllic.codec.coding import decompress
    from asymllic.codec.onnx_runtime import OnnxSynthesis
    from asymllic.images import to_uint8

    model, path = exported("teacher")
    data = teacher_alic.read_bytes()
    seen = {}

    def recorder(name, g_s):
        def run(y_hat):
            seen[name] = y_hat.clone()
            return g_s(y_hat)
        return run

    x_torch = decompress(model, data, synthesis=recorder("torch", model.g_s))
    x_onnx = decompress(model, data, synthesis=recorder("onnx", OnnxSynthesis(path, threads=2, model=model)))
    assert torch.equal(seen["torch"], seen["onnx"])  # the entropy decoding is exact: g_s sees the same y_hat
    assert torch.equal(x_torch, decompress(model, data))  # the recorder itself changes nothing
    assert x_onnx.shape == x_torch.shape == (1, 3, 136, 200)
    assert (x_onnx - x_torch).abs().max().item() < TOL
    assert np.abs(to_uint8(x_onnx).astype(int) - to_uint8(x_torch).astype(int)).max() <= MAX_LEVELS


def test_cli_decompress_runtime_onnx(exported, teacher_alic, photo_path, tmp_path, monkeypatch):
    import space
    from asymllic.codec.checkpoint import save_codec
    from asymllic.codec.coding import decompress
    from asymllic.codec.onnx_runtime import OnnxSynthesis
    from asymllic.images import pad_to, read_image, to_uint8

    model, path = exported("teacher")
    calls = []
    call = OnnxSynthesis.__call__
    monkeypatch.setattr(OnnxSynthesis, "__call__", lambda self, y: calls.append(y.clone()) or call(self, y))
    onnx_png = tmp_path / "onnx.png"
    proc = run_cli("decompress", teacher_alic, onnx_png, "--model", "teacher", "--runtime", "onnx", "--onnx", path)
    assert "onnxruntime" in proc.stdout and len(calls) == 1
    # the y_hat onnxruntime got is what the encoder quantised (forward in eval mode = decompress)
    with torch.no_grad():
        x = pad_to(read_image(photo_path), model.config.pad_multiple())
        y_hat = model.entropy_forward(model.g_a(x), likelihoods=False)["y_hat"]
    assert torch.equal(calls[0], y_hat)
    a = to_uint8(decompress(model, teacher_alic.read_bytes())).astype(int)  # torch's decode, as its PNG holds it
    b = np.asarray(Image.open(onnx_png), dtype=int)
    assert a.shape == b.shape == (136, 200, 3)
    assert np.abs(a - b).max() <= MAX_LEVELS
    assert (a != b).mean() < 0.01  # a level off only where a value sits on a rounding boundary

    # an export folder: its g_s.onnx is the default
    folder = tmp_path / "export"
    space.save(model.config, folder / "config.json")
    save_codec(model, folder / "codec.pt")
    (folder / "g_s.onnx").write_bytes(path.read_bytes())
    out = tmp_path / "folder.png"
    proc = run_cli("decompress", teacher_alic, out, "--model", folder, "--runtime", "onnx")
    assert str(folder / "g_s.onnx") in proc.stdout and len(calls) == 2
    assert np.array_equal(np.asarray(Image.open(out), dtype=int), b)


def _crafted(tmp_path, name: str, channels: int = 320, up: int = 16):
    """A minimal ONNX 'g_s' (one ConvTranspose): y_hat (N, channels, h, w) -> x_hat (N, 3, up*h, up*w)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("y_hat", TensorProto.FLOAT, ["N", channels, "h", "w"])
    y = helper.make_tensor_value_info("x_hat", TensorProto.FLOAT, ["N", 3, f"{up}*h", f"{up}*w"])
    weight = helper.make_tensor("W", TensorProto.FLOAT, [channels, 3, up, up], np.zeros(channels * 3 * up * up, np.float32))
    node = helper.make_node("ConvTranspose", ["y_hat", "W"], ["x_hat"], strides=[up, up], kernel_shape=[up, up])
    graph = helper.make_graph([node], "g_s", [x], [y], [weight])
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def test_cli_bad_onnx_files_are_one_line_errors(exported, teacher_alic, photo_path, tmp_path):
    _, paper_onnx = exported("paper")
    _, teacher_onnx = exported("teacher")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(teacher_onnx.read_bytes()[: teacher_onnx.stat().st_size // 2])
    cases = {
        "not_onnx": (photo_path, "not an ONNX model, or a truncated one"),
        "truncated": (truncated, "not an ONNX model, or a truncated one"),
        "other_config": (paper_onnx, "a g_s of another config"),
        "channels": (_crafted(tmp_path, "channels", channels=192), "input channel mismatch: y_hat has 192 channels"),
        "upsampling": (_crafted(tmp_path, "upsampling", up=8), "upsampling mismatch"),
        "missing": (tmp_path / "none.onnx", "no such ONNX file"),
    }
    for name, (onnx_path, phrase) in cases.items():
        out = tmp_path / f"{name}.png"
        proc = run_cli("decompress", teacher_alic, out, "--model", "teacher", "--runtime", "onnx", "--onnx", onnx_path,
                       check=False)
        err = one_line_error(proc, phrase, str(onnx_path))
        assert len(err) < 600, err
        assert not out.exists()
    # the teacher's own g_s.onnx with the paper model: refused the same way
    paper_alic = tmp_path / "paper.alic"
    run_cli("compress", photo_path, paper_alic, "--model", "paper")
    proc = run_cli("decompress", paper_alic, tmp_path / "p.png", "--model", "paper", "--runtime", "onnx", "--onnx",
                   teacher_onnx, check=False)
    one_line_error(proc, "a g_s of another config", "block convtrans vs wtb")


def test_cli_onnx_path_errors(teacher_alic, tmp_path):
    import space
    from asymllic.codec.checkpoint import new_codec, save_codec

    proc = run_cli("decompress", teacher_alic, tmp_path / "a.png", "--model", "teacher", "--runtime", "onnx", check=False)
    one_line_error(proc, "--runtime onnx needs --onnx PATH")
    proc = run_cli("decompress", teacher_alic, tmp_path / "a.png", "--model", "teacher", "--onnx", "g_s.onnx", check=False)
    one_line_error(proc, "--onnx is for --runtime onnx")
    folder = tmp_path / "export"
    config = space.get_preset("teacher")
    space.save(config, folder / "config.json")
    save_codec(new_codec(config), folder / "codec.pt")
    proc = run_cli("decompress", teacher_alic, tmp_path / "a.png", "--model", folder, "--runtime", "onnx", check=False)
    one_line_error(proc, f"{folder} has no g_s.onnx")
    assert not (tmp_path / "a.png").exists()


def test_other_weights_and_unaligned_latents_are_refused(exported):
    from asymllic.codec.onnx_runtime import OnnxError, OnnxSynthesis
    from asymllic.codec.reference import load_model

    model, path = exported("teacher")
    with pytest.raises(OnnxError, match="same g_s config but other weights"):
        OnnxSynthesis(path, model=load_model("teacher", "cpu", seed=1))
    synthesis = OnnxSynthesis(path, model=model)
    with pytest.raises(OnnxError, match="need a multiple of 4"):  # the windows would not tile: refused, not mis-run
        synthesis(torch.zeros(1, 320, 5, 8))
    with pytest.raises(OnnxError, match=r"y_hat must be \(N, 320, h, w\)"):
        synthesis(torch.zeros(1, 192, 8, 8))


def test_export_with_onnx_writes_a_checked_g_s_that_decompress_uses(tmp_path, photo_path):
    """`asymllic export --onnx` (here its library call) writes g_s.onnx beside codec.pt, checked against torch on a
    photo (the card says by how much); `decompress --runtime onnx --model <folder>` decodes through it."""
    import json

    import pandas as pd

    import space
    from asymllic.codec.checkpoint import new_codec, save_codec
    from search.export import export

    cfg = space.get_preset("paper")
    ckpt = save_codec(new_codec(cfg), tmp_path / "trial0.pt")
    df = pd.DataFrame([{"number": 0, "state": "COMPLETE", "preset": None, "config_id": space.config_id(cfg),
                        "psnr": 25.0, "bpp": 0.5, "decoder_gmacs": 81.3, "pareto": True,
                        "config_json": json.dumps(space.to_dict(cfg)), "checkpoint": str(ckpt)}])
    (done,) = export(df, {"study": "s", "part": "synthesis"}, tmp_path / "export", trial=0, onnx=True)
    assert (done.folder / "g_s.onnx").is_file()
    card = (done.folder / "card.md").read_text()
    assert "g_s.onnx (onnxruntime)" in card and "max abs difference" in card
    alic = tmp_path / "x.alic"
    run_cli("compress", photo_path, alic, "--model", done.folder)
    proc = run_cli("decompress", alic, tmp_path / "x.png", "--model", done.folder, "--runtime", "onnx")
    assert str(done.folder / "g_s.onnx") in proc.stdout
    assert Image.open(tmp_path / "x.png").size == (200, 136)
