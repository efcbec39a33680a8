"""Labelled formats: SPSS ``.sav``, Stata ``.dta`` and Parquet copies of the two answer files.

Each is built from the very CSV text the export writes (:meth:`Export.text`: the same rows,
the same disclosure plan, the same columns: a file cannot hold a column the CSV does not
have), then typed and labelled from the codebook (:func:`codebook.codebook_rows`):

- every coded column becomes numbers with value labels (``.sav``, ``.dta``) or a pandas
  Categorical of its labels (Parquet; ratings and 0/1 columns nullable Int64); ratings 1-5
  and the codes 1/0 keep their value, the other codes are numbered after them in codebook
  order (1, 2, ... in a column without such codes);
- an empty cell ("not applicable": not asked, never worked there, no rating...) and
  ``suppressed`` are declared missing values, not categories: SPSS user-missing -1 and -2,
  Stata extended missing ``.a`` and ``.b``, Parquet null; "mixed / can't say", never a
  rating, is missing in the rating columns too (-3, ``.c``, null);
- variable labels are the codebook's question texts in the language asked for
  (``ExportOptions.lang``); Parquet carries both languages' labels in its schema metadata.

Rows keep the CSV's order, except in a ``.dta`` whose column has only missing values in
its first 100 rows: the rows that hold its first number come first (:func:`sniffable`).

Limits of the formats: SPSS variable labels hold 256 bytes and value labels 120, Stata
variable labels 80 characters (longer texts end in "…"; the codebook has them whole);
Stata names hold 32 characters, less the digits pyreadstat appends to name the value labels
(29 for a file of 100 to 999 columns): a longer column name shortens its practice id
(:func:`stata_names`).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from survey.anonymize import SUPPRESSED
from survey.export import codebook
from survey.export.files import BY_NAME
from survey.questions import RATING_MIXED

# Declared missing values: (SPSS code, Stata extended missing letter).
NOT_APPLICABLE = ""
MISSING = {NOT_APPLICABLE: (-1, "a"), SUPPRESSED: (-2, "b"), RATING_MIXED.code: (-3, "c")}
# Codebook types of the columns written as numbers in Parquet (nullable Int64).
NUMERIC_TYPES = (codebook.RATING_TYPE, "0/1", "integer")
STRING_TYPES = ("string", "free text")
SAV_VARIABLE_LABEL = 256  # bytes
SAV_VALUE_LABEL = 120  # bytes
DTA_VARIABLE_LABEL = 80  # characters
DTA_VALUE_LABEL = 32000  # characters
# Stata names hold 32 characters; pyreadstat names a variable's value labels after it with
# a counter appended (name + "123"), so a name leaves room for the counter's digits.
DTA_NAME = 32
DTA_VERSION = 14  # pyreadstat's Stata version: 14 writes the Unicode format 118
METADATA_KEY = "survey_export"
CHUNK = 1 << 20  # bytes of a file read back for the download
# The CSV is read back in chunks of about this many cells.
CHUNK_CELLS = 200_000


@dataclass
class Variable:
    """One column of a labelled file: its codebook labels and numeric coding."""

    name: str
    type: str
    question: dict[str, str]  # language -> variable label
    # (code, {"ru": label, "en": label}) in codebook order, declared-missing codes included.
    values: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    number: dict[str, int] = field(default_factory=dict)  # code -> number (.sav, .dta)

    @property
    def coded(self) -> bool:
        """A column of codes (value labels), not free strings."""
        return self.type not in STRING_TYPES

    @property
    def rating(self) -> bool:
        """A rating column: "mixed" is missing there, never a rating."""
        return self.type == codebook.RATING_TYPE

    def missing(self, code: str) -> bool:
        """Whether a cell is a declared missing value."""
        return code in (NOT_APPLICABLE, SUPPRESSED) or (self.rating and code == RATING_MIXED.code)

    def keeps(self, code: str) -> bool:
        """Whether a code is written as its own integer value."""
        if self.missing(code) or not _integer(code):
            return False
        return self.type in NUMERIC_TYPES or code in ("0", "1")

    def add(self, code: str) -> None:
        """A code the data holds that the codebook does not list: labelled by itself."""
        if code not in self.number:
            self.values.append((code, {"ru": code, "en": code}))
            self._number()

    def _number(self) -> None:
        # Integer codes keep their value in number columns (ratings, 0/1) and in the 1/0
        # of the answer columns; in the others (months, waves...) every code is numbered.
        whole = [int(c) for c, _ in self.values if self.keeps(c)]
        following = max([0, *whole]) + 1
        self.number = {}
        for code, _labels in self.values:
            if self.missing(code):
                self.number[code] = MISSING[code][0]
            elif self.keeps(code):
                self.number[code] = int(code)
            else:
                self.number[code] = following
                following += 1


def _integer(code: str) -> bool:
    return code.isascii() and code.isdigit()


def variables(export, name: str, columns: list[str]) -> dict[str, Variable]:
    """The labelled variables of a file's columns, from the codebook."""
    csv_name = BY_NAME[name].stem + ".csv"
    found: dict[str, Variable] = {}

    def entry(file, column, kind, values, question_ru, question_en, _versions):
        if csv_name in [f.strip() for f in file.split(";")]:
            found[column] = Variable(
                column,
                kind,
                {"ru": question_ru, "en": question_en},
                [(code, {"ru": ru, "en": en}) for code, ru, en in values],
            )

    for _ in codebook.codebook_rows(export, entry=entry):
        pass
    out = {}
    for column in columns:
        variable = found.get(column) or Variable(column, "string", {"ru": column, "en": column})
        if column == "practice_id":
            variable.type = "string"  # its codebook values are the practices' names
            variable.values = []
        variable._number()
        out[column] = variable
    return out


