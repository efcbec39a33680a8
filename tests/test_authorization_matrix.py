"""Who may open what: every route x every kind of visitor, and drafts kept apart (issue 6).

The expected outcome of each (route, visitor) pair is written out in :data:`MATRIX`; a
route added to the application without a row here fails the coverage test.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from tests.helpers import PASSWORD, Respondent, auth_header, csrf_token, order_of, researcher

pytestmark = pytest.mark.usefixtures("fresh_cache")

# "researcher" and "token" are an analyst's session and API token; "owner" and "owner_token"
# an owner's (issue 15: owners manage fieldwork and accounts, analysts read).
VISITORS = ("anonymous", "draft", "other", "researcher", "token", "owner", "owner_token")

# Outcomes
OK = "200"
HOME = "-> /"
PROFILE = "-> /profile"
REVIEW = "-> /review"
LOGIN_PAGE = "-> /researcher/login"
LOGIN = "-> login?next="  # a browser sent to log in, coming back afterwards
JSON_401 = "401 JSON"

# Owner-only routes: anonymous and respondents are sent to log in, analysts refused.
OWNER_ONLY = (LOGIN, LOGIN, LOGIN, "403", "403")
OWNER_ONLY_PAGE = (*OWNER_ONLY, OK, OK)

LINK_REFUSED = "Ссылка недействительна или её срок истёк."
WRONG_TOKEN = "x" * 32  # the shape of a resume token, but nobody's
NO_JOB = "j" * 32  # the shape of a job id, but nobody's (tests/test_jobs.py: another's job)

# (method, rule): (sample path, form posted with the visitor's own CSRF token,
#                  anonymous, respondent with a draft, another respondent, analyst session,
#                  analyst API token[, owner session, owner API token])
# A row without the owner's two outcomes gives the owner what it gives the analyst.
MATRIX: dict[tuple[str, str], tuple] = {
    # ---- the questionnaire: open to everyone; a draft only in the browser that holds it
    ("GET", "/"): ("/", None, OK, OK, OK, OK, OK),
    ("POST", "/"): ("/", {"adult": "y", "agree": "y"}, PROFILE, PROFILE, PROFILE, PROFILE, PROFILE),
    ("GET", "/lang/<code>"): (
        "/lang/en?next=/review",
        None,
        REVIEW,
        REVIEW,
        REVIEW,
        REVIEW,
        REVIEW,
    ),
    ("GET", "/profile"): ("/profile", None, HOME, OK, OK, HOME, HOME),
    ("POST", "/profile"): ("/profile", {}, HOME, OK, OK, HOME, HOME),
    ("GET", "/page/<int:number>"): ("/page/1", None, HOME, OK, OK, HOME, HOME),
    ("POST", "/page/<int:number>"): ("/page/1", {}, HOME, OK, OK, HOME, HOME),
    ("GET", "/review"): ("/review", None, HOME, OK, OK, HOME, HOME),
    ("POST", "/submit"): ("/submit", {}, HOME, REVIEW, REVIEW, HOME, HOME),
    ("GET", "/thanks"): ("/thanks", None, HOME, HOME, HOME, HOME, HOME),
    # a respondent's own answers beside everyone's: only the browser holding a submitted one
    ("GET", "/compare"): ("/compare", None, HOME, HOME, HOME, HOME, HOME),
    ("GET", "/resume/<token>"): (f"/resume/{WRONG_TOKEN}", None, HOME, HOME, HOME, HOME, HOME),
    ("POST", "/resume/<token>"): (f"/resume/{WRONG_TOKEN}", {}, HOME, HOME, HOME, HOME, HOME),
    ("GET", "/withdraw"): ("/withdraw", None, HOME, OK, OK, HOME, HOME),
    ("POST", "/withdraw"): ("/withdraw", {}, HOME, HOME, HOME, HOME, HOME),
    ("POST", "/restart"): ("/restart", {}, HOME, HOME, HOME, HOME, HOME),
    ("GET", "/static/<path:filename>"): ("/static/css/survey.css", None, OK, OK, OK, OK, OK),
    # ---- researcher login: the form is public, logging out always lands on it
    ("GET", "/researcher/login"): ("/researcher/login", None, OK, OK, OK, OK, OK),
    ("POST", "/researcher/login"): (
        "/researcher/login",
        {"email": "nobody@example.org", "password": "wrong password"},
        OK,
        OK,
        OK,
        OK,
        OK,
        # the sixth and seventh wrong password for one account in a window: throttled
        "429",
        "429",
    ),
    # ---- the dashboard: researchers only (a session or a token); browsers go to log in
    ("GET", "/researcher/"): ("/researcher/", None, LOGIN, LOGIN, LOGIN, OK, OK),
    ("GET", "/researcher/comparison"): (
        "/researcher/comparison?view=paired",
        None,
        LOGIN,
        LOGIN,
        LOGIN,
        OK,
        OK,
    ),
    ("GET", "/researcher/period"): ("/researcher/period", None, LOGIN, LOGIN, LOGIN, OK, OK),
    ("GET", "/researcher/adjusted"): ("/researcher/adjusted", None, LOGIN, LOGIN, LOGIN, OK, OK),
    ("GET", "/researcher/ratings"): ("/researcher/ratings", None, LOGIN, LOGIN, LOGIN, OK, OK),
    ("GET", "/researcher/categories"): (
        "/researcher/categories",
        None,
        LOGIN,
        LOGIN,
        LOGIN,
        OK,
        OK,
    ),
    ("GET", "/researcher/practice/<practice_id>"): (
        "/researcher/practice/target_bonus",
        None,
        LOGIN,
        LOGIN,
        LOGIN,
        OK,
        OK,
    ),
    ("GET", "/researcher/export"): ("/researcher/export", None, LOGIN, LOGIN, LOGIN, OK, OK),
    ("GET", "/researcher/export/download"): (
        "/researcher/export/download?file=codebook",
        None,
        LOGIN,
        LOGIN,
        LOGIN,
        OK,
        OK,
    ),
    ("GET", "/researcher/report"): ("/researcher/report", None, LOGIN, LOGIN, LOGIN, OK, OK),
    # ---- background jobs: only the researcher who started one sees it (else a 404)
    ("GET", "/researcher/jobs/<job_id>"): (
        f"/researcher/jobs/{NO_JOB}",
        None,
        LOGIN,
        LOGIN,
        LOGIN,
        "404",
        "404",
    ),
    ("GET", "/researcher/jobs/<job_id>/file"): (
        f"/researcher/jobs/{NO_JOB}/file",
        None,
        LOGIN,
        LOGIN,
        LOGIN,
        "404",
        "404",
    ),
    ("POST", "/researcher/jobs/<job_id>/restart"): (
        f"/researcher/jobs/{NO_JOB}/restart",
        {},
        LOGIN,
        LOGIN,
        LOGIN,
        "404",
        "404",
    ),
    ("GET", "/api/v1/jobs/<job_id>"): (
        f"/api/v1/jobs/{NO_JOB}",
        None,
        JSON_401,
        JSON_401,
        JSON_401,
        "404",
        "404",
    ),
    ("GET", "/api/v1/jobs/<job_id>/file"): (
        f"/api/v1/jobs/{NO_JOB}/file",
        None,
        JSON_401,
        JSON_401,
        JSON_401,
        "404",
        "404",
    ),
    ("GET", "/researcher/table/<name>.csv"): (
        "/researcher/table/fieldwork.csv",
        None,
        LOGIN,
        LOGIN,
        LOGIN,
        OK,
        OK,
    ),
    # ---- the API: a token or a researcher session; everyone else gets a JSON 401
    ("GET", "/api/v1/practices"): (
        "/api/v1/practices",
        None,
        JSON_401,
        JSON_401,
        JSON_401,
        OK,
        OK,
    ),
    ("GET", "/api/v1/comparison"): (
        "/api/v1/comparison?level=category",
        None,
        JSON_401,
        JSON_401,
        JSON_401,
        OK,
        OK,
    ),
    ("GET", "/api/v1/comparison/by-period"): (
        "/api/v1/comparison/by-period?level=category",
        None,
        JSON_401,
        JSON_401,
        JSON_401,
        OK,
        OK,
    ),
    ("GET", "/api/v1/adjusted"): (
        "/api/v1/adjusted?period=2022_on",
        None,
        JSON_401,
        JSON_401,
        JSON_401,
        OK,
        OK,
    ),
    ("GET", "/api/v1/fieldwork"): (
        "/api/v1/fieldwork",
        None,
        JSON_401,
        JSON_401,
        JSON_401,
        OK,
        OK,
    ),
    ("GET", "/api/v1/export/<name>"): (
        "/api/v1/export/codebook",
        None,
        JSON_401,
        JSON_401,
        JSON_401,
        OK,
        OK,
    ),
    ("GET", "/api/v1/openapi.json"): (
        "/api/v1/openapi.json",
        None,
        JSON_401,
        JSON_401,
        JSON_401,
        OK,
        OK,
    ),
    # ---- links that carry a secret: an unknown one is a 404 for everyone
    ("GET", "/s/<slug>"): ("/s/" + "s" * 16, None, *["404"] * 5),
    ("GET", "/i/<token>"): (f"/i/{WRONG_TOKEN}", None, *["404"] * 5),
    ("POST", "/i/<token>"): (f"/i/{WRONG_TOKEN}", {}, *["404"] * 5),
    ("POST", "/i/<token>/continue"): (f"/i/{WRONG_TOKEN}/continue", {}, *["404"] * 5),
    ("GET", "/researcher/setup/<token>"): (f"/researcher/setup/{WRONG_TOKEN}", None, *["404"] * 5),
    ("POST", "/researcher/setup/<token>"): (f"/researcher/setup/{WRONG_TOKEN}", {}, *["404"] * 5),
    ("GET", "/researcher/welcome/<token>"): (
        f"/researcher/welcome/{WRONG_TOKEN}",
        None,
        *["404"] * 5,
    ),
    ("POST", "/researcher/welcome/<token>"): (
        f"/researcher/welcome/{WRONG_TOKEN}",
        {},
        *["404"] * 5,
    ),
    ("GET", "/enough"): ("/enough", None, OK, OK, OK, OK, OK),
    # ---- the public results summary: the same for everyone; a wave not published is a 404
    ("GET", "/results"): ("/results", None, *["404"] * 5),
    ("GET", "/results/<code>"): ("/results/nope", None, *["404"] * 5),
    ("GET", "/results/<code>/card.png"): ("/results/nope/card.png", None, *["404"] * 5),
    # ---- the preview of the questionnaire: any researcher
    ("GET", "/researcher/preview"): ("/researcher/preview", None, LOGIN, LOGIN, LOGIN, OK, OK),
    ("GET", "/researcher/preview/page/<int:number>"): (
        "/researcher/preview/page/1",
        None,
        LOGIN,
        LOGIN,
        LOGIN,
        OK,
        OK,
    ),
    ("GET", "/researcher/comparison/waves"): (
        "/researcher/comparison/waves",
        None,
        LOGIN,
        LOGIN,
        LOGIN,
        OK,
        OK,
    ),
    ("GET", "/api/v1/comparison/waves"): (
        "/api/v1/comparison/waves?a=w1&b=w1",
        None,
        JSON_401,
        JSON_401,
        JSON_401,
        "400",
        "400",
    ),
    # ---- fieldwork: analysts read the overview pages and the waves; owners change them
    ("GET", "/researcher/waves/"): ("/researcher/waves/", None, LOGIN, LOGIN, LOGIN, OK, OK),
    ("POST", "/researcher/waves/"): (
        "/researcher/waves/",
        {"code": "Not A Code", "name_ru": "В", "name_en": "W"},
        *OWNER_ONLY_PAGE,
    ),
    ("GET", "/researcher/waves/<code>"): (
        "/researcher/waves/nope",
        None,
        LOGIN,
        LOGIN,
        LOGIN,
        "404",
        "404",
    ),
    **{
        ("POST", f"/researcher/waves/<code>/{action}"): (
            f"/researcher/waves/nope/{action}",
            {},
            *OWNER_ONLY,
            "404",
            "404",
        )
        for action in (
            "open",
            "close",
            "default",
            "pilot",
            "publish",
            "channels",
            "invitations",
            "quotas",
            "quotas/delete",
        )
    },
    ("GET", "/researcher/waves/<code>/channels/<label>/qr.<any(svg, png):kind>"): (
        "/researcher/waves/nope/channels/direct/qr.svg",
        None,
        *OWNER_ONLY,
        "404",
        "404",
    ),
    ("GET", "/api/v1/waves"): ("/api/v1/waves", None, JSON_401, JSON_401, JSON_401, OK, OK),
    # API writes need an owner's token: a login session alone is a 401 (no cookie CSRF)
    ("POST", "/api/v1/waves"): ("/api/v1/waves", {}, *[JSON_401] * 4, "403", JSON_401, "400"),
    **{
        (method, f"/api/v1/waves/<code>{tail}"): (
            f"/api/v1/waves/nope{tail.replace('<label>', 'direct')}",
            {},
            *[JSON_401] * 4,
            "403",
            JSON_401,
            "404",
        )
        for method, tail in (
            ("POST", "/open"),
            ("POST", "/close"),
            ("POST", "/publish"),
            ("POST", "/channels"),
            ("POST", "/channels/<label>/invitations"),
            ("PUT", "/quotas"),
            ("DELETE", "/quotas"),
        )
    },
    # ---- owners only: accounts (an analyst gets 403, whether by session or token)
    ("GET", "/researcher/team"): ("/researcher/team", None, *OWNER_ONLY_PAGE),
    ("POST", "/researcher/team/invite"): (
        "/researcher/team/invite",
        {"email": "invited@example.org", "role": "analyst"},
        *OWNER_ONLY_PAGE,
    ),
    ("POST", "/researcher/team/<int:researcher_id>/revoke"): (
        "/researcher/team/999999/revoke",
        {},
        *OWNER_ONLY,
        "404",
        "404",
    ),
    ("POST", "/researcher/team/<int:researcher_id>/role"): (
        "/researcher/team/999999/role",
        {"role": "owner"},
        *OWNER_ONLY,
        "404",
        "404",
    ),
    # ---- last: ends the researcher session shared by the rows above
    ("POST", "/researcher/logout"): (
        "/researcher/logout",
        {},
        LOGIN_PAGE,
        LOGIN_PAGE,
        LOGIN_PAGE,
        LOGIN_PAGE,
        LOGIN_PAGE,
    ),
}


# Owners see everything an analyst sees unless the row says otherwise.
MATRIX = {key: (*row, *row[5:7]) if len(row) == 7 else row for key, row in MATRIX.items()}


class Visitor:
    """One browser (or API client): its own cookies, headers and CSRF token."""

    def __init__(self, client, headers: dict | None = None):
        self.client = client
        self.headers = headers or {}
        self._csrf: str | None = None
        self.seen: list[str] = []

    def csrf(self) -> str:
        if self._csrf is None:  # a session's token is valid for every form of ours
            self._csrf = csrf_token(self.get("/researcher/login").text)
        return self._csrf

    def get(self, path: str, headers: dict | None = None, **kwargs):
        r = self.client.get(path, headers={**self.headers, **(headers or {})}, **kwargs)
        self.seen.append(r.get_data(as_text=True) if r.mimetype != "application/zip" else "")
        return r

    def post(self, path: str, form: dict, method: str = "POST"):
        r = self.client.open(
            path, method=method, data={"csrf_token": self.csrf(), **form}, headers=self.headers
        )
        self.seen.append(r.get_data(as_text=True))
        return r


def logged_in(app, email: str) -> Visitor:
    visitor = Visitor(app.test_client())
    r = visitor.post("/researcher/login", {"email": email, "password": PASSWORD})
    assert r.status_code == 302, r.status_code
    visitor._csrf = None  # logging in starts a new session
    return visitor


def same_session(app, visitor: Visitor) -> Visitor:
    """Another browser holding a copy of the visitor's session cookie as it is now."""
    name = app.config["SESSION_COOKIE_NAME"]
    copy = Visitor(app.test_client(), visitor.headers)
    cookie = visitor.client.get_cookie(name, domain="survey.test")
    copy.client.set_cookie(name, cookie.value, domain="survey.test")
    return copy


