"""The SQL count tables and the cached comparison equal an independent computation.

A database (SQLite and PostgreSQL) is filled once for the module with seeded demo
respondents, a few real respondents who go through the real questionnaire pages and one
unfinished draft. Every answer is then loaded with one plain SELECT into pandas, and the
numbers are recomputed from those raw rows with pandas, scipy and statsmodels.
"""

from __future__ import annotations

import os
import shutil
import uuid

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from survey import create_app, queries, results
from survey.demo import delete_demo, seed_demo
from survey.extensions import db
from survey.queries import Population, Segment
from tests.conftest import TEST_SECRET, _migrate
from tests.helpers import Respondent, csrf_token

N_DEMO = 200
KINDS = {"both": ("ru", "foreign"), "ru_only": ("ru",), "foreign_only": ("foreign",)}
CHOICES = [
    ("applied", 5),
    ("no", None),
    ("applied", 1),
    ("dk", None),
    ("existed", None),
    ("no", None),
    ("applied", 4),
    ("applied", 2),
    ("no", None),
]
# Real respondents: (profile overrides, language); their answers vary by respondent.
REAL = [
    ({"worked_in": "both", "industry": "it"}, "ru"),
    ({"worked_in": "ru_only", "industry": "finance"}, "en"),
    ({"worked_in": "foreign_only", "industry": "it"}, "ru"),
    ({"worked_in": "both", "industry": "retail"}, "en"),
]
RAW_SQL = text(
    "SELECT a.response_id, a.practice_id, p.category_id, a.company_kind, a.met, a.rating, "
    "r.status, r.is_demo, r.quality_flag, r.worked_in, r.industry, r.language, "
    "w.code AS wave "
    "FROM answer a JOIN response r ON r.id = a.response_id "
    "JOIN practice p ON p.id = a.practice_id JOIN wave w ON w.id = r.wave_id"
)
MET = ["yes", "no"]


# --------------------------------------------------------------------------- filling


class Person(Respondent):
    """A respondent that fetches its session's CSRF token once, as a browser tab keeps it."""

    token: str | None = None

    def post_form(self, path: str, data: dict, follow: bool = False):
        if self.token is None:
            page = self.client.get(path)
            assert page.status_code == 200, (path, page.status_code)
            self.token = csrf_token(page.text)
        return self.client.post(
            path, data={"csrf_token": self.token, **data}, follow_redirects=follow
        )

    def submit(self):
        return self.client.post("/submit", data={"csrf_token": self.token})


def real_answer(respondent: int, practice: int, kind: str) -> tuple[str, int | None]:
    """A deterministic answer that differs between respondents, practices and kinds."""
    shift = 4 if kind == "foreign" else 0
    return CHOICES[(respondent * 5 + practice * 7 + shift) % len(CHOICES)]


def take_part(
    app, number: int, profile: dict, lang: str = "ru", submit: bool = True, bot: bool = False
) -> None:
    """One real respondent: consent, background, every practice page, submit.

    Without ``submit`` the respondent stops after two pages: an unfinished draft. A test
    client answers in well under a second: only a ``bot`` is held to the minimum time.
    """
    app.config["MIN_COMPLETION_SECONDS"] = 3600 if bot else 0
    catalog = app.extensions["survey_catalog"]
    # the fictitious practice is asked too (its answers are kept apart, out of every count)
    index = {p.id: i for i, p in enumerate((*catalog.practices, *catalog.fictitious))}
    kinds = KINDS[profile["worked_in"]]
    person = Person(app.test_client(), lang=lang)
    person.consent()
    r = person.profile(**profile)
    assert r.status_code == 302, r.text[:2000]
    for page in catalog.pages if submit else catalog.pages[:2]:
        answers = {
            (p.id, kind): real_answer(number, index[p.id], kind)
            for p in page.practices
            for kind in kinds
        }
        r = person.answer_page(page, kinds, answers=answers)
        assert r.status_code == 302, r.text[:2000]
    if submit:
        r = person.submit()
        assert r.status_code == 302 and r.location.endswith("/thanks")


