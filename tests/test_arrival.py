"""How respondents arrive: channel links, the bare URL, single-use invitations; waves that
are not open, the grace period after a close, purging; the researcher's preview.

Everything goes through real pages (test client, real CSRF tokens); what is stored is then
read back from the database and compared with what the test did, counted by hand.
"""

from __future__ import annotations

import datetime as dt

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from survey import fieldwork, responses
from survey.extensions import db
from survey.models import Answer, ChannelDay, Invitation, Response, Wave
from tests.helpers import CONSENT, Respondent, csrf_token, log_in
from tests.test_questionnaire import Browser, age_drafts

PAST = dt.datetime(2020, 1, 1, 9, 0)  # a wave's opening in its own zone, long ago


def make_wave(app, code: str, **spec) -> dict:
    """A wave (open since 2020 unless told) with its direct channel; the catalogue is
    synced first, so the default wave already exists and this one is not it."""
    with app.app_context():
        responses.catalog_version_id()
        spec.setdefault("opens_at", PAST)
        wave = fieldwork.create_wave(
            fieldwork.WaveSpec(code=code, name_ru=f"Волна {code}", name_en=f"Wave {code}", **spec)
        )
        direct = fieldwork.direct_channel(wave)
        return {"id": wave.id, "direct": direct.id, "direct_slug": direct.slug}


def add_channel(app, wave_code: str, label: str) -> tuple[int, str]:
    """A new channel of a wave: (id, slug)."""
    with app.app_context():
        channel = fieldwork.create_channel(fieldwork.wave_by_code(wave_code), label)
        return channel.id, channel.slug


def invitations(app, channel_id: int, n: int) -> list[str]:
    """``n`` invitation tokens of a channel."""
    with app.app_context():
        return fieldwork.create_invitations(fieldwork.channel_by_id(channel_id), n)


def counter(app, channel_id: int, event: str) -> int:
    """A channel's counter of an event, all days together."""
    with app.app_context():
        return db.session.scalar(
            select(func.coalesce(func.sum(ChannelDay.count), 0)).where(
                ChannelDay.channel_id == channel_id, ChannelDay.event == event
            )
        )


def counters(app) -> int:
    """Every counter of every channel, summed: nothing counted means 0."""
    with app.app_context():
        return db.session.scalar(select(func.coalesce(func.sum(ChannelDay.count), 0)))


def rows(app, model=Response) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def stored(app) -> list[tuple]:
    """(id, status, wave_id, channel_id) of every response."""
    with app.app_context():
        return [
            tuple(row)
            for row in db.session.execute(
                select(Response.id, Response.status, Response.wave_id, Response.channel_id)
            )
        ]


def default_direct(app) -> int:
    with app.app_context():
        return fieldwork.direct_channel(responses.default_wave()).id


def set_closes(app, wave_code: str, closes: dt.datetime | None) -> None:
    """Set a wave's close (naive UTC) directly, as a close on that date would."""
    with app.app_context():
        fieldwork.wave_by_code(wave_code).closes_at = closes
        db.session.commit()


def move_clock(monkeypatch, hours: float) -> None:
    """Let the fieldwork clock run ``hours`` ahead of the real one."""
    real = fieldwork.utcnow
    monkeypatch.setattr(fieldwork, "utcnow", lambda: real() + dt.timedelta(hours=hours))


# --- channel links and the bare URL -----------------------------------------------------


def test_a_channel_link_records_its_wave_and_channel_and_counts_opened_and_consent(app, client):
    wave = make_wave(app, "spring")
    channel_id, slug = add_channel(app, "spring", "linkedin")
    first = client.get(f"/s/{slug}")
    assert first.status_code == 302 and first.location.endswith("/")
    assert client.get(f"/s/{slug}").status_code == 302  # every GET of the link counts
    Respondent(client).consent()  # its GET of / is no new arrival: the link was counted
    [(_, status, wave_id, stored_channel)] = stored(app)
    assert (status, wave_id, stored_channel) == ("draft", wave["id"], channel_id)
    assert counter(app, channel_id, "opened") == 2
    assert counter(app, channel_id, "consented") == 1
    assert counter(app, default_direct(app), "opened") == 0
    assert counter(app, wave["direct"], "consented") == 0


