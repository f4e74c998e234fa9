"""Several machines, one search, on a test cluster of two "machines" (tests/cluster.py): this one and node-b, with
its own host name, local disk and network address. The study's root is shared (both see it at the same path), a
folder ``local`` is not (node-b has its own under the same path)."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from PIL import Image

from cluster import RayCluster, skip_without_machines
from conftest import ROOT, photo
from test_postgres import fresh_db  # noqa: F401 - a fixture: a new PostgreSQL database per test
from search.optuna_backend import open_study
from search.spec import SearchSpec
from search.table import trials_frame

pytestmark = pytest.mark.xdist_group("ray")  # with the other Ray tests: two Ray runtimes at once slow both


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    skip_without_machines()
    root = tmp_path_factory.mktemp("cluster")
    (root / "local").mkdir()
    (root / "photos").mkdir()
    for i, name in enumerate(("astronaut", "coffee")):
        Image.fromarray(photo(name, (160, 160))).save(root / "photos" / f"{i}.png")
    cluster = RayCluster(cpus=1, node_b_private=[root / "local"])
    try:
        yield cluster, root
    finally:
        cluster.close()


def _asymllic(*args) -> list:
    return [sys.executable, "-m", "asymllic", *map(str, args)]


def _env(cluster) -> dict:
    return {**cluster.env, "PYTHONPATH": str(ROOT)}


def test_a_two_node_ray_search_shares_its_root_confirms_resumes_and_survives_a_lost_node(two_nodes, smoke_teacher):
    cluster, root = two_nodes
    here = socket.gethostname()
    search = ["search", "--backend", "ray", "--ray-address", cluster.address, "--schedule", "smoke", "--teacher",
              smoke_teacher, "--no-presets", "--mac-budget", "none", "--sampler", "random", "--workers", "2"]

    # a root that only this machine has: refused at start, naming node-b and the folder, before any training
    bad = subprocess.run(_asymllic(*search, "--study", "bad", "--root", "local", "--trials", "1"), cwd=root,
                         env=_env(cluster), capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2, bad.stderr[-2000:]
    ours = [ln for ln in bad.stderr.splitlines() if ln.strip() and "INFO" not in ln.split(" -- ")[0]]  # not Ray's
    assert len(ours) == 1 and "Traceback" not in bad.stderr, bad.stderr[-3000:]
    line = ours[0]
    assert line.startswith("asymllic: error: node node-b (") and "does not see the study folder" in line, line
    assert str(root / "local" / "bad") in line and not (root / "local" / "bad" / "trials").exists()

    # the shared root, given relative to the driver's folder (as --data is): both nodes take trials
    args = _asymllic(*search, "--study", "s", "--root", "shared", "--trials", "3", "--data", "photos")
    done = subprocess.run(args, cwd=root, env=_env(cluster), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    spec = SearchSpec(study="s", root=str(root / "shared"))
    df = trials_frame(open_study(spec, create=False))
    assert len(df) == 3 and (df["state"] == "COMPLETE").all(), df[["state", "error"]] if "error" in df else df
    # one CPU per node: node-b takes trials (under load, Ray may give node-b's reused actor every trial)
    assert "node-b" in set(df["host"]) and set(df["host"]) <= {here, "node-b"}
    remote = int(df[df["host"] == "node-b"].iloc[0]["number"])

    # the driver exports node-b's trial and confirms it on both nodes; the records come back through Ray
    export = subprocess.run(_asymllic("export", "s", "--root", "shared", "--trial", remote), cwd=root,
                            env=_env(cluster), capture_output=True, text=True, timeout=600)
    assert export.returncode == 0, export.stderr[-2000:]
    assert list((root / "shared" / "s" / "export").glob("*/codec.pt"))
    confirm = subprocess.run(_asymllic("confirm", "s", "--root", "shared", "--backend", "ray", "--trial", remote,
                                       "--references", "paper", "--seeds", "1", "--steps", "1"),
                             cwd=root, env=_env(cluster), capture_output=True, text=True, timeout=900)
    assert confirm.returncode == 0, confirm.stdout[-2000:] + confirm.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (root / "shared" / "s" / "confirm").glob("*/confirm.json")]
    assert len(records) == 2 and all(r["status"] == "complete" for r in records)

    # the same command again: the experiment is resumed (nothing left to train), no stored trial deleted
    again = subprocess.run(args, cwd=root, env=_env(cluster), capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert len(open_study(spec, create=False).trials) == 3

    # node-b is lost while it trains: its trial is tried again on this machine, and completes
    lost = subprocess.Popen(_asymllic(*search, "--study", "lost", "--root", "shared", "--trials", "2"), cwd=root,
                            env=_env(cluster), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not cluster.b.running("ImplicitFunc.train") and time.time() < deadline and lost.poll() is None:
        time.sleep(0.1)
    assert lost.poll() is None and cluster.b.running("ImplicitFunc.train"), "node-b should be training a trial now"
    cluster.b.kill()
    out, _ = lost.communicate(timeout=900)
    assert lost.returncode == 0, out[-3000:]
    df = trials_frame(open_study(SearchSpec(study="lost", root=str(root / "shared")), create=False))
    assert len(df) == 2 and (df["state"] == "COMPLETE").all() and set(df["host"]) == {here}, df


def test_two_machines_share_one_postgresql_study(tmp_path, smoke_teacher, fresh_db):
    """Optuna workers on this machine and on node-b (its own host name and disk; PostgreSQL over loopback) take
    trials of one study in a shared root; node-b given another root is refused; the driver exports and confirms
    node-b's trial; node-b resumes the study with more trials and none is lost."""
    skip_without_machines()
    from cluster import Machine

    here = socket.gethostname()
    b = Machine("node-b", [tmp_path / "local"])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    search = ["search", "--study", "o", "--storage", fresh_db, "--schedule", "smoke", "--teacher", smoke_teacher,
              "--no-presets", "--mac-budget", "none", "--sampler", "random"]
    try:
        on_b = b.start(_asymllic(*search, "--root", "shared", "--trials", "3"), env=env, cwd=tmp_path,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        on_a = subprocess.run(_asymllic(*search, "--root", "shared", "--trials", "3"), env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=900)
        out_b, _ = on_b.communicate(timeout=900)
        assert on_a.returncode == 0 and on_b.returncode == 0, on_a.stderr[-2000:] + out_b[-2000:]
        spec = SearchSpec(study="o", storage=fresh_db, root=str(tmp_path / "shared"))
        df = trials_frame(open_study(spec, create=False))
        done = df[df["state"] == "COMPLETE"]
        assert len(done) >= 3 and set(done["host"]) == {here, "node-b"}, df
        assert done["config_id"].is_unique  # the two machines drew different candidates

        # node-b with a root of its own: refused before it takes a trial
        wrong = b.run(_asymllic(*search, "--root", "local", "--trials", "4"), env=env, cwd=tmp_path)
        assert wrong.returncode == 2, wrong.stderr[-2000:]
        assert wrong.stderr.strip().splitlines() == [wrong.stderr.strip()] and \
            "asymllic: error: this machine (node-b) runs the study in" in wrong.stderr, wrong.stderr

        # the driver exports and confirms node-b's trial from the shared root
        remote = int(done[done["host"] == "node-b"].iloc[0]["number"])
        shared = ["--storage", fresh_db, "--root", "shared"]
        for args in (["export", "o", *shared, "--trial", remote],
                     ["confirm", "o", *shared, "--trial", remote, "--references", "--seeds", "1", "--steps", "1"]):
            proc = subprocess.run(_asymllic(*args), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, proc.stderr[-2000:]
        assert list((tmp_path / "shared" / "o" / "export").glob("*/codec.pt"))
        (record,) = [json.loads(p.read_text()) for p in (tmp_path / "shared" / "o" / "confirm").glob("*/confirm.json")]
        assert record["status"] == "complete"

        # node-b resumes the study with one more trial: the earlier ones are all kept
        more = b.run(_asymllic(*search, "--root", "shared", "--trials", str(len(done) + 1)), env=env, cwd=tmp_path)
        assert more.returncode == 0, more.stderr[-2000:]
        after = trials_frame(open_study(spec, create=False))
        assert set(done["number"]) < set(after[after["state"] == "COMPLETE"]["number"])
    finally:
        b.close()
