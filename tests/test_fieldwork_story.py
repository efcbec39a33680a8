"""The whole fieldwork of a study, through HTTP, on SQLite and PostgreSQL (issue 15).

An owner creates a wave with two channels and 20 single-use invitations from the browser
forms; respondents arrive through each channel link and through invitations; one
invitation is used by two browsers at once, one respondent withdraws; the owner closes the
wave: a newcomer sees the closed page, a draft started before the close finishes within
the grace period, a later one is refused and purged. Then the funnel and the channel counts
of the API equal a plain recount of the database, and the comparison with the earlier wave
equals statsmodels and scipy on the stored answers.

Every expected number is counted here: by hand as the story goes (``Story.opened`` and
friends), by plain SQL over ``response``, ``channel_day`` and ``invitation``, and by
:func:`tests.test_wave_comparison.expected_rows` (statsmodels' Wilson and Newcombe
intervals, scipy's chi-square or Fisher test, statsmodels' BH) for the comparison.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import statistics
from collections import Counter
from urllib.parse import urlsplit

import numpy as np
import pytest
from sqlalchemy import text

from survey.extensions import db
from tests.helpers import CONSENT, Respondent, csrf_token
from tests.test_arrival import consent_page, move_clock
from tests.test_manage import Browser as OwnerBrowser
from tests.test_manage import create_wave
from tests.test_wave_comparison import assert_rows_equal, expected_rows

MIN_CELL = 5  # the lowest threshold the configuration allows: small waves still show
CLOSED = "Опрос завершён"
PAST_GRACE = "незаконченные ответы больше нельзя сохранить"
LINK_RE = r'<th scope="row">{label}</th>\s*<td><a href="([^"]+)" class="channel-link">'
# Answers of the scripted respondents: each practice's chance of "it existed" per wave;
# autumn's spreads from rare to common, so some tables take the chi-square test and some
# (small expected counts) Fisher's.
SPRING_P = 0.5
DK_SHARE = 0.1


pytestmark = pytest.mark.usefixtures("fresh_cache")


@pytest.fixture
def app(make_app):
    """The application with the lowest disclosure threshold allowed."""
    return make_app(MIN_COMPLETION_SECONDS=0, MIN_CELL=MIN_CELL)


# ---------------------------------------------------------------- the respondents


class Story:
    """What the test did, counted by hand per channel label, and the answers to give."""

    def __init__(self, app):
        self.app = app
        self.catalog = app.extensions["survey_catalog"]
        self.rng = np.random.default_rng(15)
        self.opened: Counter = Counter()
        self.consented: Counter = Counter()
        self.submitted: Counter = Counter()
        self.withdrawn: Counter = Counter()

    def arrive(self, link: str, label: str):
        """A new browser opening a channel's public link; returns (respondent, response)."""
        respondent = Respondent(self.app.test_client())
        r = respondent.client.get(urlsplit(link).path)
        self.opened[label] += 1
        return respondent, r

    def consent_by_link(self, link: str, label: str) -> Respondent:
        respondent, r = self.arrive(link, label)
        assert r.status_code == 302 and r.location.endswith("/"), r.status_code
        respondent.consent()
        self.consented[label] += 1
        return respondent

    def consent_by_invitation(self, token: str, label: str) -> Respondent:
        respondent = Respondent(self.app.test_client())
        csrf = consent_page(respondent.client, token)
        self.opened[label] += 1
        r = respondent.client.post(f"/i/{token}", data={"csrf_token": csrf, **CONSENT})
        assert r.status_code == 302 and r.location.endswith("/profile"), r.status_code
        self.consented[label] += 1
        return respondent

    def answers(self, wave: str, number: int) -> dict:
        """(practice, kind) -> (met, rating): drawn per respondent, with the wave's
        chances. In autumn the first practice's foreign answers are "don't know" but for
        three respondents: a cell below MIN_CELL, withheld with its test."""
        out = {}
        for j, practice in enumerate(self.catalog.practices):
            for kind in ("ru", "foreign"):
                p = SPRING_P if wave == "spring" else 0.1 + 0.8 * (j % 5) / 4
                if wave == "autumn" and j == 0 and kind == "foreign":
                    out[(practice.id, kind)] = ("no" if number < 3 else "dk", None)
                elif self.rng.random() < DK_SHARE:
                    out[(practice.id, kind)] = ("dk", None)
                elif self.rng.random() < p:
                    rating = int(self.rng.integers(1, 6))
                    out[(practice.id, kind)] = ("applied", rating) if j % 2 else ("existed", None)
                else:
                    out[(practice.id, kind)] = ("no", None)
        return out

    def background_and_pages(self, respondent: Respondent, answers: dict, pages=None) -> None:
        r = respondent.profile()
        assert r.status_code == 302, r.text[:1000]
        for page in self.catalog.pages if pages is None else pages:
            r = respondent.answer_page(page, ("ru", "foreign"), answers=answers)
            assert r.status_code == 302, r.text[:1000]

    def finish(self, respondent: Respondent, wave: str, label: str, number: int) -> None:
        """Background, every practice page, submit."""
        self.background_and_pages(respondent, self.answers(wave, number))
        r = respondent.submit()
        assert r.status_code == 302 and r.location.endswith("/thanks"), r.status_code
        self.submitted[label] += 1


