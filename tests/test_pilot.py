"""Pilot waves: their responses stay out of the analysis, the API and the export unless asked
for (``include_pilot=1``, or the pilot wave named with ``wave=``), and every output that
includes them says so; the fieldwork numbers keep counting them.

The study: 360 seeded respondents turned real, 40 of them moved into a pilot wave (its own
direct channel). Every expected number is a plain SQL recount of the stored rows.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile

import pytest
from sqlalchemy import func, select, update

from survey import disclosure, fieldwork
from survey.demo import seed_demo
from survey.extensions import db
from survey.models import Answer, Response, Wave
from survey.questions import EXISTED
from tests.helpers import log_in

PRACTICE = "flexible_hours"
N_ALL, N_PILOT = 360, 40


pytestmark = pytest.mark.usefixtures("fresh_cache")


def build(app, n_pilot: int, n_all: int = N_ALL) -> dict:
    """``n_all`` real submitted respondents in the default wave, then ``n_pilot`` of them
    moved into a new pilot wave; returns the waves' ids and codes."""
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], n_all, 23)
        main = db.session.scalar(select(Wave).filter_by(is_default=True))
        direct = fieldwork.direct_channel(main)
        pilot = fieldwork.create_wave(
            fieldwork.WaveSpec(code="pilot", name_ru="Пилот", name_en="Pilot", is_pilot=True)
        )
        pilot_direct = fieldwork.direct_channel(pilot)
        db.session.execute(
            update(Response).values(
                is_demo=False, quality_flag=None, region="moscow", channel_id=direct.id
            )
        )
        ids = list(db.session.scalars(select(Response.id).order_by(Response.id)))
        db.session.execute(
            update(Response)
            .where(Response.id.in_(ids[:n_pilot]))
            .values(wave_id=pilot.id, channel_id=pilot_direct.id, region="spb")
        )
        db.session.commit()
        return {"main": main.id, "pilot": pilot.id, "main_code": main.code}


@pytest.fixture
def study(app):
    return build(app, N_PILOT)


def api(client, token, path="/api/v1/comparison", status=200, **query):
    r = client.get(path, headers={"Authorization": f"Bearer {token}"}, query_string=query)
    assert r.status_code == status, (query, r.status_code, r.text[:400])
    return r


def recount(app, wave_ids: list[int]) -> dict:
    """Respondents, and the yes and yes+no answers about Russian companies to PRACTICE, of
    the submitted real unflagged responses of these waves: plain SQL on the answer rows."""
    with app.app_context():
        base = (
            Response.status == "submitted",
            Response.is_demo.is_(False),
            Response.quality_flag.is_(None),
            Response.wave_id.in_(wave_ids),
        )
        n = db.session.scalar(select(func.count(Response.id)).where(*base))
        answers = dict(
            db.session.execute(
                select(Answer.met, func.count())
                .join(Response, Response.id == Answer.response_id)
                .where(*base, Answer.practice_id == PRACTICE, Answer.company_kind == "ru")
                .group_by(Answer.met)
            ).all()
        )
    yes = sum(answers.get(code, 0) for code in EXISTED)
    return {"n": n, "k_ru": yes, "n_ru": yes + answers.get("no", 0)}


def practice_row(body: dict) -> dict:
    return next(row for row in body["practices"] if row["practice_id"] == PRACTICE)


# ---------------------------------------------------------------- analysis and API


def test_pilot_responses_are_left_out_of_the_comparison_unless_asked_for(app, client, study, token):
    main, pilot = study["main"], study["pilot"]
    cases = (
        ({}, [main], False),
        ({"include_pilot": "1"}, [main, pilot], True),
        ({"wave": "pilot"}, [pilot], True),  # named explicitly: in, and labelled
        ({"wave": study["main_code"], "include_pilot": "1"}, [main], False),
    )
    for query, waves, labelled in cases:
        truth = recount(app, waves)
        body = api(client, token, **query).get_json()
        assert body["suppressed"] is False, (query, body)
        assert body["pilot"] is labelled and body["demo"] is False, query
        assert body["n_respondents"] == truth["n"], query
        row = practice_row(body)
        assert (row["k_ru"], row["n_ru"]) == (truth["k_ru"], truth["n_ru"]), query
    assert recount(app, [main])["n"] == N_ALL - N_PILOT  # the set-up, recounted
    assert api(client, token, include_pilot="1").get_json()["filters"] == {"include_pilot": "1"}


