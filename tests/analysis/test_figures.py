"""Figure builders: traces, sort order, markers, languages, empty and one-sided data."""

import datetime as dt
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from plotly.offline import get_plotlyjs

from analysis import figures
from analysis import table as definition
from analysis.figures import (
    background_bars,
    dropoff,
    fieldwork_daily,
    figure_div,
    paired_dumbbell,
    plotly_js_path,
    prevalence_dumbbell,
    rating_diverging,
)
from survey.questions import RATING

# A hand-made comparison table has the columns of the one definition, in its order.
COLUMNS = definition.order("practice_id")

LOW_N = 10


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval, written out (NaN when n == 0)."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def make_table(*items: dict, key: str = "practice_id") -> pd.DataFrame:
    """A comparison table with exactly compare()'s columns, from a few numbers per item.

    Each item: ``id`` and optionally ``ru``/``foreign`` = (k, n), ``q``, ``paired`` =
    (n, b, c), ``paired_q``, ``ratings_ru``/``ratings_foreign`` = counts of 1..5, ``p``.
    Columns no builder reads are empty (NaN, None for a test's name, False for a flag).
    """
    rows = []
    for item in items:
        row: dict = {key: item["id"]}
        for side in ("ru", "foreign"):
            k, n = item.get(side, (10, 20))
            low, high = wilson(k, n)
            row |= {
                f"n_{side}": n,
                f"k_{side}": k,
                f"dk_{side}": 1,
                f"p_{side}": k / n if n else math.nan,
                f"ci_{side}_low": low,
                f"ci_{side}_high": high,
                f"low_n_{side}": n < LOW_N,
            }
            counts = item.get(f"ratings_{side}", (1, 2, 3, 4, 5))
            rating_n = sum(counts)
            row[f"rating_n_{side}"] = rating_n
            row[f"rating_mean_{side}"] = (
                sum(r * c for r, c in zip(range(1, 6), counts, strict=True)) / rating_n
                if rating_n
                else math.nan
            )
            row[f"rating_median_{side}"] = 3.0 if rating_n else math.nan
            for level, count in enumerate(counts, start=1):
                row[f"r{level}_{side}"] = count
        diff = row["p_ru"] - row["p_foreign"]
        paired_n, b, c = item.get("paired", (12, 4, 2))
        paired_diff = (b - c) / paired_n if paired_n else math.nan
        q = item.get("q", 0.5)
        row |= {
            "diff": diff,
            "diff_ci_low": diff - 0.2,
            "diff_ci_high": diff + 0.2,
            "test": item.get("test", "chi2"),
            "statistic": 1.0,
            "p_val": item.get("p", q / 2),
            "q_val": q,
            "cohens_h": 0.1,
            "paired_n": paired_n,
            "paired_b": b,
            "paired_c": c,
            "paired_diff": paired_diff,
            "paired_ci_low": paired_diff - 0.15,
            "paired_ci_high": paired_diff + 0.15,
            "paired_p_val": item.get("paired_q", 0.6) / 2,
            "paired_q_val": item.get("paired_q", 0.6),
            "mwu_u": 10.0,
            "rating_p_val": 0.3,
            "rating_q_val": 0.4,
            "rank_biserial": 0.05,
            "rating_paired_n": 5,
            "wilcoxon_statistic": 3.0,
            "wilcoxon_p_val": 0.5,
            "wilcoxon_q_val": 0.6,
            "low_n_paired": paired_n < LOW_N,
            "low_n_rating": min(row["rating_n_ru"], row["rating_n_foreign"]) < LOW_N,
        }
        row["low_n"] = row["low_n_ru"] or row["low_n_foreign"]
        rows.append(row)
    unknown = {name for row in rows for name in row} - {key, *COLUMNS}
    assert not unknown, f"not columns of the comparison table: {unknown}"
    columns = [key if c == "practice_id" else c for c in COLUMNS]
    table = pd.DataFrame(rows, columns=columns)
    for name in definition.TEXT_COLUMNS:
        table[name] = table[name].astype(object).where(table[name].notna(), None)
    for name in definition.BOOL_COLUMNS:
        table[name] = table[name].fillna(False).astype(bool)
    assert list(table.columns) == columns
    return table


