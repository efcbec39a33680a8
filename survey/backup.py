"""Online backup and restore of the survey database, while respondents keep submitting.

* ``flask --app survey backup DIR`` writes ``DIR/survey-YYYYMMDD-HHMMSS.sqlite3`` (SQLite)
  or ``DIR/survey-YYYYMMDD-HHMMSS.dump`` (PostgreSQL; UTC time in the name), mode 0600
  (it holds every response), and records it in the ``backup`` table.

  - SQLite: the sqlite3 backup API copies the live file in one step, inside one read
    transaction: a consistent snapshot. In WAL mode a reader never blocks the writers, so
    respondents keep submitting while it runs. The copy is checked with
    ``PRAGMA integrity_check`` and leaves WAL mode (one self-contained file).
  - PostgreSQL: ``pg_dump --format=custom`` reads every table in one transaction snapshot;
    the archive is checked with ``pg_restore --list``.

* ``flask --app survey restore FILE`` brings a backup back over the database the app uses.

  - SQLite: the backup API in reverse (backup file -> live database), one write
    transaction: connections other processes keep open see the restored data at once.
  - PostgreSQL: ``pg_restore --clean --if-exists --no-owner --single-transaction``: all
    or nothing.

  Then the migrations are applied (a backup may be older than the code), the list of
  backups taken (which describes files that still exist) is kept, the data version gets a
  fresh random value (every worker's cached results are then stale) and this process's
  results cache is cleared.

The kind of a file is read from its first bytes, never from its name: a SQLite backup is
refused on PostgreSQL and a pg_dump archive on SQLite.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import shutil
import sqlite3
import subprocess  # noqa: S404 - pg_dump / pg_restore, argument lists, no shell
from dataclasses import dataclass
from pathlib import Path

import click
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import URL

from survey.extensions import db
from survey.fieldwork import utcnow
from survey.models import Backup
from survey.storage import PRIVATE_FILE, PRIVATE_FOLDER, sqlite_path

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
SUFFIXES = {"sqlite": ".sqlite3", "postgresql": ".dump"}
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
POSTGRES_CLIENT = (
    "{program} is not installed: install the PostgreSQL client tools, the same major "
    "version as the server or newer (Debian/Ubuntu package postgresql-client: "
    "sudo apt-get install postgresql-client)."
)
# A table entry of ``pg_restore --list``: "215; 1259 16390 TABLE public answer owner".
LIST_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) ", re.MULTILINE)
LIVE_TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
SQLITE_BUSY_SECONDS = 60.0


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class BackupFile:
    """A backup file checked for restoring: its kind, migration and (PostgreSQL) tables."""

    path: Path
    kind: str
    revision: str
    tables: frozenset[str] = frozenset()


def database_kind() -> str:
    """``"sqlite"`` or ``"postgresql"``: the database the app uses."""
    name = db.engine.dialect.name
    if name not in SUFFIXES:
        raise BackupError(f"Backups support SQLite and PostgreSQL, not {name}.")
    return name


def _safe_url() -> str:
    return db.engine.url.render_as_string(hide_password=True)


def _live_sqlite_file() -> Path:
    """The SQLite file of SQLALCHEMY_DATABASE_URI."""
    path = sqlite_path(current_app.config["SQLALCHEMY_DATABASE_URI"], current_app.instance_path)
    if path is None:
        raise BackupError("The SQLite database is not a file (in memory?): nothing to back up.")
    return path


# --- backup -----------------------------------------------------------------------------


def take_backup(directory: str | os.PathLike) -> tuple[Path, Backup]:
    """Back the database up into ``directory`` and record it; return the file and its row.

    The file is written under a temporary name and renamed once checked, so a file named
    ``survey-*`` is always a whole, verified backup.
    """
    kind = database_kind()
    folder = Path(directory)
    folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    taken_at = utcnow()
    final = _free_name(folder, taken_at, SUFFIXES[kind])
    partial = final.with_name(f".{final.name}.partial")
    db.session.remove()  # our own session holds no snapshot or lock while we copy
    try:
        if kind == "sqlite":
            _sqlite_backup(_live_sqlite_file(), partial)
        else:
            _pg_dump(partial)
        os.replace(partial, final)
    finally:
        for leftover in _with_sqlite_companions(partial):
            leftover.unlink(missing_ok=True)
    record = Backup(taken_at=taken_at, file_name=final.name, size_bytes=final.stat().st_size)
    db.session.add(record)
    db.session.commit()
    return final, record


def _free_name(folder: Path, taken_at: dt.datetime, suffix: str) -> Path:
    """``survey-YYYYMMDD-HHMMSS<suffix>``, or with ``-2``, ``-3``... if that second is taken."""
    stem = f"survey-{taken_at:%Y%m%d-%H%M%S}"
    for number in range(1, 1000):
        path = folder / (stem + (f"-{number}" if number > 1 else "") + suffix)
        if not path.exists():
            return path
    raise BackupError(f"Too many backups in {folder} within one second.")


def _with_sqlite_companions(path: Path) -> list[Path]:
    return [path.with_name(path.name + end) for end in ("", "-wal", "-shm", "-journal")]


def _create_private(path: Path) -> int:
    """Create ``path`` (it must not exist) with mode 0600 whatever the umask; its fd."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return fd


