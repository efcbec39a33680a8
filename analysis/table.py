"""The comparison table, defined once: every column of :func:`analysis.compare.compare`.

Each :class:`Column` has its name, its group (what it rests on), its type and its meaning;
each :class:`Group` says which respondents its columns rest on. Everything that shows the
table takes its columns from here instead of restating them:

* :func:`analysis.compare.compare` builds its frame in :func:`order` with the types of
  :data:`DTYPES`;
* the API (``survey.api``) writes a row along each column's :attr:`Column.api` paths and
  documents it with the meanings;
* the CSV download (``/researcher/table/*.csv``) holds :func:`gated_order`;
* the HTML report (:mod:`analysis.report`) shows :data:`REPORT` under the headers of
  :data:`BANDS`;
* the disclosure gate withholds by :data:`CELL_GROUPS` and :data:`TEST_GROUPS`.

Nothing here imports the web application.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from analysis.overlap import OVERLAP_T, OVERLAP_Z
from analysis.proportions import KINDS
from analysis.ratings import RATINGS

TYPES = ("int", "float", "text", "bool")
DTYPES = {"int": "int64", "float": "float64", "text": object, "bool": bool}
"""The pandas dtype of each column type in :func:`analysis.compare.compare`'s frame."""


@dataclass(frozen=True)
class Column:
    """One column of the comparison table.

    ``api`` holds the places of the column's value in the API's JSON object of a row, as
    dotted paths with list positions (``"paired.diff_ci[0]"``); empty when the API leaves
    the column out. ``api_key`` limits them to the rows of one level (``"category_id"``).
    ``values`` lists the names a text column can hold (besides null).
    """

    name: str
    group: str
    type: str
    meaning: str
    api: tuple[str, ...] = ()
    api_key: str | None = None
    values: tuple[str, ...] = ()

    @cached_property
    def api_paths(self) -> list[tuple[str | int, ...]]:
        """The :attr:`api` paths split into keys and list positions."""
        return [json_path(path) for path in self.api]


@dataclass(frozen=True)
class Group:
    """Columns that rest on the same respondents.

    A *cell* (``count`` set) rests on the respondents its ``count`` column counts; a *test*
    (``sides`` set) compares two cells and rests on both. Flags rest on neither. ``api``
    names the API's JSON object that carries ``meaning`` as its ``description``.
    """

    name: str
    meaning: str
    count: str | None = None
    sides: tuple[str, ...] = ()
    api: str | None = None


_KIND = {"ru": "Russian companies", "foreign": "foreign companies"}


def _kind_columns(kind: str) -> list[Column]:
    where, group = _KIND[kind], kind
    return [
        Column(
            f"n_{kind}",
            group,
            "int",
            f"Answers about {where}: yes (the practice existed) plus no (it did not); don't "
            "know is left out",
            (f"n_{kind}",),
        ),
        Column(f"k_{kind}", group, "int", f"Yes answers about {where}", (f"k_{kind}",)),
        Column(
            f"dk_{kind}",
            group,
            "int",
            f"Don't-know answers about {where} (at category level: respondents with no yes and "
            "at least one don't know among the category's practices)",
            (f"dk_{kind}",),
        ),
        Column(
            f"p_{kind}",
            group,
            "float",
            f"Share of yes about {where}: k_{kind} / n_{kind}",
            (f"p_{kind}",),
        ),
        Column(
            f"ci_{kind}_low",
            group,
            "float",
            f"Lower limit of the Wilson interval of p_{kind}",
            (f"ci_{kind}[0]",),
        ),
        Column(
            f"ci_{kind}_high",
            group,
            "float",
            f"Upper limit of the Wilson interval of p_{kind}",
            (f"ci_{kind}[1]",),
        ),
        Column(
            f"p_{kind}_bound_low",
            group,
            "float",
            f"Lower bound of p_{kind} with the don't-know answers known: every one a no, "
            f"k_{kind} / (n_{kind} + dk_{kind})",
            (f"p_{kind}_bounds[0]",),
            api_key="category_id",
        ),
        Column(
            f"p_{kind}_bound_high",
            group,
            "float",
            f"Upper bound of p_{kind} with the don't-know answers known: every one a yes, "
            f"(k_{kind} + dk_{kind}) / (n_{kind} + dk_{kind})",
            (f"p_{kind}_bounds[1]",),
            api_key="category_id",
        ),
    ]


