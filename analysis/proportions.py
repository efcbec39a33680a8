"""Prevalence of a practice with Wilson intervals, and the comparison of two proportions.

Every function works from counts (never from microdata). Count tables come from SQL
``GROUP BY`` queries; a missing row means zero counts. "Don't know" answers are reported
but never enter a denominator.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

KINDS = ("ru", "foreign")
"""Company kinds, in display order: Russian company, foreign company."""

_TESTS = ("auto", "chi2", "fisher")


# --------------------------------------------------------------------------- argument checks
# Shared by the other modules of the package (private helpers).


def _check_alpha(alpha: float) -> float:
    """Return ``alpha`` as a float, or raise ValueError unless 0 < alpha < 1."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}") from None
    if not 0.0 < value < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return value


def _check_low_n(low_n: int) -> int:
    """Return ``low_n`` as an int, or raise ValueError unless it is a non-negative integer."""
    if isinstance(low_n, bool) or not isinstance(low_n, int | np.integer) or low_n < 0:
        raise ValueError(f"low_n must be a non-negative integer, got {low_n!r}")
    return int(low_n)


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"key must be a non-empty column name, got {key!r}")
    return key


def _count_table(
    table: pd.DataFrame | None,
    name: str,
    id_columns: Iterable[str],
    count_columns: Iterable[str],
) -> pd.DataFrame:
    """Check a count table and return a clean copy (int64 counts, duplicate rows summed).

    ``None`` is accepted as an empty table. Raises ValueError on missing columns, missing ids,
    and on counts that are missing, negative or not whole numbers.
    """
    id_columns = list(id_columns)
    count_columns = list(count_columns)
    columns = id_columns + count_columns
    if table is None:
        empty = {c: pd.Series(dtype=object) for c in id_columns}
        empty.update({c: pd.Series(dtype="int64") for c in count_columns})
        return pd.DataFrame(empty, columns=columns)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; expected {columns}")
    ids = table.loc[:, id_columns]
    if ids.isna().to_numpy().any():
        raise ValueError(f"{name} has missing values in {id_columns}")
    out = {column: ids[column].to_numpy() for column in id_columns}
    for column in count_columns:
        values = table[column]
        if not pd.api.types.is_numeric_dtype(values.dtype):
            values = pd.to_numeric(values, errors="coerce")
        as_float = values.to_numpy(dtype="float64", na_value=np.nan)
        if np.isnan(as_float).any():
            raise ValueError(f"{name}.{column} must hold counts (no missing or non-numeric)")
        if (as_float < 0).any() or (np.floor(as_float) != as_float).any():
            raise ValueError(f"{name}.{column} must hold non-negative whole numbers")
        out[column] = as_float.astype("int64")
    out = pd.DataFrame(out, columns=columns)
    if out.duplicated(subset=id_columns).any():
        out = out.groupby(id_columns, sort=False, as_index=False)[count_columns].sum()
    return out.reset_index(drop=True)


def _dense_counts(
    table: pd.DataFrame,
    key: str,
    levels: list[tuple[str, Sequence[Any]]],
    count_columns: list[str],
    items: list[Any] | None = None,
) -> tuple[list[Any], np.ndarray]:
    """Item ids, and the counts as a dense array (items x levels... x count columns).

    ``items`` defaults to the sorted ids of ``table``; rows of other ids are left out.
    Missing combinations are zeros and duplicate rows are summed. ``table`` must have been
    checked: every value of a level column is one of its listed values.
    """
    if items is None:
        items = sorted(pd.unique(table[key]).tolist())
    codes = [pd.Index(items, dtype=object).get_indexer(table[key].astype(object))]
    codes += [pd.Index(list(values)).get_indexer(table[column]) for column, values in levels]
    keep = np.logical_and.reduce([code >= 0 for code in codes])  # ids not in items
    shape = (len(items), *(len(values) for _, values in levels), len(count_columns))
    dense = np.zeros(shape, dtype="int64")
    np.add.at(
        dense,
        tuple(code[keep] for code in codes),
        table[count_columns].to_numpy(dtype="int64")[keep],
    )
    return items, dense


