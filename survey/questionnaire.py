"""Blueprint: consent, work background, practice pages, review, submit, thanks, and the
respondent's own answers beside everyone's (``/compare``, survey/compare_page.py).

Every POST redirects (post/redirect/get); every answer is saved when its page is sent.

Each respondent sees the practice pages, the practices on a page and the two kinds of
company in their own order (survey/paradata.py). ``/page/<n>`` names the catalogue's page
n, so a URL always shows the same questions (a stale tab, the review's "Change" links);
everything that speaks of sequence follows the respondent's order: back and next, the
progress bar, the review page, where a returning respondent continues, and the steps
stored for drop-off (``last_page``): 0 consent, 1 background, 2..P+1 the respondent's
first..last practice page, P+2 review, P+3 submitted.

Respondents arrive through a wave's channel link (``/s/<slug>``: the browser's session
remembers the channel until consent), a single-use invitation (``/i/<token>``) or the bare
URL (the default wave's direct channel). A wave that is not open shows a page saying so
and stores nothing; a draft of a closed wave may be finished during the grace period
(survey/fieldwork.py). A respondent in a full quota cell that closes is thanked after the
background page and their draft deleted (survey/quotas.py). Researchers preview the pages
under ``/researcher/preview`` without any response.
"""

from __future__ import annotations

import time
from functools import wraps
from typing import NamedTuple

from babel.dates import format_datetime
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from survey import compare_page, fieldwork, paradata, quotas, responses
from survey.auth import researcher_required
from survey.catalog import Page
from survey.extensions import limiter
from survey.forms import (
    EXAMPLE_LABELS,
    ConfirmForm,
    ConsentForm,
    TamperedForm,
    check_untampered,
    csrf_input_html,
    example_name,
    field_errors_html,
    met_name,
    met_options,
    practice_page_form,
    profile_form,
    radio_group_html,
    rating_name,
    shown_page_fields,
    textarea_html,
)
from survey.i18n import current_language
from survey.links import public_url
from survey.models import COMPANY_KINDS
from survey.questions import (
    BACKGROUND,
    KIND_BACKGROUND,
    KIND_BLOCK_TITLES,
    KIND_LABELS,
    KIND_QUESTIONS,
    MET_LABELS,
    RATING,
    RATING_MIXED,
    WORKED_IN_KINDS,
)
from survey.urls import safe_redirect_target

bp = Blueprint("questionnaire", __name__)

TOKEN_KEY = "resume_token"  # noqa: S105 - a session key name, not a secret
SERVED_KEY = "served"  # page -> when it was served to this browser (the cookie only)
PAGE_SECONDS_CAP = 30 * 60  # a page left open longer counts this much
CHANNEL_KEY = "channel"  # the id of the channel whose link this browser arrived through


def _limit(name: str):
    """A rate limit read from the configuration at request time (POST only unless GET)."""
    return lambda: current_app.config[name]


def _page_count() -> int:
    return len(responses.catalog().pages)


def _order() -> paradata.Order:
    """The question order of the request's draft (``g.response``), resolved once."""
    if "order" not in g:
        g.order = responses.order(g.response)
    return g.order


def progress(step: int) -> dict:
    """Progress of a step (1 = background ... P+2 = review) for the progress bar."""
    total = _page_count() + 2
    return {"step": step, "total": total, "percent": round(100 * (step - 1) / total)}


def current_response():
    """The draft or response this browser's session holds, or None."""
    return responses.find(session.get(TOKEN_KEY))


def _now() -> float:
    """The clock the page timings read (a function, so tests can move it)."""
    return time.time()


def _mark_served(page: str) -> None:
    """Remember when a page was served to this browser, in the signed session cookie only."""
    served = session.get(SERVED_KEY)
    session[SERVED_KEY] = {**(served if isinstance(served, dict) else {}), page: int(_now())}


def _seconds_on(page: str) -> int | None:
    """Seconds the page was open before this save, capped; None (unknown) if it was never
    served to this browser."""
    served = session.get(SERVED_KEY)
    if not isinstance(served, dict) or page not in served:
        return None  # nothing to take out: the session (and its cookie) stays as it is
    served = dict(served)
    since = served.pop(page)
    session[SERVED_KEY] = served
    if not isinstance(since, int | float):
        return None
    return int(min(max(_now() - since, 0), PAGE_SECONDS_CAP))