class _Text(io.TextIOBase):
    """A text stream over the CSV chunks the export yields, for pandas' reader."""

    def __init__(self, chunks: Iterator[str]):
        self._chunks, self._buffer = chunks, ""

    def readable(self) -> bool:
        return True

    def header(self) -> str:
        """The first line, left in the stream."""
        while "\n" not in self._buffer and (piece := next(self._chunks, None)) is not None:
            self._buffer += piece
        return self._buffer.split("\n", 1)[0]

    def read(self, size: int | None = -1) -> str:
        while size is None or size < 0 or len(self._buffer) < size:
            piece = next(self._chunks, None)
            if piece is None:
                break
            self._buffer += piece
        if size is None or size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


@dataclass
class Column:
    """A column of a labelled file, read from the CSV: the codes in order of appearance and,
    per row, the position of its code among them (text columns too: a respondent's id or a
    practice id repeats on many rows and is kept once)."""

    variable: Variable
    codes: list[str]
    cells: np.ndarray  # per row, the int32 position of its code in ``codes``

    def lookup(self, values: dict, dtype) -> np.ndarray:
        """Per row, the value of its code in ``values``."""
        return np.array([values[code] for code in self.codes], dtype=dtype)[self.cells]

    def text(self) -> np.ndarray:
        """Per row, its cell as the CSV has it (object array of shared strings)."""
        return np.array(self.codes, dtype=object)[self.cells]

    def series(self, values: dict, dtype):
        """A polars Series of the column, ``values`` per code (None: null), gathered by row."""
        import polars as pl

        distinct = pl.Series(self.variable.name, [values[c] for c in self.codes], dtype=dtype)
        return distinct.gather(pl.Series(self.cells, dtype=pl.UInt32))


