"""How numbers and interface text are shown: one module for the figures, the report and the
web application's template filters.

Interface strings are English msgids of the application's gettext catalogue,
``survey/translations/<lang>/LC_MESSAGES/messages.po`` (compiled to ``messages.mo``), the one
place where their Russian text lives. :func:`translations` reads that catalogue as a file,
the way :mod:`babel.support` reads any catalogue: nothing is imported from ``survey``, and a
language's strings come from its code alone, so a page, a background job and the API ask for
the same language in the same way. English needs no catalogue (the msgids are English).
Bilingual data (practice and category names, the questionnaire's answer options) is not
interface text: it reaches these functions as labels from the caller (see :func:`item_label`).

Numbers are rounded here only for display; a missing value (None, NaN, ``pd.NA``) shows as
:data:`MISSING`, a negative number with a real minus sign (U+2212).
"""

from __future__ import annotations

import gettext
import math
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from babel.support import Translations

__all__ = [
    "CATALOGUE",
    "LANGS",
    "MISSING",
    "STAR",
    "Gettext",
    "N_",
    "check_lang",
    "count",
    "decimal",
    "difference_with_ci",
    "format_difference",
    "format_p_value",
    "format_percent",
    "interval",
    "item_label",
    "number",
    "present",
    "signed",
    "signed_interval",
    "translations",
    "translator",
]

LANGS = ("ru", "en")
MISSING = "—"
STAR = "★"
# The application's message catalogue, beside this package (both are installed together).
CATALOGUE = Path(__file__).resolve().parent.parent / "survey" / "translations"

Gettext = Callable[..., str]
"""``gettext(msgid, **variables) -> str``: the translated msgid, ``%``-formatted with the
variables (always, so a literal percent sign is written ``%%``, as in the templates)."""


# --------------------------------------------------------------------------- language


def check_lang(lang: str) -> None:
    """Refuse a language the interface does not speak.

    Raises
    ------
    ValueError
        If ``lang`` is not one of :data:`LANGS`.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The interface strings of ``lang``: the catalogue's translations, or the msgids.

    Parameters
    ----------
    lang : {"ru", "en"}
        The interface language.

    Returns
    -------
    gettext.NullTranslations
        :class:`babel.support.Translations` read from :data:`CATALOGUE` for Russian; for
        English a ``NullTranslations``, which returns every msgid unchanged.

    Raises
    ------
    FileNotFoundError
        If the compiled catalogue of ``lang`` is missing (``pybabel compile`` not run).
    """
    check_lang(lang)
    if lang == "en":
        return gettext.NullTranslations()
    loaded = Translations.load(str(CATALOGUE), [lang])
    if not isinstance(loaded, Translations):  # Babel falls back to NullTranslations
        raise FileNotFoundError(f"no compiled message catalogue for {lang!r} in {CATALOGUE}")
    return loaded


def translator(lang: str) -> Gettext:
    """A gettext function for ``lang`` with Flask-Babel's signature.

    Examples
    --------
    >>> _ = translator("en")
    >>> _("Completed responses per day (total %(total)s)", total=3)
    'Completed responses per day (total 3)'
    >>> translator("ru")("No data")
    'Нет данных'
    """
    catalogue = translations(lang)

    def gettext_(message: str, **variables: Any) -> str:
        # Always formatted, like Jinja's newstyle gettext: a literal % is written %%.
        return catalogue.gettext(message) % variables

    return gettext_


def N_(message: str) -> str:
    """Mark a msgid for ``pybabel extract`` where it is defined; translate it where shown."""
    return message


def item_label(labels: Mapping[Any, Any] | None, item_id: Any, lang: str = "ru") -> str:
    """Return the display label of an item, falling back to its id.

    Parameters
    ----------
    labels : mapping or None
        Item id -> label, or item id -> ``{"ru": label, "en": label}``. An id
        that is not a string is also looked up as a string.
    item_id : hashable
        The item's id.
    lang : {"ru", "en"}
        Language picked from a per-language label.

    Returns
    -------
    str
        The label as plain text (not escaped).

    Examples
    --------
    >>> item_label({"bonus": {"ru": "Премия", "en": "Bonus"}}, "bonus", "en")
    'Bonus'
    >>> item_label({}, "bonus")
    'bonus'
    """
    value = None
    if labels:
        value = labels.get(item_id)
        if value is None and not isinstance(item_id, str):
            value = labels.get(str(item_id))
    if isinstance(value, Mapping):
        value = value.get(lang) or next((v for v in value.values() if present(v)), None)
    if not present(value) or not str(value).strip():
        return str(item_id)
    return str(value)


# --------------------------------------------------------------------------- numbers


