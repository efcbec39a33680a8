"""Blueprint: researcher pages. Thin views over queries, analysis and figures."""

from __future__ import annotations

import io
import json

from flask import Blueprint, Response, abort, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from survey.auth import current_researcher, researcher_required
from survey.extensions import db
from survey.i18n import current_language
from survey.lazy import LazyModule
from survey.models import PracticeExample
from survey.models import Response as ResponseRow
from survey.questions import BACKGROUND, KIND_LABELS, RATING
from survey.responses import catalog

bp = Blueprint("dashboard", __name__, url_prefix="/researcher")

# The analysis stack loads on a researcher's first request, not in every worker.
pd = LazyModule("pandas")
figures = LazyModule("analysis.figures")
report = LazyModule("analysis.report")
anonymize = LazyModule("survey.anonymize")
export = LazyModule("survey.export")
queries = LazyModule("survey.queries")
results = LazyModule("survey.results")

EXAMPLES_SHOWN = 200


@bp.before_request
@researcher_required
def guard():
    """Every page of this blueprint is for researchers only."""
    return None


def figure_json(fig) -> str:
    """A figure as JSON safe to place inside a <script type="application/json"> block."""
    return fig.to_json().replace("</", "<\\/")


def _segment() -> queries.Segment:
    return queries.Segment.from_mapping(request.args)


def _common(result: results.Comparison | None = None, **extra) -> dict:
    segment = result.segment if result else _segment()
    return {
        "segment": segment,
        "filters": segment.filters(),
        "background": BACKGROUND,
        "result": result,
        "assumptions": results.assumptions(current_language()),
        "csv_args": request.args.to_dict(),
        **extra,
    }


@bp.route("/")
def fieldwork():
    """Fieldwork: completed and started responses, drop-off, daily counts, the sample."""
    lang = current_language()
    include_demo = _segment().include_demo
    data = queries.fieldwork(include_demo)
    pages = dropoff_table(data["furthest_page"], lang)
    charts = {
        "daily": figure_json(figures.fieldwork_daily(data["daily"], lang)),
        "dropoff": figure_json(figures.dropoff(pages, lang)),
    }
    background = background_tables(data["background"], lang)
    for field, table in background.items():
        charts[f"bg_{field}"] = figure_json(
            figures.background_bars(table, table.attrs["title"], lang)
        )
    return render_template(
        "dashboard/fieldwork.html",
        **_common(),
        data=data,
        pages=pages,
        charts=charts,
        background_tables=background,
    )


def dropoff_table(furthest: dict[int, int], lang: str) -> pd.DataFrame:
    """How many responses reached each questionnaire step (furthest page or beyond)."""
    cat = catalog()
    steps = [_("Consent"), _("Work background")]
    steps += [
        p.category.name.get(lang) + (f" ({p.number})" if len(cat.pages) > 7 else "")
        for p in cat.pages
    ]
    steps += [_("Review"), _("Submitted")]
    rows = []
    for index, label in enumerate(steps):
        reached = sum(n for page, n in furthest.items() if page >= index)
        rows.append({"page": label, "reached": reached})
    return pd.DataFrame(rows, columns=["page", "reached"])


def background_tables(background: dict[str, pd.DataFrame], lang: str) -> dict[str, pd.DataFrame]:
    """Background distributions with labels, one table per question."""
    out = {}
    for question in BACKGROUND:
        frame = background.get(question.field)
        counts = dict(zip(frame["code"], frame["n"], strict=True)) if frame is not None else {}
        rows = [{"label": o.label(lang), "n": int(counts.get(o.code, 0))} for o in question.options]
        if counts.get(None):
            rows.append({"label": "—", "n": int(counts[None])})
        table = pd.DataFrame(rows, columns=["label", "n"])
        table.attrs["title"] = question.text(lang)
        out[question.field] = table
    return out


@bp.route("/comparison")
def comparison():
    """Prevalence in Russian vs foreign companies, independent or paired view."""
    lang = current_language()
    result = results.comparison(_segment())
    paired = request.args.get("view") == "paired"
    labels = results.practice_labels(lang)
    builder = figures.paired_dumbbell if paired else figures.prevalence_dumbbell
    return render_template(
        "dashboard/comparison.html",
        **_common(result),
        paired=paired,
        figure=figure_json(builder(result.table, labels, lang)),
        rows=report.format_comparison(result.table, labels, lang).to_dict("records"),
        raw=result.table.to_dict("records"),
    )


@bp.route("/ratings")
def ratings():
    """Motivation ratings per practice and company kind, with the tests."""
    lang = current_language()
    result = results.comparison(_segment())
    labels = results.practice_labels(lang)
    return render_template(
        "dashboard/ratings.html",
        **_common(result),
        figure=figure_json(figures.rating_diverging(result.table, labels, lang)),
        rows=report.format_comparison(result.table, labels, lang).to_dict("records"),
        raw=result.table.to_dict("records"),
        rating_question=RATING,
    )