def with_draft(app, marker: str | None = None, pages: int = 1) -> Visitor:
    """A respondent who consented, answered the background and the first practice page."""
    visitor = Visitor(app.test_client())
    respondent = Respondent(visitor.client)
    respondent.consent()
    assert respondent.profile().status_code == 302
    for page in app.extensions["survey_catalog"].pages[:pages]:
        examples = {page.practices[0].id: marker} if marker else None
        assert respondent.answer_page(page, ("ru", "foreign"), examples=examples).status_code == 302
    return visitor


def resume_token(visitor: Visitor) -> str:
    with visitor.client.session_transaction() as session:
        return session["resume_token"]


def outcome(r) -> str:
    """The observed outcome, in the vocabulary of :data:`MATRIX`."""
    if r.status_code == 200:
        return OK
    if r.status_code == 401:
        body = r.get_json(silent=True) or {}
        assert r.mimetype == "application/json" and {"error", "message"} <= set(body)
        return JSON_401
    if r.status_code == 302:
        target = urlsplit(r.location)
        assert target.netloc in ("", "survey.test"), r.location
        if target.path == "/researcher/login" and "next" in parse_qs(target.query):
            return LOGIN
        return f"-> {target.path}"
    return str(r.status_code)


def route_keys(app) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_the_matrix_covers_every_route_and_method(app):
    assert set(MATRIX) == route_keys(app)
    for key, row in MATRIX.items():
        assert len(row) == 2 + len(VISITORS), key


