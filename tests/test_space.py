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
