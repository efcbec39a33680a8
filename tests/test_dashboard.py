"""Researcher dashboard: access, both languages, demo and empty data, filters, CSV, caching."""

from __future__ import annotations

import io
import json
import re
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape
from sqlalchemy import func, select, update
from statsmodels.stats.multitest import multipletests

from analysis import table as definition
from survey import disclosure, results
from survey.dashboard import CSV_TABLES
from survey.extensions import db
from survey.models import Response
from survey.questions import BACKGROUND_BY_FIELD
from tests.helpers import Respondent, log_in, seed
from tests.recount import (
    CELL_COLUMNS,
    TEST_COLUMNS,
    recount_comparison,
    withheld,
    worked_in_counts,
)

PAGES = (
    "/researcher/",
    "/researcher/comparison",
    "/researcher/comparison?view=paired",
    "/researcher/ratings",
    "/researcher/categories",
)
TITLES = {
    "ru": (
        "Ход опроса",
        "Российские и иностранные компании",
        "Оценки влияния на мотивацию",
        "Категории",
    ),
    "en": ("Fieldwork", "Russian vs foreign companies", "Motivation ratings", "Categories"),
}
BANNER = {"ru": "ДЕМО-ДАННЫЕ", "en": "DEMO DATA"}
FIGURE_RE = re.compile(r'<script type="application/json" id="(figure-[\w-]+)">(.*?)</script>', re.S)
N_RE = {
    "ru": re.compile(r"Респондентов в этом срезе: (\d+)\."),
    "en": re.compile(r"Respondents in this view: (\d+)\."),
}
XSS = "<script>alert(1)</script>"


pytestmark = pytest.mark.usefixtures("fresh_cache")


def submit_real_response(app, **answers) -> None:
    """One real respondent through the questionnaire (not flagged as too fast)."""
    app.config["MIN_COMPLETION_SECONDS"] = 0
    r = Respondent(app.test_client()).complete(app.extensions["survey_catalog"], **answers)
    assert r.status_code == 302 and r.location.endswith("/thanks")


def page(client, url: str, **query) -> str:
    """A researcher page's HTML (200), with query parameters added to those in ``url``."""
    path, _, own = url.partition("?")
    query = {**{k: v[0] for k, v in parse_qs(own).items()}, **query}
    r = client.get(path, query_string=query)
    assert r.status_code == 200, (path, query, r.status_code, r.text[:1000])
    assert r.mimetype == "text/html"
    return r.text


def respondents_shown(text: str, lang: str = "en") -> int:
    match = N_RE[lang].search(text)
    assert match, "no 'Respondents in this view' line"
    return int(match.group(1))


def figures(text: str) -> dict[str, dict]:
    """Every chart's data block, parsed."""
    blocks = {name: json.loads(body) for name, body in FIGURE_RE.findall(text)}
    for name, figure in blocks.items():
        assert isinstance(figure.get("data"), list), name
        assert isinstance(figure.get("layout"), dict), name
    return blocks


def csv_frame(client, name: str, **query) -> pd.DataFrame:
    r = client.get(f"/researcher/table/{name}.csv", query_string=query)
    assert r.status_code == 200, (name, r.text[:500])
    assert r.mimetype == "text/csv"
    assert f'filename="{name}.csv"' in r.headers["Content-Disposition"]
    return pd.read_csv(io.StringIO(r.get_data(as_text=True)))


def researcher_urls(app) -> list[str]:
    """Every dashboard URL: each page, both comparison views, each CSV, a practice detail."""
    practice_id = app.extensions["survey_catalog"].practices[0].id
    urls = [*PAGES, f"/researcher/practice/{practice_id}"]
    urls += [f"/researcher/table/{name}.csv" for name in CSV_TABLES]
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint.startswith("dashboard.") and not rule.arguments:
                urls.append(rule.rule)
    return sorted(set(urls))


# --------------------------------------------------------------------------- access


def test_every_researcher_route_sends_a_browser_to_login_and_an_api_client_gets_401(app, client):
    urls = researcher_urls(app)
    assert len(urls) >= 12
    for url in urls:
        r = client.get(url)
        assert r.status_code == 302, url
        location = urlsplit(r.location)
        assert location.path == "/researcher/login", url
        (next_url,) = parse_qs(location.query)["next"]
        assert next_url.rstrip("?") == url, (url, next_url)

        r = client.get(url, headers={"Accept": "application/json"})
        assert r.status_code == 401, url
        assert r.mimetype == "application/json"
        body = r.get_json()
        assert body["error"] and body["message"], url


