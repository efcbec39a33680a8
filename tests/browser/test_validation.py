"""Journey 6: errors are shown next to the field and in a summary that receives the focus."""

from __future__ import annotations

import re

from tests.browser.conftest import PHONE

ACTIVE_ID = "() => document.activeElement && document.activeElement.id"


def assert_error_shown(page, field_id: str) -> None:
    """The message sits inside the field's group, linked by aria-describedby, and in the summary."""
    error = page.locator(f"#{field_id} #{field_id}-error")
    assert error.is_visible() and error.inner_text().strip()
    assert f"{field_id}-error" in (page.get_attribute(f"#{field_id}", "aria-describedby") or "")
    link = page.locator(f'#error-summary a[href="#{field_id}-0"]')
    assert link.count() == 1 and link.is_visible()


def test_errors_next_to_the_field_and_in_the_focused_summary(journey):
    six = journey("6-validation-phone", viewport=PHONE)
    page = six.page
    page.goto("/")
    page.click("form.consent-form button[type=submit]")  # without ticking the box
    page.wait_for_selector("#error-summary")
    assert page.evaluate(ACTIVE_ID) == "error-summary"
    assert page.is_visible("#agree-error")
    assert page.is_visible("#adult-error")  # the 18-or-older box is required too
    six.check("consent-error")
    page.click('#error-summary a[href="#agree"]')
    assert page.evaluate(ACTIVE_ID) == "agree"
    six.consent()
    six.profile(worked_in="both")
    first_page = page.url  # the respondent's own first page (the order is random)

    cells = six.cells()
    first, kind = cells[0]
    second = next(practice for practice, _ in cells if practice != first)
    page.check(f'input[name="{first}__{kind}__met"][value="applied"]')  # and no rating
    assert page.is_visible(f"fieldset#{first}__{kind}__rating")
    for practice_id, other_kind in cells[1:]:
        if practice_id != second:
            met, rating = six.plan(practice_id, other_kind)
            page.check(f'input[name="{practice_id}__{other_kind}__met"][value="{met}"]')
            if rating:
                page.check(f'input[name="{practice_id}__{other_kind}__rating"][value="{rating}"]')
    six.next_button().click()
    page.wait_for_selector("#error-summary")
    assert page.url == first_page

    assert page.evaluate(ACTIVE_ID) == "error-summary"
    missing = [f"{first}__{kind}__rating"]
    missing += [f"{second}__{k}__met" for p, k in cells if p == second]
    for field_id in missing:
        assert_error_shown(page, field_id)
    assert page.locator("#error-summary li").count() == len(missing)
    assert page.is_checked(f'input[name="{first}__{kind}__met"][value="applied"]')  # kept
    six.check("page-1-errors")

    for field_id in reversed(missing):
        page.click(f'#error-summary a[href="#{field_id}-0"]')
        assert page.evaluate(ACTIVE_ID) == f"{field_id}-0"
        assert page.locator(f"#{field_id}-0").is_visible()

    six.answer_page()
    six.submit_and_wait(six.next_button(), re.compile(r"/page/\d+$"))
    assert page.url != first_page
    assert page.locator("#error-summary").count() == 0
    six.check("page-2")
    six.finish()
