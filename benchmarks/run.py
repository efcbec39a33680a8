"""``make bench``: the platform measured against the bare limits of its own stack.

Every figure is a ratio against a baseline measured in the same run, on the same machine:
1. questionnaire pages (GET and POST of a practice page) vs a bare Flask + sqlite3 app, and
   the public results page of a published wave (a shared link: >= 200 requests/s);
2. dashboard numbers (full comparison) vs the bare SQL aggregation queries, at two sizes,
   on SQLite and PostgreSQL, plus the cached repeat;
3. export of both CSV files vs the sqlite3 shell writing the long table, with peak memory;
4. the RSS of one warmed-up gunicorn worker.
Prints one table; ``--readme`` also writes it into README.md's performance section
(``make bench`` does). ``--quick`` uses tiny sizes (the test suite runs that so this cannot rot).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from benchmarks.common import CSRF_RE, percentile
from benchmarks.load_servers import (
    BIN,
    ROOT,
    Gunicorn,
    app_env,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    postgres_base_url,
    prepare_database,
)


@dataclass
class Line:
    """One measurement of the table: ours against its baseline or target."""

    what: str
    ours: float
    baseline: float
    unit: str
    target: str
    ok: bool

    @property
    def ratio(self) -> float:
        """Ours divided by the baseline (NaN without one)."""
        return self.ours / self.baseline if self.baseline else float("nan")


# -- a minimal HTTP client with one cookie --------------------------------------------------
class Client:
    """Sequential requests to one server, keeping the session cookie."""

    def __init__(self, port: int):
        self.port = port
        self.cookie = ""

    def request(self, method: str, path: str, body: dict | None = None):
        """Send one request (``body`` as a form); return (status, text), keeping the cookie."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Cookie": self.cookie} if self.cookie else {}
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            for header, value in response.getheaders():
                if header.lower() == "set-cookie":
                    self.cookie = value.split(";", 1)[0]
            return response.status, text
        finally:
            conn.close()


