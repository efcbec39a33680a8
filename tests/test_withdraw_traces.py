"""What the database leaves on disk (issue 12): private files, and no trace of withdrawn text.

The respondent's free-text example is the canary: after a withdrawal (or a draft purge) its
bytes must be in none of the SQLite files (database, write-ahead log, shared memory), and on
PostgreSQL ``vacuum-deleted`` must leave it in no table file.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.engine import Engine

from survey import create_app, fieldwork
from survey.demo import seed_demo
from survey.extensions import db
from survey.models import PracticeExample, Response
from tests.conftest import app_config
from tests.helpers import Respondent

CANARY = "ZQXJ-unique-canary-4711"
KEEP = "KEEP-other-respondent-0815"
BOTH = ("ru", "foreign")
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
CLI_WARNING = "ignore:'get_text_stream' is deprecated:DeprecationWarning"


def database_file(app) -> Path:
    return Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))


def files_holding(app, needle: str) -> list[str]:
    """Which of the SQLite files (database, -wal, -shm) contain the text, byte for byte."""
    base = database_file(app)
    found = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = base.with_name(base.name + suffix)
        if path.exists() and needle.encode() in path.read_bytes():
            found.append(path.name)
    return found


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_example(client, app, example: str, *, submit: bool = False) -> Respondent:
    """A respondent who writes ``example`` on page 1 (edited once) and optionally submits."""
    catalog = app.extensions["survey_catalog"]
    page, practice = catalog.pages[0], catalog.pages[0].practices[0]
    respondent = Respondent(client)
    if submit:
        r = respondent.complete(catalog, examples={practice.id: f"{example} as submitted"})
        assert r.status_code == 302 and r.location.endswith("/thanks"), r.status_code
        return respondent
    respondent.consent()
    assert respondent.profile().status_code == 302
    for wording in ("first wording", "edited wording"):
        r = respondent.answer_page(page, BOTH, examples={practice.id: f"{example} {wording}"})
        assert r.status_code == 302
    return respondent


@pytest.fixture(params=["build-default", "built-without-secure-delete"])
def sqlite_build(request, app):
    """SQLite as built here (Debian turns SECURE_DELETE on), and a build that leaves deleted
    bytes in place: every new connection then starts with secure_delete=OFF, before the
    app's own connection settings run."""
    if request.param == "build-default":
        yield request.param
        return

    def secure_delete_off(dbapi_connection, connection_record):
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            dbapi_connection.execute("PRAGMA secure_delete=OFF")

    event.listen(Engine, "connect", secure_delete_off, insert=True)
    with app.app_context():
        db.engine.dispose()
    yield request.param
    event.remove(Engine, "connect", secure_delete_off)


# -- withdrawal and purge ------------------------------------------------------------------
@SQLITE_ONLY
@pytest.mark.parametrize("submitted", [False, True], ids=["draft", "submitted"])
def test_a_withdrawal_leaves_the_text_in_no_database_file(app, sqlite_build, submitted):
    write_example(app.test_client(), app, KEEP, submit=True)
    respondent = write_example(app.test_client(), app, CANARY, submit=submitted)
    assert files_holding(app, CANARY), "the example never reached the database files"

    r = respondent.post_form("/withdraw", {})
    assert r.status_code == 302

    with app.app_context():
        texts = db.session.scalars(select(PracticeExample.text)).all()
    assert texts and all(KEEP in t for t in texts)  # the other respondent's answer stays
    assert files_holding(app, KEEP)  # and is found where the canary is looked for
    assert files_holding(app, CANARY) == []


@SQLITE_ONLY
@pytest.mark.filterwarnings(CLI_WARNING)
def test_purging_expired_drafts_leaves_their_text_in_no_database_file(app, sqlite_build, runner):
    write_example(app.test_client(), app, KEEP, submit=True)
    write_example(app.test_client(), app, CANARY)
    with app.app_context():
        old = fieldwork.today().replace(year=fieldwork.today().year - 2)
        db.session.execute(update(Response).values(updated_on=old))
        db.session.commit()
    assert files_holding(app, CANARY)

    with app.app_context():
        result = runner.invoke(args=["purge-drafts"])
    assert result.exit_code == 0 and "Deleted 1 expired draft(s)." in result.output

    assert files_holding(app, KEEP)
    assert files_holding(app, CANARY) == []