def _repeat_items(items: list[Any], times: int, dtype: Any) -> pd.Series:
    """Each item id repeated ``times`` times, keeping the id column's dtype."""
    return pd.Series(np.repeat(np.asarray(items, dtype=object), times)).astype(dtype)


def _check_kinds(table: pd.DataFrame, name: str) -> None:
    unknown = sorted(set(table["company_kind"]) - set(KINDS))
    if unknown:
        raise ValueError(f"{name}.company_kind must be one of {KINDS}, got {unknown}")


def _as_count(value: Any, name: str) -> int:
    """Return a scalar count as int, or raise ValueError."""
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a non-negative whole number, got {value!r}") from None
    if not math.isfinite(as_float) or as_float < 0 or as_float != math.floor(as_float):
        raise ValueError(f"{name} must be a non-negative whole number, got {value!r}")
    return int(as_float)


# --------------------------------------------------------------------------- one proportion


def wilson_ci(k, n, alpha: float = 0.05):
    """Wilson score interval for a binomial proportion ``k / n``.

    Parameters
    ----------
    k : int or array_like of int
        Number of successes ("yes" answers).
    n : int or array_like of int
        Number of trials (yes + no; "don't know" is not a trial). Broadcast against ``k``.
    alpha : float, default 0.05
        Significance level: the interval has coverage ``1 - alpha``.

    Returns
    -------
    ci_low, ci_high : float or numpy.ndarray
        Interval limits, clipped to [0, 1]; NaN where ``n == 0``. Scalars in, floats out.

    Notes
    -----
    Computed with ``statsmodels.stats.proportion.proportion_confint(k, n, alpha,
    method="wilson")`` (no continuity correction).

    Examples
    --------
    >>> low, high = wilson_ci(30, 120)
    >>> round(low, 4), round(high, 4)
    (0.1811, 0.3344)
    >>> wilson_ci([0, 3], [0, 5])[0]
    array([       nan, 0.23072428])
    """
    alpha = _check_alpha(alpha)
    k_arr = np.asarray(k, dtype="float64")
    n_arr = np.asarray(n, dtype="float64")
    scalar = k_arr.ndim == 0 and n_arr.ndim == 0
    k_arr, n_arr = np.broadcast_arrays(k_arr, n_arr)
    if np.isnan(k_arr).any() or np.isnan(n_arr).any():
        raise ValueError("k and n must not be missing")
    if (k_arr < 0).any() or (k_arr > n_arr).any():
        raise ValueError("need 0 <= k <= n")
    low = np.full(k_arr.shape, np.nan)
    high = np.full(k_arr.shape, np.nan)
    ok = n_arr > 0
    if ok.any():
        lo, hi = proportion_confint(k_arr[ok], n_arr[ok], alpha=alpha, method="wilson")
        low[ok] = np.clip(lo, 0.0, 1.0)
        high[ok] = np.clip(hi, 0.0, 1.0)
    if scalar:
        return float(low[()]), float(high[()])
    return low, high


