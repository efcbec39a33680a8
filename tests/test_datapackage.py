"""The export's Frictionless data package and its loaders: ``datapackage.json`` validates
with the frictionless library, describes exactly the columns the CSV files have, in both
languages, for both CSV dialects; ``load.py`` reads the files as written into labelled
frames; ``load.R`` is in the zip."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import frictionless
import pandas as pd
import pytest
from sqlalchemy import select

import survey
from survey.catalog import load_catalog
from survey.extensions import db
from survey.models import PracticeExample, Response
from tests.helpers import bearer, rscript, seed
from tests.test_export import allow_full_suppression, api_get

CATALOG = load_catalog(Path(survey.__file__).with_name("practices.yaml"))
RESPONDENTS = 300
MISSING = {"", "suppressed"}  # what the CSV writes for no value (survey.anonymize.SUPPRESSED)
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)
DIALECTS = {"utf8": (",", "utf-8", False), "excel": (";", "utf-8-sig", True)}
DATA_FILES = {"responses", "answers_long", "paradata", "codebook"}
EXAMPLES = [("=cmd|' /C calc'!A0", "ru"), ("Ретро каждые две недели", None)]


def add_examples(app) -> None:
    """Two free-text examples on the first response (one with no kind stated)."""
    with app.app_context():
        rid = db.session.scalar(select(Response.id).order_by(Response.id).limit(1))
        for text, kind in EXAMPLES:
            db.session.add(
                PracticeExample(
                    response_id=rid,
                    practice_id=CATALOG.practices[0].id,
                    company_kind=kind,
                    text=text,
                )
            )
        db.session.commit()


def export_zip(app, client, tmp_path, fmt: str, examples: bool = False) -> Path:
    """A demo study of a few hundred respondents exported through the API, unzipped."""
    seed(app, RESPONDENTS, seed_value=17)
    allow_full_suppression(app)
    params = {"format": fmt}
    if examples:
        add_examples(app)
        params |= {"include_examples": "1", "confirm_examples": "1"}
    data = api_get(client, bearer(app), "zip", **params).data
    folder = tmp_path / f"export-{fmt}"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(folder)
    return folder


def raw_csv(folder: Path, resource: dict, fmt: str) -> pd.DataFrame:
    """A resource's CSV file as text cells, read with the dialect the export wrote."""
    delimiter, encoding, _bom = DIALECTS[fmt]
    return pd.read_csv(
        folder / resource["path"],
        sep=delimiter,
        encoding=encoding,
        dtype=str,
        keep_default_na=False,
    )


def csv_rows(path: Path, delimiter: str, encoding: str) -> list[list[str]]:
    """A CSV file's rows as the csv module reads them (header first)."""
    with path.open(encoding=encoding, newline="") as handle:
        return list(csv.reader(handle, delimiter=delimiter))


@pytest.mark.parametrize(("fmt", "examples"), [("utf8", True), ("excel", False)])
def test_the_data_package_validates_and_describes_every_column_in_both_languages(
    app, client, tmp_path, fmt, examples
):
    folder = export_zip(app, client, tmp_path, fmt, examples)
    report = frictionless.validate(folder / "datapackage.json")
    assert report.valid, report.flatten(["type", "message"])[:10]

    package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    names = {r["name"] for r in package["resources"]}
    assert names == DATA_FILES | ({"examples"} if examples else set())
    delimiter, encoding, bom = DIALECTS[fmt]
    disclosure = json.loads((folder / "disclosure_report.json").read_text(encoding="utf-8"))
    assert package["x-catalogVersion"] == CATALOG.version
    assert package["x-disclosure"]["k_achieved"] == disclosure["k_achieved"] >= 5
    assert package["x-disclosure"]["k_required"] == 5
    assert package["x-demoDataIncluded"] is True and package["name"].startswith("demo-")
    assert package["x-pilotIncluded"] is False
    assert {"load.py", "load.R"} <= {p.name for p in folder.iterdir()}

    for resource in package["resources"]:
        path = folder / resource["path"]
        assert path.read_bytes().startswith(b"\xef\xbb\xbf") is bom, resource["path"]
        assert resource["dialect"]["delimiter"] == delimiter
        assert resource["encoding"] == encoding
        rows = csv_rows(path, delimiter, encoding)
        fields = resource["schema"]["fields"]
        # Every CSV column described, no described field missing from the CSV, in order.
        assert [f["name"] for f in fields] == rows[0], resource["name"]
        assert len(rows) > 1 or resource["name"] == "examples"
        for i, f in enumerate(fields):
            labels = f["x-labels"]
            assert labels["en"] and CYRILLIC.search(labels["ru"]), (resource["name"], f["name"])
            assert f["title"] == labels["en"]
            column = {row[i] for row in rows[1:]}
            if "categories" in f:
                codes = f["constraints"]["enum"]
                assert [c["value"] for c in f["categories"]] == codes
                per_lang = f["x-categoryLabels"]
                assert len(per_lang["ru"]) == len(per_lang["en"]) == len(codes)
                assert all(per_lang["ru"]) and all(per_lang["en"])
                # An independent look at the cells: only declared codes or missing values.
                assert column <= set(codes) | MISSING, (f["name"], column - set(codes))
            elif f["type"] == "integer":
                assert all(v.isdigit() for v in column - MISSING), f["name"]
    if examples:
        rows = csv_rows(folder / "examples.csv", delimiter, encoding)
        pid = CATALOG.practices[0].id
        # The formula-like text neutralised, the unstated kind an empty (missing) cell.
        expected = [[pid, "ru", "'" + EXAMPLES[0][0]], [pid, "", EXAMPLES[1][0]]]
        assert sorted(rows[1:]) == sorted(expected)


