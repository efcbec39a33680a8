"""Fieldwork: waves and their states, channels and their links, invitations, counters.

A wave is *not open yet* until its ``opens_at`` moment (NULL: not scheduled), *open* until
its ``closes_at`` moment (NULL: open-ended), then *closed*; a draft started before the close
may still be finished for ``WAVE_GRACE_HOURS``. Moments are stored in UTC (naive) and
shown in the wave's time zone (Europe/Moscow unless set otherwise).

Every wave has a ``direct`` channel, created with it; the bare site URL leads to the
default wave's. Other channels are the researcher's own (``linkedin``, ``hr-telegram``),
each with an unguessable ``/s/<slug>`` link. Single-use invitations belong to a channel;
only a SHA-256 of each token is stored, never who received it.

The per-channel daily counters (``channel_day``) keep what the rows cannot: links opened
(no cookie, no address), consents (a withdrawn or purged draft takes its row with it),
withdrawals, quota screen-outs and purged drafts.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from survey import auth
from survey.extensions import db
from survey.models import (
    DIRECT_CHANNEL,
    FUNNEL_EVENTS,
    WAVE_TIME_ZONE,
    Channel,
    ChannelDay,
    Invitation,
    Response,
    Wave,
)

WAVE_STATES = ("scheduled", "open", "closed")
CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
LABEL = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
SLUG = re.compile(r"[A-Za-z0-9_-]{1,32}")  # what new_slug() makes, and room to spare


class FieldworkError(ValueError):
    """A fieldwork change that cannot be made; ``field`` names the input at fault."""

    def __init__(self, field: str, message):
        super().__init__(field)
        self.field = field
        self.message = message  # lazy: shown in the language of wherever it is shown

    def __str__(self) -> str:
        return str(self.message)


def utcnow() -> dt.datetime:
    """Now, in UTC, naive: how wave moments are stored."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def today() -> dt.date:
    """Today's date in UTC: the counters' day, and every stored date (responses keep dates
    only, never a time of day)."""
    return utcnow().date()


def zone(name: str | None) -> ZoneInfo:
    """The time zone of that name; :class:`FieldworkError` if there is none."""
    try:
        return ZoneInfo(name or WAVE_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldworkError(
            "time_zone", _l("unknown time zone %(name)s", name=repr(name))
        ) from None


def to_utc(local: dt.datetime | None, time_zone: str) -> dt.datetime | None:
    """A wall-clock moment in ``time_zone`` as naive UTC (how waves store it)."""
    if local is None:
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone(time_zone))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def to_local(moment: dt.datetime | None, time_zone: str) -> dt.datetime | None:
    """A stored (naive UTC) moment in the wave's time zone, aware."""
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC).astimezone(zone(time_zone))


def state(wave: Wave, now: dt.datetime | None = None) -> str:
    """``'scheduled'`` (not open yet, or never scheduled), ``'open'`` or ``'closed'``."""
    now = now or utcnow()
    if wave.closes_at is not None and wave.closes_at <= now:
        return "closed"
    if wave.opens_at is None or wave.opens_at > now:
        return "scheduled"
    return "open"


def in_grace(wave: Wave, now: dt.datetime | None = None) -> bool:
    """Whether drafts of a closed wave may still be finished (``WAVE_GRACE_HOURS``)."""
    if wave.closes_at is None:
        return True
    hours = current_app.config["WAVE_GRACE_HOURS"]
    return (now or utcnow()) < wave.closes_at + dt.timedelta(hours=hours)


def accepts_drafts(wave: Wave, now: dt.datetime | None = None) -> bool:
    """Whether a draft already started in this wave may still be saved and submitted."""
    now = now or utcnow()
    return state(wave, now) == "open" or (state(wave, now) == "closed" and in_grace(wave, now))


def new_slug() -> str:
    """An unguessable channel slug: 16 URL-safe characters (96 random bits)."""
    return secrets.token_urlsafe(12)


def waves() -> list[Wave]:
    """Every wave, oldest first."""
    return list(db.session.scalars(select(Wave).order_by(Wave.id)))


def wave_by_code(code: str | None) -> Wave | None:
    """The wave with this code, or None."""
    if not code or not CODE.fullmatch(code):  # also keeps a NUL byte away from PostgreSQL
        return None
    return db.session.scalar(select(Wave).filter_by(code=code))


