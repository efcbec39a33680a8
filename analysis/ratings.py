"""Ratings 1-5 of a practice's effect on motivation, summarised and compared from histograms.

A rating is 1 (strongly demotivating) .. 5 (strongly motivating). Ratings arrive as count
tables, never as microdata: the rank tests below work on the five-bin histograms with
midranks, and reproduce scipy's results on the expanded data exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.proportions import (
    KINDS,
    _check_key,
    _check_kinds,
    _check_low_n,
    _count_table,
    _dense_counts,
    _repeat_items,
)

RATINGS = (1, 2, 3, 4, 5)
"""The rating scale."""


def _check_ratings(values: pd.Series, name: str) -> None:
    bad = sorted(set(values.tolist()) - set(RATINGS))
    if bad:
        raise ValueError(f"{name} must be one of {RATINGS}, got {bad}")


def _histogram(counts: Any, name: str) -> np.ndarray:
    """Return a length-5 int64 histogram, or raise ValueError."""
    arr = np.asarray(counts, dtype="float64")
    if arr.shape != (len(RATINGS),):
        raise ValueError(f"{name} must hold 5 counts (ratings 1..5), got shape {arr.shape}")
    if np.isnan(arr).any() or (arr < 0).any() or (np.floor(arr) != arr).any():
        raise ValueError(f"{name} must hold non-negative whole numbers")
    return arr.astype("int64")


def median_from_counts(counts: Any) -> float:
    """Median of ratings 1..5 given as a histogram, as ``numpy.median`` of the raw ratings.

    For an even number of ratings this is the mean of the two middle values. NaN when the
    histogram is empty.

    Examples
    --------
    >>> median_from_counts([1, 0, 1, 0, 0])  # ratings 1 and 3
    2.0
    >>> median_from_counts([0, 0, 0, 0, 0])
    nan
    """
    hist = _histogram(counts, "counts")
    n = int(hist.sum())
    if n == 0:
        return math.nan
    cumulative = np.cumsum(hist)

    def value_at(position: int) -> int:  # 0-based position in the sorted ratings
        return RATINGS[int(np.searchsorted(cumulative, position, side="right"))]

    return (value_at((n - 1) // 2) + value_at(n // 2)) / 2.0


def rating_summary(
    rating_counts: pd.DataFrame,
    key: str = "practice_id",
    low_n: int = 10,
) -> pd.DataFrame:
    """Distribution, mean and median of the ratings of each item, by company kind.

    Parameters
    ----------
    rating_counts : pandas.DataFrame
        Long count table with columns ``[key, "company_kind", "rating", "n"]``; ``rating`` is
        1..5 and a missing row means a zero count. Duplicate rows are summed.
    key : str, default "practice_id"
        Item column (``"category_id"`` for the category level).
    low_n : int, default 10
        Items rated by fewer than ``low_n`` respondents in a kind are flagged.

    Returns
    -------
    pandas.DataFrame
        One row per (item, kind), both kinds for every item present, sorted by item and then
        ``ru`` before ``foreign``. Columns ``[key, company_kind, n, mean, median, r1, r2, r3,
        r4, r5, low_n]``: ``r1..r5`` are the counts of each rating, ``median`` is computed
        from the histogram as ``numpy.median`` would on the raw ratings, ``mean`` and
        ``median`` are NaN when ``n == 0``, ``low_n`` is ``n < low_n``.

    Examples
    --------
    >>> counts = pd.DataFrame({"practice_id": ["bonus"] * 3,
    ...                        "company_kind": ["ru", "ru", "foreign"],
    ...                        "rating": [4, 5, 3], "n": [3, 1, 2]})
    >>> rating_summary(counts)
      practice_id company_kind  n  mean  median  r1  r2  r3  r4  r5  low_n
    0       bonus           ru  4  4.25     4.0   0   0   0   3   1   True
    1       bonus      foreign  2  3.00     3.0   0   0   2   0   0   True
    """
    key = _check_key(key)
    low_n = _check_low_n(low_n)
    table = _count_table(rating_counts, "rating_counts", [key, "company_kind", "rating"], ["n"])
    _check_kinds(table, "rating_counts")
    _check_ratings(table["rating"], "rating_counts.rating")
    table["rating"] = table["rating"].astype("int64")
    items, dense = _dense_counts(table, key, [("company_kind", KINDS), ("rating", RATINGS)], ["n"])
    hist = dense.reshape(len(items) * len(KINDS), len(RATINGS))  # rows: item, then kind
    summary = _rating_summary_many(hist)
    return pd.DataFrame(
        {
            key: _repeat_items(items, len(KINDS), table[key].dtype),
            "company_kind": pd.Series(list(KINDS) * len(items), dtype="str"),
            **summary,
            "low_n": summary["n"] < low_n,
        }
    )


def _rating_summary_many(hist: np.ndarray) -> dict[str, np.ndarray]:
    """The statistics of :func:`rating_summary` for each row of an (items x 5) histogram
    array: ``n``, ``mean``, ``median`` (NaN where ``n == 0``) and the counts ``r1 .. r5``.
    :func:`analysis.compare.compare` reports each kind's ratings with them."""
    hist = np.asarray(hist, dtype="int64")
    n = hist.sum(axis=1)
    weighted = hist @ np.asarray(RATINGS, dtype="float64")
    mean = np.full(n.shape, np.nan)
    np.divide(weighted, n, out=mean, where=n > 0)
    counts = {f"r{rating}": hist[:, i] for i, rating in enumerate(RATINGS)}
    return {"n": n, "mean": mean, "median": _median_many(hist), **counts}


