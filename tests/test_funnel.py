"""The funnel per wave and channel, and the sample's composition per channel with its
chi-square tests (issue 15): on the fieldwork page, in its CSV tables and in
``GET /api/v1/fieldwork?wave=CODE``, equal to a plain recount from the database."""

from __future__ import annotations

import csv
import io
import math
import statistics

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import text, update

from analysis.figures import channel_bars, funnel_chart
from survey import disclosure, fieldwork, results
from survey.demo import seed_demo
from survey.extensions import db
from survey.funnel import median_minutes, protect_margins, step_names
from survey.models import Response, Wave
from survey.questions import BACKGROUND
from tests.helpers import CONSENT, Respondent, bearer, log_in

MIN_CELL = 5  # the floor: fewer respondents make the small and the shown channels
KINDS = {"both": ("ru", "foreign"), "ru_only": ("ru",), "foreign_only": ("foreign",)}
# Background answers by channel: the channels bring different people (for the tests).
LINKEDIN = [
    {"industry": "it", "region": "moscow", "worked_in": "both"},
    {"industry": "it", "region": "moscow", "worked_in": "foreign_only"},
    {"industry": "it", "region": "spb", "worked_in": "both"},
    {"industry": "finance", "region": "moscow", "worked_in": "both"},
    {"industry": "it", "region": "moscow", "worked_in": "foreign_only"},
    {"industry": "consulting", "region": "abroad", "worked_in": "both"},
]
TELEGRAM = [
    {"industry": "manufacturing", "region": "other_ru", "worked_in": "ru_only"},
    {"industry": "retail", "region": "other_ru", "worked_in": "ru_only"},
    {"industry": "manufacturing", "region": "spb", "worked_in": "ru_only"},
    {"industry": "it", "region": "other_ru", "worked_in": "ru_only"},
    {"industry": "manufacturing", "region": "moscow", "worked_in": "ru_only"},
]


pytestmark = pytest.mark.usefixtures("fresh_cache")


@pytest.fixture
def app(make_app):
    """The application with the lowest disclosure threshold (five respondents)."""
    return make_app(MIN_COMPLETION_SECONDS=0, MIN_CELL=MIN_CELL)


def arrive(app, slug: str | None, lang: str = "ru") -> Respondent:
    """A new browser that opened a channel's link (or the bare URL with ``slug`` None)."""
    client = app.test_client()
    respondent = Respondent(client, lang)
    if slug is not None:
        r = client.get(f"/s/{slug}")
        assert r.status_code == 302, r.status_code
    return respondent


def complete(app, slug, profile=None, honeypot=False) -> Respondent:
    """A respondent who arrives through a channel and submits the whole questionnaire."""
    catalog = app.extensions["survey_catalog"]
    profile = profile or {}
    respondent = arrive(app, slug)
    consent = {**CONSENT, "website": "http://spam.example"} if honeypot else CONSENT
    assert respondent.post_form("/", consent).status_code == 302
    assert respondent.profile(**profile).status_code == 302
    kinds = KINDS[profile.get("worked_in", "both")]
    for page in catalog.pages:
        assert respondent.answer_page(page, kinds).status_code == 302
    assert respondent.submit().status_code == 302
    return respondent


def build_wave(app) -> dict:
    """A wave 'spring' with the channels linkedin and telegram, and its direct channel."""
    with app.app_context():
        wave = fieldwork.create_wave(fieldwork.WaveSpec("spring", "Весна", "Spring"))
        fieldwork.open_wave(wave)
        linkedin = fieldwork.create_channel(wave, "linkedin")
        telegram = fieldwork.create_channel(wave, "telegram")
        return {
            "wave_id": wave.id,
            "linkedin": linkedin.slug,
            "telegram": telegram.slug,
            "direct": fieldwork.direct_channel(wave).slug,
        }


