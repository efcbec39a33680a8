"""`flask report`: one self-contained HTML file whose numbers match the raw answers.

Each test runs on a migrated SQLite file and a migrated PostgreSQL database.
"""

from __future__ import annotations

import json
import re
from html import unescape
from html.parser import HTMLParser

import pandas as pd
from plotly.offline import get_plotlyjs
from sqlalchemy import select, text, update
from statsmodels.stats.proportion import proportion_confint

from survey import results
from survey.extensions import db
from survey.models import Response
from survey.questions import RATING
from tests.helpers import Respondent

N_DEMO = 300
CYRILLIC = re.compile(r"[А-Яа-яЁё]")
PLOTLY_HEAD = get_plotlyjs()[:400]


class Page(HTMLParser):
    """The parts of a report a test looks at: tags' links, scripts, comparison tables."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.scripts: list[str] = []
        self.tables: list[list[list[str]]] = []  # comparison tables: body rows of cells
        self._script: list[str] | None = None
        self._table: list[list[str]] | None = None
        self._in_body = False
        self._cell: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href", "action", "data", "poster"):
            if attrs.get(name):
                self.links.append((tag, name, attrs[name]))
        if tag == "script":
            self._script = []
        elif tag == "table" and "comparison" in (attrs.get("class") or "").split():
            self._table = []
        elif tag == "tbody" and self._table is not None:
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._table.append([])
        elif tag == "td" and self._in_body:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append("".join(self._script))
            self._script = None
        elif tag == "td" and self._cell is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table" and self._table is not None:
            self.tables.append(self._table)
            self._table = None

    def handle_data(self, data):
        if self._script is not None:
            self._script.append(data)
        if self._cell is not None:
            self._cell.append(data)


def invoke(app, runner, *args: str):
    """Run a command as ``flask --app survey ...`` does: inside an application context."""
    with app.app_context():
        result = runner.invoke(args=list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def report(app, runner, path, *options: str) -> tuple[str, str]:
    """Run ``flask report --out path [options]``; return (its output, the HTML written)."""
    result = invoke(app, runner, "report", "--out", str(path), *options)
    return result.output, path.read_text(encoding="utf-8")


def raw_answers(app) -> pd.DataFrame:
    """Submitted answers with their response's demo flag and industry, one plain SELECT."""
    with app.app_context():
        rows = db.session.execute(
            text(
                "SELECT a.practice_id, a.company_kind, a.met, r.is_demo, r.industry, "
                "r.id AS response_id FROM answer a JOIN response r ON r.id = a.response_id "
                "WHERE r.status = 'submitted'"
            )
        ).all()
    frame = pd.DataFrame(
        [tuple(r) for r in rows],
        columns=["practice_id", "company_kind", "met", "is_demo", "industry", "response_id"],
    )
    frame["is_demo"] = frame["is_demo"].astype(bool)
    return frame


def percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def assert_self_contained(html: str) -> Page:
    """One HTML document that needs no network: no external link, plotly inline once."""
    page = Page(html)
    assert html.lstrip().startswith("<!DOCTYPE html>") and html.count("</html>") == 1
    external = [link for link in page.links if re.match(r"\s*(https?:)?//", link[2], re.I)]
    assert external == []
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", html, re.I)
    assert html.count(PLOTLY_HEAD) == 1
    assert sum(PLOTLY_HEAD in script for script in page.scripts) == 1
    outside = "".join(s for s in page.scripts if PLOTLY_HEAD not in s)
    assert "Plotly.newPlot" in outside  # the charts are drawn by the inlined bundle
    return page


def visible_text(html: str) -> str:
    """The text a reader sees: no tags, scripts or styles; entities decoded."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def assert_ratings_read_as_asked(html: str, lang: str) -> None:
    """The rating chart names each rating as the questionnaire's answer option does."""
    for option in RATING.options:
        assert json.dumps(option.label(lang))[1:-1] in html, option.code  # in the figure's JSON
    assert "rather demotivating" not in html and "rather motivating" not in html


def shares_in_table(page: Page, label: str) -> dict[str, str]:
    """The practice row's cells (n, share, CI for each kind) in the first comparison table."""
    rows = [row for row in page.tables[0] if row[0].rstrip(" ⚠") == label]
    assert len(rows) == 1, label
    row = rows[0]
    return {
        "n_ru": row[1],
        "p_ru": row[2],
        "ci_ru": row[3],
        "n_foreign": row[4],
        "p_foreign": row[5],
        "ci_foreign": row[6],
    }


def expected_cells(rows: pd.DataFrame, practice: str) -> dict[str, str]:
    """The same cells recomputed from the raw answers."""
    out = {}
    for kind in ("ru", "foreign"):
        met = rows.loc[(rows["practice_id"] == practice) & (rows["company_kind"] == kind), "met"]
        existed = met.isin(["applied", "existed", "yes"])  # applied or not, or the former yes
        k, n = int(existed.sum()), int((existed | (met == "no")).sum())
        low, high = proportion_confint(k, n, method="wilson")
        out[f"n_{kind}"] = str(n)
        out[f"p_{kind}"] = percent(k / n)
        out[f"ci_{kind}"] = f"{low * 100:.1f}–{high * 100:.1f}%"
    return out


