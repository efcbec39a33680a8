"""Load and fault test: complete respondents against gunicorn, then a check of every answer.

Each run starts its own gunicorn (4 workers) on a fresh database (``flask init-db`` and
``load-catalog``), plays N complete respondents with C at a time (consent, background,
every practice page, review, submit, thank-you page), and then checks in the database
that exactly N responses were submitted, each with every answer its client sent, with
no duplicates and no partial response. Faults can be injected during the load:

* ``--kill-workers N``   SIGKILL a random gunicorn worker N times (gunicorn respawns it);
* ``--restart-postgres`` restart the PostgreSQL cluster once (pg_ctlcluster), the app
                          must reconnect by itself;
* ``--two-instances``    two gunicorn instances on one PostgreSQL and one Redis (shared
                          rate limits, checked by a probe); every K-th respondent's submit
                          is sent to both instances at the same moment.

A step cut off by a fault (connection reset, HTTP 500/502/503/504) is retried a bounded
number of times from the page's GET (fresh CSRF token). Such errors are tolerated only
within a few seconds of a deliberate kill or restart, and never an HTTP 500 (a database
outage must give a clear, retryable 503); any other 5xx or transport error, any
unexpected page and any respondent that does not finish makes the run FAIL.

Without a scenario option (``--backend``, ``--kill-workers``, ``--restart-postgres``,
``--two-instances``) ``--all`` is implied: the five full-size scenarios of issue 6
(``make loadtest``). Other options (``--respondents``, ``--concurrency``...) apply to
every scenario of ``--all``. The exit status is 0 only if every scenario passed.
PostgreSQL comes from TEST_DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test);
each run creates its own database beside it and drops it afterwards. Redis for
``--two-instances`` comes from LOADTEST_REDIS_URL (default redis://127.0.0.1:6379/14).

Examples::

    python -m benchmarks.loadtest                      # --all, full sizes
    python -m benchmarks.loadtest --backend sqlite --respondents 200 --concurrency 10
    python -m benchmarks.loadtest --kill-workers 5 --respondents 500
    python -m benchmarks.loadtest --all --respondents 100 --json figures.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.common import percentile
from benchmarks.load_client import (
    Browser,
    Metrics,
    Respondent,
    SubmitCutter,
    make_plan,
)
from benchmarks.load_servers import (
    CATALOG_PATH,
    Gunicorn,
    app_env,
    create_postgres_database,
    drop_postgres_database,
    postgres_base_url,
    postgres_started_at,
    prepare_database,
    redis_available,
    redis_delete_matching,
    redis_url,
    restart_postgres,
    sqlite_url,
    wait_postgres,
)
from survey.auth import token_hash
from survey.catalog import load_catalog

STEP_ORDER = (
    "GET /",
    "POST /",
    "GET /profile",
    "POST /profile",
    "GET /page/<n>",
    "POST /page/<n>",
    "GET /review",
    "POST /submit",
    "GET /thanks",
)
KILL_WINDOW = 5.0  # seconds after a SIGKILL during which cut-off requests are expected
RESTART_GRACE = 10.0  # seconds after PostgreSQL is ready again
PROBE_LIMIT = 5  # LIMIT_RESUME in the two-instance run: the shared-limit probe's budget


@dataclass
class Scenario:
    """One load run."""

    name: str
    backend: str = "sqlite"
    respondents: int = 2000
    concurrency: int = 50
    workers: int = 4
    kill_workers: int = 0
    restart_postgres: bool = False
    two_instances: bool = False
    replay_every: int = 10
    seed: int = 1
    time_limit: float = 3600.0
    max_attempts: int = 10

    def describe(self) -> str:
        """The scenario in one line: size, backend and faults."""
        parts = [
            f"{self.respondents} respondents, {self.concurrency} concurrent, "
            f"{self.workers} workers, {self.backend}"
        ]
        if self.kill_workers:
            parts.append(f"{self.kill_workers} worker kills")
        if self.restart_postgres:
            parts.append("PostgreSQL restart")
        if self.two_instances:
            parts.append(f"two instances + Redis, every {self.replay_every}th submit to both")
        return "; ".join(parts)


@dataclass
class StepFigures:
    """Latencies of one step (or of all requests, or of whole respondents), in ms."""

    step: str
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class Result:
    """What a run measured and found; ``passed`` is the verdict."""

    scenario: Scenario
    passed: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    completed: int = 0
    responses_per_second: float = 0.0
    requests: int = 0
    requests_per_second: float = 0.0
    steps: list[StepFigures] = field(default_factory=list)
    errors_total: int = 0
    errors_tolerated: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    retried_steps: int = 0
    retried_submits: int = 0
    kills: int = 0
    submit_kills: int = 0
    cut_submits: int = 0
    cut_outcomes: dict[str, int] = field(default_factory=dict)
    restart_seconds: float | None = None
    replayed_submits: int = 0
    replay_ok: int = 0
    db: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Everything as plain data (``--json``)."""
        return asdict(self)

    def report(self) -> str:
        """The printed report: figures, per-step table, faults, database check, verdict."""
        lines = [f"== {self.scenario.name}: {self.scenario.describe()}"]
        lines.append(
            f"wall {self.wall_seconds:.1f} s; {self.completed} complete responses, "
            f"{self.responses_per_second:.1f} responses/s; {self.requests} requests, "
            f"{self.requests_per_second:.0f} requests/s"
        )
        header = f"{'step':<18}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}"
        lines.append(header)
        lines.append("-" * len(header))
        for s in self.steps:
            lines.append(
                f"{s.step:<18}{s.count:>8}{s.p50_ms:>10.1f}{s.p95_ms:>10.1f}"
                f"{s.p99_ms:>10.1f}{s.max_ms:>10.1f}"
            )
        lines.append(
            f"errors seen by clients: {self.errors_total} "
            f"({self.errors_tolerated} during deliberate faults, retried); "
            f"retried steps {self.retried_steps}, of them submits {self.retried_submits}"
        )
        if self.error_kinds:
            kinds = ", ".join(f"{k} x{v}" for k, v in sorted(self.error_kinds.items()))
            lines.append(f"errors by kind: {kinds}")
        if self.scenario.kill_workers:
            lines.append(
                f"workers killed: {self.kills} of {self.scenario.kill_workers} "
                f"({self.submit_kills} while serving a submit)"
            )
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.cut_outcomes.items()))
            lines.append(
                f"submits cut off: {self.cut_submits} ({outcomes or 'none'}); "
                "each retried and ended on /thanks with exactly one response"
                if self.cut_submits
                else "submits cut off: 0"
            )
        if self.scenario.restart_postgres:
            outcome = (
                f"restarted in {self.restart_seconds:.1f} s"
                if self.restart_seconds is not None
                else "no restart"
            )
            lines.append(f"PostgreSQL: {outcome}")
        if self.scenario.two_instances:
            lines.append(
                f"submits replayed to both instances: {self.replayed_submits}, "
                f"both answered 302 -> /thanks: {self.replay_ok}"
            )
        if self.db:
            lines.append("database: " + ", ".join(f"{k} {v}" for k, v in self.db.items()))
        lines.extend(f"note: {n}" for n in self.notes)
        lines.extend(f"problem: {p}" for p in self.problems[:30])
        if len(self.problems) > 30:
            lines.append(f"... and {len(self.problems) - 30} more problems")
        lines.append(f"{'PASS' if self.passed else 'FAIL'} {self.scenario.name}")
        return "\n".join(lines)


