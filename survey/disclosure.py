"""The disclosure gate: every number and free-text example that leaves the server passes here.

Three rules (ESSnet output checking; Denning's tracker attack; see the README):

1. **Segment threshold.** A segment resting on fewer than ``MIN_CELL`` protected
   respondents gets no breakdown at all, only a message (never its counts).
2. **Cell threshold.** Inside a shown table, a cell resting on fewer than ``MIN_CELL``
   respondents is shown as "< MIN_CELL" with its percentages and tests withheld; in a
   distribution whose total is shown, one withheld cell takes a second one with it, so
   the first cannot be recovered by subtraction.
3. **Differencing.** A segment whose respondents differ from a broader segment (the same
   filters less some) by 1 to ``MIN_CELL - 1`` respondents is refused: otherwise two
   allowed requests would give those few respondents' answers by subtraction. The check
   runs for the whole segment and for the respondents of each kind of company and of both
   (the groups every table column rests on). Flagged responses and those of pilot waves
   enter only on request: a segment that asks for them must not differ by 1 to
   ``MIN_CELL - 1`` from the same segment without them. The channel a respondent came
   through is a filter like the others (a channel of six respondents is a small segment).

"Protected" respondents are the real ones: demo (synthetic) rows never count as cover.
In a study with only demo rows, the demo rows are judged the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from flask import current_app
from flask_babel import gettext as _

from analysis.compare import COLUMN_GROUPS, Q_FAMILIES, TEXT_COLUMNS, multiple_testing
from survey import queries
from survey.questions import COMPANY_KINDS, PERIODS

MIN_CELL_FLOOR = 5
VIEWS = {
    "all": None,
    "ru": queries.KIND_WORKERS["ru"],
    "foreign": queries.KIND_WORKERS["foreign"],
    "both": ("both",),
}

# Cells of the comparison table: the count that decides, and the columns it withholds.
CELL_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    group: (COLUMN_GROUPS[group][0], COLUMN_GROUPS[group])
    for group in (
        "ru",
        "foreign",
        "ru_only",
        "foreign_only",
        "paired",
        "rating_ru",
        "rating_foreign",
        "rating_ru_only",
        "rating_foreign_only",
        "rating_paired",
    )
}
# Tests that compare cells: withheld when a side is.
TEST_GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "primary": (COMPANY_KINDS, COLUMN_GROUPS["primary"]),
    "indep": (("ru_only", "foreign_only"), COLUMN_GROUPS["indep"]),
    "rating_test": (("rating_ru", "rating_foreign"), COLUMN_GROUPS["rating_test"]),
    "rating_mwu": (("rating_ru", "rating_foreign"), COLUMN_GROUPS["rating_mwu"]),
}
# A kind's total is its one-kind-only respondents plus those who know both kinds, and the
# total is the headline: when the segment holds 1 to threshold-1 respondents of one of these
# groups (by what they said they worked in), the other group's (secondary) blocks are
# withheld too, or the small group's answers could be worked out by subtraction.
COMPLEMENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ru_only": ("ru_only", ("paired", "rating_paired")),
    "foreign_only": ("foreign_only", ("paired", "rating_paired")),
    "both": ("paired", ("ru_only", "foreign_only", "rating_ru_only", "rating_foreign_only")),
}


def min_cell() -> int:
    """The configured threshold, never below :data:`MIN_CELL_FLOOR`."""
    return max(int(current_app.config.get("MIN_CELL", 10)), MIN_CELL_FLOOR)


@dataclass(frozen=True)
class Verdict:
    """Whether a segment may be shown, and why not."""

    allowed: bool
    min_cell: int
    # "too_small", "differencing", "complement" (a period) or "partition" (a wave, channel
    # or language whose small siblings it would give away)
    reason: str | None = None

    def message(self) -> str:
        """The reader's explanation, in the interface language."""
        if self.reason == "complement":
            return _(
                "Another period of experience has fewer than %(n)d respondents for one kind "
                "of company in this selection. This period is withheld too, so that the small "
                "one cannot be worked out by subtracting the periods shown from the total. "
                "Choose another period or remove a filter.",
                n=self.min_cell,
            )
        if self.reason == "partition":
            return _(
                "Another wave, channel or language has fewer than %(n)d respondents in this "
                "selection. This one is withheld too, so that the small one cannot be worked "
                "out by subtracting the ones shown from the total. Remove or change a filter.",
                n=self.min_cell,
            )
        if self.reason == "differencing":
            return _(
                "This selection differs from a broader one by fewer than %(n)d respondents, "
                "so showing it would let their answers be worked out by subtraction. "
                "Remove or change a filter.",
                n=self.min_cell,
            )
        return _(
            "Fewer than %(n)d respondents match this selection. To protect their anonymity "
            "no results are shown for it. Remove or change a filter.",
            n=self.min_cell,
        )

    def as_json(self) -> dict:
        """The refusal for an API client: the reason, never the counts."""
        return {
            "suppressed": True,
            "reason": self.reason,
            "min_cell": self.min_cell,
            "message": self.message(),
        }


