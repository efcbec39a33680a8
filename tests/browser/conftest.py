"""Browser tests: the app under gunicorn on a loopback port, driven by Debian's Chromium.

Without Chromium or Playwright the tests in this folder are skipped with a clear message;
with ``REQUIRE_BROWSER=1`` (CI) they fail instead. Every page of every journey is audited
with axe-core (``tests/browser/vendor/axe.min.js``, vendored by ``make install-dev``) and
saved as a screenshot under ``tests/artifacts/screenshots/<journey>/`` for review.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from survey.catalog import load_catalog

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import sync_playwright
except ImportError:  # the dev extra is not installed
    sync_playwright = None
    PlaywrightTimeoutError = TimeoutError

ROOT = Path(__file__).resolve().parents[2]
AXE_PATH = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
REQUIRED = os.environ.get("REQUIRE_BROWSER") == "1"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING_IMPACTS = ("serious", "critical")
RUN_AXE = """async (tags) => {
  const result = await window.axe.run(document, {
    runOnly: {type: "tag", values: tags},
    resultTypes: ["violations"],
  });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => ({
      target: n.target.map(String).join(" "),
      summary: n.failureSummary || "",
    })),
  }));
}"""
SCRIPT_TAG = re.compile(r"<script\b[^>]*>.*?</script>", re.IGNORECASE | re.DOTALL)

RESEARCHER_EMAIL = "r@example.org"
CATALOG = load_catalog(ROOT / "survey" / "practices.yaml")
# The fictitious practice (over-claiming check) is answered like any other but stored apart:
# never in the answer table, and an example typed for it is discarded.
FICTITIOUS = frozenset(p.id for p in CATALOG.fictitious)
# Practices that exist only for some job functions offer "not applicable to my role" after
# the scale; the journeys give that answer to the first of them (a sales practice).
FUNCTION_PRACTICES = frozenset(p.id for p in CATALOG.practices if p.functions)
NOT_MY_ROLE_PRACTICE = min(FUNCTION_PRACTICES)
DEMO_RESPONDENTS = 300
# The options of a "did it exist" question in their order on the page, and of a rating.
MET_CHOICES = ("applied", "existed", "no", "dk", "not_my_role")
RATING_CHOICES = ("1", "2", "3", "4", "5", "mixed")
KINDS_OF = {"ru_only": ("ru",), "foreign_only": ("foreign",), "both": ("ru", "foreign")}
# What the journeys answer in each kind of company's background block.
BLOCK_ANSWERS = {
    "ru": {
        "ru_years": "6_10",
        "ru_last_year": "2014_2021",
        "ru_employers": "2_3",
        "ru_role_level": "line_manager",
        "ru_function": "sales",
    },
    "foreign": {
        "foreign_years": "1_2",
        "foreign_last_year": "2022_on",
        "foreign_employers": "1",
        "foreign_role_level": "specialist",
        "foreign_function": "it",
    },
}
SERVER_START_SECONDS = 180

# One process runs the same CLI commands a deployment runs (`flask --app survey <command>`):
# each `flask` start imports pandas, scipy, statsmodels and plotly, which on a loaded machine
# takes over ten seconds, so four separate starts would eat a third of the suite's budget.
SETUP_SCRIPT = """
import sys
from survey import create_app

password = sys.stdin.read()
app = create_app()
app.app_context().push()  # as the `flask` command does for every command
runner = app.test_cli_runner()
steps = [
    (["init-db"], None),
    (["load-catalog"], None),
    (["seed-demo", "--respondents", sys.argv[1], "--seed", "1"], None),
    (["create-researcher", sys.argv[2], "--password-stdin"], password + "\\n"),
]
for args, stdin in steps:
    result = runner.invoke(args=args, input=stdin)
    print("$ flask --app survey", " ".join(args), "\\n" + result.output, flush=True)
    if result.exit_code != 0:
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        sys.exit(result.exit_code or 1)
"""


def unavailable(reason: str):
    """Skip the browser tests, or fail them when the environment promises a browser."""
    if REQUIRED:
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


def chromium_executable() -> str | None:
    """Debian's Chromium (Playwright's own browser download is not used)."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


