"""Drafts and responses: start, save page by page, resume, submit once, withdraw, purge."""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Integer, bindparam, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from survey import fieldwork, paradata, vectors
from survey.auth import token_hash
from survey.catalog import Catalog, Page, PracticeEntry, check_wordings
from survey.consent import Consent
from survey.extensions import db
from survey.forms import met_options
from survey.models import (
    COMPANY_KINDS,
    Answer,
    CatalogVersion,
    Category,
    Channel,
    FictitiousAnswer,
    Invitation,
    Practice,
    PracticeExample,
    Response,
    ResponsePage,
    Wave,
)
from survey.questions import BACKGROUND, KIND_BACKGROUND, RATED
from survey.storage import erase_deleted


def catalog() -> Catalog:
    """The catalogue this application instance serves."""
    return current_app.extensions["survey_catalog"]


def consent() -> Consent:
    """The consent texts this application instance shows (survey/consent.yaml)."""
    return current_app.extensions["survey_consent"]


def order(response: Response) -> paradata.Order:
    """The response's own question order over the served catalogue."""
    return paradata.resolve(catalog(), response.question_order)


def sync_catalog(cat: Catalog) -> CatalogVersion:
    """Write the catalogue into the database (idempotent) and return its version row.

    A practice id keeps one wording: a catalogue that changes the name or description of
    an id some stored version asked is refused (:class:`CatalogError`, nothing written),
    so counting answers by id pools versions exactly when the question did not change.
    Practices no longer in the file are deactivated, never deleted, so stored answers
    keep their meaning through the version snapshot each response points to. Fictitious
    practices get no row: their answers live apart (``fictitious_answer``), out of reach
    of every analysis.
    """
    check_wordings(cat, stored_snapshots())
    version = db.session.scalar(select(CatalogVersion).filter_by(checksum=cat.checksum))
    if version is None:
        version = CatalogVersion(
            version=cat.version,
            checksum=cat.checksum,
            loaded_on=fieldwork.today(),
            content=cat.snapshot(),
        )
        db.session.add(version)
    for position, category in enumerate(cat.categories):
        db.session.merge(
            Category(
                id=category.id,
                position=position,
                name_ru=category.name.ru,
                name_en=category.name.en,
            )
        )
    db.session.flush()
    for position, practice in enumerate(cat.practices):
        db.session.merge(
            Practice(
                id=practice.id,
                category_id=practice.category,
                position=position,
                reward=practice.reward,
                name_ru=practice.name.ru,
                name_en=practice.name.en,
                active=True,
            )
        )
    ids = [p.id for p in cat.practices]
    db.session.execute(update(Practice).where(Practice.id.not_in(ids)).values(active=False))
    default_wave()
    db.session.commit()
    return version


def stored_snapshots() -> list[tuple[str, dict]]:
    """``(version, snapshot)`` of every stored catalogue version, oldest first."""
    rows = db.session.execute(
        select(CatalogVersion.version, CatalogVersion.content).order_by(CatalogVersion.id)
    )
    return [(version, content) for version, content in rows]


def default_wave() -> Wave:
    """The wave the bare site URL leads to (survey/fieldwork.py), created on first use."""
    return fieldwork.default_wave()


def catalog_version_id() -> int:
    """Id of the served catalogue's version row, syncing the catalogue on first use."""
    cache = current_app.extensions.setdefault("survey_catalog_version", {})
    cat = catalog()
    if cat.checksum not in cache:
        version_id = db.session.scalar(select(CatalogVersion.id).filter_by(checksum=cat.checksum))
        if version_id is None:
            try:
                version_id = sync_catalog(cat).id
            except IntegrityError:  # another worker synced it at the same moment
                db.session.rollback()
                version_id = db.session.scalar(
                    select(CatalogVersion.id).filter_by(checksum=cat.checksum)
                )
        cache[cat.checksum] = version_id
    return cache[cat.checksum]