LABELS = {"bonus": "Премия", "remote": "Удалённая работа", "gym": "Спортзал"}


@pytest.fixture
def table() -> pd.DataFrame:
    return make_table(
        {"id": "bonus", "ru": (30, 40), "foreign": (10, 40), "q": 0.001},  # diff +0.5
        {"id": "remote", "ru": (4, 40), "foreign": (28, 40), "q": 0.02},  # diff -0.6
        {"id": "gym", "ru": (3, 6), "foreign": (20, 40), "q": 0.9},  # diff 0, ru low n
    )


def markers(fig: go.Figure, name: str) -> go.Scatter:
    (trace,) = [t for t in fig.data if t.name == name]
    return trace


# --------------------------------------------------------------------------- prevalence


def test_prevalence_dumbbell_has_a_connector_and_one_marker_per_item_and_side(table):
    fig = prevalence_dumbbell(table, LABELS)
    assert isinstance(fig, go.Figure)
    assert [t.mode for t in fig.data] == ["lines", "markers", "markers"]
    assert fig.data[0].showlegend is False
    assert len(markers(fig, "Российские компании").x) == 3
    assert len(markers(fig, "Иностранные компании").x) == 3
    # Three line segments (two points each) separated by gaps.
    assert sum(x is None for x in fig.data[0].x) == 3


def test_prevalence_rows_put_the_largest_foreign_advantage_on_top(table):
    fig = prevalence_dumbbell(table, LABELS)
    assert fig.layout.yaxis.ticktext == ("★ Удалённая работа", "Спортзал", "★ Премия")
    assert fig.layout.yaxis.tickvals == (0, 1, 2)
    assert fig.layout.yaxis.range[0] > fig.layout.yaxis.range[1]  # row 0 at the top
    ru = markers(fig, "Российские компании")
    assert np.allclose(ru.x, [0.1, 0.5, 0.75])
    assert np.allclose(np.round(ru.y), [0, 1, 2])


def test_prevalence_markers_carry_wilson_error_bars(table):
    ru = markers(prevalence_dumbbell(table, LABELS), "Российские компании")
    low, high = wilson(4, 40)
    assert ru.error_x.array[0] == pytest.approx(high - 0.1)
    assert ru.error_x.arrayminus[0] == pytest.approx(0.1 - low)
    assert ru.error_x.symmetric is False


def test_prevalence_marks_significant_items_with_a_star_and_a_note(table):
    fig = prevalence_dumbbell(table, LABELS, significance=0.01)
    assert fig.layout.yaxis.ticktext == ("Удалённая работа", "Спортзал", "★ Премия")
    assert "★" in fig.layout.annotations[0].text
    assert "q < 0.01" in fig.layout.annotations[0].text


def test_prevalence_low_n_side_has_a_hollow_marker_and_a_hover_note(table):
    fig = prevalence_dumbbell(table, LABELS)
    ru = markers(fig, "Российские компании")
    foreign = markers(fig, "Иностранные компании")
    assert ru.marker.symbol == ("circle", "circle-open", "circle")
    assert "open" not in "".join(foreign.marker.symbol)
    assert "мало наблюдений" in ru.hovertext[1]
    assert "мало наблюдений" not in ru.hovertext[0]


def test_prevalence_hover_shows_n_k_share_interval_and_q(table):
    ru = markers(prevalence_dumbbell(table, LABELS), "Российские компании")
    text = ru.hovertext[2]  # bonus, bottom row
    low, high = wilson(30, 40)
    assert "Премия" in text
    assert "n = 40, k = 30" in text
    assert "75.0%" in text
    assert f"{low * 100:.1f}–{high * 100:.1f}%" in text
    assert "q = 0.0010" in text


def test_prevalence_side_without_respondents_has_no_marker_and_no_connector():
    table = make_table(
        {"id": "bonus", "ru": (5, 20), "foreign": (0, 0)},
        {"id": "gym", "ru": (10, 20), "foreign": (5, 20)},
    )
    assert math.isnan(table.loc[0, "p_foreign"])
    fig = prevalence_dumbbell(table, LABELS)
    assert fig.layout.yaxis.ticktext == ("Спортзал", "Премия")  # NaN difference last
    foreign = markers(fig, "Иностранные компании")
    assert len(foreign.x) == 1
    assert np.round(foreign.y[0]) == 0
    assert len(markers(fig, "Российские компании").x) == 2
    assert sum(x is None for x in fig.data[0].x) == 1


