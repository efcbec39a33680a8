"""The adjusted foreign-vs-Russian estimate: pinned to statsmodels' GEE fitted on the
per-answer rows, honest about what it cannot estimate, and right in a seeded simulation
(Type I error under confounding, interval coverage)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import special, stats

from analysis.adjusted import (
    PATTERN_COLUMNS,
    adjusted_estimates,
    answer_counts,
    fit_gee,
    separated,
)
from benchmarks.validate_adjusted import ALPHA, mc_error, run

KINDS = ("ru", "foreign")
PERIODS = ("before_2014", "2014_2021", "2022_on")
ROLES = ("specialist", "line_manager", "middle_manager", "executive")
FUNCTIONS = ("sales", "hr", "it", "finance")
Z = stats.norm.ppf(0.975)


def respondents(n: int, seed: int, legacy: float = 0.1, dk: float = 0.1, pairs=0.45):
    """One row per simulated respondent: worked_in, and per kind the answer ('yes', 'no',
    'dk' or None when the kind was not worked in) and the covariates (None for a legacy
    respondent, as in responses from before 2026-12)."""
    rng = np.random.default_rng(seed)
    rows = []
    for rid in range(n):
        worked = rng.choice(
            ["ru_only", "foreign_only", "both"], p=[(1 - pairs) * 0.6, (1 - pairs) * 0.4, pairs]
        )
        old = rng.random() < legacy
        shared = rng.random()
        row = {"respondent": rid}
        for index, kind in enumerate(KINDS):
            if worked == ("foreign_only" if kind == "ru" else "ru_only"):
                row.update(
                    {
                        f"met_{kind}": None,
                        f"period_{kind}": None,
                        f"role_{kind}": None,
                        f"function_{kind}": None,
                    }
                )
                continue
            period = rng.choice(3, p=[0.5, 0.3, 0.2] if kind == "ru" else [0.15, 0.35, 0.5])
            role = rng.integers(0, len(ROLES))
            function = rng.integers(0, len(FUNCTIONS))
            logit = -0.8 + 0.7 * period + 0.3 * (role == 2) + 0.25 * index
            u = shared if rng.random() < 0.5 else rng.random()
            met = "yes" if u < special.expit(logit) else "no"
            if rng.random() < dk:
                met = "dk"
            row.update(
                {
                    f"met_{kind}": met,
                    f"period_{kind}": None if old else PERIODS[period],
                    f"role_{kind}": None if old else ROLES[role],
                    f"function_{kind}": None if old else FUNCTIONS[function],
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def pattern_table(raw: pd.DataFrame, practice_id: str = "p") -> pd.DataFrame:
    """The GROUP BY the database does, written out: identical respondents counted."""
    frame = raw.copy()
    for kind in KINDS:
        frame[f"y_{kind}"] = frame[f"met_{kind}"].map({"yes": 1.0, "no": 0.0})
    frame["practice_id"] = practice_id
    keys = PATTERN_COLUMNS[:-1]
    frame = frame[frame["y_ru"].notna() | frame["y_foreign"].notna()]
    filled = frame[keys].astype(object).where(frame[keys].notna(), "<null>")
    counts = filled.groupby(keys, sort=False).size().reset_index(name="n")
    counts = counts.replace("<null>", None)
    for kind in KINDS:
        counts[f"y_{kind}"] = counts[f"y_{kind}"].astype("float64")
    return counts


def answer_long(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per yes/no answer with complete covariates, straight from the respondents."""
    parts = []
    for index, kind in enumerate(KINDS):
        sel = raw[raw[f"met_{kind}"].isin(["yes", "no"])]
        parts.append(
            pd.DataFrame(
                {
                    "respondent": sel["respondent"],
                    "foreign": index,
                    "existed": (sel[f"met_{kind}"] == "yes").astype(float),
                    "period": sel[f"period_{kind}"],
                    "role": sel[f"role_{kind}"],
                    "function": sel[f"function_{kind}"],
                }
            )
        )
    long = pd.concat(parts).dropna(subset=["period", "role", "function"])
    return long.sort_values(["respondent", "foreign"]).reset_index(drop=True)


