"""Configuration: defaults, then the environment, read in this one place."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

WEAK_SECRET_KEYS = {"", "dev", "development", "secret", "changeme", "change-me", "test"}
# Words for yes and no, in settings and in query parameters (survey.filters.parse_bool).
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")
# The anonymized export's defaults (survey/export/options.py, survey/anonymize.py): k of
# k-anonymity (and the floor EXPORT_MIN_K), and the largest share of suppressed values.
DEFAULT_K = 5
DEFAULT_MAX_SUPPRESSED_SHARE = 0.1


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in TRUE_WORDS


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def _list(value: str | None) -> list[str] | None:
    """A comma-separated setting as a list; None when unset or empty."""
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    return items or None


TRUNCATED = "truncated"


def client_address_logging() -> str:
    """How logs show a client's address: ``'truncated'`` (IPv4 /24, IPv6 /48) only when the
    operator sets ``LOG_CLIENT_ADDRESS=truncated``; any other value or none: ``'none'``.

    gunicorn's logger (survey.logs.AccessLogger) runs outside the app and calls this too.
    """
    value = (os.environ.get("LOG_CLIENT_ADDRESS") or "").strip().lower()
    return TRUNCATED if value == TRUNCATED else "none"


def _min_cell(value: int) -> int:
    if value < 5:
        raise RuntimeError(f"MIN_CELL must be at least 5, got {value}")
    return value


def _export_min_k(value: int) -> int:
    if value < 2:
        raise RuntimeError(f"EXPORT_MIN_K must be at least 2, got {value}")
    return value


def _positive(name: str, default: int) -> int:
    value = _int(name, default)
    if value < 1:
        raise RuntimeError(f"{name} must be at least 1, got {value}")
    return value


def normalise_database_url(url: str) -> str:
    """Map the bare ``postgres://`` and ``postgresql://`` schemes to the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def from_environment(instance_path: str) -> dict:
    """Return the settings read from the environment, with defaults for a local run."""
    default_db = "sqlite:///" + str(Path(instance_path) / "survey.db")
    return {
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(
            os.environ.get("DATABASE_URL") or default_db
        ),
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        "DRAFT_TTL_DAYS": _int("DRAFT_TTL_DAYS", 30),
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 256 * 1024),
        "SESSION_COOKIE_SECURE": _bool(os.environ.get("SESSION_COOKIE_SECURE"), False),
        "PREFERRED_URL_SCHEME": os.environ.get("PREFERRED_URL_SCHEME", "http"),
        "CATALOG_PATH": os.environ.get("CATALOG_PATH")
        or str(Path(__file__).with_name("practices.yaml")),
        # The consent page's texts (researchers, contact, ethics, retention), versioned.
        "CONSENT_PATH": os.environ.get("CONSENT_PATH")
        or str(Path(__file__).with_name("consent.yaml")),
        "REDIS_URL": os.environ.get("REDIS_URL"),
        "RATELIMIT_ENABLED": _bool(os.environ.get("RATELIMIT_ENABLED"), True),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI")
        or os.environ.get("REDIS_URL")
        or "memory://",
        "LIMIT_START": os.environ.get("LIMIT_START", "30 per hour"),
        "LIMIT_SAVE": os.environ.get("LIMIT_SAVE", "120 per minute"),
        "LIMIT_SUBMIT": os.environ.get("LIMIT_SUBMIT", "20 per minute"),
        "LIMIT_RESUME": os.environ.get("LIMIT_RESUME", "30 per hour"),
        # POSTs to the one-time account links (set-up, invitation), per client address.
        "LIMIT_ACCOUNT_LINK": os.environ.get("LIMIT_ACCOUNT_LINK", "10 per 15 minutes"),
        # Failed researcher logins (survey/throttle.py), shared by workers: database or Redis.
        "LOGIN_THROTTLE_ENABLED": _bool(os.environ.get("LOGIN_THROTTLE_ENABLED"), True),
        "LOGIN_WINDOW_MINUTES": _int("LOGIN_WINDOW_MINUTES", 15),
        "LOGIN_MAX_FAILURES": _int("LOGIN_MAX_FAILURES", 5),
        "LOGIN_MAX_FAILURES_PER_ADDRESS": _int("LOGIN_MAX_FAILURES_PER_ADDRESS", 20),
        "LOGIN_SLOWDOWN_AFTER": _int("LOGIN_SLOWDOWN_AFTER", 10),
        "LOGIN_SLOWDOWN_MAX_SECONDS": float(os.environ.get("LOGIN_SLOWDOWN_MAX_SECONDS", "2.0")),
        "RESEARCHER_SESSION_HOURS": _int("RESEARCHER_SESSION_HOURS", 12),
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        "HSTS_SECONDS": _int("HSTS_SECONDS", 0),
        "MIN_COMPLETION_SECONDS": _int("MIN_COMPLETION_SECONDS", 120),
        # Disclosure gate: segments and cells resting on fewer respondents are withheld.
        "MIN_CELL": _min_cell(_int("MIN_CELL", 10)),
        "PUBLIC_URL": os.environ.get("PUBLIC_URL") or None,
        "TRUSTED_HOSTS": _list(os.environ.get("TRUSTED_HOSTS")),
        "LOG_CLIENT_ADDRESS": client_address_logging(),
        "EXPORT_MAX_SUPPRESSED_SHARE": float(
            os.environ.get("EXPORT_MAX_SUPPRESSED_SHARE", DEFAULT_MAX_SUPPRESSED_SHARE)
        ),
        # The smallest k any export leaving the server may ask for (survey/export/options.py).
        "EXPORT_MIN_K": _export_min_k(_int("EXPORT_MIN_K", DEFAULT_K)),
        # Background jobs (survey/jobs.py): an export or report over more responses than
        # its limit runs beside the request, which answers at once with a progress page.
        "EXPORT_SYNC_LIMIT": _int("EXPORT_SYNC_LIMIT", 20_000),
        # With .sav, .dta or .parquet (pyreadstat writes cell by cell: ~0.6 s per 1,000 responses).
        "EXPORT_SYNC_LIMIT_LABELLED": _int("EXPORT_SYNC_LIMIT_LABELLED", 2_000),
        "REPORT_SYNC_LIMIT": _int("REPORT_SYNC_LIMIT", 200_000),
        "JOB_RESULT_HOURS": _positive("JOB_RESULT_HOURS", 24),
        "JOB_HEARTBEAT_SECONDS": _positive("JOB_HEARTBEAT_SECONDS", 5),
        "JOB_STALE_SECONDS": _positive("JOB_STALE_SECONDS", 60),
        "JOB_THREADS": _positive("JOB_THREADS", 1),
        "JOBS_INLINE": _bool(os.environ.get("JOBS_INLINE"), False),
        # Fieldwork (survey/fieldwork.py): hours a draft started before its wave closed may
        # still be finished; the most invitations one request generates.
        "WAVE_GRACE_HOURS": _int("WAVE_GRACE_HOURS", 48),
        "MAX_INVITATIONS": _positive("MAX_INVITATIONS", 5000),
        # One-time account links (survey/accounts.py): the first-run set-up link and an
        # owner's invitation of a researcher expire after these many hours.
        "SETUP_LINK_HOURS": _positive("SETUP_LINK_HOURS", 24),
        "INVITE_LINK_HOURS": _positive("INVITE_LINK_HOURS", 72),
        # A respondent's comparison page (/compare) appears once their wave has this many
        # real submitted responses (counted through the disclosure-gated read path).
        "RESULTS_MIN_N": _positive("RESULTS_MIN_N", 100),
    }