@SQLITE_ONLY
@pytest.mark.filterwarnings(CLI_WARNING)
def test_vacuum_deleted_clears_what_an_earlier_deletion_left_behind(app, runner):
    write_example(app.test_client(), app, CANARY)
    # A deletion made before secure_delete was on: the freed pages still hold the text.
    with closing(sqlite3.connect(database_file(app))) as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA secure_delete=OFF")
        conn.execute("DELETE FROM response")
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert files_holding(app, CANARY) == ["survey.db"]

    with app.app_context():
        result = runner.invoke(args=["vacuum-deleted"])
    assert result.exit_code == 0, result.output
    assert "VACUUM" in result.output
    assert files_holding(app, CANARY) == []


@pytest.mark.filterwarnings(CLI_WARNING)
def test_vacuum_deleted_leaves_a_withdrawn_text_in_no_table_file(app, runner):
    respondent = write_example(app.test_client(), app, CANARY)
    assert respondent.post_form("/withdraw", {}).status_code == 302

    def holding_tables() -> list[str]:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("CHECKPOINT")  # the table files on disk are current
            return [
                table
                for table in ("practice_example", "answer", "response")
                if CANARY.encode()
                in bytes(
                    conn.execute(
                        text("SELECT pg_read_binary_file(pg_relation_filepath(:t))"),
                        {"t": table},
                    ).scalar_one()
                )
            ]

    # On PostgreSQL a deleted row stays while any session's older snapshot can still see it
    # (the command warns then): under a parallel test run such a snapshot can be open for a
    # moment, so the vacuum is repeated a few times, as its warning tells an operator to.
    for _attempt in range(5):
        with app.app_context():
            result = runner.invoke(args=["vacuum-deleted"])
            assert result.exit_code == 0, result.output
            assert "VACUUM" in result.output
            if db.engine.dialect.name == "sqlite":
                assert files_holding(app, CANARY) == []
                return
            left = holding_tables()
        if not left:
            return
        time.sleep(1)
    raise AssertionError(f"the withdrawn text is still in {left}: {result.output}")


# -- file permissions ----------------------------------------------------------------------
@pytest.fixture
def umask_022():
    """The usual umask, under which files were created 0644 before."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def build(path: Path, instance: Path):
    return create_app(app_config(f"sqlite:///{path}", str(instance)))


def write_something(app) -> None:
    """One write, keeping the connection open (SQLite removes -wal and -shm on last close)."""
    with app.app_context():
        db.session.execute(text("CREATE TABLE note (body TEXT)"))
        db.session.execute(text("INSERT INTO note VALUES ('x')"))
        db.session.commit()


def test_a_new_sqlite_database_and_its_instance_folder_are_private(tmp_path, umask_022):
    instance = tmp_path / "instance"
    database = instance / "survey.db"
    app = build(database, instance)
    try:
        write_something(app)
        files = [database.with_name(database.name + s) for s in ("", "-wal", "-shm")]
        assert all(path.exists() for path in files)
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
        assert mode(instance) == 0o700
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_relative_sqlite_path_is_created_private_in_the_instance_folder(tmp_path, umask_022):
    instance = tmp_path / "instance"
    app = create_app(app_config("sqlite:///relative.db", str(instance)))
    try:
        write_something(app)
        assert mode(instance / "relative.db") == 0o600
    finally:
        with app.app_context():
            db.engine.dispose()


def test_an_existing_installation_is_made_private_at_start(tmp_path, umask_022):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    database = instance / "survey.db"
    with closing(sqlite3.connect(database)) as conn:  # as an earlier version left it: 0644
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE note (body TEXT)")
        conn.execute("INSERT INTO note VALUES ('x')")
        conn.commit()
        files = [database.with_name(database.name + s) for s in ("", "-wal", "-shm")]
        assert {mode(path) for path in files} == {0o644}
        assert mode(instance) == 0o755
        app = build(database, instance)
        with app.app_context():
            db.engine.dispose()
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
        assert mode(instance) == 0o700


def test_a_shared_sticky_instance_folder_is_left_as_it_is(tmp_path, umask_022):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    app = build(shared / "survey.db", shared)
    with app.app_context():
        db.engine.dispose()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert mode(shared / "survey.db") == 0o600


@SQLITE_ONLY
@pytest.mark.filterwarnings(CLI_WARNING)
def test_the_cli_export_writes_files_only_their_owner_can_read(app, runner, tmp_path, umask_022):
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], 8, 9)
    app.config["EXPORT_MAX_SUPPRESSED_SHARE"] = 1.0
    out = tmp_path / "export"
    with app.app_context():
        result = runner.invoke(args=["export", str(out), "--include-demo"])
    assert result.exit_code == 0, result.output
    written = sorted(out.iterdir())
    assert written and {p.name: mode(p) for p in written} == {p.name: 0o600 for p in written}
    assert mode(out) == 0o700
