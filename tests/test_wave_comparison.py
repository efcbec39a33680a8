"""Wave against wave (issue 15): the prevalence of every practice in two waves, per company
kind, through the API, the page and the CSV, checked against a plain recount of the stored
answers with statsmodels and scipy; the disclosure gate; bad requests; who may read it."""

from __future__ import annotations

import html
import io
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import case, func, select, update
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
)

from analysis import table as definition
from analysis.figures import format_p_value, format_percent
from analysis.proportions import compare_independent
from analysis.waves import COLUMNS, SAME_AS, SIDES, compare_waves
from survey import queries, responses, results, waves_compare
from survey.demo import seed_demo
from survey.extensions import db
from survey.fieldwork import WaveSpec, create_wave
from survey.models import Answer, Response, Wave
from tests.helpers import log_in
from tests.test_openapi_fuzz import conforms, strict_json

ASSUMPTION = (
    "Respondents present in both waves cannot be linked (no identity is kept), so the "
    "comparison assumes independent samples."
)
EXISTED = ("applied", "existed", "yes")
SMALL_KEPT = 6  # yes/no answers left in the small cell made below


pytestmark = pytest.mark.usefixtures("fresh_cache")


def _ids(app, *where) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(Response.id).where(*where).order_by(Response.id)))


def _move(app, ids, code: str) -> None:
    with app.app_context():
        wave_id = db.session.scalar(select(Wave.id).where(Wave.code == code))
        db.session.execute(update(Response).where(Response.id.in_(ids)).values(wave_id=wave_id))
        db.session.commit()


@pytest.fixture
def study(app):
    """Two waves of real respondents (160 in spring, 140 in autumn) from the demo seeding,
    and one small cell: in autumn, the first practice's answers about foreign companies are
    don't know but for SMALL_KEPT yes/no answers."""
    cat = app.extensions["survey_catalog"]
    with app.app_context():
        for code, ru, en in (("spring", "Весна", "Spring"), ("autumn", "Осень", "Autumn")):
            create_wave(WaveSpec(code=code, name_ru=ru, name_en=en))
        seed_demo(cat, 300, 21)
        db.session.execute(update(Response).values(is_demo=False, quality_flag=None))
        db.session.commit()
    ids = _ids(app)
    _move(app, ids[:160], "spring")
    _move(app, ids[160:], "autumn")
    practice = cat.practices[0].id
    with app.app_context():
        answered = list(
            db.session.scalars(
                select(Answer.id)
                .where(
                    Answer.response_id.in_(ids[160:]),
                    Answer.practice_id == practice,
                    Answer.company_kind == "foreign",
                    Answer.met.in_([*EXISTED, "no"]),
                )
                .order_by(Answer.id)
            )
        )
        assert len(answered) > 20  # the set-up leaves a small cell out of a large one
        db.session.execute(
            update(Answer)
            .where(Answer.id.in_(answered[SMALL_KEPT:]))
            .values(met="dk", rating=None, rating_mixed=False)
        )
        db.session.commit()
        list(responses.check_vectors(repair=True))
    return {"practice": practice, "spring": ids[:160], "autumn": ids[160:]}


def api(client, token, status=200, **query):
    r = client.get(
        "/api/v1/comparison/waves",
        headers={"Authorization": f"Bearer {token}"},
        query_string=query,
    )
    assert r.status_code == status, (query, r.status_code, r.text[:500])
    assert r.mimetype == "application/json"
    return r.get_json()


