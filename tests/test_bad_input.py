"""Bad input never stores anything and never shows a stack trace.

A hand-made or broken request gets a 400 (or 413) page in the respondent's language; a
missing answer or an over-long example is a form error on the page. In every case the
database is exactly as it was before the request.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

import survey
from survey import create_app
from survey.catalog import load_catalog
from survey.extensions import db
from survey.forms import _clean_text, example_name, met_name, rating_name
from tests.helpers import PROFILE, Respondent, answer_for, csrf_token, practice_index

CATALOG = load_catalog(Path(survey.__file__).with_name("practices.yaml"))
PAGE = CATALOG.pages[1]  # the page under attack; page 1 is already answered
BOTH = ("ru", "foreign")
TABLES = ("response", "answer", "practice_example")

PAGES = {
    "ru": {
        400: "Запрос не удалось обработать",
        413: "Отправлено слишком много данных",
        "csrf": "Срок действия формы истёк",
        "tampered": "Форма содержала данные, которые наши страницы не могут отправить",
        "too_long": "Пожалуйста, уложитесь в 1000 символов.",
        "kind_missing": "Вы работали в российских компаниях: пожалуйста, ответьте на этот вопрос.",
        404: "Страница не найдена",
        405: "Это действие здесь недоступно",
    },
    "en": {
        400: "The request could not be processed",
        413: "Too much data was sent",
        "csrf": "The form has expired or was sent from another page",
        "tampered": "The form contained something our pages cannot produce",
        "too_long": "Please keep the example under 1000 characters.",
        "kind_missing": "You worked in Russian companies: please answer this question.",
        404: "Page not found",
        405: "This action is not allowed here",
    },
}


def snapshot(app) -> dict[str, list]:
    """Every row of the tables a respondent can write to."""
    with app.app_context():
        return {
            name: sorted(
                (tuple(row) for row in db.session.execute(select(db.metadata.tables[name]))),
                key=repr,
            )
            for name in TABLES
        }


def assert_error_page(r, status: int, lang: str, kind) -> None:
    """The response is a friendly error page in ``lang``, with no trace of the code."""
    assert r.status_code == status, r.text[:500]
    assert f'<html lang="{lang}">' in r.text
    assert PAGES[lang][kind] in r.text
    for leak in ("Traceback", 'File "', "TamperedForm", "werkzeug", "sqlalchemy"):
        assert leak not in r.text


class Browser(Respondent):
    """A respondent that keeps its session's CSRF token."""

    def __init__(self, client, lang: str = "ru"):
        super().__init__(client, lang)
        self.token = csrf_token(client.get("/").text)

    def post_form(self, path: str, data, follow: bool = False):
        payload = MultiDict(data)  # keeps a field sent twice
        payload.add("csrf_token", self.token)
        return self.client.post(path, data=payload, follow_redirects=follow)


def started(client, worked_in: str = "both", lang: str = "ru") -> Browser:
    """A respondent who consented, answered the background and the first practice page."""
    respondent = Browser(client, lang)
    respondent.consent()
    assert respondent.profile(worked_in=worked_in).status_code == 302
    kinds = BOTH if worked_in == "both" else ("ru",)
    assert respondent.answer_page(CATALOG.pages[0], kinds).status_code == 302
    return respondent


@dataclass
class Case:
    """One bad request: what is posted, and the page expected in return."""

    name: str
    form: dict | list | None = None  # fields besides the CSRF token
    token: str | None = "session"  # the session's own token, None, "twice" or a forged one
    body: bytes | None = None  # a raw body instead of a form
    content_type: str = "application/x-www-form-urlencoded"
    streamed: bool = False  # no Content-Length, as with chunked transfer encoding
    status: int = 400
    page: object = "tampered"

    def post(self, respondent: Browser, path: str):
        token = respondent.token if self.token in ("session", "twice") else self.token
        if self.body is not None:
            body = self.body.replace(b"TOKEN", token.encode())
            if self.streamed:
                return respondent.client.post(
                    path,
                    input_stream=io.BytesIO(body),
                    content_type=self.content_type,
                    environ_overrides={"wsgi.input_terminated": True},
                )
            return respondent.client.post(path, data=body, content_type=self.content_type)
        data = MultiDict(self.form)
        if token is not None:
            data.add("csrf_token", token)
        if self.token == "twice":
            data.add("csrf_token", token)
        return respondent.client.post(path, data=data)