def layout(version_id: int) -> tuple[str, ...]:
    """The vector layout (:func:`survey.vectors.layout`) of a stored catalogue version:
    read once per application, since a version's snapshot never changes."""
    cache = current_app.extensions.setdefault("survey_vector_layouts", {})
    if version_id not in cache:
        content = db.session.scalar(
            select(CatalogVersion.content).where(CatalogVersion.id == version_id)
        )
        if content is None:
            raise LookupError(f"no catalogue version {version_id}")
        cache[version_id] = vectors.layout(content)
    return cache[version_id]


def _layout_index(version_id: int) -> dict[str, int]:
    """Practice id -> its position in the layout of a catalogue version (cached like
    :func:`layout`)."""
    cache = current_app.extensions.setdefault("survey_vector_layout_index", {})
    if version_id not in cache:
        cache[version_id] = {pid: i for i, pid in enumerate(layout(version_id))}
    return cache[version_id]


# An answer row as survey.vectors.encode reads it (Core columns: no ORM row handling).
_answer = Answer.__table__.c
ANSWER_CELLS = (
    _answer.practice_id,
    _answer.company_kind,
    _answer.met,
    _answer.rating,
    _answer.rating_mixed,
)


# The statements of a practice page's view and save, built once: building them on every
# request took a tenth of a save. Their values are bound when they run (:rid the response,
# :ids the page's practice ids, ...).
def _of_page(table):
    """A table's rows of one response about some practices."""
    c = table.c
    return (c.response_id == bindparam("rid")) & c.practice_id.in_(bindparam("ids", expanding=True))


def _touch_statement(with_seconds: bool):
    """The UPDATE of :func:`_touch` (:today, :lang, :step, and :secs added if known)."""
    c = Response.__table__.c
    step = bindparam("step", type_=c.last_page.type)
    values = {
        "updated_on": bindparam("today", type_=c.updated_on.type),
        "language": bindparam("lang", type_=c.language.type),
        "last_page": case((c.last_page < step, step), else_=c.last_page),
    }
    if with_seconds:
        values["active_seconds"] = c.active_seconds + bindparam("secs", type_=Integer)
    return Response.__table__.update().where(c.id == bindparam("rid")).values(**values)


def _page_row_statement(with_seconds: bool):
    """The UPDATE of :func:`_record_page` (:rid and :key the row, :lang, :secs)."""
    c = ResponsePage.__table__.c
    values: dict = {"language": bindparam("lang", type_=c.language.type)}
    if with_seconds:  # an SQL increment: two tabs saving at once both count
        values["seconds"] = func.coalesce(c.seconds, 0) + bindparam("secs", type_=Integer)
    return (
        ResponsePage.__table__.update()
        .where(c.response_id == bindparam("rid"), c.page == bindparam("key"))
        .values(**values)
    )


_FIND = select(Response).where(Response.resume_token_hash == bindparam("token_hash"))
_LOCK = select(Response.id).where(Response.id == bindparam("rid")).with_for_update()
_ANSWER_ROWS = select(*ANSWER_CELLS).where(_answer.response_id == bindparam("rid"))
_SET_VECTOR = (
    Response.__table__.update()
    .where(Response.__table__.c.id == bindparam("rid"))
    .values(answer_code=bindparam("code"))
)
_DELETE_PAGE = tuple(
    model.__table__.delete().where(_of_page(model.__table__))
    for model in (Answer, FictitiousAnswer, PracticeExample)
)
_PAGE_ANSWERS = {
    model: select(*(model.__table__.c[column.name] for column in ANSWER_CELLS)).where(
        _of_page(model.__table__)
    )
    for model in (Answer, FictitiousAnswer)
}
_PAGE_EXAMPLES = select(
    PracticeExample.__table__.c.practice_id,
    PracticeExample.__table__.c.company_kind,
    PracticeExample.__table__.c.text,
).where(_of_page(PracticeExample.__table__))
_TOUCH = {with_seconds: _touch_statement(with_seconds) for with_seconds in (False, True)}
_PAGE_ROW = {with_seconds: _page_row_statement(with_seconds) for with_seconds in (False, True)}


