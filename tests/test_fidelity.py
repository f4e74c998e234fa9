"""Rank agreement and regret of short schedules (search.fidelity) on hand-made rung tables, and the same measured
against the seed-to-seed noise when a table holds several seeds."""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau, spearmanr
from scipy.stats import t as student

from search.fidelity import (agreement, front, kendall, pairs, regret, seed_agreement, seed_means, seeded_report,
                             spearman, spread)


def table(scores: dict, gmacs: dict) -> pd.DataFrame:
    """scores: {rung: {name: psnr}}"""
    return pd.DataFrame([{"name": n, "rung": r, "gmacs": gmacs[n], "psnr": v}
                         for r, by in scores.items() for n, v in by.items()])


GMACS = {"a": 10.0, "b": 20.0, "c": 30.0, "d": 40.0}


def test_a_rung_that_ranks_like_the_longest_agrees_fully_and_loses_nothing():
    df = table({40: {"a": 18, "b": 19, "c": 20, "d": 21}, 640: {"a": 20, "b": 21, "c": 22, "d": 23}}, GMACS)
    s = agreement(df).set_index("rung")
    assert s.loc[40, "spearman"] == pytest.approx(1) and s.loc[40, "kendall"] == pytest.approx(1)
    assert s.loc[40, "regret"] == 0 and s.loc[40, "winner"] == "d" and s.loc[40, "winner_rank_at_top"] == 1
    assert s.loc[640, "spearman"] == pytest.approx(1)  # the longest rung against itself


def test_a_reversed_ranking_and_its_regret_by_hand():
    # short rung: the cheap a looks best and dominates all; long rung: quality grows with MACs (all on the front)
    df = table({40: {"a": 21, "b": 20, "c": 19, "d": 18}, 640: {"a": 20, "b": 21, "c": 22, "d": 23}}, GMACS)
    s = agreement(df).set_index("rung")
    assert s.loc[40, "spearman"] == pytest.approx(-1) and s.loc[40, "kendall"] == pytest.approx(-1)
    assert s.loc[40, "winner"] == "a" and s.loc[40, "winner_rank_at_top"] == 4
    assert front(df[df["rung"] == 40].set_index("name"), "psnr", True) == ["a"]
    # the short front is {a}: at each long-front point (a, b, c, d) the choice is a (20 dB): losses 0, 1, 2, 3
    assert regret(df, 40, 640) == pytest.approx(1.5)


def test_regret_only_where_the_short_front_offers_a_choice_and_for_a_minimised_score():
    df = table({40: {"a": 18, "b": 17, "c": 22, "d": 19}, 640: {"a": 20, "b": 21, "c": 22, "d": 23}}, GMACS)
    # short front {a, c}; long front a, b, c, d: choices a, a, c, c -> losses 0, 1, 0, 1
    assert regret(df, 40, 640) == pytest.approx(0.5)
    cost = df.assign(rd_cost=-df["psnr"])  # a minimised score ranks the same way
    assert regret(cost, 40, 640, "rd_cost", maximise=False) == pytest.approx(0.5)
    assert agreement(cost, "rd_cost", maximise=False).set_index("rung").loc[40, "winner"] == "c"
    ties = table({40: {"a": 20, "b": 18}, 640: {"a": 19, "b": 21}}, {"a": 10.0, "b": 10.0})
    assert regret(ties, 40, 640) == pytest.approx(2)  # equal MACs: the short rung picks a, the long one b


def seeded(scores: dict, gmacs: dict) -> pd.DataFrame:
    """scores: {rung: {name: [psnr of seed 0, seed 1, ...]}}"""
    return pd.DataFrame([{"name": n, "rung": r, "seed": s, "gmacs": gmacs[n], "psnr": v}
                         for r, by in scores.items() for n, vals in by.items() for s, v in enumerate(vals)])


def test_numpy_correlations_match_scipy_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(100):
        x, y = rng.integers(0, 4, 7).astype(float), rng.integers(0, 4, 7).astype(float)
        for ours, theirs in ((spearman, spearmanr), (kendall, kendalltau)):
            want = theirs(x, y)[0]
            got = ours(x, y)
            assert (np.isnan(got) and np.isnan(want)) or got == pytest.approx(want, abs=1e-12)
    x = rng.normal(size=(5, 6))  # along the last axis, one value per row
    assert np.allclose(spearman(x, x[::-1]), [spearmanr(a, b)[0] for a, b in zip(x, x[::-1])])


