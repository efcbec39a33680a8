"""Blueprint /api/v1: the dashboard's numbers as JSON, for a token or a researcher session."""

from __future__ import annotations

import functools
import math

from flask import Blueprint, request, url_for
from flask_babel import force_locale

from survey import filters, jobs
from survey.auth import researcher_required
from survey.catalog import Catalog
from survey.lazy import LazyModule
from survey.links import public_url
from survey.questions import BACKGROUND, COMPANY_KINDS, PERIODS
from survey.responses import catalog

# Why the disclosure gate refuses a segment (survey.disclosure.Verdict.reason).
REFUSALS = ("too_small", "differencing", "complement", "partition")
bp = Blueprint("api", __name__, url_prefix="/api/v1")

anonymize = LazyModule("survey.anonymize")
disclosure = LazyModule("survey.disclosure")
export = LazyModule("survey.export")
queries = LazyModule("survey.queries")
results = LazyModule("survey.results")
funnels = LazyModule("survey.funnel")  # the funnel per wave and channel
definition = LazyModule("analysis.table")  # the comparison table's columns
waves = LazyModule("analysis.waves")  # the wave comparison's columns
waves_compare = LazyModule("survey.waves_compare")


@bp.before_request
@researcher_required
def guard():
    """Every route here needs a researcher: a token or a session."""
    return None


@bp.errorhandler(filters.BadQuery)
def bad_query(exc: filters.BadQuery):
    """A filter that cannot be honoured: 400 naming the parameter."""
    with force_locale("en"):  # the API speaks English
        message = f"The parameter {exc.param!r} is not valid: {exc.reason}."
    return {"error": "bad_request", "parameter": exc.param, "message": message}, 400


def _segment(*extra: str):
    return filters.segment_from_args(request.args, extra, queries.wave_codes)


def whole(value):
    """A count for JSON: an int, or null when withheld by the disclosure gate."""
    value = clean(value)
    return None if value is None else int(value)


