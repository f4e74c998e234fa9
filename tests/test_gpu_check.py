"""The GPU check's own logic on this CPU, without training: the header's TF32 state (read after ``prepare``), each
row's precision and TF32 state, the final per-row lines and exit status, the budget counted from GPU_CHECK_T0, the
host-sync row's parts; and a search interrupted while it waits for its spawned workers (the check's time budget
stopping the search row) stopping those workers."""
import argparse
import contextlib
import json
import multiprocessing.process
import shutil
import time
import warnings

import pytest
import torch

from conftest import script_module


@pytest.fixture
def gpu_check():
    return script_module("scripts/gpu_check.py")


class FakeCheck:
    """Stands in for ``gpu_check.Check``: every row returns at once; the on-the-fly stage rows fail; a row given by
    ``breaks`` makes the table unwritable (its folder replaced by a file)."""
    teacher_ckpt = "teacher.pt"
    breaks = None

    def __init__(self, args, device, work, schedule):
        self.out = __import__("pathlib").Path(args.out)

    def __getattr__(self, name):
        def method(*args):
            if not args:  # a row's work itself: search, cross, host_syncs, evaluate
                if name == self.breaks:
                    shutil.rmtree(self.out)
                    self.out.write_text("not a folder")
                return {"note": name}
            if name == "stage" and args[-1] == "on the fly":
                return lambda: 1 / 0
            return lambda: {"note": f"{name} {' '.join(args)}"}
        return method


def _fake_tf32(monkeypatch, gpu_check):
    """``prepare`` turns TF32 on (as on a GPU); ``tf32_state`` reads it."""
    state = {"on": False}

    def prepare(device):
        state["on"] = True
        return torch.device(device)

    monkeypatch.setattr(gpu_check, "prepare", prepare)
    monkeypatch.setattr(gpu_check, "tf32_state", lambda: {"matmul_tf32": state["on"], "cudnn_tf32": state["on"],
                                                          "float32_matmul_precision": "high" if state["on"] else
                                                          "highest"})
    monkeypatch.setattr(gpu_check, "Check", FakeCheck)
    monkeypatch.delenv("OUT", raising=False)
    monkeypatch.delenv("GPU_CHECK_T0", raising=False)


def test_header_and_rows_say_their_precision_and_tf32_and_the_end_says_each_row(gpu_check, tmp_path, monkeypatch,
                                                                                  capsys):
    _fake_tf32(monkeypatch, gpu_check)
    out = tmp_path / "out"
    assert gpu_check.main(["--device", "cpu", "--out", str(out), "--budget-s", "600"]) == 0  # failed rows included
    table = json.loads((out / "gpu_check.json").read_text())
    # read after prepare(): the state every row ran with
    assert table["tf32"] == "on" and table["matmul_tf32"] == "True" and table["cudnn_tf32"] == "True"
    assert table["precisions"] == "bf16 fp32" and "this script's start" in table["budget_s"]
    rows = table["rows"]
    assert all(r.get("precision") and r.get("tf32") for r in rows), rows
    coded = [r for r in rows if r["check"].startswith(("file coded", "eval"))]
    assert len(coded) == 2 and all(r["tf32"] == "off (exact kernels)" for r in coded)
    assert all(r["tf32"] == "on" for r in rows if r not in coded)
    sync = next(r for r in rows if r["check"].startswith("host syncs"))
    assert "stages 1 and 2" in sync["check"] and sync["latents"] == "cache"
    failed = [r for r in rows if r["status"] != "ok"]
    assert failed and all(r["status"].startswith("FAILED: ZeroDivisionError") for r in failed)
    printed = capsys.readouterr().out
    header_line = printed.splitlines()[0]
    assert "tf32 on" in header_line and "matmul_tf32 True" in header_line
    ends = [line for line in printed.splitlines() if line.startswith(("ok: ", "NOT OK: "))]
    assert len(ends) == len(rows)
    assert sum(line.startswith("NOT OK: ") and "ZeroDivisionError" in line for line in ends) == len(failed)
    assert all("TF32 " in line and "precision " in line for line in ends)


def test_the_exit_status_is_nonzero_only_when_the_table_could_not_be_written(gpu_check, tmp_path, monkeypatch,
                                                                               capsys):
    _fake_tf32(monkeypatch, gpu_check)
    monkeypatch.setattr(FakeCheck, "breaks", "cross")
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path / "out"), "--budget-s", "600"]) == 1
    assert "could not write the table" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path / "file" / "out")]) == 1


