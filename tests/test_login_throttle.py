"""The login throttle (survey/throttle.py): strangers cannot lock the owner out, guessing is
throttled per (account, address) and per address, an account attacked from many addresses is
slowed down but never blocked, and every worker sees the same counts (database or Redis).

The throttle's clock is frozen a few seconds into a window (a test never straddles two
windows) and its sleep is replaced by a recorder (no test waits).
"""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, insert, select

from survey import auth, throttle
from survey.extensions import db
from survey.models import LoginFailure
from tests.helpers import PASSWORD, csrf_token, login_outcome, researcher

REDIS_URL = "redis://127.0.0.1:6379/15"
WINDOW = 15 * 60
T0 = 1_900_000_800 + 5  # five seconds into a 15-minute window (1_900_000_800 = 900 * 2_111_112)
ATTACKER = "10.0.0.1"
OWNER = "10.0.0.2"
THROTTLED = {
    "ru": "Слишком много неудачных попыток входа",
    "en": "Too many failed login attempts",
}


class Clock:
    def __init__(self):
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(throttle, "now", clock)
    return clock


@pytest.fixture(autouse=True)
def events(monkeypatch) -> list:
    """What happened, in order: ("sleep", seconds) and ("check", None) for a password check."""
    seen: list = []
    check = auth.check_password_hash

    def checked(hashed, password):
        seen.append(("check", None))
        return check(hashed, password)

    monkeypatch.setattr(throttle, "sleep", lambda seconds: seen.append(("sleep", seconds)))
    monkeypatch.setattr(auth, "check_password_hash", checked)
    return seen


def delays(events: list) -> list[float]:
    """The delay requested before each password check (0 when none)."""
    result, pending = [], 0.0
    for kind, seconds in events:
        if kind == "sleep":
            pending = seconds
        else:
            result.append(pending)
            pending = 0.0
    return result


def attempt(app, email: str, password: str, address: str, lang: str = "ru"):
    """One login attempt from a fresh browser at ``address``."""
    client = app.test_client()
    environ = {"REMOTE_ADDR": address}
    if lang != "ru":
        client.get(f"/lang/{lang}?next=/", environ_base=environ)
    token = csrf_token(client.get("/researcher/login", environ_base=environ).text)
    data = {"csrf_token": token, "email": email, "password": password}
    return client.post("/researcher/login", data=data, environ_base=environ)


def outcomes(app, email: str, password: str, address: str, times: int) -> list[str]:
    return [login_outcome(attempt(app, email, password, address)) for _ in range(times)]


def assert_throttled_page(r, lang: str) -> None:
    assert r.status_code == 429
    assert f'<html lang="{lang}">' in r.text
    assert THROTTLED[lang] in r.text
    retry_after = int(r.headers["Retry-After"])
    assert retry_after == WINDOW - 5  # the rest of the window
    assert "15" in r.text  # minutes, rounded up
    assert r.headers["Cache-Control"] == "no-store"


def stored_rows(app) -> list[LoginFailure]:
    with app.app_context():
        rows = db.session.scalars(select(LoginFailure)).all()
        db.session.expunge_all()
        return rows


# ---------------------------------------------------------------- the policy


def test_a_strangers_failures_never_lock_the_owner_out(app):
    email = researcher(app).email
    assert outcomes(app, email, "wrong", ATTACKER, 10) == ["refused"] * 5 + ["throttled"] * 5
    # the right password does not help the attacker's address either
    assert login_outcome(attempt(app, email, PASSWORD, ATTACKER)) == "throttled"
    # the owner, from their own address, logs in at once
    assert login_outcome(attempt(app, email, PASSWORD, OWNER)) == "in"
    # the attacker's address may still try other accounts (5 failures < 20 per address)
    other = researcher(app).email
    assert login_outcome(attempt(app, other, PASSWORD, ATTACKER)) == "in"


