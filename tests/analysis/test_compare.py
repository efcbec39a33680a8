"""The full comparison table: random raw answers are aggregated to count tables with pandas,
and every statistic of compare() is checked against scipy/statsmodels applied directly to
the raw answers."""

import doctest
import importlib
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportion_effectsize

import analysis
from analysis import table as definition
from analysis.compare import (
    ASSUMPTIONS,
    assumptions_text,
    compare,
    multiple_testing,
)

from .test_paired import _reference_newcombe

ITEMS = ["bonus", "flexible_hours", "training"]

# The table's columns, their order and types come from its one definition (analysis.table);
# every value below is computed independently of it.
COLUMNS = definition.order("practice_id")
INT_COLUMNS = list(definition.INT_COLUMNS)
TEXT_COLUMNS = definition.TEXT_COLUMNS
FLAGS = ["low_n_ru", "low_n_foreign", "low_n_paired", "low_n_rating", "low_n"]
Q_COLUMNS = [
    f"{family}q_val" for family in ("", "indep_", "paired_", "rating_", "mwu_", "wilcoxon_")
]


# --------------------------------------------------------------------------- raw answers

# One answer about one practice in one kind of company: yes (with a rating, or a skipped
# rating), no, or don't know.
answers = st.one_of(
    st.tuples(st.just("yes"), st.one_of(st.none(), st.integers(1, 5))),
    st.tuples(st.sampled_from(["no", "dk"]), st.none()),
)
respondents = st.tuples(
    st.booleans(),  # worked in a Russian company
    st.booleans(),  # worked in a foreign company
    st.lists(st.tuples(answers, answers), min_size=len(ITEMS), max_size=len(ITEMS)),
)
samples = st.tuples(st.lists(respondents, max_size=40), st.integers(1, 4))


def _raw_answers(sample):
    """Long raw table: respondent_id, practice_id, company_kind, answer, rating."""
    people, copies = sample
    rows = []
    for rid, (worked_ru, worked_foreign, per_item) in enumerate(people * copies):
        for item, (ans_ru, ans_foreign) in zip(ITEMS, per_item, strict=True):
            for kind, worked, (answer, rating) in (
                ("ru", worked_ru, ans_ru),
                ("foreign", worked_foreign, ans_foreign),
            ):
                if worked:  # "not asked" never reaches the analysis
                    rows.append((rid, item, kind, answer, rating))
    raw = pd.DataFrame(
        rows, columns=["respondent_id", "practice_id", "company_kind", "answer", "rating"]
    )
    raw["rating"] = raw["rating"].astype("Int64")
    return raw


def _wide_counts(long, by, column, categories):
    """Count rows of ``long`` by ``by`` and ``column``; one output column per category."""
    if long.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in [*by, *categories]})
    wide = (
        long.groupby([*by, column])
        .size()
        .unstack(column, fill_value=0)
        .reindex(columns=categories, fill_value=0)
        .astype("int64")
        .reset_index()
    )
    wide.columns.name = None
    return wide


def _aggregate(raw):
    """The four count tables, as SQL GROUP BY would give them (missing rows = zero)."""
    prevalence_counts = _wide_counts(
        raw, ["practice_id", "company_kind"], "answer", ["yes", "no", "dk"]
    )
    merged = raw[raw["company_kind"] == "ru"].merge(
        raw[raw["company_kind"] == "foreign"],
        on=["respondent_id", "practice_id"],
        suffixes=("_ru", "_foreign"),
    )
    yes_no = ["yes", "no"]
    both = merged[merged["answer_ru"].isin(yes_no) & merged["answer_foreign"].isin(yes_no)]
    both = both.assign(cell=both["answer_ru"] + "_" + both["answer_foreign"])
    paired_counts = _wide_counts(
        both, ["practice_id"], "cell", ["yes_yes", "yes_no", "no_yes", "no_no"]
    )
    rating_counts = (
        raw.dropna(subset=["rating"])
        .groupby(["practice_id", "company_kind", "rating"])
        .size()
        .rename("n")
        .reset_index()
    )
    paired_rating_counts = (
        merged.dropna(subset=["rating_ru", "rating_foreign"])
        .groupby(["practice_id", "rating_ru", "rating_foreign"])
        .size()
        .rename("n")
        .reset_index()
    )
    return prevalence_counts, paired_counts, rating_counts, paired_rating_counts


