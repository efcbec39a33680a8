"""Blueprint: researcher pages. Thin views over queries, analysis and figures."""

from __future__ import annotations

import io
import json

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _

from survey import filters, jobs
from survey.auth import current_researcher, researcher_required
from survey.i18n import current_language
from survey.lazy import LazyModule
from survey.questions import BACKGROUND, KIND_BACKGROUND_BY_FIELD, KIND_LABELS, RATING
from survey.responses import catalog

bp = Blueprint("dashboard", __name__, url_prefix="/researcher")

# The analysis stack loads on a researcher's first request, not in every worker.
pd = LazyModule("pandas")
figures = LazyModule("analysis.figures")
report = LazyModule("analysis.report")
anonymize = LazyModule("survey.anonymize")
disclosure = LazyModule("survey.disclosure")
export = LazyModule("survey.export")
queries = LazyModule("survey.queries")
results = LazyModule("survey.results")
funnels = LazyModule("survey.funnel")  # the funnel per wave and channel, the composition
waves_compare = LazyModule("survey.waves_compare")
definition = LazyModule("analysis.table")  # the comparison table's columns


@bp.before_request
@researcher_required
def guard():
    """Every page of this blueprint is for researchers only."""
    return None


def figure_json(fig) -> str:
    """A figure as JSON safe to place inside a <script type="application/json"> block."""
    return fig.to_json().replace("</", "<\\/")


# The parameters each page takes besides the filters.
EXPORT_PARAMS = ("file", "format", "with", "k", "include_examples", "confirm_examples")
PAGE_PARAMS = {
    "dashboard.comparison": ("view",),
    "dashboard.export_page": EXPORT_PARAMS,
    "dashboard.export_download": EXPORT_PARAMS,
}


FIELDWORK_TABLES = (
    "fieldwork",
    "dropoff",
    "background",
    "funnel",
    "channels",
    "composition",
    "composition_tests",
)


def _segment() -> queries.Segment:
    """The filters of this request; fieldwork numbers take only include_demo, so any other
    filter there is refused rather than silently ignored."""
    view_args = request.view_args or {}
    if request.endpoint == "dashboard.fieldwork" or view_args.get("name") in FIELDWORK_TABLES:
        filters.check_names(request.args, ("include_demo", "wave"))
    if request.endpoint == "dashboard.waves_comparison" or view_args.get("name") == "waves":
        return waves_compare.segment_from_args(request.args)  # a and b, but no wave
    extra = PAGE_PARAMS.get(request.endpoint or "", ())
    return filters.segment_from_args(request.args, extra, queries.wave_codes)


def _filter_args(segment: queries.Segment) -> dict[str, str]:
    """The request's filters, as links and CSV downloads repeat them (nothing else)."""
    return segment.filters()


def _common(result: results.Comparison | None = None, **extra) -> dict:
    segment = result.segment if result else _segment()
    return {
        "segment": segment,
        "filters": segment.filters(),
        "background": BACKGROUND,
        "result": result,
        "assumptions": results.assumptions(current_language()),
        "csv_args": _filter_args(segment),
        **extra,
    }


def _withheld(result: results.Comparison):
    """The page the disclosure gate gives instead of a breakdown (HTTP 200, no counts)."""
    return render_template("dashboard/suppressed.html", **_common(result), verdict=result.verdict)


@bp.errorhandler(filters.BadQuery)
def bad_query(exc: filters.BadQuery):
    """A filter that cannot be honoured: a 400 page naming the parameter."""
    message = _(
        "The parameter “%(name)s” is not valid: %(reason)s.", name=exc.param, reason=exc.reason
    )
    return render_template("errors/error.html", code=400, message=message), 400


@bp.route("/")
def fieldwork():
    """Fieldwork of the whole study or one wave (?wave=CODE): completed and started
    responses, daily counts, the funnel and the numbers per channel, drop-off, the sample
    and its composition per channel (or wave) with chi-square tests."""
    lang = current_language()
    page = funnels.overview(_segment(), lang)
    data = page["data"]
    pages = dropoff_table(data["furthest_page"], lang)
    background = results.labelled_background(data["background"], lang, data["min_cell"])
    return render_template(
        "dashboard/fieldwork.html",
        **_common(),
        **page,
        pages=pages,
        charts=fieldwork_charts(page, pages, background, lang),
        background_tables=background,
    )


