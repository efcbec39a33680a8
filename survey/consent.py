"""Load and validate the consent texts (survey/consent.yaml). No Flask, no database.

The consent page names the researchers and a contact, the ethics approval (or that there is
none), how long data are kept and what withdrawal can and cannot undo. These are the
researchers' statements, so they are configuration, in both languages, and versioned: the
version is stored with every response that consents under them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from survey.catalog import LANGS, Text

TEXT_KEYS = ("researchers", "contact", "ethics", "retention", "withdrawal")
REQUIRED_KEYS = {"version", *TEXT_KEYS}
ALLOWED_KEYS = {*REQUIRED_KEYS, "placeholder"}
VERSION_MAX = 16  # response.consent_version is VARCHAR(16)
# The default texts carry these markers; a file that says it is configured may not.
PLACEHOLDER_MARKERS = ("NOT CONFIGURED", "НЕ НАСТРОЕНО")


class ConsentError(ValueError):
    """The consent file is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Consent:
    """The consent texts in force."""

    version: str
    placeholder: bool
    researchers: Text
    contact: Text
    ethics: Text
    retention: Text
    withdrawal: Text
    path: str = ""


def _fail(path: str, message: str) -> ConsentError:
    return ConsentError(f"{path}: {message}")


def parse_consent(data, path: str = "<consent>") -> Consent:
    """Validate a parsed consent document and build a :class:`Consent`."""
    if not isinstance(data, dict):
        raise _fail(path, "must be a mapping")
    unknown = set(data) - ALLOWED_KEYS
    if unknown:
        raise _fail(path, f"unknown key(s) {sorted(unknown)}")
    missing = REQUIRED_KEYS - set(data)
    if missing:
        raise _fail(path, f"missing key(s) {sorted(missing)}")
    version = data["version"]
    if not isinstance(version, str) or not version.strip() or len(version) > VERSION_MAX:
        raise _fail(path, f"'version' must be a text of 1 to {VERSION_MAX} characters")
    placeholder = data.get("placeholder", False)
    if not isinstance(placeholder, bool):
        raise _fail(path, "'placeholder' must be true or false")
    texts = {}
    for key in TEXT_KEYS:
        value = data[key]
        if not isinstance(value, dict) or set(value) != set(LANGS):
            raise _fail(path, f"'{key}' must have exactly 'ru' and 'en' texts")
        for lang in LANGS:
            if not isinstance(value[lang], str) or not value[lang].strip():
                raise _fail(path, f"missing {lang} text of '{key}'")
            if not placeholder and any(m in value[lang] for m in PLACEHOLDER_MARKERS):
                raise _fail(
                    path,
                    f"'{key}' ({lang}) still holds the default placeholder text, but the "
                    "file is not marked 'placeholder: true': write the real text",
                )
        texts[key] = Text(ru=value["ru"].strip(), en=value["en"].strip())
    return Consent(version=version.strip(), placeholder=placeholder, path=path, **texts)


def load_consent(path: str | Path) -> Consent:
    """Read, validate and return the consent texts at ``path`` (:class:`ConsentError`)."""
    path = str(path)
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConsentError(f"{path}: cannot read: {exc}") from exc
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConsentError(f"{path}: not valid YAML: {exc}") from exc
    return parse_consent(data, path)


def placeholder_warning(consent: Consent) -> str | None:
    """The operator's warning while the default (unconfigured) texts are in use."""
    if not consent.placeholder:
        return None
    return (
        f"The consent page shows the DEFAULT placeholder texts of {consent.path}: the "
        "researchers, a contact, the ethics approval (or that there is none) and the "
        "retention period are not configured. Fill them in (or set CONSENT_PATH to your "
        "own file) and remove 'placeholder: true' before fieldwork."
    )
