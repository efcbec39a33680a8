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

    @property
    def label(self) -> str:
        """The download name."""
        return f"{self.name}.{self.extension}"

    @property
    def mimetype(self) -> str:
        """The HTTP content type of a single-file download."""
        return "application/json" if self.extension == "json" else "text/csv; charset=utf-8"


FILES = (
    File("responses", "csv"),
    File("answers_long", "csv"),
    File("paradata", "csv"),
    File("codebook", "csv", free_text=True),
    File("disclosure_report", "json"),
    File("examples", "csv", free_text=True, examples_only=True),
)
BY_NAME = {file.name: file for file in FILES}


def file_names(include_examples: bool) -> list[str]:
    """The files of an export, in zip order."""
    return [f.name for f in FILES if include_examples or not f.examples_only]


def file_label(name: str) -> str:
    """The download file name of an export part."""
    return BY_NAME[name].label
