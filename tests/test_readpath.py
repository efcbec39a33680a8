"""The count tables read from the answer vectors equal a plain recount of the answer rows.

For random studies (every character of the vector alphabet, random company kinds and
periods, two catalogue versions that ask different practices, drafts, demo and flagged
responses) the rows and the vectors are written together (each vector built from its rows
with :func:`survey.vectors.encode`); ``queries.practice_counts`` and
``queries.category_counts`` (which read only the vectors) must then give exactly what
pandas counts from one plain SELECT of the answer rows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, text

from survey import queries, readpath, responses, vectors
from survey.extensions import db
from survey.models import Answer, CatalogVersion, Practice, Response
from survey.queries import Segment
from survey.questions import PERIODS

ALPHABET = ".anrdep12345myABCDE"
EXISTED = ("applied", "existed", "yes")
WORKED = {"both": ("ru", "foreign"), "ru_only": ("ru",), "foreign_only": ("foreign",)}
RETIRED = "retired_practice_for_the_test"  # asked by the old version only
TODAY = dt.date(2026, 12, 8)
CELLS = ("yes_yes", "yes_no", "no_yes", "no_no")


# --------------------------------------------------------------------------- the study


@pytest.fixture
def versions(app):
    """Two catalogue versions: the served one, and an older one that asked fewer practices
    in another order plus one practice the served catalogue no longer has."""
    with app.app_context():
        responses.sync_catalog(responses.catalog())
        served = db.session.scalar(select(CatalogVersion))
        current = vectors.layout(served.content)
        category = db.session.scalar(select(Practice.category_id).where(Practice.id == current[0]))
        db.session.add(
            Practice(
                id=RETIRED,
                category_id=category,
                position=99,
                reward="non_financial",
                name_ru="Старая практика",
                name_en="An old practice",
                active=False,
            )
        )
        old_ids = [current[5], RETIRED, current[0], current[12], current[30], current[3]]
        old = CatalogVersion(
            version="2025.1",
            checksum="0" * 64,
            loaded_on=TODAY,
            content={"version": "2025.1", "practices": [{"id": pid} for pid in old_ids]},
        )
        db.session.add(old)
        db.session.commit()
        return {"served": (served.id, current), "old": (old.id, tuple(old_ids))}


CELL = st.sampled_from(ALPHABET)
PERSON = st.fixed_dictionaries(
    {
        "old_version": st.booleans(),
        "status": st.sampled_from(["submitted", "submitted", "submitted", "draft"]),
        "is_demo": st.booleans(),
        "flagged": st.integers(0, 5).map(lambda i: i == 0),
        "worked_in": st.sampled_from(list(WORKED)),
        "ru_last_year": st.sampled_from([None, *PERIODS]),
        "foreign_last_year": st.sampled_from([None, *PERIODS]),
        "industry": st.sampled_from(["it", "retail"]),
        "role_level": st.sampled_from([None, "specialist", "line_manager"]),
        "function": st.sampled_from([None, "sales", "it"]),
        "cells": st.lists(CELL, min_size=12, max_size=12),
    }
)
SEGMENT = st.builds(
    Segment,
    worked_in=st.sampled_from([None, *WORKED]),
    industry=st.sampled_from([None, "it"]),
    period=st.sampled_from([None, *PERIODS]),
    include_demo=st.booleans(),
    include_flagged=st.booleans(),
)


def store(versions: dict[str, tuple[int, tuple[str, ...]]], people: list[dict]) -> None:
    """Write the responses, their answer rows and the vectors built from those rows.

    A response of the served version answers its first six practices only (a short study
    keeps each example fast): its other cells are '.' (no row), as in a draft.
    """
    db.session.execute(delete(Answer))
    db.session.execute(delete(Response))
    wave_id = responses.default_wave().id
    for i, person in enumerate(people, start=1):
        version, layout = versions["old" if person["old_version"] else "served"]
        asked = layout[:6]  # 6 practices x 2 kinds = the 12 drawn cells
        rows = []
        for j, ch in enumerate(person["cells"]):
            met, rating, mixed = vectors.decode_cell(ch)
            if met is not None:
                rows.append((asked[j // 2], vectors.KINDS[j % 2], met, rating, mixed))
        kinds = WORKED[person["worked_in"]]
        submitted = person["status"] == "submitted"
        db.session.execute(
            insert(Response).values(
                id=i,
                export_id=f"x{i:031d}",
                status=person["status"],
                wave_id=wave_id,
                catalog_version_id=version,
                language="ru",
                is_demo=person["is_demo"],
                consent_version="2026-12",
                consented_on=TODAY,
                started_on=TODAY,
                updated_on=TODAY,
                submitted_on=TODAY if submitted else None,
                worked_in=person["worked_in"],
                current_employer="ru",
                industry=person["industry"],
                company_size="lt50",
                role_level="specialist",
                experience_band="3_5",
                **{
                    f"{kind}_{name}": person[key] if kind in kinds else None
                    for kind in vectors.KINDS
                    for name, key in (
                        ("last_year", f"{kind}_last_year"),
                        ("role_level", "role_level"),
                        ("function", "function"),
                    )
                },
                quality_flag="too_fast" if person["flagged"] else None,
                answer_code=vectors.encode(rows, layout),
            )
        )
        if rows:
            db.session.execute(
                insert(Answer),
                [
                    {
                        "response_id": i,
                        "practice_id": pid,
                        "company_kind": kind,
                        "met": met,
                        "rating": rating,
                        "rating_mixed": mixed,
                    }
                    for pid, kind, met, rating, mixed in rows
                ],
            )
    db.session.commit()


# --------------------------------------------------------------------------- the recount


RAW_SQL = text(
    "SELECT a.response_id, a.practice_id, p.category_id, a.company_kind, a.met, a.rating, "
    "r.status, r.is_demo, r.quality_flag, r.worked_in, r.industry, r.ru_last_year, "
    "r.foreign_last_year "
    "FROM answer a JOIN response r ON r.id = a.response_id "
    "JOIN practice p ON p.id = a.practice_id"
)
RAW_COLUMNS = [
    "response_id", "practice_id", "category_id", "company_kind", "met", "rating", "status",
    "is_demo", "quality_flag", "worked_in", "industry", "ru_last_year", "foreign_last_year",
]  # fmt: skip
RESPONSES_SQL = text("SELECT status, is_demo, quality_flag FROM response")
COVARIATES_SQL = text(
    "SELECT id, ru_last_year, ru_role_level, ru_function, foreign_last_year, "
    "foreign_role_level, foreign_function FROM response"
)


def selected(raw: pd.DataFrame, segment: Segment) -> pd.DataFrame:
    """The answer rows that count in the segment, by the documented rules: submitted;
    flagged only when asked; demo rows when no real response exists or when asked; 'na'
    and 'not_my_role' never; with a period, a kind's answers only from respondents who
    worked in that kind and last did so in that period."""
    people = pd.DataFrame(db.session.execute(RESPONSES_SQL).all(), columns=["s", "d", "f"])
    countable = (people["s"] == "submitted") & (people["f"].isna() | segment.include_flagged)
    has_real = bool((countable & ~people["d"].astype(bool)).any())
    use_demo = segment.include_demo if has_real else bool(people["d"].astype(bool).any())
    rows = raw[(raw["status"] == "submitted") & ~raw["met"].isin(["na", "not_my_role"])]
    if not segment.include_flagged:
        rows = rows[rows["quality_flag"].isna()]
    demo = rows["is_demo"].astype(bool)
    if not has_real:
        rows = rows[demo] if use_demo else rows.iloc[:0]
    elif not use_demo:
        rows = rows[~demo]
    if segment.worked_in:
        rows = rows[rows["worked_in"] == segment.worked_in]
    if segment.industry:
        rows = rows[rows["industry"] == segment.industry]
    if segment.period:
        last = rows["ru_last_year"].where(rows["company_kind"] == "ru", rows["foreign_last_year"])
        rows = rows[last == segment.period]  # NULL for a kind not worked in
    return rows.assign(met=rows["met"].where(~rows["met"].isin(EXISTED), "yes"))


def recount(rows: pd.DataFrame, key: str) -> dict[str, list[tuple]]:
    """The four count tables of answer rows [response_id, key, company_kind, met, rating]
    (met already 'yes' / 'no' / 'dk'), as sorted lists of tuples."""
    out = {"prevalence": [], "ratings": [], "paired": [], "paired_ratings": []}
    for (item, kind), group in rows.groupby([key, "company_kind"]):
        met = group["met"].value_counts()
        out["prevalence"].append(
            (item, kind, *(int(met.get(code, 0)) for code in ("yes", "no", "dk")))
        )
        for rating, n in group["rating"].dropna().astype(int).value_counts().items():
            out["ratings"].append((item, kind, int(rating), int(n)))
    ru = rows[rows["company_kind"] == "ru"].set_index(["response_id", key])
    fo = rows[rows["company_kind"] == "foreign"].set_index(["response_id", key])
    pairs = ru.join(fo, how="inner", suffixes=("_ru", "_fo")).reset_index()
    paired = {}
    for row in pairs.itertuples():
        if row.met_ru in ("yes", "no") and row.met_fo in ("yes", "no"):
            cells = paired.setdefault(getattr(row, key), dict.fromkeys(CELLS, 0))
            cells[f"{row.met_ru}_{row.met_fo}"] += 1
    out["paired"] = [(item, *cells.values()) for item, cells in paired.items()]
    rated = pairs.dropna(subset=["rating_ru", "rating_fo"])
    for (item, r_ru, r_fo), n in rated.groupby([key, "rating_ru", "rating_fo"]).size().items():
        out["paired_ratings"].append((item, int(r_ru), int(r_fo), int(n)))
    return {name: sorted(values) for name, values in out.items()}


def category_answers(rows: pd.DataFrame) -> pd.DataFrame:
    """One answer per (response, category, kind): 'yes' if any practice existed, else 'dk'
    if any is don't know, else 'no'; the rating is the mean rating, rounded half up."""
    out = []
    for (rid, category, kind), group in rows.groupby(
        ["response_id", "category_id", "company_kind"]
    ):
        mets = set(group["met"])
        met = "yes" if "yes" in mets else "dk" if "dk" in mets else "no"
        ratings = [int(r) for r in group["rating"].dropna()]
        rating = (
            math.floor(Fraction(sum(ratings), len(ratings)) + Fraction(1, 2)) if ratings else None
        )
        out.append((rid, category, kind, met, rating))
    return pd.DataFrame(
        out, columns=["response_id", "category_id", "company_kind", "met", "rating"]
    ).astype({"rating": "Float64"})