def _reference(records):
    """Every statistic for one item from its raw answers (tuples respondent_id, practice_id,
    company_kind, answer, rating), with scipy/statsmodels; no count table involved."""
    ref = {}
    answers = {"ru": {}, "foreign": {}}  # respondent -> (answer, rating)
    for rid, _, kind, answer, rating in records:
        answers[kind][rid] = (answer, rating)

    wilson = {}
    for kind, given_answers in answers.items():
        said = [answer for answer, _ in given_answers.values()]
        yes, no, dk = said.count("yes"), said.count("no"), said.count("dk")
        ref[f"n_{kind}"], ref[f"k_{kind}"], ref[f"dk_{kind}"] = yes + no, yes, dk
        if yes + no:
            ci = wilson[kind] = stats.binomtest(yes, yes + no).proportion_ci(method="wilson")
            ref[f"p_{kind}"] = yes / (yes + no)
            ref[f"ci_{kind}_low"], ref[f"ci_{kind}_high"] = ci.low, ci.high
        else:
            ref[f"p_{kind}"] = ref[f"ci_{kind}_low"] = ref[f"ci_{kind}_high"] = math.nan
        # Bounds: every don't-know read as no, then as yes.
        as_no = [answer == "yes" for answer in said]
        as_yes = [answer in ("yes", "dk") for answer in said]
        ref[f"p_{kind}_bound_low"] = np.mean(as_no) if said else math.nan
        ref[f"p_{kind}_bound_high"] = np.mean(as_yes) if said else math.nan

    yes_no = {"yes", "no"}
    said = {
        kind: {r: ans for r, (ans, _) in given.items() if ans in yes_no}
        for kind, given in answers.items()
    }
    paired_ids = sorted(set(said["ru"]) & set(said["foreign"]))
    only = {
        kind: [said[kind][r] == "yes" for r in said[kind] if r not in paired_ids] for kind in said
    }
    x_pair = np.array([said["ru"][r] == "yes" for r in paired_ids], dtype=float)
    y_pair = np.array([said["foreign"][r] == "yes" for r in paired_ids], dtype=float)
    ref.update(_reference_overlap_z(only["ru"], only["foreign"], x_pair, y_pair, wilson))
    for kind in ("ru", "foreign"):
        ref[f"n_{kind}_only"] = len(only[kind])
        ref[f"k_{kind}_only"] = sum(only[kind])
        ref[f"p_{kind}_only"] = np.mean(only[kind]) if only[kind] else math.nan
    ref.update(
        {
            f"indep_{name}": value
            for name, value in _reference_independent(
                ref["k_ru_only"], ref["n_ru_only"], ref["k_foreign_only"], ref["n_foreign_only"]
            ).items()
        }
    )

    both = sorted(set(answers["ru"]) & set(answers["foreign"]))
    pairs = [(answers["ru"][r][0], answers["foreign"][r][0]) for r in both]
    pairs = np.array([(ru == "yes", fo == "yes") for ru, fo in pairs if {ru, fo} <= {"yes", "no"}])
    n_pairs = len(pairs)
    ref["paired_n"] = n_pairs
    if n_pairs:
        ru_yes, foreign_yes = pairs[:, 0], pairs[:, 1]
        a, b = int((ru_yes & foreign_yes).sum()), int((ru_yes & ~foreign_yes).sum())
        c = int((~ru_yes & foreign_yes).sum())
        ref["paired_b"], ref["paired_c"] = b, c
        ref["paired_diff"] = ru_yes.mean() - foreign_yes.mean()
        ref["paired_p_val"] = stats.binomtest(b, b + c).pvalue if b + c else 1.0
        ref["paired_ci_low"], ref["paired_ci_high"] = _reference_newcombe(
            a, b, c, n_pairs - a - b - c
        )
    else:
        ref["paired_b"] = ref["paired_c"] = 0
        for name in ("paired_diff", "paired_ci_low", "paired_ci_high", "paired_p_val"):
            ref[name] = math.nan

    rated = {
        kind: {rid: rating for rid, (_, rating) in given.items() if rating is not None}
        for kind, given in answers.items()
    }
    x = np.array(list(rated["ru"].values()), dtype=int)
    y = np.array(list(rated["foreign"].values()), dtype=int)
    for kind, values in (("ru", x), ("foreign", y)):
        ref[f"rating_n_{kind}"] = values.size
        ref[f"rating_mean_{kind}"] = values.mean() if values.size else math.nan
        ref[f"rating_median_{kind}"] = float(np.median(values)) if values.size else math.nan
        for r in range(1, 6):
            ref[f"r{r}_{kind}"] = int((values == r).sum())
    for kind, values in (("ru", x), ("foreign", y)):
        if values.size >= 2 and values.std() == 0:
            low = high = values.mean()
        elif values.size >= 2:
            low, high = stats.t.interval(
                0.95, values.size - 1, loc=values.mean(), scale=stats.sem(values)
            )
        else:
            low = high = math.nan
        ref[f"rating_mean_{kind}_ci_low"], ref[f"rating_mean_{kind}_ci_high"] = low, high
    if x.size and y.size:
        mwu = stats.mannwhitneyu(
            x, y, alternative="two-sided", method="asymptotic", use_continuity=True
        )
        ref["mwu_u"], ref["mwu_p_val"] = mwu.statistic, mwu.pvalue
        rbc = ref["rank_biserial"] = 2 * mwu.statistic / (x.size * y.size) - 1
        se = math.sqrt((x.size + y.size + 1) / (3 * x.size * y.size))
        if abs(rbc) < 1:
            ref["rank_biserial_ci_low"] = math.tanh(math.atanh(rbc) - 1.959963984540054 * se)
            ref["rank_biserial_ci_high"] = math.tanh(math.atanh(rbc) + 1.959963984540054 * se)
        else:
            ref["rank_biserial_ci_low"] = ref["rank_biserial_ci_high"] = rbc
    else:
        for name in (
            "mwu_u",
            "mwu_p_val",
            "rank_biserial",
            "rank_biserial_ci_low",
            "rank_biserial_ci_high",
        ):
            ref[name] = math.nan
    rated_both = sorted(set(rated["ru"]) & set(rated["foreign"]))
    ref["rating_n_ru_only"] = len(rated["ru"]) - len(rated_both)
    ref["rating_n_foreign_only"] = len(rated["foreign"]) - len(rated_both)
    ref.update(
        _reference_overlap_t(
            [v for r, v in rated["ru"].items() if r not in rated_both],
            [v for r, v in rated["foreign"].items() if r not in rated_both],
            [rated["ru"][r] for r in rated_both],
            [rated["foreign"][r] for r in rated_both],
        )
    )

    both_rated = sorted(set(rated["ru"]) & set(rated["foreign"]))
    x_pairs = np.array([rated["ru"][r] for r in both_rated], dtype=float)
    y_pairs = np.array([rated["foreign"][r] for r in both_rated], dtype=float)
    ref["rating_paired_n"] = len(both_rated)
    if not both_rated:
        ref["wilcoxon_statistic"] = ref["wilcoxon_p_val"] = math.nan
    elif (x_pairs == y_pairs).all():
        ref["wilcoxon_statistic"], ref["wilcoxon_p_val"] = 0.0, 1.0  # defined, see docstring
    else:
        wil = stats.wilcoxon(
            x_pairs,
            y_pairs,
            zero_method="wilcox",
            correction=False,
            alternative="two-sided",
            method="asymptotic",
        )
        ref["wilcoxon_statistic"], ref["wilcoxon_p_val"] = wil.statistic, wil.pvalue
    return ref


