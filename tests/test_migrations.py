"""The migrations build exactly the models' schema, and the database enforces the rules."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import CheckConstraint, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from survey import create_app, responses
from survey.extensions import db
from survey.models import Answer, PracticeExample, Response, new_export_id
from tests.conftest import TEST_SECRET


def test_the_migrated_schema_matches_the_models(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_the_migrated_check_constraints_match_the_models(app):
    """Autogenerate does not compare check constraints, so compare their names."""
    with app.app_context():
        inspector = inspect(db.engine)
        for table in db.metadata.sorted_tables:
            declared = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
            migrated = {c["name"] for c in inspector.get_check_constraints(table.name)}
            assert migrated == declared, table.name


def test_the_migrations_have_one_head_and_can_be_undone_and_redone(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'roundtrip.db'}",
            "SECRET_KEY": TEST_SECRET,
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    directory = app.extensions["migrate"].directory
    assert len(ScriptDirectory(directory).get_heads()) == 1
    with app.app_context():
        try:
            upgrade(directory=directory)
            downgrade(directory=directory, revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
            upgrade(directory=directory)
            assert {t.name for t in db.metadata.sorted_tables} <= set(
                inspect(db.engine).get_table_names()
            )
        finally:
            db.engine.dispose()


# ---------------------------------------------------------------- rules in the database


def _response_row(base: Response, **changes) -> dict:
    row = {
        column.name: getattr(base, column.key)
        for column in Response.__table__.columns
        if column.name not in ("id", "export_id", "resume_token_hash")
    }
    return {**row, "export_id": new_export_id(), **changes}


def test_the_database_enforces_the_rules_of_an_answer(app, subtests):
    catalog = app.extensions["survey_catalog"]
    first, second = catalog.practices[0].id, catalog.practices[1].id
    with app.app_context():
        responses.sync_catalog(catalog)
        response, _ = responses.start("ru")
        rid = response.id
        valid = [
            {"practice_id": first, "company_kind": "ru", "met": "yes", "rating": 5},
            {"practice_id": first, "company_kind": "foreign", "met": "na", "rating": None},
            {"practice_id": second, "company_kind": "ru", "met": "yes", "rating": None},
            {"practice_id": second, "company_kind": "foreign", "met": "dk", "rating": None},
        ]
        for met, rating, mixed in (
            ("applied", 4, False),
            ("applied", None, True),
            ("existed", None, False),
            ("not_my_role", None, False),
        ):
            practice = catalog.practices[len(valid)].id
            valid.append(
                {
                    "practice_id": practice,
                    "company_kind": "ru",
                    "met": met,
                    "rating": rating,
                    "rating_mixed": mixed,
                }
            )
        db.session.execute(insert(Answer), [{"response_id": rid, **row} for row in valid])
        db.session.execute(
            insert(PracticeExample),
            {"response_id": rid, "practice_id": first, "company_kind": "ru", "text": "ok"},
        )
        db.session.commit()
        db.session.refresh(response)
        db.session.expunge(response)

    third = catalog.practices[len(valid)].id
    answer = {"response_id": rid, "practice_id": third, "company_kind": "ru", "met": "yes"}
    violations = {
        "rating 0": (Answer, {**answer, "rating": 0}),
        "rating 6": (Answer, {**answer, "rating": 6}),
        "rating with 'no'": (Answer, {**answer, "met": "no", "rating": 3}),
        "rating with 'dk'": (Answer, {**answer, "met": "dk", "rating": 1}),
        "rating with 'na'": (Answer, {**answer, "met": "na", "rating": 2}),
        "second answer to one cell": (Answer, {**answer, "practice_id": first, "rating": 4}),
        "unknown company kind": (Answer, {**answer, "company_kind": "eu", "rating": 4}),
        "unknown met value": (Answer, {**answer, "met": "nah", "rating": None}),
        "no met value": (Answer, {**answer, "met": None, "rating": None}),
        "unknown practice": (Answer, {**answer, "practice_id": "no_such", "rating": 4}),
        "unknown response": (Answer, {**answer, "response_id": rid + 1000, "rating": 4}),
        "second example for one kind": (
            PracticeExample,
            {"response_id": rid, "practice_id": first, "company_kind": "ru", "text": "x"},
        ),
        "example of an unknown kind": (
            PracticeExample,
            {"response_id": rid, "practice_id": first, "company_kind": "eu", "text": "x"},
        ),
        "unknown status": (Response, _response_row(response, status="final")),
        "unknown language": (Response, _response_row(response, language="de")),
        "unknown worked_in": (Response, _response_row(response, worked_in="mars")),
        "submitted without background": (
            Response,
            _response_row(response, status="submitted", submitted_on=response.started_on),
        ),
        "reused resume token": (
            Response,
            _response_row(response, resume_token_hash=response.resume_token_hash),
        ),
        "no wave": (Response, _response_row(response, wave_id=None)),
        "rating with 'existed'": (Answer, {**answer, "met": "existed", "rating": 4}),
        "rating with 'not my role'": (Answer, {**answer, "met": "not_my_role", "rating": 4}),
        "'mixed' beside a rating": (
            Answer,
            {**answer, "met": "applied", "rating": 4, "rating_mixed": True},
        ),
        "'mixed' without 'applied'": (
            Answer,
            {**answer, "met": "no", "rating": None, "rating_mixed": True},
        ),
        "Russian block of a foreign-only respondent": (
            Response,
            _response_row(response, worked_in="foreign_only", ru_last_year="2022_on"),
        ),
        "foreign block of a Russian-only respondent": (
            Response,
            _response_row(response, worked_in="ru_only", foreign_function="sales"),
        ),
        "foreign block before worked_in is known": (
            Response,
            _response_row(response, worked_in=None, foreign_years="lt1"),
        ),
    }
    with app.app_context():
        for name, (model, row) in violations.items():
            with subtests.test(name), db.engine.connect() as conn:
                with pytest.raises(IntegrityError):
                    conn.execute(insert(model), row)
                conn.rollback()

        with db.engine.connect() as conn:  # and nothing got in
            assert len(conn.execute(select(Answer.id)).all()) == len(valid)
            assert len(conn.execute(select(Response.id)).all()) == 1
            assert len(conn.execute(select(PracticeExample.id)).all()) == 1
            ok = _response_row(response, worked_in="both", language="en", ru_last_year="2014_2021")
            conn.execute(insert(Response), ok)  # the control row is itself valid
            conn.rollback()


def test_responses_from_before_the_anchored_design_stay_readable_and_analysable(tmp_path):
    """A database at revision 0008 with a submitted response on the former scale (yes /
    no / dont know, a rating after yes) upgrades without rewriting it: the answers read
    back as stored, the new columns are NULL (not asked), and the count tables count its
    'yes' as "existed" and its rating like any other, per kind."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'legacy.db'}",
            "SECRET_KEY": TEST_SECRET,
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    directory = app.extensions["migrate"].directory
    legacy = [
        ("p1", "ru", "yes", 4),
        ("p1", "foreign", "no", None),
        ("p2", "ru", "dk", None),
        ("p2", "foreign", "yes", 2),
    ]
    with app.app_context():
        try:
            upgrade(directory=directory, revision="0008")
            with db.engine.begin() as conn:
                conn.exec_driver_sql(
                    "INSERT INTO wave (id, code, name_ru, name_en, is_default) "
                    "VALUES (1, 'w1', 'В', 'W', 1)"
                )
                conn.exec_driver_sql(
                    "INSERT INTO catalog_version (id, version, checksum, loaded_on, content) "
                    # The snapshot lists its practices: migration 0010 writes each answer
                    # vector in the layout of the response's version.
                    "VALUES (1, '2026.3', 'c', '2026-11-20', "
                    """'{"practices": [{"id": "p1"}, {"id": "p2"}]}')"""
                )
                conn.exec_driver_sql(
                    "INSERT INTO category (id, position, name_ru, name_en) "
                    "VALUES ('c', 1, 'К', 'C')"
                )
                for pid in ("p1", "p2"):
                    conn.exec_driver_sql(
                        "INSERT INTO practice (id, category_id, position, reward, name_ru, "
                        f"name_en, active) VALUES ('{pid}', 'c', 1, 'non_financial', 'П', "
                        "'P', 1)"
                    )
                conn.exec_driver_sql(
                    "INSERT INTO response (id, export_id, status, wave_id, catalog_version_id, "
                    "language, is_demo, consent_version, consented_on, started_on, updated_on, "
                    "submitted_on, last_page, worked_in, current_employer, industry, "
                    "company_size, role_level, experience_band, active_seconds) VALUES "
                    "(1, 'e1', 'submitted', 1, 1, 'ru', 0, '2026-11', '2026-11-20', "
                    "'2026-11-20', '2026-11-20', '2026-11-20', 9, 'both', 'ru', 'it', "
                    "'lt50', 'specialist', '3_5', 900)"
                )
                for pid, kind, met, rating in legacy:
                    conn.exec_driver_sql(
                        "INSERT INTO answer (response_id, practice_id, company_kind, met, "
                        "rating) VALUES (1, ?, ?, ?, ?)",
                        (pid, kind, met, rating),
                    )
            upgrade(directory=directory)
            with db.engine.connect() as conn:
                stored = conn.exec_driver_sql(
                    "SELECT practice_id, company_kind, met, rating, rating_mixed FROM answer "
                    "ORDER BY practice_id, company_kind DESC"
                ).all()
                new_columns = conn.exec_driver_sql(
                    "SELECT job_function, ru_last_year, foreign_last_year, ru_years, "
                    "foreign_function FROM response"
                ).one()
            assert [tuple(r[:4]) for r in stored] == legacy
            assert not any(r[4] for r in stored)
            assert tuple(new_columns) == (None,) * 5

            from survey import queries

            prevalence, ratings = queries.answer_counts(queries.Segment())
            counts = {
                (r.practice_id, r.company_kind): (r.yes, r.no, r.dk)
                for r in prevalence.itertuples()
            }
            assert counts == {
                ("p1", "ru"): (1, 0, 0),
                ("p1", "foreign"): (0, 1, 0),
                ("p2", "ru"): (0, 0, 1),
                ("p2", "foreign"): (1, 0, 0),
            }
            assert sorted(map(tuple, ratings.to_numpy().tolist())) == [
                ("p1", "ru", 4, 1),
                ("p2", "foreign", 2, 1),
            ]
            # A period filter asks for anchored answers: the legacy response has none.
            assert queries.answer_counts(queries.Segment(period="2022_on"))[0].empty
        finally:
            db.engine.dispose()


