"""Security headers, cookies, no inline script, and malformed or oversized bodies (issue 6).

Every kind of response (questionnaire page, error page, login, dashboard, API JSON, CSV,
static file, redirect) carries the same headers; no rendered page holds a script the CSP
would have to allow inline; broken bodies give a 4xx, never a 500.
"""

from __future__ import annotations

import itertools
import json
from html.parser import HTMLParser

import pytest
from sqlalchemy import update

from survey.demo import seed_demo
from survey.extensions import db
from survey.models import Response
from tests.helpers import PASSWORD, Respondent, auth_header, csrf_token, log_in, researcher

POST_ROUTES = (
    "/",
    "/profile",
    "/page/1",
    "/submit",
    "/withdraw",
    "/restart",
    "/researcher/login",
    "/researcher/logout",
)
QUESTIONNAIRE_POSTS = POST_ROUTES[:6]
API_ROUTES = (
    "/api/v1/practices",
    "/api/v1/comparison",
    "/api/v1/fieldwork",
    "/api/v1/openapi.json",
    "/api/v1/export/codebook",
)
TOO_LARGE = {"ru": "Отправлено слишком много данных", "en": "Too much data was sent"}


pytestmark = pytest.mark.usefixtures("fresh_cache")


def directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def assert_security_headers(r, hsts: int = 0) -> None:
    """The headers every response must carry."""
    where = f"{r.request.path} ({r.status_code})"
    csp = directives(r.headers.get("Content-Security-Policy", ""))
    script = csp.get("script-src", csp.get("default-src"))
    assert script is not None, where
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, where
    assert "*" not in script and "data:" not in script, where
    assert csp.get("frame-ancestors") == ["'none'"], where
    assert csp.get("object-src") == ["'none'"], where
    assert "base-uri" in csp, where
    assert r.headers.get("X-Content-Type-Options") == "nosniff", where
    assert r.headers.get("X-Frame-Options") == "DENY", where
    assert r.headers.get("Referrer-Policy") in (
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
    ), where
    if hsts:
        value = r.headers.get("Strict-Transport-Security", "")
        assert f"max-age={hsts}" in value, where
    else:
        assert "Strict-Transport-Security" not in r.headers, where