def hammer(
    make_call, concurrency: int, duration: float, quantile: float = 0.95
) -> tuple[float, float]:
    """Run ``make_call(i)()`` repeatedly from ``concurrency`` threads; (requests/s, the
    ``quantile`` of the latencies in s: p95 unless asked)."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + duration
    errors = []

    def worker(i: int):
        call = make_call(i)
        local = []
        while time.monotonic() < stop:
            t = time.perf_counter()
            status = call()
            local.append(time.perf_counter() - t)
            if status >= 400:
                errors.append(status)
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. HTTP {errors[0]}")
    return len(latencies) / elapsed, percentile(latencies, quantile)


# -- 1. questionnaire pages -----------------------------------------------------------------
def _page_one_form(catalog, kinds=("ru", "foreign")) -> dict:
    from survey.forms import met_name, rating_name

    page = catalog.pages[0]
    data = {}
    for i, practice in enumerate(page.practices):
        for kind in kinds:
            applied = (i + len(kind)) % 2 == 0
            data[met_name(practice.id, kind)] = "applied" if applied else "no"
            if applied:
                data[rating_name(practice.id, kind)] = "4"
    return data


def _respondent(port: int, form: dict):
    client = Client(port)
    _, html = client.request("GET", "/")
    client.request(
        "POST", "/", {"csrf_token": CSRF_RE.search(html).group(1), "adult": "y", "agree": "y"}
    )
    _, html = client.request("GET", "/profile")
    profile = {
        "worked_in": "both",
        "current_employer": "ru",
        "industry": "it",
        "company_size": "50_249",
        "role_level": "specialist",
        "job_function": "it",
        "experience_band": "3_5",
        **{
            f"{kind}_{name}": value
            for kind in ("ru", "foreign")
            for name, value in (
                ("years", "3_5"),
                ("last_year", "2022_on"),
                ("employers", "1"),
                ("role_level", "specialist"),
                ("function", "it"),
            )
        },
    }
    client.request("POST", "/profile", {"csrf_token": CSRF_RE.search(html).group(1), **profile})
    _, html = client.request("GET", "/page/1")
    token = CSRF_RE.search(html).group(1)
    return client, {"csrf_token": token, **form}


def bench_pages(tmp: Path, workers: int, concurrency: int, duration: float) -> list[Line]:
    """Practice page GET and POST: our app vs the bare Flask + sqlite3 app."""
    from survey.catalog import load_catalog

    catalog = load_catalog(ROOT / "survey" / "practices.yaml")
    form = _page_one_form(catalog)
    env = app_env(f"sqlite:///{tmp / 'pages.db'}", tmp / "instance", secrets.token_hex(16))
    prepare_database(env, tmp / "pages.log")
    ours = Gunicorn(env, tmp / "pages-gunicorn.log", workers=workers)
    ours.start()
    try:
        clients = [_respondent(ours.port, form) for _ in range(concurrency)]
        page_bytes = len(clients[0][0].request("GET", "/page/1")[1].encode())
        get = hammer(
            lambda i: lambda: clients[i][0].request("GET", "/page/1")[0], concurrency, duration
        )
        post = hammer(
            lambda i: lambda: clients[i][0].request("POST", "/page/1", clients[i][1])[0],
            concurrency,
            duration,
        )
    finally:
        ours.stop()
    rows = 2 * len(catalog.pages[0].practices)
    bare_env = {
        **os.environ,
        "BARE_DB": str(tmp / "bare.db"),
        "BARE_ROWS": str(rows),
        "BARE_PAGE_BYTES": str(page_bytes),
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run(
        [sys.executable, "-c", "from benchmarks.bare_app import init_db; init_db()"],
        env=bare_env,
        check=True,
        cwd=ROOT,
    )
    port = free_port()
    bare = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "benchmarks.bare_app:app",
        ],
        env=bare_env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        bget = hammer(
            lambda i: lambda: Client(port).request("GET", "/page")[0], concurrency, duration
        )
        bpost = hammer(
            lambda i: lambda: Client(port).request("POST", "/page", {"respondent": str(i)})[0],
            concurrency,
            duration,
        )
    finally:
        bare.terminate()
        bare.wait(10)
    return [
        Line("page GET, requests/s", get[0], bget[0], "req/s", ">= 0.5x", get[0] >= 0.5 * bget[0]),
        Line("page GET, p95 latency", get[1] * 1000, bget[1] * 1000, "ms", "info", True),
        Line(
            f"page POST ({rows} answers), requests/s",
            post[0],
            bpost[0],
            "req/s",
            ">= 0.5x",
            post[0] >= 0.5 * bpost[0],
        ),
        Line("page POST, p95 latency", post[1] * 1000, bpost[1] * 1000, "ms", "info", True),
    ]


def bench_public(tmp: Path, workers: int, concurrency: int, duration: float, n: int) -> list[Line]:
    """The public results page of a published wave of ``n`` real respondents, as a shared
    link is opened (no cookie, ``?lang=``): served from the rendered-page cache."""
    from sqlalchemy import update

    from survey import fieldwork
    from survey.extensions import db
    from survey.models import Response

    url = f"sqlite:///{tmp / 'public.db'}"
    seed(url, tmp, n)
    app = _app(url, tmp)
    with app.app_context():
        db.session.execute(update(Response).values(is_demo=False, quality_flag=None))
        wave = fieldwork.default_wave()
        fieldwork.set_results_public(wave, True)  # commits both
        path = f"/results/{wave.code}?lang=ru"
        db.session.remove()
        db.engine.dispose()
    env = app_env(url, tmp / "instance", secrets.token_hex(16))
    server = Gunicorn(env, tmp / "public-gunicorn.log", workers=workers)
    server.start()
    try:
        for _ in range(4 * workers):  # every worker renders (or finds) the page once
            status, html = Client(server.port).request("GET", path)
            if status != 200 or 'class="pub-row"' not in html:
                raise RuntimeError(f"public results page: HTTP {status}")
        rate, p50 = hammer(
            lambda i: lambda: Client(server.port).request("GET", path)[0],
            concurrency,
            duration,
            quantile=0.5,
        )
    finally:
        server.stop()
    return [
        Line(
            f"public results, {n:,} resp., requests/s", rate, 200.0, "req/s", ">= 200", rate >= 200
        ),
        Line("public results, p50 latency", p50 * 1000, float("nan"), "ms", "info", True),
    ]


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            Client(port).request("GET", "/page")
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not start")


# -- 2 and 3: dashboard numbers and export --------------------------------------------------
def _app(url: str, tmp: Path):
    from survey import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "INSTANCE_PATH": str(tmp / "instance"),
            "SECRET_KEY": secrets.token_hex(16),
        }
    )


def seed(url: str, tmp: Path, n: int) -> float:
    """Migrate, load the catalogue and seed n demo respondents; return seconds for seeding."""
    from flask_migrate import upgrade

    from survey import demo, responses
    from survey.extensions import db

    app = _app(url, tmp)
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        responses.sync_catalog(responses.catalog())
        started = time.perf_counter()
        demo.seed_demo(responses.catalog(), n, seed=1, chunk=10000)
        took = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    return took


def bench_dashboard(url: str, tmp: Path, n: int, label: str) -> list[Line]:
    """The comparison read through the answer vectors against the bare baseline of
    :mod:`benchmarks.readpath_baseline` (the same vectors read with the plain driver and
    counted with numpy); the whole cold view (gate, sample description, masking); the
    cached repeat."""
    from benchmarks.readpath_baseline import baseline as vector_baseline
    from survey import queries, results
    from survey.extensions import db

    seconds_seed = seed(url, tmp, n)
    base = min(sum(vector_baseline(url)[:2]) for _ in range(3))
    app = _app(url, tmp)
    segment = queries.Segment()

    def best(call) -> float:
        times = []
        for _ in range(3):
            with app.app_context():
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
        return min(times)

    def cold():
        results.clear_cache()
        results._compute(segment)

    with app.app_context():
        results._tables(segment, queries.population())  # imports, layouts, catalogue
    tables = best(lambda: results._tables(segment, queries.population()))
    view = best(cold)
    with app.app_context():
        results.comparison(segment)
    cached = best(lambda: results.comparison(segment))
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    large = n >= 100_000
    limit = 5.0 if n >= 1_000_000 else 0.5
    seed_limit = 10.0 if label == "SQLite" else 30.0
    return [
        Line(  # the targets at 100,000: < 10 s SQLite, < 30 s PostgreSQL
            f"seed {n:,} respondents, {label}",
            seconds_seed,
            seed_limit,
            "s",
            f"< {seed_limit:g} s" if n == 100_000 else "info",
            seconds_seed < seed_limit or n != 100_000,
        ),
        Line(  # the target is set at 100,000: below, fixed costs dominate the ratio
            f"comparison {n:,}, {label} (count tables + statistics)",
            tables,
            base,
            "s",
            "<= 1.5x" if large else "info",
            tables <= 1.5 * base or not large,
        ),
        Line(  # the targets: < 0.5 s at 100,000; < 5 s at 1,000,000 (bench-large)
            f"comparison {n:,}, {label}, whole cold view",
            view,
            limit,
            "s",
            f"< {limit:g} s" if large else "info",
            view < limit or not large,
        ),
        Line(
            f"comparison {n:,}, {label}, cache hit",
            cached * 1000,
            10.0,
            "ms",
            "< 10 ms",
            cached < 0.010,
        ),
    ]


# One filter per request, each value asked for the first time: every request is cold.
HTTP_FILTERS = (
    "industry=it",
    "industry=finance",
    "role_level=specialist",
    "company_size=250_999",
    "experience_band=6_10",
    "current_employer=foreign",
    "region=moscow",
    "job_function=sales",
    "worked_in=both",
    "period=2022_on",
    "language=en",
)


def bench_http(url: str, tmp: Path, n: int, label: str) -> list[Line]:
    """The comparison API with one filter, cold, through gunicorn (2 workers): what a
    researcher waits for after clicking a filter. Reads a study seeded by the caller."""
    from survey.auth import create_api_token, create_researcher
    from survey.extensions import db

    app = _app(url, tmp)
    with app.app_context():
        token = create_api_token(
            create_researcher(f"bench-{secrets.token_hex(4)}@example.org", secrets.token_hex(16))
        )
        db.session.remove()
        db.engine.dispose()
    env = app_env(url, tmp / "instance", secrets.token_hex(16))
    server = Gunicorn(env, tmp / f"http-{label}.log", workers=2)
    server.start()
    latencies, statuses = [], []
    try:
        for query in HTTP_FILTERS:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            started = time.perf_counter()
            conn.request(
                "GET", f"/api/v1/comparison?{query}", headers={"Authorization": f"Bearer {token}"}
            )
            response = conn.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            statuses.append(response.status)
            conn.close()
    finally:
        server.stop()
    if any(status != 200 for status in statuses):
        raise RuntimeError(f"HTTP statuses {statuses}")
    p50 = percentile(latencies, 0.5)
    return [
        Line(
            f"API comparison, one filter, cold, {n:,}, {label}, p50",
            p50,
            1.0,
            "s",
            "p50 < 1 s" if 100_000 <= n < 1_000_000 else "info",  # the issue sets it at 100,000
            p50 < 1.0 or not 100_000 <= n < 1_000_000,
        ),
        Line(
            f"API comparison, one filter, cold, {n:,}, {label}, max",
            max(latencies),
            float("nan"),
            "s",
            "info",
            True,
        ),
    ]


EXPORT_SCRIPT = """
import json, re, sys, time
from survey import create_app
from survey.export import Export, ExportOptions
out, what = sys.argv[1], sys.argv[2]
app = create_app()
with app.app_context():
    started = time.perf_counter()
    # "sav", "dta", "parquet": a labelled format (survey.export.formats), both answer files.
    labelled = () if what in ("zip", "files", "datapackage") else (what,)
    export = Export(ExportOptions(max_suppressed_share=1.0, formats=labelled))
    if what == "zip":
        with open(out + ".zip", "wb") as fh:
            export.zip_to(fh)
    elif what == "datapackage":  # its generation alone, after the plan
        planned = time.perf_counter()
        with open(out + "-datapackage.json", "wb") as fh:
            for chunk in export.csv_chunks("datapackage"):
                fh.write(chunk)
        generated = time.perf_counter() - planned
    elif labelled:
        from survey.export.files import BY_NAME
        for name in export.file_names():
            if BY_NAME[name].format == what:
                with open(out + "-" + name, "wb") as fh:
                    for chunk in export.csv_chunks(name):
                        fh.write(chunk)
    else:
        for name in ("responses", "answers_long", "codebook", "disclosure_report"):
            with open(out + "-" + name, "wb") as fh:
                for chunk in export.csv_chunks(name):
                    fh.write(chunk)
    took = time.perf_counter() - started
