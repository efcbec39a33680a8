"""Respondents complete the questionnaire in a real browser: phone and desktop, both languages,
keyboard only, across two browser sessions, and without JavaScript.

Every journey fills in the block of each kind of company it worked in (with JavaScript the
block of another kind hides), answers on the applied / existed / no / don't-know scale with
a rating or "mixed" after "applied", says "not applicable to my role" on a sales practice,
and is checked against the database: its answers, its blocks, and the random order it was
shown, as stored in ``question_order``."""

from __future__ import annotations

import re

from tests.browser.conftest import (
    BLOCK_ANSWERS,
    CATALOG,
    DESKTOP,
    FICTITIOUS,
    FUNCTION_PRACTICES,
    KINDS_OF,
    MET_CHOICES,
    NOT_MY_ROLE_PRACTICE,
    PHONE,
    RATING_CHOICES,
)

NEXT_STEP = re.compile(r"/(page/\d+|review)$")  # each respondent has their own page order

FOCUSED = """() => {
  const e = document.activeElement;
  return {tag: e.tagName, type: e.type || "", name: e.name || "", value: e.value || "",
          id: e.id || "", checked: Boolean(e.checked)};
}"""
EXAMPLE_RU = "Квартальная премия за результат <b>команды</b>, честно посчитанная"
EXAMPLE_EN = "A quarterly bonus for the team's result & nothing else"


def focused(page) -> dict:
    return page.evaluate(FOCUSED)


