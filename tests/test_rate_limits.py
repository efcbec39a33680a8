"""Rate limits on starting, saving, submitting, resuming and logging in (issue 6).

Each test builds its own application with small limits. The limiter is one module-level
object re-initialised by every ``create_app``, so a test builds its limited applications
after any other (the ``app`` fixture is not used here).
"""

from __future__ import annotations

import os
import re
import time
import uuid

import pytest
from sqlalchemy import func, select

from survey import create_app
from survey.extensions import db
from survey.models import Answer, Response
from tests.conftest import TEST_SECRET
from tests.helpers import PASSWORD, PROFILE, Respondent, csrf_token, login_outcome, researcher

REDIS_URI = "redis://127.0.0.1:6379/15"
TOO_MANY = {"ru": "Слишком много запросов", "en": "Too many requests"}
WRONG_LOGIN = {"ru": "Неверный e-mail или пароль.", "en": "Wrong e-mail or password."}
GENEROUS = "1000 per hour"
LIMITS = ("LIMIT_START", "LIMIT_SAVE", "LIMIT_SUBMIT", "LIMIT_RESUME")


@pytest.fixture
def make_app(database_url, tmp_path):
    """Build rate-limited applications on the test database; every limit generous unless set.

    ``from_environment=True`` leaves the limit settings to the environment.
    """
    built = []

    def build(from_environment: bool = False, **overrides):
        config = {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": TEST_SECRET,
            "INSTANCE_PATH": str(tmp_path / f"instance{len(built)}"),
            "SERVER_NAME": "survey.test",
        }
        if not from_environment:
            config["RATELIMIT_ENABLED"] = True
            config["RATELIMIT_STORAGE_URI"] = "memory://"
            config.update(dict.fromkeys(LIMITS, GENEROUS))
        app = create_app({**config, **overrides})
        built.append(app)
        return app

    yield build
    for app in built:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def redis_db():
    """Redis database 15, emptied before and after; the test is skipped without Redis
    (fails with REQUIRE_REDIS=1, as in CI)."""
    import redis

    client = redis.Redis.from_url(REDIS_URI, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        client.close()
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"REQUIRE_REDIS=1 but Redis is not reachable at {REDIS_URI}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URI}: {exc}")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def login_window(monkeypatch):
    """Freeze the login throttle's clock: a test never straddles two of its fixed windows."""
    from survey import throttle

    frozen = time.time()
    monkeypatch.setattr(throttle, "now", lambda: frozen)


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def assert_too_many(r, lang: str = "ru") -> None:
    """A 429 page in the respondent's language, with Retry-After."""
    assert r.status_code == 429, (r.status_code, r.text[:300])
    assert r.mimetype == "text/html"
    assert f'<html lang="{lang}">' in r.text
    assert TOO_MANY[lang] in r.text
    assert int(r.headers["Retry-After"]) > 0
    assert "Content-Security-Policy" in r.headers


def consent(client, **headers):
    """Post the consent form (the start of a response)."""
    page = client.get("/", headers=headers).text
    if 'name="csrf_token"' not in page:  # a draft in this browser: no consent form shown
        page = client.get("/researcher/login", headers=headers).text  # same session token
    return client.post(
        "/", data={"csrf_token": csrf_token(page), "adult": "y", "agree": "y"}, headers=headers
    )


class Login:
    """A login form in one browser, sent from a chosen client address."""

    def __init__(self, app, address: str | None = None, **environ):
        self.client = app.test_client()
        self.headers = {"X-Forwarded-For": address} if address else {}
        self.environ = environ
        page = self.client.get("/researcher/login", headers=self.headers, environ_base=environ)
        self.token = csrf_token(page.text)

    def post(self, email: str, password: str):
        return self.client.post(
            "/researcher/login",
            data={"csrf_token": self.token, "email": email, "password": password},
            headers=self.headers,
            environ_base=self.environ,
        )


# ---------------------------------------------------------------- questionnaire limits


def test_starting_beyond_the_limit_is_a_429_page_in_russian_then_english(make_app):
    app = make_app(LIMIT_START="2 per hour")
    client = app.test_client()
    assert consent(client).status_code == 302
    assert consent(client).status_code == 302
    before = count(app, Response)
    assert_too_many(consent(client), "ru")
    assert count(app, Response) == before == 2
    assert client.get("/").status_code == 200  # only posting the consent is limited
    client.get("/lang/en?next=/")
    assert_too_many(consent(client), "en")
    other = app.test_client()  # another browser from the same address is limited too
    assert_too_many(consent(other), "ru")
    assert count(app, Response) == 2


def test_saving_pages_is_limited_and_a_refused_save_stores_nothing(make_app):
    app = make_app(LIMIT_SAVE="2 per hour")
    catalog = app.extensions["survey_catalog"]
    client = app.test_client()
    respondent = Respondent(client)
    respondent.consent()
    assert respondent.profile().status_code == 302
    assert respondent.profile(worked_in="ru_only").status_code == 302
    assert_too_many(respondent.profile())
    for page in catalog.pages[:2]:
        assert respondent.answer_page(page, ("ru",)).status_code == 302
    answers = count(app, Answer)
    assert_too_many(respondent.answer_page(catalog.pages[2], ("ru",)))
    assert count(app, Answer) == answers
    with app.app_context():
        assert db.session.scalars(select(Response)).one().worked_in == "ru_only"
    assert client.get(f"/page/{catalog.pages[2].number}").status_code == 200  # reading is free


