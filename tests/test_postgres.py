"""Studies on a real PostgreSQL server: every test starts from a database created for it (no schema yet,
as on a cluster's first run) and drops it at the end; the restart test runs a server of its own."""
import glob
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT, run_cli

URL = os.environ.get("ASYMLLIC_TEST_POSTGRES")


def _admin(sql: str, url: str | None = None) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url or URL, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(sql))
    engine.dispose()


@pytest.fixture
def fresh_db():
    """The URL of a database created now, empty: Optuna has not created its tables there yet."""
    from sqlalchemy.engine import make_url

    if not URL:
        pytest.skip("ASYMLLIC_TEST_POSTGRES not set (make test starts a local PostgreSQL)")
    name = f"asymllic_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(URL).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _open_at_once(url: str, barrier, study: str) -> None:
    from search.optuna_backend import open_study
    from search.spec import SearchSpec

    barrier.wait()  # every process opens the storage in the same instant
    open_study(SearchSpec(study=study, storage=url))


def test_workers_started_together_on_an_empty_database_create_its_schema_once(fresh_db):
    import optuna

    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(6)
    procs = [ctx.Process(target=_open_at_once, args=(fresh_db, barrier, "race")) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 6
    study = optuna.load_study(study_name="race", storage=fresh_db)
    # one study, the presets enqueued once, by whichever process created it
    assert sorted(t.user_attrs["preset"] for t in study.get_trials()) == ["paper", "teacher"]
    assert [s.study_name for s in optuna.get_all_study_summaries(fresh_db)] == ["race"]


def test_two_separately_started_workers_share_a_postgres_study(tmp_path, smoke_teacher, fresh_db):
    from search.optuna_backend import open_study
    from search.spec import SearchSpec
    from search.table import pareto_mask, trials_frame

    name = "pg"
    args = [sys.executable, "-m", "asymllic", "search", "--study", name, "--schedule", "smoke", "--trials", "4",
            "--teacher", smoke_teacher, "--root", str(tmp_path), "--storage", fresh_db, "--sampler", "random",
            "--mac-budget", "none"]
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err.decode()[-2000:]
    study = open_study(SearchSpec(study=name, storage=fresh_db, root=str(tmp_path)), create=False)
    trials = study.get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) >= 4 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert len({t.number for t in trials}) == len(trials)  # each trial finished exactly once
    # the presets were enqueued once, by whichever worker created the study
    assert sorted(t.user_attrs["preset"] for t in trials if "preset" in t.user_attrs) == ["paper", "teacher"]
    assert len({t.user_attrs["checkpoint"] for t in complete}) == len(complete)
    df = trials_frame(study)
    front_optuna = sorted(t.number for t in study.best_trials)
    assert sorted(df[pareto_mask(df, "synthesis")]["number"]) == front_optuna
    # every command takes the same storage URL
    assert "COMPLETE" in run_cli("results", name, "--storage", fresh_db, "--root", tmp_path).stdout
    run_cli("pareto", name, "--storage", fresh_db, "--root", tmp_path)
    run_cli("export", name, "--storage", fresh_db, "--root", tmp_path)