def test_include_pilot_is_a_yes_or_no_parameter(app, client, study, token):
    body = api(client, token, status=400, include_pilot="maybe").get_json()
    assert body["parameter"] == "include_pilot"
    r = client.get(
        "/api/v1/comparison?include_pilot=1&include_pilot=0",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 400 and r.get_json()["parameter"] == "include_pilot"
    params = {
        p["name"]
        for p in api(client, token, "/api/v1/openapi.json").get_json()["paths"]["/comparison"][
            "get"
        ]["parameters"]
    }
    assert {"include_pilot", "channel"} <= params


def test_the_adjusted_and_by_period_answers_carry_the_pilot_label(app, client, study, token):
    assert api(client, token, "/api/v1/adjusted").get_json()["pilot"] is False
    assert api(client, token, "/api/v1/adjusted", wave="pilot").get_json()["pilot"] is True
    by_period = api(client, token, "/api/v1/comparison/by-period", include_pilot="1").get_json()
    assert by_period["pilot"] is True


def test_the_fieldwork_numbers_keep_counting_the_pilot_wave_but_the_sample_leaves_it_out(
    app, client, study, token
):
    body = api(client, token, "/api/v1/fieldwork").get_json()
    with app.app_context():
        submitted = db.session.scalar(
            select(func.count(Response.id)).where(Response.status == "submitted")
        )
    assert body["completed"] == submitted == N_ALL  # operational: every wave counts
    # The sample composition follows the analysis: the pilot's 40 (all in spb) are not in it.
    assert body["background"]["region"]["moscow"] == N_ALL - N_PILOT
    assert body["background"]["region"]["spb"] is None  # 0 respondents: a withheld cell


# ---------------------------------------------------------------- dashboard and report


def test_the_dashboard_leaves_the_pilot_out_and_labels_it_when_included(app, client, study):
    log_in(app, client)
    main = recount(app, [study["main"]])["n"]
    everyone = recount(app, [study["main"], study["pilot"]])["n"]
    page = client.get("/researcher/comparison?lang=en")
    assert page.status_code == 200
    assert f"Respondents in this view: {main}." in page.text
    assert "Includes PILOT responses" not in page.text
    for query, n in (("include_pilot=1", everyone), ("wave=pilot", N_PILOT)):
        page = client.get(f"/researcher/comparison?{query}&lang=en")
        assert f"Respondents in this view: {n}." in page.text, query
        assert "Includes PILOT responses." in page.text, query
    checkbox = re.search(
        r'<input type="checkbox" name="include_pilot" value="1" ?(\w*)>', page.text
    )
    assert checkbox and checkbox.group(1) == ""  # wave=pilot: the box itself is not ticked
    ru = client.get("/researcher/ratings?include_pilot=1&lang=ru")
    assert "Включает ответы ПИЛОТНОЙ волны." in ru.text
    table = client.get("/researcher/table/comparison.csv?include_pilot=1")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert rows and {row["pilot_data"] for row in rows} == {"True"}
    plain = client.get("/researcher/table/comparison.csv")
    assert "pilot_data" not in plain.text.splitlines()[0]


def test_the_report_says_it_includes_pilot_responses(app, client, study):
    log_in(app, client)
    report = client.get("/researcher/report?include_pilot=1&lang=en")
    assert report.status_code == 200 and "Includes PILOT responses" in report.text
    plain = client.get("/researcher/report?lang=en")
    assert plain.status_code == 200 and "Includes PILOT responses" not in plain.text
    runner = app.test_cli_runner()
    out = runner.invoke(args=["report", "--out", "/dev/null", "--wave", "pilot"])
    assert out.exit_code == 0 and "includes PILOT responses" in out.output, out.output
    assert f"{N_PILOT} respondents" in out.output
    out = runner.invoke(args=["report", "--out", "/dev/null"])
    assert out.exit_code == 0 and "PILOT" not in out.output


# ---------------------------------------------------------------- the disclosure gate


def test_including_a_small_pilot_cannot_single_out_its_respondents(app, client, token):
    build(app, n_pilot=4)
    assert api(client, token).get_json()["suppressed"] is False
    with_pilot = api(client, token, include_pilot="1").get_json()
    assert with_pilot["suppressed"] is True and with_pilot["reason"] == "differencing"
    alone = api(client, token, wave="pilot").get_json()
    assert alone["suppressed"] is True and alone["reason"] == "too_small"
    assert "n_respondents" not in with_pilot and "practices" not in with_pilot
    assert with_pilot["pilot"] is True  # the label says what was asked, not a count


def test_judge_weighs_pilot_rows_only_for_a_segment_that_asks_for_them():
    # One filter (bit 0); rows: (bits, unflagged, worked_in, n, effective, pilot).
    lattice = [
        (0b1, True, "both", 40, "both", False),
        (0b1, True, "both", 3, "both", True),
        (0b0, True, "both", 50, "both", False),
    ]
    assert disclosure.judge(lattice, 1, False, 10, include_pilot=True).reason == "differencing"
    # Named explicitly (wave=<pilot>): the rows are in, with nothing narrower to compare.
    assert disclosure.judge(lattice, 1, False, 10).allowed
    bigger = [(0b1, True, "both", 12, "both", True), *lattice[::2]]
    assert disclosure.judge(bigger, 1, False, 10, include_pilot=True).allowed
    # Flagged and pilot together: the few flagged pilot rows are the difference.
    flagged = [*bigger, (0b1, False, "both", 2, "both", True)]
    verdict = disclosure.judge(flagged, 1, True, 10, include_pilot=True)
    assert verdict.reason == "differencing"


# ---------------------------------------------------------------- export


def export_file(client, token, name, **query):
    r = client.get(
        f"/api/v1/export/{name}", headers={"Authorization": f"Bearer {token}"}, query_string=query
    )
    data = r.get_data()
    r.close()
    assert r.status_code == 200, (name, r.status_code, data[:300])
    return r, data


def rows_of(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def export_ids(app, wave_id: int) -> set[str]:
    with app.app_context():
        return set(
            db.session.scalars(
                select(Response.export_id).where(
                    Response.wave_id == wave_id, Response.status == "submitted"
                )
            )
        )


def test_the_export_leaves_pilot_responses_out_unless_asked_and_then_marks_them(
    app, client, study, token
):
    app.config["EXPORT_MAX_SUPPRESSED_SHARE"] = 1.0  # seeded backgrounds are very varied
    pilot_ids, main_ids = export_ids(app, study["pilot"]), export_ids(app, study["main"])
    assert len(pilot_ids) == N_PILOT and len(main_ids) == N_ALL - N_PILOT

    _r, data = export_file(client, token, "responses")
    wide = rows_of(data)
    assert {row["respondent_id"] for row in wide} == main_ids
    assert "is_pilot" not in wide[0]
    _r, data = export_file(client, token, "answers_long")
    assert {row["respondent_id"] for row in rows_of(data)} <= main_ids
    report = json.loads(export_file(client, token, "disclosure_report")[1])
    assert report["pilot_included"] is False and report["pilot_waves"] == ["pilot"]
    assert report["records"] == N_ALL - N_PILOT

    _r, data = export_file(client, token, "responses", include_pilot="1")
    wide = rows_of(data)
    assert {row["respondent_id"] for row in wide} == main_ids | pilot_ids
    marks = {row["respondent_id"]: row["is_pilot"] for row in wide}
    for export_id, mark in marks.items():
        expected = "1" if export_id in pilot_ids else "0"
        assert mark in (expected, "suppressed"), (export_id, mark)
    shown = [row for row in wide if row["is_pilot"] != "suppressed"]
    assert {row["is_pilot"] for row in shown} == {"0", "1"}
    # k holds with the mark: every released combination, the mark included, is k or more.
    qis = [c for c in wide[0] if c not in ("respondent_id",) and "__" not in c]
    assert qis[-1] == "is_pilot" and "channel" in qis
    sizes: dict[tuple, int] = {}
    for row in wide:
        key = tuple(row[c] for c in qis)
        sizes[key] = sizes.get(key, 0) + 1
    blank = tuple("suppressed" for _ in qis)
    assert all(n >= 5 for key, n in sizes.items() if key != blank), sizes
    # A fully suppressed row hides the mark too, and every answer with it.
    for row in wide:
        if row["is_pilot"] == "suppressed":
            assert all(row[c] == "suppressed" for c in qis)

    _r, data = export_file(client, token, "codebook", include_pilot="1")
    codebook = {row["column"]: row for row in rows_of(data)}
    assert set(codebook["is_pilot"]["values"].split("|")) == {"0", "1", "suppressed"}
    assert "Pilot (pilot)" in codebook["wave"]["labels_en"]
    assert "is_pilot" in codebook["wave"]["question_en"]
    _r, data = export_file(client, token, "codebook")
    codebook = {row["column"]: row for row in rows_of(data)}
    assert "is_pilot" not in codebook and "include_pilot=1" in codebook["wave"]["question_en"]
    report = json.loads(export_file(client, token, "disclosure_report", include_pilot="1")[1])
    assert report["pilot_included"] is True and "is_pilot" in report["quasi_identifiers"]
    assert "is_pilot" in report["structural_quasi_identifiers"]

    r, data = export_file(client, token, "zip", include_pilot="1")
    assert "pilot-survey-export.zip" in r.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "responses.csv" in archive.namelist()
    r, _data = export_file(client, token, "zip")
    assert "pilot" not in r.headers["Content-Disposition"]


def test_the_export_command_takes_include_pilot(app, study, tmp_path):
    app.config["EXPORT_MAX_SUPPRESSED_SHARE"] = 1.0
    runner = app.test_cli_runner()
    out = runner.invoke(args=["export", str(tmp_path / "with"), "--include-pilot"])
    assert out.exit_code == 0, out.output
    assert f"Exported {N_ALL} responses" in out.output and "PILOT" in out.output
    out = runner.invoke(args=["export", str(tmp_path / "without")])
    assert out.exit_code == 0 and f"Exported {N_ALL - N_PILOT} responses" in out.output
    header = (tmp_path / "with" / "responses.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "is_pilot" in header.split(",")