Z95 = stats.norm.isf(0.025)


def _reference_independent(k1, n1, k2, n2):
    """The secondary test of two independent groups, with scipy/statsmodels."""
    out = {
        "diff": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "test": None,
        "statistic": math.nan,
        "p_val": math.nan,
        "cohens_h": math.nan,
    }
    if not (n1 and n2):
        return out
    p1, p2 = k1 / n1, k2 / n2
    w1 = stats.binomtest(k1, n1).proportion_ci(method="wilson")
    w2 = stats.binomtest(k2, n2).proportion_ci(method="wilson")
    out["diff"] = p1 - p2
    out["ci_low"] = p1 - p2 - math.hypot(p1 - w1.low, w2.high - p2)
    out["ci_high"] = p1 - p2 + math.hypot(w1.high - p1, p2 - w2.low)
    out["cohens_h"] = float(proportion_effectsize(p1, p2))
    table = np.array([[k1, n1 - k1], [k2, n2 - k2]])
    if (table.sum(axis=0) == 0).any() or stats.contingency.expected_freq(table).min() < 5:
        out["test"], out["p_val"] = "fisher", stats.fisher_exact(table).pvalue
    else:
        chi2 = stats.chi2_contingency(table, correction=False)
        out["test"], out["statistic"], out["p_val"] = "chi2", chi2.statistic, chi2.pvalue
    return out


