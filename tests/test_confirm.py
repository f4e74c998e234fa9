"""Confirmation of a study's picks: seeds x longer schedule, paired differences to the references, verdicts,
resume after a kill, the Ray backend, and one real run at the smoke schedule."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import space
from conftest import ROOT
from search.confirm import RECORD_FILE, confirm, decoders, open_study_frame, run_folder, run_key, seed_list
from search.confirm_report import MD
from search.optuna_backend import run_optuna
from search.spec import SearchSpec
from search.verdicts import CONFIRM_DIR, CSV, Paired, paired, t_quantile, verdict, verdict_for

TESTS = Path(__file__).resolve().parent


def fake_training(log: str | None = None, sleep: float = 0.0):
    """An ``evaluate`` that scores a decoder without training: a quality per synthesis (teacher 30, paper 29, any
    other 29.6 dB) plus the seed's luck, shared by every decoder (what pairing by seed removes), plus a little of
    its own. Logs each call (config id, seed, steps) to ``log``; sleeps ``sleep`` s. A closure: Ray's workers get
    it by value, without importing this module."""
    def evaluate(cfg, spec, trial_dir):
        trial_dir = Path(trial_dir)
        trial_dir.mkdir(parents=True, exist_ok=True)
        cid = space.config_id(cfg)
        if log:
            with open(log, "a") as f:
                f.write(f"{cid} {spec.seed} {spec.steps}\n")
        time.sleep(sleep)
        q = {space.get_preset("teacher").synthesis: 30.0, space.get_preset("paper").synthesis: 29.0}.get(cfg.synthesis, 29.6)
        psnr = q + 0.3 * math.sin(2.0 * spec.seed + 0.5) + 0.01 * math.sin(spec.seed * 1.7 + int(cid[:4], 16))
        out = {"psnr": psnr, "bpp": 0.5, "rd_cost": 100 - psnr, "checkpoint": ""}
        out.update({f"test_{k}": v for k, v in out.items() if k != "checkpoint"})
        return out

    return evaluate


def calls(log: Path) -> list:
    return [tuple(line.split()) for line in log.read_text().splitlines()] if log.is_file() else []


@pytest.fixture(scope="module")
def untrained_teacher(tmp_path_factory) -> str:
    """A TCM-small checkpoint with seeded weights and a lambda in its meta (no training: instant)."""
    from asymllic.codec.checkpoint import new_codec, save_codec

    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    save_codec(new_codec(space.teacher_config(64), seed=0), path, meta={"lmbda": 0.0067})
    return str(path)


@pytest.fixture(scope="module")
def study(tmp_path_factory, untrained_teacher) -> SearchSpec:
    """A 3-trial synthesis study (the paper's decoder, the teacher, one sampled decoder) scored by fake_training."""
    root = tmp_path_factory.mktemp("confirm")
    spec = SearchSpec(study="c", schedule="smoke", teacher=untrained_teacher, root=str(root), trials=3)
    run_optuna(spec, evaluate=fake_training())
    return spec


def sampled_trial(spec: SearchSpec) -> int:
    _, df = open_study_frame(spec.study, root=spec.root)
    rows = df[df["preset"].isna() & (df["state"] == "COMPLETE")]
    return int(rows.iloc[0]["number"])


def copy_study(spec: SearchSpec, tmp_path: Path) -> Path:
    """A root holding a copy of the study without its confirmation runs (other tests' records stay out)."""
    import shutil

    root = tmp_path / "study"
    shutil.copytree(spec.dir, root / spec.study, ignore=shutil.ignore_patterns(CONFIRM_DIR))
    return root


def test_t_quantile_is_students():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 5, 10, 30, 31, 45, 100, 1000):
        assert t_quantile(df) == pytest.approx(float(scipy_stats.t.ppf(0.975, df)), abs=2e-4)
    with pytest.raises(ValueError):
        t_quantile(0)


