"""Flask-WTF forms. Practice pages are built from the catalogue, never by hand."""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape
from wtforms import (
    BooleanField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    StopValidation,
    ValidationError,
)

from survey.catalog import Page, PracticeEntry
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
    """The landing page: the respondent confirms being an adult and agrees to take part."""

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


def met_options(practice: PracticeEntry) -> tuple:
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


class CodeRadioField(RadioField):
    """A radio group whose choice check is one lookup in the frozen set of its codes.

    WTForms' own check walks the choices and, for the empty answers every page has
    (ratings not asked), translates its message by loading WTForms' catalogue, on every
    page save. The message is never shown: an empty answer gets the field's own message
    (its validators replace this one), and a value outside the codes is refused as
    tampering before validation (:func:`check_untampered`).
    """

    def __init__(self, label=None, validators=None, codes=frozenset(), **kwargs):
        super().__init__(label, validators, **kwargs)
        self.codes = codes
        self.type = "RadioField"  # templates (the error summary's anchors) treat it as one

    def pre_validate(self, form):
        """The answer must be one of the codes."""
        if not self.process_errors and self.data not in self.codes:
            raise ValidationError(_l("Please answer this question."))


def _code_radio(label: str, choices: tuple[SelectChoice, ...], validators) -> CodeRadioField:
    return CodeRadioField(
        label,
        choices=list(choices),
        codes=frozenset(c.value for c in choices),
        validators=validators,
    )


@functools.lru_cache(maxsize=256)
def _page_choices(
    page: Page, kinds: tuple[str, ...], lang: str
) -> dict[str, tuple[SelectChoice, ...]]:
    """Every field of a practice page by name, in page order (per practice and kind: did
    it exist, the rating, the example), with its choices (none for the example box):
    what the form class and :func:`shown_page_fields` are built from."""
    ratings = tuple(SelectChoice(o.code, o.label(lang)) for o in RATING_OPTIONS)
    fields = {}
    for practice in page.practices:
        met = tuple(SelectChoice(o.code, o.label(lang)) for o in met_options(practice))
        for kind in kinds:
            fields[met_name(practice.id, kind)] = met
            fields[rating_name(practice.id, kind)] = ratings
            fields[example_name(practice.id, kind)] = ()
    return fields


def practice_page_form(page: Page, kinds: tuple[str, ...], lang: str, **kwargs) -> FlaskForm:
    """The form of one practice page, asking only about the kinds the respondent worked in."""
    return _practice_page_form_class(page, tuple(kinds), lang)(**kwargs)


# Per field of the cached page form classes: the attributes of the field as WTForms bound
# it once, by (prefix, translations).
_BOUND_ONCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _CopyBoundFields:
    """Form ``Meta`` that binds a practice page's fields by copying the field bound the
    first time, instead of constructing it again (WTForms' ``bind_field`` hook).

    Constructing the ~55 fields of a page (labels, flags, validator checks, choices) anew
    was a large part of every page save. A bound field holds nothing per request until
    the form processes the post (data, raw data, errors), and what it shares with its
    copies (label, flags, validators, choices) is never changed after binding;
    ``tests/test_questionnaire_draft_answers.py`` checks that a copy equals a fresh bind.
    """

    def bind_field(self, form, unbound_field, options):
        """The field bound to ``form``: a copy of the first binding, for our field types."""
        if unbound_field.field_class not in (CodeRadioField, TextAreaField):
            return super().bind_field(form, unbound_field, options)
        key = (options.get("prefix", ""), options.get("translations"))
        known = _BOUND_ONCE.setdefault(unbound_field, {})
        if key not in known:
            field = super().bind_field(form, unbound_field, options)
            known[key] = {k: v for k, v in vars(field).items() if k not in ("_form", "meta")}
            return field
        field = object.__new__(unbound_field.field_class)
        field.__dict__.update(known[key])
        field._form, field.meta = form, form.meta
        return field


