"""fieldwork: wave dates and states, channels, invitations, quotas, roles, set-up links

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-12

Waves get open and close moments (UTC, shown in their time zone), a target, a pilot mark
and a public-results switch; the former ``opened_on`` / ``closed_on`` dates become the
moments at midnight UTC. Every wave gets its ``direct`` channel (the bare site URL leads
to the default wave's), and every existing response is put in its wave's direct channel:
that is how it came. Channels have unguessable slugs; invitations and account links keep
only a SHA-256 of their token. Per-channel daily counters keep the funnel steps whose rows
may later be deleted. Researchers get a role; every existing account becomes an owner,
since each could do everything before. Backups are recorded.
"""

import datetime as dt
import secrets

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

EVENTS = "event IN ('opened', 'consented', 'withdrawn', 'screened_out', 'purged')"


def _midnight(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime.combine(day, dt.time())


def upgrade():
    bind = op.get_bind()
    with op.batch_alter_table("wave", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opens_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("closes_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "time_zone", sa.String(length=64), server_default="Europe/Moscow", nullable=False
            )
        )
        batch_op.add_column(sa.Column("target", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("is_pilot", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("results_public", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("created_on", sa.Date(), nullable=True))
    waves = sa.table(
        "wave",
        sa.column("id", sa.Integer),
        sa.column("opened_on", sa.Date),
        sa.column("closed_on", sa.Date),
        sa.column("opens_at", sa.DateTime),
        sa.column("closes_at", sa.DateTime),
        sa.column("created_on", sa.Date),
    )
    for wave_id, opened, closed in bind.execute(
        sa.select(waves.c.id, waves.c.opened_on, waves.c.closed_on)
    ).all():
        opens, closes = _midnight(opened), _midnight(closed)
        if opens is not None and closes is not None and closes <= opens:
            closes = opens + dt.timedelta(days=1)
        bind.execute(
            waves.update()
            .where(waves.c.id == wave_id)
            .values(opens_at=opens, closes_at=closes, created_on=opened)
        )
    with op.batch_alter_table("wave", schema=None) as batch_op:
        batch_op.drop_column("opened_on")
        batch_op.drop_column("closed_on")
        batch_op.create_check_constraint("target", "target IS NULL OR target > 0")
        batch_op.create_check_constraint(
            "dates", "opens_at IS NULL OR closes_at IS NULL OR closes_at > opens_at"
        )

    op.create_table(
        "channel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.Column("slug", sa.String(length=32), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["wave_id"], ["wave.id"], name=op.f("fk_channel_wave_id_wave"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel")),
        sa.UniqueConstraint("slug", name=op.f("uq_channel_slug")),
        sa.UniqueConstraint("wave_id", "label", name="uq_channel_wave_label"),
    )
    op.create_index(op.f("ix_channel_wave_id"), "channel", ["wave_id"], unique=False)
    channels = sa.table(
        "channel",
        sa.column("id", sa.Integer),
        sa.column("wave_id", sa.Integer),
        sa.column("label", sa.String),
        sa.column("slug", sa.String),
        sa.column("created_on", sa.Date),
    )
    today = dt.datetime.now(dt.UTC).date()
    for (wave_id,) in bind.execute(sa.select(waves.c.id)).all():
        bind.execute(
            channels.insert().values(
                wave_id=wave_id, label="direct", slug=secrets.token_urlsafe(12), created_on=today
            )
        )

    op.create_table(
        "invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("used_on", sa.Date(), nullable=True),
        sa.Column("response_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channel.id"],
            name=op.f("fk_invitation_channel_id_channel"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["response.id"],
            name=op.f("fk_invitation_response_id_response"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation")),
        sa.UniqueConstraint("response_id", name=op.f("uq_invitation_response_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitation_token_hash")),
    )
    op.create_index(op.f("ix_invitation_channel_id"), "invitation", ["channel_id"], unique=False)

    op.create_table(
        "channel_day",
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.CheckConstraint(EVENTS, name=op.f("ck_channel_day_event")),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channel.id"],
            name=op.f("fk_channel_day_channel_id_channel"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "day", "event", name=op.f("pk_channel_day")),
    )

    op.create_table(
        "quota",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wave_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=32), nullable=False),
        sa.Column("target_count", sa.Integer(), nullable=True),
        sa.Column("target_share", sa.Float(), nullable=True),
        sa.Column("closes", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint(
            "(target_count IS NOT NULL AND target_count > 0 AND target_share IS NULL) OR "
            "(target_share IS NOT NULL AND target_share > 0 AND target_share <= 1 "
            "AND target_count IS NULL)",
            name=op.f("ck_quota_target"),
        ),
        sa.ForeignKeyConstraint(
            ["wave_id"], ["wave.id"], name=op.f("fk_quota_wave_id_wave"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota")),
        sa.UniqueConstraint("wave_id", "field", "value", name="uq_quota_cell"),
    )
    op.create_index(op.f("ix_quota_wave_id"), "quota", ["wave_id"], unique=False)

    # response: plain ADD COLUMN (a batch copy would drop the data_version triggers).
    if bind.dialect.name == "postgresql":
        op.add_column("response", sa.Column("channel_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_response_channel_id_channel"), "response", "channel", ["channel_id"], ["id"]
        )
    else:  # SQLite adds a column with an inline reference, nothing else
        op.execute("ALTER TABLE response ADD COLUMN channel_id INTEGER REFERENCES channel (id)")
    op.create_index(op.f("ix_response_channel_id"), "response", ["channel_id"], unique=False)
    op.create_index(op.f("ix_response_wave_id"), "response", ["wave_id"], unique=False)
    # Not a data change the results see: the triggers bump data_version, harmlessly.
    op.execute(
        "UPDATE response SET channel_id = (SELECT channel.id FROM channel "
        "WHERE channel.wave_id = response.wave_id AND channel.label = 'direct')"
    )

    with op.batch_alter_table("researcher", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=16), server_default="analyst", nullable=False)
        )
    op.execute("UPDATE researcher SET role = 'owner'")
    with op.batch_alter_table("researcher", schema=None) as batch_op:
        batch_op.create_check_constraint("role", "role IN ('owner', 'analyst')")

    op.create_table(
        "account_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('setup', 'invite')", name=op.f("ck_account_link_kind")),
        sa.CheckConstraint("role IN ('owner', 'analyst')", name=op.f("ck_account_link_role")),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["researcher.id"],
            name=op.f("fk_account_link_created_by_researcher"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_link_token_hash")),
    )
    op.create_table(
        "backup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backup")),
    )


def downgrade():
    op.drop_table("backup")
    op.drop_table("account_link")
    with op.batch_alter_table("researcher", schema=None) as batch_op:
        batch_op.drop_constraint("role", type_="check")
        batch_op.drop_column("role")
    op.drop_index(op.f("ix_response_wave_id"), table_name="response")
    op.drop_index(op.f("ix_response_channel_id"), table_name="response")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("fk_response_channel_id_channel"), "response", type_="foreignkey")
    op.drop_column("response", "channel_id")
    op.drop_index(op.f("ix_quota_wave_id"), table_name="quota")
    op.drop_table("quota")
    op.drop_table("channel_day")
    op.drop_index(op.f("ix_invitation_channel_id"), table_name="invitation")
    op.drop_table("invitation")
    op.drop_index(op.f("ix_channel_wave_id"), table_name="channel")
    op.drop_table("channel")
    with op.batch_alter_table("wave", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opened_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("closed_on", sa.Date(), nullable=True))
    op.execute(
        "UPDATE wave SET opened_on = CAST(opens_at AS DATE), closed_on = CAST(closes_at AS DATE)"
    )
    with op.batch_alter_table("wave", schema=None) as batch_op:
        batch_op.drop_constraint("dates", type_="check")
        batch_op.drop_constraint("target", type_="check")
        for name in ("created_on", "results_public", "is_pilot", "target", "time_zone"):
            batch_op.drop_column(name)
        batch_op.drop_column("closes_at")
        batch_op.drop_column("opens_at")