def test_the_bare_url_counts_opened_only_for_a_browser_holding_nothing(app, client):
    client.get("/")
    client.get("/")
    Respondent(client).consent()  # one more GET of /, then the consent
    client.get("/")  # holds a draft now: not counted
    direct = default_direct(app)
    assert counter(app, direct, "opened") == 3
    assert counter(app, direct, "consented") == 1
    [(_, _, wave_id, channel_id)] = stored(app)
    with app.app_context():
        assert wave_id == responses.default_wave().id
    assert channel_id == direct


def test_a_browser_that_came_by_a_link_is_not_counted_again_on_the_bare_url(app, client):
    make_wave(app, "spring")
    channel_id, slug = add_channel(app, "spring", "telegram")
    client.get(f"/s/{slug}")
    client.get("/")
    assert counter(app, channel_id, "opened") == 1
    assert counter(app, default_direct(app), "opened") == 0


@pytest.mark.parametrize(
    ("lang", "text"), [("ru", "Эта ссылка на опрос недействительна"), ("en", "not valid")]
)
def test_an_unknown_channel_link_is_a_404_page_in_the_visitors_language(app, client, lang, text):
    make_wave(app, "spring")
    add_channel(app, "spring", "linkedin")
    client.get(f"/lang/{lang}")
    for slug in ("nonexistent-slug", "x" * 40, "%00"):
        r = client.get(f"/s/{slug}")
        assert r.status_code == 404
        assert text in r.text
    with client.session_transaction() as session:
        assert "channel" not in session
    assert rows(app) == 0 and counters(app) == 0


# --- waves that are not open ------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "heading", "dates"),
    [
        ("ru", "Опрос ещё не начался", ["1 марта 2099, 09:00 (Europe/Moscow)"]),
        ("en", "The survey is not open yet", ["1 March 2099, 09:00 (Europe/Moscow)"]),
    ],
)
def test_a_scheduled_wave_shows_its_opening_and_stores_nothing(app, client, lang, heading, dates):
    make_wave(app, "autumn", opens_at=dt.datetime(2099, 3, 1, 9, 0))
    channel_id, slug = add_channel(app, "autumn", "alumni")
    client.get(f"/lang/{lang}")
    r = client.get(f"/s/{slug}")
    assert r.status_code == 200
    assert heading in r.text
    for date in dates:
        assert date in r.text
    assert 'class="consent-form"' not in r.text
    with client.session_transaction() as session:
        assert "channel" not in session  # the bare URL still leads to the default wave
    assert rows(app) == 0
    assert counter(app, channel_id, "opened") == 1  # a link opened, nothing else


@pytest.mark.parametrize(
    ("lang", "heading", "closes"),
    [
        ("ru", "Опрос завершён", "1 февраля 2020, 18:30 (Asia/Vladivostok)"),
        ("en", "The survey is closed", "1 February 2020, 18:30 (Asia/Vladivostok)"),
    ],
)
def test_a_closed_wave_shows_its_close_in_its_time_zone(app, client, lang, heading, closes):
    make_wave(
        app,
        "winter",
        opens_at=dt.datetime(2020, 1, 10, 9, 0),
        closes_at=dt.datetime(2020, 2, 1, 18, 30),
        time_zone="Asia/Vladivostok",
    )
    with app.app_context():  # stored in UTC: Vladivostok is ten hours ahead
        assert fieldwork.wave_by_code("winter").closes_at == dt.datetime(2020, 2, 1, 8, 30)
    _, slug = add_channel(app, "winter", "hr-telegram")
    client.get(f"/lang/{lang}")
    r = client.get(f"/s/{slug}")
    assert r.status_code == 200
    assert heading in r.text and closes in r.text
    assert rows(app) == 0


def test_a_consent_sent_after_the_wave_closed_is_refused_and_stores_nothing(app, client):
    make_wave(app, "spring")
    channel_id, slug = add_channel(app, "spring", "linkedin")
    client.get(f"/s/{slug}")
    token = csrf_token(client.get("/").text)
    set_closes(app, "spring", fieldwork.utcnow() - dt.timedelta(minutes=1))
    landing = client.get("/")
    assert landing.status_code == 200 and "Опрос завершён" in landing.text
    r = client.post("/", data={"csrf_token": token, **CONSENT})
    assert r.status_code == 409 and "Опрос завершён" in r.text
    assert rows(app) == 0
    assert counter(app, channel_id, "consented") == 0
    with client.session_transaction() as session:
        assert "resume_token" not in session