def drive_respondents(app, study: dict) -> None:
    """Respondents through each channel: complete, stop early, withdraw, a bot."""
    catalog = app.extensions["survey_catalog"]
    for profile in LINKEDIN:
        complete(app, study["linkedin"], profile)
    complete(app, study["linkedin"], LINKEDIN[0], honeypot=True)  # flagged: in the funnel
    stopped = arrive(app, study["linkedin"])  # consent and background only
    stopped.consent()
    assert stopped.profile().status_code == 302
    arrive(app, study["linkedin"]).consent()  # consent only
    for _ in range(3):  # opened the link, never consented
        arrive(app, study["linkedin"])
    for profile in TELEGRAM:
        complete(app, study["telegram"], profile)
    withdrawn = complete(app, study["telegram"], TELEGRAM[0])
    assert withdrawn.post_form("/withdraw", {}).status_code == 302
    partial = arrive(app, study["telegram"], lang="en")  # two practice pages, in English
    partial.consent()
    assert partial.profile().status_code == 302
    for page in catalog.pages[:2]:
        assert partial.answer_page(page, ("ru", "foreign")).status_code == 302
    complete(app, None)  # the bare URL: the default wave's direct channel
    # Durations are the time on the pages; a scripted respondent takes none, so give the
    # submitted responses distinct ones (whole and half minutes, for the rounding).
    with app.app_context():
        ids = db.session.scalars(
            text("SELECT id FROM response WHERE status = 'submitted' ORDER BY id")
        ).all()
        for i, rid in enumerate(ids):
            db.session.execute(
                update(Response).where(Response.id == rid).values(active_seconds=270 + 45 * i)
            )
        db.session.commit()


def recount(app, wave_id: int) -> dict:
    """The funnel of each channel of a wave, counted with plain SQL (not the code under
    test): channel label -> step -> n, and the medians of the submitted durations."""
    pages = len(app.extensions["survey_catalog"].pages)
    with app.app_context():
        channels = dict(
            db.session.execute(
                text("SELECT id, label FROM channel WHERE wave_id = :w"), {"w": wave_id}
            ).all()
        )
        counters = db.session.execute(
            text(
                "SELECT channel_id, event, SUM(count) FROM channel_day "
                "WHERE channel_id IN (SELECT id FROM channel WHERE wave_id = :w) "
                "GROUP BY channel_id, event"
            ),
            {"w": wave_id},
        ).all()
        rows = db.session.execute(
            text(
                "SELECT channel_id, status, last_page, quality_flag, low_quality, "
                "active_seconds FROM response WHERE wave_id = :w AND is_demo = :demo"
            ),
            {"w": wave_id, "demo": False},
        ).all()
    out = {label: {step: 0 for step in step_names(pages)} for label in channels.values()}
    durations = {label: [] for label in channels.values()}
    stored = {label: 0 for label in channels.values()}
    for channel_id, event, n in counters:
        out[channels[channel_id]][event if event != "consented" else "counted"] = int(n)
    for channel_id, status, last_page, flag, low, seconds in rows:
        counts = out[channels[channel_id]]
        stored[channels[channel_id]] += 1
        counts["background"] += last_page >= 1
        for i in range(1, pages + 1):
            counts[f"practice_{i}"] += last_page >= i + 1
        if status == "submitted":
            counts["submitted"] += 1
            counts["flagged"] += flag is not None
            counts["low_quality"] += bool(low)
            durations[channels[channel_id]].append(seconds)
    for label, counts in out.items():
        counts["consented"] = max(counts.pop("counted", 0), stored[label])
    medians = {
        label: None if len(values) < MIN_CELL else math.floor(statistics.median(values) / 60 + 0.5)
        for label, values in durations.items()
    }
    return {"steps": out, "medians": medians}


def read_csv(client, name: str, **query) -> list[dict]:
    r = client.get(f"/researcher/table/{name}.csv", query_string=query)
    assert r.status_code == 200, (name, r.status_code)
    assert r.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))


# ---------------------------------------------------------------- the funnel