class ScriptAudit(HTMLParser):
    """Collects anything in a page that the CSP would have to allow as inline script."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.data_blocks: list[str] = []
        self._block: list[str] | None = None
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for name, value in attrs:
            if name.lower().startswith("on"):
                self.problems.append(f"inline event handler {name}= on <{tag}>")
            if name.lower() in ("href", "src", "action", "formaction") and value:
                if value.strip().lower().startswith(("javascript:", "data:text/html")):
                    self.problems.append(f"script URL in <{tag} {name}>")
        if tag == "script":
            self.scripts += 1
            kind = (values.get("type") or "").strip().lower()
            if "src" in values:
                if not values["src"].startswith("/static/"):
                    self.problems.append(f"script from elsewhere: {values['src']}")
            elif kind != "application/json":
                self.problems.append(f"inline <script type={kind!r}>")
            else:
                self._block = []

    def handle_data(self, data):
        if self._block is not None:
            self._block.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._block is not None:
            self.data_blocks.append("".join(self._block))
            self._block = None


def assert_no_inline_script(r) -> None:
    """Parse the page: only external scripts and JSON data blocks (which must be valid JSON)."""
    assert r.mimetype == "text/html", r.request.path
    audit = ScriptAudit()
    audit.feed(r.text)
    audit.close()
    assert audit.problems == [], (r.request.path, audit.problems)
    assert audit.scripts >= 1, r.request.path  # the page does load its script file
    for block in audit.data_blocks:
        json.loads(block)  # a data block is data: nothing can break out of it


def assert_cookie_flags(r, secure: bool) -> list[str]:
    """Every cookie set is HttpOnly and SameSite=Lax (and Secure when configured).

    A deletion (empty value, Max-Age=0, as Flask-Login sends for ``remember_token``) carries
    nothing and is left out.
    """
    cookies = r.headers.getlist("Set-Cookie")
    for cookie in cookies:
        attributes = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")[1:]}
        if cookie.split(";")[0].endswith("=") and "max-age" in attributes:
            assert attributes["max-age"].strip().lower() == "max-age=0", cookie
            continue
        assert "httponly" in attributes, cookie
        assert attributes.get("samesite", "").strip().lower() == "samesite=lax", cookie
        assert ("secure" in attributes) == secure, cookie
    return cookies


def every_kind_of_response(app, client) -> list:
    """One respondent through the questionnaire, then a researcher through the dashboard."""
    catalog = app.extensions["survey_catalog"]
    app.config["MIN_COMPLETION_SECONDS"] = 0
    seen = []
    respondent = Respondent(client)
    seen.append(client.get("/"))
    seen.append(respondent.consent())  # a redirect
    seen.append(client.get("/profile"))
    respondent.profile()
    for page in catalog.pages:
        seen.append(client.get(f"/page/{page.number}"))
        respondent.answer_page(page, ("ru", "foreign"), examples={page.practices[0].id: "пример"})
    seen.append(client.get("/review"))
    seen.append(client.get("/withdraw"))
    respondent.submit()
    seen.append(client.get("/thanks"))
    seen.append(client.get("/lang/en?next=/thanks"))
    seen.append(client.get("/thanks"))
    # error pages
    seen.append(client.get("/no-such-page"))
    seen.append(client.get("/submit"))  # 405
    seen.append(client.post("/restart", data={}))  # CSRF 400
    seen.append(client.post("/", data={"x": "y" * (app.config["MAX_CONTENT_LENGTH"] + 1)}))
    # researcher
    who = researcher(app)
    research = app.test_client()
    seen.append(research.get("/researcher/login"))
    seen.append(research.get("/researcher/"))  # redirect to the login page
    log_in(app, research, who.email)
    pid = catalog.practices[0].id
    for path in (
        "/researcher/",
        "/researcher/comparison?view=paired",
        "/researcher/ratings",
        "/researcher/categories",
        f"/researcher/practice/{pid}",
        "/researcher/export",
        "/researcher/export/download?file=examples&include_examples=1",  # refused: 400 page
        "/researcher/table/comparison.csv",
        "/researcher/practice/no-such-practice",
    ):
        seen.append(research.get(path))
    with app.app_context():
        # Enough real rows to release an export (demo rows are no cover for real ones).
        seed_demo(catalog, 600, 3)
        db.session.execute(update(Response).values(is_demo=False))
        db.session.commit()
    for path in (*API_ROUTES, "/api/v1/export/zip"):
        seen.append(app.test_client().get(path, headers=auth_header(who.token)))
        # A streamed file keeps its request context open until read: read it now, or the
        # next requests would run inside it and reuse its signed-in researcher.
        seen[-1].get_data()
    seen.append(research.get("/researcher/export/download?include_demo=1"))
    seen[-1].get_data()
    seen.append(app.test_client().get("/api/v1/practices"))  # 401 JSON
    seen.append(app.test_client().get("/api/v1/nothing-here"))  # 404 JSON
    seen.append(client.get("/static/css/survey.css"))
    seen.append(client.get("/static/js/survey.js"))
    seen.append(client.get("/static/favicon.svg"))
    return seen


# ---------------------------------------------------------------- headers


def test_every_kind_of_response_has_the_headers_and_no_page_has_inline_script(app, client):
    seen = every_kind_of_response(app, client)
    kinds = {(r.status_code, r.mimetype) for r in seen}
    for expected in (
        (200, "text/html"),
        (302, "text/html"),
        (404, "text/html"),
        (405, "text/html"),
        (400, "text/html"),
        (413, "text/html"),
        (200, "application/json"),
        (401, "application/json"),
        (404, "application/json"),
        (200, "text/csv"),
        (200, "application/zip"),
        (200, "text/css"),
        (200, "image/svg+xml"),
    ):
        assert expected in kinds, expected
    charts = 0
    for r in seen:
        assert r.status_code < 500, (r.request.path, r.status_code)
        assert_security_headers(r)
        if r.request.path.startswith(("/researcher", "/api/")):
            assert r.headers.get("Cache-Control") == "no-store", r.request.path
        if r.mimetype == "text/html" and r.status_code != 302:
            assert_no_inline_script(r)
            charts += r.text.count('type="application/json"')
        r.close()
    assert charts >= 5  # the dashboard's charts are data blocks, drawn by a static file


def test_hsts_only_when_configured(app, make_app):
    seconds = 31536000
    https = make_app(HSTS_SECONDS=seconds)
    token = researcher(https).token
    browser = https.test_client()
    seen = [browser.get(path) for path in ("/", "/no-such-page", "/researcher/login")]
    seen.append(browser.get("/researcher/"))  # the redirect to the login page
    seen.append(browser.get("/api/v1/practices", headers={"Authorization": f"Bearer {token}"}))
    seen.append(browser.get("/static/css/survey.css"))
    for r in seen:
        assert r.status_code in (200, 302, 404), r.request.path
        assert_security_headers(r, hsts=seconds)
        assert "includeSubDomains" in r.headers["Strict-Transport-Security"]
        r.close()
    plain = app.test_client()  # HSTS_SECONDS defaults to 0
    for path in ("/", "/researcher/login", "/static/css/survey.css"):
        with plain.get(path) as r:
            assert_security_headers(r, hsts=0)


# ---------------------------------------------------------------- cookies


def test_session_cookies_are_http_only_and_same_site_lax(app, client):
    first = client.get("/")  # the form's CSRF token starts the session
    assert any(c.startswith("survey_session=") for c in assert_cookie_flags(first, secure=False))
    r = client.post("/", data={"csrf_token": csrf_token(first.text), "adult": "y", "agree": "y"})
    assert r.status_code == 302
    assert_cookie_flags(r, secure=False)
    email = researcher(app).email
    research = app.test_client()
    page = research.get("/researcher/login")
    assert_cookie_flags(page, secure=False)
    login = research.post(
        "/researcher/login",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": PASSWORD},
    )
    assert login.status_code == 302
    assert login.headers.getlist("Set-Cookie"), "a login renews the session cookie"
    assert_cookie_flags(login, secure=False)


def test_session_cookie_is_secure_when_configured(make_app):
    secure = make_app(SESSION_COOKIE_SECURE=True, PREFERRED_URL_SCHEME="https")
    client = secure.test_client()
    first = client.get("/", base_url="https://survey.test")
    cookies = assert_cookie_flags(first, secure=True)
    assert any(c.startswith("survey_session=") for c in cookies)
    r = client.post(
        "/",
        data={"csrf_token": csrf_token(first.text), "adult": "y", "agree": "y"},
        base_url="https://survey.test",
        headers={"Referer": "https://survey.test/"},  # checked by CSRF protection over HTTPS
    )
    assert r.status_code == 302, r.text[:300]
    assert_cookie_flags(r, secure=True)


# ---------------------------------------------------------------- no inline script


def test_the_script_audit_catches_inline_script():
    """The parser used above really does flag what the CSP forbids."""
    for html in (
        "<script>alert(1)</script>",
        '<script type="text/javascript">x()</script>',
        '<script type="module">x()</script>',
        '<a href="javascript:alert(1)">x</a>',
        '<img src="x" onerror="alert(1)">',
        '<script src="https://cdn.example.com/x.js"></script>',
    ):
        audit = ScriptAudit()
        audit.feed(html)
        assert audit.problems, html
    audit = ScriptAudit()
    audit.feed('<script type="application/json" id="d">{"a": "<\\/script>"}</script>')
    assert audit.problems == [] and json.loads(audit.data_blocks[0]) == {"a": "</script>"}


# ---------------------------------------------------------------- oversized and broken bodies


def session_token(client) -> str:
    """A CSRF token valid for this client's session (respondent with a draft)."""
    respondent = Respondent(client)
    respondent.consent()
    assert respondent.profile().status_code == 302
    return csrf_token(client.get("/profile").text)


