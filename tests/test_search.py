"""Real Optuna studies on SQLite at the smoke schedule: objectives, budget, crashes, kills, workers, export."""
import json
from dataclasses import replace
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest
from PIL import Image

import space
from conftest import ROOT, photo, run_cli
from search.driver import run_search
from search.optuna_backend import open_study, run_optuna
from search.spec import SearchSpec
from search.table import pareto_mask, trials_frame




def fake_evaluate(crash_preset=None):
    """Scores a candidate from its complexity alone (fast); marks its folder as trained; optionally crashes on
    one preset's config. Picklable into Ray's worker processes."""
    def evaluate(cfg, spec, trial_dir):
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / "trained").write_text(space.config_id(cfg))
        if crash_preset and cfg.synthesis == space.get_preset(crash_preset).synthesis:
            raise RuntimeError("simulated crash in training")
        from search.candidate import complexity

        g = complexity(cfg, (256, 256))["gs_gmacs"]
        return {"psnr": 20 + 3 * np.log1p(g), "bpp": 0.5, "checkpoint": ""}
    return evaluate


def spec_for(tmp_path, smoke_teacher, **kw):
    return SearchSpec(study="t", schedule="smoke", teacher=smoke_teacher, root=str(tmp_path), **kw)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module's Ray runs (started on first use, stopped at the end)."""
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture(params=["optuna", "ray"])
def backend(request):
    """The same search tests through both backends (one trial pipeline, two thin adapters)."""
    if request.param == "ray":
        request.getfixturevalue("local_ray")
    return request.param


def trained(tmp_path) -> set:
    return {p.read_text() for p in (tmp_path / "t" / "trials").glob("*/trained")}