def recount(app, code: str, **where) -> pd.DataFrame:
    """Per practice and kind in one wave: yes, no and don't-know answers of submitted, real,
    unflagged responses, by a plain GROUP BY over the answer rows."""
    conds = [getattr(Response, name) == value for name, value in where.items()]
    with app.app_context():
        rows = db.session.execute(
            select(
                Answer.practice_id,
                Answer.company_kind,
                func.sum(case((Answer.met.in_(EXISTED), 1), else_=0)),
                func.sum(case((Answer.met == "no", 1), else_=0)),
                func.sum(case((Answer.met == "dk", 1), else_=0)),
            )
            .join(Response, Response.id == Answer.response_id)
            .join(Wave, Wave.id == Response.wave_id)
            .where(
                Wave.code == code,
                Response.status == "submitted",
                Response.is_demo.is_(False),
                Response.quality_flag.is_(None),
                *conds,
            )
            .group_by(Answer.practice_id, Answer.company_kind)
        ).all()
    frame = pd.DataFrame(rows, columns=["practice_id", "company_kind", "yes", "no", "dk"])
    return frame.set_index(["practice_id", "company_kind"]).astype(int)


def expected_rows(app, a: str, b: str, min_cell: int = 10, **where) -> list[dict]:
    """Every row as an independent computation gives it: statsmodels' Wilson interval and
    Newcombe interval, scipy's chi-square or Fisher test, Cohen's h, BH over the shown rows;
    cells below ``min_cell`` withheld with their test."""
    counts = {side: recount(app, code, **where) for side, code in (("a", a), ("b", b))}
    out = []
    for practice in app.extensions["survey_catalog"].practices:
        for kind in ("ru", "foreign"):
            row = {"practice_id": practice.id, "company_kind": kind, "suppressed": []}
            for side in SIDES:
                frame = counts[side]
                yes, no, dk = (
                    frame.loc[(practice.id, kind)].tolist()
                    if (practice.id, kind) in frame.index
                    else (0, 0, 0)
                )
                n = yes + no
                row[f"_n_{side}"], row[f"_k_{side}"] = n, yes
                if n < min_cell:
                    row["suppressed"].append(side)
                    row.update({f"n_{side}": None, f"k_{side}": None, f"dk_{side}": None})
                    row.update({f"p_{side}": None, f"ci_{side}": [None, None]})
                    continue
                low, high = proportion_confint(yes, n, alpha=0.05, method="wilson")
                row.update({f"n_{side}": n, f"k_{side}": yes, f"dk_{side}": dk})
                row.update({f"p_{side}": yes / n, f"ci_{side}": [low, high]})
            if row["suppressed"]:
                row.update(diff=None, diff_ci=[None, None], test=None, statistic=None)
                row.update(p_value=None, cohens_h=None)
            else:
                k1, n1, k2, n2 = row["_k_a"], row["_n_a"], row["_k_b"], row["_n_b"]
                table = np.array([[k1, n1 - k1], [k2, n2 - k2]])
                zero_margin = (table.sum(axis=0) == 0).any()
                if zero_margin or stats.contingency.expected_freq(table).min() < 5:
                    row.update(test="fisher", statistic=None)
                    row["p_value"] = stats.fisher_exact(table, alternative="two-sided").pvalue
                else:
                    chi2 = stats.chi2_contingency(table, correction=False)
                    row.update(test="chi2", statistic=chi2.statistic, p_value=chi2.pvalue)
                low, high = confint_proportions_2indep(
                    k1, n1, k2, n2, method="newcomb", compare="diff"
                )
                row.update(diff=k1 / n1 - k2 / n2, diff_ci=[low, high])
                row["cohens_h"] = float(proportion_effectsize(k1 / n1, k2 / n2))
            out.append(row)
    shown = [i for i, row in enumerate(out) if row["p_value"] is not None]
    q_values = multipletests([out[i]["p_value"] for i in shown], method="fdr_bh")[1]
    for row in out:
        row["q_value"] = None
    for i, q in zip(shown, q_values, strict=True):
        out[i]["q_value"] = q
    return out