# ---------------------------------------------------------------- reading the database


def sql(app, query: str, **params) -> list[tuple]:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(text(query), params)]


def responses_count(app) -> int:
    return sql(app, "SELECT COUNT(*) FROM response")[0][0]


def wave_id(app, code: str) -> int:
    return sql(app, "SELECT id FROM wave WHERE code = :c", c=code)[0][0]


def recount(app, code: str) -> dict:
    """Each channel of a wave as the database holds it, by plain SQL: label -> step -> n
    (the funnel's steps as survey/funnel.py documents them), the medians of the submitted
    completion times in whole minutes, and the invitations (generated, used)."""
    wave = wave_id(app, code)
    pages = len(app.extensions["survey_catalog"].pages)
    labels = [
        label for (label,) in sql(app, "SELECT label FROM channel WHERE wave_id = :w", w=wave)
    ]
    steps = [
        "opened", "consented", "background", *(f"practice_{i}" for i in range(1, pages + 1)),
        "submitted", "withdrawn", "screened_out", "purged", "flagged", "low_quality",
    ]  # fmt: skip
    out = {label: dict.fromkeys(steps, 0) for label in labels}
    for label, event, n in sql(
        app,
        "SELECT c.label, d.event, SUM(d.count) FROM channel_day d "
        "JOIN channel c ON c.id = d.channel_id WHERE c.wave_id = :w GROUP BY c.label, d.event",
        w=wave,
    ):
        out[label][event] = int(n)
    stored = Counter()
    durations = {label: [] for label in labels}
    for label, status, last_page, flag, low, seconds in sql(
        app,
        "SELECT c.label, r.status, r.last_page, r.quality_flag, r.low_quality, r.active_seconds "
        "FROM response r JOIN channel c ON c.id = r.channel_id "
        "WHERE r.wave_id = :w AND r.is_demo = :demo",
        w=wave,
        demo=False,
    ):
        counts = out[label]
        stored[label] += 1
        counts["background"] += last_page >= 1
        for i in range(1, pages + 1):
            counts[f"practice_{i}"] += last_page >= i + 1
        if status == "submitted":
            counts["submitted"] += 1
            counts["flagged"] += flag is not None
            counts["low_quality"] += bool(low)
            durations[label].append(seconds)
    for label in labels:  # every consent of this story was counted as it was given
        assert out[label]["consented"] >= stored[label], label
    medians = {
        label: None if len(values) < MIN_CELL else math.floor(statistics.median(values) / 60 + 0.5)
        for label, values in durations.items()
    }
    invitations = {label: (0, 0) for label in labels}
    for label, generated, used in sql(
        app,
        "SELECT c.label, COUNT(*), COUNT(i.used_on) FROM invitation i "
        "JOIN channel c ON c.id = i.channel_id WHERE c.wave_id = :w GROUP BY c.label",
        w=wave,
    ):
        invitations[label] = (int(generated), int(used))
    return {"steps": out, "medians": medians, "invitations": invitations}


def channel_links(page: str, labels) -> dict[str, str]:
    """label -> public link, as the wave's page shows them (what an owner copies)."""
    out = {}
    for label in labels:
        match = re.search(LINK_RE.format(label=re.escape(label)), page)
        assert match, f"no link for {label}"
        out[label] = match.group(1)
    return out


def page_channel_numbers(page: str, label: str) -> list[str]:
    row = re.search(rf'<th scope="row">{re.escape(label)}</th>.*?</tr>', page, re.S).group(0)
    return re.findall(r'<td class="num">([^<]*)</td>', row)


