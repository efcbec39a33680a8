"""Journey 9: every main page speaks the language it is in.

A respondent (consent to the comparison of their answers, and the public results) and a
researcher (every dashboard page, the wave and team pages, the questionnaire preview) walk
the site once in English and once in Russian, switched with the site's language link, at
desktop width; every page is audited with axe-core and screenshotted as in the other
journeys. The rule checked on every page:

- an English page shows no Cyrillic letter;
- a Russian page shows no English interface string, that is no msgid of the message
  catalogue (``survey/translations/ru/LC_MESSAGES/messages.po``) whose translation differs
  from it (placeholders such as ``%(n)d`` match any short text).

"Shows" covers the text of the document (its ``<title>`` included, hidden text included:
a screen reader reads it), the ``aria-label``, ``title``, ``placeholder`` and ``alt``
attributes, and the strings of the charts' JSON (their hover texts). Two things are not
interface text and are left out: an element whose ``lang`` attribute names another
language (the language switch's "Русский" / "English", the questionnaire-language filter's
options), and respondents' own free text (``.example-text`` on the review page,
``.examples`` on a practice's dashboard page), which stays in the language it was typed in.
plotly.js's own chart controls (``.modebar``: "Download plot as a PNG"...) are not this
application's messages either and are left out too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from tests.browser.conftest import CATALOG, DESKTOP, FICTITIOUS, RESEARCHER_EMAIL

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT / "survey" / "translations" / "ru" / "LC_MESSAGES" / "messages.po"
CYRILLIC = re.compile(r"[А-Яа-яЁё]")
# Respondents' own words; the journeys type them in the other language on purpose.
FREE_TEXT = ".examples, .example-text"
# plotly.js's own chart controls (its mode bar), not a message of this application.
LIBRARY = ".modebar"
EXAMPLE = {
    "en": "Премия за квартал, без бюрократии",  # typed on the English questionnaire
    "ru": "A quarterly bonus, no paperwork",  # typed on the Russian one
}
NEXT_STEP = re.compile(r"/(page/\d+|review)$")
CHARTS_DRAWN = """() => [...document.querySelectorAll("div.chart")]
  .every((c) => c.querySelector(".main-svg"))"""

# The texts a page shows, one entry per text node or attribute, as (where, text).
SHOWN_TEXT = """([freeText, library]) => {
  const pageLang = document.documentElement.lang;
  const foreign = (el) => {
    const owner = el.closest("[lang]");
    return owner !== null && owner.lang !== pageLang;
  };
  const skipped = (el) =>
    el.closest(freeText) !== null || el.closest(library) !== null || foreign(el);
  const out = [];
  const walker = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || el.closest("script, style, template") || skipped(el)) continue;
    const text = node.textContent.replace(/\\s+/g, " ").trim();
    if (text) out.push([el.tagName.toLowerCase(), text]);
  }
  for (const el of document.querySelectorAll("[aria-label], [title], [placeholder], [alt]")) {
    if (skipped(el)) continue;
    for (const name of ["aria-label", "title", "placeholder", "alt"]) {
      const value = el.getAttribute(name);
      if (value) out.push([`@${name}`, value]);
    }
  }
  const strings = (value, found) => {
    if (typeof value === "string") found.push(value);
    else if (Array.isArray(value)) value.forEach((v) => strings(v, found));
    else if (value && typeof value === "object") {
      Object.values(value).forEach((v) => strings(v, found));
    }
    return found;
  };
  for (const script of document.querySelectorAll('script[type="application/json"]')) {
    // a chart's figure: leave plotly's own theme out, keep data and layout texts
    const figure = JSON.parse(script.textContent);
    const layout = Object.assign({}, figure.layout || {});
    delete layout.template;
    for (const text of strings([figure.data || [], layout], [])) {
      if (text.trim()) out.push([`#${script.id}`, text]);
    }
  }
  return out;
}"""


def english_messages() -> list[tuple[str, re.Pattern]]:
    """(msgid, pattern) of every catalogue message whose Russian text differs from it and
    that has a word of its own (not "pp", not "%(n)s%%"), which could not be a coincidence."""
    with MESSAGES.open("rb") as fh:
        catalog = read_po(fh, locale="ru")
    found = []
    for message in catalog:
        if not message.id or not isinstance(message.id, str) or message.string == message.id:
            continue
        literal = re.split(r"%\(\w+\)[sdf]", message.id)
        if not re.search(r"[A-Za-z]{3}", "".join(literal)):
            continue
        pieces = [re.escape(piece) for piece in literal]
        text = r".{1,24}?".join(pieces).replace("%%", "%")
        found.append((message.id, re.compile(r"(?<!\w)" + text + r"(?!\w)")))
    return found


ENGLISH = english_messages()


def wrong_language(page, lang: str) -> list[str]:
    """What the page shows in the other language, against the rule of this module."""
    shown = page.evaluate(SHOWN_TEXT, [FREE_TEXT, LIBRARY])
    if lang == "en":
        return sorted({f"{where}: {text[:120]}" for where, text in shown if CYRILLIC.search(text)})
    return sorted(
        {
            f"{where}: {msgid[:80]!r} in {text[:120]!r}"
            for where, text in shown
            for msgid, pattern in ENGLISH
            if pattern.search(text)
        }
    )


class Walk:
    """A journey that checks the language of every page it audits."""

    def __init__(self, journey, lang: str):
        self.journey = journey
        self.lang = lang
        self.found: list[str] = []

    @property
    def page(self):
        return self.journey.page

    def switch(self) -> None:
        """Switch the site to this walk's language with its language link."""
        page = self.page
        if page.get_attribute("html", "lang") != self.lang:
            page.click(f'nav.lang-switch a[hreflang="{self.lang}"]')
            page.wait_for_selector(f'html[lang="{self.lang}"]', state="attached")

    def check(self, label: str) -> None:
        """Audit the page as the journeys do, then note what it shows in the wrong language."""
        assert self.page.get_attribute("html", "lang") == self.lang, self.page.url
        self.page.wait_for_function(CHARTS_DRAWN, timeout=30_000)  # their axes' texts too
        self.journey.check(label)
        self.found += [
            f"{label} ({self.page.url}): {line}" for line in wrong_language(self.page, self.lang)
        ]

    def visit(self, path: str, label: str) -> None:
        response = self.page.goto(path)
        assert response is not None and response.status == 200, (path, response and response.status)
        self.check(label)

    def finish(self) -> None:
        assert not self.found, (
            f"{len(self.found)} text(s) in the wrong language on {self.lang} pages:\n"
            + "\n".join(self.found)
        )
        self.journey.finish()


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_every_respondent_page_is_in_its_language(journey, live_server, lang):
    walk = Walk(journey(f"9-language-{lang}-respondent", viewport=DESKTOP), lang)
    page, one = walk.page, walk.journey
    page.goto("/")
    walk.switch()
    walk.check("consent")
    one.consent()
    walk.check("profile")
    one.profile(worked_in="both")
    walk.check("first-practice-page")
    one.answer_page(example=EXAMPLE[lang])
    one.submit_and_wait(one.next_button(), NEXT_STEP)
    while re.search(r"/page/\d+$", page.url):
        one.answer_page()
        one.submit_and_wait(one.next_button(), NEXT_STEP)
    walk.check("review")
    assert EXAMPLE[lang] in page.locator(".example-text").all_inner_texts()  # free text
    one.submit_and_wait(page.locator("form.submit-form button[type=submit]"), "**/thanks")
    walk.check("thanks")
    walk.visit("/compare", "compare")
    walk.visit("/withdraw", "withdraw")
    # Withdrawn again, in the page's language: the shared server keeps no real response of
    # this walk, which would otherwise hide the demo-only dashboards of journey 5 (the gate
    # never counts demo rows as cover for real ones).
    before = live_server.real_responses()
    one.submit_and_wait(page.locator("form button.danger[type=submit]"), re.compile(r"/(\?.*)?$"))
    walk.check("withdrawn")
    assert live_server.real_responses() == before - 1
    walk.finish()


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_every_researcher_page_is_in_its_language(journey, live_server, lang):
    walk = Walk(journey(f"9-language-{lang}-researcher", viewport=DESKTOP), lang)
    page = walk.page
    page.goto("/researcher/login")
    walk.switch()
    walk.check("login")
    page.fill("#email", RESEARCHER_EMAIL)
    page.fill("#password", live_server.password)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/researcher/$"))
    demo = "include_demo=1"
    practice = next(p.id for p in CATALOG.practices if p.id not in FICTITIOUS)
    waves = [code for (code,) in live_server.query("SELECT code FROM wave ORDER BY id")]
    pages = [
        (f"/researcher/?{demo}", "fieldwork"),
        (f"/researcher/comparison?{demo}", "comparison"),
        (f"/researcher/comparison?{demo}&view=paired", "paired"),
        (f"/researcher/ratings?{demo}", "ratings"),
        (f"/researcher/practice/{practice}?{demo}", "practice"),
        (f"/researcher/categories?{demo}", "categories"),
        (f"/researcher/adjusted?{demo}", "adjusted"),
        (f"/researcher/period?{demo}", "period"),
        (f"/researcher/comparison/waves?{demo}", "wave-comparison"),
        (f"/researcher/export?{demo}", "export"),
        ("/researcher/waves/", "waves"),
        (f"/researcher/waves/{waves[0]}", "wave"),
        ("/researcher/team", "team"),
        ("/researcher/preview", "preview"),
    ]
    if len(waves) > 1:
        pages.append(
            (f"/researcher/comparison/waves?{demo}&a={waves[0]}&b={waves[1]}", "waves-a-b")
        )
    for path, label in pages:
        walk.visit(path, label)
    walk.finish()