def _lock(response: Response) -> None:
    """Hold the response's row until commit (PostgreSQL; SQLite has one writer at a time),
    so that two tabs saving pages at once write their answers and vectors one after the
    other: the vector each computes includes the other's answers."""
    db.session.execute(_LOCK, {"rid": response.id})


def _vector(response: Response) -> str:
    """The response's vector from its answer rows as this transaction sees them (one
    SELECT)."""
    rows = db.session.execute(_ANSWER_ROWS, {"rid": response.id})
    return vectors.encode(rows, layout(response.catalog_version_id))


def _store_vector(response: Response) -> None:
    """Write the response's vector from its answer rows as this transaction sees them
    (one SELECT, one UPDATE; the caller commits). A Core UPDATE rather than an ORM
    attribute: flushing the response object cost more than the statement."""
    code = _vector(response)
    db.session.execute(_SET_VECTOR, {"rid": response.id, "code": code})
    set_committed_value(response, "answer_code", code)  # the object matches the row


class InvitationUsed(Exception):
    """An invitation link started a response already (another browser, a moment earlier)."""


def start(
    language: str,
    quality_flag: str | None = None,
    channel: Channel | None = None,
    invitation: Invitation | None = None,
) -> tuple[Response, str]:
    """Create a draft after consent, with its own question order, in a channel's wave (the
    default wave's direct channel unless given); count the consent; return the draft with
    its raw resume token. Its answer vector starts with every cell unanswered ('.').

    With an ``invitation`` the draft is bound to it in the same transaction (its channel is
    the invitation's); :class:`InvitationUsed`, nothing stored, if it was used already.
    """
    token = secrets.token_urlsafe(24)
    version_id = catalog_version_id()
    cat = catalog()
    if invitation is not None:
        channel = fieldwork.channel_by_id(invitation.channel_id)
    channel = channel or fieldwork.direct_channel(default_wave())
    response = Response(
        resume_token_hash=token_hash(token),
        status="draft",
        wave_id=channel.wave_id,
        channel_id=channel.id,
        catalog_version_id=version_id,
        language=language,
        consent_version=consent().version,
        consented_on=fieldwork.today(),
        started_on=fieldwork.today(),
        updated_on=fieldwork.today(),
        last_page=0,
        quality_flag=quality_flag,
        question_order=paradata.draw_order(cat, paradata.order_seed()),
        answer_code=vectors.encode((), layout(version_id)),
    )
    db.session.add(response)
    db.session.flush()
    if invitation is not None and not fieldwork.bind_invitation(invitation, response.id):
        db.session.rollback()
        raise InvitationUsed
    # One row per page now, so that every later save is a plain increment of its row.
    keys = [paradata.BACKGROUND_PAGE, *(page.key for page in cat.pages)]
    db.session.add_all(ResponsePage(response_id=response.id, page=key) for key in keys)
    fieldwork.count(channel.id, "consented")
    db.session.commit()
    return response, token


def find(token: str | None) -> Response | None:
    """The response a resume token opens: a live draft or a submitted response, else None."""
    if not token or len(token) > 100:
        return None
    response = db.session.scalar(_FIND, {"token_hash": token_hash(token)})
    if response is None:
        return None
    if response.status == "draft" and is_expired(response):
        return None
    return response


def take_over(response: Response) -> str | None:
    """Give a draft or response a new resume token and return it.

    The old link, and every browser session that still holds the old token, stop
    working: whoever opened the link last holds the answers alone. The swap is one
    conditional UPDATE, so of two browsers taking over at once only one wins; the
    other gets None.
    """
    token = secrets.token_urlsafe(24)
    result = db.session.execute(
        update(Response)
        .where(
            Response.id == response.id,
            Response.resume_token_hash == response.resume_token_hash,
        )
        .values(resume_token_hash=token_hash(token))
    )
    db.session.commit()
    return token if result.rowcount == 1 else None


def is_expired(response: Response) -> bool:
    """Whether a draft has passed its time to live."""
    ttl = dt.timedelta(days=current_app.config["DRAFT_TTL_DAYS"])
    return response.status == "draft" and response.updated_on < fieldwork.today() - ttl


