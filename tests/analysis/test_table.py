"""The comparison table's one definition (analysis.table), and the readers that take their
columns from it: compare(), the report's table and the figures. (The API's JSON and the CSV
download are checked in tests/test_api.py and tests/test_dashboard.py.)"""

import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from analysis import figures
from analysis import table as definition
from analysis.compare import compare
from analysis.report import format_comparison, render_report
from tests.analysis.test_figures import make_table

PREVALENCE = pd.DataFrame(
    {
        "practice_id": ["bonus", "bonus", "gym", "gym"],
        "company_kind": ["ru", "foreign"] * 2,
        "yes": [30, 55, 3, 0],
        "no": [90, 55, 3, 0],
        "dk": [4, 2, 1, 0],
    }
)


# --------------------------------------------------------------------------- the definition


def test_every_column_has_one_name_a_known_group_a_type_and_a_meaning():
    assert len(set(definition.NAMES)) == len(definition.NAMES)
    groups = [g.name for g in definition.GROUPS]
    assert len(set(groups)) == len(groups)
    for column in definition.COLUMNS:
        assert column.group in groups, column.name
        assert column.type in definition.TYPES, column.name
        assert column.meaning.strip() and column.meaning == column.meaning.strip(), column.name
        assert bool(column.values) == (column.type == "text"), column.name
    # Table order runs group by group.
    assert [c.group for c in definition.COLUMNS] == sorted(
        (c.group for c in definition.COLUMNS), key=groups.index
    )
    assert [name for cols in definition.COLUMN_GROUPS.values() for name in cols] == list(
        definition.NAMES
    )


def test_a_cell_rests_on_its_count_and_a_test_on_two_cells():
    for group in definition.GROUPS:
        columns = definition.COLUMN_GROUPS[group.name]
        assert columns, group.name
        assert not (group.count and group.sides), group.name
        if group.count:  # the first column counts the respondents the cell rests on
            assert columns[0] == group.count
            assert definition.column(group.count).type == "int"
        for side in group.sides:
            assert side in definition.CELL_GROUPS, (group.name, side)
    assert set(definition.COLUMN_GROUPS["flags"]) == set(definition.BOOL_COLUMNS)


def test_every_p_value_has_its_q_value_in_the_same_group():
    p_columns = [name for name in definition.NAMES if name.endswith("p_val")]
    assert [f"{family}p_val" for family in definition.Q_FAMILIES] == p_columns
    for family in definition.Q_FAMILIES:
        p, q = definition.column(f"{family}p_val"), definition.column(f"{family}q_val")
        assert p.group == q.group and p.type == q.type == "float"


def test_api_places_are_unique_and_never_inside_one_another():
    for key in ("practice_id", "category_id"):
        places = [path for c in definition.api_columns(key) for path in c.api_paths]
        assert len(set(places)) == len(places), key
        for path in places:
            for other in places:
                assert other == path or other[: len(path)] != path, (path, other)
    # The category bounds are shown at category level only.
    practice = {c.name for c in definition.api_columns("practice_id")}
    category = {c.name for c in definition.api_columns("category_id")}
    assert category - practice == {
        f"p_{k}_bound_{e}" for k in ("ru", "foreign") for e in ("low", "high")
    }
    assert definition.json_path("paired.diff_ci[1]") == ("paired", "diff_ci", 1)
    with pytest.raises(ValueError):
        definition.json_path("paired..n")


def test_unknown_names_are_refused():
    with pytest.raises(KeyError, match="rating_u"):
        definition.select("diff", "rating_u")
    with pytest.raises(KeyError):
        definition.suppressed("primary")  # a test is withheld with its cells, not on its own
    assert definition.GATE_COLUMNS[0] == "suppressed_ru"
    assert definition.gated_order("category_id")[0] == "category_id"


# --------------------------------------------------------------------------- compare()


@pytest.mark.parametrize("key", ["practice_id", "category_id"])
def test_compare_builds_the_definitions_columns_in_order_with_their_types(key):
    prevalence = PREVALENCE.rename(columns={"practice_id": key})
    table = compare(prevalence, None, None, None, key=key, items=["bonus", "gym", "new"])
    assert list(table.columns) == definition.order(key)
    for column in definition.COLUMNS:
        dtype = np.dtype(definition.DTYPES[column.type])
        assert table[column.name].dtype == dtype, column.name
    assert set(table["test"]) == {"overlap_z", None}


# --------------------------------------------------------------------------- the report


class Table(HTMLParser):
    """The header rows and the first body row of the first comparison table."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[tuple[str, dict, str]]] = []
        self.depth = 0
        self.done = False
        self.cell: list | None = None

    def handle_starttag(self, tag, attrs):
        if self.done:
            return
        if tag == "table" and dict(attrs).get("class") == "comparison":
            self.depth = 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("th", "td"):
            self.cell = [tag, dict(attrs), ""]

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[2] += data

    def handle_endtag(self, tag):
        if self.depth and tag in ("th", "td") and self.cell is not None:
            self.rows[-1].append(tuple(self.cell))
            self.cell = None
        elif self.depth and tag == "table":
            self.depth, self.done = 0, True


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("key", ["practice_id", "category_id"])
def test_the_report_table_has_the_definitions_columns_and_headers(lang, key):
    table = make_table({"id": "bonus"}, {"id": "remote"}, key=key)
    shown = definition.report_columns(key)
    page = render_report(
        table if key == "practice_id" else make_table({"id": "a"}),
        {},
        lang=lang,
        sample={"n_respondents": 1},
        assumptions="",
        category_table=table if key == "category_id" else None,
    )
    if key == "category_id":
        page = page[page.index('<section id="categories">') :]
    parser = Table()
    parser.feed(page)
    bands, headers, first = parser.rows[:3]
    spans = [(text, int(attrs["colspan"])) for _tag, attrs, text in bands[1:]]
    expected = {}
    for column in shown:
        expected[column.band] = expected.get(column.band, 0) + 1
    assert spans == [(definition.BANDS[band][lang], n) for band, n in expected.items()]
    assert [text for _tag, _attrs, text in headers] == [getattr(c, lang) for c in shown]
    assert len(first) == 1 + len(shown)
    # Each cell is the formatted value of its column.
    formatted = format_comparison(table, {}, lang, key).iloc[0]
    assert [text for _tag, _attrs, text in first[1:]] == [formatted[c.name] for c in shown]


def test_format_comparison_gives_the_definitions_report_columns():
    shown = format_comparison(make_table({"id": "a"}), {}, "en")
    assert list(shown.columns) == [
        "label",
        *(c.name for c in definition.REPORT),
        "low_n",
        "significant",
    ]
    required = {src for c in definition.REPORT if c.key is None for src in c.sources}
    for name in required:
        with pytest.raises(ValueError, match=name):
            format_comparison(make_table({"id": "a"}).drop(columns=name), {}, "en")


# --------------------------------------------------------------------------- the figures


def test_the_figures_read_columns_of_the_definition():
    for columns in (figures.PREVALENCE_COLUMNS, figures.PAIRED_COLUMNS, figures.RATING_COLUMNS):
        assert set(columns) <= set(definition.NAMES)


def test_the_definition_and_its_readers_in_analysis_import_no_web_framework():
    code = (
        "import sys, analysis.table, analysis.compare, analysis.report, analysis.figures, "
        "analysis.display, analysis.waves; "
        "assert not {'flask', 'survey'} & {m.split('.')[0] for m in sys.modules}"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
