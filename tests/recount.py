"""Independent expectations for the comparison table the dashboard and the API show.

The stored answers are read with one plain SELECT and every statistic is recomputed from
them with scipy/statsmodels (the reference of ``tests/analysis/test_compare.py``), never
with ``survey.queries`` or ``analysis.compare``; the disclosure rule is written out from
the groups of the table's one definition (``analysis.table``), not taken from the gate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sqlalchemy import text
from statsmodels.stats.multitest import multipletests

from analysis import table as definition
from survey.extensions import db
from tests.analysis.test_compare import _reference

# Every submitted, unflagged answer that was asked (``na``: a kind not worked in;
# ``not_my_role``: left out like "don't know" is from the share).
ANSWERS_SQL = text(
    "SELECT a.response_id, a.practice_id, a.company_kind, a.met, a.rating, r.is_demo "
    "FROM answer a JOIN response r ON r.id = a.response_id "
    "WHERE r.status = 'submitted' AND r.quality_flag IS NULL "
    "AND a.met NOT IN ('na', 'not_my_role')"
)
HAS_REAL_SQL = text(
    "SELECT COUNT(*) FROM response "
    "WHERE status = 'submitted' AND quality_flag IS NULL AND NOT is_demo"
)
WORKED_IN_SQL = text(
    "SELECT worked_in, COUNT(*) FROM response "
    "WHERE status = 'submitted' AND quality_flag IS NULL GROUP BY worked_in"
)
# The practice existed (applied to the respondent, existed but not for them, or the former
# "met it"): a "yes" of the share.
YES = ("applied", "existed", "yes")
Q_FAMILIES = ("", "indep_", "paired_", "rating_", "mwu_", "wilcoxon_")

# A count below the threshold withholds its cell's columns ...
CELL_COLUMNS = {
    definition.GROUP_BY_NAME[group].count: definition.COLUMN_GROUPS[group]
    for group in definition.CELL_GROUPS
}
CELL_COUNT = {group: definition.GROUP_BY_NAME[group].count for group in definition.CELL_GROUPS}
# ... a kind's total is its one-kind-only respondents plus those who know both: when the
# segment has 1 to 9 respondents of one such group (worked_in), the other's cells go too ...
COMPLEMENTS = {
    "n_ru_only": ("both",),
    "n_foreign_only": ("both",),
    "rating_n_ru_only": ("both",),
    "rating_n_foreign_only": ("both",),
    "paired_n": ("ru_only", "foreign_only"),
    "rating_paired_n": ("ru_only", "foreign_only"),
}


def _tests_by_sides() -> dict[tuple[str, ...], tuple[str, ...]]:
    """... and a test comparing two cells is withheld when either is."""
    out: dict[tuple[str, ...], tuple[str, ...]] = {}
    for group in definition.TEST_GROUPS:
        sides = definition.GROUP_BY_NAME[group].sides
        out[sides] = out.get(sides, ()) + definition.COLUMN_GROUPS[group]
    return out


TEST_COLUMNS = _tests_by_sides()


def stored_answers(app) -> pd.DataFrame:
    """The answers the comparison of everyone counts, one row per (response, practice,
    kind): real responses, or the demo ones while no real response exists; ``answer`` is
    yes / no / dk and ``rating`` an int or None."""
    with app.app_context():
        rows = db.session.execute(ANSWERS_SQL).all()
        has_real = db.session.scalar(HAS_REAL_SQL) > 0
    raw = pd.DataFrame(
        rows, columns=["response_id", "practice_id", "company_kind", "met", "rating", "is_demo"]
    )
    raw = raw[raw["is_demo"].astype(bool) != has_real]
    return raw.assign(answer=raw["met"].where(~raw["met"].isin(YES), "yes"))


def worked_in_counts(app) -> dict[str, int]:
    """Submitted, unflagged responses per worked_in code, straight from SQL."""
    with app.app_context():
        return dict(db.session.execute(WORKED_IN_SQL).all())


def recount_comparison(app) -> pd.DataFrame:
    """The comparison table of everyone recomputed from the stored answers: one row per
    practice in catalogue order, every column of the table's definition, before the gate.

    Each practice's statistics are ``tests/analysis/test_compare.py``'s reference (scipy and
    statsmodels on the raw answers); the low-n flags are the counts below 10, and q-values
    Benjamini-Hochberg (statsmodels) within each family of tests.
    """
    raw = stored_answers(app)
    records = [
        (rid, pid, kind, answer, None if pd.isna(rating) else int(rating))
        for rid, pid, kind, answer, rating in raw[
            ["response_id", "practice_id", "company_kind", "answer", "rating"]
        ].itertuples(index=False, name=None)
    ]
    by_practice: dict[str, list[tuple]] = {}
    for record in records:
        by_practice.setdefault(record[1], []).append(record)
    ids = [p.id for p in app.extensions["survey_catalog"].practices]
    table = pd.DataFrame([_reference(by_practice.get(pid, [])) for pid in ids])
    table.insert(0, "practice_id", ids)
    for kind in ("ru", "foreign"):
        table[f"low_n_{kind}"] = table[f"n_{kind}"] < 10
    table["low_n_paired"] = table["paired_n"] < 10
    table["low_n_rating"] = table[["rating_n_ru", "rating_n_foreign"]].min(axis=1) < 10
    table["low_n"] = table["low_n_ru"] | table["low_n_foreign"]
    for family in Q_FAMILIES:
        table[f"{family}q_val"] = bh(table[f"{family}p_val"])
    return table[definition.order("practice_id")]


def bh(p_values: pd.Series) -> np.ndarray:
    """Benjamini-Hochberg q-values of the p-values that are not NaN (NaN stays)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    shown = ~np.isnan(p)
    if shown.any():
        out[shown] = multipletests(p[shown], method="fdr_bh")[1]
    return out


def withheld(expected: pd.DataFrame, structure: dict[str, int], threshold: int = 10):
    """Which values of ``expected`` the disclosure gate withholds (a boolean frame of its
    shape): each cell whose count is below ``threshold`` (or whose complement group has 1
    to ``threshold`` - 1 respondents), with every column resting on it, and each test
    resting on a withheld cell."""
    out = pd.DataFrame(False, index=expected.index, columns=expected.columns)
    for count, columns in CELL_COLUMNS.items():
        small = expected[count].fillna(0) < threshold
        if any(0 < structure.get(g, 0) < threshold for g in COMPLEMENTS.get(count, ())):
            small[:] = True
        out.loc[small, list(columns)] = True
    for sides, columns in TEST_COLUMNS.items():
        either = out[CELL_COUNT[sides[0]]] | out[CELL_COUNT[sides[1]]]
        out.loc[either, list(columns)] = True
    return out


def gated(expected: pd.DataFrame, hidden: pd.DataFrame) -> pd.DataFrame:
    """``expected`` as a reader sees it: withheld values NaN (a test's name None), and the
    q-values recomputed over the tests that are shown."""
    out = expected.astype(object).where(~hidden, None)
    for column in out.columns:
        if column not in definition.TEXT_COLUMNS and column not in definition.BOOL_COLUMNS:
            if column != "practice_id":
                out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    for family in Q_FAMILIES:
        out[f"{family}q_val"] = bh(out[f"{family}p_val"])
    return out
