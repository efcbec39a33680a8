"""The load harness proves what it reports (issue 6, "Load and faults"; issue 18).

``make loadtest`` plays complete respondents against real gunicorn processes, with faults
(workers SIGKILLed mid-submit, PostgreSQL restarted, two instances sharing Redis), and
checks the database answer by answer. Those scenarios run there, at full size; here one
short run on SQLite checks the harness itself: what it reports matches what it did,
counted independently (the requests the questionnaire implies, the responses and answer
rows in the database by plain SQL), and its database check notices a response that differs
from what its client sent. The outage page a client sees while the database is down is
checked through Flask's test client.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing

import numpy as np
import pytest
import yaml

from benchmarks import loadtest
from benchmarks.load_client import ErrorEvent, Metrics, make_plan
from benchmarks.load_servers import CATALOG_PATH
from survey.catalog import load_catalog

RESPONDENTS = 8
SEED = 5


def _stored(path) -> tuple[int, Counter, list[int]]:
    """(submitted responses, their answers as a multiset, answer rows per response)."""
    with closing(sqlite3.connect(path)) as conn:
        submitted = conn.execute(
            "SELECT count(*) FROM response WHERE status = 'submitted'"
        ).fetchone()[0]
        rows = conn.execute(
            "SELECT a.practice_id, a.company_kind, a.met, a.rating, a.rating_mixed"
            " FROM answer a JOIN response r ON r.id = a.response_id"
            " WHERE r.status = 'submitted'"
        ).fetchall()
        per_response = [
            n
            for (n,) in conn.execute(
                "SELECT count(*) FROM answer a JOIN response r ON r.id = a.response_id"
                " WHERE r.status = 'submitted' GROUP BY a.response_id"
            )
        ]
    answers = Counter((p, k, met, rating, bool(mixed)) for p, k, met, rating, mixed in rows)
    return submitted, answers, per_response


def test_a_short_run_reports_what_it_did_and_its_check_catches_a_wrong_answer(
    tmp_path, monkeypatch
):
    """8 respondents, 4 at a time, on SQLite: requests, responses and answers as reported."""
    checked = {}
    verify = loadtest.verify_database

    def keep_what_was_checked(database_url, respondents, expected):
        checked.update(url=database_url, respondents=respondents, expected=expected)
        return verify(database_url, respondents, expected)

    monkeypatch.setattr(loadtest, "verify_database", keep_what_was_checked)
    scenario = loadtest.Scenario(
        "smoke", respondents=RESPONDENTS, concurrency=4, workers=2, seed=SEED, time_limit=300
    )
    result = loadtest.run_scenario(scenario, workdir=tmp_path)
    assert result.passed, result.report()

    # Requests: consent, background, each practice page (GET and POST), review, submit,
    # thank-you page; nothing was retried.
    pages = len(load_catalog(str(CATALOG_PATH)).pages)
    per_step = {
        "GET /": RESPONDENTS,
        "POST /": RESPONDENTS,
        "GET /profile": RESPONDENTS,
        "POST /profile": RESPONDENTS,
        "GET /page/<n>": RESPONDENTS * pages,
        "POST /page/<n>": RESPONDENTS * pages,
        "GET /review": RESPONDENTS,
        "POST /submit": RESPONDENTS,
        "GET /thanks": RESPONDENTS,
    }
    sent = RESPONDENTS * (7 + 2 * pages)
    assert result.retried_steps == result.errors_total == 0, result.report()
    assert result.requests == sent
    assert {s.step: s.count for s in result.steps} == {
        **per_step,
        "all requests": sent,
        "respondent": RESPONDENTS,
    }
    for s in result.steps:
        assert 0 < s.p50_ms <= s.p95_ms <= s.p99_ms <= s.max_ms, s

    # Responses and answers: a plain recount of the database against the answers the
    # respondents were to send (their seeded plans, fictitious practice left out).
    database = tmp_path / "survey.db"
    submitted, answers, per_response = _stored(database)
    catalog = load_catalog(str(CATALOG_PATH))
    plans = [make_plan(catalog, SEED, i) for i in range(RESPONDENTS)]
    planned = Counter(
        (practice, kind, met, rating, mixed)
        for plan in plans
        for (practice, kind), (met, rating, mixed) in plan.answers.items()
    )
    listed = yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))["practices"]
    real = [p for p in listed if not p.get("fictitious")]
    assert submitted == result.completed == result.db["submitted"] == RESPONDENTS
    assert answers == planned
    assert per_response == [2 * len(real)] * RESPONDENTS
    assert result.db["answer rows"] == answers.total()
    assert result.db["matching"] == RESPONDENTS
    assert checked["url"] == f"sqlite:///{database}"

    # The harness's check is not blind: one answer changed, another response missing one.
    with closing(sqlite3.connect(database)) as conn, conn:
        first, second = (
            r
            for (r,) in conn.execute(
                "SELECT id FROM response WHERE status = 'submitted' ORDER BY id LIMIT 2"
            )
        )
        conn.execute(
            "UPDATE answer SET met = CASE met WHEN 'dk' THEN 'no' ELSE 'dk' END,"
            " rating = NULL, rating_mixed = 0"
            " WHERE id = (SELECT min(id) FROM answer WHERE response_id = ?)",
            (first,),
        )
        conn.execute(
            "DELETE FROM answer WHERE id = (SELECT min(id) FROM answer WHERE response_id = ?)",
            (second,),
        )
    problems, figures = verify(checked["url"], checked["respondents"], RESPONDENTS)
    assert figures == {
        **result.db,
        "matching": RESPONDENTS - 2,
        "mismatched": 2,
        "partial": 1,
        "answer rows": result.db["answer rows"] - 1,
    }
    assert sum("1 answers differ" in p for p in problems) == 2, problems
    assert sum(f"response {second}: " in p for p in problems) == 1, problems


def test_step_figures_are_nearest_rank_percentiles_in_milliseconds():
    """The per-step table on known latencies, against numpy's inverted-CDF percentile."""
    latencies = {"GET /": [0.010, 0.040, 0.020, 0.030], "POST /": [0.100]}
    metrics = Metrics()
    for step, values in latencies.items():
        for value in values:
            metrics.record(step, value)
    metrics.record_respondent(1.0)
    metrics.record_respondent(2.0)
    metrics.error(ErrorEvent(0.0, 0, "consent", "transport", "POST /: reset", 0))

    figures = {f.step: f for f in loadtest._figures(metrics)}

    everything = [v for values in latencies.values() for v in values]
    expected = {**latencies, "all requests": everything, "respondent": [1.0, 2.0]}
    assert list(figures) == list(expected)
    for step, values in expected.items():
        got = figures[step]
        assert got.count == len(values)
        for q, value in ((50, got.p50_ms), (95, got.p95_ms), (99, got.p99_ms)):
            assert value == pytest.approx(1000 * np.percentile(values, q, method="inverted_cdf")), (
                step,
                q,
            )
        assert got.max_ms == pytest.approx(1000 * max(values))
    assert metrics.requests == len(everything) + 1  # the failed attempt is a request too


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
