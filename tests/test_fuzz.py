"""Hostile input, tested: property-based fuzzing of every questionnaire and login handler.

Each property posts random, oversized, wrongly typed, duplicated and missing fields, mostly
with the session's valid CSRF token so that the handler's own logic is reached. Whatever
is sent: never a 5xx; a refusal (400, 413, a form error) leaves the database exactly as it
was; an accepted practice page is stored whole. Also here: the honeypot and timing flags,
their exclusion from the results, and escaping of markup wherever free text is shown.
"""

from __future__ import annotations

import os
import re
import uuid
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import func, select, update
from werkzeug.datastructures import MultiDict

import survey
from survey import queries, results
from survey.auth import create_researcher
from survey.catalog import load_catalog
from survey.demo import seed_demo
from survey.extensions import db
from survey.forms import EXTRA_KEYS, example_name, met_name, rating_name
from survey.models import COMPANY_KINDS, Response
from survey.questions import BACKGROUND, KIND_BACKGROUND, KIND_BACKGROUND_BY_FIELD
from tests.helpers import PROFILE, Respondent, csrf_token, expected_answers

CATALOG = load_catalog(Path(survey.__file__).with_name("practices.yaml"))
PAGES = CATALOG.pages
TABLES = ("response", "answer", "practice_example")
BOTH = ("ru", "foreign")
PASSWORD = "a long researcher password"
XSS = "<script>alert(1)</script>"
HOSTILE = (
    XSS,
    '"><img src=x onerror=alert(1)>',
    "</textarea><script>alert(1)</script>",
    "</script><script>alert(1)</script>",
    "<svg/onload=alert(1)>",
    "{{ 7*7 }}{% raw %}",
    "javascript:alert(1)",
    '=HYPERLINK("http://evil.example")',
)

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),  # more for a deep run
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ---------------------------------------------------------------- strategies

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)
WRONG = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "1e309",
        "NaN",
        "null",
        "[]",
        "{}",
        "true",
        "3.5",
        "６",  # a full-width digit
        "\x00",
        "\u202e",
        "' OR '1'='1",
        *HOSTILE,
    ]
)
CHOICES = st.sampled_from(
    ["applied", "existed", "no", "dk", "not_my_role", "yes", "na", "mixed", *"1234506"]
)


class Long(str):
    """A long string that shows itself briefly in a failing example."""

    def __repr__(self) -> str:
        return f"Long({self[:1]!r} * {len(self)})"


OVERSIZED = st.one_of(
    st.integers(1001, 20_000).map(lambda n: Long("ж" * n)),  # too long for a field, not a body
    st.just(Long("x" * (300 * 1024))),  # over MAX_CONTENT_LENGTH
)
VALUE = st.one_of(CHOICES, WRONG, TEXT, OVERSIZED)
CSRF = st.sampled_from(["valid"] * 6 + ["missing", "twice", "forged", "empty"])


def fields(names, values=VALUE, max_size: int = 8):
    """A list of (name, value) pairs: names may repeat, so fields can be sent twice."""
    return st.lists(st.tuples(names, values), max_size=max_size)


def with_csrf(pairs, token: str, mode: str) -> MultiDict:
    data = MultiDict(pairs)
    if mode in ("valid", "twice"):
        data.add("csrf_token", token)
    if mode == "twice":
        data.add("csrf_token", token)
    if mode == "forged":
        data.add("csrf_token", "IjAwMCI.forged.token")
    if mode == "empty":
        data.add("csrf_token", "")
    return data


# ---------------------------------------------------------------- database views


def snapshot(app) -> dict[str, list]:
    """Every row of the tables a respondent can write to."""
    with app.app_context():
        return {
            name: sorted(
                (
                    tuple(repr(v) if isinstance(v, dict) else v for v in row)  # JSON columns
                    for row in db.session.execute(select(db.metadata.tables[name]))
                ),
                key=repr,
            )
            for name in TABLES
        }


def _column(table: str, name: str) -> int:
    return list(db.metadata.tables[table].c.keys()).index(name)