def _reference_overlap_z(x_only, y_only, x_pair, y_pair, wilson):
    """Derrick et al. (2015) z (R Partiallyoverlapping::Prop.test) on the raw 0/1 answers,
    with the MOVER interval and Cohen's h interval written out from their definitions."""
    x = np.concatenate([np.asarray(x_only, float), x_pair])
    y = np.concatenate([np.asarray(y_only, float), y_pair])
    names = (
        "diff",
        "diff_ci_low",
        "diff_ci_high",
        "statistic",
        "p_val",
        "cohens_h",
        "cohens_h_ci_low",
        "cohens_h_ci_high",
        "overlap_r",
    )
    out = dict.fromkeys(names, math.nan)
    out["test"] = None
    n12 = len(x_pair)
    r = 0.0
    if n12 >= 2 and x_pair.std() > 0 and y_pair.std() > 0:
        r = float(np.corrcoef(x_pair, y_pair)[0, 1])
    if n12:
        out["overlap_r"] = r
    if not (x.size and y.size):
        return out
    n1, n2 = x.size, y.size
    p1, p2 = x.mean(), y.mean()
    pooled = np.concatenate([x, y]).mean()
    w = pooled * (1 - pooled)
    se = math.sqrt(max(w / n1 + w / n2 - 2 * r * w * n12 / (n1 * n2), 0))
    z = (p1 - p2) / se if se > 0 else 0.0
    out.update(test="overlap_z", diff=p1 - p2, statistic=z, p_val=2 * stats.norm.sf(abs(z)))
    rho = r * n12 / math.sqrt(n1 * n2)
    w1, w2 = wilson["ru"], wilson["foreign"]
    out["diff_ci_low"] = max(
        -1.0,
        p1
        - p2
        - math.sqrt(
            max(
                (p1 - w1.low) ** 2 - 2 * rho * (p1 - w1.low) * (w2.high - p2) + (w2.high - p2) ** 2,
                0,
            )
        ),
    )
    out["diff_ci_high"] = min(
        1.0,
        p1
        - p2
        + math.sqrt(
            max(
                (w1.high - p1) ** 2 - 2 * rho * (w1.high - p1) * (p2 - w2.low) + (p2 - w2.low) ** 2,
                0,
            )
        ),
    )
    h = float(proportion_effectsize(p1, p2))
    h_se = math.sqrt(max(1 / n1 + 1 / n2 - 2 * r * n12 / (n1 * n2), 0))
    out.update(cohens_h=h, cohens_h_ci_low=h - Z95 * h_se, cohens_h_ci_high=h + Z95 * h_se)
    return out