def reference(long: pd.DataFrame, formula: str, cov_struct=None):
    """statsmodels' GEE on the per-answer rows (tighter tolerance than its default)."""
    model = sm.GEE.from_formula(
        formula,
        groups="respondent",
        data=long,
        family=sm.families.Binomial(),
        cov_struct=cov_struct or sm.cov_struct.Exchangeable(),
    )
    return model.fit()


def standardised(result) -> tuple[float, float]:
    """Mean predicted P(foreign) - P(Russian) over the model's rows, and its delta-method
    standard error by a numerical gradient of statsmodels' own fit."""
    exog = np.asarray(result.model.exog)
    column = list(result.model.exog_names).index("foreign")
    as_foreign, as_russian = exog.copy(), exog.copy()
    as_foreign[:, column], as_russian[:, column] = 1.0, 0.0

    def effect(params):
        return float(
            np.mean(special.expit(as_foreign @ params) - special.expit(as_russian @ params))
        )

    params = np.asarray(result.params)
    gradient = np.zeros(len(params))
    for j in range(len(params)):
        step = np.zeros(len(params))
        step[j] = 1e-6
        gradient[j] = (effect(params + step) - effect(params - step)) / 2e-6
    return effect(params), math.sqrt(gradient @ np.asarray(result.cov_params()) @ gradient)


ADJUSTED = "existed ~ foreign + C(period) + C(role) + C(function)"


def test_adjusted_estimates_equal_statsmodels_gee_on_the_answer_rows():
    raw = respondents(900, seed=3)
    row = adjusted_estimates(pattern_table(raw), min_answers=10).iloc[0]
    long = answer_long(raw)
    crude = reference(long, "existed ~ foreign")
    full = reference(long, ADJUSTED)
    assert row["note"] is None and row["adjusted_for"] == "period,role,function"
    b, se = crude.params["foreign"], crude.bse["foreign"]
    assert row["or_unadj"] == pytest.approx(math.exp(b), abs=1e-6)
    assert row["or_unadj_ci_low"] == pytest.approx(math.exp(b - Z * se), abs=1e-6)
    assert row["or_unadj_ci_high"] == pytest.approx(math.exp(b + Z * se), abs=1e-6)
    assert row["p_val_unadj"] == pytest.approx(crude.pvalues["foreign"], abs=1e-6)
    b, se = full.params["foreign"], full.bse["foreign"]
    assert row["log_or_adj"] == pytest.approx(b, abs=1e-6)
    assert row["se_log_or_adj"] == pytest.approx(se, abs=1e-6)
    assert row["or_adj"] == pytest.approx(math.exp(b), abs=1e-6)
    assert row["or_adj_ci_low"] == pytest.approx(math.exp(b - Z * se), abs=1e-6)
    assert row["or_adj_ci_high"] == pytest.approx(math.exp(b + Z * se), abs=1e-6)
    assert row["p_val_adj"] == pytest.approx(full.pvalues["foreign"], abs=1e-6)
    assert row["rho"] == pytest.approx(full.cov_struct.dep_params, abs=1e-6)
    diff, diff_se = standardised(full)
    assert row["diff_adj"] == pytest.approx(diff, abs=1e-6)
    assert row["diff_adj_ci_low"] == pytest.approx(diff - Z * diff_se, abs=1e-6)
    assert row["diff_adj_ci_high"] == pytest.approx(diff + Z * diff_se, abs=1e-6)
    # The counts used, and the answers left out for lack of covariates, by a plain recount.
    assert row["n_answers"] == len(long)
    assert row["n_respondents"] == long["respondent"].nunique()
    assert row["n_answers_ru"] == (long["foreign"] == 0).sum()
    assert row["n_answers_foreign"] == (long["foreign"] == 1).sum()
    for kind in KINDS:
        answered = raw[f"met_{kind}"].isin(["yes", "no"])
        assert row[f"n_excluded_{kind}"] == (answered & raw[f"period_{kind}"].isna()).sum()
    assert row["n_excluded_ru"] > 0


