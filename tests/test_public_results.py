"""The public results summary (issue 16): /results/<wave>, its preview image, the owner's
switch in the pages, the CLI and the API, and its cache; on SQLite and PostgreSQL.

Expected numbers come from a plain recount of the stored answers (a GROUP BY over the answer
rows of submitted, real, unflagged responses) with statsmodels' Wilson interval.
"""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import replace
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import func, select, update
from statsmodels.stats.proportion import proportion_confint

from survey import public, queries, responses, results
from survey.demo import seed_demo
from survey.extensions import db
from survey.fieldwork import WaveSpec, create_wave, default_wave, set_pilot, set_results_public
from survey.models import Response, Wave
from tests.helpers import Respondent, researcher
from tests.test_manage import Browser, invoke
from tests.test_wave_comparison import recount as wave_recount

EXISTED = ("applied", "existed", "yes")
N = 150
SHARE = re.compile(
    r'data-kind="(ru|foreign)" data-share="([^"]+)" data-low="([^"]+)" data-high="([^"]+)" '
    r'data-n="(\d+)"'
)
ROW = re.compile(r'<li class="pub-row" data-practice="([^"]+)">(.*?)</li>', re.S)
DIFF = re.compile(r'data-diff="([^"]+)" data-low="([^"]+)" data-high="([^"]+)" data-q="([^"]+)"')
META = re.compile(r'<meta (?:property|name)="([^"]+)" content="([^"]*)">')


pytestmark = pytest.mark.usefixtures("fresh_cache")


def seed_real(app, n: int = N, seed: int = 5) -> str:
    """n real, unflagged respondents in the default wave (from the demo seeding); its code."""
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], n, seed)
        db.session.execute(update(Response).values(is_demo=False, quality_flag=None))
        db.session.commit()
        return default_wave().code


def publish(app, code: str, public_: bool = True) -> None:
    with app.app_context():
        set_results_public(db.session.scalar(select(Wave).filter_by(code=code)), public_)


@pytest.fixture
def study(app) -> str:
    """A published wave of N real respondents."""
    code = seed_real(app)
    publish(app, code)
    return code


def recount(app, code: str) -> pd.DataFrame:
    """Per practice and kind: yes and no answers of the wave's submitted, real, unflagged
    responses (the wave comparison's plain GROUP BY over the answer rows)."""
    return wave_recount(app, code)[["yes", "no"]]


def respondents(app, code: str) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count())
            .select_from(Response)
            .join(Wave, Wave.id == Response.wave_id)
            .where(
                Wave.code == code,
                Response.status == "submitted",
                Response.is_demo.is_(False),
                Response.quality_flag.is_(None),
            )
        )


def shown_rows(html: str) -> dict[str, dict]:
    """practice id -> {kind: (share, low, high, n), "diff": (diff, low, high, q), "sig": bool}
    as the page states them (its data attributes), in page order."""
    out = {}
    for practice, body in ROW.findall(html):
        row = {kind: tuple(float(v) for v in values) for kind, *values in SHARE.findall(body)}
        row["diff"] = tuple(float(v) for v in DIFF.search(body).groups())
        row["sig"] = 'class="pub-sig"' in body
        out[practice] = row
    return out


def metas(html: str) -> dict[str, str]:
    return {name: unescape(value) for name, value in META.findall(html)}


def no_cookie_set(r) -> bool:
    return "Set-Cookie" not in r.headers


# ---------------------------------------------------------------- publishing


