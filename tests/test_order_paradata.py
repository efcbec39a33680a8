"""Each respondent's own question order, seconds per page, and the quality indicators.

Expected values come from plain recounts over what the test itself sent or wrote, never
from survey.paradata's own functions.
"""

from __future__ import annotations

import io
import math
import re
import statistics
import zipfile

import pytest
from sqlalchemy import func, select, update

from survey import fieldwork, paradata, queries, questionnaire, responses, results
from survey.extensions import db
from survey.forms import met_name
from survey.models import Answer, FictitiousAnswer, Response, ResponsePage
from tests.helpers import (
    PROFILE,
    Respondent,
    csrf_token,
    expected_answers,
    log_in,
    order_of,
    page_after,
    researcher,
)

BOTH = ("ru", "foreign")
SECTION_RE = re.compile(r'<section class="practice" id="practice-([^"]+)"')


def catalog_of(app):
    return app.extensions["survey_catalog"]


def the_response(app, response_id=None) -> Response:
    with app.app_context():
        query = select(Response).order_by(Response.id.desc())
        if response_id is not None:
            query = select(Response).filter_by(id=response_id)
        response = db.session.scalars(query).first()
        db.session.expunge(response)
        return response


class Clock:
    """A clock that moves ``step`` seconds each time the app reads it."""

    def __init__(self, step: float):
        self.now, self.step = 1_800_000_000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


# ---------------------------------------------------------------- the order


def test_the_stored_order_is_a_permutation_and_the_pages_are_served_in_it(app, client):
    catalog = catalog_of(app)
    respondent = Respondent(client)
    respondent.consent()
    stored = the_response(app).question_order
    assert sorted(stored["pages"]) == sorted(page.key for page in catalog.pages)
    for page in catalog.pages:
        assert sorted(stored["practices"][page.key]) == sorted(p.id for p in page.practices)
    assert stored["first_kind"] in BOTH

    # Follow the questionnaire as a browser does: next, next, ... review.
    r = respondent.profile()
    served = []
    while r.location != "/review":
        html = client.get(r.location).text
        served.append((int(r.location.rsplit("/", 1)[1]), SECTION_RE.findall(html)))
        number = served[-1][0]
        r = respondent.answer_page(catalog.pages[number - 1], BOTH)
        assert r.status_code == 302
    by_key = {page.key: page.number for page in catalog.pages}
    assert [number for number, _ in served] == [by_key[key] for key in stored["pages"]]
    for number, shown in served:
        key = catalog.pages[number - 1].key
        assert shown == stored["practices"][key]


def test_two_respondents_get_different_orders_and_each_keeps_its_own(app, monkeypatch):
    catalog = catalog_of(app)
    seeds = iter([11, 12])
    monkeypatch.setattr(paradata, "order_seed", lambda: next(seeds))
    one, two = app.test_client(), app.test_client()
    for client in (one, two):
        Respondent(client).consent()
        Respondent(client).profile()
    first, second = order_of(one), order_of(two)
    assert [p.key for p in first.pages] != [p.key for p in second.pages] or [
        [x.id for x in p.practices] for p in first.pages
    ] != [[x.id for x in p.practices] for p in second.pages]
    # the draw is reproducible from its seed: the same seed gives the same order
    assert paradata.draw_order(catalog, 11) == paradata.draw_order(catalog, 11)
    assert paradata.draw_order(catalog, 11) != paradata.draw_order(catalog, 12)
    assert order_of(one) == first  # stored, not redrawn on each request


def test_the_kind_shown_first_follows_the_stored_order(app, client, monkeypatch):
    catalog = catalog_of(app)
    respondent = Respondent(client)
    respondent.consent()
    response = the_response(app)
    stored = dict(response.question_order)
    for first in BOTH:
        stored["first_kind"] = first
        with app.app_context():
            db.session.execute(update(Response).values(question_order=stored))
            db.session.commit()
        respondent.profile()
        page = order_of(client).pages[0]
        html = client.get(f"/page/{page.number}").text
        practice = page.practices[0].id
        ru = html.index(f'name="{met_name(practice, "ru")}"')
        foreign = html.index(f'name="{met_name(practice, "foreign")}"')
        assert (ru < foreign) == (first == "ru")
        review = client.get("/review").text
        headers = re.findall(r'<th scope="col">([^<]*)</th>', review)[1:3]
        assert headers[0].startswith("В российской" if first == "ru" else "В иностранной")
    assert catalog.pages  # the catalogue served


def test_answers_land_on_the_right_practice_whatever_the_order(app, client):
    catalog = catalog_of(app)
    assert Respondent(client).complete(catalog).location.endswith("/thanks")
    with app.app_context():
        rows = db.session.execute(
            select(Answer.practice_id, Answer.company_kind, Answer.met, Answer.rating)
        ).all()
    stored = {(pid, kind): (met, rating) for pid, kind, met, rating in rows}
    assert stored == expected_answers(catalog, BOTH)