def fieldwork_charts(page: dict, pages: pd.DataFrame, background: dict, lang: str) -> dict:
    """The fieldwork page's figures as JSON, by name."""
    steps = page["steps"]
    main = steps[steps["step"].isin(funnels.main_steps(page["flow"].steps))]
    charts = {
        "daily": figures.fieldwork_daily(page["daily"], lang),
        "dropoff": figures.dropoff(pages, lang),
        "funnel": figures.funnel_chart(main, list(steps.columns[3:]) or ["all"], lang),
        "channels": figures.channel_bars(page["channels"], lang),
    }
    for field, table in background.items():
        charts[f"bg_{field}"] = figures.background_bars(table, table.attrs["title"], lang)
    return {name: figure_json(figure) for name, figure in charts.items()}


def dropoff_table(furthest: dict[int, int], lang: str) -> pd.DataFrame:
    """How many responses reached each questionnaire step (furthest page or beyond).

    Practice pages are counted by their position in each respondent's own (random) order,
    so the table shows where in the questionnaire people stop, not which topic they meet.
    """
    pages = len(catalog().pages)
    steps = [_("Consent"), _("Work background")]
    steps += [_("Practice page %(n)d of %(total)d", n=n, total=pages) for n in range(1, pages + 1)]
    steps += [_("Review"), _("Submitted")]
    rows = []
    for index, label in enumerate(steps):
        reached = sum(n for page, n in furthest.items() if page >= index)
        rows.append({"page": label, "reached": reached})
    return pd.DataFrame(rows, columns=["page", "reached"])


@bp.route("/comparison")
def comparison():
    """Prevalence in Russian vs foreign companies, independent or paired view."""
    lang = current_language()
    result = results.comparison(_segment())
    paired = (
        filters.choice(request.args, "view", ("independent", "paired"), "independent") == "paired"
    )
    if result.suppressed:
        return _withheld(result)
    labels = results.practice_labels(lang)
    builder = figures.paired_dumbbell if paired else figures.prevalence_dumbbell
    return render_template(
        "dashboard/comparison.html",
        **_common(result),
        paired=paired,
        figure=figure_json(builder(result.table, labels, lang)),
        rows=report.format_comparison(result.table, labels, lang).to_dict("records"),
        raw=result.table.to_dict("records"),
        periods=results.period_lines(result, lang),
    )


@bp.route("/ratings")
def ratings():
    """Motivation ratings per practice and company kind, with the tests."""
    lang = current_language()
    result = results.comparison(_segment())
    if result.suppressed:
        return _withheld(result)
    labels = results.practice_labels(lang)
    return render_template(
        "dashboard/ratings.html",
        **_common(result),
        figure=figure_json(
            figures.rating_diverging(result.table, labels, lang, scale=results.rating_labels(lang))
        ),
        rows=report.format_comparison(result.table, labels, lang).to_dict("records"),
        raw=result.table.to_dict("records"),
        rating_question=RATING,
    )


@bp.route("/categories")
def categories():
    """The comparison at the level of the catalogue's categories."""
    lang = current_language()
    result = results.comparison(_segment())
    if result.suppressed:
        return _withheld(result)
    labels = results.category_labels(lang)
    table = result.category_table
    return render_template(
        "dashboard/categories.html",
        **_common(result),
        figure=figure_json(figures.prevalence_dumbbell(table, labels, lang, key="category_id")),
        rows=report.format_comparison(table, labels, lang, key="category_id").to_dict("records"),
    )


@bp.route("/adjusted")
def adjusted():
    """Foreign vs Russian per practice adjusted for period, role level and job function
    (GEE), beside the unadjusted odds ratio."""
    result = results.adjusted(_segment())
    if result.suppressed:
        return _withheld(result)
    labels = results.practice_labels(current_language())
    rows = [
        {**row, "label": labels.get(row["practice_id"])} for row in result.table.to_dict("records")
    ]
    return render_template("dashboard/adjusted.html", **_common(result), rows=rows)


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
    if result.suppressed:
        return _withheld(result)
    row_frame = result.table[result.table["practice_id"] == practice_id]
    labels = results.practice_labels(lang)
    return render_template(
        "dashboard/practice.html",
        **_common(result),
        practice=item,
        category=cat.category(item.category),
        sources=[cat.sources[s] for s in item.sources],
        row=disclosure.csv_ready(row_frame).iloc[0].to_dict(),
        formatted=report.format_comparison(row_frame, labels, lang).iloc[0].to_dict(),
        examples=results.examples(practice_id, result),
        figure=figure_json(
            figures.rating_diverging(row_frame, labels, lang, scale=results.rating_labels(lang))
        ),
        kind_labels=KIND_LABELS,
        rating_question=RATING,
        adjusted=results.adjusted(result.segment).row(practice_id),
    )