def default_wave() -> Wave:
    """The wave the bare site URL leads to; created (open now) on first use."""
    wave = db.session.scalar(select(Wave).filter_by(is_default=True))
    if wave is not None:
        return wave
    try:
        with db.session.begin_nested():  # two first visitors at once: one creates it
            wave = Wave(
                code="w1",
                name_ru="Волна 1",
                name_en="Wave 1",
                is_default=True,
                opens_at=utcnow(),
                time_zone=WAVE_TIME_ZONE,
                created_on=today(),
            )
            db.session.add(wave)
            db.session.flush()
            _add_direct_channel(wave)
    except IntegrityError:
        wave = db.session.scalar(select(Wave).filter_by(is_default=True))
        if wave is None:
            raise
    return wave


def _add_direct_channel(wave: Wave) -> Channel:
    channel = Channel(wave_id=wave.id, label=DIRECT_CHANNEL, slug=new_slug(), created_on=today())
    db.session.add(channel)
    db.session.flush()
    return channel


def direct_channel(wave: Wave) -> Channel:
    """The wave's ``direct`` channel (created if an older wave has none)."""
    channel = db.session.scalar(select(Channel).filter_by(wave_id=wave.id, label=DIRECT_CHANNEL))
    return channel or _add_direct_channel(wave)


def channel_by_slug(slug: str | None) -> Channel | None:
    """The channel of a public link, or None (an unknown or malformed slug)."""
    if not slug or not SLUG.fullmatch(slug):  # PostgreSQL refuses a NUL in a text value
        return None
    return db.session.scalar(select(Channel).filter_by(slug=slug))


@dataclass(frozen=True)
class WaveSpec:
    """What an owner sets when creating or editing a wave; moments are local wall-clock
    times in ``time_zone`` (naive) or None."""

    code: str
    name_ru: str
    name_en: str
    opens_at: dt.datetime | None = None
    closes_at: dt.datetime | None = None
    time_zone: str = WAVE_TIME_ZONE
    target: int | None = None
    is_pilot: bool = False


def create_wave(spec: WaveSpec) -> Wave:
    """Create a wave with its direct channel (commits); :class:`FieldworkError` on bad input."""
    code = (spec.code or "").strip().lower()
    if not CODE.fullmatch(code):
        raise FieldworkError(
            "code", _l("a code is 1-32 lowercase Latin letters, digits, '-' or '_'")
        )
    if wave_by_code(code) is not None:
        raise FieldworkError("code", _l("a wave with this code exists"))
    names = (spec.name_ru.strip(), spec.name_en.strip())
    if not all(names) or any(len(name) > 200 for name in names):
        raise FieldworkError("name_ru" if not names[0] else "name_en", _l("1-200 characters"))
    opens, closes = to_utc(spec.opens_at, spec.time_zone), to_utc(spec.closes_at, spec.time_zone)
    if opens is not None and closes is not None and closes <= opens:
        raise FieldworkError("closes_at", _l("the close must come after the opening"))
    if spec.target is not None and spec.target < 1:
        raise FieldworkError("target", _l("the target must be a positive number"))
    wave = Wave(
        code=code,
        name_ru=names[0],
        name_en=names[1],
        is_default=db.session.scalar(select(Wave.id).limit(1)) is None,
        opens_at=opens,
        closes_at=closes,
        time_zone=zone(spec.time_zone).key,
        target=spec.target,
        is_pilot=spec.is_pilot,
        created_on=today(),
    )
    db.session.add(wave)
    try:
        db.session.flush()
        _add_direct_channel(wave)
        db.session.commit()
    except IntegrityError:  # the same code created at the same moment
        db.session.rollback()
        raise FieldworkError("code", _l("a wave with this code exists")) from None
    return wave


def open_wave(wave: Wave, at: dt.datetime | None = None) -> None:
    """Open a wave now, or at ``at`` (local wall-clock time in its zone); a closed wave
    reopens (its close is cleared when it lies before the new opening). Commits."""
    opens = utcnow() if at is None else to_utc(at, wave.time_zone)
    wave.opens_at = opens
    if wave.closes_at is not None and wave.closes_at <= opens:
        wave.closes_at = None
    db.session.commit()


def close_wave(wave: Wave, at: dt.datetime | None = None) -> None:
    """Close a wave now, or at ``at`` (local wall-clock time in its zone). Commits."""
    closes = utcnow() if at is None else to_utc(at, wave.time_zone)
    if wave.opens_at is not None and closes <= wave.opens_at:
        raise FieldworkError("closes_at", _l("the close must come after the opening"))
    wave.closes_at = closes
    db.session.commit()


def make_default(wave: Wave) -> None:
    """Let the bare site URL lead to this wave. Commits."""
    db.session.execute(update(Wave).where(Wave.id != wave.id).values(is_default=False))
    wave.is_default = True
    db.session.commit()