def test_submitting_is_limited(make_app):
    app = make_app(LIMIT_SUBMIT="2 per hour")
    client = app.test_client()
    respondent = Respondent(client)
    respondent.consent()
    respondent.profile()
    token = csrf_token(client.get("/review").text)
    for _ in range(2):  # incomplete: sent back to the review page
        assert client.post("/submit", data={"csrf_token": token}).location.endswith("/review")
    assert_too_many(client.post("/submit", data={"csrf_token": token}))
    with app.app_context():
        assert db.session.scalars(select(Response)).one().status == "draft"


def test_resuming_is_limited_even_for_a_valid_link(make_app):
    app = make_app(LIMIT_RESUME="3 per hour")
    owner = app.test_client()
    Respondent(owner).consent()
    with owner.session_transaction() as session:
        token = session["resume_token"]
    guesser = app.test_client()
    for guess in ("a" * 32, "b" * 32):
        assert guesser.get(f"/resume/{guess}").location.endswith("/")
    assert guesser.get(f"/resume/{token}").status_code == 200  # the page that asks
    assert_too_many(guesser.get(f"/resume/{token}"))
    form = {"csrf_token": csrf_token(guesser.get("/").text)}
    assert_too_many(guesser.post(f"/resume/{token}", data=form))
    assert_too_many(app.test_client().get(f"/resume/{'c' * 32}"))


# ---------------------------------------------------------------- login


def test_login_failures_from_many_addresses_never_lock_the_account(make_app, login_window):
    """The login throttle (survey/throttle.py) keys on the proxied client address too."""
    app = make_app(TRUSTED_PROXIES=1, LOGIN_MAX_FAILURES=3)
    email = researcher(app).email
    outcomes = [
        login_outcome(Login(app, f"203.0.113.{i}").post(email.upper() if i % 2 else email, "no"))
        for i in range(5)
    ]
    assert outcomes == ["refused"] * 5
    # from one address, the (account, address) pair is throttled after 3 failures
    one_address = [login_outcome(Login(app, "203.0.113.50").post(email, "no")) for _ in range(4)]
    assert one_address == ["refused"] * 3 + ["throttled"]
    # the right password from yet another address still logs in
    assert login_outcome(Login(app, "198.51.100.7").post(email, PASSWORD)) == "in"


def test_login_attempts_are_throttled_per_address_across_accounts(make_app, login_window):
    app = make_app(TRUSTED_PROXIES=1, LOGIN_MAX_FAILURES_PER_ADDRESS=4)
    accounts = [researcher(app).email for _ in range(2)]
    attempts = [
        login_outcome(Login(app, "203.0.113.9").post(f"nobody{i}@example.org", "no"))
        for i in range(4)
    ]
    assert attempts == ["refused"] * 4
    # every attempt from that address now fails, even with the right password
    assert login_outcome(Login(app, "203.0.113.9").post(accounts[0], PASSWORD)) == "throttled"
    assert login_outcome(Login(app, "203.0.113.10").post(accounts[1], PASSWORD)) == "in"


def test_a_successful_login_does_not_count_against_the_account(make_app, login_window):
    app = make_app(TRUSTED_PROXIES=1, LOGIN_MAX_FAILURES=2)
    email = researcher(app).email
    for i in range(4):
        assert login_outcome(Login(app, f"192.0.2.{i}").post(email, PASSWORD)) == "in"
    assert [login_outcome(Login(app, "192.0.2.9").post(email, "no")) for _ in range(3)] == [
        "refused",
        "refused",
        "throttled",
    ]


def test_a_forged_forwarded_for_does_not_dodge_the_limit_without_trusted_proxies(
    make_app, login_window
):
    app = make_app(LOGIN_MAX_FAILURES_PER_ADDRESS=3, LIMIT_START="2 per hour")
    assert app.config["TRUSTED_PROXIES"] == 0
    outcomes = [
        login_outcome(Login(app, f"198.51.100.{i}").post(f"x{i}@example.org", "no"))
        for i in range(5)
    ]
    assert outcomes == ["refused"] * 3 + ["throttled"] * 2
    starts = [consent(app.test_client(), **{"X-Forwarded-For": f"10.0.0.{i}"}) for i in range(3)]
    assert [r.status_code for r in starts] == [302, 302, 429]


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_key(make_app):
    app = make_app(TRUSTED_PROXIES=1, LIMIT_START="1 per hour")
    proxy = {"REMOTE_ADDR": "10.0.0.1"}  # every request arrives from the same proxy
    client = app.test_client()
    r = client.get("/", environ_base=proxy, headers={"X-Forwarded-For": "203.0.113.1"})
    token = csrf_token(r.text)

    def start(address: str):
        return client.post(
            "/",
            data={"csrf_token": token, "adult": "y", "agree": "y"},
            environ_base=proxy,
            headers={"X-Forwarded-For": address},
        )

    assert start("203.0.113.1").status_code == 302
    assert start("203.0.113.2").status_code == 302
    assert_too_many(start("203.0.113.1"))
    # the client's own claim comes first: with one trusted proxy only the last entry counts
    assert_too_many(start("6.6.6.6, 203.0.113.2"))


