"""Nothing identifying is written to the logs (issue 12).

The access line of gunicorn (as ``make run`` and the Procfile start it) holds the method,
the path with its secret segment masked, the status, the length and the duration: no client
address, user agent, referrer, query string or time of day. The application's own log
records have resume paths and IP addresses masked as well.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.cookiejar
import logging
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from sqlalchemy.exc import OperationalError

from survey.logs import AccessLogger, PrivacyFilter, mask
from tests.helpers import csrf_token

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "Zk3v9QpR_tokenCANARY-8f2d1c7b6a5e4d3c"
CLIENT = "203.0.113.77"
FORWARDED = "198.51.100.23"
AGENT = "PrivacyProbe/9.9 (agent-canary-5150)"
REFERRER = "https://referrer.example/came-from-here"
CLOCK = re.compile(r"\b\d{1,2}:\d{2}:\d{2}\b")  # a time of day, as HH:MM:SS
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# -- gunicorn's access line, built from the objects gunicorn hands the logger --------------
class Lines(logging.Handler):
    """Collect the formatted lines a logger writes."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def access_logger(monkeypatch):
    """Build gunicorn's logger the way the Makefile configures it, collecting its lines."""
    built = []

    def build(address: str | None = None, access_format: str | None = None):
        if address is None:
            monkeypatch.delenv("LOG_CLIENT_ADDRESS", raising=False)
        else:
            monkeypatch.setenv("LOG_CLIENT_ADDRESS", address)
        cfg = Config()
        cfg.set("accesslog", "-")
        cfg.set("logger_class", "survey.logs.AccessLogger")
        if access_format is not None:
            cfg.set("access_log_format", access_format)
        logger = cfg.logger_class(cfg)
        assert isinstance(logger, AccessLogger)
        # pytest's capture handlers sit on these loggers too, and an app built by an earlier
        # test in this process put its own filter on them (mode "none"): it would mask the
        # record before our handler sees it. Production has no such shared handlers.
        for handler in (*logger.access_log.handlers, *logger.error_log.handlers):
            for existing in list(handler.filters):
                if isinstance(existing, PrivacyFilter):
                    monkeypatch.setattr(handler, "filters", [])
        lines = Lines()
        logger.access_log.addHandler(lines)
        logger.error_log.addHandler(lines)
        built.append((logger, lines))
        return logger, lines

    yield build
    for logger, lines in built:
        logger.access_log.removeHandler(lines)
        logger.error_log.removeHandler(lines)


def request_for(path: str, query: str = "", remote: str = CLIENT):
    """What gunicorn passes to ``access()`` for one request through a proxy."""
    headers = [
        ("HOST", "survey.example.org"),
        ("USER-AGENT", AGENT),
        ("REFERER", REFERRER),
        ("X-FORWARDED-FOR", FORWARDED),
        ("COOKIE", "survey_session=cookie-canary"),
    ]
    req = SimpleNamespace(headers=headers, method="GET", uri=path)
    resp = SimpleNamespace(
        status="302 FOUND",
        sent=1234,
        headers=[("Location", "/profile"), ("Set-Cookie", "survey_session=cookie-canary")],
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": path + (f"?{query}" if query else ""),
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": remote,
        "REMOTE_PORT": "53211",
        "HTTP_USER_AGENT": AGENT,
        "HTTP_REFERER": REFERRER,
        "HTTP_X_FORWARDED_FOR": FORWARDED,
        "HTTP_COOKIE": "survey_session=cookie-canary",
    }
    return resp, req, environ, dt.timedelta(microseconds=12_345)


def assert_private(line: str) -> None:
    for secret in (TOKEN, CLIENT, FORWARDED, "203.0.113", AGENT, "PrivacyProbe", REFERRER):
        assert secret not in line, (secret, line)
    assert "cookie-canary" not in line and "utm" not in line, line
    assert not CLOCK.search(line), line


def test_the_access_line_holds_method_masked_path_status_length_and_duration(access_logger):
    logger, lines = access_logger()
    logger.access(*request_for(f"/resume/{TOKEN}", query="utm_source=mail"))
    assert lines.lines == ["GET /resume/[secret] 302 1234 12ms"]
    assert_private(lines.lines[0])