def test_an_answer_can_be_traced_to_its_page_position_item_position_and_kind_order(app, client):
    catalog = catalog_of(app)
    Respondent(client).consent()
    stored = the_response(app).question_order
    order = order_of(client)
    for page_at, key in enumerate(stored["pages"], 1):
        for item_at, pid in enumerate(stored["practices"][key], 1):
            page = order.pages[page_at - 1]
            assert page.key == key and page.practices[item_at - 1].id == pid
    assert order.first_kind == stored["first_kind"]
    assert catalog.pages


def test_a_response_from_before_randomisation_reads_in_catalogue_order(app):
    catalog = catalog_of(app)
    order = paradata.resolve(catalog, None)
    assert [p.number for p in order.pages] == [p.number for p in catalog.pages]
    assert [p.practices for p in order.pages] == [p.practices for p in catalog.pages]
    assert order.first_kind == "ru" and order.kinds(BOTH) == BOTH


# ---------------------------------------------------------------- seconds per page


def test_seconds_per_page_sum_to_active_seconds_and_resume_keeps_counting(app, monkeypatch):
    catalog = catalog_of(app)
    monkeypatch.setattr(questionnaire, "_now", Clock(step=7))
    client = app.test_client()
    assert Respondent(client).complete(catalog).location.endswith("/thanks")
    response = the_response(app)
    with app.app_context():
        pages = dict(
            db.session.execute(
                select(ResponsePage.page, ResponsePage.seconds).filter_by(response_id=response.id)
            ).all()
        )
    assert set(pages) == {"background", *(p.key for p in catalog.pages)}
    assert all(seconds == 7 for seconds in pages.values())  # served, then saved: one step
    assert sum(pages.values()) == response.active_seconds == 7 * (1 + len(catalog.pages))


def test_a_page_saved_without_being_served_here_has_unknown_seconds(app, client):
    catalog = catalog_of(app)
    respondent = Respondent(client)
    respondent.consent()
    respondent.profile()
    page = catalog.pages[0]
    token = csrf_token(client.get("/review").text)
    data = {"csrf_token": token, **respondent.page_data(page, BOTH)}
    assert client.post(f"/page/{page.number}", data=data).status_code == 302
    response = the_response(app)
    with app.app_context():
        seconds = db.session.scalar(
            select(ResponsePage.seconds).filter_by(response_id=response.id, page=page.key)
        )
    assert seconds is None


# ---------------------------------------------------------------- quality indicators


def recount(catalog, answers, kinds, seconds, medians):
    """An independent recount of the indicators from what the test sent."""
    flat = 0
    fast = 0
    for page in catalog.pages:
        if any(len({answers[(p.id, kind)] for p in page.practices}) == 1 for kind in kinds):
            flat += 1
        if page.key in medians and seconds.get(page.key) is not None:
            fast += seconds[page.key] < 0.3 * medians[page.key]
    # claiming = saying the fictitious practice existed, whether it applied to one or not
    existed = ("applied", "existed", "yes")
    claimed = any(answers[(p.id, k)][0] in existed for p in catalog.fictitious for k in kinds)
    pages = len(catalog.pages)
    low = claimed or flat * 2 >= pages or fast * 2 >= pages
    return claimed, flat, fast, low


def hand_made(catalog, flat_pages: int, claim: bool):
    """Answers: the first ``flat_pages`` pages all "no" (for Russian companies only),
    the rest varied (an "applied" with a rating or "mixed", "existed", "no", "don't know");
    the fictitious practice "existed, but not for me" (Russian companies) and "applied"
    (foreign ones) if ``claim``."""
    answers = {}
    for i, page in enumerate(catalog.pages):
        for j, practice in enumerate(page.practices):
            for kind in BOTH:
                if practice.fictitious:
                    claimed = ("existed", None) if kind == "ru" else ("applied", 4)
                    value = claimed if claim else ("no", None)
                    if i < flat_pages and kind == "ru":
                        value = ("no", None)
                elif i < flat_pages and kind == "ru":
                    value = ("no", None)
                else:
                    value = [
                        ("applied", 5),
                        ("no", None),
                        ("applied", "mixed"),
                        ("dk", None),
                        ("existed", None),
                    ][(j + (kind == "ru")) % 5]
                answers[(practice.id, kind)] = value
    return answers


