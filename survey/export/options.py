"""What a researcher asks of an export, checked: the query parameters, the k floor."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, has_request_context
from flask_babel import gettext as _

from survey.config import DEFAULT_K, DEFAULT_MAX_SUPPRESSED_SHARE
from survey.export.files import FORMATS, LABELLED_FORMATS, file_names
from survey.filters import BadQuery, check_names, parse_bool

# Query parameters of the export endpoints (``lang``, the interface language, is global).
PARAMETERS = (
    "file",
    "format",
    "k",
    "include_demo",
    "include_pilot",
    "include_examples",
    "confirm_examples",
    "with",  # labelled formats beside the CSV files: sav, dta, parquet (comma-separated)
)
LABEL_LANGUAGES = ("ru", "en")
MAX_K = 50


class ExportRequestError(ValueError):
    """The export request itself is wrong (unknown or repeated parameter, a value out of
    range, unknown file, examples without confirmation)."""


def min_k() -> int:
    """The smallest k an export may use: the configured ``EXPORT_MIN_K`` (never below 2)."""
    return max(2, int(current_app.config.get("EXPORT_MIN_K", DEFAULT_K)))


def default_k() -> int:
    """The k of an export that does not name one: 5, or the floor if that is higher."""
    return max(DEFAULT_K, min_k())


def check_k(k) -> int:
    """``k`` as an integer within [EXPORT_MIN_K, 50], else :class:`ExportRequestError`."""
    low = min_k()
    text = str(k).strip()
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= MAX_K:
        raise ExportRequestError(
            _(
                "The parameter “k” must be a whole number from %(low)d to %(high)d "
                "(the smallest k this server allows is %(low)d), not “%(value)s”.",
                low=low,
                high=MAX_K,
                value=text[:20],
            )
        )
    return int(text)


def bad_parameter(exc: BadQuery) -> ExportRequestError:
    """The request error for a parameter :mod:`survey.filters` refused."""
    return ExportRequestError(
        _("The parameter “%(name)s” is not valid: %(reason)s.", name=exc.param, reason=exc.reason)
    )


@dataclass(frozen=True)
class ExportOptions:
    """What a researcher asked for."""

    include_demo: bool = False
    # Responses of pilot waves, left out unless asked for; marked by an is_pilot column.
    include_pilot: bool = False
    fmt: str = "utf8"
    k: int = DEFAULT_K
    max_suppressed_share: float = DEFAULT_MAX_SUPPRESSED_SHARE
    include_examples: bool = False
    # Labelled formats written beside the CSV files (LABELLED_FORMATS), and the language
    # of their variable and value labels.
    formats: tuple[str, ...] = ()
    lang: str = "ru"

    @classmethod
    def from_mapping(cls, args) -> ExportOptions:
        """Options from query parameters. An unknown or repeated parameter name, or a value
        that cannot be honoured, is an :class:`ExportRequestError` naming it: nothing is
        silently ignored, clamped or replaced by a default."""
        try:
            check_names(args, PARAMETERS)
            fmt = args.get("format") or "utf8"
            if fmt not in FORMATS:
                raise BadQuery("format", f"expected one of {', '.join(FORMATS)}")
            include_demo = parse_bool("include_demo", args.get("include_demo"))
            include_pilot = parse_bool("include_pilot", args.get("include_pilot"))
            include_examples = parse_bool("include_examples", args.get("include_examples"))
            formats = parse_formats(args.get("with"))
        except BadQuery as exc:
            raise bad_parameter(exc) from exc
        k = args.get("k")
        return cls(
            include_demo=include_demo,
            include_pilot=include_pilot,
            fmt=fmt,
            k=default_k() if k is None or k == "" else check_k(k),
            max_suppressed_share=current_app.config.get(
                "EXPORT_MAX_SUPPRESSED_SHARE", DEFAULT_MAX_SUPPRESSED_SHARE
            ),
            include_examples=include_examples,
            formats=formats,
            lang=label_language(args),
        )

    def file_names(self) -> list[str]:
        """The files of an export with these options."""
        return file_names(self.include_examples, self.formats)


def parse_formats(value) -> tuple[str, ...]:
    """The labelled formats of a ``with`` parameter ("sav,dta,parquet"; "csv", always
    written, may be named), in registry order; anything else is a :class:`BadQuery`."""
    names = {part.strip() for part in (value or "").split(",") if part.strip()}
    unknown = names - {"csv", *LABELLED_FORMATS}
    if unknown:
        raise BadQuery("with", f"expected some of csv, {', '.join(LABELLED_FORMATS)}")
    return tuple(f for f in LABELLED_FORMATS if f in names)


def label_language(args) -> str:
    """The language of the labelled formats' labels: ``lang`` when the parameters name it
    (a background job gets the request's parameters), else the request's interface
    language, else Russian."""
    from survey.i18n import current_language

    if args.get("lang") in LABEL_LANGUAGES:
        return args.get("lang")
    return current_language() if has_request_context() else "ru"


def requested_file(args, name: str | None, options: ExportOptions) -> str:
    """The file a download asks for (``zip`` for all of them), checked.

    ``name`` is the file when the URL path carries it (then ``file`` may not also be
    given); free-text examples need ``confirm_examples=1``."""
    if name is not None and "file" in args:
        raise bad_parameter(BadQuery("file", "the file is already named in the URL path"))
    name = name if name is not None else args.get("file") or "zip"
    try:
        confirmed = parse_bool("confirm_examples", args.get("confirm_examples"))
    except BadQuery as exc:
        raise bad_parameter(exc) from exc
    if options.include_examples and not confirmed:
        raise ExportRequestError(
            _("Free-text examples need confirm_examples=1: they may contain personal details.")
        )
    # One labelled file may be asked for by its name without ``with``.
    names = file_names(options.include_examples, LABELLED_FORMATS)
    if name != "zip" and name not in names:
        raise ExportRequestError(
            _(
                "Unknown file “%(name)s”; choose zip or one of %(names)s.",
                name=name[:40],
                names=", ".join(names),
            )
        )
    return name