def _record_page(response: Response, page_key: str, language: str, seconds: int | None) -> None:
    """Set a page's language (the latest save wins) and add its seconds, if known, to its
    row (created if an older draft has none)."""
    values = {"rid": response.id, "key": page_key, "lang": language, "secs": seconds}
    result = db.session.execute(_PAGE_ROW[seconds is not None], values)
    if result.rowcount == 0:
        db.session.execute(
            ResponsePage.__table__.insert().values(
                response_id=response.id, page=page_key, seconds=seconds, language=language
            )
        )


_TOUCHED = ("updated_on", "language", "last_page", "active_seconds")


def _touch(
    response: Response, language: str, page: int, seconds: int | None, page_key: str
) -> None:
    """Record a save on the response in one UPDATE: today's date, the language of the
    last page saved (or the submit), the furthest step reached and the seconds added;
    and on the page's row.

    Core statements, not ORM attributes: flushing the response object cost more than the
    statements. The object's other pending changes (the background) are flushed at the
    commit, in the same transaction; its copies of these columns are expired.
    """
    values = {
        "rid": response.id,
        "today": fieldwork.today(),
        "lang": language,
        "step": page,
        "secs": seconds,
    }
    db.session.execute(_TOUCH[seconds is not None], values)
    db.session.expire(response, _TOUCHED)
    _record_page(response, page_key, language, seconds)


def save_profile(response: Response, data: dict, language: str, seconds: int | None = None) -> None:
    """Store the work background; keep practice answers consistent with the kinds worked in.

    ``seconds`` (the time the page was open; None when unknown) is added to the draft's
    ``active_seconds`` and to the background page's row, which also records ``language``.

    Each kind's block (:data:`KIND_BACKGROUND`) is stored for the kinds worked in only:
    answers sent about another kind (the page shows both blocks without JavaScript) are
    dropped, and the block of a kind no longer reported is cleared (the database refuses
    a block for a kind not worked in). A kind the respondent no longer reports also has
    its answers turned into not-applicable and its examples deleted; a newly reported
    kind has no answers yet, so its practice pages must be answered again. The answer
    vector follows the rows in the same transaction.
    """
    old = set(response.kinds())
    for question in BACKGROUND:
        setattr(response, question.field, data.get(question.field) or None)
    new = set(response.kinds())
    for kind, questions in KIND_BACKGROUND.items():
        for question in questions:
            value = (data.get(question.field) or None) if kind in new else None
            setattr(response, question.field, value)
    if old != new:
        _lock(response)
    for model in (Answer, FictitiousAnswer):
        for kind in old - new:
            db.session.execute(
                update(model)
                .where(model.response_id == response.id, model.company_kind == kind)
                .values(met="na", rating=None, rating_mixed=False)
            )
        for kind in new - old:
            db.session.execute(
                delete(model).where(model.response_id == response.id, model.company_kind == kind)
            )
    if old - new:  # examples about a kind the respondent no longer reports go with it
        db.session.execute(
            delete(PracticeExample).where(
                PracticeExample.response_id == response.id,
                PracticeExample.company_kind.in_(sorted(old - new)),
            )
        )
    if old != new:
        _store_vector(response)
    _touch(response, language, 1, seconds, paradata.BACKGROUND_PAGE)
    db.session.commit()


@dataclass(frozen=True)
class Cell:
    """One answer of a practice page: what the respondent reported about a practice in a
    kind of company, the rating (1..5) and whether they rated it "mixed / can't say"."""

    practice_id: str
    kind: str
    met: str
    rating: int | None
    rating_mixed: bool = False


