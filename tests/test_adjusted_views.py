"""The adjusted estimate on the dashboard and in the API: the numbers equal statsmodels' GEE
fitted on the raw answer rows read back from the database, the disclosure gate holds, and
bad requests, strangers and both languages are handled."""

from __future__ import annotations

import datetime as dt
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import special, stats
from sqlalchemy import select

from survey import responses
from survey.demo import seed_demo
from survey.extensions import db
from survey.models import Answer, Response
from survey.responses import catalog_version_id, default_wave
from tests.helpers import bearer, log_in

PRACTICES = ("target_bonus", "spot_award", "sales_commission")
PERIODS = ("before_2014", "2014_2021", "2022_on")
ROLES = ("specialist", "line_manager", "middle_manager", "executive")
FUNCTIONS = ("sales", "hr", "it", "finance")
KINDS = ("ru", "foreign")
Z = stats.norm.ppf(0.975)
ADJUSTED = "existed ~ foreign + C(period) + C(role) + C(function)"


pytestmark = pytest.mark.usefixtures("fresh_cache")


def people(n_new: int = 150, n_legacy: int = 20, seed: int = 4, legacy_in_spb: int = 3):
    """Respondents as dicts: background, each kind's block, and answers per (practice,
    kind). Foreign-company answers come from later periods, and the practices are more
    common later: the period confounds the kind. Legacy respondents (before 2026-12) have
    no kind blocks and the old yes/no scale."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_new + n_legacy):
        legacy = i >= n_new
        worked = rng.choice(["ru_only", "foreign_only", "both"], p=[0.3, 0.2, 0.5])
        person = {
            "worked_in": worked,
            "industry": "energy" if i < 3 else str(rng.choice(["it", "finance", "retail"])),
            "region": "spb" if (i - n_new < legacy_in_spb if legacy else i % 4 == 0) else "moscow",
            "legacy": legacy,
            "answers": {},
        }
        shared = rng.random()
        for index, kind in enumerate(KINDS):
            if worked == ("foreign_only" if kind == "ru" else "ru_only"):
                continue
            period = int(rng.choice(3, p=[0.45, 0.35, 0.2] if kind == "ru" else [0.15, 0.35, 0.5]))
            function = str(rng.choice(FUNCTIONS, p=[0.4, 0.2, 0.2, 0.2]))
            if not legacy:
                person[f"{kind}_last_year"] = PERIODS[period]
                person[f"{kind}_role_level"] = str(rng.choice(ROLES))
                person[f"{kind}_function"] = function
            for number, pid in enumerate(PRACTICES):
                prob = special.expit(-0.7 + 0.6 * period + 0.2 * number + 0.2 * index)
                u = shared if rng.random() < 0.5 else rng.random()
                if legacy:
                    met = "yes" if u < prob else "no"
                elif pid == "sales_commission" and function != "sales" and rng.random() < 0.6:
                    met = "not_my_role"
                elif rng.random() < 0.08:
                    met = "dk"
                else:
                    met = str(rng.choice(["applied", "existed"])) if u < prob else "no"
                person["answers"][(pid, kind)] = met
        out.append(person)
    return out


def store(app, persons, is_demo: bool = False) -> None:
    """Insert submitted responses and their answers as the questionnaire stores them."""
    with app.app_context():
        wave_id, version_id = default_wave().id, catalog_version_id()
        day = dt.date(2027, 1, 15)
        for person in persons:
            blocks = {
                f"{kind}_{name}": person.get(f"{kind}_{name}")
                for kind in KINDS
                for name in ("last_year", "role_level", "function")
            }
            years = {
                f"{kind}_{name}": value
                for kind in KINDS
                if person.get(f"{kind}_last_year")
                for name, value in (("years", "3_5"), ("employers", "1"))
            }
            response = Response(
                status="submitted",
                wave_id=wave_id,
                catalog_version_id=version_id,
                language="ru",
                is_demo=is_demo,
                consent_version="2026-11" if person["legacy"] else "2026-12",
                consented_on=day,
                started_on=day,
                updated_on=day,
                submitted_on=day,
                worked_in=person["worked_in"],
                current_employer="ru",
                industry=person["industry"],
                company_size="1000_4999",
                role_level="specialist",
                job_function=None if person["legacy"] else "it",
                experience_band="11_20",
                region=person["region"],
                **blocks,
                **years,
            )
            db.session.add(response)
            db.session.flush()
            for (pid, kind), met in person["answers"].items():
                rating = 4 if met in ("applied", "yes") else None
                db.session.add(
                    Answer(
                        response_id=response.id,
                        practice_id=pid,
                        company_kind=kind,
                        met=met,
                        rating=rating,
                    )
                )
        db.session.commit()
        # Rows written past the write paths: derive the answer vectors from them, as a
        # write path does (the count tables read the vectors).
        list(responses.check_vectors(repair=True))


def raw_answers(app) -> pd.DataFrame:
    """Every stored answer with its response's covariates: plain rows, no aggregation."""
    columns = [
        Answer.response_id,
        Answer.practice_id,
        Answer.company_kind,
        Answer.met,
        Response.region,
        Response.is_demo,
        *(
            getattr(Response, f"{kind}_{name}")
            for kind in KINDS
            for name in ("last_year", "role_level", "function")
        ),
    ]
    with app.app_context():
        rows = db.session.execute(
            select(*columns).join(Response, Response.id == Answer.response_id)
        ).all()
    names = ["respondent", "practice_id", "kind", "met", "region", "is_demo"]
    names += [
        f"{kind}_{name}" for kind in KINDS for name in ("last_year", "role_level", "function")
    ]
    return pd.DataFrame(rows, columns=names)


