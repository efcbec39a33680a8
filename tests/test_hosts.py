"""Links that leave the page come from PUBLIC_URL; unknown hosts are refused.

Before: ``GET /thanks`` with ``Host: evil.example`` offered a personal link on
evil.example, which a respondent would keep and later open on the attacker's site.
"""

from __future__ import annotations

import re
import secrets

import pytest

from survey import create_app
from survey.auth import create_api_token, create_researcher
from survey.config import apply_public_url
from tests.helpers import Respondent

LINK_RE = re.compile(r'<input class="resume-link"[^>]*value="([^"]+)"')
PUBLIC = "https://survey.example.org"


@pytest.fixture(autouse=True)
def no_host_settings(monkeypatch):
    for name in ("PUBLIC_URL", "TRUSTED_HOSTS", "PORT", "SERVER_NAME"):
        monkeypatch.delenv(name, raising=False)


def links_on(html: str) -> list[str]:
    return LINK_RE.findall(html)


def test_unknown_hosts_are_refused_in_production(make_app):
    app = make_app(
        TESTING=False, SECRET_KEY=secrets.token_hex(32), SERVER_NAME=None, PUBLIC_URL=PUBLIC
    )
    client = app.test_client()
    for host in (
        "evil.example",
        "survey.example.org.evil.example",
        "evil.example:443",
        "localhost",
        "127.0.0.1",
    ):
        for path in ("/", "/thanks", "/resume/" + "x" * 32, "/researcher/login"):
            r = client.get(path, headers={"Host": host})
            assert r.status_code == 400, (host, path)
            assert "evil.example" not in r.text
        r = client.get("/api/v1/openapi.json", headers={"Host": host})
        assert r.status_code == 400 and r.get_json()["error"] == "Bad Request"
    for host in ("survey.example.org", "survey.example.org:443"):
        assert client.get("/", headers={"Host": host}).status_code == 200, host


def test_the_personal_link_uses_public_url_whatever_host_is_sent(make_app):
    """Even when the operator trusts several names, the link is always on PUBLIC_URL."""
    for number, host in enumerate(("evil.example", "internal.example")):
        app = make_app(
            SERVER_NAME=host,  # the Host header the test client sends
            PUBLIC_URL=PUBLIC + "/",
            TRUSTED_HOSTS=["evil.example", "internal.example"],
            MIN_COMPLETION_SECONDS=0,
        )
        catalog = app.extensions["survey_catalog"]
        with app.app_context():
            researcher = create_researcher(f"hosts{number}@example.org", "a long password here")
            token = create_api_token(researcher)
        client = app.test_client()
        assert client.get("/").request.host == host
        respondent = Respondent(client)
        respondent.consent()
        respondent.profile()
        on_profile = links_on(client.get("/profile").text)
        for page in catalog.pages:
            respondent.answer_page(page, ("ru", "foreign"))
        assert respondent.submit().location.endswith("/thanks")
        on_thanks = links_on(client.get("/thanks").text)
        for link in on_profile + on_thanks:
            assert re.fullmatch(re.escape(PUBLIC) + r"/resume/[\w-]{20,}", link), link
        assert len(on_profile) == len(on_thanks) == 1
        headers = {"Authorization": f"Bearer {token}"}
        spec = client.get("/api/v1/openapi.json", headers=headers).get_json()
        assert [s["url"] for s in spec["servers"]] == [PUBLIC + "/api/v1"]


def test_a_public_url_below_a_path_keeps_its_prefix(make_app):
    app = make_app(PUBLIC_URL="https://example.org/survey/", TRUSTED_HOSTS=["survey.test"])
    client = app.test_client()
    Respondent(client).consent()
    (link,) = links_on(client.get("/profile").text)
    assert link.startswith("https://example.org/survey/resume/")


def test_default_trusted_hosts_follow_public_url():
    config = {"PUBLIC_URL": "https://survey.example.org/", "TRUSTED_HOSTS": None}
    apply_public_url(config)
    assert config == {
        "PUBLIC_URL": "https://survey.example.org",
        "TRUSTED_HOSTS": ["survey.example.org"],
    }

    local = {"PUBLIC_URL": None, "TRUSTED_HOSTS": None}
    apply_public_url(local)
    assert local["PUBLIC_URL"] == "http://127.0.0.1:8000"
    assert sorted(local["TRUSTED_HOSTS"]) == ["127.0.0.1", "localhost"]

    named = {"PUBLIC_URL": None, "TRUSTED_HOSTS": None, "SERVER_NAME": "survey.test"}
    apply_public_url(named)
    assert named["PUBLIC_URL"] == "http://survey.test"
    assert named["TRUSTED_HOSTS"] == ["survey.test"]

    given = {"PUBLIC_URL": PUBLIC, "TRUSTED_HOSTS": ["a.example", ".b.example"]}
    apply_public_url(given)
    assert given["TRUSTED_HOSTS"] == ["a.example", ".b.example"]


@pytest.mark.parametrize(
    "bad", ["survey.example.org", "ftp://survey.example.org", "https://", "https://x.org/?a=1"]
)
def test_a_public_url_that_is_not_a_web_address_is_refused(bad):
    with pytest.raises(RuntimeError, match="PUBLIC_URL"):
        apply_public_url({"PUBLIC_URL": bad, "TRUSTED_HOSTS": None})


def test_public_url_and_trusted_hosts_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PUBLIC_URL", "https://umfrage.example.net")
    monkeypatch.setenv("TRUSTED_HOSTS", " umfrage.example.net, .internal.example ,")
    app = create_app(
        {
            "TESTING": False,
            "SECRET_KEY": secrets.token_hex(32),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'hosts.db'}",
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    assert app.config["PUBLIC_URL"] == "https://umfrage.example.net"
    assert app.config["TRUSTED_HOSTS"] == ["umfrage.example.net", ".internal.example"]
    client = app.test_client()
    # (a static file: this app's database has no tables, and the landing page reads its wave)
    static = "/static/css/survey.css"
    for host, status in (("db.internal.example", 200), ("evil.example", 400)):
        with client.get(static, headers={"Host": host}) as r:
            assert r.status_code == status, host
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.delenv("PUBLIC_URL")
    monkeypatch.delenv("TRUSTED_HOSTS")
    local = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'hosts.db'}",
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    assert local.config["PUBLIC_URL"] == "http://127.0.0.1:8123"
    with local.test_client().get(static, headers={"Host": "localhost:5000"}) as r:
        assert r.status_code == 200
