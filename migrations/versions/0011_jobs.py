"""background jobs: a long export or report computed beside the request (survey/jobs.py)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10

One row per job, readable by every worker: its kind and parameters, its owner (a job
disappears with the researcher who started it), its status and progress, the heartbeat of
the thread that runs it, and the file it produced under the instance folder until it
expires. No existing table changes.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "job",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("error", sa.String(length=32), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("result_path", sa.String(length=255), nullable=True),
        sa.Column("download_name", sa.String(length=255), nullable=True),
        sa.Column("mimetype", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('export', 'report')", name=op.f("ck_job_kind")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_job_status")
        ),
        sa.CheckConstraint(
            "error IN ('bad_request', 'export_refused', 'withheld', 'internal', 'worker_lost')",
            name=op.f("ck_job_error"),
        ),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name=op.f("ck_job_progress")),
        sa.CheckConstraint(
            "status = 'done' OR result_path IS NULL", name=op.f("ck_job_result_when_done")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["researcher.id"],
            name=op.f("fk_job_owner_id_researcher"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_expires_at"), ["expires_at"], unique=False)


def downgrade():
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_expires_at"))
        batch_op.drop_index(batch_op.f("ix_job_owner_id"))
    op.drop_table("job")
