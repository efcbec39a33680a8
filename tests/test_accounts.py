"""Researcher roles, the first-run set-up link and owners' invitations (issue 15)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, text

from survey import accounts, fieldwork
from survey.extensions import db
from survey.models import AccountLink, ApiToken, Researcher
from tests.helpers import PASSWORD, auth_header, csrf_token, log_in, researcher, unique_email

NEW_PASSWORD = "another long password here"
LOGIN = "/researcher/login"
TEAM = "/researcher/team"
DASHBOARD = "/researcher/"
LINK_RE = re.compile(r'value="(http://survey\.test/researcher/welcome/[^"]+)"')
INVALID = {"ru": "Ссылка не работает", "en": "This link does not work"}


def flask_cli(runner, *args: str, input: str | None = None):
    """Run ``flask --app survey ARGS``; the real ``flask`` command pushes an app context."""
    with runner.app.app_context():
        return runner.invoke(args=list(args), input=input)


def post_from(client, page: str, path: str, data: dict | None = None):
    """POST to ``path`` with the CSRF token of ``page``, as the page's form would."""
    token = csrf_token(client.get(page).text)
    return client.post(path, data={"csrf_token": token, **(data or {})})


def setup_form(email: str, password: str = PASSWORD, confirm: str | None = None) -> dict:
    return {"email": email, "password": password, "confirm": confirm or password}


def links(app) -> list[AccountLink]:
    with app.app_context():
        rows = list(db.session.scalars(select(AccountLink).order_by(AccountLink.id)))
        db.session.expunge_all()
        return rows


def count_researchers(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Researcher))


def account(app, email: str) -> Researcher:
    with app.app_context():
        row = db.session.scalars(select(Researcher).filter_by(email=email)).one()
        db.session.expunge(row)
        return row


def database_text(app) -> str:
    """Every column of every account link, as text: to look for a token in clear."""
    with app.app_context():
        rows = db.session.execute(text("SELECT * FROM account_link")).all()
    return " ".join(str(value) for row in rows for value in row)


def new_setup_link(app) -> str:
    with app.app_context():
        return accounts.create_setup_link()


def invite(app, owner_email: str, role: str = "analyst") -> tuple[str, str]:
    """An owner invites a new e-mail through the Team page; returns (e-mail, link path)."""
    client = log_in(app, email=owner_email)
    email = unique_email()
    r = post_from(client, TEAM, f"{TEAM}/invite", {"email": email, "role": role})
    assert r.status_code == 200, r.text[:2000]
    return email, urlsplit(LINK_RE.search(r.text).group(1)).path


# --------------------------------------------------------------------------- set-up link


def test_the_setup_link_creates_the_first_owner_once_and_is_stored_as_a_hash(app, client):
    token = new_setup_link(app)
    path = f"/researcher/setup/{token}"
    (row,) = links(app)
    assert row.kind == "setup" and row.role == "owner" and row.used_at is None
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in database_text(app)
    assert row.expires_at - row.created_at == dt.timedelta(hours=24)

    # Opening the link (twice, like a messenger preview and then the person) consumes nothing.
    for _ in range(2):
        page = client.get(path)
        assert page.status_code == 200
        assert page.headers["Cache-Control"] == "no-store"
    assert links(app)[0].used_at is None

    # Bad input: a form error, nothing stored, the link still usable.
    email = unique_email()
    r = post_from(client, path, path, setup_form(email, PASSWORD, "a different password!"))
    assert r.status_code == 400 and "Пароли не совпадают" in r.text
    r = post_from(client, path, path, setup_form(email, "short pass"))
    assert r.status_code == 400 and "Не короче 12 символов" in r.text
    r = post_from(client, path, path, setup_form("not an address", PASSWORD))
    assert r.status_code == 400
    assert count_researchers(app) == 0 and links(app)[0].used_at is None

    r = post_from(client, path, path, setup_form(email.upper()))
    assert r.status_code == 302 and urlsplit(r.location).path == DASHBOARD
    owner = account(app, email)
    assert owner.role == "owner" and owner.active
    assert links(app)[0].used_at is not None
    assert client.get(TEAM).status_code == 200  # logged in, as an owner

    # Used: refused in any browser, GET or POST, and nothing more is created.
    other = app.test_client()
    page = other.get(path)
    assert page.status_code == 404 and INVALID["ru"] in page.text
    r = post_from(other, LOGIN, path, setup_form(unique_email()))
    assert r.status_code == 404 and INVALID["ru"] in r.text
    assert count_researchers(app) == 1


