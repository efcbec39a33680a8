"""Self-contained HTML report of the Russian-vs-foreign comparison.

:func:`render_report` returns one HTML document as a string, rendered from the Jinja2
template ``analysis/templates/report.html`` with autoescaping: inline CSS, the plotly.js
bundle inlined once in ``<head>``, and no reference to any external URL, so the file opens
offline and prints legibly. Every text that comes from the data or the caller is escaped
by the template; interface strings come from the message catalogue in the report's
language (:mod:`analysis.display`). Numbers are rounded here only for display;
:func:`format_comparison` gives the same display strings as a DataFrame for other views.
"""

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from analysis.display import (
    MISSING,
    N_,
    STAR,
    count,
    decimal,
    difference_with_ci,
    format_p_value,
    format_percent,
    interval,
    item_label,
    present,
    signed,
    translations,
    translator,
)
from analysis.figures import (
    figure_div,
    paired_dumbbell,
    prevalence_dumbbell,
    rating_diverging,
)
from analysis.table import (
    BANDS,
    BY_NAME,
    CELL_GROUPS,
    MIN_CELL,
    REPORT,
    Shown,
    report_columns,
    suppressed,
)

__all__ = ["SIGNIFICANCE", "format_comparison", "render_report"]

SIGNIFICANCE = 0.05  # q-value below which a difference is marked
LOW_N_MARK = "⚠"
TITLE = N_("Motivation practices in Russian and foreign companies: report")


def format_comparison(
    table: pd.DataFrame,
    labels: Mapping[Any, Any] | None,
    lang: str = "ru",
    key: str = "practice_id",
    significance: float = SIGNIFICANCE,
) -> pd.DataFrame:
    """Format a comparison table for display, keeping the row order.

    Shares are shown as percentages with one decimal, differences in
    percentage points with their 95% CI, p- and q-values with four decimals or
    as ``"<0.001"``, missing values as a dash. A q-value below ``significance``
    gets a ``★``.

    Parameters
    ----------
    table : pandas.DataFrame
        The table returned by ``analysis.compare.compare`` (one row per item).
    labels : mapping or None
        Item id -> label (see :func:`analysis.figures.item_label`).
    lang : {"ru", "en"}, default "ru"
        Language of the labels and of the test names.
    key : str, default "practice_id"
        Name of the item id column (``"category_id"`` at category level).
    significance : float, default 0.05
        Threshold for the q-values that are marked.

    Returns
    -------
    pandas.DataFrame
        String columns ``label`` (plain text, not escaped), then one per entry of
        :data:`analysis.table.REPORT`, in its order, written from its ``sources`` (the
        share's bounds ``bounds_ru``, ``bounds_foreign``, like ``"20.0–35.0%"``, come at
        every level: a dash when the table has no ``p_*_bound_*`` columns), and bool
        columns ``low_n`` and ``significant`` (prevalence q below the threshold).

    Examples
    --------
    >>> format_comparison(table, {"bonus": "Премия"})["p_ru"].tolist()  # doctest: +SKIP
    ['30.0%']
    """
    _ = translator(lang)
    required = [key, *(c for shown in REPORT if shown.key is None for c in shown.sources)]
    missing = [c for c in [*required, "low_n"] if c not in table.columns]
    if missing:
        raise ValueError(f"format_comparison: missing columns {missing}")
    q_val = _numbers(table, "q_val")
    out = pd.DataFrame(
        {
            "label": [item_label(labels, item_id, lang) for item_id in table[key].tolist()],
            **{shown.name: _shown(table, shown, _, significance) for shown in REPORT},
            "low_n": [bool(v) if present(v) else False for v in table["low_n"]],
            "significant": [v < significance for v in q_val],
        },
        index=pd.RangeIndex(len(table)),
    )
    _mark_withheld(out, table)
    return out.astype({"low_n": bool, "significant": bool})


def _numbers(table: pd.DataFrame, column: str) -> list[float]:
    values = pd.to_numeric(table[column], errors="coerce")
    return values.to_numpy(dtype=float, na_value=np.nan).tolist()


