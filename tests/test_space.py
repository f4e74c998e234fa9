import json
import random
import subprocess
import sys

import pytest

import space
from space import ConfigError, HyperpriorConfig, SynthesisConfig


def test_space_imports_no_torch():
    code = "import space, sys; space.get_preset('paper'); assert 'torch' not in sys.modules, 'space imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", space.list_presets())
def test_presets_round_trip_json_and_yaml(name):
    cfg = space.get_preset(name)
    assert space.loads(space.dumps(cfg)) == cfg
    assert space.loads(space.dumps(cfg, "yaml"), "yaml") == cfg
    assert space.config_id(space.loads(space.dumps(cfg))) == space.config_id(cfg)


def test_config_id_is_stable_and_order_free():
    cfg = space.get_preset("paper")
    data = space.to_dict(cfg)
    shuffled = {k: data[k] for k in reversed(list(data))}
    assert space.config_id(space.from_dict(shuffled)) == space.config_id(cfg)
    assert len(space.config_id(cfg)) == 12
    assert space.config_id(cfg) != space.config_id(space.get_preset("teacher"))
    # the id is a hash of the canonical form: a fixed config has a fixed id on every machine
    assert space.config_id(space.teacher_config(64)) == space.config_id(space.from_dict({}))


def test_teacher_preset_is_tcm_small():
    t = space.get_preset("teacher")
    assert t.encoder_width == 64
    assert t.synthesis == SynthesisConfig() and t.hyperprior == HyperpriorConfig()
    assert t.synthesis.widths == (128, 128, 128) and t.synthesis.head_dims == (32, 16, 8)
    assert t.hyperprior.num_slices == 5 and t.hyperprior.attn_dim == 128 and t.hyperprior.slice_hidden == (224, 128)


@pytest.mark.parametrize("make, field", [
    (lambda: HyperpriorConfig(num_slices=3), "hyperprior.num_slices"),
    (lambda: SynthesisConfig(window=7), "synthesis.window"),
    (lambda: SynthesisConfig(widths=(128, -8, 64)), "synthesis.widths[1]"),
    (lambda: SynthesisConfig(widths=(128, 96)), "synthesis.widths"),
    (lambda: SynthesisConfig(block="mamba"), "synthesis.block"),
    (lambda: SynthesisConfig(upsamplers=("rbu", "rbu", "pixel", "subpel")), "synthesis.upsamplers[2]"),
    (lambda: SynthesisConfig(head_dims=(24, 16, 8)), "synthesis.head_dims[0]"),  # 24 does not divide 64
    (lambda: SynthesisConfig(widths=("128", 128, 128)), "synthesis.widths[0]"),
    (lambda: SynthesisConfig(widths=(128, 4096, 128)), "synthesis.widths[1]"),  # beyond the space
    (lambda: SynthesisConfig(depths=(2, 2, 100)), "synthesis.depths[2]"),
    (lambda: HyperpriorConfig(slice_hidden=(224, 128, 96, 64, 32)), "hyperprior.slice_hidden"),
    (lambda: SynthesisConfig(shift="yes"), "synthesis.shift"),
    (lambda: HyperpriorConfig(attn_dim=100, attn_head_dim=16), "hyperprior.attn_head_dim"),
    (lambda: HyperpriorConfig(hs_width=-1), "hyperprior.hs_width"),
    (lambda: HyperpriorConfig(slice_hidden=()), "hyperprior.slice_hidden"),
    (lambda: space.from_dict({"synthesis": {"widht": [1, 2, 3]}}), "synthesis.widht"),
    (lambda: space.from_dict({"decoder": {}}), "codec.decoder"),
    (lambda: space.from_dict({"encoder_width": 70}), "codec.encoder_width"),
    (lambda: space.loads("{not json"), "config"),
    (lambda: space.get_preset("nope"), "preset"),
])
def test_invalid_configs_name_the_field(make, field):
    with pytest.raises(ConfigError) as e:
        make()
    assert e.value.field == field
    assert str(e.value).startswith(field + ":")


def test_error_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"choose one of \[1, 2, 4, 5, 8, 10"):
        HyperpriorConfig(num_slices=3)


def test_window_larger_than_the_feature_map_is_refused():
    cfg = space.get_preset("teacher")
    cfg.check_size(768, 512)
    with pytest.raises(ConfigError, match="synthesis.window"):
        cfg.check_size(32, 32)  # stride-8 map is 4x4 < window 8


def test_random_sampling_covers_valid_configs():
    rng = random.Random(0)
    ids = set()
    for _ in range(300):
        cfg = space.config_from_params(space.random_params(rng, "joint"), "joint")
        ids.add(space.config_id(cfg))
    assert len(ids) > 250


