"""Labelled export formats: SPSS .sav, Stata .dta and Parquet read back cell by cell like the
CSV, with every variable and value label in both languages, "not applicable" and
"suppressed" declared missing, the CSV's columns and nothing else, and the same refusals."""

from __future__ import annotations

import io
import json
import os
import zipfile

import duckdb
import pandas as pd
import polars as pl
import pyreadstat
import pytest

from survey.export import Export, ExportOptions
from survey.export.codebook import codebook_rows
from survey.export.formats import sniffable
from tests.helpers import bearer, fetch, log_in, rscript, seed
from tests.test_export import API, CLI_WARNING, DOWNLOAD, PAGE, allow_full_suppression, frame

LABELLED = ("sav", "dta", "parquet")
STEMS = ("responses", "answers_long")
RATING_TYPE = "integer 1-5, or the code mixed"
# The documented coding, written out here: declared missing values per format.
SAV_MISSING = {"": -1, "suppressed": -2, "mixed": -3}
DTA_MISSING = {"": "a", "suppressed": "b", "mixed": "c"}


# -- the expected coding, from the codebook and the documented rule ----------------------------
def codebook_of(app, lang_options: dict) -> dict[str, dict[str, dict]]:
    """Per CSV file, per column: type, questions and (code, ru, en) values, as the codebook
    gives them for an export with these options."""
    found: dict[str, dict[str, dict]] = {"responses": {}, "answers_long": {}}

    def entry(file, column, kind, values, question_ru, question_en, _versions):
        for stem in STEMS:
            if f"{stem}.csv" in [f.strip() for f in file.split(";")]:
                found[stem][column] = {
                    "type": kind,
                    "question": {"ru": question_ru, "en": question_en},
                    "values": [tuple(v) for v in values],
                }

    with app.app_context():
        for _ in codebook_rows(Export(ExportOptions(**lang_options)), entry=entry):
            pass
    return found


def is_string(column: str, spec: dict | None) -> bool:
    return spec is None or column == "practice_id" or spec["type"] in ("string", "free text")


def is_missing(code: str, spec: dict) -> bool:
    return code in ("", "suppressed") or (spec["type"] == RATING_TYPE and code == "mixed")


def numbers(spec: dict) -> dict[str, int]:
    """The documented numbers of a column's codes: 1/0 and, in rating, 0/1 and integer
    columns, integers keep their value; other codes follow in codebook order."""
    numeric = spec["type"] in (RATING_TYPE, "0/1", "integer")

    def keeps(code):
        return not is_missing(code, spec) and code.isdigit() and (numeric or code in ("0", "1"))

    following = max([0, *(int(c) for c, _ru, _en in spec["values"] if keeps(c))]) + 1
    out = {}
    for code, _ru, _en in spec["values"]:
        if is_missing(code, spec):
            out[code] = SAV_MISSING[code]
        elif keeps(code):
            out[code] = int(code)
        else:
            out[code] = following
            following += 1
    return out


def label_matches(read: str, expected: str) -> bool:
    """A label as written, or cut to the format's limit with an ellipsis."""
    return read == expected or (read.endswith("…") and expected.startswith(read[:-1].rstrip()))


def export_zip(client, headers, lang: str) -> dict[str, bytes]:
    r = fetch(
        client,
        f"{API}/zip",
        headers=headers,
        query_string={"with": "sav,dta,parquet", "lang": lang},
    )
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    with zipfile.ZipFile(io.BytesIO(r.get_data())) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def on_disk(tmp_path, members: dict[str, bytes], name: str) -> str:
    path = os.path.join(tmp_path, name)
    with open(path, "wb") as fh:
        fh.write(members[name])
    return path


