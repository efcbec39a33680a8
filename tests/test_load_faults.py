"""Small load and fault runs against real gunicorn processes (issue 6, "Load and faults").

Each test runs one scenario of ``benchmarks.loadtest`` at a small size: its own gunicorn
on a fresh database, complete respondents played over HTTP, faults injected, and then
the database checked against every answer the clients sent. ``make loadtest`` runs the
same scenarios at full size.

PostgreSQL runs need TEST_DATABASE_URL (skipped without it unless REQUIRE_POSTGRES=1).
The PostgreSQL restart restarts the machine's shared cluster, so it runs only with
ALLOW_PG_RESTART=1 or CI=true, and it is the last test of this file.
"""

from __future__ import annotations

import os

import pytest

from benchmarks import loadtest
from benchmarks.load_servers import postgres_base_url, redis_available, redis_url, wait_postgres

REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"


def _need_postgres() -> None:
    if not os.environ.get("TEST_DATABASE_URL") and not REQUIRE_POSTGRES:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL load runs skipped")


def _run(scenario: loadtest.Scenario) -> loadtest.Result:
    scenario.time_limit = 600
    result = loadtest.run_scenario(scenario)
    assert result.passed, result.report()
    assert result.completed == scenario.respondents, result.report()
    assert result.db["submitted"] == scenario.respondents, result.report()
    assert result.db["matching"] == scenario.respondents, result.report()
    assert result.db["partial"] == result.db["duplicates"] == 0, result.report()
    return result


@pytest.mark.parametrize(
    "backend",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    ids=["sqlite", "postgresql"],
)
def test_concurrent_respondents_keep_every_answer(backend):
    """10 at a time, 60 complete respondents: 60 responses, every answer, no 5xx."""
    if backend == "postgresql":
        _need_postgres()
    result = _run(
        loadtest.Scenario(f"small-{backend}", backend=backend, respondents=60, concurrency=10)
    )
    assert result.errors_total == 0, result.report()
    assert {s.step for s in result.steps} >= set(loadtest.STEP_ORDER)


def test_database_outage_is_a_retryable_503(tmp_path):
    """What a client sees while the database is down: a clear, retryable 503, not a 500."""
    from survey import create_app
    from survey.extensions import db

    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing/dir/survey.db",
            "SECRET_KEY": "test-secret-key-not-for-production",
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
        }
    )
    try:
        reply = app.test_client().post("/", data={"adult": "y", "agree": "y"})
        assert reply.status_code == 503
        assert reply.headers["Retry-After"] == "5"
        assert "503" in reply.text
    finally:
        with app.app_context():
            db.engine.dispose()


def test_killed_workers_leave_no_partial_response():
    """3 SIGKILLed workers during 60 respondents: cut-off steps and submits retried, nothing
    partial, exactly one response per respondent."""
    result = _run(
        loadtest.Scenario(
            "small-kill-workers", backend="sqlite", respondents=60, concurrency=10, kill_workers=3
        )
    )
    assert result.kills == 3
    # The 1st kill freezes and kills the worker serving a submit: at least one cut submit.
    assert result.submit_kills >= 1 and result.cut_submits >= 1, result.report()
    assert result.errors_total == result.errors_tolerated, result.report()


@pytest.mark.postgres
def test_two_instances_postgresql_redis_replayed_submits():
    """Two instances on one PostgreSQL and one Redis: shared limits, one response per submit."""
    _need_postgres()
    if not redis_available() and not REQUIRE_POSTGRES:
        pytest.skip(f"Redis at {redis_url()} is not reachable")
    result = _run(
        loadtest.Scenario(
            "small-two-instances",
            backend="postgresql",
            respondents=40,
            concurrency=10,
            workers=2,
            two_instances=True,
            replay_every=4,
        )
    )
    assert result.replayed_submits == result.replay_ok == 10, result.report()
    assert result.errors_total == 0, result.report()
    assert any("-> shared" in note for note in result.notes), result.report()


# Keep this test last: it restarts the machine's PostgreSQL cluster.
@pytest.mark.postgres
def test_database_restart_during_load():
    """PostgreSQL restarted mid-run: the app reconnects, retried steps end well, nothing lost."""
    if os.environ.get("ALLOW_PG_RESTART") != "1" and os.environ.get("CI") != "true":
        pytest.skip("restarts the shared PostgreSQL: set ALLOW_PG_RESTART=1 (CI=true does too)")
    _need_postgres()
    try:
        result = _run(
            loadtest.Scenario(
                "small-restart-postgres",
                backend="postgresql",
                respondents=40,
                concurrency=10,
                restart_postgres=True,
            )
        )
    finally:
        wait_postgres(postgres_base_url(), timeout=120)
    assert result.restart_seconds is not None, result.report()
    assert result.errors_total == result.errors_tolerated, result.report()
