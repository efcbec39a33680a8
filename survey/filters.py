"""Query parameters of researcher pages and the API, parsed in one place.

A researcher who mistypes a filter must not silently get the whole sample: an unknown
parameter name, a repeated parameter or a value that is not one of the codes is refused
with a 400 that names the parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import fields

from flask_babel import lazy_gettext as _l

from survey.config import FALSE_WORDS, TRUE_WORDS
from survey.queries import FLAGS, Segment, channel_labels
from survey.questions import BACKGROUND_BY_FIELD, PERIODS

# A filter parameter per field of the segment, named as the field.
FILTER_NAMES = tuple(field.name for field in fields(Segment))
# Parameters every page accepts: the interface language switch (survey.i18n).
GLOBAL_NAMES = ("lang",)


class BadQuery(ValueError):
    """A query parameter that cannot be honoured; ``param`` names it."""

    def __init__(self, param: str, reason):
        super().__init__(param)
        self.param = param
        self.reason = reason


def parse_bool(name: str, value: str | None) -> bool:
    """A yes/no parameter: 1/true/yes/on or 0/false/no/off (or empty)."""
    text = (value or "").strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise BadQuery(name, _l("expected 0 or 1"))


def check_names(args, allowed: Iterable[str]) -> None:
    """Refuse unknown and repeated parameter names."""
    allowed = set(allowed) | set(GLOBAL_NAMES)
    for name in args:
        if name not in allowed:
            raise BadQuery(name, _l("unknown parameter"))
        if hasattr(args, "getlist") and len(args.getlist(name)) > 1:
            raise BadQuery(name, _l("given more than once"))


def segment_from_args(
    args,
    extra: Iterable[str] = (),
    wave_codes: Callable[[], Iterable[str]] = tuple,
    channel_labels: Callable[[], Iterable[str]] = channel_labels,
) -> Segment:
    """The segment a request asks for; empty values mean "no restriction".

    ``extra`` names the page's own parameters (``view``, ``level``...), checked by the page.
    ``wave_codes`` returns the waves that exist (asked only when a wave is named): an unknown
    wave is a bad value, not an empty study. ``channel_labels`` likewise returns the channel
    labels that exist: a channel is named by its label, never by its link's slug.
    """
    check_names(args, (*FILTER_NAMES, *extra))
    values: dict = {}
    for name, question in BACKGROUND_BY_FIELD.items():
        value = args.get(name) or None
        if value is not None and value not in question.codes():
            raise BadQuery(
                name,
                _l("unknown value; expected one of %(codes)s", codes=", ".join(question.codes())),
            )
        values[name] = value
    language = args.get("language") or None
    if language not in (None, "ru", "en"):
        raise BadQuery("language", _l("expected one of %(codes)s", codes="ru, en"))
    period = args.get("period") or None
    if period not in (None, *PERIODS):
        raise BadQuery("period", _l("expected one of %(codes)s", codes=", ".join(PERIODS)))
    wave = args.get("wave") or None
    if wave is not None and wave not in set(wave_codes()):
        raise BadQuery("wave", _l("no wave has this code"))
    channel = args.get("channel") or None
    if channel is not None and channel not in set(channel_labels()):
        raise BadQuery("channel", _l("no channel has this label"))
    return Segment(
        **values,
        language=language,
        period=period,
        wave=wave,
        channel=channel,
        **{name: parse_bool(name, args.get(name)) for name in FLAGS},
    )


def choice(args, name: str, options: tuple[str, ...], default: str) -> str:
    """A page parameter with a fixed set of values."""
    value = args.get(name) or default
    if value not in options:
        raise BadQuery(name, _l("expected one of %(codes)s", codes=", ".join(options)))
    return value