def test_prevalence_reads_nullable_dtypes_and_missing_values(table):
    nullable = table.astype({"n_foreign": "Int64", "p_foreign": "Float64", "q_val": "Float64"})
    nullable.loc[0, ["n_foreign", "p_foreign", "q_val"]] = pd.NA
    fig = prevalence_dumbbell(nullable, LABELS)
    assert len(markers(fig, "Иностранные компании").x) == 2
    assert fig.layout.yaxis.ticktext[-1] == "Премия"  # no difference, no star, last


def test_prevalence_x_axis_is_a_percentage_from_0_to_100(table):
    fig = prevalence_dumbbell(table, LABELS)
    assert fig.layout.xaxis.range == (0, 1)
    assert fig.layout.xaxis.tickformat == ".0%"


def test_chart_height_grows_with_the_number_of_rows():
    small = prevalence_dumbbell(make_table({"id": "a"}), {})
    large = prevalence_dumbbell(make_table(*({"id": f"p{i}"} for i in range(21))), {})
    assert large.layout.height - small.layout.height == 20 * figures.ROW_HEIGHT


def test_prevalence_speaks_english_and_escapes_labels(table):
    labels = {
        "bonus": {"ru": "Премия", "en": "Bonus <b>"},
        "remote": {"ru": "Удалёнка", "en": "Remote"},
    }
    fig = prevalence_dumbbell(table, labels, lang="en")
    assert {t.name for t in fig.data[1:]} == {"Russian companies", "Foreign companies"}
    assert "How often" in fig.layout.title.text
    assert fig.layout.yaxis.ticktext == ("★ Remote", "gym", "★ Bonus &lt;b&gt;")


def test_prevalence_title_can_be_replaced_and_is_escaped(table):
    fig = prevalence_dumbbell(table, LABELS, title="Categories <i>")
    assert fig.layout.title.text == "Categories &lt;i&gt;"


def test_prevalence_uses_the_key_column(table):
    categories = table.rename(columns={"practice_id": "category_id"})
    fig = prevalence_dumbbell(categories, {"bonus": "Money"}, key="category_id")
    assert "★ Money" in fig.layout.yaxis.ticktext
    with pytest.raises(ValueError, match="category_id"):
        prevalence_dumbbell(table, LABELS, key="category_id")


# --------------------------------------------------------------------------- paired


def test_paired_dumbbell_sorts_by_paired_difference_and_marks_significance():
    table = make_table(
        {"id": "bonus", "paired": (20, 10, 2), "paired_q": 0.01},  # +0.4
        {"id": "remote", "paired": (20, 1, 9), "paired_q": 0.2},  # -0.4
        {"id": "gym", "paired": (5, 2, 2), "paired_q": 0.9},  # 0, low n
    )
    fig = paired_dumbbell(table, LABELS)
    (trace,) = fig.data
    assert fig.layout.yaxis.ticktext == ("Удалённая работа", "Спортзал", "★ Премия")
    assert np.allclose(trace.x, [-0.4, 0.0, 0.4])
    assert trace.marker.symbol == ("circle", "circle-open", "circle")
    assert trace.marker.color[0] == figures.FOREIGN_COLOR
    assert trace.marker.color[2] == figures.RU_COLOR
    assert trace.error_x.array[0] == pytest.approx(0.15)
    assert "b = 10" in trace.hovertext[2] and "c = 2" in trace.hovertext[2]
    assert "+40.0 п. п." in trace.hovertext[2]
    (zero_line,) = fig.layout.shapes
    assert (zero_line.x0, zero_line.x1) == (0, 0)
    assert fig.layout.xaxis.range[0] == -fig.layout.xaxis.range[1]