def prevalence(
    counts: pd.DataFrame,
    key: str = "practice_id",
    alpha: float = 0.05,
    low_n: int = 10,
) -> pd.DataFrame:
    """Share of respondents who met each practice, by company kind, with Wilson intervals.

    Parameters
    ----------
    counts : pandas.DataFrame
        Prevalence counts with columns ``[key, "company_kind", "yes", "no", "dk"]``, one row
        per (item, kind); ``company_kind`` is ``"ru"`` or ``"foreign"``. A missing row means
        zero counts; duplicate rows are summed.
    key : str, default "practice_id"
        Item column (``"category_id"`` for the category level).
    alpha : float, default 0.05
        Significance level of the intervals.
    low_n : int, default 10
        Estimates resting on fewer than ``low_n`` yes/no answers are flagged.

    Returns
    -------
    pandas.DataFrame
        One row per (item, kind), both kinds for every item present, sorted by item and then
        ``ru`` before ``foreign``. Columns ``[key, company_kind, n, k, dk, p, ci_low, ci_high,
        low_n]`` where ``n = yes + no`` (don't-know answers are excluded from the denominator
        and reported as ``dk``), ``k = yes``, ``p = k / n`` (NaN when ``n == 0``, as are the
        interval limits), and ``low_n`` is ``n < low_n``.

    Examples
    --------
    >>> counts = pd.DataFrame({"practice_id": ["flexible_hours"] * 2,
    ...                        "company_kind": ["ru", "foreign"],
    ...                        "yes": [30, 55], "no": [90, 55], "dk": [7, 3]})
    >>> prevalence(counts).round(4)
          practice_id company_kind    n   k  dk     p  ci_low  ci_high  low_n
    0  flexible_hours           ru  120  30   7  0.25  0.1811   0.3344  False
    1  flexible_hours      foreign  110  55   3  0.50  0.4082   0.5918  False
    """
    key = _check_key(key)
    alpha = _check_alpha(alpha)
    low_n = _check_low_n(low_n)
    table = _count_table(counts, "counts", [key, "company_kind"], ["yes", "no", "dk"])
    _check_kinds(table, "counts")
    items, dense = _dense_counts(table, key, [("company_kind", KINDS)], ["yes", "no", "dk"])
    yes, no, dk = (dense[..., i].ravel() for i in range(3))  # rows: item-major, then kind
    shares = _prevalence_many(yes, no, dk, alpha=alpha)
    return pd.DataFrame(
        {
            key: _repeat_items(items, len(KINDS), table[key].dtype),
            "company_kind": pd.Series(list(KINDS) * len(items), dtype="str"),
            **shares,
            "low_n": shares["n"] < low_n,
        }
    )


