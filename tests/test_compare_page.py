"""A respondent's comparison page (/compare, issue 16 "After submitting"): their own answers
beside the shares of all respondents of their wave, only in the browser that holds the
submitted response, and only once the wave has ``RESULTS_MIN_N`` real responses.

The studies are seeded respondents turned real (``is_demo`` off) plus one respondent who
goes through the questionnaire. Every share, interval and count the page shows is checked
against a plain SQL recount of the stored answer rows and statsmodels' Wilson interval.
"""

from __future__ import annotations

import html
import re
import uuid
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update
from statsmodels.stats.proportion import proportion_confint

from survey import fieldwork, responses, results
from survey.auth import create_researcher
from survey.config import from_environment
from survey.demo import seed_demo
from survey.extensions import db
from survey.models import Answer, Response, Wave
from survey.queries import Segment
from survey.questions import EXISTED, MET_LABELS
from tests.helpers import (
    CONSENT,
    Respondent,
    csrf_token,
    expected_answers,
    open_resume_link,
)

MIN_N = 30
MIN_CELL = 5
BOTH = ("ru", "foreign")
LINK_RE = re.compile(r'<input class="resume-link"[^>]*value="([^"]+)"')
TEXT = {
    "ru": {
        "title": "Как ваш опыт соотносится с другими?",
        "met": "вы её встречали",
        "needed": "Ещё нужно ответов: {}",
        "needed_at_least": "Ещё нужно ответов: не меньше {}",
        "withheld": "пока нельзя показать",
        "too_few": "Пока слишком мало ответов",
        "pilot": "пилотная волна",
        "wave": "Респондентов в этой волне: {}",
    },
    "en": {
        "title": "How does your experience compare?",
        "met": "you met it",
        "needed": "Responses still needed: {}",
        "needed_at_least": "Responses still needed: at least {}",
        "withheld": "cannot be shown yet",
        "too_few": "Not enough answers yet",
        "pilot": "pilot wave",
        "wave": "Respondents in this wave: {}",
    },
}


pytestmark = pytest.mark.usefixtures("fresh_cache")


@pytest.fixture
def small_app(make_app):
    """The app with a low page threshold and the smallest cell threshold."""
    return make_app(RESULTS_MIN_N=MIN_N, MIN_CELL=MIN_CELL, MIN_COMPLETION_SECONDS=0)


def seed_real(app, n: int, seed: int = 5, wave_id: int | None = None) -> None:
    """``n`` seeded respondents, turned real (not demo, not flagged), in a wave."""
    with app.app_context():
        before = db.session.scalar(select(func.coalesce(func.max(Response.id), 0)))
        seed_demo(app.extensions["survey_catalog"], n, seed)
        values = {"is_demo": False, "quality_flag": None}
        if wave_id is not None:
            wave = db.session.get(Wave, wave_id)
            values |= {"wave_id": wave_id, "channel_id": fieldwork.direct_channel(wave).id}
        db.session.execute(update(Response).where(Response.id > before).values(**values))
        db.session.commit()


def seed_demo_only(app, n: int, seed: int = 9) -> None:
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], n, seed)


def respond(app, lang: str = "ru", worked_in: str = "both", channel: str | None = None):
    """A respondent who completes the questionnaire in ``lang``; returns the test client."""
    client = app.test_client()
    respondent = Respondent(client, lang=lang)
    if channel:
        assert client.get(f"/s/{channel}").status_code == 302
    kinds = {"both": BOTH, "ru_only": ("ru",), "foreign_only": ("foreign",)}[worked_in]
    r = respondent.complete(
        app.extensions["survey_catalog"], kinds=kinds, profile={"worked_in": worked_in}
    )
    assert r.status_code == 302 and r.location.endswith("/thanks"), r.status_code
    return client


def compare_page(client, status: int = 200) -> str:
    r = client.get("/compare")
    assert r.status_code == status, (r.status_code, r.location)
    assert r.headers["Cache-Control"] == "no-store"
    return r.text


def text_of(page: str, element_id: str) -> str | None:
    """The plain text of the paragraph with this id, or None when the page has none."""
    match = re.search(rf'id="{re.escape(element_id)}">(.*?)</p>', page, re.DOTALL)
    if match is None:
        return None
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).split())


def response_of(app, client) -> Response:
    with client.session_transaction() as session:
        token = session["resume_token"]
    with app.app_context():
        response = responses.find(token)
        db.session.expunge(response)
        return response


