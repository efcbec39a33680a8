"""Blueprint: consent, work background, practice pages, review, submit, thanks.

Every POST redirects (post/redirect/get); every answer is saved when its page is sent.
Page numbers for progress and drop-off: 0 consent, 1 background, 2..P+1 practice pages,
P+2 review, P+3 submitted.
"""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlsplit

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

from survey import responses
from survey.extensions import limiter
from survey.forms import (
    ConfirmForm,
    ConsentForm,
    TamperedForm,
    check_untampered,
    example_name,
    met_name,
    practice_page_form,
    profile_form,
    rating_name,
)
from survey.i18n import current_language
from survey.questions import BACKGROUND, KIND_LABELS, KIND_QUESTIONS, MET, RATING

bp = Blueprint("questionnaire", __name__)

TOKEN_KEY = "resume_token"  # noqa: S105 - a session key name, not a secret
STARTED_KEY = "started_at"


def _limit(name: str):
    """A rate limit read from the configuration at request time (POST only unless GET)."""
    return lambda: current_app.config[name]


def _page_count() -> int:
    return len(responses.catalog().pages)


def progress(step: int) -> dict:
    """Progress of a step (1 = background ... P+2 = review) for the progress bar."""
    total = _page_count() + 2
    return {"step": step, "total": total, "percent": round(100 * (step - 1) / total)}


def current_response():
    """The draft or response this browser's session holds, or None."""
    return responses.find(session.get(TOKEN_KEY))


