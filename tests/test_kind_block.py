"""Each kind of company's background block and the applied / existed / no / don't-know scale.

A respondent answers, for each kind of company they worked in, how long, how recently,
with how many employers and in which role and function; then, for each practice and kind,
whether it existed there and applied to them, with a rating (or "mixed / can't say") only
after "applied". Every test drives the real pages and recounts what the database holds
with plain SQL, never with the code under test.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text, update

from survey.extensions import db
from survey.forms import met_name, rating_name
from survey.models import Answer, Response
from tests.helpers import PROFILE, Respondent, csrf_token, order_of

BOTH = ("ru", "foreign")
KINDS_OF = {"ru_only": ("ru",), "foreign_only": ("foreign",), "both": BOTH}
BLOCK = ("years", "last_year", "employers", "role_level", "function")
BLOCK_COLUMNS = [f"{kind}_{name}" for kind in BOTH for name in BLOCK]

# A respondent's two blocks, as a browser without JavaScript sends them (both shown).
BLOCKS = {
    "ru_years": "10plus",
    "ru_last_year": "before_2014",
    "ru_employers": "4plus",
    "ru_role_level": "executive",
    "ru_function": "sales",
    "foreign_years": "lt1",
    "foreign_last_year": "2022_on",
    "foreign_employers": "2_3",
    "foreign_role_level": "line_manager",
    "foreign_function": "finance",
}

TEXTS = {
    "ru": {
        "kind_missing": {
            "ru": "Вы работали в российских компаниях: пожалуйста, ответьте на этот вопрос.",
            "foreign": "Вы работали в иностранных компаниях: пожалуйста, ответьте на этот вопрос.",
        },
        "last_year": {
            "ru": "Когда вы последний раз работали в российской компании?",
            "foreign": "Когда вы последний раз работали в иностранной компании?",
        },
        "rating_missing": "Эта практика касалась вас: оцените, пожалуйста, её влияние.",
        "blocks": {
            "ru": "Ваш опыт в российских компаниях",
            "foreign": "Ваш опыт в иностранных компаниях",
        },
        "tampered": "Форма содержала данные, которые наши страницы не могут отправить",
        "applied": "Да, и она касалась меня",
        "existed": "Была, но не для меня",
        "not_my_role": "Не относится к моей роли",
        "mixed": "Неоднозначно / не могу сказать",
        "legacy": "Встречал(а) — до декабря 2026 г.",
        "years_10plus": "Больше 10 лет",
        "no_js_hint": "Заполните блоки ниже только для тех типов компаний",
    },
    "en": {
        "kind_missing": {
            "ru": "You worked in Russian companies: please answer this question.",
            "foreign": "You worked in foreign companies: please answer this question.",
        },
        "last_year": {
            "ru": "When did you last work in a Russian company?",
            "foreign": "When did you last work in a foreign company?",
        },
        "rating_missing": "This practice applied to you: please rate its effect.",
        "blocks": {
            "ru": "Your experience in Russian companies",
            "foreign": "Your experience in foreign companies",
        },
        "tampered": "The form contained something our pages cannot produce",
        "applied": "Yes, and it applied to me",
        "existed": "It existed, but not for me",
        "not_my_role": "Not applicable to my role",
        "mixed": "Mixed / can&#39;t say",
        "legacy": "Met it — before December 2026",
        "years_10plus": "More than 10 years",
        "no_js_hint": "Answer the blocks below only for the kinds of company you have worked in",
    },
}


class Browser(Respondent):
    """A respondent that keeps its session's CSRF token (one is valid for the session)."""

    token: str | None = None

    def post_form(self, path: str, data: dict, follow: bool = False):
        if self.token is None:
            self.token = csrf_token(self.client.get("/").text)
        payload = {"csrf_token": self.token, **{k: v for k, v in data.items() if v is not None}}
        return self.client.post(path, data=payload, follow_redirects=follow)


def catalog_of(app):
    return app.extensions["survey_catalog"]


