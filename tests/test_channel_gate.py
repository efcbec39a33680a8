"""The channel a respondent came through is a quasi-identifier: filtering by it passes the
disclosure gate like any other filter (a channel of a few respondents is withheld, and so is
a selection that differs from a broader one by a few), and the export releases its label
only where k-anonymity holds with it.

The study: 300 seeded respondents turned real, spread over channels of two waves:

=========  ======  ========  ===========
wave       direct  linkedin  hr-telegram
=========  ======  ========  ===========
w1         270     6         4
w2         12      8         -
=========  ======  ========  ===========

Every expected count is a plain recount of the stored rows or of the exported CSV.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest
from sqlalchemy import func, select, update

from survey import fieldwork
from survey.demo import seed_demo
from survey.extensions import db
from survey.models import Channel, Response, Wave
from tests.helpers import PROFILE, api_json, log_in

LAYOUT = {("w1", "direct"): 270, ("w1", "linkedin"): 6, ("w1", "hr-telegram"): 4}
LAYOUT_W2 = {("w2", "direct"): 12, ("w2", "linkedin"): 8}
# One background for everyone: in the export, the channel is what could single people out.
SAME_BACKGROUND = {
    name: PROFILE[name]
    for name in (
        "worked_in",
        "current_employer",
        "industry",
        "company_size",
        "role_level",
        "job_function",
        "experience_band",
        "region",
        "ru_last_year",
        "foreign_last_year",
    )
}


pytestmark = pytest.mark.usefixtures("fresh_cache")


@pytest.fixture
def study(app) -> dict:
    """The table above; returns the slugs of the channels, by (wave, label)."""
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], 300, 31)
        w1 = db.session.scalar(select(Wave).filter_by(is_default=True))
        w1.code = "w1"
        w2 = fieldwork.create_wave(fieldwork.WaveSpec(code="w2", name_ru="Осень", name_en="Autumn"))
        channels = {
            ("w1", "direct"): fieldwork.direct_channel(w1),
            ("w1", "linkedin"): fieldwork.create_channel(w1, "linkedin"),
            ("w1", "hr-telegram"): fieldwork.create_channel(w1, "hr-telegram"),
            ("w2", "direct"): fieldwork.direct_channel(w2),
            ("w2", "linkedin"): fieldwork.create_channel(w2, "linkedin"),
        }
        ids = list(db.session.scalars(select(Response.id).order_by(Response.id)))
        db.session.execute(update(Response).values(is_demo=False, quality_flag=None))
        start = 0
        for (wave, label), n in {**LAYOUT, **LAYOUT_W2}.items():
            channel = channels[(wave, label)]
            db.session.execute(
                update(Response)
                .where(Response.id.in_(ids[start : start + n]))
                .values(wave_id=channel.wave_id, channel_id=channel.id)
            )
            start += n
        assert start == len(ids)
        db.session.commit()
        return {key: channel.slug for key, channel in channels.items()}


def recount(app, label: str, wave: str | None = None) -> int:
    """Submitted responses that came through channels with this label: plain SQL."""
    with app.app_context():
        stmt = (
            select(func.count(Response.id))
            .join(Channel, Channel.id == Response.channel_id)
            .join(Wave, Wave.id == Response.wave_id)
            .where(Response.status == "submitted", Channel.label == label)
        )
        if wave:
            stmt = stmt.where(Wave.code == wave)
        return db.session.scalar(stmt)


# ---------------------------------------------------------------- the gate


def test_a_channel_of_a_few_respondents_is_withheld_in_the_api(app, client, study, token):
    assert recount(app, "hr-telegram") == 4 and recount(app, "linkedin", "w1") == 6
    for query in ({"channel": "hr-telegram"}, {"channel": "linkedin", "wave": "w1"}):
        body = api_json(client, token, **query)
        assert body["suppressed"] is True and body["reason"] == "too_small", (query, body)
        assert "practices" not in body and "n_respondents" not in body
    adjusted = api_json(client, token, "/api/v1/adjusted", channel="hr-telegram")
    assert adjusted["suppressed"] is True


def test_the_same_label_in_two_waves_is_one_kind_of_channel(app, client, study, token):
    direct = api_json(client, token, channel="direct")
    assert direct["suppressed"] is False
    assert direct["n_respondents"] == recount(app, "direct") == 282
    assert direct["filters"] == {"channel": "direct"}


def test_a_channel_that_would_give_away_a_small_sibling_is_withheld(app, client, study, token):
    # All (300) less direct (282) less linkedin (14) is hr-telegram's 4: each big one
    # passes the pairwise check, so the smallest other channel is withheld as well.
    assert recount(app, "linkedin") == 14 and recount(app, "hr-telegram") == 4
    body = api_json(client, token, channel="linkedin")
    assert body["suppressed"] is True and body["reason"] == "partition"
    assert "n_respondents" not in body


def test_a_channel_that_differs_from_its_wave_by_a_few_is_refused(app, client, study, token):
    # Wave w2 (20) less its direct channel (12) is its 8 linkedin respondents.
    assert api_json(client, token, wave="w2")["suppressed"] is False
    narrow = api_json(client, token, wave="w2", channel="direct")
    assert narrow["suppressed"] is True and narrow["reason"] == "differencing"


def test_the_dashboard_withholds_a_small_channel_on_every_page(app, client, study):
    log_in(app, client)
    for path in ("comparison", "ratings", "categories", "adjusted", "practice/flexible_hours"):
        r = client.get(f"/researcher/{path}?channel=hr-telegram&lang=en")
        assert r.status_code == 200, path
        assert "Fewer than 10 respondents match this selection" in r.text, path
    table = client.get("/researcher/table/comparison.csv?channel=hr-telegram")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert len(rows) == 1 and rows[0]["reason"] == "too_small"
    shown = client.get("/researcher/comparison?channel=direct&lang=en")
    assert "Respondents in this view: 282." in shown.text
    assert 'name="channel" value="direct"' in shown.text  # the filter form keeps it
    partition = client.get("/researcher/comparison?channel=linkedin&lang=en")
    assert "This one is withheld too" in partition.text


def test_a_channel_is_named_by_its_label_never_by_its_slug(app, client, study, token):
    slug = study[("w1", "hr-telegram")]
    for value in ("no-such-channel", slug, "LinkedIn"):
        body = api_json(client, token, status=400, channel=value)
        assert body["parameter"] == "channel", body
    log_in(app, client)
    r = client.get("/researcher/comparison", query_string={"channel": slug, "lang": "en"})
    assert r.status_code == 400 and "channel" in r.text
    r = client.get("/researcher/comparison?channel=nope&lang=ru")
    assert r.status_code == 400 and "нет канала с такой меткой" in r.text
    runner = app.test_cli_runner()
    out = runner.invoke(args=["report", "--out", "/dev/null", "--channel", slug])
    assert out.exit_code != 0 and "no channel has this label" in out.output


def test_the_report_command_refuses_a_small_channel(app, study):
    runner = app.test_cli_runner()
    out = runner.invoke(args=["report", "--out", "/dev/null", "--channel", "hr-telegram"])
    assert out.exit_code != 0 and "withheld" in out.output


# ---------------------------------------------------------------- the export


def export(client, token, name: str, **query) -> bytes:
    r = client.get(
        f"/api/v1/export/{name}", headers={"Authorization": f"Bearer {token}"}, query_string=query
    )
    data = r.get_data()
    r.close()
    assert r.status_code == 200, (name, r.status_code, data[:300])
    return data


def test_the_export_releases_a_channel_label_only_where_k_holds_with_it(app, client, study, token):
    with app.app_context():
        db.session.execute(update(Response).values(**SAME_BACKGROUND))
        db.session.commit()
        labels = dict(
            db.session.execute(
                select(Response.export_id, Channel.label).join(
                    Channel, Channel.id == Response.channel_id
                )
            ).all()
        )
    wide = list(csv.DictReader(io.StringIO(export(client, token, "responses").decode())))
    assert len(wide) == 300
    qis = [c for c in wide[0] if c != "respondent_id" and "__" not in c]
    assert qis[:3] == ["wave", "channel", "submitted_month"]
    # The attacker's recount: records per combination of every released quasi-identifier.
    sizes = Counter(tuple(row[c] for c in qis) for row in wide)
    blank = tuple("suppressed" for _ in qis)
    small = {combo: n for combo, n in sizes.items() if n < 5 and combo != blank}
    assert not small, small
    released = Counter(row["channel"] for row in wide)
    assert "hr-telegram" not in released  # 4 people: never a class of 5 with their label
    assert released["direct"] >= 250
    for row in wide:  # a released label is the respondent's own (or coarsened away)
        assert row["channel"] in (labels[row["respondent_id"]], "any", "suppressed")
    report = json.loads(export(client, token, "disclosure_report"))
    assert "channel" in report["quasi_identifiers"] and report["k_achieved"] >= 5
    codebook = {
        row["column"]: row
        for row in csv.DictReader(io.StringIO(export(client, token, "codebook").decode()))
    }
    values = codebook["channel"]["values"].split("|")
    assert {"direct", "linkedin", "hr-telegram", "any", "suppressed"} <= set(values)
    assert set(released) <= set(values)
    assert not set(study.values()) & set(values)  # never a slug
    assert not any(slug in json.dumps(codebook) for slug in study.values())
    assert "w1, w2" in codebook["channel"]["labels_en"]  # linkedin is in both waves


def test_a_channel_needs_no_generalization_when_every_channel_is_large(app, client, token):
    """Two channels of 150 people with one background: every label is released as it is."""
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], 300, 5)
        wave = db.session.scalar(select(Wave).filter_by(is_default=True))
        other = fieldwork.create_channel(wave, "alumni")
        ids = list(db.session.scalars(select(Response.id).order_by(Response.id)))
        first_day = db.session.scalar(select(func.min(Response.submitted_on)))
        db.session.execute(
            update(Response).values(
                is_demo=False,
                quality_flag=None,
                channel_id=fieldwork.direct_channel(wave).id,
                language="ru",
                submitted_on=first_day,
                **SAME_BACKGROUND,
            )
        )
        db.session.execute(
            update(Response).where(Response.id.in_(ids[:150])).values(channel_id=other.id)
        )
        db.session.commit()
    wide = list(csv.DictReader(io.StringIO(export(client, token, "responses").decode())))
    assert Counter(row["channel"] for row in wide) == {"alumni": 150, "direct": 150}
