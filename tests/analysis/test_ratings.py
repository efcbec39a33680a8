"""Rating summaries and rank tests from histograms, checked against numpy/scipy applied to
the expanded ratings."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis.ratings import (
    mann_whitney_from_counts,
    median_from_counts,
    rating_summary,
    wilcoxon_from_counts,
)

RATINGS = np.arange(1, 6)
histograms = st.lists(st.integers(0, 12), min_size=5, max_size=5)
paired_tables = st.lists(st.integers(0, 4), min_size=25, max_size=25)


def _expand(hist):
    return np.repeat(RATINGS, hist)


def _paired_frame(cells):
    grid = np.array([(r, f) for r in RATINGS for f in RATINGS])
    return pd.DataFrame({"rating_ru": grid[:, 0], "rating_foreign": grid[:, 1], "n": cells})


def _long(rows, key="practice_id"):
    return pd.DataFrame(rows, columns=[key, "company_kind", "rating", "n"])


# --------------------------------------------------------------------------- summary


@settings(max_examples=50, deadline=None)
@given(histograms)
def test_median_from_counts_equals_numpy_median(hist):
    raw = _expand(hist)
    if raw.size == 0:
        assert math.isnan(median_from_counts(hist))
    else:
        assert median_from_counts(hist) == np.median(raw)


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    assert median_from_counts([0, 2, 0, 0, 2]) == 3.5


def test_rating_summary_matches_the_raw_ratings():
    rows = [["bonus", "ru", 4, 3], ["bonus", "ru", 5, 1], ["bonus", "foreign", 1, 2]]
    rows += [["bonus", "foreign", 2, 1], ["bonus", "foreign", 5, 1]]
    table = rating_summary(_long(rows))
    assert list(table.columns) == [
        "practice_id",
        "company_kind",
        "n",
        "mean",
        "median",
        "r1",
        "r2",
        "r3",
        "r4",
        "r5",
        "low_n",
    ]
    ru, foreign = table.iloc[0], table.iloc[1]
    assert ru["company_kind"] == "ru" and foreign["company_kind"] == "foreign"
    raw_ru, raw_foreign = np.array([4, 4, 4, 5]), np.array([1, 1, 2, 5])
    assert (ru["n"], ru["mean"], ru["median"]) == (4, raw_ru.mean(), np.median(raw_ru))
    assert (foreign["mean"], foreign["median"]) == (raw_foreign.mean(), np.median(raw_foreign))
    assert foreign[["r1", "r2", "r3", "r4", "r5"]].tolist() == [2, 1, 0, 0, 1]
    assert table["n"].dtype == "int64" and table["r3"].dtype == "int64"
    assert table["low_n"].tolist() == [True, True]


def test_rating_summary_fills_a_missing_kind_with_zeros():
    table = rating_summary(_long([["a", "ru", 3, 12]]), low_n=10)
    foreign = table.iloc[1]
    assert foreign["n"] == 0 and foreign["low_n"]
    assert math.isnan(foreign["mean"]) and math.isnan(foreign["median"])
    assert not table.iloc[0]["low_n"]


def test_rating_summary_runs_at_category_level_and_on_empty_input():
    table = rating_summary(_long([["pay", "ru", 3, 1]], key="category_id"), key="category_id")
    assert table["category_id"].tolist() == ["pay", "pay"]
    assert rating_summary(_long([])).empty


@pytest.mark.parametrize("rating", [0, 6])
def test_rating_summary_rejects_ratings_off_the_scale(rating):
    with pytest.raises(ValueError, match="rating"):
        rating_summary(_long([["a", "ru", rating, 1]]))


# --------------------------------------------------------------------------- Mann-Whitney


@settings(max_examples=50, deadline=None)
@given(histograms, histograms)
def test_mann_whitney_matches_scipy_on_the_expanded_ratings(hx, hy):
    x, y = _expand(hx), _expand(hy)
    assume(x.size > 0 and y.size > 0)
    res = mann_whitney_from_counts(hx, hy)
    expected = stats.mannwhitneyu(
        x, y, alternative="two-sided", method="asymptotic", use_continuity=True
    )
    assert res["u"] == pytest.approx(expected.statistic, rel=1e-12)
    assert res["p_val"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)
    assert res["rank_biserial"] == pytest.approx(
        2 * expected.statistic / (x.size * y.size) - 1, rel=1e-12, abs=1e-15
    )
    assert (res["n_x"], res["n_y"]) == (x.size, y.size)


def test_rank_biserial_is_positive_when_x_tends_higher():
    res = mann_whitney_from_counts([0, 0, 0, 0, 5], [5, 0, 0, 0, 0])
    assert res["rank_biserial"] == 1.0
    assert mann_whitney_from_counts([5, 0, 0, 0, 0], [0, 0, 0, 0, 5])["rank_biserial"] == -1.0


def test_mann_whitney_with_all_ratings_identical_gives_p_one():
    res = mann_whitney_from_counts([0, 0, 4, 0, 0], [0, 0, 7, 0, 0])
    assert res["p_val"] == 1.0 and res["rank_biserial"] == 0.0
    expected = stats.mannwhitneyu([3] * 4, [3] * 7, method="asymptotic")
    assert res["p_val"] == expected.pvalue


@pytest.mark.parametrize("hx, hy", [([0] * 5, [1, 2, 0, 0, 0]), ([1, 0, 0, 0, 0], [0] * 5)])
def test_mann_whitney_with_an_empty_side_gives_nan(hx, hy):
    res = mann_whitney_from_counts(hx, hy)
    assert math.isnan(res["u"]) and math.isnan(res["p_val"])
    assert math.isnan(res["rank_biserial"])


def test_mann_whitney_with_a_single_rating_on_each_side():
    res = mann_whitney_from_counts([1, 0, 0, 0, 0], [0, 0, 0, 0, 1])
    expected = stats.mannwhitneyu([1], [5], method="asymptotic")
    assert res["p_val"] == pytest.approx(expected.pvalue, rel=1e-12)


def test_mann_whitney_rejects_a_bad_histogram():
    with pytest.raises(ValueError):
        mann_whitney_from_counts([1, 2, 3], [1, 2, 3, 4, 5])
    with pytest.raises(ValueError):
        mann_whitney_from_counts([1, 2, 3, 4, -5], [1, 2, 3, 4, 5])


# --------------------------------------------------------------------------- Wilcoxon


@settings(max_examples=50, deadline=None)
@given(paired_tables)
def test_wilcoxon_matches_scipy_on_the_expanded_pairs(cells):
    frame = _paired_frame(cells)
    ru = np.repeat(frame["rating_ru"], frame["n"]).to_numpy()
    foreign = np.repeat(frame["rating_foreign"], frame["n"]).to_numpy()
    res = wilcoxon_from_counts(frame)
    assert res["n"] == ru.size
    assert res["n_nonzero"] == int((ru != foreign).sum())
    assume(res["n_nonzero"] > 0)
    expected = stats.wilcoxon(
        ru,
        foreign,
        zero_method="wilcox",
        correction=False,
        alternative="two-sided",
        method="asymptotic",
    )
    assert res["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert res["p_val"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)


def test_wilcoxon_with_a_hundred_thousand_pairs():
    cells = np.zeros(25, dtype=int)
    cells[[2, 7, 8, 13, 17, 24]] = [30_000, 20_000, 10_000, 25_000, 10_000, 5_000]
    frame = _paired_frame(cells)
    ru = np.repeat(frame["rating_ru"], frame["n"]).to_numpy()
    foreign = np.repeat(frame["rating_foreign"], frame["n"]).to_numpy()
    res = wilcoxon_from_counts(frame)
    expected = stats.wilcoxon(
        ru, foreign, zero_method="wilcox", correction=False, method="asymptotic"
    )
    assert res["n"] == 100_000
    assert res["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert res["p_val"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_wilcoxon_with_all_pairs_equal_gives_p_one():
    frame = pd.DataFrame({"rating_ru": [3, 5], "rating_foreign": [3, 5], "n": [4, 2]})
    assert wilcoxon_from_counts(frame) == {"n": 6, "n_nonzero": 0, "statistic": 0.0, "p_val": 1.0}


def test_wilcoxon_with_no_pairs_gives_nan():
    res = wilcoxon_from_counts(pd.DataFrame({"rating_ru": [], "rating_foreign": [], "n": []}))
    assert res["n"] == 0 and math.isnan(res["statistic"]) and math.isnan(res["p_val"])


def test_wilcoxon_with_a_single_pair():
    frame = pd.DataFrame({"rating_ru": [4], "rating_foreign": [2], "n": [1]})
    res = wilcoxon_from_counts(frame)
    expected = stats.wilcoxon([4], [2], zero_method="wilcox", correction=False, method="asymptotic")
    assert res["p_val"] == pytest.approx(expected.pvalue, rel=1e-12)


def test_wilcoxon_refuses_several_items_at_once():
    frame = pd.DataFrame(
        {"practice_id": ["a", "b"], "rating_ru": [4, 3], "rating_foreign": [2, 3], "n": [1, 1]}
    )
    with pytest.raises(ValueError, match="one practice_id"):
        wilcoxon_from_counts(frame)