def assert_same(got, want, where) -> None:
    if want is None:
        assert got is None, where
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for g, w in zip(got, want, strict=True):
            assert_same(g, w, where)
    elif isinstance(want, str):
        assert got == want, where
    elif isinstance(want, int | np.integer) and not isinstance(want, bool):
        assert got == want and type(got) is int, (where, got, want)
    else:
        assert got == pytest.approx(float(want), rel=1e-9, abs=1e-12), (where, got, want)


def assert_rows_equal(body: dict, expected: list[dict]) -> None:
    rows = body["rows"]
    assert [(r["practice_id"], r["company_kind"]) for r in rows] == [
        (r["practice_id"], r["company_kind"]) for r in expected
    ]
    for got, want in zip(rows, expected, strict=True):
        where = (want["practice_id"], want["company_kind"])
        assert got["suppressed"] == want["suppressed"], where
        for name, value in want.items():
            if name.startswith("_") or name in ("practice_id", "company_kind", "suppressed"):
                continue
            assert_same(got[name], value, (*where, name))


# ---------------------------------------------------------------- the numbers


def test_every_row_equals_a_recount_of_the_stored_answers(app, client, study, token):
    body = api(client, token, a="spring", b="autumn")
    assert body["suppressed"] is False and body["min_cell"] == 10
    assert body["assumptions"].count(ASSUMPTION) == 1
    assert body["pilot"] is False and body["demo"] is False
    assert body["waves"]["a"] == {
        "code": "spring",
        "name": {"ru": "Весна", "en": "Spring"},
        "pilot": False,
        "n_respondents": 160,
    }
    assert body["waves"]["b"]["n_respondents"] == 140
    expected = expected_rows(app, "spring", "autumn")
    assert_rows_equal(body, expected)
    # The set-up's small cell is withheld (with its test), and nothing else is.
    withheld = {(r["practice_id"], r["company_kind"]): r["suppressed"] for r in body["rows"]}
    assert withheld[(study["practice"], "foreign")] == ["b"]
    assert sum(bool(s) for s in withheld.values()) >= 1
    assert {r["test"] for r in body["rows"]} >= {"chi2"}
    # The other direction: the same rows with the sides swapped.
    swapped = api(client, token, a="autumn", b="spring")
    assert_rows_equal(swapped, expected_rows(app, "autumn", "spring"))


def test_small_cells_are_withheld_as_the_waves_own_comparisons_withhold_them(app, client, study):
    with app.app_context():
        own = {
            side: results.comparison(queries.Segment(wave=code)).table.set_index("practice_id")
            for side, code in (("a", "spring"), ("b", "autumn"))
        }
        query = waves_compare.WaveQuery(queries.Segment(), "spring", "autumn")
        table = waves_compare.comparison(query).table
    for row in table.itertuples(index=False):
        for side in SIDES:
            expected = bool(own[side].loc[row.practice_id, f"suppressed_{row.company_kind}"])
            assert getattr(row, f"suppressed_{side}") == expected, (row.practice_id, side)
            if not expected:  # a shown cell is the comparison's number, to the last bit
                assert (
                    getattr(row, f"n_{side}")
                    == own[side].loc[row.practice_id, f"n_{row.company_kind}"]
                )
                assert (
                    getattr(row, f"p_{side}")
                    == own[side].loc[row.practice_id, f"p_{row.company_kind}"]
                )


def test_demo_rows_mixed_in_are_labelled_and_never_cover_a_small_real_cell(
    app, client, study, token
):
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], 80, 5)
    demo = _ids(app, Response.is_demo.is_(True))
    _move(app, demo, "autumn")
    body = api(client, token, a="spring", b="autumn", include_demo="1")
    assert body["demo"] is True and body["suppressed"] is False
    assert body["waves"]["b"]["n_respondents"] == 140 + 80
    row = next(
        r
        for r in body["rows"]
        if r["practice_id"] == study["practice"] and r["company_kind"] == "foreign"
    )
    real = recount(app, "autumn").loc[(study["practice"], "foreign")]
    assert real["yes"] + real["no"] == SMALL_KEPT < 10
    with app.app_context():  # with the demo rows the cell would be large enough
        query = waves_compare.WaveQuery(queries.Segment(include_demo=True), "spring", "autumn")
        table = waves_compare.ungated(query).set_index(["practice_id", "company_kind"])
    assert table.loc[(study["practice"], "foreign"), "n_b"] >= 10
    assert row["suppressed"] == ["b"] and row["n_b"] is None and row["p_value"] is None
    # Without include_demo the demo rows stay out: the numbers are the real ones.
    body = api(client, token, a="spring", b="autumn")
    assert_rows_equal(body, expected_rows(app, "spring", "autumn"))