def test_a_body_over_the_size_limit_is_a_413_page_on_every_post_route(app):
    limit = app.config["MAX_CONTENT_LENGTH"]
    for index, path in enumerate(POST_ROUTES):
        lang = ("ru", "en")[index % 2]  # the page is in the respondent's language
        client = app.test_client()
        if lang != "ru":
            client.get(f"/lang/{lang}?next=/")
        token = session_token(client)
        for body in (
            {"csrf_token": token, "adult": "y", "agree": "y", "website": "w" * (limit + 1)},
            {"csrf_token": token, **{f"f{i}": "x" * 1024 for i in range(limit // 1024 + 2)}},
        ):
            with client.post(path, data=body) as r:
                assert r.status_code == 413, (path, r.status_code)
                assert r.mimetype == "text/html"
                assert TOO_LARGE[lang] in r.text, path
                assert_security_headers(r)


def garbage_bodies(token: str) -> list[tuple[str, bytes]]:
    """(content type, body) pairs no page of ours sends; each carries a valid CSRF token."""
    form = f"csrf_token={token}&agree=y".encode()
    return [
        (
            "application/json",
            json.dumps({"csrf_token": token, "adult": "y", "agree": "y"}).encode(),
        ),
        ("application/json", b'{"csrf_token": '),
        ("text/plain", form),
        ("application/xml", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"),
        ("multipart/form-data", form),  # no boundary
        ("multipart/form-data; boundary=zz", b"--zz\r\nContent-Disposition: form-data\r\n\r\n"),
        ("application/octet-stream", b"\x00\xff\xfe" * 100),
        ("application/x-www-form-urlencoded", form + b"&website=caf\xe9"),  # raw Latin-1 byte
        ("application/x-www-form-urlencoded", form + b"&website=caf%E9"),  # not UTF-8
        ("application/x-www-form-urlencoded", form + b"&website=%ZZ"),  # not a percent-escape
        ("application/x-www-form-urlencoded", form + b"&website=100%"),  # a truncated escape
        ("application/x-www-form-urlencoded", form + b"&web%C0%AFsite=x"),  # overlong UTF-8
        ("", form),
        ("garbage/garbage; charset=klingon", form),
    ]


def test_malformed_bodies_on_questionnaire_routes_are_refused_with_400(app):
    for path in QUESTIONNAIRE_POSTS:
        client = app.test_client()
        token = session_token(client)
        for content_type, body in garbage_bodies(token):
            with client.post(path, data=body, content_type=content_type) as r:
                assert r.status_code == 400, (path, content_type, body[-20:], r.status_code)
                assert r.mimetype == "text/html"
                assert_security_headers(r)


def test_malformed_bodies_on_login_and_logout_never_give_a_500(app):
    email = researcher(app).email
    for path in ("/researcher/login", "/researcher/logout"):
        client = app.test_client()
        token = csrf_token(client.get("/researcher/login").text)
        for content_type, body in garbage_bodies(token):
            body = body.replace(b"agree=y", f"email={email}&password=x%ZZ".encode())
            with client.post(path, data=body, content_type=content_type) as r:
                assert r.status_code in (200, 302, 400), (path, content_type, r.status_code)
                assert_security_headers(r)
                if path.endswith("login"):
                    assert r.status_code != 302, "a broken body never logs anyone in"


def test_json_and_garbage_sent_to_the_api_get_json_errors(app):
    token = researcher(app).token
    auth = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    for path in API_ROUTES:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for content_type, body in (
                ("application/json", b'{"level": "category"}'),
                ("application/json", b'{"level": '),
                ("application/x-www-form-urlencoded", b"level=%ZZ&x=%E9"),
                ("text/plain", b"\xff\xfe"),
            ):
                r = client.open(path, method=method, data=body, content_type=content_type)
                assert r.status_code in (400, 405), (method, path, r.status_code)
                assert r.mimetype == "application/json"
                assert set(r.get_json()) >= {"error", "message"}
                assert_security_headers(r)
                r.close()
        for headers in (auth, {}):
            with client.get(
                path, data=b'{"level": ', content_type="application/json", headers=headers
            ) as r:  # a body on a GET is ignored, malformed or not
                assert r.status_code == (200 if headers else 401), (path, r.status_code)
                assert r.mimetype in ("application/json", "application/zip", "text/csv")


BROKEN_URLS = (
    "/page/%E9",
    "/page/%ZZ",
    "/page/99999999999999999999999",
    "/page/-1",
    "/resume/%FF%FE",
    "/resume/%ZZ",
    "/resume/" + "a" * 5000,
    "/lang/%ZZ?next=%E9",
    "/lang/en?next=%",
    "/lang/en?next=/%ZZ",
    "/?%ZZ=%E9&agree=%",
    "/review?return=%FF",
    "/researcher/practice/%C0%AF",
    "/researcher/table/%FF.csv",
    "/researcher/login?next=%E9%ZZ",
    "/static/%FF",
    "/static/..%2F..%2Fsurvey%2Fconfig.py",
    "/api/v1/export/%FF",
    "/api/v1/comparison?level=%E9&industry=%ZZ",
    "/api/v1/fieldwork?include_demo=%FF",
)


def test_invalid_percent_encoding_in_urls_never_gives_a_500(app):
    token = researcher(app).token
    for path, headers in itertools.product(BROKEN_URLS, ({}, {"Authorization": f"Bearer {token}"})):
        with app.test_client().get(path, headers=headers) as r:
            assert r.status_code < 500, (path, r.status_code)
            assert_security_headers(r)
            if path.startswith("/api/") and r.status_code >= 400:
                assert set(r.get_json()) >= {"error", "message"}
