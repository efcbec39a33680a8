"""Russian vs foreign companies when some respondents know both: partially overlapping samples.

A respondent who worked in both kinds of company answers about both, so the "Russian" and
the "foreign" answers to an item are two *partially overlapping* samples, made of three
groups:

* ``ru_only``: answered only about a Russian company (yes/no, or a rating);
* ``foreign_only``: answered only about a foreign company;
* ``paired``: answered about both (the 2x2 table ``a, b, c, d`` of yes/no, or the 5x5 table
  of ratings).

The difference ``p_ru - p_foreign`` uses every answer (``p_ru`` over ``ru_only`` and
``paired``), but its variance has a covariance term from the paired group. Treating the two
samples as independent ignores it: with a positive within-person correlation the naive test
is conservative, with a negative one it is liberal (see ``benchmarks/validate.py``).

Everything here works from counts, never from microdata.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.paired import PAIRED_CELLS
from analysis.proportions import (
    KINDS,
    _as_count,
    _check_alpha,
    _check_key,
    _cohens_h_many,
    _count_table,
    _dense_counts,
    cohens_h,
    wilson_ci,
)
from analysis.ratings import RATINGS, _histogram

OVERLAP_Z = "overlap_z"
"""Name of the primary prevalence test (:func:`compare_overlapping`) in result tables."""

OVERLAP_T = "overlap_t"
"""Name of the primary rating test (:func:`compare_overlapping_means`) in result tables."""

_SCORES = np.asarray(RATINGS, dtype="float64")


def _counts(counts: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Return an int64 array of counts of the given shape, or raise ValueError."""
    arr = np.asarray(counts, dtype="float64")
    if arr.shape != shape:
        raise ValueError(f"{name} must hold counts of shape {shape}, got shape {arr.shape}")
    if np.isnan(arr).any() or (arr < 0).any() or (np.floor(arr) != arr).any():
        raise ValueError(f"{name} must hold non-negative whole numbers")
    return arr.astype("int64")


def _phi(a: int, b: int, c: int, d: int) -> float:
    """Pearson (phi) correlation of the paired yes/no answers; 0 when either is constant."""
    n = a + b + c + d
    if n == 0:
        return 0.0
    q1, q2 = (a + b) / n, (a + c) / n
    spread = q1 * (1 - q1) * q2 * (1 - q2)
    if spread <= 0:
        return 0.0
    return (a / n - q1 * q2) / math.sqrt(spread)


