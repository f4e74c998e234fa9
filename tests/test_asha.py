"""Multi-fidelity search (MO-ASHA): rungs, the promotion ranking on hand-made rung results, rung-by-rung training
that resumes from its checkpoint, and searches through both backends."""
import json

import numpy as np
import pytest

import space
from search.asha import crowding_distance, nondominated_fronts, promotable, ranking, rungs
from search.driver import run_search
from search.spec import SearchSpec
from search.table import trials_frame
from search.trial import COMPLETE, STOPPED, run_trial
from test_search import backend, local_ray  # noqa: F401 - the backend-parametrized fixture


def test_rungs_grow_by_eta_up_to_the_top():
    assert rungs(10, 150, 3) == [10, 30, 90, 150]
    assert rungs(1, 4, 2) == [1, 2, 4]
    assert rungs(5, 5, 3) == [5]
    for bad in ((0, 10, 3), (20, 10, 3), (1, 10, 1)):
        with pytest.raises(space.ConfigError):
            rungs(*bad)
    assert SearchSpec("s", schedule="cpu", min_steps=10).rungs() == [10, 30, 90, 150]  # cpu: 150 steps a candidate
    assert SearchSpec("s", schedule="cpu").rungs() == [150]  # one fidelity


# one rung's results, minimised: (-PSNR, GMACs). A, B, C are the non-dominated front (A and B its ends);
# D is dominated by A and C; E and F by everything before them
RUNG = {"A": [-30.0, 10.0], "B": [-32.0, 20.0], "C": [-31.0, 15.0], "D": [-29.0, 20.0], "E": [-28.0, 30.0],
        "F": [-27.0, 40.0]}


def test_ranking_is_by_front_then_crowding_distance():
    keys = sorted(RUNG)
    pts = np.array([RUNG[k] for k in keys])
    assert [sorted(keys[i] for i in f) for f in nondominated_fronts(pts)] == [["A", "B", "C"], ["D"], ["E"], ["F"]]
    crowd = crowding_distance(pts[:3])  # A, B, C: the ends are infinitely crowded-free, C in between
    assert np.isinf(crowd[0]) and np.isinf(crowd[1]) and np.isfinite(crowd[2])
    assert [keys[i] for i in ranking(pts)] == ["A", "B", "C", "D", "E", "F"]
    # within one front, the less crowded point first: X sits alone far from Y and Z, which are close together
    spread = np.array([[0.0, 10.0], [5.0, 5.0], [5.1, 4.9], [10.0, 0.0]])
    assert ranking(spread)[:2] == [0, 3] and ranking(spread)[2] in (1, 2)


def test_promotions_on_hand_made_rung_results():
    # 6 results, eta 3: the best 2 go on, the front's two ends; C is on the front but more crowded
    assert {k for k in RUNG if promotable(RUNG, k, 3)} == {"A", "B"}
    assert {k for k in RUNG if promotable(RUNG, k, 2)} == {"A", "B", "C"}
    # asynchronous: the first result at a rung always goes on; the second only if it ranks first of the two
    assert promotable({"D": RUNG["D"]}, "D", 3)
    assert not promotable({"A": RUNG["A"], "D": RUNG["D"]}, "D", 3)
    assert promotable({"A": RUNG["A"], "D": RUNG["D"]}, "A", 3)
    # every worker takes the same decision whatever order it read the results in
    shuffled = dict(reversed(list(RUNG.items())))
    assert all(promotable(shuffled, k, 3) == promotable(RUNG, k, 3) for k in RUNG)
    with pytest.raises(KeyError):
        promotable(RUNG, "Z", 3)



def test_the_ray_scheduler_ranks_against_the_rung_results_of_a_restored_search():
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    from search.ray_asha import MultiObjectiveASHA

    def trial(key, history):  # what Tuner.restore hands the scheduler: the trial and its last reported result
        return SimpleNamespace(trial_id=key, last_result={"rung_history": json.dumps(history)}, config={},
                               evaluated_params={})

    scheduler = MultiObjectiveASHA(top_rung=2, eta=3)
    for key in "ABC":  # three trials of the interrupted run, each reported rungs 0 and 1 (and the top rung 2)
        scheduler.on_trial_add(None, trial(key, {"0": RUNG[key], "1": RUNG[key], "2": RUNG[key]}))
    assert scheduler.results[0] == {k: RUNG[k] for k in "ABC"} and 2 not in scheduler.results
    # a new trial at rung 0 that A dominates: with the restored ledger it is 4th of 4 and stops; a scheduler
    # that forgot them would see it first at its rung and let it go on
    d = trial("D", {})
    scheduler.on_trial_add(None, d)
    decision = scheduler.on_trial_result(None, d, {"rung": 0, "rung_values": json.dumps(RUNG["D"])})
    assert decision == TrialScheduler.STOP
    assert MultiObjectiveASHA(2, 3).on_trial_result(None, d, {"rung": 0, "rung_values": json.dumps(RUNG["D"])}) \
        == TrialScheduler.CONTINUE

