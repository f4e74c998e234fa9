"""Every preset and 50 sampled configs build, count, decode, and code real files exactly."""
import random

import pytest
import torch

import space
from asymllic.checkpoint import new_codec
from asymllic.coding import compress, decompress, reconstruct
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