@functools.lru_cache(maxsize=256)
def _practice_page_form_class(page: Page, kinds: tuple[str, ...], lang: str) -> type[FlaskForm]:
    """The form class of a page, built once per (page, kinds, language) and then reused,
    so that no request builds its ~30 fields again."""

    class PracticePageForm(FlaskForm):
        Meta = _CopyBoundFields

    choices = _page_choices(page, kinds, lang)
    for practice in page.practices:
        for kind in kinds:
            met = met_name(practice.id, kind)
            setattr(PracticePageForm, met, _code_radio(MET.text(lang), choices[met], [_required()]))
            rating = rating_name(practice.id, kind)
            setattr(
                PracticePageForm,
                rating,
                _code_radio(
                    RATING.text(lang), choices[rating], [_rating_required_when_applied(met)]
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


@dataclass(frozen=True, slots=True)
class ShownField:
    """A practice page's field as a GET shows it, before anything is posted: what the
    page's writers (:func:`radio_group_html`, :func:`textarea_html`,
    :func:`field_errors_html`) read of a WTForms field.

    A GET has nothing to validate, and binding the ~55 fields of a WTForms form was a
    fifth of what it cost once its rendering was fixed; a post (valid or not) still goes
    through the WTForms form.
    """

    id: str
    name: str
    data: str | None
    choices: tuple[SelectChoice, ...] = ()
    errors: tuple[str, ...] = ()

    def _value(self) -> str:
        return "" if self.data is None else self.data


def shown_page_fields(
    page: Page, kinds: tuple[str, ...], lang: str, data: dict
) -> dict[str, ShownField]:
    """The fields of a practice page holding ``data`` (field name -> value, as the form's
    ``data=`` would take it), by name: the same ids, names, choices and values the
    page's WTForms form would render, example texts through the same filter."""
    return {
        name: ShownField(name, name, data.get(name), choices)
        if choices
        else ShownField(name, name, _clean_text(data.get(name)))
        for name, choices in _page_choices(page, tuple(kinds), lang).items()
    }


def csrf_input_html() -> Markup:
    """The hidden CSRF input of a form, as Flask-WTF writes it, with the session's token
    (:func:`flask_wtf.csrf.generate_csrf`, the token a FlaskForm renders)."""
    name = escape(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
    return Markup(  # noqa: S704 - escaped
        f'<input id="{name}" name="{name}" type="hidden" value="{escape(generate_csrf())}">'
    )


def radio_group_html(field, legend=None, hint=None, inline=False, classes="", extra_attrs=""):
    """A radio fieldset, written in Python rather than as a Jinja macro.

    A practice page has ~30 of them with ~120 inputs, too many to render through a macro
    on every request. Everything but the checked input is built once per (field,
    wording, errors) and cached; only the checked state is filled in per request.
    ``extra_attrs`` is trusted markup written by our templates, everything else is
    escaped.
    """
    choices = tuple((str(c.value), str(c.label)) for c in field.choices)
    head, inputs, tail = _radio_group_parts(
        field.id,
        field.name,
        str(legend or field.label.text),
        str(hint or ""),
        bool(inline),
        classes,
        extra_attrs,
        choices,
        tuple(str(e) for e in field.errors),
    )
    data = None if field.data is None else str(field.data)
    parts = [head]
    for (value, _), (before, after) in zip(choices, inputs, strict=True):
        parts += (before, " checked" if data == value else "", after)
    parts.append(tail)
    return Markup("".join(parts))  # noqa: S704 - every interpolated value is escaped


@functools.lru_cache(maxsize=4096)
def _radio_group_parts(
    fid: str,
    name: str,
    legend: str,
    hint: str,
    inline: bool,
    classes: str,
    extra_attrs: str,
    choices: tuple[tuple[str, str], ...],
    errors: tuple[str, ...],
) -> tuple[str, list[tuple[str, str]], str]:
    """The escaped markup of a radio fieldset around its inputs' checked attributes: the
    head, (before, after) for each input, the tail."""
    described = []
    if hint:
        described.append(f"{fid}-hint ")
    if errors:
        described.append(f"{fid}-error")
    head = [
        f'<fieldset class="radio-group {"inline" if inline else ""} {escape(classes)} '
        f'{"has-error" if errors else ""}" id="{escape(fid)}" {extra_attrs}\n  ',
        f'aria-describedby="{escape("".join(described))}"' if described else "",
        f">\n  <legend>{escape(legend)}</legend>\n  ",
    ]
    if hint:
        head.append(f'<p class="hint" id="{escape(fid)}-hint">{escape(hint)}</p>')
    head += ("\n  ", _errors_html(fid, errors), '\n  <div class="options">')
    invalid = ' aria-invalid="true"' if errors else ""
    inputs = [(before, invalid + after) for before, after in _radio_inputs(fid, name, choices)]
    return "".join(head), inputs, "\n  </div>\n</fieldset>"


def textarea_html(field, rows: int, maxlength: int) -> Markup:
    """A text field as a textarea, the markup WTForms' ``TextArea`` widget writes (same
    attributes in the same order, ``aria-*`` pointing to the error when there is one).

    Written here because the widget's generic attribute handling, repeated for the ~20
    example boxes of a practice page, weighed on every page.
    """
    fid, name = escape(field.id), escape(field.name)
    described = f'aria-describedby="{fid}-error" aria-invalid="true" ' if field.errors else ""
    return Markup(  # noqa: S704 - every interpolated value is escaped
        f'<textarea {described}id="{fid}" maxlength="{int(maxlength)}" name="{name}" '
        f'rows="{int(rows)}">\r\n{escape(field._value())}</textarea>'
    )


def field_errors_html(field) -> Markup:
    """A field's error messages, the paragraph its ``aria-describedby`` points to."""
    return Markup(_errors_html(field.id, field.errors))  # noqa: S704 - escaped


def _errors_html(fid: str, errors) -> str:
    if not errors:
        return ""
    spans = "".join(f"<span>{escape(e)}</span> " for e in errors)
    return f'\n<p class="field-error" id="{escape(fid)}-error">{spans}</p>\n'


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
        if isinstance(field, CodeRadioField) and values[0] != "":
            if values[0] not in field.codes:
                raise TamperedForm(f"impossible value for {key!r}")
        elif isinstance(field, RadioField | SelectField) and values[0] != "":
            if values[0] not in {choice.value for choice in field.choices}:
                raise TamperedForm(f"impossible value for {key!r}")