def test_an_unpublished_wave_is_a_404_and_publishing_it_shows_it(app, client):
    code = seed_real(app)
    for path in (f"/results/{code}", f"/results/{code}/card.png", "/results", "/results/nope"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "Страница не найдена" in r.text and no_cookie_set(r)
    assert "Page not found" in client.get(f"/results/{code}?lang=en").text

    owner = Browser(app, "owner")
    page = owner.get(f"/researcher/waves/{code}")
    assert "Опубликовать результаты" in page.text
    r = owner.post(f"/researcher/waves/{code}/publish", {"public": "1"})
    assert r.status_code == 302
    page = owner.get(f"/researcher/waves/{code}")
    assert f"http://survey.test/results/{code}" in page.text and "Скрыть результаты" in page.text

    r = client.get(f"/results/{code}")
    assert r.status_code == 200 and "Практики мотивации" in r.text
    assert client.get("/results").location.endswith(f"/results/{code}")  # the one published

    assert owner.post(f"/researcher/waves/{code}/publish", {"public": "0"}).status_code == 302
    assert client.get(f"/results/{code}").status_code == 404  # at once, despite the cache


def test_analysts_cannot_publish_and_bad_posts_change_nothing(app):
    code = seed_real(app)
    analyst = Browser(app, "analyst")
    assert "Опубликовать результаты" not in analyst.get(f"/researcher/waves/{code}").text
    assert analyst.post(f"/researcher/waves/{code}/publish", {"public": "1"}).status_code == 403
    owner = Browser(app, "owner")
    for form in ({"public": "yes"}, {}, {"public": "1", "csrf_token": "forged"}):
        assert owner.post(f"/researcher/waves/{code}/publish", form).status_code == 400
    assert owner.post("/researcher/waves/nope/publish", {"public": "1"}).status_code == 404
    with app.app_context():
        assert not db.session.scalar(select(Wave.results_public).filter_by(code=code))


def test_a_pilot_wave_cannot_be_published(app, client):
    code = seed_real(app)
    with app.app_context():
        set_pilot(db.session.scalar(select(Wave).filter_by(code=code)), True)
    owner = Browser(app, "owner")
    r = owner.post(f"/researcher/waves/{code}/publish", {"public": "1"})
    assert r.status_code == 400 and "результаты пилотной волны нельзя опубликовать" in r.text
    token = researcher(app, "owner").token
    r = client.post(
        f"/api/v1/waves/{code}/publish",
        headers={"Authorization": f"Bearer {token}"},
        json={"public": True},
    )
    assert r.status_code == 400 and r.get_json()["field"] == "public"
    # a published wave marked pilot afterwards is no longer shown
    with app.app_context():
        wave = db.session.scalar(select(Wave).filter_by(code=code))
        set_pilot(wave, False)
        set_results_public(wave, True)
    assert client.get(f"/results/{code}").status_code == 200
    with app.app_context():
        set_pilot(db.session.scalar(select(Wave).filter_by(code=code)), True)
    assert client.get(f"/results/{code}").status_code == 404
    assert client.get(f"/results/{code}/card.png").status_code == 404


def test_the_api_lists_and_switches_publication_for_owners_only(app, client):
    code = seed_real(app)
    analyst = researcher(app, "analyst").token
    owner = researcher(app, "owner").token

    def call(token, body, path=f"/api/v1/waves/{code}/publish"):
        return client.post(path, headers={"Authorization": f"Bearer {token}"}, json=body)

    waves = client.get("/api/v1/waves", headers={"Authorization": f"Bearer {analyst}"})
    assert [w["results_public"] for w in waves.get_json()["waves"]] == [False]
    assert call(analyst, {"public": True}).status_code == 403
    for body, field in (({"public": "yes"}, "public"), ({}, "public"), ({"x": 1}, "x")):
        r = call(owner, body)
        assert r.status_code == 400 and r.get_json()["field"] == field, body
    assert call(owner, {"public": True}, "/api/v1/waves/nope/publish").status_code == 404
    assert client.get(f"/results/{code}").status_code == 404  # nothing was stored
    r = call(owner, {"public": True})
    assert r.status_code == 200 and r.get_json()["results_public"] is True
    assert client.get(f"/results/{code}").status_code == 200
    r = call(owner, {"public": False})
    assert r.get_json()["results_public"] is False
    assert client.get(f"/results/{code}").status_code == 404


def test_the_cli_publishes_and_hides_a_wave(app, client):
    code = seed_real(app)
    result = invoke(app, "wave", "publish", code)
    assert result.exit_code == 0, result.output
    assert f"http://survey.test/results/{code}" in result.output
    assert "results public" in invoke(app, "wave", "list").output
    assert client.get(f"/results/{code}").status_code == 200
    result = invoke(app, "wave", "unpublish", code)
    assert result.exit_code == 0 and "hidden" in result.output
    assert client.get(f"/results/{code}").status_code == 404
    result = invoke(app, "wave", "publish", "nope")
    assert result.exit_code != 0 and "no wave has the code" in result.output
    with app.app_context():
        set_pilot(db.session.scalar(select(Wave).filter_by(code=code)), True)
    result = invoke(app, "wave", "publish", code)
    assert result.exit_code != 0 and "pilot" in result.output
    assert client.get(f"/results/{code}").status_code == 404


def test_several_published_waves_are_listed(app, client):
    code = seed_real(app)
    with app.app_context():
        create_wave(WaveSpec(code="autumn", name_ru="Осень", name_en="Autumn"))
    publish(app, code)
    publish(app, "autumn")
    r = client.get("/results?lang=en")
    assert r.status_code == 200
    assert 'href="/results/autumn"' in r.text and f'href="/results/{code}"' in r.text
    assert "Autumn" in r.text and no_cookie_set(r)


# ---------------------------------------------------------------- the numbers


def test_the_shown_numbers_equal_an_independent_recount(app, client, study):
    html = client.get(f"/results/{study}").text
    n = respondents(app, study)
    assert n == N and f'<data value="{n}" class="pub-n">{n}</data>' in html
    rows = shown_rows(html)
    assert public.FEWEST <= len(rows) <= public.TOP
    counts = recount(app, study)
    diffs = {}
    for practice, row in rows.items():
        expected = {}
        for kind in ("ru", "foreign"):
            yes, no = counts.loc[(practice, kind)].tolist()
            low, high = proportion_confint(yes, yes + no, alpha=0.05, method="wilson")
            expected[kind] = yes / (yes + no)
            assert row[kind] == pytest.approx((yes / (yes + no), low, high, yes + no), abs=1e-9)
        diff, diff_low, diff_high, q = row["diff"]
        assert diff == pytest.approx(expected["ru"] - expected["foreign"], abs=1e-9)
        assert diff_low < diff < diff_high and row["sig"] == (q < 0.05)
        diffs[practice] = diff
    # the significant ones first, each group by absolute difference
    order = list(rows)
    significant = [p for p in order if rows[p]["sig"]]
    assert order[: len(significant)] == significant
    for group in (significant, order[len(significant) :]):
        sizes = [abs(diffs[p]) for p in group]
        assert sizes == sorted(sizes, reverse=True)
    # no practice left out passes the correction with a larger difference than one shown
    all_diffs = {}
    for practice in app.extensions["survey_catalog"].practices:
        k = counts.loc[practice.id]
        all_diffs[practice.id] = k.loc["ru", "yes"] / k.loc["ru"].sum() - (
            k.loc["foreign", "yes"] / k.loc["foreign"].sum()
        )
    with app.app_context():
        table = results.comparison(queries.Segment(wave=study)).table.set_index("practice_id")
    passing = [p for p in all_diffs if table.loc[p, "q_val"] < 0.05]
    expected_significant = sorted(passing, key=lambda p: -abs(all_diffs[p]))[: public.TOP]
    assert significant == expected_significant
    # the rounded shares on the page read as the recount does
    first = order[0]
    yes, no = counts.loc[(first, "ru")].tolist()
    assert f"{yes / (yes + no) * 100:.0f}\u00a0%" in html


def test_a_list_without_significant_differences_says_so(app, client, study, monkeypatch):
    real = results.comparison

    def nothing_significant(segment):
        result = real(segment)
        return replace(result, table=result.table.assign(q_val=0.5))

    monkeypatch.setattr(public.results, "comparison", nothing_significant)
    html = client.get(f"/results/{study}?lang=en").text
    rows = shown_rows(html)
    assert len(rows) == public.FEWEST and not any(row["sig"] for row in rows.values())
    assert "None of these differences is statistically significant" in html
    assert html.count("not statistically significant") == public.FEWEST


def test_a_wave_the_gate_refuses_says_results_are_not_available_yet(app, client):
    code = seed_real(app, n=60)
    with app.app_context():
        create_wave(WaveSpec(code="tiny", name_ru="Малая", name_en="Tiny"))
        tiny = db.session.scalar(select(Wave.id).filter_by(code="tiny"))
        ids = list(db.session.scalars(select(Response.id).order_by(Response.id).limit(4)))
        db.session.execute(update(Response).where(Response.id.in_(ids)).values(wave_id=tiny))
        db.session.commit()
    publish(app, "tiny")
    publish(app, code)
    for wave in ("tiny", code):  # the small wave, and the one it would be subtracted from
        r = client.get(f"/results/{wave}")
        assert r.status_code == 200
        assert "Результатов этой волны пока нет" in r.text
        assert not shown_rows(r.text) and 'class="pub-n"' not in r.text
        card = Image.open(io.BytesIO(client.get(f"/results/{wave}/card.png").data))
        assert card.size == (1200, 630)
    assert "Results for this wave are not available yet" in client.get("/results/tiny?lang=en").text


def test_a_wave_below_results_min_n_is_not_shown_either(make_app, database_url):
    app = make_app(RESULTS_MIN_N=N + 1, MIN_COMPLETION_SECONDS=0)
    code = seed_real(app)
    publish(app, code)
    r = app.test_client().get(f"/results/{code}")
    assert r.status_code == 200 and "Результатов этой волны пока нет" in r.text


def test_a_demo_study_is_never_published(app, client):
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], N, 3)  # demo rows only
        code = default_wave().code
    publish(app, code)
    r = client.get(f"/results/{code}")
    assert "Результатов этой волны пока нет" in r.text and not shown_rows(r.text)