def present(value: Any) -> bool:
    """Whether a value is there: not None, ``pd.NA`` or a float NaN.

    Examples
    --------
    >>> present(0), present(float("nan")), present(None)
    (True, False, False)
    """
    if value is None or value is pd.NA:
        return False
    return not (isinstance(value, float) and math.isnan(value))


def number(value: Any) -> float:
    """A value as a float, NaN when missing (see :func:`present`)."""
    return float(value) if present(value) else math.nan


def count(value: Any) -> str:
    """A count, rounded to a whole number.

    Examples
    --------
    >>> count(12.0), count(None)
    ('12', '—')
    """
    value = number(value)
    return MISSING if math.isnan(value) else str(round(value))


def decimal(value: Any, decimals: int = 1) -> str:
    """A number with a fixed number of decimals.

    Examples
    --------
    >>> decimal(0.125, 2), decimal("x")
    ('0.12', '—')
    """
    try:
        value = number(value)
    except (TypeError, ValueError):
        return MISSING
    return MISSING if math.isnan(value) else f"{value:.{decimals}f}"


def signed(value: Any, decimals: int = 1) -> str:
    """A number with its sign; one that rounds to zero has none.

    Examples
    --------
    >>> signed(12.34), signed(-0.5, 2), signed(-0.01)
    ('+12.3', '−0.50', '0.0')
    """
    value = number(value)
    if math.isnan(value):
        return MISSING
    if round(value, decimals) == 0:
        return f"{0:.{decimals}f}"
    return f"{value:+.{decimals}f}".replace("-", "−")


def format_percent(share: Any, decimals: int = 1) -> str:
    """Format a share (0..1) as a percentage for display.

    Parameters
    ----------
    share : float or None
        The share; missing values (None, NaN) give a dash.
    decimals : int, default 1
        Digits after the decimal point.

    Returns
    -------
    str

    Examples
    --------
    >>> format_percent(0.3)
    '30.0%'
    >>> format_percent(float("nan"))
    '—'
    """
    value = number(share)
    if math.isnan(value):
        return MISSING
    return f"{value * 100:.{decimals}f}%"


def format_p_value(p: Any) -> str:
    """Format a p- or q-value for display: four decimals, or ``"<0.001"``.

    Parameters
    ----------
    p : float or None
        The probability; missing values give a dash.

    Returns
    -------
    str

    Examples
    --------
    >>> format_p_value(0.01234)
    '0.0123'
    >>> format_p_value(0.0002)
    '<0.001'
    """
    value = number(p)
    if math.isnan(value):
        return MISSING
    if value < 0.001:
        return "<0.001"
    return f"{value:.4f}"


def format_difference(diff: Any, lang: str = "ru", decimals: int = 1) -> str:
    """Format a difference of two shares in percentage points, with its sign.

    Parameters
    ----------
    diff : float or None
        Difference of two shares on the 0..1 scale; missing values give a dash.
    lang : {"ru", "en"}
        Language of the unit.
    decimals : int, default 1
        Digits after the decimal point.

    Returns
    -------
    str

    Examples
    --------
    >>> format_difference(-0.125, lang="en")
    '−12.5 pp'
    """
    _ = translator(lang)
    value = number(diff)
    if math.isnan(value):
        return MISSING
    return signed(value * 100, decimals) + " " + _("pp")


def interval(low: Any, high: Any) -> str:
    """An interval of shares as percentages, ``"20.0–35.0%"``.

    Examples
    --------
    >>> interval(0.2, 0.35), interval(None, 0.3)
    ('20.0–35.0%', '—')
    """
    low, high = number(low), number(high)
    if math.isnan(low) or math.isnan(high):
        return MISSING
    return f"{low * 100:.1f}–{high * 100:.1f}%"


def signed_interval(low: Any, high: Any) -> str:
    """An interval of a difference of shares in percentage points, ``"−5.0; +12.5"``.

    Examples
    --------
    >>> signed_interval(-0.05, 0.125)
    '−5.0; +12.5'
    """
    low, high = number(low), number(high)
    if math.isnan(low) or math.isnan(high):
        return MISSING
    return f"{signed(low * 100, 1)}; {signed(high * 100, 1)}"


def difference_with_ci(diff: Any, low: Any, high: Any) -> str:
    """A difference of shares in percentage points with its interval, if it has one.

    Examples
    --------
    >>> difference_with_ci(0.125, -0.05, 0.3)
    '+12.5 [−5.0; +30.0]'
    >>> difference_with_ci(0.125, None, None)
    '+12.5'
    """
    value = number(diff)
    if math.isnan(value):
        return MISSING
    ci = signed_interval(low, high)
    return signed(value * 100, 1) + ("" if ci == MISSING else f" [{ci}]")
