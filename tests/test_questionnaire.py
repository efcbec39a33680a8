"""The questionnaire as a respondent meets it: pages, languages, save and resume, submit once.

Every test drives real pages through the test client (real CSRF tokens) and then looks at
what the database holds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from urllib.parse import urlsplit

import pytest
from markupsafe import escape
from sqlalchemy import Date, DateTime, Time, func, inspect, select, update

from survey import fieldwork, responses
from survey.extensions import db
from survey.forms import met_name, rating_name
from survey.models import Answer, CatalogVersion, PracticeExample, Response, Wave
from survey.questions import KIND_LABELS
from tests.helpers import (
    PROFILE,
    Respondent,
    csrf_token,
    expected_answers,
    open_resume_link,
    order_of,
    page_after,
)

BOTH = ("ru", "foreign")
RESUME_LINK_RE = re.compile(r'<input class="resume-link"[^>]*value="([^"]+)"')
FIELD_NAME_RE = re.compile(r'name="([^"]+)"')


class Browser(Respondent):
    """A respondent that keeps its session's CSRF token instead of fetching every page first.

    One token is valid for the whole session, so posting a page without rendering it is
    what a browser does when the respondent reloads and re-sends a form.
    """

    token: str | None = None

    def post_form(self, path: str, data: dict, follow: bool = False):
        if self.token is None:
            page = self.client.get(path)
            assert page.status_code == 200, (path, page.status_code)
            self.token = csrf_token(page.text)
        return self.client.post(
            path, data={"csrf_token": self.token, **data}, follow_redirects=follow
        )

    def start(self, **profile):
        """Consent and answer the background questions."""
        self.consent()
        r = self.profile(**profile)
        assert r.status_code == 302, r.text[:2000]
        return self

    def answer_pages(self, catalog, pages=None, kinds=BOTH, **kwargs):
        """Answer the given practice pages (all by default); each must be accepted."""
        for page in pages or catalog.pages:
            r = self.answer_page(page, kinds, **kwargs)
            assert r.status_code == 302, r.text[:3000]
        return self

    def post_submit(self):
        return self.client.post("/submit", data={"csrf_token": self.token})


def count(app, model) -> int:
    """Number of rows of a model's table."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def the_response(app) -> Response:
    """The only response in the database (detached, attributes loaded)."""
    with app.app_context():
        response = db.session.scalars(select(Response)).one()
        db.session.expunge(response)
        return response


def stored_answers(app, response_id: int | None = None) -> dict:
    """(practice, kind) -> (met, rating) as stored."""
    with app.app_context():
        query = select(Answer)
        if response_id is not None:
            query = query.filter_by(response_id=response_id)
        return {
            (a.practice_id, a.company_kind): (a.met, a.rating) for a in db.session.scalars(query)
        }


def stored_examples(app) -> dict:
    with app.app_context():
        return {
            (e.practice_id, e.company_kind): e.text
            for e in db.session.scalars(select(PracticeExample))
        }


def age_drafts(app, days: int) -> None:
    """Pretend every response was last touched ``days`` ago."""
    with app.app_context():
        db.session.execute(
            update(Response).values(updated_on=fieldwork.today() - dt.timedelta(days))
        )
        db.session.commit()


def resume_path(html: str) -> str:
    """The path of the personal resume link a page offers."""
    match = RESUME_LINK_RE.search(html)
    assert match, "page offers no resume link"
    return urlsplit(match.group(1)).path


# ---------------------------------------------------------------- the whole questionnaire

TEXTS = {
    "ru": {
        "profile": "Ваш опыт работы",
        "review": "Проверьте ответы",
        "thanks": "Спасибо",
        "step": "Шаг {} из {}",
    },
    "en": {
        "profile": "Your work background",
        "review": "Review your answers",
        "thanks": "Thank",
        "step": "Step {} of {}",
    },
}


def step_page(client, path: str, lang: str, step: int, total: int) -> str:
    """GET a questionnaire step and check its language, progress indicator and switch."""
    r = client.get(path)
    assert r.status_code == 200, path
    assert f'<html lang="{lang}">' in r.text, path
    assert TEXTS[lang]["step"].format(step, total) in r.text, path
    assert f'<progress max="{total}" value="{step - 1}">' in r.text, path
    assert 'class="lang-switch"' in r.text, path
    return r.text


