"""The Ray Tune backend: same space and objectives through OptunaSearch, local Ray and a real cluster, restore,
mirrored results."""
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from cluster import free_ports, free_range, stop_processes_mentioning
from conftest import ROOT, run_cli
from search.optuna_backend import open_study
from search.spec import SearchSpec
from search.table import trials_frame


def test_ray_search_with_budget_restore_and_mirror(tmp_path, smoke_teacher):
    args = ["search", "--study", "r", "--backend", "ray", "--schedule", "smoke", "--trials", "3", "--teacher", smoke_teacher,
            "--root", tmp_path, "--mac-budget", "140"]
    out = run_cli(*args, process=True)
    assert "3 trials" in out.stdout
    df = trials_frame(open_study(SearchSpec(study="r", root=str(tmp_path)), create=False))
    assert len(df) == 3
    teacher_row = df[df["decoder_gmacs"] > 140]
    assert len(teacher_row) == 1 and teacher_row.iloc[0]["state"] == "PRUNED"  # the teacher: over budget, not trained
    assert "budget" in teacher_row.iloc[0]["infeasible"]
    done = df[df["state"] == "COMPLETE"]
    assert len(done) == 2 and "paper" in set(done["preset"].dropna()) and done["psnr"].notna().all()
    records = {p.parent.name: p.stat().st_mtime for p in (tmp_path / "r" / "trials").glob("*/result.json")}
    assert len(records) == 3  # every trial's record, the infeasible one's too
    assert len(list((tmp_path / "r" / "trials").glob("*/stage1/codec.pt"))) == 2  # only the feasible ones trained
    # the same command again restores the finished experiment: nothing is re-run
    run_cli(*args, process=True)
    assert {p.parent.name: p.stat().st_mtime for p in (tmp_path / "r" / "trials").glob("*/result.json")} == records
    assert len(trials_frame(open_study(SearchSpec(study="r", root=str(tmp_path)), create=False))) == 3


@pytest.fixture()
def ray_cluster():
    """A real Ray head node on loopback with its own ports, temp dir and auth token, and two GPUs as Ray counts
    them (logical: a trial that reserves one gets its ``CUDA_VISIBLE_DEVICES``); stopped afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's unix sockets live under it
    (tmp / "token").write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(tmp / "token"),
           "OMP_NUM_THREADS": "1"}
    gcs, node, obj, listen, grpc, runtime, metrics = free_ports(7)
    workers = free_range(61)
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    start = subprocess.run([*ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs),
                            "--temp-dir", str(tmp), "--num-cpus", "2", "--num-gpus", "2", "--include-dashboard", "false",
                            "--disable-usage-stats", "--object-store-memory", str(200 * 2**20),
                            "--node-manager-port", str(node), "--object-manager-port", str(obj),
                            "--dashboard-agent-listen-port", str(listen), "--dashboard-agent-grpc-port", str(grpc),
                            "--runtime-env-agent-port", str(runtime), "--metrics-export-port", str(metrics),
                            "--min-worker-port", str(workers), "--max-worker-port", str(workers + 60)],
                           env=env, capture_output=True, text=True, timeout=120)
    try:
        assert start.returncode == 0, start.stderr[-2000:]
        yield f"127.0.0.1:{gcs}", {k: env[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "OMP_NUM_THREADS")}
    finally:  # stop this head's processes only (``ray stop`` would stop every Ray on the machine)
        stop_processes_mentioning(str(tmp))
        shutil.rmtree(tmp, ignore_errors=True)


def test_ray_cluster_search_resumes_after_the_driver_is_killed(tmp_path, smoke_teacher, strict_cuda_children,
                                                              ray_cluster):
    """The cluster's two GPUs are the strict CUDA stand-in's (tests/cuda_standin.py) in every process: the driver
    plans a GPU per trial, each trial trains on the one GPU Ray shows its actor."""
    from cuda_standin import read_log

    address, env = ray_cluster
    # without the cluster's token the connection is refused with a one-line error
    refused = run_cli("search", "--study", "x", "--backend", "ray", "--schedule", "smoke", "--trials", "1",
                      "--teacher", smoke_teacher, "--root", tmp_path, "--ray-address", address, check=False, process=True,
                      env={"RAY_AUTH_MODE": "disabled", "RAY_gcs_server_port_wait_time_s": "2"})  # 2 tries, not 20
    assert refused.returncode == 2 and "token authentication" in refused.stderr and "Traceback" not in refused.stderr

    args = ["search", "--study", "rc", "--backend", "ray", "--schedule", "smoke", "--trials", "4", "--teacher",
            smoke_teacher, "--root", tmp_path, "--ray-address", address, "--mac-budget", "none"]
    trials, state = tmp_path / "rc" / "trials", tmp_path / "rc" / "ray" / "tune"

    def saved_results() -> dict:
        """Finished trials whose completion the experiment state (what restore reads) already holds."""
        snapshots = [p.stat().st_mtime_ns for p in state.glob("experiment_state*.json")]
        return {p: p.stat().st_mtime_ns for p in trials.glob("*/result.json")
                if snapshots and p.stat().st_mtime_ns < max(snapshots)}

    driver = subprocess.Popen([sys.executable, "-m", "asymllic", *map(str, args)], cwd=ROOT,
                              env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not saved_results() and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)  # the driver dies mid-study; the cluster lives on
    driver.wait()
    before = saved_results()
    assert 1 <= len(before) < 4

    run_cli(*args, env=env, process=True)  # the same command: Tuner.restore resumes the experiment
    df = trials_frame(open_study(SearchSpec(study="rc", root=str(tmp_path)), create=False))
    assert len(df) == 4 and (df["state"] == "COMPLETE").all() and df["psnr"].notna().all()
    assert {"paper", "teacher"} <= set(df["preset"].dropna())
    for path, mtime in before.items():  # finished before the kill: kept, not trained again
        assert path.stat().st_mtime_ns == mtime
        assert any(c.startswith(str(path.parent)) for c in df["checkpoint"])
    resets = [c for c in read_log(strict_cuda_children) if c["call"] == "reset_peak_memory_stats"]
    assert len(resets) >= 4 and {c["device"] for c in resets} == {0} and all(c["initialised"] for c in resets)
    assert df["peak_gib"].notna().all()