def form_body(form: dict, tail: bytes = b"") -> bytes:
    """A url-encoded body with the session's token (filled in later) and a raw tail."""
    return urlencode({"csrf_token": "TOKEN", **form}).encode() + tail


def common_cases(valid: dict, big_field: str) -> list[Case]:
    """Cases that apply to every questionnaire form."""
    big = "x" * (257 * 1024)
    return [
        Case("missing CSRF token", valid, token=None, page="csrf"),
        Case("forged CSRF token", valid, token="IjE2MzQi.forged.token", page="csrf"),
        Case("body over the size limit", {**valid, big_field: big}, status=413, page=413),
        Case(
            "streamed body over the size limit",
            body=form_body({**valid, big_field: big}),
            streamed=True,
            status=413,
            page=413,
        ),
        Case("invalid UTF-8, raw byte", body=form_body(valid, b"&action=caf\xe9"), page=400),
        Case(
            "JSON body",
            body=json.dumps({"csrf_token": "TOKEN", **valid}).encode(),
            content_type="application/json",
            page=400,
        ),
        Case("plain-text body", body=form_body(valid), content_type="text/plain", page=400),
    ]


def profile_cases() -> list[Case]:
    valid = {**PROFILE, "worked_in": "ru_only", "industry": "retail"}
    return [
        Case("unknown field", {**valid, "salary": "250000"}),
        Case("impossible radio choice", {**valid, "worked_in": "everywhere"}),
        Case("impossible select choice", {**valid, "industry": "mining_on_mars"}),
        Case("duplicated field", [*valid.items(), ("worked_in", "both")]),
        Case("duplicated CSRF token", valid, token="twice"),
        Case("impossible code in a kind's block", {**valid, "ru_years": "forever"}),
        # a kind not worked in: its answers are ignored, but never an impossible one
        Case("impossible code in another kind's block", {**valid, "foreign_employers": "99"}),
        Case("a block of an unknown kind", {**valid, "eu_years": "3_5"}),
        Case(
            "a question of the kind's block unanswered",
            {k: v for k, v in valid.items() if k != "ru_last_year"},
            status=200,
            page="kind_missing",
        ),
        *common_cases(valid, "action"),
    ]


def page_data(page, kinds) -> dict:
    """A complete, valid answer to a practice page, as the scripted respondent gives it."""
    data = {}
    for practice in page.practices:
        for kind in kinds:
            met, rating = answer_for(practice_index(page, practice), kind)
            data[met_name(practice.id, kind)] = met
            if rating is not None:
                data[rating_name(practice.id, kind)] = str(rating)
    return data


def applied_cell(kinds=BOTH) -> tuple[str, str]:
    """The first (practice, kind) of PAGE answered 'applied' in :func:`page_data`."""
    data = page_data(PAGE, kinds)
    return next(
        (p.id, k) for p in PAGE.practices for k in kinds if data[met_name(p.id, k)] == "applied"
    )


def practice_page_cases() -> list[Case]:
    valid = page_data(PAGE, BOTH)
    pid, kind = applied_cell()
    assert not any(p.functions for p in PAGE.practices)  # "not my role" is never offered
    first = PAGE.practices[0].id
    other_page = CATALOG.pages[0].practices[0].id
    rating = rating_name(pid, kind)
    return [
        *(
            Case(f"rating {value!r}", {**valid, rating: value})
            for value in ("0", "6", "abc", "4.5", "Mixed", "mixed ")
        ),
        Case("met 'na', never offered", {**valid, met_name(first, "ru"): "na"}),
        Case("met 'yes', the former scale", {**valid, met_name(first, "ru"): "yes"}),
        Case(
            "'not my role' on a practice for every function",
            {**valid, met_name(first, "ru"): "not_my_role"},
        ),
        Case("met 'maybe'", {**valid, met_name(first, "ru"): "maybe"}),
        Case("unknown practice id", {**valid, met_name("no_such_practice", "ru"): "applied"}),
        Case("practice of another page", {**valid, met_name(other_page, "ru"): "no"}),
        Case("unknown company kind", {**valid, met_name(first, "eu"): "no"}),
        Case("duplicated met field", [*valid.items(), (met_name(first, "ru"), "applied")]),
        Case(
            "duplicated example field",
            [*valid.items(), (example_name(first, "ru"), "a"), (example_name(first, "ru"), "b")],
        ),
        Case(
            "example over 1000 characters",
            {**valid, example_name(first, "foreign"): "é" * 1001},
            status=200,
            page="too_long",
        ),
        Case("example for an unknown company kind", {**valid, example_name(first, "eu"): "x"}),
        *common_cases(valid, example_name(first, "ru")),
    ]