def _hold(token: str) -> None:
    """Make this browser the holder of a draft: its token, no page timings of another."""
    session.permanent = True
    session[TOKEN_KEY] = token
    session.pop(SERVED_KEY, None)


def _forget() -> None:
    """Forget this browser's draft or response (its token and page timings)."""
    session.pop(TOKEN_KEY, None)
    session.pop(SERVED_KEY, None)


def _when(moment, wave) -> str | None:
    """A wave's stored moment as the visitor reads it: in the wave's time zone, named."""
    if moment is None:
        return None
    local = format_datetime(
        fieldwork.to_local(moment, wave.time_zone),
        "d MMMM y, HH:mm",
        tzinfo=fieldwork.zone(wave.time_zone),
        locale=current_language(),
    )
    return f"{local} ({wave.time_zone})"


def _closed_page(wave, draft: bool = False):
    """The page a wave that is not open shows instead of the survey (a draft's page after
    the grace period with ``draft``): what it is, with its dates; nothing is stored. A
    refused POST answers 409."""
    lang = current_language()
    page = render_template(
        "questionnaire/closed.html",
        state=fieldwork.state(wave),
        draft=draft,
        wave_name=wave.name_en if lang == "en" else wave.name_ru,
        opens=_when(wave.opens_at, wave),
        closes=_when(wave.closes_at, wave),
    )
    return page, 409 if request.method == "POST" else 200


def _draft_closed(response):
    """The closed page if a draft's wave no longer accepts it (past the grace period),
    else None."""
    wave = fieldwork.wave_by_id(response.wave_id)
    return None if fieldwork.accepts_drafts(wave) else _closed_page(wave, draft=True)


def _invalid_link():
    """An unknown channel or invitation link: a 404 page in the visitor's language."""
    message = _(
        "This survey link is not valid. Please check that it was copied in full, or ask "
        "whoever sent it to you for a new one."
    )
    return render_template("errors/error.html", code=404, message=message), 404


