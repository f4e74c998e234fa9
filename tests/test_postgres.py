"""One study on a real PostgreSQL server, two worker processes started separately (as two machines would)."""
import os
import subprocess
import sys
import uuid

import optuna
import pytest

from conftest import ROOT, run_cli
from search.optuna_backend import open_study
from search.spec import SearchSpec
from search.table import pareto_mask, trials_frame

URL = os.environ.get("ASYMLLIC_TEST_POSTGRES")
pytestmark = pytest.mark.skipif(not URL, reason="ASYMLLIC_TEST_POSTGRES not set (make test starts a local PostgreSQL)")




def test_two_separately_started_workers_share_a_postgres_study(tmp_path, smoke_teacher):
    name = f"pg-{uuid.uuid4().hex[:8]}"
    args = [sys.executable, "-m", "search.cli", "search", "--study", name, "--preset", "smoke", "--trials", "4",
            "--teacher", smoke_teacher, "--root", str(tmp_path), "--storage", URL, "--sampler", "random"]
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err.decode()[-2000:]
    try:
        study = open_study(SearchSpec(study=name, storage=URL, root=str(tmp_path)), create=False)
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
        assert "COMPLETE" in run_cli("results", name, "--storage", URL, "--root", tmp_path).stdout
        run_cli("pareto", name, "--storage", URL, "--root", tmp_path, "--no-png")
        run_cli("export", name, "--storage", URL, "--root", tmp_path)
    finally:
        optuna.delete_study(study_name=name, storage=URL)
