"""Blueprint: researcher login and logout; ``researcher_required`` for pages and the API."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import time
from functools import wraps

from flask import (
    Blueprint,
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
from sqlalchemy import func, select, update
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from survey import throttle
from survey.extensions import db, login_manager
from survey.models import ApiToken, Researcher
from survey.urls import safe_redirect_target

bp = Blueprint("auth", __name__, url_prefix="/researcher")

# A hash to compare against when the account does not exist, so timing does not tell.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))
# Session key: when the researcher logged in (Unix seconds); sessions older than
# RESEARCHER_SESSION_HOURS are refused however the cookie was kept.
LOGIN_AT = "researcher_login_at"
SESSION_ID = re.compile(r"([0-9]+):([0-9]+)")


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def normalise_email(email: str) -> str:
    """E-mail addresses compare case-insensitively."""
    return email.strip().lower()


def create_researcher(email: str, password: str) -> Researcher:
    """Create a researcher account, or reset its password and end all its sessions."""
    email = normalise_email(email)
    researcher = db.session.scalar(select(Researcher).filter_by(email=email))
    if researcher is None:
        researcher = Researcher(email=email, created_on=_today(), active=True, session_epoch=0)
        db.session.add(researcher)
    else:
        researcher.end_sessions()
    researcher.password_hash = generate_password_hash(password)
    db.session.commit()
    return researcher


def revoke_researcher(email: str) -> int | None:
    """Deactivate an account, end its sessions and revoke its API tokens.

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
        .values(revoked_on=_today())
    ).rowcount
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
    """SHA-256 of an API token: tokens are random and long, so a fast hash is enough."""
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
            created_on=_today(),
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
