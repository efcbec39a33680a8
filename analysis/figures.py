"""Plotly figure builders for the researcher dashboard and the HTML report.

Every builder is a pure function: it takes a tidy pandas frame, usually the
comparison table returned by ``analysis.compare.compare`` (one row per item),
and returns a :class:`plotly.graph_objects.Figure`. Item labels come from a
``labels`` mapping (item id -> label, or item id -> ``{"ru": ..., "en": ...}``),
the rating scale's labels likewise from the caller (``scale``), and every interface
string from the application's message catalogue in the language ``lang`` (see
:mod:`analysis.display`, which also formats the numbers).

Each figure uses the ``"plotly_white"`` template, loads no external resource,
carries its builder's name in ``layout.meta["kind"]`` and does not depend on the
plotly ``config`` it is later rendered with. A frame with zero rows gives a figure
with a "Нет данных" / "No data" annotation instead of an error.

Rows of the comparison charts are drawn top to bottom in the order of
``layout.yaxis.ticktext``. Labels are HTML-escaped before they reach plotly,
because plotly reads a subset of HTML in text (``<b>``, ``<br>``, ``<a>``).
"""

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from analysis.display import (
    N_,
    STAR,
    count,
    format_difference,
    format_p_value,
    format_percent,
    interval,
    item_label,
    present,
    signed_interval,
    translator,
)
from analysis.proportions import KINDS
from analysis.ratings import RATINGS
from analysis.table import COLUMN_GROUPS, select

__all__ = [
    "background_bars",
    "channel_bars",
    "dropoff",
    "fieldwork_daily",
    "figure_div",
    "funnel_chart",
    "paired_dumbbell",
    "plotly_js_path",
    "prevalence_dumbbell",
    "rating_diverging",
]

TEMPLATE = "plotly_white"
ROW_HEIGHT = 28  # pixels per chart row
MARGIN_HEIGHT = 190  # title, legend, axis title and notes

RU_COLOR = "#0072B2"  # Okabe-Ito blue: Russian companies
FOREIGN_COLOR = "#D55E00"  # Okabe-Ito vermillion: foreign companies
NEUTRAL_COLOR = "#7f7f7f"
CONNECTOR_COLOR = "#b4b4b4"
RATING_COLORS = ("#b2182b", "#ef8a62", "#cccccc", "#67a9cf", "#2166ac")

# Interface strings used in more than one place (msgids of the message catalogue).
DAILY_TITLE = N_("Completed responses per day (total %(total)s)")
DAILY_LINES = {"opened": N_("Links opened"), "consented": N_("Consents given")}
# The same names as the fieldwork page's table of channels.
CHANNEL_COUNTS = {
    "opened": N_("Links opened"),
    "started": N_("Started (consent given)"),
    "completed": N_("Completed"),
}

_SIDES = KINDS
_SIDE_STYLE = {"ru": (RU_COLOR, "circle"), "foreign": (FOREIGN_COLOR, "diamond")}
_SIDE_OFFSET = {"ru": -0.17, "foreign": 0.17}  # rows grow downwards: Russian above

# The comparison table's columns each chart reads (checked against analysis.table), besides
# the item key.
PREVALENCE_COLUMNS = select(
    "diff",
    "q_val",
    *(f"{name}_{side}" for side in _SIDES for name in ("n", "k", "p", "low_n")),
    *(f"ci_{side}_{end}" for side in _SIDES for end in ("low", "high")),
)
PAIRED_COLUMNS = select(*COLUMN_GROUPS["paired"], "low_n_paired")
RATING_COLUMNS = select(
    *(f"rating_n_{side}" for side in _SIDES),
    *(f"r{level}_{side}" for side in _SIDES for level in RATINGS),
)


# --------------------------------------------------------------------------- builders


