"""Absolute links that leave the page, built from the configured ``PUBLIC_URL``.

A link a respondent copies (the personal resume link) or a client stores (the API's
server URL) must not follow the request's Host header: anyone can send
``Host: evil.example`` and would get a page offering a link to their own site.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request
from werkzeug.exceptions import SecurityError

from survey import config as cfg


def public_url(endpoint: str, **values) -> str:
    """The absolute URL of an endpoint on the configured ``PUBLIC_URL``.

    ``PUBLIC_URL`` may carry a path prefix (``https://example.org/survey``) when a proxy
    serves the application below one; the endpoint's path is appended to it.
    """
    base = urlsplit(current_app.config["PUBLIC_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme
    )
    return adapter.build(endpoint, values, force_external=True)


def init_app(app: Flask) -> None:
    """Settle ``PUBLIC_URL`` and ``TRUSTED_HOSTS``, and answer unknown hosts with a plain 400."""
    cfg.apply_public_url(app.config)
    app.register_error_handler(SecurityError, unknown_host)


def unknown_host(exc: SecurityError):
    """A request for a host this site does not serve (``TRUSTED_HOSTS``): 400, nothing else.

    No template: without a trusted host Flask has no URL adapter, so a page that builds
    links (every page does) would turn the 400 into a 500.
    """
    if request.path.startswith("/api/"):
        return {"error": "Bad Request", "message": "Unknown host."}, 400
    return "400 Bad Request: unknown host.", 400, {"Content-Type": "text/plain; charset=utf-8"}