def test_the_funnel_and_the_channels_equal_a_recount_from_the_database(app, client):
    study = build_wave(app)
    drive_respondents(app, study)
    expected = recount(app, study["wave_id"])
    steps = expected["steps"]
    # The story as told: each number is one the respondents above made.
    assert steps["linkedin"]["opened"] == 12 and steps["linkedin"]["consented"] == 9
    assert steps["linkedin"]["submitted"] == 7 and steps["linkedin"]["flagged"] == 1
    assert steps["linkedin"]["background"] == 8
    assert steps["telegram"]["withdrawn"] == 1 and steps["telegram"]["consented"] == 7
    assert steps["telegram"]["submitted"] == 5 and steps["telegram"]["background"] == 6
    assert steps["direct"]["submitted"] == 1 and steps["direct"]["opened"] == 1

    headers = bearer(app)
    body = client.get("/api/v1/fieldwork", query_string={"wave": "spring"}, headers=headers)
    assert body.status_code == 200
    body = body.get_json()
    assert body["wave"] == "spring"
    got = {channel["label"]: channel for channel in body["channels"]}
    assert set(got) == {"direct", "linkedin", "telegram"}
    for label, counts in steps.items():
        channel = got[label]
        assert {row["step"]: row["n"] for row in channel["funnel"]} == counts, label
        assert channel["opened"] == counts["opened"]
        assert channel["started"] == counts["consented"]
        assert channel["completed"] == counts["submitted"]
        rate = counts["submitted"] / counts["consented"] if counts["consented"] else None
        assert channel["completion_rate"] == pytest.approx(rate)
        assert channel["median_minutes"] == expected["medians"][label], label
    total = {row["step"]: row["n"] for row in body["funnel"]}
    assert [row["step"] for row in body["funnel"]] == list(steps["linkedin"])
    assert total == {step: sum(c[step] for c in steps.values()) for step in total}
    everyone = [d for label in steps for d in durations_of(app, study["wave_id"], label)]
    assert body["completion"]["median_minutes"] == math.floor(
        statistics.median(everyone) / 60 + 0.5
    )
    assert body["completion"]["rate"] == pytest.approx(total["submitted"] / total["consented"])
    # The keys the endpoint had keep their meaning, now for the wave.
    assert body["completed"] == total["submitted"]
    assert body["flagged"] == total["flagged"]

    # The page and its CSV tables show the same numbers.
    log_in(app, client)
    page = client.get("/researcher/", query_string={"wave": "spring", "lang": "en"})
    assert page.status_code == 200
    assert 'id="figure-funnel"' in page.text and 'id="figure-channels"' in page.text
    assert "Funnel by channel" in page.text and "Wave shown: spring." in page.text
    funnel_rows = read_csv(client, "funnel", wave="spring")
    assert [row["step"] for row in funnel_rows] == list(total)
    for row in funnel_rows:
        assert int(row["all"]) == total[row["step"]]
        for label, counts in steps.items():
            assert int(row[label]) == counts[row["step"]], (label, row["step"])
        assert row["demo_data"] == "False"
    channel_rows = {row["channel"]: row for row in read_csv(client, "channels", wave="spring")}
    for label, counts in steps.items():
        assert int(channel_rows[label]["started"]) == counts["consented"]
        assert int(channel_rows[label]["completed"]) == counts["submitted"]
        median = channel_rows[label]["median_minutes"]
        assert (int(median) if median else None) == expected["medians"][label]
    daily = read_csv(client, "fieldwork", wave="spring")
    assert sum(int(row["opened"]) for row in daily) == total["opened"]
    assert sum(int(row["consented"]) for row in daily) == 9 + 7 + 1
    assert sum(int(row["completed"]) for row in daily) == total["submitted"]


def durations_of(app, wave_id: int, label: str) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                text(
                    "SELECT r.active_seconds FROM response r JOIN channel c ON c.id = "
                    "r.channel_id WHERE r.wave_id = :w AND c.label = :l AND r.status = "
                    "'submitted'"
                ),
                {"w": wave_id, "l": label},
            )
        )