# ---------------------------------------------------------------- answer vectors (0010)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path):
    """The URL of an empty database (nothing migrated): a SQLite file or a new PostgreSQL
    database, dropped afterwards."""
    import os
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    url = make_url(base)
    name = f"survey_vectors_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_upgrade_writes_each_vector_in_the_layout_of_its_catalogue_version(
    empty_database_url, tmp_path
):
    """A database at 0009 holding responses of two catalogue versions (p3 asked only in
    the later one, which also orders the practices differently, and has a fictitious
    practice) gets every response's vector from its rows, in its own version's layout;
    the downgrade removes the vectors and the data version, and the upgrade writes the
    same vectors again. The expected vectors are written out by hand from the alphabet."""
    import datetime as dt

    from sqlalchemy import MetaData, text

    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": empty_database_url,
            "SECRET_KEY": TEST_SECRET,
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    directory = app.extensions["migrate"].directory
    day = dt.date(2026, 12, 1)
    background = {
        "worked_in": "both",
        "current_employer": "ru",
        "industry": "it",
        "company_size": "lt50",
        "role_level": "specialist",
        "experience_band": "3_5",
    }

    def response(rid, version, status, **values):
        return {
            "id": rid,
            "export_id": f"e{rid}",
            "status": status,
            "wave_id": 1,
            "catalog_version_id": version,
            "language": "ru",
            "is_demo": False,
            "consent_version": "2026-11",
            "consented_on": day,
            "started_on": day,
            "updated_on": day,
            "submitted_on": day if status == "submitted" else None,
            "last_page": 9,
            "active_seconds": 600,
            **dict.fromkeys(background),
            **values,
        }

    def cells(rid, *answers):
        return [
            {
                "response_id": rid,
                "practice_id": pid,
                "company_kind": kind,
                "met": met,
                "rating": rating,
                "rating_mixed": mixed,
            }
            for pid, kind, met, rating, mixed in answers
        ]

    expected = {
        1: "Dndy",  # v1 (p1, p2): former yes rated 4, no; dk, former yes unrated
        2: "2emr..",  # v2 (p1, p3, p2), a draft: p2 not answered yet
        3: "panada",  # v2, Russian companies only
        4: "....",  # v1, a draft with no answers
    }
    with app.app_context():
        try:
            upgrade(directory=directory, revision="0009")
            meta = MetaData()
            meta.reflect(bind=db.engine)
            t = meta.tables
            with db.engine.begin() as conn:
                conn.execute(
                    t["wave"].insert(),
                    {"id": 1, "code": "w1", "name_ru": "В", "name_en": "W", "is_default": True},
                )
                conn.execute(
                    t["catalog_version"].insert(),
                    [
                        {
                            "id": 1,
                            "version": "2026.3",
                            "checksum": "a",
                            "loaded_on": day,
                            "content": {"practices": [{"id": "p1"}, {"id": "p2"}]},
                        },
                        {
                            "id": 2,
                            "version": "2026.4",
                            "checksum": "b",
                            "loaded_on": day,
                            "content": {
                                "practices": [{"id": "p1"}, {"id": "p3"}, {"id": "p2"}],
                                "fictitious_practices": [{"id": "fake"}],
                            },
                        },
                    ],
                )
                conn.execute(
                    t["category"].insert(),
                    {"id": "c", "position": 1, "name_ru": "К", "name_en": "C"},
                )
                conn.execute(
                    t["practice"].insert(),
                    [
                        {
                            "id": pid,
                            "category_id": "c",
                            "position": i,
                            "reward": "non_financial",
                            "name_ru": "П",
                            "name_en": "P",
                            "active": True,
                        }
                        for i, pid in enumerate(("p1", "p2", "p3"))
                    ],
                )
                conn.execute(
                    t["response"].insert(),
                    [
                        response(1, 1, "submitted", **background),
                        response(2, 2, "draft", worked_in="both"),
                        response(3, 2, "submitted", **{**background, "worked_in": "ru_only"}),
                        response(4, 1, "draft"),
                    ],
                )
                conn.execute(
                    t["answer"].insert(),
                    cells(
                        1,
                        ("p1", "ru", "yes", 4, False),
                        ("p1", "foreign", "no", None, False),
                        ("p2", "ru", "dk", None, False),
                        ("p2", "foreign", "yes", None, False),
                    )
                    + cells(
                        2,
                        ("p1", "ru", "applied", 2, False),
                        ("p1", "foreign", "existed", None, False),
                        ("p3", "ru", "applied", None, True),
                        ("p3", "foreign", "not_my_role", None, False),
                    )
                    + cells(
                        3,
                        ("p1", "ru", "applied", None, False),
                        ("p1", "foreign", "na", None, False),
                        ("p3", "ru", "no", None, False),
                        ("p3", "foreign", "na", None, False),
                        ("p2", "ru", "dk", None, False),
                        ("p2", "foreign", "na", None, False),
                    ),
                )
                conn.execute(
                    t["fictitious_answer"].insert(),
                    cells(2, ("fake", "ru", "applied", 5, False)),
                )

            def vectors():
                with db.engine.connect() as conn:
                    return dict(conn.execute(text("SELECT id, answer_code FROM response")).all())

            upgrade(directory=directory)
            assert vectors() == expected
            with db.engine.connect() as conn:
                assert len(conn.execute(text("SELECT version FROM data_version")).all()) == 1

            downgrade(directory=directory, revision="0009")
            tables = inspect(db.engine)
            assert "answer_code" not in {c["name"] for c in tables.get_columns("response")}
            assert "data_version" not in tables.get_table_names()
            with db.engine.begin() as conn:  # no trigger is left to write to a missing table
                conn.execute(text("UPDATE response SET last_page = 3 WHERE id = 1"))
                assert conn.execute(text("SELECT count(*) FROM answer")).scalar() == 14
            upgrade(directory=directory)
            assert vectors() == expected
        finally:
            db.engine.dispose()