def test_the_setup_link_expires(app, client, monkeypatch):
    token = new_setup_link(app)
    later = fieldwork.utcnow() + dt.timedelta(hours=24, seconds=1)
    page = client.get(f"/researcher/setup/{token}")
    assert page.status_code == 200
    monkeypatch.setattr(fieldwork, "utcnow", lambda: later)
    path = f"/researcher/setup/{token}"
    r = client.post(path, data={"csrf_token": csrf_token(page.text), **setup_form(unique_email())})
    assert r.status_code == 404 and INVALID["ru"] in r.text
    assert client.get(path).status_code == 404
    assert count_researchers(app) == 0


def test_the_setup_link_is_refused_once_an_account_exists(app, client, runner):
    token = new_setup_link(app)
    path = f"/researcher/setup/{token}"
    page = client.get(path)
    assert page.status_code == 200
    result = flask_cli(
        runner, "create-researcher", unique_email(), "--password-stdin", input=PASSWORD
    )
    assert result.exit_code == 0, result.output

    r = client.post(path, data={"csrf_token": csrf_token(page.text), **setup_form(unique_email())})
    assert r.status_code == 404
    assert count_researchers(app) == 1
    assert client.get(path).status_code == 404
    with app.app_context(), pytest.raises(accounts.AccountError):
        accounts.create_setup_link()


def test_a_new_setup_link_ends_the_earlier_one(app, client):
    first, second = new_setup_link(app), new_setup_link(app)
    assert client.get(f"/researcher/setup/{first}").status_code == 404
    assert client.get(f"/researcher/setup/{second}").status_code == 200
    assert client.get(f"/researcher/welcome/{second}").status_code == 404  # not an invitation
    assert [row.kind for row in links(app)] == ["setup"]


def test_two_browsers_cannot_both_use_one_link(app, monkeypatch):
    token = new_setup_link(app)
    with app.app_context():
        link_id = accounts.find_link(token, accounts.SETUP).id
        assert accounts.redeem(token, PASSWORD, email=unique_email()) is not None
    # A second browser that passed the check before the first one committed (the check
    # is replayed here, with no account in the way) is refused by the conditional UPDATE.
    with app.app_context():
        db.session.execute(text("DELETE FROM researcher"))
        db.session.commit()
        link = db.session.get(AccountLink, link_id)
        monkeypatch.setattr(accounts, "find_link", lambda *_args: link)
        assert accounts.redeem(token, PASSWORD, email=unique_email()) is None
    assert count_researchers(app) == 0


def test_the_invalid_link_page_speaks_the_visitors_language(client):
    client.get("/lang/en?next=/")
    for path in (
        "/researcher/setup/" + "x" * 43,
        "/researcher/welcome/nothing",
        "/researcher/setup/" + "y" * 300,
    ):
        r = client.get(path)
        assert r.status_code == 404, path
        assert INVALID["en"] in r.text


# --------------------------------------------------------------------------- CLI


def test_setup_link_command_prints_a_link_only_while_no_account_exists(app, client, runner):
    result = flask_cli(runner, "setup-link")
    assert result.exit_code == 0, result.output
    (url,) = re.findall(r"http://survey\.test/researcher/setup/\S+", result.output)
    assert client.get(urlsplit(url).path).status_code == 200
    token = urlsplit(url).path.rsplit("/", 1)[1]
    assert token not in database_text(app)

    # --if-none (make run) prints another while there is still no account.
    result = flask_cli(runner, "setup-link", "--if-none")
    assert result.exit_code == 0 and "/researcher/setup/" in result.output
    assert client.get(urlsplit(url).path).status_code == 404  # the earlier one ended

    researcher(app, "owner")
    result = flask_cli(runner, "setup-link", "--if-none")
    assert result.exit_code == 0 and result.output == ""
    result = flask_cli(runner, "setup-link")
    assert result.exit_code != 0 and "exists already" in result.output
    assert count_researchers(app) == 1


