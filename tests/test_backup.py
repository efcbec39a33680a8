"""Online backup and restore: a backup taken while respondents keep submitting holds every
response submitted before it began, answer for answer, and restores into a fresh database.

Respondents are real: test clients driving the questionnaire over HTTP, in threads.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import create_engine, delete, func, select, text
from sqlalchemy.engine import make_url

from survey import backup, create_app, responses, results
from survey.extensions import db
from survey.models import Answer, Backup, Response
from survey.storage import sqlite_path
from tests.conftest import app_config
from tests.helpers import Respondent, answer_for, practice_index

WORKED_IN = {("ru", "foreign"): "both", ("ru",): "ru_only", ("foreign",): "foreign_only"}
NAME = re.compile(r"survey-\d{8}-\d{6}\.(sqlite3|dump)")


# --- helpers ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_earlier_backups(app):
    """Start without backup rows (a PostgreSQL test database lives for the session)."""
    with app.app_context():
        db.session.execute(delete(Backup))
        db.session.commit()
        db.session.remove()


def cli(app, *args: str, input: str | None = None):
    """``flask --app survey <args>`` on this app; the result (exit code not checked)."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args), input=input)


def is_sqlite(app) -> bool:
    return app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")


def submit_one(app, number: int) -> tuple[str, dict]:
    """Respondent ``number`` answers every page over HTTP (own client) and submits.

    Returns their export id and the answer rows they should have: (practice, kind) ->
    (met, rating), "na" for a kind of company they did not work in."""
    catalog = app.extensions["survey_catalog"]
    kinds = [("ru", "foreign"), ("ru",), ("foreign",)][number % 3]
    client = app.test_client()
    respondent = Respondent(client, lang=("ru", "en")[number % 2])
    respondent.consent()
    r = respondent.profile(worked_in=WORKED_IN[kinds])
    assert r.status_code == 302, r.text[:2000]
    sent = {}
    for page in catalog.pages:
        answers = {
            (p.id, kind): answer_for(practice_index(page, p) + number, kind)
            for p in page.practices
            for kind in kinds
        }
        r = respondent.answer_page(page, kinds, answers=answers)
        assert r.status_code == 302, r.text[:2000]
        for practice in page.practices:
            if practice.fictitious:  # kept apart from the answer rows
                continue
            for kind in ("ru", "foreign"):
                sent[(practice.id, kind)] = answers.get((practice.id, kind), ("na", None))
    with client.session_transaction() as session:
        token = session["resume_token"]
    with app.app_context():
        export_id = responses.find(token).export_id
    r = respondent.submit()
    assert r.status_code == 302 and r.location.endswith("/thanks"), r.status_code
    return export_id, sent


class Submitters:
    """Threads that keep submitting complete responses over HTTP until stopped."""

    def __init__(self, app, threads: int = 3):
        self.app = app
        self.numbers = itertools.count(1)
        self.lock = threading.Lock()
        self.done: dict[str, dict] = {}  # export id -> answers, once /submit answered
        self.errors: list[BaseException] = []
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        for thread in self.threads:
            thread.join(timeout=120)
        assert not self.errors, self.errors

    def _run(self) -> None:
        while not self.halt.is_set():
            with self.lock:
                number = next(self.numbers)
            try:
                export_id, sent = submit_one(self.app, number)
            except BaseException as exc:  # noqa: BLE001 - reported by __exit__
                self.errors.append(exc)
                self.halt.set()
                return
            with self.lock:
                self.done[export_id] = sent

    def submitted(self) -> dict[str, dict]:
        """The responses whose submit has been answered so far."""
        with self.lock:
            return dict(self.done)

    def wait_for(self, count: int, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while len(self.submitted()) < count:
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"fewer than {count} submits in {timeout} s"
            time.sleep(0.05)


def stored(app, export_ids=None) -> dict[str, tuple]:
    """export id -> (status, answer_code, {(practice, kind): (met, rating)}, rows) as the
    database holds it; ``rows`` are the full answer rows (with rating_mixed)."""
    with app.app_context():
        query = select(Response)
        if export_ids is not None:
            query = query.where(Response.export_id.in_(list(export_ids)))
        out = {}
        for response in db.session.scalars(query):
            answers = db.session.scalars(select(Answer).filter_by(response_id=response.id))
            rows = sorted(
                (a.practice_id, a.company_kind, a.met, a.rating, a.rating_mixed) for a in answers
            )
            out[response.export_id] = (
                response.status,
                response.answer_code,
                {(p, k): (met, rating) for p, k, met, rating, _ in rows},
                rows,
            )
        db.session.remove()
        return out


def count_responses(app) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(Response))
        db.session.remove()
        return n


def only_file(folder: Path) -> Path:
    files = sorted(folder.iterdir())
    assert len(files) == 1, files
    return files[0]