def test_optuna_trial_sampling_is_conditional():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = []

    def objective(trial):
        cfg = space.sample_config(trial, "joint")
        seen.append((cfg, dict(trial.params)))
        return 0.0

    study.optimize(objective, n_trials=40)
    assert len(seen) == 40
    for cfg, params in seen:
        if params["g_block"] == "res" or not any(params[f"g_depth_{i}"] for i in range(3)):
            assert "g_window" not in params and "g_shift" not in params
        if params["h_attn_dim"] == 0:
            assert "h_attn_heads" not in params
        assert space.config_from_params(params, "joint") == cfg


def test_ray_param_space_maps_to_the_same_configs():
    from search.ray_backend import param_space

    ps = param_space("joint")
    assert set(ps) == {a.name for a in space.axes("joint")}
    for _ in range(20):  # every draw from Ray's own domains gives a valid config
        flat = {name: dom.sample() for name, dom in ps.items()}
        assert isinstance(space.config_from_params(flat, "joint"), space.CodecConfig)


def test_yaml_file_round_trip(tmp_path):
    cfg = space.get_preset("hp/slices_2")
    p = space.save(cfg, tmp_path / "c.yaml")
    assert space.load(p) == cfg
    q = space.save(cfg, tmp_path / "c.json")
    assert json.loads(q.read_text())["hyperprior"]["num_slices"] == 2


@pytest.mark.parametrize("part", ["synthesis", "hyperprior", "joint"])
@pytest.mark.parametrize("name", ["teacher", "paper"])
def test_presets_are_points_of_the_sampled_space(name, part):
    cfg = space.get_preset(name)
    params = space.params_from_config(cfg, part)
    assert space.config_from_params(params, part, cfg) == cfg


def test_max_support_all_is_canonical():
    assert HyperpriorConfig(num_slices=5, max_support=5) == HyperpriorConfig(num_slices=5, max_support=-1)
    assert HyperpriorConfig(num_slices=10, max_support=4).max_support == 4


# --- the axes: one declaration per field, both directions from it ---------------------------------------------

def test_every_axis_sets_a_field_of_its_section():
    import dataclasses

    sections = {"synthesis": SynthesisConfig, "hyperprior": HyperpriorConfig}
    for ax in space.axes("joint"):
        assert ax.section == {"g": "synthesis", "h": "hyperprior"}[ax.name[0]], ax.name
        for section, name, index in ax.targets:
            assert name in {f.name for f in dataclasses.fields(sections[section])}, (ax.name, name)
            assert index is None or isinstance(getattr(sections[section](), name), tuple), (ax.name, name)
    with pytest.raises(ValueError, match="not 'section.name'"):
        space.Axis("x_bad", (1, 2), field="widths")


@pytest.mark.parametrize("part", ["synthesis", "hyperprior", "joint"])
def test_sampled_configs_round_trip_through_params(part):
    rng = random.Random(11)
    for _ in range(300):
        params = space.random_params(rng, part)
        cfg = space.config_from_params(params, part)
        back = space.params_from_config(cfg, part)
        assert space.config_from_params(back, part, cfg) == cfg
        # the axis values come back as sampled, except a max_support that means "all" (stored as -1)
        sampled = space.applicable(params, part)
        if cfg.hyperprior.max_support == -1 and "h_max_support" in sampled:
            sampled["h_max_support"] = -1
        assert back == sampled


def test_heads_set_head_dims_through_the_attention_width():
    params = space.params_from_config(space.get_preset("teacher"), "synthesis")
    assert [params[f"g_heads_{i}"] for i in range(3)] == [2, 4, 8]  # 64 / (32, 16, 8): convtrans halves 128
    params.update(g_block="wtb", g_heads_0=8)
    assert space.config_from_params(params, "synthesis").synthesis.head_dims == (16, 32, 16)  # 128 / (8, 4, 8)


def test_fields_of_axes_that_do_not_apply_take_the_defaults():
    params = space.params_from_config(space.get_preset("teacher"), "joint")
    params.update(g_block="res", h_num_slices=1, h_attn_dim=0, h_hs_depth=0, h_slice_depth=1)
    cfg = space.config_from_params(params, "joint")
    s, h, d = cfg.synthesis, cfg.hyperprior, HyperpriorConfig()
    assert s.shift is False  # the one axis whose field does not keep the class default
    assert (s.head_dims, s.window, s.mlp_ratio) == (SynthesisConfig().head_dims, 8, 4.0)
    assert h.max_support == -1
    assert (h.attn_head_dim, h.attn_depth, h.attn_res_units) == (d.attn_head_dim, d.attn_depth, d.attn_res_units)
    assert (h.hs_block, h.hs_head_dim, h.slice_hidden) == (d.hs_block, d.hs_head_dim, (224,))


def _synth(**kw):
    from dataclasses import replace

    return replace(space.teacher_config(), synthesis=replace(SynthesisConfig(), **kw))