def started(client, lang: str) -> Browser:
    respondent = Browser(client, lang)
    respondent.consent()
    return respondent


def response_row(app) -> dict:
    """The one response's background columns, read with plain SQL."""
    columns = ["worked_in", "job_function", *BLOCK_COLUMNS]
    with app.app_context():
        row = db.session.execute(text(f"SELECT {', '.join(columns)} FROM response")).one()
    return dict(zip(columns, row, strict=True))


def answer_rows(app) -> dict:
    """(practice, kind) -> (met, rating, rating_mixed) of every stored answer, plain SQL."""
    with app.app_context():
        rows = db.session.execute(
            text("SELECT practice_id, company_kind, met, rating, rating_mixed FROM answer")
        ).all()
    return {(pid, kind): (met, rating, bool(mixed)) for pid, kind, met, rating, mixed in rows}


def everything(app) -> tuple:
    """Every row a respondent can write, to show that a refused post stored nothing."""
    with app.app_context():
        return tuple(
            sorted(map(tuple, db.session.execute(text(f"SELECT * FROM {table}")).all()), key=repr)
            for table in ("response", "answer", "fictitious_answer", "practice_example")
        )


def error_summary(html: str) -> str:
    return html.split('class="error-summary"', 1)[1].split("</div>", 1)[0]


# ---------------------------------------------------------------- the background blocks


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("worked_in", ["ru_only", "foreign_only", "both"])
def test_each_kind_worked_in_stores_its_block_exactly_and_no_other(app, client, worked_in, lang):
    respondent = started(client, lang)
    page = client.get("/profile").text
    for kind in BOTH:  # without JavaScript both blocks show, with a hint
        assert TEXTS[lang]["blocks"][kind] in page
        assert f'data-kind="{kind}"' in page
    assert TEXTS[lang]["no_js_hint"] in page
    assert 'name="job_function"' in page

    r = respondent.profile(worked_in=worked_in, job_function="hr", **BLOCKS)
    assert r.status_code == 302 and r.location.startswith("/page/")

    kinds = KINDS_OF[worked_in]
    expected = {
        "worked_in": worked_in,
        "job_function": "hr",
        **{c: (BLOCKS[c] if c.split("_", 1)[0] in kinds else None) for c in BLOCK_COLUMNS},
    }
    assert response_row(app) == expected
    review = client.get("/review").text
    for kind in BOTH:
        assert (TEXTS[lang]["blocks"][kind] in review) == (kind in kinds)
    assert (TEXTS[lang]["years_10plus"] in review) == ("ru" in kinds)


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize(("worked_in", "kind"), [("ru_only", "ru"), ("both", "foreign")])
def test_a_missing_block_answer_is_an_error_naming_the_question_and_the_kind(
    app, client, lang, worked_in, kind
):
    respondent = started(client, lang)
    before = everything(app)
    field = f"{kind}_last_year"
    r = respondent.profile(worked_in=worked_in, **{field: None})
    assert r.status_code == 200
    message = TEXTS[lang]["kind_missing"][kind]
    assert re.search(rf'<p class="field-error" id="{field}-error"><span>{message}</span>', r.text)
    summary = error_summary(r.text)
    assert f'href="#{field}-0"' in summary
    assert TEXTS[lang]["last_year"][kind] in summary and message in summary
    assert summary.count("<li>") == 1
    assert everything(app) == before  # nothing stored, not even the rest of the page


def test_the_block_of_a_kind_not_worked_in_is_never_required(app, client):
    respondent = started(client, "ru")
    left_out = {c: None for c in BLOCK_COLUMNS if c.startswith("foreign_")}
    r = respondent.profile(worked_in="ru_only", **left_out)
    assert r.status_code == 302
    assert response_row(app)["ru_years"] == PROFILE["ru_years"]


def test_job_function_is_required(app, client):
    respondent = started(client, "ru")
    r = respondent.profile(job_function=None)
    assert r.status_code == 200 and 'id="job_function-error"' in r.text
    assert response_row(app)["job_function"] is None


