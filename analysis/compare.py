"""The full Russian-vs-foreign comparison table, one row per item, with q-values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from analysis.paired import PAIRED_CELLS, mcnemar_paired
from analysis.proportions import (
    _check_alpha,
    _check_key,
    _check_low_n,
    _count_table,
    compare_independent,
    prevalence,
)
from analysis.ratings import (
    RATINGS,
    _check_ratings,
    _signed_rank_test,
    mann_whitney_from_counts,
    rating_summary,
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


def _column_order(key: str) -> list[str]:
    def ratings(kind: str) -> list[str]:
        return [
            f"rating_n_{kind}",
            f"rating_mean_{kind}",
            f"rating_median_{kind}",
            *[f"r{r}_{kind}" for r in RATINGS],
        ]

    return [
        key,
        *[f"{c}_ru" for c in ("n", "k", "dk", "p")],
        "ci_ru_low",
        "ci_ru_high",
        *[f"{c}_foreign" for c in ("n", "k", "dk", "p")],
        "ci_foreign_low",
        "ci_foreign_high",
        "diff",
        "diff_ci_low",
        "diff_ci_high",
        "test",
        "statistic",
        "p_val",
        "q_val",
        "cohens_h",
        "paired_n",
        "paired_b",
        "paired_c",
        "paired_diff",
        "paired_ci_low",
        "paired_ci_high",
        "paired_p_val",
        "paired_q_val",
        *ratings("ru"),
        *ratings("foreign"),
        "rating_u",
        "rating_p_val",
        "rating_q_val",
        "rank_biserial",
        "rating_paired_n",
        "wilcoxon_statistic",
        "wilcoxon_p_val",
        "wilcoxon_q_val",
        "low_n_ru",
        "low_n_foreign",
        "low_n_paired",
        "low_n_rating",
        "low_n",
    ]


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
    paired_counts : pandas.DataFrame or None
        ``[key, yes_yes, yes_no, no_yes, no_no]``, see :func:`analysis.paired.mcnemar_paired`.
    rating_counts : pandas.DataFrame or None
        ``[key, company_kind, rating, n]``, see :func:`analysis.ratings.rating_summary`.
    paired_rating_counts : pandas.DataFrame or None
        ``[key, rating_ru, rating_foreign, n]``: respondents who rated the item in both kinds.
    key : str, default "practice_id"
        Item column (``"category_id"`` for the category level). ``None`` for a table means
        an empty table.
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
          (``"chi2"`` / ``"fisher"``, missing when a kind has no answers), the chi-square
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
    1         gym     0   NaN        NaN   NaN       NaN       NaN
    """
    key = _check_key(key)
    alpha = _check_alpha(alpha)
    low_n = _check_low_n(low_n)

    prev = prevalence(_or_empty(prevalence_counts, key, "prevalence"), key=key, alpha=alpha)
    pairs = mcnemar_paired(_or_empty(paired_counts, key, "paired"), key=key, alpha=alpha)
    ratings = rating_summary(_or_empty(rating_counts, key, "rating"), key=key)
    paired_ratings = _count_table(
        paired_rating_counts,
        "paired_rating_counts",
        [key, "rating_ru", "rating_foreign"],
        ["n"],
    )

    if items is None:
        found = pd.concat(
            [prev[key], pairs[key], ratings[key], paired_ratings[key]], ignore_index=True
        )
        items = sorted(pd.unique(found.dropna()).tolist())
    else:
        items = list(items)
        if len(set(items)) != len(items):
            raise ValueError("items must not repeat")

    _check_ratings(paired_ratings["rating_ru"], "paired_rating_counts.rating_ru")
    _check_ratings(paired_ratings["rating_foreign"], "paired_rating_counts.rating_foreign")
    diffs = paired_ratings.assign(
        diff=paired_ratings["rating_ru"].astype("int64")
        - paired_ratings["rating_foreign"].astype("int64")
    )
    diff_counts: dict[Any, dict[int, int]] = {}
    for (item, diff), count in diffs.groupby([key, "diff"])["n"].sum().items():
        diff_counts.setdefault(item, {})[int(diff)] = int(count)

    lookups = {
        "prev": _records(prev, key, "company_kind"),
        "pairs": _records(pairs, key),
        "ratings": _records(ratings, key, "company_kind"),
        "diffs": diff_counts,
    }
    rows = [_row(item, key, lookups, alpha, low_n) for item in items]
    out = pd.DataFrame(rows, columns=_column_order(key))
    for family in ("", "paired_", "rating_", "wilcoxon_"):
        out[f"{family}q_val"] = multiple_testing(out[f"{family}p_val"].to_numpy(float))
    dtypes = {c: "int64" for c in _int_columns()}
    dtypes.update({c: "bool" for c in _column_order(key) if c.startswith("low_n")})
    return out.astype(dtypes)


