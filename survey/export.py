"""Anonymized export: wide and long CSV, codebook and disclosure report, streamed.

Rows are read with a server-side cursor in ``export_id`` order (a random id, so the
order says nothing about when or in which order people answered) and written as they
are read: memory stays flat however many responses there are.
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
from sqlalchemy import func, select

from survey import anonymize, queries
from survey.catalog import Catalog
from survey.extensions import db
from survey.models import Answer, Practice, PracticeExample, Response, Wave
from survey.questions import BACKGROUND, KIND_LABELS, MET, RATING
from survey.responses import catalog

QUASI_IDENTIFIERS = tuple(q.field for q in BACKGROUND)
MET_CODES = {"yes": "1", "no": "0", "dk": "dk", "na": ""}
FORMATS = {"utf8": (",", "utf-8"), "excel": (";", "utf-8-sig")}
FILES = ("responses", "answers_long", "codebook", "disclosure_report")
CHUNK = 1000  # responses per keyset page: 80,000 answer tuples at most in memory
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

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


@dataclass(frozen=True)
class ExportOptions:
    """What a researcher asked for."""

    include_demo: bool = False
    fmt: str = "utf8"
    k: int = 5
    max_suppressed_share: float = 0.1
    include_examples: bool = False

    @classmethod
    def from_mapping(cls, args) -> ExportOptions:
        """Options from query parameters or CLI values; invalid values fall back to defaults."""
        fmt = args.get("format", "utf8")
        try:
            k = max(2, min(int(args.get("k", 5)), 50))
        except (TypeError, ValueError):
            k = 5
        flag = lambda name: str(args.get(name, "")).lower() in ("1", "true", "yes", "on")  # noqa: E731
        return cls(
            include_demo=flag("include_demo"),
            fmt=fmt if fmt in FORMATS else "utf8",
            k=k,
            max_suppressed_share=current_app.config.get("EXPORT_MAX_SUPPRESSED_SHARE", 0.1),
            include_examples=flag("include_examples"),
        )


class Export:
    """One export: the population, the disclosure plan, and writers for every file."""

    def __init__(self, options: ExportOptions):
        self.options = options
        self.catalog: Catalog = catalog()
        self.population = queries.population(options.include_demo)
        self.conditions = queries.response_conditions(
            queries.Segment(include_demo=options.include_demo), self.population
        )
        self.plan = anonymize.plan(
            self._qi_counts(),
            QUASI_IDENTIFIERS,
            k=options.k,
            max_suppressed_share=options.max_suppressed_share,
        )
        self.practice_ids = self._practice_ids()
        self.waves = dict(db.session.execute(select(Wave.id, Wave.code)).all())

    @property
    def with_demo_column(self) -> bool:
        """Demo responses are in the file: mark each row."""
        return self.population.use_demo

    def _qi_counts(self) -> dict[tuple, int]:
        columns = [getattr(Response, name) for name in QUASI_IDENTIFIERS]
        rows = db.session.execute(
            select(*columns, func.count()).where(*self.conditions).group_by(*columns)
        ).all()
        # Interned codes: tens of thousands of combinations share a few dozen strings.
        return {
            tuple(None if v is None else sys.intern(v) for v in row[:-1]): row[-1] for row in rows
        }

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
        columns = [getattr(Response, name) for name in QUASI_IDENTIFIERS]
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
        """Answers of a chunk of responses: response id -> [(practice, kind, met, rating)]."""
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
            ).where(Answer.response_id.in_(ids))
        )
        for rid, pid, kind, met, rating in rows:
            found[rid].append((pid, kind, met, rating))
        return found

    def _background(self, response) -> list[str]:
        raw = tuple(response[6:])
        return ["" if v is None else v for v in self.plan.mapping[raw]]

    def header(self) -> list[str]:
        """Columns of responses.csv."""
        head = ["respondent_id", "wave", "submitted_month", "language", *QUASI_IDENTIFIERS]
        if self.with_demo_column:
            head.append("is_demo")
        for pid in self.practice_ids:
            head += [f"{pid}__ru", f"{pid}__foreign", f"{pid}__ru_rating", f"{pid}__foreign_rating"]
        return head

    def wide_rows(self) -> Iterator[list[str]]:
        """responses.csv rows: one per response, built from its long answers."""
        slot = {pid: i for i, pid in enumerate(self.practice_ids)}
        for chunk in self._chunks():
            answers = self._answers_of([r.id for r in chunk])
            for response in chunk:
                cells = [""] * (4 * len(self.practice_ids))
                for pid, kind, met, rating in answers[response.id]:
                    base = 4 * slot[pid] + (0 if kind == "ru" else 1)
                    cells[base] = MET_CODES[met]
                    cells[base + 2] = "" if rating is None else str(rating)
                row = [
                    response.export_id,
                    safe_cell(self.waves.get(response.wave_id)),
                    response.submitted_on.strftime("%Y-%m"),
                    response.language,
                    *self._background(response),
                ]
                if self.with_demo_column:
                    row.append("1" if response.is_demo else "0")
                yield row + cells

    def long_header(self) -> list[str]:
        """Columns of answers_long.csv."""
        head = ["respondent_id", "practice_id", "company_kind", "met", "rating"]
        return head + (["is_demo"] if self.with_demo_column else [])

    def long_rows(self) -> Iterator[list[str]]:
        """answers_long.csv rows, practices in catalogue order, Russian kind first."""
        position = {pid: i for i, pid in enumerate(self.practice_ids)}
        for chunk in self._chunks():
            answers = self._answers_of([r.id for r in chunk])
            for response in chunk:
                demo = ["1" if response.is_demo else "0"] if self.with_demo_column else []
                ordered = sorted(answers[response.id], key=lambda a: (position[a[0]], a[1] != "ru"))
                for pid, kind, met, rating in ordered:
                    rating_cell = "" if rating is None else str(rating)
                    yield [response.export_id, pid, kind, MET_CODES[met], rating_cell, *demo]

    def example_rows(self) -> Iterator[list[str]]:
        """examples.csv rows: practice and scrubbed text only, no respondent id."""
        for chunk in self._chunks():
            rows = db.session.execute(
                select(PracticeExample.practice_id, PracticeExample.text).where(
                    PracticeExample.response_id.in_([r.id for r in chunk])
                )
            )
            for pid, text in rows:
                yield [pid, scrub(text)]

    # -- codebook and report ---------------------------------------------------------------
    def codebook_rows(self) -> Iterator[list[str]]:
        """One row per column of both files: type, values with labels, question text."""
        version = self.catalog.version
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
        ]

        def row(file, column, kind, values, question_ru, question_en):
            codes = "|".join(v for v, _, _ in values)
            ru = "; ".join(f"{v or '(empty)'} = {r}" for v, r, _ in values)
            en = "; ".join(f"{v or '(empty)'} = {e}" for v, _, e in values)
            return [file, column, kind, codes, ru, en, question_ru, question_en, version]

        both = ("responses.csv", "answers_long.csv")
        yield row(
            "responses.csv; answers_long.csv",
            "respondent_id",
            "string",
            [],
            "Случайный идентификатор ответа (не связан с базой данных)",
            "Random response identifier (not derived from any database id)",
        )
        yield row("responses.csv", "wave", "string", [], "Волна опроса", "Survey wave")
        yield row(
            "responses.csv",
            "submitted_month",
            "string (YYYY-MM)",
            [],
            "Месяц отправки анкеты",
            "Month the response was submitted",
        )
        yield row(
            "responses.csv",
            "language",
            "string",
            [("ru", "русский", "Russian"), ("en", "английский", "English")],
            "Язык анкеты",
            "Questionnaire language",
        )
        for question in BACKGROUND:
            values = [(o.code, o.ru, o.en) for o in question.options]
            for code, (ru, en) in anonymize.GENERALIZED_LABELS.get(question.field, {}).items():
                values.append((code, ru + " (укрупнено)", en + " (generalized)"))
            if not question.required:
                values.append(("", "нет ответа", "not answered"))
            values.append(
                (anonymize.SUPPRESSED, "скрыто для анонимности", "suppressed for anonymity")
            )
            yield row(
                "responses.csv", question.field, "categorical", values, question.ru, question.en
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
        met_values = [
            ("1", "встречал(а)", "met"),
            ("0", "не встречал(а)", "not met"),
            ("dk", MET.label("dk", "ru"), MET.label("dk", "en")),
            (
                "",
                "не применимо: не работал(а) в компаниях этого типа",
                "not applicable: never worked in this kind of company",
            ),
        ]
        rating_values = [(o.code, o.ru, o.en) for o in RATING.options] + [
            ("", "нет оценки (не встречал или не применимо)", "no rating (not met or n/a)")
        ]
        names = self._practice_names()
        for pid, name_ru, name_en in names:
            for kind in ("ru", "foreign"):
                where = KIND_LABELS[kind]
                yield row(
                    "responses.csv",
                    f"{pid}__{kind}",
                    "categorical",
                    met_values,
                    f"{name_ru}: {MET.ru} ({where.ru})",
                    f"{name_en}: {MET.en} ({where.en})",
                )
                yield row(
                    "responses.csv",
                    f"{pid}__{kind}_rating",
                    "integer 1-5",
                    rating_values,
                    f"{name_ru}: {RATING.ru} ({where.ru})",
                    f"{name_en}: {RATING.en} ({where.en})",
                )
        yield row(
            "answers_long.csv",
            "practice_id",
            "string",
            names,
            "Практика (идентификатор каталога)",
            "Practice (catalogue id)",
        )
        yield row(
            "answers_long.csv",
            "company_kind",
            "categorical",
            [
                ("ru", KIND_LABELS["ru"].ru, KIND_LABELS["ru"].en),
                ("foreign", KIND_LABELS["foreign"].ru, KIND_LABELS["foreign"].en),
            ],
            "Тип компании",
            "Kind of company",
        )
        yield row("answers_long.csv", "met", "categorical", met_values, MET.ru, MET.en)
        yield row("answers_long.csv", "rating", "integer 1-5", rating_values, RATING.ru, RATING.en)
        if self.options.include_examples:
            yield row("examples.csv", "practice_id", "string", [], "Практика", "Practice")
            yield row(
                "examples.csv",
                "text",
                "free text",
                [],
                "Пример (e-mail, телефоны и ссылки удалены)",
                "Example (e-mail addresses, phone numbers and URLs removed)",
            )

    def disclosure_report(self) -> dict:
        """The disclosure-control report of this export."""
        report = self.plan.report()
        report.update(
            {
                "catalog_version": self.catalog.version,
                "demo_data_included": self.population.use_demo,
                "real_data_included": self.population.use_real,
                "free_text_included": self.options.include_examples,
                "row_order": "by random respondent_id (not by time or database id)",
                "not_treated_as_quasi_identifiers": ["wave", "submitted_month", "language"],
            }
        )
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
            "codebook": self.codebook_rows,
            "examples": lambda: _prepend(["practice_id", "text"], self.example_rows()),
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
        names = ["responses", "answers_long", "codebook", "disclosure_report"]
        return names + (["examples"] if self.options.include_examples else [])

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


def _prepend(head, rows):
    yield head
    yield from rows


def file_label(name: str) -> str:
    """The download file name of an export part."""
    return f"{name}.json" if name == "disclosure_report" else f"{name}.csv"


class ExportRequestError(ValueError):
    """The export request itself is wrong (unknown file, examples without confirmation)."""


def download(args):
    """A Flask response with the requested export file (or the zip), streamed.

    Raises :class:`ExportRequestError` for a bad request and
    :class:`survey.anonymize.ExportRefused` when a safe release is not possible.
    """
    from flask import Response as FlaskResponse
    from flask import send_file, stream_with_context

    name = args.get("file", "zip")
    options = ExportOptions.from_mapping(args)
    if options.include_examples and str(args.get("confirm_examples", "")) != "1":
        raise ExportRequestError(
            "Free-text examples need confirm_examples=1: they may contain personal details."
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
    if name not in export.file_names():
        raise ExportRequestError(
            f"Unknown file {name!r}; choose zip or one of {export.file_names()}."
        )
    mimetype = "application/json" if name == "disclosure_report" else "text/csv; charset=utf-8"
    response = FlaskResponse(stream_with_context(export.csv_chunks(name)), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{file_label(name)}"'
    response.headers["Cache-Control"] = "no-store"
    return response