def test_a_closed_default_wave_closes_the_bare_url(app, client):
    with app.app_context():
        responses.catalog_version_id()
        wave = responses.default_wave()
        wave.opens_at, wave.closes_at = dt.datetime(2020, 1, 1), dt.datetime(2020, 6, 1)
        db.session.commit()
    r = client.get("/")
    assert r.status_code == 200 and "Опрос завершён" in r.text
    assert "1 июня 2020, 03:00 (Europe/Moscow)" in r.text  # midnight UTC in Moscow
    assert rows(app) == 0


# --- the grace period and purging -------------------------------------------------------


def test_a_draft_started_before_the_close_finishes_within_the_grace_period(
    app, client, monkeypatch
):
    make_wave(app, "spring")
    channel_id, slug = add_channel(app, "spring", "linkedin")
    client.get(f"/s/{slug}")
    browser = Browser(client).start()
    with app.app_context():
        fieldwork.close_wave(fieldwork.wave_by_code("spring"))
    move_clock(monkeypatch, app.config["WAVE_GRACE_HOURS"] - 1)
    newcomer = app.test_client()
    assert "Опрос завершён" in newcomer.get(f"/s/{slug}").text
    assert client.get("/").status_code == 200  # the landing offers to continue
    browser.answer_pages(app.extensions["survey_catalog"])
    assert browser.post_submit().status_code == 302
    [(_, status, _, stored_channel)] = stored(app)
    assert (status, stored_channel) == ("submitted", channel_id)