def populate(app) -> None:
    """Demo respondents, the real ones of REAL, one real draft, and a second wave."""
    with app.app_context():
        seed_demo(app.extensions["survey_catalog"], N_DEMO, 11)
    for number, (profile, lang) in enumerate(REAL):
        take_part(app, number, profile, lang)
    take_part(app, 99, {"worked_in": "both", "industry": "it"}, submit=False)
    with app.app_context():
        # Wave w2: every third demo respondent and the last real one.
        db.session.execute(
            text(
                "INSERT INTO wave (code, name_ru, name_en, is_default) "
                "VALUES ('w2', 'Волна 2', 'Wave 2', :f)"
            ),
            {"f": False},
        )
        db.session.execute(
            text(
                "UPDATE response SET wave_id = (SELECT id FROM wave WHERE code = 'w2') "
                "WHERE (is_demo = :t AND id % 3 = 0) OR id = "
                "(SELECT MAX(id) FROM response WHERE is_demo = :f AND status = 'submitted')"
            ),
            {"t": True, "f": False},
        )
        db.session.commit()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(request, tmp_path_factory):
    """(app, raw answers) of a database filled once for this module, read-only in tests."""
    folder = tmp_path_factory.mktemp("queries")
    admin = name = None
    if request.param == "sqlite":
        path = folder / "survey.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        request.getfixturevalue("postgres_database")  # skips when PostgreSQL is not set up
        base = make_url(os.environ["TEST_DATABASE_URL"])
        name = f"survey_queries_{uuid.uuid4().hex[:10]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
        _migrate(url, str(folder))
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": TEST_SECRET,
            "INSTANCE_PATH": str(folder / "instance"),
            "SERVER_NAME": "survey.test",
            "RATELIMIT_ENABLED": False,
        }
    )
    try:
        populate(app)
        with app.app_context():
            raw = raw_answers()
        yield app, raw
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


# --------------------------------------------------------------------------- raw side


def raw_answers() -> pd.DataFrame:
    """Every stored answer with its response's attributes (call in an app context)."""
    result = db.session.execute(RAW_SQL)
    frame = pd.DataFrame([tuple(r) for r in result.all()], columns=list(result.keys()))
    frame["is_demo"] = frame["is_demo"].astype(bool)
    frame["rating"] = frame["rating"].astype("Float64")
    # The recount's own reading of the scale: the practice existed ("yes") whether it applied
    # to the respondent or not, or in the former "met it"; "not my role" stays its own code,
    # outside yes / no like "don't know".
    frame["met"] = frame["met"].replace({"applied": "yes", "existed": "yes"})
    return frame


def in_segment(raw: pd.DataFrame, segment: Segment, pop: Population) -> pd.DataFrame:
    """The raw rows a segment and population keep: submitted, demo rule, background."""
    keep = (raw["status"] == "submitted") & raw["quality_flag"].isna()
    keep &= (raw["is_demo"] & pop.use_demo) | (~raw["is_demo"] & pop.use_real)
    for name in ("worked_in", "industry", "language", "wave"):
        value = getattr(segment, name)
        if value is not None:
            keep &= raw[name] == value
    return raw[keep]


def raw_prevalence(rows: pd.DataFrame, key: str = "practice_id") -> pd.DataFrame:
    """[key, company_kind, yes, no, dk] by a pandas groupby of the raw rows."""
    rows = rows[rows["met"] != "na"]
    table = rows.groupby([key, "company_kind", "met"]).size().unstack("met", fill_value=0)
    table = table.reindex(columns=["yes", "no", "dk"], fill_value=0).reset_index()
    table.columns.name = None
    return table.astype({"yes": "int64", "no": "int64", "dk": "int64"})


def raw_ratings(rows: pd.DataFrame) -> pd.DataFrame:
    rated = rows[rows["rating"].notna()]
    out = rated.groupby(["practice_id", "company_kind", "rating"]).size().reset_index(name="n")
    return out.astype({"rating": "int64", "n": "int64"})