def rows_of_others(snap: dict, response_id: int) -> dict:
    """The snapshot without one response and what is stored with it."""
    out = {}
    for name, rows in snap.items():
        index = _column(name, "id" if name == "response" else "response_id")
        out[name] = [row for row in rows if row[index] != response_id]
    return out


def rows_outside(snap: dict, practice_ids) -> dict:
    """Answers and examples of practices other than these."""
    return {
        name: [row for row in snap[name] if row[_column(name, "practice_id")] not in practice_ids]
        for name in ("answer", "practice_example")
    }


def researcher_rows(app) -> list:
    with app.app_context():
        return [
            sorted(map(tuple, db.session.execute(select(db.metadata.tables[name]))), key=repr)
            for name in ("researcher", "api_token")
        ]


def answers_of(app, practice_ids) -> dict:
    answer = db.metadata.tables["answer"]
    with app.app_context():
        rows = db.session.execute(select(answer).where(answer.c.practice_id.in_(practice_ids)))
        return {(a.practice_id, a.company_kind): (a.met, a.rating, a.rating_mixed) for a in rows}


def the_response(app) -> Response:
    with app.app_context():
        response = db.session.scalars(select(Response)).one()
        db.session.expunge(response)
        return response


def assert_not_a_server_error(r) -> None:
    assert r.status_code < 500, r.status_code
    for leak in ("Traceback", 'File "', "sqlalchemy", "werkzeug"):
        assert leak not in r.get_data(as_text=True)


# ---------------------------------------------------------------- fixtures


pytestmark = pytest.mark.usefixtures("fresh_cache")


class Browser:
    """A respondent's browser that keeps its session's CSRF token."""

    def __init__(self, app, client=None):
        self.app = app
        self.client = client or app.test_client()
        self.token = csrf_token(self.client.get("/researcher/login").text)

    def post(self, path: str, pairs, mode: str = "valid"):
        data = with_csrf(pairs, self.token, mode)
        r = self.client.post(path, data=data)
        # 413 exactly when the encoded body is over MAX_CONTENT_LENGTH (give or take the
        # encoders' differences in which characters they leave unescaped)
        size = len(urlencode(list(data.items(multi=True))))
        limit = self.app.config["MAX_CONTENT_LENGTH"]
        self.too_large = True if size > limit + 1024 else False if size < limit - 1024 else None
        if self.too_large is not None:
            assert (r.status_code == 413) == self.too_large, (path, size, r.status_code)
        return r

    def has_draft(self) -> bool:
        return self.client.get("/review").status_code == 200

    def start(self, worked_in: str = "both", pages: int = 1) -> Browser:
        """Consent, background and the first ``pages`` practice pages."""
        respondent = Respondent(self.client)
        respondent.consent()
        assert respondent.profile(worked_in=worked_in).status_code == 302
        kinds = BOTH if worked_in == "both" else ("ru",)
        for page in self.app.extensions["survey_catalog"].pages[:pages]:
            assert respondent.answer_page(page, kinds).status_code == 302
        return self


@pytest.fixture
def started(app) -> Browser:
    """One respondent with a draft (background and page 1), shared by a test's examples."""
    return Browser(app).start()


# ---------------------------------------------------------------- consent


CONSENT_NAMES = st.one_of(st.sampled_from(["adult", "agree", "website", "action"]), TEXT)


@FUZZ
@given(pairs=fields(CONSENT_NAMES), mode=CSRF)
@example(pairs=[("adult", "y"), ("agree", "y")], mode="valid")
@example(pairs=[("adult", "y"), ("agree", "y"), ("website", "http://spam.example")], mode="valid")
@example(pairs=[("adult", "y"), ("agree", "y"), ("website", "a"), ("website", "")], mode="valid")
def test_fuzz_consent(app, pairs, mode):
    browser = Browser(app)
    before = snapshot(app)
    r = browser.post("/", pairs, mode)
    assert_not_a_server_error(r)
    assert r.status_code in (200, 302, 400, 413)
    after = snapshot(app)
    if r.status_code != 302:
        assert after == before
        return
    assert urlsplit(r.location).path == "/profile"
    new = set(after["response"]) - set(before["response"])
    assert len(new) == 1 and after["answer"] == before["answer"]
    with app.app_context():
        response = db.session.scalars(select(Response).order_by(Response.id.desc())).first()
        website = MultiDict(pairs).get("website")
        assert response.quality_flag == ("honeypot" if website else None)
        assert response.status == "draft" and response.language == "ru"


