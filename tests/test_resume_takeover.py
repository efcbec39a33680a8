"""A personal link takes the answers away from every other browser, and only when confirmed.

The attack: someone starts a draft, sends its resume link to a victim, waits for the
victim to answer and then reads the background and examples at /review with the session
that still holds the same token. Opening the link (and confirming) must lock them out.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from urllib.parse import urlsplit

from sqlalchemy import select

from survey import responses
from survey.extensions import db
from survey.models import Response
from tests.helpers import PROFILE, Respondent, csrf_token, open_resume_link

LINK_RE = re.compile(r'<input class="resume-link"[^>]*value="([^"]+)"')
LINK_REFUSED = "Ссылка недействительна или её срок истёк."
LOCKED_OUT = "больше не открыты в этом браузере"
TAKEN_OVER = "Теперь опрос продолжается только в этом браузере"
OTHER_DRAFT_WARNING = "В этом браузере уже открыт другой незаконченный опрос"
BOTH = ("ru", "foreign")


def link_on(client, path: str) -> str:
    """The personal link a page shows, as a path."""
    match = LINK_RE.search(client.get(path).text)
    assert match, f"{path} shows no personal link"
    return urlsplit(match.group(1)).path


def token_hashes(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Response.resume_token_hash).order_by(Response.id)))


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def attacker_with_a_draft(app):
    """The attacker consents and keeps the draft's link to send to someone else."""
    attacker = app.test_client()
    Respondent(attacker).consent()
    return attacker, link_on(attacker, "/profile")


def test_the_victim_takes_the_draft_over_and_the_attacker_reads_nothing(app):
    catalog = app.extensions["survey_catalog"]
    attacker, link = attacker_with_a_draft(app)
    marker = f"victim-example-{uuid.uuid4().hex}"

    victim = app.test_client()
    r = open_resume_link(victim, link, follow=True)
    assert r.request.path == "/profile"
    assert TAKEN_OVER in r.text  # said in the respondent's language
    respondent = Respondent(victim)
    assert respondent.profile(industry="finance", region="abroad").status_code == 302
    first = catalog.pages[0]
    examples = {first.practices[0].id: marker}
    assert respondent.answer_page(first, BOTH, examples=examples).status_code == 302
    assert marker in victim.get("/review").text

    # the attacker's session still holds the old token: it opens nothing any more
    for path in ("/review", "/profile", f"/page/{first.number}", "/withdraw", "/thanks"):
        r = attacker.get(path)
        assert r.status_code == 302 and urlsplit(r.location).path == "/", path
    r = attacker.get("/review", follow_redirects=True)
    assert LOCKED_OUT in r.text
    assert marker not in r.text and "Финансы" not in r.text
    # ... nor does the link it kept, opened again or confirmed
    for opener in (attacker, app.test_client()):
        r = opener.get(link, follow_redirects=True)
        assert r.request.path == "/" and LINK_REFUSED in r.text
        form = {"csrf_token": csrf_token(opener.get("/").text)}
        r = opener.post(link, data=form, follow_redirects=True)
        assert r.request.path == "/" and LINK_REFUSED in r.text
    assert marker not in attacker.get("/page/1", follow_redirects=True).text

    # the victim got a new link, and it is the one the database knows
    new_link = link_on(victim, "/review")
    assert new_link != link
    assert token_hashes(app) == [sha256(new_link.rsplit("/", 1)[1])]
    assert marker in victim.get("/review").text


def test_opening_the_link_without_confirming_changes_nothing(app):
    attacker, link = attacker_with_a_draft(app)
    before = token_hashes(app)
    scanner = app.test_client()  # a mail scanner or a messenger preview
    for method in (scanner.get, scanner.head, scanner.get):
        assert method(link).status_code == 200
    page = scanner.get(link).text
    assert 'class="resume-form"' in page and "Продолжить опрос в этом браузере?" in page
    assert OTHER_DRAFT_WARNING not in page
    with scanner.session_transaction() as session:
        assert "resume_token" not in session
    assert token_hashes(app) == before
    assert scanner.get("/profile").location == "/"  # the scanner holds nothing
    assert attacker.get("/profile").status_code == 200  # the holder is not locked out
    assert link_on(attacker, "/profile") == link