def tab_to(page, wanted, limit: int = 80) -> dict:
    """Press Tab until the focused element is the wanted one."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        element = focused(page)
        if wanted(element):
            return element
    raise AssertionError(f"Tab never reached the wanted element on {page.url}")


def checked_value(page, name: str) -> str | None:
    checked = page.locator(f'input[name="{name}"]:checked')
    return checked.get_attribute("value") if checked.count() else None


def answer_page_by_keyboard(journey, example: str) -> None:
    """Answer a whole practice page with Tab, Space and the arrow keys, then press Enter."""
    page = journey.page
    todo = set(journey.cells())
    journey.record_page()
    current = None
    for _ in range(400):
        page.keyboard.press("Tab")
        element = focused(page)
        name = element["name"]
        if element["type"] == "radio" and name.endswith("__met"):
            practice_id, kind, _ = name.rsplit("__", 2)
            met, rating = journey.plan(practice_id, kind)
            if not element["checked"]:
                page.keyboard.press("Space")  # checks the focused first option, "applied"
            for _ in range(MET_CHOICES.index(met)):
                page.keyboard.press("ArrowRight")
            assert checked_value(page, name) == met
            journey.answers[(practice_id, kind)] = (met, rating)
            todo.discard((practice_id, kind))
            current = (practice_id, kind)
        elif element["type"] == "radio" and name.endswith("__rating"):
            # Tab only reaches a rating after "applied": the script disables the others.
            assert current is not None and name == f"{current[0]}__{current[1]}__rating"
            rating = journey.answers[current][1]
            assert rating is not None, f"rating of {current} reachable although not applied"
            page.keyboard.press("Space")
            for _ in range(RATING_CHOICES.index(str(rating))):
                page.keyboard.press("ArrowDown")
            assert checked_value(page, name) == str(rating)
        elif (
            element["tag"] == "TEXTAREA"
            and not journey.examples
            and name.rsplit("__", 2)[0] not in FICTITIOUS  # its example is not kept
        ):
            page.keyboard.type(example)  # the example box of one kind: "<id>__<kind>__example"
            journey.examples[tuple(name.rsplit("__", 2)[:2])] = example
        elif element["tag"] == "BUTTON" and element["value"] == "next":
            break
    else:
        raise AssertionError("Tab never reached the submit button")
    assert not todo, f"questions never reached with Tab: {sorted(todo)}"
    here = page.url
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url != here and NEXT_STEP.search(url) is not None)


def stored_examples(server, response_id: int) -> dict[tuple[str, str], str]:
    rows = server.query(
        "SELECT practice_id, company_kind, text FROM practice_example WHERE response_id = ?",
        (response_id,),
    )
    return {(pid, kind): text for pid, kind, text in rows}


def assert_stored(journey, before: int, language: str, worked_in: str) -> int:
    """Exactly one new real response, submitted, with every answer as given, the blocks of
    the kinds worked in (and no other), and the order it was shown stored."""
    rows = journey.new_responses(before)
    assert len(rows) == 1, rows
    response_id, status, stored_language, stored_worked_in = rows[0]
    assert (status, stored_language, stored_worked_in) == ("submitted", language, worked_in)
    kinds = KINDS_OF[worked_in]
    blocks = {
        name: value if kind in kinds else None
        for kind, answers in BLOCK_ANSWERS.items()
        for name, value in answers.items()
    }
    assert journey.stored_blocks(response_id) == {"job_function": "sales", **blocks}
    assert_order_as_stored(journey, response_id, kinds)
    stored = journey.stored_answers(response_id)
    real = len(CATALOG.practices)
    assert len(stored) == 2 * real
    given = {cell: answer for cell, answer in stored.items() if answer[0] != "na"}
    # the fictitious practice was answered too, but is kept out of the answer table
    assert given == {c: a for c, a in journey.answers.items() if c[0] not in FICTITIOUS}
    assert len(journey.answers) > len(given)
    assert {given[(NOT_MY_ROLE_PRACTICE, kind)] for kind in kinds} == {("not_my_role", None)}
    ratings = {a[1] for a in given.values() if a[0] == "applied"}
    assert "mixed" in ratings and ratings & {1, 2, 3, 4, 5}  # "mixed" is stored apart
    not_applicable = {cell for cell, answer in stored.items() if answer == ("na", None)}
    if worked_in == "both":
        assert not not_applicable
    else:
        skipped_kind = "foreign" if worked_in == "ru_only" else "ru"
        assert len(given) == real and len(not_applicable) == real
        assert {kind for _, kind in not_applicable} == {skipped_kind}
    return response_id


def assert_order_as_stored(journey, response_id: int, kinds: tuple[str, ...]) -> None:
    """The pages, the practices on each and the kind asked first came in the order stored
    with the response (``question_order``), every page once."""
    stored = journey.stored_order(response_id)
    number_of = {page.key: page.number for page in CATALOG.pages}
    key_of = {number: key for key, number in number_of.items()}
    shown_pages = [number for number, _, _ in journey.shown]
    assert shown_pages == [number_of[key] for key in stored["pages"]]
    for number, practices, first_kinds in journey.shown:
        assert practices == stored["practices"][key_of[number]]
        first = stored["first_kind"]
        assert first_kinds == sorted(kinds, key=lambda kind: kind != first)


def rating_follows_the_answer(journey) -> None:
    """On a practice page, the rating shows (and can be chosen) only after "applied", and
    "not applicable to my role" is offered only for the function-marked practices."""
    page = journey.page
    cells = journey.cells()
    offered = page.eval_on_selector_all(
        'input[value="not_my_role"]', "els => els.map(e => e.name.split('__')[0])"
    )
    assert sorted(offered) == sorted(pid for pid, _ in cells if pid in FUNCTION_PRACTICES)
    practice_id, kind = next(cell for cell in cells if cell[0] not in FUNCTION_PRACTICES)
    rating = f"fieldset#{practice_id}__{kind}__rating"
    assert not page.is_visible(rating)
    page.check(f'input[name="{practice_id}__{kind}__met"][value="applied"]')
    assert page.is_visible(rating)
    page.check(f'input[name="{practice_id}__{kind}__rating"][value="5"]')
    page.check(f'input[name="{practice_id}__{kind}__met"][value="existed"]')
    assert not page.is_visible(rating)
    disabled = page.eval_on_selector_all(f"{rating} input", "els => els.map(e => e.disabled)")
    assert set(disabled) == {True}  # a rating chosen before is not sent
    journey.check("rating-hidden-after-existed")


def test_russian_phone_keyboard_only(journey, live_server):
    """Journey 1: Russian, 360 x 740, consent and a whole practice page by keyboard only."""
    one = journey("1-ru-phone-keyboard", viewport=PHONE)
    page = one.page
    before = live_server.last_response_id()
    page.goto("/")
    assert page.get_attribute("html", "lang") == "ru"
    one.check("consent")
    tab_to(page, lambda e: e["id"] == "adult")
    page.keyboard.press("Space")
    assert page.is_checked("#adult")
    tab_to(page, lambda e: e["id"] == "agree")
    page.keyboard.press("Space")
    assert page.is_checked("#agree")
    tab_to(page, lambda e: e["tag"] == "BUTTON")
    page.keyboard.press("Enter")
    page.wait_for_url("**/profile")
    one.check("profile")
    one.profile(worked_in="both")
    one.check("page-1")
    answer_page_by_keyboard(one, EXAMPLE_RU)
    rating_follows_the_answer(one)
    one.practice_pages()
    one.review_and_submit()
    assert page.input_value("input.resume-link").startswith(live_server.url + "/resume/")

    response_id = assert_stored(one, before, "ru", "both")
    assert stored_examples(live_server, response_id) == one.examples
    one.finish()


def test_english_desktop(journey, live_server):
    """Journey 2: switch to English with the language link, 1280 x 800, complete."""
    two = journey("2-en-desktop", viewport=DESKTOP)
    page = two.page
    before = live_server.last_response_id()
    page.goto("/")
    assert page.get_attribute("html", "lang") == "ru"
    page.click('nav.lang-switch a[hreflang="en"]')
    page.wait_for_selector('html[lang="en"]', state="attached")
    two.check("consent")
    two.consent()
    two.check("profile")
    two.profile(worked_in="ru_only", region=None)
    two.check("page-1")
    rating_follows_the_answer(two)
    two.answer_page(example=EXAMPLE_EN)
    two.submit_and_wait(two.next_button(), NEXT_STEP)
    two.practice_pages()
    two.review_and_submit()
    assert page.get_attribute("html", "lang") == "en"

    response_id = assert_stored(two, before, "en", "ru_only")
    assert stored_examples(live_server, response_id) == two.examples
    two.finish()


def test_resume_in_a_new_browser_context(journey, live_server):
    """Journey 3: stop after page 3, keep the resume link, finish in a fresh context."""
    three = journey("3-resume-phone", viewport=PHONE)
    page = three.page
    before = live_server.last_response_id()
    count_before = live_server.real_responses()
    page.goto("/")
    three.check("consent")
    three.consent()
    three.check("profile")
    three.profile(worked_in="foreign_only")
    three.practice_pages(until=3)
    stopped = page.url  # the 4th page of this respondent's own order
    assert re.search(r"/page/\d+$", stopped), stopped
    page.click("details.draft-tools summary")
    link = page.input_value("input.resume-link")
    assert re.fullmatch(re.escape(live_server.url) + r"/resume/[\w-]+", link), link
    three.check("page-4-continue-later")

    page = three.reopen()
    page.goto("/")
    assert page.locator("form.consent-form").count() == 1  # a new browser knows nothing
    page.goto(link)  # opening the link only asks; the button takes the draft over
    assert page.locator("form.resume-form").count() == 1
    three.check("resume-confirm")
    page.click("form.resume-form button[type=submit]")
    page.wait_for_url(stopped)  # the same order in the new browser
    page.click("details.draft-tools summary")
    new_link = page.input_value("input.resume-link")
    assert new_link != link and new_link.startswith(live_server.url + "/resume/")
    three.practice_pages()
    three.review_and_submit()

    assert live_server.real_responses() == count_before + 1
    assert_stored(three, before, "ru", "foreign_only")
    three.finish()


def test_without_javascript(journey, live_server):
    """Journey 4: scripts disabled; ratings are shown everywhere, one sent with 'no' is dropped."""
    four = journey("4-no-javascript-desktop", viewport=DESKTOP, java_script_enabled=False)
    page = four.page
    before = live_server.last_response_id()
    page.goto("/")
    four.check("consent")
    four.consent()
    four.check("profile")
    four.profile(worked_in="both")

    four.check("page-1")
    cells = four.cells()
    for practice_id, kind in cells:
        assert page.is_visible(f"fieldset#{practice_id}__{kind}__met")
        assert page.is_visible(f"fieldset#{practice_id}__{kind}__rating")
    four.answer_page()
    practice_id, kind = next(  # a real practice: the fictitious one's answers are kept apart
        cell for cell in cells if four.answers[cell][0] == "no" and cell[0] not in FICTITIOUS
    )
    page.check(f'input[name="{practice_id}__{kind}__rating"][value="4"]')
    four.submit_and_wait(four.next_button(), NEXT_STEP)
    while re.search(r"/page/\d+$", page.url):
        number = page.url.rsplit("/", 1)[1]
        four.check(f"page-{number}")
        ratings = page.locator("fieldset.rating")
        assert ratings.count() == len(four.cells()) > 0
        for index in range(ratings.count()):
            assert ratings.nth(index).is_visible()
        four.answer_page()
        four.submit_and_wait(four.next_button(), re.compile(r"/(page/\d+|review)$"))
    four.review_and_submit()

    response_id = assert_stored(four, before, "ru", "both")
    assert four.stored_answers(response_id)[(practice_id, kind)] == ("no", None)
    four.finish()