SQRT_OF_CANCELLATION = ("diff_ci_low", "diff_ci_high")


def _reference_overlap_t(x_only, y_only, x_pair, y_pair):
    """Derrick et al. (2017) separate-variances t (R Partiallyoverlapping::Partover.test,
    var.equal = FALSE) on the raw ratings."""
    x_pair, y_pair = np.asarray(x_pair, float), np.asarray(y_pair, float)
    x = np.concatenate([np.asarray(x_only, float), x_pair])
    y = np.concatenate([np.asarray(y_only, float), y_pair])
    names = (
        "rating_diff",
        "rating_diff_ci_low",
        "rating_diff_ci_high",
        "rating_statistic",
        "rating_df",
        "rating_p_val",
        "rating_r",
    )
    out = dict.fromkeys(names, math.nan)
    out["rating_test"] = None
    n12 = len(x_pair)
    r = 0.0
    if n12 >= 2 and x_pair.std() > 0 and y_pair.std() > 0:
        r = float(np.corrcoef(x_pair, y_pair)[0, 1])
    if n12 >= 2:
        out["rating_r"] = r
    if x.size and y.size:
        out["rating_diff"] = x.mean() - y.mean()
    if x.size < 2 or y.size < 2:
        return out
    n1, n2, na, nb = x.size, y.size, len(x_only), len(y_only)
    v1, v2 = x.var(ddof=1), y.var(ddof=1)
    se = math.sqrt(max(v1 / n1 + v2 / n2 - 2 * r * n12 * math.sqrt(v1 * v2) / (n1 * n2), 0))
    if v1 + v2 > 0:
        welch = (v1 / n1 + v2 / n2) ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
    else:
        welch = n1 + n2 - 2
    df = (n12 - 1) + (welch - n12 + 1) / (na + nb + 2 * n12) * (na + nb)
    t = out["rating_diff"] / se if se > 0 else 0.0
    half = stats.t.isf(0.025, df) * se
    out.update(
        rating_test="overlap_t",
        rating_statistic=t,
        rating_df=df,
        rating_p_val=2 * stats.t.sf(abs(t), df) if se > 0 else 1.0,
        rating_diff_ci_low=out["rating_diff"] - half,
        rating_diff_ci_high=out["rating_diff"] + half,
    )
    return out


