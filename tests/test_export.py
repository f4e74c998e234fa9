"""Which trials ``asymllic export`` picks and what their cards say: never the reference presets unless asked,
the best within a MAC budget, K picks spread along the Pareto front, the pick's place on the front."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import space
from conftest import run_cli
from search.export import export, pick, spread
from search.table import pareto_mask

# number, state, preset, psnr, decoder_gmacs. Candidates' front (references left out): 2, 3, 7, 5 by MACs;
# with the references the teacher (1) joins it and the paper's decoder (0) is dominated by trial 3.
TRIALS = [
    (0, "COMPLETE", "paper", 29.0, 40.0),
    (1, "COMPLETE", "teacher", 31.0, 150.0),
    (2, "COMPLETE", None, 28.0, 10.0),
    (3, "COMPLETE", None, 29.5, 30.0),
    (4, "COMPLETE", None, 27.0, 20.0),  # dominated by 2
    (5, "COMPLETE", None, 30.5, 60.0),
    (6, "COMPLETE", None, 30.0, 80.0),  # dominated by 5
    (7, "COMPLETE", None, 29.8, 45.0),
    (8, "FAIL", None, np.nan, np.nan),
    (9, "PRUNED", None, np.nan, 3.0),  # refused before training: over some budget, never a candidate
]
# distinct configs for the other trials, none of them a reference's
CONFIGS = [n for n in space.list_presets() if space.config_id(space.get_preset(n)) not in
           {space.config_id(space.get_preset(r)) for r in ("paper", "teacher")}]


def frame(tmp_path, trials=TRIALS, part="synthesis") -> pd.DataFrame:
    """A study table shaped like ``search.table.trials_frame``'s, with a small (weights-only) file per trial."""
    rows = []
    for (number, state, preset, psnr, gmacs), name in zip(trials, CONFIGS):
        cfg = space.get_preset(preset or name)
        ckpt = tmp_path / "trials" / f"{number}.pt"
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"weights of trial": number}, ckpt)
        rows.append({"number": number, "state": state, "preset": preset, "config_id": space.config_id(cfg),
                     "psnr": psnr, "bpp": 0.4 + number / 100, "decoder_gmacs": gmacs,
                     "config_json": json.dumps(space.to_dict(cfg)), "checkpoint": str(ckpt)})
    df = pd.DataFrame(rows)
    df["pareto"] = pareto_mask(df, part)
    return df


SPEC = {"study": "s", "part": "synthesis", "schedule": "smoke", "teacher": "teacher.pt"}


def numbers(picks) -> list:
    return [p.number for p in picks]


def test_the_reference_presets_are_left_out_unless_asked(tmp_path):
    df = frame(tmp_path)
    assert df.loc[df["preset"] == "teacher", "pareto"].all()  # the teacher has the best PSNR of the study
    assert numbers(pick(df, "synthesis")) == [5]  # the best candidate, not the teacher
    assert numbers(pick(df, "synthesis", top=10)) == [2, 3, 7, 5]  # the candidates' own front
    assert numbers(pick(df, "synthesis", include_references=True)) == [1]
    assert 1 in numbers(pick(df, "synthesis", top=10, include_references=True))
    assert 0 not in numbers(pick(df, "synthesis", top=10, include_references=True))  # dominated by trial 3

    (done,) = export(df, SPEC, tmp_path / "export")
    assert done.pick.number == 5 and done.folder.name == df.loc[5, "config_id"]
    assert space.config_id(space.load(done.folder / "config.json")) == df.loc[5, "config_id"]
    assert (done.folder / "codec.pt").read_bytes() == (tmp_path / "trials" / "5.pt").read_bytes()

    only_refs = df[df["number"].isin([0, 1, 8])]
    with pytest.raises(space.ConfigError, match="only the reference presets .*--include-references"):
        pick(only_refs, "synthesis")
    assert numbers(pick(only_refs, "synthesis", include_references=True)) == [1]


def test_budget_picks_the_best_candidate_within_it(tmp_path):
    df = frame(tmp_path)
    assert numbers(pick(df, "synthesis", budget=50)) == [7]  # 29.8 dB at 45 G; trial 5 (60 G) is over
    assert numbers(pick(df, "synthesis", budget=30)) == [3]  # at the budget exactly is within it
    assert numbers(pick(df, "synthesis", budget=1000)) == [5]  # the teacher fits but is a reference
    assert numbers(pick(df, "synthesis", budget=1000, include_references=True)) == [1]
    # the pruned trial 9 (3 G) was never trained: the cheapest candidate is trial 2
    with pytest.raises(space.ConfigError, match=r"no candidate fits in 5 GMACs: the cheapest, trial 2, needs 10\.000"):
        pick(df, "synthesis", budget=5)
    with pytest.raises(space.ConfigError, match="budget"):
        pick(df, "synthesis", budget=-1)


