"""Quotas: setting them (and refusing bad ones), their progress against a plain recount of
the responses, and the screen-out of a respondent in a full cell that closes."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import func, select, update

from survey import fieldwork, quotas, responses
from survey.extensions import db
from survey.models import Quota, Response
from tests.helpers import PROFILE, Respondent, csrf_token
from tests.test_arrival import add_channel, counter, invitations, make_wave, rows


def submitted(app, channel_id: int, demo: bool = False, flag: str | None = None, **background):
    """A submitted response in a channel with a background (PROFILE, changed by
    ``background``): started, background saved, then marked submitted. No practice
    answer: quotas count respondents by background only."""
    with app.test_request_context():
        response, _ = responses.start("ru", channel=fieldwork.channel_by_id(channel_id))
        responses.save_profile(response, {**PROFILE, **background}, "ru")
        db.session.execute(
            update(Response)
            .where(Response.id == response.id)
            .values(
                status="submitted", submitted_on=fieldwork.today(), is_demo=demo, quality_flag=flag
            )
        )
        db.session.commit()


def wave_of(app, code: str):
    return fieldwork.wave_by_code(code)


@pytest.fixture
def spring(app):
    """An open wave 'spring' with a channel 'linkedin': (wave info, channel id, slug)."""
    wave = make_wave(app, "spring", target=10)
    channel_id, slug = add_channel(app, "spring", "linkedin")
    return wave, channel_id, slug


# --- setting quotas ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"field": "shoe_size", "value": "42", "target_count": 5}, "field"),
        ({"field": "ru_years", "value": "3_5", "target_count": 5}, "field"),  # a kind's block
        ({"field": "industry", "value": "bakery", "target_count": 5}, "value"),
        ({"field": "industry", "value": "it"}, "target_count"),
        (
            {"field": "industry", "value": "it", "target_count": 5, "target_share": 0.5},
            "target_count",
        ),
        ({"field": "industry", "value": "it", "target_count": 0}, "target_count"),
        ({"field": "industry", "value": "it", "target_count": True}, "target_count"),
        ({"field": "industry", "value": "it", "target_count": 2.5}, "target_count"),
        ({"field": "industry", "value": "it", "target_count": 10**7}, "target_count"),
        ({"field": "industry", "value": "it", "target_share": 0}, "target_share"),
        ({"field": "industry", "value": "it", "target_share": 1.5}, "target_share"),
        ({"field": "industry", "value": "it", "target_share": float("nan")}, "target_share"),
        ({"field": "industry", "value": "it", "target_share": "0.5"}, "target_share"),
    ],
)
def test_a_bad_quota_is_refused_naming_its_field_and_nothing_is_stored(app, spring, args, field):
    with app.app_context():
        with pytest.raises(fieldwork.FieldworkError) as error:
            quotas.set_quota(wave_of(app, "spring"), **args)
        assert error.value.field == field
    assert rows(app, Quota) == 0


def test_setting_a_quota_again_replaces_it(app, spring):
    with app.app_context():
        wave = wave_of(app, "spring")
        quotas.set_quota(wave, "industry", "it", target_count=5)
        quotas.set_quota(wave, "industry", "it", target_share=0.3, closes=True)
        [quota] = quotas.quotas(wave)
        assert (quota.target_count, quota.target_share, quota.closes) == (None, 0.3, True)


def test_a_quota_is_deleted_only_through_its_own_wave(app, spring):
    make_wave(app, "autumn")
    with app.app_context():
        quota = quotas.set_quota(wave_of(app, "spring"), "industry", "it", target_count=5)
        with pytest.raises(fieldwork.FieldworkError):
            quotas.delete_quota(wave_of(app, "autumn"), quota.id)
        assert rows(app, Quota) == 1
        quotas.delete_quota(wave_of(app, "spring"), quota.id)
    assert rows(app, Quota) == 0


# --- progress ---------------------------------------------------------------------------


def test_progress_matches_a_plain_recount_of_the_waves_completed_responses(app, spring):
    wave, channel_id, _ = spring
    other_wave = make_wave(app, "autumn")
    industries = ["it", "it", "finance", "it", "retail"]
    for industry in industries:
        submitted(app, channel_id, industry=industry)
    # None of these counts: a demo row, a likely bot, a draft, another wave's response.
    submitted(app, channel_id, demo=True, industry="it")
    submitted(app, channel_id, flag="honeypot", industry="it")
    with app.test_request_context():
        draft, _ = responses.start("ru", channel=fieldwork.channel_by_id(channel_id))
        responses.save_profile(draft, {**PROFILE, "industry": "it"}, "ru")
    submitted(app, other_wave["direct"], industry="it")
    with app.app_context():
        wave = wave_of(app, "spring")
        quotas.set_quota(wave, "industry", "it", target_count=3)
        quotas.set_quota(wave, "industry", "finance", target_share=0.25)  # of the target 10
        quotas.set_quota(wave, "worked_in", "both", target_count=6, closes=True)
        progress = {(row.field, row.value): row for row in quotas.progress(wave)}
    completed = len(industries)
    it, finance = industries.count("it"), industries.count("finance")
    assert {key: row.achieved for key, row in progress.items()} == {
        ("industry", "it"): it,
        ("industry", "finance"): finance,
        ("worked_in", "both"): completed,
    }
    assert progress[("industry", "it")].target == 3 and progress[("industry", "it")].full
    assert progress[("industry", "finance")].target == math.ceil(0.25 * 10)
    assert not progress[("industry", "finance")].full
    assert not progress[("worked_in", "both")].full
    assert progress[("industry", "it")].share == pytest.approx(it / completed)
    assert progress[("industry", "it")].label("en") == "IT and telecoms"
    assert progress[("industry", "it")].label("ru") == "ИТ и телеком"


def test_a_share_without_a_wave_target_is_of_the_completed_responses(app):
    make_wave(app, "summer")
    channel_id, _ = add_channel(app, "summer", "mail")
    with app.app_context():
        quotas.set_quota(wave_of(app, "summer"), "industry", "it", target_share=0.3)
        [empty] = quotas.progress(wave_of(app, "summer"))
    assert (empty.target, empty.achieved, empty.full, empty.share) == (None, 0, False, None)
    for industry in ["finance"] * 7 + ["it"] * 3:
        submitted(app, channel_id, industry=industry)
    with app.app_context():
        [row] = quotas.progress(wave_of(app, "summer"))
    assert row.target == 3  # 0.3 of 10 is 3 exactly (not 4 by float dust)
    assert (row.achieved, row.completed, row.full) == (3, 10, True)


# --- screen-out -------------------------------------------------------------------------


def test_a_respondent_in_a_full_closing_cell_is_thanked_and_nothing_is_kept(app, client, spring):
    _, channel_id, slug = spring
    submitted(app, channel_id, industry="it")
    with app.app_context():
        quotas.set_quota(wave_of(app, "spring"), "industry", "it", target_count=1, closes=True)
    before = rows(app)
    client.get(f"/s/{slug}")
    respondent = Respondent(client)
    respondent.consent()
    r = respondent.profile(industry="it")
    assert r.status_code == 302 and r.location.endswith("/enough")
    thanks = client.get(r.location)
    assert "достаточно участников" in thanks.text
    client.get("/lang/en")
    assert "enough respondents with a background like yours" in client.get("/enough").text
    assert rows(app) == before
    assert counter(app, channel_id, "screened_out") == 1
    with client.session_transaction() as session:
        assert "resume_token" not in session
    assert client.get("/profile").status_code == 302


def test_respondents_outside_a_full_cell_or_in_an_open_one_continue(app, spring):
    _, channel_id, slug = spring
    submitted(app, channel_id, industry="it", region="moscow")
    with app.app_context():
        wave = wave_of(app, "spring")
        quotas.set_quota(wave, "industry", "it", target_count=1, closes=True)
        quotas.set_quota(wave, "region", "moscow", target_count=1)  # full, but not closing
    for background in ({"industry": "finance"}, {"industry": "finance", "region": "moscow"}):
        client = app.test_client()
        client.get(f"/s/{slug}")
        respondent = Respondent(client)
        respondent.consent()
        r = respondent.profile(**background)
        assert r.status_code == 302 and "/page/" in r.location
    assert counter(app, channel_id, "screened_out") == 0
    assert rows(app) == 3


def test_a_respondent_already_past_the_background_changing_it_is_not_turned_away(
    app, client, spring
):
    _, channel_id, slug = spring
    client.get(f"/s/{slug}")
    respondent = Respondent(client)
    respondent.consent()
    respondent.profile(industry="finance")
    submitted(app, channel_id, industry="it")
    with app.app_context():
        quotas.set_quota(wave_of(app, "spring"), "industry", "it", target_count=1, closes=True)
    r = respondent.profile(industry="it")
    assert r.status_code == 302 and "/page/" in r.location
    assert counter(app, channel_id, "screened_out") == 0


def test_a_screened_out_invitation_stays_used(app, client, spring):
    _, channel_id, _ = spring
    [token] = invitations(app, channel_id, 1)
    submitted(app, channel_id, industry="it")
    with app.app_context():
        quotas.set_quota(wave_of(app, "spring"), "industry", "it", target_count=1, closes=True)
    page = client.get(f"/i/{token}")
    client.post(
        f"/i/{token}", data={"csrf_token": csrf_token(page.text), "adult": "y", "agree": "y"}
    )
    r = Respondent(client).profile(industry="it")
    assert r.location.endswith("/enough")
    assert "уже использована" in client.get(f"/i/{token}").text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Response)) == 1


def test_cell_is_closed_reads_the_responses_own_background(app, spring):
    _, channel_id, _ = spring
    submitted(app, channel_id, industry="it")
    with app.test_request_context():
        quotas.set_quota(wave_of(app, "spring"), "industry", "it", target_count=1, closes=True)
        draft, _ = responses.start("ru", channel=fieldwork.channel_by_id(channel_id))
        assert not quotas.cell_is_closed(draft)
        responses.save_profile(draft, {**PROFILE, "industry": "it"}, "ru")
        assert quotas.cell_is_closed(draft)
        responses.save_profile(draft, {**PROFILE, "industry": "finance"}, "ru")
        assert not quotas.cell_is_closed(draft)
