"""Partially overlapping samples: the primary Russian-vs-foreign tests.

Pinned to the published examples of R's Partiallyoverlapping package, to statsmodels GEE
fitted on raw answers generated with numpy (groups = respondent, robust covariance), and to
scipy's classical tests at the two edges (no pairs: independent samples; only pairs: the
paired analysis).
"""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.genmod import families
from statsmodels.genmod.cov_struct import Exchangeable, Independence
from statsmodels.genmod.generalized_estimating_equations import GEE
from statsmodels.stats.proportion import confint_proportions_2indep

from analysis.compare import compare
from analysis.overlap import (
    compare_overlapping,
    compare_overlapping_means,
    mean_rating_ci,
    overlap_groups,
    rank_biserial_ci,
)
from analysis.paired import newcombe_paired_ci

# --------------------------------------------------------------------------- published values


def test_prop_test_published_example():
    # Derrick, Dobson-McKittrick, Toher and White (2015); Partiallyoverlapping::Prop.test
    # example: 15 pairs, then 9 Sample-1-only and 6 Sample-2-only answers; "p.value = 0.053".
    a = [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    b = [1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0] + [1] * 6
    pairs = list(zip(a[:15], b[:15], strict=True))
    cells = [pairs.count(cell) for cell in ((1, 1), (1, 0), (0, 1), (0, 0))]
    res = compare_overlapping(sum(a[15:]), 9, sum(b[15:]), 6, *cells)
    assert res["test"] == "overlap_z"
    assert round(res["p_val"], 3) == 0.053
    assert math.isclose(res["diff"], np.mean(a) - np.mean(b))


@pytest.mark.parametrize("equal_var", [True, False])
def test_partover_test_published_example(equal_var):
    # Derrick, Toher and White (2017), TQMP 13(2): "p.value = 0.026" (equal variances).
    a_unpaired = [20, 21, 16, 18, 14, 12, 14, 17]
    a_paired = [14, 15, 18, 20, 11, 19, 14, 15]
    b_unpaired = [10, 16, 18, 16, 15, 14, 13, 10]
    b_paired = [15, 10, 15, 17, 13, 19, 12, 13]
    scores = np.arange(10, 22)
    table = np.zeros((12, 12), dtype=int)
    for x, y in zip(a_paired, b_paired, strict=True):
        table[x - 10, y - 10] += 1
    res = compare_overlapping_means(
        np.bincount(np.subtract(a_unpaired, 10), minlength=12),
        np.bincount(np.subtract(b_unpaired, 10), minlength=12),
        table,
        equal_var=equal_var,
        scores=scores,
    )
    assert res["diff"] == 2.0
    assert round(res["p_val"], 3) == 0.026
    if equal_var:
        assert round(res["statistic"], 3) == 2.421 and res["df"] == 18.5


# --------------------------------------------------------------------------- GEE on raw answers


def _binary_sample(rng, n_ru, n_foreign, n_both, p_ru, p_foreign, rho):
    """Raw 0/1 answers: respondent id, ru (1/0), answer; pairs correlated by ``rho``."""
    cov = rho * math.sqrt(p_ru * (1 - p_ru) * p_foreign * (1 - p_foreign))
    p11 = p_ru * p_foreign + cov
    probs = [p11, p_ru - p11, p_foreign - p11, 1 - p_ru - p_foreign + p11]
    pairs = rng.choice(4, size=n_both, p=probs)
    x_pair = np.isin(pairs, [0, 1]).astype(float)
    y_pair = np.isin(pairs, [0, 2]).astype(float)
    x_only = rng.binomial(1, p_ru, n_ru).astype(float)
    y_only = rng.binomial(1, p_foreign, n_foreign).astype(float)
    ids = np.concatenate(
        [
            np.arange(n_ru),
            n_ru + np.arange(n_foreign),
            np.repeat(n_ru + n_foreign + np.arange(n_both), 2),
        ]
    )
    ru = np.concatenate([np.ones(n_ru), np.zeros(n_foreign), np.tile([1.0, 0.0], n_both)])
    y = np.concatenate([x_only, y_only, np.column_stack([x_pair, y_pair]).ravel()])
    return ids, ru, y, (x_only, y_only, x_pair, y_pair)


def _counts(x_only, y_only, x_pair, y_pair):
    a = int(((x_pair == 1) & (y_pair == 1)).sum())
    b = int(((x_pair == 1) & (y_pair == 0)).sum())
    c = int(((x_pair == 0) & (y_pair == 1)).sum())
    d = len(x_pair) - a - b - c
    return int(x_only.sum()), len(x_only), int(y_only.sum()), len(y_only), a, b, c, d


def _gee(y, ru, ids, family, cov_struct):
    exog = np.column_stack([np.ones_like(ru), ru])
    return GEE(y, exog, groups=ids, family=family, cov_struct=cov_struct).fit()


@pytest.mark.parametrize("seed", range(8))
def test_prevalence_matches_a_linear_gee_clustered_by_respondent(seed):
    rng = np.random.default_rng(seed)
    p_foreign = rng.uniform(0.15, 0.6)
    p_ru = p_foreign + rng.choice([0.0, 0.05, 0.1])
    ids, ru, y, groups = _binary_sample(rng, 200, 100, 200, p_ru, p_foreign, rng.uniform(0, 0.8))
    res = compare_overlapping(*_counts(*groups))
    fit = _gee(y, ru, ids, families.Gaussian(), Independence())
    # The estimate is the GEE's exactly; the z statistic (pooled null variance) agrees with
    # the GEE's robust Wald z to within 5 % + 0.02.
    assert math.isclose(res["diff"], fit.params[1], abs_tol=1e-12)
    assert abs(res["statistic"] - fit.tvalues[1]) <= 0.05 * abs(fit.tvalues[1]) + 0.02


def test_prevalence_agrees_with_the_logistic_exchangeable_gee_on_significance():
    # The exchangeable working correlation weighs the pairs more than the marginal
    # difference does, so single data sets can differ; over realistic data sets the two
    # reach the same conclusion at 5 % nearly always and their z statistics are close.
    rng = np.random.default_rng(2024)
    same, z_ours, z_gee = 0, [], []
    runs = 40
    for _ in range(runs):
        p_foreign = rng.uniform(0.2, 0.6)
        p_ru = p_foreign + rng.choice([0.0, 0.08, 0.15])
        ids, ru, y, groups = _binary_sample(
            rng, 200, 100, 200, p_ru, p_foreign, rng.uniform(0, 0.6)
        )
        res = compare_overlapping(*_counts(*groups))
        fit = _gee(y, ru, ids, families.Binomial(), Exchangeable())
        same += (res["p_val"] < 0.05) == (fit.pvalues[1] < 0.05)
        z_ours.append(res["statistic"])
        z_gee.append(fit.tvalues[1])
    assert same / runs >= 0.85
    assert np.corrcoef(z_ours, z_gee)[0, 1] >= 0.9


@pytest.mark.parametrize("seed", range(6))
def test_ratings_match_a_linear_gee_clustered_by_respondent(seed):
    rng = np.random.default_rng(100 + seed)
    rho = rng.uniform(-0.3, 0.8)
    latent = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=150)
    cuts = [-1.2, -0.4, 0.3, 1.0]
    shift = rng.choice([0.0, 0.2])
    x_pair = np.digitize(latent[:, 0] + shift, cuts) + 1
    y_pair = np.digitize(latent[:, 1], cuts) + 1
    x_only = np.digitize(rng.normal(shift, 1, 120), cuts) + 1
    y_only = np.digitize(rng.normal(0, 1, 80), cuts) + 1
    table = np.zeros((5, 5), dtype=int)
    np.add.at(table, (x_pair - 1, y_pair - 1), 1)
    res = compare_overlapping_means(
        np.bincount(x_only - 1, minlength=5), np.bincount(y_only - 1, minlength=5), table
    )
    ids = np.concatenate([np.arange(120), 120 + np.arange(80), np.repeat(200 + np.arange(150), 2)])
    ru = np.concatenate([np.ones(120), np.zeros(80), np.tile([1.0, 0.0], 150)])
    y = np.concatenate([x_only, y_only, np.column_stack([x_pair, y_pair]).ravel()]).astype(float)
    fit = _gee(y, ru, ids, families.Gaussian(), Independence())
    assert math.isclose(res["diff"], fit.params[1], abs_tol=1e-12)
    assert abs(res["statistic"] - fit.tvalues[1]) <= 0.05 * abs(fit.tvalues[1]) + 0.02
    assert res["r"] == pytest.approx(np.corrcoef(x_pair, y_pair)[0, 1])


