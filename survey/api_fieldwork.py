"""Fieldwork in the API (/api/v1/waves): read by any researcher, changed by an owner's token.

``GET /waves`` lists every wave with its dates (ISO 8601 with the offset of its time zone),
state, target, completed responses and channels (public link and counts); an owner also
gets each wave's quota progress. Public links are not secret (respondents pass them on),
so analysts see them; invitation tokens appear only in the answer that creates them.

Changes need an owner's **API token** (``Authorization: Bearer``); a login session alone
is refused (401) for them. Since a browser never sends that header by itself, a page on
another site cannot make a change through a logged-in researcher's cookie: these routes
are exempt from the CSRF token that protects the forms, and need no other. Bodies are JSON
objects: an unknown key, a wrong type or a bad value is a 400 naming the key
(``field``), and nothing is stored.
"""

from __future__ import annotations

import math
from functools import wraps

from flask import request, url_for

from survey import fieldwork, manage
from survey.api import bp
from survey.auth import researcher_from_token
from survey.extensions import csrf
from survey.fieldwork import FieldworkError
from survey.models import WAVE_TIME_ZONE, Wave


class BadBody(ValueError):
    """A request body that cannot be honoured; ``field`` names the key at fault (or None)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field


def bad_request(field: str | None, message: str):
    """The 400 of a write: which key, and why."""
    return {"error": "bad_request", "field": field, "message": message}, 400


def not_found(message: str):
    """The 404 of a fieldwork request: what was not found."""
    return {"error": "not_found", "message": message}, 404


def owner_token_required(view):
    """A change: only with an owner's API token (401 without one, 403 for an analyst's).

    Exempt from CSRF because the token, which no browser adds on its own, is required.
    """

    @wraps(view)
    def wrapped(*args, **kwargs):
        researcher = researcher_from_token(request.headers.get("Authorization"))
        if researcher is None:
            message = (
                "Changes through the API need an owner's API token "
                "(Authorization: Bearer ...); a login session is not enough."
            )
            return {"error": "unauthorized", "message": message}, 401
        if not researcher.is_owner:
            return {"error": "forbidden", "message": "Only an owner may do this."}, 403
        try:
            return view(*args, **kwargs)
        except BadBody as exc:
            return bad_request(exc.field, str(exc))
        except FieldworkError as exc:
            return bad_request(exc.field, manage.english(exc))

    return csrf.exempt(wrapped)


# ---------------------------------------------------------------- bodies


def json_body(allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
    """The request's JSON object: only ``allowed`` keys, every ``required`` one. An empty
    body counts as ``{}`` when nothing is required."""
    if not request.get_data(cache=True) and not required:
        return {}
    if not request.is_json:
        raise BadBody(None, "Send a JSON object (Content-Type: application/json).")
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # "[[[[...": nested deeper than the parser goes
        data = None
    if not isinstance(data, dict):
        raise BadBody(None, "The body must be a JSON object.")
    for key in data:
        if key not in allowed:
            raise BadBody(str(key)[:100], f"Unknown key {str(key)[:100]!r}.")
    for key in required:
        if key not in data:
            raise BadBody(key, f"The key {key!r} is required.")
    return data


def text(data: dict, key: str, max_length: int, default: str | None = None) -> str | None:
    """A string value without control characters (``default`` when absent or null)."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadBody(key, f"{key!r} must be a string.")
    if len(value) > max_length:
        raise BadBody(key, f"{key!r} has at most {max_length} characters.")
    if manage.has_control_characters(value):
        raise BadBody(key, f"{key!r} must not contain control characters.")
    return value


def required_text(data: dict, key: str, max_length: int) -> str:
    """A string value that must be given."""
    value = text(data, key, max_length)
    if value is None:
        raise BadBody(key, f"{key!r} must be a string.")
    return value