def mann_whitney_from_counts(counts_x: Any, counts_y: Any) -> dict[str, float]:
    """Mann-Whitney U test of two independent samples of ratings given as histograms.

    Parameters
    ----------
    counts_x, counts_y : array_like of int, length 5
        Counts of ratings 1..5 in sample x (Russian companies) and sample y (foreign).

    Returns
    -------
    dict
        ``u``
            U statistic of x: ``R_x - n_x (n_x + 1) / 2`` with midranks ``R_x``.
        ``p_val``
            Two-sided p-value of the normal approximation with tie correction and
            continuity correction, exactly as ``scipy.stats.mannwhitneyu(x, y,
            alternative="two-sided", method="asymptotic", use_continuity=True)``.
        ``rank_biserial``
            ``2 U_x / (n_x n_y) - 1``, in [-1, 1]; positive when x tends to be higher.
        ``n_x``, ``n_y``
            Sample sizes.

    Notes
    -----
    With ``N = n_x + n_y``, tie sizes ``t`` (the pooled histogram), ``U = max(U_x, n_x n_y -
    U_x)``: ``z = (U - n_x n_y / 2 - 0.5) / s`` with ``s^2 = n_x n_y / 12 ((N + 1) -
    sum(t^3 - t) / (N (N - 1)))``, and ``p = min(1, 2 P(Z > z))``. An empty sample gives NaN
    for every statistic. When every rating in both samples is the same value the variance is
    0 and ``p_val`` is defined as 1.0 (as scipy returns), ``rank_biserial`` as 0.

    Examples
    --------
    >>> res = mann_whitney_from_counts([0, 1, 2, 3, 0], [1, 2, 2, 0, 0])
    >>> res["u"], round(res["p_val"], 4), round(res["rank_biserial"], 4)
    (25.0, 0.0703, 0.6667)
    """
    hx = _histogram(counts_x, "counts_x")
    hy = _histogram(counts_y, "counts_y")
    n_x, n_y = int(hx.sum()), int(hy.sum())
    result = {"u": math.nan, "p_val": math.nan, "rank_biserial": math.nan}
    result.update(n_x=n_x, n_y=n_y)
    if n_x == 0 or n_y == 0:
        return result
    pooled = [int(v) for v in hx + hy]
    n = n_x + n_y
    below = np.concatenate([[0], np.cumsum(pooled)[:-1]])
    midranks = below + (np.asarray(pooled) + 1) / 2.0
    u_x = float(hx @ midranks) - n_x * (n_x + 1) / 2.0
    nxny = n_x * n_y
    result["u"] = u_x
    result["rank_biserial"] = 2.0 * u_x / nxny - 1.0
    if sum(1 for t in pooled if t > 0) < 2:  # one value only: no variation at all
        result["p_val"] = 1.0
        return result
    tie_term = sum(t**3 - t for t in pooled)  # exact in Python integers
    s = math.sqrt(nxny / 12.0 * ((n + 1) - tie_term / (n * (n - 1))))
    u = max(u_x, nxny - u_x)
    z = (u - nxny / 2.0 - 0.5) / s
    result["p_val"] = float(min(1.0, max(0.0, 2.0 * stats.norm.sf(z))))
    return result


