"""The public search API (``search.define | run | open | export``) and ``asymllic search`` are one thing: the same
declarations, the same rules (``search.resolve``), the same study; experiment files round-trip; Ray's GPU plan."""
import argparse
import dataclasses
import json

import numpy as np
import pytest
import yaml
from PIL import Image

import search
from asymllic import options as declared
from asymllic.errors import AsymllicError
from asymllic_cli import setup_args
from asymllic_cli.options import help_text
from conftest import photo, run_cli
from search.ray_backend import actor_device, plan_ray_devices
from search.spec import SPEC_FILE, RunOptions, SearchSpec, StudyRef
from space import ConfigError

# a search that trains for real but costs seconds: two sampled candidates of one smoke step each
SMALL = {"schedule": "smoke", "trials": 2, "steps": 1, "sampler": "random", "seed": 3, "enqueue_presets": False,
         "size": (256, 256)}
SMALL_FLAGS = ["--schedule", "smoke", "--trials", "2", "--steps", "1", "--sampler", "random", "--seed", "3",
               "--no-presets", "--size", "256x256"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """One small photo as training, selection and test set: a search's own cost, not the photos'."""
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(photo("astronaut", (160, 136))).save(folder / "a.png")
    return str(folder)


def stored(root, study) -> dict:
    return yaml.safe_load((root / study / SPEC_FILE).read_text())


def configs(root, study) -> list:
    df = search.open(study, root=root).trials().sort_values("number")
    return list(df["config_id"])


def test_the_api_and_the_command_line_make_the_same_study(tmp_path, teacher_ckpt, photos, capsys):
    data = {"data": photos, "eval_data": photos, "test_data": photos}
    api = search.run(search.define("a", teacher=str(teacher_ckpt), root=str(tmp_path), **SMALL, **data))
    assert capsys.readouterr().out.count("MAC budget:") == 1  # define told it; run applied the rules quietly
    run_cli("search", "--study", "b", "--teacher", teacher_ckpt, "--root", tmp_path, *SMALL_FLAGS,
            "--data", photos, "--eval-data", photos, "--test-data", photos)
    a, b = stored(tmp_path, "a"), stored(tmp_path, "b")
    assert {**a, "study": "b"} == b  # the same resolved spec, the teacher's MAC budget included
    assert isinstance(a["mac_budget"], float) and a["device"] == "auto" and a["gpus_per_trial"] == 0.0
    assert api.spec == SearchSpec.from_dict(a) and api.spec.to_dict() == a  # what the study stores, typed
    assert len(configs(tmp_path, "a")) == 2 and configs(tmp_path, "a") == configs(tmp_path, "b")

    # the stored spec.yaml reruns the search: the same spec and the same candidates under a new name
    run_cli("search", "--config", tmp_path / "b" / SPEC_FILE, "--study", "c")
    assert stored(tmp_path, "c") == {**b, "study": "c"}
    assert configs(tmp_path, "c") == configs(tmp_path, "b")


def test_search_front_export_and_a_real_codec_through_the_public_api(tmp_path, teacher_ckpt, photos):
    import asymllic

    study = search.run(search.define("e", teacher=str(teacher_ckpt), root=str(tmp_path), data=photos,
                                     eval_data=photos, test_data=photos, **{**SMALL, "trials": 1, "mac_budget": "none"}))
    assert study.spec.mac_budget is None and study.name == "e"
    again = search.open("e", root=tmp_path)
    front = again.front()
    assert len(front) == 1 and front["pareto"].all() and np.isfinite(front["psnr"]).all()
    (done,) = search.export_codecs(again)
    assert (done.folder / "codec.pt").is_file() and (done.folder / "card.md").is_file()
    img = tmp_path / "x.png"
    Image.fromarray(photo("coffee", (140, 100))).save(img)
    model = asymllic.load_model(done.folder)
    info = asymllic.compress_file(model, img, tmp_path / "x.alic")
    assert info["bytes"] > 0
    asymllic.decompress_file(model, tmp_path / "x.alic", tmp_path / "y.png")
    assert np.asarray(Image.open(tmp_path / "y.png")).shape == (100, 140, 3)


def _search_parser() -> argparse.ArgumentParser:
    sub = next(a for a in setup_args()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["search"]


def test_search_flags_are_exactly_the_declared_options():
    parser = _search_parser()
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config", "quiet")}  # not the spec's
    fields = {f.name: f for f in declared.options(SearchSpec)}
    assert set(actions) == set(fields)
    hints = {**__import__("typing").get_type_hints(SearchSpec)}
    for name, f in fields.items():
        a, meta = actions[name], declared.meta(f)
        assert a.help == help_text(f) and meta["help"] in a.help.replace("%%", "%"), name
        assert a.default is argparse.SUPPRESS, name  # a flag not given leaves the config file's value
        assert a.option_strings[0] == (meta["flag"] or "--" + name.replace("_", "-")), name
        if hints[name] is not bool:
            assert a.choices == (meta["choices"] if meta["parse"] is None else None), name
    text = parser.format_help()
    assert "(default: teacher)" in " ".join(actions["mac_budget"].help.split())
    for name in ("trials", "lmbda", "schedule", "cache_gib"):  # each default shown once, from its declaration
        shown = declared.user_default(fields[name])
        assert f"(default: {shown})" in " ".join(text.split()), name
    # every run option is both a search option and a training stage's, declared once
    assert {f.name for f in dataclasses.fields(RunOptions)} <= set(fields)
    run_parser = next(a for a in setup_args()._actions if isinstance(a, argparse._SubParsersAction)).choices
    stage1 = next(a for a in run_parser["train"]._actions if isinstance(a, argparse._SubParsersAction)).choices["stage1"]
    assert {f.name for f in dataclasses.fields(RunOptions)} <= {a.dest for a in stage1._actions}


def test_define_takes_the_command_line_defaults_and_refuses_bad_options(tmp_path):
    spec = search.api.unresolved("s")
    assert spec.mac_budget == "teacher" and spec.lmbda == declared.DEFAULT_LMBDA and spec.gpus_per_trial is None
    assert SearchSpec("s").mac_budget is None  # a spec built field by field: no budget
    with pytest.raises(ConfigError, match="^trials: "):
        search.define("s", trials="many")
    with pytest.raises(ConfigError, match="^sampler: unknown value 'grid'"):
        search.define("s", sampler="grid")
    with pytest.raises(ConfigError, match="^colour: unknown option"):
        search.define("s", colour="blue")
    with pytest.raises(ConfigError, match="^study: required"):
        search.define()
    # the schedule's batch is the default; --batch changes the crops per step, nothing else of the schedule
    assert spec.training_schedule().batch == 4 and search.api.unresolved("s", batch=1).training_schedule().batch == 1
    assert search.api.unresolved("s", batch=1).training_schedule().crop == spec.training_schedule().crop
    with pytest.raises(ConfigError, match="^batch: 0: a step trains on at least one crop"):
        search.define("s", batch=0)


def test_a_stored_spec_of_another_version_loads_typed():
    old = {"study": "o", "part": "joint", "size": [512, 512], "plan_steps": None, "gpus_per_trial": 0}
    spec = SearchSpec.from_dict(old)  # a key this version dropped is left out; missing ones take their defaults
    assert spec.size == (512, 512) and spec.part == "joint" and spec.trials == 20 and spec.gpus_per_trial == 0.0
    with pytest.raises(ConfigError, match="^plan_steps: unknown option"):
        SearchSpec.from_dict(old, strict=True)  # an experiment file is read strictly


@pytest.mark.parametrize("text, field", [("trials: 3\nbogus: 1\n", "bogus"), ("trials: three\n", "trials"),
                                         ("part: wing\n", "part"), ("size: [1, 2, 3]\n", "size"),
                                         ("mac_budget: lots\n", "mac_budget")])
def test_a_bad_experiment_file_is_one_line_naming_the_field(tmp_path, text, field):
    path = tmp_path / "search.yaml"
    path.write_text("study: x\n" + text)
    proc = run_cli("search", "--config", path, "--root", tmp_path, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"asymllic: error: {field}: "), proc.stderr


def test_flags_given_override_the_experiment_file(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(search, "run", lambda spec, progress=True: seen.setdefault("spec", spec) and 1 / 0)
    monkeypatch.setattr(search.api, "resolve", lambda spec, say=print: spec)
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump({"study": "x", "trials": 5, "seed": 7, "size": "64x64", "flips": True}))
    with pytest.raises(ZeroDivisionError):
        run_cli("search", "--config", path, "--trials", "9", "--no-presets")
    spec = seen["spec"]
    assert (spec.trials, spec.seed, spec.size, spec.flips, spec.enqueue_presets) == (9, 7, (64, 64), True, False)
    assert spec.mac_budget == "teacher"  # neither in the file nor given: the declared default


def test_resolve_applies_the_rules_once(tmp_path, teacher_ckpt):
    lines = []
    spec = search.resolve(search.api.unresolved("r", teacher=str(teacher_ckpt), root=str(tmp_path),
                                                schedule="smoke", size=(256, 256), min_steps=1, steps=4, eta=2),
                          say=lines.append)
    assert isinstance(spec.mac_budget, float) and spec.gpus_per_trial == 0.0
    assert any(line.startswith("MAC budget") for line in lines) and any("1, 2, 4" in line for line in lines)
    assert search.resolve(spec, say=lambda _: None) == spec  # resolving a resolved spec changes nothing
    with pytest.raises(AsymllicError, match="no teacher checkpoint at .*teacher/smoke-0.0067/codec.pt"):
        search.define("r", root=str(tmp_path), schedule="smoke")
    with pytest.raises(AsymllicError, match="CUDA"):  # this machine has none
        search.define("r", teacher=str(teacher_ckpt), root=str(tmp_path), device="cuda")


@pytest.mark.parametrize("device, gpus, workers, cluster, expected", [
    ("auto", None, 2, 0, ("cpu", 0.0)),      # no GPU anywhere: the CPU
    ("auto", None, 2, 4, ("cuda", 1.0)),     # enough GPUs: one each
    ("auto", 0.0, 4, 2, ("cuda", 0.5)),      # fewer GPUs than trials: shared
    ("auto", 0.25, 4, 2, ("cuda", 0.25)),    # given: kept
    ("cuda", None, 3, 1, ("cuda", 1 / 3)),
    ("cuda:1", 1.0, 2, 2, ("cuda", 1.0)),    # Ray picks the GPU; inside the trial it is cuda:0
    ("cpu", None, 2, 8, ("cpu", 0.0)),
    ("cpu", 0.0, 2, 8, ("cpu", 0.0)),
])
def test_ray_reserves_gpus_for_trials_meant_for_them(device, gpus, workers, cluster, expected):
    assert plan_ray_devices(device, gpus, workers, cluster) == pytest.approx(expected) if expected[1] else \
        plan_ray_devices(device, gpus, workers, cluster) == expected


@pytest.mark.parametrize("device, gpus, cluster, match", [
    ("cuda", 0.0, 2, "Ray hides the GPUs"), ("cuda:1", 0.0, 2, "Ray hides the GPUs"),
    ("cuda", None, 0, "no GPU"), ("cpu", 1.0, 2, "sit idle")])
def test_ray_device_plans_that_cannot_work_are_one_line(device, gpus, cluster, match):
    with pytest.raises(AsymllicError, match=match):
        plan_ray_devices(device, gpus, 2, cluster)


def test_a_trial_inside_a_ray_actor_uses_its_first_visible_gpu():
    assert [actor_device(d) for d in ("cuda", "cuda:0", "cuda:3", "cpu", "auto")] == \
        ["cuda:0", "cuda:0", "cuda:0", "cpu", "auto"]


def test_resolve_plans_ray_devices_from_the_gpus_it_finds(tmp_path, teacher_ckpt, monkeypatch):
    import torch

    from search import ray_backend

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # a local Ray not started yet counts this machine's
    assert ray_backend.cluster_gpus(None) == 2.0
    lines = []
    spec = search.resolve(search.api.unresolved("g", teacher=str(teacher_ckpt), root=str(tmp_path), backend="ray",
                                                workers=4, mac_budget="none"), say=lines.append)
    assert (spec.device, spec.gpus_per_trial) == ("cuda", 0.5)
    assert lines == ["Ray: trials train on cuda, 0.5 GPU reserved per trial (2 GPUs in the cluster, 4 concurrent "
                     "trials)"]
    with pytest.raises(AsymllicError, match="Ray hides"):
        search.define("g", teacher=str(teacher_ckpt), root=str(tmp_path), backend="ray", device="cuda:1",
                      gpus_per_trial=0)


def test_declared_choices_are_the_torch_sides():
    from asymllic.device import PRECISIONS
    from asymllic.training import INHERIT, SCHEDULES, StageRun

    assert declared.PRECISIONS == PRECISIONS and declared.INHERIT == INHERIT
    assert declared.SCHEDULE_NAMES == tuple(SCHEDULES)
    run = StageRun("out", device="cpu", cache_gib=1.0)  # a stage takes the same run options as a search
    assert isinstance(run, RunOptions) and run.run_options()["cache_gib"] == 1.0


def test_a_study_is_opened_by_reference_and_unknown_ones_are_one_line(tmp_path):
    with pytest.raises(AsymllicError, match="no study 'nope'"):
        search.open("nope", root=tmp_path)
    assert run_cli("results", "nope", "--root", tmp_path, check=False).returncode == 2
    assert StudyRef("s", root=str(tmp_path)).storage_url.endswith("/s/study.db")
    assert json.loads(json.dumps(SearchSpec("s").to_dict()))["size"] == [768, 512]


def _tree(root) -> list:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_the_public_names_are_listed_and_resolve():
    import asymllic

    for module in (asymllic, search):
        assert set(module.__all__) <= set(dir(module))
        for name in module.__all__:
            assert getattr(module, name) is not None
    assert {"load_model", "compress_file", "decompress_file"} <= set(dir(asymllic))


def test_opening_a_study_that_does_not_exist_creates_nothing(tmp_path):
    (tmp_path / "other").mkdir()
    before = _tree(tmp_path)
    with pytest.raises(AsymllicError, match="no study 'nope'"):
        search.open("nope", root=tmp_path)
    with pytest.raises(AsymllicError, match="no study 'nope'"):
        search.open("nope", root=tmp_path, storage=f"sqlite:///{tmp_path}/elsewhere/study.db")
    assert run_cli("results", "nope", "--root", tmp_path, check=False).returncode == 2
    assert _tree(tmp_path) == before


HOSTILE = ["../evil", "ABS", "", "a;b", "a b", ".hidden", "-x", "x" * 101, "a\nb"]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_study_name_is_a_name(tmp_path, name):
    root = tmp_path / "results"
    root.mkdir()
    name = str(tmp_path / "abs") if name == "ABS" else name
    with pytest.raises(ConfigError, match="^study: ") as e:
        search.define(name, root=str(root), schedule="smoke")
    assert "\n" not in str(e.value)
    for ref in (lambda: StudyRef(name, root=str(root)), lambda: search.open(name, root=root)):
        with pytest.raises(ConfigError, match="^study: "):
            ref()
    for argv in (["search", f"--study={name}", "--schedule", "smoke", "--trials", "1"], ["results", "--", name],
                 ["export", "--", name]):  # '--': a name that starts with '-' reaches the study, not argparse
        proc = run_cli(argv[0], "--root", root, *argv[1:], check=False)
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1 and "study" in proc.stderr, proc.stderr
    assert _tree(tmp_path) == ["results"]  # nothing written, inside the results or outside


def test_the_commands_printed_to_paste_are_shell_quoted(tmp_path, capsys):
    import shlex

    from asymllic_cli.studies import _summary

    class Fake:
        name = "my.study-1"
        spec = SearchSpec("my.study-1", root=str(tmp_path / "my results"))

        def trials(self):
            import pandas as pd

            return pd.DataFrame()

    _summary(Fake())
    line = capsys.readouterr().out.splitlines()[-1]
    commands = line.removeprefix("next: ").split(" | ")
    assert [shlex.split(c) for c in commands] == [["asymllic", c, "my.study-1", "--root", str(tmp_path / "my results")]
                                                  for c in ("results", "pareto", "export")]


# -- what the commands do, as library functions (docs/python-api.md) ------------------------------------------

def scored(cfg, spec, trial_dir):
    """A candidate scored from its complexity alone (no training): seconds per study."""
    from search.candidate import complexity

    trial_dir.mkdir(parents=True, exist_ok=True)
    c = complexity(cfg, (256, 256))
    psnr, bpp = 20 + 3 * np.log1p(c["gs_gmacs"]), 0.5 + 1 / (1 + c["hyperprior_gmacs"])
    return {"psnr": psnr, "bpp": bpp, "rd_cost": bpp + 10 ** (-psnr / 10), "checkpoint": ""}


def quick_study(name, root, teacher, **options):
    return search.run(search.define(name, teacher=str(teacher), root=str(root), schedule="smoke", trials=4,
                                    sampler="random", seed=1, mac_budget="none", **options), evaluate=scored)


def test_a_study_writes_its_figures_as_the_pareto_command_does(tmp_path, teacher_ckpt):
    study = quick_study("f", tmp_path, teacher_ckpt)
    told = []
    paths = study.figures(png=False, say=told.append)
    names = {p.name for p in paths}
    assert {"pareto.html", "history.html"} <= names and all(p.parent == tmp_path / "f" for p in paths)
    assert ("importance.html" in names) != bool(told)  # drawn, or skipped in one line
    with pytest.raises(AsymllicError, match="no decoder_ms figures"):
        study.figures(png=False, x="latency")


def test_factorize_combines_two_studies_fronts(tmp_path, teacher_ckpt):
    quick_study("sy", tmp_path, teacher_ckpt, part="synthesis")
    quick_study("hy", tmp_path, teacher_ckpt, part="hyperprior")
    done = search.factorize("sy", "hy", root=tmp_path, png=False, csv=tmp_path / "pairs.csv")
    assert done.folder == tmp_path / "sy+hy" and done.measured is None and done.comparison is None
    assert len(done.pairs) >= 1 and done.pairs["pareto"].any()
    assert (done.pairs["decoder_gmacs"] - done.pairs["gs_trial_gs_gmacs"]
            - done.pairs["hp_trial_hyperprior_gmacs"]).abs().max() < 1e-9
    assert [p.name for p in done.figures] == ["factorized.html"] and set(done.figures) <= set(done.files)
    assert tmp_path / "pairs.csv" in done.files and all(p.is_file() for p in done.files)


def test_evaluate_models_returns_compressai_results_and_writes_them(tmp_path, photos):
    from asymllic.evaluation.evaluate import evaluate_models
    from asymllic.limits import Limits

    result = evaluate_models(["paper", "teacher"], photos, name="two", max_side=64, device="cpu",
                             out=tmp_path / "e.json", progress=False)
    assert result["name"] == "two" and len(result["results"]["bpp"]) == 2 and len(result["per_checkpoint"]) == 2
    assert json.loads((tmp_path / "e.json").read_text()) == json.loads(json.dumps(result))
    with pytest.raises(AsymllicError):
        evaluate_models("teacher", photos, device="cpu", limits=Limits(max_gmacs=0.001), progress=False)


def test_train_teacher_at_writes_where_a_search_looks(tmp_path, photos):
    from asymllic.options import teacher_dir
    from asymllic.training import train_teacher_at

    ckpt = train_teacher_at("smoke", 0.013, root=tmp_path, data=photos, steps=1, progress=False, device="cpu")
    assert ckpt == teacher_dir("smoke", 0.013, tmp_path) / "codec.pt" and ckpt.is_file()
    assert search.define("t", schedule="smoke", lmbda=0.013, root=str(tmp_path)).teacher == str(ckpt)
