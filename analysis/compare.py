"""The full Russian-vs-foreign comparison table, one row per item, with q-values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from analysis.paired import PAIRED_CELLS, mcnemar_exact_p, newcombe_paired_ci
from analysis.proportions import (
    KINDS,
    _check_alpha,
    _check_key,
    _check_kinds,
    _check_low_n,
    _count_table,
    _dense_counts,
    compare_independent,
    wilson_ci,
)
from analysis.ratings import (
    RATINGS,
    _check_ratings,
    _signed_rank_test,
    mann_whitney_from_counts,
    median_from_counts,
)


def assumptions_text(low_n: int = 10, alpha: float = 0.05, lang: str = "en") -> str:
    """The assumptions behind :func:`compare`, to be shown under every result.

    Parameters
    ----------
    low_n : int, default 10
        The small-number threshold used.
    alpha : float, default 0.05
        The significance level used.
    lang : {"en", "ru"}, default "en"
        Language of the text.

    Returns
    -------
    str

    Examples
    --------
    >>> assumptions_text(low_n=5).split(". ")[0]
    'Unweighted estimates'
    """
    low_n = _check_low_n(low_n)
    alpha = _check_alpha(alpha)
    pct = f"{alpha * 100:g}"
    if lang == "en":
        return (
            "Unweighted estimates. Respondents are self-selected, not a probability sample; "
            "intervals and tests assume a simple random sample and describe these respondents "
            f"only. Tests are two-sided at the {pct}% level ({100 - float(pct):g}% intervals); "
            "p-values are adjusted by Benjamini-Hochberg (q-values) within each family of "
            "tests (prevalence, paired prevalence, ratings, paired ratings). "
            f"Results resting on fewer than {low_n} respondents are flagged as unreliable."
        )
    if lang == "ru":
        return (
            "Оценки без взвешивания. Респонденты отобраны самостоятельно, а не случайной "
            "выборкой; интервалы и тесты предполагают простую случайную выборку и описывают "
            f"только этих респондентов. Тесты двусторонние, уровень значимости {pct}% "
            f"(интервалы {100 - float(pct):g}%); p-значения скорректированы методом "
            "Бенджамини-Хохберга (q-значения) внутри каждого семейства тестов "
            "(распространённость, парные ответы, оценки, парные оценки). "
            f"Результаты, основанные менее чем на {low_n} респондентах, отмечены как "
            "ненадёжные."
        )
    raise ValueError(f"lang must be 'en' or 'ru', got {lang!r}")


ASSUMPTIONS = assumptions_text(lang="en")
"""Assumptions of :func:`compare` with its defaults, in English."""

ASSUMPTIONS_RU = assumptions_text(lang="ru")
"""Assumptions of :func:`compare` with its defaults, in Russian."""


def multiple_testing(pvals: Any, method: str = "fdr_bh") -> np.ndarray:
    """Adjust p-values for multiple testing, keeping NaN p-values as NaN.

    Parameters
    ----------
    pvals : array_like of float
        Raw p-values of one family of tests; NaN marks an item with no test.
    method : str, default "fdr_bh"
        Any method of ``statsmodels.stats.multitest.multipletests``; the default is
        Benjamini-Hochberg (q-values). The adjustment runs over the non-NaN p-values only.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, in the input order, NaN where the input is NaN.

    Examples
    --------
    >>> multiple_testing([0.001, 0.008, 0.012, 0.04, 0.2]).round(3)
    array([0.005, 0.02 , 0.02 , 0.05 , 0.2  ])
    >>> multiple_testing([0.01, float("nan"), 0.04])
    array([0.02, nan, 0.04])
    """
    p = np.asarray(pvals, dtype="float64").ravel()
    if ((p < 0) | (p > 1)).any():
        raise ValueError("p-values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=method)[1]
    return out


def _kind_columns(kind: str) -> tuple[str, ...]:
    return (
        f"n_{kind}",
        f"k_{kind}",
        f"dk_{kind}",
        f"p_{kind}",
        f"ci_{kind}_low",
        f"ci_{kind}_high",
    )


def _rating_columns(kind: str) -> tuple[str, ...]:
    return (
        f"rating_n_{kind}",
        f"rating_mean_{kind}",
        f"rating_median_{kind}",
        *[f"r{r}_{kind}" for r in RATINGS],
    )


COLUMN_GROUPS: dict[str, tuple[str, ...]] = {
    "ru": _kind_columns("ru"),
    "foreign": _kind_columns("foreign"),
    "independent": (
        "diff",
        "diff_ci_low",
        "diff_ci_high",
        "test",
        "statistic",
        "p_val",
        "q_val",
        "cohens_h",
    ),
    "paired": (
        "paired_n",
        "paired_b",
        "paired_c",
        "paired_diff",
        "paired_ci_low",
        "paired_ci_high",
        "paired_p_val",
        "paired_q_val",
    ),
    "rating_ru": _rating_columns("ru"),
    "rating_foreign": _rating_columns("foreign"),
    "rating_test": ("rating_u", "rating_p_val", "rating_q_val", "rank_biserial"),
    "rating_paired": ("rating_paired_n", "wilcoxon_statistic", "wilcoxon_p_val", "wilcoxon_q_val"),
    "flags": ("low_n_ru", "low_n_foreign", "low_n_paired", "low_n_rating", "low_n"),
}
"""The statistics columns of :func:`compare`, in table order, grouped by what they rest on:
the first column of a cell group (``ru``, ``foreign``, ``paired``, ``rating_*``) is its count;
``independent`` and ``rating_test`` compare two cells."""


def _column_order(key: str) -> list[str]:
    return [key, *(name for group in COLUMN_GROUPS.values() for name in group)]


def _int_columns() -> list[str]:
    cols = ["n_ru", "k_ru", "dk_ru", "n_foreign", "k_foreign", "dk_foreign"]
    cols += ["paired_n", "paired_b", "paired_c", "rating_paired_n"]
    for kind in ("ru", "foreign"):
        cols += [f"rating_n_{kind}", *[f"r{r}_{kind}" for r in RATINGS]]
    return cols


def compare(
    prevalence_counts: pd.DataFrame | None,
    paired_counts: pd.DataFrame | None,
    rating_counts: pd.DataFrame | None,
    paired_rating_counts: pd.DataFrame | None,
    key: str = "practice_id",
    items: Sequence[Any] | None = None,
    alpha: float = 0.05,
    low_n: int = 10,
) -> pd.DataFrame:
    """Compare Russian and foreign companies for every item: prevalence, pairs, ratings.

    Parameters
    ----------
    prevalence_counts : pandas.DataFrame or None
        ``[key, company_kind, yes, no, dk]``, see :func:`analysis.proportions.prevalence`.
        For each of the four tables ``None`` means an empty table; duplicate rows are summed.
    paired_counts : pandas.DataFrame or None
        ``[key, yes_yes, yes_no, no_yes, no_no]``, see :func:`analysis.paired.mcnemar_paired`.
    rating_counts : pandas.DataFrame or None
        ``[key, company_kind, rating, n]``, see :func:`analysis.ratings.rating_summary`.
    paired_rating_counts : pandas.DataFrame or None
        ``[key, rating_ru, rating_foreign, n]``: respondents who rated the item in both kinds.
    key : str, default "practice_id"
        Item column (``"category_id"`` for the category level).
    items : sequence, optional
        Item ids, in output order. Items without any data still get a row (zero counts,
        NaN statistics); ids that are not listed are left out. By default every id found
        in the four tables, sorted.
    alpha : float, default 0.05
        Significance level of every interval.
    low_n : int, default 10
        Small-number threshold for the ``low_n*`` flags.

    Returns
    -------
    pandas.DataFrame
        One row per item. Columns, in this order:

        * ``key``;
        * ``n_ru, k_ru, dk_ru, p_ru, ci_ru_low, ci_ru_high`` and the same for ``foreign``:
          yes + no answers, yes answers, don't-know answers (never in a denominator), the
          share of yes and its Wilson interval;
        * ``diff, diff_ci_low, diff_ci_high, test, statistic, p_val, q_val, cohens_h``:
          ``p_ru - p_foreign`` with its Newcombe hybrid score interval, the test used
          (``"chi2"`` / ``"fisher"``, ``None`` when a kind has no yes/no answer), the chi-square
          value (NaN for Fisher), the p-value, its BH q-value and Cohen's h
          (see :func:`analysis.proportions.compare_independent`);
        * ``paired_n, paired_b, paired_c, paired_diff, paired_ci_low, paired_ci_high,
          paired_p_val, paired_q_val``: respondents who know both kinds, ``b = yes_no``,
          ``c = no_yes``, ``(b - c) / n`` with Newcombe's paired method 10 interval, exact
          McNemar p and its q-value;
        * ``rating_n_ru, rating_mean_ru, rating_median_ru, r1_ru .. r5_ru`` and the same for
          ``foreign``;
        * ``rating_u, rating_p_val, rating_q_val, rank_biserial``: Mann-Whitney U of the
          Russian ratings (x = ru, y = foreign), its p-value and q-value, and the
          rank-biserial correlation (positive: ratings higher in Russian companies);
        * ``rating_paired_n, wilcoxon_statistic, wilcoxon_p_val, wilcoxon_q_val``: Wilcoxon
          signed-rank test of ``rating_ru - rating_foreign`` among respondents who rated the
          item in both kinds;
        * ``low_n_ru, low_n_foreign, low_n_paired, low_n_rating, low_n``: ``n_ru < low_n``,
          ``n_foreign < low_n``, ``paired_n < low_n``, ``min(rating_n_ru, rating_n_foreign)
          < low_n``, and ``low_n_ru or low_n_foreign``.

        Counts are int64 and flags bool. q-values are Benjamini-Hochberg
        (``multipletests(method="fdr_bh")``) within each family (``p_val``,
        ``paired_p_val``, ``rating_p_val``, ``wilcoxon_p_val``) over the listed items whose
        p-value is not NaN; a NaN p gives a NaN q. See :data:`ASSUMPTIONS`.

    Examples
    --------
    >>> prev = pd.DataFrame({"practice_id": ["bonus", "bonus"],
    ...                      "company_kind": ["ru", "foreign"],
    ...                      "yes": [30, 55], "no": [90, 55], "dk": [4, 2]})
    >>> table = compare(prev, None, None, None, items=["bonus", "gym"])
    >>> table[["practice_id", "n_ru", "p_ru", "p_foreign", "test", "p_val", "q_val"]].round(6)
      practice_id  n_ru  p_ru  p_foreign  test     p_val     q_val
    0       bonus   120  0.25        0.5  chi2  0.000087  0.000087
    1         gym     0   NaN        NaN  None       NaN       NaN
    """
    key = _check_key(key)
    alpha = _check_alpha(alpha)
    low_n = _check_low_n(low_n)
    prev = _count_table(
        prevalence_counts, "prevalence_counts", [key, "company_kind"], ["yes", "no", "dk"]
    )
    _check_kinds(prev, "prevalence_counts")
    pairs = _count_table(paired_counts, "paired_counts", [key], list(PAIRED_CELLS))
    rates = _count_table(rating_counts, "rating_counts", [key, "company_kind", "rating"], ["n"])
    _check_kinds(rates, "rating_counts")
    _check_ratings(rates["rating"], "rating_counts.rating")
    paired_rates = _count_table(
        paired_rating_counts, "paired_rating_counts", [key, "rating_ru", "rating_foreign"], ["n"]
    )
    _check_ratings(paired_rates["rating_ru"], "paired_rating_counts.rating_ru")
    _check_ratings(paired_rates["rating_foreign"], "paired_rating_counts.rating_foreign")

    if items is None:
        ids = [frame[key] for frame in (prev, pairs, rates, paired_rates)]
        items = sorted(pd.unique(pd.concat(ids, ignore_index=True)).tolist())
    else:
        items = list(items)
        if len(set(items)) != len(items):
            raise ValueError("items must not repeat")

    kinds = [("company_kind", KINDS)]
    _, prev_dense = _dense_counts(prev, key, kinds, ["yes", "no", "dk"], items)
    _, pair_dense = _dense_counts(pairs, key, [], list(PAIRED_CELLS), items)
    _, rate_dense = _dense_counts(rates, key, [*kinds, ("rating", RATINGS)], ["n"], items)
    _, paired_rate_dense = _dense_counts(
        paired_rates, key, [("rating_ru", RATINGS), ("rating_foreign", RATINGS)], ["n"], items
    )
    columns = {name: [] for name in _column_order(key)}
    for i, item in enumerate(items):
        row = _row(
            prev_dense[i],
            pair_dense[i],
            rate_dense[i, ..., 0],
            paired_rate_dense[i, ..., 0],
            alpha,
            low_n,
        )
        row[key] = item
        for name, values in columns.items():
            values.append(row.get(name))
    int_columns = set(_int_columns())
    data: dict[str, Any] = {}
    for name, values in columns.items():
        if name == key:
            data[name] = pd.Series(values, dtype=prev[key].dtype if not items else None)
        elif name == "test":
            data[name] = pd.Series(values, dtype=object)
        elif name in int_columns:
            data[name] = np.asarray(values, dtype="int64")
        elif name.startswith("low_n"):
            data[name] = np.asarray(values, dtype=bool)
        else:
            data[name] = np.asarray(values, dtype="float64")
    for family in ("", "paired_", "rating_", "wilcoxon_"):
        data[f"{family}q_val"] = multiple_testing(data[f"{family}p_val"])
    return pd.DataFrame(data)


_DIFFERENCES = np.subtract.outer(np.asarray(RATINGS), np.asarray(RATINGS))
"""rating_ru - rating_foreign for each cell of the 5 x 5 paired rating table."""


def _row(prev, pair, rate, paired_rate, alpha: float, low_n: int) -> dict[str, Any]:
    """Every statistic of one item from its dense counts (see compare)."""
    row: dict[str, Any] = {}
    for j, kind in enumerate(KINDS):
        yes, no, dk = (int(v) for v in prev[j])
        low, high = wilson_ci(yes, yes + no, alpha=alpha)
        row.update(
            {
                f"n_{kind}": yes + no,
                f"k_{kind}": yes,
                f"dk_{kind}": dk,
                f"p_{kind}": yes / (yes + no) if yes + no else math.nan,
                f"ci_{kind}_low": low,
                f"ci_{kind}_high": high,
            }
        )
    row.update(
        compare_independent(
            row["k_ru"], row["n_ru"], row["k_foreign"], row["n_foreign"], alpha=alpha
        )
    )

    a, b, c, d = (int(v) for v in pair)
    n = a + b + c + d
    low, high = newcombe_paired_ci(a, b, c, d, alpha=alpha)
    row.update(
        {
            "paired_n": n,
            "paired_b": b,
            "paired_c": c,
            "paired_diff": (b - c) / n if n else math.nan,
            "paired_ci_low": low,
            "paired_ci_high": high,
            "paired_p_val": mcnemar_exact_p(b, c) if n else math.nan,
        }
    )

    for j, kind in enumerate(KINDS):
        hist = rate[j]
        n_rated = int(hist.sum())
        row[f"rating_n_{kind}"] = n_rated
        row[f"rating_mean_{kind}"] = (
            float(hist @ np.asarray(RATINGS)) / n_rated if n_rated else math.nan
        )
        row[f"rating_median_{kind}"] = median_from_counts(hist)
        for r, count in zip(RATINGS, hist, strict=True):
            row[f"r{r}_{kind}"] = int(count)
    mwu = mann_whitney_from_counts(rate[0], rate[1])
    row["rating_u"] = mwu["u"]
    row["rating_p_val"] = mwu["p_val"]
    row["rank_biserial"] = mwu["rank_biserial"]

    by_diff: dict[int, int] = {}
    for diff, count in zip(_DIFFERENCES.ravel(), paired_rate.ravel(), strict=True):
        by_diff[int(diff)] = by_diff.get(int(diff), 0) + int(count)
    wilcoxon = _signed_rank_test(by_diff)
    row["rating_paired_n"] = wilcoxon["n"]
    row["wilcoxon_statistic"] = wilcoxon["statistic"]
    row["wilcoxon_p_val"] = wilcoxon["p_val"]

    row["low_n_ru"] = row["n_ru"] < low_n
    row["low_n_foreign"] = row["n_foreign"] < low_n
    row["low_n_paired"] = row["paired_n"] < low_n
    row["low_n_rating"] = min(row["rating_n_ru"], row["rating_n_foreign"]) < low_n
    row["low_n"] = row["low_n_ru"] or row["low_n_foreign"]
    return row