def _shown(table: pd.DataFrame, shown: Shown, _, significance: float) -> list[str]:
    """One column of :func:`format_comparison`, written from its sources in its style; a
    dash throughout when the table lacks an optional column's sources."""
    if any(c not in table.columns for c in shown.sources):
        return [MISSING] * len(table)
    if shown.style == "test":
        names = {"chi2": "χ²", "fisher": _("Fisher"), "overlap_z": _("overlap z")}
        return [
            names.get(str(t), MISSING) if present(t) else MISSING for t in table[shown.sources[0]]
        ]
    values = [_numbers(table, c) for c in shown.sources]
    if shown.style == "interval":
        return [interval(*v) for v in zip(*values, strict=True)]
    if shown.style == "difference":
        return [difference_with_ci(*v) for v in zip(*values, strict=True)]
    if shown.style == "q":
        return [format_p_value(v) + (f" {STAR}" if v < significance else "") for v in values[0]]
    one = {
        "count": count,
        "percent": format_percent,
        "p": format_p_value,
        "signed": lambda v: signed(v, 2),
        "decimal": lambda v: decimal(v, 2),
    }[shown.style]
    return [one(v) for v in values[0]]


# Display columns holding a count, by the cell group (the disclosure gate's unit) they count.
_WITHHELD_COUNTS: dict[str, list[str]] = {
    group: [s.name for s in REPORT if s.style == "count" and BY_NAME[s.sources[0]].group == group]
    for group in CELL_GROUPS
}


def _mark_withheld(out: pd.DataFrame, table: pd.DataFrame) -> None:
    """Counts withheld by disclosure control (the gate's columns of
    :data:`analysis.table.GATE_COLUMNS`, as survey.disclosure adds them) read "< threshold"."""
    if MIN_CELL not in table.columns or table.empty:
        return
    text = f"< {int(table[MIN_CELL].iloc[0])}"
    for group, columns in _WITHHELD_COUNTS.items():
        hidden = table[suppressed(group)].to_numpy(dtype=bool)
        for column in columns:
            out.loc[hidden, column] = text


def render_report(
    table: pd.DataFrame,
    labels: Mapping[Any, Any] | None,
    *,
    lang: str = "ru",
    sample: Mapping[str, Any],
    assumptions: str,
    title: str | None = None,
    category_table: pd.DataFrame | None = None,
    category_labels: Mapping[Any, Any] | None = None,
    demo: bool = False,
    filters: Mapping[str, Any] | None = None,
    generated_on: dt.date | dt.datetime | str | None = None,
    pilot: bool = False,
    scale: Mapping[Any, Any] | None = None,
) -> str:
    """Render the comparison as one self-contained HTML document.

    The document holds, in order: a "demo data" banner (only when ``demo``), a
    "pilot responses" banner (only when ``pilot``), the title and generation
    date, the filters applied, the sample description, the assumptions, the
    comparison table, the prevalence dumbbell, the paired chart, the rating
    chart and, when ``category_table`` is given, the category-level table and
    dumbbell. plotly.js is inlined once in ``<head>``;
    nothing is loaded from the network.

    Parameters
    ----------
    table : pandas.DataFrame
        Practice-level table from ``analysis.compare.compare`` (key
        ``practice_id``); its row order is kept in the table.
    labels : mapping or None
        Practice id -> label (see :func:`analysis.figures.item_label`).
    lang : {"ru", "en"}, default "ru"
        Language of the report.
    sample : mapping
        ``{"n_respondents": int, "background": {dimension: [(label, n), ...]}}``;
        ``background`` may be omitted.
    assumptions : str
        Plain text; blank lines separate paragraphs.
    title : str, optional
        Document title; a default in ``lang`` when omitted.
    category_table : pandas.DataFrame, optional
        Category-level table from ``compare`` (key ``category_id``).
    category_labels : mapping, optional
        Category id -> label.
    demo : bool, default False
        Mark the report as built from synthetic data.
    filters : mapping, optional
        Filter name -> value applied to the data (a list value is joined);
        ``None`` or empty shows "none".
    generated_on : date, datetime or str, optional
        Shown under the title; omitted when ``None`` (the report does not read
        the clock, so equal inputs give an equal document).
    pilot : bool, default False
        Mark the report as including responses of a pilot wave.
    scale : mapping, optional
        Rating -> its label (the questionnaire's answer options), for the rating chart's
        legend (see :func:`analysis.figures.rating_diverging`).

    Returns
    -------
    str
        The HTML document (UTF-8 text).

    Examples
    --------
    >>> page = render_report(table, labels, sample={"n_respondents": 120},
    ...                      assumptions="...", demo=True)  # doctest: +SKIP
    >>> Path("report.html").write_text(page, encoding="utf-8")  # doctest: +SKIP
    """
    _ = translator(lang)
    if "n_respondents" not in sample:
        raise ValueError("sample must have an 'n_respondents' entry")
    charts = {
        "prevalence": prevalence_dumbbell(table, labels, lang),
        "paired": paired_dumbbell(table, labels, lang),
        "ratings": rating_diverging(table, labels, lang, scale=scale),
    }
    if category_table is not None:
        charts["categories"] = prevalence_dumbbell(
            category_table,
            category_labels,
            lang,
            key="category_id",
            title=_("Categories of practice: Russian and foreign companies"),
        )
    when = generated_on.isoformat() if isinstance(generated_on, dt.date) else generated_on
    template = _environment(lang).get_template("report.html")
    return template.render(
        lang=lang,
        title=title if title is not None else _(TITLE),
        demo=demo,
        pilot=pilot,
        generated_on=when,
        filters=[(str(name), _filter_value(value)) for name, value in (filters or {}).items()],
        n_respondents=sample["n_respondents"],
        background=_background(sample),
        assumptions=[p.strip() for p in re.split(r"\n\s*\n", assumptions or "") if p.strip()],
        practices=_comparison_table(table, labels, lang, "practice_id", _("Practice")),
        categories=None
        if category_table is None
        else _comparison_table(category_table, category_labels, lang, "category_id", _("Category")),
        charts={
            name: Markup(figure_div(fig, div_id=f"fig-{name}"))  # noqa: S704 - plotly's own HTML
            for name, fig in charts.items()
        },
        plotly_js=Markup(_plotly_js()),  # noqa: S704 - the bundle, made safe for <script>
        star=STAR,
        significance=f"{SIGNIFICANCE:g}",
        low_n_mark=LOW_N_MARK,
    )