# -- checks per format -------------------------------------------------------------------------
def check_sav(path, csv: pd.DataFrame, specs: dict, lang: str) -> None:
    data, meta = pyreadstat.read_sav(path, user_missing=True, encoding="UTF-8")
    assert list(data.columns) == list(csv.columns)  # the CSV's columns, in its order
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    for column in csv.columns:
        spec = specs.get(column)
        if is_string(column, spec):
            assert data[column].tolist() == csv[column].tolist(), column
            continue
        assert label_matches(labels[column], spec["question"][lang]), (column, labels[column])
        expected = numbers(spec)
        assert set(csv[column]) <= set(expected), (column, set(csv[column]) - set(expected))
        assert data[column].tolist() == [float(expected[c]) for c in csv[column]], column
        value_labels = meta.variable_value_labels[column]
        position = 1 if lang == "ru" else 2
        for value in spec["values"]:
            read = value_labels[float(expected[value[0]])]
            assert label_matches(read, value[position]), (column, value, read)
        declared = {r["lo"] for r in meta.missing_ranges.get(column, [])}
        assert declared == {
            float(expected[c]) for c, _ru, _en in spec["values"] if is_missing(c, spec)
        }, column
    # Without user-missing values, the declared missing values read as missing.
    plain, _meta = pyreadstat.read_sav(path, encoding="UTF-8")
    for column in csv.columns:
        spec = specs.get(column)
        if not is_string(column, spec):
            missing = csv[column].map(lambda c, spec=spec: is_missing(c, spec))
            assert plain[column].isna().tolist() == missing.tolist(), column


def check_dta(path, csv: pd.DataFrame, specs: dict, lang: str) -> None:
    data, meta = pyreadstat.read_dta(path, user_missing=True, encoding="UTF-8")
    assert len(data.columns) == len(csv.columns)
    names = dict(zip(csv.columns, data.columns, strict=True))
    assert len(set(names.values())) == len(names)
    for column, name in names.items():
        assert len(name) <= 32
        if len(column) <= 29:
            assert name == column
        else:  # the practice id shortened, its kind and suffix kept
            head, _sep, tail = column.partition("__")
            assert name.endswith("__" + tail) and head.startswith(name[: -len(tail) - 2])
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    want = {}
    for column, name in names.items():
        spec = specs.get(column)
        if is_string(column, spec):
            want[name] = csv[column].tolist()
            continue
        assert label_matches(labels[name], spec["question"][lang]), (column, labels[name])
        expected = {
            code: DTA_MISSING[code] if is_missing(code, spec) else number
            for code, number in numbers(spec).items()
        }
        want[name] = [expected[c] for c in csv[column]]
        value_labels = meta.variable_value_labels[name]
        position = 1 if lang == "ru" else 2
        for value in spec["values"]:
            assert label_matches(value_labels[expected[value[0]]], value[position]), value
        # Stata has no list of declared missing values: every .a-.z is missing (read back
        # as the letters the column holds), and each is labelled above.
        letters = {DTA_MISSING[c] for c in set(csv[column]) if is_missing(c, spec)}
        assert set(meta.missing_user_values.get(name, [])) == letters, column
    # Cell by cell, row by row (a row keyed by its id, practice and kind: a .dta may put
    # first the rows that hold a column's first number, see formats.sniffable).
    rows = sorted(map(repr, data.itertuples(index=False, name=None)))
    wanted = sorted(map(repr, zip(*want.values(), strict=True)))
    assert rows == wanted


def check_parquet(path, csv: pd.DataFrame, specs: dict, lang: str) -> None:
    data = pl.read_parquet(path)
    assert data.columns == list(csv.columns)
    metadata = json.loads(pl.read_parquet_metadata(path)["survey_export"])
    assert metadata["labels_language"] == lang
    position = 1 if lang == "ru" else 2
    for column in csv.columns:
        spec = specs.get(column)
        cells = data[column]
        if is_string(column, spec):
            assert cells.to_list() == csv[column].tolist(), column
            continue
        described = metadata["columns"][column]
        assert described["label_ru"] == spec["question"]["ru"]
        assert described["label_en"] == spec["question"]["en"]
        assert [(v["code"], v["label_ru"], v["label_en"]) for v in described["values"]] == list(
            spec["values"]
        )
        if cells.dtype == pl.Int64:
            expected = [None if is_missing(c, spec) else int(c) for c in csv[column]]
        else:
            assert isinstance(cells.dtype, pl.Enum), (column, cells.dtype)
            label = {v[0]: v[position] for v in spec["values"]}
            expected = [None if is_missing(c, spec) else label[c] for c in csv[column]]
            categories = cells.dtype.categories.to_list()
            # every substantive label is a category, in codebook order; missing ones are not
            substantive = [label[v[0]] for v in spec["values"] if not is_missing(v[0], spec)]
            assert [c for c in categories if c in substantive] == list(dict.fromkeys(substantive))
            assert not set(categories) & {label.get(m) for m in ("", "suppressed")}
        assert cells.to_list() == expected, column
    check_parquet_in_duckdb(path, data)


