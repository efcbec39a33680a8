"""Fieldwork on the command line: ``flask --app survey wave|channel|invitations|quota ...``.

The same changes as the owner's pages (:mod:`survey.manage`). Dates are ISO 8601 local
times in the wave's time zone (``--at 2027-03-01T09:00``; an offset such as ``+03:00`` is
honoured). Invitation links are written once, to a new file (never over an existing one).
"""

from __future__ import annotations

import datetime as dt

import click
from flask import current_app
from flask.cli import with_appcontext

from survey import fieldwork, manage
from survey.fieldwork import FieldworkError
from survey.models import WAVE_TIME_ZONE, Wave

STATE_WORDS = {"scheduled": "not open yet", "open": "open", "closed": "closed"}


class Moment(click.ParamType):
    """An ISO 8601 date and time (naive: local time in the wave's zone)."""

    name = "DATETIME"

    def convert(self, value, param, ctx) -> dt.datetime:
        """Parse the option's text (a datetime passes as it is); a usage error if invalid."""
        if isinstance(value, dt.datetime):
            return value
        try:
            return manage.parse_moment(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


MOMENT = Moment()


def _wave(code: str) -> Wave:
    wave = fieldwork.wave_by_code(code)
    if wave is None:
        raise click.BadParameter(f"no wave has the code {code!r}", param_hint="WAVE")
    return wave


def _fail(exc: FieldworkError):
    option = "--" + exc.field.replace("_", "-")
    return click.UsageError(f"{option}: {manage.english(exc)}")


def _moment(moment: dt.datetime | None, time_zone: str) -> str:
    local = fieldwork.to_local(moment, time_zone)
    return "-" if local is None else f"{local:%Y-%m-%d %H:%M %Z}"


def _no_control(value: str, hint: str) -> str:
    if manage.has_control_characters(value):
        raise click.BadParameter("control characters are not allowed", param_hint=hint)
    return value


def _new_file(path: str, data: bytes) -> None:
    """Write a new file, private (0600); an existing one is never overwritten."""
    from survey.storage import private_opener

    try:
        with open(path, "xb", opener=private_opener) as fh:
            fh.write(data)
    except FileExistsError:
        raise click.ClickException(f"{path} exists; choose another file name.") from None
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror}") from None


# ---------------------------------------------------------------- wave


@click.group("wave")
def wave_group() -> None:
    """Survey waves: list, create, open, close, default, pilot, publish, unpublish."""


@wave_group.command("list")
@with_appcontext
def wave_list() -> None:
    """Every wave: state, dates (in its time zone), target, completed, channels."""
    rows, demo = manage.wave_rows()
    if not rows:
        click.echo("No wave yet.")
    elif demo:
        click.echo("(counts of DEMO data: synthetic respondents)")
    for row in rows:
        wave = row["wave"]
        flags = (
            ("pilot", wave.is_pilot),
            ("default", wave.is_default),
            ("results public", wave.results_public and not wave.is_pilot),
        )
        marks = [mark for mark, on in flags if on]
        click.echo(
            f"{wave.code}\t{STATE_WORDS[fieldwork.state(wave)]}\t"
            f"opens {_moment(wave.opens_at, wave.time_zone)}\t"
            f"closes {_moment(wave.closes_at, wave.time_zone)}\t"
            f"target {wave.target if wave.target is not None else '-'}\t"
            f"completed {row['completed']}\tchannels {row['channels']}"
            + (f"\t{', '.join(marks)}" if marks else "")
            + f"\t{wave.name_en} / {wave.name_ru}"
        )


@wave_group.command("create")
@with_appcontext
@click.argument("code")
@click.option("--name-ru", required=True, help="The wave's name in Russian.")
@click.option("--name-en", required=True, help="The wave's name in English.")
@click.option("--opens-at", type=MOMENT, help="Local date and time it opens (ISO 8601).")
@click.option("--closes-at", type=MOMENT, help="Local date and time it closes (ISO 8601).")
@click.option("--time-zone", default=WAVE_TIME_ZONE, show_default=True, help="IANA time zone.")
@click.option(
    "--target",
    type=click.IntRange(1, manage.MAX_TARGET),
    help="The number of completed responses aimed at.",
)
@click.option("--pilot", is_flag=True, help="A pilot wave: kept out of the main analysis.")
def wave_create(code, name_ru, name_en, opens_at, closes_at, time_zone, target, pilot) -> None:
    """Create a wave CODE (with its direct channel)."""
    spec = fieldwork.WaveSpec(
        code=_no_control(code, "CODE"),
        name_ru=_no_control(name_ru, "--name-ru"),
        name_en=_no_control(name_en, "--name-en"),
        opens_at=opens_at,
        closes_at=closes_at,
        time_zone=time_zone,
        target=target,
        is_pilot=pilot,
    )
    try:
        wave = fieldwork.create_wave(spec)
    except FieldworkError as exc:
        raise _fail(exc) from None
    click.echo(f"Created wave {wave.code} ({STATE_WORDS[fieldwork.state(wave)]}).")


