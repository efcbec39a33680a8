"""The period of each kind's experience in the dashboards, the API and the report command.

Respondents are inserted directly (responses with their per-kind columns and answer rows),
so the groups the gate judges are known in advance. Every expected count comes from one
plain SELECT of the raw rows recounted in pandas, never from the code under test.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, text

from survey import queries, responses, results
from survey.extensions import db
from survey.models import Answer, Response
from survey.queries import Segment
from survey.responses import catalog_version_id, default_wave
from tests.helpers import api_json, log_in

BANDS = ("before_2014", "2014_2021", "2022_on")
PRACTICES = ("target_bonus", "sales_commission", "flexible_hours", "peer_recognition")
KINDS = {"ru_only": ("ru",), "foreign_only": ("foreign",), "both": ("ru", "foreign")}
EXISTED = ("applied", "existed", "yes")  # the codes that say "the practice existed there"
DAY = dt.date(2027, 1, 15)
BAND_LABELS = {
    "ru": {
        "before_2014": "До 2014 года",
        "2014_2021": "В 2014–2021 годах",
        "2022_on": "В 2022 году или позже (в том числе сейчас)",
    },
    "en": {
        "before_2014": "Before 2014",
        "2014_2021": "In 2014–2021",
        "2022_on": "In 2022 or later (including now)",
    },
}


pytestmark = pytest.mark.usefixtures("fresh_cache")


# ---------------------------------------------------------------- seeding


def person(worked_in: str, ru=None, foreign=None, answers=None, **columns) -> dict:
    """One respondent: what they worked in, each kind's last-year band (None: not asked,
    a response from before 2026-12), answers {(practice, kind): (met, rating)}."""
    return {
        "worked_in": worked_in,
        "last_year": {"ru": ru, "foreign": foreign},
        "answers": answers if answers is not None else default_answers(worked_in),
        "columns": columns,
    }


def default_answers(worked_in: str, met: str = "applied") -> dict:
    kinds = KINDS[worked_in]
    return {
        (practice, kind): (met if kind in kinds else "na", None)
        for practice in PRACTICES
        for kind in ("ru", "foreign")
    }


def add_people(app, people: list[dict]) -> list[int]:
    """Insert submitted responses and their answers through the models; return their ids."""
    with app.app_context():
        wave_id, version_id = default_wave().id, catalog_version_id()
        rows = []
        for p in people:
            block = {}
            for kind in KINDS[p["worked_in"]]:
                band = p["last_year"][kind]
                if band is not None:  # a response from before 2026-12 has no block
                    block.update(
                        {
                            f"{kind}_years": "3_5",
                            f"{kind}_last_year": band,
                            f"{kind}_employers": "1",
                            f"{kind}_role_level": "specialist",
                            f"{kind}_function": "sales",
                        }
                    )
            new = any(p["last_year"].values())
            values = {
                "status": "submitted",
                "is_demo": False,
                "wave_id": wave_id,
                "catalog_version_id": version_id,
                "language": "ru",
                "consent_version": "test",
                "consented_on": DAY,
                "started_on": DAY,
                "updated_on": DAY,
                "submitted_on": DAY,
                "worked_in": p["worked_in"],
                "current_employer": "ru",
                "industry": "it",
                "company_size": "1000_4999",
                "role_level": "specialist",
                "job_function": "sales" if new else None,
                "experience_band": "6_10",
                "region": "moscow",
                **block,
                **p["columns"],
            }
            rows.append(Response(**values))
        db.session.add_all(rows)
        db.session.flush()
        answers = [
            {
                "response_id": row.id,
                "practice_id": practice,
                "company_kind": kind,
                "met": met,
                "rating": rating,
            }
            for row, p in zip(rows, people, strict=True)
            for (practice, kind), (met, rating) in p["answers"].items()
        ]
        if answers:
            db.session.execute(insert(Answer), answers)
        ids = [row.id for row in rows]
        db.session.commit()
        # Rows written past the write paths: derive the answer vectors from them, as a
        # write path does (the count tables read the vectors).
        list(responses.check_vectors(repair=True))
        return ids


def varied_people(n: int, seed: int) -> list[dict]:
    """Respondents of every kind and band, some from before 2026-12 (no period, the former
    yes/no/dk scale), some demo and some flagged (both out of every count), with every
    answer code including "not my role" (for the sales practice) and "na"."""
    rng = np.random.default_rng(seed)
    people = []
    for _ in range(n):
        worked_in = str(rng.choice(list(KINDS), p=[0.3, 0.3, 0.4]))
        legacy = rng.random() < 0.1
        bands = {
            kind: None if legacy else str(rng.choice(BANDS, p=[0.25, 0.3, 0.45]))
            for kind in KINDS[worked_in]
        }
        answers = {}
        for practice in PRACTICES:
            for kind in ("ru", "foreign"):
                if kind not in bands:
                    answers[(practice, kind)] = ("na", None)
                    continue
                codes = ["yes", "no", "dk"] if legacy else ["applied", "existed", "no", "dk"]
                if practice == "sales_commission" and not legacy:
                    codes.append("not_my_role")
                met = str(rng.choice(codes))
                rating = None
                if met in ("applied", "yes") and rng.random() < 0.8:
                    rating = int(rng.integers(1, 6))
                answers[(practice, kind)] = (met, rating)
        columns = {}
        if rng.random() < 0.05:
            columns["is_demo"] = True
        elif rng.random() < 0.03:
            columns["quality_flag"] = "too_fast"
        people.append(person(worked_in, bands.get("ru"), bands.get("foreign"), answers, **columns))
    return people


RAW_SQL = text(
    "SELECT a.response_id, a.practice_id, a.company_kind, a.met, a.rating, r.status, "
    "r.is_demo, r.quality_flag, r.worked_in, r.ru_last_year, r.foreign_last_year "
    "FROM answer a JOIN response r ON r.id = a.response_id"
)


def raw_answers(app) -> pd.DataFrame:
    with app.app_context():
        rows = db.session.execute(RAW_SQL).all()
    columns = ["response_id", "practice_id", "company_kind", "met", "rating", "status"]
    columns += ["is_demo", "quality_flag", "worked_in", "ru_last_year", "foreign_last_year"]
    raw = pd.DataFrame(rows, columns=columns)
    raw["is_demo"] = raw["is_demo"].astype(bool)
    return raw


def in_band(raw: pd.DataFrame, band: str) -> pd.DataFrame:
    """Real, unflagged, submitted answers that count, each kind's only when that kind's
    last year falls in ``band``; ``group`` is yes (any 'existed' code) / no / dk."""
    kept = raw[
        (raw["status"] == "submitted")
        & ~raw["is_demo"]
        & raw["quality_flag"].isna()
        & ~raw["met"].isin(["na", "not_my_role"])
    ]
    period = np.where(kept["company_kind"] == "ru", kept["ru_last_year"], kept["foreign_last_year"])
    kept = kept[period == band].copy()
    kept["group"] = kept["met"].map(lambda m: "yes" if m in EXISTED else m)
    return kept


def expected_prevalence(kept: pd.DataFrame) -> dict[tuple[str, str], dict[str, int]]:
    counts = kept.groupby(["practice_id", "company_kind", "group"]).size()
    out = {}
    for (practice, kind, group), n in counts.items():
        out.setdefault((practice, kind), {"yes": 0, "no": 0, "dk": 0})[group] = int(n)
    return out


def expected_paired(kept: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Both-kind respondents with both kinds in the band, yes/no about both."""
    both = kept[kept["worked_in"] == "both"]
    wide = both.pivot_table(
        index=["response_id", "practice_id"],
        columns="company_kind",
        values="group",
        aggfunc="first",
    ).dropna()
    wide = wide[wide["ru"].isin(["yes", "no"]) & wide["foreign"].isin(["yes", "no"])]
    out = {}
    for (_, practice), row in wide.iterrows():
        cell = f"{row['ru']}_{row['foreign']}"
        out.setdefault(practice, {"yes_yes": 0, "yes_no": 0, "no_yes": 0, "no_no": 0})[cell] += 1
    return out