def test_a_candidate_resumes_from_its_checkpoint_at_each_rung(tmp_path, smoke_teacher):
    """Real training (smoke): rung 0 trains 1 step, rung 1 goes on to 2 from the saved state; a stopped candidate
    keeps its checkpoint and rung figures and drops its optimiser state."""
    spec = SearchSpec("t", schedule="smoke", teacher=smoke_teacher, root=str(tmp_path), min_steps=1)  # rungs 1, 2
    cfg = space.get_preset("paper")
    seen = []

    def go_on(rung, record):
        seen.append((rung, record.metrics["steps"], (tmp_path / "a" / "stage1" / "train_state.pt").is_file()))
        return True

    record = run_trial(cfg, spec, tmp_path / "a", on_rung=go_on)
    assert record.status == COMPLETE and record.metrics["steps"] == 2 and record.metrics["rung"] == 1
    assert seen == [(0, 1, True)]  # scored at rung 0 with its state kept for rung 1
    log = [json.loads(line)["step"] for line in (tmp_path / "a" / "stage1" / "log.jsonl").read_text().splitlines()]
    assert log == [1, 2]  # rung 1 resumed at step 1: no step trained twice
    assert not (tmp_path / "a" / "stage1" / "train_state.pt").exists()  # top rung: nothing left to resume
    assert np.isfinite(record.metrics["test_psnr"])  # reported on the test photos at the top rung

    record = run_trial(cfg, spec, tmp_path / "b", on_rung=lambda rung, record: False)
    assert record.status == STOPPED and record.metrics["steps"] == 1 and "rung 0 (1 of 2 steps)" in record.reason
    assert np.isfinite(record.metrics["psnr"]) and (tmp_path / "b" / "stage1" / "codec.pt").is_file()
    assert "test_psnr" not in record.metrics  # below the top rung only the selection photos are scored
    assert not (tmp_path / "b" / "stage1" / "train_state.pt").exists()


def fidelity_evaluate():
    """Fast and deterministic: quality from the candidate's MACs and its steps; logs each call's (steps, plan).
    A closure, so Ray's workers get it by value."""
    def evaluate(cfg, spec, trial_dir):
        from search.candidate import complexity

        trial_dir.mkdir(parents=True, exist_ok=True)
        with (trial_dir / "calls.jsonl").open("a") as f:
            f.write(json.dumps([spec.steps, spec.plan_steps]) + "\n")
        g = complexity(cfg, (256, 256))["gs_gmacs"]
        return {"psnr": 20 + 3 * np.log1p(g) + np.log(spec.steps), "bpp": 0.5, "checkpoint": ""}
    return evaluate


def test_multi_fidelity_search_through_both_backends(tmp_path, smoke_teacher, backend):
    spec = SearchSpec("t", schedule="smoke", teacher=smoke_teacher, root=str(tmp_path), trials=8, backend=backend,
                      steps=4, min_steps=1, eta=2, size=(256, 256), seed=3)  # rungs 1, 2, 4
    study = run_search(spec, evaluate=fidelity_evaluate())
    df = trials_frame(study)
    done, stopped = df[df["state"] == "COMPLETE"], df[df["stopped"].notna()] if "stopped" in df else df.iloc[0:0]
    assert len(done) >= 2 and len(stopped) >= 2 and len(done) + len(stopped) == len(df) == 8
    assert (done["steps"] == 4).all() and (stopped["state"] == "PRUNED").all() and (stopped["steps"] < 4).all()
    assert set(done["preset"].dropna()) == {"paper", "teacher"}  # the references always reach the top rung
    for folder in (tmp_path / "t" / "trials").iterdir():  # each rung once, in order, in one learning-rate plan
        calls = [json.loads(line) for line in (folder / "calls.jsonl").read_text().splitlines()]
        assert calls == [[s, 4] for s in (1, 2, 4)[:len(calls)]]
    assert not df.loc[df["state"] != "COMPLETE", "pareto"].any()  # the front holds top-rung figures only
    from search.plots.pareto import pareto_figure

    names = [t.name for t in pareto_figure(df, "synthesis").data]
    assert "stopped at a lower rung (its figures)" in names
