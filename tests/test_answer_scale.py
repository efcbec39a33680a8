"""The applied / existed / did not exist scale, the former "met it", "not my role" and each
kind's period in the count tables: every count equals a plain Python recount of the raw
answer rows, inserted directly (every code, legacy ones included)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from sqlalchemy import insert, select, update

from survey import queries, responses
from survey.extensions import db
from survey.models import Answer, Response
from survey.questions import PERIODS

N = 90
KINDS = ("ru", "foreign")
WORKED = {"ru_only": ("ru",), "foreign_only": ("foreign",), "both": ("ru", "foreign")}
SCALE = ("applied", "existed", "no", "dk")


def _answer(rng: random.Random, legacy: bool, role_marked: bool) -> tuple[str, int | None, bool]:
    """A random stored answer: (met, rating, rating_mixed)."""
    if legacy:
        met = rng.choice(("yes", "no", "dk"))
        return met, (rng.randint(1, 5) if met == "yes" and rng.random() < 0.9 else None), False
    met = rng.choice(SCALE + (("not_my_role",) if role_marked else ()))
    if met != "applied":
        return met, None, False
    if rng.random() < 0.2:
        return met, None, True
    return met, rng.randint(1, 5), False


@pytest.fixture
def raw(app):
    """N submitted responses: a third from before the anchored design (former scale, no
    periods), the rest anchored; returns the rows as inserted."""
    rng = random.Random(20261201)
    catalog = app.extensions["survey_catalog"]
    marked = {p.id for p in catalog.practices if p.functions}
    practices = [p for p in catalog.practices[:6] if p.id not in marked]
    practices += [p for p in catalog.practices if p.id in marked]
    people, answers = [], []
    with app.app_context():
        responses.sync_catalog(catalog)
        for i in range(N):
            response, _ = responses.start("ru")
            worked_in = rng.choice(tuple(WORKED))
            legacy = i % 3 == 0
            values = {
                "status": "submitted",
                "submitted_on": response.started_on,
                "worked_in": worked_in,
                "current_employer": "ru",
                "industry": "it",
                "company_size": "lt50",
                "role_level": "specialist",
                "experience_band": "3_5",
            }
            periods = {}
            if not legacy:
                values["job_function"] = "sales"
                for kind in WORKED[worked_in]:
                    periods[kind] = rng.choice(PERIODS)
                    values[f"{kind}_last_year"] = periods[kind]
            db.session.execute(update(Response).where(Response.id == response.id).values(values))
            people.append({"id": response.id, "worked_in": worked_in, "periods": periods})
            for practice in practices:
                for kind in KINDS:
                    if kind in WORKED[worked_in]:
                        met, rating, mixed = _answer(rng, legacy, practice.id in marked)
                    else:
                        met, rating, mixed = "na", None, False
                    answers.append(
                        {
                            "response_id": response.id,
                            "practice_id": practice.id,
                            "company_kind": kind,
                            "met": met,
                            "rating": rating,
                            "rating_mixed": mixed,
                        }
                    )
        db.session.execute(insert(Answer), answers)
        db.session.commit()
        # Rows written past the write paths: derive the answer vectors from them, as a
        # write path does (the count tables read the vectors).
        list(responses.check_vectors(repair=True))
        # The rows as the database holds them (a recount must not trust the generator).
        stored = [
            dict(r._mapping)
            for r in db.session.execute(
                select(
                    Answer.response_id,
                    Answer.practice_id,
                    Answer.company_kind,
                    Answer.met,
                    Answer.rating,
                    Answer.rating_mixed,
                )
            )
        ]
    return {"people": {p["id"]: p for p in people}, "answers": stored}


def _kept(raw, period):
    """Answer rows that count: not 'na' / 'not_my_role', and in the period if one is set."""
    for a in raw["answers"]:
        if a["met"] in ("na", "not_my_role"):
            continue
        if period and raw["people"][a["response_id"]]["periods"].get(a["company_kind"]) != period:
            continue
        yield a


def _group(met: str) -> str:
    return "yes" if met in ("applied", "existed", "yes") else met


@pytest.mark.parametrize("period", [None, *PERIODS])
def test_count_tables_equal_a_recount_of_the_raw_answers(app, raw, period):
    expected_prevalence = Counter()
    expected_ratings = Counter()
    by_person: dict[tuple[int, str], dict[str, dict]] = {}
    for a in _kept(raw, period):
        key = (a["practice_id"], a["company_kind"])
        expected_prevalence[(*key, _group(a["met"]))] += 1
        if a["rating"] is not None:
            expected_ratings[(*key, a["rating"])] += 1
        by_person.setdefault((a["response_id"], a["practice_id"]), {})[a["company_kind"]] = a
    expected_paired = Counter()
    for (rid, pid), kinds in by_person.items():
        if raw["people"][rid]["worked_in"] != "both" or len(kinds) != 2:
            continue
        ru, fo = _group(kinds["ru"]["met"]), _group(kinds["foreign"]["met"])
        if ru in ("yes", "no") and fo in ("yes", "no"):
            expected_paired[(pid, f"{ru}_{fo}")] += 1

    with app.app_context():
        counts = queries.practice_counts(queries.Segment(period=period))
    got_prevalence = Counter()
    for row in counts["prevalence"].itertuples():
        for met in ("yes", "no", "dk"):
            if getattr(row, met):
                got_prevalence[(row.practice_id, row.company_kind, met)] = getattr(row, met)
    assert got_prevalence == expected_prevalence
    got_ratings = Counter(
        {
            (r.practice_id, r.company_kind, r.rating): r.n
            for r in counts["ratings"].itertuples()
            if r.n
        }
    )
    assert got_ratings == expected_ratings
    got_paired = Counter()
    for row in counts["paired"].itertuples():
        for cell in ("yes_yes", "yes_no", "no_yes", "no_no"):
            if getattr(row, cell):
                got_paired[(row.practice_id, cell)] = getattr(row, cell)
    assert got_paired == expected_paired
    assert sum(expected_prevalence.values()) > 0  # the recount is not vacuous


def test_mixed_and_not_my_role_never_enter_a_share_or_a_rating(app, raw):
    with app.app_context():
        counts = queries.practice_counts(queries.Segment())
    mixed = sum(1 for a in raw["answers"] if a["rating_mixed"])
    not_mine = sum(1 for a in raw["answers"] if a["met"] == "not_my_role")
    assert mixed and not_mine  # both occur in the data
    answered = sum(1 for a in raw["answers"] if a["met"] not in ("na", "not_my_role"))
    shown = int(counts["prevalence"][["yes", "no", "dk"]].to_numpy().sum())
    assert shown == answered
    rated = sum(1 for a in raw["answers"] if a["rating"] is not None)
    assert int(counts["ratings"]["n"].sum()) == rated


def test_a_period_keeps_each_kinds_answers_apart(app, raw):
    """A respondent of both kinds with one kind in the period counts for that kind only,
    and the respondents of the segment are those with at least one kind in it."""
    period = "2022_on"
    people = raw["people"].values()
    expected = Counter()
    for p in people:
        kinds = tuple(k for k in KINDS if p["periods"].get(k) == period)
        if len(kinds) == 2:
            expected["both"] += 1
        elif kinds:
            expected[f"{kinds[0]}_only"] += 1
    with app.app_context():
        segment = queries.Segment(period=period)
        structure = queries.kind_structure(segment, queries.population())
        total = queries.count_respondents(segment)
    assert structure == dict(expected)
    assert total == sum(expected.values())


def test_a_periods_examples_come_only_from_that_kinds_experience_in_it(app, raw):
    """With a period, a kind's free-text examples come only from respondents whose
    experience of that kind is in the period (like the answers); examples without a
    stated kind (older than periods) never show under a period."""
    from survey.models import PracticeExample

    practice = "flexible_hours"
    texts = {}
    with app.app_context():
        for rid, person in raw["people"].items():
            for kind in WORKED[person["worked_in"]]:
                text = f"example {rid} {kind}"
                texts[(rid, kind)] = text
                db.session.add(
                    PracticeExample(
                        response_id=rid, practice_id=practice, company_kind=kind, text=text
                    )
                )
        db.session.commit()
        for period in PERIODS:
            segment = queries.Segment(period=period)
            for kind in KINDS:
                expected = sorted(
                    text
                    for (rid, k), text in texts.items()
                    if k == kind and raw["people"][rid]["periods"].get(kind) == period
                )
                assert sorted(queries.examples(practice, segment, kind, 1000)) == expected
                assert expected  # not vacuous
            assert queries.examples(practice, segment, None, 1000) == []
