"""A practice page shows the draft's answers as stored, read from the response's answer
vector (one row) rather than from its answer rows.

Each test saves pages through the test client, opens them again (often in a new browser,
through the personal link) and compares every checked radio button and every example box
with what was sent: the expected values are the posts, never the code under test.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import event, text, update

from survey.extensions import db
from survey.forms import example_name, met_name, practice_page_form, rating_name
from survey.models import Answer, CatalogVersion, Response
from tests.helpers import Respondent, csrf_token, open_resume_link

RESUME_LINK_RE = re.compile(r'<input class="resume-link"[^>]*value="([^"]+)"')
KINDS_OF = {"both": ("ru", "foreign"), "ru_only": ("ru",), "foreign_only": ("foreign",)}

# Every answer a page can store, cycled over a page's cells: ratings 1-5, "mixed / can't
# say", it existed but not for me, no, don't know ("not my role" is added where offered).
SCALE = (
    ("applied", 1),
    ("existed", None),
    ("applied", "mixed"),
    ("no", None),
    ("applied", 5),
    ("dk", None),
    ("applied", 2),
    ("applied", 4),
    ("applied", 3),
)


class FormState(HTMLParser):
    """What a rendered page's form holds: the checked radio of each group, the text of
    each textarea."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.checked: dict[str, str] = {}
        self.texts: dict[str, str] = {}
        self._textarea: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "radio" and "checked" in attrs:
            assert attrs["name"] not in self.checked, f"two checked in {attrs['name']}"
            self.checked[attrs["name"]] = attrs["value"]
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self.texts[self._textarea] = ""

    def handle_data(self, data):
        if self._textarea is not None:
            self.texts[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            # The HTML spec drops one newline right after <textarea>, as browsers do.
            name = self._textarea
            self.texts[name] = re.sub(r"^\r?\n", "", self.texts[name])
            self._textarea = None


def catalog_of(app):
    return app.extensions["survey_catalog"]


def scale_answers(page, kinds, shift: int = 0) -> dict:
    """(practice id, kind) -> (met, rating) for every cell of a page, covering the scale;
    "not my role" on one kind of each practice that offers it."""
    out = {}
    for i, practice in enumerate(page.practices):
        for k, kind in enumerate(kinds):
            out[(practice.id, kind)] = SCALE[(shift + i + 4 * k) % len(SCALE)]
            if practice.functions and k == 0:
                out[(practice.id, kind)] = ("not_my_role", None)
    return out


def some_examples(page, kinds) -> dict:
    """Example texts for some cells, with markup and a line break that must survive."""
    return {
        (practice.id, kind): f"At <b>{practice.id}</b> & co.\nsecond line ({kind})"
        for i, practice in enumerate(page.practices)
        for k, kind in enumerate(kinds)
        if (i + k) % 3 == 0 and not practice.fictitious
    }


def shown(page, kinds, answers: dict, examples: dict) -> tuple[dict, dict]:
    """What the page must show for these stored answers: the choice of each answered
    question (today's scale only), the rating after "applied", every example box."""
    checked, texts = {}, {}
    for practice in page.practices:
        for kind in kinds:
            met, rating = answers.get((practice.id, kind), (None, None))
            if met is not None and met != "yes":
                checked[met_name(practice.id, kind)] = met
                if met == "applied" and rating is not None:
                    checked[rating_name(practice.id, kind)] = str(rating)
            texts[example_name(practice.id, kind)] = examples.get((practice.id, kind), "")
    return checked, texts


def assert_page_shows(client, page, kinds, answers, examples):
    response = client.get(f"/page/{page.number}")
    assert response.status_code == 200, response.status_code
    state = FormState(response.text)
    checked, texts = shown(page, kinds, answers, examples)
    assert state.checked == checked
    assert state.texts == texts


def started(client, worked_in: str = "both") -> Respondent:
    respondent = Respondent(client)
    respondent.consent()
    assert respondent.profile(worked_in=worked_in).status_code == 302
    return respondent


def reopened(app, client):
    """A new browser holding the same draft, through its personal link."""
    link = RESUME_LINK_RE.search(client.get("/review").text).group(1)
    other = app.test_client()
    assert open_resume_link(other, link.split("survey.test", 1)[1]).status_code == 302
    return other


def repair_vectors(app) -> None:
    """Rewrite vectors from the rows, as migration 0010 did for drafts saved before."""
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["verify-answers", "--repair"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("worked_in", ["both", "foreign_only"])
def test_a_draft_reopened_shows_exactly_the_answers_it_stored(app, client, worked_in):
    catalog = catalog_of(app)
    kinds = KINDS_OF[worked_in]
    respondent = started(client, worked_in)
    pay = catalog.pages[0]  # has practices that offer "not my role"
    goals = next(p for p in catalog.pages if any(x.fictitious for x in p.practices))
    unanswered = next(p for p in catalog.pages if p not in (pay, goals))
    stored, examples = {}, {}
    for shift, page in enumerate((pay, goals)):
        answers, texts = scale_answers(page, kinds, shift), some_examples(page, kinds)
        saved = respondent.answer_page(page, kinds, answers=answers, examples=texts)
        assert saved.status_code == 302, saved.text[:2000]
        stored.update(answers)
        examples.update(texts)
    # A draft saved before December 2026 holds the former "met it", rated or not.
    legacy = [p for p in pay.practices if not p.functions][:2]
    with app.app_context():
        for practice, rating in zip(legacy, (3, None), strict=True):
            db.session.execute(
                update(Answer)
                .where(Answer.practice_id == practice.id, Answer.company_kind == kinds[0])
                .values(met="yes", rating=rating, rating_mixed=False)
            )
            stored[(practice.id, kinds[0])] = ("yes", rating)
        db.session.commit()
    repair_vectors(app)

    for page in (pay, goals, unanswered):
        assert_page_shows(client, page, kinds, stored, examples)
    other = reopened(app, client)  # another browser takes the draft over
    for page in (pay, goals, unanswered):
        assert_page_shows(other, page, kinds, stored, examples)


def test_answers_about_a_practice_the_drafts_catalogue_version_lacks_come_from_the_rows(
    app, client
):
    """A draft started before a practice was added to the catalogue has no vector cell
    for it; its answers to that practice are still shown from the answer rows."""
    catalog = catalog_of(app)
    respondent = started(client)
    page = catalog.pages[1]
    added = page.practices[2]
    with app.app_context():
        served = db.session.get(Response, db.session.scalar(text("SELECT id FROM response")))
        content = db.session.get(CatalogVersion, served.catalog_version_id).content
        older = CatalogVersion(
            version="older",
            checksum="older-version-without-" + added.id,
            loaded_on=served.started_on,
            content={
                **content,
                "practices": [p for p in content["practices"] if p["id"] != added.id],
            },
        )
        db.session.add(older)
        db.session.flush()
        served.catalog_version_id = older.id
        db.session.commit()
        width = 2 * len(older.content["practices"])
    repair_vectors(app)
    answers = scale_answers(page, ("ru", "foreign"), shift=2)
    answers[(added.id, "ru")], answers[(added.id, "foreign")] = ("applied", "mixed"), ("dk", None)
    texts = {(added.id, "foreign"): "kept in the rows\nonly"}
    assert (
        respondent.answer_page(page, ("ru", "foreign"), answers=answers, examples=texts).status_code
        == 302
    )
    with app.app_context():
        code = db.session.scalar(text("SELECT answer_code FROM response"))
    assert len(code) == width  # the added practice has no cell in this draft's vector

    assert_page_shows(client, page, ("ru", "foreign"), answers, texts)


def test_a_page_sent_back_with_errors_shows_what_was_sent_not_what_is_stored(app, client):
    catalog = catalog_of(app)
    respondent = started(client)
    page = catalog.pages[2]
    first = scale_answers(page, ("ru", "foreign"))
    assert respondent.answer_page(page, ("ru", "foreign"), answers=first).status_code == 302
    changed, missing = page.practices[0], page.practices[1]
    data = {
        "csrf_token": csrf_token(client.get(f"/page/{page.number}").text),
        **respondent.page_data(page, ("ru", "foreign"), answers=first),
        met_name(changed.id, "ru"): "dk",
        example_name(changed.id, "foreign"): "typed, not saved",
    }
    data.pop(rating_name(changed.id, "ru"), None)
    del data[met_name(missing.id, "foreign")]
    data.pop(rating_name(missing.id, "foreign"), None)
    sent = client.post(f"/page/{page.number}", data=data)
    assert sent.status_code == 200
    assert "error-summary" in sent.text

    state = FormState(sent.text)
    expected = {k: v for k, v in data.items() if k.endswith(("__met", "__rating"))}
    assert state.checked == expected
    assert state.texts[example_name(changed.id, "foreign")] == "typed, not saved"
    # nothing of the refused post was stored
    assert_page_shows(client, page, ("ru", "foreign"), first, {})


def test_opening_a_practice_page_reads_no_answer_rows(app, client):
    """The draft's answers come with the response's row; only a fictitious practice's
    answers, which have no cell in the vector, are read from their own table."""
    catalog = catalog_of(app)
    respondent = started(client)
    for page in catalog.pages:
        assert respondent.answer_page(page, ("ru", "foreign")).status_code == 302
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        for page in catalog.pages:
            statements.clear()
            assert client.get(f"/page/{page.number}").status_code == 200
            assert not [s for s in statements if re.search(r"\bFROM answer\b", s)]
            fictitious = [s for s in statements if re.search(r"\bFROM fictitious_answer\b", s)]
            assert len(fictitious) == any(p.fictitious for p in page.practices)
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_page_never_answered_shows_nothing_checked(app, client):
    catalog = catalog_of(app)
    started(client, "ru_only")
    for page in catalog.pages:
        assert_page_shows(client, page, ("ru",), {}, {})


PER_POST = ("data", "raw_data", "object_data", "process_errors", "errors")


def _state(field) -> dict:
    """A bound field's attributes, nested objects (label, flags) by their own attributes,
    without what processing a post sets."""
    return {
        name: vars(value) if hasattr(value, "__dict__") and name in ("label", "flags") else value
        for name, value in vars(field).items()
        if name not in PER_POST
    }


def test_a_page_forms_copied_fields_equal_fields_bound_afresh(app):
    """The practice page form binds each field by copying its first binding
    (survey.forms._CopyBoundFields): a copy must hold what WTForms' own binding gives, and
    two posts must not share their data."""
    catalog = catalog_of(app)
    for page in catalog.pages:
        first = {met_name(page.practices[0].id, "ru"): "no"}
        second = {met_name(page.practices[0].id, "ru"): "dk"}
        with app.test_request_context(f"/page/{page.number}", method="POST", data=first):
            practice_page_form(page, ("ru", "foreign"), "ru")  # the first binding
            form = practice_page_form(page, ("ru", "foreign"), "ru")  # copies
            options = {"prefix": "", "translations": form.meta.get_translations(form)}
            for name, unbound in type(form)._unbound_fields:
                fresh = unbound.bind(form=form, name=name, **options)
                assert _state(form[name]) == _state(fresh), name
                assert type(form[name]) is type(fresh)
        with app.test_request_context(f"/page/{page.number}", method="POST", data=second):
            other = practice_page_form(page, ("ru", "foreign"), "ru")
        field = met_name(page.practices[0].id, "ru")
        assert (form[field].data, other[field].data) == ("no", "dk")
        assert form[field].label is other[field].label  # shared, never changed after binding
