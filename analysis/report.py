"""Self-contained HTML report of the Russian-vs-foreign comparison.

:func:`render_report` returns one HTML document as a string: inline CSS, the
plotly.js bundle inlined once in ``<head>``, and no reference to any external
URL, so the file opens offline and prints legibly. Every text that comes from
the data or the caller is escaped with :func:`html.escape`. Numbers are rounded
here only for display; :func:`format_comparison` gives the same display strings
as a DataFrame for other views.
"""

import datetime as dt
import html
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from plotly.offline import get_plotlyjs

from analysis.figures import (
    MISSING,
    STAR,
    figure_div,
    format_p_value,
    format_percent,
    item_label,
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

_UI: dict[str, dict[str, str]] = {
    "ru": {
        "title": "Мотивационные практики в российских и иностранных компаниях: отчёт",
        "demo": "ДЕМО-ДАННЫЕ (синтетические)",
        "demo_note": (
            "Все числа ниже получены на синтетических данных и не описывают реальных людей."
        ),
        "pilot": "Включает ответы ПИЛОТНОЙ волны",
        "pilot_note": "Основной анализ оставляет ответы пилотных волн в стороне.",
        "generated_on": "Дата формирования",
        "filters": "Фильтры",
        "filters_none": "нет",
        "sample": "Выборка",
        "n_respondents": "Респондентов",
        "option": "Вариант",
        "assumptions": "Допущения и методы",
        "comparison": "Сравнение по практикам",
        "categories": "Сравнение по категориям практик",
        "category_chart": "Категории практик: российские и иностранные компании",
        "prevalence": "Распространённость практик",
        "paired": "Парное сравнение",
        "ratings": "Оценки влияния на мотивацию",
        "item": "Практика",
        "category": "Категория",
        "no_rows": "Нет данных",
        "chi2": "χ²",
        "fisher": "Фишер",
        "overlap_z": "z (пересек. выборки)",
        "note_share": (
            "n — ответившие «была» (касалась их или нет; до декабря 2026 г. «встречал(а)») "
            "или «не было» о компаниях этого типа; доля — ответившие, что практика была, "
            "с 95% доверительным интервалом Уилсона. "
            "Разница — российские минус иностранные, в процентных пунктах."
        ),
        "note_tests": (
            "Основной тест — z-тест для частично пересекающихся выборок (Derrick и др., "
            "2015): респонденты, работавшие в компаниях обоих типов, отвечают о каждом, "
            "поэтому выборки не независимы; тест использует все ответы и корреляцию парных, "
            "интервал разницы — MOVER-интервал Ньюкомба с этой корреляцией. "
            "q — p-значение с поправкой Бенджамини–Хохберга на множественные сравнения."
        ),
        "note_paired": (
            "Парное сравнение — только респонденты, знающие оба типа компаний: "
            "b — практика была только в российских, c — только в иностранных; "
            "p — критерий Мак-Немара."
        ),
        "note_ratings": (
            "Оценки: среднее по шкале 1–5; p и q — t-тест для частично пересекающихся "
            "выборок (Derrick и др., 2017) и его поправка Бенджамини–Хохберга."
        ),
        "note_star": "{star} — q < {alpha}.",
        "note_low_n": "{mark} — мало наблюдений хотя бы в одной из групп; оценки неустойчивы.",
        "note_bounds": (
            "Категория считается встреченной, если встречена хотя бы одна её практика, и "
            "невстреченной, если ответ «нет» дан по всем её практикам. Показана доля без "
            "неопределённых ответов (ни одного «да», хотя бы одно «не знаю»); границы — та же "
            "доля, если все неопределённые считать «нет» (нижняя) или «да» (верхняя)."
        ),
    },
    "en": {
        "title": "Motivation practices in Russian and foreign companies: report",
        "demo": "DEMO DATA (synthetic)",
        "demo_note": "Every number below comes from synthetic data and describes no real person.",
        "pilot": "Includes PILOT responses",
        "pilot_note": "The main analysis leaves the responses of pilot waves out.",
        "generated_on": "Generated on",
        "filters": "Filters",
        "filters_none": "none",
        "sample": "Sample",
        "n_respondents": "Respondents",
        "option": "Option",
        "assumptions": "Assumptions and methods",
        "comparison": "Comparison by practice",
        "categories": "Comparison by category of practice",
        "category_chart": "Categories of practice: Russian and foreign companies",
        "prevalence": "Prevalence of practices",
        "paired": "Paired comparison",
        "ratings": "Ratings of the effect on motivation",
        "item": "Practice",
        "category": "Category",
        "no_rows": "No data",
        "chi2": "χ²",
        "fisher": "Fisher",
        "overlap_z": "overlap z",
        "note_share": (
            "n — respondents who answered that the practice existed (whether or not it applied "
            "to them; before December 2026 “met”) or did not exist in companies of that kind; "
            "share — those who said it existed, with a 95% Wilson confidence interval. "
            "Difference — Russian minus foreign, in percentage points."
        ),
        "note_tests": (
            "Primary test — the partially overlapping samples z-test (Derrick et al., 2015): "
            "respondents who worked in both kinds of company answer about both, so the samples "
            "are not independent; the test uses every answer and the correlation of the paired "
            "ones, and the interval of the difference is Newcombe's MOVER interval with that "
            "correlation. q — p-value adjusted for multiple comparisons (Benjamini–Hochberg)."
        ),
        "note_paired": (
            "Paired comparison — only respondents who know both kinds of company: "
            "b — met the practice only in Russian companies, c — only in foreign ones; "
            "p — McNemar's test."
        ),
        "note_ratings": (
            "Ratings: mean on the 1–5 scale; p and q — the partially overlapping samples "
            "t-test (Derrick et al., 2017) and its Benjamini–Hochberg adjustment."
        ),
        "note_star": "{star} — q < {alpha}.",
        "note_low_n": "{mark} — few observations in at least one group; unstable estimates.",
        "note_bounds": (
            "A category counts as met if at least one of its practices was met, and as not "
            "met if every one of its practices was answered “no”. The share shown leaves out "
            "the undetermined respondents (no “yes”, at least one “don't know”); the bounds "
            "are the share with all of them counted as “no” (lower) or as “yes” (upper)."
        ),
    },
}


_CSS = """
*{box-sizing:border-box}
body{font-family:Arial,Helvetica,sans-serif;color:#222;margin:0 auto;max-width:1200px;
padding:16px 24px;line-height:1.45;font-size:15px;background:#fff}
h1{font-size:1.6em;margin:.4em 0}h2{font-size:1.25em;margin:1.6em 0 .5em;
border-bottom:1px solid #ccc;padding-bottom:.2em}
.demo-banner{border:3px solid #b2182b;color:#b2182b;background:#fdecea;font-weight:bold;
font-size:1.3em;text-align:center;padding:10px;margin:8px 0}
.demo-banner small{display:block;font-size:.65em;font-weight:normal}
.meta{color:#555}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:top}
th{background:#f2f2f2;text-align:center}
td.label,th.label{text-align:left}
.table-wrap{overflow-x:auto}
table.comparison{font-size:.8em}
table.comparison td{white-space:nowrap}
table.comparison td.label{white-space:normal;min-width:14em}
tr.low-n td{color:#666;font-style:italic}
tr.significant td.label{font-weight:bold}
.sample-grid{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
table.small{font-size:.85em}
table.small caption{font-weight:bold;text-align:left;padding-bottom:2px}
.notes{font-size:.8em;color:#444}
.notes p{margin:.2em 0}
.chart{margin:1em 0;break-inside:avoid;page-break-inside:avoid}
@page{size:A4 landscape;margin:12mm}
@media print{body{max-width:none;padding:0;font-size:10pt}
.table-wrap{overflow:visible}table.comparison{font-size:7pt}
.demo-banner{-webkit-print-color-adjust:exact;print-color-adjust:exact}
h2{break-after:avoid;page-break-after:avoid}tr{break-inside:avoid}}
"""


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
    ui = _ui(lang)
    required = [key, *(c for shown in REPORT if shown.key is None for c in shown.sources)]
    missing = [c for c in [*required, "low_n"] if c not in table.columns]
    if missing:
        raise ValueError(f"format_comparison: missing columns {missing}")
    q_val = _numbers(table, "q_val")
    out = pd.DataFrame(
        {
            "label": [item_label(labels, item_id, lang) for item_id in table[key].tolist()],
            **{shown.name: _shown(table, shown, ui, significance) for shown in REPORT},
            "low_n": [bool(v) if _present(v) else False for v in table["low_n"]],
            "significant": [v < significance for v in q_val],
        },
        index=pd.RangeIndex(len(table)),
    )
    _mark_withheld(out, table)
    return out.astype({"low_n": bool, "significant": bool})


def _numbers(table: pd.DataFrame, column: str) -> list[float]:
    values = pd.to_numeric(table[column], errors="coerce")
    return values.to_numpy(dtype=float, na_value=np.nan).tolist()


def _shown(table: pd.DataFrame, shown: Shown, ui: dict[str, str], significance: float) -> list[str]:
    """One column of :func:`format_comparison`, written from its sources in its style; a
    dash throughout when the table lacks an optional column's sources."""
    if any(c not in table.columns for c in shown.sources):
        return [MISSING] * len(table)
    if shown.style == "test":
        names = {name: ui[name] for name in ("chi2", "fisher", "overlap_z")}
        return [
            names.get(str(t), MISSING) if _present(t) else MISSING for t in table[shown.sources[0]]
        ]
    values = [_numbers(table, c) for c in shown.sources]
    if shown.style == "interval":
        return _intervals(*values)
    if shown.style == "difference":
        return [_difference(*v) for v in zip(*values, strict=True)]
    if shown.style == "q":
        return [format_p_value(v) + (f" {STAR}" if v < significance else "") for v in values[0]]
    one = {
        "count": _count,
        "percent": format_percent,
        "p": format_p_value,
        "signed": lambda v: _signed(v, 2),
        "decimal": lambda v: _decimal(v, 2),
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
    ui = _ui(lang)
    doc_title = title if title is not None else ui["title"]
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(doc_title)}</title>",
        f"<style>{_CSS}</style>",
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>",
        f"<script>{_plotly_js()}</script>",
        "</head>",
        "<body>",
    ]
    if demo:
        parts.append(
            f'<div class="demo-banner" role="alert">{_e(ui["demo"])}'
            f"<small>{_e(ui['demo_note'])}</small></div>"
        )
    if pilot:
        parts.append(
            f'<div class="demo-banner" role="note">{_e(ui["pilot"])}'
            f"<small>{_e(ui['pilot_note'])}</small></div>"
        )
    parts.append(f"<header><h1>{_e(doc_title)}</h1>")
    if generated_on is not None:
        when = generated_on.isoformat() if isinstance(generated_on, dt.date) else generated_on
        parts.append(f'<p class="meta">{_e(ui["generated_on"])}: {_e(str(when))}</p>')
    parts.append("</header>")
    parts.append(_filters_section(filters, ui))
    parts.append(_sample_section(sample, ui))
    parts.append(_assumptions_section(assumptions, ui))

    parts.append(f'<section id="comparison"><h2>{_e(ui["comparison"])}</h2>')
    parts.append(_comparison_table(table, labels, lang, "practice_id", ui["item"]))
    parts.append("</section>")
    charts = [
        ("prevalence", prevalence_dumbbell(table, labels, lang)),
        ("paired", paired_dumbbell(table, labels, lang)),
        ("ratings", rating_diverging(table, labels, lang)),
    ]
    for name, fig in charts:
        parts.append(f'<section id="{name}"><h2>{_e(ui[name])}</h2>')
        parts.append(f'<div class="chart">{figure_div(fig, div_id=f"fig-{name}")}</div>')
        parts.append("</section>")

    if category_table is not None:
        parts.append(f'<section id="categories"><h2>{_e(ui["categories"])}</h2>')
        parts.append(
            _comparison_table(category_table, category_labels, lang, "category_id", ui["category"])
        )
        fig = prevalence_dumbbell(
            category_table,
            category_labels,
            lang,
            key="category_id",
            title=ui["category_chart"],
        )
        parts.append(f'<div class="chart">{figure_div(fig, div_id="fig-categories")}</div>')
        parts.append("</section>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- sections


def _filters_section(filters: Mapping[str, Any] | None, ui: dict[str, str]) -> str:
    head = f'<section id="filters"><h2>{_e(ui["filters"])}</h2>'
    if not filters:
        return f"{head}<p>{_e(ui['filters_none'])}</p></section>"
    rows = "".join(
        f'<tr><th class="label" scope="row">{_e(str(name))}</th>'
        f'<td class="label">{_e(_filter_value(value))}</td></tr>'
        for name, value in filters.items()
    )
    return f'{head}<table class="small"><tbody>{rows}</tbody></table></section>'


def _filter_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return ", ".join(str(v) for v in value)
    return str(value)


def _sample_section(sample: Mapping[str, Any], ui: dict[str, str]) -> str:
    if "n_respondents" not in sample:
        raise ValueError("sample must have an 'n_respondents' entry")
    parts = [
        f'<section id="sample"><h2>{_e(ui["sample"])}</h2>',
        f"<p>{_e(ui['n_respondents'])}: <strong>{_e(str(sample['n_respondents']))}</strong></p>",
        '<div class="sample-grid">',
    ]
    for dimension, counts in (sample.get("background") or {}).items():
        # A count withheld by disclosure control arrives as its text ("< 10").
        pairs = [(str(label), n if isinstance(n, str) else int(n)) for label, n in counts]
        total = sum(n for _, n in pairs if not isinstance(n, str))
        if any(isinstance(n, str) for _, n in pairs):
            total = int(sample["n_respondents"])
        rows = "".join(
            f'<tr><td class="label">{_e(label)}</td><td>{_e(str(n))}</td>'
            f"<td>{MISSING if isinstance(n, str) or not total else format_percent(n / total)}"
            "</td></tr>"
            for label, n in pairs
        )
        parts.append(
            f'<table class="small"><caption>{_e(str(dimension))}</caption>'
            f'<thead><tr><th class="label">{_e(ui["option"])}</th><th>n</th><th>%</th></tr>'
            f"</thead><tbody>{rows}</tbody></table>"
        )
    parts.append("</div></section>")
    return "".join(parts)


def _assumptions_section(assumptions: str, ui: dict[str, str]) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", assumptions or "") if p.strip()]
    body = "".join(f"<p>{_e(p)}</p>" for p in paragraphs)
    return f'<section id="assumptions"><h2>{_e(ui["assumptions"])}</h2>{body}</section>'


def _comparison_table(
    table: pd.DataFrame,
    labels: Mapping[Any, Any] | None,
    lang: str,
    key: str,
    item_header: str,
) -> str:
    ui = _UI[lang]
    shown = format_comparison(table, labels, lang, key)
    columns = report_columns(key)
    # The columns of one level only (each kind's don't-know bounds at category level) get
    # their note.
    bounds = any(c.key == key for c in columns)
    spans = {band: sum(c.band == band for c in columns) for band in BANDS}
    group = (
        f'<tr><th class="label" rowspan="2" scope="col">{_e(item_header)}</th>'
        + "".join(
            f'<th colspan="{span}">{_e(BANDS[band][lang])}</th>'
            for band, span in spans.items()
            if span
        )
        + "</tr>"
    )
    second = (
        "<tr>" + "".join(f'<th scope="col">{_e(getattr(c, lang))}</th>' for c in columns) + "</tr>"
    )
    cells = [c.name for c in columns]
    body = []
    for row in shown.itertuples(index=False):
        label = _e(row.label) + (f" {LOW_N_MARK}" if row.low_n else "")
        tr_class = " ".join(
            name for name, on in (("low-n", row.low_n), ("significant", row.significant)) if on
        )
        attr = f' class="{tr_class}"' if tr_class else ""
        tds = "".join(f"<td>{_e(getattr(row, c))}</td>" for c in cells)
        body.append(f'<tr{attr}><td class="label">{label}</td>{tds}</tr>')
    if not body:
        body.append(
            f'<tr><td class="label" colspan="{len(cells) + 1}">{_e(ui["no_rows"])}</td></tr>'
        )
    notes = [
        ui["note_share"],
        ui["note_tests"],
        ui["note_paired"],
        ui["note_ratings"],
        ui["note_star"].format(star=STAR, alpha=f"{SIGNIFICANCE:g}"),
        ui["note_low_n"].format(mark=LOW_N_MARK),
        *([ui["note_bounds"]] if bounds else []),
    ]
    return (
        '<div class="table-wrap"><table class="comparison">'
        f"<thead>{group}{second}</thead><tbody>{''.join(body)}</tbody></table></div>"
        '<div class="notes">' + "".join(f"<p>{_e(n)}</p>" for n in notes) + "</div>"
    )


# --------------------------------------------------------------------------- internals


def _ui(lang: str) -> dict[str, str]:
    if lang not in _UI:
        raise ValueError(f"lang must be one of {tuple(_UI)}, got {lang!r}")
    return _UI[lang]


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    """The plotly.js bundle, safe to place inside a ``<script>`` element."""
    return re.sub(r"</(script)", r"<\\/\1", get_plotlyjs(), flags=re.IGNORECASE)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _present(value: Any) -> bool:
    if value is None or value is pd.NA:
        return False
    return not (isinstance(value, float) and np.isnan(value))


def _count(value: float) -> str:
    return MISSING if np.isnan(value) else str(round(value))


def _decimal(value: float, decimals: int) -> str:
    return MISSING if np.isnan(value) else f"{value:.{decimals}f}"


def _signed(value: float, decimals: int) -> str:
    if np.isnan(value):
        return MISSING
    if round(value, decimals) == 0:
        return f"{0:.{decimals}f}"
    return f"{value:+.{decimals}f}".replace("-", "−")


def _intervals(low: list[float], high: list[float]) -> list[str]:
    return [
        MISSING
        if np.isnan(lo) or np.isnan(hi)
        else f"{_decimal(lo * 100, 1)}–{_decimal(hi * 100, 1)}%"
        for lo, hi in zip(low, high, strict=True)
    ]


def _difference(diff: float, low: float, high: float) -> str:
    if np.isnan(diff):
        return MISSING
    text = _signed(diff * 100, 1)
    if not (np.isnan(low) or np.isnan(high)):
        text += f" [{_signed(low * 100, 1)}; {_signed(high * 100, 1)}]"
    return text
