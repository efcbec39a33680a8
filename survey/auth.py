"""Blueprint: researcher login and logout; ``researcher_required`` for pages and the API."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from functools import wraps

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import delete, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, PasswordField, SelectChoice, SelectField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from survey import accounts, fieldwork, throttle
from survey.extensions import db, limiter, login_manager
from survey.links import public_url
from survey.models import ROLES, AccountLink, ApiToken, Researcher
from survey.urls import safe_redirect_target

bp = Blueprint("auth", __name__, url_prefix="/researcher")

# A hash to compare against when the account does not exist, so timing does not tell.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))
# Session key: when the researcher logged in (Unix seconds); sessions older than
# RESEARCHER_SESSION_HOURS are refused however the cookie was kept.
LOGIN_AT = "researcher_login_at"
SESSION_ID = re.compile(r"([0-9]+):([0-9]+)")


class LoginForm(FlaskForm):
    """A researcher's login: e-mail and password."""

    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])


def normalise_email(email: str) -> str:
    """E-mail addresses compare case-insensitively."""
    return email.strip().lower()


def create_researcher(email: str, password: str, role: str | None = None) -> Researcher:
    """Create a researcher account, or reset its password and end all its sessions.

    ``role`` ('owner' or 'analyst') sets the account's role; None keeps an existing
    account's role and makes a new account an analyst.
    """
    if role is not None and role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    email = normalise_email(email)
    researcher = db.session.scalar(select(Researcher).filter_by(email=email))
    if researcher is None:
        researcher = Researcher(
            email=email,
            created_on=fieldwork.today(),
            active=True,
            session_epoch=0,
            role=role or "analyst",
        )
        db.session.add(researcher)
    else:
        researcher.end_sessions()
        if role is not None:
            researcher.role = role
    researcher.password_hash = generate_password_hash(password)
    db.session.commit()
    return researcher


def revoke_researcher(email: str) -> int | None:
    """Deactivate an account, end its sessions, revoke its API tokens and the invitations
    it sent that are not used yet.

    Returns the number of tokens revoked, or None when there is no such researcher.
    """
    researcher = db.session.scalar(select(Researcher).filter_by(email=normalise_email(email)))
    if researcher is None:
        return None
    researcher.active = False
    researcher.end_sessions()
    revoked = db.session.execute(
        update(ApiToken)
        .where(ApiToken.researcher_id == researcher.id, ApiToken.revoked_on.is_(None))
        .values(revoked_on=fieldwork.today())
    ).rowcount
    db.session.execute(
        delete(AccountLink).where(
            AccountLink.created_by == researcher.id, AccountLink.used_at.is_(None)
        )
    )
    db.session.commit()
    return revoked


def authenticate(email: str, password: str) -> Researcher | None:
    """The active researcher with these credentials, or None (same cost either way)."""
    researcher = db.session.scalar(
        select(Researcher).where(func.lower(Researcher.email) == normalise_email(email))
    )
    hashed = researcher.password_hash if researcher else _DUMMY_HASH
    valid = check_password_hash(hashed, password)
    if researcher is None or not valid or not researcher.active:
        return None
    return researcher


def token_hash(token: str) -> str:
    """The stored form of a secret token (an API token, a respondent's resume token, an
    invitation, an account link): its SHA-256, so a database leak opens nothing. Tokens
    are random and long, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(researcher: Researcher, name: str = "") -> str:
    """Create a token for a researcher; return it (the only time it is visible)."""
    token = "svy_" + secrets.token_urlsafe(32)
    db.session.add(
        ApiToken(
            researcher_id=researcher.id,
            token_hash=token_hash(token),
            prefix=token[:12],
            name=name,
            created_on=fieldwork.today(),
        )
    )
    db.session.commit()
    return token


def researcher_from_token(header: str | None) -> Researcher | None:
    """The researcher an ``Authorization: Bearer`` header authenticates, if any."""
    if not header or not header.startswith("Bearer "):
        return None
    token = header[len("Bearer ") :].strip()
    if not token or len(token) > 200:
        return None
    row = db.session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == token_hash(token), ApiToken.revoked_on.is_(None)
        )
    )
    if row is None or not row.researcher.active:
        return None
    return row.researcher


@login_manager.user_loader
def load_researcher(user_id: str) -> Researcher | None:
    """Flask-Login: the researcher of a session that is recent and of the current epoch."""
    match = SESSION_ID.fullmatch(user_id)
    if match is None or not _session_is_recent():
        return None
    researcher = db.session.get(Researcher, int(match[1]))
    if researcher is None or not researcher.active:
        return None
    return researcher if researcher.session_epoch == int(match[2]) else None


def _session_is_recent() -> bool:
    started = session.get(LOGIN_AT)
    limit = current_app.config["RESEARCHER_SESSION_HOURS"] * 3600
    return isinstance(started, int) and time.time() - started < limit


def start_session(researcher: Researcher) -> None:
    """Log in on a fresh session: nothing set before the login survives but the language."""
    lang = session.get("lang")
    session.clear()
    if lang is not None:
        session["lang"] = lang
    login_user(researcher)
    session[LOGIN_AT] = int(time.time())


def current_researcher() -> Researcher | None:
    """The researcher of this request: a bearer token first, then the login session."""
    if "researcher" not in g:
        by_token = researcher_from_token(request.headers.get("Authorization"))
        g.researcher = by_token or (current_user if current_user.is_authenticated else None)
    return g.researcher


def wants_json() -> bool:
    """API clients get JSON errors; browsers get pages and redirects."""
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def researcher_required(view):
    """Only researchers: a browser is sent to the login page, an API client gets 401 JSON."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_researcher() is None:
            if wants_json():
                return {"error": "unauthorized", "message": "Log in or send a valid token."}, 401
            return redirect(url_for("auth.login", next=request.full_path))
        return view(*args, **kwargs)

    return wrapped