def test_the_keys_and_missing_values_are_declared(app, client, tmp_path):
    folder = export_zip(app, client, tmp_path, "utf8")
    package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    schemas = {r["name"]: r["schema"] for r in package["resources"]}
    assert schemas["responses"]["primaryKey"] == ["respondent_id"]
    for name in ("answers_long", "paradata"):
        joins = {"resource": "responses", "fields": ["respondent_id"]}
        assert schemas[name]["foreignKeys"] == [{"fields": ["respondent_id"], "reference": joins}]
        assert set(schemas[name]["missingValues"]) == MISSING
    met = next(f for f in schemas["answers_long"]["fields"] if f["name"] == "met")
    assert {"1", "0", "dk"} <= set(met["constraints"]["enum"])
    assert not MISSING & set(met["constraints"]["enum"])
    assert set(met["x-missingValueLabels"]) == MISSING
    assert CYRILLIC.search(met["x-missingValueLabels"]["suppressed"]["ru"])

    # A cell outside the declared codes is caught by the validator (the package checks).
    path = folder / "answers_long.csv"
    lines = path.read_bytes().decode("utf-8").split("\r\n")
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index("met")] = "maybe"
    lines[1] = ",".join(cells)
    path.write_bytes("\r\n".join(lines).encode("utf-8"))
    report = frictionless.validate(folder / "datapackage.json")
    assert not report.valid
    assert ["constraint-error"] in report.flatten(["type"])


LOAD_PY = """
import pickle, runpy, sys
ns = runpy.run_path("load.py")  # runs the script: ns["frames"] in English
with open(sys.argv[1], "wb") as out:
    pickle.dump({"en": ns["frames"], "ru": ns["load"](lang="ru")}, out)
"""