def prevalence_dumbbell(
    table: pd.DataFrame,
    labels: Mapping[Any, Any] | None,
    lang: str = "ru",
    key: str = "practice_id",
    significance: float = 0.05,
    *,
    title: str | None = None,
) -> go.Figure:
    """Dumbbell chart of prevalence in Russian and in foreign companies.

    One row per item. Each row has a marker for Russian companies (blue circle,
    drawn slightly above the row's centre) and one for foreign companies
    (vermillion diamond, slightly below), each at the share ``p_*`` with a
    horizontal error bar to its Wilson interval, joined by a grey line.

    Rows are sorted by ``diff = p_ru - p_foreign`` ascending, so the largest
    foreign advantage is at the top and the largest Russian advantage at the
    bottom; rows without a difference come last. Items with
    ``q_val < significance`` get a ``★`` before their label (explained in a note
    under the chart); a side flagged ``low_n_<side>`` gets a hollow marker and a
    "few observations" line in its hover text. A side with ``n == 0`` has no
    marker.

    Parameters
    ----------
    table : pandas.DataFrame
        Comparison table, one row per item, with columns ``key``, ``n_ru``,
        ``k_ru``, ``p_ru``, ``ci_ru_low``, ``ci_ru_high``, ``low_n_ru``, the same
        for ``foreign``, ``diff`` and ``q_val``.
    labels : mapping or None
        Item id -> label (see :func:`item_label`).
    lang : {"ru", "en"}, default "ru"
        Language of the interface strings.
    key : str, default "practice_id"
        Name of the item id column (``"category_id"`` at category level).
    significance : float, default 0.05
        Threshold for the q-value (Benjamini-Hochberg) that marks a row.
    title : str, optional
        Replaces the default title (plain text, escaped here).

    Returns
    -------
    plotly.graph_objects.Figure
        Traces: the connecting lines, then Russian and foreign markers. Row ``i``
        (from the top) sits at ``y = i``; ``layout.yaxis.ticktext`` holds the labels.

    Examples
    --------
    >>> fig = prevalence_dumbbell(table, {"bonus": "Премия"})  # doctest: +SKIP
    >>> fig.layout.meta["kind"]  # doctest: +SKIP
    'prevalence_dumbbell'
    """
    kind = "prevalence_dumbbell"
    _ = translator(lang)
    _check_significance(significance)
    title = _title(title, _("How often practices were met: Russian and foreign companies"))
    if len(table) == 0:
        return _empty_figure(kind, title, _)
    _require(table, [key, *PREVALENCE_COLUMNS], kind)

    order = _order(_num(table, "diff"), _plain_labels(table, key, labels, lang))
    rows = table.iloc[order].reset_index(drop=True)
    ids = rows[key].tolist()
    q = _num(rows, "q_val")
    significant = q < significance
    ticktext = _row_labels(ids, labels, lang, significant)
    plain = [_escape(item_label(labels, i, lang)) for i in ids]

    fig = go.Figure()
    p = {side: _num(rows, f"p_{side}") for side in _SIDES}
    n = {side: _num(rows, f"n_{side}") for side in _SIDES}
    shown = {side: (n[side] > 0) & ~np.isnan(p[side]) for side in _SIDES}

    both = np.flatnonzero(shown["ru"] & shown["foreign"])
    line_x: list[float | None] = []
    line_y: list[float | None] = []
    for i in both:
        line_x += [float(p["ru"][i]), float(p["foreign"][i]), None]
        line_y += [i + _SIDE_OFFSET["ru"], i + _SIDE_OFFSET["foreign"], None]
    fig.add_trace(
        go.Scatter(
            x=line_x,
            y=line_y,
            mode="lines",
            line={"color": CONNECTOR_COLOR, "width": 2},
            hoverinfo="skip",
            showlegend=False,
            name="connector",
        )
    )

    for side in _SIDES:
        color, symbol = _SIDE_STYLE[side]
        k = _num(rows, f"k_{side}")
        low = _num(rows, f"ci_{side}_low")
        high = _num(rows, f"ci_{side}_high")
        low_n = _flags(rows, f"low_n_{side}")
        idx = np.flatnonzero(shown[side])
        hover = []
        for i in idx:
            lines = [
                f"<b>{plain[i]}</b>",
                _side_name(_, side),
                f"n = {count(n[side][i])}, k = {count(k[i])}",
                _(
                    "share = %(share)s (95%% CI %(ci)s)",
                    share=format_percent(p[side][i]),
                    ci=interval(low[i], high[i]),
                ),
                f"q = {format_p_value(q[i])}",
            ]
            if low_n[i]:
                lines.append("⚠ " + _("few observations"))
            hover.append("<br>".join(lines))
        fig.add_trace(
            go.Scatter(
                x=p[side][idx],
                y=idx + _SIDE_OFFSET[side],
                mode="markers",
                name=_side_name(_, side),
                marker={
                    "color": color,
                    "size": 10,
                    "symbol": [f"{symbol}-open" if low_n[i] else symbol for i in idx],
                    "line": {"color": color, "width": 2},
                },
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": np.clip(high[idx] - p[side][idx], 0, None),
                    "arrayminus": np.clip(p[side][idx] - low[idx], 0, None),
                    "color": color,
                    "thickness": 1.5,
                    "width": 3,
                },
                hovertext=hover,
                hovertemplate="%{hovertext}<extra></extra>",
                cliponaxis=False,
            )
        )

    _rows_layout(fig, ticktext)
    fig.update_xaxes(
        range=[0, 1],
        tickformat=".0%",
        title={"text": _("Share reporting the practice existed (95%% Wilson CI)")},
        zeroline=False,
    )
    _notes(fig, _chart_notes(_, significance))
    return _finish(fig, kind, title, _rows_height(len(rows)))