@wave_group.command("open")
@with_appcontext
@click.argument("code")
@click.option("--at", type=MOMENT, help="Open at this local time (default: now).")
def wave_open(code: str, at: dt.datetime | None) -> None:
    """Open a wave now, or at --at."""
    wave = _wave(code)
    try:
        fieldwork.open_wave(wave, at)
    except FieldworkError as exc:
        raise _fail(exc) from None
    click.echo(f"Wave {wave.code} opens {_moment(wave.opens_at, wave.time_zone)}.")


@wave_group.command("close")
@with_appcontext
@click.argument("code")
@click.option("--at", type=MOMENT, help="Close at this local time (default: now).")
def wave_close(code: str, at: dt.datetime | None) -> None:
    """Close a wave now, or at --at."""
    wave = _wave(code)
    try:
        fieldwork.close_wave(wave, at)
    except FieldworkError as exc:
        raise click.UsageError(f"--at: {manage.english(exc)}") from None
    click.echo(f"Wave {wave.code} closes {_moment(wave.closes_at, wave.time_zone)}.")


@wave_group.command("default")
@with_appcontext
@click.argument("code")
def wave_default(code: str) -> None:
    """Let the bare site URL lead to this wave."""
    wave = _wave(code)
    fieldwork.make_default(wave)
    click.echo(f"The bare survey link now leads to wave {wave.code}.")


@wave_group.command("pilot")
@with_appcontext
@click.argument("code")
@click.option("--on/--off", "on", default=True, show_default=True, help="Pilot or main wave.")
def wave_pilot(code: str, on: bool) -> None:
    """Mark a wave pilot (--on) or a main wave (--off)."""
    wave = _wave(code)
    fieldwork.set_pilot(wave, on)
    click.echo(f"Wave {wave.code} is {'a pilot' if on else 'a main'} wave.")


@wave_group.command("publish")
@with_appcontext
@click.argument("code")
def wave_publish(code: str) -> None:
    """Publish the wave's results summary at /results/CODE (no personal answer)."""
    wave = _wave(code)
    try:
        fieldwork.set_results_public(wave, True)
    except FieldworkError as exc:
        raise click.UsageError(manage.english(exc)) from None
    click.echo(f"The results summary of wave {wave.code} is public: {manage.results_url(wave)}")


@wave_group.command("unpublish")
@with_appcontext
@click.argument("code")
def wave_unpublish(code: str) -> None:
    """Hide the wave's results summary again (/results/CODE answers 404)."""
    wave = _wave(code)
    fieldwork.set_results_public(wave, False)
    click.echo(f"The results summary of wave {wave.code} is hidden.")


# ---------------------------------------------------------------- channel


@click.group("channel")
def channel_group() -> None:
    """Channels of a wave: list, create, qr."""


@channel_group.command("list")
@with_appcontext
@click.argument("wave")
def channel_list(wave: str) -> None:
    """A wave's channels: public link, opened, started, completed, invitations."""
    summary = manage.wave_summary(_wave(wave))
    if summary["demo"]:
        click.echo("(counts of DEMO data: synthetic respondents)")
    for c in summary["channels"]:
        rate = c["completion_rate"]
        click.echo(
            f"{c['label']}\t{c['link']}\topened {c['opened']}\tstarted {c['started']}\t"
            f"completed {c['completed']}\t"
            f"completion {'-' if rate is None else f'{rate:.1%}'}\t"
            f"invitations {c['invitations_generated']} (used {c['invitations_used']})"
        )


@channel_group.command("create")
@with_appcontext
@click.argument("wave")
@click.argument("label")
def channel_create(wave: str, label: str) -> None:
    """Create a channel LABEL of WAVE with its own public link."""
    found = _wave(wave)
    try:
        channel = fieldwork.create_channel(found, _no_control(label, "LABEL"))
    except FieldworkError as exc:
        raise click.BadParameter(manage.english(exc), param_hint="LABEL") from None
    click.echo(f"Channel {channel.label}: {manage.channel_url(channel)}")


def _channel(wave: str, label: str):
    found = _wave(wave)
    channel = manage.channel_or_none(found, label)
    if channel is None:
        raise click.BadParameter(f"wave {found.code} has no channel {label!r}", param_hint="LABEL")
    return found, channel