def test_the_result_is_cached_until_the_stored_responses_change(app, study):
    query = waves_compare.WaveQuery(queries.Segment(), "spring", "autumn")
    with app.app_context():
        first = waves_compare.comparison(query)
        assert waves_compare.comparison(query) is first
        other = waves_compare.WaveQuery(queries.Segment(industry="it"), "spring", "autumn")
        assert waves_compare.comparison(other) is not first
    _move(app, study["autumn"][:20], "spring")  # a submitted response changes: new version
    with app.app_context():
        moved = waves_compare.comparison(query)
    assert moved is not first and moved.respondents == {"a": 180, "b": 120}


def test_filters_restrict_both_waves(app, client, study, token):
    body = api(client, token, a="spring", b="autumn", worked_in="both")
    assert body["filters"] == {"worked_in": "both"}
    assert body["suppressed"] is False  # the seeded draw has enough of them in each wave
    assert body["waves"]["a"]["n_respondents"] == len(
        _ids(app, Response.id.in_(study["spring"]), Response.worked_in == "both")
    )
    assert_rows_equal(body, expected_rows(app, "spring", "autumn", worked_in="both"))


# ---------------------------------------------------------------- page and CSV


ROW_RE = re.compile(r'<tr class="[^"]*" data-practice="([^"]+)">(.*?)</tr>', re.S)
CELL_RE = re.compile(r"<td[^>]*>(.*?)</td>", re.S)


def page_rows(text: str) -> list[tuple[str, list[str]]]:
    """The page's table: practice id and the text of every cell, tags stripped."""
    out = []
    for practice_id, body in ROW_RE.findall(text):
        cells = [html.unescape(re.sub(r"<[^>]+>", " ", c)).split() for c in CELL_RE.findall(body)]
        out.append((practice_id, [" ".join(c) for c in cells]))
    return out


def shown_count(value) -> str:
    return "< 10" if value is None else str(value)


def test_the_page_and_the_csv_show_the_numbers_of_the_api(app, client, study, token):
    body = api(client, token, a="spring", b="autumn")
    log_in(app, client)
    r = client.get("/researcher/comparison/waves?a=spring&b=autumn&lang=en")
    assert r.status_code == 200, r.text[:500]
    text = r.get_data(as_text=True)
    assert ASSUMPTION in html.unescape(text)
    assert 'id="figure-waves"' in text
    shown = page_rows(text)
    assert len(shown) == len(body["rows"])
    for (practice_id, cells), row in zip(shown, body["rows"], strict=True):
        assert practice_id == row["practice_id"]
        kind, n_a, share_a, n_b, share_b, _diff, test, p, q, _h = cells
        assert (
            kind == {"ru": "Russian companies", "foreign": "Foreign companies"}[row["company_kind"]]
        )
        assert (n_a, n_b) == (shown_count(row["n_a"]), shown_count(row["n_b"]))
        assert share_a.startswith(format_percent(row["p_a"]))
        assert share_b.startswith(format_percent(row["p_b"]))
        assert test == {"chi2": "χ²", "fisher": "Fisher", None: "—"}[row["test"]]
        assert p == format_p_value(row["p_value"])
        assert q.removesuffix(" ★") == format_p_value(row["q_value"])

    r = client.get("/researcher/table/waves.csv?a=spring&b=autumn")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    frame = pd.read_csv(io.StringIO(r.get_data(as_text=True)), keep_default_na=False)
    assert frame["wave_a"].eq("spring").all() and frame["wave_b"].eq("autumn").all()
    assert frame["demo_data"].astype(str).eq("False").all()
    assert len(frame) == len(body["rows"])
    for (_, line), row in zip(frame.iterrows(), body["rows"], strict=True):
        assert str(line["n_a"]) == shown_count(row["n_a"])
        assert str(line["n_b"]) == shown_count(row["n_b"])
        for column in ("k_a", "k_b", "dk_b"):  # whole numbers; blank where withheld
            assert str(line[column]) == ("" if row[column] is None else str(row[column]))
        for column, value in (("p_a", row["p_a"]), ("q_val", row["q_value"])):
            if value is None:
                assert line[column] == ""
            else:
                assert float(line[column]) == pytest.approx(value, rel=1e-12)