# ---------------------------------------------------------------- the story


def test_a_wave_runs_from_its_creation_to_its_comparison_with_the_earlier_wave(
    app, client, runner, monkeypatch
):
    owner = OwnerBrowser(app)
    api = {"Authorization": f"Bearer {owner.token}"}
    story = Story(app)

    # --- the earlier wave: spring, 14 respondents through its direct link, then closed
    assert create_wave(owner, code="spring").status_code == 302
    assert owner.post("/researcher/waves/spring/open").status_code == 302
    spring_link = channel_links(owner.get("/researcher/waves/spring").text, ["direct"])["direct"]
    for number in range(14):
        story.finish(story.consent_by_link(spring_link, "spring"), "spring", "spring", number)
    assert owner.post("/researcher/waves/spring/close").status_code == 302

    # --- this wave: autumn, two channels, 20 invitations for the alumni mailing list
    r = create_wave(owner, code="autumn", name_ru="Осенняя волна", name_en="Autumn", target="30")
    assert r.status_code == 302 and r.location.endswith("/researcher/waves/autumn")
    assert owner.post("/researcher/waves/autumn/open").status_code == 302
    for label in ("linkedin", "alumni"):
        r = owner.post("/researcher/waves/autumn/channels", {"label": label})
        assert r.status_code == 302, r.text[:500]
    page = owner.get("/researcher/waves/autumn").text
    links = channel_links(page, ["direct", "linkedin", "alumni"])
    assert len({urlsplit(link).path for link in links.values()}) == 3
    r = owner.post("/researcher/waves/autumn/invitations", {"channel": "alumni", "count": "20"})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == ["invitation_link"] and len(rows) == 21
    tokens = [urlsplit(link).path.removeprefix("/i/") for (link,) in rows[1:]]
    assert len(set(tokens)) == 20 and all(tokens)

    # --- respondents through each channel link and through invitations
    number = 0
    for _ in range(5):
        story.finish(
            story.consent_by_link(links["linkedin"], "linkedin"), "autumn", "linkedin", number
        )
        number += 1
    for _ in range(3):
        story.finish(story.consent_by_link(links["alumni"], "alumni"), "autumn", "alumni", number)
        number += 1
    for token in tokens[:5]:
        story.finish(story.consent_by_invitation(token, "alumni"), "autumn", "alumni", number)
        number += 1
    for _ in range(2):  # opened the link, never consented
        story.arrive(links["linkedin"], "linkedin")

    # --- one invitation, two browsers: the second consent starts no second response
    shared = tokens[5]
    first, second = app.test_client(), app.test_client()
    csrf_first, csrf_second = consent_page(first, shared), consent_page(second, shared)
    story.opened["alumni"] += 2
    before = responses_count(app)
    r = first.post(f"/i/{shared}", data={"csrf_token": csrf_first, **CONSENT})
    assert r.status_code == 302 and r.location.endswith("/profile")
    story.consented["alumni"] += 1
    r = second.post(f"/i/{shared}", data={"csrf_token": csrf_second, **CONSENT})
    assert r.status_code == 302 and r.location.endswith(f"/i/{shared}")
    assert responses_count(app) == before + 1
    story.finish(Respondent(first), "autumn", "alumni", number)
    number += 1
    again = second.get(f"/i/{shared}")  # opened again once its answers are in
    story.opened["alumni"] += 1
    assert again.status_code == 200 and "ответы получены" in again.text
    assert 'class="consent-form"' not in again.text
    r = second.post(f"/i/{shared}", data={"csrf_token": csrf_second, **CONSENT})
    assert r.status_code == 200 and "ответы получены" in r.text
    assert responses_count(app) == before + 1
    digest = hashlib.sha256(shared.encode()).hexdigest()
    assert sql(
        app,
        "SELECT r.status FROM invitation i JOIN response r ON r.id = i.response_id "
        "WHERE i.token_hash = :h AND i.used_on IS NOT NULL",
        h=digest,
    ) == [("submitted",)]

    # --- one respondent submits, then withdraws: the row goes, the channel counts it
    leaving = story.consent_by_link(links["linkedin"], "linkedin")
    story.finish(leaving, "autumn", "linkedin", number)
    story.submitted["linkedin"] -= 1
    before = responses_count(app)
    r = leaving.post_form("/withdraw", {})
    assert r.status_code == 302
    story.withdrawn["linkedin"] += 1
    assert responses_count(app) == before - 1

    # --- two drafts started before the close; a visitor on the landing page
    in_grace = story.consent_by_link(links["linkedin"], "linkedin")
    story.background_and_pages(in_grace, story.answers("autumn", number), story.catalog.pages[:2])
    late = story.consent_by_invitation(tokens[6], "alumni")
    story.background_and_pages(late, story.answers("autumn", number + 1), story.catalog.pages[:1])
    late_csrf = csrf_token(late.client.get("/profile").text)
    hesitant, r = story.arrive(links["linkedin"], "linkedin")
    hesitant_csrf = csrf_token(hesitant.client.get("/").text)

    # --- the owner closes the wave through the form
    assert owner.post("/researcher/waves/autumn/close").status_code == 302
    assert "Закрыта" in owner.get("/researcher/waves/autumn").text
    stored_before = sql(app, "SELECT id, status FROM response ORDER BY id")
    newcomer, r = story.arrive(links["linkedin"], "linkedin")
    assert r.status_code in (200, 409) and CLOSED in r.text
    assert 'class="consent-form"' not in r.text
    with newcomer.client.session_transaction() as session:
        assert "channel" not in session
    invited = app.test_client().get(f"/i/{tokens[10]}")
    story.opened["alumni"] += 1
    assert invited.status_code in (200, 409) and CLOSED in invited.text
    r = hesitant.client.post("/", data={"csrf_token": hesitant_csrf, **CONSENT})
    assert r.status_code == 409 and CLOSED in r.text
    assert sql(app, "SELECT id, status FROM response ORDER BY id") == stored_before
    assert sql(app, "SELECT COUNT(*) FROM invitation WHERE used_on IS NOT NULL")[0][0] == 7

    # --- an hour later the draft in grace finishes
    move_clock(monkeypatch, 1)
    assert in_grace.client.get("/").status_code == 200
    for page in story.catalog.pages[2:]:
        r = in_grace.answer_page(page, ("ru", "foreign"), answers=story.answers("autumn", number))
        assert r.status_code == 302, r.status_code
    r = in_grace.submit()
    assert r.status_code == 302 and r.location.endswith("/thanks")
    story.submitted["linkedin"] += 1

    # --- past the grace period the other draft is refused, then purged
    grace = app.config["WAVE_GRACE_HOURS"]
    move_clock(monkeypatch, grace)  # on top of the hour above
    [(late_id,)] = sql(app, "SELECT id FROM response WHERE status = 'draft'")
    answers_of_late = "SELECT COUNT(*) FROM answer WHERE response_id = :r"
    [(kept,)] = sql(app, answers_of_late, r=late_id)
    assert kept > 0  # the page saved before the close
    page = story.catalog.pages[1]
    r = late.client.get(f"/page/{page.number}")
    assert r.status_code == 200 and PAST_GRACE in r.text
    data = {"csrf_token": late_csrf, **late.page_data(page, ("ru", "foreign"))}
    assert late.client.post(f"/page/{page.number}", data=data).status_code == 409
    review = late.client.get("/review")
    assert review.status_code == 200 and PAST_GRACE in review.text
    r = late.client.post("/submit", data={"csrf_token": late_csrf})
    assert r.status_code == 409 and PAST_GRACE in r.text
    assert sql(app, answers_of_late, r=late_id) == [(kept,)]
    result = runner.invoke(args=["purge-drafts"])
    assert result.exit_code == 0 and "Deleted 1 " in result.output, result.output
    assert sql(app, "SELECT COUNT(*) FROM response WHERE status = 'draft'") == [(0,)]
    assert sql(app, answers_of_late, r=late_id) == [(0,)]
    # Its invitation stays used (it started a response), pointing at nothing.
    used = sql(app, "SELECT COUNT(*) FROM invitation WHERE used_on IS NOT NULL")[0][0]
    assert used == 7
    assert sql(app, "SELECT COUNT(*) FROM invitation WHERE response_id IS NOT NULL") == [(6,)]

    # --- the story as told, then the database against it
    assert dict(story.submitted) == {"spring": 14, "linkedin": 6, "alumni": 9}
    expected = recount(app, "autumn")
    steps = expected["steps"]
    for label in ("linkedin", "alumni"):
        assert steps[label]["opened"] == story.opened[label], label
        assert steps[label]["consented"] == story.consented[label], label
        assert steps[label]["submitted"] == story.submitted[label], label
        assert steps[label]["withdrawn"] == story.withdrawn[label], label
    assert steps["alumni"]["purged"] == 1 and steps["linkedin"]["purged"] == 0
    assert steps["direct"] == dict.fromkeys(steps["direct"], 0)
    assert expected["invitations"] == {"direct": (0, 0), "linkedin": (0, 0), "alumni": (20, 7)}

    # --- GET /api/v1/fieldwork?wave=autumn equals the recount
    r = client.get("/api/v1/fieldwork", query_string={"wave": "autumn"}, headers=api)
    assert r.status_code == 200, r.text[:500]
    body = r.get_json()
    assert body["wave"] == "autumn" and body["demo"] is False
    got = {channel["label"]: channel for channel in body["channels"]}
    assert set(got) == set(steps)
    for label, counts in steps.items():
        channel = got[label]
        assert {row["step"]: row["n"] for row in channel["funnel"]} == counts, label
        assert [row["step"] for row in channel["funnel"]] == list(counts), label
        assert channel["opened"] == counts["opened"]
        assert channel["started"] == counts["consented"]
        assert channel["completed"] == counts["submitted"]
        rate = counts["submitted"] / counts["consented"] if counts["consented"] else None
        assert channel["completion_rate"] == pytest.approx(rate)
        assert channel["median_minutes"] == expected["medians"][label], label
    total = {row["step"]: row["n"] for row in body["funnel"]}
    assert total == {step: sum(c[step] for c in steps.values()) for step in total}
    assert body["completed"] == total["submitted"] == 15

    # --- GET /api/v1/waves: the same channels with the same counts; the owner's page too
    r = client.get("/api/v1/waves", headers=api)
    assert r.status_code == 200
    waves = {wave["code"]: wave for wave in r.get_json()["waves"]}
    autumn = waves["autumn"]
    assert (autumn["state"], autumn["completed"], autumn["target"]) == ("closed", 15, 30)
    assert waves["spring"]["state"] == "closed" and waves["spring"]["completed"] == 14
    listed = {channel["label"]: channel for channel in autumn["channels"]}
    assert set(listed) == set(steps)
    for label, counts in steps.items():
        channel = listed[label]
        assert channel["link"] == links[label]
        assert (channel["opened"], channel["started"], channel["completed"]) == (
            counts["opened"],
            counts["consented"],
            counts["submitted"],
        ), label
        rate = counts["submitted"] / counts["consented"] if counts["consented"] else None
        assert channel["completion_rate"] == pytest.approx(rate)
    page = owner.get("/researcher/waves/autumn").text
    for label, counts in steps.items():
        numbers = page_channel_numbers(page, label)
        generated, used = expected["invitations"][label]
        assert numbers[:3] == [str(counts[s]) for s in ("opened", "consented", "submitted")]
        assert numbers[-2:] == [str(generated), str(used)], label
    assert owner.get("/researcher/", query_string={"wave": "autumn"}).status_code == 200

    # --- the wave comparison equals statsmodels and scipy on the stored answers
    r = client.get(
        "/api/v1/comparison/waves", query_string={"a": "spring", "b": "autumn"}, headers=api
    )
    assert r.status_code == 200, r.text[:500]
    body = r.get_json()
    assert body["suppressed"] is False and body["min_cell"] == MIN_CELL
    submitted = dict(
        sql(
            app,
            "SELECT w.code, COUNT(*) FROM response r JOIN wave w ON w.id = r.wave_id "
            "WHERE r.status = 'submitted' GROUP BY w.code",
        )
    )
    assert submitted == {"spring": 14, "autumn": 15}
    assert body["waves"]["a"]["n_respondents"] == submitted["spring"]
    assert body["waves"]["b"]["n_respondents"] == submitted["autumn"]
    rows = expected_rows(app, "spring", "autumn", min_cell=MIN_CELL)
    assert_rows_equal(body, rows)
    first = story.catalog.practices[0].id
    withheld = {
        (row["practice_id"], row["company_kind"]): row["suppressed"] for row in body["rows"]
    }
    assert withheld[(first, "foreign")] == ["b"]  # three yes/no answers in autumn
    tests = Counter(row["test"] for row in body["rows"])
    assert tests["chi2"] > 0 and tests["fisher"] > 0, tests