def expected_respondents(app, band: str) -> int:
    with app.app_context():
        return db.session.scalar(
            text(
                "SELECT count(*) FROM response WHERE status = 'submitted' AND NOT is_demo "
                "AND quality_flag IS NULL AND (ru_last_year = :band OR foreign_last_year = :band)"
            ),
            {"band": band},
        )


# ---------------------------------------------------------------- clients


# ---------------------------------------------------------------- counts under a period


def test_counts_under_a_period_equal_a_plain_recount_of_the_raw_rows(app, client, token):
    add_people(app, varied_people(400, seed=5))
    raw = raw_answers(app)
    legacy = raw[raw["ru_last_year"].isna() & raw["foreign_last_year"].isna()]
    assert legacy["met"].eq("yes").any()  # older responses are there, and must drop out
    # Someone whose two kinds fall in different periods counts for one kind only there.
    split = raw[(raw["worked_in"] == "both") & (raw["ru_last_year"] != raw["foreign_last_year"])]
    assert split["ru_last_year"].notna().any()
    checked_paired = 0
    for band in BANDS:
        kept = in_band(raw, band)
        prevalence = expected_prevalence(kept)
        paired = expected_paired(kept)
        with app.app_context():
            tables = queries.practice_counts(Segment(period=band))
        got = {
            (r.practice_id, r.company_kind): {"yes": r.yes, "no": r.no, "dk": r.dk}
            for r in tables["prevalence"].itertuples()
        }
        assert got == prevalence, band
        got_paired = {
            r.practice_id: {c: getattr(r, c) for c in ("yes_yes", "yes_no", "no_yes", "no_no")}
            for r in tables["paired"].itertuples()
        }
        assert got_paired == paired, band
        rated = kept[(kept["group"] == "yes") & kept["rating"].notna()]
        ratings = rated.groupby(["practice_id", "company_kind", "rating"]).size()
        got_ratings = {
            (r.practice_id, r.company_kind, r.rating): r.n for r in tables["ratings"].itertuples()
        }
        assert got_ratings == {k: int(v) for k, v in ratings.items()}, band

        # The API gives the same counts, withholding exactly the cells under the threshold.
        body = api_json(client, token, period=band)
        assert body["suppressed"] is False, (band, body)
        assert body["filters"] == {"period": band}
        assert body["n_respondents"] == expected_respondents(app, band)
        rows = {row["practice_id"]: row for row in body["practices"]}
        for practice in PRACTICES:
            row = rows[practice]
            for kind in ("ru", "foreign"):
                cell = prevalence.get((practice, kind), {"yes": 0, "no": 0, "dk": 0})
                answered = cell["yes"] + cell["no"]
                if answered >= 10:
                    assert row[f"n_{kind}"] == answered and row[f"k_{kind}"] == cell["yes"]
                else:
                    assert row[f"n_{kind}"] is None and kind in row["suppressed"]
            cells = paired.get(practice, {"yes_yes": 0, "yes_no": 0, "no_yes": 0, "no_no": 0})
            if row["paired"]["n"] is not None:
                checked_paired += 1
                assert row["paired"]["n"] == sum(cells.values())
                assert (row["paired"]["b"], row["paired"]["c"]) == (
                    cells["yes_no"],
                    cells["no_yes"],
                )
        untouched = rows["transparent_pay"]  # no answers at all in this study
        assert untouched["n_ru"] is None and untouched["p_value"] is None
    assert checked_paired > 0  # the paired table was shown somewhere