def save_page(
    response: Response,
    page: Page,
    cells: list[Cell],
    examples: dict[tuple[str, str], str],
    language: str,
    page_index: int,
    seconds: int | None = None,
) -> None:
    """Replace one page's answers in one transaction.

    Kinds the respondent never worked in are stored as not-applicable ('na'); a rating
    (or "mixed / can't say") given with anything but 'applied' is discarded. ``examples``
    maps (practice id, kind) to the text typed in that kind's box; an example for a kind
    the respondent never worked in is not stored (the form cannot carry one: such a post
    is refused before this).
    ``seconds`` (the time the page was open; None when unknown) is added to the draft's
    ``active_seconds`` and to the page's row, which also records ``language``;
    ``page_index`` is the furthest step reached (the page's position in the respondent's
    order, plus one).

    The page's examples are replaced as a whole, those without a kind (written before
    there was a box per kind) included: the page showed such a text in a kind's box
    (:func:`examples_for_page`), and what the respondent sent back replaces it.

    Answers about a fictitious practice go to ``fictitious_answer``, never to ``answer``;
    an example typed for one is discarded. The answer vector is recomputed from all the
    response's rows before the commit.
    """
    fictitious = catalog().fictitious_ids
    ids = [p.id for p in page.practices]
    kinds = response.kinds()
    given = {(c.practice_id, c.kind): c for c in cells}
    rows: dict[bool, list[dict]] = {False: [], True: []}
    texts: list[dict] = []
    for pid in ids:
        for kind in COMPANY_KINDS:
            cell = given.get((pid, kind)) if kind in kinds else None
            met = cell.met if cell else "na"
            rated = cell is not None and met in RATED
            mixed = rated and cell.rating_mixed
            rows[pid in fictitious].append(
                {
                    "response_id": response.id,
                    "practice_id": pid,
                    "company_kind": kind,
                    "met": met,
                    "rating": cell.rating if rated and not mixed else None,
                    "rating_mixed": mixed,
                }
            )
            text = examples.get((pid, kind)) if kind in kinds else None
            if text and pid not in fictitious:
                texts.append(
                    {
                        "response_id": response.id,
                        "practice_id": pid,
                        "company_kind": kind,
                        "text": text,
                    }
                )
    # The rows are built before the first write: on SQLite the database is locked for
    # writing from there to the commit. Core statements on the tables: the ORM's bulk DML
    # and unit of work (synchronising the session, flushing objects) cost more than the
    # statements themselves.
    _lock(response)
    for statement in _DELETE_PAGE:
        db.session.execute(statement, {"rid": response.id, "ids": ids})
    for is_fictitious, model in ((False, Answer), (True, FictitiousAnswer)):
        if rows[is_fictitious]:
            db.session.execute(model.__table__.insert(), rows[is_fictitious])
    if texts:
        db.session.execute(PracticeExample.__table__.insert(), texts)
    _store_vector(response)
    _touch(response, language, page_index, seconds, page.key)
    db.session.commit()


def page_answers(response: Response, practices) -> dict[tuple[str, str], Cell]:
    """The draft's stored answers about some practices (a page's), keyed by (practice id,
    company kind); a cell never answered is absent.

    Real practices are read from the response's answer vector, which the request has
    already loaded with the response (no query): every write path keeps it equal to the
    answer rows in the same transaction. Rows are read only where the vector has no cell:
    fictitious practices (their answers live in ``fictitious_answer``) and a practice
    outside the layout of the response's catalogue version (added to the served catalogue
    after the draft was started), or a vector that does not fit its layout.
    """
    practice_ids = layout(response.catalog_version_id)
    index = _layout_index(response.catalog_version_id)
    code = response.answer_code
    fits = code is not None and len(code) == 2 * len(practice_ids)
    fictitious = catalog().fictitious_ids
    out: dict[tuple[str, str], Cell] = {}
    from_rows: dict[type, list[str]] = {Answer: [], FictitiousAnswer: []}
    for practice in practices:
        i = index.get(practice.id)
        if practice.id in fictitious:
            from_rows[FictitiousAnswer].append(practice.id)
        elif i is None or not fits:
            from_rows[Answer].append(practice.id)
        else:
            for k, kind in enumerate(COMPANY_KINDS):
                met, rating, mixed = vectors.decode_cell(code[2 * i + k])
                if met is not None:
                    out[(practice.id, kind)] = Cell(practice.id, kind, met, rating, mixed)
    for model, ids in from_rows.items():
        if ids:
            rows = db.session.execute(_PAGE_ANSWERS[model], {"rid": response.id, "ids": ids})
            for pid, kind, met, rating, mixed in rows:
                out[(pid, kind)] = Cell(pid, kind, met, rating, bool(mixed))
    return out