def test_unreachable_database_and_missing_rights_are_one_line_without_the_password(fresh_db, tmp_path):
    from sqlalchemy.engine import make_url

    from search.storage import StorageError, open_storage

    # a port nobody listens on
    closed = make_url(fresh_db).set(port=1, password="s3cret-pw").render_as_string(hide_password=False)
    with pytest.raises(StorageError) as e:
        open_storage(closed)
    msg = str(e.value)
    assert "cannot reach the study storage" in msg and "s3cret-pw" not in msg and "***" in msg and "\n" not in msg
    # a role that may log in but not create tables (PostgreSQL 15+: only the owner creates in schema public)
    role = f"ro_{uuid.uuid4().hex[:8]}"
    _admin(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'")
    _admin(f"GRANT {role} TO CURRENT_USER")  # so that its sessions can be ended below
    try:
        _admin("REVOKE CREATE ON SCHEMA public FROM PUBLIC", fresh_db)
        ro = make_url(fresh_db).set(username=role, password=f"pw-{role}").render_as_string(hide_password=False)
        with pytest.raises(StorageError) as e:
            open_storage(ro)
        assert "lacks the rights" in str(e.value) and f"pw-{role}" not in str(e.value)
    finally:
        _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
        _admin(f"DROP ROLE {role}")
    proc = run_cli("results", "x", "--storage", closed, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "s3cret-pw" not in proc.stderr, proc.stderr


@pytest.fixture
def own_server():
    """A PostgreSQL server of the test's own (initdb in a temporary folder, on loopback at a free port), which the
    test stops, starts and restarts; the shared one stays up. Skipped without the server's programs."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    pg_ctl = bins[-1] if bins else shutil.which("pg_ctl")
    if not pg_ctl or not os.path.exists(os.path.join(os.path.dirname(pg_ctl), "initdb")):
        pytest.skip("no PostgreSQL server programs (pg_ctl, initdb): scripts/start_postgres.sh installs them")
    as_user = []
    if os.getuid() == 0:  # the server refuses to run as root
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run a server as")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="asymllic-pg-"))
    if as_user:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data, log = root / "data", root / "log"
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"

    def ctl(*args, check=True):
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(log), "-w", *args], check=check,
                       capture_output=True, timeout=60)

    subprocess.run([*as_user, os.path.join(os.path.dirname(pg_ctl), "initdb"), "-D", str(data), "-A", "trust",
                    "-U", "asym", "-N"], check=True, capture_output=True, timeout=120)
    ctl("-o", options, "start")
    try:
        yield SimpleNamespace(url=f"postgresql://asym@127.0.0.1:{port}/postgres", stop=lambda: ctl("-m", "fast", "stop"),
                              start=lambda: ctl("-o", options, "start"))
    finally:
        ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_a_search_outlives_database_restarts_with_no_trial_lost(tmp_path, smoke_teacher, own_server):
    """The server goes away mid-trial for longer than a heartbeat interval (the heartbeat keeps beating after it
    is back), and is away again when a finished trial's record is written (the writes wait for it): the search
    completes, each trial once, none failed."""
    import sqlalchemy

    from search.optuna_backend import open_study, run_optuna
    from search.spec import SearchSpec

    ages, calls, connections = [], [], []
    probe = sqlalchemy.create_engine(own_server.url, poolclass=sqlalchemy.pool.NullPool)

    def evaluate(cfg, spec, trial_dir):
        calls.append(trial_dir.name)
        if len(calls) == 1:
            own_server.stop()
            time.sleep(1.2)  # a beat is due (heartbeat 1 s) while the server is down
            own_server.start()
            time.sleep(2.2)  # and two more after it is back
            with probe.connect() as conn:
                ages.append(conn.execute(sqlalchemy.text(
                    "SELECT EXTRACT(EPOCH FROM now() - max(heartbeat)) FROM trial_heartbeats")).scalar())
        elif len(calls) == 2:  # down when this trial's record is written; back 1 s later
            own_server.stop()
            threading.Timer(1.0, own_server.start).start()
        else:  # this process's connections: one kept by run_optuna's study, two of the worker's (loop, heartbeat)
            with probe.connect() as conn:
                connections.append(conn.execute(sqlalchemy.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = 'postgres' AND pid <> pg_backend_pid()"
                )).scalar())
        return {"psnr": 30.0 - len(calls), "bpp": 0.5, "checkpoint": ""}

    spec = SearchSpec(study="blip", schedule="smoke", teacher=smoke_teacher, root=str(tmp_path), trials=3,
                      storage=own_server.url, sampler="random", enqueue_presets=False, heartbeat=1)
    run_optuna(spec, evaluate=evaluate)
    probe.dispose()
    trials = open_study(spec, create=False).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3 and len(calls) == 3
    assert all(t.user_attrs.get("psnr") is not None for t in trials)
    assert ages and float(ages[0]) < 2.0, ages  # beaten within the grace period (2 heartbeats) after the restart
    assert connections and connections[0] <= 3, connections  # 2K + 1 with K = 1 (docs/scale.md)