# ---------------------------------------------------------------- background


BACKGROUND_QUESTIONS = (*BACKGROUND, *KIND_BACKGROUND_BY_FIELD.values())
PROFILE_NAMES = st.one_of(
    st.sampled_from([q.field for q in BACKGROUND_QUESTIONS] + sorted(EXTRA_KEYS - {"csrf_token"})),
    TEXT,
)
PROFILE_VALUES = st.one_of(
    st.sampled_from(sorted({code for q in BACKGROUND_QUESTIONS for code in q.codes()})), VALUE
)


@FUZZ
@given(
    keep=st.sets(st.sampled_from(sorted(PROFILE))),
    extra=fields(PROFILE_NAMES, PROFILE_VALUES, max_size=5),
    mode=CSRF,
)
@example(keep=set(PROFILE), extra=[("worked_in", "ru_only")], mode="valid")
@example(keep=set(PROFILE) - {"worked_in"}, extra=[("worked_in", "ru_only")], mode="valid")
@example(keep=set(PROFILE) - {"ru_years"}, extra=[("worked_in", "foreign_only")], mode="valid")
@example(keep=set(PROFILE) - {"foreign_years"}, extra=[], mode="valid")
@example(
    keep=set(PROFILE) - {"foreign_role_level"},
    extra=[("foreign_role_level", "director")],
    mode="valid",
)
def test_fuzz_background(app, started, keep, extra, mode):
    browser = started
    pairs = [(k, v) for k, v in PROFILE.items() if k in keep] + extra
    before = snapshot(app)
    r = browser.post("/profile", pairs, mode)
    assert_not_a_server_error(r)
    assert r.status_code in (200, 302, 400, 413)
    if r.status_code != 302:
        assert snapshot(app) == before
        return
    sent = MultiDict(pairs)
    response = the_response(app)
    for question in BACKGROUND:
        assert getattr(response, question.field) == (sent.get(question.field) or None)
    kinds = response.kinds()
    for kind, questions in KIND_BACKGROUND.items():  # a block only for a kind worked in
        for question in questions:
            expected = sent.get(question.field) if kind in kinds else None
            assert getattr(response, question.field) == expected, question.field
            assert kind not in kinds or expected  # a kind worked in: its block is required
    with app.app_context():
        for row in db.session.execute(select(db.metadata.tables["answer"])):
            if row.company_kind not in kinds:  # never a stale answer for a kind not worked in
                assert (row.met, row.rating, row.rating_mixed) == ("na", None, False)


# ---------------------------------------------------------------- practice pages


FIELD_NAMES = [
    name
    for practice in CATALOG.practices
    for name in (
        *(met_name(practice.id, kind) for kind in (*BOTH, "eu")),
        *(rating_name(practice.id, kind) for kind in (*BOTH, "eu")),
        *(example_name(practice.id, kind) for kind in (*BOTH, "eu")),
    )
]
PAGE_NAMES = st.one_of(
    st.sampled_from(FIELD_NAMES), st.sampled_from(sorted(EXTRA_KEYS - {"csrf_token"})), TEXT
)
PAGE_NUMBERS = st.sampled_from([1, 2, 3, len(PAGES), 0, len(PAGES) + 1, 10**6])


def valid_page(page) -> list[tuple[str, str]]:
    """A complete answer to a page, as a list of fields: every answer of the scale, "not
    my role" where it is offered, a rating or "mixed" after "applied"."""
    pairs = []
    for i, practice in enumerate(page.practices):
        for kind in BOTH:
            met = ("applied", "no", "dk", "existed")[(i + len(kind)) % 4]
            if practice.functions and kind == "foreign":
                met = "not_my_role"
            pairs.append((met_name(practice.id, kind), met))
            if met == "applied":
                rating = "mixed" if i % 3 == 2 else str(1 + i % 5)
                pairs.append((rating_name(practice.id, kind), rating))
        pairs.append((example_name(practice.id, "ru"), f"пример {i}"))
    return pairs