def _only_columns(kind: str) -> list[Column]:
    other = "foreign" if kind == "ru" else "ru"
    who = f"respondents who answered yes or no about {_KIND[kind]} but not about {_KIND[other]}"
    group, api = f"{kind}_only", "secondary.independent"
    return [
        Column(
            f"n_{kind}_only", group, "int", f"Yes and no answers of {who}", (f"{api}.n_{kind}",)
        ),
        Column(f"k_{kind}_only", group, "int", f"Yes answers of {who}", (f"{api}.k_{kind}",)),
        Column(f"p_{kind}_only", group, "float", f"Share of yes among {who}"),
    ]


def _rating_columns(kind: str) -> list[Column]:
    where, group, api = _KIND[kind], f"rating_{kind}", f"rating_{kind}"
    return [
        Column(
            f"rating_n_{kind}",
            group,
            "int",
            f"Ratings (1-5) of the practice's effect on motivation given about {where}",
            (f"{api}.n",),
        ),
        Column(
            f"rating_mean_{kind}", group, "float", f"Mean rating about {where}", (f"{api}.mean",)
        ),
        Column(
            f"rating_mean_{kind}_ci_low",
            group,
            "float",
            "Lower limit of the t interval of the mean rating",
            (f"{api}.mean_ci[0]",),
        ),
        Column(
            f"rating_mean_{kind}_ci_high",
            group,
            "float",
            "Upper limit of the t interval of the mean rating",
            (f"{api}.mean_ci[1]",),
        ),
        Column(
            f"rating_median_{kind}",
            group,
            "float",
            f"Median rating about {where}",
            (f"{api}.median",),
        ),
        *(
            Column(
                f"r{r}_{kind}",
                group,
                "int",
                f"Ratings of {r} about {where}",
                (f"{api}.counts[{i}]",),
            )
            for i, r in enumerate(RATINGS)
        ),
    ]


def _rating_only_columns(kind: str) -> list[Column]:
    other = "foreign" if kind == "ru" else "ru"
    return [
        Column(
            f"rating_n_{kind}_only",
            f"rating_{kind}_only",
            "int",
            f"Ratings about {_KIND[kind]} from respondents who did not rate the practice for "
            f"{_KIND[other]}",
        )
    ]


def _q(test: str) -> str:
    return f"Benjamini-Hochberg q-value of the {test} p-value, over the items of the table"


GROUPS: tuple[Group, ...] = (
    *(Group(kind, f"Every yes/no answer about {_KIND[kind]}", count=f"n_{kind}") for kind in KINDS),
    *(
        Group(
            f"{kind}_only",
            f"Respondents who answered about {_KIND[kind]} only",
            count=f"n_{kind}_only",
        )
        for kind in KINDS
    ),
    Group(
        "primary",
        "The primary comparison of the shares, over every answer of both kinds (partially "
        "overlapping samples)",
        sides=KINDS,
    ),
    Group(
        "indep",
        "Russian-only vs foreign-only respondents, independent samples",
        sides=("ru_only", "foreign_only"),
        api="secondary.independent",
    ),
    Group(
        "paired",
        "Respondents who answered yes or no about both kinds of company",
        count="paired_n",
    ),
    *(
        Group(f"rating_{kind}", f"Every rating about {_KIND[kind]}", count=f"rating_n_{kind}")
        for kind in KINDS
    ),
    *(
        Group(
            f"rating_{kind}_only",
            f"Ratings from respondents who rated {_KIND[kind]} only",
            count=f"rating_n_{kind}_only",
        )
        for kind in KINDS
    ),
    Group(
        "rating_test",
        "The primary comparison of the mean ratings, over every rating of both kinds "
        "(partially overlapping samples)",
        sides=("rating_ru", "rating_foreign"),
    ),
    Group(
        "rating_mwu",
        "all Russian vs all foreign ratings as if independent",
        sides=("rating_ru", "rating_foreign"),
        api="secondary.mann_whitney",
    ),
    Group(
        "rating_paired",
        "Respondents who rated the practice for both kinds of company",
        count="rating_paired_n",
    ),
    Group("flags", "Small-number flags (the threshold is compare's low_n, 10 by default)"),
)
"""The groups of :data:`COLUMNS`, in table order."""