def test_a_respondent_counts_only_for_the_kind_whose_period_matches(app):
    # 12 both-kind respondents: Russian companies until 2019, foreign ones since 2022.
    answers = {
        (p, k): ("applied" if k == "ru" else "no", None) for p in PRACTICES for k in KINDS["both"]
    }
    add_people(app, [person("both", "2014_2021", "2022_on", answers) for _ in range(12)])
    with app.app_context():
        recent = queries.practice_counts(Segment(period="2022_on"))["prevalence"]
        earlier = queries.practice_counts(Segment(period="2014_2021"))["prevalence"]
        paired = queries.practice_counts(Segment(period="2022_on"))["paired"]
    assert set(recent["company_kind"]) == {"foreign"} and set(recent["no"]) == {12}
    assert set(earlier["company_kind"]) == {"ru"} and set(earlier["yes"]) == {12}
    assert paired.empty or paired[["yes_yes", "yes_no", "no_yes", "no_no"]].sum().sum() == 0


# ---------------------------------------------------------------- the disclosure gate


def one_off_study(moved: int) -> list[dict]:
    """30 both-kind respondents, all in foreign companies since 2022; ``moved`` of them
    last worked in Russian companies before 2014, the rest since 2022."""
    return [person("both", "before_2014" if i < moved else "2022_on", "2022_on") for i in range(30)]