UNGATED = Verdict(True, 0, "ungated")
"""The verdict of :func:`survey.results.ungated_comparison` (tests of the statistics only)."""


def _superset_sums(counts: np.ndarray, k: int) -> np.ndarray:
    """For every filter subset A (a bitmask), the count of rows meeting all filters of A."""
    out = counts.copy()
    for i in range(k):
        bit = 1 << i
        for mask in range(1 << k):
            if not mask & bit:
                out[mask] += out[mask | bit]
    return out


def judge(
    lattice,
    k: int,
    include_flagged: bool,
    threshold: int,
    period_bit: int | None = None,
    include_pilot: bool = False,
) -> Verdict:
    """Apply the segment and differencing rules to a lattice from
    :func:`survey.queries.segment_lattice` of a segment with ``k`` filters.

    ``period_bit`` is the filter bit of a period restriction, if any: for a segment with it,
    "the respondents of a kind" are those of that kind in the period (the rows' effective
    code); for a broader segment without it, those who worked in the kind at all.

    Flagged and pilot responses are let in only on request (``include_flagged``,
    ``include_pilot``): a segment that asks for them must not differ from the same segment
    without them (each, or both) by 1 to ``threshold - 1`` respondents, or those few
    respondents' answers would follow by subtraction.
    """
    full = (1 << k) - 1
    tables: dict[tuple[bool, bool, str], np.ndarray] = {}

    def sizes(flagged_too: bool, pilot_too: bool, view: str) -> np.ndarray:
        """Respondents per filter subset, with or without flagged and pilot rows."""
        key = (flagged_too, pilot_too, view)
        if key in tables:
            return tables[key]
        codes = VIEWS[view]
        real = np.zeros(1 << k, dtype=np.int64)
        effective = np.zeros(1 << k, dtype=np.int64)
        for bits, unflagged, worked_in, n, *rest in lattice:
            if not (flagged_too or unflagged):
                continue
            if not pilot_too and len(rest) > 1 and rest[1]:
                continue
            if codes is None or worked_in in codes:
                real[bits] += n
            if codes is None or (rest[0] if rest else worked_in) in codes:
                effective[bits] += n
        table = _superset_sums(real, k)
        if period_bit is not None:
            with_period = _superset_sums(effective, k)
            for mask in range(1 << k):
                if mask >> period_bit & 1:
                    table[mask] = with_period[mask]
        tables[key] = table
        return table

    own = sizes(include_flagged, True, "all")[full]
    if own < threshold:
        return Verdict(False, threshold, "too_small")
    # The same filters without what the segment asked for beyond the default.
    narrower = [(False, True)] if include_flagged else []
    if include_pilot:
        narrower += [(include_flagged, False), *([(False, False)] if include_flagged else [])]
    for view in VIEWS:
        table = sizes(include_flagged, True, view)
        size = table[full]
        if size < threshold:
            continue  # every cell of this group is withheld anyway
        # Respondents in each broader segment (some filters dropped) but not in this one.
        differences = [table[mask] - size for mask in range(full)]
        for flagged_too, pilot_too in narrower:  # and those this one adds to a narrower one
            smaller = sizes(flagged_too, pilot_too, view)[full]
            if smaller >= threshold:
                differences.append(size - smaller)
        if any(0 < d < threshold for d in differences):
            return Verdict(False, threshold, "differencing")
    return Verdict(True, threshold)