# -- the load ----------------------------------------------------------------------------------


class Progress:
    """Completed respondents, observable by the fault injectors."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.done = 0
        self.finished = False

    def add(self) -> None:
        """One more respondent done."""
        with self.cond:
            self.done += 1
            self.cond.notify_all()

    def finish(self) -> None:
        """The load is over (or was interrupted): release every waiter."""
        with self.cond:
            self.finished = True
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` respondents are done; False if the run ended first."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.done < count and not self.finished:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 1.0))
            return self.done >= count and not self.finished


def _run_load(
    scenario: Scenario,
    urls: list[str],
    secret_key: str,
    metrics: Metrics,
    progress: Progress,
    address_prefix: str | None,
    say,
    cutter: SubmitCutter | None = None,
) -> list[Respondent]:
    catalog = load_catalog(str(CATALOG_PATH))
    results: list[Respondent | None] = [None] * scenario.respondents
    counter = itertools.count()
    lock = threading.Lock()
    deadline = time.monotonic() + scenario.time_limit
    step = max(1, scenario.respondents // 10)

    def next_index() -> int | None:
        with lock:
            index = next(counter)
        if index >= scenario.respondents or time.monotonic() > deadline:
            return None
        return index

    def play(index: int) -> None:
        instance = index % len(urls)
        headers = {}
        if address_prefix is not None:  # one client address per respondent (rate limits)
            headers["X-Forwarded-For"] = f"{address_prefix}.{index // 250}.{index % 250 + 1}"
        browser = Browser(urls[instance], headers=headers)
        replay = []
        if scenario.two_instances and scenario.replay_every and index % scenario.replay_every == 0:
            replay = [browser.copy_to(url) for url in urls]
        respondent = Respondent(
            index=index,
            plan=make_plan(catalog, scenario.seed, index),
            browser=browser,
            instance=instance,
            metrics=metrics,
            secret_key=secret_key,
            max_attempts=scenario.max_attempts,
        )
        respondent.replay = replay
        respondent.cutter = cutter
        started = time.perf_counter()
        respondent.run(catalog)
        if respondent.completed:
            metrics.record_respondent(time.perf_counter() - started)
        results[index] = respondent
        progress.add()
        if progress.done % step == 0:
            say(f"  {progress.done}/{scenario.respondents} respondents done")

    def loop() -> None:
        for _ in range(scenario.respondents):  # bounded: one respondent per turn at most
            index = next_index()
            if index is None:
                return
            try:
                play(index)
            except Exception as exc:  # noqa: BLE001 - a client bug must fail the run, not hang it
                metrics.crash(f"client crashed on respondent {index}: {exc!r}")
                progress.add()

    threads = [
        threading.Thread(target=loop, name=f"respondent-{i}", daemon=True)
        for i in range(scenario.concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline - time.monotonic()) + 180)
    progress.finish()
    return [r for r in results if r is not None]


# -- fault injectors -----------------------------------------------------------------------


class Killer(threading.Thread):
    """SIGKILL a gunicorn worker N times, spread evenly over the run's progress.

    Odd-numbered kills (1st, 3rd, ...) hit the worker serving a submit in flight, so
    that cut-off submits are certain to occur; the others hit a random worker.
    """

    def __init__(self, server: Gunicorn, scenario: Scenario, progress: Progress) -> None:
        super().__init__(name="killer", daemon=True)
        self.server = server
        self.scenario = scenario
        self.progress = progress
        self.rng = random.Random(f"kill:{scenario.seed}")
        self.cutter = SubmitCutter(server.worker_serving, server.signal_worker, scenario.seed)
        self.random_kills: list[float] = []
        self.error: str = ""

    @property
    def kills(self) -> list[float]:
        """When each kill happened (time.monotonic()), random and submit-cutting ones."""
        return sorted(self.random_kills + self.cutter.kills)

    def run(self) -> None:
        """Kill at evenly spread points of the run's progress."""
        try:
            n = self.scenario.kill_workers
            for k in range(1, n + 1):
                threshold = k * self.scenario.respondents // (n + 1)
                if not self.progress.wait_for(threshold, self.scenario.time_limit):
                    return
                self.server.wait_workers(timeout=3)  # give the last victim a moment to respawn
                if self.progress.finished:
                    return
                if k % 2 == 1:
                    self.cutter.request()  # the next submit's worker dies
                    continue
                at = time.monotonic()
                if self.server.kill_random_worker(self.rng) is not None:
                    self.random_kills.append(at)
        except Exception as exc:  # noqa: BLE001 - reported as a problem of the run
            self.error = repr(exc)


