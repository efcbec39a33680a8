"""The language of every answer page, and one free-text example per practice and kind.

Expected values come from what the scripted respondents typed and clicked (a plain recount),
never from the code under test.
"""

from __future__ import annotations

import re

from sqlalchemy import insert, select, update

from survey import results
from survey.extensions import db
from survey.forms import example_name
from survey.models import PracticeExample, Response, ResponsePage
from survey.paradata import BACKGROUND_PAGE
from tests.helpers import (
    Respondent,
    csrf_token,
    fetch,
    log_in,
    open_resume_link,
    order_of,
    seed,
)
from tests.test_dashboard import page
from tests.test_export import (
    DOWNLOAD,
    allow_full_suppression,
    frame,
    scripted_respondents_count_as_people,
)

BOTH = ("ru", "foreign")


def real_practice(catalog, page):
    """The first practice of a page that is not the fictitious one."""
    return next(p for p in page.practices if not p.fictitious)


def page_languages(app, response_id: int) -> dict[str, str | None]:
    with app.app_context():
        rows = db.session.execute(
            select(ResponsePage.page, ResponsePage.language).filter_by(response_id=response_id)
        )
        return dict(rows.all())


def stored_examples(app) -> dict[tuple[str, str | None], str]:
    with app.app_context():
        rows = db.session.scalars(select(PracticeExample))
        return {(e.practice_id, e.company_kind): e.text for e in rows}


def latest_response(app) -> Response:
    with app.app_context():
        response = db.session.scalars(select(Response).order_by(Response.id.desc())).first()
        db.session.expunge(response)
        return response


# ---------------------------------------------------------------- language per page


def test_each_answer_page_keeps_the_language_of_its_latest_save_and_the_export_says_mixed(
    app, client
):
    catalog = app.extensions["survey_catalog"]
    scripted_respondents_count_as_people(app)
    allow_full_suppression(app)
    app.config["EXPORT_MIN_K"] = 2
    switcher = Respondent(app.test_client())
    switcher.consent()
    switcher.profile()  # in Russian
    order = order_of(switcher.client)
    first, *rest = order.pages
    switcher.answer_page(first, BOTH)  # in Russian first ...
    switcher.client.get("/lang/en?next=/")
    switcher.answer_page(first, BOTH)  # ... then saved again in English: the latest wins
    switcher.client.get("/lang/ru?next=/")
    for page_ in rest:
        switcher.answer_page(page_, BOTH)
    assert switcher.submit().location.endswith("/thanks")
    steady = Respondent(app.test_client())  # same background, month and language: k = 2
    assert steady.complete(catalog).location.endswith("/thanks")

    with app.app_context():
        ids = db.session.scalars(select(Response.id).order_by(Response.id)).all()
    expected = {BACKGROUND_PAGE: "ru", **{p.key: "ru" for p in catalog.pages}, first.key: "en"}
    assert page_languages(app, ids[0]) == expected
    assert set(page_languages(app, ids[1]).values()) == {"ru"}
    with app.app_context():
        assert [db.session.get(Response, i).language for i in ids] == ["ru", "ru"]

    log_in(app, client)
    paradata = frame(fetch(client, DOWNLOAD, query_string={"file": "paradata", "k": "2"}).data)
    assert sorted(paradata["language_mixed"]) == ["0", "1"]
    assert not any(c.startswith("language_") and c != "language_mixed" for c in paradata)
    codebook = frame(fetch(client, DOWNLOAD, query_string={"file": "codebook"}).data)
    assert "language_mixed" in set(codebook["column"])

    fieldwork = client.get("/researcher/", query_string={"lang": "en"}).text
    row = re.search(r"Switched the interface language[^<]*</td><td class=\"num\">(\d+)", fieldwork)
    assert row and row.group(1) == "1"


# ---------------------------------------------------------------- examples per kind


def test_examples_per_kind_are_stored_shown_on_review_and_kept_through_resume(app, client):
    catalog = app.extensions["survey_catalog"]
    respondent = Respondent(client)
    respondent.consent()
    respondent.profile()
    page_ = order_of(client).pages[0]
    practice = real_practice(catalog, page_)
    fictitious = [p for p in page_.practices if p.fictitious]
    examples = {(practice.id, "ru"): "Премия раз в квартал", (practice.id, "foreign"): "Spot bonus"}
    examples.update({(p.id, "foreign"): "made up" for p in fictitious})
    assert respondent.answer_page(page_, BOTH, examples=examples).status_code == 302
    kept = {cell: text for cell, text in examples.items() if text != "made up"}
    assert stored_examples(app) == kept  # the fictitious practice's examples are discarded

    review = client.get("/review").text
    for text in kept.values():
        assert f'<p class="example-text">{text}</p>' in review

    later = Respondent(app.test_client())  # resumed in another browser
    with client.session_transaction() as session:
        token = session["resume_token"]
    open_resume_link(later.client, f"/resume/{token}")
    html = later.client.get(f"/page/{page_.number}").text
    for (pid, kind), text in kept.items():
        box = re.search(rf'<textarea[^>]*name="{example_name(pid, kind)}"[^>]*>\s*([^<]*)<', html)
        assert box and box.group(1) == text, (pid, kind)
    labels = ("An example from a Russian company", "An example from a foreign company")
    english = Respondent(later.client, lang="en")
    html = english.client.get(f"/page/{page_.number}").text
    assert all(label in html for label in labels)