def recount_patterns(rows: pd.DataFrame) -> Counter:
    """Respondents per (practice, y_ru, y_foreign, covariates of both kinds): y is 1.0 for
    'yes', 0.0 for 'no', None otherwise; a respondent with neither is left out."""
    covariates = {rid: tuple(cov) for rid, *cov in db.session.execute(COVARIATES_SQL)}
    answers: dict[tuple, dict] = {}
    for row in rows.itertuples():
        answers.setdefault((row.response_id, row.practice_id), {})[row.company_kind] = row.met
    out = Counter()
    for (rid, pid), kinds in answers.items():
        y = [{"yes": 1.0, "no": 0.0}.get(kinds.get(kind)) for kind in ("ru", "foreign")]
        if y != [None, None]:
            out[(pid, *y, *covariates[rid])] += 1
    return out


def as_tuples(frame: pd.DataFrame) -> list[tuple]:
    """A count table as a sorted list of plain tuples."""
    return sorted(
        tuple(int(v) if isinstance(v, (int, np.integer)) else v for v in row)
        for row in frame.itertuples(index=False)
    )


def check(segment: Segment) -> None:
    """The vector read path equals the recount of the rows, at both levels."""
    raw = pd.DataFrame(db.session.execute(RAW_SQL).all(), columns=RAW_COLUMNS)
    rows = selected(raw, segment)
    pop = queries.population(segment.include_demo, segment.include_flagged)
    practices = queries.practice_counts(segment, pop)
    expected = recount(rows, "practice_id")
    both = recount(rows[rows["worked_in"] == "both"], "practice_id")
    expected["paired"], expected["paired_ratings"] = both["paired"], both["paired_ratings"]
    for name, values in expected.items():
        assert as_tuples(practices[name]) == values, name
    categories = queries.category_counts(segment, pop)
    expected = recount(category_answers(rows), "category_id")
    for name, values in expected.items():
        assert as_tuples(categories[name]) == values, name
    patterns = queries.kind_patterns(segment, pop)
    got = Counter()
    for *key, n in patterns.itertuples(index=False):
        got[tuple(None if isinstance(v, float) and math.isnan(v) else v for v in key)] += n
    assert got == recount_patterns(rows)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people=st.lists(PERSON, max_size=14), segments=st.lists(SEGMENT, min_size=1, max_size=3))
