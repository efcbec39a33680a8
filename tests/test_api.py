"""The JSON API /api/v1: credentials, the comparison's numbers, filters, catalogue, OpenAPI."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import func, select, update
from statsmodels.genmod import families
from statsmodels.genmod.cov_struct import Independence
from statsmodels.genmod.generalized_estimating_equations import GEE
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from analysis import table as definition
from survey.auth import token_hash
from survey.extensions import db
from survey.models import Answer, ApiToken, Response
from survey.questions import BACKGROUND_BY_FIELD
from tests.helpers import Respondent, auth_header, log_in, seed
from tests.recount import gated, recount_comparison, withheld, worked_in_counts

ROUTES = ("/api/v1/practices", "/api/v1/comparison", "/api/v1/fieldwork", "/api/v1/openapi.json")
PRACTICE_FIELDS = {
    "practice_id",
    "n_ru",
    "k_ru",
    "p_ru",
    "ci_ru",
    "n_foreign",
    "k_foreign",
    "p_foreign",
    "ci_foreign",
    "diff",
    "diff_ci",
    "test",
    "p_value",
    "q_value",
    "cohens_h",
    "paired",
    "rating_ru",
    "rating_foreign",
    "rating_p_value",
    "rating_q_value",
    "rank_biserial",
    "low_n",
}


pytestmark = pytest.mark.usefixtures("fresh_cache")


def get_json(client, path: str, token: str, status: int = 200, **query):
    r = client.get(path, headers=auth_header(token), query_string=query)
    assert r.status_code == status, (path, query, r.status_code, r.text[:500])
    assert r.mimetype == "application/json"
    return strict_json(r.text)


def strict_json(text: str):
    """Parse JSON refusing NaN and Infinity, which are not JSON."""

    def refuse(constant):
        raise AssertionError(f"{constant} in JSON")

    return json.loads(text, parse_constant=refuse)


def count(app, **where) -> int:
    """Submitted responses matching column values, straight from SQL."""
    with app.app_context():
        conditions = [getattr(Response, k) == v for k, v in where.items()]
        return db.session.scalar(
            select(func.count(Response.id)).where(Response.status == "submitted", *conditions)
        )


def assert_error(r, status: int) -> None:
    assert r.status_code == status, r.text[:500]
    assert r.mimetype == "application/json"
    body = strict_json(r.text)
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]


def json_at(value, path: tuple):
    """The value at a path of keys and list positions."""
    for step in path:
        value = value[step]
    return value


def json_leaves(value, path: tuple = ()) -> dict[tuple, object]:
    """Every leaf of a JSON value by its path (keys and list positions)."""
    if isinstance(value, dict):
        return {
            k: v for key, item in value.items() for k, v in json_leaves(item, (*path, key)).items()
        }
    if isinstance(value, list):
        return {
            k: v for i, item in enumerate(value) for k, v in json_leaves(item, (*path, i)).items()
        }
    return {path: value}


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def assert_route_content(app, path: str, body: dict) -> None:
    """The body is the route's own answer about the stored data: the catalogue's practices,
    the comparison of the submitted responses (withheld below 10), their fieldwork counts,
    or the OpenAPI document of the four routes."""
    practice_ids = [p.id for p in app.extensions["survey_catalog"].practices]
    n = count(app)
    if path == "/api/v1/practices":
        assert [p["practice_id"] for p in body["practices"]] == practice_ids
    elif path == "/api/v1/comparison":
        if n < 10:
            assert body["suppressed"] is True and body["reason"] == "too_small", body
            assert "practices" not in body
        else:
            assert body["suppressed"] is False and body["n_respondents"] == n
            assert [p["practice_id"] for p in body["practices"]] == practice_ids
    elif path == "/api/v1/fieldwork":
        assert body["completed"] == n and body["drafts"] == 0
    else:
        assert body["openapi"].startswith("3.1")
        assert {"/practices", "/comparison", "/fieldwork", "/openapi.json"} <= set(body["paths"])


# --------------------------------------------------------------------------- credentials


def test_every_route_refuses_missing_wrong_and_revoked_credentials_and_accepts_a_token(
    app, client, token
):
    # An unknown route is a JSON 404, with or without credentials.
    assert_error(client.get("/api/v1/nope", headers=auth_header(token)), 404)
    assert_error(client.get("/api/v1/nope"), 404)
    for path in ROUTES:
        assert_error(client.get(path), 401)
        assert_error(client.get(path, headers=auth_header("svy_" + "x" * 43)), 401)
        assert_error(client.get(path, headers={"Authorization": token}), 401)  # no "Bearer"
        assert_error(client.get(path, headers={"Authorization": f"Basic {token}"}), 401)
        assert_route_content(app, path, get_json(client, path, token))

    with app.app_context():  # what `flask revoke-api-tokens` does (tested in test_auth.py)
        db.session.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == token_hash(token))
            .values(revoked_on=dt.date.today())
        )
        db.session.commit()
    for path in ROUTES:
        assert_error(client.get(path, headers=auth_header(token)), 401)


def test_a_logged_in_researcher_session_may_use_the_api(app, client, token):
    seed(app, 150, seed_value=7)
    log_in(app, client)
    for path in ROUTES:
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        body = strict_json(r.text)
        assert_route_content(app, path, body)
        # The session reads exactly what a token reads.
        assert body == get_json(app.test_client(), path, token), path


# --------------------------------------------------------------------------- comparison


def test_comparison_has_every_field_with_the_analysis_modules_numbers(app, client, token):
    seed(app, 150, seed_value=7)
    body = get_json(client, "/api/v1/comparison", token)
    assert body["n_respondents"] == count(app) == 150
    assert body["filters"] == {}
    assert body["demo"] is True
    assert len(body["practices"]) == len(app.extensions["survey_catalog"].practices)
    for item in body["practices"]:
        assert PRACTICE_FIELDS <= set(item), PRACTICE_FIELDS - set(item)
        assert item["test"] == "overlap_z"
        assert item["secondary"]["independent"]["test"] in ("chi2", "fisher", None)
        assert {"u", "p_value", "q_value", "rank_biserial_ci"} <= set(
            item["secondary"]["mann_whitney"]
        )
        for interval in ("ci_ru", "ci_foreign", "diff_ci", "cohens_h_ci"):
            low, high = item[interval]
            assert low <= high
        assert item["ci_ru"][0] <= item["p_ru"] <= item["ci_ru"][1]
        assert item["ci_foreign"][0] <= item["p_foreign"] <= item["ci_foreign"][1]
        assert {"n", "b", "c", "p_value", "q_value"} <= set(item["paired"])
        for kind in ("rating_ru", "rating_foreign"):
            rating = item[kind]
            assert {"n", "mean", "median", "counts"} <= set(rating)
            assert len(rating["counts"]) == 5
            # A small count may be masked by the disclosure gate (None); unmasked, they add up.
            if rating["n"] is not None and None not in rating["counts"]:
                assert sum(rating["counts"]) == rating["n"]
        assert isinstance(item["low_n"], bool)

    # Every number is a recount of the stored answers with scipy/statsmodels, as a reader
    # gets it: the disclosure rule written out in tests/recount.py (the gate is checked on
    # its own in test_dashboard and test_disclosure).
    cat = app.extensions["survey_catalog"]
    expected = recount_comparison(app)
    hidden = withheld(expected, worked_in_counts(app))
    assert hidden.to_numpy().any(), "the demo study has no small cell: the check is idle"
    expected = gated(expected, hidden)
    got = {item["practice_id"]: item for item in body["practices"]}
    assert list(got) == expected["practice_id"].tolist()
    for row in expected.to_dict("records"):
        item = got[row["practice_id"]]
        # Every column the API shows, at each of its places (analysis.table's definition).
        for column in definition.api_columns("practice_id"):
            want = row[column.name]
            for path in column.api_paths:
                value = json_at(item, path)
                if column.type == "text":
                    assert value == (want if isinstance(want, str) else None), column.name
                elif column.type == "bool":
                    assert value is bool(want), column.name
                else:
                    want = None if isinstance(want, float) and math.isnan(want) else want
                    assert close(value, want), (row["practice_id"], column.name, value, want)
    # q-values are Benjamini-Hochberg over the practices' p-values.
    p_values = [item["p_value"] for item in body["practices"]]
    q_values = multipletests(p_values, method="fdr_bh")[1]
    assert np.allclose([item["q_value"] for item in body["practices"]], q_values)

    # The same comparison at the level of categories; any other level is a 400.
    body = get_json(client, "/api/v1/comparison", token, level="category")
    assert [c["category_id"] for c in body["categories"]] == [c.id for c in cat.categories]
    assert body["n_respondents"] == 150
    for item in body["categories"]:
        assert item["n_ru"] > 0 and item["test"] == "overlap_z"
    assert_error(client.get("/api/v1/comparison?level=bogus", headers=auth_header(token)), 400)


def test_the_comparison_json_and_its_schema_hold_the_columns_of_the_one_definition(
    app, client, token
):
    seed(app, 150, seed_value=7)
    document = get_json(client, "/api/v1/openapi.json", token)
    schemas = document["components"]["schemas"]
    for level, key, rows_name, schema_name in (
        ("practice", "practice_id", "practices", "PracticeRow"),
        ("category", "category_id", "categories", "CategoryRow"),
    ):
        body = get_json(client, "/api/v1/comparison", token, level=level)
        columns = definition.api_columns(key)
        places = {path for column in columns for path in column.api_paths}
        descriptions = {
            (*definition.json_path(group.api), "description"): group.meaning
            for group in definition.GROUPS
            if group.api
        }
        assert body[rows_name]
        for item in body[rows_name]:
            assert set(item.pop("suppressed")) <= set(definition.CELL_GROUPS)
            leaves = json_leaves(item)
            # Exactly the item key, the definition's places and the groups' descriptions.
            assert set(leaves) == {(key,), *places, *descriptions}, level
            assert {path: leaves[path] for path in descriptions} == descriptions
        # The document describes the same fields, with each column's meaning.
        schema = schemas[schema_name]
        top = {path[0] for path in places} | {key, "suppressed"}
        assert set(schema["required"]) == set(schema["properties"]) == top, level
        for column in columns:
            for path in column.api_paths:
                node = schema
                for step in path:
                    if isinstance(step, int):
                        assert f"[{step}] {column.meaning}" in node["description"]
                        node = node["items"]
                    else:
                        node = node["properties"][step]
                if not isinstance(path[-1], int):
                    assert node["description"] == column.meaning, column.name


def raw_answers(app, practice_id: str) -> pd.DataFrame:
    """Every submitted answer to one practice, one row per (response, kind), plain SELECT."""
    with app.app_context():
        rows = db.session.execute(
            select(
                Answer.response_id,
                Answer.company_kind,
                Answer.met,
                Answer.rating,
                Response.worked_in,
            )
            .join(Response, Response.id == Answer.response_id)
            .where(Response.status == "submitted", Answer.practice_id == practice_id)
        ).all()
    raw = pd.DataFrame(rows, columns=["response_id", "kind", "met", "rating", "worked_in"])
    # The practice existed: applied to the respondent, existed but not for them, or the
    # former "met it" all count as "yes"; "not my role" stays out like "don't know".
    raw["met"] = raw["met"].replace({"applied": "yes", "existed": "yes"})
    return raw


def test_one_practice_recomputed_independently_from_the_raw_answers(app, client, token):
    seed(app, 150, seed_value=7)
    body = get_json(client, "/api/v1/comparison", token)
    practice_id = app.extensions["survey_catalog"].practices[3].id
    item = next(p for p in body["practices"] if p["practice_id"] == practice_id)
    raw = raw_answers(app, practice_id)

    # Prevalence: yes / (yes + no), "don't know" and "not applicable" left out; Wilson CI.
    share = {}
    for kind in ("ru", "foreign"):
        answered = raw[(raw["kind"] == kind) & raw["met"].isin(["yes", "no"])]
        n, k = len(answered), int((answered["met"] == "yes").sum())
        low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert (item[f"n_{kind}"], item[f"k_{kind}"]) == (n, k)
        assert item[f"p_{kind}"] == pytest.approx(k / n)
        assert item[f"ci_{kind}"] == pytest.approx([low, high])
        share[kind] = (k, n, k / n, low, high)

    (k1, n1, p1, _l1, _u1), (k2, n2, p2, _l2, _u2) = share["ru"], share["foreign"]
    answered = raw[raw["met"].isin(["yes", "no"])]
    # Primary: the difference is a linear GEE's on the raw answers, clustered by response
    # (independence working correlation), and its z is within 5 % + 0.02 of that GEE's robust
    # Wald z; Derrick et al.'s (2015) z written out on the raw answers gives it exactly.
    fit = GEE(
        (answered["met"] == "yes").to_numpy(float),
        np.column_stack([np.ones(len(answered)), (answered["kind"] == "ru").to_numpy(float)]),
        groups=answered["response_id"].to_numpy(),
        family=families.Gaussian(),
        cov_struct=Independence(),
    ).fit()
    assert item["test"] == "overlap_z"
    assert item["diff"] == pytest.approx(fit.params[1], abs=1e-12)
    assert abs(item["statistic"] - fit.tvalues[1]) <= 0.05 * abs(fit.tvalues[1]) + 0.02
    wide_all = answered.pivot(index="response_id", columns="kind", values="met")
    paired_rows = wide_all.dropna()
    x, y = (
        (paired_rows["ru"] == "yes").to_numpy(float),
        (paired_rows["foreign"] == "yes").to_numpy(float),
    )
    r = float(np.corrcoef(x, y)[0, 1]) if len(x) > 1 and x.std() and y.std() else 0.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2 - 2 * r * len(x) / (n1 * n2)))
    assert item["p_value"] == pytest.approx(2 * stats.norm.sf(abs((p1 - p2) / se)))
    assert item["cohens_h"] == pytest.approx(
        2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))
    )
    # Secondary: respondents who answered about one kind only, as independent samples.
    only = {
        kind: wide_all[wide_all[kind].notna() & wide_all[other].isna()][kind]
        for kind, other in (("ru", "foreign"), ("foreign", "ru"))
    }
    table = np.array([[(v == "yes").sum(), (v == "no").sum()] for v in only.values()])
    independent = item["secondary"]["independent"]
    assert (independent["n_ru"], independent["n_foreign"]) == tuple(table.sum(axis=1))
    if (stats.contingency.expected_freq(table) < 5).any():
        assert independent["test"] == "fisher"
        assert independent["p_value"] == pytest.approx(stats.fisher_exact(table).pvalue)
    else:
        chi2 = stats.chi2_contingency(table, correction=False)
        assert independent["test"] == "chi2"
        assert independent["p_value"] == pytest.approx(chi2.pvalue)

    # Paired: respondents who worked in both kinds and answered yes/no for both.
    both = raw[(raw["worked_in"] == "both") & raw["met"].isin(["yes", "no"])]
    wide = both.pivot(index="response_id", columns="kind", values="met").dropna()
    b = int(((wide["ru"] == "yes") & (wide["foreign"] == "no")).sum())
    c = int(((wide["ru"] == "no") & (wide["foreign"] == "yes")).sum())
    assert (item["paired"]["n"], item["paired"]["b"], item["paired"]["c"]) == (len(wide), b, c)
    assert item["paired"]["p_value"] == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue)

    # Ratings: every stored rating (given only when the practice applied to the respondent;
    # "mixed / can't say" has none); Mann-Whitney U with ties and continuity.
    rated = {
        kind: raw[(raw["kind"] == kind) & raw["rating"].notna()]["rating"].astype(int).to_numpy()
        for kind in ("ru", "foreign")
    }
    for kind, values in rated.items():
        summary = item[f"rating_{kind}"]
        assert summary["n"] == len(values)
        assert summary["mean"] == pytest.approx(values.mean())
        assert summary["median"] == pytest.approx(float(np.median(values)))
        assert summary["counts"] == [int((values == r).sum()) for r in range(1, 6)]
    mwu = stats.mannwhitneyu(
        rated["ru"], rated["foreign"], alternative="two-sided", method="asymptotic"
    )
    assert item["secondary"]["mann_whitney"]["p_value"] == pytest.approx(mwu.pvalue)
    n_pairs = len(rated["ru"]) * len(rated["foreign"])
    assert item["rank_biserial"] == pytest.approx(2 * mwu.statistic / n_pairs - 1)


def test_filters_change_the_numbers_and_bad_values_are_a_400_naming_them(app, client, token):
    seed(app, 150, seed_value=7)
    everyone = get_json(client, "/api/v1/comparison", token)
    assert everyone["suppressed"] is False
    it = get_json(client, "/api/v1/comparison", token, industry="it")
    assert it["suppressed"] is False
    assert it["n_respondents"] == count(app, industry="it")
    assert 0 < it["n_respondents"] < everyone["n_respondents"]
    assert it["filters"] == {"industry": "it"}
    assert it["practices"] != everyone["practices"]

    combined = get_json(client, "/api/v1/comparison", token, industry="it", worked_in="ru_only")
    assert combined["suppressed"] is False
    assert combined["n_respondents"] == count(app, industry="it", worked_in="ru_only")
    assert 10 <= combined["n_respondents"] < it["n_respondents"]
    assert combined["filters"] == {"industry": "it", "worked_in": "ru_only"}

    both = get_json(client, "/api/v1/comparison", token, worked_in="both")
    assert both["suppressed"] is False
    assert both["n_respondents"] == count(app, worked_in="both")
    assert both["filters"] == {"worked_in": "both"}
    # Only respondents who know both kinds: everyone in the paired view is in the segment.
    paired = [p["paired"]["n"] for p in both["practices"] if p["paired"]["n"] is not None]
    assert paired and all(n <= both["n_respondents"] for n in paired)

    # IT respondents who know both kinds differ from a broader segment by a few people
    # (those of IT who know foreign companies only): withheld, with the reason, no counts.
    tracker = get_json(client, "/api/v1/comparison", token, industry="it", worked_in="both")
    assert 0 < count(app, industry="it", worked_in="foreign_only") < 10
    assert tracker["suppressed"] is True and tracker["reason"] == "differencing"
    assert tracker["filters"] == {"industry": "it", "worked_in": "both"}
    assert "n_respondents" not in tracker and "practices" not in tracker

    # A bad value is refused with a 400 that names it, never answered with the whole sample.
    for query, name in (
        ({"industry": "no-such-industry"}, "industry"),
        ({"worked_in": "<script>"}, "worked_in"),
        ({"language": "xx"}, "language"),
        ({"include_demo": "maybe"}, "include_demo"),
        ({"level": "galaxy"}, "level"),
        ({"indsutry": "it"}, "indsutry"),
    ):
        r = client.get("/api/v1/comparison", headers=auth_header(token), query_string=query)
        assert_error(r, 400)
        body = strict_json(r.text)
        assert body["parameter"] == name, (query, body)
        assert name in body["message"]
        assert "n_respondents" not in body and "practices" not in body


def test_json_has_no_nan_even_without_data_or_with_a_tiny_segment(app, client, token):
    # No respondents at all is below the disclosure threshold: withheld, at either level.
    for level in ("practice", "category"):
        empty = get_json(client, "/api/v1/comparison", token, level=level)
        assert empty["suppressed"] is True and empty["reason"] == "too_small"
        assert empty["min_cell"] == 10 and empty["level"] == level
        assert isinstance(empty["message"], str) and empty["message"]
        assert not {"n_respondents", "practices", "categories"} & set(empty)
    fieldwork = get_json(client, "/api/v1/fieldwork", token)
    assert all(n is None for cells in fieldwork["background"].values() for n in cells.values())

    seed(app, 12, seed_value=3)
    n_both = count(app, worked_in="both")
    for level in ("practice", "category"):
        # A tiny segment: too small itself, or the few others of the 12 betray it.
        body = get_json(client, "/api/v1/comparison", token, level=level, worked_in="both")
        assert body["suppressed"] is True
        assert body["reason"] == ("too_small" if n_both < 10 else "differencing")
        assert not {"n_respondents", "practices", "categories"} & set(body)
        # The whole study of 12 is shown, its small cells null (never NaN): get_json parses
        # strictly.
        whole = get_json(client, "/api/v1/comparison", token, level=level)
        assert whole["suppressed"] is False and whole["n_respondents"] == count(app) == 12
        rows = whole["practices" if level == "practice" else "categories"]
        withheld = [row for row in rows if "foreign" in row["suppressed"]]
        assert withheld, "12 respondents and no cell below 10"
        for row in withheld:
            assert row["n_foreign"] is None and row["p_foreign"] is None
            assert row["ci_foreign"] == [None, None] and row["p_value"] is None


# --------------------------------------------------------------------------- other routes


def test_practices_lists_the_catalogue_in_both_languages(app, client, token):
    body = get_json(client, "/api/v1/practices", token)
    cat = app.extensions["survey_catalog"]
    assert len(body["practices"]) == len(cat.practices)
    assert [p["practice_id"] for p in body["practices"]] == [p.id for p in cat.practices]
    category_ids = {c["category_id"] for c in body["categories"]}
    for item, practice in zip(body["practices"], cat.practices, strict=True):
        assert item["name"] == {"ru": practice.name.ru, "en": practice.name.en}
        assert item["name"]["ru"] != item["name"]["en"]
        assert item["category_id"] in category_ids
        assert [s["id"] for s in item["sources"]] == list(practice.sources)
        assert item["sources"]
        for source in item["sources"]:
            assert source["citation"] == cat.sources[source["id"]].citation()


def background_direct(app, field: str, is_demo: bool | None = None) -> dict[str, int]:
    """Submitted, unflagged responses per option of a background question (zeros included),
    straight from SQL; ``is_demo`` None counts real and demo rows together."""
    question = BACKGROUND_BY_FIELD[field]
    column = getattr(Response, field)
    conditions = [Response.status == "submitted", Response.quality_flag.is_(None)]
    if is_demo is not None:
        conditions.append(Response.is_demo.is_(is_demo))
    with app.app_context():
        rows = dict(
            db.session.execute(
                select(column, func.count()).where(*conditions).group_by(column)
            ).all()
        )
    return {code: rows.get(code, 0) for code in question.codes()}


def assert_background_gated(body: dict, app, shown_rows: bool | None, judged_rows: bool) -> None:
    """Each background cell: null (and listed) when its protected respondents (``judged_rows``:
    real or demo) are below 10 (or as the one second cell of a lone withheld one), else the
    direct count over the rows shown."""
    for field in BACKGROUND_BY_FIELD:
        cells = body["background"][field]
        shown = background_direct(app, field, shown_rows)
        judged = background_direct(app, field, judged_rows)
        assert set(cells) == set(shown), field
        for code, n in cells.items():
            if n is None:
                assert code in body["background_suppressed"][field], (field, code)
            else:
                assert judged[code] >= 10 and n == shown[code], (field, code, n)
                assert code not in body["background_suppressed"][field], (field, code)
        small = [code for code, n in judged.items() if n < 10]
        assert all(cells[code] is None for code in small), (field, small)
        # One withheld cell takes one more with it (it could be recovered from the total).
        secondary = [code for code, n in cells.items() if n is None and judged[code] >= 10]
        assert len(secondary) <= (1 if len(small) == 1 else 0), (field, small, secondary)


def test_fieldwork_numbers_equal_direct_counts(app, client, token):
    seed(app, 150, seed_value=7)
    demo_only = get_json(client, "/api/v1/fieldwork", token)
    assert demo_only["demo"] is True
    assert (demo_only["completed"], demo_only["drafts"]) == (150, 0)
    assert demo_only["min_cell"] == 10
    assert_background_gated(demo_only, app, shown_rows=True, judged_rows=True)
    industry = demo_only["background"]["industry"]
    assert any(n is None for n in industry.values()), "no small cell: the check is idle"
    assert any(n is not None for n in industry.values())

    cat = app.extensions["survey_catalog"]
    app.config["MIN_COMPLETION_SECONDS"] = 0  # a scripted respondent is not a "too fast" bot
    assert Respondent(app.test_client()).complete(cat).status_code == 302
    Respondent(app.test_client()).consent()  # started, not finished: a draft
    with app.app_context():
        rows = db.session.execute(
            select(Response.is_demo, Response.status, func.count()).group_by(
                Response.is_demo, Response.status
            )
        ).all()
    by_status = {(bool(demo), status): n for demo, status, n in rows}
    real = get_json(client, "/api/v1/fieldwork", token)
    assert real["demo"] is False
    assert real["completed"] == by_status[(False, "submitted")] == 1
    assert real["drafts"] == by_status[(False, "draft")] == 1
    assert real["started"] == 2
    assert real["completion_rate"] == pytest.approx(0.5)
    assert sum(day["completed"] for day in real["daily"]) == 1
    assert_background_gated(real, app, shown_rows=False, judged_rows=False)

    everything = get_json(client, "/api/v1/fieldwork", token, include_demo="1")
    assert everything["demo"] is True
    assert everything["completed"] == 151
    assert everything["drafts"] == 1
    # Cells are judged on the one real respondent, not on the demo rows mixed in: every
    # cell is withheld, even those with 10 or more demo respondents.
    assert_background_gated(everything, app, shown_rows=None, judged_rows=False)
    mixed = background_direct(app, "industry")
    assert sum(mixed.values()) == 151 and max(mixed.values()) >= 10
    assert all(n is None for n in everything["background"]["industry"].values())


def test_counts_in_the_json_are_whole_numbers_not_floats(app, client, token):
    seed(app, 150, seed_value=7)
    body = get_json(client, "/api/v1/comparison", token)
    fieldwork = get_json(client, "/api/v1/fieldwork", token)
    counts = [row["n_ru"] for row in body["practices"]]
    counts += [row["paired"]["n"] for row in body["practices"]]
    counts += [n for cells in fieldwork["background"].values() for n in cells.values()]
    shown = [n for n in counts if n is not None]
    assert shown and all(type(n) is int for n in shown), {type(n) for n in shown}


def test_openapi_document_describes_the_four_routes(app, client, token):
    doc = get_json(client, "/api/v1/openapi.json", token)
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] and doc["info"]["version"]
    assert {"/practices", "/comparison", "/fieldwork", "/openapi.json"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert doc["security"] == [{"bearer": []}]
    assert doc["servers"][0]["url"].endswith("/api/v1")
    for path, item in doc["paths"].items():
        for operation in item.values():  # GET, and the fieldwork writes (201 when they create)
            assert operation["summary"], path
            assert {"200", "201"} & set(operation["responses"]), path
            assert "401" in operation["responses"], path
            for parameter in operation["parameters"]:
                assert parameter["name"] and "schema" in parameter, (path, parameter)
                assert parameter["in"] in ("query", "path"), (path, parameter)
                if parameter["in"] == "path":
                    assert parameter["required"] is True
                    assert "{" + parameter["name"] + "}" in path
    error = doc["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "message"}
    names = {p["name"] for p in doc["paths"]["/comparison"]["get"]["parameters"]}
    assert {"industry", "worked_in", "include_demo", "level"} <= names
    # The filters' refusal is documented: a 400 whose body names the parameter.
    bad_query = doc["components"]["schemas"]["BadQuery"]
    assert set(bad_query["required"]) == {"error", "message", "parameter"}
    for path in ("/comparison", "/fieldwork"):
        responses = doc["paths"][path]["get"]["responses"]
        assert "400" in responses, path
    # ... and so are the withheld answers of the disclosure gate.
    withheld, shown = doc["components"]["schemas"]["Comparison"]["oneOf"]
    assert withheld["properties"]["suppressed"] == {"const": True}
    assert "n_respondents" not in withheld["required"] and "n_respondents" in shown["required"]
    assert "background_suppressed" in doc["components"]["schemas"]["Fieldwork"]["required"]
    try:
        from openapi_spec_validator import validate
    except ImportError:
        return
    validate(doc)