def test_flagged_and_demo_responses_do_not_count(app, client, study):
    with app.app_context():
        ids = list(db.session.scalars(select(Response.id).order_by(Response.id).limit(20)))
        db.session.execute(
            update(Response).where(Response.id.in_(ids[:10])).values(quality_flag="bot")
        )
        db.session.execute(update(Response).where(Response.id.in_(ids[10:])).values(is_demo=True))
        db.session.commit()
    html = client.get(f"/results/{study}").text
    assert respondents(app, study) == N - 20
    assert f'<data value="{N - 20}" class="pub-n">' in html
    counts = recount(app, study)
    for practice, row in shown_rows(html).items():
        yes, no = counts.loc[(practice, "ru")].tolist()
        assert row["ru"][0] == pytest.approx(yes / (yes + no), abs=1e-9)


# ---------------------------------------------------------------- privacy and caching


def test_the_page_holds_no_personal_answer_and_sets_no_cookie(app, study):
    catalog = app.extensions["survey_catalog"]
    marker = f"my-own-example-{uuid.uuid4().hex[:8]}"
    respondent = app.test_client()
    Respondent(respondent).complete(catalog, examples={catalog.practices[0].id: marker})
    anonymous = app.test_client()
    page = anonymous.get(f"/results/{study}")
    assert page.status_code == 200 and no_cookie_set(page)
    assert marker not in page.text and "resume" not in page.text
    assert "csrf_token" not in page.text
    # the respondent's own browser gets the very same page, and its session is not touched
    own = respondent.get(f"/results/{study}")
    assert own.data == page.data and no_cookie_set(own)
    for path in (f"/results/{study}?lang=en", f"/results/{study}/card.png", "/results"):
        assert no_cookie_set(anonymous.get(path)), path
    assert anonymous.get_cookie(app.config["SESSION_COOKIE_NAME"]) is None


