"""Synthetic demo respondents: reproducible, clearly marked, realistic, bulk-inserted.

Each test runs on a migrated SQLite file and a migrated PostgreSQL database.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from survey import results
from survey.demo import delete_demo, practice_parameters, seed_demo
from survey.extensions import db
from survey.queries import Segment
from tests.helpers import Respondent

STRUCTURE_N = 2000
STRUCTURE_SEED = 42


def snapshot() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Responses and answers of the database, ids replaced by each response's rank.

    Database ids and the random export ids are left out: the rest must follow the seed.
    """
    responses = pd.DataFrame(
        [tuple(r) for r in db.session.execute(text("SELECT * FROM response ORDER BY id"))],
        columns=list(db.session.execute(text("SELECT * FROM response LIMIT 0")).keys()),
    )
    rank = {rid: i for i, rid in enumerate(responses["id"])}
    answers = pd.DataFrame(
        [
            tuple(r)
            for r in db.session.execute(
                text("SELECT response_id, practice_id, company_kind, met, rating FROM answer")
            )
        ],
        columns=["response_id", "practice_id", "company_kind", "met", "rating"],
    )
    answers["response_id"] = answers["response_id"].map(rank)
    answers = answers.sort_values(["response_id", "practice_id", "company_kind"])
    return (
        responses.drop(columns=["id", "export_id"]).reset_index(drop=True),
        answers.reset_index(drop=True),
    )


def invoke(app, runner, *args: str):
    """Run a command as ``flask --app survey ...`` does: inside an application context."""
    with app.app_context():
        return runner.invoke(args=list(args))


def test_seed_demo_is_reproducible_from_the_seed(app):
    catalog = app.extensions["survey_catalog"]
    with app.app_context():
        seed_demo(catalog, 120, 5)
        first = snapshot()
        delete_demo()
        seed_demo(catalog, 120, 5)
        again = snapshot()
        delete_demo()
        seed_demo(catalog, 120, 6)
        other = snapshot()
    assert len(first[0]) == 120 and len(first[1]) == 120 * 2 * len(catalog.practices)
    pd.testing.assert_frame_equal(first[0], again[0])
    pd.testing.assert_frame_equal(first[1], again[1])
    assert not first[1]["met"].equals(other[1]["met"])
    assert not first[0]["worked_in"].equals(other[0]["worked_in"])