def test_an_example_for_a_kind_never_worked_in_is_refused_and_an_oversized_one_is_an_error(
    app, client
):
    catalog = app.extensions["survey_catalog"]
    respondent = Respondent(client)
    respondent.consent()
    respondent.profile(worked_in="ru_only")
    page_ = order_of(client).pages[0]
    practice = real_practice(catalog, page_)
    data = respondent.page_data(page_, ("ru",))

    foreign = {**data, example_name(practice.id, "foreign"): "never worked there"}
    assert respondent.post_form(f"/page/{page_.number}", foreign).status_code == 400
    oversized = {**data, example_name(practice.id, "ru"): "ж" * 1001}
    r = respondent.post_form(f"/page/{page_.number}", oversized)
    assert r.status_code == 200
    assert "Пожалуйста, сократите пример" in r.text or "1000" in r.text
    assert stored_examples(app) == {}
    with app.app_context():
        assert db.session.scalar(select(ResponsePage.language).filter_by(page=page_.key)) is None


def test_dropping_a_kind_from_the_background_drops_its_examples(app, client):
    catalog = app.extensions["survey_catalog"]
    respondent = Respondent(client)
    respondent.consent()
    respondent.profile()
    page_ = order_of(client).pages[0]
    practice = real_practice(catalog, page_)
    examples = {(practice.id, "ru"): "ru text", (practice.id, "foreign"): "foreign text"}
    respondent.answer_page(page_, BOTH, examples=examples)
    respondent.profile(worked_in="ru_only")
    assert stored_examples(app) == {(practice.id, "ru"): "ru text"}


def test_an_example_of_no_stated_kind_stays_readable_and_is_filed_when_the_page_is_saved(
    app, client
):
    """Examples from before migration 0008 have company_kind NULL ("not stated")."""
    catalog = app.extensions["survey_catalog"]
    respondent = Respondent(client)
    respondent.consent()
    respondent.profile()
    order = order_of(client)
    page_ = order.pages[0]
    practice = real_practice(catalog, page_)
    respondent.answer_page(page_, BOTH)
    response = latest_response(app)
    with app.app_context():
        db.session.execute(
            insert(PracticeExample),
            {"response_id": response.id, "practice_id": practice.id, "text": "legacy text"},
        )
        db.session.commit()
    review = client.get("/review").text
    assert '<p class="example-text">legacy text</p>' in review
    first_kind = order.kinds(BOTH)[0]
    html = client.get(f"/page/{page_.number}").text
    box = re.search(rf'name="{example_name(practice.id, first_kind)}"[^>]*>\s*([^<]*)<', html)
    assert box and box.group(1) == "legacy text"
    form = {"csrf_token": csrf_token(html), **respondent.page_data(page_, BOTH)}
    form[example_name(practice.id, first_kind)] = "legacy text"
    assert client.post(f"/page/{page_.number}", data=form).status_code == 302
    assert stored_examples(app) == {(practice.id, first_kind): "legacy text"}


def test_examples_are_grouped_by_kind_on_the_dashboard_and_withheld_for_small_segments(app, client):
    catalog = app.extensions["survey_catalog"]
    practice = catalog.practices[0]
    app.config["MIN_COMPLETION_SECONDS"] = 0
    examples = {(practice.id, "ru"): "Russian bonus", (practice.id, "foreign"): "Foreign bonus"}
    Respondent(app.test_client()).complete(catalog, examples=examples)
    log_in(app, client)
    alone = page(client, f"/researcher/practice/{practice.id}", lang="en")
    assert "Russian bonus" not in alone and "Foreign bonus" not in alone

    seed(app, 150, seed_value=11)
    with app.app_context():
        demo_ids = db.session.scalars(
            select(Response.id).where(Response.is_demo.is_(True)).order_by(Response.id).limit(30)
        ).all()
        db.session.execute(
            update(Response)
            .where(Response.id.in_(demo_ids))
            .values(is_demo=False, quality_flag=None)
        )
        response = db.session.scalars(select(Response).order_by(Response.id)).first()
        db.session.execute(
            insert(PracticeExample),
            {"response_id": response.id, "practice_id": practice.id, "text": "Old example"},
        )
        db.session.commit()
    results.clear_cache()
    html = page(client, f"/researcher/practice/{practice.id}", lang="en")
    ru = html.index("In a Russian company</h3>")
    foreign = html.index("In a foreign company</h3>")
    unstated = html.index("Kind of company not stated</h3>")
    assert ru < html.index("Russian bonus") < foreign < html.index("Foreign bonus") < unstated
    assert unstated < html.index("Old example")

    log_in(app, client)
    query = {"file": "examples", "include_examples": "1", "confirm_examples": "1"}
    allow_full_suppression(app)
    exported = frame(fetch(client, DOWNLOAD, query_string=query).data)
    rows = set(
        zip(exported["practice_id"], exported["company_kind"], exported["text"], strict=True)
    )
    assert rows == {
        (practice.id, "ru", "Russian bonus"),
        (practice.id, "foreign", "Foreign bonus"),
        (practice.id, "", "Old example"),
    }
