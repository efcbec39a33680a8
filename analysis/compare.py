"""The full Russian-vs-foreign comparison table, one row per item, with q-values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from analysis.display import translator
from analysis.overlap import (
    _compare_overlapping_many,
    _compare_overlapping_means_many,
    _mean_rating_ci_many,
    _rank_biserial_ci_many,
    unpaired_counts,
)
from analysis.paired import PAIRED_CELLS, _mcnemar_paired_many
from analysis.proportions import (
    KINDS,
    _check_alpha,
    _check_key,
    _check_kinds,
    _check_low_n,
    _compare_independent_many,
    _count_table,
    _dense_counts,
    _prevalence_many,
)
from analysis.ratings import (
    RATINGS,
    _check_ratings,
    _mann_whitney_many,
    _rating_summary_many,
    _signed_rank_many,
)
from analysis.table import COLUMN_GROUPS, DTYPES, Q_FAMILIES, TEXT_COLUMNS, column, order

# The table's columns are defined once, in analysis.table; COLUMN_GROUPS, Q_FAMILIES and
# TEXT_COLUMNS stay importable from here for survey.disclosure.

__all__ = [
    "ASSUMPTIONS",
    "COLUMN_GROUPS",
    "Q_FAMILIES",
    "TEXT_COLUMNS",
    "assumptions_text",
    "compare",
    "multiple_testing",
]


def assumptions_text(low_n: int = 10, alpha: float = 0.05, lang: str = "en") -> str:
    """The assumptions behind :func:`compare`, to be shown under every result.

    Parameters
    ----------
    low_n : int, default 10
        The small-number threshold used.
    alpha : float, default 0.05
        The significance level used.
    lang : {"en", "ru"}, default "en"
        Language of the text (from the message catalogue, see :mod:`analysis.display`).

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
    _ = translator(lang)
    pct = f"{alpha * 100:g}"
    confidence = f"{100 - float(pct):g}"
    return _(
        "Unweighted estimates. Respondents are self-selected, not a probability sample; "
        "intervals and tests assume a simple random sample and describe these respondents "
        "only. Tests are two-sided at the %(pct)s%% level (%(confidence)s%% intervals); "
        "p-values are adjusted by Benjamini-Hochberg (q-values) within each family of "
        "tests. Respondents who worked in both kinds of company answer about both, so the "
        "Russian and foreign answers are partially overlapping samples, not independent "
        "ones: the primary tests (highlighting and stars) are the partially overlapping "
        "samples z-test for prevalence (Derrick et al. 2015) and t-test for mean ratings "
        "(Derrick et al. 2017), which use every answer and the correlation of the paired "
        "ones. Secondary, labelled as such: Russian-only vs foreign-only respondents "
        "(independent), the paired analysis of those who know both (McNemar, Wilcoxon), "
        "and Mann-Whitney over all ratings. "
        "Results resting on fewer than %(low_n)s respondents are flagged as unreliable.",
        pct=pct,
        confidence=confidence,
        low_n=low_n,
    )


