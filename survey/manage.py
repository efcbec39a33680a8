"""Blueprint /researcher/waves: the owner runs the fieldwork from the browser.

Waves (create, open and close now or at a moment, the default wave, the pilot mark, the
public results summary), their channels with public links and QR codes for print,
single-use invitations (downloaded once as CSV: only their hashes are stored) and quotas
with their progress.

Analysts may read the two overview pages (``GET /researcher/waves`` and
``GET /researcher/waves/<code>``: waves, dates, channels, their public links and counts)
without any form; every change, the QR images, the invitations, the quota table and the
database size and last backup are the owner's (:func:`survey.auth.owner_required`).

The functions below the views (links, summaries, CSV, QR) serve the API
(:mod:`survey.api_fieldwork`) and the CLI (:mod:`survey.manage_cli`) as well, so the
three speak of a wave the same way.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter

import segno
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    DecimalField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
)
from wtforms.validators import (
    AnyOf,
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    StopValidation,
    ValidationError,
)

from survey import fieldwork
from survey.auth import current_researcher, owner_required, researcher_required
from survey.fieldwork import FieldworkError
from survey.i18n import current_language
from survey.lazy import LazyModule
from survey.links import public_url
from survey.models import WAVE_TIME_ZONE, Channel, Wave
from survey.questions import BACKGROUND

bp = Blueprint("manage", __name__, url_prefix="/researcher/waves")

backup = LazyModule("survey.backup")
funnel = LazyModule("survey.funnel")
queries = LazyModule("survey.queries")
quotas = LazyModule("survey.quotas")

# The time zones the browser form offers (the API and the CLI take any IANA name):
# Russia's, then neighbours and a few far ones. A wave's own zone is always offered too.
TIME_ZONES = (
    "Europe/Kaliningrad",
    "Europe/Moscow",
    "Europe/Samara",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Novosibirsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Yakutsk",
    "Asia/Vladivostok",
    "Asia/Magadan",
    "Asia/Kamchatka",
    "Europe/Minsk",
    "Asia/Almaty",
    "Asia/Tashkent",
    "Asia/Tbilisi",
    "Asia/Yerevan",
    "Asia/Baku",
    "Asia/Dubai",
    "Europe/Istanbul",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "UTC",
)
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends
# Moments outside these years are typing errors (and year 1 in Moscow has no UTC year).
YEARS = (2000, 2100)
MAX_TARGET = 10_000_000
STATE_LABELS = {
    "scheduled": _l("Not open yet"),
    "open": _l("Open"),
    "closed": _l("Closed"),
}


def error_text(exc: FieldworkError) -> str:
    """A fieldwork error in the visitor's language (its message is lazily translated)."""
    return str(exc)


def english(exc: Exception) -> str:
    """An error's message in English, as the API and the CLI speak."""
    with force_locale("en"):
        return str(exc)


# ---------------------------------------------------------------- forms


def has_control_characters(value: str) -> bool:
    """Whether a one-line text holds a control character (NUL breaks PostgreSQL)."""
    return any(ch < " " or ch == "\x7f" for ch in value)


def one_line(value: str | None) -> str | None:
    """A form's one-line text without control characters, stripped."""
    if value is None:
        return None
    return "".join(ch for ch in value if ch >= " " and ch != "\x7f").strip()


def zone_choices(current: str | None = None) -> list[tuple[str, str]]:
    """The time zone select's options (value, label), with ``current`` among them."""
    names = list(TIME_ZONES)
    if current and current not in names:
        names.insert(0, current)
    return [(name, zone_label(name, with_offset=True)) for name in names]


def in_years(form, field) -> None:
    """A date-time field's moment must lie in :data:`YEARS`."""
    if not moment_in_range(field.data):
        raise ValidationError(
            _("Enter a date between %(first)d and %(last)d.", first=YEARS[0], last=YEARS[1])
        )


