"""The disclosure gate: small segments, small cells, differencing, demo rows as cover, and
query parameters that cannot be honoured, on every output that shows numbers or examples.

The study: 600 synthetic respondents of which 300 are then marked real (test set-up), with
their background engineered so that the small groups are known in advance; every expected
count comes from a plain SQL recount of the response table.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from statsmodels.stats.multitest import multipletests

from survey import disclosure
from survey.demo import seed_demo
from survey.extensions import db
from survey.models import Answer, PracticeExample, Response
from tests.helpers import api_json, auth_header, log_in

CANARY = "Canary-example-7731 of one identifiable person"


pytestmark = pytest.mark.usefixtures("fresh_cache")


def _ids(app, where=()) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(Response.id).where(*where).order_by(Response.id)))


def _set(app, ids, **values) -> None:
    with app.app_context():
        db.session.execute(update(Response).where(Response.id.in_(ids)).values(**values))
        db.session.commit()


@pytest.fixture
def study(app):
    """600 demo respondents, 300 of them turned real. Among the real ones: all in Moscow but
    3 in Saint Petersburg; 4 in consulting; 2 flagged as likely bots; one example text."""
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], 600, 11)
    ids = _ids(app)
    real = ids[:300]
    _set(app, real, is_demo=False, region="moscow", industry="it", quality_flag=None)
    _set(app, real[:3], region="spb")
    _set(app, real[10:14], industry="consulting")
    _set(app, real[20:22], quality_flag="too_fast")
    with app.app_context():
        db.session.add(
            PracticeExample(response_id=real[0], practice_id="flexible_hours", text=CANARY)
        )
        db.session.commit()
    return {"real": real, "demo": ids[300:]}


def real_count(app, **where) -> int:
    """Submitted, real, unflagged responses matching column values: a plain recount."""
    with app.app_context():
        conds = [getattr(Response, k) == v for k, v in where.items()]
        return db.session.scalar(
            select(func.count(Response.id)).where(
                Response.status == "submitted",
                Response.is_demo.is_(False),
                Response.quality_flag.is_(None),
                *conds,
            )
        )


# ---------------------------------------------------------------- segment threshold


def test_a_segment_of_a_few_real_respondents_gets_no_breakdown_even_with_demo_rows(
    app, client, study, token
):
    assert real_count(app, region="spb") == 3  # the set-up, recounted
    for query in ({"region": "spb"}, {"region": "spb", "include_demo": "1"}):
        body = api_json(client, token, **query)
        assert body["suppressed"] is True and body["reason"] == "too_small", body
        assert body["min_cell"] == 10
        assert "practices" not in body and "n_respondents" not in body
        assert "3" not in json.dumps({k: v for k, v in body.items() if k != "filters"}), body


def test_the_practice_page_of_a_small_segment_shows_neither_numbers_nor_examples(
    app, client, study
):
    log_in(app, client)
    r = client.get("/researcher/practice/flexible_hours?region=spb")
    assert r.status_code == 200
    assert CANARY not in r.text
    assert "подходят меньше 10 респондентов" in r.text
    # The same respondent's example is shown once it rests on a large enough segment.
    wide = client.get("/researcher/practice/flexible_hours")
    assert wide.status_code == 200 and CANARY in wide.text


def test_every_researcher_output_of_a_small_segment_is_withheld(app, client, study, token):
    log_in(app, client)
    for path in ("comparison", "ratings", "categories", "practice/flexible_hours"):
        r = client.get(f"/researcher/{path}?region=spb&lang=en")
        assert r.status_code == 200, path
        assert "Fewer than 10 respondents match this selection" in r.text, path
    table = client.get("/researcher/table/comparison.csv?region=spb")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert rows == [
        {
            "suppressed": "True",
            "reason": "too_small",
            "min_cell": "10",
            "message": rows[0]["message"],
            "demo_data": rows[0]["demo_data"],
        }
    ]
    category = api_json(client, token, level="category", industry="consulting")
    assert category["suppressed"] is True  # 4 real consultants


def test_the_report_command_refuses_a_small_segment(app, study):
    runner = app.test_cli_runner()
    out = runner.invoke(args=["report", "--out", "/dev/null", "--region", "spb"])
    assert out.exit_code != 0 and "withheld" in out.output


# ---------------------------------------------------------------- differencing


def test_two_segments_differing_by_a_few_respondents_are_not_both_answered(
    app, client, study, token
):
    everyone = real_count(app)
    in_moscow = real_count(app, region="moscow")
    assert 0 < everyone - in_moscow < 10 and in_moscow >= 10  # the tracker pair
    assert api_json(client, token)["suppressed"] is False
    narrow = api_json(client, token, region="moscow")
    assert narrow["suppressed"] is True and narrow["reason"] == "differencing"
    # A filter that changes nothing (everyone real is in IT but the 4 consultants) is no
    # tracker by itself: industry=it differs from everyone by 4, so it is refused too,
    # while an unrelated large split stays answerable.
    assert api_json(client, token, industry="it")["reason"] == "differencing"


def test_including_flagged_responses_cannot_single_out_the_flagged_few(app, client, study, token):
    assert api_json(client, token)["suppressed"] is False
    with_flagged = api_json(client, token, include_flagged="1")
    assert with_flagged["suppressed"] is True and with_flagged["reason"] == "differencing"


def test_judge_on_a_hand_made_lattice():
    # Two filters (bit 0, bit 1); rows: (bits, unflagged, worked_in, n).
    lattice = [(0b11, True, "both", 30), (0b01, True, "ru_only", 5), (0b00, True, "both", 40)]
    # Segment both filters: 30; dropping filter 1 adds 5 -> refused.
    assert disclosure.judge(lattice, 2, False, 10).reason == "differencing"
    # The broader segment (filter 0 only): 35, its broader (none): 75, difference 40.
    assert disclosure.judge(lattice[1:] + [(0b01, True, "both", 30)], 1, False, 10).allowed
    assert disclosure.judge([(0b1, True, "both", 9)], 1, False, 10).reason == "too_small"
    # A difference confined to one kind's respondents is caught in that view: the segment
    # and the broader one differ by 12 in all, but only 3 of them know Russian companies.
    split = [(0b1, True, "both", 20), (0b0, True, "foreign_only", 9), (0b0, True, "both", 3)]
    assert disclosure.judge(split, 1, False, 10).reason == "differencing"


def test_secondary_suppression_hides_a_second_cell_when_one_is_withheld():
    frame = pd.DataFrame({"code": ["a", "b", "c"], "n": [40, 3, 25]})
    masked = disclosure.mask_counts(frame, 10)
    assert masked["suppressed"].tolist() == [False, True, True]
    assert masked["n"].isna().tolist() == [False, True, True]
    two = disclosure.mask_counts(pd.DataFrame({"code": ["a", "b", "c"], "n": [40, 3, 0]}), 10)
    assert two["suppressed"].tolist() == [False, True, True]


# ---------------------------------------------------------------- cells


def test_cells_below_the_threshold_are_withheld_and_q_values_cover_shown_tests(
    app, client, study, token
):
    body = api_json(client, token, worked_in="ru_only")
    assert body["suppressed"] is False
    assert body["n_respondents"] == real_count(app, worked_in="ru_only")
    with app.app_context():
        n_ru = db.session.scalar(
            select(func.count(Answer.id))
            .join(Response, Response.id == Answer.response_id)
            .where(
                Response.is_demo.is_(False),
                Response.quality_flag.is_(None),
                Response.worked_in == "ru_only",
                Answer.practice_id == "flexible_hours",
                Answer.company_kind == "ru",
                Answer.met.in_(["applied", "existed", "yes", "no"]),  # existed or not
            )
        )
    rows = {r["practice_id"]: r for r in body["practices"]}
    assert rows["flexible_hours"]["n_ru"] == n_ru >= 10
    for row in rows.values():  # nobody here knows foreign companies: every such cell is out
        assert {"foreign", "paired", "rating_foreign"} <= set(row["suppressed"])
        assert row["n_foreign"] is None and row["p_foreign"] is None
        assert row["p_value"] is None and row["q_value"] is None and row["diff"] is None
        assert row["paired"]["n"] is None and row["rating_foreign"]["counts"] == [None] * 5
    log_in(app, client)
    table = client.get("/researcher/table/comparison.csv?worked_in=ru_only")
    first = next(csv.DictReader(io.StringIO(table.text)))
    assert first["n_foreign"] == "< 10" and first["p_foreign"] == ""
    # q-values are Benjamini-Hochberg over the tests that are shown.
    everyone = api_json(client, token)["practices"]
    shown = [r["p_value"] for r in everyone if r["p_value"] is not None]
    expected = multipletests(shown, method="fdr_bh")[1]
    got = [r["q_value"] for r in everyone if r["p_value"] is not None]
    assert np.allclose(got, expected)


def test_a_mixed_view_judges_cells_on_the_real_rows(app, client, study, token):
    """With demo rows mixed in, a cell of 3 real + many demo respondents is still withheld."""
    _set(app, study["real"][:3], region="moscow")
    _set(app, study["real"][10:14], industry="it")
    _set(app, study["real"][20:22], quality_flag=None)
    real_foreign_only = _ids(
        app, (Response.is_demo.is_(False), Response.worked_in == "foreign_only")
    )
    _set(app, real_foreign_only[3:], worked_in="both")
    mixed = api_json(client, token, include_demo="1")
    assert mixed["suppressed"] is False and mixed["demo"] is True
    with app.app_context():
        demo_foreign_only = db.session.scalar(
            select(func.count(Response.id)).where(
                Response.is_demo.is_(True), Response.worked_in == "foreign_only"
            )
        )
    assert demo_foreign_only >= 10  # the demo rows alone would pass the threshold
    background = api_json(client, token, path="/api/v1/fieldwork", include_demo="1")
    assert "foreign_only" in background["background_suppressed"]["worked_in"]
    assert background["background"]["worked_in"]["foreign_only"] is None


def test_fieldwork_background_withholds_small_cells_in_every_output(app, client, study, token):
    body = api_json(client, token, path="/api/v1/fieldwork")
    assert body["background"]["region"]["spb"] is None
    assert "spb" in body["background_suppressed"]["region"]
    assert body["background"]["region"]["moscow"] == real_count(app, region="moscow")
    log_in(app, client)
    table = client.get("/researcher/table/background.csv")
    rows = [r for r in csv.DictReader(io.StringIO(table.text)) if r["question"] == "region"]
    by_label = {r["label"]: r["n"] for r in rows}
    assert "< 10" in by_label.values() and "3" not in by_label.values()


# ---------------------------------------------------------------- query parameters


def test_unknown_or_repeated_parameters_and_unknown_values_are_a_400_naming_them(
    app, client, study, token
):
    for query, name in (
        ({"indsutry": "it"}, "indsutry"),
        ({"industry": "astrology"}, "industry"),
        ({"wave": "no-such-wave"}, "wave"),
        ({"include_demo": "maybe"}, "include_demo"),
        ({"level": "galaxy"}, "level"),
    ):
        body = api_json(client, token, status=400, **query)
        assert body["parameter"] == name, body
    r = client.get(
        "/api/v1/comparison?industry=it&industry=finance",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 400 and r.get_json()["parameter"] == "industry"
    log_in(app, client)
    for page in ("", "comparison", "ratings", "categories", "practice/flexible_hours"):
        for name in ("name", "endpoint", "practice_id", "_external"):
            r = client.get(f"/researcher/{page}?{name}=x")
            assert r.status_code == 400, (page, name, r.status_code)
            assert name in r.text


ROUTES = (
    "/",
    "/profile",
    "/review",
    "/thanks",
    "/withdraw",
    "/lang/en",
    "/researcher/login",
    "/researcher/",
    "/researcher/comparison",
    "/researcher/ratings",
    "/researcher/categories",
    "/researcher/practice/flexible_hours",
    "/researcher/export",
    "/researcher/table/comparison.csv",
    "/api/v1/comparison",
    "/api/v1/fieldwork",
    "/api/v1/practices",
    "/api/v1/openapi.json",
    "/api/v1/export/codebook",
    "/researcher/export/download",
    "/researcher/table/background.csv",
    "/page/1",
    "/resume/not-a-token",
    "/static/css/survey.css",
)
NAMES = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12),
    st.sampled_from(["name", "endpoint", "next", "view", "level", "lang", "wave", "_external"]),
)
VALUES = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pairs=st.lists(st.tuples(NAMES, VALUES), max_size=4), route=st.sampled_from(ROUTES))
def test_arbitrary_query_parameter_names_never_give_a_server_error(app, token, pairs, route):
    client = app.test_client()
    r = client.get(route, query_string=pairs, headers=auth_header(token))
    r.close()  # a static file's handle is closed now, not whenever the collector runs
    assert r.status_code < 500, (route, pairs, r.status_code)


def test_examples_are_shown_in_random_id_order_not_in_the_order_they_were_written(
    app, client, study
):
    """Row ids grow with time: showing examples in id order would line them up with logs."""
    real = study["real"][100:130]
    with app.app_context():
        for i, rid in enumerate(real):
            db.session.add(
                PracticeExample(response_id=rid, practice_id="peer_recognition", text=f"ex-{i:02d}")
            )
        db.session.commit()
        by_export_id = list(
            db.session.scalars(
                select(PracticeExample.text)
                .join(Response, Response.id == PracticeExample.response_id)
                .where(PracticeExample.practice_id == "peer_recognition")
                .order_by(Response.export_id)
            )
        )
    log_in(app, client)
    text = client.get("/researcher/practice/peer_recognition").text
    shown = [t for t in (f"ex-{i:02d}" for i in range(30)) if t in text]
    assert len(shown) == 30
    order = sorted(shown, key=text.index)
    assert order == by_export_id
    assert order != sorted(order)  # not the insertion order (30 random ids: never sorted)


def test_a_small_one_kind_only_group_takes_the_paired_block_with_it_not_the_primary_test():
    """Russian total = Russian-only + paired: with 3 Russian-only respondents, showing the
    total and the paired table would give those 3 answers by subtraction."""
    from analysis.compare import compare

    prevalence = pd.DataFrame(
        {
            "practice_id": ["x", "x"],
            "company_kind": ["ru", "foreign"],
            "yes": [2 + 20, 30 + 25],  # 3 Russian-only (2 yes), 50 foreign-only, 40 paired
            "no": [1 + 20, 20 + 15],
            "dk": [0, 0],
        }
    )
    paired = pd.DataFrame(
        {"practice_id": ["x"], "yes_yes": [15], "yes_no": [5], "no_yes": [10], "no_no": [10]}
    )
    structure = {"ru_only": 3, "foreign_only": 50, "both": 40}
    table = compare(prevalence, paired, None, None)
    masked = disclosure.mask_comparison(table, 10, structure=structure).iloc[0]
    assert masked["suppressed_ru_only"] and masked["suppressed_paired"]
    assert np.isnan(masked["paired_n"]) and np.isnan(masked["paired_p_val"])
    assert not masked["suppressed_ru"] and masked["n_ru"] == 43
    assert not np.isnan(masked["p_val"])  # the primary test stays
    assert np.isnan(masked["indep_p_val"])  # the secondary one rests on the 3
    # Three Russian-only answers that are only a few "don't know" answers elsewhere do not
    # withhold the paired block when the segment's groups are all large (a residual risk
    # the README names).
    wide = {"ru_only": 30, "foreign_only": 50, "both": 40}
    shown = disclosure.mask_comparison(table, 10, structure=wide).iloc[0]
    assert not shown["suppressed_paired"] and shown["paired_n"] == 40