def test_identical_respondents_are_counted_not_repeated():
    raw = respondents(300, seed=8)
    patterns = pattern_table(raw)
    assert patterns["n"].max() > 1  # some respondents share a pattern
    doubled = patterns.assign(n=patterns["n"] * 2)
    twice = pd.concat([raw, raw.assign(respondent=raw["respondent"] + len(raw))])
    row = adjusted_estimates(doubled, min_answers=10).iloc[0]
    full = reference(answer_long(twice), ADJUSTED)
    assert row["log_or_adj"] == pytest.approx(full.params["foreign"], abs=1e-6)
    assert row["se_log_or_adj"] == pytest.approx(full.bse["foreign"], abs=1e-6)


def test_with_too_few_respondents_of_both_kinds_the_working_correlation_is_independence():
    raw = respondents(400, seed=5, legacy=0.0, pairs=0.0)
    row = adjusted_estimates(pattern_table(raw), min_answers=10).iloc[0]
    assert row["working_correlation"] == "independence" and row["rho"] == 0
    full = reference(answer_long(raw), ADJUSTED, sm.cov_struct.Independence())
    assert row["log_or_adj"] == pytest.approx(full.params["foreign"], abs=1e-6)
    assert row["se_log_or_adj"] == pytest.approx(full.bse["foreign"], abs=1e-6)


def test_a_covariate_with_a_single_level_is_left_out():
    raw = respondents(500, seed=11, legacy=0.0)
    for kind in KINDS:
        raw[f"period_{kind}"] = raw[f"period_{kind}"].where(raw[f"period_{kind}"].isna(), "2022_on")
    row = adjusted_estimates(pattern_table(raw), min_answers=10).iloc[0]
    assert row["adjusted_for"] == "role,function"
    full = reference(answer_long(raw), "existed ~ foreign + C(role) + C(function)")
    assert row["log_or_adj"] == pytest.approx(full.params["foreign"], abs=1e-6)


def test_a_kind_with_fewer_answers_than_the_threshold_gets_no_estimate():
    raw = respondents(60, seed=2, legacy=0.0)
    table = adjusted_estimates(pattern_table(raw), min_answers=40)
    row = table.iloc[0]
    assert row["note"] == "too_few_answers"
    assert math.isnan(row["or_unadj"]) and math.isnan(row["or_adj"]) and math.isnan(row["diff_adj"])
    assert min(row["n_answers_ru"], row["n_answers_foreign"]) < 40


def test_a_covariate_level_where_every_answer_is_the_same_is_separation():
    raw = respondents(400, seed=4, legacy=0.0, dk=0.0)
    for kind in KINDS:  # every finance answer says the practice existed
        finance = raw[f"function_{kind}"] == "finance"
        raw.loc[finance, f"met_{kind}"] = "yes"
    row = adjusted_estimates(pattern_table(raw), min_answers=10).iloc[0]
    assert row["note"] == "separation"
    assert math.isnan(row["or_adj"]) and math.isnan(row["diff_adj"])
    crude = reference(answer_long(raw), "existed ~ foreign")  # the crude model is fine
    assert row["or_unadj"] == pytest.approx(math.exp(crude.params["foreign"]), abs=1e-6)


def test_separation_by_a_combination_of_levels_is_found_too():
    # Each column alone holds both outcomes, but together they split them exactly:
    # b = (-1, 2, 2) gives x'b < 0 for every 0 and x'b > 0 for every 1.
    X = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1], [1, 0, 0], [1, 1, 1]], float)
    y = np.array([0, 1, 1, 1, 0, 1], float)
    assert separated(X, y)
    assert not separated(X, np.array([0, 1, 1, 0, 1, 1], float))
    raw = respondents(400, seed=4, legacy=0.0, dk=0.0)
    for kind in KINDS:  # every answer of a finance executive said it existed
        cell = (raw[f"function_{kind}"] == "finance") & (raw[f"role_{kind}"] == "executive")
        raw.loc[cell, f"met_{kind}"] = "yes"
    long = answer_long(raw)
    for level in ("finance", "executive"):  # each level alone holds both answers
        alone = long[(long["function"] == level) | (long["role"] == level)]["existed"]
        assert alone.nunique() == 2
    row = adjusted_estimates(pattern_table(raw), min_answers=10).iloc[0]
    # The main-effects model is not separated by an interaction cell: it is estimated.
    assert row["note"] is None
    full = reference(long, ADJUSTED)
    assert row["log_or_adj"] == pytest.approx(full.params["foreign"], abs=1e-6)