def test_budget_minimises_the_rd_cost_when_the_hyperprior_is_searched(tmp_path):
    # hyperprior studies: the RD cost minimised against MACs
    trials = [(0, "COMPLETE", "paper", np.nan, 5.0), (1, "COMPLETE", "teacher", np.nan, 9.0),
              (2, "COMPLETE", None, np.nan, 2.0), (3, "COMPLETE", None, np.nan, 4.0), (4, "COMPLETE", None, np.nan, 6.0)]
    df = frame(tmp_path, trials, part="hyperprior")
    df["rd_cost"] = [0.30, 0.28, 0.40, 0.35, 0.33]
    assert numbers(pick(df, "hyperprior", budget=5)) == [3]  # 0.35 at 4 G; the paper's 0.30 is a reference
    assert numbers(pick(df, "hyperprior", budget=5, include_references=True)) == [0]
    assert numbers(pick(df, "hyperprior", top=3)) == [2, 3, 4]


def test_top_spreads_picks_along_the_front_from_cheapest_to_best(tmp_path):
    df = frame(tmp_path)
    assert numbers(pick(df, "synthesis", top=2)) == [2, 5]  # the cheapest and the best
    three = pick(df, "synthesis", top=3)
    assert numbers(three) == [2, 7, 5]  # not the three highest PSNRs (5, 6, 7)
    assert all(p.rank is not None for p in three) and [p.rank for p in three] == [1, 3, 4]
    assert numbers(pick(df, "synthesis", top=2, budget=50)) == [2, 7]  # spread within the budget
    written = export(df, SPEC, tmp_path / "export", top=3)
    assert len({d.folder for d in written}) == 3 and all((d.folder / "card.md").is_file() for d in written)
    # the spacing itself: distinct, evenly by rank, the cheapest and the best always in
    for n in range(2, 12):
        for k in range(1, n + 2):
            for best in (n - 1, n // 2):
                got = spread(n, k, best)
                assert len(set(got)) == len(got) == min(k, n) and got == sorted(got) and best in got
                assert k == 1 or 0 in got
    assert spread(9, 3, 8) == [0, 4, 8]
    assert spread(9, 3, 2) == [0, 2, 8]  # a three-objective front's best need not be the most expensive


def test_the_card_says_where_the_pick_sits_on_the_front(tmp_path):
    df = frame(tmp_path)
    (done,) = export(df, SPEC, tmp_path / "export", budget=50)
    text = (done.folder / "card.md").read_text()
    assert "3rd cheapest of 4 Pareto points (reference presets left out)" in text
    assert "0.30x the teacher's decoder MACs, -1.20 dB (teacher: trial 1)" in text  # 45 / 150 G, 29.8 - 31.0 dB
    assert "decoder MAC budget: 50 GMACs; this decoder needs 45.000 GMACs (90% of it)" in text
    assert "trial 7" in text.splitlines()[0]

    cheapest, best = export(df, SPEC, tmp_path / "export", top=2)
    assert "cheapest of 4 Pareto points" in (cheapest.folder / "card.md").read_text()
    card = (best.folder / "card.md").read_text()
    assert "4th cheapest of 4 Pareto points (reference presets left out), the best psnr on the front" in card
    assert "budget" not in card.split("## Metrics")[0]
    # no teacher trial in the study: no comparison, the rest of the card as before
    (alone,) = export(df[df["preset"] != "teacher"], SPEC, tmp_path / "alone")
    assert "teacher's decoder MACs" not in (alone.folder / "card.md").read_text()
    # a study without reference trials (--no-presets): nothing was left out, nothing said about it
    (plain,) = pick(df[df["preset"].isna()], "synthesis")
    assert plain.number == 5 and plain.position() == "4th cheapest of 4 Pareto points, the best psnr on the front"


def test_a_latency_study_spreads_along_its_own_front_and_budgets_in_gmacs(tmp_path):
    # searched with --objective latency: the front is PSNR against decode time (ms), the budget still GMACs
    df = frame(tmp_path)
    df["decoder_ms"] = [8.0, 30.0, 12.0, 4.0, 9.0, 20.0, 15.0, 25.0, np.nan, np.nan]
    # candidates' latency front: 3 (4 ms), 6 (15 ms), 5 (20 ms); trial 2 is now dominated by the faster 3
    assert numbers(pick(df, "synthesis", top=10, cost="latency")) == [3, 6, 5]
    assert numbers(pick(df, "synthesis", top=2, cost="latency")) == [3, 5]
    (done,) = export(df, {**SPEC, "objective": "latency"}, tmp_path / "export", budget=50)
    assert done.pick.number == 7  # the best PSNR within 50 G, though off the latency front
    text = (done.folder / "card.md").read_text()
    assert ("not on the Pareto front of 3 points (quality vs decode time; reference presets left out): "
            "dominated; all 3 are faster") in text
    assert "0.30x the teacher's decoder MACs, 0.83x its decode time, -1.20 dB" in text


def test_an_explicit_trial_is_exported_even_a_reference_or_off_the_front(tmp_path):
    df = frame(tmp_path)
    (teacher,) = pick(df, "synthesis", trial=1)
    assert teacher.reference == "teacher" and not teacher.references_left_out
    assert teacher.position() == "5th cheapest of 5 Pareto points, the best psnr on the front"
    (done,) = export(df, SPEC, tmp_path / "export", trial=1)
    assert "this is the reference preset 'teacher'" in (done.folder / "card.md").read_text()
    (off,) = pick(df, "synthesis", trial=6)
    assert off.rank is None and "not on the Pareto front of 4 points" in off.position()
    assert "dominated; all 4 are cheaper" in off.position()
    for bad in (8, 9, 42):  # failed, pruned, absent
        with pytest.raises(space.ConfigError, match=f"trial {bad} is not a complete trial"):
            pick(df, "synthesis", trial=bad)


def test_cli_flags_on_a_real_study(tmp_path):
    import optuna

    df = frame(tmp_path)
    storage = f"sqlite:///{tmp_path / 's' / 'study.db'}"
    (tmp_path / "s").mkdir()
    study = optuna.create_study(study_name="s", storage=storage, directions=["maximize", "minimize"])
    study.set_user_attr("spec", SPEC)
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for _, r in df.iterrows():
        attrs = {k: r[k] for k in ("preset", "psnr", "bpp", "decoder_gmacs", "checkpoint", "config_id")
                 if isinstance(r[k], str) or (r[k] is not None and np.isfinite(r[k]))}
        attrs["config"] = json.loads(r["config_json"])
        state = getattr(optuna.trial.TrialState, r["state"])
        values = [r["psnr"], r["decoder_gmacs"]] if r["state"] == "COMPLETE" else None
        study.add_trial(optuna.trial.create_trial(state=state, values=values, params={"x": 0.5},
                                                  distributions=dist, user_attrs=attrs))
    args = ("--root", tmp_path)

    out = run_cli("export", "s", *args).stdout.strip().splitlines()
    assert out[0].startswith("trial 5, psnr 30.5000, 60.000 GMACs, 4th cheapest of 4 Pareto points")
    assert "0.40x the teacher's decoder MACs, -0.50 dB" in out[0]
    assert out[-1].endswith(df.loc[5, "config_id"]) and (tmp_path / "s" / "export" / df.loc[5, "config_id"]).is_dir()

    out = run_cli("export", "s", "--include-references", *args).stdout.strip().splitlines()
    assert out[-1].endswith(df.loc[1, "config_id"]) and "reference teacher" in out[0]

    out = run_cli("export", "s", "--budget", "50", *args).stdout.strip().splitlines()
    assert out[-1].endswith(df.loc[7, "config_id"])
    assert len(run_cli("export", "s", "--top", "3", *args).stdout.strip().splitlines()) == 6

    bad = run_cli("export", "s", "--budget", "5", *args, check=False)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "asymllic: error: budget: no candidate fits in 5 GMACs: the cheapest, trial 2, needs 10.000 GMACs"]
    assert run_cli("export", "s", "--budget", "5", "--trial", "2", *args, check=False).returncode == 2  # one or other


