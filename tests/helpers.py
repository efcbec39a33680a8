"""Plain test helpers: a scripted respondent (real pages, real CSRF tokens), researcher
accounts and their credentials, demo data, and reading a response to its end."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from survey import responses
from survey.auth import create_api_token, create_researcher
from survey.demo import seed_demo
from survey.extensions import db
from survey.forms import example_name, met_name, rating_name
from survey.models import Researcher

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
# The password of every researcher a test makes (long enough for the password rule).
PASSWORD = "a long researcher password"


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


def unique_email(prefix: str = "r") -> str:
    """A fresh address: researcher rows are not emptied between PostgreSQL tests."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.org"


@dataclass(frozen=True)
class Account:
    """A researcher made for a test: row id, e-mail and one API token."""

    id: int
    email: str
    token: str


def researcher(
    app, role: str = "analyst", *, email: str | None = None, password: str = PASSWORD
) -> Account:
    """A new researcher with ``role`` (through the function the CLI calls) and an API token."""
    with app.app_context():
        made = create_researcher(email or unique_email(), password, role)
        return Account(made.id, made.email, create_api_token(made))


def auth_header(token: str) -> dict[str, str]:
    """The request headers that present an API token."""
    return {"Authorization": f"Bearer {token}"}


def bearer(app, researcher_id: int | None = None) -> dict[str, str]:
    """Request headers with a new API token: of researcher ``researcher_id``, or of a new
    token-only researcher (no password: hashing one is slow)."""
    with app.app_context():
        if researcher_id is None:
            owner = Researcher(
                email=unique_email("api"), password_hash="!", active=True, created_on=date.today()
            )
            db.session.add(owner)
            db.session.commit()
        else:
            owner = db.session.get(Researcher, researcher_id)
        return auth_header(create_api_token(owner))


def api_json(client, token: str, path: str = "/api/v1/comparison", status: int = 200, **query):
    """The JSON body of an API GET with ``token``, after checking its status."""
    r = client.get(path, headers=auth_header(token), query_string=query)
    assert r.status_code == status, (path, query, r.status_code, r.text[:400])
    return r.get_json()


def log_in(app, client=None, email: str | None = None, password: str = PASSWORD):
    """Log a browser in through the login form (CSRF on) and return it: ``client`` (a new
    one when None) as ``email`` (a new researcher when None)."""
    if client is None:
        client = app.test_client()
    if email is None:
        email = researcher(app).email
    page = client.get("/researcher/login")
    r = client.post(
        "/researcher/login",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": password},
    )
    assert r.status_code == 302, r.text[:500]
    return client


def login_outcome(r) -> str:
    """What a login attempt came to: "in", "refused" (the form again) or "throttled"."""
    if r.status_code == 429:
        return "throttled"
    if r.status_code == 302:
        return "in"
    assert r.status_code == 200, r.status_code
    return "refused"


def seed(app, n: int, seed_value: int) -> None:
    """``n`` demo respondents (:func:`survey.demo.seed_demo` with ``seed_value``)."""
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], n, seed_value)


def fetch(client, path: str, **kwargs):
    """GET, read the body and close the response, as a WSGI server would: a streamed body
    keeps its request context, and a zip its temporary file, open until closed."""
    r = client.get(path, **kwargs)
    r.get_data()
    r.close()
    return r


def rscript(folder: Path, code: str) -> dict:
    """Run R code in ``folder`` and return the JSON it prints last. Without Rscript the test
    is skipped, unless REQUIRE_R is set (CI installs Debian's r-base-core, r-cran-jsonlite
    and r-cran-haven)."""
    found = shutil.which("Rscript")
    if found is None:
        if os.environ.get("REQUIRE_R"):
            pytest.fail("REQUIRE_R is set but Rscript is not installed")
        pytest.skip("Rscript is not installed (apt-get install r-base-core r-cran-jsonlite)")
    done = subprocess.run(
        [found, "--vanilla", "-e", code],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "LANG": "C.UTF-8"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
