"""The database on disk: private files, and no readable trace of what was deleted.

* :func:`secure_storage` (called by ``create_app``) makes the instance folder 0700 and the
  SQLite database file 0600 *before* SQLite opens it; SQLite gives its ``-wal``, ``-shm``
  and ``-journal`` files the database file's permissions. Files of an existing installation
  are tightened at start.
* :func:`erase_deleted` runs after a withdrawal or a draft purge. With
  ``PRAGMA secure_delete=ON`` (set on every SQLite connection) SQLite overwrites deleted
  content with zeros; the TRUNCATE checkpoint then copies the zeroed pages into the
  database file and empties the write-ahead log, which still held the old page images.
* :func:`vacuum_deleted` (``flask --app survey vacuum-deleted``) rewrites the tables that
  hold answers: on PostgreSQL, deleted rows stay in the table files until a full vacuum.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from flask import Flask
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
SQLITE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal")
# The tables that hold what respondents wrote; rewritten by vacuum_deleted on PostgreSQL.
RESPONDENT_TABLES = (
    "practice_example",
    "answer",
    "fictitious_answer",
    "response_page",
    "response",
)

log = logging.getLogger(__name__)


def sqlite_path(database_uri: str, instance_path: str) -> Path | None:
    """The file of a SQLite database URI (relative paths under the instance folder, as
    Flask-SQLAlchemy resolves them); None for other databases, memory and ``file:`` URIs."""
    url = make_url(database_uri)
    if url.drivername not in ("sqlite", "sqlite+pysqlite"):
        return None
    name = url.database
    if not name or name == ":memory:" or url.query.get("uri") or name.startswith("file:"):
        return None
    return Path(instance_path) / name if not os.path.isabs(name) else Path(name)


def _tighten(path: Path, mode: int) -> None:
    """chmod to ``mode`` a file or folder this user owns; leave shared folders (sticky
    bit, like /tmp) and other users' files alone."""
    try:
        info = path.stat()
        if info.st_uid != os.geteuid() or info.st_mode & stat.S_ISVTX:
            return
        if stat.S_IMODE(info.st_mode) != mode:
            path.chmod(mode)
    except FileNotFoundError:
        return
    except OSError as exc:  # a read-only file system must not stop the app
        log.warning("could not make %s private: %s", path, exc)


def secure_storage(app: Flask) -> None:
    """Create the instance folder (0700) and the SQLite database file (0600) privately.

    The database file is created empty, with mode 0600, before SQLite first opens it;
    files an earlier version created 0644 are tightened to 0600.
    """
    folder = Path(app.instance_path)
    folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    _tighten(folder, PRIVATE_FOLDER)
    database = sqlite_path(app.config["SQLALCHEMY_DATABASE_URI"], app.instance_path)
    if database is None:
        return
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except OSError:  # it exists, or its folder is missing: SQLite reports the latter
        pass
    for suffix in SQLITE_FILE_SUFFIXES:
        _tighten(database.with_name(database.name + suffix), PRIVATE_FILE)


def private_opener(path: str, flags: int) -> int:
    """An ``open(..., opener=private_opener)`` that creates the file 0600 (and tightens
    an existing one), for files that hold respondents' data."""
    fd = os.open(path, flags, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return fd


def erase_deleted(engine: Engine) -> None:
    """After deleting respondents' data: on SQLite, move the zeroed pages into the database
    file and empty the write-ahead log (``PRAGMA wal_checkpoint(TRUNCATE)``).

    On PostgreSQL nothing runs here: a vacuum in the request would block respondents;
    see :func:`vacuum_deleted`.
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    if busy:  # a reader held an old snapshot past the busy timeout: the next one will do it
        log.warning("write-ahead log not truncated after a deletion (database busy)")


def vacuum_deleted(engine: Engine) -> list[str]:
    """Rewrite the database so deleted answers leave its files; return what was run.

    SQLite: ``VACUUM`` (rebuilds the file without free pages) and a TRUNCATE checkpoint.
    PostgreSQL: ``VACUUM (FULL)`` of the respondent tables (an exclusive lock on each while
    it is rewritten: the survey waits), then ``CHECKPOINT`` so that the old write-ahead
    segments can be recycled, if the role may run it.
    """
    done = []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "sqlite":
            statements = ["VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"]
        elif engine.dialect.name == "postgresql":
            statements = [f"VACUUM (FULL) {', '.join(RESPONDENT_TABLES)}", "CHECKPOINT"]
            # A row deleted after another session's snapshot began is still visible to that
            # session, so VACUUM (FULL) must copy it: say so rather than claim it is gone.
            holding = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL"
            ).scalar_one()
            if holding:
                done.append(
                    f"WARNING: {holding} other session(s) hold an open snapshot; rows deleted "
                    "after it began stay in the files until they end. Run again when the "
                    "survey is quiet."
                )
        else:
            raise RuntimeError(f"vacuum-deleted does not know {engine.dialect.name}")
        for statement in statements:
            try:
                conn.exec_driver_sql(statement)
            except DBAPIError as exc:
                if statement != "CHECKPOINT":
                    raise
                done.append(f"CHECKPOINT skipped ({exc.orig}); the server's own comes later")
                continue
            done.append(statement)
    return done