def check_parquet_in_duckdb(path, data) -> None:
    """A second, independent Parquet reader (DuckDB's own, in C++) finds the same cells, row
    for row, and the declared missing values as SQL NULL."""
    connection = duckdb.connect()
    try:
        query = "SELECT * FROM read_parquet(?)"
        names = [row[0] for row in connection.execute(f"DESCRIBE {query}", [path]).fetchall()]
        rows = connection.execute(query, [path]).fetchall()
    finally:
        connection.close()
    assert names == data.columns
    assert len(rows) == data.height
    for position, name in enumerate(data.columns):
        assert [row[position] for row in rows] == data[name].to_list(), name


# -- tests -------------------------------------------------------------------------------------
def test_every_format_reads_back_like_the_csv_with_labels_in_both_languages(app, client, tmp_path):
    seed(app, 300, seed_value=7)
    allow_full_suppression(app)  # suppressed cells in the files, declared missing
    headers = bearer(app)
    specs = codebook_of(app, {"max_suppressed_share": 1.0})
    for lang in ("ru", "en"):
        members = export_zip(client, headers, lang)
        folder = tmp_path / lang
        folder.mkdir()
        for stem in STEMS:
            csv = frame(members[f"{stem}.csv"])
            assert "suppressed" in set(csv.to_numpy().ravel())  # the missing values are tested
            check_sav(on_disk(folder, members, f"{stem}.sav"), csv, specs[stem], lang)
            check_dta(on_disk(folder, members, f"{stem}.dta"), csv, specs[stem], lang)
            check_parquet(on_disk(folder, members, f"{stem}.parquet"), csv, specs[stem], lang)


def test_a_sav_with_russian_labels_reads_back_identical(app, client, tmp_path):
    seed(app, 200, seed_value=8)
    allow_full_suppression(app)
    r = fetch(client, f"{API}/answers_long.sav", headers=bearer(app), query_string={"lang": "ru"})
    assert r.status_code == 200 and r.mimetype == "application/x-spss-sav"
    assert 'filename="answers_long.sav"' in r.headers["Content-Disposition"]
    path = tmp_path / "answers_long.sav"
    path.write_bytes(r.get_data())
    _data, meta = pyreadstat.read_sav(str(path), encoding="UTF-8", user_missing=True)
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["company_kind"] == "Тип компании"
    assert labels["respondent_id"] == "Случайный идентификатор ответа (не связан с базой данных)"
    assert meta.variable_value_labels["company_kind"] == {
        1.0: "В российской компании",
        2.0: "В иностранной компании",
    }
    assert meta.variable_value_labels["met"][2.0] == "Не знаю / не помню"
    assert meta.variable_value_labels["met"][-2.0].startswith("скрыто для анонимности")
    assert meta.missing_ranges["met"] == [{"lo": -1.0, "hi": -1.0}, {"lo": -2.0, "hi": -2.0}]
    assert meta.file_encoding == "UTF-8"


def test_labelled_files_come_only_when_asked_and_a_bad_choice_is_a_400(app, client):
    seed(app, 200, seed_value=9)
    allow_full_suppression(app)
    headers = bearer(app)
    r = fetch(client, f"{API}/zip", headers=headers)
    with zipfile.ZipFile(io.BytesIO(r.get_data())) as archive:
        plain = set(archive.namelist())
    assert not {n for n in plain if n.endswith((".sav", ".dta", ".parquet"))}
    r = fetch(client, f"{API}/zip", headers=headers, query_string={"with": "parquet"})
    with zipfile.ZipFile(io.BytesIO(r.get_data())) as archive:
        assert set(archive.namelist()) - plain == {"responses.parquet", "answers_long.parquet"}
    for bad in ("xls", "sav,xls", "csv;sav"):
        r = fetch(client, f"{API}/zip", headers=headers, query_string={"with": bad})
        assert r.status_code == 400 and "with" in r.get_json()["message"], bad
    r = fetch(
        client, f"{API}/zip", headers=headers, query_string=[("with", "sav"), ("with", "dta")]
    )
    assert r.status_code == 400
    r = fetch(client, f"{API}/responses.xlsx", headers=headers)
    assert r.status_code == 400