def draft_required(view):
    """Open the session's draft for the view, or send the browser where it belongs; a
    draft whose wave closed longer ago than the grace period gets the closed page."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        response = current_response()
        if response is None:
            if session.pop(TOKEN_KEY, None):
                flash(
                    _(
                        "Your saved answers are no longer open in this browser: they expired, "
                        "were deleted, or were opened with their personal link in another "
                        "browser. Please start again."
                    )
                )
            return redirect(url_for(".index"))
        if response.status == "submitted":
            return redirect(url_for(".thanks"))
        closed = _draft_closed(response)
        if closed is not None:
            return closed
        g.response = response
        return view(*args, **kwargs)

    return wrapped


def next_step_url(response) -> str:
    """Where a returning respondent continues: the first unanswered step in their own
    order, else review."""
    if not responses.profile_complete(response):
        return url_for(".profile")
    missing = responses.incomplete_pages(response)
    if missing:
        return url_for(".practice_page", number=missing[0].number)
    return url_for(".review")


def _after_save(default: str) -> str:
    return url_for(".review") if request.args.get("return") == "review" else default


def _arrival_channel():
    """The channel this browser arrived through (its link), else the default wave's
    direct channel (the bare URL)."""
    channel = fieldwork.channel_by_id(session.get(CHANNEL_KEY))
    return channel or fieldwork.direct_channel(responses.default_wave())


def _landing(form, existing, action: str | None = None):
    """The landing page: what the study is, consent, start or continue."""
    return render_template(
        "questionnaire/index.html",
        form=form,
        form_action=action,
        existing=existing,
        continue_url=next_step_url(existing) if existing and existing.status == "draft" else None,
        # Measured once enough people have finished; a rough guess until then.
        minutes=paradata.estimated_minutes(fallback=max(10, _page_count() * 2)),
        ttl=current_app.config["DRAFT_TTL_DAYS"],
        consent=responses.consent(),
    )


def _start(form, channel=None, invitation=None):
    """Start a draft after a valid consent form and let this browser hold it."""
    flag = "honeypot" if form.website.data else None
    _response, token = responses.start(
        current_language(), flag, channel=channel, invitation=invitation
    )
    _hold(token)
    return redirect(url_for(".profile"))


@bp.route("/", methods=["GET", "POST"])
@limiter.limit(_limit("LIMIT_START"), methods=["POST"])
def index():
    """Landing page: what the study is, consent, start or continue; the consent starts a
    draft in the wave and channel this browser arrived through, while that wave is open.
    A visit of the bare URL counts as a link opened (the default wave's direct channel)
    when the browser holds nothing and came through no channel link."""
    existing = current_response()
    if request.method == "GET" and existing is not None and existing.status == "draft":
        return _draft_closed(existing) or _landing(ConsentForm(), existing)
    channel = _arrival_channel()
    if fieldwork.state(channel.wave) != "open":
        return _closed_page(channel.wave)
    if request.method == "GET" and existing is None and CHANNEL_KEY not in session:
        fieldwork.record(channel.id, "opened")
    form = ConsentForm()
    if form.validate_on_submit():
        return _start(form, channel=channel)
    return _landing(form, existing)


@bp.route("/s/<slug>")
def channel_link(slug: str):
    """A channel's public link: counted as opened; while its wave is open the browser's
    session remembers the channel and the landing page follows, else the closed page."""
    channel = fieldwork.channel_by_slug(slug)
    if channel is None:
        return _invalid_link()
    fieldwork.record(channel.id, "opened")
    if fieldwork.state(channel.wave) != "open":
        return _closed_page(channel.wave)
    session[CHANNEL_KEY] = channel.id
    return redirect(url_for(".index"))


@bp.route("/i/<token>", methods=["GET", "POST"])
@limiter.limit(_limit("LIMIT_RESUME"))
@limiter.limit(_limit("LIMIT_START"), methods=["POST"])
def invitation(token: str):
    """A single-use invitation: GET shows the landing page (messenger previews fetch links
    too, so a GET uses nothing up), the consent POST starts the one response bound to it.
    Opened again, it offers to continue its draft here, or says it was used."""
    invitation = fieldwork.invitation_by_token(token)
    if invitation is None:
        return _invalid_link()
    channel = fieldwork.channel_by_id(invitation.channel_id)
    if request.method == "GET":
        fieldwork.record(channel.id, "opened")
    if invitation.response_id is not None or invitation.used_on is not None:
        return _used_invitation(token, fieldwork.invitation_response(invitation))
    if fieldwork.state(channel.wave) != "open":
        return _closed_page(channel.wave)
    form = ConsentForm()
    if form.validate_on_submit():
        try:
            return _start(form, invitation=invitation)
        except responses.InvitationUsed:  # another browser consented a moment earlier
            return redirect(url_for(".invitation", token=token))
    return _landing(form, None, action=url_for(".invitation", token=token))


def _open_draft(response) -> bool:
    return (
        response is not None and response.status == "draft" and not responses.is_expired(response)
    )


def _used_invitation(token: str, response):
    """An invitation used before: its draft is offered to continue in this browser (a POST
    there takes it over); a submitted, withdrawn or purged one has a page saying so."""
    if not _open_draft(response):
        return render_template(
            "questionnaire/invitation_used.html",
            submitted=response is not None and response.status == "submitted",
        )
    closed = _draft_closed(response)
    if closed is not None:
        return closed
    here = current_response()
    if here is not None and here.id == response.id:  # this browser holds it already
        return redirect(next_step_url(response))
    if request.method == "POST":  # a consent sent from a page shown before it was used
        return redirect(url_for(".invitation", token=token))
    return render_template(
        "questionnaire/resume.html",
        form=ConfirmForm(),
        action=url_for(".invitation_continue", token=token),
        submitted=False,
        replacing=here is not None and here.status == "draft",
    )


@bp.route("/i/<token>/continue", methods=["POST"])
@limiter.limit(_limit("LIMIT_RESUME"))
def invitation_continue(token: str):
    """Take an invitation's draft over in this browser (like a personal resume link)."""
    invitation = fieldwork.invitation_by_token(token)
    if invitation is None:
        return _invalid_link()
    response = fieldwork.invitation_response(invitation)
    if not _open_draft(response):
        return redirect(url_for(".invitation", token=token))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    closed = _draft_closed(response)
    if closed is not None:
        return closed
    new_token = responses.take_over(response)
    if new_token is None:  # another browser took it over a moment earlier
        return redirect(url_for(".invitation", token=token))
    _hold(new_token)
    flash(_taken_over_message(response))
    return redirect(next_step_url(response))


@bp.route("/lang/<code>")
def set_language(code: str):
    """Switch the interface language and go back to the page the respondent was on."""
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    return redirect(safe_redirect_target(request.args.get("next"), url_for(".index")))


@bp.route("/profile", methods=["GET", "POST"])
@limiter.limit(_limit("LIMIT_SAVE"), methods=["POST"])
@draft_required
def profile():
    """Work background: kinds of company worked in, industry, size, role, function,
    experience; then, for each kind of company worked in, its own block."""
    response = g.response
    lang = current_language()
    form = profile_form(lang, obj=response)
    if request.method == "POST":
        check_untampered(form, request.form)
        if form.validate():
            if _screened_out(response, form.data):
                return redirect(url_for(".enough"))
            responses.save_profile(response, form.data, lang, _seconds_on("profile"))
            first = _order().pages[0].number
            return redirect(_after_save(url_for(".practice_page", number=first)))
    else:
        _mark_served("profile")
    kinds = _order().kinds(COMPANY_KINDS)
    return render_template(
        "questionnaire/profile.html",
        form=form,
        fields_in_order=[form[q.field] for q in BACKGROUND]
        + [form[q.field] for kind in kinds for q in KIND_BACKGROUND[kind]],
        progress=progress(1),
        questions=BACKGROUND,
        blocks=[_kind_block(kind) for kind in kinds],
    )


def _screened_out(response, background: dict) -> bool:
    """On a draft's first background answers: if they fall in a full quota cell that
    closes, delete the draft (nothing of it is kept, only the channel's 'screened_out'
    count) and forget it in this browser. A respondent past the background page who
    changes it later is not turned away."""
    if responses.profile_complete(response):
        return False
    if quotas.closed_cell(fieldwork.wave_by_id(response.wave_id), background) is None:
        return False
    responses.screen_out(response)
    _forget()
    return True


@bp.route("/enough")
def enough():
    """Thank-you page of a respondent whose quota cell is full (nothing of theirs kept)."""
    return render_template("questionnaire/quota_full.html")


def _kind_block(kind: str) -> dict:
    """One kind of company's block of the background page, in the respondent's order of
    kinds: its title, its questions and the ``worked_in`` answers that ask for it (the
    script shows the block only after one of those)."""
    return {
        "kind": kind,
        "title": KIND_BLOCK_TITLES[kind],
        "questions": KIND_BACKGROUND[kind],
        "worked_in": [code for code, kinds in WORKED_IN_KINDS.items() if kind in kinds],
    }


def _page_or_404(number: int) -> tuple[Page, int]:
    """The catalogue page ``number`` in the respondent's order, and its position there."""
    position = _order().position(number)
    if position is None:
        abort(404)
    return _order().pages[position - 1], position


def _step_url(position: int) -> str:
    """The page at a position of the respondent's order (0: background; P+1: review)."""
    pages = _order().pages
    if position < 1:
        return url_for(".profile")
    if position > len(pages):
        return url_for(".review")
    return url_for(".practice_page", number=pages[position - 1].number)


def _initial_page_data(response, page) -> dict:
    """The page's form data from the draft: its answers as stored (read from the
    response's answer vector, :func:`survey.responses.page_answers`) and its examples."""
    ids = [p.id for p in page.practices]
    answers = responses.page_answers(response, page.practices)
    examples = responses.examples_for_page(
        responses.page_examples(response, ids), ids, _order().kinds(response.kinds())
    )
    data = {}
    for practice in page.practices:
        offered = {o.code for o in met_options(practice)}
        for kind in response.kinds():
            answer = answers.get((practice.id, kind))
            # Only today's choices: a 'yes' from before 2026-12 is asked again, unchecked.
            if answer and answer.met in offered:
                data[met_name(practice.id, kind)] = answer.met
                if answer.rating:
                    data[rating_name(practice.id, kind)] = str(answer.rating)
                elif answer.rating_mixed:
                    data[rating_name(practice.id, kind)] = RATING_MIXED.code
            data[example_name(practice.id, kind)] = examples.get((practice.id, kind), "")
    return data


def _cells(form, page, kinds) -> list[responses.Cell]:
    cells = []
    for practice in page.practices:
        for kind in kinds:
            met = form[met_name(practice.id, kind)].data
            rating = form[rating_name(practice.id, kind)].data if met == "applied" else None
            mixed = rating == RATING_MIXED.code
            cells.append(
                responses.Cell(
                    practice.id, kind, met, int(rating) if rating and not mixed else None, mixed
                )
            )
    return cells


class ShownCell(NamedTuple):
    """One kind of company's questions about a practice, as the page shows them."""

    kind: str
    met: object
    rating: object
    example: object


class Section(NamedTuple):
    """One practice on the page: its texts and its cells, in the respondent's order."""

    id: str
    name: str
    description: str
    cells: list[ShownCell]


def _sections(fields, page, kinds, lang: str) -> list[Section]:
    """What the page shows, in the respondent's order, with every field and text looked up
    here once (attribute and name lookups in the template cost more than the markup)."""
    return [
        Section(
            practice.id,
            practice.name.get(lang),
            practice.description.get(lang),
            [
                ShownCell(
                    kind,
                    fields[met_name(practice.id, kind)],
                    fields[rating_name(practice.id, kind)],
                    fields[example_name(practice.id, kind)],
                )
                for kind in kinds
            ],
        )
        for practice in page.practices
    ]


def _fields_in_order(sections: list[Section]) -> list:
    """The form's fields in the order the page shows them (for the error summary)."""
    fields = []
    for section in sections:
        for cell in section.cells:
            fields += [cell.met, cell.rating]
        fields += [cell.example for cell in section.cells]
    return fields


def _summary_labels(page, kinds, lang) -> dict[str, str]:
    """Labels for the error summary: practice and company kind, not just the question."""
    labels = {}
    examples = {kind: str(EXAMPLE_LABELS[kind]) for kind in kinds}
    for practice in page.practices:
        name = practice.name.get(lang)
        for kind in kinds:
            where = f"{name} — {KIND_LABELS[kind].label(lang)}"
            labels[met_name(practice.id, kind)] = where
            labels[rating_name(practice.id, kind)] = f"{where} — {RATING.text(lang)}"
            labels[example_name(practice.id, kind)] = f"{name} — {examples[kind]}"
    return labels


@bp.route("/page/<int:number>", methods=["GET", "POST"])
@limiter.limit(_limit("LIMIT_SAVE"), methods=["POST"])
@draft_required
def practice_page(number: int):
    """One page of practices of a category, asked for each kind of company worked in,
    practices and kinds in the respondent's own order."""
    response = g.response
    if not responses.profile_complete(response):
        return redirect(url_for(".profile"))
    (page, position), lang, kinds = _page_or_404(number), current_language(), response.kinds()
    # The form is the catalogue page's (built once, cached); only the display is reordered.
    canonical = responses.catalog().pages[number - 1]
    if request.method == "POST":
        form = practice_page_form(canonical, kinds, lang)
        check_untampered(form, request.form)
        if form.validate():
            examples = {
                (p.id, kind): form[example_name(p.id, kind)].data
                for p in page.practices
                for kind in kinds
            }
            cells = _cells(form, page, kinds)
            seconds = _seconds_on(f"page/{number}")
            responses.save_page(response, page, cells, examples, lang, position + 1, seconds)
            return redirect(_after_save(_step_url(position + 1)))
        return _render_practice_page(form, page, position, kinds, lang, errors=True)
    data = _initial_page_data(response, page)
    _mark_served(f"page/{number}")
    fields = shown_page_fields(canonical, kinds, lang, data)
    return _render_practice_page(fields, page, position, kinds, lang, errors=False)


def _render_practice_page(
    fields, page, position: int, kinds, lang: str, errors: bool, preview: Preview | None = None
):
    """The page with its fields as they stand: the stored answers (a GET: plain
    :class:`survey.forms.ShownField` values, nothing to validate) or a post sent back
    with its errors (the WTForms form). The error summary is built only then. A
    researcher's ``preview`` has no draft: the catalogue's order, nothing to send."""
    shown_kinds = (preview.order if preview else _order()).kinds(kinds)
    sections = _sections(fields, page, shown_kinds, lang)
    return render_template(
        "questionnaire/preview_page.html" if preview else "questionnaire/practice_page.html",
        preview=preview,
        csrf_field=csrf_input_html(),
        sections=sections,
        fields_in_order=_fields_in_order(sections) if errors else [],
        summary_labels=_summary_labels(page, kinds, lang) if errors else {},
        page=page,
        kinds=shown_kinds,
        kind_legends={kind: KIND_QUESTIONS[kind].label(lang) for kind in shown_kinds},
        example_labels={kind: str(EXAMPLE_LABELS[kind]) for kind in shown_kinds},
        rating_legend=RATING.text(lang),
        rating_hint=RATING.hint(lang),
        radio=radio_group_html,
        textarea=textarea_html,
        field_errors=field_errors_html,
        progress=progress(position + 1),
        previous_url=preview.previous_url if preview else _step_url(position - 1),
    )


@bp.route("/review")
@draft_required
def review():
    """All answers on one page, with links back to each page, and the submit button."""
    response = g.response
    answers = responses.answers_by_practice(response)
    return render_template(
        "questionnaire/review.html",
        response=response,
        answers=answers,
        examples=responses.examples_by_practice(response),
        incomplete={p.number for p in responses.incomplete_pages(response, answers)},
        profile_ok=responses.profile_complete(response),
        pages=_order().pages,
        kinds=_order().kinds(response.kinds()),
        background=BACKGROUND,
        blocks=[_kind_block(kind) for kind in _order().kinds(response.kinds())],
        kind_labels=KIND_LABELS,
        met_labels=MET_LABELS,
        rating_question=RATING,
        rating_mixed=RATING_MIXED,
        form=ConfirmForm(),
        progress=progress(_page_count() + 2),
    )


@bp.route("/submit", methods=["POST"])
@limiter.limit(_limit("LIMIT_SUBMIT"))
def submit():
    """Submit the draft once; a repeated submit lands on the thank-you page, storing nothing."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    response = current_response()
    if response is None:
        return redirect(url_for(".index"))
    if response.status == "draft":
        closed = _draft_closed(response)
        if closed is not None:
            return closed
        if not responses.profile_complete(response) or responses.incomplete_pages(response):
            flash(_("Some questions are still unanswered. Please complete the pages marked below."))
            return redirect(url_for(".review"))
        responses.submit(response, current_language())
    return redirect(url_for(".thanks"))


@bp.route("/thanks")
def thanks():
    """Thank-you page after a submitted response."""
    response = current_response()
    if response is None or response.status != "submitted":
        return redirect(url_for(".index"))
    g.response = response
    return render_template("questionnaire/thanks.html", form=ConfirmForm())


@bp.route("/compare")
def compare():
    """The respondent's own answers beside everyone's in their wave: only for the browser
    that holds the submitted response (its session, or its personal link taken over);
    no URL names a response. Below the wave's threshold it says how many more are needed."""
    response = current_response()
    if response is None or response.status != "submitted":
        return redirect(url_for(".index"))
    g.response = response  # the personal link to come back with (resume_link)
    page = compare_page.build(response, current_language())
    return render_template("questionnaire/compare.html", page=page)


def _continue_url(response) -> str:
    return url_for(".thanks") if response.status == "submitted" else next_step_url(response)


def _link_refused():
    flash(_("This link is not valid or has expired. You can start the survey again."))
    return redirect(url_for(".index"))


@bp.route("/resume/<token>", methods=["GET", "POST"])
@limiter.limit(_limit("LIMIT_RESUME"))
def resume(token: str):
    """Open a draft or response from its personal link, after confirmation.

    GET only asks (mail scanners and messenger previews fetch links too); the POST takes
    the answers over: a new link is issued and the old one, in any browser, stops working.
    """
    response = responses.find(token)
    if response is None:
        return _link_refused()
    if session.get(TOKEN_KEY) == token:  # this browser holds it already
        return redirect(_continue_url(response))
    form = ConfirmForm()
    if form.validate_on_submit():
        new_token = responses.take_over(response)
        if new_token is None:  # another browser took it over a moment earlier
            return _link_refused()
        _hold(new_token)
        flash(_taken_over_message(response))
        return redirect(_continue_url(response))
    here = current_response()
    return render_template(
        "questionnaire/resume.html",
        form=form,
        submitted=response.status == "submitted",
        replacing=here is not None and here.status == "draft" and here.id != response.id,
    )


def _taken_over_message(response) -> str:
    if response.status == "submitted":
        return _(
            "Your answers are now open in this browser only. The link you used no longer "
            "works: keep the new personal link below."
        )
    return _(
        "The survey now continues in this browser only. The link you used no longer works, "
        "here or anywhere else: your new personal link is under “Continue later or on "
        "another device”."
    )


@bp.route("/withdraw", methods=["GET", "POST"])
def withdraw():
    """Delete this browser's draft or response after confirmation."""
    response = current_response()
    if response is None:
        return redirect(url_for(".index"))
    form = ConfirmForm()
    if form.validate_on_submit():
        responses.withdraw(response)
        _forget()
        flash(_("Your answers have been deleted."))
        return redirect(url_for(".index"))
    return render_template("questionnaire/withdraw.html", form=form, response=response)


@bp.route("/restart", methods=["POST"])
def restart():
    """Forget this browser's response so another person can start afresh on it."""
    if ConfirmForm().validate_on_submit():
        _forget()
    return redirect(url_for(".index"))


class Preview(NamedTuple):
    """A researcher's preview of a page: the catalogue's order, where the preview goes
    back and on, and every page of it (label, URL, whether it is this one)."""

    order: paradata.Order
    previous_url: str
    next_url: str | None
    steps: list[tuple[str, str, bool]]
    languages: list[tuple[str, str, bool]]


def _preview(number: int) -> Preview:
    """The preview of page ``number`` (0: the background page) in the request's language."""
    lang = current_language()
    cat = responses.catalog()

    def url(n: int, **lang_arg) -> str:
        if n < 1:
            return url_for(".preview", **lang_arg)
        return url_for(".preview_page", number=n, **lang_arg)

    steps = [(_("Your work background"), url(0), number == 0)] + [
        (f"{page.number}. {page.category.name.get(lang)}", url(page.number), page.number == number)
        for page in cat.pages
    ]
    languages = [
        (code, url(number, lang=code), code == lang) for code in current_app.config["LANGUAGES"]
    ]
    return Preview(
        order=paradata.resolve(cat, None),
        previous_url=url(number - 1) if number > 0 else url(0),
        next_url=url(number + 1) if number < len(cat.pages) else None,
        steps=steps,
        languages=languages,
    )


@bp.route("/researcher/preview")
@researcher_required
def preview():
    """A researcher's preview of the background page (``?lang=ru|en``): what a respondent
    sees, with nothing to send; no response is created or read."""
    lang = current_language()
    kinds = paradata.resolve(responses.catalog(), None).kinds(COMPANY_KINDS)
    form = profile_form(lang)
    return render_template(
        "questionnaire/preview_profile.html",
        preview=_preview(0),
        form=form,
        fields_in_order=[],
        progress=progress(1),
        questions=BACKGROUND,
        blocks=[_kind_block(kind) for kind in kinds],
    )


@bp.route("/researcher/preview/page/<int:number>")
@researcher_required
def preview_page(number: int):
    """A researcher's preview of practice page ``number`` (the catalogue's), asked about
    both kinds of company, in the catalogue's order (``?lang=ru|en``); nothing to send."""
    cat, lang = responses.catalog(), current_language()
    if not 1 <= number <= len(cat.pages):
        abort(404)
    preview = _preview(number)
    page = preview.order.pages[number - 1]
    fields = shown_page_fields(cat.pages[number - 1], COMPANY_KINDS, lang, {})
    return _render_practice_page(fields, page, number, COMPANY_KINDS, lang, False, preview)


@bp.context_processor
def resume_link():
    """The personal resume link of the session's draft, shown on every questionnaire page."""
    token = session.get(TOKEN_KEY)
    response = g.get("response")
    if token and response is not None:
        return {"resume_url": public_url("questionnaire.resume", token=token)}
    return {"resume_url": None}


@bp.after_request
def no_store(response):
    """No questionnaire page is kept by a browser or proxy: they show answers and the link."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(TamperedForm)
def tampered(exc):
    """A hand-made post: a 400 page in the respondent's language, nothing stored."""
    current_app.logger.info("rejected tampered form: %s", exc)
    return render_template("errors/error.html", code=400), 400