def run_cases(app, respondent: Browser, path: str, cases: list[Case], lang: str, subtests):
    for case in cases:
        with subtests.test(case.name):
            before = snapshot(app)
            r = case.post(respondent, path)
            if case.status == 200:  # a form error on the page itself
                assert r.status_code == 200 and PAGES[lang][case.page] in r.text
                assert 'class="error-summary"' in r.text
            else:
                assert_error_page(r, case.status, lang, case.page)
                assert PAGES[lang][400 if case.status == 400 else 413] in r.text
            assert snapshot(app) == before


# ---------------------------------------------------------------- every case, in Russian


def test_bad_input_on_the_background_page_is_refused_and_stores_nothing(app, client, subtests):
    respondent = started(client)
    run_cases(app, respondent, "/profile", profile_cases(), "ru", subtests)
    assert client.get("/profile").status_code == 200  # the respondent can carry on


def test_bad_input_on_a_practice_page_is_refused_and_stores_nothing(app, client, subtests):
    assert app.extensions["survey_catalog"].checksum == CATALOG.checksum
    respondent = started(client)
    path = f"/page/{PAGE.number}"
    run_cases(app, respondent, path, practice_page_cases(), "ru", subtests)
    assert respondent.post_form(path, page_data(PAGE, BOTH)).status_code == 302


@pytest.mark.parametrize("target", ["background", "practice page"])
def test_percent_encoded_invalid_utf8_is_refused_and_stores_nothing(app, client, target):
    respondent = started(client)
    if target == "background":  # would change the background to Russian companies only
        path, form, bad = "/profile", {**PROFILE, "worked_in": "ru_only"}, b"action"
    else:  # would store the example with the undecodable byte
        path, form = f"/page/{PAGE.number}", page_data(PAGE, BOTH)
        bad = example_name(PAGE.practices[0].id, "ru").encode()
    body = form_body(form, b"&" + bad + b"=caf%E9")
    before = snapshot(app)
    r = respondent.client.post(
        path,
        data=body.replace(b"TOKEN", respondent.token.encode()),
        content_type="application/x-www-form-urlencoded",
    )
    assert_error_page(r, 400, "ru", 400)
    assert snapshot(app) == before


def test_a_question_about_a_kind_of_company_never_worked_in_is_refused(app, client):
    respondent = started(client, worked_in="ru_only")
    path = f"/page/{PAGE.number}"
    valid = page_data(PAGE, ("ru",))
    pid = PAGE.practices[0].id
    for tampered in (
        {met_name(pid, "foreign"): "no"},
        {met_name(pid, "foreign"): "applied", rating_name(pid, "foreign"): "5"},
        {rating_name(pid, "foreign"): "3"},
    ):
        before = snapshot(app)
        assert_error_page(respondent.post_form(path, {**valid, **tampered}), 400, "ru", 400)
        assert snapshot(app) == before
    assert respondent.post_form(path, valid).status_code == 302


# ---------------------------------------------------------------- the respondent's language


def test_error_pages_follow_the_respondents_language(app, client, subtests):
    respondent = started(client, lang="en")
    by_name = {case.name: case for case in practice_page_cases()}
    chosen = (
        "rating '6'",
        "unknown practice id",
        "missing CSRF token",
        "body over the size limit",
        "invalid UTF-8, raw byte",
        "JSON body",
        "example over 1000 characters",
    )
    run_cases(app, respondent, f"/page/{PAGE.number}", [by_name[n] for n in chosen], "en", subtests)
    assert_error_page(client.get("/page/99"), 404, "en", 404)
    assert_error_page(client.get("/submit"), 405, "en", 405)
    client.get("/lang/ru?next=/")
    assert_error_page(client.get("/page/99"), 404, "ru", 404)
    assert_error_page(client.get("/submit"), 405, "ru", 405)