def raw_pairs(rows: pd.DataFrame) -> pd.DataFrame:
    """Per respondent who worked in both kinds and practice: met_ru, met_foreign, ratings."""
    both = rows[rows["worked_in"] == "both"]
    sides = {
        kind: both[both["company_kind"] == kind].set_index(["response_id", "practice_id"])[
            ["met", "rating"]
        ]
        for kind in ("ru", "foreign")
    }
    pairs = pd.merge(
        sides["ru"],
        sides["foreign"],
        how="outer",
        left_index=True,
        right_index=True,
        suffixes=("_ru", "_foreign"),
    )
    return pairs.reset_index()


def raw_paired_counts(pairs: pd.DataFrame) -> pd.DataFrame:
    """[practice_id, yes_yes, yes_no, no_yes, no_no] from raw_pairs()."""
    pairs = pairs[pairs["met_ru"].isin(MET) & pairs["met_foreign"].isin(MET)]
    cells = pairs["met_ru"] + "_" + pairs["met_foreign"]
    out = pairs.assign(cell=cells).groupby(["practice_id", "cell"]).size().unstack(fill_value=0)
    out = out.reindex(columns=["yes_yes", "yes_no", "no_yes", "no_no"], fill_value=0)
    out.columns.name = None
    return out.reset_index()


def raw_paired_ratings(pairs: pd.DataFrame) -> pd.DataFrame:
    """[practice_id, rating_ru, rating_foreign, n] from raw_pairs()."""
    pairs = pairs[pairs["rating_ru"].notna() & pairs["rating_foreign"].notna()]
    return (
        pairs.groupby(["practice_id", "rating_ru", "rating_foreign"]).size().reset_index(name="n")
    )


