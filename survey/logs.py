"""What the logs may say: no client address, user agent, referrer, time of day or secret path.

Two pieces share one masking rule:

* :class:`AccessLogger`, gunicorn's logger class (``--logger-class survey.logs.AccessLogger``
  in the Makefile and the Procfile). Its access line is ``METHOD path status bytes duration``,
  with the secret segment of a resume (or invitation) path replaced by a placeholder, and
  no query string. gunicorn runs it in its master process, outside the Flask application,
  so it reads ``LOG_CLIENT_ADDRESS`` from the environment itself (through
  :func:`survey.config.client_address_logging`, at start and on every reload).
* :class:`PrivacyFilter`, a ``logging.Filter`` that :func:`install_log_filter` puts on the
  application's loggers and handlers: any record the app (or werkzeug's development server,
  or gunicorn's error log) emits has its secret paths and IP addresses masked.

An operator who sets ``LOG_CLIENT_ADDRESS=truncated`` gets the client address truncated to
its network (IPv4 /24, IPv6 /48) instead of dropped; any other value drops it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import traceback

from gunicorn import glogging
from gunicorn.config import AccessLogFormat

from survey.config import TRUNCATED, client_address_logging

# Routes whose next path segment is a secret (a resume token, a survey slug, an invitation).
SECRET_ROUTE_PREFIXES = (
    "/resume/",
    "/s/",
    "/i/",
    "/researcher/setup/",
    "/researcher/welcome/",
)
SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 - the text shown instead of a secret
ADDRESS_PLACEHOLDER = "[address]"

# The default access line: no address, no time, no user agent, referrer or query string.
ACCESS_FORMAT = "%(m)s %(U)s %(s)s %(b)s %(M)sms"
ACCESS_FORMAT_WITH_ADDRESS = "%(h)s " + ACCESS_FORMAT

_SECRET_PATH = re.compile(
    "("
    + "|".join(re.escape(prefix.rstrip("/")) for prefix in SECRET_ROUTE_PREFIXES)
    + r")/+[^/?#\s\"'<>]+",
    re.IGNORECASE,
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})"
    r"(?:%[\w.]+)?(?![\w:])"
)


def mask_path(path: str) -> str:
    """Replace the secret segment after each secret route prefix with a placeholder."""
    return _SECRET_PATH.sub(lambda m: f"{m.group(1)}/{SECRET_PLACEHOLDER}", path)


def truncate_address(address: str | None) -> str | None:
    """The network of an address: IPv4 /24 (203.0.113.0), IPv6 /48; None if not an address."""
    try:
        ip = ipaddress.ip_address((address or "").strip().split("%", 1)[0])
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def mask_addresses(text: str, mode: str = "none") -> str:
    """Drop every IPv4 and IPv6 address in ``text`` (or truncate it when ``mode`` says so)."""

    def replace(match: re.Match) -> str:
        candidate = match.group(0)
        try:
            ipaddress.ip_address(candidate.split("%", 1)[0])
        except ValueError:  # a time (12:30:01), a version (1.2.3.400), not an address
            return candidate
        if mode == TRUNCATED:
            return truncate_address(candidate) or ADDRESS_PLACEHOLDER
        return ADDRESS_PLACEHOLDER

    return _IPV4.sub(replace, _IPV6.sub(replace, text))


def mask(text: str, mode: str = "none") -> str:
    """Mask secret paths and client addresses in one log text."""
    return mask_addresses(mask_path(text), mode)


class PrivacyFilter(logging.Filter):
    """Mask secret paths and IP addresses in every record that passes (never drops one)."""

    def __init__(self, mode: str = "none"):
        super().__init__()
        self.mode = mode

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record's message, traceback and stack in place; always keep the record."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record: let logging report it
            return True
        masked = mask(message, self.mode)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text, so the traceback is printed masked.
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = mask(record.exc_text, self.mode)
        if record.stack_info:
            record.stack_info = mask(record.stack_info, self.mode)
        return True


def _attach(target: logging.Logger | logging.Handler, log_filter: PrivacyFilter) -> None:
    """Put the filter on a logger or handler once (replacing an earlier one)."""
    for existing in list(target.filters):
        if isinstance(existing, PrivacyFilter):
            target.removeFilter(existing)
    target.addFilter(log_filter)


def install_log_filter(app) -> PrivacyFilter:
    """Mask secret paths and addresses in everything the application logs.

    The filter goes on the loggers that log directly (the app's, werkzeug's development
    server, gunicorn's error log) and on the handlers that records propagate to (the app
    logger's and the root logger's), since a logger's own filters do not see records of
    its children. Handlers added to the root logger later are not covered.
    """
    log_filter = PrivacyFilter(app.config.get("LOG_CLIENT_ADDRESS", "none"))
    root = logging.getLogger()
    loggers = (app.logger, logging.getLogger("werkzeug"), logging.getLogger("gunicorn.error"))
    for target in (*loggers, *app.logger.handlers, *root.handlers):
        _attach(target, log_filter)
    return log_filter


class AccessLogger(glogging.Logger):
    """gunicorn's logger with a private access line and a masked error log.

    The access line holds the method, the masked path, the status, the response length
    and the duration: no client address (unless ``LOG_CLIENT_ADDRESS=truncated``), no user
    agent, referrer, user, query string or time of day. A custom ``--access-logformat`` is
    honoured, but its atoms are the same private ones: header and environment atoms
    (``%({x-forwarded-for}i)s`` and the like) print as ``-``.
    """

    def setup(self, cfg) -> None:
        """Read the address setting (again on reload) and mask the error log as well."""
        super().setup(cfg)
        self.address_mode = client_address_logging()
        log_filter = PrivacyFilter(self.address_mode)
        for target in (self.error_log, self.access_log):
            _attach(target, log_filter)

    def atoms(self, resp, req, environ, request_time) -> dict:
        """The access-log atoms, restricted to what may be written down."""
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        method = environ.get("REQUEST_METHOD", "-")
        path = mask_path(environ.get("PATH_INFO") or "-")
        protocol = environ.get("SERVER_PROTOCOL", "-")
        sent = getattr(resp, "sent", None)
        address = "-"
        if getattr(self, "address_mode", "none") == TRUNCATED:
            address = truncate_address(environ.get("REMOTE_ADDR")) or "-"
        return {
            "h": address,
            "l": "-",
            "u": "-",
            "t": "-",
            "r": f"{method} {path} {protocol}",
            "s": status,
            "m": method,
            "U": path,
            "q": "-",
            "H": protocol,
            "b": str(sent) if sent is not None else "-",
            "B": sent,
            "f": "-",
            "a": "-",
            "T": request_time.seconds,
            "D": request_time.seconds * 1_000_000 + request_time.microseconds,
            "M": request_time.seconds * 1000 + request_time.microseconds // 1000,
            "L": f"{request_time.seconds}.{request_time.microseconds:06d}",
            "p": f"<{os.getpid()}>",
        }

    def access_format(self) -> str:
        """The configured format, or ours in place of gunicorn's default (Apache combined)."""
        fmt = self.cfg.access_log_format
        if fmt == AccessLogFormat.default:
            return ACCESS_FORMAT_WITH_ADDRESS if self.address_mode == TRUNCATED else ACCESS_FORMAT
        return fmt

    def access(self, resp, req, environ, request_time) -> None:
        """Write one private access line."""
        if not self.access_log_enabled:
            return
        atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        try:
            self.access_log.info(self.access_format(), atoms)
        except Exception:  # noqa: BLE001 - as gunicorn does: a bad format must not stop serving
            self.error(traceback.format_exc())