class Restarter(threading.Thread):
    """Restart the PostgreSQL cluster once, when 40% of the respondents are done."""

    def __init__(self, database_url: str, scenario: Scenario, progress: Progress) -> None:
        super().__init__(name="pg-restart", daemon=True)
        self.database_url = database_url
        self.scenario = scenario
        self.progress = progress
        self.window: tuple[float, float] | None = None
        self.seconds: float | None = None
        self.finished_wall: float | None = None  # time.time() when PostgreSQL was back
        self.error: str = ""

    def run(self) -> None:
        """Restart once 40% of the respondents are done; record the outage window."""
        try:
            threshold = max(1, self.scenario.respondents * 2 // 5)
            if not self.progress.wait_for(threshold, self.scenario.time_limit):
                return
            started = time.monotonic()
            self.window = (started, started + 600)  # closed properly below
            self.seconds = restart_postgres(self.database_url)
            self.finished_wall = time.time()
            self.window = (started, time.monotonic() + RESTART_GRACE)
        except Exception as exc:  # noqa: BLE001 - reported as a problem of the run
            self.error = repr(exc)
            if self.window is not None:
                self.window = (self.window[0], time.monotonic() + RESTART_GRACE)


def _probe_shared_limit(urls: list[str], address: str) -> tuple[bool, list[int]]:
    """Hit the resume route alternately on each instance from one address.

    With LIMIT_RESUME at PROBE_LIMIT per hour shared through Redis, request PROBE_LIMIT+1
    must be refused (429) whichever instance it reaches; with per-instance counters it
    would still pass.
    """
    statuses = []
    for i in range(PROBE_LIMIT + 1):
        browser = Browser(urls[i % len(urls)], headers={"X-Forwarded-For": address})
        statuses.append(browser.request("GET", "/resume/not-a-token").status)
    return statuses[:-1].count(429) == 0 and statuses[-1] == 429, statuses


# -- the check ------------------------------------------------------------------------------


@dataclass
class Stored:
    """What the database holds after a run, read in one go by :func:`read_stored`."""

    responses: list  # every response: (id, resume_token_hash, status, *background fields)
    answers_of: dict[int, dict]  # submitted response id -> {(practice, kind): (met, rating, mixed)}
    examples_of: dict[int, dict]  # submitted response id -> {(practice, kind): text}
    answer_rows: int  # answer rows of submitted responses
    duplicate_cells: int  # (response, practice, kind) stored more than once
    duplicate_tokens: int  # resume tokens with more than one response
    missing_indexes: list[str]  # the unique indexes the run relies on and did not find


def _background_questions() -> list:
    from survey.questions import BACKGROUND, KIND_BACKGROUND_BY_FIELD

    return [*BACKGROUND, *KIND_BACKGROUND_BY_FIELD.values()]


def _read_rows(conn, questions: list) -> tuple[list, list, list]:
    """Every response with its background; the answers and examples of submitted ones."""
    from sqlalchemy import select

    from survey.models import Answer, PracticeExample, Response

    fields = [getattr(Response, q.field) for q in questions]
    responses = conn.execute(
        select(Response.id, Response.resume_token_hash, Response.status, *fields)
    ).all()
    answers = conn.execute(
        select(
            Answer.response_id,
            Answer.practice_id,
            Answer.company_kind,
            Answer.met,
            Answer.rating,
            Answer.rating_mixed,
        )
        .join(Response, Response.id == Answer.response_id)
        .where(Response.status == "submitted")
    ).all()
    examples = conn.execute(
        select(
            PracticeExample.response_id,
            PracticeExample.practice_id,
            PracticeExample.company_kind,
            PracticeExample.text,
        )
        .join(Response, Response.id == PracticeExample.response_id)
        .where(Response.status == "submitted")
    ).all()
    return responses, answers, examples


def _count_duplicates(conn) -> tuple[int, int]:
    """(answer cells stored more than once, resume tokens with more than one response)."""
    from sqlalchemy import func, select

    from survey.models import Answer, Response

    cells = conn.execute(
        select(func.count()).select_from(
            select(Answer.response_id)
            .group_by(Answer.response_id, Answer.practice_id, Answer.company_kind)
            .having(func.count() > 1)
            .subquery()
        )
    ).scalar_one()
    tokens = conn.execute(
        select(func.count()).select_from(
            select(Response.resume_token_hash)
            .where(Response.resume_token_hash.is_not(None))
            .group_by(Response.resume_token_hash)
            .having(func.count() > 1)
            .subquery()
        )
    ).scalar_one()
    return cells, tokens


def _missing_unique_indexes(engine) -> list[str]:
    """The unique indexes that keep a retried or replayed submit from being stored twice,
    as problems when they are missing."""
    from sqlalchemy import inspect

    inspector = inspect(engine)

    def unique_sets(table: str) -> list[list[str]]:
        return [c["column_names"] for c in inspector.get_unique_constraints(table)] + [
            i["column_names"] for i in inspector.get_indexes(table) if i.get("unique")
        ]

    missing = []
    answer_key = {"response_id", "practice_id", "company_kind"}
    if answer_key not in [set(columns) for columns in unique_sets("answer")]:
        missing.append("no unique index on answer (response_id, practice_id, company_kind)")
    if ["resume_token_hash"] not in unique_sets("response"):
        missing.append("no unique index on response.resume_token_hash")
    return missing


def read_stored(database_url: str, questions: list) -> Stored:
    """Read what :func:`verify_database` compares with the clients' plans."""
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            responses, answers, examples = _read_rows(conn, questions)
            duplicate_cells, duplicate_tokens = _count_duplicates(conn)
        missing = _missing_unique_indexes(engine)
    finally:
        engine.dispose()
    answers_of: dict[int, dict] = {}
    for a in answers:
        answers_of.setdefault(a.response_id, {})[(a.practice_id, a.company_kind)] = (
            a.met,
            a.rating,
            bool(a.rating_mixed),
        )
    examples_of: dict[int, dict] = {}
    for e in examples:
        examples_of.setdefault(e.response_id, {})[(e.practice_id, e.company_kind)] = e.text
    return Stored(
        responses, answers_of, examples_of, len(answers), duplicate_cells, duplicate_tokens, missing
    )


def _difference(row, respondent: Respondent, stored: Stored, questions: list) -> str:
    """How a submitted response differs from its respondent's plan ("" if it does not)."""
    plan = respondent.plan
    got = stored.answers_of.get(row.id, {})
    wrong = [k for k, v in plan.answers.items() if got.get(k) != v]
    profile_differs = {q.field: getattr(row, q.field) for q in questions} != plan.stored_profile
    examples_differ = stored.examples_of.get(row.id, {}) != plan.examples
    if not (wrong or profile_differs or examples_differ):
        return ""
    return (
        f"respondent {respondent.index}: {len(wrong)} answers differ"
        f"{', background differs' if profile_differs else ''}"
        f"{', examples differ' if examples_differ else ''}"
    )


def _compare_responses(
    submitted: list, by_hash: dict, stored: Stored, cells: int, questions: list
) -> tuple[dict[str, int], set[str], list[str]]:
    """Each submitted response against the plan of the client that completed it:
    (counts of partial, extra and mismatched responses, the token hashes seen, problems)."""
    problems: list[str] = []
    counts = {"partial": 0, "extra": 0, "mismatched": 0}
    seen: set[str] = set()
    for row in submitted:
        answers = len(stored.answers_of.get(row.id, {}))
        if answers != cells:
            counts["partial"] += 1
            problems.append(f"response {row.id}: {answers} answers, expected {cells}")
        respondent = by_hash.get(row.resume_token_hash)
        if respondent is None:
            counts["extra"] += 1
            problems.append(f"response {row.id} was submitted but no client completed it")
            continue
        seen.add(row.resume_token_hash)
        difference = _difference(row, respondent, stored, questions)
        if difference:
            counts["mismatched"] += 1
            problems.append(difference)
    return counts, seen, problems


def verify_database(database_url: str, respondents: list[Respondent], expected: int) -> tuple:
    """Compare the database with what the clients sent; return (problems, figures)."""
    catalog = load_catalog(str(CATALOG_PATH))
    cells = len(catalog.practices) * 2
    questions = _background_questions()
    by_hash = {token_hash(r.token): r for r in respondents if r.completed and r.token}
    stored = read_stored(database_url, questions)
    problems = list(stored.missing_indexes)
    submitted = [r for r in stored.responses if r.status == "submitted"]
    if len(submitted) != expected:
        problems.append(
            f"{len(submitted)} submitted responses in the database, expected {expected}"
        )
    if len(by_hash) != expected:
        problems.append(f"{len(by_hash)} respondents completed, expected {expected}")
    counts, seen, differences = _compare_responses(submitted, by_hash, stored, cells, questions)
    problems.extend(differences)
    missing = len(set(by_hash) - seen)
    if missing:
        problems.append(f"{missing} completed respondents have no submitted response")
    if stored.duplicate_cells:
        problems.append(f"{stored.duplicate_cells} duplicated answer cells")
    if stored.duplicate_tokens:
        problems.append(f"{stored.duplicate_tokens} resume tokens with more than one response")
    figures = {
        "submitted": len(submitted),
        "matching": len(submitted) - counts["mismatched"] - counts["extra"],
        "mismatched": counts["mismatched"],
        "partial": counts["partial"],
        "extra": counts["extra"],
        "missing": missing,
        "duplicates": stored.duplicate_cells + stored.duplicate_tokens,
        "answer rows": stored.answer_rows,
        "unfinished drafts": len(stored.responses) - len(submitted),
    }
    return problems, figures


# -- one run --------------------------------------------------------------------------------


def _figures(metrics: Metrics) -> list[StepFigures]:
    out = []
    names = [s for s in STEP_ORDER if s in metrics.latency]
    names += sorted(set(metrics.latency) - set(STEP_ORDER) - {"respondent"})
    everything = [v for s in names for v in metrics.latency[s]]
    rows = [(s, metrics.latency[s]) for s in names]
    if everything:
        rows.append(("all requests", everything))
    if "respondent" in metrics.latency:
        rows.append(("respondent", metrics.latency["respondent"]))
    for name, values in rows:
        out.append(
            StepFigures(
                name,
                len(values),
                1000 * percentile(values, 0.50),
                1000 * percentile(values, 0.95),
                1000 * percentile(values, 0.99),
                1000 * max(values),
            )
        )
    return out


class _Run:
    """What one scenario sets up and must tear down: its folder, database, gunicorn
    instances, fault injectors and (two instances) the Redis keys of its client addresses."""

    def __init__(self, scenario: Scenario, keep: bool, workdir: Path | None) -> None:
        self.scenario = scenario
        self.keep = keep
        self.own_workdir = workdir is None  # a folder given by the caller stays theirs
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"loadtest-{scenario.name}-"))
        self.secret_key = secrets.token_hex(32)
        self.base_url = postgres_base_url()
        self.database_url: str | None = None
        self.servers: list[Gunicorn] = []
        self.injectors: list[threading.Thread] = []
        self.killer: Killer | None = None
        self.restarter: Restarter | None = None
        self.address_prefix: str | None = None
        self.redis = redis_url()
        self.progress = Progress()
        self.pg_started = None

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def _app_settings(self) -> dict[str, str]:
        """Settings beyond the defaults: two instances share rate limits through Redis."""
        if not self.scenario.two_instances:
            return {}
        if not redis_available(self.redis):
            raise RuntimeError(f"Redis at {self.redis} is not reachable")
        self.address_prefix = f"10.{random.randint(1, 254)}"  # noqa: S311 - not security
        return {
            "RATELIMIT_ENABLED": "1",
            "RATELIMIT_STORAGE_URI": self.redis,
            "REDIS_URL": self.redis,
            "TRUSTED_PROXIES": "1",
            "LIMIT_RESUME": f"{PROBE_LIMIT} per hour",
        }

    def set_up(self, say) -> None:
        """A fresh database, initialised, and the gunicorn instances serving it."""
        scenario = self.scenario
        if scenario.backend == "sqlite":
            self.database_url = sqlite_url(self.workdir)
        else:
            self.database_url = create_postgres_database(self.base_url)
        extra = self._app_settings()
        if scenario.backend == "postgresql":
            self.pg_started = postgres_started_at(self.database_url)
        env = app_env(self.database_url, self.workdir / "instance", self.secret_key, **extra)
        say(f"preparing {scenario.backend} database ({self.workdir})")
        prepare_database(env, self.workdir / "setup.log")
        for i in range(2 if scenario.two_instances else 1):
            server = Gunicorn(env, self.workdir / f"gunicorn-{i}.log", scenario.workers)
            self.servers.append(server)
            server.start()
        say(f"gunicorn ready at {', '.join(self.urls)}; load starts")

    def load(self, metrics: Metrics, say, result: Result) -> list[Respondent]:
        """Play the respondents with the fault injectors running; their wall time goes to
        ``result``."""
        scenario = self.scenario
        if scenario.kill_workers:
            self.killer = Killer(self.servers[0], scenario, self.progress)
            self.injectors.append(self.killer)
        if scenario.restart_postgres:
            self.restarter = Restarter(self.database_url, scenario, self.progress)
            self.injectors.append(self.restarter)
        for thread in self.injectors:
            thread.start()
        started = time.monotonic()
        respondents = _run_load(
            scenario,
            self.urls,
            self.secret_key,
            metrics,
            self.progress,
            self.address_prefix,
            say,
            self.killer.cutter if self.killer is not None else None,
        )
        result.wall_seconds = time.monotonic() - started
        for thread in self.injectors:
            thread.join(timeout=180)
        return respondents

    def tear_down(self, result: Result) -> None:
        """Stop everything started, remove what the run created (unless kept)."""
        self.progress.finish()  # releases the fault injectors, even after an interruption
        for server in self.servers:
            server.stop()
        for thread in self.injectors:
            thread.join(timeout=180)
        if self.scenario.two_instances and self.address_prefix is not None:
            try:
                deleted = redis_delete_matching(self.redis, f"*{self.address_prefix}.*")
                result.notes.append(f"removed {deleted} rate-limit keys of this run from Redis")
            except Exception as exc:  # noqa: BLE001
                result.notes.append(f"could not clean Redis: {exc!r}")
        if self.database_url and self.scenario.backend == "postgresql" and not self.keep:
            try:
                drop_postgres_database(self.database_url, self.base_url)
            except Exception as exc:  # noqa: BLE001
                result.notes.append(f"could not drop {self.database_url}: {exc!r}")
        if self.keep:
            result.notes.append(f"kept {self.workdir} and {self.database_url}")
        elif self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _account_kills(result: Result, run: _Run, respondents: list[Respondent]) -> list:
    """Kills made and submits cut; the time windows in which the kills explain errors."""
    killer, scenario = run.killer, run.scenario
    result.kills = len(killer.kills)
    result.submit_kills = len(killer.cutter.kills)
    cut = [r for r in respondents if r.submit_cut]
    result.cut_submits = len(cut)
    result.cut_outcomes = {}
    for r in cut:
        outcome = r.submit_outcome or ("unfinished" if not r.completed else "?")
        result.cut_outcomes[outcome] = result.cut_outcomes.get(outcome, 0) + 1
    if killer.error:
        result.problems.append(f"killer: {killer.error}")
    if result.kills < scenario.kill_workers:
        result.problems.append(
            f"only {result.kills} of {scenario.kill_workers} kills happened during the run"
        )
    if not run.servers[0].wait_workers(timeout=30):
        result.problems.append("gunicorn did not respawn all workers")
    return [(t - 0.1, t + KILL_WINDOW) for t in killer.kills]


