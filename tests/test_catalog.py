"""The practice catalogue: the shipped file is complete, and a broken file names its fault."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from sqlalchemy import delete, func, select

import survey
from survey import create_app
from survey.catalog import (
    LANGS,
    PAGE_MAX,
    REWARDS,
    CatalogError,
    check_wordings,
    load_catalog,
)
from survey.extensions import db
from survey.models import Answer, CatalogVersion, Practice, Response

SHIPPED = Path(survey.__file__).with_name("practices.yaml")


@pytest.fixture(scope="module")
def shipped():
    return load_catalog(SHIPPED)


def _text(ru: str, en: str) -> dict:
    return {"ru": ru, "en": en}


def _practice_entry(ident: str, category: str, sources: list[str]) -> dict:
    return {
        "id": ident,
        "category": category,
        "reward": "non_financial",
        "name": _text(f"Практика {ident}", f"Practice {ident}"),
        "description": _text(f"Описание {ident}.", f"Description of {ident}."),
        "sources": sources,
    }


SMALL = {
    "version": "test.1",
    "categories": [
        {"id": "goals", "name": _text("Цели", "Goals"), "description": _text("Цели.", "Goals.")},
        {"id": "care", "name": _text("Забота", "Care"), "description": _text("Забота.", "Care.")},
    ],
    "practices": [
        _practice_entry("okr", "goals", ["locke2002"]),
        _practice_entry("one_to_one", "goals", ["locke2002", "deci2000"]),
        _practice_entry("wellness", "care", ["deci2000"]),
    ],
    "sources": [
        {
            "id": "locke2002",
            "authors": "Locke, E.A., & Latham, G.P.",
            "year": 2002,
            "title": "Building a practically useful theory of goal setting and task motivation",
            "venue": "American Psychologist, 57(9)",
            "evidence": "confirmed",
        },
        {
            "id": "deci2000",
            "authors": "Deci, E.L., & Ryan, R.M.",
            "year": 2000,
            "title": "The what and why of goal pursuits",
            "venue": "Psychological Inquiry, 11(4)",
            "evidence": "confirmed",
        },
    ],
}


@pytest.fixture
def raw() -> dict:
    """A small valid catalogue document, to break copies of."""
    return copy.deepcopy(SMALL)


def write(tmp_path: Path, data, name: str = "catalogue.yaml") -> Path:
    path = tmp_path / name
    text = yaml.dump(data, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_small_catalogue_used_below_is_valid(raw, tmp_path):
    small = load_catalog(write(tmp_path, raw))
    assert [p.id for p in small.practices] == ["okr", "one_to_one", "wellness"]
    assert [len(page.practices) for page in small.pages] == [2, 1]


# ---------------------------------------------------------------- the shipped catalogue


def test_the_shipped_catalogue_has_47_practices_in_7_categories(shipped):
    assert len(shipped.practices) == 47
    assert len(shipped.categories) == 7
    assert shipped.version and len(shipped.checksum) == 64


def test_every_category_is_one_page_of_five_to_nine_practices(shipped):
    assert [page.number for page in shipped.pages] == list(range(1, len(shipped.pages) + 1))
    for page in shipped.pages:
        assert 5 <= len(page.practices) <= PAGE_MAX, page.category.id
        assert {p.category for p in page.practices} == {page.category.id}
    assert [page.key for page in shipped.pages] == [c.id for c in shipped.categories]
    on_pages = [p.id for page in shipped.pages for p in page.practices]
    asked = [*shipped.practices, *shipped.fictitious]  # the fictitious one is asked too
    assert sorted(on_pages) == sorted(p.id for p in asked)
    assert len(on_pages) == len(set(on_pages))


def test_ids_are_unique(shipped):
    for entries in (shipped.categories, shipped.practices, shipped.sources.values()):
        ids = [entry.id for entry in entries]
        assert len(ids) == len(set(ids))
    raw = yaml.load(SHIPPED.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    # none swallowed on the way (the fictitious practice is kept apart, not lost)
    assert len(raw["practices"]) == len(shipped.practices) + len(shipped.fictitious)
    assert len(raw["sources"]) == len(shipped.sources)


def test_every_practice_is_described_in_both_languages_with_real_sources(shipped):
    for practice in shipped.practices:
        for lang in LANGS:
            assert practice.name.get(lang).strip(), (practice.id, lang)
            assert practice.description.get(lang).strip(), (practice.id, lang)
        assert practice.name.ru != practice.name.en, practice.id
        assert practice.reward in REWARDS
        assert practice.sources, practice.id
        for ref in practice.sources:
            source = shipped.sources[ref]
            assert source.authors and source.title and source.venue, ref
    for category in shipped.categories:
        assert category.name.ru.strip() and category.name.en.strip()
    assert {p.reward for p in shipped.practices} >= {"direct_financial", "non_financial"}


def test_every_text_is_in_the_language_it_claims(shipped):
    """A Russian text has Cyrillic letters and an English one has none."""
    for practice in shipped.practices:
        for text in (practice.name, practice.description):
            assert any("а" <= ch.lower() <= "я" for ch in text.ru), practice.id
            assert not any("а" <= ch.lower() <= "я" for ch in text.en), practice.id


# ---------------------------------------------------------------- broken catalogues


def _practice(data, index=0):
    return data["practices"][index]


def duplicate_practice_id(data):
    _practice(data, 1)["id"] = _practice(data)["id"]
    return "practice '{p0}'", "duplicate id"


def duplicate_category_id(data):
    data["categories"][1]["id"] = data["categories"][0]["id"]
    return "category '{c0}'", "duplicate id"


def duplicate_source_id(data):
    data["sources"].append(copy.deepcopy(data["sources"][0]))
    return "source '{s0}'", "duplicate id"


def missing_en_name(data):
    del _practice(data)["name"]["en"]
    return "practice '{p0}'", "missing en translation of 'name'"


def blank_ru_description(data):
    _practice(data)["description"]["ru"] = "   "
    return "practice '{p0}'", "missing ru translation of 'description'"


def missing_en_category_name(data):
    del data["categories"][0]["name"]["en"]
    return "category '{c0}'", "missing en translation of 'name'"


def unknown_language(data):
    _practice(data)["name"]["de"] = "Leistungsprämie"
    return "practice '{p0}'", "unknown language key(s) ['de']"


def unknown_practice_key(data):
    _practice(data)["colour"] = "red"
    return "practice '{p0}'", "unknown key(s) ['colour']"


def unknown_top_level_key(data):
    data["authors"] = ["me"]
    return "top level", "unknown key(s) ['authors']"


def missing_practice_key(data):
    del _practice(data)["reward"]
    return "practice '{p0}'", "missing key(s) ['reward']"


def empty_source_list(data):
    _practice(data)["sources"] = []
    return "practice '{p0}'", "empty source list"


def unknown_source(data):
    _practice(data)["sources"].append("nobody2020")
    return "practice '{p0}'", "unknown source 'nobody2020'"


def unknown_category(data):
    _practice(data)["category"] = "fun_and_games"
    return "practice '{p0}'", "unknown category 'fun_and_games'"


def unknown_reward(data):
    _practice(data)["reward"] = "stock"
    return "practice '{p0}'", "reward must be one of"


def source_without_title(data):
    del data["sources"][0]["title"]
    return "source '{s0}'", "missing key(s) ['title']"


def category_without_practices(data):
    data["categories"].append({"id": "empty", "name": {"ru": "Пусто", "en": "Empty"}})
    data["categories"][-1]["description"] = {"ru": "Пусто", "en": "Empty"}
    return "category 'empty'", "has no practices"


def practice_without_id(data):
    del _practice(data, 2)["id"]
    return "practice #3", "missing 'id'"


BREAKAGES = [
    duplicate_practice_id,
    duplicate_category_id,
    duplicate_source_id,
    missing_en_name,
    blank_ru_description,
    missing_en_category_name,
    unknown_language,
    unknown_practice_key,
    unknown_top_level_key,
    missing_practice_key,
    empty_source_list,
    unknown_source,
    unknown_category,
    unknown_reward,
    source_without_title,
    category_without_practices,
    practice_without_id,
]


def broken(raw, breakage, tmp_path) -> tuple[Path, str, str]:
    """Write a broken copy of the shipped catalogue; return its path, entry and problem."""
    data = copy.deepcopy(raw)
    names = {
        "p0": data["practices"][0]["id"],
        "c0": data["categories"][0]["id"],
        "s0": data["sources"][0]["id"],
    }
    entry, problem = breakage(data)
    return write(tmp_path, data, f"{breakage.__name__}.yaml"), entry.format(**names), problem


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda f: f.__name__)
def test_a_broken_catalogue_is_refused_naming_the_file_and_the_entry(raw, tmp_path, breakage):
    path, entry, problem = broken(raw, breakage, tmp_path)
    with pytest.raises(CatalogError) as error:
        load_catalog(path)
    assert str(error.value).startswith(f"{path}: {entry}: ")
    assert problem in str(error.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "top level: must be a mapping"),
        (b"version: 1\npractices: [\n", "not valid UTF-8 YAML"),
        ("version: 'é'\n".encode("latin-1"), "not valid UTF-8 YAML"),
    ],
    ids=["empty", "yaml syntax", "latin-1"],
)
def test_an_unreadable_catalogue_is_refused_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "catalogue.yaml"
    path.write_bytes(content)
    with pytest.raises(CatalogError, match=problem) as error:
        load_catalog(path)
    assert str(error.value).startswith(f"{path}: ")
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.yaml")


def test_the_app_refuses_to_start_with_a_broken_catalogue(raw, tmp_path):
    path, entry, problem = broken(raw, unknown_source, tmp_path)
    with pytest.raises(CatalogError, match=f"{entry}: {problem}"):
        create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "test-secret-key-not-for-production",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'unused.db'}",
                "INSTANCE_PATH": str(tmp_path / "instance"),
                "CATALOG_PATH": str(path),
            }
        )


def test_load_catalog_command_refuses_a_broken_file_and_changes_nothing(app, runner, raw, tmp_path):
    path, entry, problem = broken(raw, duplicate_practice_id, tmp_path)
    with app.app_context():  # the commands are plain click commands: see test_cli.py
        before = db.session.scalar(select(func.count()).select_from(CatalogVersion))
        result = runner.invoke(args=["load-catalog", str(path)])
        after = db.session.scalar(select(func.count()).select_from(CatalogVersion))
    assert result.exit_code != 0
    assert f"Error: {path}: {entry}: {problem}" in result.output
    assert "Traceback" not in result.output
    assert after == before


# ---------------------------------------------------------------- the checksum


def test_the_checksum_changes_when_a_text_changes_and_only_then(raw, tmp_path):
    original = load_catalog(write(tmp_path, raw, "original.yaml")).checksum
    layout = tmp_path / "layout.yaml"  # same content, other layout, with comments
    layout.write_text(
        "# a comment\n" + yaml.dump(raw, Dumper=yaml.CSafeDumper, default_flow_style=True),
        encoding="utf-8",
    )
    assert load_catalog(layout).checksum == original

    edited = copy.deepcopy(raw)
    edited["practices"][1]["description"]["en"] += " Edited."
    assert load_catalog(write(tmp_path, edited, "edited.yaml")).checksum != original

    cited = copy.deepcopy(raw)
    cited["sources"][0]["year"] = 2003
    assert load_catalog(write(tmp_path, cited, "cited.yaml")).checksum != original


def test_the_snapshot_keeps_every_text_a_response_depends_on(shipped):
    snapshot = shipped.snapshot()
    assert snapshot["version"] == shipped.version
    by_id = {p["id"]: p for p in snapshot["practices"]}
    assert list(by_id) == [p.id for p in shipped.practices]
    for practice in shipped.practices:
        stored = by_id[practice.id]
        assert stored["name"] == {"ru": practice.name.ru, "en": practice.name.en}
        assert stored["description"]["en"] == practice.description.en
        assert stored["category"] == practice.category and stored["reward"] == practice.reward


# ---------------------------------------------------------------- one wording per id


def test_load_catalog_refuses_a_changed_wording_under_a_stored_id_and_takes_a_new_id(
    app, runner, raw, tmp_path
):
    changed = copy.deepcopy(raw)
    changed["version"] = "test.2"
    changed["practices"][0]["description"]["ru"] = "Другой вопрос под тем же идентификатором."
    renamed = copy.deepcopy(changed)
    renamed["practices"][0]["id"] = "okr_reworded"
    with app.app_context():
        first = runner.invoke(args=["load-catalog", str(write(tmp_path, raw, "v1.yaml"))])
        assert first.exit_code == 0, first.output
        versions = db.session.scalar(select(func.count()).select_from(CatalogVersion))

        refused = runner.invoke(args=["load-catalog", str(write(tmp_path, changed, "v2.yaml"))])
        assert refused.exit_code != 0
        assert "practice 'okr'" in refused.output and "description (ru)" in refused.output
        assert "test.1" in refused.output and "new id" in refused.output
        assert "Traceback" not in refused.output
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(CatalogVersion)) == versions

        accepted = runner.invoke(args=["load-catalog", str(write(tmp_path, renamed, "v3.yaml"))])
        assert accepted.exit_code == 0, accepted.output
        active = dict(db.session.execute(select(Practice.id, Practice.active)).all())
    assert active == {"okr": False, "okr_reworded": True, "one_to_one": True, "wellness": True}


def test_an_unchanged_wording_keeps_its_id_across_versions_and_flipping_fictitious_is_refused(
    raw, tmp_path
):
    old = load_catalog(write(tmp_path, raw, "v1.yaml"))
    same = copy.deepcopy(raw)
    same["version"] = "test.2"
    same["sources"][0]["note"] = "A new note changes the checksum, not a question."
    check_wordings(load_catalog(write(tmp_path, same, "v2.yaml")), [("test.1", old.snapshot())])
    flipped = copy.deepcopy(same)
    flipped["practices"][1]["fictitious"] = True
    del flipped["practices"][1]["sources"]
    with pytest.raises(CatalogError, match="practice 'one_to_one': is fictitious"):
        check_wordings(load_catalog(write(tmp_path, flipped, "v3.yaml")), [("t1", old.snapshot())])


def test_an_old_version_keeps_its_answers_and_column_while_dashboards_show_the_new_set(
    app, client, runner, tmp_path
):
    """A response given under an older catalogue, whose first practice was reworded under a
    new id since: its answers stay under the old column, the codebook says which versions
    each column pools, and the comparison lists only the practices asked now."""
    from survey.responses import check_vectors
    from tests.test_export import (
        allow_full_suppression,
        api_get,
        bearer,
        frame,
        seed,
        withheld_ids,
    )

    catalog = app.extensions["survey_catalog"]
    older = yaml.load(SHIPPED.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    older["version"] = "2000.1"
    reworded = catalog.practices[0].id
    entry = next(p for p in older["practices"] if p["id"] == reworded)
    entry["id"] = "old_wording"
    entry["name"] = {"ru": "Премия и разовые премии", "en": "Bonus and spot awards"}
    with app.app_context():
        loaded = runner.invoke(args=["load-catalog", str(write(tmp_path, older, "old.yaml"))])
        assert loaded.exit_code == 0, loaded.output
        old_version = db.session.scalar(select(CatalogVersion.id))
    seed(app, 60, seed_value=4)  # under the served catalogue: the new version
    allow_full_suppression(app)
    headers = bearer(app)
    before = frame(api_get(client, headers, "responses").data)
    shown = sorted(set(before["respondent_id"]) - withheld_ids(before))[0]
    with app.app_context():
        response = db.session.scalar(select(Response).where(Response.export_id == shown))
        response.catalog_version_id = old_version  # given under the older catalogue
        db.session.execute(
            delete(Answer).where(Answer.response_id == response.id, Answer.practice_id == reworded)
        )
        db.session.add(
            Answer(
                response_id=response.id, practice_id="old_wording", company_kind="ru", met="existed"
            )
        )
        db.session.add(
            Answer(
                response_id=response.id, practice_id="old_wording", company_kind="foreign", met="no"
            )
        )
        db.session.commit()
        list(check_vectors(repair=True))  # its vector in the older version's layout
        assert db.session.get(Practice, "old_wording").active is False
    wide = frame(api_get(client, headers, "responses").data).set_index("respondent_id")
    assert (wide.loc[shown, "old_wording__ru"], wide.loc[shown, "old_wording__foreign"]) == (
        "1",
        "0",
    )
    codebook = frame(api_get(client, headers, "codebook").data).set_index("column")
    pools = codebook["asked_in_versions"].fillna("")
    assert pools["old_wording__ru"] == "2000.1"
    assert pools[f"{reworded}__ru_rating"] == catalog.version
    assert pools[f"{catalog.practices[1].id}__foreign"] == f"2000.1; {catalog.version}"
    assert pools["respondent_id"] == ""
    comparison = client.get("/api/v1/comparison", headers=headers)
    assert comparison.status_code == 200
    listed = [p["practice_id"] for p in comparison.get_json()["practices"]]
    assert sorted(listed) == sorted(p.id for p in catalog.practices)