@FUZZ
@given(
    number=PAGE_NUMBERS,
    complete=st.booleans(),
    drop=st.sets(st.integers(0, 40), max_size=4),
    extra=fields(PAGE_NAMES),
    mode=CSRF,
)
@example(number=2, complete=True, drop=set(), extra=[], mode="valid")
@example(number=2, complete=True, drop={1}, extra=[], mode="valid")
@example(number=2, complete=True, drop=set(), extra=[("website", "x")], mode="valid")
def test_fuzz_practice_page(app, started, number, complete, drop, extra, mode):
    """Whatever is posted, a page is stored whole or not at all."""
    base = valid_page(PAGES[number - 1]) if complete and 1 <= number <= len(PAGES) else []
    pairs = [pair for i, pair in enumerate(base) if i not in drop] + extra
    before = snapshot(app)
    r = started.post(f"/page/{number}", pairs, mode)
    assert_not_a_server_error(r)
    assert r.status_code in (200, 302, 400, 404, 413)
    after = snapshot(app)
    if r.status_code != 302:
        assert after == before
        return
    page = PAGES[number - 1]
    ids = [p.id for p in page.practices]
    stored = answers_of(app, ids)
    sent = MultiDict(pairs)
    assert set(stored) == {(pid, kind) for pid in ids for kind in COMPANY_KINDS}
    functions = {p.id for p in page.practices if p.functions}
    for (pid, kind), (met, rating, mixed) in stored.items():
        offered = ("applied", "existed", "no", "dk", *(["not_my_role"] if pid in functions else []))
        assert met == sent[met_name(pid, kind)] and met in offered
        given_rating = sent.get(rating_name(pid, kind)) if met == "applied" else None
        assert mixed == (given_rating == "mixed")
        assert rating == (int(given_rating) if given_rating and not mixed else None)
    assert rows_outside(after, ids) == rows_outside(before, ids)  # other pages untouched


# ---------------------------------------------------------------- submit, withdraw, restart


CONFIRM_NAMES = st.one_of(st.sampled_from(["action", "website", "agree", "confirm"]), TEXT)


@pytest.fixture
def complete(app) -> Browser:
    """A respondent who answered everything but has not submitted."""
    app.config["MIN_COMPLETION_SECONDS"] = 0
    return Browser(app).start(pages=len(PAGES))


@FUZZ
@given(pairs=fields(CONFIRM_NAMES), mode=CSRF)
@example(pairs=[], mode="missing")
@example(pairs=[], mode="valid")
def test_fuzz_submit(app, complete, pairs, mode):
    before = snapshot(app)
    status = the_response(app).status
    r = complete.post("/submit", pairs, mode)
    assert_not_a_server_error(r)
    assert r.status_code in (302, 400, 413)
    after = snapshot(app)
    assert (after["answer"], after["practice_example"]) == (
        before["answer"],
        before["practice_example"],
    )
    response = the_response(app)
    if r.status_code == 302:
        assert urlsplit(r.location).path == "/thanks"
        assert response.status == "submitted"
    else:
        assert after == before and response.status == status


@FUZZ
@given(pairs=fields(CONFIRM_NAMES), mode=CSRF, path=st.sampled_from(["/withdraw", "/restart"]))
@example(pairs=[], mode="valid", path="/withdraw")
@example(pairs=[], mode="valid", path="/restart")
def test_fuzz_withdraw_and_restart(app, started, pairs, mode, path):
    if not started.has_draft():  # withdrawn or forgotten by an earlier example
        started.start()
    with app.app_context():
        mine = db.session.scalar(select(func.max(Response.id)))
    before = snapshot(app)
    r = started.post(path, pairs, mode)
    assert_not_a_server_error(r)
    assert r.status_code in (302, 400, 413)
    after = snapshot(app)
    if path == "/restart" or r.status_code != 302:
        assert after == before  # restarting only forgets the draft in this browser
    else:  # withdrawn: the response and everything stored with it are gone, nothing else
        assert after == rows_of_others(before, mine)
    if r.status_code == 302:
        assert not started.has_draft()


