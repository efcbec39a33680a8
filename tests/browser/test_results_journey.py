"""Journey 8: a respondent finishes the survey and sees how their experience compares.

In Russian at phone width: right after submitting, the wave has too few real responses (the
study served is the demo one, which never counts), so the comparison page says how many
more are needed and offers the personal link; once the wave has enough real responses it
shows the respondent's own answers beside everyone's shares. In English at desktop width
the same, with the study already large enough. Another browser sees no personal answer,
and the wave's public summary, once published, shows the aggregate only.
Every page is audited with axe-core and screenshotted; every share and interval is checked
against a recount of the server's database and statsmodels' Wilson interval.

The server of these journeys is shared with the others (its setting ``RESULTS_MIN_N`` is the
default 100), so enough of its demo respondents are turned real for the length of a journey
and turned back afterwards.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing, contextmanager

from statsmodels.stats.proportion import proportion_confint

from survey.questions import EXISTED, MET_LABELS
from tests.browser.conftest import CATALOG, DESKTOP, FICTITIOUS, PHONE

RESULTS_MIN_N = 100  # the server's setting: the default
MIN_CELL = 10  # the server's setting: the default
TURNED_REAL = 150
TEXT = {
    "ru": {
        "offer": "Как ваш опыт соотносится с другими?",
        "needed": re.compile(r"^Ещё нужно ответов: (не меньше )?(\d+)$"),
        "met": "вы её встречали",
        "too_few": "Пока слишком мало ответов",
        "wave": "Респондентов в этой волне: {}",
    },
    "en": {
        "offer": "How does your experience compare?",
        "needed": re.compile(r"^Responses still needed: (at least )?(\d+)$"),
        "met": "you met it",
        "too_few": "Not enough answers yet",
        "wave": "Respondents in this wave: {}",
    },
}


@contextmanager
def real_study(server, count: int = TURNED_REAL):
    """``count`` of the server's demo respondents turned real for a while, then back."""
    with closing(sqlite3.connect(server.database, timeout=30)) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM response WHERE is_demo = 1 AND status = 'submitted' "
                "AND quality_flag IS NULL ORDER BY id LIMIT ?",
                (count,),
            )
        ]
        assert len(ids) == count
        marks = ",".join("?" * len(ids))
        with conn:
            conn.execute(f"UPDATE response SET is_demo = 0 WHERE id IN ({marks})", ids)  # noqa: S608
        try:
            yield
        finally:
            with conn:
                conn.execute(f"UPDATE response SET is_demo = 1 WHERE id IN ({marks})", ids)  # noqa: S608


def wave_of(server, response_id: int) -> int:
    return server.query("SELECT wave_id FROM response WHERE id = ?", (response_id,))[0][0]


def real_respondents(server, wave_id: int) -> int:
    return server.query(
        "SELECT count(*) FROM response WHERE status = 'submitted' AND is_demo = 0 "
        "AND quality_flag IS NULL AND wave_id = ?",
        (wave_id,),
    )[0][0]


def recount(server, wave_id: int, practice_id: str, kind: str) -> tuple[int, int]:
    """(yes, yes + no) about a kind for a practice, on the answer rows of the submitted,
    real, unflagged responses of the wave."""
    rows = dict(
        server.query(
            "SELECT a.met, count(*) FROM answer a JOIN response r ON r.id = a.response_id "
            "WHERE r.status = 'submitted' AND r.is_demo = 0 AND r.quality_flag IS NULL "
            "AND r.wave_id = ? AND a.practice_id = ? AND a.company_kind = ? GROUP BY a.met",
            (wave_id, practice_id, kind),
        )
    )
    yes = sum(rows.get(code, 0) for code in EXISTED)
    return yes, yes + rows.get("no", 0)


def new_response(journey, before: int) -> int:
    [(response_id, status, *_rest)] = journey.server.query(
        "SELECT id, status FROM response WHERE id > ? AND is_demo = 0", (before,)
    )
    assert status == "submitted"
    return response_id


def open_comparison(journey, lang: str) -> None:
    """From the thank-you page, follow its offer to the comparison."""
    page = journey.page
    offer = page.locator(".compare-offer")
    assert TEXT[lang]["offer"] in offer.inner_text()
    offer.locator("a").click()
    page.wait_for_url("**/compare")
    assert page.get_attribute("html", "lang") == lang


def needed_shown(page, lang: str) -> tuple[bool, int]:
    """(at least?, how many) the below-threshold page says are still needed."""
    match = TEXT[lang]["needed"].match(page.inner_text("#responses-needed").strip())
    assert match, page.inner_text("#responses-needed")
    return bool(match.group(1)), int(match.group(2))


def check_below(journey, lang: str, wave_id: int) -> None:
    """The page below the threshold: how many more, the personal link, no numbers."""
    page = journey.page
    n = real_respondents(journey.server, wave_id)
    assert n < RESULTS_MIN_N
    at_least, needed = needed_shown(page, lang)
    if n < MIN_CELL:  # the gate tells no count of so small a wave, only a bound
        assert (at_least, needed) == (True, RESULTS_MIN_N - MIN_CELL + 1)
    else:
        assert (at_least, needed) == (False, RESULTS_MIN_N - n)
    assert page.input_value("input.resume-link").startswith(journey.server.url + "/resume/")
    assert page.locator(".share-text, .own-answer").count() == 0


