"""The load client: scripted respondents over plain HTTP (standard library only).

Each :class:`Respondent` draws its answers from its own seeded random generator and
remembers them, so the database can be checked against exactly what was sent. A
:class:`Browser` keeps the session cookie and reads the CSRF token of every form, like
a browser would. A cut-off step (connection reset, 500/502/503/504) is retried a
bounded number of times, always starting again from the page's GET so that the form
carries a fresh CSRF token.
"""

from __future__ import annotations

import http.client
import random
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from benchmarks.common import CSRF_RE
from survey.catalog import Catalog
from survey.forms import example_name, met_name, rating_name
from survey.models import COMPANY_KINDS
from survey.questions import BACKGROUND, KIND_BACKGROUND, WORKED_IN_KINDS

SESSION_COOKIE = "survey_session"
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
SELECT_FIELDS = frozenset({"industry", "region"})  # the other background questions are radios


class TransportError(Exception):
    """The connection failed or was cut before a complete HTTP response arrived."""


class Retryable(Exception):
    """A step failed in a way a browser's user would answer by trying again."""


class StepFailed(Exception):
    """A step went wrong in a way no retry can mend (a bug or a wrong expectation)."""


@dataclass(frozen=True)
class Reply:
    """An HTTP response as a respondent reads it: status, redirect target, body."""

    status: int
    location: str
    text: str


@dataclass
class ErrorEvent:
    """One failed attempt (or a given-up step) as a client saw it."""

    at: float  # time.monotonic()
    respondent: int
    step: str
    kind: str  # "5xx", "transport", "unexpected", "gave_up"
    detail: str
    instance: int


class Metrics:
    """Thread-safe latencies per step and error events of one run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.latency: dict[str, list[float]] = {}
        self.events: list[ErrorEvent] = []
        self.requests = 0
        self.retried_steps = 0
        self.retried_submits = 0
        self.crashes: list[str] = []

    def record_respondent(self, seconds: float) -> None:
        """End-to-end time of one completed respondent (not a request)."""
        with self._lock:
            self.latency.setdefault("respondent", []).append(seconds)

    def crash(self, message: str) -> None:
        """A client thread died of a harness bug; the run lists it among its problems."""
        with self._lock:
            self.crashes.append(message)

    def record(self, step: str, seconds: float) -> None:
        """One request's latency under its step (and one more request)."""
        with self._lock:
            self.latency.setdefault(step, []).append(seconds)
            self.requests += 1

    def error(self, event: ErrorEvent) -> None:
        """One failed attempt (and one more request)."""
        with self._lock:
            self.events.append(event)
            self.requests += 1

    def retried(self, step: str) -> None:
        """Count a step that is tried again (retried submits also apart)."""
        with self._lock:
            self.retried_steps += 1
            if step == "submit":
                self.retried_submits += 1


