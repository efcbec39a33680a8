"""The answer vector of each response (survey/vectors.py) always equals its answer rows.

Respondents go through the real pages (both languages, every kind of company, a kind
dropped, a legacy answer), withdraw, get purged and seeded; after every step each stored
``response.answer_code`` is compared with its rows read back with plain SQL, cell by cell
through the layout of its own catalogue version snapshot. The data version row changes
with what results show, and only then: a draft's page save leaves it alone.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import text

from survey import vectors
from survey.extensions import db
from survey.models import Answer, Practice
from tests.helpers import PROFILE, Respondent, csrf_token

BOTH = ("ru", "foreign")
KINDS_OF = {"ru_only": ("ru",), "foreign_only": ("foreign",), "both": BOTH}
# Every answer a page can carry, cycled over the practices of a page.
VARIED = (
    ("applied", 1),
    ("existed", None),
    ("applied", "mixed"),
    ("no", None),
    ("applied", 5),
    ("dk", None),
    ("applied", 3),
)


def catalog_of(app):
    return app.extensions["survey_catalog"]


def varied_answers(page, kinds) -> dict:
    """(practice id, kind) -> (met, rating) covering the whole scale; "not my role" on the
    practices that offer it."""
    out = {}
    for i, practice in enumerate(page.practices):
        for k, kind in enumerate(kinds):
            out[(practice.id, kind)] = VARIED[(i + 3 * k) % len(VARIED)]
            if practice.functions and kind == kinds[0]:
                out[(practice.id, kind)] = ("not_my_role", None)
    return out


def _content(value) -> dict:
    return json.loads(value) if isinstance(value, str) else value


def checked_vectors(app) -> dict[int, str]:
    """Assert that every response's stored vector equals its answer rows (plain SQL), cell
    by cell in the layout of its catalogue version; return the vectors by response id."""
    fictitious = catalog_of(app).fictitious_ids
    with app.app_context():
        layouts = {
            vid: tuple(p["id"] for p in _content(content)["practices"])
            for vid, content in db.session.execute(text("SELECT id, content FROM catalog_version"))
        }
        stored = db.session.execute(
            text("SELECT id, catalog_version_id, answer_code FROM response")
        ).all()
        rows: dict[int, list] = {rid: [] for rid, _, _ in stored}
        for rid, *cell in db.session.execute(
            text(
                "SELECT response_id, practice_id, company_kind, met, rating, rating_mixed "
                "FROM answer"
            )
        ):
            rows[rid].append(tuple(cell))
    out = {}
    for rid, version_id, code in stored:
        practice_ids = layouts[version_id]
        assert not fictitious & set(practice_ids)
        assert code == vectors.encode(rows[rid], practice_ids), rid
        cells = {
            (pid, kind): (met, rating, bool(mixed)) for pid, kind, met, rating, mixed in rows[rid]
        }
        assert len(code) == 2 * len(practice_ids)
        for i, ch in enumerate(code):
            key = (practice_ids[i // 2], BOTH[i % 2])
            assert vectors.decode_cell(ch) == cells.get(key, (None, None, False)), (rid, key)
        out[rid] = code
    return out


def data_version(app) -> int:
    with app.app_context():
        return db.session.execute(text("SELECT version FROM data_version WHERE id = 1")).scalar()


def cells_of(code: str, kind: str) -> str:
    """The characters of one kind's cells."""
    return code[BOTH.index(kind) :: 2]


def verify(app, *args: str):
    with app.app_context():
        return app.test_cli_runner().invoke(args=["verify-answers", *args])


# ---------------------------------------------------------------- the questionnaire


@pytest.mark.parametrize("worked_in", ["ru_only", "foreign_only", "both"])
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_a_respondents_vector_follows_every_page_they_save(app, client, lang, worked_in):
    catalog = catalog_of(app)
    kinds = KINDS_OF[worked_in]
    respondent = Respondent(client, lang)
    respondent.consent()
    (draft,) = checked_vectors(app).values()
    assert set(draft) == {"."}  # a new draft: every cell unanswered
    assert respondent.profile(worked_in=worked_in).status_code == 302
    checked_vectors(app)
    answered = 0
    for page in catalog.pages:
        r = respondent.answer_page(page, kinds, answers=varied_answers(page, kinds))
        assert r.status_code == 302, r.text[:2000]
        (code,) = checked_vectors(app).values()
        answered += sum(not p.fictitious for p in page.practices)
        assert len(code) - code.count(".") == 2 * answered
    assert respondent.submit().location.endswith("/thanks")
    (code,) = checked_vectors(app).values()
    for kind in BOTH:
        if kind in kinds:
            assert "a" not in cells_of(code, kind) and "." not in cells_of(code, kind)
        else:
            assert set(cells_of(code, kind)) == {"a"}
    # the whole scale was given and stored (each kind's first cells get "not my role")
    assert set("135mnder") <= set(code)