# ---------------------------------------------------------------- language switch


HOSTILE_NEXT = st.sampled_from(
    [
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\/evil.example",
        "/\t/evil.example",
        "http://evil.example/",
        "https:evil.example",
        "javascript:alert(1)",
        "/%2F%2Fevil.example",
        "/review",
        "/page/1?return=review",
        "",
        "/" + "a" * 5000,
    ]
)


@FUZZ
@given(
    code=st.one_of(st.sampled_from(["ru", "en", "de", "RU", "", "en/../ru"]), TEXT),
    targets=st.lists(st.one_of(HOSTILE_NEXT, TEXT), max_size=3),
)
@example(code="en", targets=["/\\evil.example"])
def test_fuzz_language_switch(app, code, targets):
    client = app.test_client()
    query = MultiDict([("next", t) for t in targets])
    r = client.get(f"/lang/{quote(code, safe='')}", query_string=query)
    assert_not_a_server_error(r)
    assert r.status_code in (302, 404, 308)
    if r.status_code != 302:
        return
    # as a browser reads it: tabs and newlines dropped, backslashes taken for slashes
    location = "".join(ch for ch in r.location if ch not in "\t\r\n").replace("\\", "/")
    target = urlsplit(location)
    assert target.scheme in ("", "http") and target.netloc in ("", "survey.test"), r.location
    assert target.path.startswith("/") and not target.path.startswith("//"), r.location
    with client.session_transaction() as session:
        assert session.get("lang") in (None, "ru", "en")


# ---------------------------------------------------------------- researcher login


EMAILS = st.one_of(st.sampled_from(["REAL", "REAL_UPPER", "REAL_SPACED"]), TEXT, WRONG, OVERSIZED)
PASSWORDS = st.one_of(st.just(PASSWORD), TEXT, WRONG, OVERSIZED)


@pytest.fixture
def account(app) -> str:
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.org"
    with app.app_context():
        create_researcher(email, PASSWORD)
    return email


@FUZZ
@given(
    emails=st.lists(EMAILS, max_size=2),
    passwords=st.lists(PASSWORDS, max_size=2),
    extra=fields(st.one_of(st.sampled_from(["remember", "next"]), TEXT), max_size=3),
    mode=CSRF,
)
@example(emails=["REAL"], passwords=[PASSWORD], extra=[], mode="valid")
@example(emails=["REAL_UPPER", "x"], passwords=[PASSWORD, "y"], extra=[], mode="valid")
@example(emails=["REAL"], passwords=[PASSWORD], extra=[], mode="forged")
def test_fuzz_login(app, account, emails, passwords, extra, mode):
    app.config["LOGIN_THROTTLE_ENABLED"] = False  # its 429s: tests/test_login_throttle.py
    real = {"REAL": account, "REAL_UPPER": account.upper(), "REAL_SPACED": f"  {account} "}
    emails = [real.get(e, e) for e in emails]
    pairs = [("email", e) for e in emails] + [("password", p) for p in passwords] + extra
    browser = Browser(app)
    before = (snapshot(app), researcher_rows(app))
    r = browser.post("/researcher/login", pairs, mode)
    assert_not_a_server_error(r)
    assert r.status_code in (200, 302, 400, 413)
    assert (snapshot(app), researcher_rows(app)) == before
    if browser.too_large is None:  # right at the size limit: either outcome is fine
        return
    should_log_in = (
        mode in ("valid", "twice")  # the same valid token twice is still a valid token
        and not browser.too_large
        and emails
        and passwords
        and len(emails[0]) <= 254
        and emails[0].strip().lower() == account
        and passwords[0] == PASSWORD
    )
    assert (r.status_code == 302) == bool(should_log_in), (r.status_code, emails, mode)
    if r.status_code == 200:
        assert XSS not in r.text  # an e-mail full of markup comes back escaped