def test_a_period_that_drops_one_respondent_of_a_kind_is_refused(app, client, token):
    add_people(app, one_off_study(moved=1))
    assert api_json(client, token)["suppressed"] is False  # all 30
    narrow = api_json(client, token, period="2022_on")
    # Overall both segments hold the same 30 people: only the Russian-company view differs.
    assert narrow["suppressed"] is True and narrow["reason"] == "differencing", narrow
    assert "practices" not in narrow and "n_respondents" not in narrow
    # What the gate prevents: the two answers differ by exactly that one person's answers.
    with app.app_context():
        wide = results.ungated_comparison(Segment()).table.set_index("practice_id")
        cut = results.ungated_comparison(Segment(period="2022_on")).table.set_index("practice_id")
    assert wide.loc["target_bonus", "n_ru"] - cut.loc["target_bonus", "n_ru"] == 1
    assert wide.loc["target_bonus", "n_foreign"] == cut.loc["target_bonus", "n_foreign"] == 30
    # The split view refuses that band too, and the other two on their own.
    split = api_json(client, token, path="/api/v1/comparison/by-period")
    assert split["periods"]["2022_on"]["reason"] == "differencing"
    assert split["periods"]["before_2014"]["reason"] == "too_small"
    assert split["periods"]["2014_2021"]["reason"] == "too_small"
    assert '"n_ru"' not in str(split).replace("'", '"')
    log_in(app, client)
    page = client.get("/researcher/comparison?period=2022_on&lang=en")
    assert page.status_code == 200
    assert "differs from a broader one by fewer than 10 respondents" in page.text


def test_a_period_that_drops_enough_respondents_of_a_kind_is_shown(app, client, token):
    add_people(app, one_off_study(moved=10))
    narrow = api_json(client, token, period="2022_on")
    assert narrow["suppressed"] is False, narrow
    row = {r["practice_id"]: r for r in narrow["practices"]}["target_bonus"]
    assert (row["n_ru"], row["n_foreign"], row["paired"]["n"]) == (20, 30, 20)
    earlier = api_json(client, token, period="before_2014")
    assert earlier["suppressed"] is False and earlier["n_respondents"] == 10
    row = {r["practice_id"]: r for r in earlier["practices"]}["target_bonus"]
    assert row["n_ru"] == 10 and row["n_foreign"] is None and "foreign" in row["suppressed"]


def test_the_gate_judges_a_period_per_kind_on_a_hand_made_lattice():
    from survey import disclosure

    # One filter, the period (bit 0). Rows: (bits, unflagged, worked_in, n, effective).
    # 29 both-kind respondents in the period for both kinds, 1 in it for foreign only.
    lattice = [(0b1, True, "both", 29, "both"), (0b1, True, "both", 1, "foreign_only")]
    assert disclosure.judge(lattice, 1, False, 10, period_bit=0).reason == "differencing"
    # Without the per-kind reading, the period would look harmless (30 = 30).
    assert disclosure.judge([(b, u, w, n) for b, u, w, n, _ in lattice], 1, False, 10).allowed
    safe = [(0b1, True, "both", 20, "both"), (0b1, True, "both", 10, "foreign_only")]
    assert disclosure.judge(safe, 1, False, 10, period_bit=0).allowed


# ---------------------------------------------------------------- the split view


def split_study() -> list[dict]:
    """A study whose newest band is shown, whose oldest one (3 people) is not, and whose
    middle one is withheld with it (complementary suppression); 12 responses from before
    2026-12 (no period) are no cover for the oldest band."""
    yes_no = [("applied", 4), ("no", None), ("existed", None)]
    people = []
    for i in range(30):
        answers = {
            (p, k): yes_no[(i + j + (k == "ru")) % 3]
            for j, p in enumerate(PRACTICES)
            for k in KINDS["both"]
        }
        people.append(person("both", "2022_on", "2022_on", answers))
    people += [person("ru_only", ru="2014_2021") for _ in range(15)]
    people += [
        person("foreign_only", foreign="2014_2021", answers=default_answers("foreign_only", "no"))
        for _ in range(15)
    ]
    people += [person("ru_only", ru="before_2014") for _ in range(3)]
    legacy = default_answers("ru_only", "yes")
    people += [person("ru_only", answers=legacy) for _ in range(12)]
    return people


