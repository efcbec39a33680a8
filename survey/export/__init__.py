"""Anonymized export: wide and long CSV, paradata, codebook and disclosure report, streamed.

One module per job:

- :mod:`~survey.export.options`: what a researcher asks for, checked (parameters, k);
- :mod:`~survey.export.files`: the registry of files (names, extensions, dialects);
- :mod:`~survey.export.release`: the population and its disclosure plan, the rows read in
  keyset chunks through :mod:`survey.queries` and written as text;
- :mod:`~survey.export.rows`: answer vectors decoded into one matrix per chunk, and the
  wide and long text built from it by table lookups;
- :mod:`~survey.export.codebook`: every column's type, values and labels;
- :mod:`~survey.export.formats`: the answer files as labelled SPSS, Stata and Parquet,
  built from their CSV text;
- :mod:`~survey.export.web`: the HTTP responses of the download routes.

Answers since 2026-12 are on the applied / existed / no / don't know scale (plus "not
applicable to my role" for practices the catalogue marks with ``functions``); earlier ones
were "met it" yes / no / don't know. The ``met`` columns keep one meaning across both:
the practice existed (1), did not (0), don't know, with "not my role" a code of its own;
the ``applied`` columns say whether it applied to the respondent, "unknown" for a former
"met it". "Mixed / can't say" is a code of the rating columns, never a rating.
"""

from survey.anonymize import QUASI_IDENTIFIERS
from survey.export.files import FILES, FORMATS, file_label
from survey.export.options import (
    DEFAULT_K,
    MAX_K,
    ExportOptions,
    ExportRequestError,
    check_k,
    default_k,
    min_k,
)
from survey.export.release import Export, safe_cell, scrub
from survey.export.web import download

__all__ = [
    "DEFAULT_K",
    "FILES",
    "FORMATS",
    "MAX_K",
    "QUASI_IDENTIFIERS",
    "Export",
    "ExportOptions",
    "ExportRequestError",
    "check_k",
    "default_k",
    "download",
    "file_label",
    "min_k",
    "safe_cell",
    "scrub",
]
