"""each kind of company anchored; the applied / existed / did not exist scale

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

Adds the respondent's job function and, for each kind of company, the years worked there,
the last year there (the period the kind's answers refer to), the number of such
employers, and the highest role level and main function held there. Earlier responses
were not asked: these columns stay NULL ("not asked"), and they remain analysable in every
comparison that is not filtered or split by them.

The answer scale gains 'applied' (it applied to me), 'existed' (it existed, but not for
me) and 'not_my_role'; the former 'yes' stays as it was stored: "met it, whether it
applied to the respondent unknown", counted as existing and rated as before. Nothing
is rewritten. ``rating_mixed`` records "mixed / can't say" instead of a rating.

The downgrade refuses to run once an answer uses a code the former schema cannot hold.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NEW_MET = "met IN ('applied', 'existed', 'no', 'dk', 'not_my_role', 'yes', 'na')"
OLD_MET = "met IN ('yes', 'no', 'dk', 'na')"
NEW_RATED = "rating IS NULL OR met IN ('applied', 'yes')"
OLD_RATED = "rating IS NULL OR met = 'yes'"
MIXED = "NOT rating_mixed OR (rating IS NULL AND met IN ('applied', 'yes'))"
KIND_COLUMNS = (
    ("years", 16),
    ("last_year", 16),
    ("employers", 16),
    ("role_level", 32),
    ("function", 32),
)


def _block_check(kind: str, worked: str) -> str:
    nulls = " AND ".join(f"{kind}_{name} IS NULL" for name, _ in KIND_COLUMNS)
    return f"({nulls}) OR (worked_in IS NOT NULL AND worked_in IN ({worked}))"


BLOCKS = {"ru": "'ru_only', 'both'", "foreign": "'foreign_only', 'both'"}


def upgrade():
    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_function", sa.String(length=32), nullable=True))
        for kind in BLOCKS:
            for name, length in KIND_COLUMNS:
                batch_op.add_column(
                    sa.Column(f"{kind}_{name}", sa.String(length=length), nullable=True)
                )
        for kind, worked in BLOCKS.items():
            batch_op.create_check_constraint(
                op.f(f"ck_response_{kind}_block_worked_in"), _block_check(kind, worked)
            )
    for table in ("answer", "fictitious_answer"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "met", existing_type=sa.String(length=3), type_=sa.String(length=12)
            )
            batch_op.add_column(
                sa.Column("rating_mixed", sa.Boolean(), server_default=sa.false(), nullable=False)
            )
            batch_op.drop_constraint(op.f(f"ck_{table}_met"), type_="check")
            batch_op.create_check_constraint(op.f(f"ck_{table}_met"), NEW_MET)
            batch_op.drop_constraint(op.f(f"ck_{table}_rating_only_when_met"), type_="check")
            batch_op.create_check_constraint(
                op.f(f"ck_{table}_rating_only_when_met"), NEW_RATED
            )
            batch_op.create_check_constraint(op.f(f"ck_{table}_rating_mixed"), MIXED)


def downgrade():
    bind = op.get_bind()
    for table in ("answer", "fictitious_answer"):
        newer = bind.execute(
            sa.text(f"SELECT count(*) FROM {table} WHERE met NOT IN ('yes', 'no', 'dk', 'na')")
        ).scalar()
        if newer:
            raise RuntimeError(
                f"{newer} {table} rows use the 2026-12 answer scale, which revision 0008 "
                "cannot store; export them before downgrading"
            )
    for table in ("answer", "fictitious_answer"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_rating_mixed"), type_="check")
            batch_op.drop_constraint(op.f(f"ck_{table}_rating_only_when_met"), type_="check")
            batch_op.create_check_constraint(
                op.f(f"ck_{table}_rating_only_when_met"), OLD_RATED
            )
            batch_op.drop_constraint(op.f(f"ck_{table}_met"), type_="check")
            batch_op.create_check_constraint(op.f(f"ck_{table}_met"), OLD_MET)
            batch_op.drop_column("rating_mixed")
            batch_op.alter_column(
                "met", existing_type=sa.String(length=12), type_=sa.String(length=3)
            )
    with op.batch_alter_table("response", schema=None) as batch_op:
        for kind in BLOCKS:
            batch_op.drop_constraint(op.f(f"ck_response_{kind}_block_worked_in"), type_="check")
            for name, _ in KIND_COLUMNS:
                batch_op.drop_column(f"{kind}_{name}")
        batch_op.drop_column("job_function")