def _account_restart(result: Result, restarter: Restarter) -> list:
    """How long the restart took; the time window in which it explains errors."""
    result.restart_seconds = restarter.seconds
    if restarter.error:
        result.problems.append(f"PostgreSQL restart: {restarter.error}")
    elif restarter.seconds is None:
        result.problems.append("PostgreSQL was not restarted during the run")
    if restarter.window:
        return [(restarter.window[0] - 0.1, restarter.window[1])]
    return []


def _summarise_load(result: Result, metrics: Metrics, respondents: list[Respondent]) -> None:
    """Completed respondents, requests, rates and per-step latencies of the load."""
    result.completed = sum(r.completed for r in respondents)
    result.requests = metrics.requests
    if result.wall_seconds > 0:
        result.responses_per_second = result.completed / result.wall_seconds
        result.requests_per_second = metrics.requests / result.wall_seconds
    result.steps = _figures(metrics)
    result.retried_steps = metrics.retried_steps
    result.retried_submits = metrics.retried_submits
    result.problems.extend(metrics.crashes[:10])


def _check_two_instances(result: Result, run: _Run, respondents: list[Respondent]) -> None:
    """Every replayed submit answered /thanks by both instances; the rate limit shared."""
    replayed = [r for r in respondents if r.replay]
    result.replayed_submits = len(replayed)
    result.replay_ok = sum(all(s == "302 /thanks" for s in r.replay_statuses) for r in replayed)
    if result.replay_ok != result.replayed_submits:
        result.problems.append(
            f"{result.replayed_submits - result.replay_ok} replayed submits "
            "were not answered with /thanks by both instances"
        )
    shared, statuses = _probe_shared_limit(run.urls, f"{run.address_prefix}.255.254")
    if not shared:  # a fixed window may have rolled over: probe once more
        shared, statuses = _probe_shared_limit(run.urls, f"{run.address_prefix}.255.253")
    result.notes.append(
        f"shared rate limit probe (LIMIT_RESUME={PROBE_LIMIT}/hour, alternating "
        f"instances): statuses {statuses} -> {'shared' if shared else 'NOT shared'}"
    )
    if not shared:
        result.problems.append("rate limits are not shared between the instances")


