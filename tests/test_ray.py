"""The Ray Tune backend: same space and objectives through OptunaSearch, local Ray, restore, mirrored results."""

from conftest import run_cli
from search.optuna_backend import open_study
from search.spec import SearchSpec
from search.table import trials_frame




def test_ray_search_with_budget_restore_and_mirror(tmp_path, smoke_teacher):
    args = ["search", "--study", "r", "--backend", "ray", "--preset", "smoke", "--trials", "3", "--teacher", smoke_teacher,
            "--root", tmp_path, "--mac-budget", "140"]
    out = run_cli(*args)
    assert "3 trials" in out.stdout
    df = trials_frame(open_study(SearchSpec(study="r", root=str(tmp_path)), create=False))
    assert len(df) == 3
    teacher_row = df[df["decoder_gmacs"] > 140]
    assert len(teacher_row) == 1 and teacher_row.iloc[0]["state"] == "PRUNED"  # the teacher: over budget, not trained
    assert "budget" in teacher_row.iloc[0]["infeasible"]
    done = df[df["state"] == "COMPLETE"]
    assert len(done) == 2 and "paper" in set(done["preset"].dropna()) and done["psnr"].notna().all()
    trial_dirs = sorted(p.name for p in (tmp_path / "r" / "trials").iterdir())
    assert len(trial_dirs) == 2
    # the same command again restores the finished experiment: nothing is re-run
    run_cli(*args)
    assert sorted(p.name for p in (tmp_path / "r" / "trials").iterdir()) == trial_dirs
    assert len(trials_frame(open_study(SearchSpec(study="r", root=str(tmp_path)), create=False))) == 3