def test_every_route_for_every_kind_of_visitor(app):
    analyst, owner_account = researcher(app), researcher(app, "owner")
    research = logged_in(app, analyst.email)
    api = Visitor(app.test_client(), auth_header(analyst.token))
    owner = logged_in(app, owner_account.email)
    owner_api = Visitor(app.test_client(), auth_header(owner_account.token))
    assert outcome(same_session(app, research).get("/researcher/")) == OK
    failures = []
    drafts = None
    for (method, rule), (path, form, *expected) in MATRIX.items():
        drafts = drafts or (with_draft(app, pages=0), with_draft(app, pages=0))
        visitors = {
            "anonymous": Visitor(app.test_client()),
            "draft": drafts[0],
            "other": drafts[1],
            "researcher": same_session(app, research),  # logged in, no draft
            "token": Visitor(app.test_client(), api.headers),
            "owner": same_session(app, owner),
            "owner_token": Visitor(app.test_client(), owner_api.headers),
        }
        if method == "POST" and path in ("/", "/withdraw", "/restart"):
            drafts = None  # these replace, delete or forget the drafts: new ones next time
        for name, want in zip(VISITORS, expected, strict=True):
            visitor = visitors[name]
            r = visitor.get(path) if method == "GET" else visitor.post(path, form, method)
            got = outcome(r)
            if got != want:
                failures.append(f"{method} {rule} as {name}: expected {want}, got {got}")
            r.close()
    assert failures == []


