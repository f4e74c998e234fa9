"""The Ray Tune backend on a local Ray: same space and objectives through OptunaSearch, budget, restore, mirrored
results. On a real cluster (two nodes, a killed driver, a lost node, token authentication, GPUs per trial):
tests/test_cluster.py."""
from conftest import run_cli
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
