"""Category prevalence with its bounds (undetermined respondents counted as no / as yes) in
every output: the comparison table's disclosure gate, the API, the dashboard page and its
CSV, and the HTML report. Runs on a migrated SQLite file and a migrated PostgreSQL database.

The expected bounds are recounted per respondent from the raw answer rows.
"""

from __future__ import annotations

import html
import io
import math

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from analysis.compare import COLUMN_GROUPS, compare
from analysis.report import render_report
from survey import disclosure, results
from survey.demo import seed_demo
from survey.extensions import db
from tests.helpers import auth_header, log_in

N = 300


pytestmark = pytest.mark.usefixtures("fresh_cache")


def expected_bounds(app) -> dict[tuple[str, str], tuple[float, float, float]]:
    """(category, kind) -> (lower bound, headline share, upper bound) from the raw answers."""
    with app.app_context():
        rows = db.session.execute(
            text(
                "SELECT a.response_id, p.category_id, a.company_kind, a.met FROM answer a "
                "JOIN practice p ON p.id = a.practice_id "
                "JOIN response r ON r.id = a.response_id "
                "WHERE r.status = 'submitted' AND a.met NOT IN ('na', 'not_my_role')"
            )
        ).all()
    raw = pd.DataFrame([tuple(r) for r in rows], columns=["response_id", "category", "kind", "met"])
    # The practice existed whether it applied to the respondent or not (or the former yes).
    raw["met"] = raw["met"].replace({"applied": "yes", "existed": "yes"})
    out = {}
    for (category, kind), group in raw.groupby(["category", "kind"]):
        said = group.groupby("response_id")["met"].agg(set)
        yes = int(said.map(lambda a: "yes" in a).sum())
        open_ = int(said.map(lambda a: "yes" not in a and "dk" in a).sum())
        out[(category, kind)] = (
            yes / len(said),
            yes / (len(said) - open_),
            (yes + open_) / len(said),
        )
    return out


def seeded(app) -> dict:
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], N, 17)
    return expected_bounds(app)


def test_the_bounds_are_withheld_with_their_kinds_cell():
    prev = pd.DataFrame(
        {
            "category_id": ["pay", "pay", "voice", "voice"],
            "company_kind": ["ru", "foreign", "ru", "foreign"],
            "yes": [30, 3, 12, 20],
            "no": [20, 2, 10, 10],
            "dk": [5, 4, 2, 2],
        }
    )
    table = compare(prev, None, None, None, key="category_id")
    for kind in ("ru", "foreign"):
        assert {f"p_{kind}_bound_low", f"p_{kind}_bound_high"} <= set(COLUMN_GROUPS[kind])
    assert table.loc[0, "p_ru_bound_low"] == 30 / 55
    assert table.loc[0, "p_ru_bound_high"] == 35 / 55
    masked = disclosure.mask_comparison(table, 10)
    # pay/foreign rests on 5 yes/no answers: its share, dk and bounds are all withheld.
    assert masked.loc[0, "suppressed_foreign"] and not masked.loc[0, "suppressed_ru"]
    for column in ("n_foreign", "dk_foreign", "p_foreign", "p_foreign_bound_low"):
        assert math.isnan(masked.loc[0, column]), column
    assert math.isnan(masked.loc[0, "p_foreign_bound_high"])
    assert masked.loc[0, "p_ru_bound_high"] == 35 / 55
    assert masked.loc[1, "p_foreign_bound_low"] == 20 / 32


def test_api_category_rows_carry_the_bounds_beside_the_headline(app, client, token):
    expected = seeded(app)
    headers = auth_header(token)
    body = client.get("/api/v1/comparison?level=category", headers=headers).get_json()
    assert body["categories"]
    for item in body["categories"]:
        for kind in ("ru", "foreign"):
            low, share, high = expected[(item["category_id"], kind)]
            got_low, got_high = item[f"p_{kind}_bounds"]
            assert math.isclose(got_low, low) and math.isclose(got_high, high)
            assert math.isclose(item[f"p_{kind}"], share)  # the headline leaves them out
            assert got_low <= item[f"p_{kind}"] <= got_high
    assert any(i["p_ru_bounds"][0] < i["p_ru_bounds"][1] for i in body["categories"])
    practices = client.get("/api/v1/comparison", headers=headers).get_json()["practices"]
    assert "p_ru_bounds" not in practices[0]


def test_categories_page_csv_and_report_show_the_bounds(app, client):
    expected = seeded(app)
    log_in(app, client)
    en = client.get("/researcher/categories?lang=en").text
    assert "Bounds, RU" in en and "Bounds, foreign" in en
    assert "as “no” (lower bound) and as “yes” (upper bound)" in en
    ru = client.get("/researcher/categories?lang=ru").text
    assert "Границы, рос." in ru
    practice_page = client.get("/researcher/comparison?lang=en").text
    assert "Bounds, RU" not in practice_page  # practice rows keep their own dk column
    with app.app_context():
        labels = results.category_labels("en")
    first = next(iter(labels))
    low, _, high = expected[(first, "ru")]
    assert f"{low * 100:.1f}–{high * 100:.1f}%" in en

    r = client.get("/researcher/table/categories.csv?lang=en")
    frame = pd.read_csv(io.StringIO(r.get_data(as_text=True))).set_index("category_id")
    for (category, kind), (low, share, high) in expected.items():
        assert np.isclose(frame.loc[category, f"p_{kind}_bound_low"], low)
        assert np.isclose(frame.loc[category, f"p_{kind}"], share)
        assert np.isclose(frame.loc[category, f"p_{kind}_bound_high"], high)

    with app.app_context():
        result = results.comparison(results.queries.Segment())
    page = render_report(
        result.table,
        {},
        lang="en",
        sample={"n_respondents": N},
        assumptions="",
        category_table=result.category_table,
        category_labels=labels,
    )
    categories = page[page.index('id="categories"') :]
    assert "Bounds (don't know = no / yes)" in html.unescape(categories)
    assert f"{low * 100:.1f}–{high * 100:.1f}%" in categories
    assert "counted as “no” (lower) or as “yes” (upper)" in categories
    practices = page[page.index('id="comparison"') : page.index('id="categories"')]
    assert "Bounds" not in practices