# --------------------------------------------------------------------------- rendering


def test_every_page_renders_demo_data_in_russian_and_in_english(app, client):
    seed(app, 150, seed_value=11)
    log_in(app, client)
    practice = app.extensions["survey_catalog"].practices[0]
    for lang in ("ru", "en"):
        texts = [page(client, path, lang=lang) for path in PAGES]
        texts.append(page(client, f"/researcher/practice/{practice.id}", lang=lang))
        for text in texts:
            assert f'<html lang="{lang}">' in text
            assert BANNER[lang] in text
            assert figures(text), "a page without a chart"
        fieldwork, comparison, paired, ratings, categories, detail = texts
        for title, text in zip(
            TITLES[lang], (fieldwork, comparison, ratings, categories), strict=True
        ):
            assert title in text
        for text in (comparison, paired, ratings, categories, detail):
            assert respondents_shown(text, lang) == 150
        assert practice.name.get(lang) in detail
    # The fieldwork page draws the daily counts, the drop-off and every background question.
    charts = figures(fieldwork)
    assert {"figure-daily", "figure-dropoff", "figure-bg_industry"} <= set(charts)
    assert "Ход опроса" not in fieldwork  # English stays chosen for the session


def test_an_empty_study_explains_itself_instead_of_failing(app, client):
    log_in(app, client)
    practice_id = app.extensions["survey_catalog"].practices[0].id
    explanation = {"ru": "Ответов пока нет.", "en": "No responses yet."}
    too_few = {"ru": "меньше 10 респондентов", "en": "Fewer than 10 respondents"}
    analytic = (*PAGES[1:], f"/researcher/practice/{practice_id}")
    for lang, paths in (("ru", analytic[:1]), ("en", analytic)):
        fieldwork = page(client, "/researcher/", lang=lang)
        assert explanation[lang] in fieldwork
        assert BANNER[lang] not in fieldwork  # nothing synthetic is shown
        for path in paths:
            # No respondents is below the disclosure threshold: a withheld page (200), in
            # the reader's language, with no count at all (not even 0) and no chart.
            text = page(client, path, lang=lang)
            assert too_few[lang] in text
            assert not N_RE[lang].search(text), path
            assert BANNER[lang] not in text
            assert not figures(text), path
    for name in CSV_TABLES:
        frame = csv_frame(client, name)
        if name in ("comparison", "categories"):  # one row saying why, never the counts
            assert len(frame) == 1, name
            assert frame["suppressed"].tolist() == [True], name
            assert frame["reason"].tolist() == ["too_small"], name
            assert "n_ru" not in frame.columns, name


def test_filters_in_the_url_change_the_numbers(app, client):
    seed(app, 150, seed_value=11)
    log_in(app, client)
    with app.app_context():
        n_it = db.session.scalar(
            select(func.count(Response.id)).where(
                Response.status == "submitted", Response.industry == "it"
            )
        )
    assert 0 < n_it < 150
    for path in ("/researcher/comparison", "/researcher/ratings", "/researcher/categories"):
        text = page(client, path, lang="en", industry="it")
        assert respondents_shown(text) == n_it
        assert '<option value="it" selected>' in text
        # The CSV link and the links to other pages keep the filter: a view can be shared.
        links = re.findall(r'href="(/researcher/[^"]*)"', text)
        assert any(".csv?" in link and "industry=it" in link for link in links), links
        assert any("/ratings?" in link and "industry=it" in link for link in links), links
    # A mistyped filter is refused with a 400 that names it, never the whole sample.
    bogus = client.get("/researcher/comparison", query_string={"industry": "bogus", "lang": "en"})
    assert bogus.status_code == 400
    assert "The parameter “industry” is not valid" in bogus.text
    assert not N_RE["en"].search(bogus.text)
    frame = csv_frame(client, "comparison", industry="it")
    everyone = csv_frame(client, "comparison")
    assert (frame["n_ru"] <= everyone["n_ru"]).all()
    assert frame["n_ru"].sum() < everyone["n_ru"].sum()