def test_two_objective_study_end_to_end(tmp_path, smoke_teacher):
    spec = spec_for(tmp_path, smoke_teacher, trials=4)
    study = run_optuna(spec)
    df = trials_frame(study)
    assert (df["state"] == "COMPLETE").sum() == 4
    assert [t.directions for t in [study]][0] == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert set(df["preset"].dropna()) == {"paper", "teacher"}  # enqueued first
    assert list(df.sort_values("number")["preset"][:2]) == ["paper", "teacher"]
    for _, r in df.iterrows():
        assert os.path.isfile(r["checkpoint"]) and len(r["config_id"]) == 12 and r["decoder_gmacs"] > 0
        assert np.isfinite(r["psnr"]) and r["wall_seconds"] > 0
        # selected on the eval photos, reported on the disjoint test photos; bpp is the payload's, as CompressAI's
        assert np.isfinite(r["test_psnr"]) and r["test_psnr"] != r["psnr"] and r["file_bpp"] > r["bpp"] > 0
    # the front in the table is the non-dominated set of (psnr max, MACs min)
    assert df["pareto"].any()
    # results, pareto and export through the CLI; then the export is a real codec
    run_cli("results", "t", "--root", tmp_path, "--csv", tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().count("\n") == 5
    run_cli("pareto", "t", "--root", tmp_path, "--png")
    assert (tmp_path / "t" / "pareto.html").stat().st_size > 1000 and (tmp_path / "t" / "pareto.png").is_file()
    out = run_cli("export", "t", "--top", "1", "--root", tmp_path).stdout.strip().splitlines()[-1]
    img = tmp_path / "x.png"
    Image.fromarray(photo("coffee", (140, 100))).save(img)
    run_cli("compress", img, tmp_path / "x.alic", "--codec", out)
    run_cli("decompress", tmp_path / "x.alic", tmp_path / "y.png", "--codec", out)
    assert np.asarray(Image.open(tmp_path / "y.png")).shape == (100, 140, 3)
    assert run_cli("complexity", f"{out}/config.json", "--json").returncode == 0


def test_over_budget_candidates_are_never_trained(tmp_path, smoke_teacher, backend):
    spec = spec_for(tmp_path, smoke_teacher, trials=5, mac_budget=120.0, backend=backend)  # the teacher (150 G) is over
    study = run_search(spec, evaluate=fake_evaluate())
    df = trials_frame(study)
    # what Optuna Dashboard shows, on either backend (Ray's through the mirror): named objectives, each trained
    # trial's rung value and its artifacts (no checkpoint here: a card and a MAC table, no reconstruction)
    from optuna.artifacts import get_all_artifact_meta

    from search.artifacts import metric_names

    assert study.metric_names == metric_names(spec) == ["PSNR (dB)", "decoder GMACs (exact, 768x512)"]
    for t in study.get_trials():
        assert bool(t.intermediate_values) == (t.state.name == "COMPLETE"), t.number
        assert {m.filename for m in get_all_artifact_meta(t, storage=study._storage)} == {"card.md", "macs.csv"}
    over = df[df["decoder_gmacs"] > 120.0]
    assert len(over) >= 1 and (over["state"] == "PRUNED").all()
    assert over["infeasible"].str.contains("budget").all()
    assert "teacher" in set(over["preset"].dropna())
    assert not set(over["config_id"]) & trained(tmp_path)  # never reached training
    assert set(df[df["state"] == "COMPLETE"]["config_id"]) <= trained(tmp_path)
    assert (df["state"].isin(["COMPLETE", "PRUNED"])).sum() == 5


def test_a_crashing_trial_fails_and_the_study_goes_on(tmp_path, smoke_teacher, backend):
    spec = spec_for(tmp_path, smoke_teacher, trials=4, backend=backend)
    df = trials_frame(run_search(spec, evaluate=fake_evaluate(crash_preset="paper")))
    failed = df[df["state"] == "FAIL"]
    assert len(failed) == 1 and "simulated crash" in failed.iloc[0]["error"]
    assert failed.iloc[0]["preset"] == "paper"
    # Optuna samples until 4 trials finished; Ray runs 4 samples, one of which failed
    assert (df["state"] == "COMPLETE").sum() == (4 if backend == "optuna" else 3)


def _count(storage_dir, state):
    try:
        study = open_study(SearchSpec(study="k", root=str(storage_dir)), create=False)
    except KeyError:  # the database exists, the study not yet
        return 0
    return sum(t.state.name == state for t in study.get_trials(deepcopy=False))


def test_sigkilled_search_resumes_without_losing_finished_trials(tmp_path, smoke_teacher):
    """Multi-fidelity (rungs of 1 and 2 steps): a killed worker's trial is retried, finished ones are kept."""
    args = [sys.executable, "-m", "asymllic", "search", "--study", "k", "--schedule", "smoke", "--trials", "4",
            "--teacher", smoke_teacher, "--root", str(tmp_path), "--heartbeat", "2", "--mac-budget", "none",
            "--min-steps", "1"]
    log = (tmp_path / "first-run.log").open("w")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 600  # a loaded CI machine: the first process may take minutes to its first trial
    while time.time() < deadline and proc.poll() is None:
        time.sleep(1)
        if (tmp_path / "k" / "study.db").exists() and _count(tmp_path, "COMPLETE") >= 1 and _count(tmp_path, "RUNNING") >= 1:
            break
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # it ended by itself (the assertions below say how)
        pass
    proc.wait()
    log.close()
    assert (tmp_path / "k" / "study.db").exists(), (tmp_path / "first-run.log").read_text()[-3000:]
    study = open_study(SearchSpec(study="k", root=str(tmp_path)), create=False)
    done_before = {t.number: t.values for t in study.trials if t.state.name == "COMPLETE"}
    assert done_before and any(t.state.name == "RUNNING" for t in study.trials)
    time.sleep(5)  # past the heartbeat's grace period
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True)
    study = open_study(SearchSpec(study="k", root=str(tmp_path)), create=False)
    after = {t.number: t for t in study.trials}
    assert all(after[n].values == v for n, v in done_before.items())  # nothing finished was lost or redone
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == 4  # complete or stopped at rung 0
    killed = [t for t in study.trials if t.state.name == "FAIL"]
    assert killed and all(t.state.name != "RUNNING" for t in study.trials)
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") in {k.number for k in killed}]
    assert retried and retried[0].state.name in ("COMPLETE", "PRUNED")
    # a third run does nothing: the study is complete
    n = len(study.trials)
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True)
    assert len(open_study(SearchSpec(study="k", root=str(tmp_path)), create=False).trials) == n


