"""Blueprint: researcher login and logout; ``researcher_required`` for pages and the API."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from functools import wraps

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from survey.extensions import db, limiter, login_manager
from survey.models import ApiToken, Researcher

bp = Blueprint("auth", __name__, url_prefix="/researcher")

# A hash to compare against when the account does not exist, so timing does not tell.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def normalise_email(email: str) -> str:
    """E-mail addresses compare case-insensitively."""
    return email.strip().lower()


def create_researcher(email: str, password: str) -> Researcher:
    """Create (or reset the password of) a researcher account."""
    email = normalise_email(email)
    researcher = db.session.scalar(select(Researcher).filter_by(email=email))
    if researcher is None:
        researcher = Researcher(email=email, created_on=_today(), active=True)
        db.session.add(researcher)
    researcher.password_hash = generate_password_hash(password)
    db.session.commit()
    return researcher


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
    """Flask-Login: the researcher of a session."""
    if not user_id.isdigit():
        return None
    researcher = db.session.get(Researcher, int(user_id))
    return researcher if researcher and researcher.active else None


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
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("dashboard.fieldwork")


def _login_account_key() -> str:
    return "login-account:" + normalise_email(request.form.get("email", ""))[:254]


def _failed_login(response) -> bool:
    return response.status_code != 302


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LIMIT_LOGIN_ADDRESS"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["LIMIT_LOGIN_ACCOUNT"],
    methods=["POST"],
    key_func=_login_account_key,
    deduct_when=_failed_login,
)
def login():
    """Researcher login; the message never says whether an account exists."""
    form = LoginForm()
    if form.validate_on_submit():
        researcher = authenticate(form.email.data, form.password.data)
        if researcher is not None:
            login_user(researcher)
            return redirect(_safe_next(request.args.get("next")))
        flash(_("Wrong e-mail or password."))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    """End the researcher session."""
    form = FlaskForm()
    if form.validate_on_submit():
        logout_user()
    return redirect(url_for("auth.login"))