def page_examples(response: Response, practice_ids) -> dict[tuple[str, str | None], str]:
    """The response's free-text examples about some practices (a page's), keyed like
    :func:`examples_by_practice`: one Core query, no ORM objects."""
    rows = db.session.execute(_PAGE_EXAMPLES, {"rid": response.id, "ids": list(practice_ids)})
    return {(pid, kind): text for pid, kind, text in rows}


def answers_by_practice(response: Response) -> dict[tuple[str, str], Answer | FictitiousAnswer]:
    """The response's answers keyed by (practice id, company kind), those about fictitious
    practices included (the respondent sees and reviews them like any other)."""
    out = {}
    for model in (Answer, FictitiousAnswer):
        for a in db.session.scalars(select(model).filter_by(response_id=response.id)):
            out[(a.practice_id, a.company_kind)] = a
    return out


def examples_by_practice(response: Response) -> dict[tuple[str, str | None], str]:
    """The response's free-text examples keyed by (practice id, company kind); the kind is
    None for an example written before there was a box per kind ("not stated")."""
    rows = db.session.scalars(select(PracticeExample).filter_by(response_id=response.id))
    return {(e.practice_id, e.company_kind): e.text for e in rows}


def examples_for_page(
    examples: dict[tuple[str, str | None], str], practice_ids, kinds: tuple[str, ...]
) -> dict[tuple[str, str], str]:
    """The text each example box of a page starts with, keyed by (practice id, kind).

    ``kinds`` are the respondent's kinds in the order the page shows them. An example
    without a kind (from before there was a box per kind) goes into the first shown box
    that has no example of its own, where the respondent sees which kind it is now filed
    under and may move or delete it; saving the page then stores it with that kind.
    """
    boxes = {}
    for pid in practice_ids:
        for kind in kinds:
            if (pid, kind) in examples:
                boxes[(pid, kind)] = examples[(pid, kind)]
        legacy = examples.get((pid, None))
        free = [kind for kind in kinds if (pid, kind) not in boxes]
        if legacy and free:
            boxes[(pid, free[0])] = legacy
    return boxes


def profile_complete(response: Response) -> bool:
    """Whether every required background question is answered, and the block of each kind
    worked in (a draft from before the blocks were asked has to complete them)."""
    return all(getattr(response, q.field) for q in BACKGROUND if q.required) and all(
        getattr(response, q.field) for kind in response.kinds() for q in KIND_BACKGROUND[kind]
    )


def answered(practice: PracticeEntry, answer) -> bool:
    """Whether a draft's stored answer answers the page's question as asked now.

    A 'yes' stored before the 2026-12 scale is not one of today's choices, so the
    respondent is asked again; after 'applied' a rating (or "mixed") is needed.
    """
    if answer is None or answer.met not in {o.code for o in met_options(practice)}:
        return False
    return answer.met != "applied" or answer.rating is not None or bool(answer.rating_mixed)


def incomplete_pages(response: Response, answers=None) -> list[Page]:
    """Practice pages with a question still unanswered (see :func:`answered`) for a kind
    the respondent worked in, in the respondent's order."""
    answers = answers_by_practice(response) if answers is None else answers
    kinds = response.kinds()
    missing = []
    for page in order(response).pages:
        for practice in page.practices:
            if not all(answered(practice, answers.get((practice.id, kind))) for kind in kinds):
                missing.append(page)
                break
    return missing


def timing_flag(response: Response) -> str | None:
    """'too_fast' when the draft's pages were open for less time than a person needs.

    Based on the draft's own ``active_seconds``, so a draft answered in one browser and
    submitted from another through its resume link is judged like any other.
    """
    minimum = current_app.config["MIN_COMPLETION_SECONDS"]
    return "too_fast" if (response.active_seconds or 0) < minimum else None


