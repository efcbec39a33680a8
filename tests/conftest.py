"""Fixtures: a migrated database per test (SQLite file, and PostgreSQL when configured)."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from survey import create_app, results
from survey.extensions import db
from tests.helpers import researcher

TEST_SECRET = "test-secret-key-not-for-production"
DATA_TABLES = (
    "backup",
    "account_link",
    "job",
    "login_failure",
    "api_token",
    "researcher",
    "practice_example",
    "answer",
    "response",
    "practice",
    "category",
    "catalog_version",
    "quota",
    "channel_day",
    "invitation",
    "channel",
    "wave",
)


# Tests that start servers, browsers or restart PostgreSQL run alone, after the rest
# (which `make test` runs on both cores with pytest-xdist).
SERIAL = ("tests/browser/", "tests/test_load_faults.py", "tests/test_bench_smoke.py")


def pytest_collection_modifyitems(config, items):
    """Mark the server-starting tests 'serial'."""
    for item in items:
        if item.nodeid.startswith(SERIAL):
            item.add_marker(pytest.mark.serial)


def _postgres_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


def _migrate(url: str, instance: str) -> None:
    from flask_migrate import upgrade

    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": TEST_SECRET,
            "INSTANCE_PATH": instance,
        }
    )
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    """A SQLite file migrated once; each test gets a copy."""
    folder = tmp_path_factory.mktemp("template")
    path = folder / "template.db"
    _migrate(f"sqlite:///{path}", str(folder))
    return str(path)


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh PostgreSQL database for this test session, migrated once, dropped at the end."""
    base = _postgres_url()
    if base is None:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    url = make_url(base)
    name = f"survey_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - report any connection problem as a skip/fail
        admin.dispose()
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL at {url.render_as_string()} is not usable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    test_url = url.set(database=name).render_as_string(hide_password=False)
    _migrate(test_url, "/tmp")
    yield test_url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """The URL of an empty, migrated database: a SQLite file or a PostgreSQL database."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "survey.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_database")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))
        engine.dispose()
        yield url


def app_config(database_url: str, instance: str, **overrides) -> dict:
    """The configuration every test application starts from."""
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": TEST_SECRET,
        "INSTANCE_PATH": instance,
        "SERVER_NAME": "survey.test",
        "PUBLIC_URL": "http://survey.test",
        "RATELIMIT_ENABLED": False,
        **overrides,
    }


def _close(app) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(database_url, tmp_path):
    """The application on a migrated test database, CSRF protection on."""
    # Scripted respondents are fast; the bot-flag tests raise MIN_COMPLETION_SECONDS.
    app = create_app(app_config(database_url, str(tmp_path / "instance"), MIN_COMPLETION_SECONDS=0))
    yield app
    _close(app)


@pytest.fixture
def make_app(database_url, tmp_path):
    """Build extra applications on the test database with config overrides."""
    built = []

    def build(**overrides):
        app = create_app(
            app_config(database_url, str(tmp_path / f"instance{len(built)}"), **overrides)
        )
        built.append(app)
        return app

    yield build
    for app in built:
        _close(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def fresh_cache():
    """Cached comparisons are keyed by the data version only: never share them between tests
    (a module asks for this with ``pytestmark = pytest.mark.usefixtures("fresh_cache")``)."""
    results.clear_cache()
    yield
    results.clear_cache()


@pytest.fixture
def token(app) -> str:
    """An API token of a new researcher (an analyst: analysts read every result)."""
    return researcher(app).token