def paired_dumbbell(
    table: pd.DataFrame,
    labels: Mapping[Any, Any] | None,
    lang: str = "ru",
    key: str = "practice_id",
    significance: float = 0.05,
    *,
    title: str | None = None,
) -> go.Figure:
    """Paired differences with their confidence intervals, one row per item.

    Among respondents who know both kinds of company, ``paired_diff =
    (b - c) / paired_n`` (b: met only in Russian companies, c: only in foreign
    ones) is drawn as a marker with a horizontal error bar to
    ``paired_ci_low``..``paired_ci_high``, next to a vertical line at zero. A
    positive difference (Russian advantage) is blue, a negative one vermillion.

    Rows are sorted by ``paired_diff`` ascending (largest foreign advantage at
    the top, as in :func:`prevalence_dumbbell`); rows without paired respondents
    come last and have no marker. Items with ``paired_q_val < significance`` get
    a ``★`` before their label; items flagged ``low_n_paired`` a hollow marker.

    Parameters
    ----------
    table : pandas.DataFrame
        Comparison table with columns ``key``, ``paired_n``, ``paired_b``,
        ``paired_c``, ``paired_diff``, ``paired_ci_low``, ``paired_ci_high``,
        ``paired_p_val``, ``paired_q_val`` and ``low_n_paired``.
    labels : mapping or None
        Item id -> label (see :func:`item_label`).
    lang : {"ru", "en"}, default "ru"
        Language of the interface strings.
    key : str, default "practice_id"
        Name of the item id column.
    significance : float, default 0.05
        Threshold for ``paired_q_val`` that marks a row.
    title : str, optional
        Replaces the default title (plain text, escaped here).

    Returns
    -------
    plotly.graph_objects.Figure
        One marker trace; the zero line is a layout shape.
    """
    kind = "paired_dumbbell"
    _ = translator(lang)
    _check_significance(significance)
    title = _title(title, _("Paired comparison: respondents who know both kinds of company"))
    if len(table) == 0:
        return _empty_figure(kind, title, _)
    _require(table, [key, *PAIRED_COLUMNS], kind)

    diff_all = _num(table, "paired_diff")
    n_all = _num(table, "paired_n")
    sort_value = np.where(n_all > 0, diff_all, np.nan)
    order = _order(sort_value, _plain_labels(table, key, labels, lang))
    rows = table.iloc[order].reset_index(drop=True)
    ids = rows[key].tolist()
    n = _num(rows, "paired_n")
    diff = _num(rows, "paired_diff")
    low = _num(rows, "paired_ci_low")
    high = _num(rows, "paired_ci_high")
    b = _num(rows, "paired_b")
    c = _num(rows, "paired_c")
    p_val = _num(rows, "paired_p_val")
    q = _num(rows, "paired_q_val")
    low_n = _flags(rows, "low_n_paired")
    significant = q < significance
    ticktext = _row_labels(ids, labels, lang, significant)
    plain = [_escape(item_label(labels, i, lang)) for i in ids]

    idx = np.flatnonzero((n > 0) & ~np.isnan(diff))
    colors = [
        RU_COLOR if diff[i] > 0 else FOREIGN_COLOR if diff[i] < 0 else NEUTRAL_COLOR for i in idx
    ]
    hover = []
    for i in idx:
        lines = [
            f"<b>{plain[i]}</b>",
            _("know both kinds: n = %(n)s", n=count(n[i])),
            _(
                "only in Russian: b = %(b)s; only in foreign: c = %(c)s",
                b=count(b[i]),
                c=count(c[i]),
            ),
            _(
                "difference = %(difference)s (95%% CI %(ci)s)",
                difference=format_difference(diff[i], lang),
                ci=signed_interval(low[i], high[i]),
            ),
            f"p = {format_p_value(p_val[i])}, q = {format_p_value(q[i])}",
        ]
        if low_n[i]:
            lines.append("⚠ " + _("few observations"))
        hover.append("<br>".join(lines))

    fig = go.Figure(
        go.Scatter(
            x=diff[idx],
            y=idx.astype(float),
            mode="markers",
            name=_("Difference in shares"),
            showlegend=False,
            marker={
                "color": colors,
                "size": 10,
                "symbol": ["circle-open" if low_n[i] else "circle" for i in idx],
                "line": {"color": colors, "width": 2},
            },
            error_x={
                "type": "data",
                "symmetric": False,
                "array": np.clip(high[idx] - diff[idx], 0, None),
                "arrayminus": np.clip(diff[idx] - low[idx], 0, None),
                "color": NEUTRAL_COLOR,
                "thickness": 1.5,
                "width": 3,
            },
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
            cliponaxis=False,
        )
    )
    bounds = np.concatenate([np.abs(low[idx]), np.abs(high[idx]), np.abs(diff[idx])])
    bounds = bounds[~np.isnan(bounds)]
    half_width = min(1.0, max(0.1, float(bounds.max()) * 1.1 if bounds.size else 0.1))
    fig.add_vline(x=0, line={"color": "#444444", "width": 1})
    _rows_layout(fig, ticktext)
    fig.update_xaxes(
        range=[-half_width, half_width],
        tickformat=".0%",
        title={"text": _("Difference in shares: Russian − foreign (95%% CI)")},
        zeroline=False,
    )
    _notes(fig, _chart_notes(_, significance))
    return _finish(fig, kind, title, _rows_height(len(rows)))


