"""Rank agreement and regret of short schedules (search.fidelity) on hand-made rung tables."""
import pandas as pd
import pytest

from search.fidelity import agreement, front, regret


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
