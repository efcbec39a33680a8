"""The HTML report: one offline document, escaped, bilingual, honest about demo data."""

import datetime as dt
import json
import math
import re
from html.parser import HTMLParser

import pytest
from plotly.offline import get_plotlyjs

from analysis.report import format_comparison, render_report
from tests.analysis.test_figures import make_table

EVIL = "<script>alert(1)</script>"
EVIL_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
BUNDLE_HEAD = get_plotlyjs()[:200]

SAMPLE = {
    "n_respondents": 120,
    "background": {"Стаж": [("до 3 лет", 30), ("3–10 лет", 90)], "Пол": [("ж", 60), ("м", 60)]},
}


def practice_table():
    return make_table(
        {"id": "bonus", "ru": (30, 40), "foreign": (10, 40), "q": 0.0004, "p": 0.0001},
        {"id": "remote", "ru": (4, 40), "foreign": (28, 40), "q": 0.0246, "p": 0.01234},
        {"id": "gym", "ru": (3, 6), "foreign": (0, 0), "q": math.nan, "test": None},
    )


def category_table():
    return make_table({"id": "money", "ru": (50, 80), "foreign": (40, 80)}, key="category_id")


class Attributes(HTMLParser):
    """Collects tags and their src / href attributes (script bodies are not parsed)."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value or "" for name, value in attrs if name in ("src", "href")]


def parse(page: str) -> Attributes:
    parser = Attributes()
    parser.feed(page)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def demo_page() -> str:
    return render_report(
        practice_table(),
        {"bonus": EVIL, "remote": "Удалённая работа", "gym": "Спортзал"},
        lang="ru",
        sample={"n_respondents": 120, "background": {EVIL: [(EVIL, 3)]}},
        assumptions=f"Первый абзац.\n\nВторой абзац {EVIL}.",
        title=f"Отчёт {EVIL}",
        category_table=category_table(),
        category_labels={"money": "Деньги"},
        demo=True,
        filters={"Волна": "2026", "Отрасль": ["ИТ", EVIL]},
        generated_on=dt.date(2026, 3, 1),
    )


@pytest.fixture(scope="module")
def english_page() -> str:
    labels = {"bonus": {"ru": "Премия", "en": "Bonus"}, "remote": {"en": "Remote work"}}
    return render_report(
        practice_table(), labels, lang="en", sample=SAMPLE, assumptions="Shares exclude DK."
    )


def test_the_report_is_one_utf8_html_document(demo_page):
    assert demo_page.startswith("<!DOCTYPE html>")
    assert demo_page.count("<html") == 1 and demo_page.rstrip().endswith("</html>")
    assert '<meta charset="utf-8">' in demo_page
    assert '<html lang="ru">' in demo_page
    assert parse(demo_page).tags.count("body") == 1


def test_plotly_js_is_inlined_exactly_once(demo_page, english_page):
    for page in (demo_page, english_page):
        assert page.count(BUNDLE_HEAD) == 1
        assert page.index(BUNDLE_HEAD) < page.index("</head>")
    assert demo_page.count('class="plotly-graph-div"') == 4  # three charts + categories
    assert english_page.count('class="plotly-graph-div"') == 3


def test_the_report_refers_to_no_external_resource(demo_page, english_page):
    for page in (demo_page, english_page):
        parsed = parse(page)
        assert not [link for link in parsed.links if "//" in link or ":" in link]
        assert "link" not in parsed.tags
        # plotly.js itself contains URL strings; nothing else may.
        rest = page.replace(get_plotlyjs(), "")
        assert "http://" not in rest and "https://" not in rest
        assert "url(" not in rest


def test_the_demo_banner_appears_at_the_top_only_for_demo_data(demo_page, english_page):
    assert demo_page.count("ДЕМО-ДАННЫЕ (синтетические)") == 1
    assert demo_page.index("ДЕМО-ДАННЫЕ") < demo_page.index("<h1>")
    assert "DEMO DATA" not in english_page and "ДЕМО" not in english_page
    english_demo = render_report(
        make_table(), {}, lang="en", sample=SAMPLE, assumptions="", demo=True
    )
    assert "DEMO DATA (synthetic)" in english_demo
    assert "ДЕМО" not in english_demo


def test_every_label_and_text_is_escaped(demo_page):
    assert EVIL not in demo_page
    assert "alert(1)</script>" not in demo_page
    table_part = demo_page[demo_page.index('<section id="comparison">') :]
    assert f'<td class="label">{EVIL_ESCAPED}</td>' in table_part
    assert f"<title>Отчёт {EVIL_ESCAPED}</title>" in demo_page
    assert f"<caption>{EVIL_ESCAPED}</caption>" in demo_page
    assert f"<p>Второй абзац {EVIL_ESCAPED}.</p>" in demo_page
    assert f"ИТ, {EVIL_ESCAPED}" in demo_page


def test_text_from_the_data_is_never_read_as_a_template_or_markup():
    label = '{{ 7 * 7 }} {% raw %}<b>"Q&A"</b>'
    page = render_report(
        make_table({"id": "a"}),
        {"a": label},
        sample={"n_respondents": 1, "background": {label: [(label, 1)]}},
        assumptions=label,
        filters={label: label},
        title=label,
    )
    escaped = "{{ 7 * 7 }} {% raw %}&lt;b&gt;&#34;Q&amp;A&#34;&lt;/b&gt;"
    # the title twice, the filter's name and value, the sample's caption and option, the
    # assumptions and the comparison table's row
    assert page.count(escaped) == 8
    assert f'<td class="label">{escaped}</td>' in page  # the comparison table's row
    assert "49" not in page.replace(get_plotlyjs(), "").split('<section id="prevalence">')[0]


def test_the_report_shows_filters_sample_assumptions_and_date(demo_page, english_page):
    assert '<th class="label" scope="row">Волна</th><td class="label">2026</td>' in demo_page
    assert "Дата формирования: 2026-03-01" in demo_page
    assert "<p>Первый абзац.</p>" in demo_page
    assert "Respondents: <strong>120</strong>" in english_page
    assert "<caption>Стаж</caption>" in english_page
    assert '<td class="label">3–10 лет</td><td>90</td><td>75.0%</td>' in english_page
    assert re.search(r'id="filters"><h2>Filters</h2>\s*<p>none</p>\s*</section>', english_page)
    assert "Generated on" not in english_page


def test_the_sections_come_in_order(demo_page):
    ids = ["filters", "sample", "assumptions", "comparison", "prevalence", "paired", "ratings"]
    positions = [demo_page.index(f'<section id="{name}">') for name in ids + ["categories"]]
    assert positions == sorted(positions)
    order = ["fig-prevalence", "fig-paired", "fig-ratings", "fig-categories"]
    figures = [demo_page.index(f'<div id="{div}"') for div in order]
    assert figures == sorted(figures)


def test_the_comparison_table_flags_significant_and_low_n_rows(demo_page):
    assert '<tr class="significant"><td class="label">' + EVIL_ESCAPED in demo_page
    assert '<tr class="low-n"><td class="label">Спортзал ⚠</td>' in demo_page
    assert "&lt;0.001 ★" in demo_page


def test_the_category_section_appears_only_with_a_category_table(demo_page, english_page):
    categories = demo_page[demo_page.index('<section id="categories">') :]
    assert "Деньги" in categories
    assert "Категория" in categories
    assert 'id="categories"' not in english_page


def test_the_english_report_speaks_english(english_page):
    assert '<html lang="en">' in english_page
    assert "Motivation practices in Russian and foreign companies" in english_page
    assert "<h2>Comparison by practice</h2>" in english_page
    assert '<td class="label">Bonus</td>' in english_page
    assert '<td class="label">Remote work</td>' in english_page
    assert "Российские компании" not in english_page


def test_an_empty_table_still_renders_with_no_data_everywhere():
    page = render_report(make_table(), {}, sample={"n_respondents": 0}, assumptions="")
    assert '<td class="label" colspan="21">Нет данных</td>' in page
    in_json = json.dumps("Нет данных")[1:-1]  # figure JSON escapes non-ASCII text
    assert page.count("Нет данных") + page.count(in_json) == 4  # table row and three charts


def test_equal_inputs_give_an_equal_document():
    def render():
        return render_report(make_table({"id": "a"}), {}, sample=SAMPLE, assumptions="x")

    assert render() == render()


def test_the_report_rejects_an_unknown_language_and_a_sample_without_size():
    with pytest.raises(ValueError, match="lang"):
        render_report(make_table(), {}, lang="de", sample=SAMPLE, assumptions="")
    with pytest.raises(ValueError, match="n_respondents"):
        render_report(make_table(), {}, sample={}, assumptions="")


def test_format_comparison_rounds_only_for_display():
    table = practice_table()
    shown = format_comparison(table, {"bonus": "Премия"}, lang="en")
    bonus, remote, gym = shown.to_dict("records")
    assert bonus["label"] == "Премия" and remote["label"] == "remote"
    assert (bonus["n_ru"], bonus["p_ru"], bonus["p_foreign"]) == ("40", "75.0%", "25.0%")
    assert bonus["ci_ru"] == "59.8–85.8%"
    assert bonus["diff"] == "+50.0 [+30.0; +70.0]"
    assert remote["diff"] == "−60.0 [−80.0; −40.0]"
    assert (bonus["test"], bonus["p_val"], bonus["q_val"]) == ("χ²", "<0.001", "<0.001 ★")
    assert (remote["p_val"], remote["q_val"]) == ("0.0123", "0.0246 ★")
    assert (gym["p_foreign"], gym["ci_foreign"], gym["diff"], gym["test"]) == ("—",) * 4
    assert [bonus["significant"], remote["significant"], gym["significant"]] == [
        True,
        True,
        False,
    ]
    assert shown["low_n"].tolist() == [False, False, True]
    assert bonus["rating_mean_ru"] == "3.67"
    assert table.loc[0, "p_ru"] == 0.75  # the input is untouched
    russian = format_comparison(table, {}, lang="ru")
    assert russian.loc[0, "test"] == "χ²"
    fisher = format_comparison(make_table({"id": "a", "test": "fisher"}), {}, lang="ru")
    assert fisher.loc[0, "test"] == "Фишер"