def test_dropping_a_kind_makes_its_cells_not_applicable_and_taking_it_back_empties_them(
    app, client
):
    catalog = catalog_of(app)
    respondent = Respondent(client)
    respondent.consent()
    assert respondent.profile().status_code == 302
    for page in catalog.pages:
        assert respondent.answer_page(page, BOTH).status_code == 302
    (before,) = checked_vectors(app).values()

    assert respondent.profile(worked_in="ru_only").status_code == 302
    (dropped,) = checked_vectors(app).values()
    assert set(cells_of(dropped, "foreign")) == {"a"}
    assert cells_of(dropped, "ru") == cells_of(before, "ru")

    assert respondent.profile(worked_in="both").status_code == 302
    (back,) = checked_vectors(app).values()
    assert set(cells_of(back, "foreign")) == {"."}  # to be answered again
    assert cells_of(back, "ru") == cells_of(before, "ru")

    for page in catalog.pages:
        assert respondent.answer_page(page, BOTH).status_code == 302
    assert respondent.submit().location.endswith("/thanks")
    assert list(checked_vectors(app).values()) == [before]


def test_a_legacy_yes_in_a_draft_is_in_its_vector_until_answered_again(app, client):
    catalog = catalog_of(app)
    respondent = Respondent(client, "en")
    respondent.consent()
    assert respondent.profile().status_code == 302
    for page in catalog.pages:
        assert respondent.answer_page(page, BOTH).status_code == 302
    page = catalog.pages[0]
    practice = next(p for p in page.practices if not p.fictitious)
    # A draft saved before 2026-12 holds "met it" with a rating: the migration wrote its
    # vector from its rows, which is what verify-answers --repair does here.
    with app.app_context():
        db.session.execute(
            text(
                "UPDATE answer SET met = 'yes', rating = 4, rating_mixed = :f "
                "WHERE practice_id = :p AND company_kind = 'ru'"
            ),
            {"p": practice.id, "f": False},
        )
        db.session.commit()
    assert verify(app, "--repair").exit_code == 0
    (code,) = checked_vectors(app).values()
    position = [p.id for p in catalog.practices].index(practice.id)
    assert code[2 * position] == "D"  # former yes, rated 4

    answers = {(practice.id, "ru"): ("existed", None)}
    assert respondent.answer_page(page, BOTH, answers=answers).status_code == 302
    (code,) = checked_vectors(app).values()
    assert code[2 * position] == "e"
    assert respondent.submit().location.endswith("/thanks")
    checked_vectors(app)


# ---------------------------------------------------------------- withdrawal, purge, seed


