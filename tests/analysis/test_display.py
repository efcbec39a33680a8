"""Display: numbers rounded only for display, and interface text from the one catalogue."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from analysis import display
from analysis.display import (
    count,
    decimal,
    difference_with_ci,
    format_difference,
    format_p_value,
    format_percent,
    interval,
    item_label,
    signed,
    signed_interval,
    translator,
)

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT / "survey" / "translations" / "ru" / "LC_MESSAGES" / "messages.po"


@pytest.fixture(scope="module")
def catalogue():
    """The Russian message catalogue as written (the .po file, not the compiled .mo)."""
    with MESSAGES.open("rb") as fh:
        return read_po(fh, locale="ru")


def analysis_messages() -> dict[str, str]:
    """msgid -> where, of every message the analysis package marks (code and templates)."""
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        ROOT / "analysis", method_map, keywords=DEFAULT_KEYWORDS
    ):
        found[message if isinstance(message, str) else message[0]] = filename
    return found


# --------------------------------------------------------------------------- numbers


def test_shares_and_p_values_are_rounded_only_for_display():
    assert format_percent(0.30449) == "30.4%"
    assert format_percent(0.30449, 0) == "30%"
    assert format_percent(None) == format_percent(pd.NA) == "—"
    assert format_p_value(0.01234) == "0.0123"
    assert format_p_value(0.0004) == "<0.001"
    assert format_p_value(float("nan")) == "—"


def test_differences_carry_their_sign_and_a_real_minus():
    assert format_difference(0.125, "ru") == "+12.5 п. п."
    assert format_difference(-0.125, "en") == "−12.5 pp"
    assert format_difference(-0.0001, "en") == "0.0 pp"  # rounds to zero: no sign
    assert format_difference(None, "en") == "—"
    assert signed(-0.5, 2) == "−0.50"
    assert signed(np.float64(3.14159), 2) == "+3.14"
    assert signed(math.nan) == "—"
    assert signed_interval(-0.05, 0.125) == "−5.0; +12.5"
    assert difference_with_ci(0.125, -0.05, 0.3) == "+12.5 [−5.0; +30.0]"
    assert difference_with_ci(0.125, math.nan, 0.3) == "+12.5"
    assert difference_with_ci(math.nan, -0.05, 0.3) == "—"


def test_counts_decimals_and_intervals():
    assert count(12.0) == "12"
    assert count(np.float64(2.5)) == "2"  # round half to even, as Python rounds
    assert count(None) == "—"
    assert decimal(0.125, 2) == "0.12"
    assert decimal("1.5") == "1.5"
    assert decimal("not a number") == decimal(None) == decimal(pd.NA) == "—"
    assert interval(0.2, 0.35) == "20.0–35.0%"
    assert interval(0.2, None) == "—"


def test_item_label_falls_back_to_the_id_and_reads_per_language_labels():
    assert item_label({"a": "Alpha"}, "a") == "Alpha"
    assert item_label({"a": {"ru": "Альфа", "en": "Alpha"}}, "a", "en") == "Alpha"
    assert item_label({"a": {"ru": "Альфа"}}, "a", "en") == "Альфа"
    assert item_label({"7": "Seven"}, np.int64(7)) == "Seven"
    assert item_label({}, "missing") == "missing"
    assert item_label(None, "missing") == "missing"


# --------------------------------------------------------------------------- language


def test_english_is_the_msgid_and_russian_is_the_catalogues_translation(catalogue):
    english, russian = translator("en"), translator("ru")
    assert english("Completed responses per day (total %(total)s)", total=3) == (
        "Completed responses per day (total 3)"
    )
    assert english("Share reporting the practice existed (95%% Wilson CI)").endswith(
        "95% Wilson CI)"
    )
    for msgid in ("No data", "pp", "Completed", "Russian companies"):
        assert russian(msgid) == catalogue[msgid].string


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="lang"):
        translator("de")
    with pytest.raises(ValueError, match="lang"):
        format_difference(0.1, "de")


def test_every_interface_string_of_the_analysis_is_translated_in_the_catalogue(catalogue):
    messages = analysis_messages()
    assert len(messages) > 40  # the figures, the report and both assumptions texts
    missing = {msgid: where for msgid, where in messages.items() if catalogue.get(msgid) is None}
    assert missing == {}
    untranslated = [msgid for msgid in messages if not catalogue[msgid].string]
    assert untranslated == []


def test_the_analysis_keeps_no_dictionary_of_interface_strings():
    """One source per string: the catalogue, not a Python dictionary beside it."""
    for path in (ROOT / "analysis").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "_UI" not in text, path.name


def test_the_catalogue_is_read_from_the_application_as_a_file():
    assert (display.CATALOGUE / "ru" / "LC_MESSAGES" / "messages.mo").is_file()
    assert display.CATALOGUE == ROOT / "survey" / "translations"