def test_the_refusal_is_a_429_page_in_the_readers_language(app):
    email = researcher(app).email
    outcomes(app, email, "wrong", ATTACKER, 5)
    assert_throttled_page(attempt(app, email, "wrong", ATTACKER), "ru")
    assert_throttled_page(attempt(app, email, "wrong", ATTACKER, lang="en"), "en")


def test_an_unknown_account_is_throttled_like_a_real_one(app):
    email = researcher(app).email
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.org"
    real = outcomes(app, email, "wrong", ATTACKER, 6)
    missing = outcomes(app, unknown, "wrong", OWNER, 6)
    assert real == missing == ["refused"] * 5 + ["throttled"]


def test_the_addresses_of_one_ipv6_subscriber_count_together(app):
    email = researcher(app).email
    tries = [
        login_outcome(attempt(app, email, "wrong", f"2001:db8:1:2::{i + 1:x}")) for i in range(6)
    ]
    assert tries == ["refused"] * 5 + ["throttled"]  # one /64, however many addresses
    assert login_outcome(attempt(app, email, PASSWORD, "2001:db8:1:3::1")) == "in"  # another /64


def test_an_address_failing_across_accounts_is_refused(app):
    email = researcher(app).email
    for i in range(20):
        assert login_outcome(attempt(app, f"guess{i}@example.org", "wrong", ATTACKER)) == "refused"
    assert login_outcome(attempt(app, email, PASSWORD, ATTACKER)) == "throttled"
    assert login_outcome(attempt(app, email, PASSWORD, OWNER)) == "in"


def test_a_successful_login_clears_the_pairs_count(app):
    email = researcher(app).email
    assert outcomes(app, email, "typo", OWNER, 4) == ["refused"] * 4
    assert login_outcome(attempt(app, email, PASSWORD, OWNER)) == "in"
    assert outcomes(app, email, "typo", OWNER, 6) == ["refused"] * 5 + ["throttled"]


def test_the_count_ends_with_its_window_and_old_rows_are_cleaned(app, clock):
    email = researcher(app).email
    assert outcomes(app, email, "wrong", ATTACKER, 6)[-1] == "throttled"
    assert {row.window_start for row in stored_rows(app)} == {T0 - 5}
    clock.now = T0 - 5 + WINDOW  # the next window
    assert login_outcome(attempt(app, email, "wrong", ATTACKER)) == "refused"
    assert {row.window_start for row in stored_rows(app)} == {T0 - 5 + WINDOW}


def test_an_account_attacked_from_many_addresses_is_slowed_down_not_blocked(app, events):
    email = researcher(app).email
    results = [login_outcome(attempt(app, email, "wrong", f"10.1.0.{i}")) for i in range(20)]
    assert results == ["refused"] * 20  # never blocked
    waited = delays(events)
    assert len(waited) == 20
    # attempts 1-11 see at most 10 earlier failures: no delay
    assert waited[:11] == [0.0] * 11
    slowed = waited[11:]
    assert all(0 < d <= 2.0 for d in slowed), slowed
    assert slowed == sorted(slowed) and slowed[0] < slowed[1] < slowed[2], slowed  # growing
    assert slowed[-1] == 2.0  # and capped
    # the owner, with the right password, is slowed too but gets in
    events.clear()
    assert login_outcome(attempt(app, email, PASSWORD, OWNER)) == "in"
    assert events == [("sleep", 2.0), ("check", None)]  # the wait comes before the check


def test_the_slowdown_cap_is_configurable(make_app, events):
    app = make_app(LOGIN_SLOWDOWN_AFTER=2, LOGIN_SLOWDOWN_MAX_SECONDS=0.5)
    email = researcher(app).email
    for i in range(8):
        attempt(app, email, "wrong", f"10.2.0.{i}")
    waited = delays(events)
    assert waited[:3] == [0.0] * 3
    assert max(waited) == 0.5
    assert all(0 < d <= 0.5 for d in waited[3:])


# ---------------------------------------------------------------- shared between workers


