"""A scripted respondent for Flask's test client: real pages, real CSRF tokens."""

from __future__ import annotations

import re
import uuid

from survey import responses
from survey.auth import create_researcher
from survey.forms import example_name, met_name, rating_name

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

PROFILE = {
    "worked_in": "both",
    "current_employer": "foreign",
    "industry": "it",
    "company_size": "1000_4999",
    "role_level": "middle_manager",
    "job_function": "it",
    "experience_band": "11_20",
    "region": "moscow",
    # Each kind's block: a respondent who did not work in a kind may still send it (the
    # page shows both blocks without JavaScript); the server keeps only the kinds worked in.
    "ru_years": "3_5",
    "ru_last_year": "2014_2021",
    "ru_employers": "2_3",
    "ru_role_level": "specialist",
    "ru_function": "it",
    "foreign_years": "6_10",
    "foreign_last_year": "2022_on",
    "foreign_employers": "1",
    "foreign_role_level": "middle_manager",
    "foreign_function": "it",
}


# The consent form's two required boxes: 18 or older, and agreement.
CONSENT = {"adult": "y", "agree": "y"}


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def answer_for(index: int, kind: str) -> tuple[str, int | None]:
    """A deterministic but varied answer: met value and rating for the n-th practice."""
    cycle = [("applied", 5), ("no", None), ("applied", 2), ("dk", None), ("existed", None)]
    shift = 0 if kind == "ru" else 2
    return cycle[(index + shift) % len(cycle)]


class Respondent:
    """Drives the questionnaire like a browser would, page by page."""

    def __init__(self, client, lang: str = "ru"):
        self.client = client
        self.lang = lang
        if lang != "ru":
            client.get(f"/lang/{lang}?next=/")

    def post_form(self, path: str, data: dict, follow: bool = False):
        page = self.client.get(path)
        assert page.status_code == 200, (path, page.status_code)
        payload = {"csrf_token": csrf_token(page.text), **data}
        return self.client.post(path, data=payload, follow_redirects=follow)

    def consent(self):
        r = self.post_form("/", CONSENT)
        assert r.status_code == 302 and r.location.endswith("/profile"), r.status_code
        return r

    def profile(self, **overrides):
        data = {**PROFILE, **overrides}
        data = {k: v for k, v in data.items() if v is not None}
        return self.post_form("/profile", data)

    def page_data(self, page, kinds, answers=None, examples=None) -> dict:
        """Form data answering every practice on a page for the given kinds.

        ``examples`` maps (practice id, kind) to the text of that kind's example box; a
        bare practice id means the box of the first of ``kinds``."""
        data = {}
        for practice in page.practices:
            index = practice_index(page, practice)
            for kind in kinds:
                met, rating = (answers or {}).get((practice.id, kind), answer_for(index, kind))
                data[met_name(practice.id, kind)] = met
                if rating is not None:
                    data[rating_name(practice.id, kind)] = str(rating)
        for key, text in (examples or {}).items():
            pid, kind = key if isinstance(key, tuple) else (key, kinds[0])
            if pid in {p.id for p in page.practices}:
                data[example_name(pid, kind)] = text
        return data

    def answer_page(self, page, kinds, **kwargs):
        return self.post_form(f"/page/{page.number}", self.page_data(page, kinds, **kwargs))

    def submit(self):
        review = self.client.get("/review")
        assert review.status_code == 200
        return self.client.post("/submit", data={"csrf_token": csrf_token(review.text)})

    def complete(self, catalog, kinds=("ru", "foreign"), profile=None, examples=None):
        """Consent, background, every practice page, submit; returns the submit response."""
        self.consent()
        r = self.profile(**(profile or {}))
        assert r.status_code == 302, r.text[:2000]
        for page in catalog.pages:
            r = self.answer_page(page, kinds, examples=examples)
            assert r.status_code == 302, r.text[:3000]
        return self.submit()


def practice_index(page, practice) -> int:
    """A stable small integer per practice for varied answers."""
    return sum(ord(ch) for ch in practice.id)


def expected_answers(catalog, kinds):
    """(practice, kind) -> (met, rating) as the scripted respondent gives them (real
    practices only: answers about the fictitious one are kept apart)."""
    out = {}
    for page in catalog.pages:
        for practice in page.practices:
            if practice.fictitious:
                continue
            index = practice_index(page, practice)
            for kind in ("ru", "foreign"):
                out[(practice.id, kind)] = (
                    answer_for(index, kind) if kind in kinds else ("na", None)
                )
    return out


def open_resume_link(client, path: str, follow: bool = False):
    """Open a personal resume link as a person does: the page asks, the button confirms."""
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code, page.location)
    assert 'class="resume-form"' in page.text
    return client.post(path, data={"csrf_token": csrf_token(page.text)}, follow_redirects=follow)


def order_of(client):
    """The question order of the draft this test client's session holds
    (:class:`survey.paradata.Order`: pages and practices as the respondent sees them)."""
    with client.session_transaction() as session:
        token = session.get("resume_token")
    with client.application.app_context():
        return responses.order(responses.find(token))


def page_after(order, page) -> str:
    """The path a respondent goes to after saving ``page``: the next page in their own
    order, or the review after their last page."""
    position = order.position(page.number)
    if position == len(order.pages):
        return "/review"
    return f"/page/{order.pages[position].number}"


def log_in(app, client) -> None:
    """A new researcher (rows outlive PostgreSQL tests) logged in through the login form."""
    email = f"researcher-{uuid.uuid4().hex[:12]}@example.org"
    password = "a long researcher password"
    with app.app_context():
        create_researcher(email, password)
    page = client.get("/researcher/login")
    r = client.post(
        "/researcher/login",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": password},
    )
    assert r.status_code == 302, r.text[:500]