def test_the_share_metadata_and_links_point_to_absolute_urls(app, client, study):
    r = client.get(f"/results/{study}?lang=en")
    assert r.headers["Cache-Control"] == "public, max-age=300"
    tags = metas(r.text)
    assert tags["og:url"] == f"http://survey.test/results/{study}?lang=en"
    assert tags["og:image"] == f"http://survey.test/results/{study}/card.png?lang=en"
    assert tags["og:type"] == "article" and tags["twitter:card"] == "summary_large_image"
    assert tags["og:title"] == "Motivation practices: Russian and foreign companies"
    assert f"{N} respondents (a self-selected sample)" in tags["og:description"]
    assert (tags["og:image:width"], tags["og:image:height"]) == ("1200", "630")
    links = {
        urlsplit(unescape(href)).netloc: unescape(href)
        for href in re.findall(r'<a class="button secondary" href="([^"]+)"', r.text)
    }
    assert set(links) == {"t.me", "vk.com", "www.linkedin.com", "twitter.com", ""}
    for netloc in ("t.me", "vk.com", "www.linkedin.com", "twitter.com"):
        assert parse_qs(urlsplit(links[netloc]).query)["url"] == [tags["og:url"]]
    assert links[""].startswith("mailto:?subject=")
    # no third-party script, and the policy is the site's
    assert "<script" not in r.text.replace('<script src="/static/js/survey.js" defer></script>', "")
    assert "img-src 'self' data:" in r.headers["Content-Security-Policy"]
    image = client.get(urlsplit(tags["og:image"]).path + "?lang=en")
    assert image.status_code == 200