# the teacher dominates the candidates' best (trial 3); the paper's decoder is dominated by trial 4
DOMINATED = [
    (0, "COMPLETE", "paper", 27.0, 40.0),
    (1, "COMPLETE", "teacher", 31.0, 50.0),
    (2, "COMPLETE", None, 28.0, 10.0),
    (3, "COMPLETE", None, 30.5, 60.0),  # the best PSNR of the candidates, but the teacher beats it at less cost
    (4, "COMPLETE", None, 29.0, 20.0),
]


def test_the_default_pick_is_one_no_reference_dominates_and_says_how_it_compares(tmp_path):
    df = frame(tmp_path, DOMINATED)
    (p,) = pick(df, "synthesis")
    assert p.number == 4  # the best of the front's points no reference dominates
    assert p.dominated_by() == []
    assert p.summary().endswith("; no reference dominates it")
    (done,) = export(df, SPEC, tmp_path / "export")
    card = (done.folder / "card.md").read_text()
    assert "against the references: this decoder dominates reference paper (trial 0)" in card
    assert "against the references: vs reference teacher (trial 1): better in decoder_gmacs, worse in psnr" in card
    assert "a reference dominates" not in card
    # asked for explicitly, the dominated one is exported, and its card and line say so plainly
    (forced,) = export(df, SPEC, tmp_path / "forced", trial=3)
    card = (forced.folder / "card.md").read_text()
    assert "**a reference dominates this decoder**: teacher (trial 1)" in card
    assert "reference teacher (trial 1) DOMINATES this decoder: no worse in psnr, decoder_gmacs, better in psnr, " \
           "decoder_gmacs" in card
    assert "DOMINATED by reference teacher (trial 1)" in forced.pick.summary()
    # every point of the front dominated: the best is still exported, and said to be dominated
    (p,) = pick(frame(tmp_path, [(1, "COMPLETE", "teacher", 31.0, 5.0)] + DOMINATED[2:]), "synthesis")
    assert p.number == 3 and [int(r["number"]) for r in p.dominated_by()] == [1]
    assert "DOMINATED by reference teacher (trial 1)" in p.summary()
    # no reference trials: nothing to compare with, nothing said
    (plain,) = pick(df[df["preset"].isna()], "synthesis")
    assert plain.number == 3 and "reference" not in plain.summary()
