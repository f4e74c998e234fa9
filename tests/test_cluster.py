"""Several machines, one search, on a test cluster of two "machines" (tests/cluster.py): this one and node-b, with
its own host name, local disk and network address. The study's root is shared (both see it at the same path), a
folder ``local`` is not (node-b has its own under the same path). This machine's commands run in this process
(``run_cli``: the command's ``main``, its output captured) except where a process must die or must start without
the cluster's token; node-b's are processes of their own."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from cluster import Machine, RayCluster, reload_ray_auth, skip_without_machines
from conftest import ROOT, photo, run_cli
from test_postgres import fresh_db  # noqa: F401 - a fixture: a new PostgreSQL database per test
from search.optuna_backend import open_study
from search.spec import SearchSpec
from search.table import trials_frame

pytestmark = pytest.mark.xdist_group("ray")  # with the other Ray tests: two Ray runtimes at once slow both

SMOKE = ["--schedule", "smoke", "--mac-budget", "none", "--sampler", "random",
         "--artifact-side", "64"]  # each trial's reconstruction artifact: a small crop, fast


def _asymllic(*args) -> list:
    return [sys.executable, "-m", "asymllic", *map(str, args)]


def _wait_for(condition, timeout: float, poll: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


def _running_on(spec: SearchSpec, host: str) -> bool:
    """A trial of the study is running in a worker process on ``host``."""
    try:
        trials = open_study(spec, create=False).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return False
    return any(t.state.name == "RUNNING" and str(t.system_attrs.get("worker", "")).startswith(f"{host}:")
               for t in trials)


def test_two_machines_share_one_postgresql_study(tmp_path, smoke_teacher, fresh_db, monkeypatch):
    """Optuna workers on this machine and on node-b (its own host name and disk; PostgreSQL over loopback) take
    trials of one study in a shared root; node-b given another root is refused; the driver exports and confirms
    node-b's trial; node-b resumes the study with more trials and none is lost."""
    skip_without_machines()
    here = socket.gethostname()
    b = Machine("node-b", [tmp_path / "local"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    search = ["search", "--study", "o", "--storage", fresh_db, "--teacher", smoke_teacher, "--no-presets", *SMOKE]
    spec = SearchSpec(study="o", storage=fresh_db, root=str(tmp_path / "shared"))
    monkeypatch.chdir(tmp_path)  # this machine's commands take the same relative root as node-b's

    def on_b(name: str, *args) -> tuple:
        """``asymllic ARGS`` started on node-b; returns the process and its log file (stdout and stderr)."""
        log = tmp_path / f"{name}.log"
        with open(log, "w") as out:
            return b.start(_asymllic(*args), env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT), log

    try:
        first, first_log = on_b("b", *search, "--root", "shared", "--trials", "2")
        # this machine joins once node-b holds a trial: each machine takes one however slowly node-b starts
        assert _wait_for(lambda: _running_on(spec, "node-b") or first.poll() is not None, 300, poll=0.5) and \
            first.poll() is None, first_log.read_text()[-3000:]
        # node-b with a root of its own, meanwhile: refused before it takes a trial (the study's folder is known)
        wrong, wrong_log = on_b("wrong", *search, "--root", "local", "--trials", "3")
        run_cli(*search, "--root", "shared", "--trials", "2")  # this machine's worker, in this process
        assert first.wait(timeout=900) == 0, first_log.read_text()[-3000:]
        df = trials_frame(open_study(spec, create=False))
        done = df[df["state"] == "COMPLETE"]
        assert len(done) >= 2 and set(done["host"]) == {here, "node-b"}, df
        assert done["config_id"].is_unique  # the two machines drew different candidates

        # node-b resumes the study with one more trial (the earlier ones are all kept), while the driver exports
        # and confirms node-b's trial from the shared root
        more, more_log = on_b("more", *search, "--root", "shared", "--trials", len(done) + 1)
        remote = int(done[done["host"] == "node-b"].iloc[0]["number"])
        shared = ["--storage", fresh_db, "--root", "shared"]
        run_cli("export", "o", *shared, "--trial", remote)
        run_cli("confirm", "o", *shared, "--trial", remote, "--references", "--seeds", "1", "--steps", "1")
        assert list((tmp_path / "shared" / "o" / "export").glob("*/codec.pt"))
        (record,) = [json.loads(p.read_text()) for p in (tmp_path / "shared" / "o" / "confirm").glob("*/confirm.json")]
        assert record["status"] == "complete"

        assert wrong.wait(timeout=600) == 2, wrong_log.read_text()[-2000:]
        said = wrong_log.read_text().strip()
        assert said.splitlines() == [said] and "asymllic: error: this machine (node-b) runs the study in" in said, said

        assert more.wait(timeout=900) == 0, more_log.read_text()[-3000:]
        after = trials_frame(open_study(spec, create=False))
        assert set(done["number"]) < set(after[after["state"] == "COMPLETE"]["number"])
    finally:
        b.close()


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """The cluster, with one logical GPU on each node through the strict CUDA stand-in (tests/cuda_standin.py) in
    every process it starts: node-b's is GPU 1 (``CUDA_VISIBLE_DEVICES=1``), so Ray gives its trials GPU 1, which
    they see as their only one, ``cuda:0``. This process is a driver of the cluster (the commands run here use it)."""
    skip_without_machines()
    import cuda_standin
    import ray

    root = tmp_path_factory.mktemp("cluster")
    (root / "local").mkdir()
    (root / "photos").mkdir()
    for i, name in enumerate(("astronaut", "coffee")):
        Image.fromarray(photo(name, (160, 160))).save(root / "photos" / f"{i}.png")
    site = Path(__file__).resolve().parent / "cuda_standin_site"
    extra = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), str(ROOT), os.environ.get("PYTHONPATH")])),
             cuda_standin.ENV: "2", cuda_standin.LOG_ENV: str(root / "cuda_calls.jsonl")}
    cluster = RayCluster(cpus=1, gpus=1, node_b_private=[root / "local"], extra=extra,
                         node_b_env={"CUDA_VISIBLE_DEVICES": "1"})
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH"):
                mp.setenv(name, cluster.env[name])
            cluster.connect(nodes=2)
            try:
                yield cluster, root
            finally:
                ray.shutdown()
        reload_ray_auth()  # a later Ray in this process: as the environment says again
    finally:
        cluster.close()