def test_paired_differences_and_verdicts():
    a = {0: 30.5, 1: 30.1, 2: 29.9}
    b = {0: 30.0, 1: 29.7, 2: 29.3, 7: 1.0}  # seed 7 has no partner: left out
    p = paired(a, b)
    assert p.n == 3 and p.mean == pytest.approx(0.5) and p.lo < 0.5 < p.hi
    half = 4.302653 * np.std([0.5, 0.4, 0.6], ddof=1) / math.sqrt(3)
    assert (p.lo, p.hi) == (pytest.approx(0.5 - half), pytest.approx(0.5 + half)) and p.outside_noise
    text = verdict(p, "psnr", "paper", 0.38)
    assert text.startswith("beats the paper's decoder by 0.50 dB PSNR (95% CI +0.25 to +0.75, 3 seeds)")
    assert text.endswith("at 38 % of its MACs, outside seed noise")
    assert verdict(Paired(3, -0.5, -0.8, -0.2), "psnr", "teacher", 0.5).startswith("worse than the teacher's decoder by 0.50 dB")
    assert verdict(Paired(3, 0.1, -0.2, 0.4), "psnr", "paper").startswith("within seed noise of the paper's decoder: +0.10 dB")
    # a lower RD cost is the better one
    assert verdict(Paired(3, -0.2, -0.3, -0.1), "rd_cost", "paper").startswith("beats the paper's decoder by 0.2000 in RD cost")
    assert "no confidence interval" in verdict(paired({0: 1.0}, {0: 0.5}), "psnr", "paper")
    assert verdict(paired({0: 1.0}, {1: 0.5}), "psnr", "paper").startswith("no seed finished")
    assert paired({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0}).outside_noise is False  # identical: no difference at all


def test_confirm_picks_references_outputs_and_resume(study, tmp_path):
    log = tmp_path / "calls.txt"
    n = sampled_trial(study)
    res = confirm(study.study, picks=[n], root=study.root, evaluate=fake_training(str(log)), progress=False)
    assert res.trained == 9 and len(calls(log)) == 9
    # steps: 4x the study's steps per candidate (smoke: 2), the study's seed first
    assert {c[2] for c in calls(log)} == {"8"} and {c[1] for c in calls(log)} == {"0", "1", "2"}
    s = res.summary.set_index("decoder")
    assert list(res.summary["decoder"]) == [f"trial {n}", "paper", "teacher"]
    assert (s["seeds"] == 3).all() and s.loc[f"trial {n}", "kind"] == "pick" and s.loc["paper", "kind"] == "reference"
    assert s.loc[f"trial {n}", "test_psnr_vs_paper"] == pytest.approx(0.6, abs=0.05)
    assert s.loc[f"trial {n}", "test_psnr_std"] > 0.1  # the seeds' luck ...
    assert s.loc[f"trial {n}", "test_psnr_vs_paper_hi"] - s.loc[f"trial {n}", "test_psnr_vs_paper_lo"] < 0.2  # ... pairs out
    v = s.loc[f"trial {n}", "verdict"]
    assert "beats the paper's decoder by 0.6" in v and "worse than the teacher's decoder by 0.4" in v
    assert "outside seed noise" in v and "% of its MACs" in v
    assert "worse than the teacher's decoder by 1.0" in s.loc["paper", "verdict"]
    assert pd.isna(s.loc["teacher"]["verdict_vs_teacher"])  # never compared with itself
    # one folder and one record per (decoder, seed); the tables, the page and the figure
    cid = s.loc[f"trial {n}", "config_id"]
    rec = json.loads((run_folder(study.dir, cid, 2, run_key(study, 8)) / RECORD_FILE).read_text())
    assert rec["status"] == "complete" and rec["seed"] == 2 and rec["steps"] == 8 and rec["trial"] == n
    folder = study.dir / CONFIRM_DIR
    assert len(list(folder.glob(f"*/{RECORD_FILE}"))) == 9
    table = pd.read_csv(folder / CSV, dtype={"config_id": str})
    assert len(table) == 3 and table["verdict"].notna().sum() == 3
    md = (folder / MD).read_text()
    assert f"| trial {n} | {cid} |" in md and "beats the paper's decoder" in md
    assert (folder / "confirm.html").stat().st_size > 1000
    from search.plots.confirm import confirm_figure

    fig = confirm_figure(res.summary, "synthesis")
    assert [t.name for t in fig.data] == ["picks", "references", "vs paper", "vs teacher"]
    assert fig.data[0].error_y.array[0] > 0.1 and len(fig.data[2].x) == 2  # the pick and the teacher vs the paper
    assert fig.data[2].error_y.arrayminus[0] > 0 and fig.data[2].error_y.array[0] > 0
    assert verdict_for(study.dir, cid).startswith("beats the paper's decoder") and verdict_for(study.dir, "0" * 12) is None
    assert verdict_for(study.dir / "nowhere", cid) is None
    # the same call again trains nothing; one more seed trains one run per decoder
    log.unlink()
    again = confirm(study.study, picks=[n], root=study.root, evaluate=fake_training(str(log)), progress=False)
    assert again.trained == 0 and not log.exists()
    pd.testing.assert_frame_equal(again.summary, res.summary)
    more = confirm(study.study, picks=[n], seeds=4, root=study.root, evaluate=fake_training(str(log)), progress=False)
    assert more.trained == 3 and {c[1] for c in calls(log)} == {"3"} and (more.summary["seeds"] == 4).all()
    # a record made at another precision (or teacher, lambda, data, ...) is never read back as this run's
    log.unlink()
    one = dict(picks=[n], seeds=[7], root=study.root, references=(), evaluate=fake_training(str(log)), progress=False)
    assert confirm(study.study, **one).trained == 1 and confirm(study.study, **one).trained == 0
    other = confirm(study.study, **one, overrides={"precision": "bf16"})
    assert other.trained == 1 and len(calls(log)) == 2
    # ... nor overwritten: each key has its folder, and both are read back
    assert len(list(folder.glob(f"{cid}-s7-*/{RECORD_FILE}"))) == 2
    assert confirm(study.study, **one).trained == 0 and confirm(study.study, **one, overrides={"precision": "bf16"}).trained == 0
    # a record in the folder of earlier versions (no key in its name) is read back when its key matches
    fp32 = [f.parent for f in folder.glob(f"{cid}-s7-*/{RECORD_FILE}") if json.loads(f.read_text())["key"]["precision"] != "bf16"]
    fp32[0].rename(run_folder(study.dir, cid, 7))
    assert confirm(study.study, **one).trained == 0 and len(calls(log)) == 2


