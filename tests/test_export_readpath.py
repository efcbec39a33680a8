"""The export's read path: answer vectors, never answer rows; text built by table lookups
that match what the csv module and the questionnaire's own order would give."""

from __future__ import annotations

import csv
import io
import sqlite3
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event

import survey
from survey import paradata
from survey.catalog import load_catalog
from survey.demo import seed_demo
from survey.export import Export, ExportOptions
from survey.export.rows import quote
from survey.extensions import db

CATALOG = load_catalog(Path(survey.__file__).with_name("practices.yaml"))
PAGE_KEYS = [page.key for page in CATALOG.pages]
PRACTICE_IDS = [p.id for p in CATALOG.practices]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12), st.sampled_from([",", ";"]))
def test_a_quoted_field_is_what_the_csv_module_writes(value, delimiter):
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerow([value, "x"])
    assert quote(value, delimiter) + delimiter + "x\r\n" == buffer.getvalue()


def _resolved_positions(stored):
    """Positions as the questionnaire resolves the order (the independent computation)."""
    order = paradata.resolve(CATALOG, stored)
    pages = {page.key: i for i, page in enumerate(order.pages, 1)}
    at = {
        practice.id: (page_at, item_at)
        for page_at, page in enumerate(order.pages, 1)
        for item_at, practice in enumerate(page.practices, 1)
    }
    return order.first_kind, pages, at


stored_orders = st.one_of(
    st.none(),
    st.just("not a dict"),
    st.fixed_dictionaries(
        {},
        optional={
            "pages": st.lists(st.sampled_from([*PAGE_KEYS, "gone_page"]), max_size=12),
            "practices": st.dictionaries(
                st.sampled_from(PAGE_KEYS),
                st.lists(st.sampled_from([*PRACTICE_IDS, "gone_practice"]), max_size=14),
            ),
            "first_kind": st.sampled_from(["ru", "foreign", "mars", None]),
        },
    ),
)


@settings(max_examples=200, deadline=None)
@given(stored_orders)
def test_the_exports_positions_are_those_of_the_resolved_order(stored):
    """Shuffled, partial, repeated and unknown entries alike."""
    assert paradata.positions(CATALOG, stored) == _resolved_positions(stored)


def test_the_positions_of_drawn_orders_are_those_of_the_resolved_order():
    for seed in range(50):
        stored = paradata.draw_order(CATALOG, seed)
        assert paradata.positions(CATALOG, stored) == _resolved_positions(stored)


def test_the_export_reads_answer_vectors_and_never_the_answer_table(tmp_path):
    """Every statement the export runs, traced on the SQLite connection itself (the read
    path uses raw driver cursors, which SQLAlchemy's events would not see)."""
    from survey import create_app
    from tests.conftest import app_config

    url = f"sqlite:///{tmp_path / 'trace.db'}"
    app = create_app(app_config(url, str(tmp_path / "instance")))
    with app.app_context():
        from flask_migrate import upgrade

        from survey import responses

        upgrade(directory=app.extensions["migrate"].directory)
        responses.sync_catalog(responses.catalog())
        seed_demo(app.extensions["survey_catalog"], 40, 3)
        db.engine.dispose()
        statements: list[str] = []

        @event.listens_for(db.engine, "connect")
        def trace(connection, _record):
            assert isinstance(connection, sqlite3.Connection)
            connection.set_trace_callback(statements.append)

        export = Export(ExportOptions(max_suppressed_share=1.0))
        for name in export.file_names():
            b"".join(export.csv_chunks(name))
        db.session.remove()
        db.engine.dispose()
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert any("answer_code" in s for s in selects)
    assert not [s for s in selects if " answer " in f" {s} ".replace("\n", " ").lower()
                or "from answer" in s.lower() or "join answer" in s.lower()]  # fmt: skip


def test_the_zip_reports_its_progress_up_to_the_end(app):
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], 30, 5)
        export = Export(ExportOptions(max_suppressed_share=1.0))
        seen: list[float] = []
        buffer = io.BytesIO()
        export.zip_to(buffer, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    assert 0 < seen[0] < 1
    with zipfile.ZipFile(buffer) as archive:
        assert archive.testzip() is None
        assert {"responses.csv", "answers_long.csv"} <= set(archive.namelist())


def test_a_vector_of_the_wrong_length_stops_the_export_with_a_clear_error(app):
    from sqlalchemy import select, update

    from survey.models import Response

    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], 20, 6)
        rid = db.session.scalar(select(Response.id).limit(1))
        db.session.execute(update(Response).where(Response.id == rid).values(answer_code="nn"))
        db.session.commit()
        export = Export(ExportOptions(max_suppressed_share=1.0))
        with pytest.raises(ValueError, match="wrong length"):
            b"".join(export.csv_chunks("responses"))