def test_a_two_node_ray_search_shares_its_root_resumes_after_the_driver_is_killed_and_survives_a_lost_node(
        two_nodes, smoke_teacher, monkeypatch):
    from cuda_standin import read_log

    cluster, root = two_nodes
    monkeypatch.chdir(root)  # the driver's folder: --root and --data below are relative to it
    here = socket.gethostname()
    search = ["search", "--backend", "ray", "--ray-address", cluster.address, "--teacher", smoke_teacher, *SMOKE,
              "--workers", "2"]

    # the shared root and the data, given relative to the driver's folder: the driver is a process of its own, killed
    # mid-study below (the cluster lives on); the same command again resumes the experiment
    args = [*search, "--study", "s", "--root", "shared", "--trials", "3", "--data", "photos"]
    trials, state = root / "shared" / "s" / "trials", root / "shared" / "s" / "ray" / "tune"
    with open(root / "driver.log", "w") as out:
        driver = subprocess.Popen(_asymllic(*args), cwd=root, env=cluster.env, stdout=out, stderr=subprocess.STDOUT)
    # meanwhile, without the cluster's token a driver is refused with one line (a process of its own too)
    with open(root / "refused.log", "w") as out:
        refused = subprocess.Popen(_asymllic(*search, "--study", "x", "--root", "shared", "--trials", "1"), cwd=root,
                                   env={**cluster.env, "RAY_AUTH_MODE": "disabled",
                                        "RAY_gcs_server_port_wait_time_s": "2"},  # 2 tries, not 20
                                   stdout=subprocess.DEVNULL, stderr=out)

    # and a root that only this machine has: refused at start, naming node-b and the folder, before any training
    bad = run_cli(*search, "--study", "bad", "--root", "local", "--trials", "1", check=False)
    assert bad.returncode == 2, bad.stderr[-2000:]
    ours = [ln for ln in bad.stderr.splitlines() if ln.strip() and "INFO" not in ln.split(" -- ")[0]]  # not Ray's
    assert len(ours) == 1 and "Traceback" not in bad.stderr, bad.stderr[-3000:]
    line = ours[0]
    assert line.startswith("asymllic: error: node node-b (") and "does not see the study folder" in line, line
    assert str(root / "local" / "bad") in line and not (root / "local" / "bad" / "trials").exists()

    assert refused.wait(timeout=300) == 2
    said = (root / "refused.log").read_text()
    assert "token authentication" in said and "Traceback" not in said, said[-3000:]

    def saved_results() -> dict:
        """Finished trials whose completion the experiment state (what restore reads) already holds."""
        snapshots = [p.stat().st_mtime_ns for p in state.glob("experiment_state*.json")]
        return {p: p.stat().st_mtime_ns for p in trials.glob("*/result.json")
                if snapshots and p.stat().st_mtime_ns < max(snapshots)}

    def between_writes() -> bool:
        """The experiment state was last written 0.25 to 1 s ago: the driver writes it every 2 s, copying its files
        into place one by one (a driver killed in the middle leaves a torn state, which Tune does not resume)."""
        try:
            age = time.time() - max(p.stat().st_mtime for p in state.rglob("*") if p.is_file())
        except (OSError, ValueError):  # a file replaced meanwhile; none yet
            return False
        return 0.25 <= age <= 1.0

    _wait_for(lambda: (saved_results() and between_writes()) or driver.poll() is not None, 300, poll=0.05)
    driver.kill()  # SIGKILL: the driver dies mid-study, between two writes of its state
    driver.wait()
    before = saved_results()
    assert 1 <= len(before) < 3, (root / "driver.log").read_text()[-3000:]

    run_cli(*args)  # the same command: Tuner.restore resumes the experiment
    spec = SearchSpec(study="s", root=str(root / "shared"))
    df = trials_frame(open_study(spec, create=False))
    assert len(df) == 3 and (df["state"] == "COMPLETE").all() and df["psnr"].notna().all(), df
    assert {"paper", "teacher"} <= set(df["preset"].dropna())
    for path, mtime in before.items():  # finished before the kill: kept, not trained again
        assert path.stat().st_mtime_ns == mtime
        assert any(c.startswith(str(path.parent)) for c in df["checkpoint"])
    # one CPU per node: node-b takes trials (under load, Ray may give node-b's reused actor every trial)
    assert "node-b" in set(df["host"]) and set(df["host"]) <= {here, "node-b"}
    # each trial reserved a GPU and trained on the one its actor sees, cuda:0 (node-b's: GPU 1)
    resets = [c for c in read_log(root / "cuda_calls.jsonl") if c["call"] == "reset_peak_memory_stats"]
    assert len(resets) >= 3 and {c["device"] for c in resets} == {0} and all(c["initialised"] for c in resets)
    assert df["peak_gib"].notna().all()

    # the same command again: the experiment is resumed (nothing left to train), no stored trial deleted
    finished = {p: p.stat().st_mtime_ns for p in trials.glob("*/result.json")}
    run_cli(*args)
    assert len(open_study(spec, create=False).trials) == 3
    assert {p: p.stat().st_mtime_ns for p in trials.glob("*/result.json")} == finished

    # the driver exports node-b's trial and confirms it beside a reference on both nodes; the records come back
    # through Ray
    row = df[df["host"] == "node-b"].iloc[0]
    remote, reference = int(row["number"]), "teacher" if row["preset"] == "paper" else "paper"
    run_cli("export", "s", "--root", "shared", "--trial", remote)
    assert list((root / "shared" / "s" / "export").glob("*/codec.pt"))
    run_cli("confirm", "s", "--root", "shared", "--backend", "ray", "--trial", remote, "--references", reference,
            "--seeds", "1", "--steps", "1")
    records = [json.loads(p.read_text()) for p in (root / "shared" / "s" / "confirm").glob("*/confirm.json")]
    assert len(records) == 2 and all(r["status"] == "complete" for r in records)

    # node-b is lost while it trains: its trial is tried again on this machine, and completes
    lost_node_b, searching = threading.Event(), threading.Event()
    searching.set()

    def lose_node_b() -> None:
        if _wait_for(lambda: cluster.b.running("ImplicitFunc.train") or not searching.is_set(), 300) \
                and searching.is_set():
            cluster.b.kill()
            lost_node_b.set()

    killer = threading.Thread(target=lose_node_b, daemon=True)
    killer.start()
    try:
        lost = run_cli(*search, "--study", "lost", "--root", "shared", "--trials", "2", check=False)
    finally:
        searching.clear()
        killer.join()
    assert lost_node_b.is_set(), "node-b should have been training a trial"
    assert lost.returncode == 0, lost.stdout[-2000:] + lost.stderr[-3000:]
    df = trials_frame(open_study(SearchSpec(study="lost", root=str(root / "shared")), create=False))
    assert len(df) == 2 and (df["state"] == "COMPLETE").all() and set(df["host"]) == {here}, df
