"""Researcher accounts: the CLI, login and logout, safe redirects, cookies and API tokens."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import select, update

from survey.extensions import db
from survey.models import ApiToken, Researcher
from tests.helpers import CSRF_RE, csrf_token

PASSWORD = "correct horse battery"
DASHBOARD = "/researcher/"
LOGIN = "/researcher/login"


def unique_email() -> str:
    """A fresh address: researcher rows are not emptied between PostgreSQL tests."""
    return f"r-{uuid.uuid4().hex[:12]}@example.org"


def flask_cli(runner, *args: str, input: str | None = None):
    """Run ``flask --app survey ARGS``; the real ``flask`` command pushes an app context."""
    with runner.app.app_context():
        return runner.invoke(args=list(args), input=input)


def add_researcher(runner, email: str, password: str = PASSWORD) -> None:
    result = flask_cli(runner, "create-researcher", email, "--password-stdin", input=password)
    assert result.exit_code == 0, result.output


def new_token(runner, email: str) -> str:
    result = flask_cli(runner, "create-api-token", email)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def post_login(client, email: str, password: str, next_url: str | None = None):
    query = {} if next_url is None else {"next": next_url}
    token = csrf_token(client.get(LOGIN, query_string=query).text)
    data = {"csrf_token": token, "email": email, "password": password}
    return client.post(LOGIN, query_string=query, data=data)


def logged_in(client) -> bool:
    """Whether the client's session is a researcher's (a cheap researcher-only route)."""
    return client.get("/researcher/table/fieldwork.csv").status_code == 200


def api_status(client, token: str) -> int:
    return client.get("/api/v1/practices", headers={"Authorization": f"Bearer {token}"}).status_code


def test_create_researcher_reads_the_password_from_stdin_and_stores_only_a_hash(app, runner):
    email = unique_email()
    result = flask_cli(
        runner, "create-researcher", email.upper(), "--password-stdin", input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert email in result.output
    assert PASSWORD not in result.output
    with app.app_context():
        researcher = db.session.scalars(select(Researcher).filter_by(email=email)).one()
        assert researcher.active
        assert researcher.password_hash != PASSWORD
        assert PASSWORD not in researcher.password_hash
        assert researcher.password_hash.startswith(("scrypt:", "pbkdf2:"))

    # A short password is refused and creates nothing.
    other = unique_email()
    result = flask_cli(runner, "create-researcher", other, "--password-stdin", input="short\n")
    assert result.exit_code != 0
    assert "10 characters" in result.output
    with app.app_context():
        assert db.session.scalar(select(Researcher).filter_by(email=other)) is None


def test_login_leads_to_the_dashboard_with_an_http_only_same_site_cookie(client, runner):
    email = unique_email()
    add_researcher(runner, email)
    assert not logged_in(client)
    r = post_login(client, email.upper(), PASSWORD)  # e-mail addresses ignore case
    assert r.status_code == 302
    assert r.location == DASHBOARD
    assert logged_in(client)
    cookies = [c for c in r.headers.getlist("Set-Cookie") if c.startswith("survey_session=")]
    assert cookies, r.headers
    flags = [part.strip().lower() for part in cookies[-1].split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags


def test_wrong_password_and_unknown_email_look_the_same(client, runner):
    email = unique_email()
    other = unique_email()
    add_researcher(runner, email)
    wrong = post_login(client, email, "not the password at all")
    assert wrong.status_code == 200
    assert "Неверный e-mail или пароль." in wrong.text  # Russian by default

    client.get(f"{LOGIN}?lang=en")
    wrong = post_login(client, email, "not the password at all")
    unknown = post_login(client, other, PASSWORD)
    assert wrong.status_code == unknown.status_code == 200
    assert "Wrong e-mail or password." in wrong.text
    assert "Wrong e-mail or password." in unknown.text

    def normalised(page: str, address: str) -> str:
        return CSRF_RE.sub("CSRF", page).replace(address, "EMAIL")

    assert normalised(wrong.text, email) == normalised(unknown.text, other)
    assert not logged_in(client)


def test_login_and_logout_need_csrf_and_logout_needs_post(client, runner):
    email = unique_email()
    add_researcher(runner, email)
    r = client.post(LOGIN, data={"email": email, "password": PASSWORD})
    assert r.status_code == 400
    r = client.post(LOGIN, data={"csrf_token": "forged", "email": email, "password": PASSWORD})
    assert r.status_code == 400
    assert not logged_in(client)

    post_login(client, email, PASSWORD)
    assert logged_in(client)
    assert client.get("/researcher/logout").status_code == 405
    assert client.post("/researcher/logout").status_code == 400
    assert logged_in(client)
    token = csrf_token(client.get(LOGIN).text)
    r = client.post("/researcher/logout", data={"csrf_token": token})
    assert r.status_code == 302
    assert r.location.startswith(LOGIN)
    assert not logged_in(client)
    r = client.get(DASHBOARD)
    assert r.status_code == 302
    assert r.location.startswith(LOGIN)


def test_next_only_allows_local_paths(app, runner):
    email = unique_email()
    add_researcher(runner, email)
    for next_url in (
        "//evil.example",
        "https://evil.example",
        "https://evil.example/researcher/",
        "/\\evil.example",
        "javascript:alert(1)",
    ):
        r = post_login(app.test_client(), email, PASSWORD, next_url=next_url)
        assert r.status_code == 302, next_url
        assert r.location == DASHBOARD, next_url
    r = post_login(app.test_client(), email, PASSWORD, next_url="/researcher/ratings?industry=it")
    assert r.status_code == 302
    assert r.location == "/researcher/ratings?industry=it"


def test_api_token_is_printed_once_and_only_its_sha256_is_stored(app, client, runner):
    email = unique_email()
    add_researcher(runner, email)
    result = flask_cli(runner, "create-api-token", email, "--name", "notebook")
    assert result.exit_code == 0, result.output
    lines = result.stdout.split()
    assert len(lines) == 1
    token = lines[0]
    assert len(token) >= 32
    with app.app_context():
        rows = db.session.scalars(
            select(ApiToken).join(Researcher).where(Researcher.email == email)
        ).all()
        assert len(rows) == 1
        row = rows[0]
        assert row.token_hash != token
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in (row.prefix, row.name, row.token_hash)
        assert row.name == "notebook"
    assert api_status(client, token) == 200
    # A second token is a different one; the first is never shown again.
    assert new_token(runner, email) != token

    result = flask_cli(runner, "create-api-token", unique_email())
    assert result.exit_code != 0
    assert "create-researcher" in result.output


def test_revoked_tokens_are_refused(client, runner):
    email = unique_email()
    add_researcher(runner, email)
    first, second = new_token(runner, email), new_token(runner, email)
    assert api_status(client, first) == api_status(client, second) == 200
    result = flask_cli(runner, "revoke-api-tokens", email)
    assert result.exit_code == 0, result.output
    assert "2" in result.output
    assert api_status(client, first) == api_status(client, second) == 401
    assert api_status(client, new_token(runner, email)) == 200


def test_inactive_researcher_can_neither_log_in_nor_use_a_token(app, runner):
    email = unique_email()
    add_researcher(runner, email)
    token = new_token(runner, email)
    browser = app.test_client()
    post_login(browser, email, PASSWORD)
    assert logged_in(browser)
    with app.app_context():
        db.session.execute(update(Researcher).where(Researcher.email == email).values(active=False))
        db.session.commit()

    # The running session ends, a new login is refused like a wrong password, the token fails.
    assert not logged_in(browser)
    fresh = app.test_client()
    r = post_login(fresh, email, PASSWORD)
    assert r.status_code == 200
    assert "Неверный e-mail или пароль." in r.text
    assert not logged_in(fresh)
    assert api_status(fresh, token) == 401
