"""Configuration from the environment: secret key, database URL, SQLite for several workers."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from sqlalchemy import text

from survey import create_app
from survey.config import normalise_database_url
from survey.extensions import db

SETTINGS = (
    "SECRET_KEY",
    "DATABASE_URL",
    "FLASK_DEBUG",
    "CATALOG_PATH",
    "DRAFT_TTL_DAYS",
    "MAX_CONTENT_LENGTH",
    "INSTANCE_PATH",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Each test starts from an environment without the app's settings."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)


def make_app(tmp_path, instance: str = "instance", **config):
    """An app like production (not TESTING) on a throwaway SQLite file."""
    settings = {
        "TESTING": False,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'config.db'}",
        "INSTANCE_PATH": str(tmp_path / instance),
        **config,
    }
    return create_app({k: v for k, v in settings.items() if v is not None})


def test_a_missing_secret_key_is_generated_once_and_kept_in_the_instance_folder(tmp_path):
    first = make_app(tmp_path)
    key_file = tmp_path / "instance" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text(encoding="ascii").strip()
    assert first.config["SECRET_KEY"] == key and len(key) == 64
    int(key, 16)

    assert make_app(tmp_path).config["SECRET_KEY"] == key  # the next start, or another worker
    assert make_app(tmp_path, instance="elsewhere").config["SECRET_KEY"] != key


@pytest.mark.parametrize("weak", ["dev", "DEV", "changeme", "secret", "too-short-key"])
def test_a_weak_secret_key_is_refused_outside_tests_and_debug(tmp_path, monkeypatch, weak):
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        make_app(tmp_path, SECRET_KEY=weak)
    monkeypatch.setenv("SECRET_KEY", weak)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        make_app(tmp_path)
    assert not (tmp_path / "instance" / "secret_key").exists()


def test_the_development_key_is_accepted_in_tests_and_debug(tmp_path):
    assert make_app(tmp_path, TESTING=True, SECRET_KEY="dev").config["SECRET_KEY"] == "dev"
    assert make_app(tmp_path, DEBUG=True, SECRET_KEY="dev").config["SECRET_KEY"] == "dev"


@pytest.mark.parametrize(
    ("given", "used"),
    [
        (
            "postgres://u:p@db.example:5432/survey",
            "postgresql+psycopg://u:p@db.example:5432/survey",
        ),
        ("postgresql://u@db.example/survey", "postgresql+psycopg://u@db.example/survey"),
        ("postgresql+psycopg://u@db.example/survey", "postgresql+psycopg://u@db.example/survey"),
        ("sqlite:////srv/survey.db", "sqlite:////srv/survey.db"),
    ],
)
def test_database_url_is_normalised_to_the_psycopg_driver(given, used):
    assert normalise_database_url(given) == used


def test_database_url_comes_from_the_environment(tmp_path, monkeypatch):
    key = "a-long-random-production-secret-key"
    default = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=None, SECRET_KEY=key)
    assert default.config["SQLALCHEMY_DATABASE_URI"] == (
        f"sqlite:///{tmp_path / 'instance' / 'survey.db'}"
    )
    monkeypatch.setenv("DATABASE_URL", "postgres://survey:pw@db.example:5432/survey")
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=None, SECRET_KEY=key)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == (
        "postgresql+psycopg://survey:pw@db.example:5432/survey"
    )


def test_numbers_come_from_the_environment_and_nonsense_is_refused(tmp_path, monkeypatch):
    key = "a-long-random-production-secret-key"
    app = make_app(tmp_path, SECRET_KEY=key)
    assert app.config["DRAFT_TTL_DAYS"] == 30
    assert app.config["MAX_CONTENT_LENGTH"] == 256 * 1024
    monkeypatch.setenv("DRAFT_TTL_DAYS", "14")
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "65536")
    app = make_app(tmp_path, SECRET_KEY=key)
    assert (app.config["DRAFT_TTL_DAYS"], app.config["MAX_CONTENT_LENGTH"]) == (14, 65536)
    monkeypatch.setenv("DRAFT_TTL_DAYS", "two weeks")
    with pytest.raises(RuntimeError, match="DRAFT_TTL_DAYS"):
        make_app(tmp_path, SECRET_KEY=key)


def test_the_session_lives_as_long_as_a_draft(tmp_path, monkeypatch):
    monkeypatch.setenv("DRAFT_TTL_DAYS", "90")
    app = make_app(tmp_path, SECRET_KEY="a-long-random-production-secret-key")
    assert app.permanent_session_lifetime == dt.timedelta(days=90)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(app):
    with app.app_context():
        pragma = {
            name: db.session.execute(text(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "busy_timeout", "foreign_keys")
        }
    assert pragma["journal_mode"] == "wal"
    assert pragma["busy_timeout"] >= 5000
    assert pragma["foreign_keys"] == 1
