"""Complexity figures: the paper's Table I-III in the thop convention, exact counts against real tensors."""
import json

import pytest
import torch

import space
from asymllic.complexity import count
from asymllic.report import paper_target
from conftest import ANCHORS, run_cli

TABLES = json.loads((ANCHORS / "asymllic_paper_tables.json").read_text())


def test_tcm_small_thop_matches_table_I_within_1pct():
    proc = run_cli("complexity", "tcm-small", "--json", "--convention", "thop")
    r = json.loads(proc.stdout)
    _, dec_p, dec_m, tot_p, tot_m = TABLES["table_I_systems"]["rows"]["TCM"]
    assert r["decoder"]["params"] / 1e6 == pytest.approx(dec_p, rel=0.01)
    assert r["decoder"]["macs"] / 1e9 == pytest.approx(dec_m, rel=0.01)
    assert r["total"]["params"] / 1e6 == pytest.approx(tot_p, rel=0.01)
    assert r["total"]["macs"] / 1e9 == pytest.approx(tot_m, rel=0.01)
    assert set(r["components"]) == {"g_a", "h_a", "g_s", "hyperprior"}
    assert r["size"] == [768, 512] and r["convention"] == "thop"
    assert all(isinstance(r[k][f], int) for k in ("encoder", "decoder", "total") for f in ("params", "macs"))


ANCHORED = [n for n in space.list_presets() if space.PRESETS[n].anchor]


@pytest.mark.parametrize("name", ANCHORED)
def test_presets_match_the_paper_within_3pct(name):
    component, values = paper_target(name, TABLES)
    r = count(space.get_preset(name), (768, 512), "thop")
    if component == "total":  # Table I rows: decoder and total
        got = [r.decoder.params / 1e6, r.decoder.macs / 1e9, r.total.params / 1e6, r.total.macs / 1e9]
        want = values[:4]
    else:
        c = r.components[component]
        got, want = [c.params / 1e6, c.macs / 1e9], values[:2]
    for g, w in zip(got, want):
        assert g == pytest.approx(w, rel=0.03), (name, got, want)


@pytest.mark.parametrize("convention", ["exact", "thop"])
def test_per_layer_adds_up(convention):
    r = count(space.get_preset("paper"), (768, 512), convention)
    assert sum(layer.macs for layer in r.layers) == r.total.macs
    assert sum(layer.params for layer in r.layers) == r.total.params
    for comp, c in r.components.items():
        assert sum(l.macs for l in r.layers if l.component == comp) == c.macs


def test_a_count_does_not_depend_on_what_was_counted_before():
    """Parts and blocks met before are reused (shared parts, copied blocks, replayed calls): every figure equals a
    count with all of that emptied, at two sizes, for configs drawn as a search draws them."""
    import random

    from asymllic import complexity

    def figures(r):
        return r.components, [(l.name, l.type, l.params, l.macs) for l in r.layers], r.activation_bytes

    rng = random.Random(3)
    base = space.get_preset("paper")
    configs = [space.config_from_params(space.random_params(rng, part), part, base)
               for part in ("synthesis", "hyperprior", "joint") for _ in range(2)]
    sizes = [(256, 256), (384, 256)]
    conventions = ("exact", "thop")
    kept = {(c, s): [figures(count(c, s, conv)) for conv in conventions] for c in configs for s in sizes}
    for (c, s), expected in kept.items():
        complexity.forget()
        assert [figures(count(c, s, conv)) for conv in conventions] == expected, (c, s)


def test_exact_counts_every_parameter():
    from asymllic.models import LicCodec

    cfg = space.get_preset("paper")
    assert count(cfg, (256, 256)).total.params == sum(p.numel() for p in LicCodec(cfg).parameters())


@pytest.mark.parametrize("name", ["teacher", "paper"])
def test_exact_agrees_with_real_tensor_flop_counter(name):
    from torch.utils.flop_counter import FlopCounterMode

    from asymllic.models import LicCodec

    cfg = space.get_preset(name)
    model = LicCodec(cfg).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.rand(1, 3, 128, 192), likelihoods=False)
    assert count(cfg, (192, 128), "exact").total.macs == fc.get_total_flops() // 2