@bp.route("/categories")
def categories():
    """The comparison at the level of the catalogue's categories."""
    lang = current_language()
    result = results.comparison(_segment())
    labels = results.category_labels(lang)
    table = result.category_table
    return render_template(
        "dashboard/categories.html",
        **_common(result),
        figure=figure_json(figures.prevalence_dumbbell(table, labels, lang, key="category_id")),
        rows=report.format_comparison(table, labels, lang, key="category_id").to_dict("records"),
    )


@bp.route("/practice/<practice_id>")
def practice(practice_id: str):
    """Every number for one practice, its sources, and respondents' examples (escaped)."""
    cat = catalog()
    try:
        item = cat.practice(practice_id)
    except KeyError:
        abort(404)
    lang = current_language()
    result = results.comparison(_segment())
    row_frame = result.table[result.table["practice_id"] == practice_id]
    labels = results.practice_labels(lang)
    return render_template(
        "dashboard/practice.html",
        **_common(result),
        practice=item,
        category=cat.category(item.category),
        sources=[cat.sources[s] for s in item.sources],
        row=row_frame.iloc[0].to_dict(),
        formatted=report.format_comparison(row_frame, labels, lang).iloc[0].to_dict(),
        examples=_examples(practice_id, result.segment),
        figure=figure_json(figures.rating_diverging(row_frame, labels, lang)),
        kind_labels=KIND_LABELS,
        rating_question=RATING,
    )


def _examples(practice_id: str, segment: queries.Segment) -> list[str]:
    stmt = (
        select(PracticeExample.text)
        .join(ResponseRow, ResponseRow.id == PracticeExample.response_id)
        .where(PracticeExample.practice_id == practice_id, *queries.response_conditions(segment))
        .order_by(PracticeExample.id.desc())
        .limit(EXAMPLES_SHOWN)
    )
    return list(db.session.scalars(stmt))


@bp.route("/export")
def export_page():
    """Export options: encoding, demo data, k, free text (after confirmation)."""
    return render_template("dashboard/export.html", **_common(), error=None, k_default=5)


@bp.route("/export/download")
def export_download():
    """The anonymized export (zip or one file); refusals come back to the options page."""
    try:
        return export.download(request.args)
    except (export.ExportRequestError, anonymize.ExportRefused) as exc:
        return render_template(
            "dashboard/export.html", **_common(), error=str(exc), k_default=5
        ), 409 if isinstance(exc, anonymize.ExportRefused) else 400


CSV_TABLES = ("comparison", "categories", "fieldwork", "dropoff", "background")


@bp.route("/table/<name>.csv")
def table_csv(name: str):
    """The numbers under a chart, as CSV (UTF-8, comma separated)."""
    if name not in CSV_TABLES:
        abort(404)
    frame = csv_table(name, _segment(), current_language())
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    response = Response(buffer.getvalue(), mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


def csv_table(name: str, segment: queries.Segment, lang: str) -> pd.DataFrame:
    """The frame behind one CSV download, with a demo column whenever demo data is in it."""
    if name in ("comparison", "categories"):
        result = results.comparison(segment)
        if name == "comparison":
            frame = result.table.copy()
            frame.insert(
                1, "practice_name", frame["practice_id"].map(results.practice_labels(lang))
            )
        else:
            frame = result.category_table.copy()
            frame.insert(
                1, "category_name", frame["category_id"].map(results.category_labels(lang))
            )
        demo = result.demo
    else:
        data = queries.fieldwork(segment.include_demo)
        demo = data["demo"]
        if name == "fieldwork":
            frame = data["daily"]
        elif name == "dropoff":
            frame = dropoff_table(data["furthest_page"], lang)
        else:
            parts = []
            for field, table in background_tables(data["background"], lang).items():
                parts.append(table.assign(question=field)[["question", "label", "n"]])
            frame = pd.concat(parts, ignore_index=True)
    frame = frame.copy()
    frame["demo_data"] = demo
    return frame


@bp.app_template_filter("json_attr")
def json_attr(value) -> str:
    """JSON for an HTML attribute (Jinja escapes it)."""
    return json.dumps(value, ensure_ascii=False)


@bp.app_context_processor
def researcher_context():
    """The signed-in researcher, for the dashboard header."""
    return {
        "researcher": current_researcher() if request.blueprint in ("dashboard", "auth") else None
    }


def page_url(endpoint: str, **overrides) -> str:
    """The URL of a dashboard page keeping the current filters (not empty ones, and not the
    comparison's view switch on other pages); an override of None drops a parameter."""
    args = {k: v for k, v in request.args.items() if v}
    if endpoint != "dashboard.comparison":
        args.pop("view", None)
    for key, value in overrides.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return url_for(endpoint, **args)


bp.add_app_template_global(page_url, "page_url")