def assert_same_counts(sql: pd.DataFrame, raw: pd.DataFrame, by: list[str]) -> None:
    """Two count tables hold the same rows (order and dtypes aside)."""

    def norm(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame[raw.columns.tolist()].copy()
        for column in frame.columns:
            if column not in by or pd.api.types.is_numeric_dtype(frame[column]):
                frame[column] = frame[column].astype("int64")
        return frame.sort_values(by).reset_index(drop=True)

    assert list(sql.columns[: len(raw.columns)]) == list(raw.columns)
    pd.testing.assert_frame_equal(norm(sql), norm(raw), check_dtype=False)


def check_count_tables(raw: pd.DataFrame, segment: Segment) -> pd.DataFrame:
    """practice_counts() of a segment equals groupbys of the raw rows it keeps."""
    pop = queries.population(segment.include_demo)
    rows = in_segment(raw, segment, pop)
    counts = queries.practice_counts(segment, pop)
    assert_same_counts(counts["prevalence"], raw_prevalence(rows), ["practice_id", "company_kind"])
    assert_same_counts(
        counts["ratings"], raw_ratings(rows), ["practice_id", "company_kind", "rating"]
    )
    pairs = raw_pairs(rows)
    assert_same_counts(counts["paired"], raw_paired_counts(pairs), ["practice_id"])
    assert_same_counts(
        counts["paired_ratings"],
        raw_paired_ratings(pairs),
        ["practice_id", "rating_ru", "rating_foreign"],
    )
    assert queries.count_respondents(segment, pop) == rows["response_id"].nunique()
    return rows


def expected_statistics(rows: pd.DataFrame) -> dict[str, dict]:
    """Per practice, every compared statistic from scipy/statsmodels on the raw rows."""
    answered = {key: group["met"] for key, group in rows.groupby(["practice_id", "company_kind"])}
    rated = {
        key: group["rating"].astype(int).to_numpy()
        for key, group in rows[rows["rating"].notna()].groupby(["practice_id", "company_kind"])
    }
    pairs = raw_pairs(rows)
    pairs = pairs[pairs["met_ru"].isin(MET) & pairs["met_foreign"].isin(MET)]
    paired = {practice: group for practice, group in pairs.groupby("practice_id")}
    return {
        practice: _statistics(practice, answered, rated, paired[practice])
        for practice in rows["practice_id"].unique()
    }


def _statistics(practice: str, answered: dict, rated: dict, pairs: pd.DataFrame) -> dict:
    out: dict = {}
    for kind in ("ru", "foreign"):
        met = answered[(practice, kind)]
        k, n = int((met == "yes").sum()), int(met.isin(MET).sum())
        out[f"k_{kind}"], out[f"n_{kind}"], out[f"dk_{kind}"] = k, n, int((met == "dk").sum())
        out[f"p_{kind}"] = k / n
        low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
        out[f"ci_{kind}_low"], out[f"ci_{kind}_high"] = low, high
    k1, n1, k2, n2 = out["k_ru"], out["n_ru"], out["k_foreign"], out["n_foreign"]
    out["diff"] = k1 / n1 - k2 / n2
    # Primary: Derrick et al.'s (2015) partially overlapping samples z on the raw answers
    # (pooled share, phi correlation of the pairs); its interval is pinned in test_overlap.
    x = (pairs["met_ru"] == "yes").to_numpy(float)
    y = (pairs["met_foreign"] == "yes").to_numpy(float)
    r = float(np.corrcoef(x, y)[0, 1]) if len(x) > 1 and x.std() and y.std() else 0.0
    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2 - 2 * r * len(x) / (n1 * n2)))
    z = out["diff"] / se if se > 0 else 0.0
    out["test"], out["statistic"], out["p_val"] = "overlap_z", z, 2 * stats.norm.sf(abs(z))

    # McNemar on the respondents who know both kinds and answered yes/no in both.
    cell = pd.crosstab(pairs["met_ru"], pairs["met_foreign"]).reindex(
        index=MET, columns=MET, fill_value=0
    )
    b, c = int(cell.loc["yes", "no"]), int(cell.loc["no", "yes"])
    out["paired_n"], out["paired_b"], out["paired_c"] = len(pairs), b, c
    out["paired_diff"] = (b - c) / len(pairs)
    out["paired_p_val"] = mcnemar(cell.to_numpy(), exact=True).pvalue

    # Mann-Whitney U on the raw ratings (x = Russian companies).
    x, y = rated[(practice, "ru")], rated[(practice, "foreign")]
    mwu = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
    out["mwu_u"], out["mwu_p_val"] = mwu.statistic, mwu.pvalue
    out["rank_biserial"] = 2 * mwu.statistic / (len(x) * len(y)) - 1
    for kind, values in (("ru", x), ("foreign", y)):
        out[f"rating_n_{kind}"] = len(values)
        out[f"rating_mean_{kind}"] = values.mean()
        out[f"rating_median_{kind}"] = float(np.median(values))
    return out


def assert_row(row: pd.Series, expected: dict, context: str) -> None:
    for column, value in expected.items():
        got = row[column]
        if isinstance(value, str):
            assert got == value, (context, column, got, value)
        else:
            close = np.isclose(got, value, rtol=1e-9, atol=1e-12, equal_nan=True)
            assert close, (context, column, got, value)


def met_any(rows: pd.DataFrame) -> pd.DataFrame:
    """Per respondent, category and kind: yes if any yes; else dk if any dk; else no."""
    rows = rows[rows["met"] != "na"]
    flags = (
        rows.assign(is_yes=rows["met"] == "yes", is_dk=rows["met"] == "dk")
        .groupby(["response_id", "category_id", "company_kind"])[["is_yes", "is_dk"]]
        .any()
    )
    flags["met"] = np.where(flags["is_yes"], "yes", np.where(flags["is_dk"], "dk", "no"))
    return flags.reset_index()


# --------------------------------------------------------------------------- tests