def test_the_card_is_a_1200_by_630_png(app, client, study):
    for lang in ("ru", "en"):
        r = client.get(f"/results/{study}/card.png?lang={lang}")
        assert r.status_code == 200 and r.mimetype == "image/png"
        assert r.headers["Cache-Control"] == "public, max-age=300"
        image = Image.open(io.BytesIO(r.data))
        image.verify()
        image = Image.open(io.BytesIO(r.data))
        assert image.format == "PNG" and image.size == (1200, 630)
        colours = {colour for _, colour in image.convert("RGB").getcolors(1 << 20)}
        assert (192, 57, 43) in colours and (31, 95, 191) in colours  # both kinds' bars
    assert (
        client.get(f"/results/{study}/card.png?lang=ru").data
        != client.get(f"/results/{study}/card.png?lang=en").data
    )


def test_repeated_requests_are_served_from_the_cache(app, client, study, monkeypatch):
    calls = []
    real = results.comparison

    def counted(segment):
        calls.append(segment)
        return real(segment)

    monkeypatch.setattr(public.results, "comparison", counted)
    first = client.get(f"/results/{study}")
    for _ in range(5):
        again = client.get(f"/results/{study}")
        assert again.data == first.data
    assert len(calls) == 1
    client.get(f"/results/{study}/card.png")
    client.get(f"/results/{study}/card.png")
    assert len(calls) == 2  # the image is rendered once (the comparison itself is cached)
    # a client holding the page gets a 304
    etag = first.headers["ETag"]
    r = client.get(f"/results/{study}", headers={"If-None-Match": etag})
    assert r.status_code == 304 and not r.data
    # new data: the page is rendered again, with the new numbers
    with app.app_context():
        ids = list(db.session.scalars(select(Response.id).order_by(Response.id).limit(10)))
        db.session.execute(update(Response).where(Response.id.in_(ids)).values(quality_flag="x"))
        db.session.commit()
    fresh = client.get(f"/results/{study}")
    assert len(calls) == 3 and fresh.headers["ETag"] != etag
    assert f'<data value="{N - 10}" class="pub-n">' in fresh.text


def test_both_languages_by_parameter_and_by_the_site_switch(app, study):
    client = app.test_client()
    ru = client.get(f"/results/{study}")
    assert '<html lang="ru">' in ru.text and "Выборка по самоотбору." in ru.text
    assert "не репрезентативная выборка" in ru.text
    en = client.get(f"/results/{study}?lang=en")
    assert '<html lang="en">' in en.text and "A self-selected sample." in en.text
    assert "not a representative sample" in en.text
    assert "Vary" not in en.headers  # ?lang= alone decides: a proxy may keep it for all
    assert client.get(f"/results/{study}?lang=xx").data == ru.data  # an unknown one: default
    assert client.get(f"/results/{study}?utm_source=tg&fbclid=1").data == ru.data
    # the site's language switch (a choice the visitor makes: stored in their session)
    r = client.get(f"/lang/en?next=/results/{study}")
    assert r.location.endswith(f"/results/{study}")
    switched = client.get(f"/results/{study}")
    assert '<html lang="en">' in switched.text and "Cookie" in switched.headers["Vary"]
    assert no_cookie_set(switched)
    # the switch on the page leads back to the page, without a lang= that would override it
    assert f"/lang/ru?next=/results/{study}" in unescape(switched.text)


def test_the_page_reads_on_a_phone_without_script(app, client, study):
    html = client.get(f"/results/{study}").text
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    bars = re.findall(r'<svg class="pub-bar"[^>]*>', html)
    assert bars and all('aria-hidden="true"' in bar for bar in bars)
    # every number a bar draws is also written out
    assert html.count('class="pub-value"') == 3 * len(shown_rows(html))
    assert 'preserveAspectRatio="none"' in bars[0]


def test_a_respondent_who_just_submitted_still_counts_once(app, client, study):
    catalog = app.extensions["survey_catalog"]
    assert Respondent(app.test_client()).complete(catalog).status_code == 302
    with app.app_context():
        assert not any(mismatches for _, mismatches in responses.check_vectors())
    html = client.get(f"/results/{study}").text
    assert f'<data value="{N + 1}" class="pub-n">' in html