def test_thop_misses_what_exact_counts():
    t = count(space.get_preset("teacher"), (768, 512), "thop")
    e = count(space.get_preset("teacher"), (768, 512), "exact")
    assert e.total.macs > t.total.macs and e.total.params > t.total.params
    assert e.total.macs / 1e9 == pytest.approx(220.05, abs=0.01)
    assert e.decoder.macs / 1e9 == pytest.approx(150.29, abs=0.01)
    assert e.total.params == 45180752


def test_cli_per_layer_and_config_file(tmp_path):
    path = space.save(space.get_preset("g_s/ours"), tmp_path / "ours.yaml")
    r = json.loads(run_cli("complexity", path, "--json", "--per-layer", "--size", "512x512").stdout)
    assert r["size"] == [512, 512] and r["layers"]
    assert sum(l["macs"] for l in r["layers"]) == r["total"]["macs"]
    bad = run_cli("complexity", "teacher", "--size", "16x16", check=False)
    assert bad.returncode == 2 and "window" in bad.stderr and "Traceback" not in bad.stderr


def test_memory_estimate_is_counted_without_allocating(tmp_path):
    import gc

    import psutil
    from dataclasses import replace

    from asymllic.errors import LimitError
    from asymllic.limits import Limits, check
    from asymllic.models.meta import meta_model

    teacher = space.get_preset("teacher")
    assert all(p.is_meta for p in meta_model(teacher).parameters())
    small, large = count(teacher, (384, 256)), count(teacher, (768, 512))
    assert small.activation_bytes > 3 * 384 * 256 * 4  # more than the image itself
    assert 3.5 < large.activation_bytes / small.activation_bytes < 4.5  # activations grow with the pixels
    assert large.memory_bytes == 4 * large.total.params + large.activation_bytes
    assert count(teacher, (768, 512), "thop").activation_bytes == pytest.approx(large.activation_bytes, rel=1e-3)
    # a 156 M-parameter config at 4096x4096 (about 100 GiB) is refused without allocating it
    big = replace(teacher, synthesis=replace(teacher.synthesis, widths=(512, 512, 512), depths=(8, 8, 8),
                                             head_dims=(32, 32, 32)))
    gc.collect()
    rss = psutil.Process().memory_info().rss
    with pytest.raises(LimitError, match="GiB for a 4096x4096 image"):
        check(big, (4096, 4096), Limits(max_memory_gb=32))
    assert psutil.Process().memory_info().rss - rss < 150 * 2**20  # its weights alone would be 623 MB
    with pytest.raises(LimitError, match="--max-gmacs"):
        check(teacher, (768, 512), Limits(max_gmacs=100))
    assert check(teacher, (768, 512), Limits(max_gmacs=300, max_memory_gb=4)).total.macs > 200e9


def test_figure_commands(tmp_path, teacher_ckpt):
    out = run_cli("figure", "layers", "paper", "--out", tmp_path).stdout.split()
    assert out and all(p.endswith(".html") and (tmp_path / p.rsplit("/", 1)[-1]).is_file() for p in out)
    for model, label in (("paper", "random init"), (str(teacher_ckpt), "trained")):
        html = run_cli("figure", "erf", model, "--latent", "8x8", "--out", tmp_path).stdout.split()[0]
        assert label in open(html).read()


