"""The registry of export files: every file an export can hold, named once.

The zip, the single-file downloads, the CLI and the codebook all take their list of files
from here; a file that is not in :data:`FILES` cannot be written.
"""

from __future__ import annotations

from dataclasses import dataclass

# CSV dialects: delimiter and encoding ("excel": semicolons and a byte-order mark, which
# spreadsheet programs set to a Russian locale need to open UTF-8 Cyrillic correctly).
FORMATS = {"utf8": (",", "utf-8"), "excel": (";", "utf-8-sig")}
LINE_END = "\r\n"  # RFC 4180


@dataclass(frozen=True)
class File:
    """One file of an export."""

    name: str
    extension: str
    # Free text (question wordings, respondents' examples): every cell is neutralised
    # against spreadsheet formulas. The coded files hold only our own codes and random ids.
    free_text: bool = False
    # Only when free-text examples are asked for (and confirmed).
    examples_only: bool = False
    # The format that brings the file (survey.export.formats): "csv" files are always in;
    # the labelled formats (sav, dta, parquet) only when asked for. Their files are named
    # by their download name ("responses.sav"): ``stem`` is the name without the extension.
    format: str = "csv"
    stem: str = ""
    media_type: str = ""

    @property
    def label(self) -> str:
        """The download name."""
        return f"{self.stem or self.name}.{self.extension}"

    @property
    def mimetype(self) -> str:
        """The HTTP content type of a single-file download."""
        if self.media_type:
            return self.media_type
        return "application/json" if self.extension == "json" else "text/csv; charset=utf-8"


FILES = (
    File("responses", "csv"),
    File("answers_long", "csv"),
    File("paradata", "csv"),
    File("codebook", "csv", free_text=True),
    File("disclosure_report", "json"),
    File("examples", "csv", free_text=True, examples_only=True),
    # The Frictionless data package of the CSV files and its loaders (survey.export.datapackage).
    File("datapackage", "json"),
    File("load_r", "R", stem="load", media_type="text/plain; charset=utf-8"),
    File("load_py", "py", stem="load", media_type="text/plain; charset=utf-8"),
    # Labelled copies of the two answer files (survey.export.formats), built from their CSV.
    *(
        File(f"{stem}.{ext}", ext, format=ext, stem=stem, media_type=media_type)
        for ext, media_type in (
            ("sav", "application/x-spss-sav"),
            ("dta", "application/x-stata-dta"),
            ("parquet", "application/vnd.apache.parquet"),
        )
        for stem in ("responses", "answers_long")
    ),
)
BY_NAME = {file.name: file for file in FILES}


# The labelled formats an export may add to its CSV files (ExportOptions.formats).
LABELLED_FORMATS = ("sav", "dta", "parquet")


def file_names(include_examples: bool, formats=()) -> list[str]:
    """The files of an export, in zip order: the CSV files (and the others of no labelled
    format), then those of the labelled ``formats`` asked for."""
    return [
        f.name
        for f in FILES
        if (include_examples or not f.examples_only) and f.format in ("csv", *formats)
    ]


def file_label(name: str) -> str:
    """The download file name of an export part."""
    return BY_NAME[name].label