def _hyper(**kw):
    from dataclasses import replace

    return replace(space.teacher_config(), hyperprior=replace(HyperpriorConfig(), **kw))


@pytest.mark.parametrize("make, field", [
    (lambda: _synth(widths=(128, 112, 128), head_dims=(32, 8, 8)), "g_width_1"),
    (lambda: _synth(depths=(2, 2, 5)), "g_depth_2"),
    (lambda: _synth(window=2), "g_window"),
    (lambda: _synth(mlp_ratio=3.0), "g_mlp_ratio"),
    (lambda: _synth(head_dims=(4, 16, 8)), "g_heads_0"),
    (lambda: _synth(upsamplers=("rbu", "subpel", "rbu", "subpel")), "synthesis"),  # one axis sets the first three
    (lambda: _synth(block="res", shift=True), "synthesis"),  # shift only searched with attention
    (lambda: _hyper(num_slices=20), "h_num_slices"),
    (lambda: _hyper(num_slices=10, max_support=5), "h_max_support"),
    (lambda: _hyper(attn_dim=64, attn_head_dim=2), "h_attn_heads"),
    (lambda: _hyper(slice_hidden=(224, 128, 96, 64)), "h_slice_depth"),
    (lambda: _hyper(slice_hidden=(100,)), "h_slice_width_0"),
    (lambda: _hyper(hs_head_dim=8), "h_hs_heads"),
    (lambda: _hyper(attn_window=4), "hyperprior"),  # no axis sets attn_window
])
def test_configs_outside_the_sampled_space_name_the_axis(make, field):
    cfg = make()
    part = "synthesis" if field.startswith(("g_", "synthesis")) else "hyperprior"
    for p in (part, "joint"):
        with pytest.raises(ConfigError) as e:
            space.params_from_config(cfg, p)
        assert e.value.field == (p if field in ("synthesis", "hyperprior") else field)


# --- block and upsampler names, declared once in space ---------------------------------------------------------

def test_axes_draw_block_and_upsampler_names_from_the_declared_lists():
    by_name = {ax.name: ax for ax in space.axes("joint")}
    assert set(by_name["g_block"].choices) == set(by_name["h_hs_block"].choices) == set(space.BLOCKS)
    assert set(by_name["g_upsampler"].choices) == set(by_name["g_final_upsampler"].choices) == set(space.UPSAMPLERS)
    assert space.BLOCKS == ("convtrans", "wtb", "res") and space.UPSAMPLERS == ("rbu", "conv_k5", "subpel")
    # the order each axis has always drawn in (seeded samplers reproduce earlier studies)
    assert by_name["g_block"].choices == ("wtb", "convtrans", "res")
    assert by_name["h_hs_block"].choices == ("convtrans", "wtb", "res")
    assert by_name["g_upsampler"].choices == ("rbu", "conv_k5", "subpel")
    assert by_name["g_final_upsampler"].choices == ("rbu", "subpel", "conv_k5")


@pytest.mark.parametrize("block", space.BLOCKS)
def test_each_declared_block_validates(block):
    assert SynthesisConfig(block=block, widths=(64, 64, 64), head_dims=(16, 16, 16)).block == block
    assert HyperpriorConfig(hs_block=block, hs_head_dim=16).hs_block == block
    assert space.is_attention_block(block) == (block in space.ATTENTION_BLOCKS)


@pytest.mark.parametrize("upsampler", space.UPSAMPLERS)
def test_each_declared_upsampler_validates(upsampler):
    assert SynthesisConfig(upsamplers=(upsampler,) * 4).upsamplers == (upsampler,) * 4


def test_a_registered_block_name_validates(monkeypatch):
    monkeypatch.setattr(space.synthesis, "_REGISTERED_BLOCKS", {})
    with pytest.raises(ConfigError, match="synthesis.block"):
        SynthesisConfig(block="mamba")
    space.register_block_name("mamba")
    space.register_block_name("attn2", attention=True)
    assert space.block_names() == space.BLOCKS + ("mamba", "attn2")
    assert SynthesisConfig(block="mamba", head_dims=(24, 16, 8)).block == "mamba"  # no attention: head_dims free
    assert HyperpriorConfig(hs_block="mamba").hs_block == "mamba"
    with pytest.raises(ConfigError, match=r"synthesis.head_dims\[0\]"):
        SynthesisConfig(block="attn2", head_dims=(24, 16, 8))  # 24 does not divide 128
    assert SynthesisConfig(block="attn2").uses_attention
    # registering names makes configs valid; the search axes stay what they were
    assert "mamba" not in {c for ax in space.axes("joint") for c in ax.choices}
    with pytest.raises(ConfigError):
        space.register_block_name("res", attention=True)  # a declared block keeps its declaration
    with pytest.raises(ConfigError):
        space.register_block_name("")