@bp.route("/period")
def by_period():
    """The comparison split by the period of each kind's experience: one gated comparison
    per period band, side by side (the filters as elsewhere, except the period itself)."""
    lang = current_language()
    bands = results.by_period(_segment())
    return render_template(
        "dashboard/period.html",
        **_common(),
        bands=bands,
        rows=period_rows(bands, lang),
        periods=period_options(),
        demo=any(result.demo for result in bands.values()),
        pilot=any(result.pilot for result in bands.values()),
        min_cell=disclosure.min_cell(),
    )


def period_rows(bands: dict[str, results.Comparison], lang: str) -> list[dict]:
    """One row per practice (catalogue order): ``practice_id``, ``label`` and ``bands``,
    band -> the formatted comparison row, or None where the gate withholds the band."""
    labels = results.practice_labels(lang)
    shown = {}
    for band, result in bands.items():
        if not result.suppressed:
            frame = report.format_comparison(result.table, labels, lang).to_dict("records")
            shown[band] = dict(zip(result.table["practice_id"], frame, strict=True))
    return [
        {
            "practice_id": p.id,
            "label": labels[p.id],
            "bands": {band: shown[band].get(p.id) if band in shown else None for band in bands},
        }
        for p in catalog().practices
    ]


def period_options() -> tuple:
    """The period bands with their labels (the options of "when did you last work there")."""
    return KIND_BACKGROUND_BY_FIELD["ru_last_year"].options


def _k_bounds() -> dict:
    return {"k_default": export.default_k(), "k_min": export.min_k()}


@bp.route("/export")
def export_page():
    """Export options: encoding, demo data, k, free text (after confirmation)."""
    return render_template("dashboard/export.html", **_common(), error=None, **_k_bounds())


@bp.route("/export/download")
def export_download():
    """The anonymized export (zip or one file); refusals come back to the options page.
    Over more than EXPORT_SYNC_LIMIT responses it is prepared in the background."""
    try:
        job = jobs.start_export_if_large(request.args)
        if job is not None:
            return redirect(url_for("dashboard.job", job_id=job.id), 303)
        return export.download(request.args)
    except (export.ExportRequestError, anonymize.ExportRefused) as exc:
        return render_template(
            "dashboard/export.html", **_common(), error=str(exc), **_k_bounds()
        ), 409 if isinstance(exc, anonymize.ExportRefused) else 400


@bp.route("/report")
def report_download():
    """The self-contained HTML report of the comparison (this page's filters) as a file;
    over more than REPORT_SYNC_LIMIT responses it is prepared in the background."""
    segment = _segment()
    job = jobs.start_report_if_large(segment)
    if job is not None:
        return redirect(url_for("dashboard.job", job_id=job.id), 303)
    try:
        html, name = jobs.report_html(segment, current_language())
    except jobs.Withheld as exc:
        return _withheld(exc.result)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.route("/jobs/<job_id>")
def job(job_id: str):
    """A background job (its starter only): progress, refreshing itself without JavaScript
    while it runs; then the file's link, or why it failed."""
    found = jobs.owned_or_404(job_id)
    return render_template("dashboard/job.html", **_common(), job=found, **jobs.view(found))


@bp.route("/jobs/<job_id>/file")
def job_file(job_id: str):
    """The file a finished job produced; back to the job's page while there is none."""
    found = jobs.owned_or_404(job_id)
    if not jobs.available(found):
        return redirect(url_for("dashboard.job", job_id=found.id))
    return jobs.send_result(found)


@bp.post("/jobs/<job_id>/restart")
def job_restart(job_id: str):
    """A job whose worker stopped (or whose file is gone), started again as a new job."""
    found = jobs.restart(jobs.owned_or_404(job_id))
    return redirect(url_for("dashboard.job", job_id=found.id), 303)


