"""The export's rows as CSV text: answer vectors decoded once per chunk, then written by
table lookups (no Python loop over a response's answers).

A chunk of responses (:func:`survey.queries.export_chunks`) is decoded into one matrix of
alphabet indices in the export's column order (practice, then kind); ``responses.csv``
takes each practice's pair of cells (Russian, foreign) to a ready-made text of its six
columns, and ``answers_long.csv`` each answered cell to its ready-made line. A cell a
response was never asked (a practice outside its catalogue version) is ``.`` and leaves
its columns empty and writes no long row, as an absent answer row did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from survey import vectors
from survey.export.files import LINE_END
from survey.models import COMPANY_KINDS
from survey.questions import LEGACY_YES, NOT_MY_ROLE, RATING_MIXED

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
# Per practice, the columns of each kind in responses.csv, in this order (the kinds
# alternate within each): existed, rating, applied.
WIDE_SUFFIXES = ("", "_rating", "_applied")
LONG_COLUMNS = ["respondent_id", "practice_id", "company_kind", "met", "rating", "applied"]
SUPPRESSED_CELLS = ("suppressed",) * 3  # survey.anonymize.SUPPRESSED, for each answer column

# Every character of the vector alphabet (survey.vectors), the missing cell first.
ALPHABET = ".anderp12345myABCDE"
SIZE = len(ALPHABET)
_INVALID = 255
PIECE = 250  # responses per piece of long text: about 1 MB
INDEX_OF = bytes(ALPHABET.index(chr(b)) if chr(b) in ALPHABET else _INVALID for b in range(256))


def released_answer(character: str) -> tuple[str, str, str]:
    """The (met, rating, applied) cells of one vector character, as released."""
    met, rating, mixed = vectors.decode_cell(character)
    if met is None:
        return "", "", ""
    cell = RATING_MIXED.code if mixed else ("" if rating is None else str(rating))
    return MET_CODES[met], cell, APPLIED_CODES.get(met, "")


ANSWERS = [released_answer(character) for character in ALPHABET]


def quote(value: str, delimiter: str) -> str:
    """A CSV field as :mod:`csv` writes it with QUOTE_MINIMAL."""
    if delimiter in value or '"' in value or "\r" in value or "\n" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


@dataclass(frozen=True)
class Chunk:
    """A chunk of responses, decoded.

    ``cells[r, 2 * s + k]`` is the alphabet index (:data:`ALPHABET`) of response ``r``'s
    answer to the export's practice ``s`` for kind ``COMPANY_KINDS[k]``; ``prefix[r]`` its
    released respondent columns as CSV text (random id first); ``withheld[r]`` whether it
    is fully suppressed (every answer withheld with its background).
    """

    ids: list[int]
    export_ids: list[str]
    demo: np.ndarray
    withheld: np.ndarray
    cells: np.ndarray

    @property
    def n(self) -> int:
        """Responses in the chunk."""
        return len(self.ids)


class Decoder:
    """Decodes chunks of export rows into :class:`Chunk` for one export's columns.

    ``practice_ids`` are the export's practice columns, in order; ``layout_of(version_id)``
    gives a catalogue version's vector layout (:func:`survey.responses.layout`).
    """

    def __init__(self, practice_ids: Sequence[str], layout_of: Callable[[int], Sequence[str]]):
        self.practice_ids = list(practice_ids)
        self.slot = {pid: s for s, pid in enumerate(self.practice_ids)}
        self.layout_of = layout_of
        self._columns: dict[int, np.ndarray] = {}

    def columns(self, version_id: int) -> np.ndarray:
        """The export columns of a version's vector cells (cell ``2 i + k`` goes to column
        ``2 * slot(practice i) + k``)."""
        if version_id not in self._columns:
            layout = self.layout_of(version_id)
            try:
                slots = np.array([self.slot[pid] for pid in layout], dtype=np.intp)
            except KeyError as exc:
                raise ValueError(f"practice {exc.args[0]!r} has no export column") from None
            self._columns[version_id] = (2 * slots[:, None] + np.arange(2)).ravel()
        return self._columns[version_id]

    def cells(self, versions: Sequence[int], codes: Sequence[str | None]) -> np.ndarray:
        """The (responses x 2 practices) alphabet-index matrix of the vectors."""
        width = 2 * len(self.practice_ids)
        cells = np.zeros((len(codes), width), dtype=np.uint8)
        by_version: dict[int, list[int]] = {}
        for r, version in enumerate(versions):
            if codes[r] is not None:
                by_version.setdefault(version, []).append(r)
        for version, members in by_version.items():
            columns = self.columns(version)
            joined = "".join(codes[r] for r in members)
            if len(joined) != len(members) * len(columns):
                raise ValueError(
                    f"an answer vector of catalogue version {version} has a wrong length"
                )
            matrix = np.frombuffer(joined.encode("ascii").translate(INDEX_OF), dtype=np.uint8)
            if (matrix == _INVALID).any():
                raise ValueError("an answer vector holds a character outside the alphabet")
            cells[np.ix_(np.array(members), columns)] = matrix.reshape(len(members), -1)
        return cells


class WideText:
    """responses.csv lines of decoded chunks: per practice, one lookup of the text of its
    six cells by the (Russian, foreign) pair of characters."""

    def __init__(self, n_practices: int, delimiter: str):
        self.delimiter = delimiter
        pairs = []
        for ru in ANSWERS:
            for foreign in ANSWERS:
                six = [ru[0], foreign[0], ru[1], foreign[1], ru[2], foreign[2]]
                pairs.append(delimiter.join(six))
        self.pairs = np.array(pairs, dtype=object)
        width = len(WIDE_SUFFIXES) * len(COMPANY_KINDS) * n_practices
        self.withheld = delimiter.join(["suppressed"] * width)

    def lines(self, chunk: Chunk, prefixes: Sequence[str]) -> list[str]:
        """One line per response: its released prefix, then its answer cells."""
        d = self.delimiter
        pair = chunk.cells[:, 0::2].astype(np.intp) * SIZE + chunk.cells[:, 1::2]
        texts = self.pairs[pair]
        out = []
        for r, prefix in enumerate(prefixes):
            tail = self.withheld if chunk.withheld[r] else d.join(texts[r].tolist())
            out.append(f"{prefix}{d}{tail}{LINE_END}")
        return out


class LongText:
    """answers_long.csv lines of decoded chunks: each answered cell is one ready-made line
    (after the respondent id), looked up by column and character; practices in export
    order, the Russian kind first."""

    def __init__(self, practice_ids: Sequence[str], delimiter: str, demo_column: bool):
        d = self.delimiter = delimiter
        self.width = 2 * len(practice_ids)
        tables = []
        withheld = []
        for demo in (False, True):
            suffix = (d + ("1" if demo else "0")) if demo_column else ""
            table = []
            for pid in practice_ids:
                for kind in COMPANY_KINDS:
                    start = f"{d}{pid}{d}{kind}{d}"
                    table += [
                        "" if ch == vectors.MISSING else start + d.join(answer) + suffix + LINE_END
                        for ch, answer in zip(ALPHABET, ANSWERS, strict=True)
                    ]
                    withheld.append(start + d.join(SUPPRESSED_CELLS) + suffix + LINE_END)
            tables.append(table)
        self.table = np.array(tables[0] + tables[1], dtype=object)
        self.withheld = [withheld[: self.width], withheld[self.width :]]
        self.base = (np.arange(self.width, dtype=np.intp) * SIZE)[None, :]

    def text(self, chunk: Chunk) -> Iterator[str]:
        """Every long line of the chunk's responses, in their order, a few hundred
        responses to a piece (a long file is ~4 KB per response)."""
        index = (
            self.base + chunk.cells + (chunk.demo.astype(np.intp) * (self.width * SIZE))[:, None]
        )
        lines = self.table[index]
        complete = (chunk.cells != 0).all(axis=1)
        out = []
        for r, export_id in enumerate(chunk.export_ids):
            if chunk.withheld[r]:
                pieces = self.withheld[int(chunk.demo[r])]
            elif complete[r]:
                pieces = lines[r].tolist()
            else:
                pieces = [line for line in lines[r].tolist() if line]
            if pieces:
                out.append(export_id + export_id.join(pieces))
            if len(out) == PIECE:
                yield "".join(out)
                out = []
        yield "".join(out)