def test_paired_dumbbell_leaves_items_without_paired_respondents_empty_at_the_bottom():
    table = make_table(
        {"id": "bonus", "paired": (0, 0, 0)},
        {"id": "gym", "paired": (12, 3, 1)},
    )
    fig = paired_dumbbell(table, LABELS, lang="en")
    assert fig.layout.yaxis.ticktext == ("Спортзал", "Премия")
    assert len(fig.data[0].x) == 1
    assert "Paired comparison" in fig.layout.title.text


# --------------------------------------------------------------------------- ratings


@pytest.fixture
def rating_table() -> pd.DataFrame:
    return make_table(
        {"id": "bonus", "ratings_ru": (0, 0, 2, 4, 4), "ratings_foreign": (1, 1, 2, 3, 3)},
        {"id": "gym", "ratings_ru": (4, 4, 2, 0, 0), "ratings_foreign": (0, 0, 0, 0, 0)},
    )


def scale(lang: str) -> dict[str, str]:
    """The rating's answer options as the questionnaire shows them (the caller's labels)."""
    return {option.code: option.label(lang) for option in RATING.options}


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_rating_legend_reads_as_the_questionnaire_asked(rating_table, lang):
    fig = rating_diverging(rating_table, LABELS, lang, scale=scale(lang))
    legend = {t.legendrank: t.name for t in fig.data if t.showlegend is not False}
    assert [legend[level] for level in range(1, 6)] == [o.label(lang) for o in RATING.options]
    numbers = rating_diverging(rating_table, LABELS, lang)  # without labels, the ratings
    assert sorted(t.name for t in numbers.data if t.showlegend is not False) == list("12345")


def test_rating_diverging_stacks_five_levels_around_zero(rating_table):
    fig = rating_diverging(rating_table, LABELS)
    assert [t.type for t in fig.data] == ["bar"] * 6
    assert fig.layout.barmode == "relative"
    assert [t.legendrank for t in fig.data] == [3, 3, 2, 4, 1, 5]
    by_level = {(t.legendrank, t.x[0] >= 0 if t.legendrank == 3 else None): t for t in fig.data}
    # First bar: bonus, Russian companies, ratings (0, 0, 2, 4, 4) of 10.
    assert by_level[(3, False)].x[0] == pytest.approx(-0.1)
    assert by_level[(3, True)].x[0] == pytest.approx(0.1)
    assert by_level[(4, None)].x[0] == pytest.approx(0.4)
    assert by_level[(1, None)].x[0] == pytest.approx(0.0)
    for position in range(3):  # each drawn bar adds up to 100%
        total = sum(abs(t.x[position]) for t in fig.data)
        assert total == pytest.approx(1.0)


def test_rating_diverging_draws_no_bar_for_a_side_without_ratings(rating_table):
    fig = rating_diverging(rating_table, LABELS)
    # bonus (higher mean) on top: bars at 0 and 1; gym Russian at 3; gym foreign absent.
    assert fig.data[0].y == (0, 1, 3)
    assert fig.layout.yaxis.tickvals == (0, 1, 3, 4)
    assert fig.layout.yaxis.ticktext == ("Премия — рос.", "иностр.", "Спортзал — рос.", "иностр.")


def test_rating_diverging_hover_gives_counts_and_shares(rating_table):
    fig = rating_diverging(rating_table, LABELS, lang="en", scale=scale("en"))
    five = next(t for t in fig.data if t.legendrank == 5)
    assert "5 — strongly motivating: 4 of 10 (40.0%)" in five.hovertext[0]
    assert "Russian companies" in five.hovertext[0]
    assert five.name == "5 — strongly motivating"


# --------------------------------------------------------------------------- fieldwork


def test_fieldwork_daily_is_a_bar_per_day_in_date_order():
    daily = pd.DataFrame({"day": [dt.date(2026, 3, 2), dt.date(2026, 3, 1)], "completed": [5, 7]})
    fig = fieldwork_daily(daily, lang="en")
    (bar,) = fig.data
    assert bar.type == "bar"
    assert bar.x == ("2026-03-01", "2026-03-02")
    assert list(bar.y) == [7, 5]
    assert "total 12" in fig.layout.title.text