def test_the_page_speaks_russian_too(app, client, study):
    log_in(app, client)
    text = html.unescape(client.get("/researcher/comparison/waves?a=spring&b=autumn&lang=ru").text)
    assert '<html lang="ru">' in text and "<h1>Сравнение волн</h1>" in text
    assert "Респондентов, ответивших в обеих волнах, нельзя связать" in text
    assert "Российские компании" in text and "Весна" in text
    assert len(page_rows(text)) == 2 * len(app.extensions["survey_catalog"].practices)


def test_the_page_without_waves_offers_the_selectors(app, client, study):
    log_in(app, client)
    text = client.get("/researcher/comparison/waves?lang=en").get_data(as_text=True)
    assert '<select id="w-a" name="a" required>' in text
    assert 'value="spring"' in text and 'value="autumn"' in text
    assert "data-practice=" not in text
    frame = pd.read_csv(io.BytesIO(client.get("/researcher/table/waves.csv").data))
    assert frame["reason"].tolist() == ["no_waves"]


def test_a_pilot_wave_named_is_included_and_labelled(app, client, study, token):
    with app.app_context():
        db.session.execute(update(Wave).where(Wave.code == "autumn").values(is_pilot=True))
        db.session.commit()
    body = api(client, token, a="spring", b="autumn")
    assert body["pilot"] is True
    assert body["waves"]["b"]["pilot"] is True and body["waves"]["a"]["pilot"] is False
    assert body["waves"]["b"]["n_respondents"] == 140
    assert_rows_equal(body, expected_rows(app, "spring", "autumn"))
    log_in(app, client)
    text = client.get("/researcher/comparison/waves?a=spring&b=autumn&lang=en").text
    assert "PILOT WAVE: autumn — Autumn is a pilot wave" in text
    csv = pd.read_csv(io.BytesIO(client.get("/researcher/table/waves.csv?a=spring&b=autumn").data))
    assert csv["pilot_b"].all() and not csv["pilot_a"].any() and csv["pilot_data"].all()


# ---------------------------------------------------------------- the gate and bad requests


