"""The export as a Frictionless data package: ``datapackage.json`` beside the CSV files,
and the ready-to-run loaders (``load.py``, ``load.R``) that read it.

Every field comes from the export's own headers (the columns the CSV writes) and is
described from the codebook's data (:func:`survey.export.codebook.codebook_rows`), so the
package cannot describe a column the CSV does not have, nor leave one out. Coded columns
are strings whose ``enum`` is the list of codes; their labels in both languages are
``categories`` (Data Package v2: value and English label) and ``x-categoryLabels``
(``{"ru": [...], "en": [...]}``, in the order of the codes). The cells that mean no value
(:data:`MISSING`: empty, and the suppressed code) are the ``missingValues``; what each
means in a column is in ``x-missingValueLabels``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from survey.anonymize import SUPPRESSED
from survey.export import codebook
from survey.export.files import BY_NAME, LINE_END

# Cells that are no value: empty (not applicable, not asked, not answered) and suppressed.
MISSING = ["", SUPPRESSED]
LOADERS = Path(__file__).with_name("loaders")
# The loader files of the registry and their text in survey/export/loaders/.
LOADER_FILES = {"load_py": "load.py", "load_r": "load.R"}
# The codebook's own columns (the header is codebook.HEADER).
CODEBOOK_FIELDS = {
    "file": ("Файл (или файлы) со столбцом", "The file (or files) with the column"),
    "column": ("Столбец", "Column"),
    "type": ("Тип значений", "Type of the values"),
    "values": ("Коды значений через «|»", "The value codes, separated by “|”"),
    "labels_ru": ("Значения кодов по-русски", "The codes' labels in Russian"),
    "labels_en": ("Значения кодов по-английски", "The codes' labels in English"),
    "question_ru": ("Вопрос или смысл столбца по-русски", "Question or meaning, in Russian"),
    "question_en": ("Вопрос или смысл столбца по-английски", "Question or meaning, in English"),
    "catalog_version": ("Версия каталога практик", "Version of the practice catalogue"),
    "asked_in_versions": (
        "Версии каталога, задававшие этот вопрос в этой формулировке",
        "Catalogue versions that asked this question in this wording",
    ),
}
# Keys: one row per response in the wide and paradata files, per practice and kind in the
# long one; both join the responses on respondent_id.
PRIMARY_KEYS = {
    "responses": ["respondent_id"],
    "paradata": ["respondent_id"],
    "answers_long": ["respondent_id", "practice_id", "company_kind"],
}
JOINS_RESPONSES = ("paradata", "answers_long")


def headers(export, name: str) -> list[str]:
    """The columns a CSV file of the export is written with."""
    from survey.export.release import EXAMPLE_COLUMNS  # release imports this module

    return {
        "responses": export.header,
        "answers_long": export.long_header,
        "paradata": export.paradata_header,
        "codebook": lambda: list(codebook.HEADER),
        "examples": lambda: list(EXAMPLE_COLUMNS),
    }[name]()


def _entries(export) -> tuple[dict[tuple[str, str], tuple], dict[str, tuple]]:
    """The codebook's columns, by (file, column) and by column name alone (a column that
    the codebook describes once for several files, e.g. respondent_id, is_demo)."""
    by_file: dict[tuple[str, str], tuple] = {}
    by_name: dict[str, tuple] = {}

    def entry(files, column, kind, values, question_ru, question_en, _versions):
        described = (kind, list(values), question_ru, question_en)
        for file in files.split("; "):
            by_file[(file, column)] = described
        by_name.setdefault(column, described)

    for _ in codebook.codebook_rows(export, entry):
        pass
    return by_file, by_name


def _unique(labels: list[str], codes: list[str]) -> list[str]:
    """Labels made unique within a column (a repeated label gets its code appended), so
    that they can be the categories of a pandas categorical or an R factor."""
    return [
        f"{label} ({code})" if labels.count(label) > 1 else label
        for label, code in zip(labels, codes, strict=True)
    ]


def field(column: str, described: tuple | None) -> dict:
    """The Table Schema field of one column, from its codebook entry."""
    if described is None:  # every column has one (tests/test_datapackage.py)
        return {"name": column, "type": "string"}
    kind, values, question_ru, question_en = described
    coded = [v for v in values if v[0] not in MISSING]
    out: dict = {
        "name": column,
        "type": "integer" if kind == "integer" and not coded else "string",
        "title": question_en,
        "description": question_ru,
        "x-labels": {"ru": question_ru, "en": question_en},
        "x-codebookType": kind,
    }
    if coded:
        codes = [code for code, _ru, _en in coded]
        ru = _unique([r for _c, r, _e in coded], codes)
        en = _unique([e for _c, _r, e in coded], codes)
        out["constraints"] = {"enum": codes}
        out["categories"] = [{"value": c, "label": e} for c, e in zip(codes, en, strict=True)]
        out["x-categoryLabels"] = {"ru": ru, "en": en}
    missing = {code: {"ru": r, "en": e} for code, r, e in values if code in MISSING}
    if missing:
        out["x-missingValueLabels"] = missing
    return out


def resource(export, name: str, described) -> dict:
    """The data resource of one CSV file."""
    by_file, by_name = described
    label = BY_NAME[name].label
    if name == "codebook":
        fields = [
            {"name": c, "type": "string", "title": en, "description": ru,
             "x-labels": {"ru": ru, "en": en}}
            for c in headers(export, name)
            for ru, en in [CODEBOOK_FIELDS[c]]
        ]  # fmt: skip
    else:
        fields = [
            field(c, by_file.get((label, c)) or by_name.get(c)) for c in headers(export, name)
        ]
    schema: dict = {"fields": fields, "missingValues": [""] if BY_NAME[name].free_text else MISSING}
    if name in PRIMARY_KEYS:
        schema["primaryKey"] = PRIMARY_KEYS[name]
    if name in JOINS_RESPONSES:
        schema["foreignKeys"] = [
            {
                "fields": ["respondent_id"],
                "reference": {"resource": "responses", "fields": ["respondent_id"]},
            }
        ]
    return {
        "name": name,
        "path": label,
        "type": "table",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": export.encoding,
        "x-byteOrderMark": export.encoding == "utf-8-sig",
        "dialect": {
            "delimiter": export.delimiter,
            "lineTerminator": LINE_END,
            "quoteChar": '"',
            "doubleQuote": True,
            "header": True,
        },
        "schema": schema,
    }


def descriptor(export) -> dict:
    """``datapackage.json`` of an export: its CSV resources, the catalogue version, the k
    reached and whether demo or pilot responses are in it."""
    described = _entries(export)
    report = export.plan.report()
    demo = export.population.use_demo
    disclosure = {
        "k_required": report["k_required"],
        "k_achieved": report["k_achieved"],
        "records": export.records,
        "suppressed_records": report["suppressed_records"],
        "k_planned_over": "real responses only" if export.population.use_real else "demo",
        "report": BY_NAME["disclosure_report"].label,
    }
    if export.demo_plan:
        disclosure["demo_k_achieved"] = export.demo_plan.smallest_class()
    marks = ("ДЕМО-ДАННЫЕ: ", "DEMO DATA: ") if demo else ("", "")
    title = (
        f"{marks[0]}Анонимизированная выгрузка опроса о практиках управления",
        f"{marks[1]}Anonymized export of the management-practice survey",
    )
    names = [n for n in export.file_names() if BY_NAME[n].extension == "csv"]
    return {
        "name": export.download_stem,
        "title": title[1],
        "description": title[0],
        "x-labels": {"ru": title[0], "en": title[1]},
        "x-catalogVersion": export.catalog.version,
        "x-disclosure": disclosure,
        "x-demoDataIncluded": demo,
        "x-realDataIncluded": export.population.use_real,
        "x-pilotIncluded": export.includes_pilot,
        "x-missingValues": {
            "": "not applicable, not asked or not answered (see x-missingValueLabels)",
            SUPPRESSED: "suppressed for anonymity (disclosure control)",
        },
        "x-loaders": [BY_NAME[n].label for n in LOADER_FILES if n in export.file_names()],
        "resources": [resource(export, n, described) for n in names],
    }


def text(export, name: str) -> Iterator[str]:
    """The text of ``datapackage.json`` or of a loader."""
    if name == "datapackage":
        yield json.dumps(descriptor(export), ensure_ascii=False, indent=2) + "\n"
    else:
        yield (LOADERS / LOADER_FILES[name]).read_text(encoding="utf-8")