def finite(form, field) -> None:
    """A decimal field's number must be finite ("NaN" parses, and cannot be compared)."""
    if field.data is not None and not field.data.is_finite():
        raise StopValidation(_("Enter a number."))


def moment_field(label):
    """A local date and time (``<input type="datetime-local">``), optional."""
    return DateTimeLocalField(label, format=LOCAL_FORMAT, validators=[Optional(), in_years])


def text_field(label, max_length: int):
    """A required one-line text (control characters dropped)."""
    return StringField(
        label, filters=[one_line], validators=[DataRequired(), Length(max=max_length)]
    )


class WaveForm(FlaskForm):
    """A new wave: code, names, optional dates (local time in the chosen zone), target."""

    code = text_field(_l("Code"), 32)
    name_ru = text_field(_l("Name in Russian"), 200)
    name_en = text_field(_l("Name in English"), 200)
    opens_at = moment_field(_l("Opens at"))
    closes_at = moment_field(_l("Closes at"))
    time_zone = SelectField(_l("Time zone"), default=WAVE_TIME_ZONE, validate_choice=True)
    target = IntegerField(
        _l("Target number of completed responses"),
        validators=[Optional(), NumberRange(min=1, max=MAX_TARGET)],
    )
    is_pilot = BooleanField(_l("Pilot wave (kept out of the main analysis)"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.time_zone.choices = zone_choices()

    def spec(self) -> fieldwork.WaveSpec:
        """The form's values for :func:`survey.fieldwork.create_wave`."""
        return fieldwork.WaveSpec(
            code=self.code.data,
            name_ru=self.name_ru.data,
            name_en=self.name_en.data,
            opens_at=self.opens_at.data,
            closes_at=self.closes_at.data,
            time_zone=self.time_zone.data,
            target=self.target.data,
            is_pilot=self.is_pilot.data,
        )


class MomentForm(FlaskForm):
    """Open or close a wave: now (no date given) or at a local moment in its zone."""

    at = moment_field(_l("At"))


class PilotForm(FlaskForm):
    """Mark a wave pilot (1) or not (0): the value asked for, so a repeated post is harmless."""

    is_pilot = HiddenField(validators=[AnyOf(["0", "1"])])


class PublishForm(FlaskForm):
    """Publish a wave's results summary (1) or hide it (0): the value asked for, so a
    repeated post is harmless."""

    public = HiddenField(validators=[AnyOf(["0", "1"])])


class ChannelForm(FlaskForm):
    """A new channel of a wave."""

    label = text_field(_l("Label"), 40)


class InvitationsForm(FlaskForm):
    """N single-use invitations for one channel of the wave."""

    channel = SelectField(_l("Channel"), validate_choice=True)
    count = IntegerField(_l("Number of invitations"))

    def __init__(self, wave: Wave, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel.choices = [(c.label, c.label) for c in wave.channels]
        limit = current_app.config["MAX_INVITATIONS"]
        self.count.validators = [
            InputRequired(_l("Enter a number.")),
            NumberRange(
                min=1,
                max=limit,
                message=_l("Between 1 and %(max)d invitations at a time.", max=limit),
            ),
        ]


class QuotaForm(FlaskForm):
    """Set one quota: a background question, one of its answers, a count or a share."""

    field = SelectField(_l("Question"), validate_choice=True)
    value = SelectField(_l("Answer"), validate_choice=False)
    target_count = IntegerField(
        _l("Target count"), validators=[Optional(), NumberRange(min=1, max=1_000_000)]
    )
    target_percent = DecimalField(
        _l("or target share, in percent"),
        places=None,
        validators=[Optional(), finite, NumberRange(min=0.01, max=100)],
    )
    closes = BooleanField(_l("Close the cell when full"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        lang = current_language()
        self.field.choices = [(q.field, q.short(lang)) for q in quota_questions()]
        self.value.choices = {
            q.short(lang): [(o.code, o.label(lang)) for o in q.options] for q in quota_questions()
        }

    def validate_value(self, field) -> None:
        """The answer must be one of the chosen question's."""
        question = next((q for q in quota_questions() if q.field == self.field.data), None)
        if question is not None and field.data not in question.codes():
            raise ValidationError(_("Choose an answer of the chosen question."))

    def validate(self, extra_validators=None) -> bool:
        """The fields, then: exactly one of a count and a share (each field alone is
        optional, so no field validator sees an empty one)."""
        valid = super().validate(extra_validators)
        given = (self.target_count.raw_data, self.target_percent.raw_data)
        if sum(bool(raw and raw[0].strip()) for raw in given) != 1:
            message = _("Enter either a target count or a target share.")
            self.target_percent.errors = [*self.target_percent.errors, message]
            return False
        return valid


class QuotaDeleteForm(FlaskForm):
    """Delete one quota of the wave."""

    quota = IntegerField(validators=[DataRequired(), NumberRange(min=1, max=2**31 - 1)])


def quota_questions():
    """The background questions a quota may name (those of survey.quotas)."""
    return [q for q in BACKGROUND if q.field in quotas.QUOTA_FIELDS]


# ---------------------------------------------------------------- views


@bp.before_request
@researcher_required
def guard():
    """Every page here is for researchers; changes are the owner's (each view says so)."""
    return None


@bp.errorhandler(FieldworkError)
def fieldwork_error(exc: FieldworkError):
    """A change the domain refused that no form field shows: a 400 page in their language."""
    return render_template("errors/error.html", code=400, message=error_text(exc)), 400


def _wave_or_404(code: str) -> Wave:
    wave = fieldwork.wave_by_code(code)
    if wave is None:
        abort(404)
    return wave


def _page(template: str, status: int = 200, **context):
    researcher = current_researcher()
    return (
        render_template(
            template,
            researcher=researcher,
            owner=researcher.is_owner,
            tz_label=zone_label,
            moment=moment_text,
            state_label=lambda wave: STATE_LABELS[fieldwork.state(wave)],
            size=size_text,
            default_zone=WAVE_TIME_ZONE,
            **context,
        ),
        status,
    )


@bp.get("/")
def waves():
    """Every wave with its dates, state, target and completes; the owner's create form."""
    return _waves_page(WaveForm())


def _waves_page(form: WaveForm, status: int = 200):
    owner = current_researcher().is_owner
    rows, demo = wave_rows()
    return _page(
        "dashboard/waves.html",
        status,
        rows=rows,
        demo=demo,
        form=form,
        storage=storage_status() if owner else None,
    )


@bp.post("/")
@owner_required
def create_wave():
    """Create a wave (with its direct channel) and go to its page."""
    form = WaveForm()
    if form.validate_on_submit():
        try:
            wave = fieldwork.create_wave(form.spec())
        except FieldworkError as exc:
            _form_error(form, exc)
        else:
            flash(_("Wave %(code)s created.", code=wave.code))
            return redirect(url_for("manage.wave", code=wave.code))
    return _waves_page(form)


def _form_error(form: FlaskForm, exc: FieldworkError) -> None:
    """Show a domain error under the form field it names (or the form's first field)."""
    field = getattr(form, exc.field, None) or next(iter(form))
    field.errors = [*field.errors, error_text(exc)]


@bp.get("/<code>")
def wave(code: str):
    """One wave: dates, channels with links and counts, invitations, quotas."""
    return _wave_page(_wave_or_404(code))


def _wave_page(wave: Wave, status: int = 200, **forms):
    owner = current_researcher().is_owner
    forms = {
        "open_form": MomentForm(formdata=None),
        "close_form": MomentForm(formdata=None),
        "channel_form": ChannelForm(formdata=None),
        "invitations_form": InvitationsForm(wave, formdata=None),
        "quota_form": QuotaForm(formdata=None),
        **forms,
    }
    return _page(
        "dashboard/wave.html",
        status,
        wave=wave,
        summary=wave_summary(wave, with_quotas=owner),
        results_url=results_url(wave),
        **forms,
    )


@bp.post("/<code>/open")
@owner_required
def open_wave(code: str):
    """Open the wave now, or at the moment given (in its time zone)."""
    return _change_moment(_wave_or_404(code), fieldwork.open_wave, "open_form")


@bp.post("/<code>/close")
@owner_required
def close_wave(code: str):
    """Close the wave now, or at the moment given (in its time zone)."""
    return _change_moment(_wave_or_404(code), fieldwork.close_wave, "close_form")


def _change_moment(wave: Wave, change, name: str):
    form = MomentForm()
    if form.validate_on_submit():
        try:
            change(wave, form.at.data)
        except FieldworkError as exc:
            form.at.errors = [*form.at.errors, error_text(exc)]
        else:
            return redirect(url_for("manage.wave", code=wave.code))
    return _wave_page(wave, **{name: form})


@bp.post("/<code>/default")
@owner_required
def make_default(code: str):
    """Let the bare site URL lead to this wave."""
    wave = _wave_or_404(code)
    if FlaskForm().validate_on_submit():
        fieldwork.make_default(wave)
        flash(_("The bare survey link now leads to this wave."))
    return redirect(url_for("manage.wave", code=wave.code))


@bp.post("/<code>/pilot")
@owner_required
def set_pilot(code: str):
    """Mark the wave pilot, or not."""
    wave = _wave_or_404(code)
    form = PilotForm()
    if not form.validate_on_submit():
        abort(400)
    fieldwork.set_pilot(wave, form.is_pilot.data == "1")
    return redirect(url_for("manage.wave", code=wave.code))


@bp.post("/<code>/publish")
@owner_required
def publish_results(code: str):
    """Publish the wave's public results summary (survey/public.py), or hide it."""
    wave = _wave_or_404(code)
    form = PublishForm()
    if not form.validate_on_submit():
        abort(400)
    fieldwork.set_results_public(wave, form.public.data == "1")  # a pilot wave: a 400 page
    if wave.results_public:
        flash(_("The results summary of this wave is public: %(url)s", url=results_url(wave)))
    else:
        flash(_("The results summary of this wave is hidden."))
    return redirect(url_for("manage.wave", code=wave.code))


@bp.post("/<code>/channels")
@owner_required
def create_channel(code: str):
    """A new channel with its own public link."""
    wave = _wave_or_404(code)
    form = ChannelForm()
    if form.validate_on_submit():
        try:
            channel = fieldwork.create_channel(wave, form.label.data)
        except FieldworkError as exc:
            _form_error(form, exc)
        else:
            flash(_("Channel %(label)s created.", label=channel.label))
            return redirect(url_for("manage.wave", code=wave.code, _anchor="channels"))
    return _wave_page(wave, channel_form=form)


@bp.get("/<code>/channels/<label>/qr.<any(svg, png):kind>")
@owner_required
def channel_qr(code: str, label: str, kind: str):
    """The channel's public link as a QR code image for print (SVG or PNG)."""
    channel = channel_or_none(_wave_or_404(code), label)
    if channel is None:
        abort(404)
    body, mimetype = qr_image(channel_url(channel), kind)
    response = Response(body, mimetype=mimetype)
    name = f"qr-{code}-{channel.label}.{kind}"
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    return response


@bp.post("/<code>/invitations")
@owner_required
def create_invitations(code: str):
    """Generate N invitations and answer with their links as CSV: the only time they exist."""
    wave = _wave_or_404(code)
    form = InvitationsForm(wave)
    if not form.validate_on_submit():
        return _wave_page(wave, invitations_form=form)
    channel = channel_or_none(wave, form.channel.data)
    try:
        tokens = fieldwork.create_invitations(channel, form.count.data)
    except FieldworkError as exc:
        _form_error(form, exc)
        return _wave_page(wave, invitations_form=form)
    response = Response(invitations_csv(tokens), mimetype="text/csv; charset=utf-8")
    name = invitations_file_name(wave, channel)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<code>/quotas")
@owner_required
def set_quota(code: str):
    """Set (create or replace) one quota of the wave."""
    wave = _wave_or_404(code)
    form = QuotaForm()
    if form.validate_on_submit():
        share = form.target_percent.data
        try:
            quotas.set_quota(
                wave,
                form.field.data,
                form.value.data,
                target_count=form.target_count.data,
                target_share=None if share is None else float(share) / 100,
                closes=form.closes.data,
            )
        except FieldworkError as exc:
            _form_error(form, exc)
        else:
            return redirect(url_for("manage.wave", code=wave.code, _anchor="quotas"))
    return _wave_page(wave, quota_form=form)


@bp.post("/<code>/quotas/delete")
@owner_required
def delete_quota(code: str):
    """Delete one quota of the wave."""
    wave = _wave_or_404(code)
    form = QuotaDeleteForm()
    if not form.validate_on_submit():
        abort(400)
    quotas.delete_quota(wave, form.quota.data)  # another wave's quota: FieldworkError, 400
    return redirect(url_for("manage.wave", code=wave.code, _anchor="quotas"))


# ---------------------------------------------------------------- shared with API and CLI


def zone_label(name: str, with_offset: bool = False) -> str:
    """A time zone as people read it: МСК / MSK for Moscow, else its IANA name; with its
    current UTC offset if asked (offsets change with summer time, the name does not)."""
    label = _("MSK") if name == WAVE_TIME_ZONE else name
    if not with_offset:
        return label
    offset = dt.datetime.now(fieldwork.zone(name)).strftime("%z")
    return f"{label} (UTC{offset[:3]}:{offset[3:]})"


def moment_text(moment: dt.datetime | None, time_zone: str) -> str:
    """A stored (UTC) moment as local date and time in the wave's zone, with the zone."""
    if moment is None:
        return "—"
    local = fieldwork.to_local(moment, time_zone)
    return f"{local:%Y-%m-%d %H:%M} {zone_label(time_zone)}"


def iso_local(moment: dt.datetime | None, time_zone: str) -> str | None:
    """A stored (UTC) moment as ISO 8601 local time with its offset, or None."""
    local = fieldwork.to_local(moment, time_zone)
    return None if local is None else local.isoformat(timespec="minutes")


def parse_moment(text: str) -> dt.datetime:
    """An ISO 8601 date and time (naive: local time in the wave's zone; an offset is kept)
    in the years :data:`YEARS`; ``ValueError`` with an English message otherwise."""
    example = "an ISO 8601 date and time such as 2027-03-01T09:00 is expected"
    if not 16 <= len(text) <= 40 or "T" not in text.upper():  # a bare date is no moment
        raise ValueError(example)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(example) from None
    if not moment_in_range(moment):
        raise ValueError(f"the year must be between {YEARS[0]} and {YEARS[1]}")
    return moment


def moment_in_range(moment: dt.datetime | None) -> bool:
    """Whether a moment lies in the years :data:`YEARS` (None: nothing to check)."""
    return moment is None or YEARS[0] <= moment.year <= YEARS[1]


def channel_or_none(wave: Wave, label: str | None) -> Channel | None:
    """The wave's channel with this label, or None."""
    return next((c for c in wave.channels if c.label == label), None)


def channel_url(channel: Channel) -> str:
    """The channel's public link, ``/s/<slug>`` on ``PUBLIC_URL``."""
    return public_url("questionnaire.channel_link", slug=channel.slug)


def results_url(wave: Wave) -> str:
    """The wave's public results summary, ``/results/<code>`` on ``PUBLIC_URL`` (a 404 page
    while it is not published)."""
    return public_url("public.wave", code=wave.code)


def invitation_url(token: str) -> str:
    """A single-use invitation's link, ``/i/<token>`` on ``PUBLIC_URL``."""
    return public_url("questionnaire.invitation", token=token)


def invitations_csv(tokens: list[str]) -> str:
    """The links of fresh invitations as CSV (one column, ``invitation_link``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["invitation_link"])
    writer.writerows([invitation_url(token)] for token in tokens)
    return buffer.getvalue()


def invitations_file_name(wave: Wave, channel: Channel) -> str:
    """``invitations-<wave>-<channel>-<date>.csv`` (codes and labels are file-name safe)."""
    return f"invitations-{wave.code}-{channel.label}-{fieldwork.today().isoformat()}.csv"


def qr_image(url: str, kind: str) -> tuple[bytes, str]:
    """A QR code of ``url`` (error correction M, a quiet zone of 4) as SVG or PNG bytes and
    their media type; drawn here, no network."""
    code = segno.make(url, error="m", micro=False)
    buffer = io.BytesIO()
    if kind == "svg":
        code.save(buffer, kind="svg", scale=8, border=4, xmldecl=True, svgns=True)
        return buffer.getvalue(), "image/svg+xml"
    if kind == "png":
        code.save(buffer, kind="png", scale=10, border=4)
        return buffer.getvalue(), "image/png"
    raise ValueError(f"unknown image kind {kind!r}")


def size_text(size: int | None) -> str:
    """A number of bytes for people: kB, MB or GB with one decimal."""
    if size is None:
        return "—"
    value, unit = size / 1000, _("kB")
    for larger in (_("MB"), _("GB")):
        if value < 1000:
            break
        value, unit = value / 1000, larger
    return f"{value:.1f} {unit}"


def storage_status() -> dict:
    """The database size and the last backup (survey.backup), for the owner's page."""
    return backup.status()


def wave_rows() -> tuple[list[dict], bool]:
    """Every wave with its completed responses (the fieldwork funnel's) and number of
    channels, oldest first; and whether demo responses stand in for the counts (as on the
    fieldwork page while no real response is submitted)."""
    flow = funnel.funnel(queries.Segment())
    completed: Counter = Counter()
    for line in flow.channels:
        completed[line.wave] += line.completed
    rows = [
        {"wave": wave, "completed": completed[wave.code], "channels": len(wave.channels)}
        for wave in fieldwork.waves()
    ]
    return rows, flow.demo


def wave_summary(wave: Wave, with_quotas: bool = False) -> dict:
    """A wave as every view tells it: state, moments (local, ISO with offset), target,
    completed, marks, each channel with its link and counts and, if asked, quota progress.

    The counts are the fieldwork funnel's (:mod:`survey.funnel`, as the fieldwork page and
    ``GET /api/v1/fieldwork?wave=`` give them): ``opened`` links, ``started`` consents
    given, ``completed`` submitted, ``completion_rate`` completed per consent.
    """
    flow = funnel.funnel(queries.Segment(wave=wave.code))
    lines = {line.channel_id: line for line in flow.channels}
    invited = queries.invitation_counts(wave.id)
    channels = []
    for channel in wave.channels:
        line = lines.get(channel.id)
        generated, used = invited.get(channel.id, (0, 0))
        channels.append(
            {
                "label": channel.label,
                "link": channel_url(channel),
                "opened": line.opened if line else 0,
                "started": line.started if line else 0,
                "completed": line.completed if line else 0,
                "completion_rate": line.completion_rate if line else None,
                "invitations_generated": generated,
                "invitations_used": used,
            }
        )
    summary = {
        "code": wave.code,
        "name_ru": wave.name_ru,
        "name_en": wave.name_en,
        "state": fieldwork.state(wave),
        "opens_at": iso_local(wave.opens_at, wave.time_zone),
        "closes_at": iso_local(wave.closes_at, wave.time_zone),
        "time_zone": wave.time_zone,
        "target": wave.target,
        "completed": flow.total.completed,
        "demo": flow.demo,
        "is_pilot": wave.is_pilot,
        "is_default": wave.is_default,
        "results_public": wave.results_public,
        "channels": channels,
    }
    if with_quotas:
        summary["quotas"] = quotas.progress(wave)
    return summary
