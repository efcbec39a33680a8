"""Message catalogues: complete, compiled, and actually used on the Russian pages."""

from __future__ import annotations

import gettext
import html
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

import survey
from tests.helpers import Respondent, order_of

ROOT = Path(survey.__file__).resolve().parent.parent
MESSAGES = Path(survey.__file__).with_name("translations") / "ru" / "LC_MESSAGES"
RESPONDENT_FILES = [
    ("python", ROOT / "survey" / "forms.py"),
    ("python", ROOT / "survey" / "questionnaire.py"),
    ("jinja2", ROOT / "templates" / "base.html"),
    ("jinja2", ROOT / "templates" / "_macros.html"),
    *(("jinja2", path) for path in sorted((ROOT / "templates" / "errors").glob("*.html"))),
    *(("jinja2", path) for path in sorted((ROOT / "templates" / "questionnaire").glob("*.html"))),
]
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


@pytest.fixture(scope="module")
def catalog():
    with (MESSAGES / "messages.po").open("rb") as fh:
        return read_po(fh, locale="ru")


def messages_of(mo_path: Path) -> dict:
    with mo_path.open("rb") as fh:
        translations = gettext.GNUTranslations(fh)
    return {key: value for key, value in translations._catalog.items() if key != ""}


def test_the_compiled_catalogue_matches_the_po_file(catalog, tmp_path):
    compiled = tmp_path / "messages.mo"
    with compiled.open("wb") as fh:
        write_mo(fh, catalog)
    assert messages_of(MESSAGES / "messages.mo") == messages_of(compiled)


def test_every_message_has_a_russian_translation_and_none_is_fuzzy(catalog):
    untranslated, fuzzy = [], []
    for message in catalog:
        if not message.id:
            continue  # the header
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(s and s.strip() for s in strings):
            untranslated.append(message.id)
        if message.fuzzy:
            fuzzy.append(message.id)
    assert untranslated == []
    assert fuzzy == []
    assert [(m.id, errors) for m, errors in catalog.check()] == []  # placeholders agree


def test_every_text_a_respondent_can_see_is_in_the_catalogue(catalog):
    known = {message.id for message in catalog}
    missing = []
    for method, path in RESPONDENT_FILES:
        for lineno, message, _comments, _context in extract_from_file(
            method, path, keywords=KEYWORDS
        ):
            key = message if isinstance(message, str) else message[0]
            if key not in known:
                missing.append(f"{path.relative_to(ROOT)}:{lineno}: {key}")
    assert missing == []


# ---------------------------------------------------------------- the pages themselves


def visible_text(page: str) -> str:
    """The text a reader sees: no tags, scripts or styles; entities decoded."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def respondent_pages(client, lang: str) -> dict[str, str]:
    respondent = Respondent(client, lang)
    pages = {"/": client.get("/").text}
    respondent.consent()
    respondent.profile()
    for path in ("/profile", "/page/1", "/page/7", "/review", "/withdraw", "/page/99"):
        pages[path] = client.get(path).text
    # the respondent's own first practice page (the order is random)
    pages["first"] = client.get(f"/page/{order_of(client).pages[0].number}").text
    return pages


def english_messages(pages: dict[str, str], catalog) -> set[tuple[str, str]]:
    """(path, msgid) of every translated message shown untranslated on a page."""
    found = set()
    for message in catalog:
        if not message.id or not isinstance(message.id, str) or message.string == message.id:
            continue
        pieces = [re.escape(piece) for piece in re.split(r"%\(\w+\)[sd]", message.id)]
        pattern = re.compile(r"\b" + r".{1,12}?".join(pieces) + r"\b")
        found |= {(path, message.id) for path, text in pages.items() if pattern.search(text)}
    return found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_russian_pages_show_no_english_message(app, client, catalog):
    pages = {path: visible_text(text) for path, text in respondent_pages(client, "ru").items()}
    assert english_messages(pages, catalog) == set()
    assert "Ваш опыт работы" in pages["/profile"] and "Шаг 2 из 9" in pages["first"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_english_pages_show_no_russian_text(client, catalog):
    pages = {path: visible_text(text) for path, text in respondent_pages(client, "en").items()}
    for path, text in pages.items():
        assert CYRILLIC.findall(text.replace("Русский", "")) == [], path
    shown = english_messages(pages, catalog)  # the check above really finds messages
    assert {
        ("/profile", "Your work background"),
        ("/page/1", "Step %(step)d of %(total)d"),
    } <= shown
