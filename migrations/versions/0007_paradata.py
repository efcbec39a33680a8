"""paradata: question order, seconds per page, quality indicators, fictitious answers

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

Existing responses stay readable: a NULL question_order means the catalogue's order with
Russian companies first, they have no page rows (page seconds unknown), and their quality
indicators are NULL (not assessed) until `flask recompute-quality`.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.add_column(sa.Column("question_order", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("fictitious_claimed", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("straightlined_pages", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("speeding_pages", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("low_quality", sa.Boolean(), nullable=True))
    op.create_table(
        "response_page",
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("page", sa.String(length=80), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=True),
        sa.Column("straightlining", sa.Boolean(), nullable=True),
        sa.Column("speeding", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["response.id"],
            name=op.f("fk_response_page_response_id_response"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("response_id", "page", name=op.f("pk_response_page")),
    )
    op.create_table(
        "fictitious_answer",
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.String(length=64), nullable=False),
        sa.Column("company_kind", sa.String(length=8), nullable=False),
        sa.Column("met", sa.String(length=3), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.CheckConstraint(
            "company_kind IN ('ru', 'foreign')", name=op.f("ck_fictitious_answer_company_kind")
        ),
        sa.CheckConstraint(
            "met IN ('yes', 'no', 'dk', 'na')", name=op.f("ck_fictitious_answer_met")
        ),
        sa.CheckConstraint(
            "rating IS NULL OR (rating BETWEEN 1 AND 5)",
            name=op.f("ck_fictitious_answer_rating_range"),
        ),
        sa.CheckConstraint(
            "rating IS NULL OR met = 'yes'",
            name=op.f("ck_fictitious_answer_rating_only_when_met"),
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["response.id"],
            name=op.f("fk_fictitious_answer_response_id_response"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "response_id", "practice_id", "company_kind", name=op.f("pk_fictitious_answer")
        ),
    )


def downgrade():
    op.drop_table("fictitious_answer")
    op.drop_table("response_page")
    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.drop_column("low_quality")
        batch_op.drop_column("speeding_pages")
        batch_op.drop_column("straightlined_pages")
        batch_op.drop_column("fictitious_claimed")
        batch_op.drop_column("question_order")