def test_the_split_view_shows_each_band_the_gate_allows_and_refuses_the_rest(app, client, token):
    add_people(app, split_study())
    body = api_json(client, token, path="/api/v1/comparison/by-period")
    assert set(body["periods"]) == set(BANDS) and body["filters"] == {}
    for band in BANDS:  # each band exactly as the comparison restricted to it
        assert body["periods"][band] == api_json(client, token, period=band), band
    oldest = body["periods"]["before_2014"]
    assert oldest["suppressed"] is True and oldest["reason"] == "too_small"
    assert set(oldest) == {
        "filters",
        "demo",
        "pilot",
        "level",
        "suppressed",
        "reason",
        "min_cell",
        "message",
    }
    recent, middle = body["periods"]["2022_on"], body["periods"]["2014_2021"]
    assert recent["n_respondents"] == expected_respondents(app, "2022_on") == 30
    # 30 respondents, but shown beside the other bands it would give the oldest band's 3
    # Russian-company respondents away (total less the bands shown): withheld as well, the
    # smallest other band of that kind (15 Russian-company respondents against 30).
    assert expected_respondents(app, "2014_2021") == 30
    assert middle["suppressed"] is True and middle["reason"] == "complement"
    raw = raw_answers(app)
    for band, shown in (("2022_on", recent),):
        prevalence = expected_prevalence(in_band(raw, band))
        for row in shown["practices"]:
            for kind in ("ru", "foreign"):
                cell = prevalence.get((row["practice_id"], kind))
                if row[f"n_{kind}"] is not None:
                    assert row[f"k_{kind}"] == cell["yes"]
                    assert row[f"p_{kind}"] == pytest.approx(
                        cell["yes"] / (cell["yes"] + cell["no"])
                    )
    categories = api_json(client, token, path="/api/v1/comparison/by-period", level="category")
    assert categories["level"] == "category" and "categories" in categories["periods"]["2022_on"]

    log_in(app, client)
    for lang in ("ru", "en"):
        page = client.get(f"/researcher/period?lang={lang}")
        assert page.status_code == 200, page.text[:500]
        html = page.text
        for band in BANDS:
            assert BAND_LABELS[lang][band] in html
        title = "по периодам опыта" if lang == "ru" else "by period of experience"
        assert title in html
        n_line = (
            "Респондентов в этом срезе: 30." if lang == "ru" else "Respondents in this view: 30."
        )
        assert html.count(n_line) == 1
        refused = "меньше 10 респондентов" if lang == "ru" else "Fewer than 10 respondents"
        oldest_item = re.search(r'<li id="band-before_2014">(.*?)</li>', html, re.S).group(1)
        assert refused in oldest_item and not re.search(r"\d+\s*%", oldest_item)
        complement = "Этот период тоже скрыт" if lang == "ru" else "This period is withheld too"
        middle_item = re.search(r'<li id="band-2014_2021">(.*?)</li>', html, re.S).group(1)
        assert complement in middle_item and not re.search(r"\d+\s*%", middle_item)
        withheld = "Скрыто" if lang == "ru" else "Withheld"
        n_practices = len(app.extensions["survey_catalog"].practices)
        assert html.count(f'<td colspan="5" class="withheld">{withheld}</td>') == 2 * n_practices
        # One row's shares, as the API gives them, in the band's columns.
        row = {r["practice_id"]: r for r in recent["practices"]}["target_bonus"]
        assert f"{row['p_ru'] * 100:.1f}%" in html
        assert 'name="period"' not in html  # the split view has no period filter
        assert 'name="job_function"' in html


def test_the_comparison_page_links_to_the_split_view_keeping_the_other_filters(app, client):
    add_people(app, split_study())
    log_in(app, client)
    html = client.get("/researcher/comparison?period=2022_on&industry=it").text
    links = re.findall(r'href="(/researcher/period[^"]*)"', html)
    assert links, "no link to the split view"
    assert all("period=" not in link.split("?", 1)[-1] for link in links), links
    assert any("industry=it" in link for link in links)
    assert client.get(links[0].replace("&amp;", "&")).status_code == 200


# ---------------------------------------------------------------- the filter panel


@pytest.mark.parametrize("path", ["comparison", "ratings", "categories", "practice/target_bonus"])
def test_every_filter_panel_offers_the_period_and_the_job_function(app, client, path):
    add_people(app, split_study())
    log_in(app, client)
    for lang in ("ru", "en"):
        html = client.get(f"/researcher/{path}?lang={lang}&period=2022_on").text
        select = re.search(r'<select id="f-period" name="period".*?</select>', html, re.S)
        assert select, (path, lang)
        options = dict(re.findall(r'<option value="(\w*)"[^>]*>([^<]*)</option>', select.group(0)))
        assert {code: options[code] for code in BANDS} == BAND_LABELS[lang]
        assert re.search(r'<option value="2022_on"\s+selected', select.group(0))
        assert 'name="job_function"' in html
        hint = "drop out" if lang == "en" else "в выборку не попадают"
        assert hint in html, (path, lang)
        function_label = "Job function" if lang == "en" else "Функция"
        assert f">{function_label}</label>" in html


