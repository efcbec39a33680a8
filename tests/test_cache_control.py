"""No questionnaire page may be kept by a browser cache or a proxy.

They show answers, examples or the personal link: on a shared computer the back button
or the cache must not bring them back to the next person.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tests.helpers import Respondent, csrf_token

BOTH = ("ru", "foreign")
LINK_RE = re.compile(r'<input class="resume-link"[^>]*value="([^"]+)"')


def questionnaire_endpoints(app) -> set[str]:
    return {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("questionnaire.")
    }


def test_every_questionnaire_page_is_sent_with_no_store(app):
    catalog = app.extensions["survey_catalog"]
    draft = app.test_client()
    respondent = Respondent(draft)
    respondent.consent()
    respondent.profile()
    respondent.answer_page(catalog.pages[0], BOTH)
    link = urlsplit(LINK_RE.search(draft.get("/page/2").text).group(1)).path
    token = csrf_token(draft.get("/review").text)

    other = app.test_client()
    other_token = csrf_token(other.get("/").text)
    done = app.test_client()
    Respondent(done).complete(catalog)
    done_token = csrf_token(done.get("/thanks").text)

    # endpoint -> the requests that show it: GET with a draft in session, and the POSTs
    seen = {
        "questionnaire.index": [draft.get("/"), other.post("/", data={"csrf_token": other_token})],
        "questionnaire.set_language": [draft.get("/lang/en?next=/review")],
        "questionnaire.profile": [draft.get("/profile"), draft.post("/profile", data={})],
        "questionnaire.practice_page": [draft.get("/page/1"), draft.get("/page/2")],
        "questionnaire.review": [draft.get("/review")],
        "questionnaire.submit": [draft.post("/submit", data={"csrf_token": token})],
        "questionnaire.thanks": [done.get("/thanks")],
        "questionnaire.compare": [done.get("/compare"), other.get("/compare")],
        "questionnaire.resume": [other.get(link), other.get("/resume/" + "x" * 32)],
        "questionnaire.withdraw": [draft.get("/withdraw"), done.get("/withdraw")],
        "questionnaire.restart": [done.post("/restart", data={"csrf_token": done_token})],
        "questionnaire.channel_link": [other.get("/s/unknown")],
        "questionnaire.invitation": [other.get("/i/unknown")],
        "questionnaire.invitation_continue": [other.post("/i/unknown/continue", data={})],
        "questionnaire.enough": [other.get("/enough")],
        "questionnaire.preview": [other.get("/researcher/preview")],
        "questionnaire.preview_page": [other.get("/researcher/preview/page/1")],
    }
    assert set(seen) == questionnaire_endpoints(app)  # a new page gets a line here
    statuses = set()
    for endpoint, answers in seen.items():
        for r in answers:
            statuses.add(r.status_code)
            assert r.headers.get("Cache-Control") == "no-store", (endpoint, r.status_code)
    assert {200, 302, 400} <= statuses  # pages, redirects and error pages alike


def test_the_pages_with_answers_carry_no_store_in_english_too(app):
    catalog = app.extensions["survey_catalog"]
    client = app.test_client()
    Respondent(client, lang="en").complete(catalog)
    for path in ("/thanks", "/withdraw"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store", path
