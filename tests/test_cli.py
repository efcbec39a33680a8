"""The command line: init-db and load-catalog are safe to run again and keep every answer.

The commands are plain click commands added to ``app.cli``: the ``flask`` command pushes an
application context for them, Flask's test runner does not, so the tests push one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text, update

import survey
from survey import create_app, fieldwork
from survey.extensions import db
from survey.models import Answer, CatalogVersion, Practice, Response
from tests.conftest import TEST_SECRET
from tests.helpers import PROFILE, Respondent, csrf_token, expected_answers

SHIPPED = Path(survey.__file__).with_name("practices.yaml")
BOTH = ("ru", "foreign")


def invoke(app, *args: str):
    """Run ``flask --app survey <args>`` on this app; the command must succeed."""
    with app.app_context():
        result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def complete(app, catalog) -> None:
    """One respondent answers every page and submits."""
    client = app.test_client()
    respondent = Respondent(client)
    token = csrf_token(client.get("/").text)
    respondent.consent()
    assert client.post("/profile", data={"csrf_token": token, **PROFILE}).status_code == 302
    for page in catalog.pages:
        data = {"csrf_token": token, **respondent.page_data(page, BOTH)}
        assert client.post(f"/page/{page.number}", data=data).status_code == 302
    assert client.post("/submit", data={"csrf_token": token}).location.endswith("/thanks")


def rows(app, table: str) -> list:
    with app.app_context():
        return sorted(db.session.execute(select(db.metadata.tables[table])).all(), key=repr)


def versions(app) -> list[CatalogVersion]:
    with app.app_context():
        found = db.session.scalars(select(CatalogVersion).order_by(CatalogVersion.id)).all()
        db.session.expunge_all()
        return found


def migration_head(app) -> str:
    return ScriptDirectory(app.extensions["migrate"].directory).get_current_head()


def test_init_db_twice_is_safe(app, client):
    Respondent(client).consent()
    for _ in range(2):
        assert "Database is up to date" in invoke(app, "init-db").output
    with app.app_context():
        stamped = db.session.scalars(text("SELECT version_num FROM alembic_version")).all()
    assert stamped == [migration_head(app)]
    assert len(rows(app, "response")) == 1


def test_init_db_builds_the_schema_on_an_empty_database(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'fresh.db'}",
            "SECRET_KEY": TEST_SECRET,
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    try:
        invoke(app, "init-db")
        invoke(app, "init-db")
        with app.app_context():
            tables = set(inspect(db.engine).get_table_names())
        assert {"wave", "catalog_version", "practice", "response", "answer"} <= tables
        invoke(app, "load-catalog")
        assert len(rows(app, "practice")) == len(app.extensions["survey_catalog"].practices)
    finally:
        with app.app_context():
            db.engine.dispose()


def test_load_catalog_twice_is_safe_and_keeps_existing_answers(app):
    catalog = app.extensions["survey_catalog"]
    complete(app, catalog)
    before = {table: rows(app, table) for table in ("response", "answer", "practice", "category")}

    for _ in range(2):
        output = invoke(app, "load-catalog").output
        assert (
            f"({len(catalog.practices)} practices, {len(catalog.categories)} categories" in output
        )

    assert {table: rows(app, table) for table in before} == before
    assert [v.checksum for v in versions(app)] == [catalog.checksum]
    with app.app_context():
        stored = {
            (a.practice_id, a.company_kind): (a.met, a.rating)
            for a in db.session.scalars(select(Answer))
        }
    assert stored == expected_answers(catalog, BOTH)


def test_a_changed_catalogue_gets_a_new_version_and_old_answers_keep_their_meaning(
    app, database_url, tmp_path
):
    old = app.extensions["survey_catalog"]
    complete(app, old)
    renamed, dropped = old.pages[0].practices[0], old.pages[0].practices[-1]

    data = yaml.load(SHIPPED.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    for entry in data["practices"]:
        if entry["id"] == renamed.id:
            # A new wording takes a new id: an id keeps one wording (survey.catalog).
            entry["id"] = "renamed_practice"
            entry["name"] = {"ru": "Новое название", "en": "A new name"}
    data["practices"] = [entry for entry in data["practices"] if entry["id"] != dropped.id]
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.dump(data, Dumper=yaml.CSafeDumper, allow_unicode=True), "utf-8")
    new_app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": TEST_SECRET,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SERVER_NAME": "survey.test",
            "RATELIMIT_ENABLED": False,
            "CATALOG_PATH": str(changed),
        }
    )
    try:
        new = new_app.extensions["survey_catalog"]
        assert "version row" in invoke(new_app, "load-catalog").output
        first, second = versions(app)
        assert (first.checksum, second.checksum) == (old.checksum, new.checksum)

        with app.app_context():
            response = db.session.scalars(select(Response)).one()
            assert response.catalog_version_id == first.id
            kept = db.session.scalars(select(Answer).filter_by(practice_id=dropped.id)).all()
            assert len(kept) == 2  # answers about a dropped practice are kept
            practice = db.session.get(Practice, "renamed_practice")
            assert (practice.name_ru, practice.name_en) == ("Новое название", "A new name")
            assert db.session.get(Practice, renamed.id).active is False
            assert db.session.get(Practice, renamed.id).name_en == renamed.name.en
            assert db.session.get(Practice, dropped.id).active is False
        old_names = {p["id"]: p["name"] for p in first.content["practices"]}
        new_names = {p["id"]: p["name"] for p in second.content["practices"]}
        assert old_names[renamed.id] == {"ru": renamed.name.ru, "en": renamed.name.en}
        assert new_names["renamed_practice"] == {"ru": "Новое название", "en": "A new name"}
        assert renamed.id not in new_names
        assert dropped.id in old_names and dropped.id not in new_names

        Respondent(new_app.test_client()).consent()  # a new respondent gets the new version
        with new_app.app_context():
            newest = db.session.scalars(select(Response).order_by(Response.id.desc())).first()
            assert newest.catalog_version_id == second.id
        assert len(rows(app, "answer")) == 2 * len(old.practices)

        invoke(app, "load-catalog")  # back to the shipped file: a known version, no new row
        assert [v.id for v in versions(app)] == [first.id, second.id]
        with app.app_context():
            assert db.session.get(Practice, dropped.id).active is True
            assert db.session.get(Practice, renamed.id).active is True
            assert db.session.get(Practice, "renamed_practice").active is False
    finally:
        with new_app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_purge_drafts_days_overrides_the_time_to_live(app):
    for _ in range(2):
        Respondent(app.test_client()).consent()
    with app.app_context():
        first = db.session.scalars(select(Response.id).order_by(Response.id)).first()
        db.session.execute(
            update(Response)
            .where(Response.id == first)
            .values(updated_on=fieldwork.today() - dt.timedelta(days=2))
        )
        db.session.commit()
    assert "Deleted 0 expired draft(s)." in invoke(app, "purge-drafts").output
    assert "Deleted 0 expired draft(s)." in invoke(app, "purge-drafts", "--days", "2").output
    assert "Deleted 1 expired draft(s)." in invoke(app, "purge-drafts", "--days", "1").output
    assert len(rows(app, "response")) == 1