def owner_required(view):
    """Only owners (fieldwork and accounts): anonymous as :func:`researcher_required`, an
    analyst gets 403 (JSON for API clients, a page in their language for browsers)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        researcher = current_researcher()
        if researcher is None:
            return researcher_required(view)(*args, **kwargs)
        if not researcher.is_owner:
            if wants_json():
                return {"error": "forbidden", "message": "Only an owner may do this."}, 403
            return render_template("errors/error.html", code=403), 403
        return view(*args, **kwargs)

    return wrapped


def _safe_next(target: str | None) -> str:
    return safe_redirect_target(target, url_for("dashboard.fieldwork"))


def _too_many_attempts(verdict: throttle.Verdict):
    minutes = max(1, -(-verdict.retry_after // 60))
    headers = {"Retry-After": str(verdict.retry_after)}
    return render_template("auth/throttled.html", minutes=minutes), 429, headers


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Researcher login, throttled (survey.throttle); never says whether an account exists."""
    form = LoginForm()
    if form.validate_on_submit():
        account, address = normalise_email(form.email.data), request.remote_addr or ""
        verdict = throttle.admit(account, address)
        if verdict.refused:
            return _too_many_attempts(verdict)
        researcher = authenticate(form.email.data, form.password.data)
        throttle.record(account, address, success=researcher is not None)
        if researcher is not None:
            start_session(researcher)
            return redirect(_safe_next(request.args.get("next")))
        flash(_("Wrong e-mail or password."))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    """End the researcher's sessions: this one and those in every other browser."""
    form = FlaskForm()
    if form.validate_on_submit():
        if current_user.is_authenticated:
            current_user.end_sessions()
            db.session.commit()
        logout_user()
        session.pop(LOGIN_AT, None)
    return redirect(url_for("auth.login"))


# --------------------------------------------------------------------------- account links

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
MIN_PASSWORD = 12  # characters, for passwords chosen through a link


def _password_fields():
    password = PasswordField(
        _l("Password"),
        validators=[
            DataRequired(),
            Length(
                min=MIN_PASSWORD,
                message=_l("At least %(min)d characters."),  # WTForms fills in min
            ),
            Length(max=1024, message=_l("At most 1024 characters.")),
        ],
    )
    confirm = PasswordField(
        _l("The password again"),
        validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
    )
    return password, confirm


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _email_field():
    return EmailField(
        _l("E-mail"),
        filters=[_strip],
        validators=[
            DataRequired(),
            Length(max=254),
            Regexp(EMAIL, message=_l("Enter an e-mail address such as name@example.org.")),
        ],
    )


def _role_field():
    return SelectField(
        _l("Role"),
        choices=[SelectChoice("analyst", _l("Analyst")), SelectChoice("owner", _l("Owner"))],
        default="analyst",
    )


class SetupForm(FlaskForm):
    """The first owner's account: e-mail and a password typed twice."""

    email = _email_field()
    password, confirm = _password_fields()


class WelcomeForm(FlaskForm):
    """An invited researcher's password, typed twice (the e-mail is the invitation's)."""

    password, confirm = _password_fields()


class InviteForm(FlaskForm):
    """An owner invites a researcher: e-mail and role."""

    email = _email_field()
    role = _role_field()