def test_a_real_response_hides_the_demo_data_unless_asked_for(app, client, monkeypatch):
    seed(app, 150, seed_value=11)
    log_in(app, client)
    computed = []
    original = results._compute

    def counting(segment):
        computed.append(segment)
        return original(segment)

    monkeypatch.setattr(results, "_compute", counting)

    first = page(client, "/researcher/categories", lang="en")
    second = page(client, "/researcher/categories")
    assert len(computed) == 1, "an identical view was computed twice"
    assert respondents_shown(first) == respondents_shown(second) == 150
    assert BANNER["en"] in second

    submit_real_response(app)
    real_only = page(client, "/researcher/categories", lang="en")
    assert len(computed) == 2, "a new response did not trigger a recomputation"
    # One real respondent is below the disclosure threshold: withheld, with no count.
    assert "Fewer than 10 respondents" in real_only
    assert not N_RE["en"].search(real_only)
    assert BANNER["en"] not in real_only
    assert "Real responses are included too." not in real_only

    # Demo rows are no cover for the real one: asked for, the view is still withheld.
    both = page(client, "/researcher/categories", include_demo="1")
    assert "Fewer than 10 respondents" in both
    assert not N_RE["en"].search(both)
    assert 'name="include_demo" value="1" checked' in both
    assert len(computed) == 3
    page(client, "/researcher/comparison", include_demo="1")
    assert len(computed) == 3, "the same segment on another page was computed again"

    real_csv = csv_frame(client, "comparison")
    assert real_csv["demo_data"].eq(False).all()
    assert real_csv["suppressed"].tolist() == [True] and "n_ru" not in real_csv.columns
    mixed_csv = csv_frame(client, "comparison", include_demo="1")
    assert mixed_csv["demo_data"].eq(True).all()
    assert mixed_csv["suppressed"].tolist() == [True] and "n_ru" not in mixed_csv.columns


# --------------------------------------------------------------------------- CSV


def industry_counts(app) -> dict[str, int]:
    """Submitted responses per industry (Russian label, zeros included), straight from SQL."""
    question = BACKGROUND_BY_FIELD["industry"]
    with app.app_context():
        rows = dict(
            db.session.execute(
                select(Response.industry, func.count())
                .where(Response.status == "submitted")
                .group_by(Response.industry)
            ).all()
        )
    return {question.label(code, "ru"): rows.get(code, 0) for code in question.codes()}


def test_csv_downloads_hold_the_numbers_of_the_comparison_table(app, client):
    seed(app, 150, seed_value=11)
    log_in(app, client)
    frames = {name: csv_frame(client, name) for name in CSV_TABLES}
    for name, frame in frames.items():
        assert "demo_data" in frame.columns, name
        assert frame["demo_data"].eq(True).all(), name

    # Every number is a recount of the stored answers with scipy/statsmodels (tests/recount.py).
    cat = app.extensions["survey_catalog"]
    expected = recount_comparison(app)
    got = frames["comparison"]
    assert got["practice_id"].tolist() == expected["practice_id"].tolist()
    assert got["practice_name"].tolist() == [p.name.ru for p in cat.practices]
    # Counts below the disclosure threshold read "< 10", and what rests on them is empty.
    hidden = withheld(expected, worked_in_counts(app))
    for count, columns in CELL_COLUMNS.items():
        small = got[count].astype(str) == "< 10"
        assert (small == hidden[count]).all(), count
        assert got.loc[small, list(columns[1:])].isna().all().all(), count
    for sides, columns in TEST_COLUMNS.items():
        assert got.loc[hidden[columns[0]], list(columns)].isna().all().all(), sides
    assert hidden.to_numpy().any(), "the demo study has no small cell: the check is idle"
    q_columns = [c for c in expected.columns if c.endswith("q_val")]
    numeric = [c for c in expected.select_dtypes("number").columns if c not in q_columns]
    for column in numeric:  # every shown value equals the independent computation
        shown = ~hidden[column]
        pd.testing.assert_series_equal(
            pd.to_numeric(got.loc[shown, column]).astype(float),
            expected.loc[shown, column].astype(float),
            check_exact=False,
            rtol=1e-9,
            check_names=False,
        )
    for column in definition.TEXT_COLUMNS:  # the name of each shown test
        shown = ~hidden[column]
        names = got.loc[shown, column].astype(object).where(got.loc[shown, column].notna(), None)
        assert names.tolist() == expected.loc[shown, column].tolist(), column
    # q-values are Benjamini-Hochberg over the p-values a reader sees.
    for q_column in q_columns:
        p_values = got[q_column.replace("q_val", "p_val")]
        shown = p_values.notna()
        assert got.loc[~shown, q_column].isna().all(), q_column
        if shown.any():
            q_expected = multipletests(p_values[shown].astype(float), method="fdr_bh")[1]
            np.testing.assert_allclose(got.loc[shown, q_column].astype(float), q_expected)

    categories = frames["categories"]
    assert categories["category_id"].tolist() == [c.id for c in cat.categories]
    assert frames["fieldwork"]["completed"].sum() == 150
    background = frames["background"]
    assert set(background["question"]) >= {"worked_in", "industry"}
    industry = background[background["question"] == "industry"]
    direct = industry_counts(app)
    assert len(industry) == len(direct)
    for label, n in zip(industry["label"], industry["n"].astype(str), strict=True):
        if n == "< 10":
            assert direct[label] < 10, label
        else:
            assert int(n) == direct[label] >= 10, label
    assert sum(direct.values()) == 150
    assert frames["dropoff"]["reached"].iloc[0] == 150
    assert client.get("/researcher/table/nope.csv").status_code == 404