def test_the_vector_read_path_equals_a_recount_of_the_answer_rows(app, versions, people, segments):
    with app.app_context():
        store(versions, people)
        for segment in segments:
            check(segment)


# --------------------------------------------------------------------------- pure decoding


LAYOUT = ("p1", "p2", "p3")
CATEGORY_OF = {"p1": "c1", "p2": "c1", "p3": "c2"}


def test_a_category_rating_is_the_mean_rounded_half_away_from_zero():
    # Cell 2 * i + k: practice i, kind k (ru, foreign). Category c1 = p1, p2; c2 = p3.
    rows = [
        (1, "2n3nn.", "both", None, None),  # c1 ru: ratings 2, 3 -> 2.5 -> 3; c1 foreign: no
        (1, "A.B...", "ru_only", None, None),  # former scale, 1 and 2 -> 1.5 -> 2
        (1, "4.m...", "ru_only", None, None),  # 4 and "mixed" (no rating) -> 4
        (1, "e.r.a.", "ru_only", None, None),  # existed, no rating; 'r' and 'a' left out
    ]
    blocks = readpath.decode(rows, {1: LAYOUT}.__getitem__)
    tables = readpath.category_tables(blocks, CATEGORY_OF)
    assert as_tuples(tables["ratings"]) == [
        ("c1", "ru", 2, 1),
        ("c1", "ru", 3, 1),
        ("c1", "ru", 4, 1),
    ]
    assert as_tuples(tables["prevalence"]) == [
        ("c1", "foreign", 0, 1, 0),
        ("c1", "ru", 4, 0, 0),
        ("c2", "ru", 0, 1, 0),
    ]
    assert as_tuples(tables["paired"]) == [("c1", 0, 1, 0, 0)]