def wilcoxon_from_counts(
    paired_rating_counts: pd.DataFrame,
    key: str = "practice_id",
) -> dict[str, float]:
    """Wilcoxon signed-rank test of paired ratings (Russian vs foreign) given as counts.

    Parameters
    ----------
    paired_rating_counts : pandas.DataFrame
        Counts for ONE item: columns ``["rating_ru", "rating_foreign", "n"]`` (ratings 1..5);
        a ``key`` column, if present, must hold a single item. Missing cells are zeros.
    key : str, default "practice_id"
        Item column, used only to check that a single item was passed.

    Returns
    -------
    dict
        ``n``
            Pairs (respondents who rated the practice in both kinds).
        ``n_nonzero``
            Pairs with different ratings; the others are dropped (Wilcoxon's zero method).
        ``statistic``
            ``min(R+, R-)`` of the signed midranks of ``rating_ru - rating_foreign``.
        ``p_val``
            Two-sided p-value of the normal approximation with tie correction and without
            continuity correction, exactly as ``scipy.stats.wilcoxon(x_ru, x_foreign,
            zero_method="wilcox", correction=False, alternative="two-sided",
            method="asymptotic")``.

    Notes
    -----
    The table has at most 9 distinct differences (-4..4), so the ranks are computed from
    their counts: ``z = (R+ - m (m + 1) / 4) / se`` with ``m = n_nonzero`` and
    ``se^2 = (m (m + 1) (2 m + 1) - sum(t^3 - t) / 2) / 24``. No pair gives NaN statistic and
    p-value; pairs that all have equal ratings (``n_nonzero == 0``) give statistic 0 and
    ``p_val`` 1.0 (scipy would return NaN with a warning).

    Examples
    --------
    >>> counts = pd.DataFrame({"rating_ru": [3, 4, 2, 5], "rating_foreign": [4, 4, 4, 3],
    ...                        "n": [6, 2, 3, 1]})
    >>> res = wilcoxon_from_counts(counts)
    >>> res["n"], res["n_nonzero"], res["statistic"], round(res["p_val"], 4)
    (12, 10, 8.5, 0.0459)
    """
    if not isinstance(paired_rating_counts, pd.DataFrame):
        raise TypeError("paired_rating_counts must be a pandas DataFrame")
    if key in paired_rating_counts.columns and paired_rating_counts[key].nunique() > 1:
        raise ValueError(f"paired_rating_counts must hold one {key}; filter it first")
    table = _count_table(
        paired_rating_counts, "paired_rating_counts", ["rating_ru", "rating_foreign"], ["n"]
    )
    _check_ratings(table["rating_ru"], "rating_ru")
    _check_ratings(table["rating_foreign"], "rating_foreign")
    diff = table["rating_ru"].astype("int64") - table["rating_foreign"].astype("int64")
    by_diff = table["n"].groupby(diff.to_numpy()).sum()
    return _signed_rank_test({int(d): int(count) for d, count in by_diff.items()})


def _signed_rank_test(by_diff: dict[int, int]) -> dict[str, float]:
    """Wilcoxon signed-rank test from the counts of each difference ``rating_ru - rating_foreign``
    (keys -4..4); see :func:`wilcoxon_from_counts`."""
    n = sum(by_diff.values())
    positive = [by_diff.get(v, 0) for v in range(1, 5)]  # |d| = 1..4, d > 0
    negative = [by_diff.get(-v, 0) for v in range(1, 5)]
    ties = [p + q for p, q in zip(positive, negative, strict=True)]
    m = sum(ties)
    result = {"n": n, "n_nonzero": m, "statistic": math.nan, "p_val": math.nan}
    if n == 0:
        return result
    if m == 0:
        result.update(statistic=0.0, p_val=1.0)
        return result
    below = np.concatenate([[0], np.cumsum(ties)[:-1]])
    midranks = below + (np.asarray(ties) + 1) / 2.0
    r_plus = float(np.asarray(positive) @ midranks)
    r_minus = float(np.asarray(negative) @ midranks)
    tie_term = sum(t**3 - t for t in ties)
    se = math.sqrt((m * (m + 1) * (2 * m + 1) - tie_term / 2.0) / 24.0)
    z = (r_plus - m * (m + 1) / 4.0) / se
    result["statistic"] = min(r_plus, r_minus)
    result["p_val"] = float(min(1.0, 2.0 * stats.norm.sf(abs(z))))
    return result


