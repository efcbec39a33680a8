"""Synthetic demo respondents: reproducible, clearly marked, realistic, bulk-inserted, on
the answer scale since 2026-12 and with each kind's block.

Each test runs on a migrated SQLite file and a migrated PostgreSQL database.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from statsmodels.stats.proportion import proportions_ztest

from survey import results
from survey.demo import DEFAULT_CORRELATION, delete_demo, practice_parameters, seed_demo
from survey.extensions import db
from survey.queries import Segment
from survey.questions import BACKGROUND_BY_FIELD, KIND_BACKGROUND_BY_FIELD
from tests.helpers import Respondent

# Written out here rather than imported: the scale the seeded answers must use.
EXISTED = ("applied", "existed", "yes")
ASKED = {"applied", "existed", "no", "dk", "not_my_role"}
KIND_COLUMNS = [f"{kind}_{name}" for kind in ("ru", "foreign") for name in (
    "years", "last_year", "employers", "role_level", "function"
)]  # fmt: skip
ROLES = ("specialist", "line_manager", "middle_manager", "executive")

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
                text(
                    "SELECT response_id, practice_id, company_kind, met, rating, rating_mixed "
                    "FROM answer"
                )
            )
        ],
        columns=["response_id", "practice_id", "company_kind", "met", "rating", "rating_mixed"],
    )
    answers["rating_mixed"] = answers["rating_mixed"].astype(bool)
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
    assert not first[0]["ru_last_year"].equals(other[0]["ru_last_year"])


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
                        "a.rating IS NOT NULL AS rated, a.rating_mixed, COUNT(*) FROM answer a "
                        "JOIN response r ON r.id = a.response_id "
                        "GROUP BY r.worked_in, a.company_kind, a.met, a.rating IS NOT NULL, "
                        "a.rating_mixed"
                    )
                )
            ],
            columns=["worked_in", "company_kind", "met", "rated", "mixed", "n"],
        )
        table = results.comparison(Segment()).table.set_index("practice_id")
        assert results.comparison(Segment()).demo

    # Every row is a submitted demo response with its background.
    assert [(bool(d), s) for d, s, *_ in responses] == [(True, "submitted")]
    assert responses[0][2:] == (STRUCTURE_N, STRUCTURE_N, STRUCTURE_N)
    assert cells["n"].sum() == STRUCTURE_N * 2 * len(practices)
    cells["rated"] = cells["rated"].astype(bool)
    cells["mixed"] = cells["mixed"].astype(bool)
    # A rating, or "mixed / can't say" instead, only with "applied"; never both.
    assert (~(cells["rated"] | cells["mixed"]) | (cells["met"] == "applied")).all()
    assert not (cells["rated"] & cells["mixed"]).any()
    applied = cells[cells["met"] == "applied"]
    shares = {
        "rated": applied.loc[applied["rated"], "n"].sum() / applied["n"].sum(),
        "mixed": applied.loc[applied["mixed"], "n"].sum() / applied["n"].sum(),
    }
    assert shares["rated"] > 0.85 and 0.04 < shares["mixed"] < 0.1, shares
    # "na" exactly for the kind of company the respondent never worked in.
    not_worked = ((cells["company_kind"] == "ru") & (cells["worked_in"] == "foreign_only")) | (
        (cells["company_kind"] == "foreign") & (cells["worked_in"] == "ru_only")
    )
    assert ((cells["met"] == "na") == not_worked).all()
    # The scale since 2026-12 (never the former "yes"); some don't-knows, a few percent;
    # "applied" more often than "existed, but not for me".
    asked = cells.loc[~not_worked, ["met", "n"]].groupby("met")["n"].sum()
    assert set(asked.index) == ASKED
    assert 0.03 < asked["dk"] / asked.sum() < 0.1
    assert asked["applied"] > asked["existed"] > 0.1 * asked["applied"]

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


def responses_frame() -> pd.DataFrame:
    """Every stored response row."""
    result = db.session.execute(text("SELECT * FROM response"))
    return pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))


def test_each_kind_block_follows_the_background_and_is_empty_for_a_kind_never_worked_in(app):
    catalog = app.extensions["survey_catalog"]
    with app.app_context():
        seed_demo(catalog, STRUCTURE_N, STRUCTURE_SEED)
        rows = responses_frame()
    assert rows["job_function"].notna().all()
    assert set(rows["job_function"]) == set(BACKGROUND_BY_FIELD["job_function"].codes())
    for kind, never in (("ru", "foreign_only"), ("foreign", "ru_only")):
        columns = [c for c in KIND_COLUMNS if c.startswith(kind + "_")]
        worked = rows["worked_in"] != never
        # The whole block, exactly for the kinds worked in.
        assert rows.loc[worked, columns].notna().all(axis=None)
        assert rows.loc[~worked, columns].isna().all(axis=None)
        block = rows[worked]
        for column in columns:
            codes = set(KIND_BACKGROUND_BY_FIELD[column].codes())
            assert set(block[column]) <= codes, column
            # Plausible, not degenerate: at least two codes, none taking everything.
            shares = block[column].value_counts(normalize=True)
            assert len(shares) >= 2 and shares.max() < 0.95, (column, shares.to_dict())
        # The kind of the current employer was worked in since 2022.
        current = block[block["current_employer"] == kind]
        assert len(current) and (current[f"{kind}_last_year"] == "2022_on").all()
        # Some answers about each kind refer to an earlier period.
        assert (block[f"{kind}_last_year"] != "2022_on").mean() > 0.03
        # The highest role there is at most the role now.
        rank = {code: i for i, code in enumerate(ROLES)}
        assert (block[f"{kind}_role_level"].map(rank) <= block["role_level"].map(rank)).all()
        # Mostly the same function as now.
        assert (block[f"{kind}_function"] == block["job_function"]).mean() > 0.7
        # Years there never exceed the total experience.
        most = {"lt3": "1_2", "3_5": "3_5", "6_10": "6_10", "11_20": "10plus", "20plus": "10plus"}
        order = {c: i for i, c in enumerate(("lt1", "1_2", "3_5", "6_10", "10plus"))}
        years = block[f"{kind}_years"].map(order)
        assert (years <= block["experience_band"].map(most).map(order)).all()
        # Nobody worked for four employers of a kind in less than a year.
        assert not (
            (block[f"{kind}_years"] == "lt1") & (block[f"{kind}_employers"] == "4plus")
        ).any()


def test_not_my_role_only_on_function_marked_practices_and_only_for_other_functions(app):
    catalog = app.extensions["survey_catalog"]
    marked = {p.id: set(p.functions) for p in catalog.practices if p.functions}
    assert marked  # catalogue 2026.4 marks the sales practices
    with app.app_context():
        seed_demo(catalog, STRUCTURE_N, STRUCTURE_SEED)
        answers = pd.DataFrame(
            [
                tuple(r)
                for r in db.session.execute(
                    text(
                        "SELECT a.practice_id, a.company_kind, a.met, r.ru_function, "
                        "r.foreign_function FROM answer a JOIN response r ON r.id = a.response_id "
                        "WHERE a.met <> 'na'"
                    )
                )
            ],
            columns=["practice_id", "company_kind", "met", "ru_function", "foreign_function"],
        )
    function = np.where(
        answers["company_kind"] == "ru", answers["ru_function"], answers["foreign_function"]
    )
    in_function = np.array(
        [f in marked.get(pid, ()) for pid, f in zip(answers["practice_id"], function, strict=True)]
    )
    is_marked = answers["practice_id"].isin(list(marked))
    not_mine = answers["met"] == "not_my_role"
    assert not (not_mine & ~is_marked).any()  # never on a practice for every function
    assert not (not_mine & in_function).any()  # never from someone in the practice's function
    outside = is_marked & ~in_function
    assert 0.3 < not_mine[outside].mean() < 0.7  # "with some probability"
    # Where it existed, it mostly applied to those in the function, rarely to the others.
    existed = answers["met"].isin(["applied", "existed"])
    applied = answers["met"] == "applied"
    inside = is_marked & in_function & existed
    assert applied[inside].mean() > 0.75
    assert applied[outside & existed].mean() < 0.2


def test_the_synthetic_period_effect_shows_in_the_raw_answers(app):
    """Every eighth practice is made more common in answers about 2022 or later: labelled
    synthetic in survey/demo.py, and visible in a plain count of the stored answers, in
    each kind of company; the other practices do not differ by period."""
    catalog = app.extensions["survey_catalog"]
    design = practice_parameters(catalog, np.random.default_rng(STRUCTURE_SEED))
    period = "CASE WHEN a.company_kind = 'ru' THEN r.ru_last_year ELSE r.foreign_last_year END"
    with app.app_context():
        seed_demo(catalog, STRUCTURE_N, STRUCTURE_SEED)
        rows = db.session.execute(
            text(
                f"SELECT a.practice_id, a.company_kind, {period}, "
                "SUM(CASE WHEN a.met IN ('applied', 'existed') THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN a.met = 'no' THEN 1 ELSE 0 END) "
                "FROM answer a JOIN response r ON r.id = a.response_id "
                "WHERE a.met IN ('applied', 'existed', 'no') "
                f"GROUP BY a.practice_id, a.company_kind, {period}"
            )
        ).all()
    counts = pd.DataFrame(
        [tuple(r) for r in rows], columns=["practice_id", "kind", "period", "yes", "no"]
    )
    counts["shifted"] = counts["practice_id"].map(lambda p: design[p]["period_shift"] > 0)
    counts["recent"] = counts["period"] == "2022_on"
    # Pooled over practices of one kind and one sort, weighting each practice alike in
    # both periods: the difference of the mean shares.
    counts["share"] = counts["yes"] / (counts["yes"] + counts["no"])
    shares = counts.pivot_table(
        index=["kind", "shifted", "practice_id"], columns="recent", values="share"
    )
    gap = (shares[True] - shares[False]).groupby(level=["kind", "shifted"]).mean()
    for kind in ("ru", "foreign"):
        assert 0.06 < gap[(kind, True)] < 0.18, gap
        assert abs(gap[(kind, False)]) < 0.03, gap
        # The shifted practices' rise is clear in a plain two-proportion test.
        shifted = counts[(counts["kind"] == kind) & counts["shifted"]]
        sums = shifted.groupby("recent")[["yes", "no"]].sum()
        _, p_val = proportions_ztest(sums["yes"], sums["yes"] + sums["no"])
        assert p_val < 0.01, (kind, p_val)


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
                "OR met NOT IN ('applied', 'existed', 'no', 'dk', 'not_my_role', 'yes', 'na') "
                "OR (rating IS NOT NULL AND (met NOT IN ('applied', 'yes') "
                "    OR rating NOT BETWEEN 1 AND 5)) "
                "OR rating_mixed IS NULL "
                "OR (rating_mixed AND (rating IS NOT NULL OR met NOT IN ('applied', 'yes'))) "
                "OR practice_id NOT IN (SELECT id FROM practice) "
                "OR response_id NOT IN (SELECT id FROM response)"
            )
        )
        assert bad == 0
        nulls = {
            kind: " AND ".join(f"{c} IS NULL" for c in KIND_COLUMNS if c.startswith(kind + "_"))
            for kind in ("ru", "foreign")
        }
        blocks = db.session.scalar(
            text(
                f"SELECT COUNT(*) FROM response WHERE NOT (({nulls['ru']}) "
                "OR worked_in IN ('ru_only', 'both')) "
                f"OR NOT (({nulls['foreign']}) OR worked_in IN ('foreign_only', 'both'))"
            )
        )
        assert blocks == 0
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
        cell = {"r": first, "p": catalog.practices[0].id}
        insert = text(
            "INSERT INTO answer (response_id, practice_id, company_kind, met, rating, "
            "rating_mixed) VALUES (:r, :p, 'ru', :met, :rating, :mixed)"
        )
        free = text("DELETE FROM answer WHERE response_id = :r AND practice_id = :p")
        refused = (("no", 4, False), ("existed", None, True), ("applied", 4, True))
        for met, rating, mixed in refused:
            db.session.execute(free, cell)  # room for the row: only a CHECK can refuse it
            with pytest.raises(IntegrityError):
                db.session.execute(insert, {**cell, "met": met, "rating": rating, "mixed": mixed})
                db.session.flush()
            db.session.rollback()
        db.session.execute(free, cell)
        db.session.execute(insert, {**cell, "met": "applied", "rating": None, "mixed": True})
        db.session.rollback()
        # A block for a kind never worked in is refused too.
        only = db.session.scalar(text("SELECT MIN(id) FROM response WHERE worked_in = 'ru_only'"))
        with pytest.raises(IntegrityError):
            db.session.execute(
                text("UPDATE response SET foreign_last_year = '2022_on' WHERE id = :r"),
                {"r": only},
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


def version_trigger() -> str | None:
    """The stored definition of the trigger that bumps data_version on an insert."""
    if db.engine.dialect.name == "sqlite":
        query = "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :name"
    else:
        query = (
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
            "WHERE tgrelid = 'response'::regclass AND tgname = :name"
        )
    return db.session.scalar(text(query), {"name": "data_version_insert"})


def data_version() -> int:
    return db.session.scalar(text("SELECT version FROM data_version WHERE id = 1"))


def answer_foreign_keys() -> list[tuple]:
    if db.engine.dialect.name == "sqlite":
        return db.session.execute(text("PRAGMA foreign_key_list(answer)")).all()
    return db.session.execute(
        text(
            "SELECT conname, convalidated, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'answer'::regclass AND contype = 'f' ORDER BY conname"
        )
    ).all()


def test_seeding_moves_the_data_version_and_leaves_its_trigger_working(app, client):
    """The seeding moves the data version (SQLite: one bump per chunk in place of the
    insert trigger; PostgreSQL: the statement trigger). Afterwards the trigger is the
    migration's, unchanged, and bumps the version for the next real submit, whose answers
    get ids of their own after the seeded ones."""
    catalog = app.extensions["survey_catalog"]
    with app.app_context():
        trigger, before = version_trigger(), data_version()
        assert trigger
        seed_demo(catalog, 250, 3, chunk=100)  # several chunks
        seeded = data_version()
        assert seeded != before
        assert version_trigger() == trigger
        db.session.commit()
    assert Respondent(client).complete(catalog).location.endswith("/thanks")
    with app.app_context():
        assert data_version() != seeded
        real, demo = db.session.execute(
            text(
                "SELECT MIN(CASE WHEN r.is_demo THEN NULL ELSE a.id END), "
                "MAX(CASE WHEN r.is_demo THEN a.id END) "
                "FROM answer a JOIN response r ON r.id = a.response_id"
            )
        ).one()
        assert real > demo


def test_a_failure_inside_a_chunk_leaves_no_row_and_the_schema_as_it_was(app, monkeypatch):
    """What the seeding changes for its own speed (SQLite: the insert trigger, within each
    chunk's transaction; PostgreSQL: the answer table's foreign keys, within the seeding's
    one transaction) is rolled back with the rows when something fails midway."""
    import sqlite3

    from survey import demo

    catalog = app.extensions["survey_catalog"]

    def fail(*args):
        raise RuntimeError("the disk is full")

    with app.app_context():
        trigger, before, keys = version_trigger(), data_version(), answer_foreign_keys()
        db.session.commit()
        if db.engine.dialect.name == "sqlite":
            # Fails after the responses of the first chunk are in, the trigger dropped.
            monkeypatch.setattr(demo, "_EXPAND_SQL", "INSERT INTO no_such_table VALUES (?, ?)")
        else:
            monkeypatch.setattr(demo._AnswerCopy, "block", fail)
        with pytest.raises((sqlite3.OperationalError, RuntimeError)):
            seed_demo(catalog, 200, 2, chunk=100)
        assert db.session.scalar(text("SELECT COUNT(*) FROM response")) == 0
        assert db.session.scalar(text("SELECT COUNT(*) FROM answer")) == 0
        assert version_trigger() == trigger
        assert data_version() == before
        assert answer_foreign_keys() == keys
        db.session.commit()
        monkeypatch.undo()
        assert seed_demo(catalog, 20, 2) == 20
        assert db.session.scalar(text("SELECT COUNT(*) FROM response")) == 20


def test_the_copy_text_of_the_answer_rows_reads_back_as_the_answers_of_each_code():
    """PostgreSQL receives the answer rows as COPY text assembled from per-cell templates;
    read back field by field (as COPY reads them: escapes undone, blanks around numbers and
    booleans ignored) they are one row per cell, in index order, with consecutive ids."""
    from survey.demo import _AnswerCopy

    practices = ["zeta", "tab\there", "back\\slash"]  # escaped in COPY's text format
    meaning = {  # written out: the alphabet of survey/vectors.py
        "a": ("na", None, False), "n": ("no", None, False), "d": ("dk", None, False),
        "r": ("not_my_role", None, False), "e": ("existed", None, False),
        "p": ("applied", None, False), "m": ("applied", None, True),
        **{str(k): ("applied", k, False) for k in range(1, 6)},
    }  # fmt: skip
    codes = ["a1n2d3", "r4e5mp", "pmaaee"]
    cells = np.frombuffer("".join(codes).encode(), dtype=np.uint8).reshape(3, -1)
    text_ = _AnswerCopy(practices).block(np.array([98, 99, 100]), cells, 9995).decode()

    def unescape(field: str) -> str:
        return field.replace("\\t", "\t").replace("\\\\", "\\")

    rows = []
    for line in text_.splitlines():
        answer_id, response_id, practice, kind, met, rating, mixed = line.split("\t")
        rows.append((
            int(answer_id), int(response_id), unescape(practice), kind, met,
            None if rating == "\\N" else int(rating), {"t": True, "f": False}[mixed.strip()],
        ))  # fmt: skip
    expected = []
    for rid, code in zip((98, 99, 100), codes, strict=True):
        for practice, kind in sorted(
            ((p, k) for p in practices for k in ("ru", "foreign")),
            key=lambda cell: (cell[0].encode(), cell[1].encode()),
        ):
            i, k = practices.index(practice), ("ru", "foreign").index(kind)
            expected.append((rid, practice, kind, *meaning[code[2 * i + k]]))
    assert [row[1:] for row in rows] == expected
    assert [row[0] for row in rows] == list(range(9995, 9995 + 18))
    with pytest.raises(ValueError, match="character"):
        _AnswerCopy(practices).block(np.array([1]), np.full((1, 6), ord("."), np.uint8), 1)


# --------------------------------------------------------------------------- correlation

CORRELATION_N = 2000


def paired_answers() -> pd.DataFrame:
    """One row per (respondent who worked in both kinds, practice): met and rating in each
    kind, and the period of each kind, read from the raw rows."""
    rows = db.session.execute(
        text(
            "SELECT a.response_id, a.practice_id, a.company_kind, a.met, a.rating "
            "FROM answer a JOIN response r ON r.id = a.response_id "
            "WHERE r.worked_in = 'both'"
        )
    ).all()
    raw = pd.DataFrame(
        [tuple(r) for r in rows],
        columns=["response_id", "practice_id", "company_kind", "met", "rating"],
    )
    wide = raw.pivot(
        index=["response_id", "practice_id"], columns="company_kind", values=["met", "rating"]
    )
    wide.columns = [f"{name}_{kind}" for name, kind in wide.columns]
    periods = pd.DataFrame(
        [
            tuple(r)
            for r in db.session.execute(
                text(
                    "SELECT id, ru_last_year, foreign_last_year FROM response "
                    "WHERE worked_in = 'both'"
                )
            )
        ],
        columns=["response_id", "period_ru", "period_foreign"],
    )
    return wide.reset_index().merge(periods, on="response_id")


def existed_or_not(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs answered "existed" (any of its codes) or "no" about both kinds."""
    keep = pairs["met_ru"].isin([*EXISTED, "no"]) & pairs["met_foreign"].isin([*EXISTED, "no"])
    return pairs[keep]