def check_segment(segment: queries.Segment, pop: queries.Population) -> Verdict:
    """May this segment be shown?"""
    dims = queries.segment_dimensions(segment)
    lattice = queries.segment_lattice(segment, pop)
    period_bit = len(dims) - 1 if segment.period else None  # the period filter is last
    verdict = judge(
        lattice,
        len(dims),
        segment.include_flagged,
        min_cell(),
        period_bit,
        include_pilot=segment.include_pilot,
    )
    if verdict.allowed and segment.period:
        counts = queries.period_counts(segment, pop)
        if segment.period in withheld_periods(counts, verdict.min_cell):
            return Verdict(False, verdict.min_cell, "complement")
    for name in queries.PARTITIONS:
        value = getattr(segment, name) if verdict.allowed else None
        if value is not None:
            siblings = queries.sibling_counts(segment, pop, name)
            if value in withheld_siblings(siblings, verdict.min_cell):
                return Verdict(False, verdict.min_cell, "partition")
    return verdict


def withheld_siblings(counts: dict[str, int], threshold: int) -> set[str]:
    """Values of a partition (waves, channels, languages) withheld as secondary
    suppression, from the respondents per value in the segment without that filter.

    The pairwise check of :func:`judge` compares a segment with the broader one only: with
    channels of 6, 500 and 500 respondents, each big one passes, and the total less both
    gives the small one. So when values hold 1 to threshold-1 respondents (refused by
    themselves), the smallest other non-empty values are withheld too until the withheld
    ones hold at least ``threshold`` together; the total less the shown values then gives
    only that union.
    """
    small = {v for v, n in counts.items() if 0 < n < threshold}
    if not small:
        return set()
    held = set(small)
    rest = sorted((n, v) for v, n in counts.items() if n and v not in held)
    while sum(counts[v] for v in held) < threshold and rest:
        held.add(rest.pop(0)[1])
    return held


def withheld_periods(counts: dict[str, dict[str, int]], threshold: int) -> set[str]:
    """Periods withheld as secondary suppression, from each kind's respondents per period
    (:func:`survey.queries.period_counts`) in the segment without its period.

    The periods of one kind partition that kind's anchored respondents, so the total less
    the periods shown gives the rest. When a period has 1 to threshold-1 respondents of a
    kind (its cells are withheld by the cell rule), the smallest other non-empty periods are
    withheld too until the withheld ones hold at least ``threshold`` together: the total
    less the shown periods then gives only that union. Respondents with no period (before
    2026-12) are no cover: their group is itself a difference of allowed segments.
    """
    out: set[str] = set()
    for per_period in counts.values():
        small = {p for p, n in per_period.items() if 0 < n < threshold}
        if not small:
            continue
        held = set(small)
        rest = sorted(
            (n, PERIODS.index(p), p) for p, n in per_period.items() if n and p not in held
        )
        while sum(per_period[p] for p in held) < threshold and rest:
            held.add(rest.pop(0)[2])
        out |= held - small  # a small period itself stays: its kind's cells are withheld
    return out