def test_the_whole_study_funnel_adds_up_the_waves_and_counts_demo_consents(app, client):
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], 60, 5)
    headers = bearer(app)
    demo = client.get("/api/v1/fieldwork", headers=headers).get_json()
    # Only demo rows: each one stands for a consent (they were never counted); no link
    # was opened. They came through no channel link: the default wave's direct channel.
    assert demo["demo"] is True and demo["wave"] is None
    steps = {row["step"]: row["n"] for row in demo["funnel"]}
    assert steps["consented"] == steps["submitted"] == 60 and steps["opened"] == 0
    (direct,) = demo["channels"]
    assert direct["label"] == "direct" and direct["completed"] == 60
    # A real respondent replaces the demo numbers (include_demo adds them back).
    study = build_wave(app)
    complete(app, study["linkedin"])
    real = client.get("/api/v1/fieldwork", headers=headers).get_json()
    steps = {row["step"]: row["n"] for row in real["funnel"]}
    assert (real["demo"], steps["submitted"], steps["consented"], steps["opened"]) == (
        False,
        1,
        1,
        1,
    )
    both = client.get("/api/v1/fieldwork?include_demo=1", headers=headers).get_json()
    steps = {row["step"]: row["n"] for row in both["funnel"]}
    assert (both["demo"], steps["submitted"], steps["consented"]) == (True, 61, 61)
    assert {(c["wave"], c["label"]) for c in both["channels"]} >= {
        ("w1", "direct"),
        ("spring", "linkedin"),
    }


def test_drafts_fill_the_funnel_before_anyone_submits(app, client):
    study = build_wave(app)
    arrive(app, study["telegram"]).consent()
    body = client.get("/api/v1/fieldwork?wave=spring", headers=bearer(app)).get_json()
    steps = {row["step"]: row["n"] for row in body["funnel"]}
    assert (steps["opened"], steps["consented"], steps["submitted"]) == (1, 1, 0)
    assert body["drafts"] == 1 and body["completion"]["median_minutes"] is None


# ---------------------------------------------------------------- the composition


def composition_table(app, wave_id: int, field: str) -> pd.DataFrame:
    """Submitted, unflagged real responses of a wave by channel label and answer, counted
    with plain SQL."""
    with app.app_context():
        rows = db.session.execute(
            text(
                f"SELECT c.label, r.{field}, COUNT(*) FROM response r JOIN channel c ON "  # noqa: S608
                "c.id = r.channel_id WHERE r.wave_id = :w AND r.status = 'submitted' AND "
                "r.quality_flag IS NULL AND r.is_demo = :demo GROUP BY c.label, r." + field
            ),
            {"w": wave_id, "demo": False},
        ).all()
    frame = pd.DataFrame(rows, columns=["channel", "code", "n"])
    table = frame.pivot_table(index="code", columns="channel", values="n", fill_value=0)
    return table.astype("int64")