# ---------------------------------------------------------------- bots: flagged, kept, excluded


def complete_response(app, **consent) -> None:
    client = app.test_client()
    page = client.get("/")
    r = client.post(
        "/", data={"csrf_token": csrf_token(page.text), "adult": "y", "agree": "y", **consent}
    )
    assert r.status_code == 302
    respondent = Respondent(client)
    assert respondent.profile().status_code == 302
    for page in app.extensions["survey_catalog"].pages:
        assert respondent.answer_page(page, BOTH).status_code == 302
    assert respondent.submit().location.endswith("/thanks")


def flags(app) -> list:
    with app.app_context():
        return sorted(
            (r.status, r.quality_flag or "")
            for r in db.session.scalars(select(Response).order_by(Response.id))
        )


def test_honeypot_flags_the_response_and_keeps_it(app):
    app.config["MIN_COMPLETION_SECONDS"] = 0
    complete_response(app, website="http://spam.example")
    assert flags(app) == [("submitted", "honeypot")]
    assert len(snapshot(app)["answer"]) == 2 * len(CATALOG.practices)


def test_too_fast_completion_is_flagged(make_app):
    app = make_app(MIN_COMPLETION_SECONDS=3600)
    complete_response(app)
    assert flags(app) == [("submitted", "too_fast")]
    slow = make_app(MIN_COMPLETION_SECONDS=0)
    complete_response(slow)
    assert flags(slow) == [("submitted", ""), ("submitted", "too_fast")]
    # a honeypot flag is not overwritten by a timing check that passes (or fails)
    complete_response(slow, website="bot")
    assert ("submitted", "honeypot") in flags(slow)


def test_flagged_responses_are_kept_but_left_out_of_the_results(app, client):
    app.config["MIN_COMPLETION_SECONDS"] = 0
    complete_response(app)
    complete_response(app, website="http://spam.example")
    app.config["MIN_COMPLETION_SECONDS"] = 3600
    complete_response(app)
    assert flags(app) == [("submitted", ""), ("submitted", "honeypot"), ("submitted", "too_fast")]
    with app.app_context():
        # Three responses are below the disclosure threshold: the numbers are checked on the
        # ungated computation, the outputs below must withhold them.
        plain = results.ungated_comparison(queries.Segment())
        everyone = results.ungated_comparison(queries.Segment(include_flagged=True))
        assert plain.n_respondents == 1 and not plain.demo
        assert everyone.n_respondents == 3
        scripted = expected_answers(CATALOG, BOTH)  # a practice answered other than "don't know"
        practice = next(p.id for p in CATALOG.practices if scripted[(p.id, "ru")][0] != "dk")
        n = plain.table.set_index("practice_id").loc[practice, "n_ru"]
        n_all = everyone.table.set_index("practice_id").loc[practice, "n_ru"]
        assert (n, n_all) == (1, 3)
        assert queries.fieldwork()["flagged"] == 2
    # the API and the dashboard follow the same rule
    email = f"flag-{uuid.uuid4().hex[:12]}@example.org"
    with app.app_context():
        create_researcher(email, PASSWORD)
    page = client.get("/researcher/login")
    client.post(
        "/researcher/login",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": PASSWORD},
    )
    for query in ("", "?include_flagged=1"):
        body = client.get(f"/api/v1/comparison{query}").get_json()
        assert body["suppressed"] is True and "n_respondents" not in body


# ---------------------------------------------------------------- markup is shown, never run


def assert_escaped(text: str, html: str, before: str = ">", after: str = "<") -> None:
    """The text is on the page, escaped, between the given markup; never as live markup."""
    assert f"{before}{escape(text)}{after}" in html, text
    if re.search(r"<[a-zA-Z/!?]", text):
        assert text not in html, text