def compare_overlapping(
    k_ru_only: int,
    n_ru_only: int,
    k_foreign_only: int,
    n_foreign_only: int,
    a: int,
    b: int,
    c: int,
    d: int,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Compare the share of "yes" in Russian and foreign companies, partially overlapping samples.

    Parameters
    ----------
    k_ru_only, n_ru_only : int
        "Yes" answers and yes + no answers of respondents who answered about a Russian company
        only.
    k_foreign_only, n_foreign_only : int
        The same for a foreign company only.
    a, b, c, d : int
        Respondents who answered about both: ``a`` yes in both, ``b`` yes (Russian) and no
        (foreign), ``c`` no (Russian) and yes (foreign), ``d`` no in both.
    alpha : float, default 0.05
        Significance level of the intervals.

    Returns
    -------
    dict
        ``n_ru, n_foreign, p_ru, p_foreign``
            All yes/no answers per kind (``n_ru = n_ru_only + a + b + c + d``) and the shares.
        ``r``
            Phi correlation of the paired answers (0 when one side is constant).
        ``diff``
            ``p_ru - p_foreign``.
        ``diff_ci_low, diff_ci_high``
            MOVER interval for correlated estimates (see Notes).
        ``test, statistic, p_val``
            ``"overlap_z"``, the z statistic and its two-sided normal p-value; NaN and
            ``None`` when a kind has no answer.
        ``cohens_h, cohens_h_ci_low, cohens_h_ci_high``
            Cohen's h with its delta-method interval (see Notes).

    Notes
    -----
    **Test.** The partially overlapping samples z-test of Derrick, Dobson-McKittrick, Toher
    and White (2015), "Test statistics for comparing two proportions with partially
    overlapping samples", *Journal of Applied Quantitative Methods* 10(3), exactly as
    implemented by their R package Partiallyoverlapping 2.0, ``Prop.test``: with
    ``n1 = n_ru``, ``n2 = n_foreign``, ``n12 = a + b + c + d``, the pooled share
    ``p = (k_ru + k_foreign) / (n1 + n2)``, ``w = p (1 - p)`` and ``r`` the phi correlation
    of the paired answers,

    ``z = (p_ru - p_foreign) / sqrt(w / n1 + w / n2 - 2 r w n12 / (n1 n2))``.

    With ``n12 = 0`` it is the pooled two-proportion z-test (``chi2 = z^2`` of the 2x2
    table). A zero variance (every answer the same) gives ``z = 0`` and ``p = 1``.

    **Interval.** Newcombe's hybrid score ("square-and-add", MOVER) interval built from the
    Wilson intervals ``(l1, u1)`` of ``p_ru`` and ``(l2, u2)`` of ``p_foreign``, with the
    correlation of the two estimates ``rho = r n12 / sqrt(n1 n2)`` (Zou and Donner 2008,
    *Statistics in Medicine* 27, 1693-1702; Newcombe 1998 method 10 for the paired case):

    ``L = D - sqrt((p_ru - l1)^2 - 2 rho (p_ru - l1)(u2 - p_foreign) + (u2 - p_foreign)^2)``,
    ``U = D + sqrt((u1 - p_ru)^2 - 2 rho (u1 - p_ru)(p_foreign - l2) + (p_foreign - l2)^2)``.

    With ``n12 = 0`` it is the Newcombe interval of two independent proportions. The
    pooled-variance Wald interval of ``Prop.test`` over-covers when the shares differ (about
    99 % instead of 95 % for 0.3 vs 0.1 with 300/30/60 respondents), the MOVER interval
    stays within Monte-Carlo error of 95 % (``benchmarks/validate.py``). The test and the
    interval can therefore disagree at the margin of significance.

    **Cohen's h.** ``h = 2 asin(sqrt(p_ru)) - 2 asin(sqrt(p_foreign))`` with the delta-method
    variance ``1 / n1 + 1 / n2 - 2 r n12 / (n1 n2)`` (each arcsine term has variance
    ``1 / n`` and their correlation is ``rho``).

    **Check against a model.** ``diff`` equals the kind coefficient of a GEE with identity
    link, groups = respondent and independence working correlation on the raw 0/1 answers
    (to 1e-12); the p-value agrees with that GEE's robust (sandwich) Wald test and with a
    logistic GEE with exchangeable correlation to within the tolerances stated in
    ``tests/analysis/test_overlap.py``.

    Examples
    --------
    The published example of ``Prop.test`` (15 pairs, 9 Russian-only, 6 foreign-only):

    >>> res = compare_overlapping(5, 9, 6, 6, a=8, b=1, c=3, d=3)
    >>> res["test"], round(res["diff"], 4), round(res["p_val"], 3)
    ('overlap_z', -0.2262, 0.053)
    """
    alpha = _check_alpha(alpha)
    e, n_e = _as_count(k_ru_only, "k_ru_only"), _as_count(n_ru_only, "n_ru_only")
    g, n_g = _as_count(k_foreign_only, "k_foreign_only"), _as_count(n_foreign_only, "n_f_only")
    a, b, c, d = (_as_count(v, name) for v, name in ((a, "a"), (b, "b"), (c, "c"), (d, "d")))
    if e > n_e or g > n_g:
        raise ValueError("need k_ru_only <= n_ru_only and k_foreign_only <= n_foreign_only")
    n12 = a + b + c + d
    n1, n2 = n_e + n12, n_g + n12
    k1, k2 = e + a + b, g + a + c
    r = _phi(a, b, c, d)
    result: dict[str, Any] = {
        "n_ru": n1,
        "n_foreign": n2,
        "p_ru": k1 / n1 if n1 else math.nan,
        "p_foreign": k2 / n2 if n2 else math.nan,
        "r": r,
        "diff": math.nan,
        "diff_ci_low": math.nan,
        "diff_ci_high": math.nan,
        "test": None,
        "statistic": math.nan,
        "p_val": math.nan,
        "cohens_h": math.nan,
        "cohens_h_ci_low": math.nan,
        "cohens_h_ci_high": math.nan,
    }
    if n1 == 0 or n2 == 0:
        return result
    p1, p2 = k1 / n1, k2 / n2
    diff = p1 - p2
    z_crit = float(stats.norm.isf(alpha / 2))

    pooled = (k1 + k2) / (n1 + n2)
    w = pooled * (1 - pooled)
    variance = w / n1 + w / n2 - 2 * r * w * n12 / (n1 * n2)
    z = diff / math.sqrt(variance) if variance > 0 else 0.0
    result.update(
        diff=diff,
        test=OVERLAP_Z,
        statistic=z,
        p_val=float(min(1.0, 2 * stats.norm.sf(abs(z)))),
    )

    rho = r * n12 / math.sqrt(n1 * n2)
    (l1, l2), (u1, u2) = wilson_ci([k1, k2], [n1, n2], alpha=alpha)
    down = (p1 - l1) ** 2 - 2 * rho * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    up = (u1 - p1) ** 2 - 2 * rho * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    result["diff_ci_low"] = max(-1.0, diff - math.sqrt(max(down, 0.0)))
    result["diff_ci_high"] = min(1.0, diff + math.sqrt(max(up, 0.0)))

    h = cohens_h(p1, p2)
    h_se = math.sqrt(max(1 / n1 + 1 / n2 - 2 * r * n12 / (n1 * n2), 0.0))
    result.update(cohens_h=h, cohens_h_ci_low=h - z_crit * h_se, cohens_h_ci_high=h + z_crit * h_se)
    return result


def _moments(hist: np.ndarray, scores: np.ndarray = _SCORES) -> tuple[int, float, float]:
    """Count, mean and sample variance (ddof 1; NaN below 2) of values given as a histogram."""
    n = int(hist.sum())
    if n == 0:
        return 0, math.nan, math.nan
    mean = float(hist @ scores) / n
    if n < 2:
        return n, mean, math.nan
    return n, mean, float(hist @ (scores - mean) ** 2) / (n - 1)


def mean_rating_ci(counts: Any, alpha: float = 0.05) -> dict[str, float]:
    """Mean rating with its t interval, from a histogram of ratings 1..5.

    Parameters
    ----------
    counts : array_like of int, length 5
        Counts of ratings 1..5.
    alpha : float, default 0.05
        Significance level of the interval.

    Returns
    -------
    dict
        ``n``, ``mean``, ``ci_low``, ``ci_high``: ``mean -/+ t(1 - alpha/2; n - 1) s / sqrt(n)``
        (``s`` with ``ddof = 1``), as ``scipy.stats.t.interval`` on the raw ratings. The
        interval is NaN below 2 ratings and collapses to the mean when all ratings agree.

    Examples
    --------
    >>> res = mean_rating_ci([0, 1, 2, 3, 0])
    >>> res["n"], round(res["mean"], 4), round(res["ci_low"], 4), round(res["ci_high"], 4)
    (6, 3.3333, 2.4765, 4.1902)
    """
    alpha = _check_alpha(alpha)
    n, mean, var = _moments(_histogram(counts, "counts"))
    low = high = math.nan
    if n >= 2:
        half = float(stats.t.isf(alpha / 2, n - 1)) * math.sqrt(var / n)
        low, high = mean - half, mean + half
    return {"n": n, "mean": mean, "ci_low": low, "ci_high": high}


def compare_overlapping_means(
    ru_only: Any,
    foreign_only: Any,
    paired: Any,
    alpha: float = 0.05,
    equal_var: bool = False,
    scores: Any = RATINGS,
) -> dict[str, Any]:
    """Compare mean ratings of Russian and foreign companies, partially overlapping samples.

    Parameters
    ----------
    ru_only : array_like of int, length 5
        Histogram of ratings 1..5 of respondents who rated the item for a Russian company only.
    foreign_only : array_like of int, length 5
        The same for a foreign company only.
    paired : array_like of int, shape (5, 5)
        Respondents who rated both: ``paired[i, j]`` rated ``i + 1`` (Russian) and ``j + 1``
        (foreign).
    alpha : float, default 0.05
        Significance level of the interval.
    equal_var : bool, default False
        ``False``: the separate-variances statistic (Welch-type degrees of freedom);
        ``True``: the pooled-variance statistic.
    scores : sequence of float, default (1, 2, 3, 4, 5)
        The value of each histogram bin (the histograms then have ``len(scores)`` bins and
        the paired table is square of that size).

    Returns
    -------
    dict
        ``n_ru, n_foreign, n_paired``, ``mean_ru, mean_foreign``, ``r`` (Pearson correlation of
        the paired ratings, 0 when either side is constant), ``diff`` (``mean_ru -
        mean_foreign``), ``diff_ci_low, diff_ci_high``, ``test`` (``"overlap_t"``),
        ``statistic`` (t), ``df`` and ``p_val`` (two-sided). Statistics are NaN and ``test``
        is ``None`` unless each kind has 2 ratings or more. With no pair it is Welch's t-test
        (Student's with ``equal_var=True``) of the two independent samples; with a single
        pair ``r`` is taken as 0 (the package requires 2 pairs or more).

    Notes
    -----
    The partially overlapping samples t-test of Derrick, Russ, Toher and White (2017),
    *Journal of Modern Applied Statistical Methods* 16(1), 137-157, exactly as implemented
    by R's Partiallyoverlapping 2.0 ``Partover.test`` (Derrick, Toher and White 2017, *The
    Quantitative Methods for Psychology* 13(2), 120-126). With ``n1, n2`` all ratings per
    kind, ``s1, s2`` their standard deviations, ``n12`` pairs with correlation ``r``, and
    ``na, nb`` the unpaired counts:

    * separate variances: ``t = D / sqrt(s1^2/n1 + s2^2/n2 - 2 r s1 s2 n12 / (n1 n2))``,
      ``df = (n12 - 1) + (nu - n12 + 1) (na + nb) / (na + nb + 2 n12)`` with ``nu`` the
      Welch-Satterthwaite degrees of freedom of the two samples;
    * pooled: ``t = D / (sp sqrt(1/n1 + 1/n2 - 2 r n12 / (n1 n2)))`` with
      ``sp^2 = ((n1-1) s1^2 + (n2-1) s2^2) / (n1 + n2 - 2)``,
      ``df = (n12 - 1) + (na + nb + n12 - 1) (na + nb) / (na + nb + 2 n12)``.

    The interval is ``D -/+ t(1 - alpha/2; df)`` times the same standard error. A zero
    standard error (no variation) gives ``p = 1`` and a zero-width interval. ``diff``
    equals the kind coefficient of a linear GEE on the raw ratings with groups =
    respondent and independence working correlation (to 1e-12), and the p-value agrees with
    its robust Wald test within the tolerance stated in ``tests/analysis/test_overlap.py``.

    Examples
    --------
    The tests pin the published example of ``Partover.test`` (``scores`` 10..21). Ratings:

    >>> res = compare_overlapping_means([0, 1, 2, 3, 4], [2, 2, 1, 0, 0],
    ...                                 [[1, 0, 0, 0, 0], [0, 2, 0, 0, 0], [0, 1, 2, 0, 0],
    ...                                  [0, 0, 1, 2, 0], [0, 0, 0, 1, 1]])
    >>> res["test"], res["n_ru"], res["n_foreign"], round(res["diff"], 3)
    ('overlap_t', 21, 16, 0.994)
    """
    alpha = _check_alpha(alpha)
    values = np.asarray(scores, dtype="float64").ravel()
    k = len(values)
    x_only = _counts(ru_only, (k,), "ru_only")
    y_only = _counts(foreign_only, (k,), "foreign_only")
    table = _counts(paired, (k, k), "paired")
    na, nb, n12 = int(x_only.sum()), int(y_only.sum()), int(table.sum())
    n1, mean1, var1 = _moments(x_only + table.sum(axis=1), values)
    n2, mean2, var2 = _moments(y_only + table.sum(axis=0), values)
    result: dict[str, Any] = {
        "n_ru": n1,
        "n_foreign": n2,
        "n_paired": n12,
        "mean_ru": mean1,
        "mean_foreign": mean2,
        "r": math.nan,
        "diff": mean1 - mean2 if n1 and n2 else math.nan,
        "diff_ci_low": math.nan,
        "diff_ci_high": math.nan,
        "test": None,
        "statistic": math.nan,
        "df": math.nan,
        "p_val": math.nan,
    }
    if n1 < 2 or n2 < 2:
        return result
    r = 0.0
    if n12 >= 2:
        row, col = table.sum(axis=1), table.sum(axis=0)
        m_row, m_col = float(row @ values) / n12, float(col @ values) / n12
        sxx = float(row @ (values - m_row) ** 2)
        syy = float(col @ (values - m_col) ** 2)
        sxy = float(np.sum(table * np.outer(values - m_row, values - m_col)))
        if sxx > 0 and syy > 0:
            r = sxy / math.sqrt(sxx * syy)
    result["r"] = r
    overlap = 2 * r * n12 / (n1 * n2)
    unpaired = na + nb
    if unpaired == 0:  # only pairs: the package's formula with na + nb = 0
        unpaired_share = 0.0
    else:
        unpaired_share = unpaired / (unpaired + 2 * n12)
    if equal_var:
        pooled = ((n1 - 1) * var1 + (n2 - 1) * var2) / (n1 + n2 - 2)
        se2 = pooled * (1 / n1 + 1 / n2 - overlap)
        df = (n12 - 1) + (unpaired + n12 - 1) * unpaired_share
    else:
        v1, v2 = var1 / n1, var2 / n2
        se2 = v1 + v2 - overlap * math.sqrt(var1 * var2)
        if v1 + v2 > 0:
            welch = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
        else:
            welch = n1 + n2 - 2.0
        df = (n12 - 1) + (welch - n12 + 1) * unpaired_share
    diff = result["diff"]
    se = math.sqrt(max(se2, 0.0))
    if se > 0:
        t = diff / se
        p = float(min(1.0, 2 * stats.t.sf(abs(t), df)))
    else:
        t, p = 0.0, 1.0
    half = float(stats.t.isf(alpha / 2, df)) * se
    result.update(
        test=OVERLAP_T,
        statistic=t,
        df=df,
        p_val=p,
        diff_ci_low=diff - half,
        diff_ci_high=diff + half,
    )
    return result


def rank_biserial_ci(rank_biserial: float, n_x: int, n_y: int, alpha: float = 0.05):
    """Interval of the rank-biserial correlation of two independent samples.

    Fisher's z transformation with standard error ``sqrt((n_x + n_y + 1) / (3 n_x n_y))``
    (the variance of the Mann-Whitney statistic under H0, without ties), as R's effectsize
    package computes it for ``rank_biserial``; the limits are ``tanh(atanh(r) -/+ z se)``.
    NaN when either sample is empty; ``r = +-1`` gives a one-sided degenerate interval.

    Examples
    --------
    >>> [round(v, 4) for v in rank_biserial_ci(0.5, 20, 30)]
    [0.2159, 0.706]
    """
    alpha = _check_alpha(alpha)
    if not n_x or not n_y or not math.isfinite(rank_biserial):
        return math.nan, math.nan
    r = min(max(rank_biserial, -1.0), 1.0)
    if abs(r) == 1.0:
        return (r, r) if r > 0 else (r, r)
    se = math.sqrt((n_x + n_y + 1) / (3 * n_x * n_y))
    z = float(stats.norm.isf(alpha / 2))
    centre = math.atanh(r)
    return math.tanh(centre - z * se), math.tanh(centre + z * se)


def unpaired_counts(total: Any, paired_margin: Any, name: str) -> np.ndarray:
    """Counts of respondents outside the paired group: ``total - paired_margin``.

    Raises ValueError when a paired margin exceeds its total, which means the count tables
    did not come from the same respondents.
    """
    out = np.asarray(total, dtype="int64") - np.asarray(paired_margin, dtype="int64")
    if (out < 0).any():
        raise ValueError(
            f"{name}: the paired table holds more answers than the kind's table; "
            "the count tables must come from the same respondents"
        )
    return out


def overlap_groups(
    prevalence_counts: pd.DataFrame, paired_counts: pd.DataFrame, key: str = "practice_id"
) -> pd.DataFrame:
    """The three groups of each item, derived from a prevalence and a paired count table.

    Parameters
    ----------
    prevalence_counts : pandas.DataFrame
        ``[key, company_kind, yes, no, dk]``, every answer per kind.
    paired_counts : pandas.DataFrame
        ``[key, yes_yes, yes_no, no_yes, no_no]``: respondents who answered yes/no for both.
    key : str, default "practice_id"
        Item column.

    Returns
    -------
    pandas.DataFrame
        One row per item, sorted: ``[key, n_ru_only, k_ru_only, n_foreign_only,
        k_foreign_only, paired_n]``, where the unpaired counts are the kind's yes/no answers
        less the paired table's margin.

    Examples
    --------
    >>> prev = pd.DataFrame({"practice_id": ["bonus", "bonus"],
    ...                      "company_kind": ["ru", "foreign"],
    ...                      "yes": [30, 55], "no": [90, 55], "dk": [4, 2]})
    >>> pairs = pd.DataFrame({"practice_id": ["bonus"], "yes_yes": [10], "yes_no": [5],
    ...                       "no_yes": [20], "no_no": [25]})
    >>> overlap_groups(prev, pairs)
      practice_id  n_ru_only  k_ru_only  n_foreign_only  k_foreign_only  paired_n
    0       bonus         60         15              50              25        60
    """
    key = _check_key(key)
    prev = _count_table(
        prevalence_counts, "prevalence_counts", [key, "company_kind"], ["yes", "no", "dk"]
    )
    pairs = _count_table(paired_counts, "paired_counts", [key], list(PAIRED_CELLS))
    items = sorted(pd.unique(pd.concat([prev[key], pairs[key]], ignore_index=True)).tolist())
    _, prev_dense = _dense_counts(prev, key, [("company_kind", KINDS)], ["yes", "no", "dk"], items)
    _, pair_dense = _dense_counts(pairs, key, [], list(PAIRED_CELLS), items)
    a, b, c, d = (pair_dense[:, i] for i in range(4))
    k_ru = unpaired_counts(prev_dense[:, 0, 0], a + b, "ru yes")
    no_ru = unpaired_counts(prev_dense[:, 0, 1], c + d, "ru no")
    k_fo = unpaired_counts(prev_dense[:, 1, 0], a + c, "foreign yes")
    no_fo = unpaired_counts(prev_dense[:, 1, 1], b + d, "foreign no")
    return pd.DataFrame(
        {
            key: pd.Series(items, dtype=object),
            "n_ru_only": k_ru + no_ru,
            "k_ru_only": k_ru,
            "n_foreign_only": k_fo + no_fo,
            "k_foreign_only": k_fo,
            "paired_n": a + b + c + d,
        }
    )


# --------------------------------------------------------------------------- many items at once
# Private array versions of the functions above, for analysis.compare: one row per item, the
# same formulas in the same order, scipy called once per table instead of once per item.


def _phi_many(a, b, c, d) -> np.ndarray:
    """:func:`_phi` over arrays of paired tables."""
    n = a + b + c + d
    r = np.zeros(n.shape)
    some = n > 0
    q1 = (a[some] + b[some]) / n[some]
    q2 = (a[some] + c[some]) / n[some]
    spread = q1 * (1 - q1) * q2 * (1 - q2)
    value = np.zeros(q1.shape)
    varied = spread > 0
    value[varied] = (a[some][varied] / n[some][varied] - q1[varied] * q2[varied]) / np.sqrt(
        spread[varied]
    )
    r[some] = value
    return r


def _compare_overlapping_many(
    k_ru_only, n_ru_only, k_foreign_only, n_foreign_only, a, b, c, d, alpha: float = 0.05
) -> dict[str, np.ndarray]:
    """:func:`compare_overlapping` over arrays of counts (already checked), one entry per item."""
    e, n_e, g, n_g = (
        np.asarray(v, dtype="int64") for v in (k_ru_only, n_ru_only, k_foreign_only, n_foreign_only)
    )
    a, b, c, d = (np.asarray(v, dtype="int64") for v in (a, b, c, d))
    n12 = a + b + c + d
    n1, n2 = n_e + n12, n_g + n12
    k1, k2 = e + a + b, g + a + c
    r = _phi_many(a, b, c, d)
    size = n1.shape[0]
    names = ("diff", "diff_ci_low", "diff_ci_high", "statistic", "p_val")
    out: dict[str, np.ndarray] = {name: np.full(size, np.nan) for name in names}
    out.update({f"cohens_h{s}": np.full(size, np.nan) for s in ("", "_ci_low", "_ci_high")})
    out["r"] = r
    out["test"] = np.full(size, None, dtype=object)
    ok = (n1 > 0) & (n2 > 0)
    if not ok.any():
        return out
    k1, k2, n1, n2, n12, r = k1[ok], k2[ok], n1[ok], n2[ok], n12[ok], r[ok]
    p1, p2 = k1 / n1, k2 / n2
    diff = p1 - p2
    z_crit = float(stats.norm.isf(alpha / 2))

    pooled = (k1 + k2) / (n1 + n2)
    w = pooled * (1 - pooled)
    variance = w / n1 + w / n2 - 2 * r * w * n12 / (n1 * n2)
    z = np.zeros(diff.shape)
    positive = variance > 0
    z[positive] = diff[positive] / np.sqrt(variance[positive])
    out["diff"][ok] = diff
    out["test"][ok] = OVERLAP_Z
    out["statistic"][ok] = z
    out["p_val"][ok] = np.minimum(1.0, 2 * stats.norm.sf(np.abs(z)))

    rho = r * n12 / np.sqrt(n1 * n2)
    (l1, l2), (u1, u2) = wilson_ci(np.stack([k1, k2]), np.stack([n1, n2]), alpha=alpha)
    down = (p1 - l1) ** 2 - 2 * rho * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    up = (u1 - p1) ** 2 - 2 * rho * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    out["diff_ci_low"][ok] = np.maximum(-1.0, diff - np.sqrt(np.maximum(down, 0.0)))
    out["diff_ci_high"][ok] = np.minimum(1.0, diff + np.sqrt(np.maximum(up, 0.0)))

    h = _cohens_h_many(p1, p2)
    h_se = np.sqrt(np.maximum(1 / n1 + 1 / n2 - 2 * r * n12 / (n1 * n2), 0.0))
    out["cohens_h"][ok] = h
    out["cohens_h_ci_low"][ok] = h - z_crit * h_se
    out["cohens_h_ci_high"][ok] = h + z_crit * h_se
    return out


def _moments_many(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_moments` for each row of an (items x 5) rating histogram array."""
    n = hist.sum(axis=1)
    mean = np.full(n.shape, np.nan)
    var = np.full(n.shape, np.nan)
    some = n > 0
    mean[some] = (hist[some] * _SCORES).sum(axis=1) / n[some]
    two = n >= 2
    deviations = (_SCORES - mean[two, None]) ** 2
    var[two] = (hist[two] * deviations).sum(axis=1) / (n[two] - 1)
    return n, mean, var


def _mean_rating_ci_many(hist: np.ndarray, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """:func:`mean_rating_ci` for each row of an (items x 5) rating histogram array."""
    hist = np.asarray(hist, dtype="int64")
    n, mean, var = _moments_many(hist)
    low = np.full(n.shape, np.nan)
    high = np.full(n.shape, np.nan)
    two = n >= 2
    if two.any():
        half = stats.t.isf(alpha / 2, n[two] - 1) * np.sqrt(var[two] / n[two])
        low[two], high[two] = mean[two] - half, mean[two] + half
    return {"n": n, "mean": mean, "ci_low": low, "ci_high": high}


def _compare_overlapping_means_many(
    ru_only: np.ndarray, foreign_only: np.ndarray, paired: np.ndarray, alpha: float = 0.05
) -> dict[str, np.ndarray]:
    """:func:`compare_overlapping_means` (separate variances, ratings 1..5) for each item of
    (items x 5) unpaired histograms and an (items x 5 x 5) paired table."""
    x_only, y_only = np.asarray(ru_only, dtype="int64"), np.asarray(foreign_only, dtype="int64")
    table = np.asarray(paired, dtype="int64")
    na, nb, n12 = x_only.sum(axis=1), y_only.sum(axis=1), table.sum(axis=(1, 2))
    row, col = table.sum(axis=2), table.sum(axis=1)
    n1, mean1, var1 = _moments_many(x_only + row)
    n2, mean2, var2 = _moments_many(y_only + col)
    size = n1.shape[0]
    names = ("r", "diff_ci_low", "diff_ci_high", "statistic", "df", "p_val")
    out: dict[str, np.ndarray] = {name: np.full(size, np.nan) for name in names}
    out.update(n_ru=n1, n_foreign=n2, n_paired=n12, mean_ru=mean1, mean_foreign=mean2)
    out["diff"] = np.where((n1 > 0) & (n2 > 0), mean1 - mean2, np.nan)
    out["test"] = np.full(size, None, dtype=object)
    ok = (n1 >= 2) & (n2 >= 2)
    if not ok.any():
        return out
    r = np.zeros(size)
    pairs = ok & (n12 >= 2)
    if pairs.any():
        rows, cols, m = row[pairs], col[pairs], n12[pairs]
        m_row = (rows * _SCORES).sum(axis=1) / m
        m_col = (cols * _SCORES).sum(axis=1) / m
        dx, dy = _SCORES - m_row[:, None], _SCORES - m_col[:, None]
        sxx = (rows * dx**2).sum(axis=1)
        syy = (cols * dy**2).sum(axis=1)
        sxy = (table[pairs] * (dx[:, :, None] * dy[:, None, :])).reshape(-1, 25).sum(axis=1)
        varied = (sxx > 0) & (syy > 0)
        value = np.zeros(m.shape)
        value[varied] = sxy[varied] / np.sqrt(sxx[varied] * syy[varied])
        r[pairs] = value
    r, n1, n2, n12, var1, var2 = r[ok], n1[ok], n2[ok], n12[ok], var1[ok], var2[ok]
    overlap = 2 * r * n12 / (n1 * n2)
    unpaired = na[ok] + nb[ok]
    unpaired_share = np.zeros(r.shape)
    some = unpaired > 0  # only pairs: the package's formula with na + nb = 0
    unpaired_share[some] = unpaired[some] / (unpaired[some] + 2 * n12[some])
    v1, v2 = var1 / n1, var2 / n2
    se2 = v1 + v2 - overlap * np.sqrt(var1 * var2)
    welch = (n1 + n2 - 2.0).astype("float64")
    spread = v1 + v2 > 0
    welch[spread] = (v1[spread] + v2[spread]) ** 2 / (
        v1[spread] ** 2 / (n1[spread] - 1) + v2[spread] ** 2 / (n2[spread] - 1)
    )
    df = (n12 - 1) + (welch - n12 + 1) * unpaired_share
    diff = out["diff"][ok]
    se = np.sqrt(np.maximum(se2, 0.0))
    t = np.zeros(r.shape)
    p = np.ones(r.shape)
    positive = se > 0
    t[positive] = diff[positive] / se[positive]
    p[positive] = np.minimum(1.0, 2 * stats.t.sf(np.abs(t[positive]), df[positive]))
    half = stats.t.isf(alpha / 2, df) * se
    out["r"][ok] = r
    out["test"][ok] = OVERLAP_T
    out["statistic"][ok] = t
    out["df"][ok] = df
    out["p_val"][ok] = p
    out["diff_ci_low"][ok] = diff - half
    out["diff_ci_high"][ok] = diff + half
    return out


def _rank_biserial_ci_many(
    rank_biserial: np.ndarray, n_x: np.ndarray, n_y: np.ndarray, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rank_biserial_ci` over arrays."""
    r = np.asarray(rank_biserial, dtype="float64")
    n_x, n_y = np.asarray(n_x, dtype="int64"), np.asarray(n_y, dtype="int64")
    low = np.full(r.shape, np.nan)
    high = np.full(r.shape, np.nan)
    ok = (n_x > 0) & (n_y > 0) & np.isfinite(r)
    r = np.clip(r, -1.0, 1.0)
    edge = ok & (np.abs(r) == 1.0)
    low[edge] = high[edge] = r[edge]
    inner = ok & ~edge
    if inner.any():
        se = np.sqrt((n_x[inner] + n_y[inner] + 1) / (3 * n_x[inner] * n_y[inner]))
        z = float(stats.norm.isf(alpha / 2))
        # math's functions, not numpy's, so that the limits equal rank_biserial_ci's exactly.
        tanh = np.frompyfunc(math.tanh, 1, 1)
        centre = np.frompyfunc(math.atanh, 1, 1)(r[inner]).astype("float64")
        low[inner] = tanh(centre - z * se).astype("float64")
        high[inner] = tanh(centre + z * se).astype("float64")
    return low, high