def submit(response: Response, language: str, quality_flag: str | None = None) -> bool:
    """Make a complete draft final, exactly once.

    The status flips in one conditional UPDATE: of two concurrent submits (a double
    click, a replayed POST, two app instances) only one changes a row; the other
    returns False and stores nothing. A flag already set (the honeypot) is kept, else
    the given one, else :func:`timing_flag`. The quality indicators
    (:func:`survey.paradata.assess`) are stored in the same transaction.
    """
    flag = response.quality_flag or quality_flag or timing_flag(response)
    assessment = paradata.assess(catalog(), response)
    result = db.session.execute(
        update(Response)
        .where(Response.id == response.id, Response.status == "draft")
        .values(
            status="submitted",
            submitted_on=fieldwork.today(),
            updated_on=fieldwork.today(),
            language=language,
            last_page=len(catalog().pages) + 3,
            quality_flag=flag,
            **assessment.columns(),
        )
    )
    if result.rowcount != 1:
        db.session.rollback()
        return False
    paradata.store_page_flags(response.id, assessment)
    db.session.commit()
    return True


def _delete(response: Response, event: str) -> None:
    """Delete a response and everything stored with it, counting ``event`` for its channel
    in the same transaction; then leave no readable trace of it in the database files
    (see :func:`survey.storage.erase_deleted`). An invitation it was started from stays
    used (its ``response_id`` is set to NULL by the database)."""
    if response.channel_id is not None:
        fieldwork.count(response.channel_id, event)
    db.session.delete(response)
    db.session.commit()
    erase_deleted(db.engine)


def withdraw(response: Response) -> None:
    """Delete a response at its respondent's request (counted as 'withdrawn')."""
    _delete(response, "withdrawn")


def screen_out(response: Response) -> None:
    """Delete a draft whose respondent falls in a full quota cell (survey/quotas.py),
    counted as 'screened_out': nothing of theirs is kept."""
    _delete(response, "screened_out")


def purgeable_drafts(ttl_days: int | None = None):
    """The condition on ``response`` of drafts to purge: untouched for longer than the time
    to live, or of a wave closed more than ``WAVE_GRACE_HOURS`` ago."""
    ttl = current_app.config["DRAFT_TTL_DAYS"] if ttl_days is None else ttl_days
    cutoff = fieldwork.today() - dt.timedelta(days=ttl)
    ended = [
        wave.id
        for wave in fieldwork.waves()
        if wave.closes_at is not None and not fieldwork.in_grace(wave)
    ]
    return (Response.status == "draft") & (
        (Response.updated_on < cutoff) | Response.wave_id.in_(ended)
    )


def purge_drafts(ttl_days: int | None = None) -> int:
    """Delete drafts untouched for longer than the time to live, and drafts of waves whose
    close plus grace has passed; count 'purged' per channel; return how many."""
    condition = purgeable_drafts(ttl_days)
    ids = select(Response.id).where(condition)
    for model in (Answer, PracticeExample, FictitiousAnswer, ResponsePage):
        db.session.execute(delete(model).where(model.response_id.in_(ids)))
    table = Response.__table__
    deleted = db.session.execute(
        table.delete().where(condition).returning(table.c.channel_id)
    ).all()
    for channel_id, n in Counter(row[0] for row in deleted).items():
        if channel_id is not None:
            fieldwork.count(channel_id, "purged", by=n)
    db.session.commit()
    if deleted:
        erase_deleted(db.engine)
    return len(deleted)