def test_the_size_limit_follows_max_content_length(app, database_url, tmp_path):
    assert app.config["MAX_CONTENT_LENGTH"] == 256 * 1024
    small = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": app.config["SECRET_KEY"],
            "INSTANCE_PATH": str(tmp_path / "small"),
            "SERVER_NAME": "survey.test",
            "RATELIMIT_ENABLED": False,
            "MAX_CONTENT_LENGTH": 2048,
        }
    )
    try:
        respondent = started(small.test_client())
        path = f"/page/{PAGE.number}"
        examples = {example_name(p.id, "ru"): "ж" * 200 for p in PAGE.practices[:2]}
        before = snapshot(small)
        r = respondent.post_form(path, {**page_data(PAGE, BOTH), **examples})
        assert_error_page(r, 413, "ru", 413)
        assert snapshot(small) == before
    finally:
        with small.app_context():
            db.session.remove()
            db.engine.dispose()


# ---------------------------------------------------------------- anything at all


FIELD_NAMES = [
    name
    for practice in PAGE.practices
    for name in (
        *(met_name(practice.id, kind) for kind in BOTH),
        *(rating_name(practice.id, kind) for kind in BOTH),
        *(example_name(practice.id, kind) for kind in BOTH),
    )
]
STRANGE_NAMES = [
    met_name(CATALOG.pages[0].practices[0].id, "ru"),
    met_name(PAGE.practices[0].id, "eu"),
    example_name(PAGE.practices[0].id, "eu"),
    met_name("no_such_practice", "ru"),
    "action",
    "website",
]
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
VALUES = st.one_of(
    st.sampled_from(
        ["applied", "existed", "no", "dk", "not_my_role", "yes", "na", "mixed", *"13506", ""]
    ),
    TEXT,
)
POSTS = st.tuples(
    st.booleans(),  # start from a complete, valid page
    st.sets(st.sampled_from(FIELD_NAMES), max_size=6),  # fields left out
    st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(FIELD_NAMES), st.sampled_from(STRANGE_NAMES), TEXT.filter(bool)
            ),
            VALUES,
        ),
        max_size=8,
    ),  # fields added or sent again
)
MISSING_RATING = (True, {rating_name(*applied_cell())}, [])
MIXED_RATING = (True, set(), [(rating_name(*applied_cell()), "mixed")])


def page_rows(app) -> tuple[dict, dict]:
    """The answers and examples stored for PAGE."""
    ids = [p.id for p in PAGE.practices]
    with app.app_context():
        answers = db.session.execute(
            select(db.metadata.tables["answer"]).where(
                db.metadata.tables["answer"].c.practice_id.in_(ids)
            )
        ).mappings()
        examples = db.session.execute(
            select(db.metadata.tables["practice_example"]).where(
                db.metadata.tables["practice_example"].c.practice_id.in_(ids)
            )
        ).mappings()
        return (
            {
                (a["practice_id"], a["company_kind"]): (a["met"], a["rating"], a["rating_mixed"])
                for a in answers
            },
            {(e["practice_id"], e["company_kind"]): e["text"] for e in examples},
        )


@pytest.fixture
def respondent(client) -> Browser:
    """One respondent, shared by every example of a property test."""
    return started(client)


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(post=POSTS)
@example(post=(True, set(), []))
@example(post=MISSING_RATING)
@example(post=MIXED_RATING)
def test_any_post_to_a_practice_page_saves_the_whole_page_or_nothing(app, respondent, post):
    complete, left_out, added = post
    items = [(k, v) for k, v in page_data(PAGE, BOTH).items() if complete and k not in left_out]
    data = MultiDict([*items, *added])
    before = page_rows(app)

    r = respondent.post_form(f"/page/{PAGE.number}", data)

    assert r.status_code in (200, 302, 400)
    answers, examples = page_rows(app)
    if r.status_code != 302:
        assert (answers, examples) == before
        return
    assert set(answers) == {(p.id, kind) for p in PAGE.practices for kind in BOTH}
    for (pid, kind), (met, rating, mixed) in answers.items():
        assert met == data[met_name(pid, kind)]
        sent = data.get(rating_name(pid, kind)) if met == "applied" else None
        assert mixed == (sent == "mixed")
        assert rating == (int(sent) if sent and not mixed else None)
    given_examples = {
        (p.id, kind): _clean_text(data.get(example_name(p.id, kind)))
        for p in PAGE.practices
        for kind in BOTH
    }
    assert examples == {cell: text for cell, text in given_examples.items() if text}