def test_a_non_researcher_asking_for_json_gets_a_401_not_a_page(app):
    visitor = with_draft(app)
    for path in ("/researcher/", "/researcher/comparison", "/researcher/table/comparison.csv"):
        r = visitor.get(path, headers={"Accept": "application/json"})
        assert outcome(r) == JSON_401, path


def test_credentials_that_are_not_a_researchers_open_nothing(app):
    token = researcher(app).token
    bad = (
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {token[:-1]}"},
        {"Authorization": f"Bearer {token}x"},
        {"Authorization": f"Bearer {token}{'x' * 300}"},
        {"Authorization": f"bearer {token}"},
        {"Authorization": f"Basic {token}"},
        {"Authorization": token},
        {"X-Api-Token": token},
    )
    for headers in bad:
        visitor = Visitor(app.test_client(), headers)
        assert outcome(visitor.get("/api/v1/fieldwork")) == JSON_401, headers
        assert outcome(visitor.get("/researcher/")) == LOGIN, headers
    # a researcher's password is not an API credential either
    visitor = Visitor(app.test_client(), {"Authorization": f"Bearer {PASSWORD}"})
    assert outcome(visitor.get("/api/v1/practices")) == JSON_401


# ---------------------------------------------------------------- drafts stay apart


def questionnaire_pages(visitor: Visitor, app) -> list[str]:
    """Every questionnaire page a visitor can open, as text."""
    pages = app.extensions["survey_catalog"].pages
    paths = ["/", "/profile", "/review", "/withdraw", "/thanks"]
    paths += [f"/page/{page.number}" for page in pages]
    return [visitor.get(path, follow_redirects=True).text for path in paths]


