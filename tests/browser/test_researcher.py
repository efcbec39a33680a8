"""Journey 5: a researcher logs in, reads every dashboard page, filters, downloads the export."""

from __future__ import annotations

import csv
import io
import re
import zipfile

from tests.browser.conftest import DEMO_RESPONDENTS, DESKTOP, RESEARCHER_EMAIL

CHARTS_DRAWN = """() => {
  const charts = [...document.querySelectorAll("div.chart")];
  return charts.length > 0 && charts.every((c) => c.querySelector(".main-svg"));
}"""


def respondents_in_view(page) -> int:
    return int(re.search(r"\d+", page.inner_text(".sample-line")).group())


def open_from_nav(five, selector: str, url: str, label: str, charts: bool = True) -> None:
    """Follow a link, wait for the page and its plotly charts, then screenshot and audit it."""
    page = five.page
    page.click(selector)
    page.wait_for_url(re.compile(url))
    assert "include_demo=1" in page.url, "the dashboard links must keep the filters"
    if charts:
        page.wait_for_function(CHARTS_DRAWN, timeout=30_000)
        assert page.locator("div.chart .main-svg").count() >= page.locator("div.chart").count()
        assert page.locator(".demo-banner").is_visible()
    five.check(label)


def test_researcher_dashboards_filters_and_export(journey, live_server, tmp_path):
    five = journey("5-researcher-desktop", viewport=DESKTOP)
    page = five.page
    # Demo respondents are shown beside real ones only on request: the other journeys may
    # already have stored real responses, and every page keeps include_demo in its links.
    page.goto("/researcher/?include_demo=1")
    page.wait_for_url("**/researcher/login?**")
    five.check("login")
    page.fill("#email", RESEARCHER_EMAIL)
    page.fill("#password", live_server.password)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/researcher/\?include_demo=1$"))
    page.wait_for_function(CHARTS_DRAWN, timeout=30_000)
    five.check("fieldwork")
    completed = int(page.inner_text(".kpis dd").strip())
    assert completed >= DEMO_RESPONDENTS * 0.5

    nav = "nav.site-nav"
    open_from_nav(five, f'{nav} a[href^="/researcher/comparison"]', r"/comparison\?", "comparison")
    everyone = respondents_in_view(page)
    if page.locator("details.filters[open]").count() == 0:  # open when a filter is set
        page.click("details.filters > summary")
    page.select_option("#f-industry", "it")
    page.click("details.filters button[type=submit]")
    page.wait_for_url(re.compile(r"industry=it"))
    page.wait_for_function(CHARTS_DRAWN, timeout=30_000)
    assert "include_demo=1" in page.url and "view=paired" not in page.url
    assert page.input_value("#f-industry") == "it"
    assert 0 < respondents_in_view(page) < everyone
    five.check("comparison-industry-it")

    # Every later page keeps the filter (the links carry it).
    open_from_nav(five, 'nav.view-switch a[href*="view=paired"]', r"view=paired", "paired")
    open_from_nav(five, f'{nav} a[href^="/researcher/ratings"]', r"/ratings\?", "ratings")
    open_from_nav(five, "table.results th[scope=row] a", r"/practice/\w+\?", "practice")
    open_from_nav(five, f'{nav} a[href^="/researcher/categories"]', r"/categories\?", "categories")
    assert "industry=it" in page.url

    open_from_nav(five, f'{nav} a[href^="/researcher/export"]', r"/export\?", "export", False)
    assert page.is_checked('form.panel input[name="include_demo"]')
    with page.expect_download() as info:
        page.click("form.panel button[type=submit]")
    download = info.value
    assert download.failure() is None
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    assert target.suffix == ".zip"
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None
        assert "responses.csv" in archive.namelist(), archive.namelist()
        with archive.open("responses.csv") as raw:
            rows = list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline="")))
    assert rows and len(rows) <= completed
    assert all(len(row) == len(rows[0]) and None not in row for row in rows)

    page.click("form.logout-form button")
    page.wait_for_url("**/researcher/login")
    five.finish()