@channel_group.command("qr")
@with_appcontext
@click.argument("wave")
@click.argument("label")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The image file to write: .svg or .png (never overwritten).",
)
def channel_qr(wave: str, label: str, out: str) -> None:
    """Write the QR code of a channel's public link for print (SVG or PNG)."""
    _found, channel = _channel(wave, label)
    kind = out.rsplit(".", 1)[-1].lower()
    if kind not in ("svg", "png"):
        raise click.BadParameter("the file name must end in .svg or .png", param_hint="--out")
    url = manage.channel_url(channel)
    body, _mimetype = manage.qr_image(url, kind)
    _new_file(out, body)
    click.echo(f"Wrote {out}: {url}")


# ---------------------------------------------------------------- invitations


@click.group("invitations")
def invitations_group() -> None:
    """Single-use invitation links of a channel."""


@invitations_group.command("create")
@with_appcontext
@click.argument("wave")
@click.argument("channel")
@click.argument("count", type=click.IntRange(min=1))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The CSV file to write the links to (a new file; never overwritten).",
)
def invitations_create(wave: str, channel: str, count: int, out: str) -> None:
    """Generate COUNT invitation links for CHANNEL of WAVE into a new CSV file: the only
    time they exist (only a hash of each is stored)."""
    from survey.storage import private_opener

    _found, found_channel = _channel(wave, channel)
    limit = current_app.config["MAX_INVITATIONS"]
    if count > limit:
        raise click.BadParameter(f"at most {limit} at a time (MAX_INVITATIONS)", param_hint="COUNT")
    try:  # the file first: if it cannot be made, no invitation is stored
        handle = open(out, "x", encoding="utf-8", newline="", opener=private_opener)  # noqa: SIM115
    except FileExistsError:
        raise click.ClickException(f"{out} exists; choose another file name.") from None
    except OSError as exc:
        raise click.ClickException(f"{out}: {exc.strerror}") from None
    with handle:
        handle.write(manage.invitations_csv(fieldwork.create_invitations(found_channel, count)))
    click.echo(f"Wrote {count} invitation links to {out}; they are not kept anywhere else.")


# ---------------------------------------------------------------- quota


@click.group("quota")
def quota_group() -> None:
    """Quotas of a wave: list, set, delete."""


@quota_group.command("list")
@with_appcontext
@click.argument("wave")
def quota_list(wave: str) -> None:
    """A wave's quotas with their progress."""
    from survey import quotas

    rows = quotas.progress(_wave(wave))
    if not rows:
        click.echo("No quota.")
    for row in rows:
        goal = f"{row.target_share:.1%}" if row.target_share is not None else "count"
        click.echo(
            f"{row.field}={row.value}\ttarget {row.target if row.target is not None else '-'}"
            f" ({goal})\tachieved {row.achieved}\t{'full' if row.full else 'open'}"
            + ("\tcloses when full" if row.closes else "")
        )


QUOTA_HINTS = {"target_count": "--count", "target_share": "--share"}


@quota_group.command("set")
@with_appcontext
@click.argument("wave")
@click.argument("field")
@click.argument("value")
@click.option("--count", type=int, help="Target number of completed responses.")
@click.option("--share", type=float, help="Target share, 0 to 1 (e.g. 0.3).")
@click.option("--closes", is_flag=True, help="Turn new respondents away once the cell is full.")
def quota_set(wave, field, value, count, share, closes) -> None:
    """Set (create or replace) the quota of FIELD=VALUE (a background answer) in WAVE."""
    from survey import quotas

    try:
        quotas.set_quota(
            _wave(wave), field, value, target_count=count, target_share=share, closes=closes
        )
    except FieldworkError as exc:
        hint = QUOTA_HINTS.get(exc.field, exc.field.upper())
        raise click.BadParameter(manage.english(exc), param_hint=hint) from None
    click.echo(f"Quota set: {field}={value}.")


@quota_group.command("delete")
@with_appcontext
@click.argument("wave")
@click.argument("field")
@click.argument("value")
def quota_delete(wave: str, field: str, value: str) -> None:
    """Delete the quota of FIELD=VALUE in WAVE."""
    from survey import quotas

    found = _wave(wave)
    quota = next((q for q in quotas.quotas(found) if (q.field, q.value) == (field, value)), None)
    if quota is None:
        raise click.ClickException(f"Wave {found.code} has no quota for {field}={value}.")
    quotas.delete_quota(found, quota.id)
    click.echo(f"Quota deleted: {field}={value}.")


COMMANDS = (wave_group, channel_group, invitations_group, quota_group)