def test_dropoff_keeps_page_order_and_shows_the_share_of_starters():
    pages = pd.DataFrame({"page": ["Согласие", "Профиль", "Практики"], "reached": [200, 150, 90]})
    fig = dropoff(pages)
    (bar,) = fig.data
    assert bar.orientation == "h"
    assert bar.y == ("Согласие", "Профиль", "Практики")
    assert fig.layout.yaxis.categoryarray == ("Согласие", "Профиль", "Практики")
    assert fig.layout.yaxis.autorange == "reversed"
    assert bar.text == ("200 (100.0%)", "150 (75.0%)", "90 (45.0%)")


def test_background_bars_show_counts_shares_and_an_escaped_title():
    counts = pd.DataFrame({"label": ["до 25", "25–34", "<35>"], "n": [10, 30, 60]})
    fig = background_bars(counts, "Возраст <script>", lang="ru")
    (bar,) = fig.data
    assert bar.y == ("до 25", "25–34", "&lt;35&gt;")
    assert bar.text == ("10 (10.0%)", "30 (30.0%)", "60 (60.0%)")
    assert fig.layout.title.text == "Возраст &lt;script&gt;"


# --------------------------------------------------------------------------- all builders


def builders(table: pd.DataFrame):
    daily = pd.DataFrame({"day": [dt.date(2026, 3, 1)], "completed": [3]})
    pages = pd.DataFrame({"page": ["p1"], "reached": [3]})
    counts = pd.DataFrame({"label": ["a"], "n": [3]})
    return {
        "prevalence_dumbbell": lambda lang: prevalence_dumbbell(table, LABELS, lang),
        "paired_dumbbell": lambda lang: paired_dumbbell(table, LABELS, lang),
        "rating_diverging": lambda lang: rating_diverging(table, LABELS, lang),
        "fieldwork_daily": lambda lang: fieldwork_daily(daily.iloc[: len(table)], lang),
        "dropoff": lambda lang: dropoff(pages.iloc[: len(table)], lang),
        "background_bars": lambda lang: background_bars(counts.iloc[: len(table)], "T", lang),
    }


@pytest.mark.parametrize("kind", list(builders(make_table())))
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_figure_is_plotly_white_and_names_its_builder(table, kind, lang):
    fig = builders(table)[kind](lang)
    assert fig.layout.meta == {"kind": kind}
    assert fig.layout.template == pio.templates["plotly_white"]
    assert fig.layout.title.text


@pytest.mark.parametrize("kind", list(builders(make_table())))
@pytest.mark.parametrize(("lang", "message"), [("ru", "Нет данных"), ("en", "No data")])
def test_an_empty_frame_gives_a_no_data_figure(kind, lang, message):
    fig = builders(make_table())[kind](lang)
    assert len(fig.data) == 0
    assert [a.text for a in fig.layout.annotations] == [message]
    assert fig.layout.meta == {"kind": kind}


def test_an_empty_frame_without_columns_also_gives_a_no_data_figure():
    fig = prevalence_dumbbell(pd.DataFrame(), LABELS)
    assert fig.layout.annotations[0].text == "Нет данных"


def test_builders_reject_an_unknown_language_and_missing_columns(table):
    with pytest.raises(ValueError, match="lang"):
        prevalence_dumbbell(table, LABELS, lang="de")
    with pytest.raises(ValueError, match="paired_diff"):
        paired_dumbbell(table.drop(columns="paired_diff"), LABELS)
    with pytest.raises(ValueError, match="significance"):
        prevalence_dumbbell(table, LABELS, significance=5)


# --------------------------------------------------------------------------- output


def test_figure_div_is_a_div_without_plotly_js(table):
    div = figure_div(prevalence_dumbbell(table, LABELS), div_id="fig-x")
    assert div.startswith("<div")
    assert 'id="fig-x"' in div
    assert '"displaylogo": false' in div
    assert '"responsive": true' in div
    assert "<script src" not in div
    assert get_plotlyjs()[:200] not in div
    assert "https://" not in div and "http://" not in div


def test_plotly_js_path_is_the_bundle_plotly_ships():
    path = plotly_js_path()
    assert path.name == "plotly.min.js"
    assert path.read_text(encoding="utf-8")[:500] == get_plotlyjs()[:500]