@pytest.mark.parametrize(
    ("worked_in", "bad"),
    [
        ("both", {"ru_years": "forever"}),
        ("ru_only", {"foreign_employers": "99"}),  # another kind: ignored, but never impossible
        ("foreign_only", {"foreign_function": "astronaut"}),
        ("ru_only", {"eu_years": "3_5"}),  # a kind that does not exist
        ("both", {"job_function": "ceo"}),
    ],
)
def test_an_impossible_code_is_a_tampered_form_and_stores_nothing(app, client, worked_in, bad):
    respondent = started(client, "en")
    before = everything(app)
    r = respondent.profile(worked_in=worked_in, **bad)
    assert r.status_code == 400
    assert TEXTS["en"]["tampered"] in r.text and '<html lang="en">' in r.text
    assert everything(app) == before


def test_changing_the_kinds_worked_in_clears_the_dropped_kinds_block(app, client):
    catalog = catalog_of(app)
    respondent = started(client, "ru")
    assert respondent.profile(worked_in="both", **BLOCKS).status_code == 302
    for page in catalog.pages:
        assert respondent.answer_page(page, BOTH).status_code == 302
    assert all(response_row(app)[c] == BLOCKS[c] for c in BLOCK_COLUMNS)

    # still sent by a browser without JavaScript, the foreign block is dropped
    assert respondent.profile(worked_in="ru_only", **BLOCKS).status_code == 302
    row = response_row(app)
    assert {c: row[c] for c in BLOCK_COLUMNS} == {
        c: BLOCKS[c] if c.startswith("ru_") else None for c in BLOCK_COLUMNS
    }
    assert {v[0] for k, v in answer_rows(app).items() if k[1] == "foreign"} == {"na"}

    # both kinds again: the foreign block is required once more and then stored anew
    assert respondent.profile(worked_in="both", foreign_years=None).status_code == 200
    assert response_row(app)["worked_in"] == "ru_only"
    assert respondent.profile(worked_in="both", foreign_years="3_5").status_code == 302
    assert response_row(app)["foreign_years"] == "3_5"


def test_the_blocks_follow_the_kind_the_respondent_sees_first(app, client):
    started(client, "ru")
    for first in BOTH:
        with app.app_context():
            stored = dict(db.session.scalar(select(Response.question_order)))
            stored["first_kind"] = first
            db.session.execute(update(Response).values(question_order=stored))
            db.session.commit()
        page = client.get("/profile").text
        ru, foreign = page.index('data-kind="ru"'), page.index('data-kind="foreign"')
        assert (ru < foreign) == (first == "ru")


def test_a_draft_from_before_the_blocks_is_sent_back_to_the_background_page(app, client):
    catalog = catalog_of(app)
    respondent = started(client, "ru")
    assert respondent.profile().status_code == 302
    for page in catalog.pages:
        assert respondent.answer_page(page, BOTH).status_code == 302
    # what a draft saved before 2026-12 holds: no job function, no blocks
    with app.app_context():
        db.session.execute(
            update(Response).values(job_function=None, **dict.fromkeys(BLOCK_COLUMNS))
        )
        db.session.commit()
    assert client.get("/page/1").location == "/profile"
    review = client.get("/review").text
    assert re.search(r'<button type="submit" class="button primary"\s+disabled', review)
    r = client.post("/submit", data={"csrf_token": respondent.token})
    assert r.location == "/review"
    assert respondent.profile().status_code == 302  # completed: the answers were kept
    assert respondent.submit().location.endswith("/thanks")


# ---------------------------------------------------------------- the answer scale


def first_page(app):
    page = catalog_of(app).pages[0]
    assert page.number == 1
    return page