def model_rows(raw: pd.DataFrame, practice_id: str) -> pd.DataFrame:
    """The per-answer rows of the model: existed (applied / existed / legacy yes) or no,
    with the covariates of the answer's own kind; answers without covariates left out."""
    sel = raw[
        (raw["practice_id"] == practice_id) & raw["met"].isin(["applied", "existed", "yes", "no"])
    ]
    rows = pd.DataFrame(
        {
            "respondent": sel["respondent"],
            "foreign": (sel["kind"] == "foreign").astype(int),
            "existed": (sel["met"] != "no").astype(float),
        }
    )
    for name, column in (("period", "last_year"), ("role", "role_level"), ("function", "function")):
        rows[name] = np.where(sel["kind"] == "ru", sel[f"ru_{column}"], sel[f"foreign_{column}"])
    rows = rows.dropna(subset=["period", "role", "function"])
    return rows.sort_values(["respondent", "foreign"]).reset_index(drop=True)


def gee(rows: pd.DataFrame, formula: str):
    return sm.GEE.from_formula(
        formula,
        groups="respondent",
        data=rows,
        family=sm.families.Binomial(),
        cov_struct=sm.cov_struct.Exchangeable(),
    ).fit()


def standardised(result) -> tuple[float, float]:
    """Mean predicted share foreign minus Russian, and its delta-method standard error from
    a numerical gradient of statsmodels' fit."""
    exog = np.asarray(result.model.exog)
    column = list(result.model.exog_names).index("foreign")
    as_foreign, as_russian = exog.copy(), exog.copy()
    as_foreign[:, column], as_russian[:, column] = 1.0, 0.0

    def effect(params):
        return float(
            np.mean(special.expit(as_foreign @ params) - special.expit(as_russian @ params))
        )

    params = np.asarray(result.params)
    gradient = np.array(
        [
            (effect(params + step) - effect(params - step)) / 2e-6
            for step in np.eye(len(params)) * 1e-6
        ]
    )
    return effect(params), math.sqrt(gradient @ np.asarray(result.cov_params()) @ gradient)


def strict_json(r) -> dict:
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    return json.loads(r.get_data(as_text=True), parse_constant=refuse)


def by_id(body: dict) -> dict[str, dict]:
    return {row["practice_id"]: row for row in body["practices"]}


