"""One export: the population, its disclosure plan, and its files as text.

Disclosure control (:mod:`survey.anonymize`) is planned on quasi-identifier counts before
the first row is written. It is planned over the real responses alone: demo responses
never count toward k, and a real row comes out of a mixed export exactly as it comes out
of the real-only one (or the mixed export is refused like the real-only one). Demo rows
take the real plan's generalization steps (one coding per column across the file) and
their own local suppression, which never refuses: they protect and endanger no one.

Rows are written in ``export_id`` order (a random id, so the order says nothing about
when or in which order people answered): the ids of the selected responses are sorted once,
with the quasi-identifiers that plan the release, then read and written a chunk at a time
(memory: 8 bytes per response for the order, plus one chunk).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator

import numpy as np

from survey import anonymize, paradata, queries
from survey.anonymize import KIND_QUASI_IDENTIFIERS, PILOT_COLUMN, QUASI_IDENTIFIERS, SUPPRESSED
from survey.catalog import Catalog
from survey.export import codebook, datapackage
from survey.export.files import BY_NAME, FORMATS, LABELLED_FORMATS, LINE_END, file_label
from survey.export.options import ExportOptions, check_k
from survey.export.rows import (
    LONG_COLUMNS,
    WIDE_SUFFIXES,
    Chunk,
    Decoder,
    LongText,
    WideText,
    quote,
)
from survey.extensions import db
from survey.models import COMPANY_KINDS
from survey.questions import BACKGROUND
from survey.responses import catalog, layout

# Quasi-identifiers stored as columns of the response row, in QUASI_IDENTIFIERS order.
STORED_FIELDS = (*(q.field for q in BACKGROUND), *KIND_QUASI_IDENTIFIERS)
# The rest of QUASI_IDENTIFIERS is worked out per response: a key is (wave, channel label,
# month, language, answer scale, *stored), and with pilot waves included the pilot mark.
if QUASI_IDENTIFIERS != (
    "wave",
    "channel",
    "submitted_month",
    "language",
    "answer_scale",
    *STORED_FIELDS,
):
    raise ImportError("survey.anonymize.QUASI_IDENTIFIERS no longer match the export's keys")
# The scale a response's answers were given on, as its answer codes show it (a structural
# quasi-identifier: see survey.anonymize). None: only codes both scales share.
SCALE_CODES = {(True, False): "met", (False, True): "existed_applied", (True, True): "both"}
CHUNK = 5000  # responses read and decoded at a time: 5,000 short vectors and their matrix
EXAMPLE_COLUMNS = ["practice_id", "company_kind", "text"]
# Paradata flags stored on the response row, in paradata.csv order.
PARADATA_FLAGS = ("fictitious_claimed", "straightlined_pages", "speeding_pages", "low_quality")
PAGE_COLUMNS = ("position", "seconds", "straightlining", "speeding")
# Rows of a CSV file are flushed to the stream in pieces of about this many characters.
FLUSH = 1 << 20

Progress = Callable[[int], None]  # called with the responses written so far in a file


def safe_cell(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP CSV injection)."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + text
    return text


EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
URL_RE = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
PHONE_RE = re.compile(r"(?<!\w)\+?\d[\d\s().-]{6,}\d")


def scrub(text: str) -> str:
    """Remove e-mail addresses, URLs and phone numbers from free text."""
    text = EMAIL_RE.sub("[email]", text)
    text = URL_RE.sub("[url]", text)
    return PHONE_RE.sub("[phone]", text)


class Export:
    """One export: the population, the disclosure plan, and writers for every file."""

    def __init__(self, options: ExportOptions):
        check_k(options.k)  # the floor holds for every caller (views, API, CLI, scripts)
        self.options = options
        self.delimiter, self.encoding = FORMATS[options.fmt]
        self.catalog: Catalog = catalog()
        self.population = queries.population(options.include_demo)
        self.conditions = queries.response_conditions(
            queries.Segment(include_demo=options.include_demo, include_pilot=options.include_pilot),
            self.population,
        )
        self.wave_rows = queries.waves()
        self.waves = {wave_id: sys.intern(code) for wave_id, code, _ru, _en in self.wave_rows}
        # Pilot waves' responses are in only when asked for, and then marked (is_pilot).
        self.pilot_waves = set(queries.pilot_wave_ids())
        self.quasi_identifiers = (
            (*QUASI_IDENTIFIERS, PILOT_COLUMN) if options.include_pilot else QUASI_IDENTIFIERS
        )
        # The channel column releases the label (never the slug, which is the link itself).
        self.channel_rows = queries.channels()
        self.channels = {cid: sys.intern(label) for cid, label, _wave in self.channel_rows}
        self.includes_pilot = False  # a pilot wave's response is in the files (_qi_counts)
        real, demo = self._qi_counts()
        # k is planned over the real responses alone; a demo-only study (no real response
        # yet) is planned like a real one, so that it exports as a real one would.
        self.plan = anonymize.plan(
            real if self.population.use_real else demo,
            self.quasi_identifiers,
            k=options.k,
            max_suppressed_share=options.max_suppressed_share,
        )
        self.demo_plan = None
        if self.population.use_real and self.population.use_demo:
            self.demo_plan = anonymize.plan(
                demo,
                self.quasi_identifiers,
                k=options.k,
                max_suppressed_share=1.0,  # synthetic rows never refuse a real release
                level=self.plan.level,  # coded like the real rows
            )
        # Catalogue order first; then any practice answered under an older catalogue,
        # named from the database.
        names = [(p.id, p.name.ru, p.name.en) for p in self.catalog.practices]
        self.practice_names = names + queries.practice_names([pid for pid, _ru, _en in names])
        self.practice_ids = [pid for pid, _ru, _en in self.practice_names]
        self.decoder = Decoder(self.practice_ids, layout)
        self._paradata_practices = [p.id for p in self.catalog.practices]
        self._positions = paradata.Positions(self.catalog)

    @property
    def with_demo_column(self) -> bool:
        """Demo responses are in the file: mark each row."""
        return self.population.use_demo

    @property
    def download_stem(self) -> str:
        """The zip's file name without its extension, marked when demo or pilot responses
        are in it."""
        demo = "demo-" if self.population.use_demo else ""
        return f"{demo}{'pilot-' if self.includes_pilot else ''}survey-export"

    @property
    def records(self) -> int:
        """Responses in the files, real and demo."""
        return self.plan.records + (self.demo_plan.records if self.demo_plan else 0)

    def plans(self) -> list[anonymize.DisclosurePlan]:
        """The disclosure plans of this export: the real one, and the demo one if any."""
        return [self.plan, *([self.demo_plan] if self.demo_plan else [])]

    def file_names(self) -> list[str]:
        """The files of this export."""
        return self.options.file_names()

    # -- quasi-identifiers -------------------------------------------------------------------
    def _key(self, wave_id, channel_id, month: str, language, legacy, current, stored) -> tuple:
        """A response's raw quasi-identifier combination, in ``self.quasi_identifiers``
        order (QUASI_IDENTIFIERS, then the pilot mark when pilot waves are included)."""
        scale = SCALE_CODES.get((bool(legacy), bool(current)))
        wave, channel = self.waves.get(wave_id), self.channels.get(channel_id)
        if self.options.include_pilot:
            pilot = "1" if wave_id in self.pilot_waves else "0"
            return (wave, channel, month, language, scale, *stored, pilot)
        return (wave, channel, month, language, scale, *stored)

    def _qi_counts(self) -> tuple[dict[tuple, int], dict[tuple, int]]:
        """Raw quasi-identifier combinations and their counts: (real, demo).

        Read in the same pass, so that the rows written are the rows planned: the selected
        responses' ids in random-id order (``self.order``) and, for each, the index of its
        combination in ``self.combinations`` (``(is_demo, key)``)."""
        intern = sys.intern
        ids, export_ids, which = [], [], []  # numpy pieces: 44 bytes per response
        index: dict[bool, dict[tuple, int]] = {False: {}, True: {}}
        self.combinations: list[tuple[bool, tuple]] = []
        for batch in queries.export_keys(self.conditions, STORED_FIELDS):
            ids.append(np.array([row[0] for row in batch], dtype=np.int64))
            export_ids.append(np.array([row[1].encode() for row in batch], dtype="S32"))
            found = []
            for (
                _id,
                _export_id,
                is_demo,
                wave_id,
                channel_id,
                day,
                language,
                legacy,
                current,
                *rest,
            ) in batch:
                # Interned: the driver's strings are new objects in every row, and the
                # combinations kept (~one per response) would hold ~1 KB of them each.
                stored = [None if v is None else intern(v) for v in rest]
                month = intern(str(day)[:7])  # a date, or ISO text on SQLite
                language = None if language is None else intern(language)
                key = self._key(wave_id, channel_id, month, language, legacy, current, stored)
                table = index[bool(is_demo)]
                at = table.get(key)
                if at is None:
                    at = table[key] = len(self.combinations)
                    self.combinations.append((bool(is_demo), key))
                found.append(at)
            which.append(np.array(found, dtype=np.int32))
        self.includes_pilot = self.options.include_pilot and any(
            key[-1] == "1" for _demo, key in self.combinations
        )
        # Byte order of the random ids (hexadecimal: the same order on every database).
        by_export_id = np.argsort(_concatenate(export_ids, "S32"), kind="stable")
        self.order = _concatenate(ids, np.int64)[by_export_id]
        which = _concatenate(which, np.int32)
        self.order_combinations = which[by_export_id]
        sizes = np.bincount(which, minlength=len(self.combinations)).tolist()
        del ids, export_ids, which, by_export_id
        real, demo = ({key: sizes[at] for key, at in index[flag].items()} for flag in (False, True))
        return real, demo

    def _released(self) -> list[tuple[bool, bool, str]]:
        """Per combination: demo, fully suppressed, and its released columns as CSV text
        (each after a delimiter, the demo mark last)."""
        d = self.delimiter
        demo_plan = self.demo_plan or self.plan
        out, texts = [], {}
        for is_demo, key in self.combinations:
            released = (demo_plan if is_demo else self.plan).mapping[key]
            text = texts.get((released, is_demo))
            if text is None:
                cells = [quote(safe_cell(v), d) for v in released]
                if self.with_demo_column:
                    cells.append("1" if is_demo else "0")
                text = texts[(released, is_demo)] = "".join(d + c for c in cells)
            out.append((is_demo, released == self.plan.blank, text))
        return out

    # -- rows ------------------------------------------------------------------------------
    def chunks(self, progress: Progress | None = None) -> Iterator[tuple[Chunk, list[str]]]:
        """The selected responses a chunk at a time, decoded, with the released respondent
        columns of each as CSV text (random id first, the demo mark last)."""
        released = self._released()
        done = 0
        for start in range(0, len(self.order), CHUNK):
            ids = self.order[start : start + CHUNK].tolist()
            combination = dict(
                zip(ids, self.order_combinations[start : start + CHUNK].tolist(), strict=True)
            )
            rows = queries.export_vectors(ids)
            db.session.rollback()  # end the read transaction between chunks
            if not rows:
                continue
            of_row = [released[combination[row[0]]] for row in rows]
            export_ids = [row[1] for row in rows]
            chunk = Chunk(
                ids=[row[0] for row in rows],
                export_ids=export_ids,
                demo=np.array([r[0] for r in of_row], dtype=bool),
                withheld=np.array([r[1] for r in of_row], dtype=bool),
                cells=self.decoder.cells([row[2] for row in rows], [row[3] for row in rows]),
            )
            yield chunk, [e + r[2] for e, r in zip(export_ids, of_row, strict=True)]
            done += chunk.n
            if progress:
                progress(done)

    def header(self) -> list[str]:
        """Columns of responses.csv."""
        head = ["respondent_id", *self.quasi_identifiers]
        if self.with_demo_column:
            head.append("is_demo")
        for pid in self.practice_ids:
            head += [f"{pid}__{kind}{suffix}" for suffix in WIDE_SUFFIXES for kind in COMPANY_KINDS]
        return head

    def wide_text(self, progress: Progress | None = None) -> Iterator[str]:
        """responses.csv: one line per response, from its decoded vector."""
        writer = WideText(len(self.practice_ids), self.delimiter)
        for chunk, prefixes in self.chunks(progress):
            yield "".join(writer.lines(chunk, prefixes))

    def long_header(self) -> list[str]:
        """Columns of answers_long.csv."""
        return LONG_COLUMNS + (["is_demo"] if self.with_demo_column else [])

    def long_text(self, progress: Progress | None = None) -> Iterator[str]:
        """answers_long.csv: per response, one line per answered practice and kind
        (practices in column order, the Russian kind first); a fully suppressed response
        gets every practice and kind with every cell suppressed, whatever it answered
        (the rows present would otherwise tell its kinds apart)."""
        writer = LongText(self.practice_ids, self.delimiter, self.with_demo_column)
        for chunk, _prefixes in self.chunks(progress):
            yield from writer.text(chunk)

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
    def paradata_header(self) -> list[str]:
        """Columns of paradata.csv."""
        head = ["respondent_id", *(["is_demo"] if self.with_demo_column else [])]
        head += ["first_kind", "total_seconds", *PARADATA_FLAGS, "language_mixed"]
        head.append("background_seconds")
        for page in self.catalog.pages:
            head += [f"page_{page.key}__{name}" for name in PAGE_COLUMNS]
        for practice in self.catalog.practices:
            head += [f"{practice.id}__page_position", f"{practice.id}__item_position"]
        return head

    def paradata_rows(self, progress: Progress | None = None) -> Iterator[list[str]]:
        """paradata.csv rows, in the responses' random-id order."""
        width = len(self.paradata_header()) - 1 - (1 if self.with_demo_column else 0)
        withheld = [SUPPRESSED] * width
        for chunk, _prefixes in self.chunks(progress):
            own, pages = queries.export_paradata(chunk.ids, PARADATA_FLAGS)
            for r, rid in enumerate(chunk.ids):
                is_demo = bool(chunk.demo[r])
                demo = ["1" if is_demo else "0"] if self.with_demo_column else []
                if chunk.withheld[r]:
                    yield [chunk.export_ids[r], *demo, *withheld]
                    continue
                cells = self._paradata_cells(rid, is_demo, own[rid], pages)
                yield [chunk.export_ids[r], *demo, *cells]

    def _paradata_cells(self, rid: int, is_demo: bool, own: tuple, pages: dict) -> list[str]:
        stored, total, *flags, languages = own
        first_kind, position, at = self._positions(stored)
        total = None if is_demo else total  # demo rows were never timed
        cells = [first_kind, paradata.band(total, paradata.TOTAL_BANDS)]
        cells += [_code(flag) for flag in flags]
        cells.append(_code(len(languages) > 1) if languages else "")
        background = pages.get((rid, paradata.BACKGROUND_PAGE), (None, None, None))
        cells.append(paradata.band(background[0], paradata.PAGE_BANDS))
        for page in self.catalog.pages:
            seconds, flat, fast = pages.get((rid, page.key), (None, None, None))
            cells += [
                str(position[page.key]),
                paradata.band(seconds, paradata.PAGE_BANDS),
                _code(flat),
                _code(fast),
            ]
        cells += [_NUMBER[i] for pid in self._paradata_practices for i in at[pid]]
        return cells

    # -- free text ---------------------------------------------------------------------------
    def example_rows(self, progress: Progress | None = None) -> Iterator[list[str]]:
        """examples.csv rows: practice, company kind (empty: not stated) and scrubbed text
        only, no respondent id, in the responses' random-id order (the database's own
        order would follow the row ids, which grow with time)."""
        rank = {kind: i for i, kind in enumerate(COMPANY_KINDS)}  # not stated: last
        for chunk, _prefixes in self.chunks(progress):
            order = {rid: i for i, rid in enumerate(chunk.ids)}
            keyed = sorted(
                (order[rid], pid, rank.get(kind, len(rank)), kind or "", text)
                for rid, pid, kind, text in queries.export_examples(chunk.ids)
            )
            for _at, pid, _rank, kind, text in keyed:
                yield [pid, kind, scrub(text)]

    # -- report ------------------------------------------------------------------------------
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
                "pilot_waves": sorted(self.waves[i] for i in self.pilot_waves if i in self.waves),
                "pilot_included": self.includes_pilot,
                "pilot": (
                    "responses of pilot waves are included and marked is_pilot = 1 (a "
                    "quasi-identifier kept in every released combination, so k holds among "
                    "the pilot responses by themselves)"
                    if self.options.include_pilot
                    else "responses of pilot waves are left out (include_pilot=1 adds them)"
                ),
                "channel": "the label of the channel each respondent came through (never its "
                "link), a quasi-identifier like the wave",
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
    def text(self, name: str, progress: Progress | None = None) -> Iterator[str]:
        """A file's text in pieces (the registry's files only: survey.export.files)."""
        if name == "disclosure_report":
            yield json.dumps(self.disclosure_report(), ensure_ascii=False, indent=2)
            return
        if name in ("datapackage", *datapackage.LOADER_FILES):
            yield from datapackage.text(self, name)
            return
        header, body = {
            "responses": (self.header, self.wide_text),
            "answers_long": (self.long_header, self.long_text),
            "paradata": (
                self.paradata_header,
                lambda p: _csv(self.paradata_rows(p), self.delimiter),
            ),
            "codebook": (None, lambda _p: _csv(codebook.codebook_rows(self), self.delimiter, True)),
            "examples": (
                lambda: EXAMPLE_COLUMNS,
                lambda p: _csv(self.example_rows(p), self.delimiter, True),
            ),
        }[name]
        if header is not None:
            yield from _csv([header()], self.delimiter)
        yield from body(progress)

    def csv_chunks(self, name: str, progress: Progress | None = None) -> Iterator[bytes]:
        """A file's bytes in chunks, for streaming responses and for the zip."""
        if BY_NAME[name].format in LABELLED_FORMATS:  # .sav, .dta, .parquet: from the CSV
            from survey.export import formats

            yield from formats.file_bytes(self, name, progress)
            return
        if self.encoding == "utf-8-sig" and BY_NAME[name].extension == "csv":
            yield "\ufeff".encode()
        pending: list[str] = []
        size = 0
        for piece in self.text(name, progress):
            pending.append(piece)
            size += len(piece)
            if size >= FLUSH:
                yield "".join(pending).encode("utf-8")
                pending, size = [], 0
        yield "".join(pending).encode("utf-8")

    def zip_to(self, fileobj, progress: Callable[[float], None] | None = None) -> None:
        """Write every file into one zip archive; ``progress`` is called with the share of
        the work done (0 to 1) as it goes."""
        names = self.file_names()
        records = max(self.records, 1)
        # Level 1: coded CSV shrinks ~10x at it, three times faster than the default level 6.
        with zipfile.ZipFile(
            fileobj, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
        ) as archive:
            for i, name in enumerate(names):

                def step(done: int, i=i) -> None:
                    if progress:
                        progress((i + min(done / records, 1.0)) / len(names))

                with archive.open(file_label(name), "w", force_zip64=True) as member:
                    for chunk in self.csv_chunks(name, step):
                        member.write(chunk)
                step(records)

    def zip_file(self, progress: Callable[[float], None] | None = None):
        """The zip in a temporary file (spills to disk above 8 MiB), rewound."""
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        self.zip_to(spool, progress)
        spool.seek(0)
        return spool


_NUMBER = [str(i) for i in range(1000)]  # positions as text, made once


def _concatenate(pieces: list[np.ndarray], dtype) -> np.ndarray:
    """One array of the pieces (an empty one of ``dtype`` when there are none)."""
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)


def _csv(rows, delimiter: str, neutralise: bool = False) -> Iterator[str]:
    """Rows written with :mod:`csv` (RFC 4180 line ends), a few thousand at a time;
    ``neutralise``: every cell through :func:`safe_cell` (text files)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=LINE_END)
    for i, row in enumerate(rows, 1):
        writer.writerow([safe_cell(v) for v in row] if neutralise else row)
        if i % 2000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _code(flag) -> str:
    """A stored indicator as a CSV cell: 1/0 for booleans, the count for integers, empty
    when not assessed."""
    if flag is None:
        return ""
    if isinstance(flag, bool):
        return "1" if flag else "0"
    return str(int(flag))