def test_every_secret_route_prefix_is_masked_however_the_path_is_spelled(access_logger):
    logger, lines = access_logger()
    paths = [
        f"/resume/{TOKEN}",
        f"//resume/{TOKEN}",
        f"/RESUME/{TOKEN}/",
        f"/s/{TOKEN}",
        f"/i/{TOKEN}/page/2",
        f"/researcher/setup/{TOKEN}",
        f"/researcher/welcome/{TOKEN}",
    ]
    for path in paths:
        logger.access(*request_for(path))
    assert [line.split()[1] for line in lines.lines] == [
        "/resume/[secret]",
        "//resume/[secret]",
        "/RESUME/[secret]/",
        "/s/[secret]",
        "/i/[secret]/page/2",
        "/researcher/setup/[secret]",
        "/researcher/welcome/[secret]",
    ]
    for line in lines.lines:
        assert_private(line)


def test_ordinary_paths_are_logged_as_they_are(access_logger):
    logger, lines = access_logger()
    logger.access(*request_for("/page/3"))
    logger.access(*request_for("/static/css/site.css"))
    assert [line.split()[1] for line in lines.lines] == ["/page/3", "/static/css/site.css"]


def test_a_custom_format_cannot_bring_back_address_agent_or_time(access_logger):
    hostile = (
        '%(h)s %(t)s "%(r)s" %(q)s "%(f)s" "%(a)s" %({x-forwarded-for}i)s '
        "%({user-agent}i)s %({remote_addr}e)s %({http_cookie}e)s %({set-cookie}o)s"
    )
    logger, lines = access_logger(access_format=hostile)
    logger.access(*request_for(f"/resume/{TOKEN}", query="utm_source=mail"))
    (line,) = lines.lines
    assert_private(line)
    assert "GET /resume/[secret] HTTP/1.1" in line


@pytest.mark.parametrize(
    ("remote", "network"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:85a3:1234:5678::7", "2001:db8:85a3::"),
        ("::ffff:203.0.113.77", "203.0.113.0"),
    ],
)
def test_an_operator_may_opt_in_to_truncated_addresses(access_logger, remote, network):
    logger, lines = access_logger(address="truncated")
    logger.access(*request_for(f"/resume/{TOKEN}", remote=remote))
    assert lines.lines == [f"{network} GET /resume/[secret] 302 1234 12ms"]
    assert remote not in lines.lines[0]


@pytest.mark.parametrize("value", ["", "full", "yes", "1", "TRUNCATED-ish"])
def test_any_other_address_setting_logs_no_address(access_logger, value):
    logger, lines = access_logger(address=value)
    logger.access(*request_for("/page/1"))
    assert lines.lines == ["GET /page/1 302 1234 12ms"]


def test_gunicorns_error_log_masks_client_addresses_and_secret_paths(access_logger):
    logger, lines = access_logger()
    logger.warning(f"Invalid request from ip={CLIENT}: Invalid HTTP method")
    logger.error("Error handling request %s %s", "GET", f"/resume/{TOKEN}")
    logger.info("peer [2001:db8::42]:443 closed")
    assert lines.lines == [
        "Invalid request from ip=[address]: Invalid HTTP method",
        "Error handling request GET /resume/[secret]",
        "peer [[address]]:443 closed",
    ]


def test_masking_keeps_times_versions_and_ordinary_text():
    text = "at 12:30:01 version 1.2.3 took 0.5 s on page /page/2 (3 of 10)"
    assert mask(text) == text
    assert mask("from 10.0.0.1, fe80::1%eth0 and 2001:DB8::1.") == (
        "from [address], [address] and [address]."
    )
    assert mask("from 10.0.0.1", "truncated") == "from 10.0.0.0"


# -- the application's own log records -------------------------------------------------------
@SQLITE_ONLY
def test_the_apps_database_warning_masks_the_resume_token(app, client, caplog):
    def database_down():
        raise OperationalError("SELECT 1", {}, Exception(f"no route to {FORWARDED}"))

    app.before_request(database_down)
    with caplog.at_level(logging.WARNING):
        r = client.get(f"/resume/{TOKEN}")
    assert r.status_code == 503
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "database unavailable: GET /resume/[secret]" in text
    assert TOKEN not in text and FORWARDED not in text
    assert TOKEN not in caplog.text and FORWARDED not in caplog.text


@SQLITE_ONLY
def test_a_logged_traceback_is_masked_too(app, caplog):
    with caplog.at_level(logging.ERROR):
        try:
            raise ValueError(f"bad draft /resume/{TOKEN} from {CLIENT}")
        except ValueError:
            app.logger.exception("while resuming")
    assert "ValueError: bad draft /resume/[secret] from [address]" in caplog.text
    assert TOKEN not in caplog.text and CLIENT not in caplog.text