def _or_empty(table: pd.DataFrame | None, key: str, which: str) -> pd.DataFrame:
    if table is not None:
        return table
    columns = {
        "prevalence": [key, "company_kind", "yes", "no", "dk"],
        "paired": [key, *PAIRED_CELLS],
        "rating": [key, "company_kind", "rating", "n"],
    }[which]
    return pd.DataFrame({c: pd.Series(dtype="object" if c == key else "int64") for c in columns})


def _records(frame: pd.DataFrame, key: str, *more: str) -> dict[Any, dict[str, Any]]:
    """Rows of ``frame`` as dicts, looked up by ``key`` (and ``more`` columns)."""
    index = [key, *more]
    return {
        (rec[key] if not more else tuple(rec[c] for c in index)): rec
        for rec in frame.to_dict("records")
    }


def _row(item: Any, key: str, lookups: dict, alpha: float, low_n: int) -> dict[str, Any]:
    row: dict[str, Any] = {key: item}
    for kind in ("ru", "foreign"):
        rec = lookups["prev"].get((item, kind), {})
        for column in ("n", "k", "dk"):
            row[f"{column}_{kind}"] = int(rec.get(column, 0))
        row[f"p_{kind}"] = rec.get("p", math.nan)
        row[f"ci_{kind}_low"] = rec.get("ci_low", math.nan)
        row[f"ci_{kind}_high"] = rec.get("ci_high", math.nan)
    row.update(
        compare_independent(
            row["k_ru"], row["n_ru"], row["k_foreign"], row["n_foreign"], alpha=alpha
        )
    )

    rec = lookups["pairs"].get(item, {})
    for column in ("n", "b", "c"):
        row[f"paired_{column}"] = int(rec.get(column, 0))
    for column in ("diff", "ci_low", "ci_high", "p_val"):
        row[f"paired_{column}"] = rec.get(column, math.nan)

    hist = {}
    for kind in ("ru", "foreign"):
        rec = lookups["ratings"].get((item, kind), {})
        hist[kind] = [int(rec.get(f"r{r}", 0)) for r in RATINGS]
        row[f"rating_n_{kind}"] = sum(hist[kind])
        row[f"rating_mean_{kind}"] = rec.get("mean", math.nan)
        row[f"rating_median_{kind}"] = rec.get("median", math.nan)
        for r, count in zip(RATINGS, hist[kind], strict=True):
            row[f"r{r}_{kind}"] = count
    mwu = mann_whitney_from_counts(hist["ru"], hist["foreign"])
    row["rating_u"] = mwu["u"]
    row["rating_p_val"] = mwu["p_val"]
    row["rank_biserial"] = mwu["rank_biserial"]

    wilcoxon = _signed_rank_test(lookups["diffs"].get(item, {}))
    row["rating_paired_n"] = wilcoxon["n"]
    row["wilcoxon_statistic"] = wilcoxon["statistic"]
    row["wilcoxon_p_val"] = wilcoxon["p_val"]

    row["low_n_ru"] = row["n_ru"] < low_n
    row["low_n_foreign"] = row["n_foreign"] < low_n
    row["low_n_paired"] = row["paired_n"] < low_n
    row["low_n_rating"] = min(row["rating_n_ru"], row["rating_n_foreign"]) < low_n
    row["low_n"] = row["low_n_ru"] or row["low_n_foreign"]
    return row
