"""McNemar's test and Newcombe's paired interval (method 10).

Newcombe's own Table II (Statistics in Medicine 17:2635-2650) was not available to check
against, so its numbers are not used here. The interval is pinned instead to

* a published value computed by others: Fagerland, Lydersen & Laake, *Statistical Analysis
  of Contingency Tables* (2017), chapter 8, example of Cavo et al. (2012), table
  [[59, 6], [16, 80]]: estimate -0.0621, 95% CI -0.1186 to -0.0046 (the value the authors'
  R package contingencytables checks in tests/testthat/test-ch8.R);
* an independent implementation written below from the formula, computed another way (from
  raw 0/1 vectors, Pearson correlation by numpy, Wilson limits by scipy);
* properties: limits, symmetry, nesting, and exact coverage by enumeration.
"""

import functools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis.paired import mcnemar_exact_p, mcnemar_paired, newcombe_paired_ci


def _reference_newcombe(a, b, c, d, alpha=0.05):
    """Newcombe (1998) method 10 from raw paired 0/1 answers, written independently."""
    ru = np.repeat([1, 1, 0, 0], [a, b, c, d])
    foreign = np.repeat([1, 0, 1, 0], [a, b, c, d])
    n = ru.size
    p1, p2 = ru.mean(), foreign.mean()
    conf = 1 - alpha
    w1 = stats.binomtest(int(ru.sum()), n).proportion_ci(confidence_level=conf, method="wilson")
    w2 = stats.binomtest(int(foreign.sum()), n).proportion_ci(
        confidence_level=conf, method="wilson"
    )
    if ru.min() == ru.max() or foreign.min() == foreign.max():
        phi = 0.0
    else:
        r = np.corrcoef(ru, foreign)[0, 1]  # = (ad - bc) / sqrt(efgh)
        scale = math.sqrt(ru.sum() * (n - ru.sum()) * foreign.sum() * (n - foreign.sum()))
        phi = max(r - (n / 2) / scale, 0.0) if r > 0 else r  # Newcombe's corrected phi
    lower = (p1 - p2) - math.sqrt(
        (p1 - w1.low) ** 2 + (w2.high - p2) ** 2 - 2 * phi * (p1 - w1.low) * (w2.high - p2)
    )
    upper = (p1 - p2) + math.sqrt(
        (w1.high - p1) ** 2 + (p2 - w2.low) ** 2 - 2 * phi * (w1.high - p1) * (p2 - w2.low)
    )
    return lower, upper


tables = st.tuples(*[st.integers(0, 30)] * 4).filter(lambda t: sum(t) > 0)


# --------------------------------------------------------------------------- McNemar


def test_worked_example_mcnemar_exact_p():
    assert mcnemar_exact_p(10, 25) == pytest.approx(0.016674, abs=5e-7)
    counts = pd.DataFrame(
        {"practice_id": ["bonus"], "yes_yes": [40], "yes_no": [10], "no_yes": [25], "no_no": [45]}
    )
    row = mcnemar_paired(counts).iloc[0]
    assert (row["b"], row["c"], row["n"]) == (10, 25, 120)
    assert row["p_val"] == pytest.approx(0.016674, abs=5e-7)
    assert row["diff"] == pytest.approx(-15 / 120)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60))
def test_mcnemar_matches_an_exact_binomial_test(b, c):
    expected = 1.0 if b + c == 0 else stats.binomtest(b, b + c, 0.5).pvalue
    assert mcnemar_exact_p(b, c) == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------------- Newcombe 10


def test_newcombe_pinned_to_the_published_cavo_example():
    a, b, c, d = 59, 6, 16, 80
    low, high = newcombe_paired_ci(a, b, c, d)
    assert (b - c) / (a + b + c + d) == pytest.approx(-0.0621, abs=5e-5)
    assert (low, high) == pytest.approx((-0.1186, -0.0046), abs=5e-5)
    # The pin tells the corrected correlation from the uncorrected one (-0.1174, -0.0059).
    assert low < -0.1180