def test_withdrawal_purge_and_seeding_keep_every_vector_and_move_the_data_version(app, runner):
    """The data version changes with what results show: a submit, a withdrawal, a seed,
    a repaired vector; a draft's start, pages, purge and background do not change it."""
    catalog = catalog_of(app)
    start = data_version(app)

    stays = Respondent(app.test_client())
    assert stays.complete(catalog).location.endswith("/thanks")
    after_submit = data_version(app)
    assert after_submit != start

    leaves = Respondent(app.test_client(), "en")
    leaves.consent()
    assert leaves.profile(worked_in="foreign_only").status_code == 302
    for page in catalog.pages:
        assert leaves.answer_page(page, ("foreign",)).status_code == 302
    assert data_version(app) == after_submit  # a draft's pages: results unchanged
    assert leaves.submit().location.endswith("/thanks")
    second_submit = data_version(app)
    assert second_submit != after_submit
    assert len(checked_vectors(app)) == 2

    assert leaves.post_form("/withdraw", {}).status_code == 302
    after_withdrawal = data_version(app)
    assert after_withdrawal != second_submit
    assert len(checked_vectors(app)) == 1

    draft = Respondent(app.test_client())
    draft.consent()
    assert draft.profile().status_code == 302
    assert draft.answer_page(catalog.pages[0], BOTH).status_code == 302
    assert len(checked_vectors(app)) == 2
    with app.app_context():
        db.session.execute(
            text("UPDATE response SET updated_on = :d WHERE status = 'draft'"),
            {"d": dt.date(2020, 1, 1)},
        )
        db.session.commit()
    result = runner.invoke(args=["purge-drafts"])
    assert "Deleted 1 expired draft(s)." in result.output
    assert data_version(app) == after_withdrawal  # drafts were never in any result
    assert len(checked_vectors(app)) == 1

    from survey.demo import seed_demo

    with app.app_context():
        seed_demo(catalog, 120, 4, chunk=50)
    after_seed = data_version(app)
    assert after_seed != after_withdrawal
    codes = checked_vectors(app)
    assert len(codes) == 121
    with app.app_context():
        worked = dict(
            db.session.execute(
                text("SELECT id, worked_in FROM response WHERE is_demo = :t"), {"t": True}
            ).all()
        )
    for rid, worked_in in worked.items():
        for kind in BOTH:
            asked = kind in KINDS_OF[worked_in]
            assert ("a" in cells_of(codes[rid], kind)) != asked
        assert "." not in codes[rid]


def test_seeding_another_catalogue_than_the_served_one_is_refused(app):
    from survey.catalog import Catalog
    from survey.demo import seed_demo

    catalog = catalog_of(app)
    shuffled = Catalog(**{**catalog.__dict__, "practices": tuple(reversed(catalog.practices))})
    start = data_version(app)
    with app.app_context(), pytest.raises(ValueError, match="not the one"):
        seed_demo(shuffled, 10, 1)
    assert checked_vectors(app) == {}
    assert data_version(app) == start


def test_the_data_version_triggers_exist_and_the_cache_reads_their_row(app):
    from survey import queries

    names = {"data_version_insert", "data_version_update", "data_version_delete"}
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            found = db.session.execute(
                text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'response'::regclass "
                    "AND NOT tgisinternal"
                )
            ).scalars()
            names.add("data_version_truncate")
        else:
            found = db.session.execute(
                text(
                    "SELECT name FROM sqlite_master "
                    "WHERE type = 'trigger' AND tbl_name = 'response'"
                )
            ).scalars()
        assert set(found) == names
        assert queries.data_version() == data_version(app)
    if "data_version_truncate" in names:  # PostgreSQL: a TRUNCATE deletes without rows
        before = data_version(app)
        with app.app_context():
            db.session.execute(text("TRUNCATE response CASCADE"))
            db.session.commit()
        assert data_version(app) != before


# ---------------------------------------------------------------- verify-answers


def test_verify_answers_names_each_corrupted_vector_and_repair_rewrites_it(app):
    catalog = catalog_of(app)
    for lang in ("ru", "en"):
        assert Respondent(app.test_client(), lang).complete(catalog).location.endswith("/thanks")
    draft = Respondent(app.test_client())
    draft.consent()
    from survey.demo import seed_demo

    with app.app_context():
        seed_demo(catalog, 30, 2)
    good = checked_vectors(app)
    result = verify(app, "--batch", "7")  # several batches
    assert result.exit_code == 0, result.output
    assert "Checked 33 response(s): every vector equals its rows." in result.output

    ids = sorted(good)
    flipped, emptied, shortened = ids[0], ids[2], ids[-1]
    code = good[flipped]
    corrupt = ("n" if code[5] != "n" else "d") + code[1:]
    before = data_version(app)
    with app.app_context():
        for rid, value in ((flipped, corrupt), (emptied, None), (shortened, good[shortened][:-2])):
            db.session.execute(
                text("UPDATE response SET answer_code = :c WHERE id = :i"), {"c": value, "i": rid}
            )
        db.session.commit()
    assert data_version(app) != before  # a submitted response changed
    result = verify(app, "--batch", "7")
    assert result.exit_code == 1
    named = {
        int(line.split()[1].rstrip(":"))
        for line in result.output.splitlines()
        if line.startswith("response ")
    }
    assert named == {flipped, emptied, shortened}
    assert f"response {emptied}: no vector stored" in result.output
    assert "3 vector(s) differ from their rows" in result.output

    before = data_version(app)
    result = verify(app, "--repair")
    assert result.exit_code == 0, result.output
    assert "repaired 3 vector(s)" in result.output
    assert checked_vectors(app) == good
    assert data_version(app) != before  # what results show may have changed
    assert verify(app).exit_code == 0


