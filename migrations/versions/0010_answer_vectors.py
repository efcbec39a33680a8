"""the compact answer vector of each response; the data version and its triggers

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08

``response.answer_code`` holds one character per (practice, kind) cell of the response's
catalogue version (survey/vectors.py), derived from its answer rows, which stay the source
of truth. The upgrade backfills it for every stored response, in batches, from the rows
and the layout of each response's own catalogue version snapshot
(``catalog_version.content["practices"]``): a practice added in a later version has no
cell in the vectors of earlier responses.

``data_version`` is one row whose version the database itself changes, in the same
transaction, whenever what results show may change: a submitted response inserted,
deleted or updated (a submit, a withdrawal, a purge, a seed, a quality recomputation, a
repaired vector), and on PostgreSQL a TRUNCATE of ``response``. A draft's page save does
not touch it. SQLite: row triggers with WHEN clauses (an in-place update of one row each,
cheap). PostgreSQL: statement triggers with transition tables, one bump per statement at
most (row triggers would update the one row once per seeded response, and PostgreSQL
keeps every version of that row until the transaction ends).

A later migration that rebuilds ``response`` on SQLite (batch mode: copy, drop, rename)
drops these triggers with the old table and must create them again (:func:`create_triggers`).
"""

import json
import secrets
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

from survey.vectors import encode, layout

# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BATCH = 5000
BUMP = "UPDATE data_version SET version = version + 1 WHERE id = 1"

SQLITE_TRIGGERS = {
    "data_version_insert": "AFTER INSERT ON response WHEN NEW.status = 'submitted'",
    "data_version_update": (
        "AFTER UPDATE ON response WHEN OLD.status = 'submitted' OR NEW.status = 'submitted'"
    ),
    "data_version_delete": "AFTER DELETE ON response WHEN OLD.status = 'submitted'",
}

# PostgreSQL: one function per statement kind (each reads the transition tables its
# trigger declares), plus TRUNCATE, which has no rows to look at.
SUBMITTED_NEW = "EXISTS (SELECT 1 FROM new_rows WHERE status = 'submitted')"
SUBMITTED_OLD = "EXISTS (SELECT 1 FROM old_rows WHERE status = 'submitted')"
POSTGRES_FUNCTIONS = {
    "data_version_after_insert": f"IF {SUBMITTED_NEW} THEN {BUMP}; END IF;",
    "data_version_after_update": (f"IF {SUBMITTED_NEW} OR {SUBMITTED_OLD} THEN {BUMP}; END IF;"),
    "data_version_after_delete": f"IF {SUBMITTED_OLD} THEN {BUMP}; END IF;",
    "data_version_after_truncate": f"{BUMP};",
}
POSTGRES_TRIGGERS = {
    "data_version_insert": (
        "AFTER INSERT ON response REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT",
        "data_version_after_insert",
    ),
    "data_version_update": (
        "AFTER UPDATE ON response REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT",
        "data_version_after_update",
    ),
    "data_version_delete": (
        "AFTER DELETE ON response REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT",
        "data_version_after_delete",
    ),
    "data_version_truncate": (
        "AFTER TRUNCATE ON response FOR EACH STATEMENT",
        "data_version_after_truncate",
    ),
}


def create_triggers(bind) -> None:
    """Create the triggers that bump ``data_version`` (and their functions, PostgreSQL)."""
    if bind.dialect.name == "postgresql":
        for name, body in POSTGRES_FUNCTIONS.items():
            op.execute(
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN {body} RETURN NULL; END $$"
            )
        for name, (when, function) in POSTGRES_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {function}()")
    else:
        for name, when in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {BUMP}; END")


def drop_triggers(bind) -> None:
    """Drop what :func:`create_triggers` created."""
    postgresql = bind.dialect.name == "postgresql"
    for name in POSTGRES_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON response" if postgresql else ""))
    if postgresql:
        for name in POSTGRES_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")


def backfill(bind, batch: int = BATCH) -> int:
    """Write every response's vector from its answer rows; return how many responses.

    Through the driver's own cursor (plain tuples): SQLAlchemy's result rows were a third
    of the time, at ~100 answer rows per response.
    """
    layouts = {
        vid: layout((json.loads(content) if isinstance(content, str) else content) or {})
        for vid, content in bind.exec_driver_sql("SELECT id, content FROM catalog_version")
    }
    mark = "?" if bind.dialect.paramstyle == "qmark" else "%s"
    cursor = bind.connection.dbapi_connection.cursor()
    done, last = 0, 0
    try:
        while True:
            cursor.execute(
                "SELECT id, catalog_version_id FROM response "  # noqa: S608 - marks only
                f"WHERE id > {mark} ORDER BY id LIMIT {int(batch)}",
                (last,),
            )
            ids = cursor.fetchall()
            if not ids:
                return done
            cursor.execute(
                "SELECT response_id, practice_id, company_kind, met, rating, rating_mixed "  # noqa: S608
                f"FROM answer WHERE response_id BETWEEN {mark} AND {mark}",
                (ids[0][0], ids[-1][0]),
            )
            rows = defaultdict(list)
            for row in cursor.fetchall():
                rows[row[0]].append(row[1:])
            cursor.executemany(
                f"UPDATE response SET answer_code = {mark} WHERE id = {mark}",  # noqa: S608
                [(encode(rows.get(rid, ()), layouts[vid]), rid) for rid, vid in ids],
            )
            done += len(ids)
            last = ids[-1][0]
    finally:
        cursor.close()


def upgrade():
    op.add_column("response", sa.Column("answer_code", sa.Text(), nullable=True))
    op.create_table(
        "data_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_data_version_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_version")),
    )
    bind = op.get_bind()
    # A random start: a database re-created at the same address starts elsewhere.
    op.execute(
        sa.text("INSERT INTO data_version (id, version) VALUES (1, :v)").bindparams(
            v=secrets.randbelow(2**48) + 1
        )
    )
    backfill(bind)
    create_triggers(bind)


def downgrade():
    bind = op.get_bind()
    drop_triggers(bind)
    op.drop_table("data_version")
    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.drop_column("answer_code")