def _check_database(result: Result, run: _Run, respondents: list[Respondent]) -> None:
    """The stored responses against the clients' plans; restarts and tracebacks noted."""
    if run.scenario.restart_postgres:
        wait_postgres(run.database_url)
    if run.pg_started is not None:
        _note_foreign_restart(result, run.database_url, run.pg_started, run.restarter)
    problems, result.db = verify_database(run.database_url, respondents, run.scenario.respondents)
    result.problems.extend(problems)
    for server in run.servers:
        errors = server.tail(400).count("Traceback")
        if errors:
            result.notes.append(f"{server.url}: {errors} tracebacks in {server.log_path}")


def run_scenario(
    scenario: Scenario, say=None, keep: bool = False, workdir: Path | None = None
) -> Result:
    """Set up, load, fault, verify and tear down one scenario; never raises for a FAIL.

    The run's files (SQLite database, gunicorn logs) go to ``workdir`` when given (left in
    place), else to a temporary folder removed afterwards unless ``keep``.
    """
    say = say or (lambda message: None)
    if scenario.two_instances or scenario.restart_postgres:
        scenario.backend = "postgresql"
    if scenario.backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unknown backend {scenario.backend!r}")
    result = Result(scenario)
    run = _Run(scenario, keep, workdir)
    try:
        run.set_up(say)
        metrics = Metrics()
        respondents = run.load(metrics, say, result)
        windows = []
        if run.killer is not None:
            windows += _account_kills(result, run, respondents)
        if run.restarter is not None:
            windows += _account_restart(result, run.restarter)
        _judge_events(result, metrics, windows, respondents)
        _summarise_load(result, metrics, respondents)
        if scenario.two_instances:
            _check_two_instances(result, run, respondents)
        _check_database(result, run, respondents)
    except Exception as exc:  # noqa: BLE001 - any set-up failure is a FAIL with its reason
        result.problems.append(f"run aborted: {exc!r}")
        for server in run.servers:
            result.notes.append(f"gunicorn log {server.log_path}:\n{server.tail()}")
    finally:
        run.tear_down(result)
    result.passed = not result.problems
    return result


