"""Login throttle: failed researcher logins, counted where every worker sees them.

Failures are counted in fixed windows of ``LOGIN_WINDOW_MINUTES`` per (account, address)
pair, per address and per account (an IPv6 address counts by its /64). The policy protects
the owner as well as the password:

- a pair with ``LOGIN_MAX_FAILURES`` failures is refused (429) until its window ends; other
  addresses, the owner's among them, are not affected;
- an address with ``LOGIN_MAX_FAILURES_PER_ADDRESS`` failures, across any accounts, is refused;
- an account with more than ``LOGIN_SLOWDOWN_AFTER`` failures (an attack from many
  addresses) is slowed down, never blocked: each attempt waits a delay that doubles with
  every further failure, up to ``LOGIN_SLOWDOWN_MAX_SECONDS``, before the password is checked.

A successful login clears its pair's count. The counts live in the database by default
(table ``login_failure``) and in Redis when ``REDIS_URL`` is set; if Redis fails, the
database takes over. Counted things are stored as keyed SHA-256 digests (HMAC with the
``SECRET_KEY``), so no e-mail address or client address is written anywhere.

This is not Flask-Limiter: its storages are memory, Redis, Memcached and MongoDB (no SQL
store that works without extra services), and a limit can only refuse, not slow down.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from dataclasses import dataclass
from time import sleep  # ``sleep`` and ``now`` are module globals: tests replace them
from time import time as now

import redis
from flask import Flask, current_app
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from survey.extensions import db
from survey.models import LoginFailure

FIRST_DELAY_SECONDS = 0.25  # the delay after the first failure beyond LOGIN_SLOWDOWN_AFTER


@dataclass(frozen=True)
class Verdict:
    """What the throttle says about one login attempt."""

    refused: bool = False
    retry_after: int = 0  # seconds until the refusal ends (only when refused)
    delay: float = 0.0  # seconds waited before the password was checked


@dataclass(frozen=True)
class _Buckets:
    pair: str
    address: str
    account: str

    def all(self) -> list[str]:
        return [self.pair, self.address, self.account]


@dataclass(frozen=True)
class _Window:
    start: int  # Unix seconds
    seconds: int

    @property
    def remaining(self) -> int:
        return max(1, math.ceil(self.start + self.seconds - now()))


def _window(app: Flask) -> _Window:
    seconds = max(1, int(app.config["LOGIN_WINDOW_MINUTES"] * 60))
    current = int(now())
    return _Window(start=current - current % seconds, seconds=seconds)


def client_network(address: str) -> str:
    """The unit an address is counted by: an IPv4 address, or the /64 of an IPv6 address.

    One IPv6 subscriber usually holds a whole /64, so its single addresses cost nothing.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _buckets(app: Flask, account: str, address: str) -> _Buckets:
    key = str(app.config["SECRET_KEY"]).encode("utf-8")
    address = client_network(address)

    def digest(*parts: str) -> str:
        message = "\x00".join(parts).encode("utf-8", "surrogatepass")
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    return _Buckets(
        pair=digest("pair", account, address),
        address=digest("address", address),
        account=digest("account", account),
    )


class DatabaseStore:
    """Counts in the ``login_failure`` table: one row per bucket and window."""

    def counts(self, buckets: list[str], window: _Window) -> dict[str, int]:
        """The failures of each bucket in the window."""
        rows = db.session.execute(
            select(LoginFailure.bucket, LoginFailure.failures).where(
                LoginFailure.bucket.in_(buckets), LoginFailure.window_start == window.start
            )
        )
        return {bucket: failures for bucket, failures in rows}

    def add_failure(self, buckets: list[str], window: _Window) -> None:
        """Count one failure in each bucket (atomic upsert), and drop rows of past windows."""
        rows = [{"bucket": b, "window_start": window.start, "failures": 1} for b in sorted(buckets)]
        dialect = db.session.get_bind().dialect.name
        if dialect in ("postgresql", "sqlite"):
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = insert(LoginFailure).values(rows)
            db.session.execute(
                statement.on_conflict_do_update(
                    index_elements=["bucket", "window_start"],
                    set_={"failures": LoginFailure.failures + 1},
                )
            )
        else:  # any other database: update, then insert what was missing
            for row in rows:
                found = db.session.execute(
                    update(LoginFailure)
                    .where(
                        LoginFailure.bucket == row["bucket"],
                        LoginFailure.window_start == window.start,
                    )
                    .values(failures=LoginFailure.failures + 1)
                ).rowcount
                if not found:
                    db.session.add(LoginFailure(**row))
        db.session.execute(delete(LoginFailure).where(LoginFailure.window_start < window.start))
        db.session.commit()

    def forget(self, bucket: str, window: _Window) -> None:
        """Clear a bucket's count."""
        db.session.execute(delete(LoginFailure).where(LoginFailure.bucket == bucket))
        db.session.commit()