@pytest.mark.parametrize(
    ("lang", "profile"),
    [
        ("ru", {}),
        ("en", {"current_employer": "self", "industry": "pharma", "region": None}),
    ],
)
def test_whole_questionnaire_in_each_language_stores_the_answers_exactly_as_given(
    app, client, lang, profile
):
    catalog = app.extensions["survey_catalog"]
    other = "en" if lang == "ru" else "ru"
    total = len(catalog.pages) + 2
    first, last = catalog.practices[0], catalog.practices[-1]
    examples = {
        (first.id, "ru"): "Квартальная премия,\nно только отделу продаж",
        (first.id, "foreign"): "Бонус раз в год",
        (last.id, "foreign"): "Gym pass",
    }
    respondent = Browser(client, lang)
    assert 'class="lang-switch"' in client.get("/").text
    respondent.consent()

    html = step_page(client, "/profile", lang, 1, total)
    assert TEXTS[lang]["profile"] in html and TEXTS[other]["profile"] not in html
    order = order_of(client)  # the respondent's own order of pages and practices
    assert respondent.profile(**profile).location == f"/page/{order.pages[0].number}"

    for position, page in enumerate(order.pages, 1):
        html = step_page(client, f"/page/{page.number}", lang, position + 1, total)
        assert escape(page.category.name.get(lang)) in html
        assert escape(page.category.name.get(other)) not in html
        for practice in page.practices:
            assert escape(practice.name.get(lang)) in html
            assert escape(practice.description.get(lang)) in html
        shown = re.findall(r'<section class="practice" id="practice-([^"]+)"', html)
        assert shown == [p.id for p in page.practices]  # in the respondent's order
        r = respondent.answer_page(page, BOTH, examples=examples)
        assert r.status_code == 302 and r.location == page_after(order, page)

    assert TEXTS[lang]["review"] in step_page(client, "/review", lang, total, total)
    assert respondent.post_submit().location.endswith("/thanks")
    assert TEXTS[lang]["thanks"] in client.get("/thanks").text

    response = the_response(app)
    given = {**PROFILE, **profile}
    assert response.status == "submitted" and response.language == lang
    assert {field: getattr(response, field) for field in given} == given
    assert response.submitted_on == fieldwork.today()
    assert stored_answers(app) == expected_answers(catalog, BOTH)
    assert stored_examples(app) == examples
    assert count(app, Answer) == 2 * len(catalog.practices)
    with app.app_context():
        version = db.session.get(CatalogVersion, response.catalog_version_id)
        assert version.checksum == catalog.checksum
        assert db.session.get(Wave, response.wave_id).is_default


@pytest.mark.parametrize(
    ("worked_in", "asked", "not_asked"),
    [("ru_only", "ru", "foreign"), ("foreign_only", "foreign", "ru")],
)
def test_a_kind_of_company_never_worked_in_is_never_asked_and_stored_as_not_applicable(
    app, client, worked_in, asked, not_asked
):
    catalog = app.extensions["survey_catalog"]
    respondent = Browser(client).start(worked_in=worked_in)
    for page in catalog.pages:
        html = client.get(f"/page/{page.number}").text
        names = set(FIELD_NAME_RE.findall(html))
        assert {met_name(p.id, asked) for p in page.practices} <= names
        assert not [name for name in names if f"__{not_asked}__" in name]
        assert respondent.answer_page(page, (asked,)).status_code == 302
    headers = set(re.findall(r'<th scope="col">([^<]*)</th>', client.get("/review").text))
    assert KIND_LABELS[asked].ru in headers and KIND_LABELS[not_asked].ru not in headers
    assert respondent.post_submit().location.endswith("/thanks")

    stored = stored_answers(app)
    assert stored == expected_answers(catalog, (asked,))
    assert {stored[(p.id, not_asked)] for p in catalog.practices} == {("na", None)}
    assert the_response(app).worked_in == worked_in


# ---------------------------------------------------------------- save and resume


def continue_link(client) -> str:
    """Where the landing page's "continue" button points."""
    html = client.get("/").text
    match = re.search(r'<a class="button" href="([^"]+)">[^<]*(Продолжить|Continue)', html)
    assert match, "landing page offers no continue link"
    assert 'class="consent-form"' not in html
    return match.group(1)


def test_returning_in_the_same_browser_continues_at_the_first_unanswered_page(app, client):
    catalog = app.extensions["survey_catalog"]
    respondent = Browser(client)
    respondent.consent()
    assert continue_link(client) == "/profile"

    respondent.profile()
    order = order_of(client)
    first, second, third = order.pages[:3]  # the first three pages in the respondent's order
    assert continue_link(client) == f"/page/{first.number}"

    respondent.answer_pages(catalog, pages=[first, third])
    assert continue_link(client) == f"/page/{second.number}"
    assert client.get(f"/page/{second.number}").status_code == 200

    respondent.answer_pages(catalog, pages=[second, *order.pages[3:]])
    assert continue_link(client) == "/review"
    assert stored_answers(app) == expected_answers(catalog, BOTH)