def _prevalence_many(yes, no, dk, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """The statistics of :func:`prevalence` over arrays of counts (any shape): ``n``,
    ``k``, ``dk``, ``p`` and the Wilson interval ``ci_low``, ``ci_high`` (NaN where
    ``n == 0``). :func:`analysis.compare.compare` reports each kind's answers with them."""
    n = yes + no
    low, high = wilson_ci(yes, n, alpha=alpha)
    p = np.full(n.shape, np.nan)
    np.divide(yes, n, out=p, where=n > 0)
    return {"n": n, "k": yes, "dk": dk, "p": p, "ci_low": low, "ci_high": high}


# --------------------------------------------------------------------------- two proportions


def cohens_h(p1: float, p2: float) -> float:
    """Cohen's h effect size, ``2 asin(sqrt(p1)) - 2 asin(sqrt(p2))``; NaN if either is NaN.

    Examples
    --------
    >>> round(cohens_h(0.25, 0.5), 4)
    -0.5236
    """
    if not (math.isfinite(p1) and math.isfinite(p2)):
        return math.nan
    return 2.0 * math.asin(math.sqrt(p1)) - 2.0 * math.asin(math.sqrt(p2))


def compare_independent(
    k1: int,
    n1: int,
    k2: int,
    n2: int,
    alpha: float = 0.05,
    test: str = "auto",
) -> dict[str, Any]:
    """Compare two independent proportions ``k1/n1`` (Russian) and ``k2/n2`` (foreign).

    Parameters
    ----------
    k1, n1 : int
        Yes answers and yes + no answers in the first group (Russian companies).
    k2, n2 : int
        The same in the second group (foreign companies).
    alpha : float, default 0.05
        Significance level of the difference interval.
    test : {"auto", "chi2", "fisher"}, default "auto"
        ``"auto"`` uses Fisher's exact test when any expected count of the 2x2 table is
        below 5 and Pearson's chi-square otherwise; the other values force one test.

    Returns
    -------
    dict
        ``diff``
            ``p1 - p2``.
        ``diff_ci_low``, ``diff_ci_high``
            Newcombe hybrid score interval of the difference (Newcombe 1998, method 10 for
            independent samples), ``statsmodels.stats.proportion.confint_proportions_2indep(
            ..., method="newcomb", compare="diff")``.
        ``test``
            ``"chi2"`` (Pearson chi-square without continuity correction,
            ``scipy.stats.chi2_contingency(table, correction=False)``; equal to the square of
            the pooled two-proportion z), ``"fisher"`` (``scipy.stats.fisher_exact``,
            two-sided), or ``None`` when a group is empty.
        ``statistic``
            The chi-square value; NaN for Fisher's test (its odds ratio is not reported).
        ``p_val``
            Two-sided p-value.
        ``cohens_h``
            ``2 asin(sqrt(p1)) - 2 asin(sqrt(p2))``.

    Notes
    -----
    Defined results at the edges, with no exception and no warning:

    * ``n1 == 0`` or ``n2 == 0``: every number is NaN and ``test`` is ``None``.
    * A zero margin (all yes or all no in both groups): the chi-square is undefined, so
      Fisher's test is used whatever ``test`` says; its p-value is 1.0. ``diff`` is 0 with a
      Newcombe interval around it.

    Examples
    --------
    >>> res = compare_independent(30, 120, 55, 110)
    >>> res["test"], round(res["statistic"], 4), round(res["p_val"], 7)
    ('chi2', 15.3955, 8.72e-05)
    >>> round(res["diff_ci_low"], 4), round(res["diff_ci_high"], 4)
    (-0.3648, -0.1253)
    >>> round(compare_independent(30, 120, 55, 110, test="fisher")["p_val"], 6)
    0.000118
    """
    alpha = _check_alpha(alpha)
    if test not in _TESTS:
        raise ValueError(f"test must be one of {_TESTS}, got {test!r}")
    k1, n1 = _as_count(k1, "k1"), _as_count(n1, "n1")
    k2, n2 = _as_count(k2, "k2"), _as_count(n2, "n2")
    if k1 > n1 or k2 > n2:
        raise ValueError("need k1 <= n1 and k2 <= n2")
    result: dict[str, Any] = {
        "diff": math.nan,
        "diff_ci_low": math.nan,
        "diff_ci_high": math.nan,
        "test": None,
        "statistic": math.nan,
        "p_val": math.nan,
        "cohens_h": math.nan,
    }
    if n1 == 0 or n2 == 0:
        return result
    p1, p2 = k1 / n1, k2 / n2
    low, high = confint_proportions_2indep(
        k1, n1, k2, n2, method="newcomb", compare="diff", alpha=alpha
    )
    result["diff"] = p1 - p2
    result["diff_ci_low"] = float(max(-1.0, low))
    result["diff_ci_high"] = float(min(1.0, high))
    result["cohens_h"] = cohens_h(p1, p2)

    table = np.array([[k1, n1 - k1], [k2, n2 - k2]])
    zero_margin = (table.sum(axis=0) == 0).any()
    if test == "auto":
        use_fisher = zero_margin or stats.contingency.expected_freq(table).min() < 5
    else:
        use_fisher = zero_margin or test == "fisher"
    if use_fisher:
        result["test"] = "fisher"
        result["p_val"] = float(stats.fisher_exact(table, alternative="two-sided").pvalue)
    else:
        chi2 = stats.chi2_contingency(table, correction=False)
        result["test"] = "chi2"
        result["statistic"] = float(chi2.statistic)
        result["p_val"] = float(chi2.pvalue)
    return result


def _cohens_h_many(p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    """:func:`cohens_h` over arrays: NaN where either share is NaN."""
    ok = np.isfinite(p1) & np.isfinite(p2)
    out = np.full(np.shape(p1), np.nan)
    # math.asin, not numpy's (whose SIMD version may differ in the last bit), so that the
    # result equals cohens_h exactly.
    asin = np.frompyfunc(math.asin, 1, 1)
    arc1 = asin(np.sqrt(p1[ok])).astype("float64")
    arc2 = asin(np.sqrt(p2[ok])).astype("float64")
    out[ok] = 2.0 * arc1 - 2.0 * arc2
    return out


def _compare_independent_many(k1, n1, k2, n2, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """:func:`compare_independent` with ``test="auto"`` over arrays of counts, item by item.

    Every statistic is computed for all items at once; only Fisher's exact test runs once
    per item that needs it. ``test`` is an object array (``None`` where a group is empty).
    """
    k1, n1, k2, n2 = (np.asarray(v, dtype="int64") for v in (k1, n1, k2, n2))
    size = k1.shape[0]
    out = {
        name: np.full(size, np.nan)
        for name in ("diff", "diff_ci_low", "diff_ci_high", "statistic", "p_val", "cohens_h")
    }
    out["test"] = np.full(size, None, dtype=object)
    ok = (n1 > 0) & (n2 > 0)
    if not ok.any():
        return out
    k1, n1, k2, n2 = k1[ok], n1[ok], k2[ok], n2[ok]
    p1, p2 = k1 / n1, k2 / n2
    diff = p1 - p2
    # Newcombe's interval as confint_proportions_2indep(method="newcomb") computes it.
    (low1, low2), (upp1, upp2) = wilson_ci(np.stack([k1, k2]), np.stack([n1, n2]), alpha=alpha)
    low = diff - np.sqrt((p1 - low1) ** 2 + (upp2 - p2) ** 2)
    high = diff + np.sqrt((p2 - low2) ** 2 + (upp1 - p1) ** 2)
    out["diff"][ok] = diff
    out["diff_ci_low"][ok] = np.maximum(-1.0, low)
    out["diff_ci_high"][ok] = np.minimum(1.0, high)
    out["cohens_h"][ok] = _cohens_h_many(p1, p2)

    # The 2x2 tables [[k1, n1 - k1], [k2, n2 - k2]], cells in row-major order.
    cells = np.stack([k1, n1 - k1, k2, n2 - k2], axis=1).astype("float64")
    rows = np.stack([n1, n1, n2, n2], axis=1).astype("float64")
    cols = np.stack([k1 + k2, n1 + n2 - k1 - k2] * 2, axis=1).astype("float64")
    total = (n1 + n2).astype("float64")
    zero_margin = (cols[:, 0] == 0) | (cols[:, 1] == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = rows * cols / total[:, None]  # as scipy.stats.contingency.expected_freq
        terms = (cells - expected) ** 2 / expected
    fisher = zero_margin | (expected.min(axis=1) < 5)
    chi2 = ~fisher
    test = np.where(fisher, "fisher", "chi2").astype(object)
    statistic = np.full(fisher.shape, np.nan)
    p_val = np.full(fisher.shape, np.nan)
    if chi2.any():
        t = terms[chi2]
        statistic[chi2] = ((t[:, 0] + t[:, 1]) + t[:, 2]) + t[:, 3]
        p_val[chi2] = stats.chi2.sf(statistic[chi2], 1)
    exact: dict[tuple[int, ...], float] = {}  # the same small table often recurs
    for i in np.flatnonzero(fisher):
        cell = tuple(int(v) for v in cells[i])
        if cell not in exact:
            table = np.asarray(cell, dtype="int64").reshape(2, 2)
            exact[cell] = float(stats.fisher_exact(table, alternative="two-sided").pvalue)
        p_val[i] = exact[cell]
    out["test"][ok] = test
    out["statistic"][ok] = statistic
    out["p_val"][ok] = p_val
    return out
