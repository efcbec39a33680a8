"""Paired comparison for respondents who know both a Russian and a foreign company.

Only respondents who worked in both kinds of company and answered yes or no for both enter
these functions, as a 2x2 table of counts: ``yes_yes``, ``yes_no``, ``no_yes``, ``no_no``
(first word: the answer about the Russian company, second word: about the foreign one).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from analysis.proportions import (
    _as_count,
    _check_alpha,
    _check_key,
    _check_low_n,
    _count_table,
    wilson_ci,
)

PAIRED_CELLS = ("yes_yes", "yes_no", "no_yes", "no_no")


def newcombe_paired_ci(a: int, b: int, c: int, d: int, alpha: float = 0.05):
    """Newcombe's score interval (method 10) for a difference of paired proportions.

    Parameters
    ----------
    a, b, c, d : int
        The paired 2x2 table: ``a`` = yes in both, ``b`` = yes (Russian) and no (foreign),
        ``c`` = no (Russian) and yes (foreign), ``d`` = no in both.
    alpha : float, default 0.05
        Significance level: the interval has coverage ``1 - alpha``.

    Returns
    -------
    ci_low, ci_high : float
        Limits for ``D = (b - c) / n`` (Russian minus foreign share), within [-1, 1];
        NaN when ``n = a + b + c + d`` is 0.

    Notes
    -----
    Newcombe, R. G. (1998). Improved confidence intervals for the difference between
    binomial proportions based on paired data. *Statistics in Medicine* 17, 2635-2650,
    method 10 (the "square-and-add" or MOVER interval built from two Wilson score intervals
    without continuity correction, with Newcombe's corrected correlation estimate).
    With ``n = a + b + c + d``, ``P1 = (a + b) / n``, ``P2 = (a + c) / n``, ``D = P1 - P2``,
    ``(l1, u1)`` and ``(l2, u2)`` the Wilson intervals of ``P1`` and ``P2``, and
    ``e = a + b``, ``f = c + d``, ``g = a + c``, ``h = b + d``:

    * ``phi = 0`` if ``e f g h = 0``; otherwise, with ``A = a d - b c``,
      ``phi = max(A - n / 2, 0) / sqrt(e f g h)`` if ``A > 0`` and
      ``phi = A / sqrt(e f g h)`` if ``A <= 0``;
    * ``L = D - sqrt((P1 - l1)^2 - 2 phi (P1 - l1)(u2 - P2) + (u2 - P2)^2)``;
    * ``U = D + sqrt((u1 - P1)^2 - 2 phi (u1 - P1)(P2 - l2) + (P2 - l2)^2)``.

    The same formula (including the correction of ``phi``) is given by Fagerland, Lydersen
    and Laake (2014, *Statistics in Medicine* 33, 2850-2875) as the "Newcombe square-and-add"
    interval; the tests pin it to their published Cavo et al. example.

    Examples
    --------
    >>> low, high = newcombe_paired_ci(59, 6, 16, 80)
    >>> round(low, 4), round(high, 4)
    (-0.1186, -0.0046)
    """
    alpha = _check_alpha(alpha)
    a, b = _as_count(a, "a"), _as_count(b, "b")
    c, d = _as_count(c, "c"), _as_count(d, "d")
    n = a + b + c + d
    if n == 0:
        return math.nan, math.nan
    e, f, g, h = a + b, c + d, a + c, b + d
    p1, p2 = e / n, g / n
    diff = p1 - p2
    (l1, l2), (u1, u2) = wilson_ci([e, g], n, alpha=alpha)
    margins = float(e) * float(f) * float(g) * float(h)  # may exceed int64 for large n
    if margins == 0.0:
        phi = 0.0
    else:
        cross = a * d - b * c  # exact in Python integers
        numerator = max(cross - n / 2.0, 0.0) if cross > 0 else float(cross)
        phi = numerator / math.sqrt(margins)
    down = (p1 - l1) ** 2 - 2.0 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    up = (u1 - p1) ** 2 - 2.0 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    low = diff - math.sqrt(max(down, 0.0))
    high = diff + math.sqrt(max(up, 0.0))
    return max(-1.0, low), min(1.0, high)


def mcnemar_exact_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts ``b`` and ``c``.

    ``2 * BinomCDF(min(b, c); b + c, 0.5)``, capped at 1, via
    ``statsmodels.stats.contingency_tables.mcnemar(table, exact=True)``; 1.0 when
    ``b + c == 0`` (no discordant pair: no evidence of a difference).

    Examples
    --------
    >>> round(mcnemar_exact_p(10, 25), 6)
    0.016674
    """
    b, c = _as_count(b, "b"), _as_count(c, "c")
    if b + c == 0:
        return 1.0
    return float(mcnemar(np.array([[0, b], [c, 0]]), exact=True).pvalue)


def mcnemar_paired(
    paired_counts: pd.DataFrame,
    key: str = "practice_id",
    alpha: float = 0.05,
    low_n: int = 10,
) -> pd.DataFrame:
    """McNemar's exact test and the paired difference, one row per item.

    Parameters
    ----------
    paired_counts : pandas.DataFrame
        Columns ``[key, "yes_yes", "yes_no", "no_yes", "no_no"]`` (first word: answer about
        the Russian company, second: about the foreign one). Duplicate rows are summed.
    key : str, default "practice_id"
        Item column (``"category_id"`` for the category level).
    alpha : float, default 0.05
        Significance level of the interval.
    low_n : int, default 10
        Items with fewer than ``low_n`` pairs are flagged.

    Returns
    -------
    pandas.DataFrame
        Sorted by item; columns ``[key, n, b, c, diff, ci_low, ci_high, p_val, low_n]``:
        ``n`` pairs, ``b = yes_no``, ``c = no_yes``, ``diff = (b - c) / n`` (Russian minus
        foreign share of "yes"), its Newcombe method 10 interval (see
        :func:`newcombe_paired_ci`), the exact McNemar p-value (see :func:`mcnemar_exact_p`;
        1.0 when ``b + c == 0``), and ``low_n = n < low_n``. With ``n == 0`` the difference,
        interval and p-value are NaN.

    Examples
    --------
    >>> counts = pd.DataFrame({"practice_id": ["bonus"], "yes_yes": [40], "yes_no": [10],
    ...                        "no_yes": [25], "no_no": [45]})
    >>> mcnemar_paired(counts).round(4)
      practice_id    n   b   c   diff  ci_low  ci_high   p_val  low_n
    0       bonus  120  10  25 -0.125 -0.2169   -0.029  0.0167  False
    """
    key = _check_key(key)
    alpha = _check_alpha(alpha)
    low_n = _check_low_n(low_n)
    table = _count_table(paired_counts, "paired_counts", [key], PAIRED_CELLS)
    table = table.sort_values(key, kind="stable").reset_index(drop=True)
    pairs = _mcnemar_paired_many(*(table[cell].to_numpy() for cell in PAIRED_CELLS), alpha=alpha)
    return pd.DataFrame({key: table[key], **pairs, "low_n": pairs["n"] < low_n})


def _mcnemar_paired_many(a, b, c, d, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """The statistics of :func:`mcnemar_paired` over arrays of paired tables: ``n``,
    ``b``, ``c``, ``diff``, ``ci_low``, ``ci_high`` and ``p_val`` (NaN where ``n == 0``).
    :func:`analysis.compare.compare` reports the pairs with them."""
    a, b, c, d = (np.asarray(v, dtype="int64") for v in (a, b, c, d))
    n = a + b + c + d
    low, high = _newcombe_paired_ci_many(a, b, c, d, alpha=alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where(n > 0, (b - c) / n, np.nan)
    p_val = np.where(n > 0, _mcnemar_exact_p_many(b, c), np.nan)
    return {"n": n, "b": b, "c": c, "diff": diff, "ci_low": low, "ci_high": high, "p_val": p_val}


def _newcombe_paired_ci_many(a, b, c, d, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """:func:`newcombe_paired_ci` over arrays of paired tables (NaN where ``n == 0``)."""
    a, b, c, d = (np.asarray(v, dtype="int64") for v in (a, b, c, d))
    n = a + b + c + d
    low = np.full(n.shape, np.nan)
    high = np.full(n.shape, np.nan)
    ok = n > 0
    if not ok.any():
        return low, high
    a, b, c, d, n = a[ok], b[ok], c[ok], d[ok], n[ok]
    e, f, g, h = a + b, c + d, a + c, b + d
    p1, p2 = e / n, g / n
    diff = p1 - p2
    (l1, l2), (u1, u2) = wilson_ci(np.stack([e, g]), np.stack([n, n]), alpha=alpha)
    margins = e.astype("float64") * f.astype("float64") * g.astype("float64") * h
    cross = a * d - b * c
    numerator = np.where(cross > 0, np.maximum(cross - n / 2.0, 0.0), cross.astype("float64"))
    phi = np.zeros(n.shape)
    nonzero = margins != 0.0
    phi[nonzero] = numerator[nonzero] / np.sqrt(margins[nonzero])
    down = (p1 - l1) ** 2 - 2.0 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    up = (u1 - p1) ** 2 - 2.0 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    low[ok] = np.maximum(-1.0, diff - np.sqrt(np.maximum(down, 0.0)))
    high[ok] = np.minimum(1.0, diff + np.sqrt(np.maximum(up, 0.0)))
    return low, high


def _mcnemar_exact_p_many(b, c) -> np.ndarray:
    """:func:`mcnemar_exact_p` over arrays: ``min(1, 2 BinomCDF(min(b, c); b + c, 0.5))``,
    as statsmodels computes it (1.0 where ``b + c == 0``)."""
    b, c = np.asarray(b, dtype="int64"), np.asarray(c, dtype="int64")
    return np.minimum(stats.binom.cdf(np.minimum(b, c), b + c, 0.5) * 2, 1.0)