ASSUMPTIONS = assumptions_text(lang="en")
"""Assumptions of :func:`compare` with its defaults, in English."""


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
        One row per item: ``key``, then the columns of :data:`analysis.table.COLUMNS` in
        that order, each with its type and meaning there, grouped by the respondents they
        rest on (:data:`analysis.table.GROUPS`): each kind's answers (``n_ru, k_ru, dk_ru,
        p_ru``, its Wilson interval and its bounds with the don't-know answers known), the
        respondents who answered about one kind only (``*_only``), the **primary**
        comparison over all answers (``diff``, ``test = "overlap_z"``, ``p_val``,
        ``q_val``, Cohen's h; see :func:`analysis.overlap.compare_overlapping`), the
        *secondary* independent comparison of the one-kind-only respondents (``indep_*``,
        see :func:`analysis.proportions.compare_independent`), the pairs (``paired_*``,
        exact McNemar), each kind's ratings (``rating_*_ru``, ``r1_ru .. r5_ru``), the
        **primary** rating comparison (``rating_diff``, ``rating_test = "overlap_t"``; see
        :func:`analysis.overlap.compare_overlapping_means`), the *secondary* Mann-Whitney
        (``mwu_*``, ``rank_biserial*``) and Wilcoxon (``wilcoxon_*``) tests, and the
        ``low_n*`` flags (``n_ru < low_n``, ``n_foreign < low_n``, ``paired_n < low_n``,
        ``min(rating_n_ru, rating_n_foreign) < low_n``, ``low_n_ru or low_n_foreign``).

        Counts are int64, statistics float64, test names object (``None`` for no test)
        and flags bool (:data:`analysis.table.DTYPES`). q-values are Benjamini-Hochberg
        (``multipletests(method="fdr_bh")``) within each family (``p_val``,
        ``indep_p_val``, ``paired_p_val``, ``rating_p_val``, ``mwu_p_val``,
        ``wilcoxon_p_val``; see :data:`Q_FAMILIES`) over the listed items whose p-value is
        not NaN; a NaN p gives a NaN q. See :data:`ASSUMPTIONS`.

        Raises ValueError when a paired table holds more answers than its kind's table
        (the tables must come from the same respondents).

    Examples
    --------
    >>> prev = pd.DataFrame({"practice_id": ["bonus", "bonus"],
    ...                      "company_kind": ["ru", "foreign"],
    ...                      "yes": [30, 55], "no": [90, 55], "dk": [4, 2]})
    >>> table = compare(prev, None, None, None, items=["bonus", "gym"])
    >>> table[["practice_id", "n_ru", "p_ru", "p_foreign", "test", "p_val", "q_val"]].round(6)
      practice_id  n_ru  p_ru  p_foreign       test     p_val     q_val
    0       bonus   120  0.25        0.5  overlap_z  0.000087  0.000087
    1         gym     0   NaN        NaN       None       NaN       NaN

    With no respondent in both kinds the primary test is the pooled two-proportion z-test
    (its p-value is the chi-square test's).
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
    columns = _statistics(
        prev_dense, pair_dense, rate_dense[..., 0], paired_rate_dense[..., 0], alpha, low_n
    )
    data: dict[str, Any] = {key: pd.Series(items, dtype=prev[key].dtype if not items else None)}
    for name in order(key)[1:]:  # the definition's order and types (analysis.table)
        values = columns.get(name, np.full(len(items), np.nan))  # q-values: below
        dtype = DTYPES[column(name).type]
        if dtype is object:
            data[name] = pd.Series(values, dtype=object)
        else:
            data[name] = np.asarray(values, dtype=dtype)
    for family in Q_FAMILIES:
        data[f"{family}q_val"] = multiple_testing(data[f"{family}p_val"])
    return pd.DataFrame(data)


def _statistics(
    prev: np.ndarray,
    pair: np.ndarray,
    rate: np.ndarray,
    paired_rate: np.ndarray,
    alpha: float,
    low_n: int,
) -> dict[str, Any]:
    """Every statistic column of :func:`compare` (but the q-values), from the dense counts.

    ``prev`` is items x kinds x (yes, no, dk), ``pair`` items x PAIRED_CELLS, ``rate`` items
    x kinds x ratings and ``paired_rate`` items x ratings x ratings. Each statistic is
    computed for all items at once; only Fisher's exact test runs item by item.
    """
    col: dict[str, Any] = {}
    with np.errstate(divide="ignore", invalid="ignore"):  # empty cells are NaN by the masks
        for j, kind in enumerate(KINDS):
            yes, no, dk = prev[:, j, 0], prev[:, j, 1], prev[:, j, 2]
            shares = _prevalence_many(yes, no, dk, alpha=alpha)  # as prevalence() reports
            col[f"n_{kind}"] = shares["n"]
            col[f"k_{kind}"] = shares["k"]
            col[f"dk_{kind}"] = shares["dk"]
            col[f"p_{kind}"] = shares["p"]
            col[f"ci_{kind}_low"] = shares["ci_low"]
            col[f"ci_{kind}_high"] = shares["ci_high"]
            total = yes + no + dk
            # Don't-know answers counted as no, then as yes (see compare's docstring).
            col[f"p_{kind}_bound_low"] = np.where(total > 0, yes / total, np.nan)
            col[f"p_{kind}_bound_high"] = np.where(total > 0, (yes + dk) / total, np.nan)

        a, b, c, d = (pair[:, i] for i in range(4))
        n = a + b + c + d
        # The three groups: Russian only, foreign only (the kind's answers less the paired
        # margin), and the pairs.
        k_ru_only = unpaired_counts(col["k_ru"], a + b, "yes answers about Russian companies")
        n_ru_only = k_ru_only + unpaired_counts(col["n_ru"] - col["k_ru"], c + d, "ru no")
        k_fo_only = unpaired_counts(col["k_foreign"], a + c, "yes answers about foreign ones")
        n_fo_only = k_fo_only + unpaired_counts(
            col["n_foreign"] - col["k_foreign"], b + d, "foreign no"
        )
        col["n_ru_only"] = n_ru_only
        col["k_ru_only"] = k_ru_only
        col["p_ru_only"] = np.where(n_ru_only > 0, k_ru_only / n_ru_only, np.nan)
        col["n_foreign_only"] = n_fo_only
        col["k_foreign_only"] = k_fo_only
        col["p_foreign_only"] = np.where(n_fo_only > 0, k_fo_only / n_fo_only, np.nan)

    primary = _compare_overlapping_many(
        k_ru_only, n_ru_only, k_fo_only, n_fo_only, a, b, c, d, alpha=alpha
    )
    col.update({name: primary[name] for name in _PRIMARY})
    col["overlap_r"] = np.where(n > 0, primary["r"], np.nan)
    indep = _compare_independent_many(k_ru_only, n_ru_only, k_fo_only, n_fo_only, alpha=alpha)
    col["indep_diff"] = indep["diff"]
    col["indep_ci_low"] = indep["diff_ci_low"]
    col["indep_ci_high"] = indep["diff_ci_high"]
    col["indep_test"] = indep["test"]
    col["indep_statistic"] = indep["statistic"]
    col["indep_p_val"] = indep["p_val"]
    col["indep_cohens_h"] = indep["cohens_h"]

    pairs = _mcnemar_paired_many(a, b, c, d, alpha=alpha)  # as mcnemar_paired() reports
    for name in ("n", "b", "c", "diff", "ci_low", "ci_high", "p_val"):
        col[f"paired_{name}"] = pairs[name]

    for j, kind in enumerate(KINDS):
        hist = rate[:, j]
        summary = _rating_summary_many(hist)  # as rating_summary() reports
        interval = _mean_rating_ci_many(hist, alpha=alpha)
        col[f"rating_n_{kind}"] = summary["n"]
        col[f"rating_mean_{kind}"] = summary["mean"]
        col[f"rating_mean_{kind}_ci_low"] = interval["ci_low"]
        col[f"rating_mean_{kind}_ci_high"] = interval["ci_high"]
        col[f"rating_median_{kind}"] = summary["median"]
        for r in RATINGS:
            col[f"r{r}_{kind}"] = summary[f"r{r}"]
    ru_only = unpaired_counts(rate[:, 0], paired_rate.sum(axis=2), "ratings of Russian companies")
    fo_only = unpaired_counts(rate[:, 1], paired_rate.sum(axis=1), "ratings of foreign companies")
    col["rating_n_ru_only"] = ru_only.sum(axis=1)
    col["rating_n_foreign_only"] = fo_only.sum(axis=1)
    means = _compare_overlapping_means_many(ru_only, fo_only, paired_rate, alpha=alpha)
    col["rating_diff"] = means["diff"]
    col["rating_diff_ci_low"] = means["diff_ci_low"]
    col["rating_diff_ci_high"] = means["diff_ci_high"]
    col["rating_test"] = means["test"]
    col["rating_statistic"] = means["statistic"]
    col["rating_df"] = means["df"]
    col["rating_p_val"] = means["p_val"]
    col["rating_r"] = np.where(paired_rate.sum(axis=(1, 2)) >= 2, means["r"], np.nan)
    mwu = _mann_whitney_many(rate[:, 0], rate[:, 1])
    low, high = _rank_biserial_ci_many(mwu["rank_biserial"], mwu["n_x"], mwu["n_y"], alpha=alpha)
    col["mwu_u"] = mwu["u"]
    col["mwu_p_val"] = mwu["p_val"]
    col["rank_biserial"] = mwu["rank_biserial"]
    col["rank_biserial_ci_low"] = low
    col["rank_biserial_ci_high"] = high

    wilcoxon = _signed_rank_many(paired_rate)
    col["rating_paired_n"] = wilcoxon["n"]
    col["wilcoxon_statistic"] = wilcoxon["statistic"]
    col["wilcoxon_p_val"] = wilcoxon["p_val"]

    col["low_n_ru"] = col["n_ru"] < low_n
    col["low_n_foreign"] = col["n_foreign"] < low_n
    col["low_n_paired"] = col["paired_n"] < low_n
    col["low_n_rating"] = np.minimum(col["rating_n_ru"], col["rating_n_foreign"]) < low_n
    col["low_n"] = col["low_n_ru"] | col["low_n_foreign"]
    return col


_PRIMARY = (
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "test",
    "statistic",
    "p_val",
    "cohens_h",
    "cohens_h_ci_low",
    "cohens_h_ci_high",
)