def mask_comparison(
    table: pd.DataFrame,
    threshold: int,
    protected: pd.DataFrame | None = None,
    structure: dict[str, int] | None = None,
) -> pd.DataFrame:
    """The comparison table with small cells withheld.

    ``protected`` is the same table computed over the protected rows only (when demo rows
    are mixed in): a cell is withheld when its protected count is below ``threshold``.
    ``structure`` counts the segment's protected respondents by ``worked_in`` code, for the
    secondary suppression of :data:`COMPLEMENTS`.
    Withheld values become NaN; ``suppressed_<group>`` columns say which, and q-values are
    recomputed over the tests that are shown (the family a reader sees).
    """
    judge_by = (
        table
        if protected is None
        else protected.set_index(table.columns[0]).reindex(table[table.columns[0]]).reset_index()
    )
    hidden: dict[str, np.ndarray] = {}
    for group, (count, _columns) in CELL_GROUPS.items():
        hidden[group] = judge_by[count].fillna(0).to_numpy() < threshold
    for worked_in, (_group, others) in COMPLEMENTS.items():
        n = (structure or {}).get(worked_in, 0)
        if 0 < n < threshold:
            for other in others:
                hidden[other] = np.ones(len(table), dtype=bool)
    for group, (sides, _columns) in TEST_GROUPS.items():
        hidden[group] = np.logical_or.reduce([hidden[side] for side in sides])
    columns_of = {g: c for g, (_n, c) in CELL_GROUPS.items()}
    columns_of.update({g: c for g, (_s, c) in TEST_GROUPS.items()})
    withheld: dict[str, np.ndarray] = {}  # per column: the rows withheld in any of its groups
    for group, columns in columns_of.items():
        for column in columns:
            withheld[column] = withheld.get(column, False) | hidden[group]
    # Masked as whole arrays and assembled into one frame (column by column in pandas this
    # took a fifth of a cold view): numbers become float64 with NaN, texts None.
    numeric = [c for c in table.columns if c in withheld and c not in TEXT_COLUMNS]
    values = np.where(
        np.column_stack([withheld[c] for c in numeric]) if numeric else False,
        math.nan,
        table[numeric].to_numpy(dtype="float64"),
    )
    data: dict[str, object] = {}
    for name in table.columns:
        if name in TEXT_COLUMNS and name in withheld:  # a few: pandas keeps their dtype
            data[name] = table[name].where(~withheld[name], None)
        elif name in withheld:
            data[name] = values[:, numeric.index(name)]
        else:
            data[name] = table[name]
    for family in Q_FAMILIES:
        data[f"{family}q_val"] = multiple_testing(np.asarray(data[f"{family}p_val"], dtype=float))
    for group in CELL_GROUPS:
        data[f"suppressed_{group}"] = hidden[group]
    data["min_cell"] = threshold
    return pd.DataFrame(data, index=table.index)


def mask_counts(frame: pd.DataFrame, threshold: int, column: str = "n") -> pd.DataFrame:
    """A distribution with cells below ``threshold`` withheld (NaN, ``suppressed`` True).

    When exactly one cell would be withheld, the smallest shown cell is withheld with it
    (secondary suppression), since the total is shown elsewhere.
    """
    out = frame.copy()
    values = out[column].fillna(0).astype("int64").to_numpy()
    hidden = values < threshold
    if hidden.sum() == 1 and len(values) > 1:
        shown = np.where(~hidden)[0]
        hidden[shown[np.argmin(values[shown])]] = True
    out[column] = out[column].astype("float64").where(~hidden, math.nan)
    out["suppressed"] = hidden
    return out


def small(threshold: int) -> str:
    """How a withheld count is written: "< 10"."""
    return f"< {threshold}"


def csv_ready(table: pd.DataFrame) -> pd.DataFrame:
    """A masked comparison table for a CSV download: withheld counts read "< 10"."""
    out = table.copy()
    if "min_cell" not in out:
        return out
    text = small(int(out["min_cell"].iloc[0])) if len(out) else ""
    for group, (count, _columns) in CELL_GROUPS.items():
        flag = out[f"suppressed_{group}"].to_numpy(dtype=bool)
        values = out[count].astype(object)
        values[flag] = text
        out[count] = values.map(lambda v: v if isinstance(v, str) else _int_or_blank(v))
    return out


def _int_or_blank(value) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return int(value)
