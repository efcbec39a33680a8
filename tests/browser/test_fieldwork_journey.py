"""Journey 7: the owner runs a wave from the browser and a respondent arrives through its link.

The owner logs in, creates a wave and a channel with the forms, copies the channel's public
link from the wave's page; a respondent opens it while the wave is not open yet (the page
says so), the owner opens the wave, the respondent comes back, consents and reaches the
background page; the owner closes the wave and a newcomer meets the closed page. In Russian
and in English (switched with the site's language link), at phone and desktop widths, every
page audited with axe-core and saved as a screenshot.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import DESKTOP, PHONE, RESEARCHER_EMAIL

TEXT = {
    "ru": {
        "not_open": "Опрос ещё не начался",
        "closed": "Опрос завершён",
        "background": "Ваш опыт работы",
        "state_open": "Открыта",
        "state_closed": "Закрыта",
    },
    "en": {
        "not_open": "The survey is not open yet",
        "closed": "The survey is closed",
        "background": "Your work background",
        "state_open": "Open",
        "state_closed": "Closed",
    },
}


def in_language(journey, lang: str) -> None:
    """Switch the page to ``lang`` with the site's language link, if it is not in it."""
    page = journey.page
    if page.get_attribute("html", "lang") == lang:
        return
    page.click(f'nav.lang-switch a[hreflang="{lang}"]')
    page.wait_for_selector(f'html[lang="{lang}"]', state="attached")


def state_shown(page) -> str:
    """The wave's state as its page shows it (the first of its key figures)."""
    return page.inner_text(".kpis div:first-child dd").strip()


@pytest.mark.parametrize(
    ("lang", "viewport"),
    [("ru", PHONE), ("en", PHONE), ("ru", DESKTOP), ("en", DESKTOP)],
    ids=["ru-phone", "en-phone", "ru-desktop", "en-desktop"],
)
def test_owner_creates_a_wave_and_a_channel_and_a_respondent_arrives(
    journey, live_server, lang, viewport
):
    width = "phone" if viewport is PHONE else "desktop"
    code = f"j-{lang}-{width}"
    text = TEXT[lang]
    owner = journey(f"7-fieldwork-{lang}-{width}-owner", viewport=viewport)
    page = owner.page

    # --- the owner logs in (in their language) and creates the wave with the form
    page.goto("/researcher/waves/")
    page.wait_for_url("**/researcher/login?**")
    in_language(owner, lang)
    owner.check("login")
    page.fill("#email", RESEARCHER_EMAIL)
    page.fill("#password", live_server.password)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/researcher/waves/$"))
    in_language(owner, lang)
    owner.check("waves")
    page.fill("#wave-code", code)
    page.fill("#wave-name-ru", f"Волна {code}")
    page.fill("#wave-name-en", f"Wave {code}")
    page.fill("#wave-target", "200")
    page.click("form.wave-form button[type=submit]")
    page.wait_for_url(re.compile(rf"/researcher/waves/{code}$"))
    assert page.get_attribute("html", "lang") == lang
    owner.check("wave-created")

    # --- a channel with the form; its link copied from the page
    page.fill("#channel-label", "linkedin")
    page.click('form[action$="/channels"] button[type=submit]')
    page.wait_for_url(re.compile(rf"/researcher/waves/{code}#channels$"))
    row = page.locator("table.channels-table tr", has=page.locator('th:text-is("linkedin")'))
    link = row.locator("a.channel-link").inner_text().strip()
    assert re.fullmatch(re.escape(live_server.url) + r"/s/[\w-]{16,}", link), link
    assert row.locator("a.channel-link").get_attribute("href") == link
    owner.check("channel-created")
    [(wave_id, state_opens)] = live_server.query(
        "SELECT id, opens_at FROM wave WHERE code = ?", (code,)
    )
    assert state_opens is None  # created, not open yet
    slug = link.rsplit("/", 1)[1]
    [(channel_id, label, channel_wave)] = live_server.query(
        "SELECT id, label, wave_id FROM channel WHERE slug = ?", (slug,)
    )
    assert (label, channel_wave) == ("linkedin", wave_id)

    # --- a respondent who opens the link early is told the survey is not open yet
    respondent = journey(f"7-fieldwork-{lang}-{width}-respondent", viewport=viewport)
    visitor = respondent.page
    visitor.goto(link)
    in_language(respondent, lang)
    assert text["not_open"] in visitor.inner_text("h1")
    assert visitor.locator("form.consent-form").count() == 0
    respondent.check("not-open-yet")

    # --- the owner opens the wave now
    page.click('form[action$="/open"] button.primary')
    page.wait_for_url(re.compile(rf"/researcher/waves/{code}$"))
    assert state_shown(page) == text["state_open"]
    owner.check("wave-open")

    # --- the respondent comes back through the link, consents, reaches the background
    before = live_server.last_response_id()
    visitor.goto(link)
    visitor.wait_for_selector("form.consent-form")
    assert visitor.get_attribute("html", "lang") == lang
    respondent.check("consent")
    respondent.consent()
    assert text["background"] in visitor.inner_text("h1")
    respondent.check("background")
    stored = live_server.query(
        "SELECT status, wave_id, channel_id, language FROM response WHERE id > ? AND is_demo = 0",
        (before,),
    )
    assert stored == [("draft", wave_id, channel_id, lang)]
    counts = dict(
        live_server.query(
            "SELECT event, SUM(count) FROM channel_day WHERE channel_id = ? GROUP BY event",
            (channel_id,),
        )
    )
    # The early visit (and its language switch, which reloads the link), the return; one
    # consent.
    assert counts == {"opened": 2 + (lang != "ru"), "consented": 1}

    # --- the owner closes the wave; a newcomer meets the closed page, nothing is stored
    page.click('form[action$="/close"] button.danger')
    page.wait_for_url(re.compile(rf"/researcher/waves/{code}$"))
    assert state_shown(page) == text["state_closed"]
    owner.check("wave-closed")
    newcomer = respondent.reopen()
    newcomer.goto(link)
    in_language(respondent, lang)
    assert text["closed"] in newcomer.inner_text("h1")
    assert newcomer.locator("form.consent-form").count() == 0
    respondent.check("closed")
    assert live_server.query(
        "SELECT COUNT(*) FROM response WHERE id > ? AND is_demo = 0", (before,)
    ) == [(1,)]

    owner.finish()
    respondent.finish()