def test_after_the_grace_period_a_draft_is_refused_then_purged_and_counted(
    app, client, monkeypatch
):
    make_wave(app, "spring")
    channel_id, slug = add_channel(app, "spring", "linkedin")
    client.get(f"/s/{slug}")
    browser = Browser(client).start()
    catalog = app.extensions["survey_catalog"]
    with app.app_context():
        fieldwork.close_wave(fieldwork.wave_by_code("spring"))
    move_clock(monkeypatch, app.config["WAVE_GRACE_HOURS"] + 1)
    for path in ("/", "/profile", f"/page/{catalog.pages[0].number}", "/review"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "незаконченные ответы больше нельзя сохранить" in r.text, path
    r = browser.answer_page(catalog.pages[0], ("ru", "foreign"))
    assert r.status_code == 409
    assert browser.post_submit().status_code == 409
    assert rows(app, Answer) == 0
    [(_, status, _, _)] = stored(app)
    assert status == "draft"
    with app.app_context():
        assert responses.purge_drafts() == 1
    assert rows(app) == 0
    assert counter(app, channel_id, "purged") == 1


def test_purge_counts_every_deleted_draft_per_channel_expired_ones_too(app, runner):
    make_wave(app, "spring")
    linkedin, slug_a = add_channel(app, "spring", "linkedin")
    telegram, slug_b = add_channel(app, "spring", "telegram")
    for slug in (slug_a, slug_a, slug_b):
        client = app.test_client()
        client.get(f"/s/{slug}")
        Respondent(client).consent()
    fresh = app.test_client()
    fresh.get(f"/s/{slug_b}")
    Respondent(fresh).consent()
    with app.app_context():
        db.session.execute(  # every draft but the fresh one has outlived its time to live
            Response.__table__.update()
            .where(Response.id != max(r[0] for r in stored(app)))
            .values(updated_on=fieldwork.today() - dt.timedelta(days=1000))
        )
        db.session.commit()
    result = runner.invoke(args=["purge-drafts"])
    assert result.exit_code == 0 and "Deleted 3" in result.output
    assert rows(app) == 1
    assert counter(app, linkedin, "purged") == 2
    assert counter(app, telegram, "purged") == 1


def test_a_withdrawal_is_counted_for_the_responses_channel(app, client):
    make_wave(app, "spring")
    channel_id, slug = add_channel(app, "spring", "linkedin")
    client.get(f"/s/{slug}")
    Respondent(client).consent()
    page = client.get("/withdraw")
    client.post("/withdraw", data={"csrf_token": csrf_token(page.text)})
    assert rows(app) == 0
    assert counter(app, channel_id, "withdrawn") == 1


def test_drafts_of_the_default_wave_are_purged_only_by_their_time_to_live(app, client):
    Respondent(client).consent()
    with app.app_context():
        assert responses.purge_drafts() == 0
    age_drafts(app, 1000)
    with app.app_context():
        assert responses.purge_drafts() == 1
    assert counter(app, default_direct(app), "purged") == 1


# --- invitations ------------------------------------------------------------------------


def consent_page(client, token: str) -> str:
    """An invitation's landing page: its consent form posts back to the link."""
    page = client.get(f"/i/{token}")
    assert page.status_code == 200
    assert f'action="/i/{token}"' in page.text and 'class="consent-form"' in page.text
    return csrf_token(page.text)


def invitation_row(app, token: str) -> tuple:
    with app.app_context():
        invitation = fieldwork.invitation_by_token(token)
        return invitation.response_id, invitation.used_on


def test_opening_an_invitation_uses_nothing_until_consent(app, client):
    make_wave(app, "panel")
    channel_id, _ = add_channel(app, "panel", "alumni")
    [token] = invitations(app, channel_id, 1)
    consent_page(client, token)
    consent_page(app.test_client(), token)  # a messenger's preview
    assert rows(app) == 0
    assert invitation_row(app, token) == (None, None)
    assert counter(app, channel_id, "opened") == 2


def test_an_invitation_starts_exactly_one_response_for_two_browsers(app):
    make_wave(app, "panel")
    channel_id, _ = add_channel(app, "panel", "alumni")
    [token] = invitations(app, channel_id, 1)
    first, second = app.test_client(), app.test_client()
    tokens = [consent_page(first, token), consent_page(second, token)]
    r1 = first.post(f"/i/{token}", data={"csrf_token": tokens[0], **CONSENT})
    r2 = second.post(f"/i/{token}", data={"csrf_token": tokens[1], **CONSENT})
    assert r1.status_code == 302 and r1.location.endswith("/profile")
    assert r2.status_code == 302 and r2.location.endswith(f"/i/{token}")
    [(response_id, status, _, stored_channel)] = stored(app)
    assert (status, stored_channel) == ("draft", channel_id)
    assert invitation_row(app, token) == (response_id, fieldwork.today())
    assert counter(app, channel_id, "consented") == 1


def test_the_conditional_update_binds_an_invitation_once_even_from_a_stale_read(app):
    make_wave(app, "panel")
    channel_id, _ = add_channel(app, "panel", "alumni")
    [token] = invitations(app, channel_id, 1)
    with app.test_request_context():
        stale = fieldwork.invitation_by_token(token)
        db.session.expunge(stale)  # as two requests read it before either consented
        responses.start("ru", invitation=stale)
        with pytest.raises(responses.InvitationUsed):
            responses.start("ru", invitation=stale)
    assert rows(app) == 1
    assert counter(app, channel_id, "consented") == 1


def test_opening_an_invitation_again_resumes_its_draft_in_this_browser(app):
    make_wave(app, "panel")
    channel_id, _ = add_channel(app, "panel", "alumni")
    [token] = invitations(app, channel_id, 1)
    phone, laptop = app.test_client(), app.test_client()
    phone.post(f"/i/{token}", data={"csrf_token": consent_page(phone, token), **CONSENT})
    assert phone.get(f"/i/{token}").location.endswith("/profile")  # holds it already
    page = laptop.get(f"/i/{token}")
    assert page.status_code == 200 and 'class="resume-form"' in page.text
    assert rows(app) == 1  # the GET took nothing over
    r = laptop.post(f"/i/{token}/continue", data={"csrf_token": csrf_token(page.text)})
    assert r.status_code == 302 and r.location.endswith("/profile")
    assert laptop.get("/profile").status_code == 200
    assert phone.get("/profile").status_code == 302  # the draft moved to the laptop
    assert rows(app) == 1


@pytest.mark.parametrize(
    ("lang", "text"),
    [("ru", "ответы получены"), ("en", "its answers are in")],
)
def test_a_submitted_invitation_says_so(app, lang, text):
    make_wave(app, "panel")
    channel_id, _ = add_channel(app, "panel", "alumni")
    [token] = invitations(app, channel_id, 1)
    client = app.test_client()
    client.post(f"/i/{token}", data={"csrf_token": consent_page(client, token), **CONSENT})
    browser = Browser(client)
    browser.profile()
    browser.answer_pages(app.extensions["survey_catalog"])
    browser.post_submit()
    other = app.test_client()
    other.get(f"/lang/{lang}")
    r = other.get(f"/i/{token}")
    assert r.status_code == 200 and text in r.text
    assert 'class="consent-form"' not in r.text and 'class="resume-form"' not in r.text
    assert [status for _, status, _, _ in stored(app)] == ["submitted"]


def test_an_invitation_whose_answers_were_withdrawn_stays_used(app, client):
    make_wave(app, "panel")
    channel_id, _ = add_channel(app, "panel", "alumni")
    [token] = invitations(app, channel_id, 1)
    client.post(f"/i/{token}", data={"csrf_token": consent_page(client, token), **CONSENT})
    page = client.get("/withdraw")
    client.post("/withdraw", data={"csrf_token": csrf_token(page.text)})
    assert invitation_row(app, token) == (None, fieldwork.today())
    r = client.get(f"/i/{token}")
    assert "уже использована" in r.text and 'class="consent-form"' not in r.text
    r = client.post(f"/i/{token}", data={"csrf_token": csrf_token(page.text), **CONSENT})
    assert rows(app) == 0
    assert counter(app, channel_id, "withdrawn") == 1


def test_an_unknown_invitation_is_the_invalid_link_page_and_stores_nothing(app, client):
    make_wave(app, "panel")
    channel_id, _ = add_channel(app, "panel", "alumni")
    invitations(app, channel_id, 3)
    token = csrf_token(client.get("/").text)
    before = counters(app)
    for guess in ("not-a-token", "A" * 24, "x" * 200):
        assert client.get(f"/i/{guess}").status_code == 404
        r = client.post(f"/i/{guess}", data={"csrf_token": token, **CONSENT})
        assert r.status_code == 404 and "недействительна" in r.text
        assert client.post(f"/i/{guess}/continue", data={"csrf_token": token}).status_code == 404
    assert rows(app) == 0 and counters(app) == before
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(Invitation.used_on.is_not(None))) == 0