def set_pilot(wave: Wave, is_pilot: bool) -> None:
    """Mark a wave pilot or not. Its responses move out of (or into) the main analysis, so
    ``data_version`` is bumped in the same transaction: cached results are stale. Commits."""
    from survey.models import DataVersion

    if wave.is_pilot != is_pilot:
        wave.is_pilot = is_pilot
        bump = update(DataVersion).where(DataVersion.id == 1)
        db.session.execute(bump.values(version=DataVersion.version + 1))
    db.session.commit()


def set_results_public(wave: Wave, public: bool) -> None:
    """Show the wave's public summary at ``/results/<code>`` (survey/public.py), or hide it.

    A pilot wave's results stay internal: publishing one is a :class:`FieldworkError`
    (and a published wave later marked pilot is not shown). Commits.
    """
    if public and wave.is_pilot:
        raise FieldworkError("results_public", _l("a pilot wave's results cannot be published"))
    wave.results_public = public
    db.session.commit()


def create_channel(wave: Wave, label: str) -> Channel:
    """A new channel of a wave with its own unguessable link (commits)."""
    label = (label or "").strip().lower()
    if not LABEL.fullmatch(label):
        raise FieldworkError(
            "label", _l("a label is 1-40 lowercase Latin letters, digits, '-' or '_'")
        )
    channel = Channel(wave_id=wave.id, label=label, slug=new_slug(), created_on=today())
    db.session.add(channel)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise FieldworkError("label", _l("this wave has a channel with this label")) from None
    return channel


def create_invitations(channel: Channel, count: int) -> list[str]:
    """Generate ``count`` single-use invitation tokens for a channel and return them: the
    only time they exist in clear (only their hashes are stored). Commits."""
    limit = current_app.config["MAX_INVITATIONS"]
    if not 1 <= count <= limit:
        raise FieldworkError(
            "count", _l("between 1 and %(limit)s invitations at a time", limit=limit)
        )
    tokens = [secrets.token_urlsafe(18) for _ in range(count)]
    day = today()
    db.session.add_all(
        Invitation(channel_id=channel.id, token_hash=auth.token_hash(token), created_on=day)
        for token in tokens
    )
    db.session.commit()
    return tokens


def invitation_by_token(token: str | None) -> Invitation | None:
    """The invitation of a link token, or None."""
    if not token or len(token) > 64:
        return None
    return db.session.scalar(select(Invitation).filter_by(token_hash=auth.token_hash(token)))


def count(channel_id: int, event: str, by: int = 1, day: dt.date | None = None) -> None:
    """Add to a channel's counter of an event for today (UTC); the caller commits.

    An UPDATE first; when no row exists yet an INSERT in a savepoint, and if another
    request inserted it a moment earlier, the UPDATE again.
    """
    if event not in FUNNEL_EVENTS:
        raise ValueError(f"unknown funnel event {event!r}")
    day = day or today()
    key = (ChannelDay.channel_id == channel_id, ChannelDay.day == day, ChannelDay.event == event)
    bump = update(ChannelDay).where(*key).values(count=ChannelDay.count + by)
    if db.session.execute(bump).rowcount:
        return
    try:
        with db.session.begin_nested():
            db.session.add(ChannelDay(channel_id=channel_id, day=day, event=event, count=by))
    except IntegrityError:
        db.session.execute(bump)


def channel_by_id(channel_id: object) -> Channel | None:
    """The channel with this id (as a browser session remembers it), or None."""
    if not isinstance(channel_id, int) or isinstance(channel_id, bool):
        return None
    return db.session.get(Channel, channel_id)


def wave_by_id(wave_id: int) -> Wave:
    """The wave with this id (a response's: its foreign key guarantees one)."""
    return db.session.get_one(Wave, wave_id)


def invitation_response(invitation: Invitation) -> Response | None:
    """The response an invitation started, or None (not used yet, withdrawn or purged)."""
    if invitation.response_id is None:
        return None
    return db.session.get(Response, invitation.response_id)


def bind_invitation(invitation: Invitation, response_id: int) -> bool:
    """Mark an invitation used by a response, in the caller's transaction; False if it
    was used already. One conditional UPDATE: of two browsers consenting through the
    same link at once, only one binds it."""
    result = db.session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation.id,
            Invitation.response_id.is_(None),
            Invitation.used_on.is_(None),
        )
        .values(response_id=response_id, used_on=today())
    )
    return result.rowcount == 1


def record(channel_id: int, event: str) -> None:
    """Count an event for a channel on its own (a link opened) and commit."""
    count(channel_id, event)
    db.session.commit()