def test_the_budget_counts_from_gpu_check_t0(gpu_check, tmp_path, monkeypatch):
    start, what = gpu_check.budget_start({"GPU_CHECK_T0": f"{time.time() - 100:.6f}"})
    assert 99 < time.monotonic() - start < 110 and what.startswith("GPU_CHECK_T0 (")
    for environ in ({}, {"GPU_CHECK_T0": "junk"}, {"GPU_CHECK_T0": "1"}):  # unset, unreadable, not this run's
        start, what = gpu_check.budget_start(environ)
        assert what == "this script's start" and time.monotonic() - start < 60
    # 100 s spent before the script (pip, imports) of a 90 s budget: nothing is left for any row
    _fake_tf32(monkeypatch, gpu_check)
    monkeypatch.setenv("GPU_CHECK_T0", f"{time.time() - 100:.6f}")
    out = tmp_path / "out"
    assert gpu_check.main(["--device", "cpu", "--out", str(out), "--budget-s", "90"]) == 0
    table = json.loads((out / "gpu_check.json").read_text())
    assert "GPU_CHECK_T0" in table["budget_s"] and table["rows"]
    assert all(r["status"].startswith("skipped") for r in table["rows"])


def test_host_syncs_are_counted_for_the_teacher_and_both_stages_from_the_cache(gpu_check, tmp_path, monkeypatch):
    """Syncs per steady step from runs of 2 and 6 steps under the sync debug mode; the stage runs read the latent
    cache the stage rows built (same plan: cache allowed, planned for the rows' steps)."""
    per_step = {"train_teacher": 1, "train_stage1": 3, "train_stage2": 2}
    debug, calls = {"on": False}, []

    def fake(name):
        def train(*args, plan_steps=None):
            run, steps = args[-2], args[-1]
            calls.append((name, steps, plan_steps, run.cache_gib, run.precision))
            if debug["on"]:
                for _ in range(5 + per_step[name] * steps):  # set-up and checkpoints, then each step's
                    warnings.warn("called a synchronizing CUDA operation")
        return train

    for name in per_step:
        monkeypatch.setattr(gpu_check, name, fake(name))
    monkeypatch.setattr(gpu_check, "_log_figures", lambda *a: {})

    @contextlib.contextmanager
    def sync_debug(mode):
        assert mode == "warn"
        debug["on"] = True
        yield
        debug["on"] = False

    args = argparse.Namespace(precisions=["bf16", "fp32"], steps=200, loader_workers=0, batch=8)
    check = gpu_check.Check(args, torch.device("cpu"), tmp_path, gpu_check.get_schedule("smoke"))
    check.teacher_ckpt = "teacher.pt"
    result = gpu_check.count_host_syncs(check.sync_runs(), sync_debug)
    assert result["syncs_per_step"] == {"teacher": 1, "stage1 (cache)": 3, "stage2 (cache)": 2}
    assert "stage1 (cache) 3.0" in result["note"] and "stage2 (cache) 2.0" in result["note"]
    assert [c[:2] for c in calls] == [(n, s) for n in per_step for s in (2, 6)]
    stages = [c for c in calls if c[0] != "train_teacher"]
    assert all(plan == 200 and gib > 0 and precision == "bf16" for _, _, plan, gib, precision in stages), stages
    assert check.ckpts == {}  # the sync runs' checkpoints are not the rows' (combined later)
    assert check.host_syncs() == {"note": "CUDA only (torch's sync debug mode)"}


class Alarm(BaseException):
    """What the check's budget raises (as OverBudget): a BaseException, out of ``join``."""


def test_an_interrupted_search_stops_its_spawned_workers(tmp_path, monkeypatch):
    from search.optuna_backend import run_optuna
    from search.spec import SearchSpec

    base = multiprocessing.process.BaseProcess
    real_start, real_join = base.start, base.join
    started, interrupted = [], []

    def start(self):
        real_start(self)
        started.append(self)

    def join(self, timeout=None):
        if not interrupted:  # the first wait for a worker: the alarm goes off
            interrupted.append([p.is_alive() for p in started])
            raise Alarm()
        return real_join(self, timeout)

    monkeypatch.setattr(base, "start", start)
    monkeypatch.setattr(base, "join", join)
    spec = SearchSpec(study="interrupted", schedule="smoke", root=str(tmp_path), workers=2, trials=2, heartbeat=0)
    try:
        with pytest.raises(Alarm):
            run_optuna(spec)
        assert len(started) == 2 and interrupted == [[True, True]]  # both workers were running
        assert all(not p.is_alive() and p.exitcode is not None for p in started), [p.exitcode for p in started]
    finally:
        for p in started:  # the old behaviour: workers left training
            if p.is_alive():
                p.kill()
            real_join(p, 10)