@pytest.fixture
def fresh_url(database_url, tmp_path):
    """An empty database of the same kind: a new SQLite file, or a scratch PostgreSQL
    database created and dropped here."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = make_url(database_url)
    name = f"survey_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def fresh_app(fresh_url, tmp_path):
    """An application on the empty database (no tables: restore brings them)."""
    app = create_app(app_config(fresh_url, str(tmp_path / "fresh-instance")))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def backup_at(url: str, instance: str, target: Path, revision: str, sql: str = "") -> Path:
    """A backup file of a database ``url`` migrated to ``revision`` (then ``sql`` run),
    written the way ``flask backup`` writes it (no Backup row: older schemas lack it)."""
    app = create_app(app_config(url, instance))
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory, revision=revision)
        if sql:
            with db.engine.begin() as conn:
                conn.execute(text(sql))
        if backup.database_kind() == "sqlite":
            backup._sqlite_backup(sqlite_path(url, instance), target)
        else:
            backup._pg_dump(target)
        db.engine.dispose()
    return target


# --- the key test -----------------------------------------------------------------------


def test_backup_during_submits_restores_every_earlier_response(app, fresh_app, tmp_path):
    folder = tmp_path / "backups"
    # The first respondent alone: the default wave is created on first use (two first
    # visitors at the same moment race for it; a fieldwork matter, not a backup one).
    respondents = Submitters(app, threads=3)
    respondents.done.update([submit_one(app, 0)])
    with respondents:
        respondents.wait_for(6)  # each kind of career, both languages
        before = respondents.submitted()  # every submit answered before the backup began
        live_before = stored(app, before)
        result = cli(app, "backup", str(folder))
        at_backup_end = len(respondents.submitted())
        respondents.wait_for(at_backup_end + 2)  # they kept submitting all along
    assert result.exit_code == 0, result.output + repr(result.exception)
    path = only_file(folder)
    assert NAME.fullmatch(path.name)
    assert str(path) in result.output

    restored = cli(fresh_app, "restore", str(path), "--yes")
    assert restored.exit_code == 0, restored.output + repr(restored.exception)

    got = stored(fresh_app)
    for export_id, sent in before.items():
        status, code, answers, rows = got[export_id]
        assert status == "submitted"
        assert answers == sent, export_id  # what the respondent sent, answer for answer
        assert (status, code, answers, rows) == live_before[export_id]  # and as stored
    # The snapshot is consistent: a response is in it whole or not at all.
    everyone = respondents.submitted()
    for export_id, (status, _, answers, _) in got.items():
        if status == "submitted":
            assert answers == everyone[export_id]
    with fresh_app.app_context():
        mismatches = [m for _, found in responses.check_vectors() for m in found]
        head = ScriptDirectory(fresh_app.extensions["migrate"].directory).get_current_head()
        assert db.session.scalar(text("SELECT version_num FROM alembic_version")) == head
    assert not mismatches
    assert len(got) < count_responses(app)  # later submits are not in the backup


# --- the backup file and its record -----------------------------------------------------


def test_backup_is_private_recorded_and_reported(app, client, tmp_path):
    Respondent(client).consent()  # a draft: respondents' data in the file
    with app.app_context():
        assert backup.status()["last_backup_at"] is None
    folder = tmp_path / "backups"
    start = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    old_umask = os.umask(0)  # 0600 by itself, not by the umask
    try:
        result = cli(app, "backup", str(folder))
    finally:
        os.umask(old_umask)
    end = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert result.exit_code == 0, result.output + repr(result.exception)
    path = only_file(folder)  # nothing else left beside it (no partial, no -wal)
    assert os.stat(path).st_mode & 0o777 == 0o600
    size = path.stat().st_size
    assert str(path) in result.output and f"{size} bytes" in result.output
    assert path.name == f"survey-{start:%Y%m%d-%H%M%S}{path.suffix}" or path.name == (
        f"survey-{end:%Y%m%d-%H%M%S}{path.suffix}"
    )

    with app.app_context():
        rows = db.session.scalars(select(Backup)).all()
        assert [(r.file_name, r.size_bytes) for r in rows] == [(path.name, size)]
        assert start <= rows[0].taken_at <= end
        report = backup.status()
        if is_sqlite(app):
            live = sqlite_path(app.config["SQLALCHEMY_DATABASE_URI"], app.instance_path)
            wal = live.with_name(live.name + "-wal")
            expected = live.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        else:
            expected = db.session.scalar(text("SELECT pg_database_size(current_database())"))
    assert report == {
        "database_bytes": expected,
        "last_backup_at": rows[0].taken_at,
        "last_backup_file": path.name,
        "last_backup_bytes": size,
    }
    if is_sqlite(app):
        assert path.suffix == ".sqlite3"
        with sqlite3.connect(path) as copy:
            assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
            assert copy.execute("SELECT count(*) FROM response").fetchone() == (1,)
    else:
        assert path.suffix == ".dump" and path.read_bytes().startswith(b"PGDMP")

    # A second backup in the same second gets its own name; status reports the last one.
    assert cli(app, "backup", str(folder)).exit_code == 0
    with app.app_context():
        names = set(db.session.scalars(select(Backup.file_name)))
        assert names == {p.name for p in folder.iterdir()} and len(names) == 2
        last = db.session.scalars(select(Backup).order_by(Backup.id.desc())).first()
        assert backup.status()["last_backup_file"] == last.file_name


# --- restore over the live database ------------------------------------------------------


def test_restore_asks_first_and_open_connections_see_the_restored_data(app, make_app, tmp_path):
    first = submit_one(app, 0)[0]
    folder = tmp_path / "backups"
    assert cli(app, "backup", str(folder)).exit_code == 0
    path = only_file(folder)
    later = submit_one(app, 1)[0]
    other = make_app()  # another worker, its pooled connection open since before the restore
    assert set(stored(other)) == {first, later}
    with app.app_context():
        version = db.session.scalar(text("SELECT version FROM data_version"))
        db.session.remove()

    refused = cli(app, "restore", str(path), input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert "Responses stored since that backup will be lost" in refused.output
    assert set(stored(app)) == {first, later}

    results._cache["stale"] = object()  # stands for a result computed before the restore
    done = cli(app, "restore", str(path), input="y\n")
    assert done.exit_code == 0, done.output + repr(done.exception)
    assert "stale" not in results._cache
    assert set(stored(other)) == {first}  # the other worker sees the restored data
    assert set(stored(app)) == {first}
    with app.app_context():
        assert db.session.scalar(text("SELECT version FROM data_version")) != version
        # The backup itself was recorded after its snapshot; the list of backups is kept.
        assert backup.status()["last_backup_file"] == path.name
        assert db.session.scalar(select(func.count()).select_from(Backup)) == 1
    # The app goes on taking responses after a restore.
    assert submit_one(app, 2)[0] in stored(app)


def test_an_older_backup_is_migrated_after_restore(app, fresh_url, fresh_app, tmp_path):
    old = backup_at(fresh_url, str(tmp_path / "old"), tmp_path / "old-backup", "0011")
    if is_sqlite(app):
        target = app  # the whole file is replaced, whatever its schema was
    else:
        # pg_restore --clean drops only what the archive holds: a live database that a later
        # migration gave more tables is refused, with what to do instead.
        refused = cli(app, "restore", str(old), "--yes")
        assert refused.exit_code == 1
        assert "tables the backup does not" in refused.output
        assert "empty database" in refused.output
        with fresh_app.app_context():
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.engine.dispose()
        target = fresh_app
    result = cli(target, "restore", str(old), "--yes")
    assert result.exit_code == 0, result.output + repr(result.exception)
    with target.app_context():
        head = ScriptDirectory(target.extensions["migrate"].directory).get_current_head()
        assert db.session.scalar(text("SELECT version_num FROM alembic_version")) == head
        assert backup.status()["last_backup_at"] is None  # the backup table exists now
        db.session.remove()
    assert submit_one(target, 0)[0] in stored(target)


# --- refusals ---------------------------------------------------------------------------


def test_restore_refuses_a_file_of_the_wrong_kind(app, tmp_path, sqlite_template):
    kept = submit_one(app, 0)[0]
    if is_sqlite(app):
        wrong = tmp_path / "survey-20260101-000000.sqlite3"  # the name does not matter
        wrong.write_bytes(b"PGDMP\x01\x0e\x00" + os.urandom(64))
        message = "is a PostgreSQL backup, but this app uses a SQLite database"
    else:
        wrong = tmp_path / "survey-20260101-000000.dump"
        shutil.copy(sqlite_template, wrong)
        message = "is a SQLite backup, but this app uses a PostgreSQL database"
    result = cli(app, "restore", str(wrong), "--yes")
    assert result.exit_code == 1 and message in result.output

    junk = tmp_path / "notes.txt"
    junk.write_text("not a backup")
    result = cli(app, "restore", str(junk), "--yes")
    assert result.exit_code == 1 and "is not a backup" in result.output
    assert set(stored(app)) == {kept}  # nothing touched


def test_restore_refuses_a_backup_from_a_newer_version(app, fresh_url, tmp_path):
    newer = backup_at(
        fresh_url,
        str(tmp_path / "newer"),
        tmp_path / "newer-backup",
        "head",
        "UPDATE alembic_version SET version_num = '9999_future'",
    )
    kept = submit_one(app, 0)[0]
    result = cli(app, "restore", str(newer), "--yes")
    assert result.exit_code == 1
    assert "migration 9999_future" in result.output and "upgrade the software" in result.output
    assert set(stored(app)) == {kept}


def test_missing_postgresql_client_tools_give_a_clear_message(app, tmp_path, monkeypatch):
    folder = tmp_path / "backups"
    assert cli(app, "backup", str(folder)).exit_code == 0
    path = only_file(folder)
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    again = cli(app, "backup", str(folder))
    restore = cli(app, "restore", str(path), "--yes")
    if is_sqlite(app):  # SQLite needs no client tool
        assert again.exit_code == 0 and restore.exit_code == 0
        return
    assert again.exit_code == 1
    assert "pg_dump is not installed" in again.output and "postgresql-client" in again.output
    assert [p.name for p in folder.iterdir()] == [path.name]  # nothing half-written left
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Backup)) == 1
    assert restore.exit_code == 1
    assert "pg_restore is not installed" in restore.output
    assert "postgresql-client" in restore.output