def test_count_tables_equal_groupbys_of_the_raw_answers(filled):
    app, raw = filled
    assert raw["is_demo"].any() and (~raw["is_demo"]).any()
    with app.app_context():
        for segment in (Segment(), Segment(include_demo=True)):
            rows = check_count_tables(raw, segment)
            # n = yes + no of the kind's rows: "na" and "don't know" never in a denominator.
            table = results.ungated_comparison(segment).table.set_index("practice_id")
            for (practice, kind), group in rows.groupby(["practice_id", "company_kind"]):
                met = group["met"]
                assert table.loc[practice, f"n_{kind}"] == met.isin(MET).sum()
                assert table.loc[practice, f"dk_{kind}"] == (met == "dk").sum()
                assert table.loc[practice, f"k_{kind}"] == (met == "yes").sum()
            assert (rows["met"] == "na").any()  # there were na rows to leave out
        # Respondents who worked only in one kind answered "na" for the other, and only
        # the kinds they know count: here the 3 real respondents who know Russian companies.
        real = results.ungated_comparison(Segment()).table
        assert real["n_ru"].add(real["dk_ru"]).eq(3).all()
        assert real["n_foreign"].add(real["dk_foreign"]).eq(3).all()


def test_drafts_never_count(filled):
    app, raw = filled
    drafts = raw[raw["status"] == "draft"]
    assert (drafts["met"] != "na").sum() > 0  # the unfinished respondent's pages are stored
    with app.app_context():
        check_count_tables(raw, Segment(industry="it"))  # the raw side: submitted rows only
        sql = queries.practice_counts(Segment(include_demo=True))["prevalence"]
        answered = int(sql[["yes", "no", "dk"]].to_numpy().sum())
        everything = int(raw_prevalence(raw)[["yes", "no", "dk"]].to_numpy().sum())
        assert everything == answered + int((drafts["met"] != "na").sum())
        assert queries.count_respondents(Segment(include_demo=True)) == N_DEMO + len(REAL)
        assert results.ungated_comparison(Segment()).n_respondents == len(REAL)
        categories = queries.category_counts(Segment())["prevalence"]
        # Every real respondent counts once per category and kind they know (3 per kind).
        assert categories[["yes", "no", "dk"]].sum(axis=1).eq(3).all()
        assert len(categories) == 2 * len(app.extensions["survey_catalog"].categories)


def test_comparison_equals_scipy_statsmodels_on_raw_answers(filled):
    app, raw = filled
    practices = [p.id for p in app.extensions["survey_catalog"].practices]
    segment = Segment(include_demo=True)
    rows = in_segment(raw, segment, Population(use_real=True, use_demo=True))
    with app.app_context():
        table = results.ungated_comparison(segment).table.set_index("practice_id")
        small = results.ungated_comparison(Segment()).table.set_index("practice_id")
    assert table.index.tolist() == practices
    expected = expected_statistics(rows)
    for practice in practices:
        assert_row(table.loc[practice], expected[practice], practice)
    # Benjamini-Hochberg q-values across all practices, within each family of tests.
    for family in ("", "paired_", "mwu_"):
        pvals = [expected[p][f"{family}p_val"] for p in practices]
        qvals = multipletests(pvals, method="fdr_bh")[1]
        np.testing.assert_allclose(table[f"{family}q_val"].to_numpy(float), qvals, rtol=1e-9)
    assert (table["test"] == "overlap_z").all()

    # Wilcoxon signed-rank on the raw pairs of ratings.
    pairs = raw_pairs(rows)
    pairs = pairs[pairs["rating_ru"].notna() & pairs["rating_foreign"].notna()]
    checked = 0
    for practice, group in pairs.groupby("practice_id"):
        ru, foreign = group["rating_ru"].astype(int), group["rating_foreign"].astype(int)
        if (ru != foreign).sum() < 10:
            continue
        w = stats.wilcoxon(ru, foreign, zero_method="wilcox", correction=False, method="asymptotic")
        assert np.isclose(table.loc[practice, "wilcoxon_p_val"], w.pvalue, rtol=1e-9), practice
        checked += 1
    assert checked >= 5

    # The real respondents alone are few: flagged low-n; the secondary independent test of
    # those who know one kind only falls back to Fisher's exact test.
    real = in_segment(raw, Segment(), Population(use_real=True, use_demo=False))
    assert small["low_n"].all()
    fisher = 0
    for practice in practices:
        mine = real[real["practice_id"] == practice]
        counts = {}
        for kind in ("ru", "foreign"):
            met = mine.loc[mine["company_kind"] == kind, "met"]
            counts[kind] = (int((met == "yes").sum()), int(met.isin(MET).sum()))
        (k1, n1), (k2, n2) = counts["ru"], counts["foreign"]
        if n1 == 0 or n2 == 0:
            continue
        p = stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]]).pvalue
        assert (small.loc[practice, "k_ru"], small.loc[practice, "n_ru"]) == (k1, n1)
        assert (small.loc[practice, "k_foreign"], small.loc[practice, "n_foreign"]) == (k2, n2)
        assert small.loc[practice, "test"] == "overlap_z", practice
        if small.loc[practice, "paired_n"] == 0:  # then one-kind-only is everyone
            assert small.loc[practice, "indep_test"] == "fisher", practice
            assert np.isclose(small.loc[practice, "indep_p_val"], p, rtol=1e-9), practice
        fisher += 1
    assert fisher >= len(practices) // 2


