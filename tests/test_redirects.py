"""Open redirects: ``?next=`` on the login page and the language switch stays on this site.

The check is made on the Location header as a browser reads it (WHATWG URL parser): tab and
newline removed anywhere, C0 controls and spaces stripped at both ends, a backslash taken for
a slash in an http(s) URL. The normalisation here is written from the standard, independently
of survey/urls.py.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from survey.urls import safe_redirect_target
from tests.helpers import PASSWORD, csrf_token, researcher

DEFAULT = "/fallback"
# The payloads, as an attacker would put them in the raw query string.
HOSTILE_QUERIES = (
    "/%09/evil.example",
    "/%5Cevil.example",
    "%2F%2Fevil",
    "%252F%252Fevil",
    "/%0d%0aX:1",
    "javascript:alert(1)",
    "https://evil.example",
    "///evil.example",
    "%20//evil.example",
    "/%0a/evil.example",
    "%00//evil.example",
    "/%E3%80%80/evil.example",  # an ideographic space: not stripped by browsers, a path
)
# Those of them that are paths on this site once the browser has read them.
SAME_SITE = {"/%0d%0aX:1": "/X:1", "/%E3%80%80/evil.example": "/%E3%80%80/evil.example"}
STRINGS = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
# Strings made of the characters that matter, so that tricky combinations come up often.
URLISH = st.text(
    st.sampled_from(list("/\\:.@?#%evil") + ["\t", "\n", "\r", " ", "\x00", "\x1f", "\x7f"]),
    max_size=16,
)


def as_browser_reads(location: str) -> str:
    """WHATWG URL parsing, the steps that matter for where a redirect goes."""
    location = re.sub(r"^[\x00-\x20]+|[\x00-\x20]+$", "", location)
    location = re.sub(r"[\t\n\r]", "", location)
    return location.replace("\\", "/")


def assert_stays_on_the_site(location: str) -> None:
    seen = as_browser_reads(location)
    parts = urlsplit(seen)
    assert not parts.scheme and not parts.netloc, location
    assert seen.startswith("/") and not seen.startswith("//"), location
    assert location.isascii() and not re.search(r"[\x00-\x20\x7f]", location), location


# ---------------------------------------------------------------- the function itself


@settings(max_examples=500, deadline=None, database=None)
@given(target=st.one_of(STRINGS, URLISH))
@example(target="/\t/evil.example")
@example(target="/\\evil.example")
@example(target="/?")
def test_the_target_is_always_a_path_on_this_site(target):
    result = safe_redirect_target(target, DEFAULT)
    assert_stays_on_the_site(result)
    # a plain path comes back unchanged (an empty query string may be dropped)
    if re.fullmatch(r"/[a-z0-9_/-]*(\?[a-z0-9_=&]*)?", target) and not target.startswith("//"):
        assert result in (target, target.removesuffix("?"))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/\t/evil.example", DEFAULT),
        ("/\\evil.example", DEFAULT),
        ("\\/evil.example", DEFAULT),
        ("//evil.example", DEFAULT),
        ("///evil.example", DEFAULT),
        (" //evil.example", DEFAULT),
        ("\x00//evil.example", DEFAULT),
        ("/\r\n/evil.example", DEFAULT),
        ("%2F%2Fevil", DEFAULT),
        ("javascript:alert(1)", DEFAULT),
        ("https://evil.example", DEFAULT),
        ("http:evil.example", DEFAULT),
        ("", DEFAULT),
        (None, DEFAULT),
        ("/\r\nX:1", "/X:1"),
        ("/researcher/ratings?industry=it", "/researcher/ratings?industry=it"),
        ("/page/2?return=review", "/page/2?return=review"),
        ("/a\\b", "/a/b"),
        ("/é?q=ü", "/%C3%A9?q=%C3%BC"),
    ],
)
def test_specific_targets(target, expected):
    assert safe_redirect_target(target, DEFAULT) == expected


# ---------------------------------------------------------------- through the routes


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_the_language_switch_refuses_hostile_targets(client, query):
    r = client.get(f"/lang/en?next={query}")
    assert r.status_code == 302, (query, r.status_code)
    assert_stays_on_the_site(r.location)
    assert r.location == SAME_SITE.get(query, "/"), (query, r.location)


def test_a_header_injection_in_next_is_not_a_500(client):
    r = client.get("/lang/en?next=/%0d%0aX:1")
    assert r.status_code == 302
    assert r.location == "/X:1"
    assert "X" not in r.headers


def test_the_login_page_refuses_hostile_targets(app):
    email = researcher(app).email
    for query in HOSTILE_QUERIES:
        client = app.test_client()  # logged out: the login form is shown
        token = csrf_token(client.get(f"/researcher/login?next={query}").text)
        data = {"csrf_token": token, "email": email, "password": PASSWORD}
        r = client.post(f"/researcher/login?next={query}", data=data)
        assert r.status_code == 302, (query, r.status_code)
        assert_stays_on_the_site(r.location)
        assert r.location == SAME_SITE.get(query, "/researcher/"), (query, r.location)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(target=st.one_of(STRINGS, URLISH))
@example(target="/\t/evil.example")
@example(target="/\r\nX:1")
def test_no_next_value_leads_off_the_site_or_to_a_500(client, target):
    r = client.get("/lang/en", query_string={"next": target})
    assert r.status_code == 302, (target, r.status_code)
    assert_stays_on_the_site(r.location)