def test_export_picks_and_a_pick_that_is_a_reference(study, tmp_path):
    from search.export import pick

    spec, df = open_study_frame(study.study, root=study.root)
    assert spec.teacher == study.teacher and spec.schedule == "smoke"  # the study's own spec
    picks = pick(df, "synthesis", include_references=True, top=3)
    got = decoders(spec, df, picks, ("paper", "teacher"))
    assert len(got) == 3 and {d.kind for d in got} >= {"reference"}  # the presets among the picks are the references
    assert sorted(d.label for d in got if d.kind == "reference") == ["paper", "teacher"]
    default = decoders(spec, df, None, ())
    assert len(default) == 1 and default[0].trial == pick(df, "synthesis")[0].number  # export's default pick
    log = tmp_path / "calls.txt"
    res = confirm(spec, picks=[pick(df, "synthesis")[0]], references=("paper",), seeds=[5, 6], steps=3,
                  evaluate=fake_training(str(log)), progress=False)
    assert len(calls(log)) == 4 and {c[2] for c in calls(log)} == {"3"} and set(res.runs["seed"]) == {5, 6}
    assert list(res.summary.columns).count("verdict_vs_paper") == 1


def test_bad_inputs_are_one_line_errors(study):
    from asymllic.errors import AsymllicError

    with pytest.raises(AsymllicError, match="no study 'nope'"):
        confirm("nope", root=study.root)
    assert not (Path(study.root) / "nope").exists()
    with pytest.raises(space.ConfigError, match="unknown reference 'tcm'"):
        confirm(study.study, picks=[0], references=("tcm",), root=study.root)
    with pytest.raises(space.ConfigError, match="trial 99 is not a trial"):
        confirm(study.study, picks=[99], root=study.root)
    with pytest.raises(space.ConfigError, match="at least 1 seed"):
        seed_list(study, 0)
    with pytest.raises(space.ConfigError, match="distinct seeds"):
        seed_list(study, [1, 1])
    with pytest.raises(space.ConfigError, match="unknown backend"):
        confirm(study.study, picks=[0], backend="dask", root=study.root)


_KILLED = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from test_confirm import fake_training
from search.confirm import confirm
confirm("c", picks=[{trial}], references=("paper",), seeds=2, steps=5, root={study_root!r},
        evaluate=fake_training({log!r}, sleep=3.0))
