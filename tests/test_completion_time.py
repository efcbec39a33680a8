"""The too-fast flag reads the draft's own timeline, whichever browser submits it.

Each saved page adds the seconds it was open (served, then posted) to the response's
``active_seconds``: a duration only, never a time of day.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from survey import questionnaire
from survey.extensions import db
from survey.models import Response
from tests.helpers import CONSENT, PROFILE, Respondent, csrf_token, open_resume_link

BOTH = ("ru", "foreign")
LINK_RE = re.compile(r'<input class="resume-link"[^>]*value="([^"]+)"')


class Clock:
    """A clock that moves ``step`` seconds each time the app reads it."""

    def __init__(self, step: float, start: float = 1_800_000_000.0):
        self.now, self.step = start, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def stored(app) -> tuple[int, str | None]:
    with app.app_context():
        response = db.session.scalars(select(Response)).one()
        return response.active_seconds, response.quality_flag


def answer_all_but_submit(client, catalog) -> str:
    """Consent, background and every practice page in one browser; return its link."""
    respondent = Respondent(client)
    respondent.consent()
    assert respondent.profile().status_code == 302
    for page in catalog.pages:
        assert respondent.answer_page(page, BOTH).status_code == 302
    match = LINK_RE.search(client.get("/review").text)
    return urlsplit(match.group(1)).path


def submit_elsewhere(app, link: str):
    other = app.test_client()
    assert open_resume_link(other, link).location == "/review"
    return Respondent(other).submit()


@pytest.fixture
def timed(app):
    app.config["MIN_COMPLETION_SECONDS"] = 600
    return app


def test_a_draft_answered_fast_and_submitted_from_another_browser_is_flagged(timed):
    catalog = timed.extensions["survey_catalog"]
    link = answer_all_but_submit(timed.test_client(), catalog)
    assert submit_elsewhere(timed, link).location.endswith("/thanks")
    seconds, flag = stored(timed)
    assert seconds < 600 and flag == "too_fast"


def test_a_draft_answered_slowly_and_submitted_from_another_browser_is_not_flagged(
    timed, monkeypatch
):
    catalog = timed.extensions["survey_catalog"]
    monkeypatch.setattr(questionnaire, "_now", Clock(step=100))
    link = answer_all_but_submit(timed.test_client(), catalog)
    assert submit_elsewhere(timed, link).location.endswith("/thanks")
    # one read when a page is served, one when it is saved: 100 s per page
    pages = 1 + len(catalog.pages)
    assert stored(timed) == (100 * pages, None)


def test_a_page_left_open_for_hours_counts_thirty_minutes(timed, monkeypatch):
    catalog = timed.extensions["survey_catalog"]
    monkeypatch.setattr(questionnaire, "_now", Clock(step=10 * 3600))
    client = timed.test_client()
    respondent = Respondent(client)
    respondent.consent()
    respondent.profile()
    respondent.answer_page(catalog.pages[0], BOTH)
    assert stored(timed) == (2 * 30 * 60, None)


def test_pages_posted_without_being_served_count_nothing(timed, monkeypatch):
    """A bot that posts straight away is flagged, however long it waits between posts."""
    catalog = timed.extensions["survey_catalog"]
    monkeypatch.setattr(questionnaire, "_now", Clock(step=3600))
    client = timed.test_client()
    respondent = Respondent(client)
    token = csrf_token(client.get("/").text)
    assert client.post("/", data={"csrf_token": token, **CONSENT}).status_code == 302
    assert client.post("/profile", data={"csrf_token": token, **PROFILE}).status_code == 302
    for page in catalog.pages:
        form = {"csrf_token": token, **respondent.page_data(page, BOTH)}
        assert client.post(f"/page/{page.number}", data=form).status_code == 302
    assert client.post("/submit", data={"csrf_token": token}).location.endswith("/thanks")
    assert stored(timed) == (0, "too_fast")


def test_no_time_of_day_is_stored_only_a_duration(app):
    """The timeline is one integer of seconds; the session keeps page times, the row does not."""
    column = Response.__table__.c.active_seconds
    assert column.type.python_type is int and not column.nullable
    catalog = app.extensions["survey_catalog"]
    client = app.test_client()
    Respondent(client).complete(catalog)
    with client.session_transaction() as session:
        assert "started_at" not in session