# --------------------------------------------------------------------------- sections


def _filter_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return ", ".join(str(v) for v in value)
    return str(value)


def _background(sample: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, Any, str]]]]:
    """The sample's background distributions: (dimension, [(label, n, share), ...])."""
    out = []
    for dimension, counts in (sample.get("background") or {}).items():
        # A count withheld by disclosure control arrives as its text ("< 10").
        pairs = [(str(label), n if isinstance(n, str) else int(n)) for label, n in counts]
        total = sum(n for _, n in pairs if not isinstance(n, str))
        if any(isinstance(n, str) for _, n in pairs):
            total = int(sample["n_respondents"])
        rows = [
            (label, n, MISSING if isinstance(n, str) or not total else format_percent(n / total))
            for label, n in pairs
        ]
        out.append((str(dimension), rows))
    return out


def _comparison_table(
    table: pd.DataFrame,
    labels: Mapping[Any, Any] | None,
    lang: str,
    key: str,
    item_header: str,
) -> dict[str, Any]:
    """What the template's ``comparison_table`` macro shows of one level's table."""
    shown = format_comparison(table, labels, lang, key)
    columns = report_columns(key)
    spans = {band: sum(c.band == band for c in columns) for band in BANDS}
    rows = [
        {
            "label": row.label,
            "low_n": row.low_n,
            "classes": [
                name for name, on in (("low-n", row.low_n), ("significant", row.significant)) if on
            ],
            "cells": [getattr(row, c.name) for c in columns],
        }
        for row in shown.itertuples(index=False)
    ]
    return {
        "item_header": item_header,
        "bands": [(BANDS[band][lang], span) for band, span in spans.items() if span],
        "headers": [getattr(c, lang) for c in columns],
        "rows": rows,
        # The columns of one level only (each kind's don't-know bounds at category level)
        # get their note.
        "bounds": any(c.key == key for c in columns),
    }


# --------------------------------------------------------------------------- internals


@cache
def _environment(lang: str) -> jinja2.Environment:
    """The report's template environment in ``lang``: autoescaped, gettext from the catalogue."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("analysis", "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.install_gettext_translations(translations(lang), newstyle=True)
    return environment


@cache
def _plotly_js() -> str:
    """The plotly.js bundle, safe to place inside a ``<script>`` element."""
    return re.sub(r"</(script)", r"<\\/\1", get_plotlyjs(), flags=re.IGNORECASE)