def _sqlite_backup(live: Path, target: Path) -> None:
    """Copy the live SQLite file into ``target`` in one step (one consistent snapshot)."""
    if not live.is_file() or live.stat().st_size == 0:
        raise BackupError(f"{live} holds no database yet: run `flask --app survey init-db`.")
    os.close(_create_private(target))  # SQLite gives its journal files the same mode
    source = sqlite3.connect(live, timeout=SQLITE_BUSY_SECONDS)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # pages=-1: everything in one step, under one read transaction
        copy.execute("PRAGMA journal_mode=DELETE")  # a single file, no -wal beside it
        problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
    finally:
        copy.close()
        source.close()
    if problems != ["ok"]:
        raise BackupError("The copy failed its integrity check: " + "; ".join(problems[:5]))


def _pg_program(name: str) -> str:
    program = shutil.which(name)
    if program is None:
        raise BackupError(POSTGRES_CLIENT.format(program=name))
    return program


def _pg_connection(url: URL) -> tuple[str, dict[str, str]]:
    """The libpq connection URI for the client tools (no password) and their environment
    (PGPASSWORD: a password never appears in a process list)."""
    conninfo = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return conninfo, env


def _run(args: list[str], env: dict[str, str], what: str) -> str:
    """Run a PostgreSQL client program; its stdout, or a BackupError with its stderr."""
    done = subprocess.run(args, env=env, capture_output=True, text=True)  # noqa: S603
    if done.returncode != 0:
        detail = (done.stderr or "").strip()
        raise BackupError(f"{what} failed (exit code {done.returncode}): {detail}")
    return done.stdout or ""


