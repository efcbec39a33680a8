"""one free-text example per practice and kind; the language of every answer page

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

Existing examples keep their text with company_kind NULL ("not stated"): the former page
had one box per practice, so nothing says which kind of company an example describes.
Existing page rows get language NULL (not recorded); response.language still holds the
language of the last page or the submit.

The downgrade keeps, per response and practice, the example with the lowest id (the
former schema allowed one) and drops the others.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("practice_example", schema=None) as batch_op:
        batch_op.add_column(sa.Column("company_kind", sa.String(length=8), nullable=True))
        batch_op.drop_constraint(op.f("uq_practice_example_cell"), type_="unique")
        batch_op.create_unique_constraint(
            op.f("uq_practice_example_cell"), ["response_id", "practice_id", "company_kind"]
        )
        batch_op.create_check_constraint(
            op.f("ck_practice_example_company_kind"),
            "company_kind IS NULL OR company_kind IN ('ru', 'foreign')",
        )
    with op.batch_alter_table("response_page", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=2), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_response_page_language"), "language IS NULL OR language IN ('ru', 'en')"
        )


def downgrade():
    with op.batch_alter_table("response_page", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_response_page_language"), type_="check")
        batch_op.drop_column("language")
    example = sa.table(
        "practice_example",
        sa.column("id", sa.Integer),
        sa.column("response_id", sa.Integer),
        sa.column("practice_id", sa.String),
    )
    first = sa.select(sa.func.min(example.c.id)).group_by(
        example.c.response_id, example.c.practice_id
    )
    op.execute(example.delete().where(example.c.id.not_in(first)))
    with op.batch_alter_table("practice_example", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_practice_example_company_kind"), type_="check")
        batch_op.drop_constraint(op.f("uq_practice_example_cell"), type_="unique")
        batch_op.create_unique_constraint(
            op.f("uq_practice_example_cell"), ["response_id", "practice_id"]
        )
        batch_op.drop_column("company_kind")