@pytest.mark.parametrize(("flat_pages", "claim"), [(0, False), (2, True), (4, False)])
def test_indicators_on_hand_made_responses_equal_an_independent_recount(
    app, client, flat_pages, claim
):
    catalog = catalog_of(app)
    answers = hand_made(catalog, flat_pages, claim)
    if claim:  # the fictitious practice is on a page that is not straightlined
        assert catalog.fictitious[0].category not in {p.category.id for p in catalog.pages[:2]}
    respondent = Respondent(client)
    respondent.consent()
    respondent.profile()
    for page in catalog.pages:
        assert respondent.answer_page(page, BOTH, answers=answers).status_code == 302
    # Speeding needs page medians: 20 earlier timed responses, 100 s on every page;
    # this one spent 10 s on the first three pages (under 30 s) and 100 s elsewhere.
    with app.app_context():
        me = db.session.scalar(select(Response.id).order_by(Response.id.desc()))
        others = []
        for _ in range(20):
            other, _token = responses.start("ru")
            other.status, other.submitted_on = "submitted", fieldwork.today()
            for field, value in PROFILE.items():
                setattr(other, field, value)
            others.append(other.id)
        db.session.commit()
        db.session.execute(
            update(ResponsePage).where(ResponsePage.response_id.in_(others)).values(seconds=100)
        )
        seconds = {page.key: (10 if i < 3 else 100) for i, page in enumerate(catalog.pages)}
        for key, value in seconds.items():
            db.session.execute(
                update(ResponsePage).filter_by(response_id=me, page=key).values(seconds=value)
            )
        db.session.commit()
        paradata.clear_cache()
    assert respondent.submit().location.endswith("/thanks")

    medians = {page.key: 100 for page in catalog.pages}
    claimed, flat, fast, low = recount(catalog, answers, BOTH, seconds, medians)
    response = the_response(app, me)
    assert response.fictitious_claimed == claimed == claim
    assert response.straightlined_pages == flat == flat_pages
    assert response.speeding_pages == fast == 3
    assert response.low_quality == low
    with app.app_context():
        flags = {
            page: (flat_flag, fast_flag)
            for page, flat_flag, fast_flag in db.session.execute(
                select(ResponsePage.page, ResponsePage.straightlining, ResponsePage.speeding)
                .filter_by(response_id=me)
                .where(ResponsePage.page != "background")
            )
        }
        # recomputing gives the same indicators
        assert paradata.recompute_all(catalog) == 21
    expected = {
        page.key: (i < flat_pages, seconds[page.key] < 30) for i, page in enumerate(catalog.pages)
    }
    assert flags == expected
    again = the_response(app, me)
    assert (again.fictitious_claimed, again.straightlined_pages, again.low_quality) == (
        claimed,
        flat,
        low,
    )


def test_fictitious_answers_never_enter_the_answer_table(app, client):
    catalog = catalog_of(app)
    fictitious = catalog.fictitious[0]
    answers = {(fictitious.id, kind): ("applied", 5) for kind in BOTH}
    respondent = Respondent(client)
    respondent.consent()
    respondent.profile()
    for page in catalog.pages:
        extra = {"examples": {fictitious.id: "I saw it"}} if fictitious in page.practices else {}
        assert respondent.answer_page(page, BOTH, answers=answers, **extra).status_code == 302
    with app.app_context():
        assert (
            db.session.scalar(
                select(func.count()).select_from(Answer).filter_by(practice_id=fictitious.id)
            )
            == 0
        )
        kept = db.session.execute(select(FictitiousAnswer.company_kind, FictitiousAnswer.met)).all()
    assert sorted(kept) == [("foreign", "applied"), ("ru", "applied")]
    review = client.get("/review").text  # the respondent still sees their answer
    assert fictitious.name.ru in review


# ---------------------------------------------------------------- never in any output


@pytest.fixture
def study(make_app):
    """Twelve submitted respondents who all claim the fictitious practice; a researcher."""
    app = make_app(MIN_CELL=5, MIN_COMPLETION_SECONDS=0, EXPORT_MIN_K=2)
    catalog = catalog_of(app)
    fictitious = catalog.fictitious[0]
    for i in range(12):
        client = app.test_client()
        profile = {"worked_in": ["both", "ru_only", "foreign_only"][i % 3]}
        kinds = {"both": BOTH, "ru_only": ("ru",), "foreign_only": ("foreign",)}[
            profile["worked_in"]
        ]
        claim = ("applied", 5) if i % 2 else ("existed", None)
        answers = {(fictitious.id, kind): claim for kind in kinds}
        respondent = Respondent(client)
        respondent.consent()
        respondent.profile(**profile)
        for page in catalog.pages:
            respondent.answer_page(page, kinds, answers=answers)
        assert respondent.submit().location.endswith("/thanks")
    token = researcher(app).token
    results.clear_cache()
    return app, token