def test_demo_rows_are_marked_consistent_and_realistic(app):
    catalog = app.extensions["survey_catalog"]
    practices = [p.id for p in catalog.practices]
    with app.app_context():
        assert seed_demo(catalog, STRUCTURE_N, STRUCTURE_SEED) == STRUCTURE_N
        responses = db.session.execute(
            text(
                "SELECT is_demo, status, COUNT(*), COUNT(submitted_on), COUNT(worked_in) "
                "FROM response GROUP BY is_demo, status"
            )
        ).all()
        cells = pd.DataFrame(
            [
                tuple(r)
                for r in db.session.execute(
                    text(
                        "SELECT r.worked_in, a.company_kind, a.met, "
                        "a.rating IS NOT NULL AS rated, COUNT(*) FROM answer a "
                        "JOIN response r ON r.id = a.response_id "
                        "GROUP BY r.worked_in, a.company_kind, a.met, a.rating IS NOT NULL"
                    )
                )
            ],
            columns=["worked_in", "company_kind", "met", "rated", "n"],
        )
        table = results.comparison(Segment()).table.set_index("practice_id")
        assert results.comparison(Segment()).demo

    # Every row is a submitted demo response with its background.
    assert [(bool(d), s) for d, s, *_ in responses] == [(True, "submitted")]
    assert responses[0][2:] == (STRUCTURE_N, STRUCTURE_N, STRUCTURE_N)
    assert cells["n"].sum() == STRUCTURE_N * 2 * len(practices)
    cells["rated"] = cells["rated"].astype(bool)
    # A rating exactly with "yes".
    assert (cells["rated"] == (cells["met"] == "yes")).all()
    # "na" exactly for the kind of company the respondent never worked in.
    not_worked = ((cells["company_kind"] == "ru") & (cells["worked_in"] == "foreign_only")) | (
        (cells["company_kind"] == "foreign") & (cells["worked_in"] == "ru_only")
    )
    assert ((cells["met"] == "na") == not_worked).all()
    # Some don't-knows, a few percent.
    asked = cells.loc[~not_worked, ["met", "n"]].groupby("met")["n"].sum()
    assert set(asked.index) == {"yes", "no", "dk"}
    assert 0.03 < asked["dk"] / asked.sum() < 0.1

    # Realistic structure, as designed by practice_parameters(): some practices with a
    # clear difference between company kinds, some with none at all.
    design = practice_parameters(catalog, np.random.default_rng(STRUCTURE_SEED))
    gap = pd.Series({p: design[p]["p"]["ru"] - design[p]["p"]["foreign"] for p in practices})
    equal, strong = gap[gap == 0].index, gap[gap.abs() >= 0.15].index
    assert len(equal) >= 5 and len(strong) >= 3
    assert (table["q_val"] < 0.05).any()
    assert (table.loc[strong, "q_val"] < 0.05).all()
    assert (np.sign(table.loc[strong, "diff"]) == np.sign(gap[strong])).all()
    assert (table.loc[equal, "diff"].abs() < 0.03).any()
    assert (table.loc[equal, "diff"].abs() < 0.06).all()
    assert (table.loc[equal, "q_val"] >= 0.05).mean() >= 0.8
    # Ratings: lower in Russian companies where designed so, detectably.
    lower = [p for p in practices if design[p]["rating"]["ru"] < design[p]["rating"]["foreign"]]
    assert lower and (table.loc[lower, "rating_q_val"] < 0.05).mean() >= 0.8
    assert (table.loc[lower, "rank_biserial"] < 0).all()


def test_cli_seed_demo_replace_and_fresh_ids_afterwards(app, runner, client):
    result = invoke(app, runner, "seed-demo", "--respondents", "300", "--seed", "7")
    assert result.exit_code == 0, result.output
    assert "Created 300 synthetic demo respondents (seed 7)." in result.output
    assert "Seeding demo respondents" in result.output  # the progress bar's label

    def counts() -> tuple[int, int, int]:
        with app.app_context():
            row = db.session.execute(
                text(
                    "SELECT SUM(CASE WHEN is_demo = :t THEN 1 ELSE 0 END), "
                    "SUM(CASE WHEN is_demo = :t THEN 0 ELSE 1 END), MAX(id) FROM response"
                ),
                {"t": True},
            ).one()
            return tuple(int(v or 0) for v in row)

    assert counts() == (300, 0, 300)
    # A real response started after seeding gets a fresh id (on PostgreSQL the id sequence
    # was moved past the explicitly given demo ids).
    Respondent(client).consent()
    assert counts() == (300, 1, 301)

    result = invoke(app, runner, "seed-demo", "-n", "50", "--seed", "8", "--replace")
    assert result.exit_code == 0, result.output
    assert "Deleted 300 earlier demo response(s)." in result.output
    assert "Created 50 synthetic demo respondents (seed 8)." in result.output
    demo, real, top = counts()
    assert (demo, real, top) == (50, 1, 351)  # the real draft is kept; new ids after it
    with app.app_context():
        answers = db.session.scalar(text("SELECT COUNT(*) FROM answer"))
        assert answers == 50 * 2 * len(app.extensions["survey_catalog"].practices)
    Respondent(app.test_client()).consent()
    assert counts() == (50, 2, 352)

    result = invoke(app, runner, "seed-demo", "--respondents", "0")
    assert result.exit_code != 0  # at least one respondent
    assert counts() == (50, 2, 352)