def _pg_dump(target: Path) -> None:
    """pg_dump the app's database into ``target`` (custom format, one snapshot), checked."""
    pg_dump = _pg_program("pg_dump")
    pg_restore = _pg_program("pg_restore")
    conninfo, env = _pg_connection(db.engine.url)
    fd = _create_private(target)
    try:
        done = subprocess.run(  # noqa: S603 - fixed program, no shell
            [pg_dump, "--format=custom", "--no-password", f"--dbname={conninfo}"],
            env=env,
            stdout=fd,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(fd)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed (exit code {done.returncode}): {done.stderr.strip()}")
    _run([pg_restore, "--list", str(target)], env, "Checking the archive (pg_restore --list)")


# --- restore ----------------------------------------------------------------------------


def inspect_file(path: str | os.PathLike) -> BackupFile:
    """Check that ``path`` is a backup this database can take back; what it holds.

    Refuses a file of the other database's kind, anything that is not a backup of this
    survey, and a backup from a newer version of the software (unknown migration).
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            head = file.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise BackupError(f"Cannot read {path}: {exc.strerror}.") from exc
    if head.startswith(SQLITE_MAGIC):
        kind = "sqlite"
    elif head.startswith(PG_DUMP_MAGIC):
        kind = "postgresql"
    else:
        raise BackupError(
            f"{path} is not a backup: neither a SQLite database nor a pg_dump archive "
            "(custom format)."
        )
    live = database_kind()
    if kind != live:
        raise BackupError(
            f"{path} is a {LABELS[kind]} backup, but this app uses a {LABELS[live]} "
            f"database ({_safe_url()}): a {LABELS[kind]} backup can only be restored into "
            f"a {LABELS[kind]} database."
        )
    if kind == "sqlite":
        revision, tables = _sqlite_contents(path), frozenset()
    else:
        revision, tables = _pg_contents(path)
    try:
        ScriptDirectory(current_app.extensions["migrate"].directory).get_revision(revision)
    except CommandError as exc:
        raise BackupError(
            f"{path} was taken at migration {revision}, which this version of the software "
            "does not know (a newer version took it): upgrade the software first."
        ) from exc
    return BackupFile(path=path, kind=kind, revision=revision, tables=tables)


def _sqlite_contents(path: Path) -> str:
    """The migration of a SQLite backup, after its integrity check."""
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            problems = [row[0] for row in con.execute("PRAGMA integrity_check")]
            rows = con.execute("SELECT version_num FROM alembic_version").fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{path} is not a backup of this survey: {exc}.") from exc
    if problems != ["ok"]:
        raise BackupError(f"{path} is damaged (integrity check): " + "; ".join(problems[:5]))
    if len(rows) != 1:
        raise BackupError(f"{path} is not a backup of this survey (no migration version).")
    return rows[0][0]


def _pg_contents(path: Path) -> tuple[str, frozenset[str]]:
    """The migration and the table names of a pg_dump archive."""
    pg_restore = _pg_program("pg_restore")
    env = dict(os.environ)
    listing = _run([pg_restore, "--list", str(path)], env, f"Reading {path}")
    tables = frozenset(name for _, name in LIST_TABLE.findall(listing))
    script = _run(
        [pg_restore, "--data-only", "--table=alembic_version", "--file=-", str(path)],
        env,
        f"Reading {path}",
    )
    lines = script.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("COPY ")]
    values = lines[starts[0] + 1 :] if starts else []
    values = values[: values.index("\\.")] if "\\." in values else []
    if "alembic_version" not in tables or len(values) != 1:
        raise BackupError(f"{path} is not a backup of this survey (no migration version).")
    return values[0], tables


def restore_backup(backup: BackupFile) -> None:
    """Put a checked backup (:func:`inspect_file`) in place of the app's database, then
    migrate it, keep the list of backups, renew the data version, clear the cache."""
    from flask_migrate import upgrade

    from survey import results

    taken = _backups_taken()
    db.session.remove()
    if backup.kind == "sqlite":
        _sqlite_restore(backup.path, _live_sqlite_file())
    else:
        _pg_restore(backup)
    db.engine.dispose()  # our pooled connections started before the restore
    upgrade(directory=current_app.extensions["migrate"].directory)
    known = {(b.file_name, b.taken_at) for b in db.session.scalars(select(Backup))}
    db.session.add_all(
        Backup(taken_at=at, file_name=name, size_bytes=size)
        for name, at, size in taken
        if (name, at) not in known
    )
    # A fresh random version, like a new database's: no cached result of the data that
    # was replaced can be taken for the restored data's in any worker.
    db.session.execute(
        text("UPDATE data_version SET version = :v WHERE id = 1"),
        {"v": secrets.randbelow(2**48) + 1},
    )
    db.session.commit()
    results.clear_cache()


def _backups_taken() -> list[tuple[str, dt.datetime, int]]:
    """The backup table's rows, if it exists (an empty or older database has none)."""
    with db.engine.connect() as conn:
        if not inspect(conn).has_table(Backup.__tablename__):
            return []
    rows = db.session.execute(select(Backup.file_name, Backup.taken_at, Backup.size_bytes))
    found = [tuple(row) for row in rows]
    db.session.rollback()
    return found


def _sqlite_restore(source_file: Path, live: Path) -> None:
    """Copy the backup over the live file with the backup API: one write transaction."""
    source = sqlite3.connect(f"{source_file.resolve().as_uri()}?mode=ro", uri=True)
    target = sqlite3.connect(live, timeout=SQLITE_BUSY_SECONDS)
    try:
        source.backup(target)
    except sqlite3.Error as exc:
        raise BackupError(f"Restoring into {live} failed: {exc}.") from exc
    finally:
        target.close()
        source.close()


def _pg_restore(backup: BackupFile) -> None:
    """pg_restore the archive over the app's database, in one transaction."""
    pg_restore = _pg_program("pg_restore")
    with db.engine.connect() as conn:
        live = set(
            conn.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
        )
    extra = sorted(live - backup.tables)
    if extra:
        # --clean drops only what the archive holds: these tables (from a later migration)
        # would stay, tied to the restored ones, and the migrations could not run again.
        raise BackupError(
            f"The database has tables the backup does not ({', '.join(extra)}): a later "
            "migration made them. Restore into an empty database instead (createdb, then "
            "set DATABASE_URL to it and run restore there)."
        )
    db.engine.dispose()  # none of our connections may hold a lock the restore waits for
    conninfo, env = _pg_connection(db.engine.url)
    _run(
        [
            pg_restore,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--no-password",
            f"--dbname={conninfo}",
            str(backup.path),
        ],
        env,
        "pg_restore",
    )


# --- status -----------------------------------------------------------------------------


def status() -> dict:
    """The database's size in bytes and the last backup, for the owner's fieldwork page.

    ``database_bytes``: SQLite, the file and its write-ahead log; PostgreSQL,
    ``pg_database_size(current_database())``. ``last_backup_at`` is naive UTC.
    """
    if database_kind() == "sqlite":
        live = _live_sqlite_file()
        size = sum(
            part.stat().st_size
            for part in (live, live.with_name(live.name + "-wal"))
            if part.exists()
        )
    else:
        size = db.session.scalar(text("SELECT pg_database_size(current_database())"))
    last = db.session.scalars(
        select(Backup).order_by(Backup.taken_at.desc(), Backup.id.desc()).limit(1)
    ).first()
    return {
        "database_bytes": int(size),
        "last_backup_at": last.taken_at if last else None,
        "last_backup_file": last.file_name if last else None,
        "last_backup_bytes": last.size_bytes if last else None,
    }


# --- commands ---------------------------------------------------------------------------


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({size} bytes)"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover - the loop always returns


@click.command("backup")
@with_appcontext
@click.argument("directory", type=click.Path(file_okay=False, writable=True, path_type=Path))
def backup_command(directory: Path) -> None:
    """Take a consistent backup into DIRECTORY while respondents keep answering.

    SQLite: the backup API; PostgreSQL: pg_dump (custom format). The file (mode 0600)
    holds every response: keep it as safe as the database.
    """
    try:
        path, record = take_backup(directory)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # a folder we may not create or write, a full disk
        raise click.ClickException(f"Cannot write the backup into {directory}: {exc}") from exc
    click.echo(f"Backup written: {path}, {_human(record.size_bytes)}.")


@click.command("restore")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore_command(file: Path, yes: bool) -> None:
    """Replace the database's content with a backup FILE (taken with `backup`)."""
    try:
        backup = inspect_file(file)
        if not yes:
            click.confirm(
                f"Replace everything in {_safe_url()} with {file} (migration "
                f"{backup.revision})? Responses stored since that backup will be lost",
                abort=True,
            )
        restore_backup(backup)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Restored {file} into {_safe_url()}; the schema is up to date.")
