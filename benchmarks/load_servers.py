"""What the load test runs against: databases, gunicorn instances, PostgreSQL restarts, Redis.

Everything listens on 127.0.0.1 and everything started here is stopped here.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from survey.config import normalise_database_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CATALOG_PATH = Path(os.environ.get("CATALOG_PATH") or ROOT / "survey" / "practices.yaml")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
# Settings of the caller's environment that must not leak into the app under test.
SCRUBBED_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "RATELIMIT_STORAGE_URI",
    "RATELIMIT_ENABLED",
    "GUNICORN_CMD_ARGS",
    "WEB_CONCURRENCY",
    "TRUSTED_PROXIES",
)


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_base_url() -> str:
    """The PostgreSQL server of the scratch databases (``TEST_DATABASE_URL`` or the default)."""
    return normalise_database_url(os.environ.get("TEST_DATABASE_URL") or DEFAULT_POSTGRES_URL)


def redis_url() -> str:
    """The load test's Redis (``LOADTEST_REDIS_URL`` or the default, database 14)."""
    return os.environ.get("LOADTEST_REDIS_URL") or DEFAULT_REDIS_URL


def app_env(database_url: str, instance: Path, secret_key: str, **extra: str) -> dict[str, str]:
    """The environment of the app under test (flask CLI and gunicorn)."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(
        DATABASE_URL=database_url,
        INSTANCE_PATH=str(instance),
        SECRET_KEY=secret_key,
        RATELIMIT_ENABLED="0",
        MIN_COMPLETION_SECONDS="0",  # scripted respondents are fast; don't flag them as bots
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def prepare_database(env: dict[str, str], log: Path) -> None:
    """``flask init-db`` then ``flask load-catalog`` against the run's database.

    The same click commands as ``flask --app survey ...``, run in this process to spare
    two interpreter start-ups (the app imports pandas, scipy and statsmodels).
    """
    from survey import create_app
    from survey.extensions import db

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
            "INSTANCE_PATH": env["INSTANCE_PATH"],
            "SECRET_KEY": env["SECRET_KEY"],
            "CATALOG_PATH": env.get("CATALOG_PATH") or str(CATALOG_PATH),
        }
    )
    runner = app.test_cli_runner()
    try:
        with app.app_context(), log.open("a", encoding="utf-8") as out:
            for command in ("init-db", "load-catalog"):
                result = runner.invoke(args=[command])
                out.write(f"$ flask --app survey {command}\n{result.output}\n")
                if result.exit_code != 0:
                    raise RuntimeError(
                        f"flask {command} failed: {result.output.strip()} {result.exception!r}"
                    )
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# -- PostgreSQL ------------------------------------------------------------------------------


def _admin_engine(base_url: str):
    """An AUTOCOMMIT engine on the base URL's database, else on the 'postgres' database."""
    url = make_url(base_url)
    last: Exception | None = None
    for candidate in (url, url.set(database="postgres")):
        engine = create_engine(candidate, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return engine
        except Exception as exc:  # noqa: BLE001 - try the next candidate, report the last
            engine.dispose()
            last = exc
    raise RuntimeError(f"PostgreSQL at {url.render_as_string()} is not usable: {last}")


def _admin_execute(base_url: str, statement: str) -> None:
    """Run one statement (CREATE/DROP DATABASE) on the server's maintenance connection."""
    engine = _admin_engine(base_url)
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def create_postgres_database(base_url: str) -> str:
    """Create a fresh, empty database beside the base URL's; return its URL."""
    name = f"survey_load_{uuid.uuid4().hex[:10]}"
    _admin_execute(base_url, f'CREATE DATABASE "{name}"')
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str, base_url: str) -> None:
    """Drop a scratch database made by :func:`create_postgres_database` (refuses any other)."""
    name = make_url(url).database
    if not name or not name.startswith("survey_load_"):
        raise ValueError(f"refusing to drop {name!r}: not a load-test database")
    wait_postgres(url, timeout=60)
    _admin_execute(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_host_port(url: str) -> tuple[str, int]:
    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 5432


def postgres_ready(url: str) -> bool:
    """Whether ``pg_isready`` says the server accepts connections."""
    host, port = _pg_host_port(url)
    result = subprocess.run(
        ["pg_isready", "-h", host, "-p", str(port), "-t", "2"],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return result.returncode == 0


def wait_postgres(url: str, timeout: float = 120.0) -> float:
    """Wait until pg_isready answers; return the seconds waited."""
    started = time.monotonic()
    while not postgres_ready(url):
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"PostgreSQL not ready after {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def postgres_started_at(url: str):
    """When the PostgreSQL server (postmaster) last started, or None if unreachable.

    Compared before and after a run, it reveals a restart nobody asked this run for.
    """
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT pg_postmaster_start_time()")).scalar_one()
    except Exception:  # noqa: BLE001 - unreachable: unknown
        return None
    finally:
        engine.dispose()


def postgres_cluster(url: str) -> tuple[str, str]:
    """(version, cluster name) of the local cluster serving the URL's port (pg_lsclusters)."""
    _, port = _pg_host_port(url)
    if shutil.which("pg_lsclusters") is None:
        raise RuntimeError("pg_lsclusters not found: cannot restart PostgreSQL")
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == str(port):
            return fields[0], fields[1]
    raise RuntimeError(f"no local PostgreSQL cluster listens on port {port}")


def restart_postgres(url: str) -> float:
    """Restart the PostgreSQL cluster and wait until it accepts connections; return seconds."""
    version, cluster = postgres_cluster(url)
    started = time.monotonic()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "restart"],
        capture_output=True,
        check=True,
        timeout=120,
    )
    wait_postgres(url)
    return time.monotonic() - started


