"""The product's CUDA calls against a strict stand-in for ``torch.cuda`` (tests/cuda_standin.py): the stand-in's
rules are torch's, the product calls CUDA only through ``asymllic.cuda``, and the real pipelines (a search with
both stages, the latency objective and evaluation; the teacher; coding) run through it on ``cuda`` and
``cuda:1``. Spawned workers, confirm and rd run through it in their own modules' tests."""
import ast

import pytest
import torch

from conftest import ROOT
from cuda_standin import StrictCuda
from search.optuna_backend import run_optuna
from search.spec import SearchSpec
from search.table import trials_frame

PRODUCT = ("space", "asymllic", "search", "asymllic_cli", "scripts")


def test_the_standin_keeps_torchs_rules():
    cuda = StrictCuda(2)
    assert cuda.max_memory_allocated(0) == 0 and not cuda.is_initialized()  # torch reads 0 before init
    cuda.empty_cache()  # and empties nothing
    with pytest.raises(RuntimeError, match=r"Invalid device argument 0: did you call init\?"):
        cuda.reset_peak_memory_stats(torch.device("cuda", 0))  # what a fresh worker process hit
    with pytest.raises(ValueError, match="specified index"):
        cuda.set_device(torch.device("cuda"))
    with pytest.raises(ValueError, match="Expected a cuda device"):
        cuda.synchronize(torch.device("cpu"))
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        cuda.set_device(2)
    cuda.set_device("cuda:1")
    assert cuda.is_initialized() and cuda.current_device() == 1
    cuda.reset_peak_memory_stats(torch.device("cuda", 1))
    with pytest.raises(RuntimeError, match="did you call init"):
        cuda.reset_peak_memory_stats(5)
    start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
    start.record()
    with cuda.device(0):
        end.record()
    assert cuda.current_device() == 1  # the device context restores the current device
    with pytest.raises(RuntimeError, match="different devices"):
        start.elapsed_time(end)
    with pytest.raises(AttributeError, match=r"does not model torch.cuda.memory_summary"):
        cuda.memory_summary()
    cuda.fault()
    with pytest.raises(RuntimeError, match="CUDA error: an illegal memory access"):
        cuda.synchronize(1)


def _product_files():
    for package in PRODUCT:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_the_product_calls_cuda_only_through_one_module_and_the_standin_models_all_of_it():
    """Every ``torch.cuda`` use of the product is in asymllic/cuda.py, as ``api.<name>``; the stand-in models each."""
    elsewhere = []
    for path in _product_files():
        if path == ROOT / "asymllic" / "cuda.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "torch" \
                    and node.attr == "cuda":
                elsewhere.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not elsewhere, f"torch.cuda used outside asymllic/cuda.py: {elsewhere}"
    tree = ast.parse((ROOT / "asymllic" / "cuda.py").read_text())
    used = {n.attr for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "api"}
    assert {"reset_peak_memory_stats", "Event", "set_device"} <= used  # the walk finds the calls
    unmodelled = sorted(name for name in used if not hasattr(StrictCuda, name))
    assert not unmodelled, f"the stand-in does not model torch.cuda.{unmodelled}"
    assert all(hasattr(torch.cuda, name) for name in used)  # and each is torch's


def _search(tmp_path, teacher, **kw) -> SearchSpec:
    return SearchSpec(study="g", schedule="smoke", teacher=str(teacher), root=str(tmp_path), enqueue_presets=False,
                      mac_budget=None, sampler="random", **kw)


def test_a_joint_search_on_cuda1_runs_both_stages_latency_and_evaluation_through_the_standin(
        strict_cuda, tmp_path, teacher_ckpt):
    """One candidate on ``cuda:1`` in this process: stage 1, stage 2, combine, evaluation (coding) and the latency
    objective timed by CUDA events. CUDA starts before the peak is reset; every call names device 1."""
    spec = _search(tmp_path, teacher_ckpt, part="joint", trials=1, device="cuda:1", objective="latency",
                   latency_device="cuda:1", latency_repeats=1)
    df = trials_frame(run_optuna(spec))
    row = df.iloc[0]
    assert row["state"] == "COMPLETE", row.get("error")
    assert row["peak_gib"] == 1.0 and row["peak_reserved_gib"] == 1.0  # read through the stand-in, after training
    assert "strict CUDA stand-in" in row["latency_target"] and row["decoder_ms"] > 0
    calls = strict_cuda.log
    resets = [i for i, c in enumerate(calls) if c["call"] == "reset_peak_memory_stats"]
    assert resets and all(calls[i]["initialised"] for i in resets)
    assert {c["device"] for c in calls if c["device"] is not None} == {1}
    assert [c["call"] for c in calls if c["call"] == "Event.record"] == ["Event.record"] * 4  # warm-up + 1, 2 each


def test_the_teacher_and_coding_on_cuda_without_an_index(smoke_teacher, strict_cuda, tmp_path, photo_path):
    """``cuda``: the current device (cuda:0 here) is looked up, set and used by training (the session's smoke
    teacher is trained on ``cuda`` through the stand-in); coding on it."""
    from conftest import STANDIN_TEACHER_CALLS

    from asymllic.codec.checkpoint import load_codec
    from asymllic.codec.coding import compress_file, decompress_file

    assert ("set_device", 0) in {(c["call"], c["device"]) for c in STANDIN_TEACHER_CALLS}
    model = load_codec(smoke_teacher, "cuda")
    compress_file(model, photo_path, tmp_path / "a.alic")
    decompress_file(model, tmp_path / "a.alic", tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 0


def test_a_device_fault_stops_the_worker_and_keeps_the_study(strict_cuda, tmp_path, teacher_ckpt):
    """A CUDA fault (illegal memory access) poisons the process's context: the worker stops with one line instead
    of failing every later candidate, and the study keeps the faulted trial's error."""
    from asymllic.errors import AsymllicError
    from search.candidate import train_and_evaluate

    def faulting(cfg, spec, trial_dir):
        strict_cuda.fault()  # a kernel of this candidate faulted; the next CUDA call of the process raises
        return train_and_evaluate(cfg, spec, trial_dir)

    spec = _search(tmp_path, teacher_ckpt, trials=3, device="cuda:1")
    with pytest.raises(AsymllicError, match="device fault") as info:
        run_optuna(spec, evaluate=faulting)
    assert "\n" not in str(info.value)
    from search.optuna_backend import open_study

    trials = open_study(spec, create=False).trials
    assert len(trials) == 1 and "illegal memory access" in trials[0].user_attrs["error"]