def test_a_refused_export_is_refused_for_every_format(app, client):
    seed(app, 3, seed_value=10)  # three respondents cannot reach k = 5
    headers = bearer(app)
    r = fetch(client, f"{API}/responses", headers=headers)
    assert r.status_code == 409
    refusal = r.get_json()["message"]
    names = ["zip", *(f"{stem}.{ext}" for ext in LABELLED for stem in STEMS)]
    for name in names:
        r = fetch(
            client, f"{API}/{name}", headers=headers, query_string={"with": "sav,dta,parquet"}
        )
        assert r.status_code == 409, name
        assert r.get_json() == {"error": "export_refused", "message": refusal}, name
    log_in(app, client)
    for name in names[1:]:
        page = fetch(client, DOWNLOAD, query_string={"file": name})
        assert page.status_code == 409, name
        assert page.mimetype == "text/html"


@pytest.mark.filterwarnings(CLI_WARNING)
def test_the_cli_writes_the_formats_asked_for_in_the_language_asked_for(app, runner, tmp_path):
    seed(app, 200, seed_value=11)
    allow_full_suppression(app)
    out = tmp_path / "out"
    result = runner.invoke(args=["export", str(out), "--with", "sav,parquet", "--lang", "en"])
    assert result.exit_code == 0, result.output
    written = set(os.listdir(out))
    assert {"responses.sav", "answers_long.sav", "responses.parquet", "answers_long.parquet"} <= (
        written
    )
    assert not {n for n in written if n.endswith(".dta")}
    _data, meta = pyreadstat.read_sav(str(out / "answers_long.sav"), metadataonly=True)
    assert dict(zip(meta.column_names, meta.column_labels, strict=True))["company_kind"] == (
        "Kind of company"
    )
    csv = frame((out / "responses.csv").read_bytes())
    assert pl.read_parquet(out / "responses.parquet").columns == list(csv.columns)
    bad = runner.invoke(args=["export", str(tmp_path / "bad"), "--with", "xls"])
    assert bad.exit_code == 2 and "--with" in bad.output
    assert not (tmp_path / "bad").exists()


def test_a_stata_column_missing_in_its_first_hundred_rows_still_writes_its_numbers(tmp_path):
    # pyreadstat (through narwhals) takes an object column whose first 100 cells are text
    # for a text column: the row with the column's first number is moved to the front.
    cells = ["a"] * 150 + [3, "b", 1]
    frame_ = pd.DataFrame(
        {"id": [f"r{i}" for i in range(153)], "v": pd.Series(cells, dtype=object)}
    )
    path = str(tmp_path / "x.dta")
    pyreadstat.write_dta(
        sniffable(frame_, {"v": ["a", "b"]}),
        path,
        version=14,
        variable_value_labels={"v": {1: "one", 3: "three", "a": "n/a", "b": "suppressed"}},
        missing_user_values={"v": ["a", "b"]},
    )
    data, _meta = pyreadstat.read_dta(path, user_missing=True)
    assert data["id"].iloc[0] == "r150"
    assert sorted(zip(data["id"], map(str, data["v"]), strict=True)) == sorted(
        zip(frame_["id"], map(str, cells), strict=True)
    )


def test_the_dashboard_offers_the_formats_and_serves_them(app, client):
    seed(app, 200, seed_value=12)
    allow_full_suppression(app)
    log_in(app, client)
    page = fetch(client, PAGE, query_string={"lang": "en"}).get_data(as_text=True)
    for value in ("sav,dta,parquet", "responses.sav", "answers_long.dta", "responses.parquet"):
        assert f'value="{value}"' in page, value
    assert "declared missing values" in page
    r = fetch(client, DOWNLOAD, query_string={"file": "responses.parquet"})
    assert r.status_code == 200 and r.mimetype == "application/vnd.apache.parquet"
    parquet = pl.read_parquet(io.BytesIO(r.get_data()))
    csv = frame(fetch(client, DOWNLOAD, query_string={"file": "responses"}).get_data())
    assert list(parquet.columns) == list(csv.columns)
    r = fetch(client, DOWNLOAD, query_string={"with": "dta"})
    with zipfile.ZipFile(io.BytesIO(r.get_data())) as archive:
        assert {"responses.dta", "answers_long.dta"} <= set(archive.namelist())


