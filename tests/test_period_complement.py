"""Complementary suppression of periods: when one period of a kind is small, the periods
shown must not give it away by subtraction from the unrestricted total."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, update

from survey import disclosure, queries, responses, results
from survey.auth import create_api_token, create_researcher
from survey.extensions import db
from survey.models import Answer, Response
from tests.helpers import log_in


def test_the_smallest_other_periods_are_withheld_until_the_withheld_ones_are_large():
    t = 10
    # One small period: the smallest other non-empty one joins it.
    counts = {"ru": {"before_2014": 3, "2014_2021": 12, "2022_on": 40}}
    assert disclosure.withheld_periods(counts, t) == {"2014_2021"}
    # Ties go to the earlier period; an empty period is no cover and reveals nothing.
    counts = {"ru": {"before_2014": 0, "2014_2021": 3, "2022_on": 40}}
    assert disclosure.withheld_periods(counts, t) == {"2022_on"}
    # Two small periods that are large together need no third.
    counts = {"foreign": {"before_2014": 4, "2014_2021": 7, "2022_on": 40}}
    assert disclosure.withheld_periods(counts, t) == set()
    # Two small periods that are still small together take the third.
    counts = {"foreign": {"before_2014": 4, "2014_2021": 3, "2022_on": 40}}
    assert disclosure.withheld_periods(counts, t) == {"2022_on"}
    # No small period: nothing withheld; each kind is judged on its own.
    counts = {
        "ru": {"before_2014": 10, "2014_2021": 0, "2022_on": 40},
        "foreign": {"before_2014": 0, "2014_2021": 2, "2022_on": 30},
    }
    assert disclosure.withheld_periods(counts, t) == {"2022_on"}


@pytest.fixture
def study(app):
    """Russian-company respondents: 3 before 2014, 12 in 2014-2021, 40 from 2022 on; and 20
    foreign-company respondents before 2014 (so that period as a whole is large enough to
    show); every one answers the same practice."""
    catalog = app.extensions["survey_catalog"]
    practice = catalog.practices[0].id
    bands = [("ru", "before_2014")] * 3 + [("ru", "2014_2021")] * 12 + [("ru", "2022_on")] * 40
    bands += [("foreign", "before_2014")] * 20
    with app.app_context():
        responses.sync_catalog(catalog)
        rows = []
        for i, (kind, band) in enumerate(bands):
            response, _ = responses.start("ru")
            db.session.execute(
                update(Response)
                .where(Response.id == response.id)
                .values(
                    status="submitted",
                    submitted_on=response.started_on,
                    worked_in=f"{kind}_only",
                    current_employer="ru",
                    industry="it",
                    company_size="lt50",
                    role_level="specialist",
                    job_function="it",
                    experience_band="3_5",
                    **{f"{kind}_last_year": band},
                )
            )
            rows.append(
                {
                    "response_id": response.id,
                    "practice_id": practice,
                    "company_kind": kind,
                    "met": "existed" if i % 2 else "no",
                }
            )
        db.session.execute(insert(Answer), rows)
        db.session.commit()
        # Rows written past the write paths: derive the answer vectors from them, as a
        # write path does (the count tables read the vectors).
        list(responses.check_vectors(repair=True))
    results.clear_cache()
    yield
    results.clear_cache()


def test_a_period_that_would_reveal_a_small_one_is_refused(app, study):
    with app.app_context():
        verdicts = {
            band: results.comparison(queries.Segment(period=band)).verdict
            for band in queries.PERIODS
        }
        ungated = results.ungated_comparison(queries.Segment(period="before_2014"))
        shown = results.comparison(queries.Segment(period="before_2014")).table
    # The small period itself stays (its cells are withheld by the cell rule) ...
    assert verdicts["before_2014"].allowed
    assert ungated.table["n_ru"].max() == 3  # what the cell rule hides
    assert shown["suppressed_ru"].all() and shown["n_ru"].isna().all()
    # ... the smallest other one is refused, so total - shown = 3 + 12, never 3.
    assert not verdicts["2014_2021"].allowed
    assert verdicts["2014_2021"].reason == "complement"
    assert verdicts["2022_on"].allowed


def test_the_api_and_the_split_view_say_why(app, client, study):
    with app.app_context():
        researcher = create_researcher("complement@example.org", "a long enough password")
        token = create_api_token(researcher, "t")
    headers = {"Authorization": f"Bearer {token}"}
    body = client.get("/api/v1/comparison?period=2014_2021", headers=headers).get_json()
    assert body["suppressed"] is True and body["reason"] == "complement"
    assert "3" not in body["message"].replace("10", "")
    split = client.get("/api/v1/comparison/by-period", headers=headers).get_json()
    assert split["periods"]["2014_2021"]["reason"] == "complement"


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            "In a Russian company: In 2022 or later (including now) — 40; In 2014–2021 — &lt; 10; "
            "Before 2014 — &lt; 10.",
        ),
        (
            "ru",
            "В российской компании: В 2022 году или позже (в том числе сейчас) — 40; "
            "В 2014–2021 годах — &lt; 10; До 2014 года — &lt; 10.",
        ),
    ],
)
def test_the_comparison_page_says_which_period_each_kinds_answers_refer_to(
    app, client, study, lang, expected
):
    """From the gated sample description: of the 40 / 12 / 3 Russian-company respondents
    per period (a plain count of the fixture), 3 is withheld and 12 with it (secondary
    suppression: the total would give 3 away); the foreign line shows its 20."""
    log_in(app, client)
    page = client.get(f"/researcher/comparison?lang={lang}")
    assert page.status_code == 200
    line = page.text.split('class="period-line"', 1)[1].split("</p>", 1)[0]
    assert expected in line
    assert "— 20." in line