# -- Redis -------------------------------------------------------------------------------------


def redis_client(url: str):
    """A Redis client with 5-second timeouts, so a stalled server fails fast."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def redis_available(url: str | None = None) -> bool:
    """Whether Redis answers PING (any failure means no)."""
    try:
        client = redis_client(url or redis_url())
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


def redis_delete_matching(url: str, pattern: str) -> int:
    """Delete the keys matching a pattern (the rate-limit counters of one run)."""
    client = redis_client(url)
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        return len(keys)
    finally:
        client.close()


# -- gunicorn ----------------------------------------------------------------------------------


def _has_control_socket() -> bool:
    try:
        import gunicorn.config
    except ImportError:
        return False
    return hasattr(gunicorn.config, "ControlSocket")


class Gunicorn:
    """One gunicorn instance (``--workers N``) on a free loopback port."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 4) -> None:
        self.env = env
        self.log_path = log
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 90.0) -> None:
        """Start the master and wait until ``/`` answers and every worker is up."""
        executable = BIN / "gunicorn"
        command = [str(executable)] if executable.exists() else [sys.executable, "-m", "gunicorn"]
        command += [
            "--workers",
            str(self.workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
        ]
        if _has_control_socket():  # gunicorn >= 24: don't share ~/.gunicorn/gunicorn.ctl
            command.append("--no-control-socket")
        command.append("survey:create_app()")
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, env=self.env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        import http.client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}: {self.tail()}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                response.read()
                if response.status == 200 and len(self.worker_pids()) == self.workers:
                    return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn not ready after {timeout:.0f} s: {self.tail()}")

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (children of the master), from /proc."""
        if self.process is None:
            return []
        master = self.process.pid
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may contain spaces, so split after ')'.
            fields = stat.rsplit(")", 1)[-1].split()
            if len(fields) >= 2 and fields[1] == str(master) and fields[0] != "Z":
                pids.append(int(entry.name))
        return pids

    def wait_workers(self, timeout: float) -> bool:
        """Wait until all workers are alive (killed ones respawned); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.worker_pids()) >= self.workers:
                return True
            time.sleep(0.1)
        return False

    def worker_serving(self, client_port: int) -> int | None:
        """The worker holding the connection from our local ``client_port`` (None if none yet).

        /proc/net/tcp gives the inode of the server side of that connection once a worker
        has accepted it; the worker is the process with a descriptor on that inode.
        """
        inode = None
        try:
            table = Path("/proc/net/tcp").read_text().splitlines()[1:]
        except OSError:
            return None
        for line in table:
            fields = line.split()
            local, remote = fields[1].rsplit(":", 1), fields[2].rsplit(":", 1)
            if int(local[1], 16) == self.port and int(remote[1], 16) == client_port:
                inode = fields[9]
                break
        if not inode or inode == "0":
            return None
        target = f"socket:[{inode}]"
        for pid in self.worker_pids():
            try:
                descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
            except OSError:
                continue
            for fd in descriptors:
                try:
                    if os.readlink(fd) == target:
                        return pid
                except OSError:
                    continue
        return None

    def signal_worker(self, pid: int, signum: int) -> bool:
        """Send a signal to one of our workers (never to any other process)."""
        if pid not in self.worker_pids():
            return False
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return False
        return True

    def kill_worker(self, pid: int) -> bool:
        """SIGKILL one of our workers; False if it is not one (or is gone)."""
        return self.signal_worker(pid, signal.SIGKILL)

    def kill_random_worker(self, rng: random.Random) -> int | None:
        """SIGKILL one worker chosen at random; return its pid (None if there was none)."""
        pids = self.worker_pids()
        if not pids:
            return None
        pid = rng.choice(sorted(pids))
        return pid if self.kill_worker(pid) else None

    def tail(self, lines: int = 40) -> str:
        """The last lines of the server's log, for error messages (empty if unreadable)."""
        try:
            content = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(content.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM the master (SIGKILL after 30 s) and close its log."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=30)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


def sqlite_url(folder: Path) -> str:
    """The URL of a SQLite database file in ``folder``."""
    return "sqlite:///" + str(folder / "survey.db")