def test_a_wave_of_a_few_respondents_is_withheld_whole(app, client, study, token):
    with app.app_context():
        create_wave(WaveSpec(code="tiny", name_ru="Мало", name_en="Few"))
    _move(app, study["autumn"][:5], "tiny")
    for query in ({"a": "spring", "b": "tiny"}, {"a": "tiny", "b": "spring"}):
        body = api(client, token, **query)
        assert body["suppressed"] is True and body["reason"] == "too_small"
        assert body["withheld_wave"] == "tiny" and body["min_cell"] == 10
        assert "rows" not in body and "n_respondents" not in body["waves"]["a"]
    log_in(app, client)
    text = client.get("/researcher/comparison/waves?a=spring&b=tiny&lang=en").text
    assert "Fewer than 10 respondents" in text and "data-practice=" not in text


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"b": "autumn"}, "a"),
        ({"a": "spring"}, "b"),
        ({"a": "", "b": "autumn"}, "a"),
        ({"a": "nope", "b": "autumn"}, "a"),
        ({"a": "spring", "b": "n" * 300}, "b"),
        ({"a": "spring", "b": "spring"}, "b"),
        ({"a": "spring", "b": "autumn", "wave": "spring"}, "wave"),
        ({"a": "spring", "b": "autumn", "level": "category"}, "level"),
        ({"a": "spring", "b": "autumn", "bogus": "1"}, "bogus"),
        ({"a": "spring", "b": "autumn", "industry": "mining-on-mars"}, "industry"),
        ({"a": "spring", "b": "autumn", "include_demo": "maybe"}, "include_demo"),
    ],
)
def test_bad_requests_are_a_400_naming_the_parameter(app, client, token, query, parameter):
    with app.app_context():
        for code in ("spring", "autumn"):
            create_wave(WaveSpec(code=code, name_ru=code, name_en=code))
    body = api(client, token, status=400, **query)
    assert body["error"] == "bad_request" and body["parameter"] == parameter, body
    log_in(app, client)
    r = client.get("/researcher/comparison/waves", query_string={**query, "lang": "en"})
    assert r.status_code == 400, (query, r.status_code)
    assert f"The parameter “{parameter}” is not valid" in r.text