@pytest.mark.parametrize("fmt", ["excel", "utf8"])
def test_load_py_reads_the_zips_files_into_labelled_frames(app, client, tmp_path, fmt):
    folder = export_zip(app, client, tmp_path, fmt)
    out = tmp_path / "frames.pickle"
    done = subprocess.run(  # the loader as a researcher runs it, in the unzipped folder
        [sys.executable, "-c", LOAD_PY, str(out)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = pd.read_pickle(out)
    frames, frames_ru = loaded["en"], loaded["ru"]
    assert set(frames) == DATA_FILES

    package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    for resource in package["resources"]:
        raw = raw_csv(folder, resource, fmt)
        frame = frames[resource["name"]]
        assert list(frame.columns) == list(raw.columns)
        assert len(frame) == len(raw) > 0
        for f in resource["schema"]["fields"]:
            name, cells = f["name"], raw[f["name"]]
            missing = cells.isin(MISSING) if resource["name"] != "codebook" else cells.eq("")
            assert (frame[name].isna() == missing).all(), name
            if "categories" in f:
                assert isinstance(frame[name].dtype, pd.CategoricalDtype), name
                en = dict(zip(f["constraints"]["enum"], f["x-categoryLabels"]["en"], strict=True))
                ru = dict(zip(f["constraints"]["enum"], f["x-categoryLabels"]["ru"], strict=True))
                kept = ~missing
                assert (frame[name][kept].astype(str) == cells[kept].map(en)).all(), name
                assert (
                    frames_ru[resource["name"]][name][kept].astype(str) == cells[kept].map(ru)
                ).all()
            elif f["type"] == "integer":
                assert str(frame[name].dtype) == "Int64", name
                assert (frame[name][~missing].astype(int) == cells[~missing].astype(int)).all()
            else:
                assert (frame[name][~missing] == cells[~missing]).all(), name
        labels = frame.attrs["labels"]
        assert set(labels) == set(frame.columns)
    # A fully suppressed or an answered cell, as a researcher would read it.
    met = frames["answers_long"]["met"]
    assert set(met.cat.categories) >= {
        "existed (applied to me, or existed but not for me; before December 2026: “met it”)"
    }


# Every column of every frame load.R builds: its class, NA count, factor levels and the count
# of each level (or the sum of an integer column), and its label.
R_SUMMARY = """
source("load.R")
summary <- lapply(frames, function(frame) lapply(frame, function(x) list(
  class = class(x)[1], na = sum(is.na(x)),
  levels = if (is.factor(x)) as.list(levels(x)) else list(),
  counts = if (is.factor(x)) as.list(table(x)) else list(),
  sum = if (is.integer(x)) sum(x, na.rm = TRUE) else NULL,
  label = if (is.null(attr(x, "label"))) "" else attr(x, "label"))))
cat(jsonlite::toJSON(list(lang = lang, frames = summary), auto_unbox = TRUE), "\n")
"""


@pytest.mark.parametrize("fmt", ["utf8", "excel"])
def test_load_r_reads_every_file_with_its_labels_like_a_recount(app, client, tmp_path, fmt):
    folder = export_zip(app, client, tmp_path, fmt)
    script = (folder / "load.R").read_text(encoding="utf-8")
    for lang in ("en", "ru"):
        (folder / "load.R").write_text(
            script.replace('lang <- "en"', f'lang <- "{lang}"'), encoding="utf-8"
        )
        loaded = rscript(folder, R_SUMMARY)
        assert loaded["lang"] == lang
        package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
        assert set(loaded["frames"]) == {r["name"] for r in package["resources"]}
        for resource in package["resources"]:
            raw = raw_csv(folder, resource, fmt)
            frame = loaded["frames"][resource["name"]]
            assert list(frame) == list(raw.columns)
            for f in resource["schema"]["fields"]:
                name, cells, column = f["name"], raw[f["name"]], frame[f["name"]]
                missing = cells.isin(MISSING) if resource["name"] != "codebook" else cells.eq("")
                assert column["na"] == int(missing.sum()), name
                assert column["label"] == f.get("x-labels", {}).get(lang, ""), name
                if "categories" in f:
                    labels = f["x-categoryLabels"][lang]
                    code_label = dict(zip(f["constraints"]["enum"], labels, strict=True))
                    assert column["class"] == "factor" and column["levels"] == labels, name
                    recount = cells[~missing].map(code_label).value_counts().to_dict()
                    assert {k: v for k, v in column["counts"].items() if v} == recount, name
                elif f["type"] == "integer":
                    assert column["class"] == "integer", name
                    assert column["sum"] == int(cells[~missing].astype(int).sum()), name
                else:
                    assert column["class"] == "character", name


def test_the_package_and_loaders_are_single_downloads_too(app, client):
    seed(app, 40, seed_value=3)
    allow_full_suppression(app)
    headers = bearer(app)
    whole = zipfile.ZipFile(io.BytesIO(api_get(client, headers, "zip").data))
    for name, label, mimetype in (
        ("datapackage", "datapackage.json", "application/json"),
        ("load_py", "load.py", "text/plain"),
        ("load_r", "load.R", "text/plain"),
    ):
        r = api_get(client, headers, name)
        assert r.mimetype == mimetype and label in r.headers["Content-Disposition"]
        assert r.data == whole.read(label), name
    excel = api_get(client, headers, "datapackage", format="excel").data
    assert not excel.startswith(b"\xef\xbb\xbf")  # JSON never gets the CSV's byte-order mark
    assert json.loads(excel)["resources"][0]["dialect"]["delimiter"] == ";"
