"""Fieldwork in the API: GET /api/v1/waves for researchers, changes with an owner's token.

JSON bodies are checked key by key (an unknown key, a wrong type or a bad value is a 400
naming it, and nothing is stored); an analyst's token gets 403, a login session alone
401 (the token is what protects these writes from cross-site requests); the OpenAPI
document describes every operation and schemathesis fuzzes them with an owner's token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from urllib.parse import urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from sqlalchemy import func, select

from survey.extensions import db
from survey.models import Channel, Invitation, Quota, Response, Wave
from tests.helpers import Respondent, auth_header, researcher
from tests.test_manage import Browser, all_database_text, channels_of, snapshot
from tests.test_openapi_fuzz import check, conforms, strict_json

WRITES = (
    ("POST", "/api/v1/waves", {"code": "x", "name_ru": "Х", "name_en": "X"}),
    ("POST", "/api/v1/waves/w/open", {}),
    ("POST", "/api/v1/waves/w/close", {}),
    ("POST", "/api/v1/waves/w/channels", {"label": "x"}),
    ("POST", "/api/v1/waves/w/channels/direct/invitations", {"count": 3}),
    ("PUT", "/api/v1/waves/w/quotas", {"field": "industry", "value": "it", "target_count": 3}),
    ("DELETE", "/api/v1/waves/w/quotas?field=industry&value=finance", None),
)


pytestmark = pytest.mark.usefixtures("fresh_cache")


@pytest.fixture
def owner(app) -> dict[str, str]:
    return auth_header(researcher(app, "owner").token)


@pytest.fixture
def analyst(app) -> dict[str, str]:
    return auth_header(researcher(app, "analyst").token)


def call(client, method: str, path: str, headers: dict, body=None):
    return client.open(path, method=method, headers=headers, json=body)


def make_wave(client, owner, code: str = "w", **fields) -> dict:
    body = {"code": code, "name_ru": "Волна", "name_en": "Wave", **fields}
    r = client.post("/api/v1/waves", headers=owner, json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def count_rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


# ---------------------------------------------------------------- reading


def test_every_researcher_reads_the_waves_with_channels_and_counts(app, client, owner, analyst):
    catalog = app.extensions["survey_catalog"]
    make_wave(client, owner, "spring", opens_at="2027-03-01T09:00", target=300)
    make_wave(client, owner, "now")
    assert client.post("/api/v1/waves/now/open", headers=owner).status_code == 200
    assert (
        client.post("/api/v1/waves/now/channels", headers=owner, json={"label": "tg"}).status_code
        == 201
    )
    slug = channels_of(app, "now")["tg"]
    respondent = app.test_client()
    respondent.get(f"/s/{slug}")
    assert Respondent(respondent).complete(catalog).status_code == 302
    app.test_client().get(f"/s/{slug}")
    r = client.post("/api/v1/waves/now/channels/tg/invitations", headers=owner, json={"count": 4})
    tokens = [urlsplit(link).path.removeprefix("/i/") for link in r.get_json()["links"]]

    for headers in (analyst, owner):
        r = client.get("/api/v1/waves", headers=headers)
        assert r.status_code == 200
        body = strict_json(r.get_data(as_text=True))
        waves = {w["code"]: w for w in body["waves"]}
        spring = waves["spring"]
        assert spring["opens_at"] == "2027-03-01T09:00+03:00" and spring["closes_at"] is None
        assert (spring["state"], spring["target"], spring["time_zone"]) == (
            "scheduled",
            300,
            "Europe/Moscow",
        )
        assert spring["is_default"] and not waves["now"]["is_default"]  # the first wave
        now = waves["now"]
        assert now["state"] == "open" and now["completed"] == 1
        channels = {c["label"]: c for c in now["channels"]}
        assert channels["tg"] == {
            "label": "tg",
            "link": f"http://survey.test/s/{slug}",
            "opened": 2,
            "started": 1,
            "completed": 1,
            "completion_rate": 1.0,
        }
        assert channels["direct"]["started"] == 0 and channels["direct"]["completion_rate"] is None
        assert ("quotas" in now) == (headers is owner)
        assert not any(token in r.get_data(as_text=True) for token in tokens)
    with app.app_context():  # a plain recount of what the API says
        recount = db.session.execute(
            select(Response.status, func.count())
            .join(Channel, Channel.id == Response.channel_id)
            .where(Channel.slug == slug)
            .group_by(Response.status)
        ).all()
    assert dict(recount) == {"submitted": 1}


def test_the_waves_need_a_researcher(client):
    r = client.get("/api/v1/waves")
    assert r.status_code == 401 and r.get_json()["error"] == "unauthorized"


# ---------------------------------------------------------------- writing


def test_an_owner_runs_a_wave_through_the_api(app, client, owner):
    wave = make_wave(
        client,
        owner,
        "autumn",
        opens_at="2027-09-01T09:00",
        closes_at="2027-10-01T09:00+00:00",
        time_zone="Asia/Yekaterinburg",
        target=50,
        is_pilot=True,
    )
    assert wave["opens_at"] == "2027-09-01T09:00+05:00"
    assert wave["closes_at"] == "2027-10-01T14:00+05:00"
    assert wave["is_pilot"] and [c["label"] for c in wave["channels"]] == ["direct"]
    with app.app_context():
        stored = db.session.scalar(select(Wave).filter_by(code="autumn"))
        assert stored.opens_at == dt.datetime(2027, 9, 1, 4, 0)
        assert stored.closes_at == dt.datetime(2027, 10, 1, 9, 0)
    r = client.post("/api/v1/waves/autumn/open", headers=owner)
    assert r.status_code == 200 and r.get_json()["state"] == "open"
    r = client.post("/api/v1/waves/autumn/close", headers=owner, json={})
    assert r.status_code == 200 and r.get_json()["state"] == "closed"
    r = client.post("/api/v1/waves/autumn/open", headers=owner, json={"at": "2030-01-01T12:00"})
    body = r.get_json()
    assert body["state"] == "scheduled" and body["opens_at"] == "2030-01-01T12:00+05:00"
    assert body["closes_at"] is None
    r = client.post("/api/v1/waves/autumn/close", headers=owner, json={"at": "2029-12-31T00:00"})
    assert r.status_code == 400 and r.get_json()["field"] == "closes_at"
    assert "after the opening" in r.get_json()["message"]

    r = client.post("/api/v1/waves/autumn/channels", headers=owner, json={"label": "linkedin"})
    assert r.status_code == 201
    assert [c["label"] for c in r.get_json()["channels"]] == ["direct", "linkedin"]
    r = client.post("/api/v1/waves/autumn/channels", headers=owner, json={"label": "linkedin"})
    assert r.status_code == 400 and r.get_json()["field"] == "label"


def test_invitations_through_the_api_are_shown_once_and_stored_as_hashes(app, client, owner):
    make_wave(client, owner, "panel")
    client.post("/api/v1/waves/panel/open", headers=owner)
    r = client.post(
        "/api/v1/waves/panel/channels/direct/invitations", headers=owner, json={"count": 20}
    )
    assert r.status_code == 201 and r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    assert (body["wave"], body["channel"], body["count"]) == ("panel", "direct", 20)
    links = body["links"]
    assert len(set(links)) == 20
    tokens = [urlsplit(link).path.removeprefix("/i/") for link in links]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{20,}", token) for token in tokens)
    with app.app_context():
        hashes = db.session.scalars(select(Invitation.token_hash)).all()
    assert sorted(hashes) == sorted(hashlib.sha256(t.encode()).hexdigest() for t in tokens)
    assert not any(token in all_database_text(app) for token in tokens)
    assert app.test_client().get(urlsplit(links[0]).path).status_code == 200


def test_quotas_through_the_api(app, client, owner):
    make_wave(client, owner, "q", target=200)
    put = lambda body: client.put("/api/v1/waves/q/quotas", headers=owner, json=body)  # noqa: E731
    r = put({"field": "industry", "value": "it", "target_count": 40, "closes": True})
    assert r.status_code == 200
    assert r.get_json()["quotas"] == [
        {
            "field": "industry",
            "value": "it",
            "label": {"ru": "ИТ и телеком", "en": "IT and telecoms"},
            "target_count": 40,
            "target_share": None,
            "closes": True,
            "target": 40,
            "achieved": 0,
            "full": False,
        }
    ]
    r = put({"field": "industry", "value": "it", "target_share": 0.25})  # replaces it
    assert [(q["target_share"], q["target"]) for q in r.get_json()["quotas"]] == [(0.25, 50)]
    for body, field in (
        ({"field": "industry", "value": "moscow", "target_count": 3}, "value"),
        ({"field": "worked", "value": "it", "target_count": 3}, "field"),
        ({"field": "industry", "value": "it"}, "target_count"),
        ({"field": "industry", "value": "it", "target_count": 3, "target_share": 0.1}, None),
        ({"field": "industry", "value": "it", "target_share": 1.5}, "target_share"),
        ({"field": "industry", "value": "it", "target_share": "0.5"}, "target_share"),
        ({"field": "industry", "value": "it", "target_count": 2.5}, "target_count"),
        ({"field": "industry", "value": "it", "target_count": 10**12}, "target_count"),
        ({"field": "industry", "value": "it", "target_count": 3, "closes": "yes"}, "closes"),
        ({"field": "industry", "value": "it", "target_count": 3, "note": "x"}, "note"),
        ({"value": "it", "target_count": 3}, "field"),
    ):
        r = put(body)
        assert r.status_code == 400, body
        if field is not None:
            assert r.get_json()["field"] == field, (body, r.get_json())
    with app.app_context():
        assert db.session.execute(select(Quota.target_count, Quota.target_share)).all() == [
            (None, 0.25)
        ]
    delete = lambda query: client.delete(f"/api/v1/waves/q/quotas?{query}", headers=owner)  # noqa: E731
    assert delete("field=industry&value=finance").status_code == 404
    assert delete("field=industry").status_code == 400
    r = delete("field=industry&value=it&extra=1")
    assert r.status_code == 400 and r.get_json()["parameter"] == "extra"
    r = delete("field=industry&value=it")
    assert r.status_code == 200 and r.get_json()["quotas"] == []
    assert count_rows(app, Quota) == 0


BAD_WAVES = (
    ({"code": "ok", "name_ru": "В", "name_en": "W", "colour": "red"}, "colour"),
    ({"name_ru": "В", "name_en": "W"}, "code"),
    ({"code": "Not A Code", "name_ru": "В", "name_en": "W"}, "code"),
    ({"code": 5, "name_ru": "В", "name_en": "W"}, "code"),
    ({"code": "ok", "name_ru": None, "name_en": "W"}, "name_ru"),
    ({"code": "ok", "name_ru": "  ", "name_en": "W"}, "name_ru"),
    ({"code": "ok", "name_ru": "В\x00", "name_en": "W"}, "name_ru"),
    ({"code": "ok", "name_ru": "В" * 201, "name_en": "W"}, "name_ru"),
    ({"code": "ok", "name_ru": "В", "name_en": "W", "target": 0}, "target"),
    ({"code": "ok", "name_ru": "В", "name_en": "W", "target": "5"}, "target"),
    ({"code": "ok", "name_ru": "В", "name_en": "W", "target": 10**20}, "target"),
    ({"code": "ok", "name_ru": "В", "name_en": "W", "target": True}, "target"),
    ({"code": "ok", "name_ru": "В", "name_en": "W", "is_pilot": "yes"}, "is_pilot"),
    ({"code": "ok", "name_ru": "В", "name_en": "W", "time_zone": "Mars/Olympus"}, "time_zone"),
    ({"code": "ok", "name_ru": "В", "name_en": "W", "time_zone": "../etc/passwd"}, "time_zone"),
    ({"code": "ok", "name_ru": "В", "name_en": "W", "opens_at": "tomorrow"}, "opens_at"),
    ({"code": "ok", "name_ru": "В", "name_en": "W", "opens_at": "2027-03-01"}, "opens_at"),
    ({"code": "ok", "name_ru": "В", "name_en": "W", "opens_at": "0001-01-01T00:00"}, "opens_at"),
    ({"code": "ok", "name_ru": "В", "name_en": "W", "opens_at": 1700000000}, "opens_at"),
    (
        {
            "code": "ok",
            "name_ru": "В",
            "name_en": "W",
            "opens_at": "2027-03-01T09:00",
            "closes_at": "2027-03-01T08:00",
        },
        "closes_at",
    ),
)


def test_bad_wave_bodies_are_400s_naming_the_key_and_store_nothing(app, client, owner):
    make_wave(client, owner, "taken")
    before = snapshot(app)
    for body, field in BAD_WAVES:
        r = client.post("/api/v1/waves", headers=owner, json=body)
        assert r.status_code == 400, (body, r.status_code)
        answer = strict_json(r.get_data(as_text=True))
        assert answer["error"] == "bad_request" and answer["field"] == field, (body, answer)
        assert isinstance(answer["message"], str) and answer["message"]
        assert re.search("[а-яА-Я]", answer["message"]) is None  # the API speaks English
    r = client.post(
        "/api/v1/waves", headers=owner, json={"code": "taken", "name_ru": "В", "name_en": "W"}
    )
    assert r.status_code == 400 and r.get_json()["field"] == "code"
    for data, content_type in (
        ("[1, 2]", "application/json"),
        ('"wave"', "application/json"),
        ("{not json", "application/json"),
        (b'{"code": "\xff"}', "application/json"),
        ("code=x&name_ru=y&name_en=z", "application/x-www-form-urlencoded"),
        ('{"code": "x", "name_ru": "y", "name_en": "z"}', "text/plain"),
        ("", "application/json"),
        ("[" * 100_000, "application/json"),
        ('{"code": NaN}', "application/json"),
    ):
        r = client.post("/api/v1/waves", headers=owner, data=data, content_type=content_type)
        assert r.status_code == 400 and r.is_json, (data, r.status_code)
        assert r.get_json()["error"] == "bad_request"
    for path, body, field in (
        ("/api/v1/waves/taken/open", {"at": "soon"}, "at"),
        ("/api/v1/waves/taken/open", {"when": "2027-01-01T00:00"}, "when"),
        ("/api/v1/waves/taken/close", {"at": 5}, "at"),
        ("/api/v1/waves/taken/channels", {"label": "Bad Label"}, "label"),
        ("/api/v1/waves/taken/channels", {}, "label"),
        ("/api/v1/waves/taken/channels", {"label": None}, "label"),
        ("/api/v1/waves/taken/channels/direct/invitations", {"count": 0}, "count"),
        ("/api/v1/waves/taken/channels/direct/invitations", {"count": "20"}, "count"),
        ("/api/v1/waves/taken/channels/direct/invitations", {"count": None}, "count"),
        ("/api/v1/waves/taken/channels/direct/invitations", {"count": 10**6}, "count"),
        ("/api/v1/waves/taken/channels/direct/invitations", {"count": 2, "to": "a@b"}, "to"),
    ):
        r = client.post(path, headers=owner, json=body)
        assert r.status_code == 400 and r.get_json()["field"] == field, (path, body, r.get_json())
    for path in (
        "/api/v1/waves/nope/open",
        "/api/v1/waves/nope/channels",
        "/api/v1/waves/taken/channels/nope/invitations",
    ):
        r = client.post(path, headers=owner, json={"label": "x", "count": 1})
        assert r.status_code == 404 and r.get_json()["error"] == "not_found", path
    assert snapshot(app) == before


# ---------------------------------------------------------------- who may write


def test_an_analyst_token_gets_403_on_every_write(app, client, owner, analyst):
    make_wave(client, owner, "w")
    before = snapshot(app)
    for method, path, body in WRITES:
        r = call(client, method, path, analyst, body)
        assert r.status_code == 403, (method, path)
        assert r.get_json()["error"] == "forbidden"
    assert snapshot(app) == before


def test_writes_need_a_token_not_a_login_session(app, client, owner):
    """A session cookie would let another site's page post on the researcher's behalf:
    writes need the bearer token, with or without a CSRF token, and anonymous gets 401."""
    make_wave(client, owner, "w")
    before = snapshot(app)
    browser = Browser(app, role="owner")
    for method, path, body in WRITES:
        r = call(app.test_client(), method, path, {}, body)
        assert r.status_code == 401 and r.get_json()["error"] == "unauthorized", path
        r = call(browser.client, method, path, {}, body)
        assert r.status_code == 401, (method, path, r.status_code)
        assert "token" in r.get_json()["message"]
        r = call(browser.client, method, path, {"X-CSRFToken": browser._csrf}, body)
        assert r.status_code == 401, (method, path)
        r = browser.client.open(
            path, method=method, data={"csrf_token": browser._csrf, **(body or {})}
        )
        assert r.status_code == 401, (method, path)
        for wrong in ("Bearer svy_" + "x" * 43, "Basic abc", "Bearer "):
            r = call(app.test_client(), method, path, {"Authorization": wrong}, body)
            assert r.status_code == 401, (method, path, wrong)
    assert snapshot(app) == before
    # The browser forms stay CSRF-protected: a form post without the token is refused.
    r = browser.client.post("/researcher/waves/w/open", data={})
    assert r.status_code == 400


def test_a_revoked_owner_token_changes_nothing(app, client):
    owner = researcher(app, "owner")
    token = owner.token
    make_wave(client, auth_header(token), "w")
    from survey.auth import revoke_researcher

    with app.app_context():
        revoke_researcher(owner.email)
    r = client.post("/api/v1/waves/w/close", headers=auth_header(token))
    assert r.status_code == 401


# ---------------------------------------------------------------- the document


def test_the_document_describes_the_fieldwork_operations(app, client, analyst):
    document = client.get("/api/v1/openapi.json", headers=analyst).get_json()
    operations = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if path.startswith("/waves")
    }
    assert operations == {
        ("GET", "/waves"),
        ("POST", "/waves"),
        ("POST", "/waves/{code}/open"),
        ("POST", "/waves/{code}/close"),
        ("POST", "/waves/{code}/channels"),
        ("POST", "/waves/{code}/channels/{label}/invitations"),
        ("POST", "/waves/{code}/publish"),
        ("PUT", "/waves/{code}/quotas"),
        ("DELETE", "/waves/{code}/quotas"),
    }
    for method, path in operations - {("GET", "/waves")}:
        assert {"400", "401", "403", "404"} <= set(
            document["paths"][path][method.lower()]["responses"]
        )
    r = client.get("/api/v1/waves", headers=analyst)
    schema = document["paths"]["/waves"]["get"]["responses"]["200"]["content"]["application/json"]
    assert conforms(r.get_json(), schema["schema"], document)


FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def owner_schema(app, owner):
    """The served document, as schemathesis reads it with an owner's token (the fieldwork
    operations only), and as JSON."""
    client = app.test_client()
    make_wave(client, owner, "w")
    client.post("/api/v1/waves/w/channels", headers=owner, json={"label": "tg"})
    document = client.get("/api/v1/openapi.json", headers=owner).get_json()
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json", app, headers={**owner, "Host": "survey.test"}
    )
    return schema.include(path_regex="^/waves"), document


@FUZZ
@given(data=st.data())
def test_schemathesis_with_an_owners_token_never_gives_a_5xx(app, owner, owner_schema, data):
    schema, document = owner_schema
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    case = data.draw(schema.as_strategy(generation_mode=mode))
    if case.path_parameters and data.draw(st.booleans()):  # often the wave that exists
        case.path_parameters = {**case.path_parameters, "code": "w"}
        if "label" in case.path_parameters:
            case.path_parameters["label"] = data.draw(st.sampled_from(["tg", "direct"]))
    with app.test_client().open(**case.as_transport_kwargs(headers=owner)) as r:
        check(r)
        if mode is GenerationMode.POSITIVE:  # a valid request gets a documented answer
            operation = document["paths"][case.operation.path][case.operation.method.lower()]
            assert str(r.status_code) in operation["responses"], (
                case.operation.label,
                r.status_code,
                r.get_data(as_text=True)[:300],
            )


def test_demo_counts_are_labelled_as_demo(app, client, analyst):
    """Demo responses stand in for a study with no real submitted response (as on the
    fieldwork page): the counts say so."""
    from survey.demo import seed_demo

    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], 30, 3)
        submitted = db.session.scalar(
            select(func.count()).where(Response.is_demo.is_(True), Response.status == "submitted")
        )
    r = client.get("/api/v1/waves", headers=analyst)
    (wave,) = r.get_json()["waves"]
    assert wave["demo"] is True and wave["completed"] == submitted
    direct = wave["channels"][0]
    assert (direct["label"], direct["completed"]) == ("direct", submitted)
    page = Browser(app, role="analyst").get("/researcher/waves/")
    assert "ДЕМО-ДАННЫЕ" in page.text