def whole_number(data: dict, key: str) -> int | None:
    """An integer value (a JSON number without fraction), or None when absent or null."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadBody(key, f"{key!r} must be a whole number.")
    return value


def flag(data: dict, key: str) -> bool:
    """A boolean value (false when absent)."""
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise BadBody(key, f"{key!r} must be true or false.")
    return value


def moment(data: dict, key: str):
    """A date and time (ISO 8601; without an offset: local time in the wave's zone)."""
    value = text(data, key, 40)
    if value is None:
        return None
    try:
        return manage.parse_moment(value)
    except ValueError as exc:
        raise BadBody(key, f"{key!r}: {exc}.") from None


def _wave(code: str) -> Wave | None:
    return fieldwork.wave_by_code(code)


# ---------------------------------------------------------------- JSON


def quota_json(row) -> dict:
    """One quota's progress (survey.quotas.QuotaProgress) as JSON."""
    return {
        "field": row.field,
        "value": row.value,
        "label": {"ru": row.label_ru, "en": row.label_en},
        "target_count": row.target_count,
        "target_share": row.target_share,
        "closes": row.closes,
        "target": row.target,
        "achieved": row.achieved,
        "full": row.full,
    }


def wave_json(wave: Wave, owner: bool) -> dict:
    """A wave as the API gives it (quotas for owners only)."""
    summary = manage.wave_summary(wave, with_quotas=owner)
    out = {
        **{k: v for k, v in summary.items() if k not in ("channels", "quotas")},
        "channels": [
            {k: c[k] for k in ("label", "link", "opened", "started", "completed")}
            | {"completion_rate": c["completion_rate"]}
            for c in summary["channels"]
        ],
    }
    if owner:
        out["quotas"] = [quota_json(row) for row in summary["quotas"]]
    return out


def _is_owner() -> bool:
    from survey.auth import current_researcher

    return current_researcher().is_owner


# ---------------------------------------------------------------- routes


@bp.get("/waves")
def waves():
    """Every wave: dates, state, target, completed, channels with links and counts."""
    owner = _is_owner()
    return {"waves": [wave_json(wave, owner) for wave in fieldwork.waves()]}


@bp.post("/waves")
@owner_token_required
def create_wave():
    """Create a wave (with its direct channel); 201 and the wave."""
    data = json_body(WAVE_KEYS, required=("code", "name_ru", "name_en"))
    time_zone = text(data, "time_zone", 64, WAVE_TIME_ZONE)
    fieldwork.zone(time_zone)  # an unknown zone: FieldworkError naming time_zone
    spec = fieldwork.WaveSpec(
        code=required_text(data, "code", 32),
        name_ru=required_text(data, "name_ru", 200),
        name_en=required_text(data, "name_en", 200),
        opens_at=moment(data, "opens_at"),
        closes_at=moment(data, "closes_at"),
        time_zone=time_zone,
        target=target(data),
        is_pilot=flag(data, "is_pilot"),
    )
    wave = fieldwork.create_wave(spec)
    location = url_for("api.waves") + "#" + wave.code
    return wave_json(wave, owner=True), 201, {"Location": location}


def target(data: dict) -> int | None:
    """The wave's target: a whole number from 1 to MAX_TARGET (or none)."""
    value = whole_number(data, "target")
    if value is not None and not 1 <= value <= manage.MAX_TARGET:
        raise BadBody("target", f"'target' is between 1 and {manage.MAX_TARGET}.")
    return value


WAVE_KEYS = (
    "code",
    "name_ru",
    "name_en",
    "opens_at",
    "closes_at",
    "time_zone",
    "target",
    "is_pilot",
)


@bp.post("/waves/<code>/open")
@owner_token_required
def open_wave(code: str):
    """Open a wave now, or at ``at``."""
    return _change_moment(code, fieldwork.open_wave)


@bp.post("/waves/<code>/close")
@owner_token_required
def close_wave(code: str):
    """Close a wave now, or at ``at``."""
    return _change_moment(code, fieldwork.close_wave)


def _change_moment(code: str, change):
    wave = _wave(code)
    if wave is None:
        return not_found("No wave has this code.")
    data = json_body(("at",))
    change(wave, moment(data, "at"))
    return wave_json(wave, owner=True)


@bp.post("/waves/<code>/publish")
@owner_token_required
def publish_results(code: str):
    """Publish the wave's public results summary (``{"public": true}``) or hide it; the
    wave. A pilot wave cannot be published (a 400 naming ``public``)."""
    wave = _wave(code)
    if wave is None:
        return not_found("No wave has this code.")
    data = json_body(("public",), required=("public",))
    try:
        fieldwork.set_results_public(wave, flag(data, "public"))
    except FieldworkError as exc:
        raise BadBody("public", manage.english(exc)) from None
    return wave_json(wave, owner=True)


@bp.post("/waves/<code>/channels")
@owner_token_required
def create_channel(code: str):
    """A new channel of a wave; 201 and the wave."""
    wave = _wave(code)
    if wave is None:
        return not_found("No wave has this code.")
    data = json_body(("label",), required=("label",))
    fieldwork.create_channel(wave, required_text(data, "label", 40))
    return wave_json(wave, owner=True), 201


@bp.post("/waves/<code>/channels/<label>/invitations")
@owner_token_required
def create_invitations(code: str, label: str):
    """N single-use invitation links of a channel: shown in this answer only."""
    wave = _wave(code)
    channel = manage.channel_or_none(wave, label) if wave is not None else None
    if channel is None:
        return not_found("No such wave or channel.")
    data = json_body(("count",), required=("count",))
    count = whole_number(data, "count")
    if count is None:
        raise BadBody("count", "'count' must be a whole number.")
    tokens = fieldwork.create_invitations(channel, count)
    return {
        "wave": wave.code,
        "channel": channel.label,
        "count": len(tokens),
        "links": [manage.invitation_url(token) for token in tokens],
        "note": "These links are shown only now: only a hash of each is stored.",
    }, 201


@bp.put("/waves/<code>/quotas")
@owner_token_required
def set_quota(code: str):
    """Set (create or replace) one quota of a wave; the wave's quota progress."""
    from survey import quotas

    wave = _wave(code)
    if wave is None:
        return not_found("No wave has this code.")
    data = json_body(QUOTA_KEYS, required=("field", "value"))
    share = data.get("target_share")
    if share is not None and (isinstance(share, bool) or not isinstance(share, int | float)):
        raise BadBody("target_share", "'target_share' must be a number.")
    quotas.set_quota(
        wave,
        required_text(data, "field", 32),
        required_text(data, "value", 32),
        target_count=whole_number(data, "target_count"),
        target_share=share,
        closes=flag(data, "closes"),
    )
    return {"wave": wave.code, "quotas": [quota_json(row) for row in quotas.progress(wave)]}


QUOTA_KEYS = ("field", "value", "target_count", "target_share", "closes")


@bp.delete("/waves/<code>/quotas")
@owner_token_required
def delete_quota(code: str):
    """Delete the quota of ``?field=&value=``; the wave's remaining quota progress."""
    from survey import filters, quotas

    wave = _wave(code)
    if wave is None:
        return not_found("No wave has this code.")
    filters.check_names(request.args, ("field", "value"))  # else a 400 naming it
    field, value = request.args.get("field"), request.args.get("value")
    for name, given in (("field", field), ("value", value)):
        if not given:
            raise BadBody(name, f"The query parameter {name!r} is required.")
    found = next((q for q in quotas.quotas(wave) if (q.field, q.value) == (field, value)), None)
    if found is None:
        return not_found("This wave has no quota for this field and value.")
    quotas.delete_quota(wave, found.id)
    return {"wave": wave.code, "quotas": [quota_json(row) for row in quotas.progress(wave)]}


# ---------------------------------------------------------------- OpenAPI


def _nullable(kind: str, description: str | None = None) -> dict:
    schema = {"type": [kind, "null"]}
    return {**schema, "description": description} if description else schema


CHANNEL_SCHEMA = {
    "type": "object",
    "required": ["label", "link", "opened", "started", "completed", "completion_rate"],
    "properties": {
        "label": {"type": "string"},
        "link": {"type": "string", "description": "The channel's public link (/s/<slug>)"},
        "opened": {"type": "integer", "description": "Link openings (plain daily counters)"},
        "started": {
            "type": "integer",
            "description": "Consents given (a withdrawn or purged draft still counts)",
        },
        "completed": {"type": "integer", "description": "Submitted responses"},
        "completion_rate": _nullable("number", "completed / started; null before a start"),
    },
}
QUOTA_SCHEMA = {
    "type": "object",
    "required": [
        "field",
        "value",
        "label",
        "target_count",
        "target_share",
        "closes",
        "target",
        "achieved",
        "full",
    ],
    "properties": {
        "field": {"type": "string"},
        "value": {"type": "string"},
        "label": {"type": "object"},
        "target_count": _nullable("integer"),
        "target_share": _nullable("number"),
        "closes": {"type": "boolean"},
        "target": _nullable(
            "integer", "The target as a number of completes (a share turned into one)"
        ),
        "achieved": {"type": "integer"},
        "full": {"type": "boolean"},
    },
}
WAVE_SCHEMA = {
    "type": "object",
    "required": [
        "code",
        "name_ru",
        "name_en",
        "state",
        "opens_at",
        "closes_at",
        "time_zone",
        "target",
        "completed",
        "is_pilot",
        "is_default",
        "results_public",
        "demo",
        "channels",
    ],
    "properties": {
        "code": {"type": "string"},
        "name_ru": {"type": "string"},
        "name_en": {"type": "string"},
        "state": {"enum": list(fieldwork.WAVE_STATES)},
        "opens_at": _nullable("string", "ISO 8601 with the offset of its time zone"),
        "closes_at": _nullable("string", "ISO 8601 with the offset of its time zone"),
        "time_zone": {"type": "string"},
        "target": _nullable("integer"),
        "completed": {"type": "integer", "description": "Submitted responses of the wave"},
        "is_pilot": {"type": "boolean"},
        "is_default": {"type": "boolean"},
        "results_public": {
            "type": "boolean",
            "description": "Whether the wave's results summary is public at /results/{code} "
            "(aggregates only; a pilot wave's never is)",
        },
        "demo": {
            "type": "boolean",
            "description": "Whether demo (synthetic) responses are in the counts: they stand "
            "in, as on the fieldwork page, while no real response is submitted",
        },
        "channels": {"type": "array", "items": CHANNEL_SCHEMA},
        "quotas": {
            "type": "array",
            "items": QUOTA_SCHEMA,
            "description": "Quota progress: for an owner's request only",
        },
    },
}
MOMENT = {
    "type": ["string", "null"],
    "maxLength": 40,
    "description": "ISO 8601 date and time; without an offset, local time in the wave's zone",
}
WAVE_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["code", "name_ru", "name_en"],
    "properties": {
        "code": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,31}$"},
        "name_ru": {"type": "string", "minLength": 1, "maxLength": 200},
        "name_en": {"type": "string", "minLength": 1, "maxLength": 200},
        "opens_at": MOMENT,
        "closes_at": MOMENT,
        "time_zone": {"type": "string", "default": WAVE_TIME_ZONE, "maxLength": 64},
        "target": {"type": ["integer", "null"], "minimum": 1, "maximum": manage.MAX_TARGET},
        "is_pilot": {"type": "boolean"},
    },
}
QUOTA_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["field", "value"],
    "description": "Exactly one of target_count and target_share",
    "properties": {
        "field": {"type": "string"},
        "value": {"type": "string"},
        "target_count": {"type": ["integer", "null"], "minimum": 1},
        "target_share": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "maximum": 1,
            "description": "Of the wave's target, or of its completes when it has none",
        },
        "closes": {"type": "boolean"},
    },
}