"""


def test_a_killed_confirmation_resumes_without_redoing_finished_runs(study, tmp_path):
    root = copy_study(study, tmp_path)
    log = tmp_path / "calls.txt"
    n = sampled_trial(study)
    script = _KILLED.format(root=str(ROOT), tests=str(TESTS), trial=n, study_root=str(root), log=str(log))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    folder = root / study.study / CONFIRM_DIR
    deadline = time.time() + 240
    while not list(folder.glob(f"*/{RECORD_FILE}")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read().decode()[-2000:]  # still running: killed mid-way
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = [p.parent.name for p in folder.glob(f"*/{RECORD_FILE}")]
    assert len(finished) == 1, proc.stdout.read().decode()[-2000:]
    first = calls(log)
    assert 1 <= len(first) <= 2  # the second run had started when it was killed
    log.unlink()
    res = confirm(study.study, picks=[n], references=("paper",), seeds=2, steps=5, root=str(root),
                  evaluate=fake_training(str(log)), progress=False)
    redone = {f"{c[0]}-s{c[1]}" for c in calls(log)}
    assert res.trained == 3 and len(redone) == 3 and finished[0].rsplit("-", 1)[0] not in redone
    assert (res.summary["seeds"] == 2).all()


@pytest.mark.xdist_group("ray")
def test_ray_backend_runs_the_same_records(study, tmp_path, ray_stopped_after):
    root = copy_study(study, tmp_path)
    log = tmp_path / "calls.txt"
    res = confirm(study.study, picks=[], references=("paper", "teacher"), seeds=1, steps=2, backend="ray",
                  root=str(root), evaluate=fake_training(str(log)), progress=False)
    assert len(calls(log)) == 2 and res.trained == 2 and (res.summary["seeds"] == 1).all()
    assert len(list((root / study.study / CONFIRM_DIR).glob(f"*/{RECORD_FILE}"))) == 2
    assert "no confidence interval" in res.summary.set_index("decoder").loc["paper", "verdict"]


def test_a_real_confirmation_run_at_the_smoke_schedule(study, tmp_path, strict_cuda):
    """The real trial pipeline: stage-1 training (1 step) and evaluation on the test photos, one run, on ``cuda:1``
    as the strict CUDA stand-in shows it (tensors on the CPU)."""
    root = copy_study(study, tmp_path)
    res = confirm(study.study, picks=[], references=("paper",), seeds=1, steps=1, root=str(root), progress=False,
                  overrides={"device": "cuda:1"})
    assert {c["device"] for c in strict_cuda.log if c["call"] == "reset_peak_memory_stats"} == {1}
    r = res.runs.iloc[0]
    assert r["status"] == "complete" and np.isfinite(r["test_psnr"]) and r["test_bpp"] > 0 and r["steps"] == 1
    assert os.path.isfile(r["checkpoint"]) and str(run_folder(root / study.study, r["config_id"], 0)) in r["checkpoint"]
    assert res.summary.iloc[0]["verdict"] == ""  # nothing to compare with


def test_a_config_pick_is_completed_with_the_studys_fixed_part(study, tmp_path):
    """In a synthesis study a pick is counted, trained and reported with the teacher's hyperprior path: a synthesis
    config alone is completed with it, a whole config that carries another hyperprior is refused in one line."""
    from search.candidate import complexity

    rbu = space.get_preset("g_s/rbu")  # the teacher's hyperprior path: agrees with the study
    res = confirm(study, picks=[rbu.synthesis], references=(), seeds=1, steps=2,
                  overrides={"root": str(tmp_path)}, evaluate=fake_training(), progress=False)
    row = res.summary.iloc[0]
    assert row["config_id"] == space.config_id(rbu)
    assert row["decoder_gmacs"] == pytest.approx(complexity(rbu, study.size)["decoder_gmacs"])
    rec = json.loads((run_folder(tmp_path / study.study, row["config_id"], study.seed, run_key(study, 2)) / RECORD_FILE).read_text())
    assert space.from_dict(rec["record"]["config"]) == rbu
    again = confirm(study, picks=[rbu], references=(), seeds=1, steps=2, overrides={"root": str(tmp_path)},
                    evaluate=fake_training(), progress=False)
    assert again.trained == 0  # the whole config is the same decoder
    own_hp = space.get_preset("paper")  # Ours g_s with its own (slices 5, Ours) hyperprior path
    with pytest.raises(space.ConfigError, match="differs from the study's teacher in its hyperprior") as e:
        confirm(study, picks=[own_hp], references=(), seeds=1, steps=2, overrides={"root": str(tmp_path)},
                evaluate=fake_training(), progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(space.ConfigError, match="no pick of a synthesis study"):
        decoders(study, None, [own_hp.hyperprior], ())


def test_confirm_from_a_spec_alone_needs_no_stored_study(untrained_teacher, tmp_path):
    spec = SearchSpec(study="never-searched", schedule="smoke", teacher=untrained_teacher, root=str(tmp_path))
    res = confirm(spec, picks=[space.get_preset("g_s/conv_k5")], references=("paper",), seeds=2, steps=2,
                  evaluate=fake_training(), progress=False)
    assert res.trained == 4 and list(res.summary["decoder"])[1] == "paper"
    assert not list(tmp_path.rglob("*.db"))  # no storage was opened, nor created
    with pytest.raises(Exception, match="no study 'never-searched'"):  # its best trial: that needs the study
        confirm(spec, picks=None, evaluate=fake_training(), progress=False)