def test_two_app_instances_on_one_database_share_the_counts(make_app):
    first, second = make_app(), make_app()  # like two gunicorn workers
    email = researcher(first).email
    assert outcomes(first, email, "wrong", ATTACKER, 3) == ["refused"] * 3
    assert outcomes(second, email, "wrong", ATTACKER, 2) == ["refused"] * 2
    assert login_outcome(attempt(second, email, "wrong", ATTACKER)) == "throttled"
    assert login_outcome(attempt(first, email, "wrong", ATTACKER)) == "throttled"
    assert login_outcome(attempt(first, email, PASSWORD, OWNER)) == "in"


def test_nothing_identifying_is_stored(app):
    email = researcher(app).email
    outcomes(app, email, "wrong", ATTACKER, 2)
    rows = stored_rows(app)
    assert len(rows) == 3  # the pair, the address, the account
    assert {row.failures for row in rows} == {2}
    for row in rows:
        assert re.fullmatch(r"[0-9a-f]{64}", row.bucket)
        for secret in (email, ATTACKER, email.split("@")[0], "10.0.0"):
            assert secret not in row.bucket


@pytest.fixture
def redis_db():
    """Redis database 15, emptied before and after; the test is skipped without Redis."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        client.close()
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def test_with_redis_the_counts_are_shared_through_redis(make_app, redis_db):
    first, second = make_app(REDIS_URL=REDIS_URL), make_app(REDIS_URL=REDIS_URL)
    email = researcher(first).email
    assert outcomes(first, email, "wrong", ATTACKER, 3) == ["refused"] * 3
    assert outcomes(second, email, "wrong", ATTACKER, 2) == ["refused"] * 2
    assert login_outcome(attempt(second, email, "wrong", ATTACKER)) == "throttled"
    assert login_outcome(attempt(first, email, PASSWORD, OWNER)) == "in"
    keys = [key.decode() for key in redis_db.keys("*")]
    assert len(keys) == 3, keys
    assert all(email not in key and ATTACKER not in key for key in keys)
    assert all(0 < redis_db.ttl(key) <= WINDOW + 60 for key in keys)
    assert stored_rows(first) == []  # the database was not used


def test_an_unreachable_redis_falls_back_to_the_database(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    email = researcher(app).email
    assert outcomes(app, email, "wrong", ATTACKER, 6) == ["refused"] * 5 + ["throttled"]
    assert len(stored_rows(app)) == 3


# ---------------------------------------------------------------- configuration


def test_the_throttle_has_its_own_switch(make_app, events):
    app = make_app(LOGIN_THROTTLE_ENABLED=False, LOGIN_SLOWDOWN_AFTER=0)
    assert app.config["RATELIMIT_ENABLED"] is False  # the tests' default: separate switches
    email = researcher(app).email
    assert outcomes(app, email, "wrong", ATTACKER, 7) == ["refused"] * 7
    assert login_outcome(attempt(app, email, PASSWORD, ATTACKER)) == "in"
    assert all(kind == "check" for kind, _ in events)
    assert stored_rows(app) == []


def test_the_settings_come_from_the_environment(make_app, monkeypatch):
    monkeypatch.setenv("LOGIN_MAX_FAILURES", "2")
    monkeypatch.setenv("LOGIN_WINDOW_MINUTES", "30")
    app = make_app()
    assert app.config["LOGIN_MAX_FAILURES"] == 2
    assert app.config["LOGIN_THROTTLE_ENABLED"] is True
    email = researcher(app).email
    assert outcomes(app, email, "wrong", ATTACKER, 3) == ["refused"] * 2 + ["throttled"]
    with app.app_context():
        start = db.session.scalar(select(func.min(LoginFailure.window_start)))
    assert start % (30 * 60) == 0


def test_an_old_row_left_behind_is_cleaned_on_the_next_failure(app):
    with app.app_context():
        db.session.execute(
            insert(LoginFailure).values(bucket="0" * 64, window_start=T0 - 5 - WINDOW, failures=9)
        )
        db.session.commit()
    attempt(app, "someone@example.org", "wrong", ATTACKER)
    assert "0" * 64 not in {row.bucket for row in stored_rows(app)}
