"""The JSON API fuzzed from its own OpenAPI document: never a 5xx, every error JSON (issue 6).

Two generators, both driven by ``/api/v1/openapi.json`` as the application serves it:

* schemathesis builds cases for every operation, valid ones and ones that break the schema
  (its strategies only: its pytest plugin does not run on pytest 9 and its WSGI transport
  leaves responses open, which ``filterwarnings=error`` turns into failures, so each case is
  sent through Flask's test client here and the response closed);
* a hypothesis generator of our own adds what schemathesis does not send: duplicated and
  unknown query parameters, oversized and wrongly typed values, and random headers.
"""

from __future__ import annotations

import json
import math
import os
import re
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from werkzeug.datastructures import MultiDict

from tests.helpers import auth_header, seed

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),  # more for a deep run
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BINARY = ("application/zip", "text/csv")


pytestmark = pytest.mark.usefixtures("fresh_cache")


@pytest.fixture
def api(app, token):
    """A researcher's bearer token, some (demo) data, and the served OpenAPI document."""
    seed(app, 150, seed_value=5)
    auth = auth_header(token)
    with app.test_client().get("/api/v1/openapi.json", headers=auth) as r:
        assert r.status_code == 200
        document = r.get_json()
    return auth, document


@pytest.fixture
def schema(app, api):
    """The document as schemathesis reads it from the application."""
    auth, _ = api
    # Its WSGI client asks for host "localhost", which the application does not serve
    # (TRUSTED_HOSTS: the configured public host only): name the test host.
    return schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json", app, headers={**auth, "Host": "survey.test"}
    )


def strict_json(text: str):
    """Parse JSON refusing NaN and Infinity, which browsers' JSON.parse rejects."""

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def check(r) -> None:
    """No 5xx; an error is a JSON object with 'error' and 'message'; JSON is strict."""
    path = r.request.full_path
    assert r.status_code < 500, (path, r.status_code)
    if r.status_code >= 400:
        assert r.mimetype == "application/json", (path, r.status_code, r.mimetype)
        body = strict_json(r.get_data(as_text=True))
        assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body
    elif r.mimetype == "application/json":
        body = strict_json(r.get_data(as_text=True))
        assert isinstance(body, dict)
    else:
        assert r.status_code == 200 and r.mimetype in BINARY, (path, r.mimetype)
    assert r.headers.get("Cache-Control") == "no-store"
    assert r.headers.get("X-Content-Type-Options") == "nosniff"