def test_another_respondent_never_sees_a_drafts_answers_or_link(app):
    marker = f"MARKER-{uuid.uuid4().hex}"
    owner = with_draft(app, marker)
    token = resume_token(owner)
    own_pages = questionnaire_pages(owner, app)
    assert any(marker in text for text in own_pages)  # the owner sees the example ...
    assert any(token in text for text in own_pages)  # ... and their resume link

    other = with_draft(app)
    anonymous = Visitor(app.test_client())
    who = researcher(app)
    research = logged_in(app, who.email)
    api = Visitor(app.test_client(), auth_header(who.token))
    texts = questionnaire_pages(other, app) + questionnaire_pages(anonymous, app)
    texts += questionnaire_pages(research, app)
    pid = app.extensions["survey_catalog"].pages[0].practices[0].id
    for path in (
        "/researcher/",
        "/researcher/comparison",
        f"/researcher/practice/{pid}",
        "/researcher/table/fieldwork.csv",
        "/researcher/export/download?file=responses",
    ):
        texts.append(research.get(path).text)
    for path in ("/api/v1/fieldwork", "/api/v1/comparison", "/api/v1/export/answers_long"):
        texts.append(api.get(path).text)
    for text in texts:
        assert token not in text
        assert marker not in text  # a draft's example is in no one else's page
    assert resume_token(other) != token
    # the owner still has the draft, unchanged by all of this
    assert marker in owner.get("/review").text