def answered_page(respondent, page, kinds=BOTH) -> dict:
    """A complete answer to ``page`` (the scripted answers), as form data."""
    return respondent.page_data(page, kinds)


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_applied_needs_a_rating_and_mixed_is_stored_apart(app, client, lang):
    page = first_page(app)
    plain = next(p for p in page.practices if not p.functions)
    respondent = started(client, lang)
    assert respondent.profile().status_code == 302
    data = answered_page(respondent, page)
    met, rating = met_name(plain.id, "ru"), rating_name(plain.id, "ru")
    before = everything(app)

    r = respondent.post_form("/page/1", {**data, met: "applied", rating: None})
    assert r.status_code == 200
    message = TEXTS[lang]["rating_missing"]
    assert re.search(rf'<p class="field-error" id="{rating}-error"><span>{message}</span>', r.text)
    assert message in error_summary(r.text)
    assert everything(app) == before

    r = respondent.post_form("/page/1", {**data, met: "applied", rating: "mixed"})
    assert r.status_code == 302
    assert answer_rows(app)[(plain.id, "ru")] == ("applied", None, True)
    shown = client.get("/page/1").text  # the page shows "mixed" checked again
    assert re.search(rf'name="{rating}" value="mixed" checked', shown)
    review = client.get("/review").text
    assert f"{TEXTS[lang]['applied']}; {TEXTS[lang]['mixed']}" in review

    r = respondent.post_form("/page/1", {**data, met: "applied", rating: "2"})
    assert r.status_code == 302
    assert answer_rows(app)[(plain.id, "ru")] == ("applied", 2, False)


def test_a_rating_sent_with_existed_no_or_dont_know_is_discarded(app, client):
    page = first_page(app)
    plain = [p for p in page.practices if not p.functions]
    respondent = started(client, "ru")
    assert respondent.profile().status_code == 302
    data = answered_page(respondent, page)
    sent = {"existed": "5", "no": "mixed", "dk": "1"}
    for practice, (met, rating) in zip(plain, sent.items(), strict=False):
        data[met_name(practice.id, "foreign")] = met
        data[rating_name(practice.id, "foreign")] = rating
    assert respondent.post_form("/page/1", data).status_code == 302
    stored = answer_rows(app)
    for practice, met in zip(plain, sent, strict=False):
        assert stored[(practice.id, "foreign")] == (met, None, False)


def test_not_my_role_is_offered_and_accepted_only_for_function_practices(app, client):
    page = first_page(app)
    marked = [p for p in page.practices if p.functions]
    plain = [p for p in page.practices if not p.functions]
    assert {p.id for p in marked} == {"sales_commission", "new_client_bonus", "hunter_farmer_split"}
    respondent = started(client, "en")
    assert respondent.profile().status_code == 302
    html = client.get("/page/1").text
    for practice in page.practices:
        for kind in BOTH:
            offered = f'name="{met_name(practice.id, kind)}" value="not_my_role"' in html
            assert offered == bool(practice.functions)
    data = answered_page(respondent, page)

    before = everything(app)
    r = respondent.post_form("/page/1", {**data, met_name(plain[0].id, "ru"): "not_my_role"})
    assert r.status_code == 400 and TEXTS["en"]["tampered"] in r.text
    assert everything(app) == before

    # after "not my role" a rating is never asked, and one sent is discarded
    mine = {met_name(p.id, "ru"): "not_my_role" for p in marked}
    mine[rating_name(marked[0].id, "ru")] = "4"
    assert respondent.post_form("/page/1", {**data, **mine}).status_code == 302
    stored = answer_rows(app)
    assert all(stored[(p.id, "ru")] == ("not_my_role", None, False) for p in marked)
    assert TEXTS["en"]["not_my_role"] in client.get("/review").text


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_a_legacy_yes_in_a_draft_is_asked_again_on_the_new_scale(app, client, lang):
    catalog = catalog_of(app)
    respondent = started(client, lang)
    assert respondent.profile().status_code == 302
    for page in catalog.pages:
        assert respondent.answer_page(page, BOTH).status_code == 302
    order = order_of(client)
    # a draft saved before 2026-12 holds "yes" (met it) with a rating on its last page
    page = order.pages[-1]
    practice = next(p for p in page.practices if not p.fictitious)
    with app.app_context():
        db.session.execute(
            update(Answer)
            .where(Answer.practice_id == practice.id, Answer.company_kind == "ru")
            .values(met="yes", rating=4, rating_mixed=False)
        )
        db.session.commit()
    # the vector follows the rows, as migration 0010 wrote it for such drafts
    assert app.test_cli_runner().invoke(args=["verify-answers", "--repair"]).exit_code == 0

    review = client.get("/review").text
    assert review.count("review-section incomplete") == 1
    assert TEXTS[lang]["legacy"] in review
    assert client.post("/submit", data={"csrf_token": respondent.token}).location == "/review"
    # the landing page's "continue" leads to that page, where nothing is checked for it
    landing = client.get("/").text
    assert f'href="/page/{page.number}"' in landing
    html = client.get(f"/page/{page.number}").text
    assert f'name="{met_name(practice.id, "ru")}" value="yes"' not in html
    assert not re.search(rf'name="{met_name(practice.id, "ru")}" value="[a-z_]+" checked', html)
    assert not re.search(rf'name="{rating_name(practice.id, "ru")}" value="\w+" checked', html)

    assert respondent.answer_page(page, BOTH).status_code == 302
    assert answer_rows(app)[(practice.id, "ru")][0] != "yes"
    assert respondent.submit().location.endswith("/thanks")