# VmHWM, not ru_maxrss: Linux carries the parent's peak RSS across fork and exec into the
# child's ru_maxrss, which made this line report the bench's own memory.
peak = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1])
print(json.dumps({"seconds": took, "peak_kb": peak, "generated": locals().get("generated")}))
"""


def _export_run(env: dict, out: Path, what: str) -> dict:
    """One export in a fresh process: seconds from planning to the last byte, peak RSS."""
    result = subprocess.run(
        [sys.executable, "-c", EXPORT_SCRIPT, str(out), what],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_export(url: str, sqlite_path: Path, tmp: Path, n: int) -> list[Line]:
    """The export (both CSV files, codebook, disclosure report; then the whole zip) against
    the target (LimeSurvey: 10,000 responses to CSV in 1.2-1.4 s, peers.md), with the
    sqlite3 shell writing the long table as the bare baseline."""
    out = tmp / f"export-{n}"
    env = app_env(url, tmp / "instance", secrets.token_hex(16))
    files = min((_export_run(env, out, "files") for _ in range(2)), key=lambda r: r["seconds"])
    whole = _export_run(env, out, "zip")
    package = _export_run(env, out, "datapackage")
    # The labelled formats of survey/export/formats.py, each in a fresh process like the rest.
    labelled = {}
    if (ROOT / "survey" / "export" / "formats.py").exists():
        labelled = {fmt: _export_run(env, out, fmt) for fmt in ("sav", "dta", "parquet")}
    sqlite3 = shutil.which("sqlite3")
    baseline = float("nan")
    if sqlite3:
        query = (
            "SELECT r.export_id, a.practice_id, a.company_kind, a.met, a.rating FROM answer a "
            "JOIN response r ON r.id = a.response_id WHERE r.status = 'submitted';"
        )
        with open(tmp / "baseline.csv", "wb") as sink:
            started = time.perf_counter()
            subprocess.run(
                [sqlite3, "-csv", "-header", str(sqlite_path), query], stdout=sink, check=True
            )
            baseline = time.perf_counter() - started
    # 1.2 s at 10,000 (LimeSurvey's time), 10 s at 100,000; in proportion between and above.
    target = 1.2 if n <= 10_000 else max(1.2, 10.0 * n / 100_000)
    peak_mb = files["peak_kb"] / 1024
    zip_peak_mb = whole["peak_kb"] / 1024
    return [
        Line(
            f"export {n:,} (both CSV files, codebook, report) vs sqlite3 shell",
            files["seconds"],
            baseline,
            "s",
            f"<= {target:g} s",
            files["seconds"] <= target,
        ),
        Line(f"export {n:,}, peak RSS", peak_mb, 200.0, "MB", "< 200 MB", peak_mb < 200),
        Line(
            f"export {n:,}, whole zip (with paradata)",
            whole["seconds"],
            files["seconds"],
            "s",
            "(information)",
            True,
        ),
        Line(
            f"export {n:,} zip, peak RSS", zip_peak_mb, 200.0, "MB", "< 200 MB", zip_peak_mb < 200
        ),
        Line(
            f"export {n:,}, datapackage.json (after plan)",
            package["generated"],
            files["seconds"],
            "s",
            "(information)",
            True,
        ),
        Line(
            f"export {n:,} datapackage, peak RSS",
            package["peak_kb"] / 1024,
            200.0,
            "MB",
            "< 200 MB",
            package["peak_kb"] / 1024 < 200,
        ),
        *(
            line
            for fmt, run in labelled.items()
            for line in (
                Line(
                    f"export {n:,}, .{fmt} (both answer files)",
                    run["seconds"],
                    files["seconds"],
                    "s",
                    "(information)",
                    True,
                ),
                Line(
                    f"export {n:,} .{fmt}, peak RSS",
                    run["peak_kb"] / 1024,
                    200.0,
                    "MB",
                    "(information)",
                    True,
                ),
            )
        ),
    ]


# -- 4. footprint ---------------------------------------------------------------------------
def bench_footprint(tmp: Path) -> list[Line]:
    """RSS of one warmed-up gunicorn worker serving the survey."""
    env = app_env(f"sqlite:///{tmp / 'rss.db'}", tmp / "instance", secrets.token_hex(16))
    prepare_database(env, tmp / "rss.log")
    server = Gunicorn(env, tmp / "rss-gunicorn.log", workers=1)
    server.start()
    try:
        for _ in range(20):
            _respondent(server.port, _page_one_form(_catalog()))
        pid = server.worker_pids()[0]
        status = Path(f"/proc/{pid}/status").read_text()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    finally:
        server.stop()
    return [Line("gunicorn worker RSS (warm)", rss, 150.0, "MB", "< 150 MB", rss < 150)]


def _catalog():
    from survey.catalog import load_catalog

    return load_catalog(ROOT / "survey" / "practices.yaml")


def print_table(lines: list[Line]) -> None:
    """One table: what, ours, baseline, ratio, target, verdict."""
    print(f"\n{'measured':<44} {'ours':>10} {'baseline':>10} {'ratio':>7}  {'target':<10} ok")
    print("-" * 90)
    for line in lines:
        ratio = f"{line.ratio:.2f}" if line.ratio == line.ratio else "—"
        base = f"{line.baseline:.3f}" if line.baseline == line.baseline else "—"
        print(
            f"{line.what:<44} {line.ours:>10.3f} {base:>10} {ratio:>7}  {line.target:<10} "
            f"{'yes' if line.ok else 'NO'}   [{line.unit}]"
        )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--sizes", default=None, help="respondents, e.g. 10000,100000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (bench-large)")
    parser.add_argument("--only", choices=["pages", "dashboard", "export", "footprint"])
    parser.add_argument(
        "--readme",
        nargs="?",
        const=str(ROOT / "README.md"),
        metavar="PATH",
        help="also write the table between the bench markers of README.md (or PATH)",
    )
    args = parser.parse_args(argv)
    if args.sizes is None:
        args.sizes = "200" if args.quick else "10000,100000"
    return args


def collect(args: argparse.Namespace) -> list[Line]:
    """Run the benchmarks the options ask for and return their lines."""
    sizes = [int(s) for s in args.sizes.split(",")]
    duration = 1.0 if args.quick else args.duration
    lines: list[Line] = []
    with tempfile.TemporaryDirectory(prefix="survey-bench-") as folder:
        tmp = Path(folder)
        if args.only in (None, "pages"):
            lines += bench_pages(tmp, args.workers, 4 if args.quick else 8, duration)
            lines += bench_public(
                tmp, args.workers, 4 if args.quick else 8, duration, 200 if args.quick else 3000
            )
        if args.only in (None, "dashboard", "export"):
            for n in sizes:
                path = tmp / f"sqlite-{n}.db"
                url = f"sqlite:///{path}"
                if args.no_sqlite:
                    pass
                elif args.only in (None, "dashboard"):
                    lines += bench_dashboard(url, tmp, n, "SQLite")
                    lines += bench_http(url, tmp, n, "SQLite")
                else:
                    seed(url, tmp, n)
                if args.only in (None, "export") and not args.no_sqlite:
                    lines += bench_export(url, path, tmp, n)
                path.unlink(missing_ok=True)
                if not args.no_postgres and args.only in (None, "dashboard"):
                    base = postgres_base_url()
                    pg = create_postgres_database(base)
                    try:
                        lines += bench_dashboard(pg, tmp, n, "PostgreSQL")
                        lines += bench_http(pg, tmp, n, "PostgreSQL")
                    finally:
                        drop_postgres_database(pg, base)
        if args.only in (None, "footprint"):
            lines += bench_footprint(tmp)
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run, print the table (and with ``--readme`` write it into the README), exit 0 only
    if every target is met."""
    args = parse(argv)
    lines = collect(args)
    print_table(lines)
    print(
        f"\nmachine: {os.cpu_count()} cores; python {sys.version.split()[0]}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    if args.readme:
        from benchmarks import readme

        readme.write(args.readme, lines, sys.argv[1:] if argv is None else argv)
        print(f"table written to {args.readme}")
    return 0 if all(line.ok for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
