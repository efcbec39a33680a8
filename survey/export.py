"""Anonymized export: wide and long CSV, codebook and disclosure report, streamed.

Rows are read with a server-side cursor in ``export_id`` order (a random id, so the
order says nothing about when or in which order people answered) and written as they
are read: memory stays flat however many responses there are.

Answers since 2026-12 are on the applied / existed / no / don't know scale (plus "not
applicable to my role" for practices the catalogue marks with ``functions``); earlier ones
were "met it" yes / no / don't know. The ``met`` columns keep one meaning across both:
the practice existed (1), did not (0), don't know, with "not my role" a code of its own;
the ``applied`` columns say whether it applied to the respondent, "unknown" for a former
"met it". "Mixed / can't say" is a code of the rating columns, never a rating.

Disclosure control (:mod:`survey.anonymize`) is planned on quasi-identifier counts before
the first row is written. It is planned over the real responses alone: demo responses
never count toward k, and a real row comes out of a mixed export exactly as it comes out
of the real-only one (or the mixed export is refused like the real-only one). Demo rows
take the real plan's generalization steps (one coding per column across the file) and
their own local suppression, which never refuses: they protect and endanger no one.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import exists, extract, func, or_, select

from survey import anonymize, paradata, queries
from survey.anonymize import KIND_QUASI_IDENTIFIERS, QUASI_IDENTIFIERS, SUPPRESSED
from survey.catalog import Catalog, versions_by_wording
from survey.extensions import db
from survey.filters import BadQuery, check_names, parse_bool
from survey.models import (
    COMPANY_KINDS,
    Answer,
    CatalogVersion,
    Practice,
    PracticeExample,
    Response,
    ResponsePage,
    Wave,
)
from survey.questions import (
    BACKGROUND,
    KIND_BACKGROUND_BY_FIELD,
    KIND_LABELS,
    LEGACY_YES,
    MET,
    NOT_MY_ROLE,
    RATING,
    RATING_MIXED,
)
from survey.responses import catalog

BACKGROUND_FIELDS = tuple(q.field for q in BACKGROUND)
# Quasi-identifiers stored as columns of the response row, in QUASI_IDENTIFIERS order.
STORED_FIELDS = (*BACKGROUND_FIELDS, *KIND_QUASI_IDENTIFIERS)
# Columns asked since 2026-12 only: empty in earlier responses ("not asked").
ASKED_SINCE_2026_12 = ("job_function", *KIND_BACKGROUND_BY_FIELD)
# The met column: the practice existed (1: applied, existed but not for me, or the former
# "met it"), did not (0), don't know; "not my role" is a code of its own, never a "no".
MET_CODES = {
    "applied": "1",
    "existed": "1",
    "yes": "1",
    "no": "0",
    "dk": "dk",
    NOT_MY_ROLE.code: NOT_MY_ROLE.code,
    "na": "",
}
# The applied column: applied to the respondent (1), existed but not for them (0), unknown
# (the former "met it", before 2026-12); empty for every other answer.
UNKNOWN = "unknown"
APPLIED_CODES = {"applied": "1", "existed": "0", LEGACY_YES.code: UNKNOWN}
# The scale a response's answers were given on, as its answer codes show it (a structural
# quasi-identifier: see survey.anonymize). None: only codes both scales share.
SCALE_CODES = {(True, False): "met", (False, True): "existed_applied", (True, True): "both"}
FORMATS = {"utf8": (",", "utf-8"), "excel": (";", "utf-8-sig")}
FILES = ("responses", "answers_long", "paradata", "codebook", "disclosure_report")
# Query parameters of the export endpoints (``lang``, the interface language, is global).
PARAMETERS = ("file", "format", "k", "include_demo", "include_examples", "confirm_examples")
DEFAULT_K = 5
MAX_K = 50
CHUNK = 1000  # responses per keyset page: 80,000 answer tuples at most in memory
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXAMPLE_COLUMNS = ["practice_id", "company_kind", "text"]

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
URL_RE = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
PHONE_RE = re.compile(r"(?<!\w)\+?\d[\d\s().-]{6,}\d")


def safe_cell(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP CSV injection)."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_START):
        return "'" + text
    return text


def scrub(text: str) -> str:
    """Remove e-mail addresses, URLs and phone numbers from free text."""
    text = EMAIL_RE.sub("[email]", text)
    text = URL_RE.sub("[url]", text)
    return PHONE_RE.sub("[phone]", text)


# Per practice, the columns of each kind in responses.csv, in this order (the kinds
# alternate within each): existed, rating, applied.
WIDE_SUFFIXES = ("", "_rating", "_applied")
KIND_QUESTION = ("Тип компании", "Kind of company")
KIND_VALUES = [(kind, KIND_LABELS[kind].ru, KIND_LABELS[kind].en) for kind in COMPANY_KINDS]


# -- codebook vocabulary: (code, Russian label, English label) -------------------------------
NOT_ASKED_LABELS = (
    "не спрашивали (ответы до декабря 2026 г.)",
    "not asked (responses before December 2026)",
)
NOT_WORKED_LABELS = (
    "не применимо: не работал(а) в компаниях этого типа",
    "not applicable: never worked in this kind of company",
)
SCALE_VALUES = [
    (
        "existed_applied",
        "с декабря 2026 г.: была ли практика и касалась ли она респондента "
        "(касалась меня / была, но не для меня / нет / не знаю; «не относится к моей роли»)",
        "since December 2026: did the practice exist and did it apply to the respondent "
        "(applied to me / existed, not for me / no / don't know; “not applicable to my role”)",
    ),
    (
        "met",
        "до декабря 2026 г.: «Встречали ли вы эту практику?» (да / нет / не знаю)",
        "before December 2026: “Did you meet this practice?” (yes / no / don't know)",
    ),
    (
        "both",
        "часть ответов на каждой из шкал (например, анкета начата до декабря 2026 г. и "
        "закончена после)",
        "some answers on each scale (e.g. started before December 2026 and finished after)",
    ),
    (
        "",
        "не видно по ответам: только «нет», «не знаю» или не применимо (одинаковы на обеих шкалах)",
        "not shown by the answers: only no, don't know or not applicable (alike on both scales)",
    ),
]
# The met columns keep one meaning across both scales: the practice existed there.
MET_QUESTION = (
    f"{MET.ru} (до декабря 2026 г.: «Встречали ли вы эту практику?»)",
    f"{MET.en} (before December 2026: “Did you meet this practice?”)",
)
MET_VALUES = [
    (
        "1",
        "была (касалась меня, или была, но не для меня; до декабря 2026 г. — «встречал(а)»)",
        "existed (applied to me, or existed but not for me; before December 2026: “met it”)",
    ),
    (
        "0",
        "нет, такой не было (до декабря 2026 г. — «не встречал(а)»)",
        "no, it did not exist (before December 2026: “did not meet it”)",
    ),
    ("dk", MET.label("dk", "ru"), MET.label("dk", "en")),
    (
        NOT_MY_ROLE.code,
        f"{NOT_MY_ROLE.ru}: не «нет», не входит ни в одну долю (предлагается только для "
        "практик отдельных функций, с декабря 2026 г.)",
        f"{NOT_MY_ROLE.en}: not a “no”, left out of every share (offered only for "
        "practices of some job functions, since December 2026)",
    ),
    ("", *NOT_WORKED_LABELS),
]
APPLIED_QUESTION = (
    "касалась ли практика респондента лично (из ответа на вопрос «была ли эта практика»)",
    "did the practice apply to the respondent (from the answer to “did this practice exist”)",
)
APPLIED_VALUES = [
    ("1", MET.label("applied", "ru"), MET.label("applied", "en")),
    ("0", MET.label("existed", "ru"), MET.label("existed", "en")),
    (UNKNOWN, LEGACY_YES.ru, LEGACY_YES.en),
    (
        "",
        "не применимо: практики не было, «не знаю», «не относится к моей роли», или не "
        "работал(а) в компаниях этого типа (см. столбец существования практики: met в "
        "answers_long.csv, столбец без суффикса в responses.csv)",
        "not applicable: the practice did not exist, don't know, not applicable to my role, "
        "or never worked in this kind of company (see the existence column: met in "
        "answers_long.csv, the one without a suffix in responses.csv)",
    ),
]
RATING_TYPE = "integer 1-5, or the code mixed"
RATING_VALUES = [
    *((o.code, o.ru, o.en) for o in RATING.options),
    (
        RATING_MIXED.code,
        f"{RATING_MIXED.ru} — не точка шкалы 1–5, не входит в оценки (с декабря 2026 г.)",
        f"{RATING_MIXED.en} — not a point of the 1-5 scale, never in a rating statistic "
        "(since December 2026)",
    ),
    (
        "",
        "нет оценки (практика не касалась респондента, её не было, или не применимо)",
        "no rating (the practice did not apply to the respondent, did not exist, or n/a)",
    ),
]


def background_values(question, suppressed) -> list[tuple[str, str, str]]:
    """Codebook values of a background column: its options, their generalized codes, what
    an empty cell means, and the suppressed code."""
    values = [(o.code, o.ru, o.en) for o in question.options]
    for code, (ru, en) in anonymize.GENERALIZED_LABELS.get(question.field, {}).items():
        values.append((code, ru + " (укрупнено)", en + " (generalized)"))
    empty = []
    if question.field in KIND_BACKGROUND_BY_FIELD:
        empty.append(NOT_WORKED_LABELS)
    if question.field in ASKED_SINCE_2026_12:
        empty.append(NOT_ASKED_LABELS)
    if not question.required:
        empty.append(("нет ответа", "not answered"))
    if empty:
        values.append(("", "; ".join(ru for ru, _ in empty), "; ".join(en for _, en in empty)))
    values.append(suppressed)
    return values


class ExportRequestError(ValueError):
    """The export request itself is wrong (unknown or repeated parameter, a value out of
    range, unknown file, examples without confirmation)."""


def min_k() -> int:
    """The smallest k an export may use: the configured ``EXPORT_MIN_K`` (never below 2)."""
    return max(2, int(current_app.config.get("EXPORT_MIN_K", DEFAULT_K)))


def default_k() -> int:
    """The k of an export that does not name one: 5, or the floor if that is higher."""
    return max(DEFAULT_K, min_k())


def check_k(k) -> int:
    """``k`` as an integer within [EXPORT_MIN_K, 50], else :class:`ExportRequestError`."""
    low = min_k()
    text = str(k).strip()
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= MAX_K:
        raise ExportRequestError(
            _(
                "The parameter “k” must be a whole number from %(low)d to %(high)d "
                "(the smallest k this server allows is %(low)d), not “%(value)s”.",
                low=low,
                high=MAX_K,
                value=text[:20],
            )
        )
    return int(text)


def bad_parameter(exc: BadQuery) -> ExportRequestError:
    """The request error for a parameter :mod:`survey.filters` refused."""
    return ExportRequestError(
        _("The parameter “%(name)s” is not valid: %(reason)s.", name=exc.param, reason=exc.reason)
    )


@dataclass(frozen=True)
class ExportOptions:
    """What a researcher asked for."""

    include_demo: bool = False
    fmt: str = "utf8"
    k: int = DEFAULT_K
    max_suppressed_share: float = 0.1
    include_examples: bool = False

    @classmethod
    def from_mapping(cls, args) -> ExportOptions:
        """Options from query parameters. An unknown or repeated parameter name, or a value
        that cannot be honoured, is an :class:`ExportRequestError` naming it: nothing is
        silently ignored, clamped or replaced by a default."""
        try:
            check_names(args, PARAMETERS)
            fmt = args.get("format") or "utf8"
            if fmt not in FORMATS:
                raise BadQuery("format", f"expected one of {', '.join(FORMATS)}")
            include_demo = parse_bool("include_demo", args.get("include_demo"))
            include_examples = parse_bool("include_examples", args.get("include_examples"))
        except BadQuery as exc:
            raise bad_parameter(exc) from exc
        k = args.get("k")
        return cls(
            include_demo=include_demo,
            fmt=fmt,
            k=default_k() if k is None or k == "" else check_k(k),
            max_suppressed_share=current_app.config.get("EXPORT_MAX_SUPPRESSED_SHARE", 0.1),
            include_examples=include_examples,
        )

    def file_names(self) -> list[str]:
        """The files of an export with these options."""
        return [*FILES, *(["examples"] if self.include_examples else [])]


class Export:
    """One export: the population, the disclosure plan, and writers for every file."""

    def __init__(self, options: ExportOptions):
        check_k(options.k)  # the floor holds for every caller (views, API, CLI, scripts)
        self.options = options
        self.catalog: Catalog = catalog()
        self.population = queries.population(options.include_demo)
        self.conditions = queries.response_conditions(
            queries.Segment(include_demo=options.include_demo), self.population
        )
        self.waves = {
            wave_id: sys.intern(code)
            for wave_id, code in db.session.execute(select(Wave.id, Wave.code))
        }
        real, demo = self._qi_counts()
        # k is planned over the real responses alone; a demo-only study (no real response
        # yet) is planned like a real one, so that it exports as a real one would.
        self.plan = anonymize.plan(
            real if self.population.use_real else demo,
            QUASI_IDENTIFIERS,
            k=options.k,
            max_suppressed_share=options.max_suppressed_share,
        )
        self.demo_plan = None
        if self.population.use_real and self.population.use_demo:
            self.demo_plan = anonymize.plan(
                demo,
                QUASI_IDENTIFIERS,
                k=options.k,
                max_suppressed_share=1.0,  # synthetic rows never refuse a real release
                level=self.plan.level,  # coded like the real rows
            )
        self.practice_ids = self._practice_ids()

    @property
    def with_demo_column(self) -> bool:
        """Demo responses are in the file: mark each row."""
        return self.population.use_demo

    @property
    def records(self) -> int:
        """Responses in the files, real and demo."""
        return self.plan.records + (self.demo_plan.records if self.demo_plan else 0)

    def _key(self, wave_id, month: str, language: str, legacy, current, stored) -> tuple:
        """A response's raw quasi-identifier combination, in QUASI_IDENTIFIERS order.

        ``legacy`` and ``current``: whether it has answers only the former scale has ("met
        it") and answers only the scale since 2026-12 has; ``stored``: the values of
        STORED_FIELDS."""
        values = dict(zip(STORED_FIELDS, stored, strict=True))
        values.update(
            wave=self.waves.get(wave_id),
            submitted_month=month,
            language=language,
            answer_scale=SCALE_CODES.get((bool(legacy), bool(current))),
        )
        return tuple(values[name] for name in QUASI_IDENTIFIERS)

    @staticmethod
    def _scale_columns() -> list:
        """Per response: it has a former "met it" answer; it has an answer only the scale
        since 2026-12 has (applied, existed, not my role, or a "mixed" rating)."""
        own = Answer.response_id == Response.id
        legacy = exists().where(own, Answer.met == LEGACY_YES.code)
        current = exists().where(
            own,
            or_(
                Answer.met.in_(("applied", "existed", NOT_MY_ROLE.code)),
                Answer.rating_mixed.is_(True),
            ),
        )
        return [legacy.label("legacy"), current.label("current")]

    def _qi_counts(self) -> tuple[dict[tuple, int], dict[tuple, int]]:
        """Raw quasi-identifier combinations and their counts: (real, demo)."""
        year = extract("year", Response.submitted_on).label("y")
        month = extract("month", Response.submitted_on).label("m")
        stored = [getattr(Response, name) for name in STORED_FIELDS]
        per_response = (
            select(
                Response.is_demo,
                Response.wave_id,
                year,
                month,
                Response.language,
                *self._scale_columns(),
                *stored,
            )
            .where(*self.conditions)
            .cte("per_response")
        )
        if _materializes():
            # Worked out once per response: SQLite would otherwise work out the correlated
            # subqueries twice, for the grouping and for the result.
            per_response = per_response.prefix_with("MATERIALIZED")
        columns = list(per_response.c)
        rows = db.session.execute(select(*columns, func.count()).group_by(*columns)).all()
        counts: dict[bool, dict[tuple, int]] = {False: {}, True: {}}
        for is_demo, wave_id, y, m, language, legacy, current, *rest, n in rows:
            # Interned codes: tens of thousands of combinations share a few dozen strings.
            codes = [None if v is None else sys.intern(v) for v in rest]
            month_code = sys.intern(f"{int(y):04d}-{int(m):02d}")
            key = self._key(wave_id, month_code, language, legacy, current, codes)
            target = counts[bool(is_demo)]
            target[key] = target.get(key, 0) + n
        return counts[False], counts[True]

    def _practice_ids(self) -> list[str]:
        """Catalogue order first; then any practice answered under an older catalogue."""
        ids = [p.id for p in self.catalog.practices]
        older = db.session.scalars(
            select(Practice.id).where(Practice.id.not_in(ids)).order_by(Practice.position)
        ).all()
        return ids + list(older)

    def _practice_names(self) -> list[tuple[str, str, str]]:
        """(id, Russian name, English name) of every practice column, in column order;
        practices retired from the catalogue take their names from the database."""
        names = {p.id: (p.id, p.name.ru, p.name.en) for p in self.catalog.practices}
        older = [pid for pid in self.practice_ids if pid not in names]
        if older:
            rows = db.session.execute(
                select(Practice.id, Practice.name_ru, Practice.name_en).where(
                    Practice.id.in_(older)
                )
            )
            names.update({pid: (pid, ru, en) for pid, ru, en in rows})
        return [names[pid] for pid in self.practice_ids]

    # -- rows ------------------------------------------------------------------------------
    def _chunks(self) -> Iterator[list]:
        """Responses in random-id order, a chunk at a time (keyset pagination on the
        unique ``export_id`` index: no sort, no long-lived cursor, flat memory)."""
        columns = [getattr(Response, name) for name in STORED_FIELDS]
        order = Response.export_id
        if db.session.get_bind().dialect.name == "postgresql":
            order = Response.export_id.collate("C")  # byte order, as Python compares
        last = ""
        while True:
            rows = (
                db.session.connection()
                .execute(
                    select(
                        Response.id,
                        Response.export_id,
                        Response.wave_id,
                        Response.submitted_on,
                        Response.language,
                        Response.is_demo,
                        *columns,
                    )
                    .where(*self.conditions, order > last)
                    .order_by(order)
                    .limit(CHUNK)
                )
                .all()
            )
            if not rows:
                return
            yield rows
            last = rows[-1].export_id
            db.session.rollback()  # end the read transaction between chunks

    def _answers_of(self, ids: list[int]) -> dict[int, list[tuple]]:
        """Answers of a chunk of responses: response id -> [(practice, kind, met code,
        rating cell, applied code)], as released (see MET_CODES and APPLIED_CODES)."""
        found: dict[int, list[tuple]] = {i: [] for i in ids}
        # Core execution on the session's connection: the ORM's result processing was a
        # fifth of the export's time, for plain tuples that need none of it.
        rows = db.session.connection().execute(
            select(
                Answer.response_id,
                Answer.practice_id,
                Answer.company_kind,
                Answer.met,
                Answer.rating,
                Answer.rating_mixed,
            ).where(Answer.response_id.in_(ids))
        )
        for rid, pid, kind, met, rating, mixed in rows:
            cell = RATING_MIXED.code if mixed else ("" if rating is None else str(rating))
            found[rid].append((pid, kind, MET_CODES[met], cell, APPLIED_CODES.get(met, "")))
        return found

    def _scales_of(self, ids: list[int]) -> dict[int, tuple[bool, bool]]:
        """The answer-scale flags of a chunk of responses (see :meth:`_scale_columns`).

        Asked apart from :meth:`_chunks`, by id: in the keyset query SQLite would work out
        the correlated subqueries for every remaining row before sorting, each chunk."""
        rows = db.session.connection().execute(
            select(Response.id, *self._scale_columns()).where(Response.id.in_(ids))
        )
        return {rid: (bool(legacy), bool(current)) for rid, legacy, current in rows}

    def _released(self, response, scales: dict[int, tuple[bool, bool]]) -> tuple:
        """The released quasi-identifiers of a response row from :meth:`_chunks`, given the
        chunk's :meth:`_scales_of`."""
        key = self._key(
            response.wave_id,
            response.submitted_on.strftime("%Y-%m"),
            response.language,
            *scales[response.id],
            response[6:],
        )
        plan = self.demo_plan if response.is_demo and self.demo_plan else self.plan
        return plan.mapping[key]

    def header(self) -> list[str]:
        """Columns of responses.csv."""
        head = ["respondent_id", *QUASI_IDENTIFIERS]
        if self.with_demo_column:
            head.append("is_demo")
        for pid in self.practice_ids:
            head += [f"{pid}__{kind}{suffix}" for suffix in WIDE_SUFFIXES for kind in COMPANY_KINDS]
        return head

    def wide_rows(self) -> Iterator[list[str]]:
        """responses.csv rows: one per response, built from its long answers."""
        slot = {pid: i for i, pid in enumerate(self.practice_ids)}
        blank = self.plan.blank
        width = len(WIDE_SUFFIXES) * len(COMPANY_KINDS)
        withheld = [SUPPRESSED] * (width * len(self.practice_ids))
        for chunk in self._chunks():
            ids = [r.id for r in chunk]
            answers, scales = self._answers_of(ids), self._scales_of(ids)
            for response in chunk:
                released = self._released(response, scales)
                if released == blank:  # fully suppressed: no answer pattern either
                    cells = withheld
                else:
                    cells = [""] * (width * len(self.practice_ids))
                    for pid, kind, met, rating, applied in answers[response.id]:
                        base = width * slot[pid] + (0 if kind == "ru" else 1)
                        cells[base] = met
                        cells[base + 2] = rating
                        cells[base + 4] = applied
                row = [response.export_id, *(safe_cell(v) for v in released)]
                if self.with_demo_column:
                    row.append("1" if response.is_demo else "0")
                yield row + cells

    def long_header(self) -> list[str]:
        """Columns of answers_long.csv."""
        head = ["respondent_id", "practice_id", "company_kind", "met", "rating", "applied"]
        return head + (["is_demo"] if self.with_demo_column else [])

    def long_rows(self) -> Iterator[list[str]]:
        """answers_long.csv rows, practices in catalogue order, Russian kind first."""
        position = {pid: i for i, pid in enumerate(self.practice_ids)}
        blank = self.plan.blank
        # A fully suppressed response: one row per practice and kind, every cell suppressed,
        # whatever it answered (the rows present would otherwise tell its kinds apart).
        withheld = [(pid, kind) for pid in self.practice_ids for kind in COMPANY_KINDS]
        for chunk in self._chunks():
            ids = [r.id for r in chunk]
            answers, scales = self._answers_of(ids), self._scales_of(ids)
            for response in chunk:
                demo = ["1" if response.is_demo else "0"] if self.with_demo_column else []
                if self._released(response, scales) == blank:
                    cells = (SUPPRESSED, SUPPRESSED, SUPPRESSED)
                    for pid, kind in withheld:
                        yield [response.export_id, pid, kind, *cells, *demo]
                    continue
                ordered = sorted(answers[response.id], key=lambda a: (position[a[0]], a[1] != "ru"))
                for pid, kind, met, rating, applied in ordered:
                    yield [response.export_id, pid, kind, met, rating, applied, *demo]

    # -- paradata ----------------------------------------------------------------------------
    # One row per response, keyed by the same random respondent_id: the respondent's own
    # question order, the seconds per page IN BANDS (paradata.PAGE_BANDS: exact durations
    # are not quasi-identifiers anyone knows, but eight of them make a near-unique vector,
    # and the bands keep what an analysis of timing needs; the speeding flags are computed
    # on the exact seconds), and the quality indicators. A fully suppressed response has
    # every cell suppressed, like its answers. The fictitious practice appears only as the
    # indicator fictitious_claimed, never as a column of its own. The language of each
    # answer page is released only as language_mixed (yes/no): the release's language
    # column is already a quasi-identifier planned for k, and which pages were answered in
    # which language would be a near-unique pattern among the few who switch.
    PARADATA_FLAGS = ("fictitious_claimed", "straightlined_pages", "speeding_pages", "low_quality")

    def paradata_header(self) -> list[str]:
        """Columns of paradata.csv."""
        head = ["respondent_id", *(["is_demo"] if self.with_demo_column else [])]
        head += ["first_kind", "total_seconds", *self.PARADATA_FLAGS, "language_mixed"]
        head.append("background_seconds")
        for page in self.catalog.pages:
            head += [f"page_{page.key}__{name}" for name in self._PAGE_COLUMNS]
        for practice in self.catalog.practices:
            head += [f"{practice.id}__page_position", f"{practice.id}__item_position"]
        return head

    _PAGE_COLUMNS = ("position", "seconds", "straightlining", "speeding")

    def _paradata_of(self, ids: list[int]) -> tuple[dict, dict]:
        """Order, totals and indicators by response id, with the set of languages its answer
        pages were saved in last; page rows by (response id, page)."""
        rows = db.session.connection().execute(
            select(
                Response.id,
                Response.question_order,
                Response.active_seconds,
                *(getattr(Response, name) for name in self.PARADATA_FLAGS),
            ).where(Response.id.in_(ids))
        )
        languages: dict[int, set[str]] = {i: set() for i in ids}
        by_page = {}
        for rid, page, seconds, flat, fast, language in db.session.connection().execute(
            select(
                ResponsePage.response_id,
                ResponsePage.page,
                ResponsePage.seconds,
                ResponsePage.straightlining,
                ResponsePage.speeding,
                ResponsePage.language,
            ).where(ResponsePage.response_id.in_(ids))
        ):
            by_page[(rid, page)] = (seconds, flat, fast)
            if language:
                languages[rid].add(language)
        own = {row[0]: (*row[1:], languages[row[0]]) for row in rows}
        return own, by_page

    def paradata_rows(self) -> Iterator[list[str]]:
        """paradata.csv rows, in the responses' random-id order."""
        blank = self.plan.blank
        width = len(self.paradata_header()) - 1 - (1 if self.with_demo_column else 0)
        withheld = [SUPPRESSED] * width
        for chunk in self._chunks():
            ids = [r.id for r in chunk]
            (own, pages), scales = self._paradata_of(ids), self._scales_of(ids)
            for response in chunk:
                demo = ["1" if response.is_demo else "0"] if self.with_demo_column else []
                if self._released(response, scales) == blank:
                    yield [response.export_id, *demo, *withheld]
                    continue
                yield [response.export_id, *demo, *self._paradata_cells(response, own, pages)]

    def _paradata_cells(self, response, own: dict, pages: dict) -> list[str]:
        rid = response.id
        stored, total, *flags, languages = own[rid]
        order = paradata.resolve(self.catalog, stored)
        total = None if response.is_demo else total  # demo rows were never timed
        cells = [order.first_kind, paradata.band(total, paradata.TOTAL_BANDS)]
        cells += [_code(flag) for flag in flags]
        cells.append(_code(len(languages) > 1) if languages else "")
        background = pages.get((rid, paradata.BACKGROUND_PAGE), (None, None, None))
        cells.append(paradata.band(background[0], paradata.PAGE_BANDS))
        position = {page.key: i for i, page in enumerate(order.pages, 1)}
        for page in self.catalog.pages:
            seconds, flat, fast = pages.get((rid, page.key), (None, None, None))
            cells += [
                str(position[page.key]),
                paradata.band(seconds, paradata.PAGE_BANDS),
                _code(flat),
                _code(fast),
            ]
        at = paradata.answer_positions(self.catalog, stored)
        for practice in self.catalog.practices:
            page_at, item_at = at[practice.id]
            cells += [str(page_at), str(item_at)]
        return cells

    def paradata_codebook(self, row) -> Iterator[list[str]]:
        """Codebook rows of paradata.csv (``row`` is :meth:`codebook_rows`' row builder)."""
        file = "paradata.csv"
        suppressed = (SUPPRESSED, "скрыто для анонимности", "suppressed for anonymity")
        flag = [("1", "да", "yes"), ("0", "нет", "no"), ("", "не оценено", "not assessed")]
        unknown = ("", "неизвестно", "unknown")

        def bands(bounds):
            return [(b, f"{b} с", f"{b} s") for b in paradata.band_labels(bounds)]

        yield row(
            file,
            "first_kind",
            "categorical",
            [*KIND_VALUES, suppressed],
            "Чей столбец (тип компании) показывался первым",
            "Which kind of company's column was shown first",
        )
        yield row(
            file,
            "total_seconds",
            "band of seconds",
            [*bands(paradata.TOTAL_BANDS), unknown, suppressed],
            "Время на страницах анкеты (секунды, интервал; каждая страница не более 30 минут)",
            "Time on the questionnaire's pages (seconds, band; each page at most 30 minutes)",
        )
        texts = {
            "fictitious_claimed": (
                "Ответил(а), что встречал(а) вымышленную практику (завышение)",
                "Claimed to have met the fictitious practice (over-claiming)",
                flag,
            ),
            "straightlined_pages": (
                "Число страниц с одинаковыми ответами на все практики (для какого-либо типа)",
                "Pages with identical answers to every practice (for some kind)",
                [("", "не оценено", "not assessed")],
            ),
            "speeding_pages": (
                "Число страниц, пройденных быстрее 30% медианного времени страницы",
                "Pages answered in under 30% of the page's median time",
                [("", "не оценено", "not assessed")],
            ),
            "low_quality": (
                "Низкое качество: завышение, или одинаковые ответы либо спешка на половине страниц",
                "Low quality: over-claiming, or straightlining or speeding on half of the pages",
                flag,
            ),
        }
        for name, (ru, en, values) in texts.items():
            kind = "0/1" if name in ("fictitious_claimed", "low_quality") else "integer"
            yield row(file, name, kind, [*values, suppressed], ru, en)
        yield row(
            file,
            "language_mixed",
            "0/1",
            [
                ("1", "да: страницы сохранены на разных языках", "yes: pages saved in both"),
                ("0", "нет: все страницы на одном языке", "no: every page in one language"),
                (
                    "",
                    "неизвестно (сохранено до записи языка страниц, или демо)",
                    "unknown (saved before page languages were recorded, or demo)",
                ),
                suppressed,
            ],
            "Ответные страницы (опыт работы и практики) сохранены на разных языках "
            "интерфейса; язык каждой страницы не публикуется",
            "The answer pages (background and practices) were saved in different interface "
            "languages; the language of each page is not released",
        )
        yield row(
            file,
            "background_seconds",
            "band of seconds",
            [*bands(paradata.PAGE_BANDS), unknown, suppressed],
            "Время на странице «Опыт работы» (секунды, интервал)",
            "Time on the work-background page (seconds, band)",
        )
        for page in self.catalog.pages:
            name = page.category.name
            yield row(
                file,
                f"page_{page.key}__position",
                "integer",
                [suppressed],
                f"Место страницы «{name.ru}» в порядке этого респондента (1 = первая)",
                f"Position of the page “{name.en}” in this respondent's order (1 = first)",
            )
            yield row(
                file,
                f"page_{page.key}__seconds",
                "band of seconds",
                [*bands(paradata.PAGE_BANDS), unknown, suppressed],
                f"Время на странице «{name.ru}» (секунды, интервал)",
                f"Time on the page “{name.en}” (seconds, band)",
            )
            yield row(
                file,
                f"page_{page.key}__straightlining",
                "0/1",
                [*flag, suppressed],
                f"Одинаковые ответы на все практики страницы «{name.ru}»",
                f"Identical answers to every practice of the page “{name.en}”",
            )
            yield row(
                file,
                f"page_{page.key}__speeding",
                "0/1",
                [
                    ("1", "да", "yes"),
                    ("0", "нет", "no"),
                    ("", "не оценено (мало данных или время неизвестно)", "not judged"),
                    suppressed,
                ],
                f"Страница «{name.ru}» пройдена быстрее 30% её медианного времени",
                f"Page “{name.en}” answered in under 30% of its median time",
            )
        for practice in self.catalog.practices:
            yield row(
                file,
                f"{practice.id}__page_position",
                "integer",
                [suppressed],
                f"{practice.name.ru}: место её страницы в порядке респондента",
                f"{practice.name.en}: position of its page in the respondent's order",
            )
            yield row(
                file,
                f"{practice.id}__item_position",
                "integer",
                [suppressed],
                f"{practice.name.ru}: место на своей странице (1 = первая)",
                f"{practice.name.en}: position on its page (1 = first)",
            )

    def example_rows(self) -> Iterator[list[str]]:
        """examples.csv rows: practice, company kind (empty: not stated) and scrubbed text
        only, no respondent id, in the responses' random-id order (the database's own
        order would follow the row ids, which grow with time)."""
        for chunk in self._chunks():
            order = {r.id: i for i, r in enumerate(chunk)}
            rows = db.session.execute(
                select(
                    PracticeExample.response_id,
                    PracticeExample.practice_id,
                    PracticeExample.company_kind,
                    PracticeExample.text,
                ).where(PracticeExample.response_id.in_(list(order)))
            ).all()
            rank = {kind: i for i, kind in enumerate(COMPANY_KINDS)}  # not stated: last
            keyed = sorted(
                (order[rid], pid, rank.get(kind, len(rank)), kind or "", text)
                for rid, pid, kind, text in rows
            )
            for _at, pid, _rank, kind, text in keyed:
                yield [pid, kind, scrub(text)]

    # -- codebook and report ---------------------------------------------------------------
    def codebook_rows(self) -> Iterator[list[str]]:
        """One row per column of both files: type, values with labels, question text.

        ``catalog_version`` is the version served now; ``asked_in_versions`` says, for a
        practice column, every catalogue version that asked it with this very wording (a
        practice id keeps one wording), i.e. the versions the column pools.
        """
        version = self.catalog.version
        asked_in = self._asked_in_versions()
        yield [
            "file",
            "column",
            "type",
            "values",
            "labels_ru",
            "labels_en",
            "question_ru",
            "question_en",
            "catalog_version",
            "asked_in_versions",
        ]

        def row(file, column, kind, values, question_ru, question_en, versions=""):
            codes = "|".join(value[0] for value in values)
            ru = "; ".join(f"{v or '(empty)'} = {r}" for v, r, _en in values)
            en = "; ".join(f"{v or '(empty)'} = {e}" for v, _ru, e in values)
            return [file, column, kind, codes, ru, en, question_ru, question_en, version, versions]

        both = ("responses.csv", "answers_long.csv")
        yield row(
            "responses.csv; answers_long.csv",
            "respondent_id",
            "string",
            [],
            "Случайный идентификатор ответа (не связан с базой данных)",
            "Random response identifier (not derived from any database id)",
        )
        suppressed = (SUPPRESSED, "скрыто для анонимности", "suppressed for anonymity")
        generalized_any = (anonymize.ANY, *anonymize.ANY_LABEL)
        waves = db.session.execute(
            select(Wave.code, Wave.name_ru, Wave.name_en).order_by(Wave.id)
        ).all()
        yield row(
            "responses.csv",
            "wave",
            "categorical",
            [*(tuple(w) for w in waves), generalized_any, suppressed],
            "Волна опроса",
            "Survey wave",
        )
        months = sorted(
            set().union(*(p.released_codes("submitted_month") for p in self._plans()))
            - {SUPPRESSED}
        )
        yield row(
            "responses.csv",
            "submitted_month",
            "string (YYYY-MM; YYYY-Qn or YYYY when generalized)",
            [*((m, *anonymize.month_label(m)) for m in months), suppressed],
            "Месяц отправки анкеты (квартал или год, если укрупнено)",
            "Month the response was submitted (quarter or year when generalized)",
        )
        yield row(
            "responses.csv",
            "language",
            "categorical",
            [("ru", "русский", "Russian"), ("en", "английский", "English")]
            + [generalized_any, suppressed],
            "Язык анкеты",
            "Questionnaire language",
        )
        yield row(
            "responses.csv",
            "answer_scale",
            "categorical",
            [*SCALE_VALUES, suppressed],
            "Шкала, на которой даны ответы о практиках (видна по кодам ответов)",
            "The scale the practice answers were given on (shown by the answer codes)",
        )
        for question in BACKGROUND:
            yield row(
                "responses.csv",
                question.field,
                "categorical",
                background_values(question, suppressed),
                question.ru,
                question.en,
            )
        for field in KIND_QUASI_IDENTIFIERS:
            question = KIND_BACKGROUND_BY_FIELD[field]
            yield row(
                "responses.csv",
                field,
                "categorical",
                background_values(question, suppressed),
                question.ru,
                question.en,
            )
        if self.with_demo_column:
            yield row(
                "; ".join(both),
                "is_demo",
                "0/1",
                [
                    ("1", "синтетический демо-ответ", "synthetic demo response"),
                    ("0", "реальный ответ", "real response"),
                ],
                "Демо-данные",
                "Demo data",
            )
        withheld = (
            SUPPRESSED,
            "скрыто для анонимности: все ответы этой анкеты скрыты вместе с её фоном",
            "suppressed for anonymity: every answer of this response is withheld with "
            "its background",
        )
        met_values = [*MET_VALUES, withheld]
        rating_values = [*RATING_VALUES, withheld]
        applied_values = [*APPLIED_VALUES, withheld]
        met_ru, met_en = MET_QUESTION
        applied_ru, applied_en = APPLIED_QUESTION
        names = self._practice_names()
        for pid, name_ru, name_en in names:
            versions = "; ".join(asked_in.get(pid, ()))
            for suffix in WIDE_SUFFIXES:
                for kind in COMPANY_KINDS:
                    where = KIND_LABELS[kind]
                    column_type, values, question_ru, question_en = {
                        "": ("categorical", met_values, met_ru, met_en),
                        "_rating": (RATING_TYPE, rating_values, RATING.ru, RATING.en),
                        "_applied": ("categorical", applied_values, applied_ru, applied_en),
                    }[suffix]
                    yield row(
                        "responses.csv",
                        f"{pid}__{kind}{suffix}",
                        column_type,
                        values,
                        f"{name_ru}: {question_ru} ({where.ru})",
                        f"{name_en}: {question_en} ({where.en})",
                        versions,
                    )
        yield row(
            "answers_long.csv",
            "practice_id",
            "string",
            names,
            "Практика (идентификатор каталога)",
            "Practice (catalogue id)",
        )
        yield row("answers_long.csv", "company_kind", "categorical", KIND_VALUES, *KIND_QUESTION)
        yield row("answers_long.csv", "met", "categorical", met_values, met_ru, met_en)
        yield row("answers_long.csv", "rating", RATING_TYPE, rating_values, RATING.ru, RATING.en)
        yield row(
            "answers_long.csv", "applied", "categorical", applied_values, applied_ru, applied_en
        )
        yield from self.paradata_codebook(row)
        if self.options.include_examples:
            yield row("examples.csv", "practice_id", "string", [], "Практика", "Practice")
            yield row(
                "examples.csv",
                "company_kind",
                "categorical",
                [
                    *KIND_VALUES,
                    (
                        "",
                        "не указан (пример написан до появления поля для каждого типа)",
                        "not stated (written before there was a box per kind)",
                    ),
                ],
                "Тип компании, о котором пример",
                "Kind of company the example is about",
            )
            yield row(
                "examples.csv",
                "text",
                "free text",
                [],
                "Пример (e-mail, телефоны и ссылки удалены)",
                "Example (e-mail addresses, phone numbers and URLs removed)",
            )

    def _asked_in_versions(self) -> dict[str, tuple[str, ...]]:
        """Per practice id, the catalogue versions that asked it with its latest wording,
        from the stored version snapshots (and the served catalogue, if not yet stored)."""
        rows = db.session.execute(
            select(
                CatalogVersion.version, CatalogVersion.checksum, CatalogVersion.content
            ).order_by(CatalogVersion.id)
        ).all()
        snapshots = [(v, content) for v, _checksum, content in rows]
        if self.catalog.checksum not in {checksum for _v, checksum, _c in rows}:
            snapshots.append((self.catalog.version, self.catalog.snapshot()))
        return versions_by_wording(snapshots)

    def _plans(self) -> list[anonymize.DisclosurePlan]:
        return [self.plan, *([self.demo_plan] if self.demo_plan else [])]

    def disclosure_report(self) -> dict:
        """The disclosure-control report of this export."""
        report = self.plan.report()
        planned_over = "real responses only" if self.population.use_real else "demo responses"
        report.update(
            {
                "catalog_version": self.catalog.version,
                "demo_data_included": self.population.use_demo,
                "real_data_included": self.population.use_real,
                "k_planned_over": planned_over,
                "free_text_included": self.options.include_examples,
                "row_order": "by random respondent_id (not by time or database id)",
            }
        )
        if self.demo_plan:
            demo = self.demo_plan
            report["demo"] = {
                "records": demo.records,
                "coding": "the generalization steps of the real responses, then local "
                "suppression among the demo responses alone; demo responses never count "
                "toward the k of real ones",
                "k_achieved": demo.smallest_class(),
                "suppressed_values": demo.suppressed_values,
                "suppressed_records": demo.suppressed_records,
                "fully_suppressed_records": demo.fully_suppressed_records,
            }
        return report

    # -- serialisation ---------------------------------------------------------------------
    def csv_chunks(self, name: str) -> Iterator[bytes]:
        """A file's bytes in chunks, for streaming responses and for the zip."""
        if name == "disclosure_report":
            yield json.dumps(self.disclosure_report(), ensure_ascii=False, indent=2).encode()
            return
        delimiter, encoding = FORMATS[self.options.fmt]
        # Coded files hold only our own codes and random ids; text files are neutralised.
        neutralise = name in ("codebook", "examples")
        rows = {
            "responses": lambda: _prepend(self.header(), self.wide_rows()),
            "answers_long": lambda: _prepend(self.long_header(), self.long_rows()),
            "paradata": lambda: _prepend(self.paradata_header(), self.paradata_rows()),
            "codebook": self.codebook_rows,
            "examples": lambda: _prepend(EXAMPLE_COLUMNS, self.example_rows()),
        }[name]()
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
        if encoding == "utf-8-sig":
            yield "\ufeff".encode()
        for i, row in enumerate(rows, 1):
            writer.writerow([safe_cell(v) for v in row] if neutralise else row)
            if i % 2000 == 0:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode("utf-8")

    def file_names(self) -> list[str]:
        """The files of this export."""
        return self.options.file_names()

    def zip_to(self, fileobj) -> None:
        """Write every file into one zip archive."""
        with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in self.file_names():
                ext = "json" if name == "disclosure_report" else "csv"
                with archive.open(f"{name}.{ext}", "w", force_zip64=True) as member:
                    for chunk in self.csv_chunks(name):
                        member.write(chunk)

    def zip_file(self):
        """The zip in a temporary file (spills to disk above 8 MiB), rewound."""
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        self.zip_to(spool)
        spool.seek(0)
        return spool


def _materializes() -> bool:
    """Whether the database takes ``WITH ... AS MATERIALIZED`` (SQLite 3.35+, PostgreSQL
    12+; earlier PostgreSQL materializes every CTE anyway)."""
    dialect = db.session.get_bind().dialect
    version = dialect.server_version_info or ()
    minimum = {"sqlite": (3, 35), "postgresql": (12,)}.get(dialect.name)
    return minimum is not None and tuple(version) >= minimum


def _code(flag) -> str:
    """A stored indicator as a CSV cell: 1/0 for booleans, the count for integers, empty
    when not assessed."""
    if flag is None:
        return ""
    if isinstance(flag, bool):
        return "1" if flag else "0"
    return str(int(flag))


def _prepend(head, rows):
    yield head
    yield from rows


def file_label(name: str) -> str:
    """The download file name of an export part."""
    return f"{name}.json" if name == "disclosure_report" else f"{name}.csv"


def download(args, name: str | None = None):
    """A Flask response with the requested export file (or the zip), streamed.

    ``args`` are the request's query parameters (a MultiDict, so that a repeated name is
    seen); ``name`` is the file when the URL path carries it (then ``file`` may not also
    be given). Raises :class:`ExportRequestError` for a bad request and
    :class:`survey.anonymize.ExportRefused` when a safe release is not possible.
    """
    from flask import Response as FlaskResponse
    from flask import send_file, stream_with_context

    options = ExportOptions.from_mapping(args)
    if name is not None and "file" in args:
        raise bad_parameter(BadQuery("file", "the file is already named in the URL path"))
    name = name if name is not None else args.get("file") or "zip"
    try:
        confirmed = parse_bool("confirm_examples", args.get("confirm_examples"))
    except BadQuery as exc:
        raise bad_parameter(exc) from exc
    if options.include_examples and not confirmed:
        raise ExportRequestError(
            _("Free-text examples need confirm_examples=1: they may contain personal details.")
        )
    if name != "zip" and name not in options.file_names():
        raise ExportRequestError(
            _(
                "Unknown file “%(name)s”; choose zip or one of %(names)s.",
                name=name[:40],
                names=", ".join(options.file_names()),
            )
        )
    export = Export(options)
    stamp = f"{'demo-' if export.population.use_demo else ''}survey-export"
    if name == "zip":
        return send_file(
            export.zip_file(),
            mimetype="application/zip",
            as_attachment=True,
            download_name=f"{stamp}.zip",
            max_age=0,
        )
    mimetype = "application/json" if name == "disclosure_report" else "text/csv; charset=utf-8"
    response = FlaskResponse(stream_with_context(export.csv_chunks(name)), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{file_label(name)}"'
    response.headers["Cache-Control"] = "no-store"
    return response
