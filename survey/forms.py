"""Flask-WTF forms. Practice pages are built from the catalogue, never by hand."""

from __future__ import annotations

import functools

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import (
    BooleanField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional, StopValidation

from survey.catalog import Page, Practice
from survey.questions import (
    BACKGROUND,
    EXAMPLE_MAX_CHARS,
    KIND_BACKGROUND,
    MET,
    NOT_MY_ROLE,
    RATING,
    RATING_MIXED,
    WORKED_IN_KINDS,
)

# Keys a questionnaire form may carry besides its fields (buttons and the honeypot).
EXTRA_KEYS = {"csrf_token", "action", "website"}


class TamperedForm(Exception):
    """A posted form carries a key or value no page of ours can produce."""


class ConsentForm(FlaskForm):
    # Honeypot: invisible to people, tempting to bots. Filling it flags the response.
    website = StringField(_l("Leave this field empty"), validators=[Optional(), Length(max=200)])
    adult = BooleanField(
        _l("I am 18 years old or older"),
        validators=[DataRequired(message=_l("The survey is only for people aged 18 or older."))],
    )
    agree = BooleanField(
        _l("I have read the above and agree to take part"),
        validators=[DataRequired(message=_l("Please confirm that you agree to take part."))],
    )


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token: submit, withdraw, start over."""


# The example box of each kind says which kind of company it is about.
EXAMPLE_LABELS = {
    "ru": _l("An example from a Russian company (optional)"),
    "foreign": _l("An example from a foreign company (optional)"),
}


def _required():
    return InputRequired(message=_l("Please answer this question."))


# The error of a per-kind background question names the kind of company it is about.
KIND_BLOCK_MISSING = {
    "ru": _l("You worked in Russian companies: please answer this question."),
    "foreign": _l("You worked in foreign companies: please answer this question."),
}


def _required_for_kind(kind: str):
    """A per-kind question is required when the kind is among those worked in (as posted
    in ``worked_in``); otherwise it is not validated at all, and not stored.

    The page shows both kinds' blocks without JavaScript, so a legitimate post may carry
    answers about a kind not worked in; :func:`survey.responses.save_profile` drops them.
    Like ``Optional`` it clears the 'not a valid choice' error of an empty radio group.
    """

    def check(form, field):
        worked = kind in WORKED_IN_KINDS.get(form["worked_in"].data or "", ())
        if worked and field.raw_data and field.raw_data[0]:
            return
        field.errors[:] = []
        raise StopValidation(KIND_BLOCK_MISSING[kind] if worked else None)

    return check


def _radio(question, lang: str, validators) -> RadioField:
    return RadioField(
        question.text(lang),
        choices=[SelectChoice(o.code, o.label(lang)) for o in question.options],
        validators=validators,
        description=question.hint(lang),
    )


def profile_form(lang: str, **kwargs) -> FlaskForm:
    """The work-background form: one field per question of :data:`BACKGROUND`, then each
    kind of company's block (:data:`KIND_BACKGROUND`), required for the kinds worked in."""

    class ProfileForm(FlaskForm):
        pass

    for q in BACKGROUND:
        validators = [_required()] if q.required else [Optional()]
        if q.field in ("industry", "region"):
            empty = _l("— choose —") if q.required else _l("— prefer not to say —")
            choices = [SelectChoice(o.code, o.label(lang)) for o in q.options]
            field = SelectField(
                q.text(lang),
                choices=[SelectChoice("", empty), *choices],
                validators=validators,
                description=q.hint(lang),
            )
        else:
            field = _radio(q, lang, validators)
        setattr(ProfileForm, q.field, field)
    for kind, questions in KIND_BACKGROUND.items():
        for q in questions:
            setattr(ProfileForm, q.field, _radio(q, lang, [_required_for_kind(kind)]))
    return ProfileForm(**kwargs)


def met_name(practice_id: str, kind: str) -> str:
    """Form field name of 'did it exist there' for one practice and company kind."""
    return f"{practice_id}__{kind}__met"


def rating_name(practice_id: str, kind: str) -> str:
    """Form field name of the motivation rating for one practice and company kind."""
    return f"{practice_id}__{kind}__rating"


def example_name(practice_id: str, kind: str) -> str:
    """Form field name of the free-text example for one practice and company kind."""
    return f"{practice_id}__{kind}__example"


def _rating_required_when_applied(met_field: str):
    """The rating is required after 'applied' and otherwise optional (and then ignored).

    Like ``Optional`` it clears the 'not a valid choice' error of an empty radio group,
    but only after deciding whether the empty rating is itself an error.
    """

    def check(form, field):
        if field.raw_data and field.raw_data[0]:
            return
        field.errors[:] = []
        if form[met_field].data == "applied":
            raise StopValidation(_l("This practice applied to you: please rate its effect."))
        raise StopValidation()

    return check


def met_options(practice: Practice) -> tuple:
    """The answers offered about one practice: the scale, and "not applicable to my role"
    after it for a practice the catalogue marks with job functions."""
    return (*MET.options, NOT_MY_ROLE) if practice.functions else MET.options


RATING_OPTIONS = (*RATING.options, RATING_MIXED)


def _clean_text(value):
    """Strip control characters (NUL breaks PostgreSQL) but keep line breaks."""
    if not value:
        return value
    cleaned = "".join(ch for ch in value if ch in "\n\t" or ch >= " " and ch != "\x7f")
    return cleaned.strip()


def practice_page_form(page: Page, kinds: tuple[str, ...], lang: str, **kwargs) -> FlaskForm:
    """The form of one practice page, asking only about the kinds the respondent worked in."""
    return _practice_page_form_class(page, tuple(kinds), lang)(**kwargs)


@functools.lru_cache(maxsize=256)
def _practice_page_form_class(page: Page, kinds: tuple[str, ...], lang: str) -> type[FlaskForm]:
    """The form class of a page, built once per (page, kinds, language) and then reused:
    building ~30 fields per request was an eighth of a practice page's time."""

    class PracticePageForm(FlaskForm):
        pass

    for practice in page.practices:
        for kind in kinds:
            met = met_name(practice.id, kind)
            setattr(
                PracticePageForm,
                met,
                RadioField(
                    MET.text(lang),
                    choices=[SelectChoice(o.code, o.label(lang)) for o in met_options(practice)],
                    validators=[_required()],
                ),
            )
            setattr(
                PracticePageForm,
                rating_name(practice.id, kind),
                RadioField(
                    RATING.text(lang),
                    choices=[SelectChoice(o.code, o.label(lang)) for o in RATING_OPTIONS],
                    validators=[_rating_required_when_applied(met)],
                ),
            )
            setattr(
                PracticePageForm,
                example_name(practice.id, kind),
                TextAreaField(
                    EXAMPLE_LABELS[kind],
                    filters=[_clean_text],
                    validators=[
                        Optional(),
                        Length(
                            max=EXAMPLE_MAX_CHARS,
                            message=_l(
                                "Please keep the example under %(n)d characters.",
                                n=EXAMPLE_MAX_CHARS,
                            ),
                        ),
                    ],
                ),
            )
    return PracticePageForm


def radio_group_html(field, legend=None, hint=None, inline=False, classes="", extra_attrs=""):
    """A radio fieldset, written in Python rather than as a Jinja macro.

    A practice page has ~30 of them with ~120 inputs; as a macro they were half of the
    page's rendering time. The inputs of a field are built once and cached; only the
    checked state and the error attributes are filled in per request. ``extra_attrs`` is
    trusted markup written by our templates, everything else is escaped.
    """
    fid, errors = field.id, field.errors
    described = []
    if hint:
        described.append(f"{fid}-hint ")
    if errors:
        described.append(f"{fid}-error")
    head = [
        f'<fieldset class="radio-group {"inline" if inline else ""} {escape(classes)} '
        f'{"has-error" if errors else ""}" id="{escape(fid)}" {extra_attrs}\n  ',
        f'aria-describedby="{escape("".join(described))}"' if described else "",
        f">\n  <legend>{escape(legend or field.label.text)}</legend>\n  ",
    ]
    if hint:
        head.append(f'<p class="hint" id="{escape(fid)}-hint">{escape(hint)}</p>')
    head.append("\n  ")
    head.append(field_errors_html(field))
    head.append('\n  <div class="options">')
    data = None if field.data is None else str(field.data)
    invalid = ' aria-invalid="true"' if errors else ""
    choices = tuple((str(c.value), str(c.label)) for c in field.choices)
    inputs = _radio_inputs(fid, field.name, choices)
    for (value, _), (before, after) in zip(choices, inputs, strict=True):
        head += (before, " checked" if data == value else "", invalid, after)
    head.append("\n  </div>\n</fieldset>")
    return Markup("".join(head))  # noqa: S704 - every interpolated value is escaped above


def field_errors_html(field) -> Markup:
    """A field's error messages, the paragraph its ``aria-describedby`` points to."""
    if not field.errors:
        return Markup("")
    spans = "".join(f"<span>{escape(e)}</span> " for e in field.errors)
    return Markup(f'\n<p class="field-error" id="{escape(field.id)}-error">{spans}</p>\n')  # noqa: S704 - escaped


@functools.lru_cache(maxsize=4096)
def _radio_inputs(fid: str, name: str, choices: tuple[tuple[str, str], ...]) -> list[tuple]:
    """The escaped markup around each radio input's checked/invalid attributes."""
    fid, name = escape(fid), escape(name)
    return [
        (
            f'\n    <label class="option" for="{fid}-{i}"><input type="radio" id="{fid}-{i}" '
            f'name="{name}" value="{escape(value)}"',
            f"> <span>{escape(label)}</span></label>",
        )
        for i, (value, label) in enumerate(choices)
    ]


def check_untampered(form: FlaskForm, posted) -> None:
    """Raise :class:`TamperedForm` if the post has a key or a choice our page cannot produce.

    A missing answer is a form error for the respondent; an unknown field (another
    practice, a company kind they never worked in) or an impossible choice (a rating of 7)
    can only come from a hand-made request.
    """
    fields = {name: form[name] for name in form._fields}
    for key in posted.keys():
        if key not in fields and key not in EXTRA_KEYS:
            raise TamperedForm(f"unexpected field {key!r}")
        values = posted.getlist(key)
        if len(values) > 1:
            raise TamperedForm(f"field {key!r} sent {len(values)} times")
        field = fields.get(key)
        if isinstance(field, RadioField | SelectField) and values[0] != "":
            if values[0] not in {choice.value for choice in field.choices}:
                raise TamperedForm(f"impossible value for {key!r}")