def test_seeding_leaves_every_constraint_in_force_and_the_rows_valid(app):
    """Seeding skips per-row checks (SQLite) or re-adds the foreign keys (PostgreSQL).

    Afterwards the stored rows satisfy every constraint, checked by the database itself,
    and the application's connections enforce them again.
    """
    catalog = app.extensions["survey_catalog"]
    with app.app_context():
        seed_demo(catalog, 250, 9, chunk=100)  # several chunks
        dialect = db.engine.dialect.name
        if dialect == "sqlite":
            assert db.session.execute(text("PRAGMA foreign_key_check")).all() == []
            assert db.session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert db.session.execute(text("PRAGMA ignore_check_constraints")).scalar() == 0
            temp = "SELECT COUNT(*) FROM sqlite_temp_master WHERE name LIKE 'demo_%'"
            assert db.session.scalar(text(temp)) == 0
        else:
            keys = db.session.execute(
                text(
                    "SELECT conname, convalidated, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = 'answer'::regclass AND contype = 'f' ORDER BY conname"
                )
            ).all()
            assert [(name, valid) for name, valid, _ in keys] == [
                ("fk_answer_practice_id_practice", True),
                ("fk_answer_response_id_response", True),
            ]
            assert "ON DELETE CASCADE" in keys[1][2]
        # The CHECK constraints, recomputed over the stored rows.
        bad = db.session.scalar(
            text(
                "SELECT COUNT(*) FROM answer WHERE company_kind NOT IN ('ru', 'foreign') "
                "OR met NOT IN ('yes', 'no', 'dk', 'na') "
                "OR (rating IS NOT NULL AND (met <> 'yes' OR rating NOT BETWEEN 1 AND 5)) "
                "OR (met = 'yes' AND rating IS NULL) "
                "OR practice_id NOT IN (SELECT id FROM practice) "
                "OR response_id NOT IN (SELECT id FROM response)"
            )
        )
        assert bad == 0
        assert db.session.scalar(text("SELECT COUNT(*) FROM response")) == 250
        db.session.commit()
        # The constraints hold again for everyone else: an orphan answer is refused.
        with pytest.raises(IntegrityError):
            db.session.execute(
                text(
                    "INSERT INTO answer (response_id, practice_id, company_kind, met) "
                    "VALUES (999999, :p, 'ru', 'no')"
                ),
                {"p": catalog.practices[0].id},
            )
            db.session.flush()
        db.session.rollback()
        first = db.session.scalar(text("SELECT MIN(id) FROM response"))
        with pytest.raises(IntegrityError):
            db.session.execute(
                text(
                    "INSERT INTO answer (response_id, practice_id, company_kind, met, rating) "
                    "VALUES (:r, :p, 'ru', 'no', 4)"
                ),
                {"r": first, "p": catalog.practices[0].id},
            )
            db.session.flush()
        db.session.rollback()


def test_an_interrupted_seeding_keeps_whole_chunks_only(app):
    """SQLite commits chunk by chunk; PostgreSQL seeds in one transaction. Either way an
    interruption leaves whole respondents, never a response without its answers, and the
    constraints in force."""
    catalog = app.extensions["survey_catalog"]

    def stop_after_first_chunk(size):
        raise KeyboardInterrupt

    with app.app_context():
        with pytest.raises(KeyboardInterrupt):
            seed_demo(catalog, 300, 4, chunk=100, progress=stop_after_first_chunk)
        kept = db.session.scalar(text("SELECT COUNT(*) FROM response"))
        answers = db.session.scalar(text("SELECT COUNT(*) FROM answer"))
        expected = 100 if db.engine.dialect.name == "sqlite" else 0
        assert kept == expected
        assert answers == expected * 2 * len(catalog.practices)
        if db.engine.dialect.name == "postgresql":
            keys = db.session.scalar(
                text(
                    "SELECT COUNT(*) FROM pg_constraint "
                    "WHERE conrelid = 'answer'::regclass AND contype = 'f'"
                )
            )
            assert keys == 2  # the dropped foreign keys came back with the rollback
        db.session.commit()
        # And seeding works again afterwards, after the kept respondents.
        seed_demo(catalog, 50, 5)
        assert db.session.scalar(text("SELECT COUNT(*) FROM response")) == expected + 50
