"""Blueprint /api/v1: the dashboard's numbers as JSON, for a token or a researcher session."""

from __future__ import annotations

import math

from flask import Blueprint, request, url_for

from survey.auth import researcher_required
from survey.catalog import Catalog
from survey.lazy import LazyModule
from survey.questions import BACKGROUND
from survey.responses import catalog

bp = Blueprint("api", __name__, url_prefix="/api/v1")

anonymize = LazyModule("survey.anonymize")
export = LazyModule("survey.export")
queries = LazyModule("survey.queries")
results = LazyModule("survey.results")


@bp.before_request
@researcher_required
def guard():
    """Every route here needs a researcher: a token or a session."""
    return None


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
        "n": clean(row[f"rating_n_{kind}"]),
        "mean": clean(row[f"rating_mean_{kind}"]),
        "median": clean(row[f"rating_median_{kind}"]),
        "counts": [clean(row[f"r{r}_{kind}"]) for r in range(1, 6)],
    }


def comparison_row(row: dict, key: str = "practice_id") -> dict:
    """One practice (or category) of the comparison table as the API's JSON object."""
    return {
        key: row[key],
        **{
            name: clean(row[name])
            for name in (
                "n_ru",
                "k_ru",
                "dk_ru",
                "p_ru",
                "n_foreign",
                "k_foreign",
                "dk_foreign",
                "p_foreign",
                "diff",
            )
        },
        "ci_ru": [clean(row["ci_ru_low"]), clean(row["ci_ru_high"])],
        "ci_foreign": [clean(row["ci_foreign_low"]), clean(row["ci_foreign_high"])],
        "diff_ci": [clean(row["diff_ci_low"]), clean(row["diff_ci_high"])],
        "test": row["test"] if isinstance(row["test"], str) else None,
        "statistic": clean(row["statistic"]),
        "p_value": clean(row["p_val"]),
        "q_value": clean(row["q_val"]),
        "cohens_h": clean(row["cohens_h"]),
        "paired": {
            "n": clean(row["paired_n"]),
            "b": clean(row["paired_b"]),
            "c": clean(row["paired_c"]),
            "diff": clean(row["paired_diff"]),
            "diff_ci": [clean(row["paired_ci_low"]), clean(row["paired_ci_high"])],
            "p_value": clean(row["paired_p_val"]),
            "q_value": clean(row["paired_q_val"]),
        },
        "rating_ru": _rating(row, "ru"),
        "rating_foreign": _rating(row, "foreign"),
        "rating_u": clean(row["rating_u"]),
        "rating_p_value": clean(row["rating_p_val"]),
        "rating_q_value": clean(row["rating_q_val"]),
        "rank_biserial": clean(row["rank_biserial"]),
        "rating_paired": {
            "n": clean(row["rating_paired_n"]),
            "statistic": clean(row["wilcoxon_statistic"]),
            "p_value": clean(row["wilcoxon_p_val"]),
            "q_value": clean(row["wilcoxon_q_val"]),
        },
        "low_n": bool(row["low_n"]),
        "low_n_paired": bool(row["low_n_paired"]),
        "low_n_rating": bool(row["low_n_rating"]),
    }


@bp.get("/comparison")
def comparison():
    """The Russian-vs-foreign comparison for the filters given as query parameters."""
    result = results.comparison(queries.Segment.from_mapping(request.args))
    level = request.args.get("level", "practice")
    if level not in ("practice", "category"):
        return {"error": "bad_request", "message": "level must be 'practice' or 'category'"}, 400
    table, key = (
        (result.table, "practice_id")
        if level == "practice"
        else (result.category_table, "category_id")
    )
    return {
        "n_respondents": result.n_respondents,
        "filters": result.filters,
        "demo": result.demo,
        "level": level,
        "assumptions": results.assumptions("en"),
        "practices" if level == "practice" else "categories": [
            comparison_row(row, key) for row in table.to_dict("records")
        ],
    }


@bp.get("/fieldwork")
def fieldwork():
    """Fieldwork numbers: completed, drafts, completion rate, drop-off, per day, background."""
    include_demo = queries.Segment.from_mapping(request.args).include_demo
    data = queries.fieldwork(include_demo)
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
        "background": {
            field: {str(code): int(n) for code, n in frame.itertuples(index=False)}
            for field, frame in data["background"].items()
        },
    }


@bp.get("/export/<name>")
def export_file(name: str):
    """The anonymized export: ``zip``, ``responses``, ``answers_long``, ``codebook``,
    ``disclosure_report`` (and ``examples`` with include_examples=1&confirm_examples=1)."""
    args = {**request.args.to_dict(), "file": name}
    try:
        return export.download(args)
    except export.ExportRequestError as exc:
        return {"error": "bad_request", "message": str(exc)}, 400
    except anonymize.ExportRefused as exc:
        return {"error": "export_refused", "message": str(exc)}, 409


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API."""
    return openapi_document(url_for("api.practices", _external=True).rsplit("/", 1)[0])


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
    {"name": "wave", "in": "query", "required": False, "schema": {"type": "string"}},
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
]


def openapi_document(server: str) -> dict:
    """Build the OpenAPI document (paths, security, error schema)."""
    error = {"$ref": "#/components/schemas/Error"}
    unauthorized = {
        "description": "No or invalid credentials",
        "content": {"application/json": {"schema": error}},
    }
    ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}

    def get(summary, params=()):
        return {
            "get": {
                "summary": summary,
                "parameters": list(params),
                "responses": {"200": ok, "401": unauthorized},
            }
        }

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
                }
            },
        },
        "paths": {
            "/practices": get("The practice catalogue"),
            "/comparison": get(
                "Russian vs foreign comparison",
                [
                    *FILTER_PARAMS,
                    {
                        "name": "level",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["practice", "category"]},
                    },
                ],
            ),
            "/fieldwork": get("Fieldwork numbers", FILTER_PARAMS[-1:]),
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
                            "schema": {"type": "integer", "minimum": 2, "maximum": 50},
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