def _bh(pvals):
    p = np.asarray(pvals, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(samples)
def test_compare_equals_scipy_and_statsmodels_on_the_raw_answers(sample):
    raw = _raw_answers(sample)
    table = compare(*_aggregate(raw), items=ITEMS)
    assert list(table.columns) == COLUMNS
    assert table["practice_id"].tolist() == ITEMS
    records = [
        (*row[:4], None if pd.isna(row[4]) else int(row[4]))
        for row in raw.itertuples(index=False, name=None)
    ]
    refs = [_reference([r for r in records if r[1] == item]) for item in ITEMS]
    # Every column of the definition is checked below against an independent computation.
    assert {*refs[0], *FLAGS, *Q_COLUMNS} == set(COLUMNS[1:])
    for row, ref in zip(table.to_dict("records"), refs, strict=True):
        for name, expected in ref.items():
            got = row[name]
            if name in TEXT_COLUMNS:
                assert (None if pd.isna(got) else got) == expected, name
            elif isinstance(expected, float) and math.isnan(expected):
                assert math.isnan(got), name
            else:
                # A MOVER limit is a difference minus a square root of terms that cancel
                # when the paired answers correlate perfectly: rounding of ~1e-17 under
                # the root becomes ~1e-8 after it, in either implementation.
                tol = 1e-7 if name in SQRT_OF_CANCELLATION else 1e-12
                assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=tol), name
        assert row["low_n_ru"] == (ref["n_ru"] < 10)
        assert row["low_n_foreign"] == (ref["n_foreign"] < 10)
        assert row["low_n_paired"] == (ref["paired_n"] < 10)
        assert row["low_n_rating"] == (min(ref["rating_n_ru"], ref["rating_n_foreign"]) < 10)
        assert row["low_n"] == (row["low_n_ru"] or row["low_n_foreign"])
    for family in ("", "indep_", "paired_", "rating_", "mwu_", "wilcoxon_"):
        expected_q = _bh([ref[f"{family}p_val"] for ref in refs])
        np.testing.assert_allclose(
            table[f"{family}q_val"].to_numpy(float), expected_q, rtol=1e-9, atol=1e-15
        )
    for column in INT_COLUMNS:
        assert table[column].dtype == "int64", column
    for column in TEXT_COLUMNS:  # a test's name is one the definition documents, or None
        names = {None, *(v for v in table[column] if isinstance(v, str))}
        assert names <= {None, *definition.column(column).values}, column


# --------------------------------------------------------------------------- multiple testing


def test_benjamini_hochberg_and_holm_check_values():
    p = [0.001, 0.008, 0.012, 0.04, 0.2]
    np.testing.assert_allclose(multiple_testing(p), [0.005, 0.02, 0.02, 0.05, 0.2], atol=1e-12)
    np.testing.assert_allclose(
        multiple_testing(p, method="holm"), [0.005, 0.032, 0.036, 0.08, 0.2], atol=1e-12
    )


def test_multiple_testing_keeps_nan_and_adjusts_over_the_rest():
    q = multiple_testing([0.04, math.nan, 0.01, math.nan])
    assert np.isnan(q[1]) and np.isnan(q[3])
    np.testing.assert_allclose(q[[0, 2]], [0.04, 0.02])
    assert np.isnan(multiple_testing([math.nan, math.nan])).all()
    assert multiple_testing([]).size == 0


def test_q_values_are_computed_within_each_family_only():
    prev = pd.DataFrame(
        {
            "practice_id": ["a", "a", "b", "b"],
            "company_kind": ["ru", "foreign"] * 2,
            "yes": [30, 55, 20, 21],
            "no": [90, 55, 20, 19],
            "dk": [0, 0, 0, 0],
        }
    )
    paired_counts = pd.DataFrame(
        {"practice_id": ["a"], "yes_yes": [5], "yes_no": [10], "no_yes": [25], "no_no": [5]}
    )
    table = compare(prev, paired_counts, None, None)
    np.testing.assert_allclose(table["q_val"], _bh(table["p_val"]))
    # One paired test only: its q equals its p, whatever the prevalence family holds.
    assert table["paired_q_val"].iloc[0] == table["paired_p_val"].iloc[0]
    assert math.isnan(table["paired_q_val"].iloc[1])


# --------------------------------------------------------------------------- shape and edges


def _prevalence(rows):
    return pd.DataFrame(rows, columns=["practice_id", "company_kind", "yes", "no", "dk"])


def test_items_fix_the_rows_and_their_order():
    prev = _prevalence([["b", "ru", 1, 1, 0], ["a", "ru", 2, 1, 0], ["z", "ru", 1, 0, 0]])
    assert compare(prev, None, None, None)["practice_id"].tolist() == ["a", "b", "z"]
    table = compare(prev, None, None, None, items=["z", "nothing", "a"])
    assert table["practice_id"].tolist() == ["z", "nothing", "a"]
    assert list(table.columns) == COLUMNS