def test_segments_filter_like_the_raw_frame(filled):
    app, raw = filled
    with app.app_context():
        everyone = check_count_tables(raw, Segment(include_demo=True))
        segments = [
            Segment(industry="it", include_demo=True),
            Segment(worked_in="both", include_demo=True),
            Segment(language="en", include_demo=True),
            Segment(wave="w2", include_demo=True),
            Segment(wave="w1", industry="it", include_demo=True),
            Segment(language="en"),
            Segment(wave="w2"),
        ]
        for segment in segments:
            rows = check_count_tables(raw, segment)
            assert 0 < rows["response_id"].nunique() < everyone["response_id"].nunique()
        # The comparison of a segment: its counts and its n follow the filtered raw frame.
        for segment in (Segment(industry="it", include_demo=True), Segment(language="en")):
            rows = in_segment(raw, segment, queries.population(segment.include_demo))
            result = results.ungated_comparison(segment)
            assert result.n_respondents == rows["response_id"].nunique()
            table = result.table.set_index("practice_id")
            prevalence = raw_prevalence(rows).set_index(["practice_id", "company_kind"])
            for (practice, kind), counts in prevalence.iterrows():
                assert table.loc[practice, f"k_{kind}"] == counts["yes"]
                assert table.loc[practice, f"n_{kind}"] == counts["yes"] + counts["no"]
        # Respondents who worked only in Russian companies say nothing about foreign ones.
        ru_only = queries.practice_counts(Segment(worked_in="ru_only", include_demo=True))
        assert set(ru_only["prevalence"]["company_kind"]) == {"ru"}
        assert ru_only["paired"].empty
        # The sample description of a segment.
        background = queries.background_counts(Segment(language="en", include_demo=True))
        en = raw[(raw["status"] == "submitted") & (raw["language"] == "en")]
        by_industry = en.groupby("industry")["response_id"].nunique()
        got = background["industry"].set_index("code")["n"]
        assert got.sort_index().to_dict() == by_industry.sort_index().to_dict()