@dataclass(frozen=True)
class VectorMismatch:
    """A response whose stored answer vector differs from the one its rows give."""

    response_id: int
    stored: str | None
    expected: str
    practice_ids: tuple[str, ...]
    # Practices with answer rows that the layout of the response's catalogue version has no
    # cell for: no vector can hold them, so --repair cannot fix this response.
    outside: tuple[str, ...] = ()

    @property
    def repairable(self) -> bool:
        """Rewriting the vector from the rows makes them agree."""
        return not self.outside

    def describe(self) -> str:
        """One line naming the response and its first differing cells."""
        if self.outside:
            return (
                f"response {self.response_id}: answer rows for {', '.join(self.outside)}, "
                "which its catalogue version does not ask (no vector can hold them)"
            )
        if self.stored is None:
            return f"response {self.response_id}: no vector stored"
        if len(self.stored) != len(self.expected):
            return (
                f"response {self.response_id}: vector has {len(self.stored)} cells, "
                f"its catalogue version has {len(self.expected)}"
            )
        cells = [
            f"{self.practice_ids[i // 2]}/{COMPANY_KINDS[i % 2]} stored {a!r}, rows {b!r}"
            for i, (a, b) in enumerate(zip(self.stored, self.expected, strict=True))
            if a != b
        ]
        more = f" (+{len(cells) - 3} more)" if len(cells) > 3 else ""
        return (
            f"response {self.response_id}: {len(cells)} cell(s) differ: "
            + "; ".join(cells[:3])
            + more
        )


def _driver_rows(statement) -> list[tuple]:
    """All rows of a Core SELECT as the driver's plain tuples, in the session's transaction.

    For the ~100 answer rows per response that :func:`check_vectors` reads: SQLAlchemy's
    result rows (ORM or Core) were half of its time. The selected columns need no type
    processing (strings, small integers, and booleans that :func:`survey.vectors.encode`
    reads with ``bool()``).
    """
    connection = db.session.connection()
    compiled = statement.compile(dialect=connection.dialect)
    params = compiled.construct_params()
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup)
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _recheck(response_id: int) -> VectorMismatch | None:
    """The response's mismatch, read consistently under its row's lock; None if its
    vector matches its rows (or it is gone)."""
    found = db.session.execute(
        select(Response.answer_code, Response.catalog_version_id)
        .where(Response.id == response_id)
        .with_for_update()
    ).one_or_none()
    if found is None:
        return None
    stored, version_id = found
    practice_ids = layout(version_id)
    rows = db.session.execute(select(*ANSWER_CELLS).where(_answer.response_id == response_id)).all()
    expected = vectors.encode(rows, practice_ids)
    outside = tuple(sorted({row[0] for row in rows} - set(practice_ids)))
    if stored == expected and not outside:
        return None
    return VectorMismatch(response_id, stored, expected, practice_ids, outside)


def check_vectors(repair: bool = False, batch: int = 2000) -> Iterator[tuple[int, list]]:
    """Compare every response's stored vector with :func:`survey.vectors.encode` of its
    answer rows, ``batch`` responses at a time (by id, so memory stays flat); yield, per
    batch, how many responses it checked and its :class:`VectorMismatch` list.

    With ``repair`` each batch's mismatching vectors are rewritten from the rows and
    committed (a repaired submitted response changes the data version, as it should:
    what results show may change).
    """
    last = 0
    while True:
        ids = db.session.execute(
            select(Response.id, Response.catalog_version_id, Response.answer_code)
            .where(Response.id > last)
            .order_by(Response.id)
            .limit(batch)
        ).all()
        if not ids:
            db.session.commit()
            return
        rows = defaultdict(list)
        for row in _driver_rows(
            select(_answer.response_id, *ANSWER_CELLS).where(
                _answer.response_id.between(ids[0][0], ids[-1][0])
            )
        ):
            rows[row[0]].append(row)
        suspects = [
            rid
            for rid, version_id, stored in ids
            if stored != vectors.encode((row[1:] for row in rows.get(rid, ())), layout(version_id))
            or {row[1] for row in rows.get(rid, ())} - set(layout(version_id))
        ]
        # Read again under the row's lock (the one every write path takes first): a page
        # saved between the two reads above is no mismatch, and a repair never replaces
        # a newer vector with an older one.
        mismatches = [m for m in map(_recheck, suspects) if m is not None]
        fixable = [m for m in mismatches if m.repairable]
        if repair and fixable:
            db.session.execute(
                update(Response.__table__)
                .where(Response.__table__.c.id == bindparam("rid"))
                .values(answer_code=bindparam("code")),
                [{"rid": m.response_id, "code": m.expected} for m in fixable],
            )
        db.session.commit()  # ends the batch's read snapshot, and writes its repairs
        last = ids[-1][0]
        yield len(ids), mismatches