def test_a_table_without_seeds_is_one_seed_and_its_interval_is_the_point():
    df = table({40: {"a": 21, "b": 20, "c": 23, "d": 18}, 640: {"a": 20, "b": 21, "c": 22, "d": 23}}, GMACS)
    s = seed_agreement(df).set_index("rung")
    plain = agreement(df).set_index("rung")
    for col in ("spearman", "kendall"):
        assert s.loc[40, col] == pytest.approx(plain.loc[40, col])
        assert s.loc[40, f"{col}_lo"] == s.loc[40, col] == s.loc[40, f"{col}_hi"]
    assert (s["seeds"] == 1).all() and s.loc[40, "regret"] == plain.loc[40, "regret"]
    sp = spread(df)
    assert (sp["seeds"] == 1).all() and sp["std"].isna().all() and (sp["range"] == 0).all()
    p = pairs(df)
    assert len(p) == 6 and not p["tested"].any() and not p["beyond"].any()
    assert "one seed per candidate" in seeded_report(df).text


def test_seeds_that_agree_exactly_have_no_spread_and_a_collapsed_interval():
    one = {40: {"a": 21.5, "b": 20.25, "c": 23.0, "d": 18.75}, 640: {"a": 20.5, "b": 21.25, "c": 22.0, "d": 23.5}}
    df = seeded({r: {n: [v] * 3 for n, v in by.items()} for r, by in one.items()}, GMACS)
    sp = spread(df)
    assert (sp["seeds"] == 3).all() and (sp["std"] == 0).all() and (sp["range"] == 0).all()
    s = seed_agreement(df, resamples=200).set_index("rung")
    flat = agreement(table(one, GMACS)).set_index("rung")
    for col in ("spearman", "kendall"):
        assert s.loc[40, col] == pytest.approx(flat.loc[40, col])
        assert s.loc[40, f"{col}_lo"] == s.loc[40, col] == s.loc[40, f"{col}_hi"]
        assert s.loc[640, f"{col}_lo"] == s.loc[640, f"{col}_hi"] == 1
    p = pairs(df)
    assert len(p) == 6 and p["tested"].all() and p["beyond"].all() and (p["se"] == 0).all()  # no noise at all
    assert agreement(df).equals(agreement(table(one, GMACS)))  # the old figures read the seed means
    assert seed_means(df)["psnr"].tolist() == [v for by in one.values() for v in by.values()]


def test_noise_that_swamps_the_differences_gives_few_separable_pairs_and_wide_intervals():
    rng = np.random.default_rng(0)
    names = [f"n{i}" for i in range(8)]
    gmacs = {n: 10.0 + i for i, n in enumerate(names)}
    truth = {n: 30 + 0.02 * i for i, n in enumerate(names)}  # 0.02 dB apart, seeds scatter by 1 dB
    scores = {r: {n: list(truth[n] + rng.normal(0, 1.0, 4)) for n in names} for r in (40, 640)}
    rep = seeded_report(seeded(scores, gmacs))
    assert rep.pairs["tested"].all() and rep.pairs["beyond"].mean() <= 0.1
    s = rep.agreement.set_index("rung")
    assert s.loc[40, "spearman_hi"] - s.loc[40, "spearman_lo"] > 1.0
    assert s.loc[40, "spearman_lo"] <= s.loc[40, "spearman"] <= s.loc[40, "spearman_hi"]
    assert s.loc[640, "spearman_lo"] == 1  # the longest rung against itself, seed for seed, in every draw
    assert "0 of 28 pairs differ beyond seed noise at 640" in rep.text and "its ranking is itself noise" in rep.text
    again = seeded_report(seeded(scores, gmacs))
    assert again.agreement.equals(rep.agreement)  # a fixed generator: the same interval every time


