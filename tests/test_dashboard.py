"""Optuna Dashboard over real smoke studies: named objectives, the study's note, rung values, trial artifacts
(through the dashboard's own HTTP API and in a real headless Chromium), `asymllic dashboard`, and storage
passwords kept out of everything a study stores or prints."""
import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from io import BytesIO

import pytest
from PIL import Image

import search
from conftest import run_cli
from search.artifacts import CARD, CURVES_ID, MAC_TABLE, RECONSTRUCTION, metric_names
from search.driver import run_search
from search.spec import SearchSpec
from search.storage import StorageError, safe_url, stored_url

SIDE = 64  # the reconstruction crop of these tests: small, fast


def _get(url: str, raw: bool = False):
    with urllib.request.urlopen(url, timeout=30) as r:
        body = r.read()
    return body if raw else json.loads(body)


def _study_id(board, name: str) -> int:
    studies = _get(f"{board.root_url}/api/studies")["study_summaries"]
    return next(s["study_id"] for s in studies if s["study_name"] == name)


@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory, smoke_teacher):
    """A real smoke search (2 trials, multi-fidelity rungs at 1 and 2 steps: a curve of two points for a trial that
    goes on), without the reference presets."""
    root = tmp_path_factory.mktemp("dash")
    spec = SearchSpec(study="dash", schedule="smoke", teacher=smoke_teacher, root=str(root), trials=2,
                      enqueue_presets=False, min_steps=1, eta=2, steps=2, artifact_side=SIDE)
    run_search(spec)
    return spec


def test_the_dashboard_api_shows_names_note_rungs_and_artifacts(smoke_study):
    spec = smoke_study
    names = metric_names(spec)
    assert names == ["PSNR (dB)", "decoder GMACs (exact, 768x512)"]
    with search.serve_dashboard(spec.study, port=0, root=spec.root) as board:
        assert board.host == "127.0.0.1" and board.url.endswith(f"/dashboard/studies/{board.study_id}")
        sid = _study_id(board, spec.study)
        assert sid == board.study_id
        detail = _get(f"{board.root_url}/api/studies/{sid}")
        assert detail["objective_names"] == names
        note = detail["note"]["body"]
        assert "smoke schedule" in note and "rungs at 1, 2 steps" in note and spec.teacher in note
        assert "bundled eval photos" in note and "bundled test photos" in note
        assert f"asymllic export dash --root {spec.root}" in note and "asymllic confirm dash" in note
        assert any(g["id"] == CURVES_ID for g in detail["plotly_graph_objects"])
        trials = detail["trials"]
        assert len(trials) == 2
        steps = [[v["step"] for v in t["intermediate_values"]] for t in trials]
        assert all(s and set(s) <= {1, 2} for s in steps) and [1, 2] in steps  # the first rung, and both for one
        for t in trials:
            values = {v["step"]: v["value"] for v in t["intermediate_values"]}
            psnr = next(a["value"] for a in t["user_attrs"] if a["key"] == "psnr")
            assert values[max(values)] == pytest.approx(float(psnr))  # the last rung's figure is the trial's
            files = {a["filename"]: a for a in t["artifacts"]}
            assert set(files) == {RECONSTRUCTION, CARD, MAC_TABLE}
            base = f"{board.root_url}/artifacts/{sid}/{t['trial_id']}/"
            png = Image.open(BytesIO(_get(base + files[RECONSTRUCTION]["artifact_id"], raw=True)))
            assert png.format == "PNG" and png.size[1] > SIDE and png.size[0] >= 3 * SIDE  # three panels, labels
            card = _get(base + files[CARD]["artifact_id"], raw=True).decode()
            config_id = next(a["value"] for a in t["user_attrs"] if a["key"] == "config_id")
            assert config_id in card and "g_s" in card and "PSNR" in card
            table = _get(base + files[MAC_TABLE]["artifact_id"], raw=True).decode().splitlines()
            assert table[0] == "layer,component,type,params,macs_exact,macs_thop" and len(table) > 20
        assert "<html" in _get(board.url, raw=True).decode().lower()