def test_resume_link_continues_in_a_fresh_client_and_stores_one_response(app, client):
    catalog = app.extensions["survey_catalog"]
    browser = Browser(client).start()
    order = order_of(client)
    browser.answer_pages(catalog, pages=order.pages[:1])
    second = f"/page/{order.pages[1].number}"
    link = resume_path(client.get(second).text)

    elsewhere = app.test_client()
    r = open_resume_link(elsewhere, link)
    assert r.status_code == 302 and r.location == second  # the same order on this device
    assert order_of(elsewhere) == order
    new_link = resume_path(elsewhere.get(second).text)
    assert new_link != link  # taking a draft over issues a new link
    other_device = Browser(elsewhere)
    other_device.answer_pages(catalog, pages=order.pages[1:])
    assert other_device.post_submit().location.endswith("/thanks")

    response = the_response(app)
    assert response.status == "submitted"
    assert stored_answers(app) == expected_answers(catalog, BOTH)
    token = new_link.rsplit("/", 1)[1]
    assert response.resume_token_hash == hashlib.sha256(token.encode("utf-8")).hexdigest() != token


def test_an_expired_or_unknown_resume_link_is_refused_with_a_message(app, client):
    catalog = app.extensions["survey_catalog"]
    ttl = app.config["DRAFT_TTL_DAYS"]
    r = client.get("/resume/not-a-real-token", follow_redirects=True)
    assert r.request.path == "/"
    assert "Ссылка недействительна или её срок истёк" in r.text
    Browser(client).start().answer_pages(catalog, pages=catalog.pages[:1])
    link = resume_path(client.get("/page/2").text)

    age_drafts(app, ttl)  # the last day of its life: still open
    assert 'class="resume-form"' in app.test_client().get(link).text

    age_drafts(app, ttl + 1)
    r = app.test_client().get(link, follow_redirects=True)
    assert r.request.path == "/"
    assert "Ссылка недействительна или её срок истёк" in r.text

    r = client.get("/page/2", follow_redirects=True)
    assert r.request.path == "/"
    assert "срок их хранения истёк" in r.text
    assert 'class="consent-form"' in r.text