def clean(value):
    """JSON-safe scalar: NaN and infinities become null, numpy scalars plain Python."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def practices_json(cat: Catalog) -> list[dict]:
    """The catalogue as JSON objects."""
    return [
        {
            "practice_id": p.id,
            "category_id": p.category,
            "reward": p.reward,
            "name": {"ru": p.name.ru, "en": p.name.en},
            "description": {"ru": p.description.ru, "en": p.description.en},
            "sources": [
                {
                    "id": s,
                    "citation": cat.sources[s].citation(),
                    "evidence": cat.sources[s].evidence,
                }
                for s in p.sources
            ],
        }
        for p in cat.practices
    ]


@bp.get("/practices")
def practices():
    """The practice catalogue: ids, names in both languages, categories, sources."""
    cat = catalog()
    return {
        "catalog_version": cat.version,
        "categories": [
            {"category_id": c.id, "name": {"ru": c.name.ru, "en": c.name.en}}
            for c in cat.categories
        ],
        "practices": practices_json(cat),
    }


def comparison_row(row: dict, key: str = "practice_id") -> dict:
    """One practice (or category) of the comparison table as the API's JSON object: every
    column of :data:`analysis.table.COLUMNS` at its ``api`` places, the meaning of the
    secondary blocks as their ``description``, and ``suppressed``, the cell groups the
    disclosure gate withheld (their values are null).

    ``diff``, ``test``, ``statistic``, ``p_value``, ``q_value``, ``cohens_h`` and
    ``rating_p_value``, ``rating_q_value`` are the primary tests (partially overlapping
    samples: ``overlap_z``, ``overlap_t``); ``secondary`` holds the tests kept for
    reference, each named for what it is, beside ``paired`` and ``rating_paired``.

    A category row adds ``p_ru_bounds`` and ``p_foreign_bounds``: the prevalence with the
    respondents whose category answer is undetermined (``dk_*``: no yes, some don't-know)
    counted as no, then as yes; ``p_ru`` (the headline) leaves them out.
    """
    fields, cells = _row_fields(key)
    out = {key: row[key], **_fill(fields, row)}
    out["suppressed"] = [group for group, flag in cells if row.get(flag)]
    return out


@functools.lru_cache(maxsize=4)
def _row_fields(key: str) -> tuple[tuple, list[tuple[str, str]]]:
    """How to write a row (built once per level from the definition): the JSON object as
    nested fields, and each cell group's gate flag (see :func:`_fill`)."""
    shape: dict = {}
    for column in definition.api_columns(key):
        for path in column.api_paths:
            _place(shape, path, (column.name, _JSON_VALUE[column.type]))
    for group in definition.GROUPS:
        if group.api:
            _place(shape, (*definition.json_path(group.api), "description"), (None, group.meaning))
    cells = [(group, definition.suppressed(group)) for group in definition.CELL_GROUPS]
    return _compile(shape), cells


def _compile(node):
    """A tree of dicts and lists whose leaves are (column, writer) or (None, constant) into
    nested ``(is_list, fields)``, each field ``(key, column, writer, constant or child)``."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    fields = []
    for name, child in items:
        if isinstance(child, tuple):
            column, writer = child
            if column is None:
                fields.append((name, None, None, writer))
            else:
                fields.append((name, column, writer, None))
        else:
            fields.append((name, None, None, _compile(child)))
    return isinstance(node, list), tuple(fields)


def _fill(compiled: tuple, row: dict):
    """The JSON value of a compiled shape (:func:`_compile`) for one row."""
    is_list, fields = compiled
    out = {}
    for name, column, writer, other in fields:
        if writer is not None:
            out[name] = writer(row[column])
        elif type(other) is tuple:
            out[name] = _fill(other, row)
        else:
            out[name] = other
    return list(out.values()) if is_list else out


def _place(target, path: tuple, value) -> None:
    """Put ``value`` at ``path`` (keys and list positions) in nested dicts and lists."""
    for step, following in zip(path[:-1], path[1:], strict=True):
        empty = [] if isinstance(following, int) else {}
        if isinstance(step, int):
            target.extend([None] * (step + 1 - len(target)))
            if target[step] is None:
                target[step] = empty
            target = target[step]
        else:
            target = target.setdefault(step, empty)
    last = path[-1]
    if isinstance(last, int):
        target.extend([None] * (last + 1 - len(target)))
    target[last] = value


def _name(value) -> str | None:
    """A test's name, or None when there is no test (or it is withheld)."""
    return value if isinstance(value, str) else None


# How a value of each column type of the comparison table (analysis.table.TYPES) is written,
# and its JSON schema type.
_JSON_VALUE = {"int": whole, "float": clean, "text": _name, "bool": bool}
_JSON_TYPE = {
    "int": ["integer", "null"],
    "float": ["number", "null"],
    "text": ["string", "null"],
    "bool": "boolean",
}


def comparison_row_schema(key: str) -> dict:
    """The JSON schema of :func:`comparison_row`'s object, from the same definition: each
    column's type and meaning at its places (an interval is a list of its limits)."""
    root: dict = {
        "type": "object",
        "description": f"One row of the comparison table ({key}); null where withheld or "
        "not computable, and the withheld cell groups in 'suppressed'",
        "properties": {
            key: {"type": "string"},
            "suppressed": {"type": "array", "items": {"enum": list(definition.CELL_GROUPS)}},
        },
    }
    for column in definition.api_columns(key):
        leaf = {"type": _JSON_TYPE[column.type]}
        if column.values:
            leaf["enum"] = [*column.values, None]
        for path in column.api_paths:
            node = root
            for step in path[:-1]:
                if isinstance(step, int):
                    raise ValueError(f"{column.name}: a list inside a list is not documented")
                node = node["properties"].setdefault(step, {"type": "object", "properties": {}})
            last = path[-1]
            if isinstance(last, int):  # a list of like values: its positions in the description
                node = node.setdefault("list", {})
                node[last] = (column, leaf)
            else:
                node["properties"][last] = {**leaf, "description": column.meaning}
    for group in definition.GROUPS:
        if group.api:
            node = root
            for step in definition.json_path(group.api):
                node = node["properties"][step]
            node["description"] = group.meaning
            node["properties"]["description"] = {"const": group.meaning}
    return _close_schema(root)


def _close_schema(node: dict) -> dict:
    """Every property required; the lists gathered by position become array schemas."""
    properties = node.get("properties")
    if properties is None:
        return node
    for name, child in list(properties.items()):
        if "list" in child:
            items = child.pop("list")
            leaves = {str(leaf) for _column, leaf in items.values()}
            if len(leaves) != 1 or sorted(items) != list(range(len(items))):
                raise ValueError(f"{name}: a list's places must be 0..n-1 of one type")
            first_leaf = next(iter(items.values()))[1]
            properties[name] = {
                "type": "array",
                "minItems": len(items),
                "maxItems": len(items),
                "items": first_leaf,
                "description": "; ".join(
                    f"[{i}] {column.meaning}" for i, (column, _leaf) in sorted(items.items())
                ),
            }
        else:
            _close_schema(child)
    node["required"] = list(properties)
    return node


@bp.get("/comparison")
def comparison():
    """The Russian-vs-foreign comparison for the filters given as query parameters.

    A segment the disclosure gate withholds answers ``suppressed: true`` with the reason,
    never its counts; withheld cells are null and listed in each row's ``suppressed``.
    """
    segment = _segment("level")
    level = filters.choice(request.args, "level", ("practice", "category"), "practice")
    return comparison_json(results.comparison(segment), level)


@bp.get("/comparison/by-period")
def comparison_by_period():
    """The comparison split by the period of each kind's experience: under ``periods``,
    each band's comparison exactly as ``/comparison?period=<band>`` gives it (each band
    passes the disclosure gate on its own; a withheld band is its refusal block)."""
    segment = _segment("level")
    level = filters.choice(request.args, "level", ("practice", "category"), "practice")
    bands = results.by_period(segment)
    return {
        "filters": segment.filters(),
        "demo": any(result.demo for result in bands.values()),
        "pilot": any(result.pilot for result in bands.values()),
        "level": level,
        "periods": {band: comparison_json(result, level) for band, result in bands.items()},
    }


@bp.get("/comparison/waves")
def comparison_waves():
    """Prevalence of every practice in wave ``a`` vs wave ``b``, per company kind, with the
    filters of ``/comparison`` (but ``wave``). Each wave passes the disclosure gate as
    ``/comparison?wave=<code>`` would; a refused one answers ``suppressed: true`` with the
    reason and ``withheld_wave``, never counts."""
    query = waves_compare.query_from_args(request.args)
    return waves_json(waves_compare.comparison(query), waves_compare.describe(query))


def waves_json(result, infos: dict) -> dict:
    """A wave comparison as the API's JSON: the gate's refusal, or one row per practice and
    company kind (:func:`wave_row`), with the waves' names and pilot labels."""
    head = {
        "filters": result.filters,
        "demo": result.demo,
        "pilot": any(info.pilot for info in infos.values()),
        "waves": {side: info.as_json() for side, info in infos.items()},
        "assumptions": waves_compare.assumptions("en"),
    }
    if result.suppressed:
        with force_locale("en"):
            refusal = result.verdict.as_json()
        return {**head, **refusal, "withheld_wave": infos[result.withheld_wave].code}
    for side, info in head["waves"].items():
        info["n_respondents"] = result.respondents[side]
    return {
        **head,
        "suppressed": False,
        "min_cell": result.verdict.min_cell,
        "rows": [wave_row(row) for row in result.table.to_dict("records")],
    }


def wave_row(row: dict) -> dict:
    """One practice and company kind of the wave comparison as the API's JSON object: every
    column of :data:`analysis.waves.COLUMNS` at its ``api`` place (the names of the
    comparison's rows with ``_a``/``_b`` for ``_ru``/``_foreign``, see
    :data:`analysis.waves.SAME_AS`), and ``suppressed``, the waves whose cell the disclosure
    gate withheld (their values and the test are null)."""
    out = {
        "practice_id": row["practice_id"],
        "company_kind": row["company_kind"],
        **_fill(_wave_fields(), row),
    }
    out["suppressed"] = [side for side in waves.SIDES if row.get(f"suppressed_{side}")]
    return out


@functools.lru_cache(maxsize=1)
def _wave_fields() -> tuple:
    shape: dict = {}
    for column in waves.COLUMNS:
        for path in column.api_paths:
            _place(shape, path, (column.name, _JSON_VALUE[column.type]))
    return _compile(shape)


def wave_row_schema() -> dict:
    """The JSON schema of :func:`wave_row`'s object, from the same definition."""
    root: dict = {
        "type": "object",
        "description": "One practice and company kind of the wave comparison; null where "
        "withheld or not computable, and the withheld waves in 'suppressed'",
        "properties": {
            "practice_id": {"type": "string"},
            "company_kind": {"enum": list(COMPANY_KINDS)},
            "suppressed": {"type": "array", "items": {"enum": list(waves.SIDES)}},
        },
    }
    for column in waves.COLUMNS:
        leaf = {"type": _JSON_TYPE[column.type]}
        if column.values:
            leaf["enum"] = [*column.values, None]
        for path in column.api_paths:
            if len(path) == 2:  # a limit of an interval: gathered into a list
                root["properties"].setdefault(path[0], {}).setdefault("list", {})[path[1]] = (
                    column,
                    leaf,
                )
            else:
                root["properties"][path[0]] = {**leaf, "description": column.meaning}
    return _close_schema(root)


def comparison_json(result: results.Comparison, level: str) -> dict:
    """A comparison as the API's JSON: the gate's refusal, or the rows of ``level``."""
    head = {"filters": result.filters, "demo": result.demo, "pilot": result.pilot, "level": level}
    if result.suppressed:
        with force_locale("en"):
            return {**head, **result.verdict.as_json()}
    table, key = (
        (result.table, "practice_id")
        if level == "practice"
        else (result.category_table, "category_id")
    )
    return {
        "n_respondents": result.n_respondents,
        **head,
        "suppressed": False,
        "min_cell": result.verdict.min_cell,
        "assumptions": results.assumptions("en"),
        "practices" if level == "practice" else "categories": [
            comparison_row(row, key) for row in table.to_dict("records")
        ],
    }


def adjusted_row(row: dict) -> dict:
    """One practice of the adjusted table as the API's JSON object (nulls where withheld
    or not estimable; ``note`` says why)."""

    def odds_ratio(suffix: str) -> dict:
        return {
            "odds_ratio": clean(row[f"or_{suffix}"]),
            "ci": [clean(row[f"or_{suffix}_ci_low"]), clean(row[f"or_{suffix}_ci_high"])],
            "p_value": clean(row[f"p_val_{suffix}"]),
        }

    return {
        "practice_id": row["practice_id"],
        **{name: whole(row[name]) for name in results.ADJUSTED_COUNTS},
        "unadjusted": odds_ratio("unadj"),
        "adjusted": {
            **odds_ratio("adj"),
            "adjusted_for": row["adjusted_for"].split(",") if row["adjusted_for"] else [],
        },
        "adjusted_diff": clean(row["diff_adj"]),
        "adjusted_diff_ci": [clean(row["diff_adj_ci_low"]), clean(row["diff_adj_ci_high"])],
        "note": row["note"],
        "suppressed": bool(row["suppressed"]),
    }


@bp.get("/adjusted")
def adjusted():
    """Foreign vs Russian odds ratios per practice, unadjusted and adjusted for the period,
    role level and job function of each answer's kind of company (logistic GEE), and the
    adjusted difference in the share (foreign minus Russian, by standardisation).

    A segment the disclosure gate withholds answers ``suppressed: true`` with the reason;
    a withheld practice has nulls, ``suppressed: true`` and its ``note``.
    """
    result = results.adjusted(_segment())
    head = {"filters": result.filters, "demo": result.demo, "pilot": result.pilot}
    if result.suppressed:
        with force_locale("en"):
            return {**head, **result.verdict.as_json()}
    return {
        "n_respondents": result.n_respondents,
        **head,
        "suppressed": False,
        "min_cell": result.verdict.min_cell,
        "method": ADJUSTED_METHOD,
        "notes": ADJUSTED_NOTES,
        "practices": [adjusted_row(row) for row in result.table.to_dict("records")],
    }


ADJUSTED_METHOD = (
    "Logistic GEE on the answers 'existed' (either existing code) vs 'no', one cluster per "
    "respondent (exchangeable working correlation, robust sandwich errors), Wald 95% "
    "intervals. Adjusted: covariates period, role level and job function of the kind of "
    "company each answer is about (a covariate with one level is left out; 'adjusted_for' "
    "lists those used); unadjusted: the kind only, on the same answers. adjusted_diff: mean "
    "predicted share with every answer set to foreign minus set to Russian (a proportion), "
    "delta-method interval. Responses from before 2026-12 have no covariates and are not "
    "used; the counts are those used. Only the kind effect is reported."
)
ADJUSTED_NOTES = {
    "too_few_answers": "withheld: fewer than min_cell answers for a kind of company",
    "small_excluded": "withheld: 1 to min_cell - 1 answers of a kind are left out for a "
    "missing covariate, which a comparison with /comparison would reveal",
    "separation": "not estimable: the answers are all 'existed' or all 'no' in a kind, a "
    "covariate level or a combination of them",
    "collinear": "not estimable: the kind cannot be told apart from the covariates",
    "not_converged": "not estimable: the model did not converge",
}


@bp.get("/fieldwork")
def fieldwork():
    """Fieldwork numbers of the whole study or one wave (``wave=CODE``): completed, drafts,
    completion rate, drop-off, per day, background, the funnel (``funnel``: steps of
    :func:`survey.funnel.step_names`) and the numbers per channel (``channels``).

    Background cells below the disclosure threshold are null and listed in
    ``background_suppressed``; a wave the disclosure gate withholds has every background
    cell null and its reason in ``background_withheld``.
    """
    filters.check_names(request.args, ("include_demo", "wave"))
    segment = _segment()
    data = funnels.fieldwork_data(segment)
    flow = funnels.funnel(segment)
    verdict = data["sample_verdict"]
    return {
        "wave": flow.wave,
        "demo": data["demo"],
        "completed": data["completed"],
        "flagged": data["flagged"],
        "drafts": data["drafts"],
        "started": data["started"],
        "completion_rate": clean(data["completion_rate"]),
        "furthest_page": {str(k): v for k, v in sorted(data["furthest_page"].items())},
        "daily": [
            {"day": day.isoformat(), "completed": int(n)}
            for day, n in data["daily"].itertuples(index=False)
        ],
        "min_cell": data["min_cell"],
        "background": {
            field: {str(code): whole(n) for code, n in frame[["code", "n"]].itertuples(index=False)}
            for field, frame in data["background"].items()
        },
        "background_suppressed": {
            field: [str(code) for code in frame.loc[frame["suppressed"], "code"]]
            for field, frame in data["background"].items()
        },
        "background_withheld": None if verdict is None else verdict.reason,
        "completion": {
            "consented": flow.total.started,
            "submitted": flow.total.completed,
            "rate": clean(flow.total.completion_rate),
            "median_minutes": flow.total.median_minutes,
        },
        "funnel": [{"step": step, "n": flow.total.counts[step]} for step in flow.steps],
        "channels": funnels.channel_json(flow),
    }


@bp.get("/export/<name>")
def export_file(name: str):
    """The anonymized export: ``zip``, ``responses``, ``answers_long``, ``codebook``,
    ``disclosure_report`` (and ``examples`` with include_examples=1&confirm_examples=1).
    Over more than EXPORT_SYNC_LIMIT responses: 202 and the job that prepares it."""
    try:
        job = jobs.start_export_if_large(request.args, name)
        if job is not None:
            return jobs.as_json(job), 202, {"Location": url_for("api.job", job_id=job.id)}
        return export.download(request.args, name)
    except export.ExportRequestError as exc:
        return {"error": "bad_request", "message": str(exc)}, 400
    except anonymize.ExportRefused as exc:
        return {"error": "export_refused", "message": str(exc)}, 409


@bp.get("/jobs/<job_id>")
def job(job_id: str):
    """A background job of this researcher: status, progress, and its file's URL once done."""
    return jobs.as_json(jobs.owned_or_404(job_id))


@bp.get("/jobs/<job_id>/file")
def job_file(job_id: str):
    """The file a finished job produced; 409 (with the job) while there is none."""
    found = jobs.owned_or_404(job_id)
    if not jobs.available(found):
        message = jobs.message(found) or jobs.pending_message()
        return {"error": "not_ready", "message": message, "job": jobs.as_json(found)}, 409
    return jobs.send_result(found)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API."""
    return openapi_document(public_url("api.practices").rsplit("/", 1)[0])


FILTER_PARAMS = [
    *(
        {
            "name": q.field,
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": list(q.codes())},
        }
        for q in BACKGROUND
    ),
    {
        "name": "period",
        "in": "query",
        "required": False,
        "description": "The period of each kind's experience (the last year worked in that "
        "kind): each kind's answers come only from respondents whose last year there falls "
        "in it, so a respondent may count for one kind only; responses from before "
        "2026-12 have no period and drop out.",
        "schema": {"type": "string", "enum": list(PERIODS)},
    },
    {
        "name": "wave",
        "in": "query",
        "required": False,
        "description": "The code of an existing wave; any other value is a 400. A pilot "
        "wave named here is included (and the result says 'pilot': true).",
        "schema": {"type": "string"},
    },
    {
        "name": "channel",
        "in": "query",
        "required": False,
        "description": "The label of a channel (e.g. 'linkedin'; the same label in several "
        "waves counts in each), never its link's slug; any other value is a 400.",
        "schema": {"type": "string"},
    },
    {
        "name": "language",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["ru", "en"]},
    },
    {
        "name": "include_flagged",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["0", "1"]},
    },
    {
        "name": "include_demo",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["0", "1"]},
    },
    {
        "name": "include_pilot",
        "in": "query",
        "required": False,
        "description": "1 includes responses of pilot waves (left out by default); the "
        "result then says 'pilot': true.",
        "schema": {"type": "string", "enum": ["0", "1"]},
    },
    {
        "name": "exclude_low_quality",
        "in": "query",
        "required": False,
        "description": "1 leaves out responses the quality indicators mark low quality.",
        "schema": {"type": "string", "enum": ["0", "1"]},
    },
]


# The one filter of the fieldwork numbers and the export.
INCLUDE_DEMO = next(p for p in FILTER_PARAMS if p["name"] == "include_demo")
INCLUDE_PILOT = next(p for p in FILTER_PARAMS if p["name"] == "include_pilot")
# The fieldwork numbers' scope: one wave (the whole study without it).
WAVE_PARAM = next(p for p in FILTER_PARAMS if p["name"] == "wave")
FUNNEL_STEPS_TEXT = (
    "'opened' (links opened: a daily counter), 'consented' (consents given: a daily counter "
    "that keeps withdrawn, screened-out and purged respondents; never fewer than the "
    "responses held), 'background' (work background saved), 'practice_1'..'practice_P' "
    "(the respondent's i-th practice page saved, in their own page order), 'submitted'; "
    "then beside the funnel 'withdrawn', 'screened_out', 'purged' (daily counters), "
    "'flagged' (submitted, flagged as a likely bot) and 'low_quality' (submitted, low "
    "quality). Demo responses follow include_demo as the other numbers do."
)


def channel_schema() -> dict:
    """One channel of the fieldwork numbers, with its funnel."""
    return {
        **CHANNEL_SCHEMA,
        "required": [*CHANNEL_SCHEMA["required"], "funnel"],
        "properties": {
            **CHANNEL_SCHEMA["properties"],
            "funnel": {"type": "array", "items": funnel_step_schema()},
        },
    }


CHANNEL_SCHEMA = {
    "type": "object",
    "description": "One channel: 'started' counts consents given; 'completion_rate' is "
    "completed per consent; 'median_minutes' the median time on the pages of its completed "
    "responses in whole minutes, null below min_cell completed responses.",
    "required": [
        "wave",
        "label",
        "pilot",
        "opened",
        "started",
        "completed",
        "completion_rate",
        "median_minutes",
    ],
    "properties": {
        "wave": {"type": "string"},
        "label": {"type": "string"},
        "pilot": {"type": "boolean"},
        "opened": {"type": "integer"},
        "started": {"type": "integer"},
        "completed": {"type": "integer"},
        "completion_rate": {"type": ["number", "null"]},
        "median_minutes": {"type": ["integer", "null"]},
    },
}


def funnel_step_schema() -> dict:
    """A step of a funnel: its stable name (of the current catalogue's steps) and count."""
    return {
        "type": "object",
        "required": ["step", "n"],
        "properties": {
            "step": {"enum": list(funnels.step_names())},
            "n": {"type": "integer"},
        },
    }


LEVEL_PARAM = {
    "name": "level",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["practice", "category"]},
}


JOB_SCHEMA = {
    "type": "object",
    "required": ["id", "kind", "status", "progress", "error", "message", "url", "file_url"],
    "properties": {
        "id": {"type": "string"},
        "kind": {"enum": ["export", "report"]},
        "status": {"enum": ["queued", "running", "done", "failed"]},
        "progress": {"type": "number"},
        "error": {
            "type": ["string", "null"],
            "enum": [None, "bad_request", "export_refused", "withheld", "internal", "worker_lost"],
        },
        "message": {"type": ["string", "null"]},
        "url": {"type": "string"},
        "file_url": {"type": ["string", "null"]},
        "download_name": {"type": ["string", "null"]},
    },
}


def job_path(summary: str, responses: dict, unauthorized: dict, error: dict) -> dict:
    """The OpenAPI operation of a job route: its id in the path, 401 and 404 besides."""
    return {
        "get": {
            "summary": summary,
            "parameters": [
                {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                **responses,
                "401": unauthorized,
                "404": {
                    "description": "No such job of this researcher (or it has expired)",
                    "content": {"application/json": {"schema": error}},
                },
            },
        }
    }


def openapi_document(server: str) -> dict:
    """Build the OpenAPI document (paths, security, error schema)."""
    error = {"$ref": "#/components/schemas/Error"}
    unauthorized = {
        "description": "No or invalid credentials",
        "content": {"application/json": {"schema": error}},
    }
    ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    bad_query = {
        "description": "A query parameter that cannot be honoured (unknown or repeated name, "
        "unknown value); 'parameter' names it",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BadQuery"}}},
    }

    def get(summary, params=(), schema=None):
        responses = {"200": ok, "401": unauthorized}
        if schema is not None:  # an operation with filters: its shape, and the 400
            content = {"application/json": {"schema": schema}}
            responses.update({"200": {"description": "OK", "content": content}, "400": bad_query})
        return {"get": {"summary": summary, "parameters": list(params), "responses": responses}}

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Motivation practices survey API",
            "version": "1.0.0",
            "description": "Russian vs foreign companies: prevalence, paired and rating "
            "comparisons. Unweighted; assumes a simple random sample.",
        },
        "servers": [{"url": server}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
                },
                "BadQuery": {
                    "type": "object",
                    "required": ["error", "message", "parameter"],
                    "properties": {
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "parameter": {"type": "string"},
                    },
                },
                "Comparison": {
                    "description": "A segment the disclosure gate withholds gives only "
                    "'suppressed': true, the reason and a message, never its counts; in a "
                    "shown one, cells resting on fewer than 'min_cell' respondents are null "
                    "and named in each row's 'suppressed'.",
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["suppressed", "reason", "min_cell", "message"],
                            "properties": {
                                "suppressed": {"const": True},
                                "reason": {"enum": list(REFUSALS)},
                                "min_cell": {"type": "integer"},
                                "message": {"type": "string"},
                            },
                        },
                        {
                            "type": "object",
                            "required": ["suppressed", "min_cell", "n_respondents"],
                            "properties": {
                                "suppressed": {"const": False},
                                "min_cell": {"type": "integer"},
                                "n_respondents": {"type": "integer"},
                                "practices": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/PracticeRow"},
                                },
                                "categories": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/CategoryRow"},
                                },
                            },
                        },
                    ],
                },
                "PracticeRow": comparison_row_schema("practice_id"),
                "WaveComparison": {
                    "description": "Each wave passes the disclosure gate as "
                    "/comparison?wave=<code> would: a refused one gives 'suppressed': true, "
                    "the reason, a message and 'withheld_wave', never counts; in a shown "
                    "comparison a wave's cell resting on fewer than 'min_cell' respondents is "
                    "null (with the test) and named in the row's 'suppressed'. 'pilot' is "
                    "true when a named wave is a pilot wave.",
                    "oneOf": [
                        {
                            "type": "object",
                            "required": [
                                "suppressed",
                                "reason",
                                "min_cell",
                                "message",
                                "withheld_wave",
                                "waves",
                                "assumptions",
                            ],
                            "properties": {
                                "suppressed": {"const": True},
                                "reason": {"enum": list(REFUSALS)},
                                "min_cell": {"type": "integer"},
                                "message": {"type": "string"},
                                "withheld_wave": {"type": "string"},
                            },
                        },
                        {
                            "type": "object",
                            "required": [
                                "suppressed",
                                "min_cell",
                                "waves",
                                "pilot",
                                "demo",
                                "assumptions",
                                "rows",
                            ],
                            "properties": {
                                "suppressed": {"const": False},
                                "min_cell": {"type": "integer"},
                                "pilot": {"type": "boolean"},
                                "demo": {"type": "boolean"},
                                "assumptions": {"type": "string"},
                                "waves": {
                                    "type": "object",
                                    "required": ["a", "b"],
                                    "properties": {
                                        side: {
                                            "type": "object",
                                            "required": ["code", "name", "pilot", "n_respondents"],
                                            "properties": {
                                                "code": {"type": "string"},
                                                "pilot": {"type": "boolean"},
                                                "n_respondents": {"type": "integer"},
                                            },
                                        }
                                        for side in ("a", "b")
                                    },
                                },
                                "rows": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/WaveRow"},
                                },
                            },
                        },
                    ],
                },
                "WaveRow": wave_row_schema(),
                "CategoryRow": comparison_row_schema("category_id"),
                "ByPeriod": {
                    "description": "One comparison per period band, each exactly as "
                    "/comparison?period=<band> gives it: each band passes the disclosure gate "
                    "on its own, and a withheld band is its refusal block.",
                    "type": "object",
                    "required": ["filters", "level", "periods"],
                    "properties": {
                        "periods": {
                            "type": "object",
                            "required": list(PERIODS),
                            "properties": {
                                band: {"$ref": "#/components/schemas/Comparison"}
                                for band in PERIODS
                            },
                        },
                    },
                },
                "Adjusted": {
                    "description": "A segment the disclosure gate withholds gives only "
                    "'suppressed': true, the reason and a message; in a shown one, a practice "
                    "with fewer than 'min_cell' answers for a kind has null counts and "
                    "estimates, 'suppressed': true and a 'note' (see 'notes').",
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["suppressed", "reason", "min_cell", "message"],
                            "properties": {
                                "suppressed": {"const": True},
                                "reason": {"type": "string"},
                                "min_cell": {"type": "integer"},
                                "message": {"type": "string"},
                            },
                        },
                        {
                            "type": "object",
                            "required": ["suppressed", "min_cell", "n_respondents", "practices"],
                            "properties": {
                                "suppressed": {"const": False},
                                "min_cell": {"type": "integer"},
                                "n_respondents": {"type": "integer"},
                                "practices": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/AdjustedPractice"},
                                },
                            },
                        },
                    ],
                },
                "AdjustedPractice": {
                    "type": "object",
                    "required": ["practice_id", "unadjusted", "adjusted", "note", "suppressed"],
                    "properties": {
                        "practice_id": {"type": "string"},
                        "n_respondents": {"type": ["integer", "null"]},
                        "n_answers": {"type": ["integer", "null"]},
                        "n_answers_ru": {"type": ["integer", "null"]},
                        "n_answers_foreign": {"type": ["integer", "null"]},
                        "adjusted_diff": {"type": ["number", "null"]},
                        "note": {
                            "type": ["string", "null"],
                            "enum": [None, *ADJUSTED_NOTES],
                        },
                        "suppressed": {"type": "boolean"},
                    },
                },
                "Fieldwork": {
                    "description": "Background cells resting on fewer than 'min_cell' "
                    "respondents are null and listed in 'background_suppressed'; of a wave "
                    "the disclosure gate withholds, every cell is null and "
                    "'background_withheld' gives the reason. 'funnel' and each channel's "
                    "'funnel' list the steps in order: " + FUNNEL_STEPS_TEXT,
                    "type": "object",
                    "required": [
                        "wave",
                        "min_cell",
                        "background",
                        "background_suppressed",
                        "background_withheld",
                        "completion",
                        "funnel",
                        "channels",
                    ],
                    "properties": {
                        "wave": {"type": ["string", "null"]},
                        "background_withheld": {
                            "type": ["string", "null"],
                            "enum": [None, *REFUSALS],
                        },
                        "completion": {
                            "type": "object",
                            "required": ["consented", "submitted", "rate", "median_minutes"],
                            "properties": {
                                "consented": {"type": "integer"},
                                "submitted": {"type": "integer"},
                                "rate": {"type": ["number", "null"]},
                                "median_minutes": {"type": ["integer", "null"]},
                            },
                        },
                        "funnel": {"type": "array", "items": funnel_step_schema()},
                        "channels": {"type": "array", "items": channel_schema()},
                        "min_cell": {"type": "integer"},
                        "background": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "additionalProperties": {"type": ["integer", "null"]},
                            },
                        },
                        "background_suppressed": {
                            "type": "object",
                            "additionalProperties": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
        },
        "paths": {
            "/practices": get("The practice catalogue"),
            "/comparison": get(
                "Russian vs foreign comparison. Primary tests (diff, test, p_value, "
                "rating_p_value) are for partially overlapping samples (overlap_z, "
                "overlap_t); 'secondary', 'paired' and 'rating_paired' are labelled "
                "secondary tests",
                [*FILTER_PARAMS, LEVEL_PARAM],
                {"$ref": "#/components/schemas/Comparison"},
            ),
            "/comparison/by-period": get(
                "The comparison split by the period of each kind's experience (the filters "
                "of /comparison except 'period' itself, which is a 400 here)",
                [*(p for p in FILTER_PARAMS if p["name"] != "period"), LEVEL_PARAM],
                {"$ref": "#/components/schemas/ByPeriod"},
            ),
            "/comparison/waves": get(
                "Prevalence of every practice in wave a vs wave b, per company kind: the "
                "Russian-vs-foreign comparison's interval, test, effect size and BH correction "
                "for independent samples (rows: n_a, k_a, p_a, ci_a, n_b, ... as n_ru, k_ru, "
                "p_ru, ci_ru, n_foreign, ...; diff to cohens_h as secondary.independent). "
                "Respondents present in both waves cannot be linked (no identity is kept), so "
                "the comparison assumes independent samples. The filters of /comparison "
                "except 'wave'; 'a' and 'b' must name two different existing waves",
                [
                    *(
                        {
                            "name": side,
                            "in": "query",
                            "required": True,
                            "description": f"The code of wave {side}",
                            "schema": {"type": "string"},
                        }
                        for side in ("a", "b")
                    ),
                    *(p for p in FILTER_PARAMS if p["name"] != "wave"),
                ],
                {"$ref": "#/components/schemas/WaveComparison"},
            ),
            "/adjusted": get(
                "Foreign vs Russian odds ratios per practice, unadjusted and adjusted for "
                "period, role level and job function (logistic GEE), with the adjusted "
                "difference in the share; responses from before 2026-12 are not used",
                FILTER_PARAMS,
                {"$ref": "#/components/schemas/Adjusted"},
            ),
            "/fieldwork": get(
                "Fieldwork numbers of the whole study or of one wave: the funnel, the "
                "numbers per channel, the sample",
                [INCLUDE_DEMO, WAVE_PARAM],
                {"$ref": "#/components/schemas/Fieldwork"},
            ),
            "/export/{name}": {
                "get": {
                    "summary": "Anonymized export (zip or one file)",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "enum": [
                                    "zip",
                                    "responses",
                                    "answers_long",
                                    "codebook",
                                    "disclosure_report",
                                    "examples",
                                    "datapackage",
                                    "load_py",
                                    "load_r",
                                    *(
                                        f"{stem}.{ext}"
                                        for ext in ("sav", "dta", "parquet")
                                        for stem in ("responses", "answers_long")
                                    ),
                                ],
                            },
                        },
                        {
                            "name": "format",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": ["utf8", "excel"]},
                        },
                        {
                            "name": "with",
                            "in": "query",
                            "required": False,
                            "description": "Labelled files in the zip beside the CSV, "
                            "comma-separated: sav (SPSS), dta (Stata), parquet; labels in "
                            "the language of lang",
                            "schema": {"type": "string", "pattern": "^[a-z,]*$"},
                        },
                        {
                            "name": "k",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "integer",
                                "minimum": export.min_k(),
                                "maximum": 50,
                            },
                        },
                        {
                            "name": "include_examples",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": ["0", "1"]},
                        },
                        {
                            "name": "confirm_examples",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": ["0", "1"]},
                        },
                        INCLUDE_DEMO,
                        INCLUDE_PILOT,
                    ],
                    "responses": {
                        "200": {
                            "description": "The file",
                            "content": {
                                "application/zip": {},
                                "text/csv": {},
                                "application/json": {},
                                "application/x-spss-sav": {},
                                "application/x-stata-dta": {},
                                "application/vnd.apache.parquet": {},
                                "text/plain": {},  # the loaders load.py and load.R
                            },
                        },
                        "400": {
                            "description": "Bad request",
                            "content": {"application/json": {"schema": error}},
                        },
                        "401": unauthorized,
                        "409": {
                            "description": "Export refused (anonymity)",
                            "content": {"application/json": {"schema": error}},
                        },
                        "202": {
                            "description": "A large study: the export is prepared by a "
                            "background job; 'url' (and the Location header) is the job",
                            "content": {"application/json": {"schema": JOB_SCHEMA}},
                        },
                    },
                }
            },
            "/jobs/{job_id}": job_path(
                "A background job (its starter only): status queued, running, done or "
                "failed, progress 0 to 1, and 'file_url' once done",
                {
                    "200": {
                        "description": "The job",
                        "content": {"application/json": {"schema": JOB_SCHEMA}},
                    },
                },
                unauthorized,
                error,
            ),
            "/jobs/{job_id}/file": job_path(
                "The file a finished job produced",
                {
                    "200": {
                        "description": "The file",
                        "content": {
                            "application/zip": {},
                            "text/csv": {},
                            "text/html": {},
                            "application/json": {},
                        },
                    },
                    "409": {
                        "description": "Not done yet, or failed: the job is in 'job'",
                        "content": {"application/json": {"schema": error}},
                    },
                },
                unauthorized,
                error,
            ),
            "/openapi.json": get("This document"),
            **api_fieldwork.openapi_paths(error, unauthorized),
        },
    }


# Fieldwork routes (waves, channels, invitations, quotas) join this blueprint; last, since
# that module imports bp from here.
from survey import api_fieldwork  # noqa: E402