def test_the_chi_square_equals_scipy_on_a_recount_and_small_channels_are_withheld(app, client):
    study = build_wave(app)
    for profile in [*LINKEDIN, *[LINKEDIN[0]] * 6]:  # enough IT people in Moscow to show
        complete(app, study["linkedin"], profile)
    for profile in TELEGRAM:
        complete(app, study["telegram"], profile)
    log_in(app, client)
    cells = pd.DataFrame(read_csv(client, "composition", wave="spring", lang="en"))
    assert set(cells["group"]) == {"All respondents", "linkedin", "telegram"}
    # Everyone works for a foreign company now: that row is shown in both channels. A row
    # where one channel has a few is withheld in the other too (the total tells the rest).
    employer = cells[(cells["group"] == "linkedin") & (cells["question"] == "current_employer")]
    assert employer.set_index("code").loc["foreign", "n"] == "12"
    industry = cells[(cells["group"] == "linkedin") & (cells["question"] == "industry")]
    assert industry.set_index("code").loc["it", "n"] == "< 5"  # 10, but telegram has 1
    assert_cells_equal_the_recount(app, study["wave_id"], cells)
    tests = read_csv(client, "composition_tests", wave="spring")
    tests = {row["question"]: row for row in tests}
    for question in BACKGROUND:
        table = composition_table(app, study["wave_id"], question.field)
        table = table[table.sum(axis=1) > 0]
        row = tests[question.field]
        if table.shape[0] < 2:  # one answer in the whole wave: nothing to test
            assert row["status"] == "not_computable", question.field
            continue
        chi2, p_value, dof, expected = stats.chi2_contingency(table.to_numpy())
        assert row["status"] == "shown", question.field
        assert float(row["chi2"]) == pytest.approx(chi2)
        assert float(row["p_value"]) == pytest.approx(p_value)
        assert int(float(row["dof"])) == dof
        v = stats.contingency.association(table.to_numpy(), method="cramer")
        assert float(row["cramers_v"]) == pytest.approx(v)
        small = (expected < 5).mean() > 0.2 or (expected < 1).any()
        assert row["unreliable"] == str(bool(small))
    page = client.get("/researcher/", query_string={"wave": "spring", "lang": "en"}).text
    assert "Chi-square test of homogeneity: χ² = " in page

    # A third channel with three respondents: its answers must not single anyone out.
    with app.app_context():
        alumni = fieldwork.create_channel(db.session.get(Wave, study["wave_id"]), "alumni")
        slug = alumni.slug
    for region in ("abroad", "abroad", "spb"):
        complete(app, slug, {"industry": "pharma", "region": region})
    results.clear_cache()
    tests = read_csv(client, "composition_tests", wave="spring")
    assert {row["status"] for row in tests} <= {"withheld", "not_computable"}
    assert all(row["chi2"] == "" for row in tests)
    page = client.get("/researcher/", query_string={"wave": "spring", "lang": "en"}).text
    assert "Test withheld: a channel has fewer than 5 respondents." in page
    ru = client.get("/researcher/", query_string={"wave": "spring", "lang": "ru"}).text
    assert "Тест не показан: в одном из каналов меньше 5 респондентов." in ru
    cells = pd.DataFrame(read_csv(client, "composition", wave="spring", lang="en"))
    assert set(cells["group"]) == {"All respondents", "linkedin", "telegram", "alumni"}
    assert (cells.loc[cells["group"] == "alumni", "n"] == "< 5").all()
    # The gate refuses linkedin now: its foreign-company workers differ from the wave's
    # by the three alumni. And telegram too: the wave less linkedin and telegram would
    # give the three alumni (the partition rule, survey.disclosure.withheld_siblings).
    assert (cells.loc[cells["group"] == "linkedin", "n"] == "< 5").all()
    assert (cells.loc[cells["group"] == "telegram", "n"] == "< 5").all()
    assert_cells_equal_the_recount(app, study["wave_id"], cells)


def test_a_study_of_several_waves_is_composed_by_wave_without_its_pilots(app, client):
    study = build_wave(app)
    with app.app_context():
        autumn = fieldwork.create_wave(fieldwork.WaveSpec("autumn", "Осень", "Autumn"))
        pilot = fieldwork.create_wave(fieldwork.WaveSpec("try", "Проба", "Try", is_pilot=True))
        for wave in (autumn, pilot):
            fieldwork.open_wave(wave)
        slugs = {w.code: fieldwork.direct_channel(w).slug for w in (autumn, pilot)}
    for profile in LINKEDIN[:5]:
        complete(app, study["linkedin"], profile)
    for profile in TELEGRAM:
        complete(app, slugs["autumn"], profile)
    complete(app, slugs["try"])
    log_in(app, client)
    page = client.get("/researcher/", query_string={"lang": "en"}).text
    assert "Sample composition by wave" in page
    assert "Pilot waves are left out here" in page
    cells = pd.DataFrame(read_csv(client, "composition", lang="en"))
    assert set(cells["group"]) == {"All respondents", "spring", "autumn"}
    assert set(cells["group_n"]) == {"10", "5"}
    with app.app_context():
        rows = db.session.execute(
            text(
                "SELECT w.code, r.industry FROM response r JOIN wave w ON w.id = r.wave_id "
                "WHERE r.status = 'submitted' AND NOT w.is_pilot"
            )
        ).all()
    table = pd.crosstab([row[1] for row in rows], [row[0] for row in rows]).to_numpy()
    chi2, p_value, dof, _expected = stats.chi2_contingency(table)
    tests = {row["question"]: row for row in read_csv(client, "composition_tests")}
    assert tests["industry"]["by"] == "wave" and tests["industry"]["status"] == "shown"
    assert float(tests["industry"]["chi2"]) == pytest.approx(chi2)
    assert float(tests["industry"]["p_value"]) == pytest.approx(p_value)
    assert int(float(tests["industry"]["dof"])) == dof
    # The pilot wave, chosen, is composed by its channel and labelled.
    page = client.get("/researcher/", query_string={"lang": "en", "wave": "try"}).text
    assert "Pilot wave: its responses stay out of the main analysis" in page
    assert "Sample composition by channel" in page