_INDEP = "secondary.independent"
_MWU = "secondary.mann_whitney"

COLUMNS: tuple[Column, ...] = (
    *_kind_columns("ru"),
    *_kind_columns("foreign"),
    *_only_columns("ru"),
    *_only_columns("foreign"),
    Column("diff", "primary", "float", "p_ru - p_foreign", ("diff",)),
    Column(
        "diff_ci_low",
        "primary",
        "float",
        "Lower limit of the MOVER interval of diff (Newcombe's, with the correlation of the "
        "paired answers)",
        ("diff_ci[0]",),
    ),
    Column(
        "diff_ci_high",
        "primary",
        "float",
        "Upper limit of the MOVER interval of diff",
        ("diff_ci[1]",),
    ),
    Column(
        "test",
        "primary",
        "text",
        "The primary test: 'overlap_z', the partially overlapping samples z-test (Derrick et "
        "al. 2015); null when a kind has no yes/no answer",
        ("test",),
        values=(OVERLAP_Z,),
    ),
    Column("statistic", "primary", "float", "z statistic of the primary test", ("statistic",)),
    Column("p_val", "primary", "float", "Two-sided p-value of the primary test", ("p_value",)),
    Column("q_val", "primary", "float", _q("primary test's"), ("q_value",)),
    Column("cohens_h", "primary", "float", "Cohen's h of p_ru vs p_foreign", ("cohens_h",)),
    Column(
        "cohens_h_ci_low",
        "primary",
        "float",
        "Lower limit of the delta-method interval of cohens_h",
        ("cohens_h_ci[0]",),
    ),
    Column(
        "cohens_h_ci_high",
        "primary",
        "float",
        "Upper limit of the delta-method interval of cohens_h",
        ("cohens_h_ci[1]",),
    ),
    Column(
        "overlap_r",
        "primary",
        "float",
        "Phi correlation of the paired yes/no answers (null with no pair)",
        ("overlap_r",),
    ),
    Column(
        "indep_diff",
        "indep",
        "float",
        "Share of yes among the Russian-only minus the foreign-only respondents (secondary)",
        (f"{_INDEP}.diff",),
    ),
    Column(
        "indep_ci_low",
        "indep",
        "float",
        "Lower limit of the Newcombe interval of indep_diff",
        (f"{_INDEP}.diff_ci[0]",),
    ),
    Column(
        "indep_ci_high",
        "indep",
        "float",
        "Upper limit of the Newcombe interval of indep_diff",
        (f"{_INDEP}.diff_ci[1]",),
    ),
    Column(
        "indep_test",
        "indep",
        "text",
        "'chi2' (Pearson, no continuity correction) or 'fisher' (Fisher's exact test, when an "
        "expected count is below 5); null when a group is empty",
        (f"{_INDEP}.test",),
        values=("chi2", "fisher"),
    ),
    Column(
        "indep_statistic",
        "indep",
        "float",
        "Chi-square statistic (null for Fisher's test)",
        (f"{_INDEP}.statistic",),
    ),
    Column(
        "indep_p_val", "indep", "float", "p-value of the independent test", (f"{_INDEP}.p_value",)
    ),
    Column("indep_q_val", "indep", "float", _q("independent test's"), (f"{_INDEP}.q_value",)),
    Column(
        "indep_cohens_h",
        "indep",
        "float",
        "Cohen's h of the Russian-only vs the foreign-only share",
        (f"{_INDEP}.cohens_h",),
    ),
    Column(
        "paired_n",
        "paired",
        "int",
        "Respondents who answered yes or no about both kinds",
        ("paired.n",),
    ),
    Column("paired_b", "paired", "int", "Of them: yes (Russian) and no (foreign)", ("paired.b",)),
    Column("paired_c", "paired", "int", "Of them: no (Russian) and yes (foreign)", ("paired.c",)),
    Column(
        "paired_diff",
        "paired",
        "float",
        "(b - c) / n: the Russian minus the foreign share among them",
        ("paired.diff",),
    ),
    Column(
        "paired_ci_low",
        "paired",
        "float",
        "Lower limit of Newcombe's paired interval (method 10) of the difference",
        ("paired.diff_ci[0]",),
    ),
    Column(
        "paired_ci_high",
        "paired",
        "float",
        "Upper limit of Newcombe's paired interval (method 10) of the difference",
        ("paired.diff_ci[1]",),
    ),
    Column("paired_p_val", "paired", "float", "Exact McNemar p-value", ("paired.p_value",)),
    Column("paired_q_val", "paired", "float", _q("McNemar"), ("paired.q_value",)),
    *_rating_columns("ru"),
    *_rating_columns("foreign"),
    *_rating_only_columns("ru"),
    *_rating_only_columns("foreign"),
    Column(
        "rating_diff",
        "rating_test",
        "float",
        "Mean rating about Russian minus foreign companies",
        ("rating_diff",),
    ),
    Column(
        "rating_diff_ci_low",
        "rating_test",
        "float",
        "Lower limit of the t interval of the difference in mean ratings",
        ("rating_diff_ci[0]",),
    ),
    Column(
        "rating_diff_ci_high",
        "rating_test",
        "float",
        "Upper limit of the t interval of the difference in mean ratings",
        ("rating_diff_ci[1]",),
    ),
    Column(
        "rating_test",
        "rating_test",
        "text",
        "The primary rating test: 'overlap_t', the partially overlapping samples t-test "
        "(Derrick et al. 2017, separate variances); null unless each kind has 2 ratings",
        ("rating_test",),
        values=(OVERLAP_T,),
    ),
    Column(
        "rating_statistic",
        "rating_test",
        "float",
        "t statistic of the primary rating test",
        ("rating_statistic",),
    ),
    Column("rating_df", "rating_test", "float", "Its degrees of freedom", ("rating_df",)),
    Column(
        "rating_p_val",
        "rating_test",
        "float",
        "Two-sided p-value of the primary rating test",
        ("rating_p_value",),
    ),
    Column(
        "rating_q_val", "rating_test", "float", _q("primary rating test's"), ("rating_q_value",)
    ),
    Column(
        "rating_r",
        "rating_test",
        "float",
        "Correlation of the paired ratings (null with fewer than 2 pairs)",
    ),
    Column(
        "mwu_u",
        "rating_mwu",
        "float",
        "Mann-Whitney U of the Russian (x) vs the foreign (y) ratings (secondary)",
        ("rating_u", f"{_MWU}.u"),
    ),
    Column(
        "mwu_p_val",
        "rating_mwu",
        "float",
        "p-value of the Mann-Whitney test (normal approximation, continuity corrected)",
        (f"{_MWU}.p_value",),
    ),
    Column("mwu_q_val", "rating_mwu", "float", _q("Mann-Whitney"), (f"{_MWU}.q_value",)),
    Column(
        "rank_biserial",
        "rating_mwu",
        "float",
        "Rank-biserial correlation (positive: ratings higher in Russian companies)",
        ("rank_biserial", f"{_MWU}.rank_biserial"),
    ),
    Column(
        "rank_biserial_ci_low",
        "rating_mwu",
        "float",
        "Lower limit of the Fisher-z interval of the rank-biserial correlation",
        (f"{_MWU}.rank_biserial_ci[0]",),
    ),
    Column(
        "rank_biserial_ci_high",
        "rating_mwu",
        "float",
        "Upper limit of the Fisher-z interval of the rank-biserial correlation",
        (f"{_MWU}.rank_biserial_ci[1]",),
    ),
    Column(
        "rating_paired_n",
        "rating_paired",
        "int",
        "Respondents who rated the practice for both kinds",
        ("rating_paired.n",),
    ),
    Column(
        "wilcoxon_statistic",
        "rating_paired",
        "float",
        "Wilcoxon signed-rank statistic of the Russian minus the foreign rating among them",
        ("rating_paired.statistic",),
    ),
    Column(
        "wilcoxon_p_val",
        "rating_paired",
        "float",
        "p-value of the Wilcoxon signed-rank test",
        ("rating_paired.p_value",),
    ),
    Column("wilcoxon_q_val", "rating_paired", "float", _q("Wilcoxon"), ("rating_paired.q_value",)),
    Column("low_n_ru", "flags", "bool", "n_ru is below the small-number threshold"),
    Column("low_n_foreign", "flags", "bool", "n_foreign is below the small-number threshold"),
    Column(
        "low_n_paired",
        "flags",
        "bool",
        "Fewer respondents than the small-number threshold answered about both kinds",
        ("low_n_paired",),
    ),
    Column(
        "low_n_rating",
        "flags",
        "bool",
        "Fewer ratings than the small-number threshold about Russian or foreign companies",
        ("low_n_rating",),
    ),
    Column(
        "low_n",
        "flags",
        "bool",
        "n_ru or n_foreign is below the small-number threshold: unstable shares",
        ("low_n",),
    ),
)
"""Every column of :func:`analysis.compare.compare` but the item key, in table order."""

NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)
BY_NAME: dict[str, Column] = {column.name: column for column in COLUMNS}
GROUP_BY_NAME: dict[str, Group] = {group.name: group for group in GROUPS}

COLUMN_GROUPS: dict[str, tuple[str, ...]] = {
    group.name: tuple(c.name for c in COLUMNS if c.group == group.name) for group in GROUPS
}
"""Group name -> its columns, in table order."""

CELL_GROUPS: tuple[str, ...] = tuple(g.name for g in GROUPS if g.count)
"""Groups resting on one set of respondents (counted by the group's ``count`` column)."""

TEST_GROUPS: tuple[str, ...] = tuple(g.name for g in GROUPS if g.sides)
"""Groups comparing two cells (they rest on both)."""

TEXT_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.type == "text")
"""Columns that hold a test's name (object dtype, ``None`` for no test)."""

INT_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.type == "int")
"""Counts (int64)."""

BOOL_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.type == "bool")
"""Flags (bool)."""

Q_FAMILIES: tuple[str, ...] = tuple(
    name.removesuffix("p_val") for name in NAMES if name.endswith("p_val")
)
"""Prefixes of the p-value columns; BH q-values (``<prefix>q_val``) are computed within
each family."""


def column(name: str) -> Column:
    """The definition of one column; KeyError naming it when the table has no such column."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"the comparison table has no column {name!r}") from None


def select(*names: str) -> tuple[str, ...]:
    """``names``, after checking that each is a column of the table (for the readers that
    need only some columns, such as the figures)."""
    for name in names:
        column(name)
    return names


def order(key: str) -> list[str]:
    """The columns of :func:`analysis.compare.compare`'s frame: the item key, then
    :data:`NAMES`.

    Examples
    --------
    >>> order("category_id")[:5]
    ['category_id', 'n_ru', 'k_ru', 'dk_ru', 'p_ru']
    >>> column("paired_b").group, column("paired_b").type
    ('paired', 'int')
    """
    return [key, *NAMES]


def suppressed(group: str) -> str:
    """The column the disclosure gate adds to say that it withheld a cell group."""
    if group not in CELL_GROUPS:
        raise KeyError(f"{group!r} is not a cell group of the comparison table")
    return f"suppressed_{group}"


MIN_CELL = "min_cell"
"""The column the disclosure gate adds with its threshold."""

GATE_COLUMNS: tuple[str, ...] = (*(suppressed(g) for g in CELL_GROUPS), MIN_CELL)
"""The columns ``survey.disclosure.mask_comparison`` appends to the table, in order."""


def gated_order(key: str) -> list[str]:
    """The columns of a table that passed the disclosure gate: what the CSV download holds."""
    return [*order(key), *GATE_COLUMNS]


_PATH_PART = re.compile(r"([a-z_][a-z0-9_]*)((?:\[\d+\])*)")


def json_path(path: str) -> tuple[str | int, ...]:
    """A dotted path with list positions, split into keys and positions.

    Examples
    --------
    >>> json_path("paired.diff_ci[1]")
    ('paired', 'diff_ci', 1)
    >>> [c.api for c in api_columns("practice_id") if c.name == "mwu_u"]
    [('rating_u', 'secondary.mann_whitney.u')]
    """
    parts: list[str | int] = []
    for part in path.split("."):
        match = _PATH_PART.fullmatch(part)
        if not match:
            raise ValueError(f"not a JSON path: {path!r}")
        parts.append(match.group(1))
        parts += [int(i) for i in re.findall(r"\d+", match.group(2))]
    return tuple(parts)


def api_columns(key: str) -> list[Column]:
    """The columns the API shows in a row whose item key is ``key``."""
    return [c for c in COLUMNS if c.api and c.api_key in (None, key)]


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Shown:
    """A column of the report's comparison table (and of ``report.format_comparison``).

    ``sources`` are the table columns it is written from, ``style`` how (the formatters of
    :mod:`analysis.report`), ``band`` the header above it (:data:`BANDS`), ``en`` / ``ru``
    its own header. ``key`` limits it to the tables of one level; its sources may then be
    missing (it reads as a dash).
    """

    name: str
    sources: tuple[str, ...]
    style: str
    band: str
    en: str
    ru: str
    key: str | None = None


def _kind_shown(kind: str) -> list[Shown]:
    return [
        Shown(f"n_{kind}", (f"n_{kind}",), "count", kind, "n", "n"),
        Shown(f"p_{kind}", (f"p_{kind}",), "percent", kind, "Share", "Доля"),
        Shown(
            f"ci_{kind}",
            (f"ci_{kind}_low", f"ci_{kind}_high"),
            "interval",
            kind,
            "95% CI",
            "95% ДИ",
        ),
        Shown(
            f"bounds_{kind}",
            (f"p_{kind}_bound_low", f"p_{kind}_bound_high"),
            "interval",
            kind,
            "Bounds (don't know = no / yes)",
            "Границы (не знаю = нет / да)",
            key="category_id",
        ),
    ]


REPORT: tuple[Shown, ...] = (
    *_kind_shown("ru"),
    *_kind_shown("foreign"),
    Shown(
        "diff",
        ("diff", "diff_ci_low", "diff_ci_high"),
        "difference",
        "difference",
        "Difference, pp [95% CI]",
        "Разница, п.п. [95% ДИ]",
    ),
    Shown("test", ("test",), "test", "difference", "Test", "Тест"),
    Shown("p_val", ("p_val",), "p", "difference", "p", "p"),
    Shown("q_val", ("q_val",), "q", "difference", "q", "q"),
    Shown("cohens_h", ("cohens_h",), "signed", "difference", "Cohen's h", "h Коэна"),
    Shown("paired_n", ("paired_n",), "count", "paired", "n", "n"),
    Shown("paired_b", ("paired_b",), "count", "paired", "b", "b"),
    Shown("paired_c", ("paired_c",), "count", "paired", "c", "c"),
    Shown("paired_p_val", ("paired_p_val",), "p", "paired", "p", "p"),
    Shown("paired_q_val", ("paired_q_val",), "q", "paired", "q", "q"),
    Shown(
        "rating_mean_ru",
        ("rating_mean_ru",),
        "decimal",
        "ratings",
        "Mean, Russian",
        "Среднее, рос.",
    ),
    Shown(
        "rating_mean_foreign",
        ("rating_mean_foreign",),
        "decimal",
        "ratings",
        "Mean, foreign",
        "Среднее, иностр.",
    ),
    Shown(
        "rating_p_val",
        ("rating_p_val",),
        "p",
        "ratings",
        "p (overlap t)",
        "p (t, пересек. выборки)",
    ),
    Shown("rating_q_val", ("rating_q_val",), "q", "ratings", "q", "q"),
)
"""The report's comparison table after the item label, in order."""

BANDS: dict[str, dict[str, str]] = {
    "ru": {"en": "Russian companies", "ru": "Российские компании"},
    "foreign": {"en": "Foreign companies", "ru": "Иностранные компании"},
    "difference": {"en": "Difference in shares", "ru": "Сравнение долей"},
    "paired": {"en": "Know both kinds of company", "ru": "Знают оба типа компаний"},
    "ratings": {"en": "Ratings 1–5", "ru": "Оценки 1–5"},
}
"""The headers above the report's columns (:attr:`Shown.band`), in order."""


def report_columns(key: str) -> list[Shown]:
    """The report table's columns for a table whose item key is ``key``."""
    return [shown for shown in REPORT if shown.key in (None, key)]