def test_a_kind_that_the_period_determines_is_collinear():
    raw = respondents(400, seed=6, legacy=0.0)
    raw["period_ru"] = raw["period_ru"].where(raw["period_ru"].isna(), "before_2014")
    raw["period_foreign"] = raw["period_foreign"].where(raw["period_foreign"].isna(), "2022_on")
    row = adjusted_estimates(pattern_table(raw), min_answers=10).iloc[0]
    assert row["note"] == "collinear" and math.isnan(row["or_adj"])
    assert not math.isnan(row["or_unadj"])


def test_practices_come_in_the_order_asked_and_a_practice_without_answers_says_so():
    a = pattern_table(respondents(300, seed=1), "a")
    b = pattern_table(respondents(300, seed=2), "b")
    table = adjusted_estimates(pd.concat([a, b]), min_answers=10, items=["b", "none", "a"])
    assert table["practice_id"].tolist() == ["b", "none", "a"]
    empty = table.iloc[1]
    assert empty["note"] == "too_few_answers" and empty["n_answers"] == 0
    alone = adjusted_estimates(a, min_answers=10).iloc[0]
    assert table.iloc[2]["or_adj"] == pytest.approx(alone["or_adj"], abs=1e-12)


def test_answer_counts_match_a_recount():
    raw = respondents(200, seed=9)
    counts = answer_counts(pattern_table(raw)).iloc[0]
    for kind in KINDS:
        answered = raw[f"met_{kind}"].isin(["yes", "no"])
        complete = raw[f"period_{kind}"].notna()
        assert counts[f"n_answers_{kind}"] == (answered & complete).sum()
        assert counts[f"n_excluded_{kind}"] == (answered & ~complete).sum()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns="role_ru"), "lacks columns"),
        (lambda t: t.assign(y_ru=2.0), "y_ru must be 0, 1"),
        (lambda t: t.assign(n=0), "n must hold whole numbers"),
    ],
)
def test_bad_pattern_tables_are_refused(change, message):
    table = pattern_table(respondents(50, seed=1))
    with pytest.raises(ValueError, match=message):
        adjusted_estimates(change(table))


def test_fit_gee_refuses_clusters_of_more_than_two_answers():
    with pytest.raises(ValueError, match="one or two rows"):
        fit_gee([1, 0, 1], np.ones((3, 1)), cluster=[1, 1, 1])


# ---------------------------------------------------------------- simulation

REPS = 500


@pytest.fixture(scope="module")
def simulated():
    return run(reps=REPS, seed=17, settings=["n=400"])[0]


def test_confounding_by_period_fools_the_unadjusted_test_but_not_the_adjusted_one(simulated):
    # No true kind effect; the period differs between the kinds and drives prevalence.
    # 99.9 % Monte-Carlo bound (3.29 standard errors), as in test_overlap_simulation.
    tolerance = mc_error(ALPHA, REPS) / 1.96 * 3.29
    assert simulated.fitted == REPS
    assert simulated.reject_unadj > 0.5
    assert abs(simulated.reject_adj - ALPHA) <= tolerance


def test_the_adjusted_log_odds_ratio_interval_covers(simulated):
    tolerance = mc_error(1 - ALPHA, REPS) / 1.96 * 3.29
    assert abs(simulated.cover_null - (1 - ALPHA)) <= tolerance
    assert abs(simulated.cover_alt - (1 - ALPHA)) <= tolerance
