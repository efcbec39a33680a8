"""Redirect targets taken from a request (``?next=``): only paths on this site."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from werkzeug.urls import iri_to_uri

# The WHATWG URL parser, which browsers use, removes tab, CR and LF anywhere and strips C0
# controls and spaces at both ends, so "/\t/evil.example" reaches the browser as
# "//evil.example". Removing every ASCII control character and space anywhere is stricter
# and leaves nothing for the Location header to choke on.
_IGNORED_BY_BROWSERS = re.compile(r"[\x00-\x20\x7f]")


def safe_redirect_target(target: str | None, default: str) -> str:
    """``target`` as a same-site path, normalised the way a browser reads it, else ``default``.

    Control characters and spaces are removed and a backslash counts as a slash (as browsers
    treat it in http(s) URLs); what remains must be a path starting with exactly one ``/``,
    with no scheme and no host. Non-ASCII characters come back percent-encoded.

    >>> safe_redirect_target("/researcher/?industry=it", "/")
    '/researcher/?industry=it'
    >>> safe_redirect_target(" /\\evil.example", "/")
    '/'
    """
    if not target:
        return default
    cleaned = _IGNORED_BY_BROWSERS.sub("", target).replace("\\", "/")
    if not cleaned.startswith("/") or cleaned.startswith("//"):
        return default
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc:
        return default
    return iri_to_uri(cleaned)