def test_a_submitted_legacy_response_stays_as_stored(app, client):
    catalog = catalog_of(app)
    respondent = started(client, "ru")
    assert respondent.profile().status_code == 302
    for page in catalog.pages:
        assert respondent.answer_page(page, BOTH).status_code == 302
    assert respondent.submit().location.endswith("/thanks")
    with app.app_context():
        db.session.execute(
            update(Answer).where(Answer.met == "applied").values(met="yes", rating_mixed=False)
        )
        db.session.execute(update(Response).values(job_function=None))
        db.session.commit()
    before = everything(app)
    assert client.get("/review").location == "/thanks"
    assert client.get("/").status_code == 200
    assert client.get("/page/1").location == "/thanks"
    assert everything(app) == before


# ---------------------------------------------------------------- quality indicators


def test_claiming_the_fictitious_practice_existed_and_straightlining_use_stored_codes(app, client):
    """Over-claiming is any "existed" answer about the fictitious practice; straightlining
    compares the stored answers, "mixed" included (recounted here from what was sent)."""
    catalog = catalog_of(app)
    fictitious = catalog.fictitious[0]
    respondent = started(client, "ru")
    assert respondent.profile(worked_in="ru_only").status_code == 302
    flat_page, mixed_page = catalog.pages[1], catalog.pages[2]
    answers = {(fictitious.id, "ru"): ("existed", None)}
    for p in flat_page.practices:  # every practice: applied, "mixed" -> straightlined
        answers[(p.id, "ru")] = ("applied", "mixed")
    for i, p in enumerate(mixed_page.practices):  # applied, 3 or "mixed" -> not
        answers[(p.id, "ru")] = ("applied", "mixed" if i % 2 else 3)
    for page in catalog.pages:
        assert respondent.answer_page(page, ("ru",), answers=answers).status_code == 302
    assert respondent.submit().location.endswith("/thanks")

    sent = {}
    for page in catalog.pages:
        data = respondent.page_data(page, ("ru",), answers=answers)
        sent[page.key] = [
            (data[met_name(p.id, "ru")], data.get(rating_name(p.id, "ru"))) for p in page.practices
        ]
    flat = {key for key, cells in sent.items() if len(cells) >= 3 and len(set(cells)) == 1}
    assert flat_page.key in flat and mixed_page.key not in flat
    with app.app_context():
        claimed, pages = db.session.execute(
            text("SELECT fictitious_claimed, straightlined_pages FROM response")
        ).one()
        flags = dict(
            db.session.execute(
                text("SELECT page, straightlining FROM response_page WHERE page <> 'background'")
            ).all()
        )
    assert bool(claimed) is True
    assert pages == len(flat)
    assert {key for key, value in flags.items() if value} == flat