def realised_phi(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per practice: the phi (Pearson) correlation of the existed / did not exist pairs and
    their number."""
    out = {}
    for practice, group in existed_or_not(pairs).groupby("practice_id"):
        x = group["met_ru"].isin(EXISTED).to_numpy(float)
        y = group["met_foreign"].isin(EXISTED).to_numpy(float)
        out[practice] = {"phi": stats.pearsonr(x, y)[0], "n": len(group)}
    return pd.DataFrame(out).T


def designed_phi(pairs: pd.DataFrame, design: dict, correlation: float) -> pd.Series:
    """Per practice, the phi the design gives these very pairs: each person's two shares
    (the base prevalence, plus the synthetic period shift where the kind was last worked
    in in 2022 or later), their "both" share from the correlation clipped to the Frechet
    bounds of those shares, and phi of the pooled 2x2 table."""
    out = {}
    for practice, group in existed_or_not(pairs).groupby("practice_id"):
        spec = design[practice]
        p1 = spec["p"]["ru"] + spec["period_shift"] * (group["period_ru"] == "2022_on")
        p2 = spec["p"]["foreign"] + spec["period_shift"] * (group["period_foreign"] == "2022_on")
        p1, p2 = np.minimum(p1, 0.95), np.minimum(p2, 0.95)
        both = p1 * p2 + correlation * np.sqrt(p1 * (1 - p1) * p2 * (1 - p2))
        both = np.clip(both, np.maximum(0.0, p1 + p2 - 1), np.minimum(p1, p2))
        a, b, ab = p1.mean(), p2.mean(), both.mean()
        out[practice] = (ab - a * b) / np.sqrt(a * (1 - a) * b * (1 - b))
    return pd.Series(out)


def phi_range(p1: float, p2: float) -> tuple[float, float]:
    """The lowest and highest phi two yes/no answers with these shares can have: "both"
    as rare (max(0, p1 + p2 - 1)) or as common (min(p1, p2)) as the shares allow."""

    def phi(both: float) -> float:
        return (both - p1 * p2) / np.sqrt(p1 * (1 - p1) * p2 * (1 - p2))

    return phi(max(0.0, p1 + p2 - 1)), phi(min(p1, p2))


def seed_with(app, correlation: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A fresh demo study; its comparison table and the raw paired answers."""
    catalog = app.extensions["survey_catalog"]
    with app.app_context():
        delete_demo()
        seed_demo(catalog, CORRELATION_N, STRUCTURE_SEED, correlation=correlation)
        table = results.ungated_comparison(Segment()).table.set_index("practice_id")
        return table, paired_answers()


def naive_z(table: pd.DataFrame) -> pd.Series:
    """All Russian vs all foreign answers as two independent samples (the naive test)."""
    z = [
        proportions_ztest([row.k_ru, row.k_foreign], [row.n_ru, row.n_foreign])[0]
        for row in table.itertuples()
    ]
    return pd.Series(z, index=table.index)


def test_the_demo_correlation_is_realised_in_the_paired_answers_and_ratings(app):
    catalog = app.extensions["survey_catalog"]
    design = practice_parameters(catalog, np.random.default_rng(STRUCTURE_SEED))
    shifted = [p for p in design if design[p]["period_shift"]]
    assert shifted and len(shifted) < len(design) / 4
    for correlation in (0.6, 0.0, -0.3):
        _, pairs = seed_with(app, correlation)
        phi = realised_phi(pairs)
        assert len(phi) == len(catalog.practices)
        # What the shares allow: phi is clipped to the Frechet bound where it is lower.
        limit = {p: phi_range(design[p]["p"]["ru"], design[p]["p"]["foreign"]) for p in phi.index}
        plain = pd.Series({p: float(np.clip(correlation, *limit[p])) for p in phi.index})
        assert abs(plain.mean() - correlation) < 0.1  # mostly not clipped
        # The practices with a period shift mix two pairs of shares; the others keep theirs.
        expected = designed_phi(pairs, design, correlation)
        unshifted = plain.index.difference(shifted)
        assert np.allclose(expected[unshifted], plain[unshifted])
        se = 1 / np.sqrt(phi["n"].astype(float))  # phi's standard error is below 1/sqrt(n)
        deviation = phi["phi"].astype(float) - expected
        assert (deviation.abs() < 4 * se).all(), deviation.abs().max()
        # Averaged over the practices (independent draws) the error is far smaller.
        assert abs(deviation.mean()) < 3 * np.sqrt((se**2).sum()) / len(se)
        # Ratings of respondents who rated a practice in both kinds correlate too (the
        # 1-5 rounding and clipping weaken the latent correlation a little).
        rated = pairs[pairs["rating_ru"].notna() & pairs["rating_foreign"].notna()]
        r = [
            stats.pearsonr(g["rating_ru"].astype(float), g["rating_foreign"].astype(float))[0]
            for _, g in rated.groupby("practice_id")
            # a practice rated alike by everyone in one kind has no correlation to measure
            if g["rating_ru"].nunique() > 1 and g["rating_foreign"].nunique() > 1
        ]
        low, high = sorted((0.7 * correlation, correlation))
        assert low - 0.03 <= np.mean(r) <= high + 0.03, (correlation, np.mean(r))


def test_the_default_demo_correlation_separates_the_primary_from_the_naive_test(app):
    """With correlated answers about the two kinds the naive independent-samples test is
    visibly too conservative; the primary partially overlapping samples test is not."""
    table, _ = seed_with(app, DEFAULT_CORRELATION)
    assert DEFAULT_CORRELATION >= 0.5
    assert table["overlap_r"].mean() > 0.5
    # The primary p-value and the secondary independent one (one-kind-only respondents)
    # differ clearly (by a factor of 2 or more) for many practices.
    log_ratio = np.log10(table["p_val"]) - np.log10(table["indep_p_val"])
    assert (log_ratio.abs() > np.log10(2)).mean() >= 0.5
    # The primary z is larger than the naive test's over the same answers: the covariance
    # term shrinks the variance of the difference by about 1 / 1.5 here.
    differs = table["diff"].abs() > 0.05
    ratio = (table["statistic"] / naive_z(table))[differs]
    assert differs.sum() >= 10 and (ratio > 1.1).all() and ratio.median() > 1.15, ratio
    # More demo practices become significant at 5 % under the primary test.
    naive_p = 2 * stats.norm.sf(naive_z(table).abs())
    assert (table["p_val"] < 0.05).sum() >= (naive_p < 0.05).sum()

    # Without correlation the two agree, up to the small chance correlation of the pairs.
    table, _ = seed_with(app, 0.0)
    ratio = (table["statistic"] / naive_z(table))[table["diff"].abs() > 0.05]
    assert (ratio.sub(1).abs() < 0.1).all(), ratio


def test_cli_seed_demo_takes_the_correlation(app, runner):
    result = invoke(app, runner, "seed-demo", "-n", "400", "--seed", "3", "--correlation", "0.9")
    assert result.exit_code == 0, result.output
    with app.app_context():
        phi = realised_phi(paired_answers())
    equal = phi["phi"].astype(float)  # 0.9 is often clipped: only a lower bound holds
    assert equal.max() > 0.8 and equal.mean() > 0.6
    assert invoke(app, runner, "seed-demo", "--correlation", "1.5").exit_code != 0
    with app.app_context(), pytest.raises(ValueError, match="correlation"):
        seed_demo(app.extensions["survey_catalog"], 10, 1, correlation=-2)
    # The command's default is the generator's.
    option = next(p for p in app.cli.commands["seed-demo"].params if p.name == "correlation")
    assert option.default == DEFAULT_CORRELATION