def test_a_browser_with_another_draft_is_asked_before_it_is_replaced(app):
    owner, link = attacker_with_a_draft(app)
    mine = app.test_client()
    Respondent(mine).consent()
    my_link = link_on(mine, "/profile")

    page = mine.get(link)
    assert page.status_code == 200
    assert OTHER_DRAFT_WARNING in page.text and 'class="resume-form"' in page.text
    assert link_on(mine, "/profile") == my_link  # asking changed nothing

    r = mine.post(link, data={"csrf_token": csrf_token(page.text)})
    assert r.status_code == 302 and r.location == "/profile"
    now_here = link_on(mine, "/profile")
    assert now_here not in (link, my_link)
    assert owner.get("/profile").location == "/"
    # the replaced draft is still stored and still opens with its own link
    assert len(token_hashes(app)) == 2
    assert open_resume_link(app.test_client(), my_link).location == "/profile"


def test_opening_ones_own_link_in_the_same_browser_just_continues(app):
    owner, link = attacker_with_a_draft(app)
    before = token_hashes(app)
    r = owner.get(link)
    assert r.status_code == 302 and r.location == "/profile"
    assert token_hashes(app) == before


def test_a_submitted_responses_link_is_rotated_too(app):
    catalog = app.extensions["survey_catalog"]
    respondent = app.test_client()
    assert Respondent(respondent).complete(catalog).location.endswith("/thanks")
    link = link_on(respondent, "/thanks")
    # a copy of the session: a shared computer, a stolen cookie, the attacker's own draft
    copy = app.test_client()
    name = app.config["SESSION_COOKIE_NAME"]
    copy.set_cookie(
        name, respondent.get_cookie(name, domain="survey.test").value, domain="survey.test"
    )
    assert copy.get("/thanks").status_code == 200

    later = app.test_client()
    r = open_resume_link(later, link, follow=True)
    assert r.request.path == "/thanks"
    assert "Теперь ваши ответы открыты только в этом браузере" in r.text
    new_link = link_on(later, "/thanks")
    assert new_link != link
    assert later.get("/withdraw").status_code == 200

    for holder in (copy, respondent):
        assert holder.get("/thanks").location == "/"
        assert holder.get("/withdraw").location == "/"
        form = {"csrf_token": csrf_token(holder.get("/").text)}
        assert holder.post("/withdraw", data=form).location == "/"
    assert token_hashes(app) == [sha256(new_link.rsplit("/", 1)[1])]


def test_the_confirmation_and_the_message_follow_the_language(app):
    _, link = attacker_with_a_draft(app)
    victim = app.test_client()
    Respondent(victim, lang="en")
    page = victim.get(link)
    assert "Continue the survey in this browser?" in page.text
    assert "stops working in any other browser" in page.text
    r = victim.post(link, data={"csrf_token": csrf_token(page.text)}, follow_redirects=True)
    assert "The survey now continues in this browser only." in r.text


def test_a_confirmation_needs_the_csrf_token(app):
    owner, link = attacker_with_a_draft(app)
    before = token_hashes(app)
    forged = app.test_client()
    forged.get(link)
    assert forged.post(link, data={}).status_code == 400
    assert forged.post(link, data={"csrf_token": "x" * 40}).status_code == 400
    assert token_hashes(app) == before
    assert owner.get("/profile").status_code == 200


def test_of_two_simultaneous_takeovers_only_one_wins(app):
    _, link = attacker_with_a_draft(app)
    token = link.rsplit("/", 1)[1]
    with app.app_context():
        stale = responses.find(token)  # as a second worker loaded it
        db.session.expunge(stale)
    with app.app_context():
        first = responses.take_over(responses.find(token))
        assert first is not None and first != token
    with app.app_context():
        assert responses.take_over(stale) is None  # the loser gets nothing
        assert responses.find(token) is None
        assert responses.find(first) is not None
    assert token_hashes(app) == [sha256(first)]


def test_the_victims_background_is_not_in_the_attackers_pages(app):
    """The background alone (no example) is as private: compare the review pages."""
    attacker, link = attacker_with_a_draft(app)
    victim = app.test_client()
    open_resume_link(victim, link)
    Respondent(victim).profile(**{**PROFILE, "industry": "consulting"})
    assert "Консалтинг" in victim.get("/review").text
    assert "Консалтинг" not in attacker.get("/review", follow_redirects=True).text