def test_two_worker_processes_share_one_sqlite_study(tmp_path, smoke_teacher, strict_cuda, strict_cuda_children):
    """Multi-fidelity with two workers: both rank their rung results against everything stored at that rung. The
    workers are spawned processes that see two GPUs through the strict CUDA stand-in: worker i trains on cuda:i,
    in a process where nothing has started CUDA before its first candidate."""
    from cuda_standin import read_log

    run_cli("search", "--study", "w", "--schedule", "smoke", "--trials", "4", "--workers", "2", "--teacher", smoke_teacher,
            "--root", tmp_path, "--no-presets", "--mac-budget", "none", "--min-steps", "1", "--device", "cuda")
    calls = read_log(strict_cuda_children)
    resets = {(c["pid"], c["device"]) for c in calls if c["call"] == "reset_peak_memory_stats"}
    assert {d for _, d in resets} == {0, 1} and len({p for p, _ in resets}) == 2  # one GPU per worker process
    study = open_study(SearchSpec(study="w", root=str(tmp_path)), create=False)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) >= 4 and len({t.number for t in study.trials}) == len(study.trials)
    assert all("rung_0" in t.user_attrs for t in finished)  # every candidate was scored at rung 0 ...
    for t in finished:  # ... and either reached the top rung (2 steps) or was stopped at rung 0 (1 step)
        assert t.user_attrs["steps"] == (2 if t.state.name == "COMPLETE" else 1)
        assert (t.state.name == "PRUNED") == ("stopped" in t.user_attrs)
    assert any(t.state.name == "COMPLETE" for t in finished)  # the first result at rung 0 always goes on


