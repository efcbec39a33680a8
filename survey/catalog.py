"""Load and validate the practice catalogue. No Flask, no database."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from survey.questions import FUNCTION_OPTIONS

LANGS = ("ru", "en")
REWARDS = ("direct_financial", "indirect_financial", "non_financial")
EVIDENCE = ("confirmed", "secondary", "memory")
PAGE_MAX = 9

TOP_KEYS = {"version", "categories", "practices", "sources"}
CATEGORY_KEYS = {"id", "name", "description"}
PRACTICE_KEYS = {
    "id",
    "category",
    "reward",
    "name",
    "description",
    "sources",
    "prevalence_note",
    "fictitious",
    "functions",
}
SOURCE_KEYS = {"id", "authors", "year", "title", "venue", "evidence", "note"}


class CatalogError(ValueError):
    """The catalogue file is invalid; the message names the file and the entry."""


@dataclass(frozen=True)
class Text:
    """A text in both languages."""

    ru: str
    en: str

    def get(self, lang: str) -> str:
        """The text in ``lang``, Russian for any other value."""
        return self.en if lang == "en" else self.ru


@dataclass(frozen=True)
class Source:
    """A publication or other source a practice is documented in."""

    id: str
    authors: str
    year: int | str | None
    title: str
    venue: str
    evidence: str
    note: str | None = None

    def citation(self) -> str:
        """The source as one citation line."""
        year = f" ({self.year})" if self.year else ""
        return f"{self.authors}{year}. {self.title}. {self.venue}."


@dataclass(frozen=True)
class CategoryEntry:
    """A category of the catalogue file (its row in the database: ``models.Category``)."""

    id: str
    name: Text
    description: Text


@dataclass(frozen=True)
class PracticeEntry:
    """A practice of the catalogue file (its row in the database: ``models.Practice``)."""

    id: str
    category: str
    reward: str
    name: Text
    description: Text
    sources: tuple[str, ...]
    prevalence_note: Text | None = None
    # A practice invented for the over-claiming check: asked like any other, never analysed.
    fictitious: bool = False
    # Job functions the practice exists for (e.g. sales commission: sales); empty: every
    # function. A marked practice offers "not applicable to my role" besides the scale.
    functions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page:
    """A questionnaire page: practices of one category (at most PAGE_MAX).

    ``number`` is the page's place in the catalogue (and in its URL); ``key`` names it in
    stored paradata (the category id, with ``-2``, ``-3``... when a category is split).
    """

    number: int
    category: CategoryEntry
    practices: tuple[PracticeEntry, ...]
    key: str = ""


@dataclass(frozen=True)
class Catalog:
    """The catalogue. ``practices`` are the practices every analysis, table, figure, export
    and API lists: the fictitious ones are not among them. They are only in ``fictitious``,
    and on the questionnaire's ``pages`` (``asked`` lists both, in questionnaire order)."""

    version: str
    checksum: str
    path: str
    categories: tuple[CategoryEntry, ...]
    practices: tuple[PracticeEntry, ...]
    sources: dict[str, Source] = field(default_factory=dict)
    fictitious: tuple[PracticeEntry, ...] = ()

    def practice(self, practice_id: str) -> PracticeEntry:
        """The real practice with this id (KeyError if unknown or fictitious)."""
        return self._by_id[practice_id]

    @cached_property
    def asked(self) -> tuple[PracticeEntry, ...]:
        """Every practice the questionnaire asks about, fictitious ones included."""
        order = {c.id: i for i, c in enumerate(self.categories)}
        return tuple(sorted((*self.practices, *self.fictitious), key=lambda p: order[p.category]))

    @cached_property
    def fictitious_ids(self) -> frozenset[str]:
        """Ids of the fictitious practices."""
        return frozenset(p.id for p in self.fictitious)

    def category(self, category_id: str) -> CategoryEntry:
        """The category with this id (KeyError if unknown)."""
        return next(c for c in self.categories if c.id == category_id)

    @cached_property
    def _by_id(self) -> dict[str, PracticeEntry]:
        return {p.id: p for p in self.practices}

    @cached_property
    def pages(self) -> tuple[Page, ...]:
        """Practice pages: one per category, split in even chunks above PAGE_MAX practices."""
        pages: list[Page] = []
        for cat in self.categories:
            members = [p for p in self.asked if p.category == cat.id]
            chunks = -(-len(members) // PAGE_MAX)
            size = -(-len(members) // chunks) if chunks else 0
            for i in range(chunks):
                key = cat.id if i == 0 else f"{cat.id}-{i + 1}"
                chunk = tuple(members[i * size : (i + 1) * size])
                pages.append(Page(len(pages) + 1, cat, chunk, key))
        return tuple(pages)

    @cached_property
    def pages_by_key(self) -> dict[str, Page]:
        """Questionnaire pages by their stable key."""
        return {page.key: page for page in self.pages}

    def snapshot(self) -> dict:
        """A JSON-able copy of everything a response's meaning depends on."""
        return {
            "version": self.version,
            "categories": [
                {"id": c.id, "name": vars(c.name), "description": vars(c.description)}
                for c in self.categories
            ],
            "practices": [
                {
                    "id": p.id,
                    "category": p.category,
                    "reward": p.reward,
                    "name": vars(p.name),
                    "description": vars(p.description),
                    "sources": list(p.sources),
                    **({"functions": list(p.functions)} if p.functions else {}),
                }
                for p in self.practices
            ],
            # Asked, never analysed (the over-claiming check); apart so no reader of
            # "practices" meets them.
            "fictitious_practices": [
                {
                    "id": p.id,
                    "category": p.category,
                    "name": vars(p.name),
                    "description": vars(p.description),
                }
                for p in self.fictitious
            ],
        }


def _fail(path: str, where: str, message: str) -> CatalogError:
    return CatalogError(f"{path}: {where}: {message}")


def _text(value, path: str, where: str, key: str, required: bool = True) -> Text | None:
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise _fail(path, where, f"'{key}' must have 'ru' and 'en' texts")
    unknown = set(value) - set(LANGS)
    if unknown:
        raise _fail(path, where, f"'{key}' has unknown language key(s) {sorted(unknown)}")
    for lang in LANGS:
        text = value.get(lang)
        if not isinstance(text, str) or not text.strip():
            raise _fail(path, where, f"missing {lang} translation of '{key}'")
    return Text(ru=value["ru"].strip(), en=value["en"].strip())


def _keys(entry, allowed: set[str], required: set[str], path: str, where: str) -> None:
    if not isinstance(entry, dict):
        raise _fail(path, where, "must be a mapping")
    unknown = set(entry) - allowed
    if unknown:
        raise _fail(path, where, f"unknown key(s) {sorted(unknown)}")
    missing = required - set(entry)
    if missing:
        raise _fail(path, where, f"missing key(s) {sorted(missing)}")


def _unique_ids(entries: list, path: str, kind: str) -> None:
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        ident = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(ident, str) or not ident.strip():
            raise _fail(path, f"{kind} #{i + 1}", "missing 'id'")
        if ident in seen:
            raise _fail(path, f"{kind} '{ident}'", "duplicate id")
        seen.add(ident)


def parse_catalog(data, path: str = "<catalogue>", checksum: str = "") -> Catalog:
    """Validate a parsed catalogue document and build a :class:`Catalog`."""
    _keys(data, TOP_KEYS, TOP_KEYS, path, "top level")
    for kind in ("categories", "practices", "sources"):
        if not isinstance(data[kind], list) or not data[kind]:
            raise _fail(path, kind, "must be a non-empty list")
        _unique_ids(data[kind], path, kind[:-1] if kind != "categories" else "category")

    sources: dict[str, Source] = {}
    for raw in data["sources"]:
        where = f"source '{raw['id']}'"
        _keys(raw, SOURCE_KEYS, SOURCE_KEYS - {"note"}, path, where)
        if raw["evidence"] not in EVIDENCE:
            raise _fail(path, where, f"evidence must be one of {EVIDENCE}")
        for key in ("authors", "title", "venue"):
            if not isinstance(raw[key], str) or not raw[key].strip():
                raise _fail(path, where, f"'{key}' must be a non-empty text")
        sources[raw["id"]] = Source(**{k: raw.get(k) for k in SOURCE_KEYS})

    categories = []
    for raw in data["categories"]:
        where = f"category '{raw['id']}'"
        _keys(raw, CATEGORY_KEYS, CATEGORY_KEYS, path, where)
        categories.append(
            CategoryEntry(
                raw["id"],
                _text(raw["name"], path, where, "name"),
                _text(raw["description"], path, where, "description"),
            )
        )
    category_ids = {c.id for c in categories}

    practices = []
    for raw in data["practices"]:
        where = f"practice '{raw['id']}'"
        fictitious = isinstance(raw, dict) and raw.get("fictitious", False)
        if fictitious is not True and fictitious is not False:
            raise _fail(path, where, "'fictitious' must be true or false")
        optional = {
            "prevalence_note",
            "fictitious",
            "functions",
            *(["sources"] if fictitious else []),
        }
        _keys(raw, PRACTICE_KEYS, PRACTICE_KEYS - optional, path, where)
        if raw["category"] not in category_ids:
            raise _fail(path, where, f"unknown category '{raw['category']}'")
        if raw["reward"] not in REWARDS:
            raise _fail(path, where, f"reward must be one of {REWARDS}")
        refs = raw.get("sources", [])
        if fictitious:
            # Invented for the over-claiming check: nothing in the literature may back it.
            if refs or raw.get("prevalence_note") is not None:
                raise _fail(path, where, "a fictitious practice has no sources or prevalence")
        elif not isinstance(refs, list) or not refs:
            raise _fail(path, where, "empty source list: every practice needs a source")
        for ref in refs:
            if ref not in sources:
                raise _fail(path, where, f"unknown source '{ref}'")
        functions = raw.get("functions", [])
        codes = {o.code for o in FUNCTION_OPTIONS}
        if (
            not isinstance(functions, list)
            or not set(functions) <= codes
            or ("functions" in raw and not functions)
        ):
            raise _fail(path, where, f"'functions' must be a non-empty list of {sorted(codes)}")
        practices.append(
            PracticeEntry(
                id=raw["id"],
                category=raw["category"],
                reward=raw["reward"],
                name=_text(raw["name"], path, where, "name"),
                description=_text(raw["description"], path, where, "description"),
                sources=tuple(refs),
                prevalence_note=_text(
                    raw.get("prevalence_note"), path, where, "prevalence_note", required=False
                ),
                fictitious=fictitious,
                functions=tuple(functions),
            )
        )
    real = [p for p in practices if not p.fictitious]
    for cat in categories:
        if not any(p.category == cat.id for p in real):
            raise _fail(path, f"category '{cat.id}'", "has no practices")
    # Practices are kept in category order: that is the questionnaire's catalogue order.
    order = {c.id: i for i, c in enumerate(categories)}
    real.sort(key=lambda p: order[p.category])
    return Catalog(
        version=str(data["version"]),
        checksum=checksum,
        path=path,
        categories=tuple(categories),
        practices=tuple(real),
        sources=sources,
        fictitious=tuple(p for p in practices if p.fictitious),
    )


def load_catalog(path: str | Path) -> Catalog:
    """Read, validate and return the catalogue at ``path``.

    Raises :class:`CatalogError` naming the file and the entry on any problem.
    """
    path = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        # The C loader when libyaml is there: the pure-Python one is most of start-up time.
        data = yaml.load(raw.decode("utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: not valid UTF-8 YAML: {exc}") from exc
    checksum_input = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    checksum = hashlib.sha256(checksum_input.encode("utf-8")).hexdigest()
    return parse_catalog(data, path, checksum)


# -- one wording per practice id -------------------------------------------------------------
# A practice id keeps one wording (name and description, both languages) forever, so that the
# analysis, which counts answers by practice id over every response, pools catalogue versions
# exactly when the question did not change. Stored version snapshots are the record.


def snapshot_wordings(content: dict) -> dict[str, dict]:
    """The wording of every practice, real or fictitious, in a version snapshot, by id.

    A wording is ``{"name": {"ru", "en"}, "description": {"ru", "en"}, "fictitious": bool}``.
    """
    return {
        entry["id"]: {
            "name": dict(entry["name"]),
            "description": dict(entry["description"]),
            "fictitious": key == "fictitious_practices",
        }
        for key in ("practices", "fictitious_practices")
        for entry in content.get(key, [])
    }


def check_wordings(cat: Catalog, stored: Iterable[tuple[str, dict]]) -> None:
    """Refuse a catalogue that keeps a practice id but changes what it asks.

    ``stored`` holds ``(version, snapshot)`` of every catalogue version already stored.
    Raises :class:`CatalogError` naming the id, the stored version and what changed, and
    telling the author to give the new wording a new id.
    """
    current = snapshot_wordings(cat.snapshot())
    for version, content in stored:
        for pid, before in snapshot_wordings(content).items():
            now = current.get(pid)
            if now is None or now == before:
                continue
            if now["fictitious"] != before["fictitious"]:
                what = "is fictitious" if now["fictitious"] else "is no longer fictitious"
                raise _fail(
                    cat.path,
                    f"practice '{pid}'",
                    f"{what} but catalogue version {version} stored it the other way; "
                    "give it a new id",
                )
            changed = [
                f"{key} ({lang})"
                for key in ("name", "description")
                for lang in LANGS
                if now[key].get(lang) != before[key].get(lang)
            ]
            raise _fail(
                cat.path,
                f"practice '{pid}'",
                f"its wording changed since catalogue version {version} "
                f"({', '.join(changed)}): a practice id keeps one wording, so give the new "
                "wording a new id (the old id leaves the file; its answers are kept)",
            )


def versions_by_wording(stored: Iterable[tuple[str, dict]]) -> dict[str, tuple[str, ...]]:
    """For every practice id, the catalogue versions that asked it with its latest wording.

    ``stored`` is ``(version, snapshot)`` in load order, oldest first. Under the one-wording
    rule this is every version in which the id appears; a version that asked the id with
    another wording (only possible in data stored before the rule) is left out.
    """
    stored = list(stored)
    latest: dict[str, dict] = {}
    for _version, content in stored:
        latest.update(snapshot_wordings(content))
    found: dict[str, list[str]] = {pid: [] for pid in latest}
    for version, content in stored:
        for pid, wording in snapshot_wordings(content).items():
            if wording == latest[pid] and version not in found[pid]:
                found[pid].append(version)
    return {pid: tuple(versions) for pid, versions in found.items()}