@settings(max_examples=50, deadline=None)
@given(tables)
def test_newcombe_matches_an_independent_implementation(table):
    assert newcombe_paired_ci(*table) == pytest.approx(_reference_newcombe(*table), abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(tables)
def test_newcombe_interval_properties(table):
    a, b, c, d = table
    n = a + b + c + d
    diff = (b - c) / n
    low, high = newcombe_paired_ci(a, b, c, d)
    assert -1.0 <= low <= diff <= high <= 1.0
    # Swapping the two company kinds mirrors the interval.
    assert newcombe_paired_ci(a, c, b, d) == pytest.approx((-high, -low), abs=1e-12)
    # Swapping yes and no in both kinds mirrors it as well.
    assert newcombe_paired_ci(d, c, b, a) == pytest.approx((-high, -low), abs=1e-12)
    # A 99% interval contains the 95% one.
    low99, high99 = newcombe_paired_ci(a, b, c, d, alpha=0.01)
    assert low99 <= low + 1e-12 and high <= high99 + 1e-12


def test_newcombe_interval_narrows_as_the_sample_grows():
    widths = []
    for m in (1, 4, 16):
        low, high = newcombe_paired_ci(20 * m, 8 * m, 4 * m, 18 * m)
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2] > 0


@functools.cache
def _all_tables_and_limits(n):
    """Every paired 2x2 table with n pairs, and its 95% Newcombe interval."""
    cells = np.array(
        [
            (a, b, c, n - a - b - c)
            for a in range(n + 1)
            for b in range(n + 1 - a)
            for c in range(n + 1 - a - b)
        ]
    )
    limits = np.array([newcombe_paired_ci(*map(int, row)) for row in cells])
    return cells, limits


@pytest.mark.parametrize(
    "probs",
    [
        (0.3, 0.2, 0.1, 0.4),
        (0.1, 0.05, 0.15, 0.7),
        (0.45, 0.05, 0.05, 0.45),
        (0.25, 0.25, 0.25, 0.25),
        (0.6, 0.1, 0.2, 0.1),
    ],
)
def test_newcombe_exact_coverage_is_near_nominal_for_twenty_pairs(probs):
    cells, limits = _all_tables_and_limits(20)
    true_diff = probs[1] - probs[2]
    covered = (limits[:, 0] <= true_diff) & (true_diff <= limits[:, 1])
    coverage = stats.multinomial.pmf(cells, 20, probs)[covered].sum()
    assert 0.94 <= coverage <= 1.0


def test_newcombe_with_no_pairs_is_nan():
    low, high = newcombe_paired_ci(0, 0, 0, 0)
    assert math.isnan(low) and math.isnan(high)


def test_newcombe_handles_large_counts_without_overflow():
    low, high = newcombe_paired_ci(100_000, 30_000, 20_000, 100_000)
    assert low < 10_000 / 250_000 < high
    assert high - low < 0.01


# --------------------------------------------------------------------------- table


def _paired(rows, key="practice_id"):
    return pd.DataFrame(rows, columns=[key, "yes_yes", "yes_no", "no_yes", "no_no"])


def test_mcnemar_paired_columns_types_and_order():
    table = mcnemar_paired(_paired([["zeta", 1, 2, 3, 4], ["alpha", 5, 0, 0, 5]]))
    assert list(table.columns) == [
        "practice_id",
        "n",
        "b",
        "c",
        "diff",
        "ci_low",
        "ci_high",
        "p_val",
        "low_n",
    ]
    assert table["practice_id"].tolist() == ["alpha", "zeta"]
    assert table["n"].dtype == "int64" and table["low_n"].dtype == bool
    assert table["low_n"].tolist() == [False, False]
    assert table["n"].tolist() == [10, 10]


def test_no_discordant_pair_gives_p_one_and_zero_difference():
    row = mcnemar_paired(_paired([["a", 7, 0, 0, 3]])).iloc[0]
    assert row["p_val"] == 1.0 and row["diff"] == 0.0
    assert row["ci_low"] < 0.0 < row["ci_high"]


@pytest.mark.parametrize("cells", [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
def test_a_single_pair_gives_defined_results(cells):
    row = mcnemar_paired(_paired([["a", *cells]])).iloc[0]
    assert row["n"] == 1 and row["low_n"]
    assert row["p_val"] == 1.0
    assert -1.0 <= row["ci_low"] <= row["diff"] <= row["ci_high"] <= 1.0


def test_an_item_with_zero_pairs_gives_nan():
    row = mcnemar_paired(_paired([["a", 0, 0, 0, 0]])).iloc[0]
    assert row["n"] == 0
    assert all(math.isnan(row[c]) for c in ("diff", "ci_low", "ci_high", "p_val"))


def test_mcnemar_paired_runs_at_category_level_and_on_empty_input():
    table = mcnemar_paired(_paired([["pay", 1, 2, 3, 4]], key="category_id"), key="category_id")
    assert table["category_id"].tolist() == ["pay"]
    assert mcnemar_paired(_paired([])).empty


def test_mcnemar_paired_rejects_negative_counts():
    with pytest.raises(ValueError):
        mcnemar_paired(_paired([["a", 1, -2, 3, 4]]))