def test_purge_drafts_deletes_expired_drafts_and_their_answers_but_never_submitted_ones(
    app, runner
):
    catalog = app.extensions["survey_catalog"]
    ttl = app.config["DRAFT_TTL_DAYS"]
    example = {catalog.practices[0].id: "an example"}

    submitted = Browser(app.test_client()).start().answer_pages(catalog, examples=example)
    assert submitted.post_submit().location.endswith("/thanks")
    Browser(app.test_client()).start().answer_pages(
        catalog, pages=catalog.pages[:2], examples=example
    )
    age_drafts(app, ttl + 400)
    Browser(app.test_client()).start().answer_pages(catalog, pages=catalog.pages[:1])
    with app.app_context():
        ids = db.session.scalars(select(Response.id).order_by(Response.id)).all()
        db.session.execute(
            update(Response)
            .where(Response.id == ids[2])
            .values(updated_on=fieldwork.today() - dt.timedelta(ttl))
        )
        db.session.commit()

    with app.app_context():  # the commands are plain click commands: see test_cli.py
        result = runner.invoke(args=["purge-drafts"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 expired draft(s)." in result.output

    with app.app_context():
        kept = db.session.scalars(select(Response).order_by(Response.id)).all()
        assert [(r.id, r.status) for r in kept] == [(ids[0], "submitted"), (ids[2], "draft")]
        answer_owners = set(db.session.scalars(select(Answer.response_id)))
        example_owners = set(db.session.scalars(select(PracticeExample.response_id)))
    assert answer_owners == {ids[0], ids[2]}
    assert example_owners == {ids[0]}
    assert stored_answers(app, ids[0]) == expected_answers(catalog, BOTH)


# ---------------------------------------------------------------- submit


def test_resubmitting_the_same_response_stores_it_once(app, client):
    catalog = app.extensions["survey_catalog"]
    respondent = Browser(client).start().answer_pages(catalog)
    with app.app_context():
        stale = db.session.scalars(select(Response)).one()  # as a second worker would see it
        db.session.expunge(stale)

    assert respondent.post_submit().location.endswith("/thanks")
    assert respondent.post_submit().location.endswith("/thanks")  # double click
    last = catalog.pages[-1]
    replay = respondent.answer_page(
        last, BOTH, answers={(p.id, "ru"): ("no", None) for p in last.practices}
    )
    assert replay.location.endswith("/thanks")  # back button and re-sent page

    with app.app_context():
        assert responses.submit(stale, "en") is False  # the race a second worker would lose
    response = the_response(app)
    assert response.status == "submitted" and response.language == "ru"
    assert count(app, Response) == 1
    assert count(app, Answer) == 2 * len(catalog.practices)
    assert stored_answers(app) == expected_answers(catalog, BOTH)


def test_submitting_with_unanswered_questions_is_refused(app, client):
    catalog = app.extensions["survey_catalog"]
    respondent = Browser(client)
    respondent.consent()
    assert respondent.post_submit().location == "/review"  # background not answered yet
    respondent.profile()
    respondent.answer_pages(catalog, pages=catalog.pages[:1])
    r = respondent.post_submit()
    assert r.status_code == 302 and r.location == "/review"
    review = client.get("/review").text
    assert "Остались вопросы без ответа" in review
    assert review.count("review-section incomplete") == len(catalog.pages) - 1
    assert re.search(r'<button type="submit" class="button primary"\s+disabled', review)
    assert the_response(app).status == "draft"


# ---------------------------------------------------------------- ratings and form errors


def test_a_rating_given_with_no_or_dont_know_is_discarded(app, client):
    catalog = app.extensions["survey_catalog"]
    page = catalog.pages[0]
    first, second, third, fourth = page.practices[:4]
    answers = {
        (first.id, "ru"): ("no", 5),
        (second.id, "ru"): ("dk", 1),
        (third.id, "foreign"): ("applied", 3),
        (fourth.id, "ru"): ("existed", 2),
    }
    r = Browser(client).start().answer_page(page, BOTH, answers=answers)
    assert r.status_code == 302 and r.location == page_after(order_of(client), page)
    stored = stored_answers(app)
    assert stored[(first.id, "ru")] == ("no", None)
    assert stored[(second.id, "ru")] == ("dk", None)
    assert stored[(third.id, "foreign")] == ("applied", 3)
    assert stored[(fourth.id, "ru")] == ("existed", None)


MET_MISSING = "Пожалуйста, ответьте на этот вопрос."
RATING_MISSING = "Эта практика касалась вас: оцените, пожалуйста, её влияние."


def test_a_missing_answer_or_rating_is_an_error_next_to_the_field_and_in_the_summary(app, client):
    catalog = app.extensions["survey_catalog"]
    page = catalog.pages[0]
    practice = page.practices[1]
    respondent = Browser(client).start()
    met, rating = met_name(practice.id, "ru"), rating_name(practice.id, "ru")
    complete = {
        **respondent.page_data(page, BOTH, examples={practice.id: "kept on the page"}),
        met: "applied",
        rating: "4",
    }
    variants = {
        "question unanswered": ({met: None}, met, MET_MISSING),
        "question sent empty": ({met: ""}, met, MET_MISSING),
        "no rating after applied": ({rating: None}, rating, RATING_MISSING),
        "empty rating after applied": ({rating: ""}, rating, RATING_MISSING),
    }
    for variant, (change, field, message) in variants.items():
        data = {k: v for k, v in {**complete, **change}.items() if v is not None}

        r = respondent.post_form("/page/1", data)

        assert r.status_code == 200, variant
        next_to_field = rf'<p class="field-error" id="{field}-error"><span>{message}</span>'
        assert re.search(next_to_field, r.text), variant
        summary = r.text.split('class="error-summary"', 1)[1].split("</div>", 1)[0]
        assert f'href="#{field}-0"' in summary, variant
        assert escape(practice.name.ru) in summary and message in summary, variant
        assert summary.count("<li>") == 1, variant
        assert "kept on the page" in r.text, variant  # what was typed is not lost
        assert count(app, Answer) == 0 and count(app, PracticeExample) == 0, variant
    assert respondent.post_form("/page/1", complete).status_code == 302


# ---------------------------------------------------------------- changing the background


def test_changing_the_kinds_of_company_keeps_answers_consistent(app, client):
    catalog = app.extensions["survey_catalog"]
    respondent = Browser(client).start().answer_pages(catalog)
    everything = expected_answers(catalog, BOTH)

    r = respondent.post_form("/profile?return=review", {**PROFILE, "worked_in": "ru_only"})
    assert r.location == "/review"
    assert stored_answers(app) == expected_answers(catalog, ("ru",))
    assert "review-section incomplete" not in client.get("/review").text

    respondent.post_form("/profile?return=review", {**PROFILE, "worked_in": "both"})
    stored = stored_answers(app)
    assert stored == {k: v for k, v in everything.items() if k[1] == "ru"}
    review = client.get("/review").text
    assert review.count("review-section incomplete") == len(catalog.pages)
    assert respondent.post_submit().location == "/review"
    assert the_response(app).status == "draft"

    # the foreign questions are asked again, from the respondent's first page
    assert continue_link(client) == f"/page/{order_of(client).pages[0].number}"
    respondent.answer_pages(catalog)
    assert respondent.post_submit().location.endswith("/thanks")
    assert stored_answers(app) == everything


# ---------------------------------------------------------------- withdraw, escaping


def test_withdrawing_deletes_the_response_and_its_answers(app, client):
    catalog = app.extensions["survey_catalog"]
    example = {catalog.practices[0].id: "something personal"}
    bystander = Browser(app.test_client()).start().answer_pages(catalog, catalog.pages[:1])
    respondent = Browser(client).start().answer_pages(catalog, examples=example)
    assert respondent.post_submit().location.endswith("/thanks")
    assert count(app, Answer) == 2 * len(catalog.practices) + 2 * len(catalog.pages[0].practices)

    later = app.test_client()  # withdrawing later, with the link from the thank-you page
    assert open_resume_link(later, resume_path(client.get("/thanks").text)).location == "/thanks"
    page = later.get("/withdraw")
    assert page.status_code == 200
    r = later.post("/withdraw", data={"csrf_token": csrf_token(page.text)}, follow_redirects=True)
    assert r.request.path == "/" and "Ваши ответы удалены." in r.text
    assert 'class="consent-form"' in client.get("/").text  # the first browser starts afresh

    with app.app_context():
        left = db.session.scalars(select(Response)).all()
        assert [r.status for r in left] == ["draft"]
        assert set(db.session.scalars(select(Answer.response_id))) == {left[0].id}
    assert count(app, PracticeExample) == 0
    assert bystander.client.get("/page/2").status_code == 200


def test_free_text_is_shown_escaped_on_the_review_page(app, client):
    catalog = app.extensions["survey_catalog"]
    practice = catalog.pages[0].practices[0]
    text = '<script>alert("x")</script> & <b>bold</b>'
    Browser(client).start().answer_pages(
        catalog, pages=catalog.pages[:1], examples={practice.id: text}
    )
    review = client.get("/review").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in review
    assert "<script>alert" not in review and "<b>bold" not in review
    assert stored_examples(app) == {(practice.id, "ru"): text}


# ---------------------------------------------------------------- every page


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no database involved
def test_the_language_switch_never_redirects_to_another_site(client):
    for target in (
        "//evil.example",
        "https://evil.example/",
        "http:evil.example",
        "///evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
    ):
        r = client.get("/lang/en", query_string={"next": target})
        assert r.status_code == 302
        location = urlsplit(r.location)
        assert not location.netloc and location.path == "/", (target, r.location)
    r = client.get("/lang/en", query_string={"next": "/\\evil.example"})
    assert r.location == "/"  # browsers read the backslash as a slash: "//evil.example"
    r = client.get("/lang/en", query_string={"next": "/profile?return=review"})
    assert r.location == "/profile?return=review"
    assert '<html lang="en">' in client.get("/").text


def test_no_ip_address_user_agent_or_time_of_day_is_stored(app):
    catalog = app.extensions["survey_catalog"]
    client = app.test_client()
    client.environ_base.update(REMOTE_ADDR="203.0.113.77", HTTP_USER_AGENT="ProbeAgent/9.9")
    respondent = Browser(client).start().answer_pages(catalog)
    assert respondent.post_submit().location.endswith("/thanks")

    with app.app_context():
        columns = inspect(db.engine).get_columns("response")
        names = {c["name"] for c in columns}
        dated = {c["name"] for c in columns if isinstance(c["type"], Date | DateTime | Time)}
        for table in ("response", "answer", "practice_example"):
            for row in db.session.execute(select(db.metadata.tables[table])):
                values = " ".join(str(v) for v in row)
                assert "203.0.113.77" not in values and "ProbeAgent" not in values
    assert not [n for n in names if re.search(r"(^|_)(ip|agent|addr|address|time)(_|$)", n)]
    assert dated == {"consented_on", "started_on", "updated_on", "submitted_on"}
    assert not [c["name"] for c in columns if isinstance(c["type"], DateTime | Time)]
    response = the_response(app)
    for name in dated:
        assert type(getattr(response, name)) is dt.date