def test_category_prevalence_is_met_any_per_respondent(filled):
    app, raw = filled
    categories = [c.id for c in app.extensions["survey_catalog"].categories]
    with app.app_context():
        for segment in (Segment(include_demo=True), Segment(industry="it", include_demo=True)):
            pop = queries.population(segment.include_demo)
            rows = in_segment(raw, segment, pop)
            per_person = met_any(rows)
            counts = queries.category_counts(segment, pop)
            assert_same_counts(
                counts["prevalence"],
                raw_prevalence(per_person, key="category_id"),
                ["category_id", "company_kind"],
            )
            table = results.ungated_comparison(segment).category_table.set_index("category_id")
            assert table.index.tolist() == categories
            category = categories[0]
            for kind in ("ru", "foreign"):
                mine = per_person[
                    (per_person["category_id"] == category) & (per_person["company_kind"] == kind)
                ]
                k = int((mine["met"] == "yes").sum())
                n = int(mine["met"].isin(MET).sum())
                assert table.loc[category, f"k_{kind}"] == k
                assert table.loc[category, f"n_{kind}"] == n
                assert table.loc[category, f"dk_{kind}"] == (mine["met"] == "dk").sum()
                low, high = proportion_confint(k, n, method="wilson")
                assert np.isclose(table.loc[category, f"ci_{kind}_low"], low, rtol=1e-9)
                assert np.isclose(table.loc[category, f"ci_{kind}_high"], high, rtol=1e-9)
            # Paired: respondents who know both kinds, met-any yes/no in both.
            ru = per_person[per_person["company_kind"] == "ru"].set_index(
                ["response_id", "category_id"]
            )["met"]
            fo = per_person[per_person["company_kind"] == "foreign"].set_index(
                ["response_id", "category_id"]
            )["met"]
            wide = pd.concat({"ru": ru, "foreign": fo}, axis=1, join="inner").reset_index()
            wide = wide[wide["ru"].isin(MET) & wide["foreign"].isin(MET)]
            mine = wide[wide["category_id"] == category]
            b = int(((mine["ru"] == "yes") & (mine["foreign"] == "no")).sum())
            c = int(((mine["ru"] == "no") & (mine["foreign"] == "yes")).sum())
            assert (table.loc[category, "paired_b"], table.loc[category, "paired_c"]) == (b, c)
            assert table.loc[category, "paired_n"] == len(mine)
            # Rating: the respondent's mean rating over the category, rounded half up.
            rated = rows[rows["rating"].notna()]
            means = rated.groupby(["response_id", "category_id", "company_kind"])["rating"].mean()
            rounded = np.floor(means.astype(float) + 0.5).astype(int)
            hist = rounded.groupby(["category_id", "company_kind"]).value_counts()
            for kind in ("ru", "foreign"):
                for r in range(1, 6):
                    want = int(hist.get((category, kind, r), 0))
                    assert table.loc[category, f"r{r}_{kind}"] == want, (kind, r)


def test_category_prevalence_bounds_count_undetermined_respondents_as_no_then_yes(filled):
    """The bounds recounted per respondent from the raw answers: a respondent is yes with
    any "yes" in the category, no with only "no", else undetermined (some "don't know")."""
    app, raw = filled
    categories = [c.id for c in app.extensions["survey_catalog"].categories]
    with app.app_context():
        for segment in (Segment(include_demo=True), Segment(), Segment(industry="it")):
            pop = queries.population(segment.include_demo)
            rows = in_segment(raw, segment, pop)
            rows = rows[~rows["met"].isin(["na", "not_my_role"])]  # neither was a question
            table = results.ungated_comparison(segment).category_table.set_index("category_id")
            undetermined_seen = 0
            for (category, kind), group in rows.groupby(["category_id", "company_kind"]):
                answers = group.groupby("response_id")["met"].agg(set)
                yes = int(answers.map(lambda a: "yes" in a).sum())
                no = int(answers.map(lambda a: a == {"no"}).sum())
                undetermined = int(answers.map(lambda a: "yes" not in a and "dk" in a).sum())
                assert yes + no + undetermined == len(answers)
                undetermined_seen += undetermined
                row = table.loc[category]
                assert row[f"dk_{kind}"] == undetermined, (category, kind)
                assert np.isclose(row[f"p_{kind}"], yes / (yes + no), rtol=1e-12)
                low, high = yes / len(answers), (yes + undetermined) / len(answers)
                assert np.isclose(row[f"p_{kind}_bound_low"], low, rtol=1e-12), (category, kind)
                assert np.isclose(row[f"p_{kind}_bound_high"], high, rtol=1e-12), (category, kind)
                assert low <= row[f"p_{kind}"] <= high
            assert set(table.index) == set(categories)
            if segment.include_demo:
                assert undetermined_seen > 0  # the bounds were tested where they differ