def test_a_period_excludes_the_cells_of_a_kind_last_worked_in_another_period():
    rows = [
        (1, "1n....", "both", "2022_on", "before_2014"),  # ru counts, foreign does not
        (1, "n5....", "both", "before_2014", "2022_on"),  # foreign counts, ru does not
        (1, "nn....", "ru_only", None, None),  # no period at all: nothing counts
    ]
    blocks = readpath.decode(rows, {1: LAYOUT}.__getitem__, period="2022_on")
    tables = readpath.practice_tables(blocks)
    assert as_tuples(tables["prevalence"]) == [("p1", "foreign", 1, 0, 0), ("p1", "ru", 1, 0, 0)]
    assert tables["paired"].empty and tables["paired_ratings"].empty


@pytest.mark.parametrize(
    "code",
    ["1n...", "1n.....", "1n...x", "1n...é"],
    ids=["too short", "too long", "unknown character", "not ascii"],
)
def test_a_vector_that_does_not_fit_its_layout_is_refused(code):
    rows = [(1, "1n....", "both", None, None), (1, code, "both", None, None)]
    with pytest.raises(ValueError, match="answer vector"):
        readpath.decode(rows, {1: LAYOUT}.__getitem__)


def test_no_selected_response_gives_empty_tables_with_their_columns():
    tables = readpath.practice_tables(readpath.decode([], {}.__getitem__))
    assert list(tables["prevalence"].columns) == ["practice_id", "company_kind", "yes", "no", "dk"]
    assert list(tables["paired_ratings"].columns) == [
        "practice_id",
        "rating_ru",
        "rating_foreign",
        "n",
    ]
    assert all(table.empty for table in tables.values())