def test_the_fictitious_practice_never_appears_in_any_output(study):
    app, token = study
    catalog = catalog_of(app)
    fictitious = catalog.fictitious[0]
    needles = (fictitious.id, fictitious.name.ru, fictitious.name.en)
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    outputs = {}
    for path in ("/api/v1/practices", "/api/v1/comparison", "/api/v1/comparison?level=category"):
        r = api.get(path, headers=headers)
        assert r.status_code == 200, (path, r.text[:300])
        outputs[path] = r.text
    assert len(api.get("/api/v1/practices", headers=headers).json["practices"]) == len(
        catalog.practices
    )
    dashboard = log_in(app)
    for path in (
        "/researcher/",
        "/researcher/comparison",
        "/researcher/comparison?view=paired",
        "/researcher/ratings",
        "/researcher/categories",
        "/researcher/table/comparison.csv",
        "/researcher/table/categories.csv",
    ):
        r = dashboard.get(path)
        assert r.status_code == 200, path
        outputs[path] = r.get_data(as_text=True)
    assert "suppressed" not in outputs["/api/v1/comparison"][:200]
    assert dashboard.get(f"/researcher/practice/{fictitious.id}").status_code == 404
    r = dashboard.get("/researcher/export/download?k=2")
    assert r.status_code == 200, r.text[:500]
    data = r.data
    r.close()  # the zip's spooled file
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            outputs[name] = archive.read(name).decode("utf-8-sig")
    assert "paradata.csv" in outputs and "codebook.csv" in outputs
    for name, text in outputs.items():
        for needle in needles:
            assert needle not in text, (name, needle)
    # ...and yet the over-claiming shows, as an indicator only
    assert "fictitious_claimed" in outputs["paradata.csv"].splitlines()[0]
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(Response.fictitious_claimed)) == 12


# ---------------------------------------------------------------- the filter and fieldwork


def test_exclude_low_quality_changes_n_as_a_plain_recount_says(app):
    with app.app_context():
        flags = [True, True, False, None, False, True, None]
        for flag in flags:
            response, _ = responses.start("ru")
            response.status, response.submitted_on = "submitted", fieldwork.today()
            for field, value in PROFILE.items():
                setattr(response, field, value)
            response.low_quality = flag
        db.session.commit()
        everyone = queries.count_respondents(queries.Segment())
        kept = queries.count_respondents(queries.Segment(exclude_low_quality=True))
        summary = queries.fieldwork()
    assert everyone == len(flags)
    assert kept == sum(1 for flag in flags if flag is not True)  # never assessed stays in
    assert summary["quality"]["low_quality"] == flags.count(True)
    assert summary["quality"]["assessed"] == sum(flag is not None for flag in flags)


def test_the_filter_is_parsed_and_offered_on_the_dashboards(study):
    app, token = study
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    r = api.get("/api/v1/comparison?exclude_low_quality=1", headers=headers)
    assert r.status_code == 200
    assert (
        api.get("/api/v1/comparison?exclude_low_quality=maybe", headers=headers).status_code == 400
    )
    dashboard = log_in(app)
    page = dashboard.get("/researcher/comparison").text
    assert 'name="exclude_low_quality"' in page
    fieldwork = dashboard.get("/researcher/").text
    assert "quality-table" in fieldwork


# ---------------------------------------------------------------- the landing estimate


def test_the_landing_estimate_follows_the_measured_median(app, client):
    fallback = max(10, len(catalog_of(app).pages) * 2)
    minutes = re.compile(r"(\d+) минут")
    assert int(minutes.search(client.get("/").text).group(1)) == fallback
    seconds = [300 + 17 * i for i in range(paradata.ESTIMATE_MIN_SAMPLE)]
    with app.app_context():
        for value in seconds[:-1]:
            response, _ = responses.start("ru")
            response.status, response.submitted_on = "submitted", fieldwork.today()
            for field, code in PROFILE.items():
                setattr(response, field, code)
            response.active_seconds = value
        db.session.commit()
        paradata.clear_cache()
    # one short of the minimum sample: still the fallback
    assert int(minutes.search(client.get("/").text).group(1)) == fallback
    with app.app_context():
        response, _ = responses.start("ru")
        response.status, response.submitted_on = "submitted", fieldwork.today()
        for field, code in PROFILE.items():
            setattr(response, field, code)
        response.active_seconds = seconds[-1]
        db.session.commit()
        paradata.clear_cache()
    expected = math.ceil(statistics.median(seconds) / 60)
    assert int(minutes.search(client.get("/").text).group(1)) == expected != fallback


def test_the_respondent_goes_back_along_their_own_order(app, client):
    catalog = catalog_of(app)
    respondent = Respondent(client)
    respondent.consent()
    respondent.profile()
    order = order_of(client)
    second = order.pages[1]
    html = client.get(f"/page/{second.number}").text
    assert f'href="/page/{order.pages[0].number}">' in html  # "Back" to the previous one
    assert page_after(order, second) == f"/page/{order.pages[2].number}"
    assert "Шаг 3 из" in html  # background is step 1, the first page step 2
    assert catalog.pages