def rating_diverging(
    table: pd.DataFrame,
    labels: Mapping[Any, Any] | None,
    lang: str = "ru",
    key: str = "practice_id",
    *,
    title: str | None = None,
    scale: Mapping[Any, Any] | None = None,
) -> go.Figure:
    """Diverging stacked bars of the 1-5 ratings, per item and kind of company.

    Each item has two bars, Russian companies above foreign ones. A bar shows
    the shares of that item-kind's ``rating_n`` given to each rating: 1 and 2 to
    the left of zero, 3 split half on each side, 4 and 5 to the right. A side
    with ``rating_n == 0`` has no bar (its row stays, empty).

    Items are sorted by their mean rating pooled over both kinds (computed from
    the histograms), most motivating at the top; items without ratings last.

    Parameters
    ----------
    table : pandas.DataFrame
        Comparison table with columns ``key``, ``rating_n_ru``, ``r1_ru`` ..
        ``r5_ru``, ``rating_n_foreign`` and ``r1_foreign`` .. ``r5_foreign``.
    labels : mapping or None
        Item id -> label (see :func:`item_label`).
    lang : {"ru", "en"}, default "ru"
        Language of the interface strings.
    key : str, default "practice_id"
        Name of the item id column.
    title : str, optional
        Replaces the default title (plain text, escaped here).
    scale : mapping, optional
        Rating (1..5, or its code ``"1"``..``"5"``) -> its label, or -> ``{"ru": label,
        "en": label}``: the questionnaire's answer options, so that a rating reads the
        same as where it was given. A rating without a label shows as its number.

    Returns
    -------
    plotly.graph_objects.Figure
        Six bar traces in ``barmode="relative"``, in stacking order: rating 3
        (left half), rating 3 (right half), 2, 4, 1, 5. The legend shows the five
        ratings in order. Item ``i`` has its Russian bar at ``y = 3 * i`` and its
        foreign bar at ``y = 3 * i + 1``; x values are signed shares.
    """
    kind = "rating_diverging"
    _ = translator(lang)
    title = _title(title, _("Effect of practices on motivation: distribution of ratings"))
    if len(table) == 0:
        return _empty_figure(kind, title, _)
    levels = RATINGS
    _require(table, [key, *RATING_COLUMNS], kind)
    names = {level: _escape(item_label(scale, level, lang)) for level in levels}

    weights = np.asarray(RATINGS, dtype=float)
    hist_all = sum(
        np.column_stack([np.nan_to_num(_num(table, f"r{level}_{side}")) for level in levels])
        for side in _SIDES
    )
    totals = hist_all.sum(axis=1)
    pooled_mean = np.divide(
        hist_all @ weights, totals, out=np.full(len(totals), np.nan), where=totals > 0
    )
    order = _order(-pooled_mean, _plain_labels(table, key, labels, lang))
    rows = table.iloc[order].reset_index(drop=True)
    ids = rows[key].tolist()
    plain = [_escape(item_label(labels, i, lang)) for i in ids]

    # One bar position per item and side; positions 3i (Russian) and 3i + 1 (foreign).
    positions: list[float] = []
    ticktext: list[str] = []
    bars: list[tuple[int, str, float, np.ndarray]] = []  # (item, side, n, counts)
    for i in range(len(rows)):
        for offset, side in enumerate(_SIDES):
            positions.append(3 * i + offset)
            ticktext.append(
                _("%(item)s — Russian", item=plain[i]) if side == "ru" else _("foreign")
            )
    for side in _SIDES:
        n = _num(rows, f"rating_n_{side}")
        counts = np.column_stack(
            [np.nan_to_num(_num(rows, f"r{level}_{side}")) for level in levels]
        )
        for i in np.flatnonzero(n > 0):
            bars.append((int(i), side, float(n[i]), counts[i]))
    bars.sort(key=lambda bar: (bar[0], _SIDES.index(bar[1])))

    fig = go.Figure()
    # Stacking order in relative mode: the first trace with a negative (positive)
    # value is drawn next to zero, so 3 comes first, then 2 / 4, then 1 / 5.
    segments = [(3, -0.5), (3, 0.5), (2, -1.0), (4, 1.0), (1, -1.0), (5, 1.0)]
    for level, sign in segments:
        x, y, text, hover = [], [], [], []
        for i, side, n, counts in bars:
            share = counts[level - 1] / n
            x.append(sign * share)
            y.append(3 * i + _SIDES.index(side))
            text.append(format_percent(share, 0) if level != 3 and share >= 0.1 else "")
            hover.append(
                f"<b>{plain[i]}</b><br>{_side_name(_, side)}<br>{names[level]}: "
                + _(
                    "%(count)s of %(total)s (%(share)s)",
                    count=count(counts[level - 1]),
                    total=count(n),
                    share=format_percent(share),
                )
            )
        first_half = not (level == 3 and sign > 0)
        fig.add_trace(
            go.Bar(
                x=x,
                y=y,
                orientation="h",
                name=names[level],
                legendgroup=f"rating_{level}",
                legendrank=level,
                showlegend=first_half,
                marker={"color": RATING_COLORS[level - 1], "line": {"width": 0}},
                text=text,
                textposition="inside",
                insidetextanchor="middle",
                textfont={"size": 10},
                hovertext=hover,
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    fig.add_vline(x=0, line={"color": "#444444", "width": 1})
    ticks = [-1.0, -0.5, 0.0, 0.5, 1.0]
    fig.update_xaxes(
        range=[-1, 1],
        tickvals=ticks,
        ticktext=[format_percent(abs(t), 0) if t else "0" for t in ticks],
        title={"text": _("← demotivating   share of ratings   motivating →")},
        zeroline=False,
    )
    fig.update_yaxes(
        tickmode="array",
        tickvals=positions,
        ticktext=ticktext,
        range=[3 * len(rows) - 1.5, -0.5],
        automargin=True,
        showgrid=False,
        zeroline=False,
    )
    fig.update_layout(
        barmode="relative",
        bargap=0.15,
        legend={"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom", "traceorder": "normal"},
    )
    # Room for a legend of five long labels that may wrap onto two lines.
    height = MARGIN_HEIGHT + 30 + int(ROW_HEIGHT * 0.8) * (3 * len(rows) - 1)
    return _finish(fig, kind, title, height, margin_top=130)


def fieldwork_daily(daily: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """Bar chart of completed responses per day, with links opened and consents given
    per day as lines when the frame has them.

    Parameters
    ----------
    daily : pandas.DataFrame
        Columns ``day`` (date) and ``completed`` (int), one row per day; rows are
        sorted by day here. Optional columns ``opened`` and ``consented`` (int) are
        drawn as lines when any of their values is above zero.
    lang : {"ru", "en"}, default "ru"
        Language of the interface strings.

    Returns
    -------
    plotly.graph_objects.Figure
        One bar trace (then a line per optional column drawn); x holds ISO dates
        (``YYYY-MM-DD``).
    """
    kind = "fieldwork_daily"
    _ = translator(lang)
    if len(daily) == 0:
        return _empty_figure(kind, _(DAILY_TITLE, total=0), _)
    _require(daily, ["day", "completed"], kind)
    frame = pd.DataFrame(
        {"day": pd.to_datetime(daily["day"]), "completed": _num(daily, "completed")}
    ).sort_values("day", kind="mergesort")
    completed = np.nan_to_num(frame["completed"].to_numpy(dtype=float))
    fig = go.Figure(
        go.Bar(
            x=frame["day"].dt.strftime("%Y-%m-%d").tolist(),
            y=completed,
            marker={"color": RU_COLOR},
            name=_("Responses"),
            hovertemplate="%{x|%d.%m.%Y}: %{y}<extra></extra>",
        )
    )
    days = pd.to_datetime(daily["day"])
    for column, color in (("opened", NEUTRAL_COLOR), ("consented", FOREIGN_COLOR)):
        if column in daily and np.nan_to_num(_num(daily, column)).sum() > 0:
            line = pd.DataFrame({"day": days, "n": np.nan_to_num(_num(daily, column))})
            line = line.sort_values("day", kind="mergesort")
            fig.add_trace(
                go.Scatter(
                    x=line["day"].dt.strftime("%Y-%m-%d").tolist(),
                    y=line["n"].to_numpy(),
                    mode="lines+markers",
                    line={"color": color},
                    name=_(DAILY_LINES[column]),
                    hovertemplate="%{x|%d.%m.%Y}: %{y}<extra></extra>",
                )
            )
    fig.update_xaxes(type="date", tickformat="%d.%m" if lang == "ru" else "%d %b")
    fig.update_yaxes(title={"text": _("Responses")}, rangemode="tozero")
    if len(fig.data) > 1:
        fig.update_layout(legend={"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom"})
    title = _(DAILY_TITLE, total=count(completed.sum()))
    return _finish(fig, kind, title, 360)


def dropoff(pages: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """Funnel-like bar chart of how many respondents reached each page.

    Parameters
    ----------
    pages : pandas.DataFrame
        Columns ``page`` (label) and ``reached`` (int), in page order; the first
        page is drawn at the top and is the base of the percentages.
    lang : {"ru", "en"}, default "ru"
        Language of the interface strings.

    Returns
    -------
    plotly.graph_objects.Figure
        One horizontal bar trace; bar text is "count (share of the first page)".
    """
    kind = "dropoff"
    _ = translator(lang)
    title = _("How many respondents reached each page")
    if len(pages) == 0:
        return _empty_figure(kind, title, _)
    _require(pages, ["page", "reached"], kind)
    reached = np.nan_to_num(_num(pages, "reached"))
    start = reached[0]
    names = _unique([_escape(str(page)) for page in pages["page"].tolist()])
    text = [f"{count(r)} ({format_percent(r / start)})" if start > 0 else count(r) for r in reached]
    hover = [
        f"{name}: {count(r)}"
        + (
            " (" + _("%(share)s of those who started", share=format_percent(r / start)) + ")"
            if start > 0
            else ""
        )
        for name, r in zip(names, reached, strict=True)
    ]
    fig = go.Figure(
        go.Bar(
            x=reached,
            y=names,
            orientation="h",
            marker={"color": RU_COLOR},
            text=text,
            textposition="auto",
            name=_("Respondents"),
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
        )
    )
    _category_rows_layout(fig, names)
    fig.update_xaxes(title={"text": _("Respondents")}, rangemode="tozero")
    return _finish(fig, kind, title, _rows_height(len(names), margin=140))


def funnel_chart(
    steps: pd.DataFrame, series: Sequence[str] = ("n",), lang: str = "ru"
) -> go.Figure:
    """Funnel of how many respondents reached each step, one stacked series per channel.

    Parameters
    ----------
    steps : pandas.DataFrame
        Column ``label`` (the step's name, drawn top to bottom in the given order) and
        one count column per name in ``series``.
    series : sequence of str, default ("n",)
        The count columns, one funnel trace each, stacked (their sum is the step's total);
        the column name is the trace's name.
    lang : {"ru", "en"}, default "ru"
        Language of the interface strings.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``funnel`` trace per series; the hover text gives the count and, from the
        second step on, its share of the second step's total (consents) when above zero.
    """
    kind = "funnel_chart"
    _ = translator(lang)
    title = _("Funnel: how many respondents reached each step")
    if len(steps) == 0 or not series:
        return _empty_figure(kind, title, _)
    _require(steps, ["label", *series], kind)
    names = _unique([_escape(str(label)) for label in steps["label"].tolist()])
    values = {name: np.nan_to_num(_num(steps, name)) for name in series}
    totals = np.sum(list(values.values()), axis=0)
    base = totals[1] if len(totals) > 1 else totals[0]
    fig = go.Figure()
    palette = (RU_COLOR, FOREIGN_COLOR, "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
    for i, name in enumerate(series):
        counts = values[name]
        hover = [
            f"{_escape(str(name))} — {step}: {count(v)}"
            + (
                " (" + _("%(share)s of those who consented", share=format_percent(v / base)) + ")"
                if base > 0 and j
                else ""
            )
            for j, (step, v) in enumerate(zip(names, counts, strict=True))
        ]
        fig.add_trace(
            go.Funnel(
                y=names,
                x=counts,
                name=_escape(str(name)),
                textinfo="value",
                marker={"color": palette[i % len(palette)]},
                hovertext=hover,
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    fig.update_layout(
        funnelmode="stack",
        showlegend=len(series) > 1,
        legend={"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom"},
    )
    fig.update_yaxes(automargin=True)
    return _finish(fig, kind, title, _rows_height(len(names), margin=160))


def channel_bars(channels: pd.DataFrame, lang: str = "ru") -> go.Figure:
    """Grouped bars per channel: links opened, started (consents), completed.

    Parameters
    ----------
    channels : pandas.DataFrame
        Columns ``channel`` (name, drawn top to bottom in the given order), ``opened``,
        ``started`` and ``completed`` (int).
    lang : {"ru", "en"}, default "ru"
        Language of the interface strings.

    Returns
    -------
    plotly.graph_objects.Figure
        Three horizontal bar traces (opened, started, completed), grouped per channel.
    """
    kind = "channel_bars"
    _ = translator(lang)
    title = _("Channels: links opened, started, completed")
    if len(channels) == 0:
        return _empty_figure(kind, title, _)
    _require(channels, ["channel", "opened", "started", "completed"], kind)
    names = _unique([_escape(str(name)) for name in channels["channel"].tolist()])
    fig = go.Figure()
    colors = {"opened": NEUTRAL_COLOR, "started": FOREIGN_COLOR, "completed": RU_COLOR}
    for column, color in colors.items():
        counts = np.nan_to_num(_num(channels, column))
        name = _(CHANNEL_COUNTS[column])
        fig.add_trace(
            go.Bar(
                x=counts,
                y=names,
                orientation="h",
                name=name,
                marker={"color": color},
                text=[count(v) for v in counts],
                textposition="auto",
                hovertemplate=f"%{{y}} — {name}: %{{x}}<extra></extra>",
            )
        )
    fig.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=names,
        autorange="reversed",
        automargin=True,
    )
    fig.update_xaxes(title={"text": _("Count")}, rangemode="tozero")
    fig.update_layout(
        barmode="group", legend={"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom"}
    )
    height = 140 + 3 * ROW_HEIGHT * max(len(names), 1)
    return _finish(fig, kind, title, height)


def background_bars(counts: pd.DataFrame, title: str, lang: str = "ru") -> go.Figure:
    """Horizontal bar chart describing the sample on one background question.

    Parameters
    ----------
    counts : pandas.DataFrame
        Columns ``label`` and ``n``, drawn top to bottom in the given order.
    title : str
        Chart title (plain text, escaped here).
    lang : {"ru", "en"}, default "ru"
        Language of the interface strings.

    Returns
    -------
    plotly.graph_objects.Figure
        One horizontal bar trace; bar text is "n (share of the total)".
    """
    kind = "background_bars"
    _ = translator(lang)
    title = _escape(title)
    if len(counts) == 0:
        return _empty_figure(kind, title, _)
    _require(counts, ["label", "n"], kind)
    n = np.nan_to_num(_num(counts, "n"))
    total = n.sum()
    names = _unique([_escape(str(label)) for label in counts["label"].tolist()])
    text = [f"{count(v)} ({format_percent(v / total)})" if total > 0 else count(v) for v in n]
    if "display" in counts:  # counts withheld by disclosure control keep their own text
        shown = counts["display"].astype(str).tolist()
        text = [
            t if np.isfinite(v) else shown[i]
            for i, (t, v) in enumerate(zip(text, _num(counts, "n"), strict=True))
        ]
    fig = go.Figure(
        go.Bar(
            x=n,
            y=names,
            orientation="h",
            marker={"color": RU_COLOR},
            text=text,
            textposition="auto",
            name=_("Respondents"),
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    _category_rows_layout(fig, names)
    fig.update_xaxes(title={"text": _("Respondents")}, rangemode="tozero")
    return _finish(fig, kind, title, _rows_height(len(names), margin=140))


# --------------------------------------------------------------------------- output


def figure_div(fig: go.Figure, *, div_id: str | None = None) -> str:
    """Render a figure as an HTML ``<div>`` that expects plotly.js on the page.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
        The figure.
    div_id : str, optional
        Id of the plot's ``<div>``; a random UUID when omitted.

    Returns
    -------
    str
        The ``<div>`` with its inline ``Plotly.newPlot`` script; plotly.js itself
        is not included (see :func:`plotly_js_path`).
    """
    return pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=False,
        config={"displaylogo": False, "responsive": True},
        div_id=div_id,
    )


def plotly_js_path() -> Path:
    """Return the path of the ``plotly.min.js`` shipped in the installed plotly package.

    Returns
    -------
    pathlib.Path
        ``<site-packages>/plotly/package_data/plotly.min.js``, the bundle that
        ``plotly.offline.get_plotlyjs()`` reads.

    Raises
    ------
    FileNotFoundError
        If the installed plotly does not ship the bundle as a file.
    """
    path = Path(str(resources.files("plotly").joinpath("package_data", "plotly.min.js")))
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js not found in the plotly package: {path}")
    return path


# --------------------------------------------------------------------------- internals


def _check_significance(significance: float) -> None:
    if not 0 < significance < 1:
        raise ValueError(f"significance must be between 0 and 1, got {significance!r}")


def _require(frame: pd.DataFrame, columns: Sequence[str], builder: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{builder}: missing columns {missing}")


def _num(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Column as a float array, missing values as NaN."""
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _flags(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Column as a bool array, missing values as False."""
    return np.array([bool(v) if present(v) else False for v in frame[column]], dtype=bool)


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _title(title: str | None, default: str) -> str:
    return default if title is None else _escape(title)


def _plain_labels(
    frame: pd.DataFrame, key: str, labels: Mapping[Any, Any] | None, lang: str
) -> list[str]:
    return [item_label(labels, item_id, lang) for item_id in frame[key].tolist()]


def _order(values: np.ndarray, tiebreak: Sequence[str]) -> np.ndarray:
    """Positions sorting ``values`` ascending (NaN last), ties by ``tiebreak``."""
    frame = pd.DataFrame({"value": values, "tiebreak": list(tiebreak)})
    ordered = frame.sort_values(["value", "tiebreak"], na_position="last", kind="mergesort")
    return ordered.index.to_numpy()


def _unique(texts: list[str]) -> list[str]:
    """Make repeated texts distinct (a category axis merges equal labels)."""
    seen: Counter[str] = Counter()
    result = []
    for text in texts:
        seen[text] += 1
        result.append(text if seen[text] == 1 else f"{text} ({seen[text]})")
    return result


def _row_labels(
    ids: list[Any], labels: Mapping[Any, Any] | None, lang: str, significant: np.ndarray
) -> list[str]:
    texts = [_escape(item_label(labels, item_id, lang)) for item_id in ids]
    return [
        f"{STAR} {text}" if flag else text for text, flag in zip(texts, significant, strict=True)
    ]


def _rows_height(n_rows: int, margin: int = MARGIN_HEIGHT) -> int:
    return margin + ROW_HEIGHT * max(n_rows, 1)


def _rows_layout(fig: go.Figure, ticktext: list[str]) -> None:
    """Numeric rows 0..n-1 from top to bottom, labelled by ``ticktext``."""
    n_rows = len(ticktext)
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(range(n_rows)),
        ticktext=ticktext,
        range=[n_rows - 0.5, -0.5],
        automargin=True,
        zeroline=False,
    )
    fig.update_layout(
        legend={"orientation": "h", "x": 0, "y": 1, "yanchor": "bottom"},
        hovermode="closest",
    )


def _category_rows_layout(fig: go.Figure, names: list[str]) -> None:
    """Category rows in the given order, from top to bottom."""
    fig.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=names,
        autorange="reversed",
        automargin=True,
    )
    fig.update_layout(showlegend=False)


def _side_name(_, side: str) -> str:
    return _("Russian companies") if side == "ru" else _("Foreign companies")


def _chart_notes(_, significance: float) -> list[str]:
    """The notes under a comparison chart: what the star and the hollow markers mean."""
    alpha = f"{significance:g}"
    return [
        _(
            "%(star)s — significant difference: q < %(alpha)s (Benjamini–Hochberg correction)",
            star=STAR,
            alpha=alpha,
        ),
        _("hollow markers — few observations, unstable estimate"),
    ]


def _notes(fig: go.Figure, notes: list[str]) -> None:
    """Explanatory notes under the x-axis title."""
    fig.add_annotation(
        text="<br>".join(notes),
        xref="paper",
        yref="paper",
        x=0,
        y=0,
        xanchor="left",
        yanchor="top",
        yshift=-62,
        showarrow=False,
        align="left",
        font={"size": 11, "color": "#555555"},
    )
    fig.update_layout(margin={"b": 125})


def _empty_figure(kind: str, title: str, _) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=_("No data"),
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 16, "color": "#555555"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _finish(fig, kind, title, 300)


def _finish(fig: go.Figure, kind: str, title: str, height: int, margin_top: int = 100) -> go.Figure:
    """Apply what every figure shares: template, title, meta, height."""
    fig.update_layout(
        template=TEMPLATE,
        title={
            "text": title,
            "x": 0,
            "xanchor": "left",
            "y": 1,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 14},
        },
        meta={"kind": kind},
        height=height,
        margin={"t": margin_top},
        font={"family": "Arial, Helvetica, sans-serif"},
    )
    return fig