def test_the_api_gives_statsmodels_gee_on_the_raw_answer_rows(app, client):
    store(app, people())
    body = strict_json(client.get("/api/v1/adjusted", headers=bearer(app)))
    assert body["suppressed"] is False and body["demo"] is False
    assert body["n_respondents"] == 170 and body["min_cell"] == 10
    raw = raw_answers(app)
    estimated = 0
    for pid in PRACTICES:
        row = by_id(body)[pid]
        rows = model_rows(raw, pid)
        assert row["n_answers"] == len(rows)
        assert row["n_respondents"] == rows["respondent"].nunique()
        assert row["n_answers_ru"] == (rows["foreign"] == 0).sum()
        assert row["n_answers_foreign"] == (rows["foreign"] == 1).sum()
        if row["note"] is not None:  # a model that cannot be fitted: nulls, never a guess
            assert row["adjusted"]["odds_ratio"] is None and row["adjusted_diff"] is None
            continue
        estimated += 1
        crude, full = gee(rows, "existed ~ foreign"), gee(rows, ADJUSTED)
        for block, fit in (("unadjusted", crude), ("adjusted", full)):
            b, se = fit.params["foreign"], fit.bse["foreign"]
            assert row[block]["odds_ratio"] == pytest.approx(math.exp(b), abs=1e-6)
            assert row[block]["ci"] == pytest.approx(
                [math.exp(b - Z * se), math.exp(b + Z * se)], abs=1e-6
            )
            assert row[block]["p_value"] == pytest.approx(fit.pvalues["foreign"], abs=1e-6)
        diff, se = standardised(full)
        assert row["adjusted_diff"] == pytest.approx(diff, abs=1e-6)
        assert row["adjusted_diff_ci"] == pytest.approx([diff - Z * se, diff + Z * se], abs=1e-6)
        assert row["adjusted"]["adjusted_for"] == ["period", "role", "function"]
        assert row["suppressed"] is False
    assert estimated >= 2
    # Practices nobody answered here get no estimate, and say why.
    silent = [r for r in body["practices"] if r["practice_id"] not in PRACTICES]
    assert silent and all(r["note"] == "too_few_answers" and r["suppressed"] for r in silent)
    assert all(r["n_answers"] is None and r["unadjusted"]["odds_ratio"] is None for r in silent)


def test_the_page_shows_the_same_numbers_in_both_languages(app, client):
    store(app, people())
    log_in(app, client)
    body = strict_json(client.get("/api/v1/adjusted"))  # the session works for the API too
    row = by_id(body)["target_bonus"]
    assert row["note"] is None
    titles = {
        "ru": "Поправка на период, уровень должности и функцию",
        "en": "Adjusted for period, role level and function",
    }
    before = {"ru": "до декабря 2026", "en": "before December 2026"}
    for lang in ("ru", "en"):
        r = client.get("/researcher/adjusted", query_string={"lang": lang})
        assert r.status_code == 200 and r.mimetype == "text/html"
        text = r.text
        assert f'<html lang="{lang}">' in text
        assert titles[lang] in text and before[lang] in text
        line = re.search(r'<tr id="adjusted-target_bonus".*?</tr>', text, re.S).group(0)
        assert f"{row['unadjusted']['odds_ratio']:.2f}" in line
        assert f"{row['adjusted']['odds_ratio']:.2f}" in line
        assert f"{row['adjusted']['ci'][0]:.2f}; {row['adjusted']['ci'][1]:.2f}" in line
        assert f"{row['adjusted_diff'] * 100:.1f}" in line
        assert "/researcher/practice/target_bonus" in line
    # The practice page shows the adjusted estimate beside the unadjusted numbers; the
    # comparison page links to the adjusted table.
    detail = client.get("/researcher/practice/target_bonus", query_string={"lang": "en"}).text
    assert f"adjusted {row['adjusted']['odds_ratio']:.2f}" in detail
    assert "/researcher/adjusted#adjusted-target_bonus" in detail
    assert 'href="/researcher/adjusted"' in client.get("/researcher/comparison").text