def test_verify_answers_finds_a_row_changed_behind_the_vectors_back(app):
    catalog = catalog_of(app)
    client = app.test_client()
    respondent = Respondent(client)
    token = csrf_token(client.get("/").text)
    respondent.consent()
    assert client.post("/profile", data={"csrf_token": token, **PROFILE}).status_code == 302
    page = catalog.pages[0]
    data = {"csrf_token": token, **respondent.page_data(page, BOTH)}
    assert client.post(f"/page/{page.number}", data=data).status_code == 302
    with app.app_context():
        rid = db.session.execute(text("SELECT id FROM response")).scalar()
        db.session.execute(text("DELETE FROM answer WHERE company_kind = 'foreign'"))
        db.session.commit()
    result = verify(app)
    assert result.exit_code == 1
    assert f"response {rid}: " in result.output and "/foreign stored" in result.output
    assert verify(app, "--repair").exit_code == 0
    checked_vectors(app)


def test_verify_answers_refuses_rows_the_catalogue_version_does_not_ask(app):
    """An answer row for a practice outside the layout of the response's catalogue version
    cannot be held by any vector: reported (exit 1), never "repaired" away."""
    catalog = catalog_of(app)
    client = app.test_client()
    respondent = Respondent(client)
    respondent.consent()
    assert respondent.profile().status_code == 302
    with app.app_context():
        rid = db.session.execute(text("SELECT id FROM response")).scalar()
        db.session.add(
            Practice(
                id="not_in_any_layout",
                category_id=catalog.practices[0].category,
                position=999,
                reward="non_financial",
                name_ru="Практика вне каталога",
                name_en="A practice outside the catalogue",
                active=False,
            )
        )
        db.session.flush()
        db.session.add(
            Answer(response_id=rid, practice_id="not_in_any_layout", company_kind="ru", met="no")
        )
        db.session.commit()
    for args in ((), ("--repair",)):
        result = verify(app, *args)
        assert result.exit_code == 1, result.output
        assert f"response {rid}: answer rows for not_in_any_layout" in result.output


# ---------------------------------------------------------------- two tabs at once


def test_two_tabs_saving_different_pages_at_once_both_reach_the_vector(app, client, monkeypatch):
    """Tab A has written its page and computed the vector when tab B saves another page:
    B waits for A's commit (the response's row lock), so the vector B stores holds both
    pages. Without the lock, B would store its page alone, or A would overwrite B's."""
    import threading
    import time

    from survey import responses
    from survey.models import Response

    catalog = catalog_of(app)
    respondent = Respondent(client)
    respondent.consent()
    assert respondent.profile().status_code == 302
    with app.app_context():
        rid = db.session.execute(text("SELECT id FROM response")).scalar()
    first, second = catalog.pages[0], catalog.pages[1]
    a_computed = threading.Event()
    original = responses._store_vector

    def slow_for_a(response):
        original(response)
        if threading.current_thread().name == "tab-a":
            a_computed.set()
            time.sleep(0.7)  # B runs as far as it can meanwhile

    monkeypatch.setattr(responses, "_store_vector", slow_for_a)
    errors = []

    def save(page):
        try:
            with app.app_context():
                response = db.session.get(Response, rid)
                cells = [
                    responses.Cell(p.id, kind, "no", None) for p in page.practices for kind in BOTH
                ]
                responses.save_page(response, page, cells, {}, "ru", 1)
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    a = threading.Thread(target=save, args=(first,), name="tab-a")
    b = threading.Thread(target=save, args=(second,), name="tab-b")
    a.start()
    assert a_computed.wait(10)
    b.start()
    a.join(30)
    b.join(30)
    assert not errors, errors
    (code,) = checked_vectors(app).values()
    practices = [p.id for p in catalog.practices]
    for page in (first, second):
        for practice in page.practices:
            if not practice.fictitious:
                i = practices.index(practice.id)
                assert code[2 * i : 2 * i + 2] == "nn", practice.id