def test_report_of_demo_data(app, runner, tmp_path):
    catalog = app.extensions["survey_catalog"]
    seeded = invoke(app, runner, "seed-demo", "--respondents", str(N_DEMO), "--seed", "7")
    assert f"Created {N_DEMO} synthetic demo respondents" in seeded.output
    raw = raw_answers(app)

    output, html = report(app, runner, tmp_path / "report.html")
    assert f"{N_DEMO} respondents (DEMO DATA, synthetic)" in output
    page = assert_self_contained(html)
    assert '<html lang="ru">' in html
    assert 'class="demo-banner"' in html and "ДЕМО-ДАННЫЕ" in html
    assert f"Респондентов: <strong>{N_DEMO}</strong>" in html
    assert len(page.tables) == 2  # practices, categories
    assert len(page.tables[0]) == len(catalog.practices)
    for practice in (catalog.practices[0], catalog.practices[-1]):
        shown = shares_in_table(page, practice.name.get("ru"))
        assert shown == expected_cells(raw, practice.id), practice.id
    assert_ratings_read_as_asked(html, "ru")

    output, html = report(app, runner, tmp_path / "report-en.html", "--lang", "en")
    page = assert_self_contained(html)
    assert '<html lang="en">' in html and "ДЕМО" not in html
    assert 'class="demo-banner"' in html and "DEMO DATA" in html
    assert f"Respondents: <strong>{N_DEMO}</strong>" in html
    practice = catalog.practices[1]
    shown = shares_in_table(page, practice.name.get("en"))
    assert shown == expected_cells(raw, practice.id)
    assert CYRILLIC.findall(visible_text(html)) == []  # every text of the page in English
    assert_ratings_read_as_asked(html, "en")

    # A segment: only respondents from IT.
    it = raw[raw["industry"] == "it"]
    n_it = it["response_id"].nunique()
    assert 0 < n_it < N_DEMO
    output, html = report(app, runner, tmp_path / "report-it.html", "--industry", "it")
    assert f"{n_it} respondents (DEMO DATA, synthetic)" in output
    page = assert_self_contained(html)
    assert f"Респондентов: <strong>{n_it}</strong>" in html
    assert '<th class="label" scope="row">industry</th><td class="label">it</td>' in html
    practice = catalog.practices[0]
    shown = shares_in_table(page, practice.name.get("ru"))
    assert shown == expected_cells(it, practice.id)


def both_kinds_shown(rows: pd.DataFrame, practice_ids) -> str:
    """The first practice whose yes/no answers number at least 10 in each kind of company
    among ``rows`` (so that the report shows both cells), straight from the raw answers."""
    answered = rows[rows["met"].isin(["applied", "existed", "yes", "no"])]
    n = answered.groupby(["practice_id", "company_kind"]).size().unstack(fill_value=0)
    return next(
        p
        for p in practice_ids
        if p in n.index and min(n.loc[p].get("ru", 0), n.loc[p].get("foreign", 0)) >= 10
    )


def test_report_leaves_demo_data_out_once_real_responses_exist(app, runner, client, tmp_path):
    catalog = app.extensions["survey_catalog"]
    invoke(app, runner, "seed-demo", "--respondents", "100", "--seed", "3")
    app.config["MIN_COMPLETION_SECONDS"] = 0  # the test client is faster than any person
    r = Respondent(client).complete(catalog)
    assert r.status_code == 302 and r.location.endswith("/thanks")

    # One real respondent is below the disclosure threshold, and the demo rows are no
    # cover for them: the report is refused, with or without demo data, and nothing written.
    for options in ((), ("--include-demo",)):
        with app.app_context():
            refused = runner.invoke(args=["report", "--out", str(tmp_path / "one.html"), *options])
        assert refused.exit_code != 0, options
        assert "withheld" in refused.output and "too_small" in refused.output, refused.output
        assert not (tmp_path / "one.html").exists()

    # 40 of the synthetic respondents relabelled real (test set-up): 41 real, 60 demo.
    with app.app_context():
        demo_ids = db.session.scalars(
            select(Response.id).where(Response.is_demo.is_(True)).order_by(Response.id).limit(40)
        ).all()
        db.session.execute(update(Response).where(Response.id.in_(demo_ids)).values(is_demo=False))
        db.session.commit()
    results.clear_cache()  # rows were relabelled in place, which adds no response
    raw = raw_answers(app)
    real = raw[~raw["is_demo"]]
    assert real["response_id"].nunique() == 41 and raw["response_id"].nunique() == 101

    output, html = report(app, runner, tmp_path / "real.html")
    assert "41 respondents." in output and "DEMO" not in output
    page = assert_self_contained(html)
    assert 'class="demo-banner"' not in html and "ДЕМО" not in html
    assert "Респондентов: <strong>41</strong>" in html
    practice = catalog.practice(both_kinds_shown(real, [p.id for p in catalog.practices]))
    assert shares_in_table(page, practice.name.get("ru")) == expected_cells(real, practice.id)

    output, html = report(app, runner, tmp_path / "mixed.html", "--include-demo")
    assert "101 respondents (DEMO DATA, synthetic)" in output
    page = assert_self_contained(html)
    assert 'class="demo-banner"' in html and "ДЕМО-ДАННЫЕ" in html
    assert "Респондентов: <strong>101</strong>" in html
    assert '<th class="label" scope="row">include_demo</th>' in html
    # Cells are judged on the real rows: pick one that the real respondents carry.
    practice = catalog.practice(both_kinds_shown(real, [p.id for p in catalog.practices]))
    assert shares_in_table(page, practice.name.get("ru")) == expected_cells(raw, practice.id)