def test_the_dashboard_reads_a_study_while_its_search_goes_on(smoke_study, tmp_path):
    import dataclasses

    from test_search import fake_evaluate

    root = tmp_path / "live"
    shutil.copytree(smoke_study.dir, root / smoke_study.study)
    spec = dataclasses.replace(smoke_study, root=str(root))
    with search.serve_dashboard(spec.study, port=0, root=root) as board:
        assert len(_get(f"{board.root_url}/api/studies/{board.study_id}")["trials"]) == 2
        # a search going on (one fidelity: the new trial completes whatever it scores)
        run_search(dataclasses.replace(spec, trials=3, min_steps=None), evaluate=fake_evaluate())
        deadline = time.monotonic() + 20  # the dashboard reads the storage again after a 2 s cache
        while len(trials := _get(f"{board.root_url}/api/studies/{board.study_id}")["trials"]) < 3:
            assert time.monotonic() < deadline, "the new trial never showed"
            time.sleep(0.5)
        assert len(trials) == 3 and trials[-1]["state"] == "Complete"
        assert {a["filename"] for a in trials[-1]["artifacts"]} == {CARD, MAC_TABLE}  # no checkpoint, no crop


def test_dashboard_command_errors_are_one_line(smoke_study, tmp_path):
    missing = run_cli("dashboard", "nope", "--root", tmp_path, check=False)
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    assert "no study 'nope'" in missing.stderr and not (tmp_path / "nope").exists()  # nothing created by asking
    with search.serve_dashboard(smoke_study.study, port=0, root=smoke_study.root) as board:
        taken = run_cli("dashboard", smoke_study.study, "--root", smoke_study.root, "--port", board.port, check=False)
    assert taken.returncode == 2 and taken.stderr.strip().count("\n") == 0
    assert f"cannot serve the dashboard on 127.0.0.1:{board.port}" in taken.stderr and "--port" in taken.stderr


def test_dashboard_command_serves_until_interrupted(smoke_study):
    import signal
    import sys

    from conftest import ROOT

    proc = subprocess.Popen([sys.executable, "-m", "asymllic", "dashboard", smoke_study.study, "--root", smoke_study.root,
                             "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Optuna Dashboard of study dash (sqlite:///") and "http://127.0.0.1:" in line
        url = line.rsplit(" ", 1)[-1].strip()
        assert "<html" in _get(url, raw=True).decode().lower()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "dashboard stopped" in out and not err.strip()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not CHROMIUM, reason="no chromium on the PATH (make setup installs Debian's as root)")
def test_a_headless_browser_renders_the_named_objectives(smoke_study, tmp_path):
    with search.serve_dashboard(smoke_study.study, port=0, root=smoke_study.root) as board:
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                              f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000", "--dump-dom",
                              board.url], capture_output=True, text=True, timeout=180).stdout
    assert smoke_study.study in dom
    for name in metric_names(smoke_study):
        assert name in dom, name


# ---- credentials ----------------------------------------------------------------------------------------------

SECRET = "Sw0rdf1sh-" + uuid.uuid4().hex[:8]


def test_passwords_are_masked_when_printed_and_dropped_when_stored(monkeypatch):
    url = f"postgresql://ada:{SECRET}@db.example:5432/studies?sslmode=require"
    assert safe_url(url) == "postgresql://ada:***@db.example:5432/studies?sslmode=require"
    assert stored_url(url) == "postgresql://ada@db.example:5432/studies?sslmode=require"
    assert SECRET not in safe_url(f"postgresql://db.example/s?password={SECRET}")
    assert SECRET not in stored_url(f"mysql+pymysql://ada:{SECRET}@db/s")
    assert stored_url("sqlite:///results/a b/study.db") == "sqlite:///results/a b/study.db"  # nothing to hide
    monkeypatch.setenv("ASYMLLIC_TEST_DB", url)
    assert stored_url("env:ASYMLLIC_TEST_DB") == "env:ASYMLLIC_TEST_DB"
    assert safe_url("env:ASYMLLIC_TEST_DB") == safe_url(url)
    # a spec given such a URL: what it stores, writes, shows and prints
    spec = SearchSpec(study="s", storage=url, teacher="t.pt", schedule="smoke")
    assert spec.connect_url() == url and SECRET not in spec.storage_url
    from search.artifacts import study_note

    for text in (json.dumps(spec.stored_dict()), spec.to_yaml(), study_note(spec), repr(spec.storage_url)):
        assert SECRET not in text
    assert "--storage 'postgresql://ada@db.example:5432/studies?sslmode=require'" in study_note(spec)  # quoted
    monkeypatch.delenv("ASYMLLIC_TEST_DB")
    with pytest.raises(StorageError, match="ASYMLLIC_TEST_DB is not set"):
        SearchSpec(study="s", storage="env:ASYMLLIC_TEST_DB").connect_url()