def test_a_small_segment_is_refused_with_the_comparisons_message(app, client):
    store(app, people())
    auth = bearer(app)
    body = strict_json(client.get("/api/v1/adjusted?industry=energy", headers=auth))
    assert body["suppressed"] is True and body["reason"] == "too_small"
    assert "practices" not in body and "n_respondents" not in body
    comparison = strict_json(client.get("/api/v1/comparison?industry=energy", headers=auth))
    assert body["message"] == comparison["message"]
    log_in(app, client)
    text = client.get("/researcher/adjusted?industry=energy&lang=en").text
    assert "Fewer than 10 respondents match this selection" in text
    assert 'id="adjusted-target_bonus"' not in text


def test_a_few_answers_left_out_for_lack_of_covariates_withhold_the_practice(app, client):
    # In Saint Petersburg three legacy respondents answered without the new questions:
    # the unadjusted comparison counts them and this table would not, so the difference
    # would be about those three.
    store(app, people())
    body = strict_json(client.get("/api/v1/adjusted?region=spb", headers=bearer(app)))
    assert body["suppressed"] is False
    for pid in PRACTICES:
        row = by_id(body)[pid]
        assert row["suppressed"] is True and row["note"] == "small_excluded"
        assert row["n_answers"] is None and row["adjusted"]["odds_ratio"] is None


def test_a_period_filter_leaves_the_period_out_of_the_model(app, client):
    store(app, people())
    body = strict_json(client.get("/api/v1/adjusted?period=2022_on", headers=bearer(app)))
    raw = raw_answers(app)
    fitted = [r for r in body["practices"] if r["adjusted"]["odds_ratio"] is not None]
    assert fitted
    for row in fitted:
        assert "period" not in row["adjusted"]["adjusted_for"]
        rows = model_rows(raw, row["practice_id"])
        rows = rows[rows["period"] == "2022_on"]
        full = gee(rows, "existed ~ foreign + C(role) + C(function)")
        assert row["adjusted"]["odds_ratio"] == pytest.approx(
            math.exp(full.params["foreign"]), abs=1e-6
        )


def test_demo_rows_are_no_cover_for_a_practice_real_respondents_did_not_answer(app, client):
    store(app, people())
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], 200, 3)
    auth = bearer(app)
    body = strict_json(client.get("/api/v1/adjusted?include_demo=1", headers=auth))
    assert body["demo"] is True
    rows = by_id(body)
    assert rows["gainsharing"]["suppressed"] and rows["gainsharing"]["n_answers"] is None
    assert not rows["target_bonus"]["suppressed"]
    assert rows["target_bonus"]["n_respondents"] > 170  # demo respondents are in it


def test_new_responses_are_picked_up(app, client):
    store(app, people())
    auth = bearer(app)
    first = strict_json(client.get("/api/v1/adjusted", headers=auth))
    store(app, people(n_new=30, n_legacy=0, seed=9))
    second = strict_json(client.get("/api/v1/adjusted", headers=auth))
    assert second["n_respondents"] == first["n_respondents"] + 30


@pytest.mark.parametrize(
    "query", ["foo=1", "period=1999", "industry=steel", "period=2022_on&period=before_2014"]
)
def test_bad_parameters_are_a_400_naming_them(app, client, query):
    auth = bearer(app)
    r = client.get(f"/api/v1/adjusted?{query}", headers=auth)
    assert r.status_code == 400 and r.mimetype == "application/json"
    assert r.get_json()["parameter"] == query.split("=")[0]
    log_in(app, client)
    r = client.get(f"/researcher/adjusted?{query}&lang=en")
    assert r.status_code == 400
    assert query.split("=")[0] in r.text


def test_strangers_are_sent_to_log_in_or_refused(app, client):
    r = client.get("/researcher/adjusted")
    assert r.status_code == 302 and "/researcher/login" in r.location
    r = client.get("/api/v1/adjusted")
    assert r.status_code == 401 and r.mimetype == "application/json"
    r = client.get("/api/v1/adjusted", headers={"Authorization": "Bearer svy_" + "x" * 43})
    assert r.status_code == 401


def test_an_empty_study_answers_without_estimates(app, client):
    body = strict_json(client.get("/api/v1/adjusted", headers=bearer(app)))
    assert body["suppressed"] is True  # no respondents at all: the gate refuses