JSON_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def conforms(value, schema: dict, document: dict) -> bool:
    """``value`` meets the document's schema (the keywords the document uses: $ref, oneOf,
    type, const, enum, required, properties, additionalProperties, items)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return conforms(value, document["components"]["schemas"][name], document)
    if "oneOf" in schema:
        return sum(conforms(value, branch, document) for branch in schema["oneOf"]) == 1
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if isinstance(value, bool) and "boolean" not in types:
            return False
        # JSON Schema counts a number with a zero fractional part as an integer (1.0 too).
        integral = isinstance(value, float) and value.is_integer() and "integer" in types
        if not integral and not isinstance(value, tuple(JSON_TYPES[t] for t in types)):
            return False
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, dict):
        if not set(schema.get("required", ())) <= set(value):
            return False
        for key, item in value.items():
            sub = schema.get("properties", {}).get(key, schema.get("additionalProperties", {}))
            if isinstance(sub, dict) and not conforms(item, sub, document):
                return False
    if isinstance(value, list) and "items" in schema:
        return all(conforms(item, schema["items"], document) for item in value)
    return True


def assert_documented(r, document: dict, path: str, method: str = "get") -> None:
    """The status is one the operation declares, and a JSON body has the declared shape."""
    responses = document["paths"][path][method]["responses"]
    assert str(r.status_code) in responses, (path, r.status_code, r.get_data(as_text=True)[:300])
    content = responses[str(r.status_code)].get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is not None and r.mimetype == "application/json":
        body = strict_json(r.get_data(as_text=True))
        assert conforms(body, schema, document), (path, r.status_code, body)


# ---------------------------------------------------------------- schemathesis


def test_the_document_describes_every_api_route(app, api):
    _, document = api
    served = {
        re.sub(r"<(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
    }
    assert set(document["paths"]) == served
    assert document["servers"][0]["url"].endswith("/api/v1")


def test_schemathesis_reads_every_operation(schema, api):
    operations = [result.ok() for result in schema.get_all_operations()]
    # schemathesis leaves out the document's own route; the generator below covers it
    documented = {(m.upper(), p) for p, item in api[1]["paths"].items() for m in item}
    assert sorted((op.method.upper(), op.path) for op in operations) == sorted(
        documented - {("GET", "/openapi.json")}
    )


@FUZZ
@given(data=st.data())
def test_schemathesis_cases_never_give_a_5xx(app, api, schema, data):
    auth, _ = api
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    case = data.draw(schema.as_strategy(generation_mode=mode))
    kwargs = case.as_transport_kwargs(headers=auth)
    with app.test_client().open(**kwargs) as r:
        check(r)
        if mode is GenerationMode.POSITIVE:  # a valid request gets a documented answer
            assert_documented(r, api[1], case.operation.path, case.operation.method.lower())


# ---------------------------------------------------------------- our own generator


TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
WRONG = st.sampled_from(
    [
        "",
        "-1",
        "0",
        "1",
        "2",
        "51",
        "99999999999999999999999",
        "1e309",
        "NaN",
        "-inf",
        "null",
        "true",
        "[]",
        '{"a": 1}',
        "%00",
        "\x00",
        "../../etc/passwd",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
    ]
)


class Long(str):
    """A long string that shows itself briefly in a failing example."""

    def __repr__(self) -> str:
        return f"Long({self[:1]!r} * {len(self)})"


OVERSIZED = st.integers(300, 20_000).map(lambda n: Long("ы" * n))
HEADER_NAME = st.text("abcdefghijklmnopqrstuvwxyz-ABCXYZ0123456789", min_size=1, max_size=20)
HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
KNOWN_HEADERS = st.sampled_from(
    [
        "Accept",
        "Accept-Language",
        "Accept-Encoding",
        "Content-Type",
        "Cookie",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "If-None-Match",
        "Range",
        "Origin",
        "Referer",
    ]
)
AUTH = st.sampled_from(["valid"] * 5 + ["none", "wrong", "truncated", "basic", "huge"])


def parameters(document) -> list[tuple[str, list[dict]]]:
    """Every documented GET operation with its parameters (the fieldwork writes, POST, PUT
    and DELETE with an owner's token, are fuzzed in tests/test_manage_api.py)."""
    return [
        (path, item["get"].get("parameters", []))
        for path, item in document["paths"].items()
        if "get" in item
    ]


def values_for(parameter: dict):
    """Valid values of a parameter, and everything it should not be."""
    schema = parameter.get("schema", {})
    valid = [str(v) for v in schema.get("enum", [])]
    if schema.get("type") == "integer":
        low, high = schema.get("minimum", 0), schema.get("maximum", 100)
        valid += [str(low), str(high), str(low - 1), str(high + 1)]
    strategies = [WRONG, TEXT, OVERSIZED]
    if valid:
        strategies.insert(0, st.sampled_from(valid))
    return st.one_of(*strategies)


@st.composite
def requests(draw, document):
    """A GET to one documented operation with a random, often hostile, query and headers."""
    path, params = draw(st.sampled_from(parameters(document)))
    query = MultiDict()
    for parameter in params:
        if parameter["in"] == "path":
            value = draw(values_for(parameter))
            path = path.replace("{" + parameter["name"] + "}", quote(value, safe=""))
            continue
        for _ in range(draw(st.sampled_from([0, 1, 1, 2, 3]))):  # missing, once, repeated
            query.add(parameter["name"], draw(values_for(parameter)))
    for name, value in draw(st.lists(st.tuples(TEXT, st.one_of(TEXT, WRONG)), max_size=3)):
        query.add(name, value)
    headers = dict(
        draw(st.lists(st.tuples(st.one_of(KNOWN_HEADERS, HEADER_NAME), HEADER_VALUE), max_size=4))
    )
    return "/api/v1" + path, query, headers


def authorization(mode: str, auth: dict) -> dict:
    token = auth["Authorization"].removeprefix("Bearer ")
    return {
        "valid": auth,
        "none": {},
        "wrong": {"Authorization": "Bearer svy_" + "x" * 43},
        "truncated": {"Authorization": f"Bearer {token[:-3]}"},
        "basic": {"Authorization": f"Basic {token}"},
        "huge": {"Authorization": "Bearer " + "y" * 5000},
    }[mode]


def matches(template: str, path: str) -> bool:
    """``/api/v1`` + ``path`` is an instance of the document's path ``template``."""
    pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
    return re.fullmatch("/api/v1" + pattern, path) is not None


def test_every_documented_route_answers_a_plain_request(app, api):
    auth, document = api
    for path, params in parameters(document):
        url = "/api/v1" + path.replace("{name}", "codebook").replace("{job_id}", "x" * 32)
        required = any(p.get("required") and p.get("in") == "query" for p in params)
        with app.test_client().get(url, headers=auth) as r:
            check(r)
            refusable = path.startswith("/export")  # too few responses to anonymize: 409
            expected = (200, 409) if refusable else (404,) if "{job_id}" in path else (200,)
            if required:  # a required query parameter left out: a 400 that names it
                expected = (400,)
            assert r.status_code in expected, url
            if required:
                assert r.get_json()["error"], url


@FUZZ
@given(data=st.data(), auth_mode=AUTH)
def test_random_queries_and_headers_never_give_a_5xx(app, api, data, auth_mode):
    auth, document = api
    path, query, headers = data.draw(requests(document))
    headers = {
        k: v for k, v in headers.items() if k.lower() not in ("authorization", "content-length")
    }
    headers.update(authorization(auth_mode, auth))
    with app.test_client().get(path, query_string=query, headers=headers) as r:
        check(r)
        if auth_mode != "valid":  # (an empty path parameter matches no route: 404)
            assert r.status_code in (401, 404), (auth_mode, r.status_code)
        else:
            assert r.status_code in (200, 400, 404, 409), (path, query, r.status_code)
            if r.status_code != 404:  # (a path parameter may match no route)
                template = next(p for p, _ in parameters(document) if matches(p, path))
                assert_documented(r, document, template)


def test_every_number_in_the_json_is_finite(app, api):
    """Small cells (withheld) and tiny segments (refused) leave nulls, never NaN."""
    auth, _ = api
    numbers = []

    def walk(value):
        if isinstance(value, float):
            assert math.isfinite(value)
            numbers.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    client = app.test_client()
    for path, query in (
        ("/api/v1/comparison", {}),
        ("/api/v1/comparison", {"industry": "it", "region": "abroad", "role_level": "executive"}),
        ("/api/v1/comparison", {"level": "category", "language": "en"}),
        ("/api/v1/comparison", {"include_flagged": "1", "include_demo": "1"}),
        ("/api/v1/fieldwork", {}),
        ("/api/v1/fieldwork", {"include_demo": "1"}),
    ):
        with client.get(path, query_string=query, headers=auth) as r:
            check(r)
            assert r.status_code == 200, (path, query, r.status_code)
            body = strict_json(r.get_data(as_text=True))
            walk(body)
            assert_documented(r, api[1], path.removeprefix("/api/v1"))
            if query.get("role_level"):  # a handful of executives abroad in IT: refused
                assert body["suppressed"] is True and "practices" not in body
    assert numbers, "no number was checked"
    # A filter value that names nothing is a documented 400, not an empty (NaN) study.
    for path, query, name in (
        ("/api/v1/comparison", {"wave": "no-such-wave"}, "wave"),
        ("/api/v1/fieldwork", {"industry": "it"}, "industry"),
    ):
        with client.get(path, query_string=query, headers=auth) as r:
            check(r)
            assert r.status_code == 400 and r.get_json()["parameter"] == name
            assert_documented(r, api[1], path.removeprefix("/api/v1"))
