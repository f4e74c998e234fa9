"""How a light part starts from the teacher: none, copy, slice (weight-sharing NAS's overlapping block)."""
import dataclasses

import pytest
import torch

import space
from asymllic.errors import AsymllicError
from asymllic.models import LicCodec
from asymllic.training import StageRun, inherit
from asymllic.training.inherit import slice_into
from asymllic.training.stages import LIGHT_HYPERPRIOR
from conftest import run_cli


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return LicCodec(space.teacher_config(64))


def light(name: str, seed: int = 1) -> LicCodec:
    t = space.teacher_config(64)
    torch.manual_seed(seed)
    return LicCodec(space.CodecConfig(space.get_preset(name).synthesis, t.hyperprior, t.encoder_width))


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sb = b.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("mode", ["none", "copy", "slice"])
def test_everything_outside_the_light_part_is_the_teachers(teacher, mode):
    model = light("g_s/tcm_pruned")
    inherit(model, teacher, ("g_s",), mode)
    for part in ("g_a", "h_a", "h_mean_s", "cc_mean_transforms", "entropy_bottleneck"):
        assert _same(getattr(model, part), getattr(teacher, part)), part


def test_none_keeps_the_seeded_initialisation(teacher):
    fresh, model = light("g_s/ours"), light("g_s/ours")
    report = inherit(model, teacher, ("g_s",), "none")
    assert report == {"mode": "none", "tensors": 0, "share": 0.0}
    assert _same(model.g_s, fresh.g_s)


def test_copy_takes_whole_tensors_whose_name_and_shape_match(teacher):
    fresh, model = light("g_s/ours"), light("g_s/ours")
    report = inherit(model, teacher, ("g_s",), "copy")
    ts, fs = teacher.g_s.state_dict(), fresh.g_s.state_dict()
    for k, v in model.g_s.state_dict().items():
        expected = ts[k] if k in ts and ts[k].shape == v.shape else fs[k]
        assert torch.equal(v, expected), k
    assert 0 < report["share"] < 1 and report["tensors"] > 0
    # TCM_pruned renames nothing but narrows every block: copy finds no whole tensor, slice finds the overlap
    assert inherit(light("g_s/tcm_pruned"), teacher, ("g_s",), "copy")["share"] == 0
    assert inherit(light("g_s/tcm_pruned"), teacher, ("g_s",), "slice")["share"] > 0.5


def test_slice_takes_leading_channels_and_centred_taps():
    own, src = torch.zeros(2, 3, 3, 3), torch.arange(4 * 5 * 5 * 5, dtype=torch.float).reshape(4, 5, 5, 5)
    assert slice_into(own, src, "g_s.0.conv.weight") == own.numel()
    assert torch.equal(own, src[:2, :3, 1:4, 1:4])
    wide = torch.zeros(6, 2, 7, 7)  # wider than the teacher: its overlap is filled, the rest kept
    slice_into(wide, src, "g_s.0.conv.weight")
    assert torch.equal(wide[:4, :2, 1:6, 1:6], src[:, :2]) and wide[4:].abs().sum() == 0 and wide[:, :, 0].abs().sum() == 0
    table = torch.zeros(2, 3, 3)  # relative-position bias of a 2x2 window from a 4x4 one: the centred offsets
    big = torch.randn(4, 7, 7)
    slice_into(table, big, "g_s.1.attn.relative_position_params")
    assert torch.equal(table, big[:2, 2:5, 2:5])


def test_slice_keeps_q_k_v_apart_in_a_fused_projection():
    src = torch.cat([torch.full((4, 4), v) for v in (1.0, 2.0, 3.0)])  # [q | k | v] of a width-4 layer
    own = torch.zeros(6, 2)  # [q | k | v] of a width-2 layer
    slice_into(own, src, "g_s.1.attn.embedding_layer.weight")
    assert own[:2].eq(1).all() and own[2:4].eq(2).all() and own[4:].eq(3).all()


def test_slice_fills_every_matching_tensor_and_never_changes_a_shape(teacher):
    model = light("g_s/tcm_pruned")
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    report = inherit(model, teacher, ("g_s",), "slice")
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes
    w = model.g_s.state_dict()
    ts = teacher.g_s.state_dict()
    sliced = [k for k, v in w.items() if k in ts and ts[k].dim() == v.dim() and ts[k].shape != v.shape
              and v.is_floating_point()]
    plain = [k for k in sliced if "embedding_layer" not in k and not k.endswith("relative_position_params")]
    assert plain and report["tensors"] >= len(sliced)
    for k in plain:  # leading channels (fused q|k|v and bias tables: the tests above)
        a = tuple(slice(0, min(x, y)) for x, y in zip(w[k].shape[:2], ts[k].shape[:2]))
        if w[k].dim() < 4 or w[k].shape[2:] == ts[k].shape[2:]:
            assert torch.equal(w[k][a], ts[k][a]), k


def test_hyperprior_light_parts_inherit_too(teacher):
    t = space.teacher_config(64)
    model = LicCodec(dataclasses.replace(t, hyperprior=space.get_preset("hp/slices_2").hyperprior))
    assert inherit(model, teacher, LIGHT_HYPERPRIOR, "slice")["share"] > \
        inherit(LicCodec(model.config), teacher, LIGHT_HYPERPRIOR, "none")["share"] == 0
    assert _same(model.entropy_bottleneck, teacher.entropy_bottleneck) and _same(model.h_a, teacher.h_a)


def test_an_unknown_mode_is_one_clear_error(tmp_path):
    with pytest.raises(AsymllicError, match="unknown inherit mode 'all'; choose one of none, copy, slice"):
        StageRun(tmp_path, inherit="all")
    r = run_cli("train", "stage1", "--teacher", "x", "--inherit", "all", check=False)
    assert r.returncode == 2 and "invalid choice: 'all'" in r.stderr