class RedisStore:
    """Counts in Redis: ``INCR`` and ``EXPIRE`` on one key per bucket and window."""

    def __init__(self, url: str, prefix: str):
        self.client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self.prefix = f"{prefix}:login-failures"

    def _key(self, bucket: str, window: _Window) -> str:
        return f"{self.prefix}:{bucket}:{window.start}"

    def counts(self, buckets: list[str], window: _Window) -> dict[str, int]:
        """The failures of each bucket in the window."""
        values = self.client.mget([self._key(b, window) for b in buckets])
        return {b: int(v) for b, v in zip(buckets, values, strict=True) if v is not None}

    def add_failure(self, buckets: list[str], window: _Window) -> None:
        """Count one failure in each bucket; keys expire with their window."""
        pipe = self.client.pipeline(transaction=False)
        for bucket in buckets:
            key = self._key(bucket, window)
            pipe.incr(key)
            pipe.expire(key, window.remaining + 60)
        pipe.execute()

    def forget(self, bucket: str, window: _Window) -> None:
        """Clear a bucket's count."""
        self.client.delete(self._key(bucket, window))


def _call(app: Flask, method: str, *args):
    """Run a store operation on Redis when configured, on the database otherwise or on failure."""
    store = app.extensions.get("login_throttle")
    if store is None and app.config.get("REDIS_URL"):
        store = app.extensions["login_throttle"] = RedisStore(
            app.config["REDIS_URL"], app.config.get("RATELIMIT_KEY_PREFIX") or "survey"
        )
    if store is not None:
        try:
            return getattr(store, method)(*args)
        except redis.RedisError as exc:
            app.logger.warning("login throttle: Redis failed (%s); using the database", exc)
    return getattr(DatabaseStore(), method)(*args)


def slowdown(failures: int, after: int, cap: float) -> float:
    """Seconds an account with ``failures`` in the window makes each attempt wait.

    Nothing up to ``after`` failures; then 0.25 s, doubling with each further failure,
    never more than ``cap``.
    """
    excess = failures - after
    if excess <= 0:
        return 0.0
    return min(cap, FIRST_DELAY_SECONDS * 2.0 ** min(excess - 1, 32))


def admit(account: str, address: str) -> Verdict:
    """Decide on a login attempt before its password is checked; wait if the account is slowed.

    ``account`` is the normalised e-mail address, ``address`` the client address.
    """
    app = current_app._get_current_object()
    if not app.config["LOGIN_THROTTLE_ENABLED"]:
        return Verdict()
    window = _window(app)
    buckets = _buckets(app, account, address)
    counts = _call(app, "counts", buckets.all(), window)
    if (
        counts.get(buckets.pair, 0) >= app.config["LOGIN_MAX_FAILURES"]
        or counts.get(buckets.address, 0) >= app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"]
    ):
        return Verdict(refused=True, retry_after=window.remaining)
    delay = slowdown(
        counts.get(buckets.account, 0),
        app.config["LOGIN_SLOWDOWN_AFTER"],
        float(app.config["LOGIN_SLOWDOWN_MAX_SECONDS"]),
    )
    if delay > 0:
        sleep(delay)
    return Verdict(delay=delay)


def record(account: str, address: str, *, success: bool) -> None:
    """Count a failed attempt, or clear the pair's count after a successful one."""
    app = current_app._get_current_object()
    if not app.config["LOGIN_THROTTLE_ENABLED"]:
        return
    window = _window(app)
    buckets = _buckets(app, account, address)
    if success:
        _call(app, "forget", buckets.pair, window)
    else:
        _call(app, "add_failure", buckets.all(), window)