def recount(app, wave_id: int, practice_id: str, kind: str) -> tuple[int, int]:
    """(yes, yes + no) about ``kind`` for a practice: the submitted, real, unflagged
    responses of a wave, counted on the answer rows."""
    with app.app_context():
        rows = dict(
            db.session.execute(
                select(Answer.met, func.count())
                .join(Response, Response.id == Answer.response_id)
                .where(
                    Response.status == "submitted",
                    Response.is_demo.is_(False),
                    Response.quality_flag.is_(None),
                    Response.wave_id == wave_id,
                    Answer.practice_id == practice_id,
                    Answer.company_kind == kind,
                )
                .group_by(Answer.met)
            ).all()
        )
    yes = sum(rows.get(code, 0) for code in EXISTED)
    return yes, yes + rows.get("no", 0)


def respondents_in(app, wave_id: int) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count(Response.id)).where(
                Response.status == "submitted",
                Response.is_demo.is_(False),
                Response.quality_flag.is_(None),
                Response.wave_id == wave_id,
            )
        )


def shown_share(text: str) -> tuple[int, int, int, int]:
    """(share, low, high, answers) as the page writes them: "42% ... (95% interval 35–49%;
    answers: 120)"; the 95 of the interval's name is skipped."""
    share, ninety_five, low, high, n = (int(x) for x in re.findall(r"\d+", text))
    assert ninety_five == 95, text
    return share, low, high, n


def assert_percent(shown: int, exact: float, what) -> None:
    assert abs(shown - 100 * exact) <= 0.5 + 1e-9, (what, shown, exact)


# ------------------------------------------------------------------ the page shown


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_a_respondent_sees_their_answers_beside_shares_that_match_a_recount(small_app, lang):
    app = small_app
    seed_real(app, 40)
    client = respond(app, lang)
    response = response_of(app, client)
    thanks = client.get("/thanks").text
    assert 'href="/compare"' in thanks and TEXT[lang]["title"] in thanks

    page = compare_page(client)
    assert f'<html lang="{lang}">' in page
    assert TEXT[lang]["title"] in page
    n_wave = respondents_in(app, response.wave_id)
    assert n_wave == 41
    assert TEXT[lang]["wave"].format(n_wave) in page
    cat = app.extensions["survey_catalog"]
    own = expected_answers(cat, BOTH)
    checked = 0
    for practice in cat.practices:
        assert f'id="compare-{practice.id}"' in page  # every practice was answered
        for kind in BOTH:
            met, _rating = own[(practice.id, kind)]
            mine = text_of(page, f"own-{practice.id}-{kind}")
            assert mine is not None and MET_LABELS[met].label(lang) in mine, (practice.id, kind)
            assert (TEXT[lang]["met"] in mine) == (met in EXISTED), mine
            k, n = recount(app, response.wave_id, practice.id, kind)
            shown = text_of(page, f"share-{practice.id}-{kind}")
            if n < MIN_CELL:
                assert TEXT[lang]["too_few"] in shown and "%" not in shown
                continue
            share, low, high, answers = shown_share(shown)
            ci_low, ci_high = proportion_confint(k, n, alpha=0.05, method="wilson")
            assert answers == n, (practice.id, kind)
            assert_percent(share, k / n, (practice.id, kind))
            assert_percent(low, ci_low, (practice.id, kind, "low"))
            assert_percent(high, ci_high, (practice.id, kind, "high"))
            checked += 1
    assert checked > len(cat.practices)  # most cells are shown
    # the fictitious practice is asked, never compared
    for practice in cat.fictitious:
        assert f'id="compare-{practice.id}"' not in page


def test_categories_group_the_practices_and_each_has_its_description_and_a_source(small_app):
    app = small_app
    seed_real(app, 40)
    page = compare_page(respond(app, "en"))
    cat = app.extensions["survey_catalog"]
    headings = re.findall(r'<h2 id="category-([\w-]+)">', page)
    assert headings == [
        c.id for c in cat.categories if any(p.category == c.id for p in cat.practices)
    ]
    for practice in cat.practices:
        block = page.split(f'id="compare-{practice.id}"', 1)[1].split("</article>", 1)[0]
        text = html.unescape(block)
        assert "<details" in block and practice.description.en in text
        citations = {cat.sources[s].citation() for s in practice.sources}
        assert any(c in text for c in citations), practice.id
    # the bars are pictures with their numbers in text beside them, nothing scripted
    assert page.count('<svg class="share-bar"') >= len(cat.practices)
    assert all('aria-hidden="true"' in svg for svg in re.findall(r"<svg[^>]*>", page))
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="/static/js/survey.js" defer>']


