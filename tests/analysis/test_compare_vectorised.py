"""compare() computes every item at once; each column must equal the per-item public functions.

The reference below applies the public scalar functions of ``analysis`` to one item's counts
at a time (the way compare worked before it was vectorised), so a difference in any formula,
edge case or NaN placement shows up as a mismatch.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import (
    compare,
    compare_independent,
    compare_overlapping,
    compare_overlapping_means,
    mann_whitney_from_counts,
    mcnemar_exact_p,
    mean_rating_ci,
    median_from_counts,
    newcombe_paired_ci,
    rank_biserial_ci,
    wilcoxon_from_counts,
    wilson_ci,
)
from analysis.overlap import (
    _compare_overlapping_many,
    _compare_overlapping_means_many,
    _mean_rating_ci_many,
    _rank_biserial_ci_many,
)
from analysis.paired import _mcnemar_exact_p_many, _newcombe_paired_ci_many
from analysis.proportions import _compare_independent_many
from analysis.ratings import RATINGS, _mann_whitney_many, _median_many, _signed_rank_many

RTOL = 1e-12


def _same(got, expected, name=""):
    """Equal to RTOL (relative), NaN where NaN, None where None."""
    if expected is None or isinstance(expected, str):
        assert got == expected, name
        return
    expected = float(expected)
    if math.isnan(expected):
        assert math.isnan(float(got)), name
    else:
        assert float(got) == pytest.approx(expected, rel=RTOL, abs=1e-15), name


def _study(seed: int, n_items: int = 25):
    """Random but consistent counts per item: three groups (Russian only, foreign only,
    pairs) for yes/no and for ratings, with empty, all-yes, all-no and tiny items."""
    rng = np.random.default_rng(seed)
    scale = [0, 1, 3, 12, 80][seed % 5]
    items = []
    for i in range(n_items):
        mode = i % 8

        def count():
            return int(rng.poisson(scale * rng.uniform(0, 1.5))) if scale else 0

        a, b, c, d, ey, en, gy, gn = (count() for _ in range(8))
        if mode == 1:  # every answer yes
            b = c = d = en = gn = 0
        elif mode == 2:  # every answer no
            a = b = c = ey = gy = 0
        elif mode == 3:  # nobody answered about both kinds
            a = b = c = d = 0
        elif mode == 4:  # tiny
            a, b, c, d = (int(rng.integers(0, 2)) for _ in range(4))
            ey, en, gy, gn = (int(rng.integers(0, 3)) for _ in range(4))
        elif mode == 5:  # no answer about foreign companies
            gy = gn = a = b = c = d = 0
        paired = rng.poisson(scale / 6 * rng.uniform(0, 1), size=(5, 5))
        ru_only = rng.poisson(scale / 3 * rng.uniform(0, 1), size=5)
        fo_only = rng.poisson(scale / 3 * rng.uniform(0, 1), size=5)
        if mode == 6:  # every pair the same rating
            paired = np.zeros((5, 5), dtype=int)
            paired[2, 2] = int(rng.integers(0, 5))
        elif mode == 7:  # one pair at most, one rating value
            paired = np.zeros((5, 5), dtype=int)
            paired[int(rng.integers(0, 5)), int(rng.integers(0, 5))] = int(rng.integers(0, 2))
            ru_only = np.array([0, 0, 0, int(rng.integers(0, 3)), 0])
            fo_only = np.array([0, 0, 0, int(rng.integers(0, 3)), 0])
        items.append(
            {
                "id": f"p{i:02d}",
                "pair": (a, b, c, d),
                "ru": (ey + a + b, en + c + d, count() // 3),
                "foreign": (gy + a + c, gn + b + d, count() // 3),
                "paired_rating": paired,
                "rating_ru": ru_only + paired.sum(axis=1),
                "rating_foreign": fo_only + paired.sum(axis=0),
            }
        )
    return items


def _tables(items, with_pairs=True, with_ratings=True):
    prev = [
        (it["id"], kind, *it[kind]) for it in items for kind in ("ru", "foreign") if any(it[kind])
    ]
    pairs = [(it["id"], *it["pair"]) for it in items]
    rates = [
        (it["id"], kind, r, int(it[f"rating_{kind}"][r - 1]))
        for it in items
        for kind in ("ru", "foreign")
        for r in RATINGS
        if it[f"rating_{kind}"][r - 1]
    ]
    paired_rates = [
        (it["id"], x, y, int(it["paired_rating"][x - 1, y - 1]))
        for it in items
        for x in RATINGS
        for y in RATINGS
        if it["paired_rating"][x - 1, y - 1]
    ]
    return (
        pd.DataFrame(prev, columns=["practice_id", "company_kind", "yes", "no", "dk"]),
        pd.DataFrame(pairs, columns=["practice_id", "yes_yes", "yes_no", "no_yes", "no_no"])
        if with_pairs
        else None,
        pd.DataFrame(rates, columns=["practice_id", "company_kind", "rating", "n"])
        if with_ratings
        else None,
        pd.DataFrame(paired_rates, columns=["practice_id", "rating_ru", "rating_foreign", "n"])
        if with_pairs and with_ratings
        else None,
    )


def _reference(it, alpha, with_pairs, with_ratings):
    """The statistics of one item from the public per-item functions."""
    row = {}
    for kind in ("ru", "foreign"):
        yes, no, dk = it[kind]
        low, high = wilson_ci(yes, yes + no, alpha=alpha)
        row.update(
            {
                f"n_{kind}": yes + no,
                f"p_{kind}": yes / (yes + no) if yes + no else math.nan,
                f"ci_{kind}_low": low,
                f"ci_{kind}_high": high,
                f"p_{kind}_bound_low": yes / (yes + no + dk) if yes + no + dk else math.nan,
                f"p_{kind}_bound_high": (yes + dk) / (yes + no + dk) if yes + no + dk else math.nan,
            }
        )
    a, b, c, d = it["pair"] if with_pairs else (0, 0, 0, 0)
    n = a + b + c + d
    k_ru, n_ru = it["ru"][0] - a - b, it["ru"][0] + it["ru"][1] - n
    k_fo, n_fo = it["foreign"][0] - a - c, it["foreign"][0] + it["foreign"][1] - n
    row.update(n_ru_only=n_ru, k_ru_only=k_ru, n_foreign_only=n_fo, k_foreign_only=k_fo)
    primary = compare_overlapping(k_ru, n_ru, k_fo, n_fo, a, b, c, d, alpha=alpha)
    for name in ("diff", "diff_ci_low", "diff_ci_high", "test", "statistic", "p_val"):
        row[name] = primary[name]
    for name in ("cohens_h", "cohens_h_ci_low", "cohens_h_ci_high"):
        row[name] = primary[name]
    row["overlap_r"] = primary["r"] if n else math.nan
    indep = compare_independent(k_ru, n_ru, k_fo, n_fo, alpha=alpha)
    row.update({f"indep_{name}": indep[name] for name in ("diff", "test", "statistic", "p_val")})
    row.update(indep_ci_low=indep["diff_ci_low"], indep_ci_high=indep["diff_ci_high"])
    row["indep_cohens_h"] = indep["cohens_h"]
    low, high = newcombe_paired_ci(a, b, c, d, alpha=alpha)
    row.update(paired_n=n, paired_ci_low=low, paired_ci_high=high)
    row["paired_diff"] = (b - c) / n if n else math.nan
    row["paired_p_val"] = mcnemar_exact_p(b, c) if n else math.nan

    zero = np.zeros(5, dtype=int)
    hists = {kind: it[f"rating_{kind}"] if with_ratings else zero for kind in ("ru", "foreign")}
    paired = it["paired_rating"] if with_pairs and with_ratings else np.zeros((5, 5), dtype=int)
    for kind, hist in hists.items():
        mean = mean_rating_ci(hist, alpha=alpha)
        row.update({f"rating_n_{kind}": mean["n"], f"rating_mean_{kind}": mean["mean"]})
        row[f"rating_mean_{kind}_ci_low"] = mean["ci_low"]
        row[f"rating_mean_{kind}_ci_high"] = mean["ci_high"]
        row[f"rating_median_{kind}"] = median_from_counts(hist)
    ru_only = hists["ru"] - paired.sum(axis=1)
    fo_only = hists["foreign"] - paired.sum(axis=0)
    means = compare_overlapping_means(ru_only, fo_only, paired, alpha=alpha)
    for name in ("diff", "diff_ci_low", "diff_ci_high", "test", "statistic", "df", "p_val"):
        row[f"rating_{name}"] = means[name]
    row["rating_r"] = means["r"] if paired.sum() >= 2 else math.nan
    mwu = mann_whitney_from_counts(hists["ru"], hists["foreign"])
    low, high = rank_biserial_ci(mwu["rank_biserial"], mwu["n_x"], mwu["n_y"], alpha=alpha)
    row.update(mwu_u=mwu["u"], mwu_p_val=mwu["p_val"], rank_biserial=mwu["rank_biserial"])
    row.update(rank_biserial_ci_low=low, rank_biserial_ci_high=high)
    cells = pd.DataFrame(
        [(x, y, int(paired[x - 1, y - 1])) for x in RATINGS for y in RATINGS],
        columns=["rating_ru", "rating_foreign", "n"],
    )
    wilcoxon = wilcoxon_from_counts(cells)
    row.update(rating_paired_n=wilcoxon["n"], wilcoxon_statistic=wilcoxon["statistic"])
    row["wilcoxon_p_val"] = wilcoxon["p_val"]
    return row


@pytest.mark.parametrize("seed", range(15))
def test_every_column_equals_the_per_item_functions(seed):
    items = _study(seed)
    with_pairs, with_ratings = seed % 3 != 1, seed % 3 != 2
    alpha = (0.05, 0.1, 0.01)[seed % 3]
    ids = [it["id"] for it in items] + ["no_data"]
    table = compare(*_tables(items, with_pairs, with_ratings), items=ids, alpha=alpha)
    assert table["practice_id"].tolist() == ids
    empty = {
        "id": "no_data",
        "pair": (0, 0, 0, 0),
        "ru": (0, 0, 0),
        "foreign": (0, 0, 0),
        "paired_rating": np.zeros((5, 5), dtype=int),
        "rating_ru": np.zeros(5, dtype=int),
        "rating_foreign": np.zeros(5, dtype=int),
    }
    for i, it in enumerate([*items, empty]):
        expected = _reference(it, alpha, with_pairs, with_ratings)
        for name, value in expected.items():
            _same(table.at[i, name], value, f"{it['id']}.{name}")


def test_column_dtypes_are_unchanged():
    table = compare(*_tables(_study(3)), items=None)
    assert table["test"].dtype == object and table["indep_test"].dtype == object
    assert table["rating_test"].dtype == object
    for name in ("n_ru", "paired_n", "rating_n_ru", "r1_foreign", "rating_paired_n"):
        assert table[name].dtype == "int64"
    for name in ("low_n", "low_n_rating"):
        assert table[name].dtype == bool
    for name in ("p_ru", "q_val", "rating_df", "wilcoxon_statistic", "mwu_u"):
        assert table[name].dtype == "float64"


def test_no_exact_test_runs_without_a_table_that_needs_it(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("fisher_exact called")

    monkeypatch.setattr(stats, "fisher_exact", refuse)
    empty = compare(None, None, None, None, items=["a", "b"])
    assert empty["indep_test"].isna().all()
    big = pd.DataFrame(
        {
            "practice_id": ["a", "a"],
            "company_kind": ["ru", "foreign"],
            "yes": [300, 200],
            "no": [400, 500],
            "dk": [0, 0],
        }
    )
    assert compare(big, None, None, None)["indep_test"].tolist() == ["chi2"]


# ----------------------------------------------------------------- each helper vs its public twin

_RNG = np.random.default_rng(20261201)
_COUNTS = np.concatenate(
    [_RNG.integers(0, 4, size=(60, 8)), _RNG.integers(0, 60, size=(60, 8)), np.zeros((3, 8))]
).astype("int64")


def test_independent_comparison_of_many_items_equals_compare_independent():
    k1, k2 = _COUNTS[:, 0], _COUNTS[:, 1]
    n1, n2 = k1 + _COUNTS[:, 2], k2 + _COUNTS[:, 3]
    many = _compare_independent_many(k1, n1, k2, n2, alpha=0.1)
    assert {"fisher", "chi2", None} <= set(many["test"])
    for i in range(len(k1)):
        one = compare_independent(int(k1[i]), int(n1[i]), int(k2[i]), int(n2[i]), alpha=0.1)
        for name, value in one.items():
            _same(many[name][i], value, name)


def test_overlapping_comparison_of_many_items_equals_compare_overlapping():
    e, g = _COUNTS[:, 0], _COUNTS[:, 1]
    n_e, n_g = e + _COUNTS[:, 2], g + _COUNTS[:, 3]
    a, b, c, d = _COUNTS[:, 4:].T
    many = _compare_overlapping_many(e, n_e, g, n_g, a, b, c, d, alpha=0.05)
    for i in range(len(e)):
        args = (int(v) for v in (e[i], n_e[i], g[i], n_g[i], a[i], b[i], c[i], d[i]))
        one = compare_overlapping(*args, alpha=0.05)
        for name in ("diff", "diff_ci_low", "diff_ci_high", "test", "statistic", "p_val", "r"):
            _same(many[name][i], one[name], name)
        for name in ("cohens_h", "cohens_h_ci_low", "cohens_h_ci_high"):
            _same(many[name][i], one[name], name)


def test_paired_interval_and_mcnemar_of_many_items_equal_the_scalar_functions():
    a, b, c, d = _COUNTS[:, :4].T
    low, high = _newcombe_paired_ci_many(a, b, c, d, alpha=0.05)
    p = _mcnemar_exact_p_many(b, c)
    for i in range(len(a)):
        one_low, one_high = newcombe_paired_ci(int(a[i]), int(b[i]), int(c[i]), int(d[i]))
        _same(low[i], one_low)
        _same(high[i], one_high)
        _same(p[i], mcnemar_exact_p(int(b[i]), int(c[i])))


def test_rating_statistics_of_many_items_equal_the_scalar_functions():
    hx = np.concatenate([_COUNTS[:, :5], [[0, 0, 3, 0, 0], [0, 1, 0, 0, 0]]])
    hy = np.concatenate([_COUNTS[:, 3:], [[0, 0, 2, 0, 0], [0, 0, 0, 0, 0]]])
    paired = _RNG.integers(0, 3, size=(len(hx), 5, 5)) * (_RNG.random((len(hx), 1, 1)) < 0.7)
    paired[-2:] = 0
    paired[-2, 2, 2] = 1
    mean = _mean_rating_ci_many(hx, alpha=0.05)
    median = _median_many(hx)
    mwu = _mann_whitney_many(hx, hy)
    rb_low, rb_high = _rank_biserial_ci_many(mwu["rank_biserial"], mwu["n_x"], mwu["n_y"])
    means = _compare_overlapping_means_many(hx, hy, paired, alpha=0.05)
    signed = _signed_rank_many(paired)
    for i in range(len(hx)):
        for name, value in mean_rating_ci(hx[i]).items():
            _same(mean[name][i], value, name)
        _same(median[i], median_from_counts(hx[i]))
        one = mann_whitney_from_counts(hx[i], hy[i])
        for name, value in one.items():
            _same(mwu[name][i], value, name)
        low, high = rank_biserial_ci(one["rank_biserial"], one["n_x"], one["n_y"])
        _same(rb_low[i], low)
        _same(rb_high[i], high)
        for name, value in compare_overlapping_means(hx[i], hy[i], paired[i]).items():
            _same(means[name][i], value, name)
        cells = pd.DataFrame(
            [(x, y, int(paired[i, x - 1, y - 1])) for x in RATINGS for y in RATINGS],
            columns=["rating_ru", "rating_foreign", "n"],
        )
        for name, value in wilcoxon_from_counts(cells).items():
            _same(signed[name][i], value, name)