@cache
def axe_source() -> str | None:
    """axe-core's source, or None when it was not vendored (no npm at install time)."""
    if not AXE_PATH.is_file():
        return None
    return AXE_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session."""
    if sync_playwright is None:
        unavailable("the Python package playwright is not installed (make install-dev)")
    executable = chromium_executable()
    if executable is None:
        unavailable(f"Chromium is not installed ({CHROMIUM} or chromium on PATH)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class LiveServer:
    url: str
    database: Path
    log: Path
    password: str

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a read-only query on the app's SQLite database."""
        with closing(sqlite3.connect(self.database)) as conn:
            return conn.execute(sql, params).fetchall()

    def last_response_id(self) -> int:
        return self.query("SELECT coalesce(max(id), 0) FROM response")[0][0]

    def real_responses(self) -> int:
        return self.query("SELECT count(*) FROM response WHERE is_demo = 0")[0][0]

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_plotly() -> None:
    """The dashboard loads static/vendor/plotly.min.js (copied there by `make install`)."""
    target = ROOT / "static" / "vendor" / "plotly.min.js"
    if target.is_file():
        return
    from analysis.figures import plotly_js_path

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(plotly_js_path(), target)


def _gunicorn_options() -> list[str]:
    """``--no-control-socket`` where gunicorn has it: recent versions otherwise open one
    control socket (``~/.gunicorn/gunicorn.ctl``) shared by every gunicorn of the user."""
    from gunicorn import config

    if any("--no-control-socket" in (s.cli or ()) for s in config.KNOWN_SETTINGS):
        return ["--no-control-socket"]
    return []