# --- the thop convention against thop itself (counting never imports it) -------------------------------------
def _thop_profile(cfg, size) -> tuple:
    """``thop.profile`` on a fresh meta model of ``cfg``: its per-layer rows (name, type, params, MACs) and the
    per-component sums, as the thop convention reports them."""
    thop = pytest.importorskip("thop")
    from asymllic.complexity import COMPONENTS, Count, component_of
    from asymllic.models.meta import meta_model

    model = meta_model(cfg).eval()
    width, height = size
    x = torch.empty(1, 3, height, width, device="meta")
    _, _, tree = thop.profile(model, inputs=(x, False), verbose=False, ret_layer_info=True)
    modules = dict(model.named_modules())
    rows = []

    def walk(prefix: str, node: dict):
        for name, (ops, params, children) in node.items():
            full = prefix + name
            if children:
                walk(full + ".", children)
            elif ops or params:
                rows.append((full, type(modules[full]).__name__, int(round(params)), int(round(ops))))

    walk("", tree)
    components = {c: Count() for c in COMPONENTS}
    for full, _, params, macs in rows:
        components[component_of(full)] = components[component_of(full)] + Count(params, macs)
    return rows, components


def _assert_same_as_thop(cfg, size):
    rows, components = _thop_profile(cfg, size)
    r = count(cfg, size, "thop")
    assert r.components == components
    assert [(l.name, l.type, l.params, l.macs) for l in r.layers] == rows


@pytest.mark.parametrize("name", space.list_presets())
def test_thop_convention_equals_thop_profile_on_every_preset(name):
    _assert_same_as_thop(space.get_preset(name), (768, 512))


def test_thop_convention_equals_thop_profile_on_sampled_configs():
    import random

    rng = random.Random(11)
    base = space.get_preset("paper")
    for part in ("synthesis", "hyperprior", "joint"):
        for _ in range(2):
            _assert_same_as_thop(space.config_from_params(space.random_params(rng, part), part, base), (384, 256))


def test_thop_rules_equal_thop_on_every_module_type_it_has_a_rule_for():
    """Each rule of the table, on module types the presets lack too, against thop's on real tensors."""
    thop = pytest.importorskip("thop")
    from thop.profile import register_hooks

    import torch.nn as nn
    from asymllic.complexity import _THOP_RULES, _THOP_UNSUPPORTED, _thop_ops

    assert set(_THOP_RULES) | _THOP_UNSUPPORTED | {nn.Sequential} == set(register_hooks)
    net = nn.Sequential(
        nn.ZeroPad2d(1), nn.Conv2d(4, 6, 3, stride=2, groups=2), nn.BatchNorm2d(6), nn.PReLU(), nn.ReLU6(),
        nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1, bias=False), nn.InstanceNorm2d(4), nn.LeakyReLU(),
        nn.Dropout(), nn.MaxPool2d(2), nn.AvgPool2d(2), nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.UpsamplingNearest2d(scale_factor=2), nn.Upsample(scale_factor=3, mode="bicubic"), nn.AdaptiveAvgPool2d(3),
        nn.AdaptiveMaxPool2d(2), nn.PixelShuffle(2), nn.Softmax(dim=1), nn.Flatten(), nn.LayerNorm(16),
        nn.Linear(16, 5), nn.Softmax(dim=-1))
    shapes = {}

    def keep(m, x, y):
        shapes[m] = (tuple(x[0].shape), tuple(y.shape))

    for m in net:
        m.register_forward_hook(keep)
    x = torch.rand(2, 4, 9, 11)
    _, _, tree = thop.profile(net, inputs=(x,), verbose=False, ret_layer_info=True)
    for (i, m), (ops, params, _) in zip(enumerate(net), tree.values()):
        if type(m) in _THOP_RULES:
            assert _thop_ops(m, (object(), *shapes[m])) == int(round(ops)), (i, m)  # (a key of its own)


def test_counting_works_without_thop(monkeypatch):
    """thop imports distutils, gone from Python 3.12: counting (both conventions) must not need it."""
    import sys

    from asymllic import complexity

    teacher = space.get_preset("teacher")
    expected = {c: count(teacher, (384, 256), c) for c in complexity.CONVENTIONS}
    for name in [n for n in sys.modules if n == "thop" or n.startswith("thop.")] + ["thop"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError):
        import thop  # noqa: F401
    complexity.forget()
    for convention, want in expected.items():
        got = count(teacher, (384, 256), convention)
        assert (got.components, got.layers, got.activation_bytes) == (want.components, want.layers,
                                                                       want.activation_bytes)
    assert expected["thop"].total.macs > 0