@SQLITE_ONLY
def test_the_filter_sits_on_the_app_logger_and_its_handlers(app):
    assert any(isinstance(f, PrivacyFilter) for f in app.logger.filters)
    for handler in app.logger.handlers:
        assert any(isinstance(f, PrivacyFilter) for f in handler.filters)


@SQLITE_ONLY
def test_the_development_servers_request_line_is_masked(app, caplog):
    """`flask run` logs through werkzeug's logger: address and token are masked there too."""
    line = f'{CLIENT} - - [01/Dec/2026 10:00:00] "GET /resume/{TOKEN} HTTP/1.1" 302 -'
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        logging.getLogger("werkzeug").info("%s", line)
    (record,) = [r for r in caplog.records if r.name == "werkzeug"]
    assert record.getMessage() == (
        '[address] - - [01/Dec/2026 10:00:00] "GET /resume/[secret] HTTP/1.1" 302 -'
    )


# -- gunicorn as `make run` starts it ---------------------------------------------------------
def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_run_command(port: int) -> list[str]:
    """The gunicorn command of the Makefile's `run` target, as make would run it."""
    out = subprocess.run(
        ["make", "-n", "run", f"PORT={port}", "HOST=127.0.0.1", "WEB_CONCURRENCY=2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = out.replace("\\\n", " ").splitlines()
    (line,) = [line for line in lines if "gunicorn" in line]
    command = shlex.split(line)
    command[0] = str(Path(sys.executable).with_name("gunicorn"))
    return command


def test_the_procfile_starts_gunicorn_with_the_private_logger():
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line[:4] == "web:")
    words = shlex.split(web[4:])
    assert words[words.index("--logger-class") + 1] == "survey.logs.AccessLogger"
    assert words[words.index("--access-logfile") + 1] == "-"


@pytest.mark.serial
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_gunicorn_as_make_run_starts_it_logs_no_token_address_or_agent(tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "LOG_CLIENT"))}
    for name in ("REDIS_URL", "RATELIMIT_STORAGE_URI", "CATALOG_PATH", "DATABASE_URL"):
        env.pop(name, None)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'survey.db'}",
        INSTANCE_PATH=str(tmp_path / "instance"),
        SECRET_KEY=secrets.token_hex(32),
        RATELIMIT_ENABLED="0",
        PORT=str(port),
        PUBLIC_URL=url,
    )
    flask = str(Path(sys.executable).with_name("flask"))
    for step in (["init-db"], ["load-catalog"]):
        subprocess.run(
            [flask, "--app", "survey", *step], env=env, cwd=ROOT, check=True, capture_output=True
        )
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            make_run_command(port), env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        opener.addheaders = [("User-Agent", AGENT), ("Referer", REFERRER)]
        landing = wait_until_serving(opener, url, server, log)
        form = urllib.parse.urlencode(
            {"csrf_token": csrf_token(landing), "adult": "y", "agree": "y"}
        )
        profile = opener.open(url + "/", data=form.encode(), timeout=10).read().decode()
        match = re.search(r"/resume/([A-Za-z0-9_-]{20,})", profile)
        assert match, "the profile page shows no resume link"
        token = match.group(1)
        with opener.open(f"{url}/resume/{token}?utm_source=mail", timeout=10) as r:
            assert r.status == 200
        with pytest.raises(urllib.error.HTTPError):  # an unknown token: any answer will do
            opener.open(f"{url}/resume/{TOKEN}/extra", timeout=10).read()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    text = log.read_text(encoding="utf-8", errors="replace")
    access = [line for line in text.splitlines() if re.match(r"(GET|POST) /", line)]
    assert any(line.startswith("GET /resume/[secret] 302 ") for line in access), text
    assert any(line.startswith("POST / 302 ") for line in access), text
    for secret in (token, hashlib.sha256(token.encode()).hexdigest(), TOKEN):
        assert secret not in text
    for trace in ("127.0.0.1", AGENT, "PrivacyProbe", REFERRER, "utm_source"):
        assert trace not in text, (trace, text)
    for line in access:
        assert not CLOCK.search(line), line


def wait_until_serving(opener, url: str, server: subprocess.Popen, log: Path) -> str:
    """The landing page, once gunicorn's workers answer (they start after the bind)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with opener.open(url + "/", timeout=5) as r:
                return r.read().decode()
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer within 30 s:\n{log.read_text()[-3000:]}")