def _wait_until_serving(url: str, process: subprocess.Popen, log: Path) -> None:
    """Until the landing page answers 200: gunicorn binds before its workers are ready."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{tail}", pytrace=False)
        try:
            with urllib.request.urlopen(url + "/", timeout=10) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    pytest.fail(f"gunicorn did not answer on {url} within {SERVER_START_SECONDS} s", pytrace=False)


@pytest.fixture(scope="session")
def live_server(browser, tmp_path_factory):
    """The app under gunicorn (2 workers) on a free loopback port with a temporary SQLite file.

    Depends on ``browser`` so that a machine without a browser skips before starting anything.
    """
    _ensure_plotly()
    folder = tmp_path_factory.mktemp("browser-app")
    database = folder / "survey.db"
    password = secrets.token_urlsafe(16)
    env = dict(os.environ)
    # The app under test must not reach for a shared Redis or another catalogue.
    for name in ("REDIS_URL", "RATELIMIT_STORAGE_URI", "CATALOG_PATH", "FLASK_APP"):
        env.pop(name, None)
    env.update(
        DATABASE_URL=f"sqlite:///{database}",
        INSTANCE_PATH=str(folder / "instance"),
        SECRET_KEY=secrets.token_hex(32),
        RATELIMIT_ENABLED="0",
        MIN_COMPLETION_SECONDS="0",
    )
    setup = subprocess.run(
        [sys.executable, "-c", SETUP_SCRIPT, str(DEMO_RESPONDENTS), RESEARCHER_EMAIL],
        input=password,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if setup.returncode != 0:
        pytest.fail(f"setting up the database failed:\n{setup.stdout}\n{setup.stderr}")

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env["PUBLIC_URL"] = url  # the personal links point at this server
    log = folder / "gunicorn.log"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with open(log, "w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            [
                str(gunicorn),
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logfile",
                "-",
                *_gunicorn_options(),
                "survey:create_app()",
            ],
            env=env,
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_serving(url, process, log)
        yield LiveServer(url=url, database=database, log=log, password=password)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Journey:
    """One person's way through the app: a browser context, its page, and what went wrong.

    Records console errors, uncaught page errors, failed requests and HTTP responses >= 400;
    :meth:`check` screenshots and audits the current page; :meth:`finish` asserts that
    nothing went wrong on the way.
    """

    def __init__(self, browser, server: LiveServer, name: str, *, viewport: dict, **options):
        self.browser = browser
        self.server = server
        self.name = name
        self.javascript = options.get("java_script_enabled", True)
        mobile = viewport["width"] < 600
        self.options = {
            "base_url": server.url,
            "viewport": viewport,
            "is_mobile": mobile,
            "has_touch": mobile,
            "locale": "ru-RU",
            **options,
        }
        self.problems: list[str] = []
        self.failed_requests: list[tuple[str, str, str]] = []
        self.downloads: set[str] = set()
        self.violations: list[str] = []
        self.contexts: list = []
        self.shots = 0
        self.folder = SCREENSHOTS / name
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self._mirror_page = None
        self.answers: dict[tuple[str, str], tuple[str, int | str | None]] = {}
        self.examples: dict[tuple[str, str], str] = {}
        # What the pages showed, in order: (page number, practice ids, kinds of the first).
        self.shown: list[tuple[int, list[str], list[str]]] = []
        self._practice_index: dict[str, int] = {}
        self.page = self.open()

    # -- browser -------------------------------------------------------------------------

    def open(self):
        """A fresh browser context (no cookies) and its page, watched for problems."""
        context = self.browser.new_context(**self.options)
        self.contexts.append(context)
        page = context.new_page()
        self._watch(page)
        self.page = page
        return page

    def reopen(self):
        """Close the browser context (the person closes the browser) and open a new one."""
        context = self.page.context
        context.close()
        self.contexts.remove(context)
        return self.open()

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()

    def _watch(self, page) -> None:
        def console(message):
            if message.type == "error":
                self.problems.append(f"console error on {page.url}: {message.text}")

        def response(resp):
            if resp.status >= 400:
                self.problems.append(f"HTTP {resp.status} for {resp.request.method} {resp.url}")

        page.on("console", console)
        page.on("pageerror", lambda exc: self.problems.append(f"JS error on {page.url}: {exc}"))
        page.on(
            "requestfailed",
            lambda req: self.failed_requests.append((req.method, req.url, req.failure or "")),
        )
        page.on("response", response)
        page.on("download", lambda download: self.downloads.add(download.url))

    def goto(self, path: str):
        return self.page.goto(path)

    # -- checks on every page ------------------------------------------------------------

    def check(self, label: str) -> None:
        """Screenshot the page at the journey's viewport and audit it with axe-core."""
        page = self.page
        page.wait_for_load_state("load")
        self.shots += 1
        path = self.folder / f"{self.shots:02d}-{label}.png"
        try:
            page.screenshot(path=path, full_page=True)
        except PlaywrightTimeoutError:
            # Chromium sometimes stalls one capture (seen once in CI, with fonts already
            # loaded): the picture is an artifact, so take it again once before failing.
            page.wait_for_load_state("networkidle")
            page.screenshot(path=path, full_page=True, timeout=60_000)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if overflow > 0:
            self.problems.append(
                f"{label}: the page scrolls sideways by {overflow}px at "
                f"{self.options['viewport']['width']}px ({page.url})"
            )
        self.audit(label)

    def audit(self, label: str) -> None:
        """Run axe-core (WCAG 2.0/2.1 A and AA) and record serious or critical violations."""
        source = axe_source()
        if source is None:
            if REQUIRED:
                pytest.fail(f"REQUIRE_BROWSER=1 but {AXE_PATH} is missing", pytrace=False)
            return  # reported once by test_axe_core_is_vendored
        target = self.page if self.javascript else self._mirror()
        # page.evaluate goes through the DevTools protocol, which the app's CSP
        # (script-src 'self') does not restrict, so the CSP stays enforced for the app itself.
        if not target.evaluate("() => typeof window.axe === 'object'"):
            target.evaluate(source + "\n;true")
        for violation in target.evaluate(RUN_AXE, AXE_TAGS):
            nodes = "; ".join(n["target"] for n in violation["nodes"][:8])
            line = (
                f"{label} ({self.page.url}): {violation['id']} [{violation['impact']}] "
                f"{violation['help']} — {len(violation['nodes'])} node(s): {nodes}"
            )
            print("axe:", line, "\n   ", violation["nodes"][0]["summary"].replace("\n", " "))
            if violation["impact"] in BLOCKING_IMPACTS:
                self.violations.append(line)

    def _mirror(self):
        """A JavaScript-enabled page showing exactly the HTML this script-less page shows.

        With scripting disabled axe cannot run (its timers never fire), so the page's HTML,
        scripts removed, is replayed in a second context at the same origin (served at the
        page's address the first time, later written with set_content), where the stylesheet
        applies as it does for the respondent. Its own requests are not the journey's, so
        they are not watched.
        """
        url, html = self.page.url, SCRIPT_TAG.sub("", self.page.content())
        if self._mirror_page is not None:
            self._mirror_page.set_content(html)  # same origin, so the stylesheet still loads
            return self._mirror_page
        context = self.browser.new_context(**{**self.options, "java_script_enabled": True})
        self.contexts.append(context)
        mirror = self._mirror_page = context.new_page()

        def serve(route):
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

        def same(address):
            return address == url

        mirror.route(same, serve)
        try:
            mirror.goto(url)
        finally:
            mirror.unroute(same, serve)
        return mirror

    def finish(self) -> None:
        """Fail with everything that went wrong on the way, if anything did."""
        found = list(self.problems)
        for method, url, failure in self.failed_requests:
            # Chromium hands a navigation that turns out to be an attachment to its download
            # manager and reports the navigation request itself as aborted: not a failure.
            # The same for the favicon, which Chromium fetches by itself after a page loads
            # and cancels when the journey moves on first (a 404 would still be reported by
            # the response check above).
            aborted = failure == "net::ERR_ABORTED"
            if aborted and (url in self.downloads or url.endswith("/static/favicon.svg")):
                continue
            found.append(f"request failed: {method} {url} ({failure})")
        found += [f"accessibility: {v}" for v in self.violations]
        assert not found, f"{len(found)} problem(s) in journey {self.name}:\n" + "\n".join(found)

    # -- the questionnaire ---------------------------------------------------------------

    def submit_and_wait(self, button, url_pattern) -> None:
        """Click a submit button and wait for the page the server redirects to."""
        button.click()
        self.page.wait_for_url(url_pattern)

    def consent(self) -> None:
        page = self.page
        page.check("#adult")
        page.check("#agree")
        self.submit_and_wait(page.locator("form.consent-form button[type=submit]"), "**/profile")

    def profile(self, worked_in: str = "both", region: str | None = "moscow") -> None:
        """Answer the background page, each kind's block as a person does.

        Without JavaScript both blocks show (with a hint) and only the kinds worked in are
        filled in. With it, the blocks follow the "worked in" answer: the journey first
        says "both" and fills both blocks, then gives its real answer, and the block of a
        kind it did not work in hides, its inputs disabled (so they are not sent).
        """
        page = self.page
        kinds = KINDS_OF[worked_in]
        hint = page.locator(".kind-block-hint")
        if self.javascript:
            assert not hint.is_visible()
            for kind in KINDS_OF["both"]:  # nothing chosen yet: no block
                assert not page.is_visible(f"fieldset#kind-block-{kind}")
            page.check('input[name="worked_in"][value="both"]')
        else:
            assert hint.is_visible()
        for kind in KINDS_OF["both"]:
            assert page.is_visible(f"fieldset#kind-block-{kind}")
            if self.javascript or kind in kinds:
                for name, value in BLOCK_ANSWERS[kind].items():
                    page.check(f'input[name="{name}"][value="{value}"]')
        for name, value in (
            ("worked_in", worked_in),
            ("current_employer", "ru"),
            ("company_size", "250_999"),
            ("role_level", "specialist"),
            ("job_function", "sales"),
            ("experience_band", "6_10"),
        ):
            page.check(f'input[name="{name}"][value="{value}"]')
        if self.javascript:
            for kind in KINDS_OF["both"]:
                block = f"fieldset#kind-block-{kind}"
                assert page.is_visible(block) == (kind in kinds)
                disabled = page.eval_on_selector_all(
                    f"{block} input", "els => els.map(e => e.disabled)"
                )
                assert set(disabled) == {kind not in kinds}
        page.select_option("#industry", "it")
        if region:
            page.select_option("#region", region)
        self.check("profile-answered")
        self.submit_and_wait(self.next_button(), re.compile(r"/page/\d+$"))

    def stored_blocks(self, response_id: int) -> dict[str, str | None]:
        """The job function and both kinds' block columns of a stored response."""
        columns = ["job_function", *BLOCK_ANSWERS["ru"], *BLOCK_ANSWERS["foreign"]]
        row = self.server.query(
            f"SELECT {', '.join(columns)} FROM response WHERE id = ?",  # noqa: S608 - fixed names
            (response_id,),
        )[0]
        return dict(zip(columns, row, strict=True))

    def next_button(self):
        return self.page.locator('button[name="action"][value="next"]')

    def cells(self) -> list[tuple[str, str]]:
        """(practice id, company kind) of every 'did it exist' question on this page."""
        ids = self.page.eval_on_selector_all("fieldset.met", "els => els.map(e => e.id)")
        return [tuple(i.rsplit("__", 2)[:2]) for i in ids]

    def plan(self, practice_id: str, kind: str) -> tuple[str, int | str | None]:
        """The answer this journey gives: applied / existed / no / don't know in turn (and
        "not applicable to my role" for one sales practice); after "applied" a rating of
        1..5 or "mixed" in turn."""
        index = self._practice_index.setdefault(practice_id, len(self._practice_index))
        if practice_id == NOT_MY_ROLE_PRACTICE:
            return "not_my_role", None
        met = MET_CHOICES[(index + (kind == "foreign")) % 4]
        if met != "applied":
            return met, None
        rating = RATING_CHOICES[(index // 4) % len(RATING_CHOICES)]
        return met, rating if rating == "mixed" else int(rating)

    def record_page(self) -> None:
        """Note the page's number, its practices and kinds in the order they are shown."""
        number = int(re.search(r"/page/(\d+)$", self.page.url).group(1))
        sections = self.page.eval_on_selector_all(
            "section.practice", "els => els.map(e => e.id.slice('practice-'.length))"
        )
        first = [kind for pid, kind in self.cells() if pid == sections[0]]
        self.shown.append((number, sections, first))

    def answer_page(self, example: str | None = None) -> None:
        """Answer every question on a practice page by clicking."""
        page = self.page
        cells = self.cells()
        assert cells, f"no practice questions on {page.url}"
        self.record_page()
        for practice_id, kind in cells:
            met, rating = self.plan(practice_id, kind)
            page.check(f'input[name="{practice_id}__{kind}__met"][value="{met}"]')
            if rating is not None:
                page.check(f'input[name="{practice_id}__{kind}__rating"][value="{rating}"]')
            self.answers[(practice_id, kind)] = (met, rating)
        if example:  # in the box of the first kind shown for the first real practice
            first, kind = next((pid, kind) for pid, kind in cells if pid not in FICTITIOUS)
            page.fill(f'textarea[name="{first}__{kind}__example"]', example)
            self.examples[(first, kind)] = example

    def practice_pages(self, until: int | None = None) -> None:
        """Answer practice pages (checking each) until review, or ``until`` of them (the
        pages come in the respondent's own random order)."""
        page = self.page
        answered = 0
        while match := re.search(r"/page/(\d+)$", page.url):
            number = int(match.group(1))
            if until is not None and answered >= until:
                return
            answered += 1
            self.check(f"page-{number}")
            self.answer_page()
            self.submit_and_wait(self.next_button(), re.compile(r"/(page/\d+|review)$"))

    def review_and_submit(self) -> None:
        page = self.page
        page.wait_for_url("**/review")
        self.check("review")
        assert page.locator(".review-section.incomplete").count() == 0
        shown = page.locator(".example-text").all_inner_texts()
        assert sorted(shown) == sorted(self.examples.values())  # as typed, markup escaped
        self.submit_and_wait(page.locator("form.submit-form button[type=submit]"), "**/thanks")
        self.check("thanks")

    def stored_answers(self, response_id: int) -> dict[tuple[str, str], tuple]:
        """(practice, kind) -> (met, rating), the rating "mixed" when stored as such."""
        rows = self.server.query(
            "SELECT practice_id, company_kind, met, rating, rating_mixed FROM answer "
            "WHERE response_id = ?",
            (response_id,),
        )
        return {(p, k): (m, "mixed" if mixed else r) for p, k, m, r, mixed in rows}

    def stored_order(self, response_id: int) -> dict:
        """The question order stored with a response (``response.question_order``)."""
        (raw,) = self.server.query(
            "SELECT question_order FROM response WHERE id = ?", (response_id,)
        )[0]
        return json.loads(raw)

    def new_responses(self, after_id: int) -> list[tuple]:
        """(id, status, language, worked_in) of real responses created after ``after_id``."""
        return self.server.query(
            "SELECT id, status, language, worked_in FROM response "
            "WHERE id > ? AND is_demo = 0 ORDER BY id",
            (after_id,),
        )


@pytest.fixture
def journey(browser, live_server):
    """Start journeys: ``journey("name", viewport=PHONE, java_script_enabled=False)``."""
    started: list[Journey] = []

    def start(name: str, *, viewport: dict, **options) -> Journey:
        one = Journey(browser, live_server, name, viewport=viewport, **options)
        started.append(one)
        return one

    yield start
    for one in started:
        one.close()
