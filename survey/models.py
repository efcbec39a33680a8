"""Typed SQLAlchemy 2.x models. The database enforces what it can: checks, uniques, keys."""

from __future__ import annotations

import datetime as dt
import secrets

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from survey.catalog import REWARDS
from survey.questions import COMPANY_KINDS, RATED, WORKED_IN_KINDS

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# COMPANY_KINDS (the kinds of company an answer is about) is defined in survey/questions.py
# and imported here, so that ``survey.models.COMPANY_KINDS`` names the same one list.

# 'applied', 'existed', 'no', 'dk': the scale asked since 2026-12; 'not_my_role': the answer
# offered for function-specific practices; 'yes': the former "met it" (before 2026-12);
# 'na': a kind of company the respondent did not work in. See survey/questions.py.
MET_VALUES = ("applied", "existed", "no", "dk", "not_my_role", "yes", "na")
STATUSES = ("draft", "submitted")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def new_export_id() -> str:
    """Random public identifier of a response, used in anonymized exports."""
    return secrets.token_hex(8)


class Base(DeclarativeBase):
    """The declarative base: constraints and indexes named by ``NAMING``, as migrations expect."""

    metadata = MetaData(naming_convention=NAMING)


WAVE_TIME_ZONE = "Europe/Moscow"


class Wave(Base):
    """A fieldwork wave; every response belongs to one (survey/fieldwork.py).

    Its state follows from two moments, both stored in UTC (naive ``DateTime``) and shown in
    ``time_zone``: not open yet (``opens_at`` NULL or in the future), open, closed
    (``closes_at`` passed). Several waves may be open at once. The bare site URL leads to
    the ``is_default`` one. A pilot wave's responses stay out of the main analysis and
    exports unless asked for, and are labelled wherever they show.
    """

    __tablename__ = "wave"
    __table_args__ = (
        CheckConstraint("target IS NULL OR target > 0", name="target"),
        CheckConstraint(
            "opens_at IS NULL OR closes_at IS NULL OR closes_at > opens_at", name="dates"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_ru: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    opens_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    closes_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    time_zone: Mapped[str] = mapped_column(
        String(64), default=WAVE_TIME_ZONE, server_default=WAVE_TIME_ZONE
    )
    # The number of completed responses aimed at; NULL: none set.
    target: Mapped[int | None] = mapped_column()
    is_pilot: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Whether /results/<code> shows this wave's public summary (issue 16); off by default.
    results_public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_on: Mapped[dt.date | None] = mapped_column(Date)

    channels: Mapped[list[Channel]] = relationship(
        back_populates="wave", order_by="Channel.id", cascade="all, delete-orphan"
    )
    quotas: Mapped[list[Quota]] = relationship(
        back_populates="wave", order_by="Quota.id", cascade="all, delete-orphan"
    )


DIRECT_CHANNEL = "direct"


class Channel(Base):
    """A way respondents reach a wave, with its own public link ``/s/<slug>``.

    Every wave has a ``direct`` channel (created with it): the bare site URL leads to the
    default wave's. The slug is random and unguessable; the label is the researcher's
    short name for the channel (``linkedin``, ``hr-telegram``), unique within the wave.
    """

    __tablename__ = "channel"
    __table_args__ = (UniqueConstraint("wave_id", "label", name="uq_channel_wave_label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("wave.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(40))
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    created_on: Mapped[dt.date] = mapped_column(Date)

    wave: Mapped[Wave] = relationship(back_populates="channels")


class Invitation(Base):
    """A single-use invitation link of a channel (LimeSurvey's participant token without
    the participant): only the token's SHA-256 is kept, never who received it.

    ``response_id`` is the one response the link started (NULL: not used yet, or the
    response was withdrawn or purged, see ``used_on``); opening the link again resumes it.
    """

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channel.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_on: Mapped[dt.date] = mapped_column(Date)
    used_on: Mapped[dt.date | None] = mapped_column(Date)
    response_id: Mapped[int | None] = mapped_column(
        ForeignKey("response.id", ondelete="SET NULL"), unique=True
    )


FUNNEL_EVENTS = ("opened", "consented", "withdrawn", "screened_out", "purged")


class ChannelDay(Base):
    """Plain counters of one channel on one day (UTC): links opened (no cookie, no address),
    consents given, responses withdrawn, respondents screened out by a full quota, drafts
    purged. Counters, because the rows they count may be deleted later (withdrawal, purge).
    """

    __tablename__ = "channel_day"
    __table_args__ = (CheckConstraint(_in("event", FUNNEL_EVENTS), name="event"),)

    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channel.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    event: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class Quota(Base):
    """A target for one background value in one wave: a count of completed responses, or a
    share of the wave's completed responses (of its target when it has one). ``closes``:
    once the cell is full, a new respondent in it is thanked after the background page and
    nothing of theirs is kept."""

    __tablename__ = "quota"
    __table_args__ = (
        UniqueConstraint("wave_id", "field", "value", name="uq_quota_cell"),
        CheckConstraint(
            "(target_count IS NOT NULL AND target_count > 0 AND target_share IS NULL) OR "
            "(target_share IS NOT NULL AND target_share > 0 AND target_share <= 1 "
            "AND target_count IS NULL)",
            name="target",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    wave_id: Mapped[int] = mapped_column(ForeignKey("wave.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(32))
    target_count: Mapped[int | None] = mapped_column()
    target_share: Mapped[float | None] = mapped_column(Float)
    closes: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    wave: Mapped[Wave] = relationship(back_populates="quotas")


class CatalogVersion(Base):
    """One version of the practice catalogue, with a full snapshot of its texts."""

    __tablename__ = "catalog_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    checksum: Mapped[str] = mapped_column(String(64), unique=True)
    loaded_on: Mapped[dt.date] = mapped_column(Date)
    content: Mapped[dict] = mapped_column(JSON)


class Category(Base):
    """A theme of the catalogue; practice pages follow categories."""

    __tablename__ = "category"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger)
    name_ru: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))


class Practice(Base):
    """A motivation practice; never deleted, only deactivated, so answers keep their key."""

    __tablename__ = "practice"
    __table_args__ = (CheckConstraint(_in("reward", REWARDS), name="reward"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    category_id: Mapped[str] = mapped_column(ForeignKey("category.id"))
    position: Mapped[int] = mapped_column(SmallInteger)
    reward: Mapped[str] = mapped_column(String(24))
    name_ru: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Response(Base):
    """One respondent's questionnaire: a draft until submitted, then final.

    Only dates are stored, never a time of day, an IP address or a user agent.
    """

    __tablename__ = "response"
    __table_args__ = (
        CheckConstraint(_in("status", STATUSES), name="status"),
        CheckConstraint("language IN ('ru', 'en')", name="language"),
        CheckConstraint(
            "worked_in IS NULL OR worked_in IN ('ru_only', 'foreign_only', 'both')",
            name="worked_in",
        ),
        CheckConstraint(
            "status = 'draft' OR (submitted_on IS NOT NULL AND worked_in IS NOT NULL "
            "AND current_employer IS NOT NULL AND industry IS NOT NULL "
            "AND company_size IS NOT NULL AND role_level IS NOT NULL "
            "AND experience_band IS NOT NULL)",
            name="submitted_complete",
        ),
        CheckConstraint(
            "(ru_years IS NULL AND ru_last_year IS NULL AND ru_employers IS NULL "
            "AND ru_role_level IS NULL AND ru_function IS NULL) "
            "OR (worked_in IS NOT NULL AND worked_in IN ('ru_only', 'both'))",
            name="ru_block_worked_in",
        ),
        CheckConstraint(
            "(foreign_years IS NULL AND foreign_last_year IS NULL AND foreign_employers IS NULL "
            "AND foreign_role_level IS NULL AND foreign_function IS NULL) "
            "OR (worked_in IS NOT NULL AND worked_in IN ('foreign_only', 'both'))",
            name="foreign_block_worked_in",
        ),
        Index("ix_response_status_demo", "status", "is_demo"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    export_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_export_id)
    resume_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(12), default="draft")
    wave_id: Mapped[int] = mapped_column(ForeignKey("wave.id"), index=True)
    # The channel the respondent came through (NULL only in demo rows seeded without one).
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channel.id"), index=True)
    catalog_version_id: Mapped[int] = mapped_column(ForeignKey("catalog_version.id"))
    language: Mapped[str] = mapped_column(String(2), default="ru")
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_version: Mapped[str] = mapped_column(String(16))
    consented_on: Mapped[dt.date] = mapped_column(Date)
    started_on: Mapped[dt.date] = mapped_column(Date)
    updated_on: Mapped[dt.date] = mapped_column(Date, index=True)
    submitted_on: Mapped[dt.date | None] = mapped_column(Date)
    last_page: Mapped[int] = mapped_column(SmallInteger, default=0)
    worked_in: Mapped[str | None] = mapped_column(String(16))
    current_employer: Mapped[str | None] = mapped_column(String(32))
    industry: Mapped[str | None] = mapped_column(String(32))
    company_size: Mapped[str | None] = mapped_column(String(32))
    role_level: Mapped[str | None] = mapped_column(String(32))
    # Asked since 2026-12 (NULL in earlier responses), like the per-kind columns below.
    job_function: Mapped[str | None] = mapped_column(String(32))
    experience_band: Mapped[str | None] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(32))
    # Each kind of company the respondent worked in, anchored (survey/questions.py
    # KIND_BACKGROUND): years there, the last year there (the period the kind's answers
    # refer to), number of such employers, highest role level and main function there.
    # NULL for a kind not worked in, and in responses from before 2026-12 (not asked).
    ru_years: Mapped[str | None] = mapped_column(String(16))
    ru_last_year: Mapped[str | None] = mapped_column(String(16))
    ru_employers: Mapped[str | None] = mapped_column(String(16))
    ru_role_level: Mapped[str | None] = mapped_column(String(32))
    ru_function: Mapped[str | None] = mapped_column(String(32))
    foreign_years: Mapped[str | None] = mapped_column(String(16))
    foreign_last_year: Mapped[str | None] = mapped_column(String(16))
    foreign_employers: Mapped[str | None] = mapped_column(String(16))
    foreign_role_level: Mapped[str | None] = mapped_column(String(32))
    foreign_function: Mapped[str | None] = mapped_column(String(32))
    # Likely bot: 'honeypot' (a hidden field was filled) or 'too_fast'. Kept, but left out
    # of the analysis and the export unless asked for.
    quality_flag: Mapped[str | None] = mapped_column(String(16))
    # Seconds spent on the background and practice pages, each page capped: a duration,
    # never a time of day. The too-fast check reads it, whichever browser submits.
    active_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    # The respondent's own question order, drawn once at consent (survey/paradata.py):
    # {"pages": [page keys in the order shown], "practices": {page key: [practice ids in
    # the order shown]}, "first_kind": "ru" | "foreign"}. NULL (responses from before
    # randomisation, demo rows): the catalogue's order, Russian companies first.
    question_order: Mapped[dict | None] = mapped_column(JSON)
    # Quality indicators, computed at submit (recomputable: flask recompute-quality).
    # NULL: not assessed (earlier responses, demo rows). See survey/paradata.py.
    fictitious_claimed: Mapped[bool | None] = mapped_column(Boolean)
    straightlined_pages: Mapped[int | None] = mapped_column(SmallInteger)
    speeding_pages: Mapped[int | None] = mapped_column(SmallInteger)
    low_quality: Mapped[bool | None] = mapped_column(Boolean)
    # The compact answer vector (survey/vectors.py): one character per (practice, kind) cell
    # in the layout of this response's catalogue version, derived from its answer rows (the
    # source of truth) in the same transaction by every write path; '.' for a cell not
    # answered yet, so a new draft holds all dots. `flask verify-answers` checks it.
    answer_code: Mapped[str | None] = mapped_column(Text)

    answers: Mapped[list[Answer]] = relationship(
        back_populates="response", cascade="all, delete-orphan", passive_deletes=True
    )
    examples: Mapped[list[PracticeExample]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    def kinds(self) -> tuple[str, ...]:
        """Company kinds this respondent worked in, in questionnaire order."""
        return WORKED_IN_KINDS.get(self.worked_in or "", ())


class Answer(Base):
    """Whether a respondent met a practice in one kind of company, and its rating."""

    __tablename__ = "answer"
    __table_args__ = (
        UniqueConstraint("response_id", "practice_id", "company_kind", name="uq_answer_cell"),
        CheckConstraint(_in("company_kind", COMPANY_KINDS), name="company_kind"),
        CheckConstraint(_in("met", MET_VALUES), name="met"),
        CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name="rating_range"),
        CheckConstraint(f"rating IS NULL OR {_in('met', RATED)}", name="rating_only_when_met"),
        CheckConstraint(
            f"NOT rating_mixed OR (rating IS NULL AND {_in('met', RATED)})", name="rating_mixed"
        ),
        # No index on (practice_id, company_kind): every aggregation scans all answers of the
        # selected responses, so it was never used, and it cost a third of the bulk-insert time.
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("response.id", ondelete="CASCADE"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practice.id"))
    company_kind: Mapped[str] = mapped_column(String(8))
    met: Mapped[str] = mapped_column(String(12))
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    # "Mixed / can't say" instead of a rating: non-substantive, never in a rating statistic.
    rating_mixed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    response: Mapped[Response] = relationship(back_populates="answers")


class ResponsePage(Base):
    """One questionnaire page of one response: the seconds it was open, and its quality
    indicators (set at submit). ``page`` is the catalogue page's key, or ``background``.

    A row per page rather than a JSON column: two tabs saving pages at once both add their
    seconds (an SQL increment of one row), and page medians are one query across responses.
    """

    __tablename__ = "response_page"
    __table_args__ = (
        CheckConstraint("language IS NULL OR language IN ('ru', 'en')", name="language"),
    )

    response_id: Mapped[int] = mapped_column(
        ForeignKey("response.id", ondelete="CASCADE"), primary_key=True
    )
    page: Mapped[str] = mapped_column(String(80), primary_key=True)
    # Whole seconds, each visit capped (a duration, never a time of day); NULL: unknown.
    seconds: Mapped[int | None] = mapped_column()
    # The interface language of the page's latest save ('ru' or 'en'); NULL: not saved yet,
    # or saved before page languages were stored (migration 0008).
    language: Mapped[str | None] = mapped_column(String(2))
    straightlining: Mapped[bool | None] = mapped_column(Boolean)
    speeding: Mapped[bool | None] = mapped_column(Boolean)


class FictitiousAnswer(Base):
    """An answer about a fictitious practice (the over-claiming check).

    Kept out of ``answer`` on purpose: no count, comparison, figure or export that reads
    answers can ever meet it. Its only use is the ``fictitious_claimed`` indicator.
    """

    __tablename__ = "fictitious_answer"
    __table_args__ = (
        CheckConstraint(_in("company_kind", COMPANY_KINDS), name="company_kind"),
        CheckConstraint(_in("met", MET_VALUES), name="met"),
        CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name="rating_range"),
        CheckConstraint(f"rating IS NULL OR {_in('met', RATED)}", name="rating_only_when_met"),
        CheckConstraint(
            f"NOT rating_mixed OR (rating IS NULL AND {_in('met', RATED)})", name="rating_mixed"
        ),
    )

    response_id: Mapped[int] = mapped_column(
        ForeignKey("response.id", ondelete="CASCADE"), primary_key=True
    )
    practice_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    company_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    met: Mapped[str] = mapped_column(String(12))
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    rating_mixed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class PracticeExample(Base):
    """An optional free-text example a respondent gave for a practice in one kind of company.

    ``company_kind`` NULL means "not stated": examples written before there was a box per
    kind (migration 0008). The unique constraint treats NULLs as distinct, but such rows
    come only from the migration, which carries over the one example per practice that
    the former constraint allowed.
    """

    __tablename__ = "practice_example"
    __table_args__ = (
        UniqueConstraint(
            "response_id", "practice_id", "company_kind", name="uq_practice_example_cell"
        ),
        CheckConstraint(
            f"company_kind IS NULL OR {_in('company_kind', COMPANY_KINDS)}", name="company_kind"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("response.id", ondelete="CASCADE"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practice.id"))
    company_kind: Mapped[str | None] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)


class DataVersion(Base):
    """One row whose ``version`` changes in the same transaction as anything results show.

    Database triggers on ``response`` (migration 0010) bump it whenever a submitted
    response is inserted, deleted or updated, or a response is submitted (a draft's page
    save leaves it alone): a repeated view is one row read to know that its cached result
    is still current. It starts at a random number, so that two databases (a re-created
    one at the same address) practically never show the same version.
    """

    __tablename__ = "data_version"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


ROLES = ("owner", "analyst")


class Researcher(UserMixin, Base):
    """A researcher who may read results; passwords are stored as werkzeug (scrypt) hashes."""

    __tablename__ = "researcher"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_on: Mapped[dt.date] = mapped_column(Date)
    # Part of every login session's id: raising it ends all sessions of this researcher.
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")
    # 'owner' manages fieldwork and researcher accounts; 'analyst' reads results.
    role: Mapped[str] = mapped_column(String(16), default="analyst", server_default="analyst")

    @property
    def is_owner(self) -> bool:
        """Whether this researcher may manage fieldwork and accounts."""
        return self.role == "owner"

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="researcher")

    @property
    def is_active(self) -> bool:  # Flask-Login
        """Flask-Login's name for ``active``: a revoked account cannot log in."""
        return self.active

    def get_id(self) -> str:
        """Flask-Login's session id: "<id>:<session_epoch>" (the docs' "alternative tokens")."""
        return f"{self.id}:{self.session_epoch}"

    def end_sessions(self) -> None:
        """Invalidate every login session of this researcher (takes effect on commit)."""
        self.session_epoch = Researcher.session_epoch + 1


class LoginFailure(Base):
    """Failed researcher logins counted in one fixed time window (the login throttle's store).

    ``bucket`` is a keyed SHA-256 (HMAC) of what is counted: an account, a client address, or
    the pair; neither an e-mail address nor a client address is stored.
    """

    __tablename__ = "login_failure"

    bucket: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    failures: Mapped[int] = mapped_column(default=0)


class ApiToken(Base):
    """An API token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    researcher_id: Mapped[int] = mapped_column(ForeignKey("researcher.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_on: Mapped[dt.date] = mapped_column(Date)
    revoked_on: Mapped[dt.date | None] = mapped_column(Date)

    researcher: Mapped[Researcher] = relationship(back_populates="tokens")


ACCOUNT_LINK_KINDS = ("setup", "invite")


class AccountLink(Base):
    """A one-time link to set a password: ``setup`` creates the first owner when no account
    exists (printed by ``make run``), ``invite`` is an owner's invitation of a researcher
    with the given e-mail and role. Only the token's SHA-256 is stored; it expires."""

    __tablename__ = "account_link"
    __table_args__ = (
        CheckConstraint(_in("kind", ACCOUNT_LINK_KINDS), name="kind"),
        CheckConstraint(_in("role", ROLES), name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("researcher.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Backup(Base):
    """A backup taken with ``flask backup`` (survey/backup.py): when, where, how large."""

    __tablename__ = "backup"

    id: Mapped[int] = mapped_column(primary_key=True)
    taken_at: Mapped[dt.datetime] = mapped_column(DateTime)
    file_name: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)


JOB_KINDS = ("export", "report")
JOB_STATUSES = ("queued", "running", "done", "failed")
# Why a job failed: the export's request or its anonymity check, the report's disclosure
# gate, an unexpected error, or the process that ran it stopped (no heartbeat).
JOB_ERRORS = ("bad_request", "export_refused", "withheld", "internal", "worker_lost")


def new_job_id() -> str:
    """The public id of a background job: 32 random URL-safe characters, not guessable."""
    return secrets.token_urlsafe(24)


class Job(Base):
    """A long export or report computed in the background (survey/jobs.py).

    The state lives here, so any worker can show it; the result is a file under the
    instance folder (``result_path``, relative to it) until ``expires_at``. Times are UTC.
    """

    __tablename__ = "job"
    __table_args__ = (
        CheckConstraint(_in("kind", JOB_KINDS), name="kind"),
        CheckConstraint(_in("status", JOB_STATUSES), name="status"),
        CheckConstraint(_in("error", JOB_ERRORS), name="error"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
        CheckConstraint("status = 'done' OR result_path IS NULL", name="result_when_done"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_job_id)
    kind: Mapped[str] = mapped_column(String(16))
    parameters: Mapped[dict] = mapped_column(JSON)
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("researcher.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
    result_path: Mapped[str | None] = mapped_column(String(255))
    download_name: Mapped[str | None] = mapped_column(String(255))
    mimetype: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
