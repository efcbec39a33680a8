"""Blueprint /api/v1: the dashboard's numbers as JSON, for a token or a researcher session."""

from __future__ import annotations

import math

from flask import Blueprint, request
from flask_babel import force_locale

from survey import filters
from survey.auth import researcher_required
from survey.catalog import Catalog
from survey.lazy import LazyModule
from survey.links import public_url
from survey.questions import BACKGROUND
from survey.responses import catalog

bp = Blueprint("api", __name__, url_prefix="/api/v1")

anonymize = LazyModule("survey.anonymize")
disclosure = LazyModule("survey.disclosure")
export = LazyModule("survey.export")
queries = LazyModule("survey.queries")
results = LazyModule("survey.results")


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


def _rating(row: dict, kind: str) -> dict:
    return {
        "n": whole(row[f"rating_n_{kind}"]),
        "mean": clean(row[f"rating_mean_{kind}"]),
        "mean_ci": [
            clean(row[f"rating_mean_{kind}_ci_low"]),
            clean(row[f"rating_mean_{kind}_ci_high"]),
        ],
        "median": clean(row[f"rating_median_{kind}"]),
        "counts": [whole(row[f"r{r}_{kind}"]) for r in range(1, 6)],
    }


def comparison_row(row: dict, key: str = "practice_id") -> dict:
    """One practice (or category) of the comparison table as the API's JSON object.

    ``diff``, ``test``, ``statistic``, ``p_value``, ``q_value``, ``cohens_h`` and
    ``rating_p_value``, ``rating_q_value`` are the primary tests (partially overlapping
    samples: ``overlap_z``, ``overlap_t``); ``secondary`` holds the tests kept for
    reference, each named for what it is, beside ``paired`` and ``rating_paired``.

    A category row adds ``p_ru_bounds`` and ``p_foreign_bounds``: the prevalence with the
    respondents whose category answer is undetermined (``dk_*``: no yes, some don't-know)
    counted as no, then as yes; ``p_ru`` (the headline) leaves them out.
    """
    out = {
        key: row[key],
        **{
            name: whole(row[name])
            for name in ("n_ru", "k_ru", "dk_ru", "n_foreign", "k_foreign", "dk_foreign")
        },
        **{name: clean(row[name]) for name in ("p_ru", "p_foreign", "diff")},
        "ci_ru": [clean(row["ci_ru_low"]), clean(row["ci_ru_high"])],
        "ci_foreign": [clean(row["ci_foreign_low"]), clean(row["ci_foreign_high"])],
        "diff_ci": [clean(row["diff_ci_low"]), clean(row["diff_ci_high"])],
        "test": _name(row["test"]),
        "statistic": clean(row["statistic"]),
        "p_value": clean(row["p_val"]),
        "q_value": clean(row["q_val"]),
        "cohens_h": clean(row["cohens_h"]),
        "cohens_h_ci": [clean(row["cohens_h_ci_low"]), clean(row["cohens_h_ci_high"])],
        "overlap_r": clean(row["overlap_r"]),
        "paired": {
            "n": whole(row["paired_n"]),
            "b": whole(row["paired_b"]),
            "c": whole(row["paired_c"]),
            "diff": clean(row["paired_diff"]),
            "diff_ci": [clean(row["paired_ci_low"]), clean(row["paired_ci_high"])],
            "p_value": clean(row["paired_p_val"]),
            "q_value": clean(row["paired_q_val"]),
        },
        "rating_ru": _rating(row, "ru"),
        "rating_foreign": _rating(row, "foreign"),
        "rating_diff": clean(row["rating_diff"]),
        "rating_diff_ci": [clean(row["rating_diff_ci_low"]), clean(row["rating_diff_ci_high"])],
        "rating_test": _name(row["rating_test"]),
        "rating_statistic": clean(row["rating_statistic"]),
        "rating_df": clean(row["rating_df"]),
        "rating_p_value": clean(row["rating_p_val"]),
        "rating_q_value": clean(row["rating_q_val"]),
        "rating_u": clean(row["mwu_u"]),
        "rank_biserial": clean(row["rank_biserial"]),
        "rating_paired": {
            "n": whole(row["rating_paired_n"]),
            "statistic": clean(row["wilcoxon_statistic"]),
            "p_value": clean(row["wilcoxon_p_val"]),
            "q_value": clean(row["wilcoxon_q_val"]),
        },
        "secondary": {
            "independent": {
                "description": "Russian-only vs foreign-only respondents, independent samples",
                "n_ru": whole(row["n_ru_only"]),
                "k_ru": whole(row["k_ru_only"]),
                "n_foreign": whole(row["n_foreign_only"]),
                "k_foreign": whole(row["k_foreign_only"]),
                "diff": clean(row["indep_diff"]),
                "diff_ci": [clean(row["indep_ci_low"]), clean(row["indep_ci_high"])],
                "test": _name(row["indep_test"]),
                "statistic": clean(row["indep_statistic"]),
                "p_value": clean(row["indep_p_val"]),
                "q_value": clean(row["indep_q_val"]),
                "cohens_h": clean(row["indep_cohens_h"]),
            },
            "mann_whitney": {
                "description": "all Russian vs all foreign ratings as if independent",
                "u": clean(row["mwu_u"]),
                "p_value": clean(row["mwu_p_val"]),
                "q_value": clean(row["mwu_q_val"]),
                "rank_biserial": clean(row["rank_biserial"]),
                "rank_biserial_ci": [
                    clean(row["rank_biserial_ci_low"]),
                    clean(row["rank_biserial_ci_high"]),
                ],
            },
        },
        "low_n": bool(row["low_n"]),
        "suppressed": [group for group in disclosure.CELL_GROUPS if row.get(f"suppressed_{group}")],
        "low_n_paired": bool(row["low_n_paired"]),
        "low_n_rating": bool(row["low_n_rating"]),
    }
    if key == "category_id":
        for kind in ("ru", "foreign"):
            bounds = [clean(row[f"p_{kind}_bound_low"]), clean(row[f"p_{kind}_bound_high"])]
            out[f"p_{kind}_bounds"] = bounds
    return out