def openapi_paths(error: dict, unauthorized: dict) -> dict:
    """The OpenAPI operations of this module, for :func:`survey.api.openapi_document`."""

    def json(schema: dict, description: str = "OK") -> dict:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    errors = {
        "400": json(error, "A bad body or value: 'field' names the key, nothing is stored"),
        "401": {**unauthorized, "description": "No owner's API token (a session is not enough)"},
        "403": json(error, "The token is an analyst's: only an owner may change fieldwork"),
        "404": json(error, "No such wave (or channel)"),
    }
    wave = json(WAVE_SCHEMA, "The wave")
    code = {
        "name": "code",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "maxLength": 32},
    }
    label = {**code, "name": "label", "schema": {"type": "string", "maxLength": 40}}
    quotas_answer = json(
        {
            "type": "object",
            "required": ["wave", "quotas"],
            "properties": {
                "wave": {"type": "string"},
                "quotas": {"type": "array", "items": QUOTA_SCHEMA},
            },
        },
        "The wave's quotas with their progress",
    )

    def write(summary, answer, body=None, params=(), status="200", required=True):
        operation = {
            "summary": summary,
            "parameters": list(params),
            "responses": {status: answer, **errors},
        }
        if body is not None:
            content = {"application/json": {"schema": body}}
            operation["requestBody"] = {"required": required, "content": content}
        return operation

    moment_body = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"at": MOMENT},
    }
    return {
        "/waves": {
            "get": {
                "summary": "Every wave: dates, state, target, completed responses, channels "
                "with their public links and counts (and, for an owner, quota progress)",
                "parameters": [],
                "responses": {
                    "200": json(
                        {
                            "type": "object",
                            "required": ["waves"],
                            "properties": {"waves": {"type": "array", "items": WAVE_SCHEMA}},
                        }
                    ),
                    "401": unauthorized,
                },
            },
            "post": write("Create a wave (owner's token)", wave, WAVE_BODY, status="201"),
        },
        "/waves/{code}/open": {
            "post": write(
                "Open a wave now, or at 'at' (owner's token)",
                wave,
                moment_body,
                [code],
                required=False,
            )
        },
        "/waves/{code}/close": {
            "post": write(
                "Close a wave now, or at 'at' (owner's token)",
                wave,
                moment_body,
                [code],
                required=False,
            )
        },
        "/waves/{code}/publish": {
            "post": write(
                "Publish the wave's public results summary at /results/{code}, or hide it "
                "(owner's token); a pilot wave cannot be published",
                wave,
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["public"],
                    "properties": {"public": {"type": "boolean"}},
                },
                [code],
            )
        },
        "/waves/{code}/channels": {
            "post": write(
                "Create a channel with its own public link (owner's token)",
                wave,
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["label"],
                    "properties": {
                        "label": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$"}
                    },
                },
                [code],
                status="201",
            )
        },
        "/waves/{code}/channels/{label}/invitations": {
            "post": write(
                "Generate single-use invitation links (owner's token); the links are in "
                "this answer only: just a hash of each is stored",
                json(
                    {
                        "type": "object",
                        "required": ["wave", "channel", "count", "links"],
                        "properties": {
                            "wave": {"type": "string"},
                            "channel": {"type": "string"},
                            "count": {"type": "integer"},
                            "links": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    "The links",
                ),
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["count"],
                    "properties": {"count": {"type": "integer", "minimum": 1}},
                },
                [code, label],
                status="201",
            )
        },
        "/waves/{code}/quotas": {
            "put": write(
                "Set (create or replace) the quota of one background answer (owner's token)",
                quotas_answer,
                QUOTA_BODY,
                [code],
            ),
            "delete": write(
                "Delete the quota of one background answer (owner's token)",
                quotas_answer,
                None,
                [
                    code,
                    {
                        "name": "field",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "value",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
            ),
        },
    }