def test_an_env_storage_is_stored_as_its_name(tmp_path, smoke_teacher, monkeypatch):
    from test_search import fake_evaluate

    url = f"sqlite:///{(tmp_path / 'elsewhere.db').as_posix()}"
    monkeypatch.setenv("ASYMLLIC_TEST_DB", url)
    spec = SearchSpec(study="e", schedule="smoke", teacher=smoke_teacher, root=str(tmp_path), trials=1,
                      enqueue_presets=False, storage="env:ASYMLLIC_TEST_DB")
    study = run_search(spec, evaluate=fake_evaluate())
    assert study.user_attrs["spec"]["storage"] == "env:ASYMLLIC_TEST_DB"
    assert "storage: env:ASYMLLIC_TEST_DB" in (tmp_path / "e" / "spec.yaml").read_text()
    assert len(search.open("e", root=tmp_path, storage="env:ASYMLLIC_TEST_DB").trials()) == 1


POSTGRES = os.environ.get("ASYMLLIC_TEST_POSTGRES")


@pytest.fixture
def role_with_password():
    """A PostgreSQL role with a password and a database of its own (dropped at the end): its URL."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    name = f"asymllic_dash_{uuid.uuid4().hex[:8]}"

    def admin(sql: str, database: str | None = None) -> None:
        url = make_url(POSTGRES).set(database=database) if database else POSTGRES
        engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(sql))
        engine.dispose()

    admin(f"CREATE ROLE {name} LOGIN PASSWORD '{SECRET}'")
    admin(f"GRANT {name} TO CURRENT_USER")  # to end its sessions when its database is dropped
    admin(f'CREATE DATABASE "{name}"')
    admin(f'GRANT ALL ON DATABASE "{name}" TO {name}')
    admin(f"GRANT ALL ON SCHEMA public TO {name}", database=name)
    try:
        yield make_url(POSTGRES).set(username=name, password=SECRET, database=name).render_as_string(hide_password=False)
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin(f"DROP ROLE IF EXISTS {name}")


@pytest.mark.skipif(not POSTGRES, reason="ASYMLLIC_TEST_POSTGRES not set (make test starts a local PostgreSQL)")
def test_a_study_opened_with_a_password_holds_it_nowhere(role_with_password, tmp_path, smoke_teacher, capfd,
                                                         monkeypatch):
    import optuna

    url = role_with_password
    spec = SearchSpec(study="pw", schedule="smoke", teacher=smoke_teacher, root=str(tmp_path), trials=1,
                      enqueue_presets=False, storage=url, artifact_side=SIDE)
    run_search(spec)
    opened = search.open("pw", root=tmp_path, storage=url)
    printed = [repr(opened)]
    with pytest.raises(StorageError) as refused:  # a wrong password: one line, neither password
        search.open("pw", root=tmp_path, storage=url.replace(SECRET, SECRET[::-1]))
    printed.append(str(refused.value))
    with pytest.raises(Exception) as missing:
        search.open("nope", root=tmp_path, storage=url)
    printed.append(str(missing.value))
    study = opened.optuna
    with search.serve_dashboard("pw", port=0, root=tmp_path, storage=url) as board:
        printed.append(board.storage_url)
        served = _get(f"{board.root_url}/api/studies/{board.study_id}", raw=True).decode()
    out, err = capfd.readouterr()
    stored = [json.dumps(study.user_attrs), json.dumps(study._storage.get_study_system_attrs(study._study_id), default=str), served, out, err, *printed]
    stored += [json.dumps(t.user_attrs) + json.dumps(t.system_attrs, default=str) for t in study.get_trials()]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "spec.yaml" for p in files) and len(list((tmp_path / "pw" / "artifacts").iterdir())) == 3
    assert "***" in refused.value.args[0] and "postgresql://" in served  # the URL shown, masked; stored without it
    for text in stored:
        assert SECRET not in text and SECRET[::-1] not in text
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    # the stored spec reruns with the password from the environment
    rerun = SearchSpec.from_dict(study.user_attrs["spec"], root=str(tmp_path))
    assert rerun.storage == stored_url(url) and SECRET not in rerun.storage
    monkeypatch.setenv("PGPASSWORD", SECRET)
    assert len(optuna.load_study(study_name="pw", storage=rerun.connect_url()).trials) == 1
