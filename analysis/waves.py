"""Prevalence of each practice in one wave against another, per company kind.

Two waves are compared as two **independent samples**: no identity is kept, so a person who
answered in both waves cannot be linked, and each wave's answers are taken as a sample of
their own. Each row is one practice and one kind of company (Russian, foreign), and holds
exactly the statistics of the Russian-vs-foreign table's *independent* comparison
(:func:`analysis.proportions.compare_independent`, the ``indep_*`` columns of
:func:`analysis.compare.compare`), with wave a in the place of the first group and wave b
in the place of the second:

* each wave's share ``k / n`` (``n`` = yes + no, "don't know" left out of the denominator,
  ``k`` = yes: the practice existed, applied to the respondent or not) with its Wilson
  interval (:func:`analysis.proportions.wilson_ci`);
* ``diff = p_a - p_b`` with the Newcombe hybrid score interval;
* Pearson's chi-square without continuity correction, or Fisher's exact test when an
  expected count of the 2x2 table is below 5 (``test`` says which);
* Cohen's h of ``p_a`` vs ``p_b``;
* Benjamini-Hochberg q-values over every row of the table (all practices and both kinds:
  one family).

The columns are defined once, in :data:`COLUMNS`, with their place in the API's JSON;
:data:`SAME_AS` maps each to the column of the Russian-vs-foreign table
(:data:`analysis.table.COLUMNS`) that holds the same statistic. Nothing here imports the
web application.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.compare import multiple_testing
from analysis.display import translator
from analysis.proportions import (
    KINDS,
    _check_alpha,
    _check_key,
    _check_kinds,
    _check_low_n,
    _compare_independent_many,
    _count_table,
    _dense_counts,
    wilson_ci,
)
from analysis.table import DTYPES, Column, Group

__all__ = [
    "COLUMNS",
    "COLUMN_GROUPS",
    "GROUPS",
    "SAME_AS",
    "SIDES",
    "assumptions_text",
    "compare_waves",
    "order",
]

SIDES = ("a", "b")
"""The two waves, in the order of the difference ``p_a - p_b``."""

_SIDE = {"a": "wave a", "b": "wave b"}


def _side_columns(side: str) -> list[Column]:
    where = _SIDE[side]
    return [
        Column(
            f"n_{side}",
            side,
            "int",
            f"Answers in {where} about this kind of company: yes (the practice existed) plus "
            "no (it did not); don't know is left out",
            (f"n_{side}",),
        ),
        Column(f"k_{side}", side, "int", f"Yes answers in {where}", (f"k_{side}",)),
        Column(f"dk_{side}", side, "int", f"Don't-know answers in {where}", (f"dk_{side}",)),
        Column(
            f"p_{side}",
            side,
            "float",
            f"Share of yes in {where}: k_{side} / n_{side}",
            (f"p_{side}",),
        ),
        Column(
            f"ci_{side}_low",
            side,
            "float",
            f"Lower limit of the Wilson interval of p_{side}",
            (f"ci_{side}[0]",),
        ),
        Column(
            f"ci_{side}_high",
            side,
            "float",
            f"Upper limit of the Wilson interval of p_{side}",
            (f"ci_{side}[1]",),
        ),
    ]


GROUPS: tuple[Group, ...] = (
    Group("a", "Every yes/no answer in wave a about the row's kind of company", count="n_a"),
    Group("b", "Every yes/no answer in wave b about the row's kind of company", count="n_b"),
    Group(
        "difference",
        "Wave a vs wave b as independent samples (respondents are not linked across waves)",
        sides=SIDES,
    ),
    Group("flags", "Small-number flags (the threshold is compare_waves' low_n, 10 by default)"),
)
"""The groups of :data:`COLUMNS`: each wave's cell (resting on its ``n``), the test that
compares them (resting on both), and flags."""

COLUMNS: tuple[Column, ...] = (
    *_side_columns("a"),
    *_side_columns("b"),
    Column("diff", "difference", "float", "p_a - p_b", ("diff",)),
    Column(
        "diff_ci_low",
        "difference",
        "float",
        "Lower limit of the Newcombe hybrid score interval of diff",
        ("diff_ci[0]",),
    ),
    Column(
        "diff_ci_high",
        "difference",
        "float",
        "Upper limit of the Newcombe hybrid score interval of diff",
        ("diff_ci[1]",),
    ),
    Column(
        "test",
        "difference",
        "text",
        "'chi2' (Pearson, no continuity correction) or 'fisher' (Fisher's exact test, when an "
        "expected count is below 5); null when a wave has no yes/no answer",
        ("test",),
        values=("chi2", "fisher"),
    ),
    Column(
        "statistic",
        "difference",
        "float",
        "Chi-square statistic (null for Fisher's test)",
        ("statistic",),
    ),
    Column("p_val", "difference", "float", "Two-sided p-value of the test", ("p_value",)),
    Column(
        "q_val",
        "difference",
        "float",
        "Benjamini-Hochberg q-value of the p-value, over every row of the table (all "
        "practices and both kinds of company)",
        ("q_value",),
    ),
    Column("cohens_h", "difference", "float", "Cohen's h of p_a vs p_b", ("cohens_h",)),
    Column("low_n_a", "flags", "bool", "n_a is below the small-number threshold"),
    Column("low_n_b", "flags", "bool", "n_b is below the small-number threshold"),
    Column(
        "low_n",
        "flags",
        "bool",
        "n_a or n_b is below the small-number threshold: unstable shares",
        ("low_n",),
    ),
)
"""Every column of :func:`compare_waves` after the item key and ``company_kind``."""

COLUMN_GROUPS: dict[str, tuple[str, ...]] = {
    group.name: tuple(c.name for c in COLUMNS if c.group == group.name) for group in GROUPS
}
"""Group name -> its columns, in table order."""

SAME_AS: dict[str, str] = {
    **{
        f"{name}_{side}{end}": f"{name}_{kind}{end}"
        for side, kind in zip(SIDES, KINDS, strict=True)
        for name, end in (("n", ""), ("k", ""), ("dk", ""), ("p", ""), ("ci", "_low"))
    },
    **{f"ci_{side}_high": f"ci_{kind}_high" for side, kind in zip(SIDES, KINDS, strict=True)},
    "diff": "indep_diff",
    "diff_ci_low": "indep_ci_low",
    "diff_ci_high": "indep_ci_high",
    "test": "indep_test",
    "statistic": "indep_statistic",
    "p_val": "indep_p_val",
    "q_val": "indep_q_val",
    "cohens_h": "indep_cohens_h",
    "low_n_a": "low_n_ru",
    "low_n_b": "low_n_foreign",
    "low_n": "low_n",
}
"""Column of :func:`compare_waves` -> the column of the Russian-vs-foreign table
(:data:`analysis.table.COLUMNS`) computed the same way: wave a takes the place of Russian
companies and wave b of foreign ones (``n_a`` is ``n_ru``'s counterpart), and the test
columns are the independent comparison's (``indep_*``; in the API
``secondary.independent``)."""


def order(key: str = "practice_id") -> list[str]:
    """The columns of :func:`compare_waves`' frame: the item key, ``company_kind``, then
    :data:`COLUMNS`.

    Examples
    --------
    >>> order()[:4]
    ['practice_id', 'company_kind', 'n_a', 'k_a']
    """
    return [key, "company_kind", *(c.name for c in COLUMNS)]


def assumptions_text(alpha: float = 0.05, lang: str = "en") -> str:
    """What :func:`compare_waves` assumes, to be shown under every result (in ``lang``,
    from the message catalogue, see :mod:`analysis.display`).

    Examples
    --------
    >>> assumptions_text().split(". ")[0]
    'Unweighted estimates'
    """
    alpha = _check_alpha(alpha)
    _ = translator(lang)
    pct = f"{alpha * 100:g}"
    confidence = f"{100 - float(pct):g}"
    return _(
        "Unweighted estimates. Respondents are self-selected, not a probability sample; "
        "intervals and tests assume a simple random sample and describe these respondents "
        "only. Respondents present in both waves cannot be linked (no identity is kept), "
        "so the comparison assumes independent samples. If some people answered alike in "
        "both waves, the tests are conservative. Tests are two-sided at the %(pct)s%% level "
        "(%(confidence)s%% intervals): Pearson's chi-square, or Fisher's exact test when an "
        "expected count is below 5; p-values are adjusted by Benjamini-Hochberg (q-values) "
        "over every practice and kind of company in the table.",
        pct=pct,
        confidence=confidence,
    )


def compare_waves(
    counts_a: pd.DataFrame | None,
    counts_b: pd.DataFrame | None,
    key: str = "practice_id",
    items: Sequence[Any] | None = None,
    alpha: float = 0.05,
    low_n: int = 10,
) -> pd.DataFrame:
    """Compare the prevalence of every item in wave a and wave b, per company kind.

    Parameters
    ----------
    counts_a, counts_b : pandas.DataFrame or None
        Each wave's prevalence counts ``[key, company_kind, yes, no, dk]`` (the
        ``"prevalence"`` table of ``survey.queries.practice_counts``; see
        :func:`analysis.proportions.prevalence`). ``None`` is an empty table; a missing row
        means zero counts; duplicate rows are summed.
    key : str, default "practice_id"
        Item column.
    items : sequence, optional
        Item ids, in output order. Items without any data still get their rows (zero
        counts, NaN statistics); ids that are not listed are left out. By default every id
        of either table, sorted.
    alpha : float, default 0.05
        Significance level of every interval.
    low_n : int, default 10
        Small-number threshold of the ``low_n*`` flags.

    Returns
    -------
    pandas.DataFrame
        One row per (item, kind), item by item and ``ru`` before ``foreign``; the columns
        of :func:`order` with the types of :data:`analysis.table.DTYPES`: each wave's
        ``n``, ``k``, ``dk``, ``p`` and Wilson interval, then ``diff = p_a - p_b`` with its
        Newcombe interval, ``test`` (``"chi2"``, ``"fisher"`` or ``None`` when a wave has no
        yes/no answer), ``statistic``, ``p_val``, ``q_val`` (Benjamini-Hochberg over every
        row whose p-value is not NaN), ``cohens_h``, and the flags ``low_n_a``
        (``n_a < low_n``), ``low_n_b`` and ``low_n`` (either). The statistics are
        :func:`analysis.proportions.compare_independent`'s with ``k1, n1`` from wave a and
        ``k2, n2`` from wave b (see :data:`SAME_AS`).

    Examples
    --------
    >>> a = pd.DataFrame({"practice_id": ["bonus", "bonus"],
    ...                   "company_kind": ["ru", "foreign"],
    ...                   "yes": [30, 55], "no": [90, 55], "dk": [4, 2]})
    >>> b = a.assign(yes=[45, 50], no=[75, 60])
    >>> table = compare_waves(a, b)
    >>> table[["company_kind", "p_a", "p_b", "test", "p_val", "q_val"]].round(4)
      company_kind   p_a     p_b  test   p_val   q_val
    0           ru  0.25  0.3750  chi2  0.0367  0.0734
    1      foreign  0.50  0.4545  chi2  0.4997  0.4997
    """
    key = _check_key(key)
    alpha = _check_alpha(alpha)
    low_n = _check_low_n(low_n)
    tables = []
    for name, counts in (("counts_a", counts_a), ("counts_b", counts_b)):
        table = _count_table(counts, name, [key, "company_kind"], ["yes", "no", "dk"])
        _check_kinds(table, name)
        tables.append(table)
    if items is None:
        ids = pd.concat([t[key] for t in tables], ignore_index=True)
        items = sorted(pd.unique(ids).tolist())
    else:
        items = list(items)
        if len(set(items)) != len(items):
            raise ValueError("items must not repeat")

    data: dict[str, Any] = {
        key: pd.Series(np.repeat(np.asarray(items, dtype=object), len(KINDS)), dtype=object),
        "company_kind": pd.Series(list(KINDS) * len(items), dtype=object),
    }
    side_counts = {}
    for side, table in zip(SIDES, tables, strict=True):
        _, dense = _dense_counts(table, key, [("company_kind", KINDS)], ["yes", "no", "dk"], items)
        yes, no, dk = (dense[..., i].ravel() for i in range(3))  # item-major, then kind
        n = yes + no
        low, high = wilson_ci(yes, n, alpha=alpha)
        p = np.full(n.shape, np.nan)
        np.divide(yes, n, out=p, where=n > 0)
        data.update(
            {
                f"n_{side}": n,
                f"k_{side}": yes,
                f"dk_{side}": dk,
                f"p_{side}": p,
                f"ci_{side}_low": low,
                f"ci_{side}_high": high,
            }
        )
        side_counts[side] = (yes, n)
    (k_a, n_a), (k_b, n_b) = side_counts["a"], side_counts["b"]
    test = _compare_independent_many(k_a, n_a, k_b, n_b, alpha=alpha)
    data.update(
        {
            "diff": test["diff"],
            "diff_ci_low": test["diff_ci_low"],
            "diff_ci_high": test["diff_ci_high"],
            "test": test["test"],
            "statistic": test["statistic"],
            "p_val": test["p_val"],
            "q_val": multiple_testing(test["p_val"]),
            "cohens_h": test["cohens_h"],
            "low_n_a": n_a < low_n,
            "low_n_b": n_b < low_n,
            "low_n": (n_a < low_n) | (n_b < low_n),
        }
    )
    frame = {key: data[key], "company_kind": data["company_kind"]}
    for column in COLUMNS:
        dtype = DTYPES[column.type]
        values = data[column.name]
        frame[column.name] = (
            pd.Series(values, dtype=object) if dtype is object else np.asarray(values, dtype)
        )
    return pd.DataFrame(frame, columns=order(key))