def test_workers_opening_a_new_sqlite_study_together_all_succeed(tmp_path):
    """Optuna creates its tables with no lock of its own; eight openers released at once all get the storage."""
    import threading

    from search.storage import open_storage

    url = f"sqlite:///{tmp_path / 'race.db'}"
    start, errors = threading.Barrier(8), []

    def opener():
        start.wait()
        try:
            open_storage(url)
        except Exception as e:  # noqa: BLE001 - the assertion below names it
            errors.append(e)

    threads = [threading.Thread(target=opener) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    optuna.create_study(study_name="r", storage=open_storage(url))  # the schema is whole


def test_pareto_mask_is_the_non_dominated_set():
    import pandas as pd

    df = pd.DataFrame({"state": ["COMPLETE"] * 4 + ["PRUNED"], "psnr": [30, 31, 29, 31, 40], "decoder_gmacs": [10, 20, 15, 25, 1]})
    assert list(pareto_mask(df, "synthesis")) == [True, True, False, False, False]


def test_same_seed_same_configs_and_metrics(tmp_path, smoke_teacher):
    frames = []
    for run in ("a", "b"):
        spec = SearchSpec(study="d", schedule="smoke", teacher=smoke_teacher, root=str(tmp_path / run), trials=1,
                          sampler="nsga2", seed=11, enqueue_presets=False)  # one sampled and trained candidate
        frames.append(trials_frame(run_optuna(spec)).sort_values("number"))
    a, b = frames
    assert list(a["config_id"]) == list(b["config_id"])
    assert list(a["psnr"]) == list(b["psnr"]) and list(a["bpp"]) == list(b["bpp"])


def test_a_resumed_study_draws_new_configs(tmp_path, smoke_teacher):
    # the same command again resumes the study; its sampler must not start the seeded sequence over (it did:
    # a resumed search re-trained its first sampled config once per resume)
    spec = spec_for(tmp_path, smoke_teacher, trials=3, enqueue_presets=False, size=(256, 256))
    run_optuna(spec, evaluate=fake_evaluate())
    first = list(trials_frame(run_optuna(spec, evaluate=fake_evaluate()))["config_id"])
    assert len(first) == 3  # nothing left to do: no trial added
    ids = list(trials_frame(run_optuna(replace(spec, trials=6), evaluate=fake_evaluate()))["config_id"])
    assert ids[:3] == first and len(set(ids)) == 6


def test_factorized_fronts_combine_into_real_codecs(tmp_path, smoke_teacher):
    for part in ("synthesis", "hyperprior"):
        run_optuna(SearchSpec(study=part[:2], part=part, schedule="smoke", teacher=smoke_teacher, root=str(tmp_path),
                              trials=2, enqueue_presets=True))
    out = run_cli("factorize", "sy", "hy", "--root", tmp_path, "--measure", "1", "--max-side", "128",
                  "--csv", tmp_path / "pairs.csv").stdout
    import pandas as pd

    pairs = pd.read_csv(tmp_path / "pairs.csv")
    assert len(pairs) >= 1 and pairs["pareto"].any()
    # MACs add: the pair's decoder = its g_s + its hyperprior path
    assert (abs(pairs["decoder_gmacs"] - pairs["gs_trial_gs_gmacs"] - pairs["hp_trial_hyperprior_gmacs"]) < 1e-9).all()
    assert "measured_psnr" in out and "psnr_error_db" in out
    assert list((tmp_path / "sy+hy").glob("*/codec.pt"))
    assert (tmp_path / "sy+hy" / "factorized.html").is_file()

    # beside a joint study: the paper's and the teacher's decoders were trained both ways
    run_optuna(SearchSpec(study="jo", part="joint", schedule="smoke", teacher=smoke_teacher, root=str(tmp_path),
                          trials=2, enqueue_presets=True))
    out = run_cli("factorize", "sy", "hy", "--root", tmp_path, "--joint", "jo").stdout
    same = pd.read_csv(tmp_path / "sy+hy" / "vs-jo.csv")
    assert set(same["preset"]) == {"paper", "teacher"}
    assert (same["predicted_bpp"] > 0).all() and (same["joint_psnr"] > 0).all()
    summary = json.loads((tmp_path / "sy+hy" / "vs-jo.json").read_text())
    assert summary["joint_trials"] == 2 and summary["factorized_trials"] == 4
    assert 0 < summary["hypervolume_factorized_predicted"] and 0 < summary["hypervolume_joint"]
    assert "same_config_psnr_error_db" in out and (tmp_path / "sy+hy" / "vs-jo.html").is_file()


def test_latency_objective_measures_before_training_and_prunes_over_budget(tmp_path, smoke_teacher, backend):
    from asymllic.evaluation.latency import decode_latency

    size = (256, 256)
    # medians of 3: one decode on a loaded machine (CI beside other jobs) once put the paper's decoder over the
    # budget and left no trial to complete
    paper, teacher = (decode_latency(space.get_preset(n), size, "cpu", 1, repeats=3)["decoder_ms"] for n in ("paper", "teacher"))
    assert teacher > paper
    # the teacher's decoder is over it, the paper's under it; two thirds of the way up (log scale), as load on the
    # machine (CI's other test worker) slows the trials' timings more than it speeds them
    budget = paper ** (1 / 3) * teacher ** (2 / 3)
    spec = spec_for(tmp_path, smoke_teacher, trials=3, backend=backend, size=size, objective="latency",
                    latency_threads=1, latency_repeats=3, latency_budget=budget)
    study = run_search(spec, evaluate=fake_evaluate())
    df = trials_frame(study)
    assert study.user_attrs["spec"]["objective"] == "latency"
    assert df["decoder_ms"].notna().all() and df["decoder_gmacs"].notna().all()  # both figures recorded
    over = df[df["decoder_ms"] > budget]
    assert "teacher" in set(over["preset"].dropna()) and (over["state"] == "PRUNED").all()
    assert over["infeasible"].str.contains("ms > budget").all()
    assert not set(over["config_id"]) & trained(tmp_path)
    done = df[df["state"] == "COMPLETE"]
    assert len(done) >= 1 and (done["decoder_ms"] <= budget).all()
    # the front is the study's own (PSNR vs ms); the plot can be drawn on either axis
    assert list(pareto_mask(done, "synthesis", "latency")) == list(done["pareto"])
    run_cli("pareto", "t", "--root", tmp_path)
    run_cli("pareto", "t", "--root", tmp_path, "--x", "macs")


def test_worker_zero_on_two_machines_draws_different_configs(tmp_path, smoke_teacher, monkeypatch):
    """Worker 0 on each of two machines (same pid, one shared storage, nothing drawn yet) gets a sampler seed of
    its own; the first worker on the machine that created the study keeps ``spec.seed`` (a single-process run
    of a new study is reproducible), and every trial records the seed it was drawn with."""
    import socket

    from search.optuna_backend import run_worker, sampler

    spec = spec_for(tmp_path, smoke_teacher, trials=6, sampler="nsga2", seed=5, enqueue_presets=False)
    samplers = {}
    real_optimize = optuna.Study.optimize
    monkeypatch.setattr(optuna.Study, "optimize", lambda study, *a, **k: samplers.setdefault(host, study.sampler))
    monkeypatch.setattr(os, "getpid", lambda: 4242)
    for host in ("machine-a", "machine-b"):  # a creates the study; both start before either draws
        monkeypatch.setattr(socket, "gethostname", lambda host=host: host)
        run_worker(spec, fake_evaluate(), index=0)

    def first_params(s):
        study = optuna.load_study(study_name="t", storage=spec.storage_url, sampler=s)
        return space.suggest_params(study.ask(), spec.part)

    a, b = first_params(samplers["machine-a"]), first_params(samplers["machine-b"])
    assert a != b
    assert samplers["machine-a"].asymllic_seed == 5 and a == first_params(sampler(spec))  # spec.seed, as before
    monkeypatch.setattr(optuna.Study, "optimize", real_optimize)
    run_worker(replace(spec, trials=1), fake_evaluate(), index=0)
    done = [t for t in open_study(spec, create=False).get_trials() if t.state.name == "COMPLETE"]
    assert done and all(isinstance(t.system_attrs["sampler_seed"], int) for t in done)
    assert all(t.system_attrs["worker"] == "machine-b:4242" for t in done)


def test_a_machine_fault_ends_a_ray_search_with_one_line(tmp_path, smoke_teacher, local_ray):
    """A full disk on the machine that runs a Ray trial: the experiment stops (no next trial takes the same fault)
    with one line naming the host, and the study keeps the trial with its error."""
    import errno

    from asymllic.errors import AsymllicError

    def full_disk(cfg, spec, trial_dir):
        raise OSError(errno.ENOSPC, "No space left on device", str(trial_dir))

    spec = spec_for(tmp_path, smoke_teacher, trials=3, backend="ray", enqueue_presets=False, mac_budget=None)
    with pytest.raises(AsymllicError, match="a machine cannot take trials, the search stopped") as info:
        run_search(spec, evaluate=full_disk)
    assert "\n" not in str(info.value) and f"on {socket.gethostname()}:" in str(info.value)
    (trial,) = open_study(spec, create=False).trials
    assert trial.state.name == "FAIL" and "No space left" in trial.user_attrs["error"]


def test_the_ray_mirror_adds_never_deletes_and_fails_a_trial_that_raised(tmp_path, teacher_ckpt):
    """Mirroring Ray results into the study: a trial that reported a rung and then died (its node lost) is failed
    with Ray's reason, not pruned as stopped at that rung; one not run yet is left out; a second mirror (a rerun
    from any machine, even of a new experiment) adds what is new and keeps what the study holds."""
    from types import SimpleNamespace

    from search.candidate import base_config, complexity
    from search.ray_backend import mirror
    from search.trial import COMPLETE, TrialRecord

    spec = spec_for(tmp_path, str(teacher_ckpt), backend="ray", min_steps=1)
    base = base_config(spec)
    from search.spec import reference_params

    params = list(reference_params("synthesis").values())  # the paper's decoder's and the teacher's axis values

    def result(name, p, status=None, error=None):
        cfg = space.config_from_params(p, "synthesis", base)
        rec = TrialRecord(status or COMPLETE, space.to_dict(cfg), space.config_id(cfg), complexity(cfg, spec.size),
                          metrics={"psnr": 20.0, "bpp": 0.5, "rung": 0, "steps": 1})
        if status == "stopped":
            rec = rec.stopped(2)
        metrics = {"record": json.dumps(rec.to_dict())} if status else {}
        return SimpleNamespace(config=p, metrics=metrics, error=error, path=str(tmp_path / "ray" / name))

    died = result("t1", params[0], "stopped", RuntimeError("ray.exceptions.ActorDiedError: the node was lost"))
    first = mirror(spec, [result("t0", params[1], COMPLETE), died, result("t2", params[0])])  # t2: not run yet
    states = sorted((t.user_attrs["ray_trial"], t.state.name) for t in first.trials)
    assert states == [("t0", "COMPLETE"), ("t1", "FAIL")]
    assert "node was lost" in next(t for t in first.trials if t.state.name == "FAIL").user_attrs["error"]
    again = mirror(spec, [result("t1", params[0], COMPLETE), result("t2", params[0], COMPLETE)])
    assert sorted((t.user_attrs["ray_trial"], t.state.name) for t in again.trials) == \
        [("t0", "COMPLETE"), ("t1", "COMPLETE"), ("t1", "FAIL"), ("t2", "COMPLETE")]


def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed_and_retried(tmp_path):
    """Optuna's stale-trial check skips RUNNING trials without a heartbeat; a worker killed in the first moments of
    a trial leaves one. Past the grace period the study's storage finds it stale too, so it is failed and retried."""
    from optuna.storages import fail_stale_trials

    from search.storage import open_storage

    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat=1))
    dead = study.ask()  # RUNNING, and no heartbeat: ask() starts no heartbeat thread
    fail_stale_trials(study)
    assert study.trials[0].state.name == "RUNNING"  # within the grace period (2 s): it may be starting now
    time.sleep(2.5)
    fail_stale_trials(study)
    states = {t.number: t.state.name for t in study.trials}
    assert states[dead.number] == "FAIL" and list(states.values()).count("WAITING") == 1  # failed, then re-queued