def test_a_respondent_of_one_kind_gets_their_answer_in_that_kind_only(small_app):
    app = small_app
    seed_real(app, 40)
    page = compare_page(respond(app, "en", worked_in="ru_only"))
    cat = app.extensions["survey_catalog"]
    practice = cat.practices[0]
    assert text_of(page, f"own-{practice.id}-ru") is not None
    assert text_of(page, f"own-{practice.id}-foreign") is None
    assert text_of(page, f"share-{practice.id}-foreign") is not None  # everyone's share


def test_a_practice_with_fewer_than_min_cell_answers_in_a_kind_shows_no_share(small_app):
    app = small_app
    seed_real(app, 40)
    cat = app.extensions["survey_catalog"]
    own = expected_answers(cat, BOTH)
    # A practice the respondent says existed in a foreign company; everyone else: don't know.
    practice = next(p for p in cat.practices if own[(p.id, "foreign")][0] in EXISTED)
    with app.app_context():
        db.session.execute(
            update(Answer)
            .where(Answer.practice_id == practice.id, Answer.company_kind == "foreign")
            .values(met="dk", rating=None, rating_mixed=False)
        )
        db.session.commit()
        assert list(responses.check_vectors(repair=True))
    for lang in ("ru", "en"):
        client = respond(app, lang)
        response = response_of(app, client)
        k, n = recount(app, response.wave_id, practice.id, "foreign")
        assert 0 < n < MIN_CELL
        page = compare_page(client)
        shown = text_of(page, f"share-{practice.id}-foreign")
        assert TEXT[lang]["too_few"] in shown and "%" not in shown
        assert TEXT[lang]["met"] in text_of(page, f"own-{practice.id}-foreign")
        block = page.split(f'id="compare-{practice.id}"', 1)[1].split("</article>", 1)[0]
        assert block.count('<svg class="share-bar"') == 1  # the Russian side only
        assert re.search(r"\d+%", text_of(page, f"share-{practice.id}-ru"))


# ------------------------------------------------------------------ whose answers


def test_another_browser_gets_no_personal_answer_and_no_url_names_a_response(small_app):
    app = small_app
    seed_real(app, 40)
    client = respond(app, "en")
    response = response_of(app, client)
    first = app.extensions["survey_catalog"].practices[0].id
    assert f'id="own-{first}-ru"' in compare_page(client)
    link = LINK_RE.search(client.get("/thanks").text).group(1)
    token = link.rsplit("/", 1)[1]

    # the page has one address, with nothing in it
    rules = [r for r in app.url_map.iter_rules() if r.endpoint == "questionnaire.compare"]
    assert [(r.rule, sorted(r.arguments)) for r in rules] == [("/compare", [])]

    other = app.test_client()
    with app.app_context():
        email = f"compare-{uuid.uuid4().hex[:10]}@example.org"
        create_researcher(email, "a long researcher password")
    attempts = [
        "/compare",
        f"/compare?token={token}",
        f"/compare?resume_token={token}",
        f"/compare?response={response.id}",
        f"/compare?id={response.id}&export_id={response.export_id}",
    ]
    for path in attempts:
        r = other.get(path)
        assert r.status_code == 302 and r.location.endswith("/"), (path, r.status_code)
        assert f'id="own-{first}' not in r.text
    for path in (f"/compare/{response.id}", f"/compare/{token}", f"/compare/{response.export_id}"):
        assert other.get(path).status_code == 404, path

    # a researcher's session is not the respondent's either
    researcher = app.test_client()
    login = researcher.get("/researcher/login")
    researcher.post(
        "/researcher/login",
        data={
            "csrf_token": csrf_token(login.text),
            "email": email,
            "password": "a long researcher password",
        },
    )
    assert researcher.get("/compare").status_code == 302

    # a draft is not a submitted response
    drafting = app.test_client()
    Respondent(drafting).consent()
    assert drafting.get("/compare").status_code == 302

    # the personal link, confirmed, takes the answers (and the page) over to this browser
    r = open_resume_link(other, urlsplit(link).path)
    assert r.status_code == 302 and r.location.endswith("/thanks")
    assert f'id="own-{first}-ru"' in compare_page(other)
    assert client.get("/compare").status_code == 302  # the first browser let go