# --------------------------------------------------------------------------- edges


yes_no = st.integers(0, 60)


@settings(max_examples=200, deadline=None)
@given(yes_no, yes_no, yes_no, yes_no)
def test_with_no_pairs_it_is_the_independent_two_sample_z_test(k1, f1, k2, f2):
    n1, n2 = k1 + f1, k2 + f2
    res = compare_overlapping(k1, n1, k2, n2, 0, 0, 0, 0)
    if not (n1 and n2):
        assert res["test"] is None and math.isnan(res["p_val"])
        return
    table = np.array([[k1, f1], [k2, f2]])
    if (table.sum(axis=0) == 0).any():
        assert res["p_val"] == 1.0
    else:
        chi2 = stats.chi2_contingency(table, correction=False)
        assert res["statistic"] ** 2 == pytest.approx(chi2.statistic, rel=1e-9, abs=1e-12)
        assert res["p_val"] == pytest.approx(chi2.pvalue, rel=1e-9, abs=1e-15)
    low, high = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
    assert res["diff_ci_low"] == pytest.approx(max(low, -1), abs=1e-12)
    assert res["diff_ci_high"] == pytest.approx(min(high, 1), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 40), st.integers(0, 40))
def test_with_only_pairs_it_is_the_paired_analysis_of_the_difference(a, b, c, d):
    n = a + b + c + d
    res = compare_overlapping(0, 0, 0, 0, a, b, c, d)
    if n == 0:
        assert res["test"] is None
        return
    assert res["diff"] == pytest.approx((b - c) / n, abs=1e-15)
    if a * d <= b * c:  # where Newcombe's continuity-corrected phi equals the plain phi
        low, high = newcombe_paired_ci(a, b, c, d)
        assert res["diff_ci_low"] == pytest.approx(low, abs=1e-9)
        assert res["diff_ci_high"] == pytest.approx(high, abs=1e-9)