def test_the_login_failure_message_does_not_reveal_whether_the_account_exists(
    make_app, login_window
):
    app = make_app(LOGIN_MAX_FAILURES=2)
    email = researcher(app).email
    unknown = f"rl-{uuid.uuid4().hex[:12]}@example.org"
    for lang in ("ru", "en"):
        pages = {}
        for address in (email, unknown):
            login = Login(app)
            if lang == "en":
                login.client.get("/lang/en?next=/researcher/login")
            r = login.post(address, "wrong password")
            assert r.status_code == 200
            assert WRONG_LOGIN[lang] in r.text
            text = re.sub(r'value="[^"]*"', 'value=""', r.text)
            pages[address] = text.replace(address, "EMAIL")
        assert pages[email] == pages[unknown]
    # both accounts are throttled alike: the throttle does not tell either
    known = [login_outcome(Login(app).post(email, "no")) for _ in range(2)]
    missing = [login_outcome(Login(app).post(unknown, "no")) for _ in range(2)]
    assert known == missing == ["throttled", "throttled"]


# ---------------------------------------------------------------- configuration


def test_limits_come_from_the_environment(make_app, monkeypatch):
    monkeypatch.setenv("RATELIMIT_ENABLED", "1")
    monkeypatch.setenv("LIMIT_START", "1 per hour")
    app = make_app(from_environment=True)
    assert app.config["LIMIT_START"] == "1 per hour"
    client = app.test_client()
    assert consent(client).status_code == 302
    assert_too_many(consent(client))


def test_ratelimit_enabled_0_switches_every_limit_off(make_app, monkeypatch):
    monkeypatch.setenv("RATELIMIT_ENABLED", "0")
    for name in LIMITS:
        monkeypatch.setenv(name, "1 per hour")
    app = make_app(from_environment=True)
    assert app.config["RATELIMIT_ENABLED"] is False
    client = app.test_client()
    assert [consent(client).status_code for _ in range(3)] == [302] * 3
    respondent = Respondent(client)
    assert [respondent.profile().status_code for _ in range(3)] == [302] * 3
    token = csrf_token(client.get("/review").text)
    for _ in range(3):
        assert client.post("/submit", data={"csrf_token": token}).status_code == 302
        assert client.get(f"/resume/{'x' * 32}").status_code == 302
    email = researcher(app).email
    assert [login_outcome(Login(app).post(email, "no")) for _ in range(3)] == ["refused"] * 3
    assert login_outcome(Login(app).post(email, PASSWORD)) == "in"


def test_two_app_instances_share_the_limit_through_redis(make_app, redis_db):
    """The count lives in Redis: a second instance (a fresh limiter storage) sees it.

    The same sequence on the in-memory store starts from zero in the new instance, which
    shows the test would notice if Redis were not really used.
    """
    settings = {"RATELIMIT_STORAGE_URI": REDIS_URI, "LIMIT_START": "3 per hour"}
    first = make_app(**settings)
    assert [consent(first.test_client()).status_code for _ in range(2)] == [302, 302]
    assert redis_db.keys("*survey*"), "the limiter writes its counters to Redis"
    second = make_app(**settings)
    assert consent(second.test_client()).status_code == 302
    assert_too_many(consent(second.test_client()))
    assert_too_many(consent(first.test_client()))
    assert count(second, Response) == 3

    redis_db.flushdb()
    memory = {**settings, "RATELIMIT_STORAGE_URI": "memory://"}
    one = make_app(**memory)
    assert [consent(one.test_client()).status_code for _ in range(3)] == [302] * 3
    other = make_app(**memory)
    assert consent(other.test_client()).status_code == 302  # a separate store: not shared
    assert not redis_db.keys("*survey*")


def test_an_unreachable_limit_store_does_not_stop_respondents(make_app):
    app = make_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0", LIMIT_START="1 per hour")
    # Two starts against a limit of one: with no store to count in, neither is refused ...
    for industry in ("it", "retail"):
        client = app.test_client()
        respondent = Respondent(client)
        respondent.consent()
        assert respondent.profile(industry=industry).status_code == 302
        assert client.get("/review").status_code == 200
    # ... and each draft holds what its respondent gave.
    with app.app_context():
        drafts = db.session.scalars(select(Response).order_by(Response.id)).all()
        assert [(r.status, r.industry) for r in drafts] == [("draft", "it"), ("draft", "retail")]
        for draft in drafts:
            assert draft.consented_on is not None
            for field in ("worked_in", "current_employer", "company_size", "region"):
                assert getattr(draft, field) == PROFILE[field], field
