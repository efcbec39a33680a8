"""Research survey of employee-motivation practices: the Flask application factory."""

from __future__ import annotations

import contextlib
import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl

from flask import Flask, abort, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

from survey import config as cfg
from survey import links
from survey.catalog import load_catalog
from survey.consent import load_consent, placeholder_warning
from survey.extensions import babel, csrf, db, limiter, login_manager, migrate
from survey.logs import install_log_filter
from survey.storage import secure_storage

ROOT = Path(__file__).resolve().parent.parent


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """WAL and a busy timeout let several gunicorn workers write one SQLite file."""
    module = type(dbapi_connection).__module__
    if module.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA cache_size=-32768")  # 32 MiB: aggregation and bulk loads
        cursor.execute("PRAGMA secure_delete=ON")  # deleted text is overwritten, not left
        cursor.close()


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application: configuration layers, extensions, blueprints, handlers, CLI."""
    app = Flask(
        __name__,
        instance_path=(test_config or {}).get("INSTANCE_PATH")
        or os.environ.get("INSTANCE_PATH")
        or str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(cfg.DEFAULTS)
    app.config.update(cfg.from_environment(app.instance_path))
    if test_config:
        app.config.update(test_config)
    secure_storage(app)  # instance folder 0700, SQLite files 0600 before SQLite opens them
    install_log_filter(app)  # no secret path or client address in any log record
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = cfg.instance_secret_key(app.instance_path)
    cfg.check_secret_key(app.config["SECRET_KEY"], testing=app.testing, debug=app.debug)
    links.init_app(app)
    if not (test_config or {}).get("PERMANENT_SESSION_LIFETIME"):
        # The browser keeps a draft's session exactly as long as the draft itself lives.
        days = int(app.config["DRAFT_TTL_DAYS"])
        app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(days=days)
    app.extensions["survey_catalog"] = load_catalog(app.config["CATALOG_PATH"])
    app.extensions["survey_consent"] = consent = load_consent(app.config["CONSENT_PATH"])
    if placeholder_warning(consent):
        app.logger.warning(placeholder_warning(consent))

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    # Before CSRFProtect, whose form parsing would consume the body first.
    app.before_request(reject_undecodable_forms)
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    if app.config["TRUSTED_PROXIES"] > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    from survey.i18n import select_locale

    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=str(Path(__file__).with_name("translations")),
    )

    from survey import api, auth, dashboard, manage, public, questionnaire

    app.register_blueprint(questionnaire.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(manage.bp)
    app.register_blueprint(public.bp)
    app.session_interface = public.SessionInterface()  # no Set-Cookie on shared pages
    _register_error_handlers(app)
    _register_security_headers(app)
    _register_template_helpers(app)

    from survey.cli import register

    register(app)
    return app


BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def reject_undecodable_forms():
    """Refuse a POST whose body is not a UTF-8 url-encoded form: our pages send nothing else.

    Werkzeug silently drops undecodable fields; a respondent should instead see a 400 page
    and nothing should be stored.
    """
    if request.method != "POST":
        return None
    if request.path.startswith("/api/"):  # JSON writes that check their own body (api_fieldwork)
        return None
    if request.mimetype != "application/x-www-form-urlencoded":
        abort(400)
    body = request.get_data(cache=True, parse_form_data=False)
    if BAD_ESCAPE.search(body):  # '%' without two hex digits: no browser sends that
        abort(400)
    try:
        parse_qsl(body.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        abort(400)
    return None


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_template("errors/error.html", code=400, csrf=True), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            return {"error": exc.name, "message": exc.description}, exc.code
        return render_template("errors/error.html", code=exc.code), exc.code

    @app.errorhandler(UnicodeDecodeError)
    def bad_encoding(exc):
        return render_template("errors/error.html", code=400), 400

    @app.errorhandler(OperationalError)
    def database_unavailable(exc: OperationalError):
        """The database is briefly unreachable or busy (restart, failover, lock): a 503.

        The session's connection may be dead, so it is invalidated, not rolled back: a
        ROLLBACK on a closed socket would raise again in the teardown, and gunicorn would
        answer with its own bare 500. The next checkout reconnects (pool_pre_ping).
        """
        app.logger.warning("database unavailable: %s %s: %s", request.method, request.path, exc)
        with contextlib.suppress(SQLAlchemyError):
            db.session().invalidate()
        with contextlib.suppress(SQLAlchemyError):
            db.session.remove()
        headers = {"Retry-After": "5"}
        if request.path.startswith("/api/"):
            message = "The database is briefly unavailable; please retry."
            return {"error": "Service Unavailable", "message": message}, 503, headers
        try:
            body = render_template("errors/error.html", code=503)
        except SQLAlchemyError:  # a page that needs the database (a researcher's menu)
            body = "The service is briefly unavailable. Please try again in a moment."
        return body, 503, headers

    @app.teardown_appcontext
    def discard_broken_connection(exc):
        """End the request's session before Flask-SQLAlchemy does (teardowns run in reverse).

        If the server dropped the connection after the view had finished (a database
        restart), the closing ROLLBACK fails: the connection is discarded instead of
        turning a page already rendered into gunicorn's bare 500.
        """
        try:
            db.session.remove()
        except SQLAlchemyError as err:
            app.logger.warning("discarded a broken database connection: %s", err)
            with contextlib.suppress(SQLAlchemyError):
                db.session().invalidate()
            db.session.registry.clear()


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def _register_security_headers(app: Flask) -> None:
    """Headers on every response. No inline script anywhere: charts are JSON data blocks.

    ``style-src 'unsafe-inline'`` is kept because plotly.js sets inline styles at run time.
    """

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if app.config["HSTS_SECONDS"] > 0:
            headers.setdefault(
                "Strict-Transport-Security",
                f"max-age={app.config['HSTS_SECONDS']}; includeSubDomains",
            )
        if request.path.startswith(("/researcher", "/api/")):  # respondent pages: questionnaire.py
            # Overrides send_file's "no-cache, max-age=0": an export must not be stored either.
            headers["Cache-Control"] = "no-store"
        return response


def _register_template_helpers(app: Flask) -> None:
    from survey.i18n import current_language

    @app.context_processor
    def inject_language():
        return {"lang": current_language(), "languages": app.config["LANGUAGES"]}

    from survey.lazy import LazyModule

    # Numbers read the same on a page as in its charts and in the report.
    display = LazyModule("analysis.display")

    from survey.forms import field_errors_html, radio_group_html

    app.add_template_global(radio_group_html, "radio_group_html")
    app.add_template_global(field_errors_html, "field_errors_html")

    app.add_template_filter(lambda value, decimals=1: display.decimal(value, decimals), "fmt")
    app.add_template_filter(lambda p: display.format_p_value(p), "pval")
    app.add_template_filter(lambda share: display.format_percent(share), "pct")

    @app.template_filter("loc")
    def localised(value, lang=None):
        """Pick the current language from a catalogue Text or an object with ``label(lang)``."""
        lang = lang or current_language()
        if hasattr(value, "get") and hasattr(value, "ru"):
            return value.get(lang)
        return value.label(lang)