ratings = st.lists(st.integers(1, 5), min_size=0, max_size=30)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=2, max_size=40))
def test_ratings_with_only_pairs_are_the_paired_t_test(pairs):
    x, y = np.array(pairs, dtype=float).T
    table = np.zeros((5, 5), dtype=int)
    np.add.at(table, (x.astype(int) - 1, y.astype(int) - 1), 1)
    res = compare_overlapping_means([0] * 5, [0] * 5, table)
    diffs = x - y
    if diffs.std() == 0 or x.std() == 0 or y.std() == 0:
        return  # scipy warns or r is undefined; the constant cases are checked elsewhere
    ref = stats.ttest_rel(x, y)
    assert res["statistic"] == pytest.approx(ref.statistic, rel=1e-9)
    assert res["p_val"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
    assert res["df"] == len(pairs) - 1


@settings(max_examples=150, deadline=None)
@given(ratings, ratings)
def test_ratings_with_no_pairs_are_welchs_t_test(x, y):
    res = compare_overlapping_means(
        np.bincount(np.asarray(x, dtype=int), minlength=6)[1:],
        np.bincount(np.asarray(y, dtype=int), minlength=6)[1:],
        np.zeros((5, 5)),
    )
    if len(x) < 2 or len(y) < 2:
        assert res["test"] is None
        return
    if np.std(x) == 0 and np.std(y) == 0:
        assert res["p_val"] == 1.0
        return
    with warnings.catch_warnings():  # scipy warns about a constant sample; same result
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = stats.ttest_ind(x, y, equal_var=False)
    assert res["statistic"] == pytest.approx(ref.statistic, rel=1e-9)
    assert res["p_val"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
    low, high = ref.confidence_interval()
    assert (res["diff_ci_low"], res["diff_ci_high"]) == pytest.approx((low, high), rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=2, max_size=40))
def test_mean_rating_interval_is_scipys_t_interval(values):
    res = mean_rating_ci(np.bincount(values, minlength=6)[1:])
    assert res["mean"] == pytest.approx(np.mean(values))
    if np.std(values) == 0:
        assert res["ci_low"] == res["ci_high"] == res["mean"]
        return
    low, high = stats.t.interval(0.95, len(values) - 1, np.mean(values), stats.sem(values))
    assert (res["ci_low"], res["ci_high"]) == pytest.approx((low, high), rel=1e-12)


def test_rank_biserial_interval_is_fisher_z_and_stays_in_range():
    low, high = rank_biserial_ci(0.0, 30, 30)
    se = math.sqrt(61 / (3 * 900))
    assert high == pytest.approx(math.tanh(1.959963984540054 * se)) and low == -high
    assert rank_biserial_ci(1.0, 5, 5) == (1.0, 1.0)
    assert all(math.isnan(v) for v in rank_biserial_ci(0.2, 0, 5))


def test_cohens_h_interval_shrinks_with_positive_correlation():
    independent = compare_overlapping(30, 100, 40, 100, 0, 0, 0, 0)
    correlated = compare_overlapping(15, 50, 20, 50, 30, 5, 10, 5)
    width = lambda r: r["cohens_h_ci_high"] - r["cohens_h_ci_low"]  # noqa: E731
    assert correlated["r"] > 0 and width(correlated) < width(independent)


def test_overlap_groups_and_inconsistent_tables():
    prev = pd.DataFrame(
        {
            "practice_id": ["x", "x"],
            "company_kind": ["ru", "foreign"],
            "yes": [5, 3],
            "no": [5, 7],
            "dk": [0, 0],
        }
    )
    pairs = pd.DataFrame(
        {"practice_id": ["x"], "yes_yes": [2], "yes_no": [1], "no_yes": [0], "no_no": [3]}
    )
    groups = overlap_groups(prev, pairs).iloc[0]
    assert (groups["n_ru_only"], groups["k_ru_only"]) == (4, 2)
    assert (groups["n_foreign_only"], groups["k_foreign_only"]) == (4, 1)
    too_many = pairs.assign(yes_yes=9)
    with pytest.raises(ValueError, match="same respondents"):
        overlap_groups(prev, too_many)
    with pytest.raises(ValueError, match="same respondents"):
        compare(prev, too_many, None, None)