def test_a_labelled_export_above_its_own_limit_is_a_job_in_the_language_asked(app, client):
    """SPSS and Stata files are written cell by cell: above EXPORT_SYNC_LIMIT_LABELLED a zip
    with them is a background job (the CSV alone stays synchronous up to EXPORT_SYNC_LIMIT),
    and the job's labels are in the language the request named, not the interface's."""
    seed(app, 40, seed_value=5)
    allow_full_suppression(app)
    app.config.update(JOBS_INLINE=True, EXPORT_SYNC_LIMIT=10**9, EXPORT_SYNC_LIMIT_LABELLED=10)
    log_in(app, client)
    assert fetch(client, DOWNLOAD, query_string={"file": "zip"}).status_code == 200
    specs = codebook_of(app, {"max_suppressed_share": 1.0})
    for lang in ("en", "ru"):
        r = client.get(DOWNLOAD, query_string={"file": "zip", "with": "sav", "lang": lang})
        assert r.status_code == 303 and "/researcher/jobs/" in r.location, r.status_code
        got = fetch(client, r.location.split("?")[0].rstrip("/") + "/file")
        assert got.status_code == 200 and got.mimetype == "application/zip"
        with zipfile.ZipFile(io.BytesIO(got.get_data())) as archive:
            assert {"responses.sav", "answers_long.sav"} <= set(archive.namelist())
            path = os.path.join(app.instance_path, f"job-{lang}.sav")
            with open(path, "wb") as fh:
                fh.write(archive.read("responses.sav"))
        _data, meta = pyreadstat.read_sav(path, metadataonly=True, encoding="UTF-8")
        labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
        coded = [c for c, spec in specs["responses"].items() if not is_string(c, spec)]
        assert coded
        for column in coded:
            assert label_matches(labels[column], specs["responses"][column]["question"][lang])


# Per column of a .sav or .dta read by R's haven (ReadStat in C, not pyreadstat's Python
# side): its variable label, value labels and the count of each value, declared missing
# values as "-1"... (SPSS user-missing) or ".a"... (Stata extended missing).
R_HAVEN = """
library(haven)
path <- commandArgs(trailingOnly = TRUE)[1]
data <- if (grepl("[.]sav$", path)) read_sav(path, user_na = TRUE) else read_dta(path)
cell <- function(x) {
  x <- as.vector(unclass(x))
  shown <- as.character(x)
  if (is.double(x)) {
    tagged <- is_tagged_na(x)
    shown[tagged] <- paste0(".", na_tag(x[tagged]))
  }
  shown
}
summary <- lapply(data, function(x) {
  labels <- attr(x, "labels")
  list(
    label = if (is.null(attr(x, "label"))) "" else attr(x, "label"),
    values = if (is.null(labels)) list() else as.list(cell(labels)),
    names = if (is.null(labels)) list() else as.list(names(labels)),
    counts = as.list(table(cell(x), useNA = "ifany"))
  )
})
cat(jsonlite::toJSON(list(names = names(data), columns = summary), auto_unbox = TRUE), "\\n")
"""


def r_number(value: float | int) -> str:
    """A number as R's as.character writes it (1, -1, 2.5)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def test_r_haven_reads_the_sav_and_dta_with_every_label_like_the_csv(app, client, tmp_path):
    seed(app, 120, seed_value=11)
    allow_full_suppression(app)
    specs = codebook_of(app, {"max_suppressed_share": 1.0})
    members = export_zip(client, bearer(app), "ru")
    for stem in STEMS:
        csv = frame(members[f"{stem}.csv"])
        for fmt in ("sav", "dta"):
            path = on_disk(tmp_path, members, f"{stem}.{fmt}")
            code = R_HAVEN.replace("commandArgs(trailingOnly = TRUE)[1]", json.dumps(path))
            read = rscript(tmp_path, code)
            assert len(read["names"]) == len(csv.columns)
            for column, name in zip(csv.columns, read["names"], strict=True):
                spec, got = specs[stem].get(column), read["columns"][name]
                if is_string(column, spec):
                    assert got["counts"] == csv[column].value_counts().to_dict(), column
                    continue
                assert label_matches(got["label"], spec["question"]["ru"]), (column, got)
                coded = {
                    c: (
                        "." + DTA_MISSING[c]
                        if fmt == "dta" and is_missing(c, spec)
                        else r_number(n)
                    )
                    for c, n in numbers(spec).items()
                }
                recount = csv[column].map(coded).value_counts().to_dict()
                assert got["counts"] == recount, (stem, fmt, column)
                labelled = dict(zip(got["values"], got["names"], strict=True))
                for value_code, ru, _en in spec["values"]:
                    assert label_matches(labelled[coded[value_code]], ru), (column, value_code)
