"""Every preset and 50 sampled configs build, count, decode, and code real files exactly."""
import random

import pytest
import torch

import space
from asymllic.codec.checkpoint import new_codec
from asymllic.codec.coding import compress, decompress, reconstruct
from asymllic.complexity import count
from asymllic.images import read_image, to_uint8
from asymllic.models import build_synthesis
from asymllic.models.hyperprior import build_hyper_decoder

PRESET_NAMES = [n for n in space.list_presets() if n not in ("tcm-middle", "tcm-large", "tcm-small")]


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_codes_a_real_photo_exactly(name, photo_path):
    model = new_codec(space.get_preset(name))
    x = read_image(photo_path)
    data = compress(model, x)
    decoded = decompress(model, data)
    assert decoded.shape == x.shape
    assert torch.equal(torch.from_numpy(to_uint8(decoded)), torch.from_numpy(to_uint8(reconstruct(model, x))))
    with torch.no_grad():
        out = model(torch.nn.functional.pad(x, (0, 56, 0, 120), mode="replicate"))
    assert out["x_hat"].shape == (1, 3, 256, 256) and out["likelihoods"]["y"].shape[1] == 320


def test_fifty_sampled_configs_build_count_and_decode():
    rng = random.Random(2024)
    torch.manual_seed(0)
    for i in range(50):
        cfg = space.config_from_params(space.random_params(rng, "joint"), "joint")
        report = count(cfg, (256, 256), "exact")
        assert report.decoder.macs > 0 and report.decoder.params > 0
        with torch.no_grad():
            g_s = build_synthesis(cfg.synthesis).eval()
            assert g_s(torch.randn(1, 320, 2, 3)).shape == (1, 3, 32, 48), cfg
            h_s = build_hyper_decoder(cfg.hyperprior).eval()
            assert h_s(torch.randn(1, 192, 2, 2)).shape == (1, 320, 8, 8), cfg
        assert sum(p.numel() for p in g_s.parameters()) == report.components["g_s"].params


# --- every declared name has a builder; a registered block validates and builds -------------------------------

@pytest.mark.parametrize("name", space.BLOCKS)
def test_each_declared_block_builds(name):
    from asymllic.layers.factory import create_block

    block = create_block(name, 64, head_dim=16, window=4, shifted=True, mlp_ratio=2.0).eval()
    with torch.no_grad():
        assert block(torch.randn(1, 64, 8, 8)).shape == (1, 64, 8, 8)


@pytest.mark.parametrize("final", [False, True])
@pytest.mark.parametrize("name", space.UPSAMPLERS)
def test_each_declared_upsampler_builds(name, final):
    from asymllic.layers.factory import create_upsampler

    with torch.no_grad():
        assert create_upsampler(name, 32, 16, final).eval()(torch.randn(1, 32, 4, 6)).shape == (1, 16, 8, 12)


def test_a_registered_block_validates_and_builds(monkeypatch):
    from asymllic.layers import factory

    monkeypatch.setattr(factory, "_BLOCKS", dict(factory._BLOCKS))  # leave the registries as they were
    monkeypatch.setattr(space.synthesis, "_REGISTERED_BLOCKS", {})
    with pytest.raises(space.ConfigError, match="synthesis.block"):
        space.SynthesisConfig(block="dwres")
    factory.register_block("dwres", lambda width, head_dim, window, shifted, mlp_ratio: torch.nn.Sequential(
        torch.nn.Conv2d(width, width, 3, padding=1, groups=width), torch.nn.GELU()))
    cfg = space.SynthesisConfig(widths=(96, 64, 48), depths=(1, 0, 2), block="dwres", shift=False)
    with torch.no_grad():
        g_s = build_synthesis(cfg).eval()
        assert g_s(torch.randn(1, 320, 2, 3)).shape == (1, 3, 32, 48)
        h_s = build_hyper_decoder(space.HyperpriorConfig(hs_block="dwres", hs_depth=1)).eval()
        assert h_s(torch.randn(1, 192, 2, 2)).shape == (1, 320, 8, 8)
    assert sum(isinstance(m, torch.nn.GELU) for m in g_s.modules()) == 3


def test_the_import_time_check_catches_a_missing_or_undeclared_builder():
    from asymllic.layers import factory

    factory.check_builders("block", factory._BLOCKS, space.BLOCKS)  # what the import ran
    factory.check_builders("upsampler", factory._UPSAMPLERS, space.UPSAMPLERS)
    for name in space.BLOCKS:
        builders = {k: v for k, v in factory._BLOCKS.items() if k != name}
        with pytest.raises(factory.BuilderMismatch, match=rf"block builders .* no builder for \['{name}'\]"):
            factory.check_builders("block", builders, space.BLOCKS)
    for name in space.UPSAMPLERS:
        builders = {k: v for k, v in factory._UPSAMPLERS.items() if k != name}
        with pytest.raises(factory.BuilderMismatch, match=rf"upsampler builders .* no builder for \['{name}'\]"):
            factory.check_builders("upsampler", builders, space.UPSAMPLERS)
    with pytest.raises(factory.BuilderMismatch, match=r"a builder for \['pixel'\], which space does not declare"):
        factory.check_builders("upsampler", {**factory._UPSAMPLERS, "pixel": factory._subpel}, space.UPSAMPLERS)
    # and importing the factory runs it: a name declared without a builder stops the import
    import subprocess
    import sys

    code = ("import space; space.BLOCKS += ('mamba',)\n"
            "try:\n    import asymllic.layers.factory\nexcept RuntimeError as e:\n    print(e)\nelse:\n    print('imported')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "no builder for ['mamba']" in out, out