def _exclusive_midranks(counts: np.ndarray) -> np.ndarray:
    """Midrank of each bin of histograms (rows), ties sharing the mean of their ranks."""
    below = np.cumsum(counts, axis=-1) - counts
    return below + (counts + 1) / 2.0


def _median_many(hist: np.ndarray) -> np.ndarray:
    """:func:`median_from_counts` for each row of an (items x 5) histogram array."""
    hist = np.asarray(hist, dtype="int64")
    n = hist.sum(axis=1)
    cumulative = np.cumsum(hist, axis=1)
    scale = np.asarray(RATINGS, dtype="float64")
    # The rating at 0-based position ``pos``: the first bin whose cumulative count exceeds it.
    lower = np.minimum((cumulative <= ((n - 1) // 2)[:, None]).sum(axis=1), len(RATINGS) - 1)
    upper = np.minimum((cumulative <= (n // 2)[:, None]).sum(axis=1), len(RATINGS) - 1)
    return np.where(n > 0, (scale[lower] + scale[upper]) / 2.0, np.nan)


def _mann_whitney_many(hx: np.ndarray, hy: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`mann_whitney_from_counts` for each row of two (items x 5) histogram arrays."""
    hx, hy = np.asarray(hx, dtype="int64"), np.asarray(hy, dtype="int64")
    n_x, n_y = hx.sum(axis=1), hy.sum(axis=1)
    size = n_x.shape[0]
    out = {name: np.full(size, np.nan) for name in ("u", "p_val", "rank_biserial")}
    out.update(n_x=n_x, n_y=n_y)
    ok = (n_x > 0) & (n_y > 0)
    if not ok.any():
        return out
    hx, n_x, n_y = hx[ok], n_x[ok], n_y[ok]
    pooled = hx + hy[ok]
    n = n_x + n_y
    midranks = _exclusive_midranks(pooled)
    u_x = (hx * midranks).sum(axis=1) - n_x * (n_x + 1) / 2.0
    nxny = n_x * n_y
    p_val = np.ones(u_x.shape)
    varied = (pooled > 0).sum(axis=1) >= 2  # one value only: no variation, p = 1
    if varied.any():
        t, n, nxny_v, u_v = pooled[varied], n[varied], nxny[varied], u_x[varied]
        tie_term = (t**3 - t).sum(axis=1)
        s = np.sqrt(nxny_v / 12.0 * ((n + 1) - tie_term / (n * (n - 1))))
        z = (np.maximum(u_v, nxny_v - u_v) - nxny_v / 2.0 - 0.5) / s
        p_val[varied] = np.minimum(1.0, np.maximum(0.0, 2.0 * stats.norm.sf(z)))
    out["u"][ok] = u_x
    out["rank_biserial"][ok] = 2.0 * u_x / nxny - 1.0
    out["p_val"][ok] = p_val
    return out


def _signed_rank_many(paired: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`_signed_rank_test` for each (5 x 5) paired rating table of an (items x 5 x 5)
    array (rows: rating in a Russian company, columns: in a foreign one)."""
    paired = np.asarray(paired, dtype="int64")
    scale = np.asarray(RATINGS)
    differences = np.subtract.outer(scale, scale)
    n = paired.sum(axis=(1, 2))
    positive = np.stack([paired[:, differences == v].sum(axis=1) for v in range(1, 5)], axis=1)
    negative = np.stack([paired[:, differences == -v].sum(axis=1) for v in range(1, 5)], axis=1)
    ties = positive + negative
    m = ties.sum(axis=1)
    statistic = np.where(n > 0, 0.0, np.nan)
    p_val = np.where(n > 0, 1.0, np.nan)
    ok = m > 0
    if ok.any():
        positive, negative, ties, mm = positive[ok], negative[ok], ties[ok], m[ok]
        midranks = _exclusive_midranks(ties)
        r_plus = (positive * midranks).sum(axis=1)
        r_minus = (negative * midranks).sum(axis=1)
        tie_term = (ties**3 - ties).sum(axis=1)
        se = np.sqrt((mm * (mm + 1) * (2 * mm + 1) - tie_term / 2.0) / 24.0)
        z = (r_plus - mm * (mm + 1) / 4.0) / se
        statistic[ok] = np.minimum(r_plus, r_minus)
        p_val[ok] = np.minimum(1.0, 2.0 * stats.norm.sf(np.abs(z)))
    return {"n": n, "n_nonzero": m, "statistic": statistic, "p_val": p_val}