def test_the_csv_tables_and_the_gate_take_the_columns_of_the_one_definition(app, client):
    seed(app, 150, seed_value=11)
    log_in(app, client)
    for name, key, label in (
        ("comparison", "practice_id", "practice_name"),
        ("categories", "category_id", "category_name"),
    ):
        r = client.get(f"/researcher/table/{name}.csv")
        header = r.get_data(as_text=True).splitlines()[0].split(",")
        gated = definition.gated_order(key)
        assert header == [key, label, *gated[1:], "demo_data"], name
    # The disclosure gate withholds by the definition's groups: each cell by its count,
    # each test with its two cells.
    assert list(disclosure.CELL_GROUPS) == list(definition.CELL_GROUPS)
    for group, (count, columns) in disclosure.CELL_GROUPS.items():
        assert count == definition.GROUP_BY_NAME[group].count, group
        assert columns == definition.COLUMN_GROUPS[group], group
    assert list(disclosure.TEST_GROUPS) == list(definition.TEST_GROUPS)
    for group, (sides, columns) in disclosure.TEST_GROUPS.items():
        assert sides == definition.GROUP_BY_NAME[group].sides, group
        assert columns == definition.COLUMN_GROUPS[group], group


# --------------------------------------------------------------------------- practice detail


def test_practice_detail_lists_sources_and_shows_examples_escaped(app, client):
    cat = app.extensions["survey_catalog"]
    practice = cat.practices[0]
    submit_real_response(app, examples={practice.id: f"Bonus {XSS} & more"})
    log_in(app, client)
    # One real respondent: the page is withheld and their example is not shown at all.
    alone = page(client, f"/researcher/practice/{practice.id}", lang="en")
    assert "Fewer than 10 respondents" in alone
    assert "Bonus" not in alone and "&lt;script&gt;" not in alone and XSS not in alone
    assert not N_RE["en"].search(alone)

    # With enough real respondents the example is shown, escaped.
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
        db.session.commit()
        n_real = db.session.scalar(
            select(func.count(Response.id)).where(
                Response.status == "submitted",
                Response.is_demo.is_(False),
                Response.quality_flag.is_(None),
            )
        )
    assert n_real == 31
    results.clear_cache()  # rows were relabelled in place, not added
    text = page(client, f"/researcher/practice/{practice.id}", lang="en")
    assert practice.name.en in text
    assert practice.sources
    for source_id in practice.sources:
        assert str(escape(cat.sources[source_id].citation())) in text
    assert XSS not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&amp; more" in text
    assert respondents_shown(text) == n_real

    r = client.get("/researcher/practice/no-such-practice")
    assert r.status_code == 404
    assert client.get("/researcher/practice/<script>").status_code == 404