def test_a_repeated_wave_parameter_is_refused(app, client, token):
    with app.app_context():
        for code in ("spring", "autumn"):
            create_wave(WaveSpec(code=code, name_ru=code, name_en=code))
    r = client.get(
        "/api/v1/comparison/waves?a=spring&a=autumn&b=autumn",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 400 and r.get_json()["parameter"] == "a"


def test_anonymous_visitors_get_nothing_and_analysts_read_it(app, client, study, token):
    r = client.get("/api/v1/comparison/waves?a=spring&b=autumn")
    assert r.status_code == 401 and r.mimetype == "application/json"
    r = client.get("/researcher/comparison/waves?a=spring&b=autumn")
    assert r.status_code == 302 and "/researcher/login" in r.location
    r = client.get("/researcher/table/waves.csv?a=spring&b=autumn")
    assert r.status_code == 302 and "/researcher/login" in r.location
    log_in(app, client)  # an analyst (the default role)
    assert client.get("/researcher/comparison/waves?a=spring&b=autumn").status_code == 200
    assert api(client, token, a="spring", b="autumn")["suppressed"] is False


def test_the_openapi_document_describes_the_route(app, client, token):
    r = client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"})
    doc = r.get_json()
    operation = doc["paths"]["/comparison/waves"]["get"]
    names = {p["name"]: p for p in operation["parameters"]}
    assert names["a"]["required"] is True and names["b"]["required"] is True
    assert "wave" not in names and "industry" in names
    assert "400" in operation["responses"]
    row = doc["components"]["schemas"]["WaveRow"]
    for column in COLUMNS:
        for path in column.api_paths:
            assert path[0] in row["properties"], column.name
    assert set(row["required"]) >= {"n_a", "ci_a", "n_b", "p_value", "q_value", "suppressed"}


def test_every_answer_has_the_documented_shape(app, client, study, token):
    auth = {"Authorization": f"Bearer {token}"}
    doc = client.get("/api/v1/openapi.json", headers=auth).get_json()
    responses_of = doc["paths"]["/comparison/waves"]["get"]["responses"]
    cases = [
        ({"a": "spring", "b": "autumn"}, 200, False),
        ({"a": "autumn", "b": "spring", "industry": "it", "include_demo": "1"}, 200, None),
        ("tiny", None, None),  # from here on a wave of five respondents exists
        ({"a": "spring", "b": "tiny"}, 200, True),
        # the smallest other wave is withheld too: all waves less the shown ones give tiny
        ({"a": "spring", "b": "autumn"}, 200, True),
        ({"a": "spring"}, 400, None),
        ({"a": "spring", "b": "spring"}, 400, None),
    ]
    for query, status, withheld in cases:
        if query == "tiny":
            with app.app_context():
                create_wave(WaveSpec(code="tiny", name_ru="Мало", name_en="Few"))
            _move(app, study["autumn"][:5], "tiny")
            continue
        r = client.get("/api/v1/comparison/waves", headers=auth, query_string=query)
        assert r.status_code == status, (query, r.text[:300])
        body = strict_json(r.get_data(as_text=True))  # no NaN, no Infinity
        schema = responses_of[str(status)]["content"]["application/json"]["schema"]
        assert conforms(body, schema, doc), (query, body)
        if withheld is not None:
            assert body["suppressed"] is withheld, query


# ---------------------------------------------------------------- the statistics alone


def test_each_column_maps_to_a_comparison_column_computed_the_same_way():
    assert set(SAME_AS) == {c.name for c in COLUMNS}
    for name, same in SAME_AS.items():
        assert definition.column(same).type == next(c for c in COLUMNS if c.name == name).type
    rng = np.random.default_rng(3)
    n = rng.integers(0, 60, size=(12, 2, 2))
    k = rng.integers(0, 61, size=(12, 2, 2)) % (n + 1)
    frames = [
        pd.DataFrame(
            {
                "practice_id": np.repeat([f"p{i:02d}" for i in range(12)], 2),
                "company_kind": ["ru", "foreign"] * 12,
                "yes": k[:, :, side].ravel(),
                "no": (n - k)[:, :, side].ravel(),
                "dk": 1,
            }
        )
        for side in range(2)
    ]
    table = compare_waves(*frames)
    for row in table.itertuples(index=False):
        one = compare_independent(row.k_a, row.n_a, row.k_b, row.n_b)
        assert row.test == one["test"]
        for name, ours in (
            ("diff", row.diff),
            ("diff_ci_low", row.diff_ci_low),
            ("diff_ci_high", row.diff_ci_high),
            ("statistic", row.statistic),
            ("p_val", row.p_val),
            ("cohens_h", row.cohens_h),
        ):
            theirs = one[name]
            assert (math.isnan(ours) and math.isnan(theirs)) or ours == pytest.approx(theirs)


def test_under_equal_prevalence_the_test_rejects_about_five_percent():
    # compare_independent's level is not simulation-tested elsewhere (benchmarks/validate.py
    # runs it only as the naive test for correlated answers). 600 simulated tables of two
    # independent waves with the same prevalence; 99.9 % Monte-Carlo bound.
    rng = np.random.default_rng(20261201)
    reps, alpha = 600, 0.05
    p = rng.uniform(0.1, 0.9, size=reps)
    n_a = rng.integers(20, 200, size=reps)
    n_b = rng.integers(20, 200, size=reps)
    k_a, k_b = rng.binomial(n_a, p), rng.binomial(n_b, p)
    ids = [f"t{i:04d}" for i in range(reps)]

    def frame(k, n):
        return pd.DataFrame(
            {"practice_id": ids, "company_kind": "ru", "yes": k, "no": n - k, "dk": 0}
        )

    table = compare_waves(frame(k_a, n_a), frame(k_b, n_b), items=ids)
    ru = table[table["company_kind"] == "ru"]
    assert ru["p_val"].notna().all()
    rejected = float((ru["p_val"] < alpha).mean())
    tolerance = 3.29 * math.sqrt(alpha * (1 - alpha) / reps)
    assert abs(rejected - alpha) <= tolerance, rejected
    # and the Newcombe interval covers the true difference (zero) about 95 % of the time
    covered = float(((ru["diff_ci_low"] <= 0) & (ru["diff_ci_high"] >= 0)).mean())
    assert abs(covered - (1 - alpha)) <= tolerance, covered