@bp.route("/comparison/waves")
def waves_comparison():
    """Prevalence of every practice in one wave against another, per company kind
    (?a=CODE&b=CODE and the comparison's filters but the wave); the selectors alone until
    two waves are chosen."""
    lang, template = current_language(), "dashboard/waves_comparison.html"
    segment = _segment()
    codes = waves_compare.codes_from_args(request.args, required=False)
    page = {"options": waves_compare.wave_options(), "chosen": codes or (None, None)}
    page["assumptions"] = waves_compare.assumptions(lang)
    if codes is None:
        return render_template(template, **_common(**page))
    query = waves_compare.WaveQuery(segment, *codes)
    result = waves_compare.comparison(query)
    page.update(infos=waves_compare.describe(query), csv_args=query.args())
    if result.suppressed:
        return render_template(template, **_common(result, **page))
    labels = results.practice_labels(lang)
    figure = waves_compare.figure(result.table, labels, page["infos"], lang)
    return render_template(
        template,
        **_common(result, **page),
        figure=figure_json(figure),
        rows=waves_compare.display_rows(result.table, labels),
    )


CSV_TABLES = ("comparison", "categories", "waves", *FIELDWORK_TABLES)


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
    """The frame behind one CSV download, with a demo column whenever demo data is in it.

    A segment the disclosure gate withholds gives one row saying so, never its counts.
    With pilot responses in the numbers, a ``pilot_data`` column says so.
    """
    pilot = False  # the fieldwork sample leaves pilot waves out
    if name in ("comparison", "categories"):
        result = results.comparison(segment)
        if result.suppressed:
            frame = pd.DataFrame([result.verdict.as_json()])
        else:  # the columns of the one definition (analysis.table), the item's name second
            level, table, labels = (
                ("practice", result.table, results.practice_labels(lang))
                if name == "comparison"
                else ("category", result.category_table, results.category_labels(lang))
            )
            frame = disclosure.csv_ready(table)[definition.gated_order(f"{level}_id")]
            frame.insert(1, f"{level}_name", frame[f"{level}_id"].map(labels))
        demo, pilot = result.demo, result.pilot
    elif name == "waves":  # ?a=CODE&b=CODE besides the filters
        frame, demo, pilot = waves_compare.csv_frame(segment, request.args, lang)
    elif name in ("funnel", "channels", "composition", "composition_tests"):
        frame, demo = funnel_csv(name, segment)
    else:
        data = funnels.fieldwork_data(segment)
        demo = data["demo"]
        if name == "fieldwork":
            frame = funnels.daily_table(data["daily"], funnels.funnel(segment))
        elif name == "dropoff":
            frame = dropoff_table(data["furthest_page"], lang)
        else:
            tables = results.labelled_background(data["background"], lang, data["min_cell"])
            parts = [
                table.assign(question=field, n=table["display"])[["question", "label", "n"]]
                for field, table in tables.items()
            ]
            frame = pd.concat(parts, ignore_index=True)
    frame = frame.copy()
    frame["demo_data"] = demo
    if pilot:
        frame["pilot_data"] = True
    return frame


def funnel_csv(name: str, segment: queries.Segment) -> tuple[pd.DataFrame, bool]:
    """The frame of a funnel or composition CSV (survey/funnel.py) and whether demo rows
    are in it."""
    if name in ("funnel", "channels"):
        flow = funnels.funnel(segment)
        table = funnels.funnel_table(flow) if name == "funnel" else funnels.channel_table(flow)
        return table, flow.demo
    composition = funnels.composition(segment)
    if name == "composition":
        return funnels.composition_frame(composition, current_language()), composition.demo
    return funnels.tests_frame(composition), composition.demo


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
    known = (*filters.FILTER_NAMES, "view")
    args = {k: v for k, v in request.args.items() if v and k in known}
    if endpoint != "dashboard.comparison":
        args.pop("view", None)
    if endpoint == "dashboard.waves_comparison":  # its waves are a and b, never a filter
        args.pop("wave", None)
    for key, value in overrides.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return url_for(endpoint, **args)


bp.add_app_template_global(page_url, "page_url")
bp.add_app_template_global(period_options, "period_options")