def _name(value) -> str | None:
    """A test's name, or None when there is no test (or it is withheld)."""
    return value if isinstance(value, str) else None


@bp.get("/comparison")
def comparison():
    """The Russian-vs-foreign comparison for the filters given as query parameters.

    A segment the disclosure gate withholds answers ``suppressed: true`` with the reason,
    never its counts; withheld cells are null and listed in each row's ``suppressed``.
    """
    segment = _segment("level")
    level = filters.choice(request.args, "level", ("practice", "category"), "practice")
    result = results.comparison(segment)
    head = {"filters": result.filters, "demo": result.demo, "level": level}
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


@bp.get("/fieldwork")
def fieldwork():
    """Fieldwork numbers: completed, drafts, completion rate, drop-off, per day, background.

    Background cells below the disclosure threshold are null and listed in
    ``background_suppressed``.
    """
    filters.check_names(request.args, ("include_demo",))
    include_demo = filters.parse_bool("include_demo", request.args.get("include_demo"))
    data = results.fieldwork(include_demo)
    return {
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
    }


@bp.get("/export/<name>")
def export_file(name: str):
    """The anonymized export: ``zip``, ``responses``, ``answers_long``, ``codebook``,
    ``disclosure_report`` (and ``examples`` with include_examples=1&confirm_examples=1)."""
    try:
        return export.download(request.args, name)
    except export.ExportRequestError as exc:
        return {"error": "bad_request", "message": str(exc)}, 400
    except anonymize.ExportRefused as exc:
        return {"error": "export_refused", "message": str(exc)}, 409


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
        "name": "wave",
        "in": "query",
        "required": False,
        "description": "The code of an existing wave; any other value is a 400.",
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
        "name": "exclude_low_quality",
        "in": "query",
        "required": False,
        "description": "1 leaves out responses the quality indicators mark low quality.",
        "schema": {"type": "string", "enum": ["0", "1"]},
    },
]


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
                                "reason": {"enum": ["too_small", "differencing"]},
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
                            },
                        },
                    ],
                },
                "Fieldwork": {
                    "description": "Background cells resting on fewer than 'min_cell' "
                    "respondents are null and listed in 'background_suppressed'.",
                    "type": "object",
                    "required": ["min_cell", "background", "background_suppressed"],
                    "properties": {
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
                [
                    *FILTER_PARAMS,
                    {
                        "name": "level",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["practice", "category"]},
                    },
                ],
                {"$ref": "#/components/schemas/Comparison"},
            ),
            "/fieldwork": get(
                "Fieldwork numbers", FILTER_PARAMS[-1:], {"$ref": "#/components/schemas/Fieldwork"}
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
                        FILTER_PARAMS[-1],
                    ],
                    "responses": {
                        "200": {
                            "description": "The file",
                            "content": {
                                "application/zip": {},
                                "text/csv": {},
                                "application/json": {},
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
                    },
                }
            },
            "/openapi.json": get("This document"),
        },
    }