def columns_of(export, name: str, progress=None) -> dict[str, Column]:
    """The file's CSV, as the export writes it (:meth:`Export.text`), read chunk by chunk and
    typed as it goes: a coded column keeps one small integer per row, never its text, so
    memory follows the number of cells, not their length. Codes the codebook lacks are
    added to their variable, labelled by themselves."""
    stream = _Text(export.text(BY_NAME[name].stem, progress))
    options = {"sep": export.delimiter, "keep_default_na": False, "na_filter": False}
    header = pd.read_csv(io.StringIO(stream.header()), dtype=str, **options).columns
    found = variables(export, name, list(header))
    seen: dict[str, dict[str, int]] = {column: {} for column in found}
    parts: dict[str, list[np.ndarray]] = {column: [] for column in found}
    rows = max(1, CHUNK_CELLS // max(1, len(found)))
    with pd.read_csv(stream, chunksize=rows, dtype=str, **options) as reader:
        for chunk in reader:
            for column in found:
                positions, chunk_codes = pd.factorize(chunk[column].to_numpy(dtype=object))
                known = seen[column]
                codes = [known.setdefault(code, len(known)) for code in chunk_codes]
                parts[column].append(np.array(codes, dtype=np.int32)[positions])
    out = {}
    for column, variable in found.items():
        codes = list(seen[column])
        if variable.coded:
            for code in codes:
                variable.add(code)
        cells = np.concatenate(parts.pop(column) or [np.array([], dtype=np.int32)])
        out[column] = Column(variable, codes, cells)
    return out


def fit_bytes(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-8 bytes (cut on a character, ending in "…")."""
    if len(text.encode("utf-8")) <= limit:
        return text
    while len((text + "…").encode("utf-8")) > limit:
        text = text[:-1]
    return text.rstrip() + "…"


def fit_chars(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters (ending in "…" when cut)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def stata_names(columns: list[str]) -> dict[str, str]:
    """Stata names of the columns (at most 32 characters less the digits of the number of
    columns): a longer one keeps its kind and suffix (``__foreign_rating``) and shortens
    its practice id; a clash ends in a number."""
    limit = DTA_NAME - len(str(len(columns)))
    out: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        name = column
        if len(name) > limit:
            head, sep, tail = column.partition("__")
            name = head[: limit - len(sep + tail)] + sep + tail if sep else column
            name = name[:limit]
        base, n = name, 1
        while name in taken:
            n += 1
            name = base[: limit - len(str(n))] + str(n)
        taken.add(name)
        out[column] = name
    return out


# -- writers -----------------------------------------------------------------------------------
def file_bytes(export, name: str, progress=None) -> Iterator[bytes]:
    """A labelled file's bytes in chunks (``name`` from the registry: responses.sav...)."""
    writer = {"sav": write_sav, "dta": write_dta, "parquet": write_parquet}[BY_NAME[name].format]
    columns = columns_of(export, name, progress)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, BY_NAME[name].label)
        writer(columns, path, export.options.lang)
        del columns
        with open(path, "rb") as fh:
            while piece := fh.read(CHUNK):
                yield piece


def write_sav(columns: dict[str, Column], path: str, lang: str) -> None:
    """SPSS: coded columns as numbers with value labels, -1/-2/-3 user-missing."""
    import pyreadstat

    data, labels, value_labels, missing, measure = {}, {}, {}, {}, {}
    for name, column in columns.items():
        variable = column.variable
        labels[name] = fit_bytes(variable.question[lang], SAV_VARIABLE_LABEL)
        measure[name] = "ordinal" if variable.rating else "nominal"
        if not variable.coded:
            data[name] = column.text()
            continue
        data[name] = column.lookup(variable.number, np.float64)
        value_labels[name] = {
            float(variable.number[code]): fit_bytes(text[lang], SAV_VALUE_LABEL)
            for code, text in variable.values
        }
        codes = [float(variable.number[c]) for c, _ in variable.values if variable.missing(c)]
        if codes:
            missing[name] = codes
    pyreadstat.write_sav(
        pd.DataFrame(data, columns=list(columns)),
        path,
        column_labels=labels,
        variable_value_labels=value_labels,
        missing_ranges=missing,
        variable_measure=measure,
    )


def write_dta(columns: dict[str, Column], path: str, lang: str) -> None:
    """Stata (format 118, UTF-8): coded columns as numbers with value labels, declared
    missing as the extended missing values .a, .b, .c."""
    import pyreadstat

    names = stata_names(list(columns))
    data, labels, value_labels, missing = {}, {}, {}, {}
    for column, cells in columns.items():
        name, variable = names[column], cells.variable
        labels[name] = fit_chars(variable.question[lang], DTA_VARIABLE_LABEL)
        if not variable.coded:
            data[name] = cells.text()
            continue
        stata = {
            code: MISSING[code][1] if variable.missing(code) else variable.number[code]
            for code, _ in variable.values
        }
        data[name] = cells.lookup(stata, object)
        value_labels[name] = {
            stata[code]: fit_chars(text[lang], DTA_VALUE_LABEL) for code, text in variable.values
        }
        letters = [stata[c] for c, _ in variable.values if variable.missing(c)]
        if letters:
            missing[name] = letters
    pyreadstat.write_dta(
        sniffable(pd.DataFrame(data, columns=[names[c] for c in columns]), missing),
        path,
        column_labels=labels,
        version=DTA_VERSION,
        variable_value_labels=value_labels,
        missing_user_values=missing,
    )


SNIFFED = 100  # rows narwhals reads to tell a text column from a mixed one


def sniffable(frame: pd.DataFrame, missing: dict[str, list[str]]) -> pd.DataFrame:
    """The rows of a Stata frame with, for every coded column, a number among the first
    100 rows: pyreadstat (through narwhals) takes an object column whose first 100 cells
    are all text, here all missing letters, for a text column and fails on its numbers.
    Rows that hold such a column's first number move to the front; otherwise the order is
    the CSV's."""
    ahead: list[int] = []
    for name, letters in missing.items():
        cells = frame[name]
        if cells.iloc[:SNIFFED].isin(letters).all() and not cells.isin(letters).all():
            position = int((~cells.isin(letters)).to_numpy().argmax())
            if position not in ahead:
                ahead.append(position)
    if not ahead:
        return frame
    if len(ahead) > SNIFFED:
        raise ValueError("too many columns with no number in their first 100 rows")
    first = set(ahead)
    order = ahead + [i for i in range(len(frame)) if i not in first]
    return frame.iloc[order].reset_index(drop=True)


def category_labels(variable: Variable, lang: str) -> dict[str, str]:
    """Per substantive code, its label as a Parquet category (unique within the column)."""
    out: dict[str, str] = {}
    for code, text in variable.values:
        if variable.missing(code):
            continue
        label = text[lang] or code
        out[code] = label if label not in out.values() else f"{label} ({code})"
    return out


def parquet_frame(columns: dict[str, Column], lang: str):
    """The analysis-ready polars frame: Enum columns of the labels (all of a column's labels,
    in codebook order), nullable Int64, nulls for the declared missing values."""
    import polars as pl

    series = []
    for column in columns.values():
        variable = column.variable
        if not variable.coded:
            series.append(column.series({c: c for c in column.codes}, pl.String))
        elif variable.type in NUMERIC_TYPES and all(
            _integer(code) for code, _ in variable.values if not variable.missing(code)
        ):
            number = {c: None if variable.missing(c) else int(c) for c in column.codes}
            series.append(column.series(number, pl.Int64))
        else:
            labels = category_labels(variable, lang)
            label = {code: labels.get(code) for code in column.codes}  # missing: None
            enum = pl.Enum(list(dict.fromkeys(labels.values())))
            series.append(column.series(label, pl.String).cast(enum))
    return pl.DataFrame(series)


def parquet_metadata(columns: dict[str, Column], lang: str) -> dict:
    """Both languages' labels of every column, and the codes behind each category."""
    return {
        "labels_language": lang,
        "missing": {
            "": "not applicable (an empty cell of the CSV): null",
            SUPPRESSED: "suppressed for anonymity: null",
            RATING_MIXED.code: "in rating columns, mixed / can't say (never a rating): null",
        },
        "columns": {
            name: {
                "type": column.variable.type,
                "label_ru": column.variable.question["ru"],
                "label_en": column.variable.question["en"],
                "values": [
                    {
                        "code": code,
                        "label_ru": text["ru"],
                        "label_en": text["en"],
                        "missing": column.variable.missing(code),
                    }
                    for code, text in column.variable.values
                ],
            }
            for name, column in columns.items()
        },
    }


def write_parquet(columns: dict[str, Column], path: str, lang: str) -> None:
    """Parquet, written by polars (Zstandard): the typed frame, with the labels of both
    languages in the file's key-value metadata (key ``survey_export``, JSON). polars stores
    the Arrow schema too, so pandas (through pyarrow), R's arrow, polars and DuckDB read the
    labels as categories (factors, Enum).

    Not pyarrow: installed, it is imported by pandas in every process (about 66 MB more in
    each web worker) and changes pandas' default string type."""
    metadata = json.dumps(parquet_metadata(columns, lang), ensure_ascii=False)
    parquet_frame(columns, lang).write_parquet(path, metadata={METADATA_KEY: metadata})