def test_resume_with_a_wrong_short_or_long_token_is_refused(app):
    owner = with_draft(app, "owner example")
    token = resume_token(owner)
    guesses = [
        # too short
        "",
        "a",
        token[:8],
        token[:-1],
        token[1:],
        # too long
        token + "A",
        token + "/",
        "a" * 101,
        token * 5,
        "x" * 4000,
        # the right length, not the token
        token.swapcase(),
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        token[::-1],
        quote(token + "\x00"),
        "../" + token,
        " " + token,
    ]
    for guess in guesses:
        if guess == token:
            continue
        visitor = Visitor(app.test_client())
        r = visitor.get(f"/resume/{guess}")
        assert r.status_code in (302, 404), (guess, r.status_code)
        if r.status_code == 302:
            assert urlsplit(r.location).path == "/", guess
            assert LINK_REFUSED in visitor.get("/").text, guess
        with visitor.client.session_transaction() as session:
            assert "resume_token" not in session, guess
        for path in ("/review", "/profile", "/page/1", "/withdraw"):
            assert outcome(visitor.get(path)) == HOME, (guess, path)
    # the right link does open the draft on another device, once confirmed
    device = Visitor(app.test_client())
    assert outcome(device.get(f"/resume/{token}")) == OK
    # it continues at the first page, in the owner's own order, not yet answered
    unanswered = next(p.number for p in order_of(owner.client).pages if p.number != 1)
    assert outcome(device.post(f"/resume/{token}", {})) == f"-> /page/{unanswered}"
    assert "owner example" in device.get("/page/1").text


def test_a_forged_session_cookie_opens_no_draft(app):
    owner = with_draft(app, "private example")
    token = resume_token(owner)
    forger = Flask("forger")
    forger.secret_key = "not-the-applications-secret-key"
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    cookies = (
        serializer.dumps({"resume_token": token}),
        serializer.dumps({"resume_token": token})[:-5] + "AAAAA",
        "eyJyZXN1bWVfdG9rZW4iOiJ4In0",  # unsigned JSON
    )
    for value in cookies:
        visitor = Visitor(app.test_client())
        visitor.client.set_cookie(app.config["SESSION_COOKIE_NAME"], value, domain="survey.test")
        assert outcome(visitor.get("/review")) == HOME
        assert "private example" not in visitor.get("/page/1", follow_redirects=True).text
