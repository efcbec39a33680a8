"""Prevalence and the two-proportion comparison, pinned to the worked example of
shared/research/statistics.md and to scipy/statsmodels computed independently."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest

from analysis.proportions import cohens_h, compare_independent, prevalence, wilson_ci

# Worked example (statistics.md): Russian 30 of 120, foreign 55 of 110.
K1, N1, K2, N2 = 30, 120, 55, 110


def _counts(rows, key="practice_id"):
    return pd.DataFrame(rows, columns=[key, "company_kind", "yes", "no", "dk"])


# --------------------------------------------------------------------------- worked example


def test_worked_example_wilson_intervals():
    assert wilson_ci(K1, N1) == pytest.approx((0.1811, 0.3344), abs=5e-5)
    assert wilson_ci(K2, N2) == pytest.approx((0.4082, 0.5918), abs=5e-5)


def test_worked_example_chi_square_is_the_square_of_the_pooled_z():
    res = compare_independent(K1, N1, K2, N2)
    z, p_z = proportions_ztest([K1, K2], [N1, N2])
    assert res["test"] == "chi2"
    assert res["statistic"] == pytest.approx(15.3955, abs=5e-5)
    assert z == pytest.approx(-3.9237, abs=5e-5)
    assert res["statistic"] == pytest.approx(z**2, rel=1e-12)
    assert res["p_val"] == pytest.approx(8.72e-05, abs=5e-8)
    assert res["p_val"] == pytest.approx(p_z, rel=1e-9)


def test_worked_example_newcombe_interval_and_cohens_h():
    res = compare_independent(K1, N1, K2, N2)
    assert res["diff"] == pytest.approx(-0.25, abs=1e-15)
    assert (res["diff_ci_low"], res["diff_ci_high"]) == pytest.approx((-0.3648, -0.1253), abs=5e-5)
    assert res["cohens_h"] == pytest.approx(-0.5236, abs=5e-5)
    assert res["cohens_h"] == pytest.approx(-math.pi / 6, abs=1e-12)


def test_worked_example_fisher_when_forced():
    res = compare_independent(K1, N1, K2, N2, test="fisher")
    assert res["test"] == "fisher"
    assert res["p_val"] == pytest.approx(0.000118, abs=5e-7)
    assert math.isnan(res["statistic"])


def test_worked_example_through_prevalence():
    table = prevalence(
        _counts([["bonus", "ru", K1, N1 - K1, 0], ["bonus", "foreign", K2, N2 - K2, 0]])
    )
    assert table[["ci_low", "ci_high"]].to_numpy() == pytest.approx(
        np.array([[0.1811, 0.3344], [0.4082, 0.5918]]), abs=5e-5
    )


# --------------------------------------------------------------------------- Wilson


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_matches_scipy_binomtest(kn):
    k, n = kn
    expected = stats.binomtest(k, n).proportion_ci(method="wilson")
    assert wilson_ci(k, n) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_wilson_is_vectorised_and_nan_for_an_empty_group():
    low, high = wilson_ci(np.array([0, 3, 5]), np.array([0, 5, 5]))
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert low[1:] == pytest.approx([0.2307, 0.5655], abs=5e-5)
    assert high[2] == 1.0


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson_ci(6, 5)
    with pytest.raises(ValueError):
        wilson_ci(-1, 5)
    with pytest.raises(ValueError):
        wilson_ci(1, 5, alpha=0)


# --------------------------------------------------------------------------- prevalence


def test_prevalence_columns_and_types():
    table = prevalence(_counts([["bonus", "ru", 3, 4, 1]]))
    assert list(table.columns) == [
        "practice_id",
        "company_kind",
        "n",
        "k",
        "dk",
        "p",
        "ci_low",
        "ci_high",
        "low_n",
    ]
    assert table["n"].dtype == "int64" and table["k"].dtype == "int64"
    assert table["low_n"].dtype == bool


def test_dont_know_never_enters_the_denominator():
    table = prevalence(_counts([["bonus", "ru", 3, 5, 100]])).iloc[0]
    assert table["n"] == 8
    assert table["k"] == 3
    assert table["dk"] == 100
    assert table["p"] == 3 / 8
    expected = stats.binomtest(3, 8).proportion_ci(method="wilson")
    assert (table["ci_low"], table["ci_high"]) == pytest.approx(
        (expected.low, expected.high), abs=1e-12
    )


def test_a_missing_kind_row_means_zero_counts_and_nan_share():
    table = prevalence(_counts([["bonus", "ru", 3, 5, 0]]))
    foreign = table[table["company_kind"] == "foreign"].iloc[0]
    assert (foreign["n"], foreign["k"], foreign["dk"]) == (0, 0, 0)
    assert math.isnan(foreign["p"])
    assert math.isnan(foreign["ci_low"]) and math.isnan(foreign["ci_high"])
    assert foreign["low_n"]


def test_only_dont_know_answers_give_nan_share_and_keep_dk():
    row = prevalence(_counts([["bonus", "ru", 0, 0, 4]])).iloc[0]
    assert row["n"] == 0 and row["dk"] == 4 and math.isnan(row["p"])


def test_prevalence_rows_sorted_by_item_then_kind_and_duplicates_summed():
    table = prevalence(
        _counts(
            [
                ["zeta", "foreign", 1, 1, 0],
                ["alpha", "ru", 1, 2, 0],
                ["alpha", "ru", 2, 1, 1],
            ]
        )
    )
    assert table[["practice_id", "company_kind"]].values.tolist() == [
        ["alpha", "ru"],
        ["alpha", "foreign"],
        ["zeta", "ru"],
        ["zeta", "foreign"],
    ]
    assert table.iloc[0][["n", "k", "dk"]].tolist() == [6, 3, 1]


def test_prevalence_flags_low_n_below_the_threshold():
    table = prevalence(_counts([["a", "ru", 5, 4, 0], ["a", "foreign", 5, 5, 0]]), low_n=10)
    assert table["low_n"].tolist() == [True, False]


def test_prevalence_runs_at_category_level():
    table = prevalence(_counts([["pay", "ru", 1, 1, 0]], key="category_id"), key="category_id")
    assert table["category_id"].tolist() == ["pay", "pay"]


def test_prevalence_of_an_empty_table_is_empty():
    table = prevalence(_counts([]))
    assert table.empty
    assert "ci_high" in table.columns


@pytest.mark.parametrize(
    "rows, message",
    [
        ([["a", "ru", -1, 1, 0]], "non-negative"),
        ([["a", "ru", 1.5, 1, 0]], "whole"),
        ([["a", "russia", 1, 1, 0]], "company_kind"),
    ],
)
def test_prevalence_rejects_bad_counts(rows, message):
    with pytest.raises(ValueError, match=message):
        prevalence(_counts(rows))


def test_prevalence_rejects_a_missing_column():
    with pytest.raises(ValueError, match="dk"):
        prevalence(_counts([["a", "ru", 1, 1, 0]]).drop(columns="dk"))


# --------------------------------------------------------------------------- two proportions


def test_fisher_is_chosen_when_an_expected_count_is_below_five():
    table = np.array([[1, 9], [5, 5]])
    assert stats.contingency.expected_freq(table).min() < 5
    res = compare_independent(1, 10, 5, 10)
    assert res["test"] == "fisher"
    assert res["p_val"] == pytest.approx(stats.fisher_exact(table).pvalue, rel=1e-12)
    assert math.isnan(res["statistic"])


def test_chi_square_is_used_when_every_expected_count_is_at_least_five():
    res = compare_independent(5, 10, 5, 10)  # every expected count is exactly 5
    assert res["test"] == "chi2"
    assert res["statistic"] == 0.0 and res["p_val"] == 1.0


def test_cohens_h_matches_statsmodels():
    assert cohens_h(0.3, 0.7) == pytest.approx(proportion_effectsize(0.3, 0.7), rel=1e-12)
    assert math.isnan(cohens_h(math.nan, 0.5))


@pytest.mark.parametrize("k1, n1, k2, n2", [(0, 0, 3, 5), (3, 5, 0, 0), (0, 0, 0, 0)])
def test_an_empty_group_gives_nan_and_no_test(k1, n1, k2, n2):
    res = compare_independent(k1, n1, k2, n2)
    assert res["test"] is None
    for name in ("diff", "diff_ci_low", "diff_ci_high", "statistic", "p_val", "cohens_h"):
        assert math.isnan(res[name])


@pytest.mark.parametrize("k1, n1, k2, n2", [(5, 5, 7, 7), (0, 5, 0, 7), (1, 1, 1, 1)])
@pytest.mark.parametrize("test", ["auto", "chi2", "fisher"])
def test_all_yes_or_all_no_in_both_groups_gives_p_one(k1, n1, k2, n2, test):
    res = compare_independent(k1, n1, k2, n2, test=test)
    assert res["test"] == "fisher"
    assert res["p_val"] == 1.0
    assert res["diff"] == 0.0
    assert res["diff_ci_low"] < 0.0 < res["diff_ci_high"]
    assert res["cohens_h"] == 0.0


def test_a_single_respondent_in_each_group():
    res = compare_independent(1, 1, 0, 1)
    assert res["test"] == "fisher" and res["p_val"] == 1.0
    assert res["diff"] == 1.0
    assert -1.0 <= res["diff_ci_low"] < res["diff_ci_high"] <= 1.0


def test_compare_independent_rejects_bad_arguments():
    with pytest.raises(ValueError):
        compare_independent(6, 5, 1, 5)
    with pytest.raises(ValueError):
        compare_independent(1, 5, 1, 5, test="welch")
    with pytest.raises(ValueError):
        compare_independent(1, 5, 1, 5, alpha=1.5)
    with pytest.raises(ValueError):
        compare_independent(1.5, 5, 1, 5)