DEFAULTS = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "survey_session",
    "BABEL_DEFAULT_LOCALE": "ru",
    "LANGUAGES": ("ru", "en"),
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "WTF_CSRF_TIME_LIMIT": None,  # the session lifetime already bounds a token
    "JSON_SORT_KEYS": False,
    "RATELIMIT_HEADERS_ENABLED": True,
    "RATELIMIT_SWALLOW_ERRORS": True,  # a Redis outage must not stop respondents
    "RATELIMIT_KEY_PREFIX": "survey",
}


def instance_secret_key(instance_path: str) -> str:
    """Return the key kept in ``instance/secret_key``, generating it once if missing.

    The file is created exclusively, so gunicorn workers starting together agree on one key.
    """
    path = Path(instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it this very moment
            key = path.read_text(encoding="ascii").strip()
            if key:
                return key
            time.sleep(0.05)
        raise RuntimeError(f"{path} is empty; delete it to generate a new key") from None
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key


def check_secret_key(key: str | None, *, testing: bool, debug: bool) -> None:
    """Refuse a missing or well-known development key outside debug and tests."""
    if testing or debug:
        return
    if key is None or key.strip().lower() in WEAK_SECRET_KEYS or len(key) < 16:
        raise RuntimeError(
            "SECRET_KEY is missing or a development value; set a long random SECRET_KEY "
            "or unset it to let the app generate one in instance/secret_key"
        )


LOCAL_HOSTS = ("127.0.0.1", "localhost")


def apply_public_url(config) -> None:
    """Settle ``PUBLIC_URL`` and ``TRUSTED_HOSTS`` once every configuration layer is read.

    Links that leave the page (the personal resume link) are built from ``PUBLIC_URL``,
    never from the request's Host header. Unset, it is ``http://<SERVER_NAME>`` if one is
    configured, else ``http://127.0.0.1:<PORT>`` for a local run. Requests for any other
    host are refused (400) through Flask's ``TRUSTED_HOSTS``: by default the host of
    ``PUBLIC_URL`` and of ``SERVER_NAME``, plus localhost and 127.0.0.1 when the public
    URL is itself local.
    """
    url = config.get("PUBLIC_URL")
    if not url:
        server = config.get("SERVER_NAME")
        scheme = config.get("PREFERRED_URL_SCHEME") or "http"
        url = f"{scheme}://{server}" if server else f"http://127.0.0.1:{_int('PORT', 8000)}"
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise RuntimeError(f"PUBLIC_URL must look like https://survey.example.org, got {url!r}")
    config["PUBLIC_URL"] = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    if config.get("TRUSTED_HOSTS"):
        return
    hosts = [parts.hostname]
    if config.get("SERVER_NAME"):
        hosts.append(config["SERVER_NAME"].rsplit(":", 1)[0])
    if parts.hostname in LOCAL_HOSTS:
        hosts.extend(LOCAL_HOSTS)
    config["TRUSTED_HOSTS"] = list(dict.fromkeys(hosts))