def _note_foreign_restart(result: Result, database_url: str, before, restarter) -> None:
    """Say so when PostgreSQL was restarted during the run by something other than this run.

    The machine's cluster may be shared: another test run restarting it causes 503s that
    are not the app's fault (they still fail the run, but the report tells why).
    """
    after = postgres_started_at(database_url)
    if after is None or after == before:
        return
    ours = restarter is not None and restarter.seconds is not None
    if ours and restarter.finished_wall is not None:
        # our restart ends within seconds of pg_ctlcluster returning
        if abs(after.timestamp() - restarter.finished_wall) < restarter.seconds + 5:
            return
    result.notes.append(
        f"PostgreSQL was restarted at {after.isoformat(timespec='seconds')} by another "
        "process (not this run): errors around that moment are not the app's fault"
    )


def _judge_events(result: Result, metrics: Metrics, windows, respondents) -> None:
    """Split the clients' errors into those a deliberate fault explains and the rest."""

    def in_window(at: float) -> bool:
        return any(start <= at <= end for start, end in windows)

    unexplained = []
    for event in metrics.events:
        if event.kind in ("5xx", "transport"):
            result.errors_total += 1
            # "GET /page/1: HTTP 503" or "POST /: RemoteDisconnected: Remote end closed ..."
            what = (event.detail.split(": ") + [event.kind])[1]
            result.error_kinds[what] = result.error_kinds.get(what, 0) + 1
            # A 503 or a cut connection is what a fault may cause; a 500 is never "clear".
            if in_window(event.at) and what != "HTTP 500":
                result.errors_tolerated += 1
            else:
                unexplained.append(event)
        else:
            unexplained.append(event)
    for event in unexplained[:20]:
        where = "a deliberate fault" if in_window(event.at) else "outside any deliberate fault"
        result.problems.append(
            f"{event.kind} ({where}): respondent {event.respondent}, "
            f"instance {event.instance}, {event.detail}"
        )
    if len(unexplained) > 20:
        result.problems.append(f"... {len(unexplained) - 20} more unexplained errors")
    failed = [r for r in respondents if not r.completed]
    for r in failed[:10]:
        result.problems.append(f"respondent {r.index} did not finish: {r.failure}")
    if len(failed) > 10:
        result.problems.append(f"... {len(failed) - 10} more respondents did not finish")