class RoleForm(FlaskForm):
    """An account's new role: owner or analyst."""

    role = _role_field()


def _link_limit() -> str:
    return current_app.config["LIMIT_ACCOUNT_LINK"]


def _link_refused(kind: str):
    """A link that is unknown, expired or used: a friendly 404 page; nothing is stored."""
    return render_template("auth/link_invalid.html", kind=kind), 404


@bp.route("/setup/<token>", methods=["GET", "POST"])
@limiter.limit(_link_limit, methods=["POST"])
def setup(token: str):
    """The first owner's account, through the set-up link (only while no account exists).

    GET shows the form and leaves the link as it is (link previews fetch it); the POST
    uses it once, creates the account and logs in.
    """
    if accounts.find_link(token, accounts.SETUP) is None:
        return _link_refused(accounts.SETUP)
    form = SetupForm()
    if form.validate_on_submit():
        researcher = accounts.redeem(token, form.password.data, email=form.email.data)
        if researcher is None:  # used a moment earlier in another browser
            return _link_refused(accounts.SETUP)
        start_session(researcher)
        flash(_("Your owner account is ready. Invite other researchers on the Team page."))
        return redirect(url_for("dashboard.fieldwork"))
    status = 400 if form.errors else 200
    return render_template("auth/setup.html", form=form, min_password=MIN_PASSWORD), status


@bp.route("/welcome/<token>", methods=["GET", "POST"])
@limiter.limit(_link_limit, methods=["POST"])
def welcome(token: str):
    """An invited researcher sets a password (the e-mail is the invitation's) and logs in."""
    link = accounts.find_link(token, accounts.INVITE)
    if link is None:
        return _link_refused(accounts.INVITE)
    form = WelcomeForm()
    if form.validate_on_submit():
        researcher = accounts.redeem(token, form.password.data)
        if researcher is None:
            return _link_refused(accounts.INVITE)
        start_session(researcher)
        flash(_("Your account is ready."))
        return redirect(url_for("dashboard.fieldwork"))
    status = 400 if form.errors else 200
    return render_template(
        "auth/welcome.html", form=form, link=link, min_password=MIN_PASSWORD
    ), status


def _team_page(status: int = 200, **context):
    context.setdefault("invite_form", InviteForm(formdata=None))
    return render_template(
        "dashboard/team.html",
        accounts=accounts.researchers(),
        invites=accounts.pending_invites(),
        roles={"owner": _("Owner"), "analyst": _("Analyst")},
        **context,
    ), status


@bp.route("/team")
@owner_required
def team():
    """Owners: the researcher accounts, pending invitations, and a form to invite."""
    return _team_page()


@bp.route("/team/invite", methods=["POST"])
@owner_required
def team_invite():
    """Invite a researcher: the page shows the one-time link once (never in a URL)."""
    form = InviteForm()
    if not form.validate_on_submit():
        return _team_page(400, invite_form=form)
    try:
        token = accounts.create_invite(current_researcher(), form.email.data, form.role.data)
    except accounts.AccountError as exc:
        form.email.errors = [str(exc)]
        return _team_page(400, invite_form=form)
    link = public_url("auth.welcome", token=token)
    return _team_page(new_link=link, invited=normalise_email(form.email.data))


def _account(researcher_id: int) -> Researcher:
    target = db.session.get(Researcher, researcher_id)
    if target is None:
        abort(404)
    return target


@bp.route("/team/<int:researcher_id>/revoke", methods=["POST"])
@owner_required
def team_revoke(researcher_id: int):
    """Revoke another account: its sessions end, its API tokens stop working."""
    target = _account(researcher_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        accounts.revoke(current_researcher(), target)
    except accounts.AccountError as exc:
        return _team_page(400, error=str(exc))
    flash(_("The account %(email)s is revoked.", email=target.email))
    return redirect(url_for(".team"))


@bp.route("/team/<int:researcher_id>/role", methods=["POST"])
@owner_required
def team_role(researcher_id: int):
    """Make an account owner or analyst (the last active owner stays one); its sessions end."""
    target = _account(researcher_id)
    form = RoleForm()
    if not form.validate_on_submit():
        return _team_page(400, error=_("Unknown role."))
    try:
        accounts.change_role(current_researcher(), target, form.role.data)
    except accounts.AccountError as exc:
        return _team_page(400, error=str(exc))
    flash(_("The account %(email)s is now: %(role)s.", email=target.email, role=_role_name(target)))
    return redirect(url_for(".team"))


def _role_name(researcher: Researcher) -> str:
    return _("Owner") if researcher.is_owner else _("Analyst")