def test_an_item_with_no_rows_at_all_gets_zeros_and_nan():
    table = compare(_prevalence([["a", "ru", 5, 5, 0]]), None, None, None, items=["a", "new"])
    row = table.iloc[1]
    assert row[INT_COLUMNS].tolist() == [0] * len(INT_COLUMNS)
    for name in COLUMNS:
        if name not in INT_COLUMNS and name != "practice_id" and not name.startswith("low_n"):
            assert pd.isna(row[name]), name
    assert row[["low_n_ru", "low_n_foreign", "low_n_paired", "low_n_rating", "low_n"]].all()


def test_zero_eligible_respondents_gives_a_row_per_item_and_no_exception():
    table = compare(None, None, None, None, items=ITEMS)
    assert table["practice_id"].tolist() == ITEMS
    assert (table["n_ru"] == 0).all() and table["p_val"].isna().all()
    assert table["q_val"].isna().all() and table["wilcoxon_q_val"].isna().all()
    for column in INT_COLUMNS:
        assert table[column].dtype == "int64"
    assert compare(None, None, None, None).empty


def test_empty_count_tables_with_columns_work_like_none():
    raw = _raw_answers(([], 1))
    table = compare(*_aggregate(raw), items=ITEMS)
    assert (table["n_ru"] == 0).all()


@pytest.mark.parametrize("answer, share", [("yes", 1.0), ("no", 0.0)])
def test_everyone_giving_the_same_answer_everywhere(answer, share):
    rating = 4 if answer == "yes" else None
    raw = _raw_answers(([(True, True, [((answer, rating), (answer, rating))] * 3)], 12))
    row = compare(*_aggregate(raw), items=ITEMS).iloc[0]
    assert row["p_ru"] == share and row["p_foreign"] == share
    assert row["test"] == "overlap_z" and row["p_val"] == 1.0 and row["diff"] == 0.0
    assert row["diff_ci_low"] <= 0.0 <= row["diff_ci_high"]
    assert row["n_ru_only"] == 0 and pd.isna(row["indep_test"])
    assert row["paired_n"] == 12 and row["paired_p_val"] == 1.0
    if answer == "yes":
        assert row["rating_p_val"] == 1.0 and row["rating_diff"] == 0.0
        assert row["mwu_p_val"] == 1.0 and row["rank_biserial"] == 0.0
        assert row["wilcoxon_p_val"] == 1.0 and row["rating_paired_n"] == 12
    else:
        assert row["rating_n_ru"] == 0 and math.isnan(row["rating_p_val"])


def test_one_company_kind_empty():
    raw = _raw_answers(([(True, False, [(("yes", 5), ("yes", 5))] * 3)], 20))
    row = compare(*_aggregate(raw), items=ITEMS).iloc[0]
    assert row["n_ru"] == 20 and row["n_foreign"] == 0
    assert row["p_ru"] == 1.0 and math.isnan(row["p_foreign"])
    assert pd.isna(row["test"]) and math.isnan(row["p_val"]) and math.isnan(row["diff"])
    assert row["paired_n"] == 0 and math.isnan(row["paired_p_val"])
    assert row["rating_n_foreign"] == 0 and math.isnan(row["rating_p_val"])
    assert row["low_n_foreign"] and row["low_n"] and not row["low_n_ru"]


def test_a_single_respondent():
    raw = _raw_answers(([(True, True, [(("yes", 2), ("no", None))] * 3)], 1))
    row = compare(*_aggregate(raw), items=ITEMS).iloc[0]
    assert (row["n_ru"], row["k_ru"], row["n_foreign"], row["k_foreign"]) == (1, 1, 1, 0)
    # One pair: the primary z over all answers (r taken as 0), no unpaired group.
    z = 1 / math.sqrt(0.25 / 1 + 0.25 / 1)
    assert row["test"] == "overlap_z" and math.isclose(row["p_val"], 2 * stats.norm.sf(z))
    assert pd.isna(row["indep_test"]) and row["n_ru_only"] == 0
    assert (row["paired_n"], row["paired_b"], row["paired_c"]) == (1, 1, 0)
    assert row["paired_p_val"] == 1.0 and row["paired_diff"] == 1.0
    assert row["rating_n_ru"] == 1 and row["rating_median_ru"] == 2.0
    assert math.isnan(row["rating_p_val"]) and row["rating_paired_n"] == 0
    assert row["low_n"]


