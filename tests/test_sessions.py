"""Researcher sessions end for real: logout, a password reset and revocation end every session
server-side, sessions have an absolute lifetime, and logging in starts a fresh session.

The session is a signed cookie kept by the browser, so each test saves the cookie as an
attacker who copied it would, and replays it on a fresh client afterwards.
"""

from __future__ import annotations

import time

from sqlalchemy import select

from survey.auth import LOGIN_AT
from survey.extensions import db
from survey.models import Researcher
from tests.helpers import csrf_token
from tests.test_auth import (
    PASSWORD,
    add_researcher,
    flask_cli,
    new_token,
    post_login,
    unique_email,
)

COOKIE = "survey_session"
HOST = "survey.test"  # the tests' SERVER_NAME: the cookie's domain


def logged_in_browser(app, email: str, password: str = PASSWORD):
    client = app.test_client()
    r = post_login(client, email, password)
    assert r.status_code == 302, r.status_code
    return client


def saved_cookie(client) -> str:
    """The session cookie as an attacker with access to the browser would copy it."""
    cookie = client.get_cookie(COOKIE, domain=HOST)
    assert cookie is not None
    return cookie.value


def replay(app, cookie: str):
    """A fresh browser carrying only the copied cookie."""
    client = app.test_client()
    client.set_cookie(COOKIE, cookie, domain=HOST)
    return client


def opens_researcher_pages(client) -> bool:
    """The dashboard and the API both accept the session, or both refuse it."""
    page = client.get("/researcher/")
    api = client.get("/api/v1/fieldwork")
    if page.status_code == 200:
        assert api.status_code == 200, api.status_code
        return True
    assert page.status_code == 302 and page.location.startswith("/researcher/login"), page
    assert api.status_code == 401, api.status_code
    assert api.get_json()["error"] == "unauthorized"
    return False


def logout(client):
    token = csrf_token(client.get("/researcher/login").text)
    r = client.post("/researcher/logout", data={"csrf_token": token})
    assert r.status_code == 302


def test_a_cookie_saved_before_logout_opens_nothing_after_it(app, runner):
    email = unique_email()
    add_researcher(runner, email)
    browser = logged_in_browser(app, email)
    other_browser = logged_in_browser(app, email)  # the same researcher on another computer
    cookie = saved_cookie(browser)
    assert opens_researcher_pages(replay(app, cookie))  # the copy works while logged in

    logout(browser)

    assert not opens_researcher_pages(browser)
    assert not opens_researcher_pages(replay(app, cookie))
    assert not opens_researcher_pages(other_browser)  # logout ends every session
    assert opens_researcher_pages(logged_in_browser(app, email))  # logging in again works


def test_a_password_reset_ends_every_session(app, runner):
    email = unique_email()
    add_researcher(runner, email)
    browser = logged_in_browser(app, email)
    cookie = saved_cookie(browser)
    assert opens_researcher_pages(replay(app, cookie))

    new_password = "a completely new password"
    result = flask_cli(runner, "create-researcher", email, "--password-stdin", input=new_password)
    assert result.exit_code == 0, result.output

    assert not opens_researcher_pages(replay(app, cookie))
    assert not opens_researcher_pages(browser)
    assert post_login(app.test_client(), email, PASSWORD).status_code == 200  # old one refused
    assert opens_researcher_pages(logged_in_browser(app, email, new_password))


def test_revoke_researcher_ends_sessions_tokens_and_logins(app, runner):
    email = unique_email()
    bystander = unique_email()
    add_researcher(runner, email)
    add_researcher(runner, bystander)
    token = new_token(runner, email)
    bystander_token = new_token(runner, bystander)
    cookie = saved_cookie(logged_in_browser(app, email))
    bystander_browser = logged_in_browser(app, bystander)
    assert opens_researcher_pages(replay(app, cookie))

    result = flask_cli(runner, "revoke-researcher", email.upper())
    assert result.exit_code == 0, result.output
    assert "1 token" in result.output

    assert not opens_researcher_pages(replay(app, cookie))
    bearer = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/fieldwork", headers=bearer).status_code == 401
    refused = post_login(app.test_client(), email, PASSWORD)
    assert refused.status_code == 200
    assert "Неверный e-mail или пароль." in refused.text
    with app.app_context():
        assert not db.session.scalars(select(Researcher).filter_by(email=email)).one().active
    # nobody else is affected
    assert opens_researcher_pages(bystander_browser)
    bearer = {"Authorization": f"Bearer {bystander_token}"}
    assert app.test_client().get("/api/v1/fieldwork", headers=bearer).status_code == 200

    result = flask_cli(runner, "revoke-researcher", unique_email())
    assert result.exit_code != 0
    assert "No researcher" in result.output


def backdate_login(client, seconds: float) -> None:
    with client.session_transaction() as session:
        session[LOGIN_AT] = int(time.time() - seconds)


def test_a_session_older_than_its_lifetime_is_refused(make_app, runner):
    app = make_app(RESEARCHER_SESSION_HOURS=1)
    email = unique_email()
    add_researcher(app.test_cli_runner(), email)
    browser = logged_in_browser(app, email)
    backdate_login(browser, 59 * 60)
    assert opens_researcher_pages(browser)
    backdate_login(browser, 61 * 60)
    assert not opens_researcher_pages(browser)


def test_the_default_lifetime_is_twelve_hours(app, runner):
    assert app.config["RESEARCHER_SESSION_HOURS"] == 12
    email = unique_email()
    add_researcher(runner, email)
    browser = logged_in_browser(app, email)
    backdate_login(browser, 11.9 * 3600)
    assert opens_researcher_pages(browser)
    backdate_login(browser, 12.1 * 3600)
    assert not opens_researcher_pages(browser)


def test_a_session_without_a_login_time_or_epoch_is_refused(app, runner):
    """Cookies in the old format ("_user_id" = the row id only) no longer open anything."""
    email = unique_email()
    add_researcher(runner, email)
    browser = logged_in_browser(app, email)
    with app.app_context():
        researcher = db.session.scalars(select(Researcher).filter_by(email=email)).one()
        row_id, epoch = researcher.id, researcher.session_epoch
    with browser.session_transaction() as session:
        assert session["_user_id"] == f"{row_id}:{epoch}"
        session["_user_id"] = str(row_id)
    assert not opens_researcher_pages(browser)

    browser = logged_in_browser(app, email)
    with browser.session_transaction() as session:
        del session[LOGIN_AT]
    assert not opens_researcher_pages(browser)


def test_logging_in_starts_a_fresh_session(app, runner):
    email = unique_email()
    add_researcher(runner, email)
    browser = app.test_client()
    browser.get("/lang/en?next=/")
    with browser.session_transaction() as session:  # planted before the login
        session["planted"] = "by an attacker"
        session["_fresh"] = False
    before = saved_cookie(browser)
    assert post_login(browser, email, PASSWORD).status_code == 302
    with browser.session_transaction() as session:
        assert "planted" not in session
        assert session["_fresh"] is True
        assert session["lang"] == "en"  # the interface language is kept
    assert saved_cookie(browser) != before
    assert not opens_researcher_pages(replay(app, before))