def test_demo_rule(app):
    catalog = app.extensions["survey_catalog"]
    with app.app_context():
        seed_demo(catalog, 60, 5)
        assert queries.population() == Population(use_real=False, use_demo=True)
        result = results.ungated_comparison(Segment())
        assert result.demo and not result.includes_real and result.n_respondents == 60
    take_part(app, 0, {"worked_in": "both", "industry": "it"}, submit=False)
    take_part(app, 2, {"worked_in": "both", "industry": "it"}, bot=True)
    with app.app_context():
        # Neither a draft nor a response flagged as a likely bot is a real response.
        assert (
            db.session.scalar(
                text(
                    "SELECT quality_flag FROM response WHERE is_demo = :f AND status = 'submitted'"
                ),
                {"f": False},
            )
            == "too_fast"
        )
        assert queries.population().use_demo
        assert queries.count_respondents(Segment()) == 60
        flagged = Segment(include_flagged=True)
        assert queries.population(include_flagged=True) == Population(True, False)
        assert queries.count_respondents(flagged) == 1
    take_part(app, 1, {"worked_in": "both", "industry": "it"})
    with app.app_context():
        assert queries.population() == Population(use_real=True, use_demo=False)
        result = results.ungated_comparison(Segment())
        assert not result.demo and result.includes_real and result.n_respondents == 1
        assert queries.count_respondents(flagged) == 2
        raw = raw_answers()
        real = raw[(raw["status"] == "submitted") & ~raw["is_demo"] & raw["quality_flag"].isna()]
        table = result.table.set_index("practice_id")
        for kind in ("ru", "foreign"):
            mine = real[real["company_kind"] == kind].set_index("practice_id")["met"]
            assert table[f"n_{kind}"].to_dict() == mine.isin(MET).astype(int).to_dict()
            assert table[f"k_{kind}"].to_dict() == mine.eq("yes").astype(int).to_dict()
        assert queries.population(include_demo=True) == Population(use_real=True, use_demo=True)
        mixed = results.ungated_comparison(Segment(include_demo=True))
        assert mixed.demo and mixed.includes_real and mixed.n_respondents == 61  # no bot
        assert mixed.filters == {"include_demo": "1"}


def test_comparison_cache(app):
    catalog = app.extensions["survey_catalog"]
    with app.app_context():
        seed_demo(catalog, 80, 3)
        first = results.comparison(Segment())
        assert results.comparison(Segment()) is first
    take_part(app, 1, {"worked_in": "both", "industry": "it"})
    with app.app_context():
        now = results.comparison(Segment(include_demo=True))
        # One real respondent among 80 demo ones: demo rows are no cover, so it is withheld.
        assert now is not first and now.suppressed and now.verdict.reason == "too_small"
        assert results.comparison(Segment(include_demo=True)) is now
        mixed = results.ungated_comparison(Segment(include_demo=True))
        assert mixed.n_respondents == 81 and mixed.includes_real
        assert (mixed.table["n_ru"] - first.table["n_ru"]).isin([0, 1]).all()
        assert (mixed.table["n_ru"] - first.table["n_ru"]).sum() > 0


def test_cache_sees_demo_data_replaced(app):
    """Demo data replaced by a new seed of the same size is new data, not a cache hit."""
    catalog = app.extensions["survey_catalog"]
    with app.app_context():
        seed_demo(catalog, 40, 1)
        first = results.comparison(Segment())
        delete_demo()
        seed_demo(catalog, 40, 2)
        second = results.comparison(Segment())
        assert second is not first
        prevalence = raw_prevalence(raw_answers())
        table = second.table.set_index("practice_id")
        for (practice, kind), counts in prevalence.set_index(
            ["practice_id", "company_kind"]
        ).iterrows():
            if counts["yes"] + counts["no"] < 10:  # withheld by the disclosure gate
                assert table.loc[practice, f"suppressed_{kind}"]
                continue
            assert table.loc[practice, f"k_{kind}"] == counts["yes"]
            assert table.loc[practice, f"n_{kind}"] == counts["yes"] + counts["no"]


def test_the_application_and_the_statistics_name_the_same_company_kinds():
    # analysis/ imports nothing from survey/, so each names the kinds once: they must agree.
    from analysis.proportions import KINDS as ANALYSIS_KINDS
    from survey.models import COMPANY_KINDS

    assert COMPANY_KINDS == ANALYSIS_KINDS == ("ru", "foreign")