def test_worked_example_by_hand():
    # three candidates, three seeds, two rungs
    df = seeded({40: {"a": [18, 19, 20], "b": [17, 18, 19], "c": [19, 20, 21]},
                 640: {"a": [20, 21, 22], "b": [21, 22.5, 24], "c": [29, 30, 31]}}, {"a": 10.0, "b": 20.0, "c": 30.0})
    sp = spread(df).set_index(["rung", "name"])
    assert sp.loc[(640, "b"), "mean"] == 22.5 and sp.loc[(640, "b"), "std"] == pytest.approx(1.5)
    assert sp.loc[(640, "b"), "range"] == 3 and sp.loc[(40, "a"), "std"] == pytest.approx(1)
    # seed means at 40: a 19, b 18, c 20 (ranks 2, 1, 3); at 640: 21, 22.5, 30 (ranks 1, 2, 3)
    # Spearman 1 - 6 * (1 + 1 + 0) / (3 * (9 - 1)) = 0.5; Kendall: (a, b) discordant, (a, c), (b, c) concordant: 1/3
    s = seed_agreement(df).set_index("rung")
    assert s.loc[40, "spearman"] == pytest.approx(0.5) and s.loc[40, "kendall"] == pytest.approx(1 / 3)
    assert s.loc[40, "spearman_lo"] < 0.5 < s.loc[40, "spearman_hi"] and s.loc[40, "seeds"] == 3
    # regret on the means: short front {a, c}, long front a, b, c -> choices a, a, c: losses 0, 1.5, 0
    assert s.loc[40, "regret"] == pytest.approx(0.5) and s.loc[40, "winner"] == "c"
    # Welch at 640. a - b: variances 1 and 2.25, se = sqrt(1/3 + 2.25/3), t = -1.5 / se,
    # df = se^4 / ((1/3)^2 / 2 + (2.25/3)^2 / 2)
    p = pairs(df).set_index(["a", "b"])
    se = np.sqrt(1 / 3 + 2.25 / 3)
    dof = se ** 4 / ((1 / 3) ** 2 / 2 + (2.25 / 3) ** 2 / 2)
    assert p.loc[("a", "b"), "se"] == pytest.approx(se) and p.loc[("a", "b"), "t"] == pytest.approx(-1.5 / se)
    assert p.loc[("a", "b"), "df"] == pytest.approx(dof) and dof == pytest.approx(3.4845, abs=1e-4)
    assert p.loc[("a", "b"), "p"] == pytest.approx(2 * student.sf(1.5 / se, dof)) and not p.loc[("a", "b"), "beyond"]
    # a - c: both variances 1, se = sqrt(2/3), t = -9 / se = -11.02 on df 4 (critical 2.78): beyond; b - c too
    assert p.loc[("a", "c"), "df"] == pytest.approx(4) and p.loc[("a", "c"), "t"] == pytest.approx(-9 / np.sqrt(2 / 3))
    assert p.loc[("a", "c"), "beyond"] and p.loc[("b", "c"), "beyond"]
    text = seeded_report(df).text
    lo, hi = s.loc[40, "spearman_lo"], s.loc[40, "spearman_hi"]
    assert f"rung 40: Spearman 0.50 [{lo:.2f}, {hi:.2f}]" in text and "vs 640" in text
    assert "2 of 3 pairs differ beyond seed noise at 640" in text and "No short rung can be trusted" in text


def test_a_short_rung_that_agrees_beyond_the_noise_is_trusted():
    names = [f"n{i}" for i in range(6)]
    gmacs = {n: 10.0 * (i + 1) for i, n in enumerate(names)}
    jitter = [-0.05, 0.0, 0.05]
    scores = {r: {n: [base + i + j for j in jitter] for i, n in enumerate(names)}
              for r, base in ((40, 18.0), (160, 20.0), (640, 21.0))}
    scores[40]["n0"], scores[40]["n5"] = scores[40]["n5"], scores[40]["n0"]  # the shortest rung swaps the extremes
    rep = seeded_report(seeded(scores, gmacs))
    s = rep.agreement.set_index("rung")
    assert s.loc[160, "spearman_lo"] == pytest.approx(1) and s.loc[40, "spearman_hi"] < 0.8
    assert rep.pairs["beyond"].all()
    assert "Rung 160 can be trusted" in rep.text and "15 of 15 pairs" in rep.text


@pytest.mark.xdist_group("ray")
def test_the_fidelity_bench_runs_here_and_resumes_on_ray(tmp_path, capsys, ray_stopped_after):
    """bench/fidelity.py at the smoke schedule, then one ladder's rows lost: the rerun on Ray trains only that
    ladder and measures what the first run measured."""
    import shutil

    from conftest import script_module

    bench = script_module("bench/fidelity.py")
    args = ["--teacher", "teacher", "--schedule", "smoke", "--rungs", "1", "2", "--k", "2", "--out", str(tmp_path),
            "--cache", str(tmp_path / "cache")]
    assert bench.main(args) == 0
    table = tmp_path / "synthesis-none" / "rungs.csv"
    first = pd.read_csv(table).sort_values(["name", "rung"]).reset_index(drop=True)
    assert len(first) == 4 and set(first["name"]) == {"g_s/ours", "g_s/rbu"}
    first[first["name"] != "g_s/rbu"].to_csv(table, index=False)  # as if the run had stopped before g_s/rbu
    shutil.rmtree(tmp_path / "synthesis-none" / "g_s_rbu")
    capsys.readouterr()
    assert bench.main(args + ["--backend", "ray"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("(kept from an earlier run)") == 2 and "g_s/rbu: 2 steps" in printed
    again = pd.read_csv(table).sort_values(["name", "rung"]).reset_index(drop=True)
    assert np.allclose(again["psnr"], first["psnr"], atol=1e-4) and list(again["name"]) == list(first["name"])