def test_an_invitation_of_a_closed_wave_shows_the_closed_page(app, client):
    make_wave(app, "panel")
    channel_id, _ = add_channel(app, "panel", "alumni")
    [token] = invitations(app, channel_id, 1)
    csrf = consent_page(client, token)
    set_closes(app, "panel", fieldwork.utcnow() - dt.timedelta(minutes=1))
    assert "Опрос завершён" in client.get(f"/i/{token}").text
    r = client.post(f"/i/{token}", data={"csrf_token": csrf, **CONSENT})
    assert r.status_code == 409
    assert rows(app) == 0 and invitation_row(app, token) == (None, None)


# --- the researcher's preview -----------------------------------------------------------


def test_the_preview_needs_a_researcher(app, client):
    for path in ("/researcher/preview", "/researcher/preview/page/1"):
        r = client.get(path)
        assert r.status_code == 302 and "/researcher/login" in r.location


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_a_researcher_previews_every_page_in_either_language_creating_nothing(app, client, lang):
    log_in(app, client)
    catalog = app.extensions["survey_catalog"]
    waves = rows(app, Wave)
    r = client.get(f"/researcher/preview?lang={lang}")
    assert r.status_code == 200
    assert "preview-banner" in r.text
    assert ("Your work background" if lang == "en" else "Ваш опыт работы") in r.text
    assert 'method="post"' not in r.text and "disabled>" in r.text
    for page in catalog.pages:
        r = client.get(f"/researcher/preview/page/{page.number}?lang={lang}")
        assert r.status_code == 200
        assert page.category.name.get(lang) in r.text
        assert 'method="post"' not in r.text and "disabled>" in r.text
        for practice in page.practices:
            assert str(escape(practice.name.get(lang))) in r.text  # fictitious ones too
    assert client.get(f"/researcher/preview/page/{len(catalog.pages) + 1}").status_code == 404
    assert client.get("/researcher/preview/page/0").status_code == 404
    assert rows(app) == 0 and rows(app, Wave) == waves


def test_every_arrival_page_is_sent_with_no_store(app, client):
    make_wave(app, "panel")
    channel_id, slug = add_channel(app, "panel", "alumni")
    [token] = invitations(app, channel_id, 1)
    log_in(app, client)
    for path in (
        f"/s/{slug}",
        "/s/unknown",
        f"/i/{token}",
        "/i/unknown",
        "/enough",
        "/researcher/preview",
        "/researcher/preview/page/1",
    ):
        assert client.get(path).headers.get("Cache-Control") == "no-store", path
    r = client.post(f"/i/{token}/continue", data={})
    assert r.headers.get("Cache-Control") == "no-store"