def test_create_researcher_makes_the_first_account_an_owner_and_takes_a_role(app, runner):
    def create(email, *options):
        result = flask_cli(
            runner, "create-researcher", email, "--password-stdin", *options, input=PASSWORD
        )
        assert result.exit_code == 0, result.output
        return account(app, email).role

    first, second, third = unique_email(), unique_email(), unique_email()
    assert create(first) == "owner"
    assert create(second) == "analyst"
    assert create(third, "--role", "owner") == "owner"
    assert create(second) == "analyst"  # a password reset keeps the role
    assert create(second, "--role", "owner") == "owner"
    assert create(third, "--role", "analyst") == "analyst"
    result = flask_cli(
        runner, "create-researcher", unique_email(), "--role", "admin", "--password-stdin"
    )
    assert result.exit_code != 0
    assert count_researchers(app) == 3


def test_a_first_account_made_with_role_analyst_stays_analyst(app, runner):
    email = unique_email()
    result = flask_cli(
        runner,
        "create-researcher",
        email,
        "--role",
        "analyst",
        "--password-stdin",
        input=PASSWORD,
    )
    assert result.exit_code == 0, result.output
    assert account(app, email).role == "analyst"


# --------------------------------------------------------------------------- invitations


def test_an_owner_invites_an_analyst_who_sets_a_password_and_reads_the_dashboard(app):
    owner = researcher(app, "owner")
    client = log_in(app, email=owner.email)
    email = unique_email()
    r = post_from(
        client, TEAM, f"{TEAM}/invite", {"email": f"  {email.upper()} ", "role": "analyst"}
    )
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    link = LINK_RE.search(r.text).group(1)
    token = link.rsplit("/", 1)[1]
    assert token not in database_text(app)
    (row,) = links(app)
    assert (row.kind, row.email, row.role, row.created_by) == ("invite", email, "analyst", owner.id)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.expires_at - row.created_at == dt.timedelta(hours=72)
    # Shown once: the team page lists the invitation but never its link again.
    team = client.get(TEAM)
    assert email in team.text and token not in team.text

    invited = app.test_client()
    path = urlsplit(link).path
    page = invited.get(path)
    assert page.status_code == 200 and email in page.text
    assert links(app)[0].used_at is None
    r = post_from(invited, path, path, {"password": "short", "confirm": "short"})
    assert r.status_code == 400 and count_researchers(app) == 1
    r = post_from(invited, path, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302 and urlsplit(r.location).path == DASHBOARD
    assert account(app, email).role == "analyst"

    # Logged in straight away; reads the dashboard, not the team page; no Team link.
    page = invited.get(DASHBOARD)
    assert page.status_code == 200 and 'href="/researcher/team"' not in page.text
    assert invited.get(TEAM).status_code == 403
    assert 'href="/researcher/team"' in client.get(DASHBOARD).text
    # A later login with the chosen password works; the link does not work again.
    assert log_in(app, email=email, password=NEW_PASSWORD).get(DASHBOARD).status_code == 200
    assert app.test_client().get(path).status_code == 404


def test_an_invitation_is_refused_for_an_active_account_and_bad_input(app):
    owner = researcher(app, "owner")
    analyst = researcher(app, "analyst")
    client = log_in(app, email=owner.email)
    r = post_from(client, TEAM, f"{TEAM}/invite", {"email": analyst.email, "role": "owner"})
    assert r.status_code == 400 and "Активная учётная запись с этим адресом" in r.text
    for data in (
        {"email": "no-at-sign", "role": "analyst"},
        {"email": unique_email(), "role": "admin"},
        {"email": "", "role": "analyst"},
        {"email": "a@b.c" + "x" * 300, "role": "analyst"},
    ):
        r = post_from(client, TEAM, f"{TEAM}/invite", data)
        assert r.status_code == 400, data
    assert links(app) == []
    assert account(app, analyst.email).role == "analyst"


def test_an_invitation_stops_working_when_its_email_gets_an_account(app):
    owner = researcher(app, "owner")
    email, path = invite(app, owner.email)
    client = app.test_client()
    page = client.get(path)
    assert page.status_code == 200
    researcher(app, "analyst", email=email)  # made with the CLI meanwhile
    r = client.post(
        path,
        data={
            "csrf_token": csrf_token(page.text),
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert r.status_code == 404
    assert log_in(app, email=email).get(DASHBOARD).status_code == 200  # the password is unchanged


def test_an_invitation_expires(app, monkeypatch):
    owner = researcher(app, "owner")
    email, path = invite(app, owner.email)
    client = app.test_client()
    page = client.get(path)
    assert page.status_code == 200
    later = fieldwork.utcnow() + dt.timedelta(hours=72, seconds=1)
    monkeypatch.setattr(fieldwork, "utcnow", lambda: later)
    data = {"csrf_token": csrf_token(page.text), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert client.post(path, data=data).status_code == 404
    assert count_researchers(app) == 1
    assert email not in log_in(app, email=owner.email).get(TEAM).text  # no longer listed as pending


def test_a_newer_invitation_of_the_same_email_replaces_the_earlier(app):
    owner = researcher(app, "owner")
    client = log_in(app, email=owner.email)
    email = unique_email()
    paths = []
    for role in ("analyst", "owner"):
        r = post_from(client, TEAM, f"{TEAM}/invite", {"email": email, "role": role})
        paths.append(urlsplit(LINK_RE.search(r.text).group(1)).path)
    assert app.test_client().get(paths[0]).status_code == 404
    invited = app.test_client()
    r = post_from(invited, paths[1], paths[1], {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302
    assert account(app, email).role == "owner"
    assert invited.get(TEAM).status_code == 200


# --------------------------------------------------------------------------- revoke, roles


def test_revoking_an_account_ends_its_sessions_tokens_and_invitations(app):
    owner = researcher(app, "owner")
    other = researcher(app, "owner")
    session = log_in(app, email=other.email)
    _email, pending = invite(app, other.email)  # an invitation the revoked owner sent
    bearer = auth_header(other.token)
    assert session.get(DASHBOARD).status_code == 200
    assert app.test_client().get("/api/v1/practices", headers=bearer).status_code == 200

    client = log_in(app, email=owner.email)
    r = post_from(client, TEAM, f"{TEAM}/{other.id}/revoke")
    assert r.status_code == 302 and urlsplit(r.location).path == TEAM
    assert not account(app, other.email).active
    assert urlsplit(session.get(DASHBOARD).location).path == LOGIN
    assert app.test_client().get("/api/v1/practices", headers=bearer).status_code == 401
    with app.app_context():
        assert db.session.scalar(select(ApiToken.revoked_on).filter_by(researcher_id=other.id))
    assert app.test_client().get(pending).status_code == 404
    assert "отозвана" in client.get(TEAM).text


def test_the_last_owner_cannot_be_revoked_or_demoted(app):
    owner = researcher(app, "owner")
    client = log_in(app, email=owner.email)
    r = post_from(client, TEAM, f"{TEAM}/{owner.id}/revoke")
    assert r.status_code == 400 and "свою учётную запись" in r.text
    r = post_from(client, TEAM, f"{TEAM}/{owner.id}/role", {"role": "analyst"})
    assert r.status_code == 400 and "Последнего активного владельца" in r.text
    saved = account(app, owner.email)
    assert saved.active and saved.role == "owner"
    assert client.get(TEAM).status_code == 200  # still logged in
    with app.app_context():
        me = db.session.get(Researcher, owner.id)
        with pytest.raises(accounts.AccountError):
            accounts.revoke(me, me)
        with pytest.raises(accounts.AccountError):
            accounts.change_role(me, me, "analyst")


def test_an_owner_changes_roles_and_the_changed_account_logs_in_again(app):
    owner = researcher(app, "owner")
    analyst = researcher(app, "analyst")
    analyst_session = log_in(app, email=analyst.email)
    client = log_in(app, email=owner.email)

    r = post_from(client, TEAM, f"{TEAM}/{analyst.id}/role", {"role": "owner"})
    assert r.status_code == 302
    assert account(app, analyst.email).role == "owner"
    assert analyst_session.get(DASHBOARD).status_code == 302  # session ended
    promoted = log_in(app, email=analyst.email)
    assert promoted.get(TEAM).status_code == 200

    # With two owners, one may step down; then the other is the last and may not.
    r = post_from(client, TEAM, f"{TEAM}/{owner.id}/role", {"role": "analyst"})
    assert r.status_code == 302
    assert account(app, owner.email).role == "analyst"
    assert client.get(TEAM).status_code == 302  # own sessions ended too
    r = post_from(promoted, TEAM, f"{TEAM}/{analyst.id}/role", {"role": "analyst"})
    assert r.status_code == 400
    assert account(app, analyst.email).role == "owner"
    r = post_from(promoted, TEAM, f"{TEAM}/{owner.id}/role", {"role": "admin"})
    assert r.status_code == 400
    assert post_from(promoted, TEAM, f"{TEAM}/999999/role", {"role": "owner"}).status_code == 404


def test_a_revoked_researcher_invited_again_gets_the_new_role(app):
    owner = researcher(app, "owner")
    gone = researcher(app, "owner")
    old_session = log_in(app, email=gone.email)
    client = log_in(app, email=owner.email)
    assert post_from(client, TEAM, f"{TEAM}/{gone.id}/revoke").status_code == 302
    r = post_from(client, TEAM, f"{TEAM}/invite", {"email": gone.email, "role": "analyst"})
    path = urlsplit(LINK_RE.search(r.text).group(1)).path
    back = app.test_client()
    r = post_from(back, path, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302
    saved = account(app, gone.email)
    assert saved.active and saved.role == "analyst" and saved.id == gone.id
    assert back.get(DASHBOARD).status_code == 200
    assert old_session.get(DASHBOARD).status_code == 302


# --------------------------------------------------------------------------- who may do what


def test_an_analyst_gets_403_on_every_team_route_and_nothing_changes(app):
    owner = researcher(app, "owner")
    analyst = researcher(app, "analyst")
    client = log_in(app, email=analyst.email)
    assert client.get(DASHBOARD).status_code == 200
    r = client.get(TEAM)
    assert r.status_code == 403 and "Доступ запрещён" in r.text
    assert client.get(TEAM, headers={"Accept": "application/json"}).status_code == 403
    for path, data in (
        (f"{TEAM}/invite", {"email": unique_email(), "role": "owner"}),
        (f"{TEAM}/{owner.id}/revoke", {}),
        (f"{TEAM}/{owner.id}/role", {"role": "analyst"}),
        (f"{TEAM}/{analyst.id}/role", {"role": "owner"}),
    ):
        assert post_from(client, LOGIN, path, data).status_code == 403, path
    assert links(app) == []
    assert account(app, owner.email).role == "owner" and account(app, owner.email).active
    assert account(app, analyst.email).role == "analyst"


def test_anonymous_visitors_are_sent_to_log_in(app, client):
    owner = researcher(app, "owner")
    for method, path in (
        ("get", TEAM),
        ("post", f"{TEAM}/invite"),
        ("post", f"{TEAM}/{owner.id}/revoke"),
        ("post", f"{TEAM}/{owner.id}/role"),
    ):
        token = csrf_token(client.get(LOGIN).text)
        r = getattr(client, method)(path, data={"csrf_token": token, "role": "analyst"})
        assert r.status_code == 302 and urlsplit(r.location).path == LOGIN, path
        r = client.get(TEAM, headers={"Accept": "application/json"})
        assert r.status_code == 401
    assert account(app, owner.email).active and links(app) == []


def test_posts_without_a_csrf_token_are_refused(app, client):
    token = new_setup_link(app)
    path = f"/researcher/setup/{token}"
    r = client.post(path, data=setup_form(unique_email()))
    assert r.status_code == 400
    assert count_researchers(app) == 0 and links(app)[0].used_at is None

    owner = researcher(app, "owner")
    analyst = researcher(app, "analyst")
    browser = log_in(app, email=owner.email)
    for target, data in (
        (f"{TEAM}/invite", {"email": unique_email(), "role": "analyst"}),
        (f"{TEAM}/{analyst.id}/revoke", {}),
        (f"{TEAM}/{analyst.id}/role", {"role": "owner"}),
    ):
        assert browser.post(target, data=data).status_code == 400, target
    assert [row.kind for row in links(app)] == ["setup"]  # no invitation
    saved = account(app, analyst.email)
    assert saved.active and saved.role == "analyst"


def test_posts_to_account_links_are_rate_limited(make_app):
    app = make_app(RATELIMIT_ENABLED=True, LIMIT_ACCOUNT_LINK="3 per minute")
    client = app.test_client()
    token = csrf_token(client.get(LOGIN).text)
    path = "/researcher/setup/" + "z" * 43
    statuses = [client.post(path, data={"csrf_token": token}).status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
    assert client.get(path).status_code == 404  # GET (link previews) is not limited