class Browser:
    """One respondent's HTTP client: a cookie jar of one host and one request at a time."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 60.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the load client talks to loopback only, not {base_url!r}")
        self.base_url = base_url
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.cookies: dict[str, str] = {}

    def copy_to(self, base_url: str) -> Browser:
        """The same browser (cookies, headers) pointed at another instance."""
        other = Browser(base_url, self.timeout, self.headers)
        other.cookies = dict(self.cookies)
        return other

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        cut: Callable[[int], Callable[[], None] | None] | None = None,
    ) -> Reply:
        """Send one request; raise :class:`TransportError` on any connection failure.

        ``cut`` (the fault injector's) is called with the local port once connected and
        may return a function, which is called the moment the request has been sent.
        """
        headers = {"Accept-Language": "ru", "Connection": "close", **self.headers}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            fire = None
            if cut is not None:
                conn.connect()
                fire = cut(conn.sock.getsockname()[1])
            try:
                conn.request(method, path, body=body, headers=headers)
            finally:
                if fire is not None:  # never leave a frozen worker behind
                    fire()
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            location = resp.getheader("Location", "")
            cookies = resp.headers.get_all("Set-Cookie") or []
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            conn.close()
        for header in cookies:
            self._store_cookie(header)
        return Reply(status, location, data.decode("utf-8", "replace"))

    def _store_cookie(self, header: str) -> None:
        jar = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            if morsel["max-age"] == "0" or not morsel.value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value


def step_label(path: str) -> str:
    """The latency bucket of a path: every practice page shares one."""
    return "/page/<n>" if path.startswith("/page/") else path


def csrf_token(html: str) -> str:
    """The CSRF token of a page's form; :class:`StepFailed` if it has none."""
    match = CSRF_RE.search(html)
    if match is None:
        raise StepFailed("page has no CSRF token")
    return match.group(1)


def path_of(location: str) -> str:
    """The path of a redirect target (absolute or relative)."""
    return urlsplit(location).path


def read_resume_token(cookie_value: str, secret_key: str) -> str | None:
    """The resume token inside a Flask session cookie, its signature checked."""
    from flask.sessions import SecureCookieSessionInterface
    from itsdangerous import BadSignature, URLSafeTimedSerializer

    iface = SecureCookieSessionInterface()
    serializer = URLSafeTimedSerializer(
        secret_key,
        salt=iface.salt,
        serializer=iface.serializer,
        signer_kwargs={
            "key_derivation": iface.key_derivation,
            "digest_method": iface.digest_method,
        },
    )
    try:
        data = serializer.loads(cookie_value)
    except BadSignature:
        return None
    token = data.get("resume_token")
    return token if isinstance(token, str) else None


@dataclass
class Plan:
    """Everything one respondent will send, drawn from a seeded generator."""

    profile: dict[str, str]  # form data as posted
    stored_profile: dict[str, str | None]  # what the database must hold
    kinds: tuple[str, ...]
    pages: list[dict[str, str]]  # form data per practice page
    # (practice, kind) -> (met, rating, rating_mixed) as the database must hold them
    answers: dict[tuple[str, str], tuple[str, int | None, bool]]
    examples: dict[tuple[str, str], str]


def make_plan(catalog: Catalog, seed: int, index: int) -> Plan:
    """The answers of respondent ``index`` of a run seeded with ``seed``."""
    rng = random.Random(f"loadtest:{seed}:{index}")
    profile: dict[str, str] = {}
    stored: dict[str, str | None] = {}
    for question in BACKGROUND:
        if not question.required and rng.random() < 0.3:
            if question.field in SELECT_FIELDS:
                profile[question.field] = ""
            stored[question.field] = None
            continue
        code = rng.choice(question.codes())
        profile[question.field] = code
        stored[question.field] = code
    kinds = WORKED_IN_KINDS[stored["worked_in"]]
    # Each kind's block: both sent, as a browser without JavaScript does; only the kinds
    # worked in are stored.
    for kind, questions in KIND_BACKGROUND.items():
        for question in questions:
            code = rng.choice(question.codes())
            profile[question.field] = code
            stored[question.field] = code if kind in kinds else None
    pages: list[dict[str, str]] = []
    answers: dict[tuple[str, str], tuple[str, int | None, bool]] = {}
    examples: dict[tuple[str, str], str] = {}
    for page in catalog.pages:
        data: dict[str, str] = {}
        for practice in page.practices:
            for kind in COMPANY_KINDS:
                if kind not in kinds:
                    answers[(practice.id, kind)] = ("na", None, False)
                    continue
                scale = ("applied", "existed", "no", "dk", "not_my_role")
                weights = (4, 2, 3, 1, 1 if practice.functions else 0)
                met = rng.choices(scale, weights=weights)[0]
                rating = (
                    rng.choice(("1", "2", "3", "4", "5", "mixed")) if met == "applied" else None
                )
                mixed = rating == "mixed"
                answers[(practice.id, kind)] = (
                    met,
                    int(rating) if rating and not mixed else None,
                    mixed,
                )
                data[met_name(practice.id, kind)] = met
                if rating is not None:
                    data[rating_name(practice.id, kind)] = rating
            for kind in kinds:  # one example box per kind worked in
                if rng.random() < 0.08:
                    number = rng.randint(1, 9999)
                    text = f"Пример {index}/{practice.id}: премия <b>&</b> «бонус» {number}"
                    examples[(practice.id, kind)] = text
                    data[example_name(practice.id, kind)] = text
                else:
                    data[example_name(practice.id, kind)] = ""
        pages.append(data)
    # The fictitious practice is answered like the others but stored apart (never in answer).
    fictitious = {p.id for p in catalog.fictitious}
    answers = {cell: value for cell, value in answers.items() if cell[0] not in fictitious}
    examples = {cell: text for cell, text in examples.items() if cell[0] not in fictitious}
    return Plan(profile, stored, kinds, pages, answers, examples)


class SubmitCutter:
    """Cut submits in flight: SIGKILL the worker serving a respondent's POST /submit.

    The fault injector asks for a cut with :meth:`request`; the next respondent to submit
    claims it. Once its connection is open, the worker that accepted it is looked up (it
    is waiting for the request, so there is no race). Every other cut (the 1st, 3rd, ...)
    freezes that worker with SIGSTOP before the request is sent and SIGKILLs it right
    after, so the submit is certain to be cut; the others send the request and SIGKILL
    the worker 0-10 ms later: before, during or just after the submit's transaction (or,
    on a busy machine, after the answer: a miss). A cut that finds no worker is handed on
    to the next submit.
    """

    def __init__(
        self,
        find_worker: Callable[[int], int | None],
        signal_worker: Callable[[int, int], bool],
        seed: int = 1,
    ):
        self._find_worker = find_worker
        self._signal = signal_worker
        self._lock = threading.Lock()
        self._pending = 0
        self._aimed = 0
        self._rng = random.Random(f"cut:{seed}")
        self.kills: list[float] = []

    def request(self) -> None:
        """Ask for one more cut; the next respondent to submit claims it."""
        with self._lock:
            self._pending += 1

    @property
    def pending(self) -> int:
        """Cuts asked for and not yet claimed."""
        with self._lock:
            return self._pending

    def claim(self) -> Callable[[int], Callable[[], None] | None] | None:
        """Take a pending cut: a function of the connection's local port (None: none pending)."""
        with self._lock:
            if self._pending == 0:
                return None
            self._pending -= 1
        return self._aim

    def _aim(self, client_port: int) -> Callable[[], None] | None:
        deadline = time.monotonic() + 5.0
        pid = None
        while pid is None and time.monotonic() < deadline:  # bounded; accept is quick
            pid = self._find_worker(client_port)
            if pid is None:
                time.sleep(0.005)
        if pid is None:
            with self._lock:
                self._pending += 1
            return None
        with self._lock:
            freeze = self._aimed % 2 == 0
            self._aimed += 1
            delay = 0.0 if freeze else self._rng.uniform(0.0, 0.01)
        if freeze:
            self._signal(pid, signal.SIGSTOP)

        def fire() -> None:
            time.sleep(delay)
            at = time.monotonic()
            if self._signal(pid, signal.SIGKILL):
                with self._lock:
                    self.kills.append(at)
            else:
                with self._lock:
                    self._pending += 1

        return fire


@dataclass
class Respondent:
    """One scripted respondent: its plan, its browser, and what happened to it."""

    index: int
    plan: Plan
    browser: Browser
    instance: int
    metrics: Metrics
    secret_key: str
    max_attempts: int = 8
    backoff: float = 0.25
    replay: list[Browser] = field(default_factory=list)  # submit to all of these at once
    cutter: SubmitCutter | None = None  # kills the worker serving a submit, when asked
    token: str | None = None
    submit_cut: bool = False  # a submit of this respondent got no answer
    submit_outcome: str = ""  # then: "stored before the cut" or "sent again"
    completed: bool = False
    failure: str = ""
    replay_statuses: list[str] = field(default_factory=list)

    # -- one request, timed ---------------------------------------------------------------

    def _send(self, step: str, method: str, path: str, form=None, browser=None, cut=None) -> Reply:
        browser = browser or self.browser
        started = time.perf_counter()
        try:
            reply = browser.request(method, path, form, cut)
        except TransportError as exc:
            self._event(step, "transport", f"{method} {path}: {exc}")
            raise Retryable(str(exc)) from exc
        elapsed = time.perf_counter() - started
        if reply.status in RETRYABLE_STATUS:
            self._event(step, "5xx", f"{method} {path}: HTTP {reply.status}")
            raise Retryable(f"HTTP {reply.status}")
        self.metrics.record(f"{method} {step_label(path)}", elapsed)
        return reply

    def _event(self, step: str, kind: str, detail: str) -> None:
        self.metrics.error(
            ErrorEvent(time.monotonic(), self.index, step, kind, detail, self.instance)
        )

    def _expect(self, reply: Reply, status: int, target: str | None = None) -> None:
        if reply.status != status or (target and path_of(reply.location) != target):
            snippet = re.sub(r"\s+", " ", reply.text)[:300]
            got = f"{reply.status} {reply.location}".strip()
            raise StepFailed(f"expected {status} {target or ''}, got {got}: {snippet}")

    # -- steps ------------------------------------------------------------------------------

    def _retrying(self, step: str, action) -> None:
        """Run a step, retrying a cut-off or 5xx up to ``max_attempts`` times in all."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                action()
                return
            except Retryable:
                if attempt == self.max_attempts:
                    break
                self.metrics.retried(step)
                time.sleep(min(3.0, self.backoff * 2 ** (attempt - 1)))
        self._event(step, "gave_up", f"{step}: still failing after {self.max_attempts} attempts")
        raise StepFailed(f"{step}: gave up after {self.max_attempts} attempts")

    def _form_step(self, step: str, path: str, data: dict[str, str], target: str | None) -> None:
        def action() -> None:
            page = self._send(step, "GET", path)
            self._expect(page, 200)
            reply = self._send(step, "POST", path, {"csrf_token": csrf_token(page.text), **data})
            self._expect(reply, 302, target)

        self._retrying(step, action)

    def _submit_step(self) -> None:
        def action() -> None:
            review = self._send("review", "GET", "/review")
            if review.status == 302 and path_of(review.location) == "/thanks":
                self.submit_outcome = "stored before the cut"
                return  # an earlier, cut-off submit went through
            if self.submit_cut:
                self.submit_outcome = "sent again"
            self._expect(review, 200)
            form = {"csrf_token": csrf_token(review.text)}
            if self.replay:
                self._replayed_submit(form)
                return
            cut = self.cutter.claim() if self.cutter is not None else None
            try:
                reply = self._send("submit", "POST", "/submit", form, cut=cut)
            except Retryable:
                self.submit_cut = True
                raise
            self._expect(reply, 302, "/thanks")

        self._retrying("submit", action)

    def _replayed_submit(self, form: dict[str, str]) -> None:
        """Send the same submit to every instance at once; each must answer with /thanks."""
        for browser in self.replay:  # every instance gets the same session cookie
            browser.cookies = dict(self.browser.cookies)
        replies: list[Reply | Exception | None] = [None] * len(self.replay)
        barrier = threading.Barrier(len(self.replay))

        def send(i: int) -> None:
            try:
                barrier.wait(timeout=10)
                replies[i] = self._send("submit", "POST", "/submit", form, self.replay[i])
            except Exception as exc:  # noqa: BLE001 - reported below
                replies[i] = exc

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(self.replay))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        self.replay_statuses = [
            f"{r.status} {path_of(r.location)}" if isinstance(r, Reply) else repr(r)
            for r in replies
        ]
        for reply in replies:
            if isinstance(reply, Retryable):
                raise reply
            if not isinstance(reply, Reply):
                raise StepFailed(f"replayed submit: {self.replay_statuses}")
            self._expect(reply, 302, "/thanks")
        for browser in self.replay:  # keep the freshest session cookie
            self.browser.cookies.update(browser.cookies)

    def _thanks_step(self) -> None:
        def action() -> None:
            self._expect(self._send("thanks", "GET", "/thanks"), 200)

        self._retrying("thanks", action)

    def run(self, catalog: Catalog) -> bool:
        """Play the whole questionnaire; return whether it ended on the thank-you page."""
        try:
            self._form_step("consent", "/", {"adult": "y", "agree": "y"}, "/profile")
            cookie = self.browser.cookies.get(SESSION_COOKIE, "")
            self.token = read_resume_token(cookie, self.secret_key)
            if not self.token:
                raise StepFailed("no resume token in the session after consent")
            # Each respondent has their own random page order: the pages are posted in
            # catalogue order (each URL names its page), so any redirect target is right.
            self._form_step("profile", "/profile", self.plan.profile, None)
            for number, data in enumerate(self.plan.pages, start=1):
                self._form_step("page", f"/page/{number}", data, None)
            self._submit_step()
            self._thanks_step()
        except StepFailed as exc:
            self.failure = str(exc)
            if not str(exc).endswith("attempts"):
                self._event("flow", "unexpected", str(exc))
            return False
        self.completed = True
        return True