def draft_required(view):
    """Open the session's draft for the view, or send the browser where it belongs."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        response = current_response()
        if response is None:
            if session.pop(TOKEN_KEY, None):
                flash(_("Your saved answers have expired or were deleted. Please start again."))
            return redirect(url_for(".index"))
        if response.status == "submitted":
            return redirect(url_for(".thanks"))
        g.response = response
        return view(*args, **kwargs)

    return wrapped


def next_step_url(response) -> str:
    """Where a returning respondent continues: the first unanswered step, else review."""
    if not responses.profile_complete(response):
        return url_for(".profile")
    missing = responses.incomplete_pages(response)
    if missing:
        return url_for(".practice_page", number=missing[0].number)
    return url_for(".review")


def _after_save(default: str) -> str:
    return url_for(".review") if request.args.get("return") == "review" else default


@bp.route("/", methods=["GET", "POST"])
@limiter.limit(_limit("LIMIT_START"), methods=["POST"])
def index():
    """Landing page: what the study is, consent, start or continue."""
    existing = current_response()
    form = ConsentForm()
    if form.validate_on_submit():
        flag = "honeypot" if form.website.data else None
        response, token = responses.start(current_language(), flag)
        session.permanent = True
        session[TOKEN_KEY] = token
        session[STARTED_KEY] = time.time()
        return redirect(url_for(".profile"))
    return render_template(
        "questionnaire/index.html",
        form=form,
        existing=existing,
        continue_url=next_step_url(existing) if existing and existing.status == "draft" else None,
        minutes=max(10, _page_count() * 2),
        ttl=current_app.config["DRAFT_TTL_DAYS"],
    )


@bp.route("/lang/<code>")
def set_language(code: str):
    """Switch the interface language and go back to the page the respondent was on."""
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    target = request.args.get("next", "")
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc:
        target = url_for(".index")
    return redirect(target)


@bp.route("/profile", methods=["GET", "POST"])
@limiter.limit(_limit("LIMIT_SAVE"), methods=["POST"])
@draft_required
def profile():
    """Work background: kinds of company worked in, industry, size, role, experience."""
    response = g.response
    lang = current_language()
    form = profile_form(lang, obj=response)
    if request.method == "POST":
        check_untampered(form, request.form)
        if form.validate():
            responses.save_profile(response, form.data, lang)
            return redirect(_after_save(url_for(".practice_page", number=1)))
    return render_template(
        "questionnaire/profile.html", form=form, progress=progress(1), questions=BACKGROUND
    )


def _page_or_404(number: int):
    pages = responses.catalog().pages
    if not 1 <= number <= len(pages):
        abort(404)
    return pages[number - 1]


def _initial_page_data(response, page) -> dict:
    answers = responses.answers_by_practice(response)
    examples = responses.examples_by_practice(response)
    data = {}
    for practice in page.practices:
        for kind in response.kinds():
            answer = answers.get((practice.id, kind))
            if answer and answer.met != "na":
                data[met_name(practice.id, kind)] = answer.met
                if answer.rating:
                    data[rating_name(practice.id, kind)] = str(answer.rating)
        data[example_name(practice.id)] = examples.get(practice.id, "")
    return data


def _cells(form, page, kinds) -> list[responses.Cell]:
    cells = []
    for practice in page.practices:
        for kind in kinds:
            met = form[met_name(practice.id, kind)].data
            rating = form[rating_name(practice.id, kind)].data
            cells.append(
                responses.Cell(practice.id, kind, met, int(rating) if met == "yes" else None)
            )
    return cells


def _summary_labels(page, kinds, lang) -> dict[str, str]:
    """Labels for the error summary: practice and company kind, not just the question."""
    labels = {}
    for practice in page.practices:
        name = practice.name.get(lang)
        labels[example_name(practice.id)] = name
        for kind in kinds:
            where = f"{name} — {KIND_LABELS[kind].label(lang)}"
            labels[met_name(practice.id, kind)] = where
            labels[rating_name(practice.id, kind)] = f"{where} — {RATING.text(lang)}"
    return labels


@bp.route("/page/<int:number>", methods=["GET", "POST"])
@limiter.limit(_limit("LIMIT_SAVE"), methods=["POST"])
@draft_required
def practice_page(number: int):
    """One page of practices of a category, asked for each kind of company worked in."""
    response = g.response
    if not responses.profile_complete(response):
        return redirect(url_for(".profile"))
    page, lang, kinds = _page_or_404(number), current_language(), response.kinds()
    if request.method == "POST":
        form = practice_page_form(page, kinds, lang)
        check_untampered(form, request.form)
        if form.validate():
            examples = {p.id: form[example_name(p.id)].data for p in page.practices}
            responses.save_page(
                response, page, _cells(form, page, kinds), examples, lang, number + 1
            )
            last = number == _page_count()
            nxt = url_for(".review") if last else url_for(".practice_page", number=number + 1)
            return redirect(_after_save(nxt))
    else:
        form = practice_page_form(page, kinds, lang, data=_initial_page_data(response, page))
    return render_template(
        "questionnaire/practice_page.html",
        form=form,
        page=page,
        kinds=kinds,
        kind_labels=KIND_LABELS,
        kind_questions=KIND_QUESTIONS,
        rating_question=RATING,
        met_question=MET,
        progress=progress(number + 1),
        names={"met": met_name, "rating": rating_name, "example": example_name},
        summary_labels=_summary_labels(page, kinds, lang),
        previous_url=url_for(".practice_page", number=number - 1)
        if number > 1
        else url_for(".profile"),
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
        pages=responses.catalog().pages,
        background=BACKGROUND,
        kind_labels=KIND_LABELS,
        met_question=MET,
        rating_question=RATING,
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
        if not responses.profile_complete(response) or responses.incomplete_pages(response):
            flash(_("Some questions are still unanswered. Please complete the pages marked below."))
            return redirect(url_for(".review"))
        responses.submit(response, current_language(), _timing_flag())
    return redirect(url_for(".thanks"))


def _timing_flag() -> str | None:
    """'too_fast' when this browser went from consent to submit faster than a person can."""
    started = session.get(STARTED_KEY)
    if not isinstance(started, int | float):
        return None  # resumed on another device: no start time to compare with
    minimum = current_app.config["MIN_COMPLETION_SECONDS"]
    return "too_fast" if time.time() - started < minimum else None


@bp.route("/thanks")
def thanks():
    """Thank-you page after a submitted response."""
    response = current_response()
    if response is None or response.status != "submitted":
        return redirect(url_for(".index"))
    return render_template(
        "questionnaire/thanks.html", form=ConfirmForm(), token=session.get(TOKEN_KEY)
    )


@bp.route("/resume/<token>")
@limiter.limit(_limit("LIMIT_RESUME"))
def resume(token: str):
    """Open a draft from its resume link, on any device."""
    response = responses.find(token)
    if response is None:
        flash(_("This link is not valid or has expired. You can start the survey again."))
        return redirect(url_for(".index"))
    session.permanent = True
    session[TOKEN_KEY] = token
    if response.status == "submitted":
        return redirect(url_for(".thanks"))
    return redirect(next_step_url(response))


@bp.route("/withdraw", methods=["GET", "POST"])
def withdraw():
    """Delete this browser's draft or response after confirmation."""
    response = current_response()
    if response is None:
        return redirect(url_for(".index"))
    form = ConfirmForm()
    if form.validate_on_submit():
        responses.withdraw(response)
        session.pop(TOKEN_KEY, None)
        flash(_("Your answers have been deleted."))
        return redirect(url_for(".index"))
    return render_template("questionnaire/withdraw.html", form=form, response=response)


@bp.route("/restart", methods=["POST"])
def restart():
    """Forget this browser's response so another person can start afresh on it."""
    if ConfirmForm().validate_on_submit():
        session.pop(TOKEN_KEY, None)
    return redirect(url_for(".index"))


@bp.context_processor
def resume_link():
    """The personal resume link of the session's draft, shown on every questionnaire page."""
    token = session.get(TOKEN_KEY)
    response = g.get("response")
    if token and response is not None:
        return {"resume_url": url_for(".resume", token=token, _external=True)}
    return {"resume_url": None}


@bp.errorhandler(TamperedForm)
def tampered(exc):
    """A hand-made post: a 400 page in the respondent's language, nothing stored."""
    current_app.logger.info("rejected tampered form: %s", exc)
    return render_template("errors/error.html", code=400), 400