def check_comparison(journey, lang: str, wave_id: int) -> None:
    """The respondent's own answers marked in text, every share and interval as recounted."""
    page = journey.page
    n_wave = real_respondents(journey.server, wave_id)
    assert n_wave >= RESULTS_MIN_N
    assert TEXT[lang]["wave"].format(n_wave) in page.inner_text(".sample-line")
    checked = 0
    for (practice_id, kind), (met, _rating) in journey.answers.items():
        if practice_id in FICTITIOUS:
            assert page.locator(f"#compare-{practice_id}").count() == 0
            continue
        own = page.inner_text(f"#own-{practice_id}-{kind}")
        assert MET_LABELS[met].label(lang) in own, (practice_id, kind, own)
        assert (TEXT[lang]["met"] in own) == (met in EXISTED), own
        shown = page.inner_text(f"#share-{practice_id}-{kind}")
        k, n = recount(journey.server, wave_id, practice_id, kind)
        if n < MIN_CELL:
            assert TEXT[lang]["too_few"] in shown and "%" not in shown
            continue
        share, ninety_five, low, high, answers = (int(x) for x in re.findall(r"\d+", shown))
        ci_low, ci_high = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert (ninety_five, answers) == (95, n), shown
        for got, exact in ((share, k / n), (low, ci_low), (high, ci_high)):
            assert abs(got - 100 * exact) <= 0.5 + 1e-9, (practice_id, kind, shown)
        checked += 1
    assert checked > len(CATALOG.practices) // 2
    kinds = {kind for _pid, kind in journey.answers}
    for practice in CATALOG.practices[:3]:  # a kind not worked in: everyone's share only
        for kind in {"ru", "foreign"} - kinds:
            assert page.locator(f"#own-{practice.id}-{kind}").count() == 0
            assert page.locator(f"#share-{practice.id}-{kind}").count() == 1


def read_about(journey, lang: str) -> None:
    """Open one practice's "what is it" and see its description and a source."""
    practice = CATALOG.practices[0]
    details = journey.page.locator(f"#compare-{practice.id} details.compare-about")
    assert not details.locator("p").first.is_visible()
    details.locator("summary").click()
    assert practice.description.get(lang) in details.inner_text()
    sources = [CATALOG.sources[s].citation() for s in practice.sources]
    assert any(source in details.inner_text() for source in sources)


@contextmanager
def published(server, wave_id: int):
    """The wave's public summary switched on for a while (an owner's switch), then off."""
    with closing(sqlite3.connect(server.database, timeout=30)) as conn:
        with conn:
            conn.execute("UPDATE wave SET results_public = 1 WHERE id = ?", (wave_id,))
        try:
            yield server.query("SELECT code FROM wave WHERE id = ?", (wave_id,))[0][0]
        finally:
            with conn:
                conn.execute("UPDATE wave SET results_public = 0 WHERE id = ?", (wave_id,))


def public_summary(journey, lang: str, wave_id: int) -> None:
    """Another browser opens the wave's public summary: the aggregate only (the sample
    size, shares recounted from the database), no personal answer, share metadata."""
    with published(journey.server, wave_id) as code:
        page = journey.reopen()
        page.goto(f"/results/{code}?lang={lang}")
        assert page.get_attribute("html", "lang") == lang
        n_wave = real_respondents(journey.server, wave_id)
        assert page.get_attribute("data.pub-n", "value") == str(n_wave)
        assert page.locator(".own-answer, .compare-offer, input.resume-link").count() == 0
        image = page.get_attribute('meta[property="og:image"]', "content")
        assert image.startswith(journey.server.url + f"/results/{code}/card.png")
        rows = page.locator("li.pub-row")
        assert rows.count() > 0
        practice_id = rows.first.get_attribute("data-practice")
        text = rows.first.inner_text()
        for kind in ("ru", "foreign"):
            k, n = recount(journey.server, wave_id, practice_id, kind)
            assert f"{round(100 * k / n)}" in text, (practice_id, kind, text)
        journey.check("public-summary")


def others_see_nothing(journey) -> None:
    """A new browser (no session) asking for the page lands on the survey's start."""
    page = journey.reopen()
    page.goto("/compare")
    page.wait_for_url(re.compile(r"/$"))
    assert page.locator(".own-answer, .share-text").count() == 0


def test_russian_phone_respondent_sees_how_their_experience_compares(journey, live_server):
    one = journey("8-results-ru-phone", viewport=PHONE)
    page = one.page
    before = live_server.last_response_id()
    page.goto("/")
    assert page.get_attribute("html", "lang") == "ru"
    one.consent()
    one.profile(worked_in="both")
    one.practice_pages()
    one.review_and_submit()
    wave_id = wave_of(live_server, new_response(one, before))

    open_comparison(one, "ru")
    check_below(one, "ru", wave_id)
    one.check("compare-below-threshold")

    with real_study(live_server):
        page.reload()
        check_comparison(one, "ru", wave_id)
        one.check("compare")
        read_about(one, "ru")
        one.check("compare-about-open")
        others_see_nothing(one)
        one.check("another-browser")
        public_summary(one, "ru", wave_id)
    one.finish()


def test_english_desktop_respondent_sees_how_their_experience_compares(journey, live_server):
    two = journey("8-results-en-desktop", viewport=DESKTOP)
    page = two.page
    before = live_server.last_response_id()
    with real_study(live_server):
        page.goto("/")
        page.click('nav.lang-switch a[hreflang="en"]')
        page.wait_for_selector('html[lang="en"]', state="attached")
        two.consent()
        two.profile(worked_in="ru_only", region=None)
        two.practice_pages()
        two.review_and_submit()
        wave_id = wave_of(live_server, new_response(two, before))
        open_comparison(two, "en")
        check_comparison(two, "en", wave_id)
        two.check("compare")
        read_about(two, "en")
        two.check("compare-about-open")
        others_see_nothing(two)
        public_summary(two, "en", wave_id)
    two.finish()