def assert_cells_equal_the_recount(app, wave_id: int, cells: pd.DataFrame) -> None:
    """Every shown cell of the composition CSV is the recount, and no withheld one can be
    worked out from the shown ones."""
    for question in BACKGROUND:
        shown = cells[cells["question"] == question.field]
        assert_nothing_withheld_can_be_worked_out(shown)
        table = composition_table(app, wave_id, question.field)
        for row in shown.itertuples():
            if row.n == "< 5":
                continue
            if row.group == "All respondents":
                n = int(table.loc[row.code].sum()) if row.code in table.index else 0
            else:
                has = row.code in table.index and row.group in table.columns
                n = int(table.loc[row.code, row.group]) if has else 0
            assert int(row.n) == n, (question.field, row.code, row.group)
            assert int(row.group_n) == int(table[row.group].sum() if row.group in table else 0) or (
                row.group == "All respondents" and int(row.group_n) == int(table.sum().sum())
            )


def assert_nothing_withheld_can_be_worked_out(cells: pd.DataFrame) -> None:
    """No withheld cell of one question's table is fixed by the shown cells, the column
    totals (group_n) and the all column being the sum of the groups: checked by least
    squares (a withheld cell is fixed when its unit vector lies in the row space of the
    equations restricted to the withheld cells)."""
    groups = list(dict.fromkeys(cells["group"]))
    codes = list(dict.fromkeys(cells["code"]))
    value = {(r.code, r.group): r.n for r in cells.itertuples()}
    unknown = [(code, group) for code in codes for group in groups if value[(code, group)] == "< 5"]
    if not unknown:
        return
    index = {cell: i for i, cell in enumerate(unknown)}
    equations = []
    for code in codes:  # all = sum of the groups
        e = np.zeros(len(unknown))
        for group in groups:
            if (code, group) in index:
                e[index[(code, group)]] = 1.0 if group == groups[0] else -1.0
        equations.append(e)
    for group in groups:  # each column's total
        e = np.zeros(len(unknown))
        for code in codes:
            if (code, group) in index:
                e[index[(code, group)]] = 1.0
        equations.append(e)
    system = np.array(equations)
    for i, cell in enumerate(unknown):
        target = np.zeros(len(unknown))
        target[i] = 1.0
        solution = np.linalg.lstsq(system.T, target, rcond=None)[0]
        assert not np.allclose(system.T @ solution, target, atol=1e-8), cell


def test_withheld_cells_cannot_be_worked_out_in_random_tables():
    rng = np.random.default_rng(15)
    for _ in range(200):
        rows, groups = rng.integers(2, 8), rng.integers(1, 5)
        sizes = rng.choice([1, 3, 6, 20, 80], size=groups)
        counts = np.column_stack([rng.multinomial(n, rng.dirichlet(np.ones(rows))) for n in sizes])
        table = np.column_stack([counts.sum(axis=1), counts])
        hidden = np.column_stack(
            [
                disclosure.mask_counts(pd.DataFrame({"n": table[:, j]}), MIN_CELL)["suppressed"]
                for j in range(table.shape[1])
            ]
        )
        protected = protect_margins(table, hidden)
        assert (protected >= hidden).all()  # only ever more withheld
        assert (protected[:, 0] == hidden[:, 0]).all()  # the published column stays
        labels = ["all", *(f"g{j}" for j in range(groups))]
        cells = pd.DataFrame(
            [
                (str(r), labels[j], "< 5" if protected[r, j] else str(table[r, j]))
                for r in range(rows)
                for j in range(len(labels))
            ],
            columns=["code", "group", "n"],
        )
        if protected[:, 1:].all():  # nothing of the groups shown: only column 0 speaks
            continue
        assert_nothing_withheld_can_be_worked_out(cells)


def test_a_wave_the_gate_refuses_shows_no_sample(app, client):
    study = build_wave(app)
    for profile in LINKEDIN[:3]:
        complete(app, study["linkedin"], profile)
    log_in(app, client)
    page = client.get("/researcher/", query_string={"wave": "spring", "lang": "en"})
    assert page.status_code == 200
    assert "Fewer than 5 respondents match this selection" in page.text
    body = client.get("/api/v1/fieldwork?wave=spring").get_json()
    assert body["background_withheld"] == "too_small"
    assert all(n is None for cells in body["background"].values() for n in cells.values())
    composition = read_csv(client, "composition", wave="spring")
    assert composition[0]["reason"] == "too_small" and "n" not in composition[0]