# ---------------------------------------------------------------- bad and hostile input


def test_an_unknown_period_is_a_400_naming_it_everywhere(app, client, token):
    add_people(app, split_study())
    for value in ("2030_on", "2022", "", " 2022_on", "<script>"):
        if value == "":
            continue  # empty means no restriction
        for path in ("/api/v1/comparison", "/api/v1/comparison/by-period"):
            body = api_json(client, token, path=path, status=400, period=value)
            assert body["parameter"] == "period", body
    r = client.get(
        "/api/v1/comparison?period=2022_on&period=before_2014",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 400 and r.get_json()["parameter"] == "period"
    log_in(app, client)
    for path in ("comparison", "ratings", "categories", "practice/target_bonus", "period"):
        r = client.get(f"/researcher/{path}?period=2030_on&lang=en")
        assert r.status_code == 400, path
        assert "“period”" in r.text and "<script>" not in r.text
    r = client.get("/researcher/table/comparison.csv?period=yesterday")
    assert r.status_code == 400


def test_the_split_view_refuses_a_period_of_its_own(app, client, token):
    add_people(app, split_study())
    body = api_json(
        client, token, path="/api/v1/comparison/by-period", status=400, period="2022_on"
    )
    assert body["parameter"] == "period" and "side by side" in body["message"]
    for name in ("bogus", "view", "practice_id"):
        body = api_json(
            client, token, path="/api/v1/comparison/by-period", status=400, **{name: "1"}
        )
        assert body["parameter"] == name
    log_in(app, client)
    for lang, words in (("en", "“period”"), ("ru", "«period»")):
        r = client.get(f"/researcher/period?period=2022_on&lang={lang}")
        assert r.status_code == 400 and words in r.text
        assert ("side by side" if lang == "en" else "все периоды показаны рядом") in r.text
    for name in ("bogus", "view", "name", "endpoint"):
        r = client.get(f"/researcher/period?{name}=x")
        assert r.status_code == 400 and name in r.text, name


def test_the_openapi_document_describes_the_period_and_the_split(app, client, token):
    doc = api_json(client, token, path="/api/v1/openapi.json")
    parameters = {p["name"]: p for p in doc["paths"]["/comparison"]["get"]["parameters"]}
    assert parameters["period"]["schema"]["enum"] == list(BANDS)
    assert "job_function" in parameters
    split = doc["paths"]["/comparison/by-period"]["get"]
    names = {p["name"] for p in split["parameters"]}
    assert "period" not in names and {"level", "industry", "job_function"} <= names
    assert "400" in split["responses"]
    schema = doc["components"]["schemas"]["ByPeriod"]
    assert schema["properties"]["periods"]["required"] == list(BANDS)
    # The fieldwork numbers and the export take include_demo, and the document says so.
    for path in ("/fieldwork", "/export/{name}"):
        query = [p["name"] for p in doc["paths"][path]["get"]["parameters"] if p["in"] == "query"]
        assert "include_demo" in query and "exclude_low_quality" not in query, (path, query)


# ---------------------------------------------------------------- the report command


def test_the_report_command_takes_a_period_and_refuses_a_tracker(app, tmp_path):
    add_people(app, one_off_study(moved=10))
    runner = app.test_cli_runner()
    out = tmp_path / "recent.html"
    done = runner.invoke(args=["report", "--out", str(out), "--period", "2022_on", "--lang", "en"])
    assert done.exit_code == 0, done.output
    html = out.read_text(encoding="utf-8")
    assert '<th class="label" scope="row">period</th><td class="label">2022_on</td>' in html
    bad = runner.invoke(args=["report", "--out", str(out), "--period", "2030_on"])
    assert bad.exit_code != 0 and "--period" in bad.output


def test_the_report_command_refuses_a_period_that_singles_out_one_respondent(app, tmp_path):
    add_people(app, one_off_study(moved=1))
    runner = app.test_cli_runner()
    out = runner.invoke(args=["report", "--out", str(tmp_path / "r.html"), "--period", "2022_on"])
    assert out.exit_code != 0 and "withheld (differencing)" in out.output