# ------------------------------------------------------------------ below the threshold


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_below_the_threshold_the_page_says_how_many_more_are_needed(make_app, lang):
    app = make_app(RESULTS_MIN_N=50, MIN_CELL=MIN_CELL, MIN_COMPLETION_SECONDS=0)
    seed_real(app, 10)
    client = respond(app, lang)
    n = respondents_in(app, response_of(app, client).wave_id)
    assert n == 11
    page = compare_page(client)
    assert text_of(page, "responses-needed") == TEXT[lang]["needed"].format(50 - n)
    assert 'class="share-text' not in page and "own-answer" not in page
    link = LINK_RE.search(page).group(1)  # come back through the personal link
    assert link == LINK_RE.search(client.get("/thanks").text).group(1)
    assert "/resume/" in link


def test_demo_responses_never_count(small_app):
    app = small_app
    seed_real(app, 12)
    seed_demo_only(app, 200)
    client = respond(app, "en")
    page = compare_page(client)
    assert text_of(page, "responses-needed") == TEXT["en"]["needed"].format(MIN_N - 13)
    assert 'class="share-text' not in page


def test_a_study_of_demo_data_only_shows_no_demo_numbers(small_app):
    """The respondent's own response is flagged (the consent form's hidden field), so no
    real response counts and the read path falls back on the demo study: not shown."""
    app = small_app
    seed_demo_only(app, 200)
    client = app.test_client()
    respondent = Respondent(client, lang="en")
    r = respondent.post_form("/", {**CONSENT, "website": "https://spam.example"})
    assert r.status_code == 302
    assert respondent.profile().status_code == 302
    for page in app.extensions["survey_catalog"].pages:
        assert respondent.answer_page(page, BOTH).status_code == 302
    assert respondent.submit().location.endswith("/thanks")
    with app.app_context():
        code = fieldwork.wave_by_id(response_of(app, client).wave_id).code
        assert results.comparison(Segment(wave=code)).demo  # what the read path falls back on
    page = compare_page(client)
    assert text_of(page, "responses-needed") == TEXT["en"]["needed"].format(MIN_N)
    assert 'class="share-text' not in page


def test_a_wave_the_gate_withholds_shows_no_numbers(small_app):
    """Another wave with 2 respondents: the gate withholds this one too (its small sibling
    would follow by subtraction from the total), however large it is."""
    app = small_app
    seed_real(app, 40)
    with app.app_context():
        other = fieldwork.create_wave(fieldwork.WaveSpec("tiny", "Малая", "Tiny"))
        other_id = other.id
    seed_real(app, 2, seed=8, wave_id=other_id)
    page = compare_page(respond(app, "en"))
    assert TEXT["en"]["withheld"] in text_of(page, "responses-needed")
    assert 'class="share-text' not in page and "own-answer" not in page


def test_too_small_a_wave_is_told_how_many_at_least(small_app):
    app = small_app
    seed_real(app, 2)
    page = compare_page(respond(app, "ru"))
    # 3 respondents: fewer than MIN_CELL, so the gate tells no count, only a lower bound
    assert text_of(page, "responses-needed") == TEXT["ru"]["needed_at_least"].format(
        MIN_N - (MIN_CELL - 1)
    )


# ------------------------------------------------------------------ pilot waves


def test_a_pilot_respondent_sees_their_pilot_waves_numbers_labelled(small_app):
    app = small_app
    with app.app_context():
        pilot = fieldwork.create_wave(fieldwork.WaveSpec("pilot", "Пилот", "Pilot", is_pilot=True))
        fieldwork.open_wave(pilot)
        pilot_id, slug = pilot.id, fieldwork.direct_channel(pilot).slug
    seed_real(app, 40, wave_id=pilot_id)
    client = respond(app, "en", channel=slug)
    assert response_of(app, client).wave_id == pilot_id
    page = compare_page(client)
    assert TEXT["en"]["pilot"] in page
    assert TEXT["en"]["wave"].format(respondents_in(app, pilot_id)) in page
    practice = app.extensions["survey_catalog"].practices[0].id
    k, n = recount(app, pilot_id, practice, "ru")
    share, *_ = shown_share(text_of(page, f"share-{practice}-ru"))
    assert_percent(share, k / n, practice)


# ------------------------------------------------------------------ the setting


def test_results_min_n_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("RESULTS_MIN_N", raising=False)
    assert from_environment(str(tmp_path))["RESULTS_MIN_N"] == 100
    monkeypatch.setenv("RESULTS_MIN_N", "250")
    assert from_environment(str(tmp_path))["RESULTS_MIN_N"] == 250
    for bad in ("0", "-5", "many"):
        monkeypatch.setenv("RESULTS_MIN_N", bad)
        with pytest.raises(RuntimeError, match="RESULTS_MIN_N"):
            from_environment(str(tmp_path))