def test_markup_in_free_text_is_escaped_on_every_page_that_shows_it(app, client, started):
    app.config["MIN_COMPLETION_SECONDS"] = 0
    first = PAGES[0]
    examples = dict(zip((p.id for p in first.practices), HOSTILE, strict=False))
    pairs = [(k, v) for k, v in valid_page(first) if not k.endswith("__example")]
    pairs += [(example_name(pid, "ru"), text) for pid, text in examples.items()]
    assert started.post("/page/1", pairs).status_code == 302
    shown = {
        "review": started.client.get("/review").text,
        "page": started.client.get("/page/1").text,
    }
    # a form error re-renders the page with what was typed
    broken = [(k, v) for k, v in pairs if not k.startswith(first.practices[-1].id + "__")]
    again = started.post("/page/1", broken)
    assert again.status_code == 200
    shown["re-rendered page"] = again.text
    for where, html in shown.items():
        for pid, text in examples.items():
            if where == "review":
                assert_escaped(text, html, '<p class="example-text">', "</p>")
            elif where == "page" or pid != first.practices[-1].id:
                assert_escaped(text, html, "\r\n", "</textarea>")
        assert XSS not in html, where
    # the researcher reads submitted examples on the practice page
    respondent = Respondent(started.client)
    for page in PAGES[1:]:
        assert respondent.answer_page(page, BOTH).status_code == 302
    assert respondent.submit().location.endswith("/thanks")
    email = f"xss-{uuid.uuid4().hex[:12]}@example.org"
    with app.app_context():
        create_researcher(email, PASSWORD)
    login_page = client.get("/researcher/login")
    token = csrf_token(login_page.text)
    # the login form re-rendered with a hostile e-mail
    for hostile in HOSTILE:
        r = client.post(
            "/researcher/login",
            data={"csrf_token": token, "email": hostile, "password": "x"},
        )
        assert r.status_code == 200 and XSS not in r.text
        assert str(escape(hostile)) in r.text
    client.post(
        "/researcher/login", data={"csrf_token": token, "email": email, "password": PASSWORD}
    )
    # Examples are shown only for segments of at least MIN_CELL real respondents.
    assert XSS not in client.get(f"/researcher/practice/{first.practices[0].id}").text
    with app.app_context():
        # enough cover that every practice of the page is shown, those asked only of some
        # job functions ("not applicable to my role" is left out of their counts) included
        seed_demo(app.extensions["survey_catalog"], 40, 5)
        db.session.execute(update(Response).values(is_demo=False))
        db.session.commit()
    results.clear_cache()  # rows turned real in place: not a change the cache can see
    for pid, text in examples.items():
        html = client.get(f"/researcher/practice/{pid}").text
        assert_escaped(text, html, "<li>", "</li>")
        assert XSS not in html


class ExampleTexts(HTMLParser):
    """The text of each ``<p class="example-text">`` as a browser reads it, and any element
    that appears inside one (there must be none: the text is shown, never parsed)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.inner_tags: list[str] = []
        self._open = False

    def handle_starttag(self, tag, attrs):
        if self._open:
            self.inner_tags.append(tag)
        elif tag == "p" and ("class", "example-text") in attrs:
            self._open = True
            self.texts.append("")

    def handle_data(self, data):
        if self._open:
            self.texts[-1] += data

    def handle_endtag(self, tag):
        if tag == "p":
            self._open = False


@FUZZ
@given(text=st.text(st.sampled_from("<>&\"'/= scriptalert()ж\\!-"), min_size=1, max_size=60))
@example(text=XSS)
@example(text="<!-- x")
@example(text="</p><b>bold</b>")
def test_any_example_text_is_shown_escaped_on_the_review_page(app, started, text):
    practice = PAGES[0].practices[0]
    box = example_name(practice.id, "ru")
    pairs = [(k, v) for k, v in valid_page(PAGES[0]) if k != box]
    r = started.post("/page/1", [*pairs, (box, text)])
    assert r.status_code == 302
    html = started.client.get("/review").text
    parsed = ExampleTexts()
    parsed.feed(html)
    parsed.close()
    assert parsed.inner_tags == []
    others = [f"пример {i}" for i in range(1, len(PAGES[0].practices))]
    assert sorted(parsed.texts) == sorted([text.strip(), *others] if text.strip() else others)
    assert XSS not in html