def test_dont_know_answers_change_only_the_dk_columns():
    people = [
        (True, True, [(("yes", 4), ("no", None))] * 3),
        (True, True, [(("no", None), ("yes", 3))] * 3),
        (True, True, [(("yes", 5), ("yes", 2))] * 3),
    ]
    without = compare(*_aggregate(_raw_answers((people, 5))), items=ITEMS)
    with_dk = people + [(True, True, [(("dk", None), ("dk", None))] * 3)] * 7
    table = compare(*_aggregate(_raw_answers((with_dk, 5))), items=ITEMS)
    assert (table["dk_ru"] == 35).all() and (table["dk_foreign"] == 35).all()
    bounds = [f"p_{kind}_bound_{side}" for kind in ("ru", "foreign") for side in ("low", "high")]
    others = [c for c in COLUMNS if c not in ("dk_ru", "dk_foreign", *bounds)]
    pd.testing.assert_frame_equal(table[others], without[others])
    # Only the bounds take the don't-knows in: 7 of 5 x 10 respondents answered "dk" both.
    yes_ru = without["k_ru"]
    np.testing.assert_allclose(table["p_ru_bound_low"], yes_ru / 50)
    np.testing.assert_allclose(table["p_ru_bound_high"], (yes_ru + 35) / 50)
    np.testing.assert_allclose(without["p_ru_bound_low"], without["p_ru"])
    np.testing.assert_allclose(without["p_ru_bound_high"], without["p_ru"])


def test_compare_at_category_level():
    prev = pd.DataFrame(
        {"category_id": ["pay"], "company_kind": ["ru"], "yes": [3], "no": [4], "dk": [0]}
    )
    table = compare(prev, None, None, None, key="category_id")
    assert table.columns[0] == "category_id" and table["category_id"].tolist() == ["pay"]


def test_compare_rejects_repeated_items_and_bad_tables():
    with pytest.raises(ValueError, match="repeat"):
        compare(None, None, None, None, items=["a", "a"])
    with pytest.raises(ValueError):
        compare(_prevalence([["a", "ru", -1, 1, 0]]), None, None, None)
    with pytest.raises(ValueError):
        compare(None, None, None, pd.DataFrame({"practice_id": ["a"], "n": [1]}))


# --------------------------------------------------------------------------- assumptions, docs


def test_assumptions_name_every_caveat_in_both_languages():
    for phrase in ("Unweighted", "simple random sample", "self-selected", "two-sided", "5%"):
        assert phrase in ASSUMPTIONS
    assert "Benjamini-Hochberg" in ASSUMPTIONS and "fewer than 10" in ASSUMPTIONS
    russian = assumptions_text(lang="ru")
    for phrase in ("без взвешивания", "простую случайную выборку", "Бенджамини-Хохберга"):
        assert phrase in russian
    assert "менее чем на 10" in russian and "уровень значимости 5% (интервалы 95%)" in russian
    assert "fewer than 5 respondents" in assumptions_text(low_n=5)
    assert "at the 1% level (99% intervals)" in assumptions_text(alpha=0.01)
    with pytest.raises(ValueError):
        assumptions_text(lang="de")


def test_public_api_is_re_exported():
    for name in analysis.__all__:
        assert callable(getattr(analysis, name)) or isinstance(getattr(analysis, name), str)
    assert analysis.compare is compare


@pytest.mark.parametrize(
    "module", ["proportions", "paired", "ratings", "compare", "overlap", "table"]
)
def test_docstring_examples_run(module):
    module = importlib.import_module(f"analysis.{module}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