# -- command line ---------------------------------------------------------------------------


def all_scenarios(respondents: int, concurrency: int, **common) -> list[Scenario]:
    """The five scenarios of issue 6, at the given size."""
    size = {"respondents": respondents, "concurrency": concurrency, **common}
    return [
        Scenario("sqlite", backend="sqlite", **size),
        Scenario("postgresql", backend="postgresql", **size),
        Scenario("kill-workers", backend="sqlite", kill_workers=10, **size),
        Scenario("restart-postgres", backend="postgresql", restart_postgres=True, **size),
        Scenario("two-instances", backend="postgresql", two_instances=True, **size),
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--help`` prints the module's description)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.loadtest",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="run the five scenarios: sqlite, postgresql, kill-workers (10 SIGKILLs on SQLite), "
        "restart-postgres, two-instances (the default without a scenario option)",
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), help="database (sqlite)")
    parser.add_argument("--respondents", type=int, default=2000, help="complete respondents (2000)")
    parser.add_argument("--concurrency", type=int, default=50, help="respondents at a time (50)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers per instance (4)")
    parser.add_argument(
        "--kill-workers", type=int, default=0, metavar="N", help="SIGKILL a worker N times"
    )
    parser.add_argument(
        "--restart-postgres", action="store_true", help="restart PostgreSQL once mid-run"
    )
    parser.add_argument(
        "--two-instances", action="store_true", help="two gunicorn instances, PostgreSQL, Redis"
    )
    parser.add_argument(
        "--replay-every",
        type=int,
        default=10,
        metavar="K",
        help="with --two-instances, send every K-th submit to both instances (10)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the respondents' answers (1)")
    parser.add_argument(
        "--time-limit", type=float, default=3600.0, help="seconds per scenario at most (3600)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    parser.add_argument("--quiet", action="store_true", help="print only the tables")
    args = parser.parse_args(argv)
    if args.respondents < 1 or args.concurrency < 1 or args.workers < 1:
        parser.error("--respondents, --concurrency and --workers must be positive")
    return args


def scenarios_from_args(args: argparse.Namespace) -> list[Scenario]:
    """The scenario the options describe, or the five of ``--all``."""
    common = {
        "workers": args.workers,
        "seed": args.seed,
        "time_limit": args.time_limit,
        "replay_every": args.replay_every,
    }
    chosen = args.backend or args.kill_workers or args.restart_postgres or args.two_instances
    if args.all or not chosen:
        return all_scenarios(args.respondents, args.concurrency, **common)
    backend = args.backend or (
        "postgresql" if args.restart_postgres or args.two_instances else "sqlite"
    )
    name = "-".join(
        part
        for part in (
            backend,
            "kill-workers" if args.kill_workers else "",
            "restart-postgres" if args.restart_postgres else "",
            "two-instances" if args.two_instances else "",
        )
        if part
    )
    return [
        Scenario(
            name,
            backend=backend,
            respondents=args.respondents,
            concurrency=args.concurrency,
            kill_workers=args.kill_workers,
            restart_postgres=args.restart_postgres,
            two_instances=args.two_instances,
            **common,
        )
    ]


def _terminate(signum, frame) -> None:
    """SIGTERM: unwind like Ctrl-C, so gunicorn is stopped and the database dropped."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios one after the other; exit 0 only if every one passed."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    scenarios = scenarios_from_args(args)

    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    results = []
    try:
        for scenario in scenarios:
            say(f"== {scenario.name}: {scenario.describe()}")
            result = run_scenario(scenario, say=say, keep=args.keep)
            results.append(result)
            print(result.report(), flush=True)
            print(flush=True)
    except KeyboardInterrupt:
        print("interrupted: gunicorn stopped, run databases removed", file=sys.stderr)
        print("FAIL (interrupted)", flush=True)
        return 130
    passed = all(r.passed for r in results)
    if len(results) > 1:
        print(
            "summary: "
            + ", ".join(f"{r.scenario.name} {'PASS' if r.passed else 'FAIL'}" for r in results)
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps([r.as_dict() for r in results], indent=2), encoding="utf-8"
        )
    print("PASS" if passed else "FAIL", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