# ---------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"wave": "no-such-wave"}, "wave"),
        ({"wave": "x" * 200}, "wave"),
        ({"industry": "it"}, "industry"),
        ({"channel": "linkedin"}, "channel"),
        ({"waves": "spring"}, "waves"),
        ({"include_demo": "maybe"}, "include_demo"),
    ],
)
def test_unknown_parameters_and_waves_are_refused(app, client, query, parameter):
    build_wave(app)
    headers = bearer(app)
    r = client.get("/api/v1/fieldwork", query_string=query, headers=headers)
    assert r.status_code == 400 and r.get_json()["parameter"] == parameter
    log_in(app, client)
    for path in ("/researcher/", "/researcher/table/funnel.csv", "/researcher/table/channels.csv"):
        r = client.get(path, query_string={**query, "lang": "en"})
        assert r.status_code == 400, (path, query)
        assert f"The parameter “{parameter}” is not valid" in r.text
    r = client.get("/researcher/", query_string={**query, "lang": "ru"})
    assert r.status_code == 400 and f"Параметр «{parameter}»" in r.text


def test_a_repeated_wave_is_refused(app, client):
    build_wave(app)
    r = client.get("/api/v1/fieldwork?wave=spring&wave=w1", headers=bearer(app))
    assert r.status_code == 400 and r.get_json()["parameter"] == "wave"


def test_the_openapi_document_describes_the_wave_and_the_funnel(app, client):
    r = client.get("/api/v1/openapi.json", headers=bearer(app))
    doc = r.get_json()
    operation = doc["paths"]["/fieldwork"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"include_demo", "wave"}
    assert "400" in operation["responses"]
    schema = doc["components"]["schemas"]["Fieldwork"]
    assert {"wave", "funnel", "channels", "completion"} <= set(schema["required"])
    steps = schema["properties"]["funnel"]["items"]["properties"]["step"]["enum"]
    with app.app_context():
        assert steps == list(step_names())
    channel = schema["properties"]["channels"]["items"]
    assert {"label", "opened", "started", "completed", "completion_rate", "median_minutes"} <= set(
        channel["required"]
    )


# ---------------------------------------------------------------- pieces


def test_the_median_is_in_whole_minutes_and_withheld_for_small_groups():
    assert median_minutes([(89, 2), (91, 3)], 5) == 2  # median 91 s: 1.52 min
    assert median_minutes([(60, 2), (120, 2), (150, 1)], 5) == 2
    assert median_minutes([(30, 3), (90, 2)], 5) == 1  # 30 s rounds to 1 minute: half up
    assert median_minutes([(600, 4)], 5) is None
    assert median_minutes([], 5) is None


def test_the_funnel_chart_stacks_one_trace_per_channel():
    steps = pd.DataFrame({"label": ["Opened", "Consent", "Done"], "a": [10, 8, 5], "b": [4, 4, 1]})
    fig = funnel_chart(steps, ["a", "b"], lang="en")
    assert [trace.type for trace in fig.data] == ["funnel", "funnel"]
    assert fig.layout.funnelmode == "stack" and list(fig.data[0].x) == [10, 8, 5]
    assert "of those who consented" in fig.data[1].hovertext[2]
    assert funnel_chart(steps.iloc[:0], ["a"], lang="ru").layout.meta["kind"] == "funnel_chart"
    channels = pd.DataFrame(
        {"channel": ["x", "<b>y</b>"], "opened": [5, 1], "started": [4, 1], "completed": [3, 0]}
    )
    fig = channel_bars(channels, lang="ru")
    assert [trace.name for trace in fig.data] == [
        "Открыли ссылку",  # as the fieldwork page's table of channels names them
        "Начали (дали согласие)",
        "Завершено",
    ]
    assert fig.data[0].y == ("x", "&lt;b&gt;y&lt;/b&gt;")
